//! The OpenAI gateway through real routers (anvil with our contracts, real provider routers over
//! MOR-RPC, the stand-in streaming backend): exactly one session for 50 concurrent first requests, a
//! dead provider replaced by the next bid with the dead session closed, every key limit refused with
//! its status and code at no cost, a restart that keeps keys, usage and sessions, and MOR conserved
//! over a session's whole gateway life (open, renew, idle close).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, U256};
use e2e_tests::chain::{deltas, model_registration, signed, MOR};
use e2e_tests::gateway::{eventually, GatewayAnswer};
use e2e_tests::market::{Market, MarketOptions, MODEL_NAME, PROVIDER_ACCOUNTS};
use proxy_router::chain::allowance::Allowance;
use proxy_router::chain::bindings::SessionRouter;
use serde_json::{json, Value};

const PRICE: u64 = 10_000_000_000_000;

fn ok(answer: &GatewayAnswer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().unwrap()
}

fn refused(answer: &GatewayAnswer, status: u16, code: &str) {
    assert_eq!((answer.status, answer.error_code().as_deref()), (status, Some(code)), "{}", answer.body);
    let error = &answer.json().unwrap()["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.body);
    assert!(error.get("type").is_some() && error.get("param").is_some(), "{}", answer.body);
}

fn key_sessions(market: &Market, id: &str) -> Vec<Value> {
    market.key(id).unwrap()["sessions"].as_array().cloned().unwrap()
}

// -------------------------------------------------------------------------------------------------
// 1. Single flight, and a dead provider replaced
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fifty_first_requests_open_one_session_and_a_dead_provider_is_replaced_by_the_next_bid() {
    let mut market = Market::start(&[PRICE, 2 * PRICE], &[]).await.unwrap();
    let (id, secret) = market.create_key(&json!({"name": "swarm"})).unwrap();
    let gateway = market.gateway().unwrap();

    let requests = (0..50).map(|i| {
        let gateway = gateway.clone();
        let secret = secret.clone();
        async move { gateway.chat(&secret, MODEL_NAME, &format!("hello {i}")).await.unwrap() }
    });
    let answers = futures::future::join_all(requests).await;
    let first = answers[0].session.clone().unwrap_or_else(|| panic!("{:?}", answers[0]));
    for answer in &answers {
        ok(answer);
        assert_eq!(answer.session.as_deref(), Some(first.as_str()), "every request used the one session");
    }
    let on_chain = market.consumer_sessions().unwrap();
    assert_eq!(on_chain.len(), 1, "exactly one session on chain: {on_chain:?}");
    assert_eq!(on_chain[0]["Id"], first);
    let sessions = key_sessions(&market, &id);
    assert_eq!(sessions.len(), 1);
    let provider: Address = sessions[0]["provider"].as_str().unwrap().parse().unwrap();

    // The provider serving the key dies: the next request goes to the other one through a new session.
    let dead = market.providers.iter().position(|p| p.address == provider).unwrap();
    market.stop_provider(dead);
    let answer = gateway.chat(&secret, MODEL_NAME, "are you there?").await.unwrap();
    ok(&answer);
    let second = answer.session.clone().unwrap();
    assert_ne!(second, first);
    let sessions = key_sessions(&market, &id);
    let new = sessions.iter().find(|s| s["sessionId"] == second).unwrap();
    assert_eq!(new["provider"], format!("{:#x}", market.providers[1 - dead].address));
    assert_eq!(new["state"], "open");
    let old = market.wait_closed(&first).unwrap();
    assert!(old["ClosedAt"].as_u64().unwrap() > 0);
    market
        .wait_until(|| {
            let sessions = key_sessions(&market, &id);
            let old = sessions.iter().find(|s| s["sessionId"] == first).cloned().unwrap();
            Ok((old["state"] == "closed").then_some(old))
        })
        .map(|old| assert_eq!(old["closeReason"], "provider failed"))
        .unwrap();
    assert_eq!(market.consumer_sessions().unwrap().len(), 2);
}

// -------------------------------------------------------------------------------------------------
// 2. Every limit refused with its code, at no cost
// -------------------------------------------------------------------------------------------------

/// The consumer's MOR and how many sessions it has on chain (read from the chain, not the index):
/// what a refused request must leave unchanged.
async fn costs(market: &Market) -> (U256, U256) {
    let router = SessionRouter::new(market.chain.deployment.diamond, market.chain.provider().unwrap());
    let sessions =
        router.getUserSessions(market.consumer_address, U256::ZERO, U256::from(100)).call().await.unwrap();
    (market.chain.mor_balance(market.consumer_address).await.unwrap(), sessions._1)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_limit_is_refused_with_its_status_and_code_and_costs_nothing() {
    let market = Market::start_with(&MarketOptions::new(&[PRICE])).await.unwrap();
    let gateway = market.gateway().unwrap();

    // A second model nobody bids on, for the model restriction.
    let (account, _) = PROVIDER_ACCOUNTS[0];
    let sender = market.chain.sender(account).await.unwrap();
    let registration = model_registration(sender.address(), "other-model", U256::from(MOR / 10));
    Allowance::new(sender.clone())
        .spend(registration.stake, || sender.model_register(&registration))
        .await
        .unwrap();
    market
        .wait_until(|| Ok(market.get("/blockchain/models")?.body.contains("other-model").then_some(())))
        .unwrap();

    let nothing_spent = costs(&market).await;
    assert_eq!(nothing_spent.1, U256::ZERO);
    let (_, open) = market.create_key(&json!({"name": "open"})).unwrap();

    // No key, a wrong key, a malformed body, an unknown model.
    refused(&gateway.chat("", MODEL_NAME, "hi").await.unwrap(), 401, "invalid_api_key");
    refused(&gateway.chat("sk-mor-not-a-key", MODEL_NAME, "hi").await.unwrap(), 401, "invalid_api_key");
    let answer = gateway.post("/v1/chat/completions", &open, &json!({"model": MODEL_NAME})).await.unwrap();
    refused(&answer, 400, "invalid_value");
    assert_eq!(answer.json().unwrap()["error"]["param"], "messages");
    let answer = gateway.post("/v1/chat/completions", &open, &json!({"messages": []})).await.unwrap();
    assert_eq!(answer.json().unwrap()["error"]["param"], "model");
    refused(&gateway.chat(&open, "no-such-model", "hi").await.unwrap(), 404, "model_not_found");
    // A model without bids: nobody can serve it.
    let answer = gateway.chat(&open, "other-model", "hi").await.unwrap();
    refused(&answer, 503, "no_provider_available");

    // Model restriction.
    let (_, restricted) =
        market.create_key(&json!({"name": "restricted", "models": ["other-model"]})).unwrap();
    refused(&gateway.chat(&restricted, MODEL_NAME, "hi").await.unwrap(), 403, "model_not_allowed");
    let listed = ok(&gateway.get("/v1/models", &restricted).await.unwrap());
    assert_eq!(listed["data"], json!([]), "the only allowed model has no bid");
    refused(
        &gateway.get(&format!("/v1/models/{MODEL_NAME}"), &restricted).await.unwrap(),
        403,
        "model_not_allowed",
    );

    // A budget too small for any session.
    let (_, poor) = market.create_key(&json!({"name": "poor", "budgetMor": "1"})).unwrap();
    refused(&gateway.chat(&poor, MODEL_NAME, "hi").await.unwrap(), 429, "insufficient_quota");

    // Revocation, before any use.
    let (revoked_id, revoked) = market.create_key(&json!({"name": "revoked"})).unwrap();
    let answer = market.delete(&format!("/auth/keys/{revoked_id}")).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.json().unwrap()["revokedAt"].as_u64().is_some());
    refused(&gateway.chat(&revoked, MODEL_NAME, "hi").await.unwrap(), 401, "invalid_api_key");

    // Expiry: a key valid for two seconds (polled on the free models route).
    let expires_at = market.chain.chain_time().await.unwrap().max(proxy_router::consumer::unix_now()) + 2;
    let (_, expiring) = market.create_key(&json!({"name": "expiring", "expiresAt": expires_at})).unwrap();
    eventually(|| async { Ok((gateway.get("/v1/models", &expiring).await?.status == 401).then_some(())) })
        .await
        .unwrap();
    refused(&gateway.chat(&expiring, MODEL_NAME, "hi").await.unwrap(), 401, "invalid_api_key");

    assert_eq!(costs(&market).await, nothing_spent, "no refused request moved MOR or opened a session");

    // The request quota: the first request is served (and opens the key's session), the second is not.
    let (quota_id, quota) = market.create_key(&json!({"name": "quota", "maxRequests": 1})).unwrap();
    ok(&gateway.chat(&quota, MODEL_NAME, "one").await.unwrap());
    let spent = costs(&market).await;
    assert_eq!(spent.1, U256::from(1));
    refused(&gateway.chat(&quota, MODEL_NAME, "two").await.unwrap(), 429, "insufficient_quota");

    // The rate limit: one request per minute.
    let (_, slow) = market.create_key(&json!({"name": "slow", "requestsPerMinute": 1})).unwrap();
    ok(&gateway.chat(&slow, MODEL_NAME, "one").await.unwrap());
    let spent = costs(&market).await;
    assert_eq!(spent.1, U256::from(2), "each key has its own session");
    let answer = gateway.chat(&slow, MODEL_NAME, "two").await.unwrap();
    refused(&answer, 429, "rate_limit_exceeded");
    let retry: u64 = answer.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(costs(&market).await, spent, "the refused requests cost nothing");

    // Revoking a key that has a session closes it.
    let session = key_sessions(&market, &quota_id)[0]["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(market.delete(&format!("/auth/keys/{quota_id}")).unwrap().status, 200);
    market.wait_closed(&session).unwrap();
    let usage = market.key(&quota_id).unwrap()["usage"].clone();
    assert_eq!(usage["requests"], 1, "{usage}");
}

// -------------------------------------------------------------------------------------------------
// 3. Restart
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_keys_usage_and_sessions_and_opens_nothing_twice() {
    let mut market = Market::start(&[PRICE], &[]).await.unwrap();
    let (id, secret) = market.create_key(&json!({"name": "durable", "maxRequests": 10})).unwrap();
    let gateway = market.gateway().unwrap();
    let first = gateway.chat(&secret, MODEL_NAME, "one").await.unwrap();
    ok(&first);
    // A chat named by `chat_id` is kept in the node's history (the admin API's /v1/chats).
    let chat = format!("0x{}", "ab".repeat(32));
    let body = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": "two"}]});
    ok(&gateway.post_with("/v1/chat/completions", &secret, &body, &[("chat_id", &chat)]).await.unwrap());
    let history = market
        .wait_until(|| {
            let answer = market.get(&format!("/v1/chats/{chat}"))?;
            (answer.status == 200).then(|| answer.json()).transpose()
        })
        .unwrap();
    assert_eq!(history["title"], "two");
    assert_eq!(history["isLocal"], false);
    assert_eq!(history["modelId"], format!("{:#x}", market.model_id));
    assert_eq!(history["messages"][0]["response"], e2e_tests::backend::reply("two"));
    let before = market
        .wait_until(|| {
            let key = market.key(&id)?;
            Ok((key["usage"]["requests"] == 2).then_some(key))
        })
        .unwrap();

    // An operator's restart (SIGTERM): the node writes its queued usage before it exits. (A crash can
    // lose the last quarter second of usage counts, never a key or a session: docs/gateway.md.)
    market.restart_consumer_gracefully().unwrap();
    let after = market.key(&id).unwrap();
    assert_eq!(after, before, "keys, usage and sessions are the same after the restart");
    let gateway = market.gateway().unwrap();
    let third = gateway.chat(&secret, MODEL_NAME, "three").await.unwrap();
    ok(&third);
    assert_eq!(third.session, first.session, "the key's session is reused, not opened again");
    assert_eq!(market.consumer_sessions().unwrap().len(), 1);
    market.wait_until(|| Ok((market.key(&id)?["usage"]["requests"] == 3).then_some(()))).unwrap();
}

// -------------------------------------------------------------------------------------------------
// 4. MOR over the whole life: open, renew, idle close
// -------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn mor_is_conserved_over_open_renewal_and_idle_close() {
    let market = Market::start(
        &[PRICE],
        &[
            ("GATEWAY_SESSION_DURATION", "300s".to_owned()),
            // A fresh session has about 300 s left: it is renewed after a few seconds.
            ("GATEWAY_SESSION_RENEW_BEFORE", "296s".to_owned()),
            ("GATEWAY_SESSION_IDLE_TIMEOUT", "3s".to_owned()),
            ("GATEWAY_SWEEP_INTERVAL", "200ms".to_owned()),
        ],
    )
    .await
    .unwrap();
    let d = market.chain.deployment.clone();
    let who = [market.consumer_address, market.providers[0].address, d.funding_account, d.diamond];
    let before = market.chain.mor_balances(&who).await.unwrap();
    let (id, secret) = market.create_key(&json!({"name": "life"})).unwrap();
    let gateway = market.gateway().unwrap();

    let first = gateway.chat(&secret, MODEL_NAME, "open").await.unwrap();
    ok(&first);
    let first = first.session.unwrap();
    // Renewal: requests keep coming until a new session answers them.
    let second = eventually(|| async {
        let answer = gateway.chat(&secret, MODEL_NAME, "more").await?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        Ok(answer.session.filter(|s| *s != first))
    })
    .await
    .unwrap();
    market.wait_closed(&first).unwrap();
    // Idle: no more requests, the second session is closed too.
    market.wait_closed(&second).unwrap();
    let sessions = market
        .wait_until(|| {
            let sessions = key_sessions(&market, &id);
            Ok(sessions.iter().all(|s| s["state"] == "closed").then_some(sessions))
        })
        .unwrap();
    let reasons: Vec<&str> = sessions.iter().filter_map(|s| s["closeReason"].as_str()).collect();
    assert_eq!(reasons[0], "renewed");
    assert_eq!(*reasons.last().unwrap(), "idle");

    let after = market.chain.mor_balances(&who).await.unwrap();
    let change = deltas(&before, &after);
    assert_eq!(change.iter().sum::<i128>(), 0, "MOR is conserved: {change:?}");
    let held: U256 = sessions.iter().map(|s| s["held"].as_str().unwrap().parse::<U256>().unwrap()).sum();
    let key = market.key(&id).unwrap();
    assert_eq!(key["usage"]["morUsed"], held.to_string(), "the key's MOR use is what its sessions hold");
    assert_eq!(change[0], -signed(held), "the consumer is out of what is on hold, nothing more");
    assert_eq!(change[3], signed(held), "the diamond holds it until the next UTC day");
    assert_eq!(change[1], -change[2], "the provider was paid by the funding account");
    assert!(change[1] > 0, "the provider earned: {change:?}");
    let on_hold = market.get("/blockchain/sessions/user/stakes-on-hold").unwrap().json().unwrap();
    assert_eq!(on_hold["locked"], held.to_string());
}
