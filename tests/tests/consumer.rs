//! The consumer role end to end, through real router processes: anvil with our contracts, provider
//! routers on their stand-in backends, and a consumer router driven with `curl` as an operator or an
//! OpenAI client would (`e2e_tests::market`). Every test starts its own marketplace.
//!
//! - a session opened by model streams, answers JSON and embeds, closes with the provider's receipt,
//!   and the MOR moves exactly as the contracts' formulas say (nothing left for the provider to claim,
//!   the consumer's on-hold stake back the next day);
//! - a backend dying mid-stream ends the client's stream with an error event, a model's error is
//!   answered as the reference's `providerModelError`, and the node carries on;
//! - a provider that is down is skipped with its reason, and when none accepts every reason is given;
//! - failover: a session whose provider dies continues on the next provider within the same request;
//! - a restarted consumer keeps its sessions, and the sweeper closes a session past its end;
//! - bad input is refused with a status, a machine code and a reason, without charging anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider as _;
use e2e_tests::backend::{self, Faults};
use e2e_tests::chain::{deltas, signed, wallet, ChainFixture};
use e2e_tests::market::{Market, ADMIN, MODEL_NAME};
use e2e_tests::router::{curl, CurlAnswer};
use proxy_router::chain::allowance::Allowance;
use proxy_router::chain::bindings::SessionRouter;
use proxy_router::chain::sender::OpenSession;
use serde_json::{json, Value};

/// The cheapest bid's price in wei per second, the deploy script's minimum: every payment in these
/// tests stays far below a provider's 0.2 MOR earning limit.
const PRICE: u64 = 10_000_000_000_000;
/// Seconds in a UTC day (the contracts' `1 days`).
const DAY: u64 = 86_400;

// -------------------------------------------------------------------------------------------------
// HTTP helpers
// -------------------------------------------------------------------------------------------------

/// What `curl` got, with the response headers of the final response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The SSE events' payloads (what follows `data: `); fails on anything that is not a data event.
    fn events(&self) -> Vec<&str> {
        self.body
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                event.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE data event: {event:?}"))
            })
            .collect()
    }
}

/// Runs curl with `args`, capturing the response headers too.
fn curl_with_headers(args: &[&str]) -> Reply {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let mut all = vec!["-D", path.as_str()];
    all.extend_from_slice(args);
    let CurlAnswer { status, body } = curl(&all).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // Interim answers (`100 Continue`) come first: the last block is the final response's.
    let block = text.split("\r\n\r\n").filter(|b| !b.trim().is_empty()).last().unwrap_or_default();
    let headers = block
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Reply { status, headers, body }
}

/// `POST path` on the consumer as the admin with curl's data arguments `data` (`--data-binary …`)
/// and extra `name: value` headers.
fn post_raw(market: &Market, path: &str, data: &[&str], headers: &[&str]) -> Reply {
    let url = market.consumer().unwrap().url(path);
    let mut args = vec!["-u", ADMIN, "-X", "POST"];
    for header in headers {
        args.extend(["-H", header]);
    }
    args.extend_from_slice(data);
    args.push(&url);
    curl_with_headers(&args)
}

/// `POST path` (an OpenAI route) with the JSON `body` on `session` and extra headers.
fn inference(market: &Market, path: &str, session: &str, body: &Value, headers: &[&str]) -> Reply {
    let session = format!("session_id: {session}");
    let mut all = vec!["content-type: application/json", session.as_str()];
    all.extend_from_slice(headers);
    post_raw(market, path, &["--data-binary", &body.to_string()], &all)
}

fn chat(market: &Market, session: &str, body: &Value) -> Reply {
    inference(market, "/v1/chat/completions", session, body, &[])
}

/// A chat request with `content` as the user's message.
fn chat_body(content: &str, stream: bool) -> Value {
    json!({"model": "any", "stream": stream, "temperature": 0.1,
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]})
}

/// Fails unless `reply` is a whole streamed answer to `question`: one data event per backend chunk,
/// the usage event, `[DONE]`; answers the reassembled text.
fn assert_streamed(reply: &Reply, question: &str) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let events = reply.events();
    assert_eq!(events.last(), Some(&"[DONE]"), "{}", reply.body);
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks.len(), backend::reply_chunks(question).len() + 1, "{}", reply.body);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, backend::reply(question));
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
}

/// Fails unless `reply` is a whole JSON answer to `question`.
fn assert_json_answer(reply: &Reply, question: &str) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], backend::reply(question));
    answer
}

/// Fails unless `reply` is the API error `status` with `code`; answers its body.
fn assert_error(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"), "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    body
}

fn answer_json(answer: &CurlAnswer) -> Value {
    answer.json().unwrap()
}

/// `GET path` on provider `i`'s router as its admin.
fn provider_get(market: &Market, i: usize, path: &str) -> CurlAnswer {
    let router = market.providers[i].router.as_ref().expect("provider running");
    curl(&["-u", ADMIN, &router.url(path)]).unwrap()
}

/// `POST path` with `{}` on provider `i`'s router as its admin.
fn provider_post(market: &Market, i: usize, path: &str) -> CurlAnswer {
    let router = market.providers[i].router.as_ref().expect("provider running");
    let url = router.url(path);
    curl(&["-u", ADMIN, "-X", "POST", "-H", "content-type: application/json", "-d", "{}", &url]).unwrap()
}

fn session_id(opened: &CurlAnswer) -> String {
    assert_eq!(opened.status, 200, "{}", opened.body);
    answer_json(opened)["sessionID"].as_str().unwrap().to_owned()
}

fn lower(address: Address) -> String {
    format!("{address:#x}")
}

// -------------------------------------------------------------------------------------------------
// Chain helpers
// -------------------------------------------------------------------------------------------------

/// What the consumer has on hold (released or not): since v7.8 a late close on the day of the
/// session's end keeps the stake of the stipend used that day until the next UTC day.
async fn held_of(market: &Market) -> i128 {
    let held =
        sessions(&market.chain).getUserStakesOnHold(market.consumer_address, 255).call().await.unwrap();
    signed(held.available_ + held.hold_)
}

fn sessions(chain: &ChainFixture) -> SessionRouter::SessionRouterInstance<alloy::providers::DynProvider> {
    SessionRouter::new(chain.deployment.diamond, chain.provider().unwrap())
}

fn b256(text: &str) -> B256 {
    text.parse().unwrap()
}

/// The contract's `stipendToStake(stipend, at)` as of the state after block `block`, from its formula
/// (`stipend × totalMORSupply × 100 / getComputeBalance`, 0 without compute balance).
async fn stipend_to_stake(chain: &ChainFixture, stipend: U256, at: u64, block: u64) -> U256 {
    let sessions = sessions(chain);
    let block = BlockId::number(block);
    let compute = sessions.getComputeBalance(u128::from(at)).block(block).call().await.unwrap();
    let supply = sessions.totalMORSupply(u128::from(at)).block(block).call().await.unwrap();
    if compute.is_zero() {
        return U256::ZERO;
    }
    stipend * supply * U256::from(100) / compute
}

/// Moves anvil's clock forward and mines a block stamped after `timestamp`.
async fn advance_past(chain: &ChainFixture, timestamp: u64) {
    let now = chain.chain_time().await.unwrap();
    chain.advance_time(timestamp.saturating_sub(now) + 1).await.unwrap();
}

// -------------------------------------------------------------------------------------------------
// 1. Open by model, chat, embed, close, the money
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_session_by_model_chats_embeds_closes_and_pays_as_the_contracts_say() {
    let mut market = Market::start(&[PRICE], &[]).await.unwrap();
    let d = market.chain.deployment.clone();
    let provider = market.providers[0].address;
    let who = [market.consumer_address, provider, d.funding_account, d.diamond];
    let before = market.chain.mor_balances(&who).await.unwrap();

    // Open by model: the only provider accepts.
    let opened = market.open_by_model(600, &json!({})).unwrap();
    let id = session_id(&opened);
    let opened = answer_json(&opened);
    assert_eq!(opened["provider"].as_str().unwrap().parse::<Address>().unwrap(), provider);
    assert_eq!(b256(opened["bidID"].as_str().unwrap()), market.providers[0].bid_id);
    assert!(opened.get("skipped").is_none(), "nobody was skipped: {opened}");
    let session = market.session(&id).unwrap();
    assert_eq!(session["Provider"], lower(provider));
    assert_eq!(session["User"], lower(market.consumer_address));
    assert_eq!(session["ClosedAt"], 0);

    // Streaming, with the client's request id echoed and the answering session named.
    let question = "what is the colour of the sky";
    let reply = inference(
        &market,
        "/v1/chat/completions",
        &id,
        &chat_body(question, true),
        &["X-Request-Id: e2e-request-1"],
    );
    assert_streamed(&reply, question);
    assert_eq!(reply.header("x-request-id"), Some("e2e-request-1"));
    assert_eq!(reply.header("x-session-id"), Some(id.as_str()));
    let events = reply.events();
    let first: Value = serde_json::from_str(events[0]).unwrap();
    assert_eq!(first["model"], MODEL_NAME, "the provider's backend answered as its model");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");

    // Non-streaming: the backend's JSON with its choices and usage; a request id is made up.
    let question = "and the grass";
    let reply = chat(&market, &id, &chat_body(question, false));
    let answer = assert_json_answer(&reply, question);
    assert_eq!(answer["model"], MODEL_NAME);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    let (words, chunks) = (question.split_whitespace().count(), backend::reply_chunks(question).len());
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": words, "completion_tokens": chunks, "total_tokens": words + chunks})
    );
    let generated = reply.header("x-request-id").unwrap();
    assert!(generated.len() == 8 && generated.chars().all(|c| c.is_ascii_hexdigit()), "{generated}");
    assert_eq!(reply.header("x-session-id"), Some(id.as_str()));

    // Embeddings: the backend's vectors, exactly.
    let inputs = ["the quick brown fox", "jumps"];
    let reply = inference(&market, "/v1/embeddings", &id, &json!({"model": "any", "input": inputs}), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let embedded = reply.json();
    assert_eq!(embedded["object"], "list");
    for (i, input) in inputs.iter().enumerate() {
        assert_eq!(embedded["data"][i]["index"], i);
        assert_eq!(embedded["data"][i]["embedding"], json!(backend::embedding(input)), "input {i}");
    }
    // What the backend received: the client's fields, the provider's model name.
    let seen = market.providers[0].backend.seen();
    assert_eq!(seen.requests.len(), 3);
    assert_eq!(seen.requests[0]["temperature"], 0.1);
    assert_eq!(seen.requests[0]["model"], MODEL_NAME);
    assert_eq!(seen.requests[2]["input"], json!(inputs));

    // Two minutes of use, then the close: with the provider's receipt (closeout type 0).
    market.chain.advance_time(120).await.unwrap();
    let closed = market.post(&format!("/blockchain/sessions/{id}/close"), &json!({})).unwrap();
    assert_eq!(closed.status, 200, "{}", closed.body);
    let tx = b256(answer_json(&closed)["tx"].as_str().unwrap());
    let session = market.wait_closed(&id).unwrap();
    assert_eq!(session["CloseoutType"], 0, "the provider's receipt: no dispute");
    let on_chain = sessions(&market.chain).getSession(b256(&id)).call().await.unwrap();
    assert_eq!(on_chain.closeoutType, U256::ZERO);
    let (opened_at, closed_at, ends_at) =
        (on_chain.openedAt as u64, on_chain.closedAt as u64, on_chain.endsAt as u64);
    assert_eq!(
        (session["OpenedAt"].as_u64(), session["ClosedAt"].as_u64()),
        (Some(opened_at), Some(closed_at))
    );
    assert!(closed_at >= opened_at + 120 && closed_at < ends_at, "an early close: {session}");
    assert!(ends_at >= opened_at + 600, "the stake pays for the 600 s asked: {session}");

    // The money (closeSession of SessionRouter.sol): the provider earns the time used at the bid's
    // price, paid by the funding account; the consumer's stake comes back except the part that bought
    // today's stipend, which the diamond holds until the next UTC day.
    let after = market.chain.mor_balances(&who).await.unwrap();
    let price = U256::from(PRICE);
    let earned = U256::from(closed_at - opened_at) * price;
    let start_of_day = closed_at - closed_at % DAY;
    let used_today = U256::from(closed_at - opened_at.max(start_of_day)) * price;
    let close_block = market
        .chain
        .provider()
        .unwrap()
        .get_transaction_receipt(tx)
        .await
        .unwrap()
        .unwrap()
        .block_number
        .unwrap();
    let lock =
        stipend_to_stake(&market.chain, used_today, start_of_day, close_block - 1).await.min(on_chain.stake);
    assert!(!lock.is_zero());
    assert_eq!(
        deltas(&before, &after),
        [-signed(lock), signed(earned), -signed(earned), signed(lock)],
        "consumer, provider, funding account, diamond"
    );
    assert_eq!(deltas(&before, &after).iter().sum::<i128>(), 0, "MOR is conserved");
    let held = answer_json(&market.get("/blockchain/sessions/user/stakes-on-hold").unwrap());
    assert_eq!(held["locked"], lock.to_string());
    assert_eq!(held["available"], "0");
    assert_eq!(
        held["onHold"],
        json!([{"amount": lock.to_string(), "releaseAt": start_of_day + DAY, "released": false}])
    );

    // The receipt paid the provider everything at close: nothing is left to claim, now or after the
    // session's planned end.
    let claimable = format!("/proxy/sessions/{id}/providerClaimableBalance");
    let claim = format!("/proxy/sessions/{id}/providerClaim");
    for _ in 0..2 {
        assert_eq!(answer_json(&provider_get(&market, 0, &claimable)), json!({"balance": "0"}));
        let refused = provider_post(&market, 0, &claim);
        assert_eq!(refused.status, 409, "{}", refused.body);
        let refused = answer_json(&refused);
        assert_eq!(refused["code"], "nothing_to_claim");
        assert!(refused["reason"].as_str().is_some_and(|r| !r.is_empty()), "{refused}");
        advance_past(&market.chain, ends_at).await;
    }
    assert_eq!(market.chain.mor_balance(provider).await.unwrap(), after[1], "no claim was paid");

    // The next UTC day the consumer withdraws its on-hold stake: over the whole session it paid
    // nothing, the funding account paid the provider.
    market.chain.jump_to_next_utc_day(1).await.unwrap();
    let withdrawn = market.post("/blockchain/sessions/user/withdraw-stakes", &json!({})).unwrap();
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    assert_eq!(answer_json(&withdrawn)["withdrawn"], lock.to_string());
    let end = market.chain.mor_balances(&who).await.unwrap();
    assert_eq!(deltas(&before, &end), [0, signed(earned), -signed(earned), 0]);
    assert!(market.consumer.as_mut().unwrap().is_running());
}

// -------------------------------------------------------------------------------------------------
// 1b. A session the consumer leaves open: the provider claims it after its end
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_claims_a_session_left_open_after_its_end_and_the_late_close_pays_nothing_twice() {
    // The sweeper is kept away (one tick at start, the next in an hour) so the session stays open.
    let mut market = Market::start(&[PRICE], &[("SESSION_SWEEP_INTERVAL", "1h".to_owned())]).await.unwrap();
    let d = market.chain.deployment.clone();
    let provider = market.providers[0].address;
    let who = [market.consumer_address, provider, d.funding_account, d.diamond];
    let before = market.chain.mor_balances(&who).await.unwrap();
    let id = market.open_session(300).unwrap();
    assert_streamed(&chat(&market, &id, &chat_body("one question", true)), "one question");
    let on_chain = sessions(&market.chain).getSession(b256(&id)).call().await.unwrap();
    let (opened_at, ends_at, stake) = (on_chain.openedAt as u64, on_chain.endsAt as u64, on_chain.stake);
    let claimable = format!("/proxy/sessions/{id}/providerClaimableBalance");
    let claim = format!("/proxy/sessions/{id}/providerClaim");

    // Before the end there is nothing to claim yet; the consumer's stake sits in the diamond.
    assert_eq!(answer_json(&provider_get(&market, 0, &claimable)), json!({"balance": "0"}));
    let opened = market.chain.mor_balances(&who).await.unwrap();
    assert_eq!(deltas(&before, &opened), [-signed(stake), 0, 0, signed(stake)]);

    // After the end the provider claims the whole session at its bid's price, from the funding account.
    advance_past(&market.chain, ends_at).await;
    let earned = U256::from(ends_at - opened_at) * U256::from(PRICE);
    market
        .wait_until(|| {
            let balance = answer_json(&provider_get(&market, 0, &claimable));
            Ok((balance["balance"] == earned.to_string()).then_some(()))
        })
        .unwrap();
    let claimed = provider_post(&market, 0, &claim);
    assert_eq!(claimed.status, 200, "{}", claimed.body);
    assert_eq!(answer_json(&claimed)["claimed"], earned.to_string());
    let after_claim = market.chain.mor_balances(&who).await.unwrap();
    assert_eq!(
        deltas(&opened, &after_claim),
        [0, signed(earned), -signed(earned), 0],
        "consumer, provider, funding account, diamond"
    );
    let withdrawn =
        sessions(&market.chain).getSession(b256(&id)).call().await.unwrap().providerWithdrawnAmount;
    assert_eq!(withdrawn, earned);
    // A second claim finds nothing.
    let again = provider_post(&market, 0, &claim);
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(answer_json(&again)["code"], "nothing_to_claim");

    // The consumer's late close returns the stake but what the v7.8 day-lock holds, and pays the
    // provider nothing more.
    let held_before = held_of(&market).await;
    let closed = market.post(&format!("/blockchain/sessions/{id}/close"), &json!({})).unwrap();
    assert_eq!(closed.status, 200, "{}", closed.body);
    market.wait_closed(&id).unwrap();
    let lock = held_of(&market).await - held_before;
    let end = market.chain.mor_balances(&who).await.unwrap();
    assert_eq!(deltas(&before, &end), [-lock, signed(earned), -signed(earned), lock]);
    assert_eq!(deltas(&before, &end).iter().sum::<i128>(), 0, "MOR is conserved");
    assert!(market.consumer.as_mut().unwrap().is_running());
}

// -------------------------------------------------------------------------------------------------
// 2. The backend dies mid-stream
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_dying_mid_stream_ends_the_stream_with_an_error_event_and_the_node_carries_on() {
    let mut market = Market::start(&[PRICE], &[]).await.unwrap();
    let id = market.open_session(600).unwrap();

    market.providers[0].backend.control(Faults {
        drop_after_chunks: Some(2),
        chunk_delay: Duration::from_millis(50),
        ..Faults::default()
    });
    let question = "tell me a long story";
    let reply = chat(&market, &id, &chat_body(question, true));
    // The stream had started: 200, the two chunks the backend sent, then one terminal error event.
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.events();
    assert_eq!(events.len(), 3, "{}", reply.body);
    let texts: Vec<Value> = events[..2]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"].clone())
        .collect();
    assert_eq!(texts, [json!("This"), json!(" is")]);
    let error: Value = serde_json::from_str(events[2]).unwrap();
    assert_eq!(error["error"]["code"], "provider_interrupted", "{error}");
    assert_eq!(error["error"]["type"], "provider_error", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("the provider's answer broke off"), "{message}");
    assert!(!reply.body.contains("[DONE]"), "{}", reply.body);

    // Both routers are up; with the backend healthy again the same session answers.
    assert!(market.consumer.as_mut().unwrap().is_running());
    assert!(market.providers[0].router.as_mut().unwrap().is_running());
    // The model's own error, before the first byte: the reference's 400 `providerModelError`, with
    // the backend's error body, streamed or not.
    market.providers[0].backend.control(Faults { error_status: Some(503), ..Faults::default() });
    for stream in [true, false] {
        let reply = chat(&market, &id, &chat_body("fail please", stream));
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"providerModelError": {"error": {"message": "demo backend error 503", "type": "server_error"}}})
        );
    }
    assert!(market.consumer.as_mut().unwrap().is_running());

    market.providers[0].backend.control(Faults::default());
    let question = "a short one then";
    assert_json_answer(&chat(&market, &id, &chat_body(question, false)), question);
    assert_streamed(&chat(&market, &id, &chat_body(question, true)), question);
}

// -------------------------------------------------------------------------------------------------
// 3. A provider that is down is skipped with its reason
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn opening_by_model_skips_a_provider_that_is_down_and_names_every_reason_when_none_accepts() {
    let mut market = Market::start(&[PRICE, 2 * PRICE], &[]).await.unwrap();
    let (p0, p1) = (market.providers[0].address, market.providers[1].address);
    // The cheaper provider is rated best; its router goes down.
    let rated =
        answer_json(&market.get(&format!("/blockchain/models/{:#x}/bids/rated", market.model_id)).unwrap());
    let ranked: Vec<B256> =
        rated["bids"].as_array().unwrap().iter().map(|b| b256(b["ID"].as_str().unwrap())).collect();
    assert_eq!(ranked, [market.providers[0].bid_id, market.providers[1].bid_id], "{rated}");
    market.stop_provider(0);

    let opened = market.open_by_model(600, &json!({})).unwrap();
    let id = session_id(&opened);
    let opened = answer_json(&opened);
    assert_eq!(opened["provider"].as_str().unwrap().parse::<Address>().unwrap(), p1);
    assert_eq!(b256(opened["bidID"].as_str().unwrap()), market.providers[1].bid_id);
    let skipped = opened["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{opened}");
    assert_eq!(skipped[0]["provider"].as_str().unwrap().parse::<Address>().unwrap(), p0);
    assert_eq!(b256(skipped[0]["bidId"].as_str().unwrap()), market.providers[0].bid_id);
    let reason = skipped[0]["reason"].as_str().unwrap();
    let endpoints: Vec<String> = market.providers.iter().map(|p| p.endpoint.clone()).collect();
    let unreachable = |i: usize| format!("provider {} is unreachable", endpoints[i]);
    assert!(reason.starts_with(&unreachable(0)), "{reason}");
    assert_eq!(market.session(&id).unwrap()["Provider"], lower(p1));
    let question = "who answers";
    assert_json_answer(&chat(&market, &id, &chat_body(question, false)), question);

    // Both down: 502, and the reason lists every provider tried, best first, with its reason.
    market.stop_provider(1);
    let balance = market.chain.mor_balance(market.consumer_address).await.unwrap();
    let refused = market.open_by_model(600, &json!({})).unwrap();
    assert_eq!(refused.status, 502, "{}", refused.body);
    let refused = answer_json(&refused);
    assert_eq!(refused["code"], "no_provider_accepted");
    assert!(refused["error"].as_str().unwrap().starts_with("no provider accepting session: "), "{refused}");
    let reasons: Vec<Value> = serde_json::from_str(refused["reason"].as_str().unwrap()).unwrap();
    assert_eq!(reasons.len(), 2, "{refused}");
    for (i, (failure, provider)) in reasons.iter().zip([p0, p1]).enumerate() {
        assert_eq!(failure["provider"].as_str().unwrap().parse::<Address>().unwrap(), provider);
        assert_eq!(b256(failure["bidId"].as_str().unwrap()), market.providers[i].bid_id);
        assert!(failure["reason"].as_str().unwrap().starts_with(&unreachable(i)), "{failure}");
    }
    assert_eq!(market.chain.mor_balance(market.consumer_address).await.unwrap(), balance, "nothing staked");
    assert!(market.consumer.as_mut().unwrap().is_running());
}

// -------------------------------------------------------------------------------------------------
// 4. Failover
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_session_continues_on_the_next_provider_when_its_provider_dies() {
    let mut market = Market::start(&[PRICE, 2 * PRICE], &[]).await.unwrap();
    let (p0, p1) = (market.providers[0].address, market.providers[1].address);
    let opened = market.open_by_model(900, &json!({"failover": true})).unwrap();
    let first = session_id(&opened);
    assert_eq!(answer_json(&opened)["provider"].as_str().unwrap().parse::<Address>().unwrap(), p0);
    let question = "before the fall";
    let reply = chat(&market, &first, &chat_body(question, false));
    assert_json_answer(&reply, question);
    assert_eq!(reply.header("x-session-id"), Some(first.as_str()));

    // Provider 0's router dies; the next request completes on provider 1, in a new session.
    market.stop_provider(0);
    let question = "after the fall";
    let reply = chat(&market, &first, &chat_body(question, true));
    assert_streamed(&reply, question);
    let second = reply.header("x-session-id").unwrap().to_owned();
    assert_ne!(second, first);
    let successor = market.session(&second).unwrap();
    assert_eq!(successor["Provider"], lower(p1));
    assert_eq!(b256(successor["BidID"].as_str().unwrap()), market.providers[1].bid_id);
    assert_eq!(successor["ClosedAt"], 0);
    // It runs for the first session's remaining time.
    let replaced = market.wait_closed(&first).unwrap();
    let (old_end, new_end) = (replaced["EndsAt"].as_u64().unwrap(), successor["EndsAt"].as_u64().unwrap());
    assert!(new_end + 10 >= old_end && new_end <= old_end + 60, "{replaced} {successor}");
    // The failed session was closed with our own report (its provider is gone): a dispute.
    assert_eq!(replaced["CloseoutType"], 1, "{replaced}");
    assert_eq!(market.providers[1].backend.seen().requests.len(), 1);
    assert!(market.providers[0].backend.seen().requests.len() == 1, "provider 0 served only the first");

    // A client that keeps naming the first session is served by its successor.
    let question = "still the old id";
    let reply = chat(&market, &first, &chat_body(question, false));
    assert_json_answer(&reply, question);
    assert_eq!(reply.header("x-session-id"), Some(second.as_str()));
    assert_eq!(market.providers[1].backend.seen().requests.len(), 2);
}

// -------------------------------------------------------------------------------------------------
// 5. Restart, then the sweeper
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_consumer_keeps_its_session_and_the_sweeper_closes_it_past_its_end() {
    let mut market = Market::start(&[PRICE], &[("SESSION_SWEEP_INTERVAL", "1s".to_owned())]).await.unwrap();
    let d = market.chain.deployment.clone();
    let provider = market.providers[0].address;
    let who = [market.consumer_address, provider, d.funding_account, d.diamond];
    let before = market.chain.mor_balances(&who).await.unwrap();

    // The shortest session the contract accepts (MIN_SESSION_DURATION, 5 minutes).
    let id = market.open_session(300).unwrap();
    let question = "before the restart";
    assert_streamed(&chat(&market, &id, &chat_body(question, true)), question);

    market.restart_consumer().unwrap();
    let question = "after the restart";
    let reply = chat(&market, &id, &chat_body(question, true));
    assert_streamed(&reply, question);
    assert_eq!(reply.header("x-session-id"), Some(id.as_str()));
    assert_eq!(market.session(&id).unwrap()["ClosedAt"], 0);

    // Past its end on chain, the sweeper (every second) closes it with the provider's receipt.
    let ends_at = market.session(&id).unwrap()["EndsAt"].as_u64().unwrap();
    advance_past(&market.chain, ends_at).await;
    let closed = market.wait_closed(&id).unwrap();
    assert_eq!(closed["CloseoutType"], 0, "{closed}");
    let on_chain = sessions(&market.chain).getSession(b256(&id)).call().await.unwrap();
    let (opened_at, ends_at) = (on_chain.openedAt as u64, on_chain.endsAt as u64);
    assert!(on_chain.closedAt as u64 >= ends_at, "a late close");
    assert!(ends_at >= opened_at + 300);

    // A late close: the stake comes back but what the v7.8 day-lock holds, the provider earns the whole
    // session.
    let earned = signed(U256::from(ends_at - opened_at) * U256::from(PRICE));
    let lock = held_of(&market).await;
    let after = market.chain.mor_balances(&who).await.unwrap();
    assert_eq!(
        deltas(&before, &after),
        [-lock, earned, -earned, lock],
        "consumer, provider, funding, diamond"
    );
    assert_eq!(
        answer_json(&provider_get(&market, 0, &format!("/proxy/sessions/{id}/providerClaimableBalance"))),
        json!({"balance": "0"})
    );
    assert!(market.consumer.as_mut().unwrap().is_running());
}

// -------------------------------------------------------------------------------------------------
// 6. Bad input
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_code_and_a_reason_and_charges_nothing() {
    let mut market = Market::start(&[PRICE], &[]).await.unwrap();
    // anvil's clock goes an hour back: the routers (which judge expiry by their own clock, as the
    // reference does) see a short session as ended while the chain, and its sweeper, do not.
    let now = market.chain.chain_time().await.unwrap();
    let provider = market.chain.provider().unwrap();
    provider.raw_request::<_, Value>("evm_setTime".into(), (now - 3600,)).await.unwrap();
    market.chain.mine().await.unwrap();

    // A live session (two hours from an hour ago), an expired one, a closed one, another wallet's.
    let live = market.open_session(7200).unwrap();
    let expired = market.open_session(600).unwrap();
    let closed = market.open_session(600).unwrap();
    let answer = market.post(&format!("/blockchain/sessions/{closed}/close"), &json!({})).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    market.wait_closed(&closed).unwrap();
    let stranger = market.chain.sender(6).await.unwrap();
    let stake = market.chain.session_stake(U256::from(PRICE), 600).await.unwrap();
    market.chain.give_mor(stranger.address(), stake).await.unwrap();
    let (approval, approval_signature) = market
        .chain
        .signed_approval(&wallet(2).unwrap(), market.providers[0].bid_id, stranger.address())
        .await
        .unwrap();
    let open = OpenSession {
        user: stranger.address(),
        amount: stake,
        direct_payment: false,
        approval,
        approval_signature,
    };
    let (foreign, _) =
        Allowance::new(stranger.clone()).spend(stake, || stranger.open_session(&open)).await.unwrap();
    let foreign = format!("{foreign:#x}");

    let balance = market.chain.mor_balance(market.consumer_address).await.unwrap();
    let served = market.providers[0].backend.seen().requests.len();
    let good = chat_body("hello", true);
    let chat_path = "/v1/chat/completions";

    // Unknown session.
    let unknown = format!("{:#x}", B256::repeat_byte(0x42));
    let body = assert_error(&chat(&market, &unknown, &good), 404, "not_found");
    assert_eq!(body["error"], format!("session {unknown} not found"));
    // Another wallet's session.
    let body = assert_error(&chat(&market, &foreign, &good), 403, "not_session_user");
    assert_eq!(
        body["error"],
        format!(
            "session {foreign} belongs to {}, not to this node's wallet {}",
            stranger.address(),
            market.consumer_address
        )
    );
    // A closed session.
    let body = assert_error(&chat(&market, &closed, &good), 409, "session_closed");
    assert_eq!(body["error"], format!("session {closed} is closed"));
    // An expired session (still open on chain).
    let ends_at = market.session(&expired).unwrap()["EndsAt"].as_u64().unwrap();
    assert_eq!(market.session(&expired).unwrap()["ClosedAt"], 0);
    let body = assert_error(&chat(&market, &expired, &good), 409, "session_expired");
    assert_eq!(body["error"], format!("session {expired} expired at {ends_at} (unix seconds)"));
    let body = assert_error(
        &inference(&market, "/v1/embeddings", &expired, &json!({"input": "x"}), &[]),
        409,
        "session_expired",
    );
    assert_eq!(body["error"], format!("session {expired} expired at {ends_at} (unix seconds)"));
    // Malformed JSON, and JSON that is not an object.
    let session_header = format!("session_id: {live}");
    let headers = ["content-type: application/json", session_header.as_str()];
    let body = assert_error(
        &post_raw(&market, chat_path, &["--data-binary", r#"{"messages": ["#], &headers),
        400,
        "bad_request",
    );
    assert!(body["error"].as_str().unwrap().starts_with("invalid JSON body: "), "{body}");
    let body = assert_error(
        &post_raw(&market, chat_path, &["--data-binary", "[1, 2]"], &headers),
        400,
        "bad_request",
    );
    assert_eq!(body["error"], "the request body must be a JSON object");
    // An oversized body (the API's limit: 1 MiB, or PROXY_MAX_PROMPT_BYTES when larger, 4 MiB by default).
    let big = tempfile::NamedTempFile::new().unwrap();
    let padding = "x".repeat(8 * 1024 * 1024);
    std::fs::write(big.path(), json!({"messages": [{"role": "user", "content": padding}]}).to_string())
        .unwrap();
    let file = format!("@{}", big.path().display());
    let body = assert_error(
        &post_raw(&market, chat_path, &["--data-binary", &file], &headers),
        413,
        "payload_too_large",
    );
    assert_eq!(body["error"], "the request body is too large");
    // No session_id header, and one that is not a session id.
    for path in [chat_path, "/v1/embeddings"] {
        let reply = post_raw(
            &market,
            path,
            &["--data-binary", &good.to_string()],
            &["content-type: application/json"],
        );
        let body = assert_error(&reply, 400, "bad_request");
        assert_eq!(body["field"], "session_id", "{body}");
        assert!(body["error"].as_str().unwrap().contains("session_id"), "{body}");
    }
    let body = assert_error(&chat(&market, "0x1234", &good), 400, "bad_request");
    assert_eq!(body["field"], "session_id", "{body}");

    // Closing: an unknown session, another wallet's, a closed one.
    let json_headers = ["content-type: application/json"];
    let post_json = |path: &str, body: &Value| {
        post_raw(&market, path, &["--data-binary", &body.to_string()], &json_headers)
    };
    let close = |id: &str| post_json(&format!("/blockchain/sessions/{id}/close"), &json!({}));
    let body = assert_error(&close(&unknown), 404, "not_found");
    assert_eq!(body["error"], format!("session {unknown} not found"));
    let body = assert_error(&close(&foreign), 403, "not_session_user");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains(&lower(stranger.address())), "{body}");
    assert!(message.contains(&lower(market.consumer_address)), "{body}");
    let body = assert_error(&close(&closed), 409, "session_closed");
    assert_eq!(body["error"], format!("session {closed} is already closed"));
    assert!(body["reason"].as_str().unwrap().starts_with("closed at "), "{body}");

    // Opening: a duration the contract would refuse (SessionTooShort), none, not a number, and a model
    // nobody bids on: refused before any handshake or transaction (no allowance raised, no nonce used).
    let allowance = market.chain.allowance(market.consumer_address).await.unwrap();
    let nonce = provider.get_transaction_count(market.consumer_address).await.unwrap();
    let open_path = format!("/blockchain/models/{:#x}/session", market.model_id);
    for (duration, reason) in [
        (json!(299), "299 s is shorter than the 300 s the contract accepts"),
        (json!(0), "0 s is shorter than the 300 s the contract accepts"),
        (json!("soon"), "expected a decimal integer"),
    ] {
        let reply = post_json(&open_path, &json!({"sessionDuration": duration}));
        let body = assert_error(&reply, 400, "bad_request");
        assert_eq!(body["field"], "sessionDuration", "{body}");
        assert!(body["error"].as_str().unwrap().contains(reason), "{body}");
    }
    let nobody = B256::repeat_byte(9);
    let reply =
        post_json(&format!("/blockchain/models/{nobody:#x}/session"), &json!({"sessionDuration": 600}));
    let body = assert_error(&reply, 404, "no_bids");
    assert_eq!(body["error"], format!("model {nobody:#x} has no active bid to open a session on"));
    assert_eq!(market.chain.allowance(market.consumer_address).await.unwrap(), allowance);
    assert_eq!(provider.get_transaction_count(market.consumer_address).await.unwrap(), nonce);

    // Nothing reached the provider, nothing was charged, and the node is up and serves the live session.
    assert_eq!(market.providers[0].backend.seen().requests.len(), served);
    assert_eq!(market.chain.mor_balance(market.consumer_address).await.unwrap(), balance);
    assert!(market.consumer.as_mut().unwrap().is_running());
    assert_streamed(&chat(&market, &live, &good), "hello");
    assert_eq!(market.chain.mor_balance(market.consumer_address).await.unwrap(), balance);
}
