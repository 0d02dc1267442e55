//! The provider role end to end: a real anvil with our contracts, a real SQLite store kept by a real
//! indexer, the stand-in streaming backend, the provider's MOR-RPC server on real TCP, and the protocol
//! library as a raw consumer. Approvals open sessions on chain, reports close them without dispute,
//! and every bad input is refused with a reason while the server stays up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use e2e_tests::backend::{self, Backend, Faults};
use e2e_tests::chain::{deltas, model_registration, signed as i, wallet, ChainFixture, MOR};
use e2e_tests::index::{catch_up, indexer, TempStore};
use futures::StreamExt;
use proxy_router::chain::allowance::Allowance;
use proxy_router::chain::bindings::{Marketplace, SessionRouter};
use proxy_router::chain::sender::{OpenSession, TxSender};
use proxy_router::chain::{Signer, WalletSlot, WalletSource};
use proxy_router::index::Indexer;
use proxy_router::protocol::messages::DONE_PLAINTEXT;
use proxy_router::protocol::signing::Signable;
use proxy_router::protocol::{
    method, unix_millis_now, MorRpcCodec, PingReq, PongRes, RpcMessage, RpcResponse, SessionPromptReq,
    SessionPromptRes, SessionReportReq, SessionReportRes, SessionReq, SessionRes,
};
use proxy_router::provider::backend::BackendTimeouts;
use proxy_router::provider::models::ConfigSource;
use proxy_router::provider::{Clock, Models, Provider, ProviderOptions, ProviderServer};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

const PROVIDER: u32 = 2;
const USER: u32 = 3;
const OTHER_PROVIDER: u32 = 4;
const PRICE: u64 = 10_000_000_000_000;
const MODEL_NAME: &str = "served-model-name";
const API_KEY: &str = "sk-provider-test";
const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// A chain with our provider's model and bid, the stand-in backend, a store with its indexer, and the
/// provider's MOR-RPC server.
struct Fixture {
    chain: ChainFixture,
    store: TempStore,
    indexer: Indexer,
    backend: Backend,
    provider: TxSender,
    user_sender: TxSender,
    user: PrivateKeySigner,
    model_id: B256,
    bid_id: B256,
    models: Models,
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl Fixture {
    async fn start(slots: u32) -> Self {
        let chain = ChainFixture::start().await.expect("anvil with the marketplace");
        let provider = chain.sender(PROVIDER).await.unwrap();
        let user_sender = chain.sender(USER).await.unwrap();
        let (model_id, bid_id) =
            chain.provider_with_bid(&provider, "model-a", U256::from(PRICE)).await.unwrap();
        let backend = Backend::start().await.unwrap();
        let models = Models::parse(
            &json!({"models": [{
                "modelId": format!("{model_id:#x}").to_uppercase().replace("0X", ""),
                "modelName": MODEL_NAME,
                "apiType": "openai",
                "apiUrl": backend.chat_url(),
                "apiKey": API_KEY,
                "concurrentSlots": slots,
                "capacityPolicy": "simple",
            }]})
            .to_string(),
            ConfigSource::Content,
        )
        .unwrap();
        let store = TempStore::new().await.unwrap();
        let indexer = indexer(&chain, &store.store, 0, 1000).await.unwrap();
        let user = wallet(USER).unwrap().signer().clone();
        let cancel = CancellationToken::new();
        let mut fixture = Self {
            chain,
            store,
            indexer,
            backend,
            provider,
            user_sender,
            user,
            model_id,
            bid_id,
            models,
            addr: "127.0.0.1:0".parse().unwrap(),
            cancel,
        };
        fixture.addr = fixture.serve(Clock::system()).await;
        fixture
    }

    /// Starts a provider server on the same store, wallet and models with `clock`; returns its address.
    async fn serve(&self, clock: Clock) -> SocketAddr {
        let options = ProviderOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            chain_id: self.chain.config.chain_id,
            diamond: self.chain.deployment.diamond,
            max_prompt_bytes: MAX_PROMPT_BYTES,
            timestamp_window: Duration::from_secs(300),
            backend_timeouts: BackendTimeouts::for_llm_timeout(Duration::from_secs(30)),
            max_connections: 64,
            request_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            session_concurrency: 1,
            session_queue: 4,
            clock,
        };
        let wallet = WalletSlot::with(Signer::new(self.provider.clone(), WalletSource::Config));
        let provider = Provider::new(
            options,
            self.store.store.clone(),
            self.chain.rpc().await.unwrap(),
            wallet,
            self.models.clone(),
        )
        .unwrap();
        let server = ProviderServer::bind(provider).await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.run(self.cancel.clone()));
        addr
    }

    fn provider_address(&self) -> Address {
        self.provider.address()
    }

    async fn sync(&mut self) {
        catch_up(&mut self.indexer).await.unwrap();
    }

    /// `session.request` for `bid_id` as the user.
    async fn handshake(&self, bid_id: B256) -> Vec<RpcResponse> {
        let request =
            SessionReq::build(&self.user, self.user.address(), U256::from(MOR), bid_id, unix_millis_now())
                .unwrap();
        exchange(self.addr, frame(method::SESSION_REQUEST, &request)).await
    }

    /// Opens a session on chain with the provider's approval; returns the session id.
    async fn open(&self, approval: &SessionRes) -> B256 {
        let stake = self.chain.session_stake(U256::from(PRICE), 3600).await.unwrap();
        self.chain.give_mor(self.user.address(), stake).await.unwrap();
        let open = OpenSession {
            user: self.user.address(),
            amount: stake,
            direct_payment: false,
            approval: approval.approval.clone(),
            approval_signature: approval.approval_sig.clone(),
        };
        let allowance = Allowance::new(self.user_sender.clone());
        let (session_id, _) = allowance.spend(stake, || self.user_sender.open_session(&open)).await.unwrap();
        session_id
    }

    /// Handshake and open: a new session on our bid.
    async fn new_session(&self) -> B256 {
        let approval: SessionRes = single(self.handshake(self.bid_id).await).parse_result().unwrap();
        self.open(&approval).await
    }

    /// A signed prompt for `session` carrying `body`.
    fn prompt(&self, session: B256, body: &Value) -> SessionPromptReq {
        SessionPromptReq::build(&self.user, session, body.to_string(), unix_millis_now()).unwrap()
    }

    /// Sends a prompt; returns the raw responses.
    async fn send_prompt(&self, prompt: &SessionPromptReq) -> Vec<RpcResponse> {
        exchange(self.addr, frame(method::SESSION_PROMPT, prompt)).await
    }

    /// Verifies and decrypts every response as a prompt result signed by our provider.
    fn open_chunks(&self, responses: &[RpcResponse]) -> Vec<Vec<u8>> {
        responses
            .iter()
            .map(|response| {
                let chunk: SessionPromptRes = response.parse_result().unwrap();
                chunk.verify_signer(self.provider_address()).unwrap();
                chunk.decrypt(&self.user).unwrap()
            })
            .collect()
    }

    /// The provider's signed report for `session`.
    async fn report(&self, session: B256) -> SessionReportRes {
        let request = SessionReportReq::build(&self.user, session, unix_millis_now()).unwrap();
        let report: SessionReportRes =
            single(exchange(self.addr, frame(method::SESSION_REPORT, &request)).await)
                .parse_result()
                .unwrap();
        report.verify_signer(self.provider_address()).unwrap();
        report
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn frame<P: serde::Serialize>(method: &str, params: &P) -> Vec<u8> {
    RpcMessage::new("a1b2c3d4", method, params).unwrap().to_vec().unwrap()
}

/// Writes `request` on a new connection and reads every response frame until the provider closes.
async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Vec<RpcResponse> {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut frames = FramedRead::new(stream, MorRpcCodec::default());
        let mut responses = Vec::new();
        while let Some(frame) = frames.next().await {
            responses.push(RpcResponse::from_slice(&frame.unwrap()).unwrap());
        }
        responses
    })
    .await
    .expect("the provider answers and closes")
}

fn single(mut responses: Vec<RpcResponse>) -> RpcResponse {
    assert_eq!(responses.len(), 1, "{responses:?}");
    responses.remove(0)
}

/// The reason of a single unsigned error response.
fn refused(responses: Vec<RpcResponse>) -> String {
    let response = single(responses);
    assert!(response.result.is_none());
    let error = response.error.expect("an error");
    assert!(!error.is_signed(), "infrastructure errors are unsigned: {error:?}");
    assert_eq!(error.code, 400);
    error.message
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn chat(content: &str, stream: bool) -> Value {
    json!({"model": "client-choice", "stream": stream, "temperature": 0.2, "x_extra": {"keep": true},
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_serves_a_session_from_handshake_to_close() {
    let mut f = Fixture::start(0).await;
    let p = f.provider_address();
    let u = f.user.address();

    // Ping: the pong echoes the nonce and is signed by the provider.
    let ping = PingReq::random(&f.user).unwrap();
    let pong: PongRes = single(exchange(f.addr, frame(method::PING, &ping)).await).parse_result().unwrap();
    pong.verify(&ping, p).unwrap();
    assert!(pong.version.starts_with('v'));

    // Handshake before the indexer saw anything: the bid is read from the chain once.
    let approval: SessionRes = single(f.handshake(f.bid_id).await).parse_result().unwrap();
    assert_eq!(approval.verify().unwrap(), p);
    let decoded = approval.decode_approval().unwrap();
    decoded.check(f.bid_id, U256::from(f.chain.config.chain_id), u).unwrap();
    assert_eq!(approval.user, u);
    // The approval opens a session on chain (its signer is the bid's provider).
    let session = f.open(&approval).await;

    // A streamed prompt before the indexer saw the session (one chain read).
    let question = "how many roads must a man walk down";
    let prompt = f.prompt(session, &chat(question, true));
    let chunks = f.open_chunks(&f.send_prompt(&prompt).await);
    let expected = backend::reply_chunks(question);
    // One frame per backend chunk, the usage chunk, then "[DONE]".
    assert_eq!(chunks.len(), expected.len() + 2, "{chunks:?}");
    assert_eq!(chunks.last().unwrap().as_slice(), DONE_PLAINTEXT);
    let parsed: Vec<Value> = chunks[..chunks.len() - 1].iter().map(|c| json_of(c)).collect();
    let text: String = parsed.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, backend::reply(question));
    assert!(parsed.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert!(
        parsed[..expected.len()].iter().all(|c| c["model"] == MODEL_NAME),
        "the backend answered as our model"
    );
    let words = question.split_whitespace().count();
    let finish = &parsed[expected.len() - 1];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(finish["usage_from_provider"].is_object(), "the finishing chunk carries the provider's count");
    let usage = parsed.last().unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], expected.len());
    assert_eq!(
        usage["usage_from_provider"],
        json!({"prompt_tokens": words, "completion_tokens": expected.len(), "total_tokens": words + expected.len()})
    );
    assert!(parsed[0].get("usage_from_provider").is_none(), "other chunks are forwarded as received");

    // What the backend saw: our model name, the key, the client's other fields.
    let seen = f.backend.seen();
    assert_eq!(seen.requests[0]["model"], MODEL_NAME);
    assert_eq!(seen.requests[0]["x_extra"], json!({"keep": true}));
    assert_eq!(seen.requests[0]["temperature"], 0.2);
    assert_eq!(seen.authorizations[0].as_deref(), Some(format!("Bearer {API_KEY}").as_str()));

    // Non-streaming: one frame with the whole completion.
    f.sync().await;
    let question2 = "what is the answer";
    let chunks = f.open_chunks(&f.send_prompt(&f.prompt(session, &chat(question2, false))).await);
    assert_eq!(chunks.len(), 1);
    let completion = json_of(&chunks[0]);
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["choices"][0]["message"]["content"], backend::reply(question2));
    let tokens2 = backend::reply_chunks(question2).len();
    assert_eq!(completion["usage_from_provider"]["completion_tokens"], tokens2);

    // Embeddings: `type` selects the endpoint and is not forwarded.
    let embed = json!({"type": "embeddings", "model": "x", "input": "hello embedding world"});
    let chunks = f.open_chunks(&f.send_prompt(&f.prompt(session, &embed)).await);
    assert_eq!(chunks.len(), 1);
    let embedding = json_of(&chunks[0]);
    assert_eq!(embedding["object"], "list");
    assert_eq!(embedding["model"], MODEL_NAME);
    // Compared as the JSON text the backend wrote (re-parsing floats is not exact in serde_json).
    let sent: Value =
        serde_json::from_str(&serde_json::to_string(&backend::embedding("hello embedding world")).unwrap())
            .unwrap();
    assert_eq!(embedding["data"][0]["embedding"], sent);
    let seen = f.backend.seen();
    assert!(seen.requests[2].get("type").is_none());
    assert_eq!(seen.requests[2]["input"], "hello embedding world");

    // The statistics are durable: a reopened store has them.
    let stats = f.store.reopen().await.unwrap().provider_sessions().get(session).await.unwrap().unwrap();
    assert_eq!((stats.prompts, stats.failed_prompts), (3, 0));
    let input = (words + question2.split_whitespace().count() + 3) as u64;
    let output = (expected.len() + tokens2) as u64;
    assert_eq!((stats.input_tokens, stats.output_tokens), (input, output));

    // The report: signed by the provider, from those statistics.
    let report = f.report(session).await;
    assert_eq!(report.report_signer().unwrap(), p);
    let decoded = report.decode_report().unwrap();
    decoded.check(session, U256::from(f.chain.config.chain_id)).unwrap();
    let tokens = decoded.tokens.unwrap();
    assert_eq!((u64::from(tokens.input), u64::from(tokens.output)), (input, output));
    assert_eq!(u64::from(decoded.ttft_ms), stats.avg_ttft_ms());
    assert_eq!(u64::from(decoded.tps_scaled1000), stats.avg_tps_scaled1000());

    // closeSession accepts it without dispute; the money moves as the contract's formulas say.
    let d = f.chain.deployment.clone();
    let sessions = SessionRouter::new(d.diamond, f.chain.provider().unwrap());
    let who = [u, p, d.funding_account, d.diamond];
    let before = f.chain.mor_balances(&who).await.unwrap();
    f.user_sender.close_session(report.message.clone(), report.signed_report.clone()).await.unwrap();
    let after = f.chain.mor_balances(&who).await.unwrap();
    let record = sessions.getSession(session).call().await.unwrap();
    assert_eq!(record.closeoutType, U256::ZERO, "provider-signed receipt: no dispute");
    assert_eq!(record.closeoutReceipt, report.message);
    let earned = U256::from(record.closedAt - record.openedAt) * U256::from(PRICE);
    let lock = sessions.getUserStakesOnHold(u, 10).call().await.unwrap().hold_;
    let returned = record.stake - lock;
    assert_eq!(deltas(&before, &after), [i(returned), i(earned), -i(earned), -i(returned)]);
    let on_chain = sessions.getProviderModelStats(f.model_id, p).call().await.unwrap();
    assert_eq!((on_chain.totalCount, on_chain.successCount), (1, 1));
    assert_eq!(on_chain.ttftMs.mean, i64::from(decoded.ttft_ms));
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_refuses_bad_input_with_reasons_and_stays_up() {
    let mut f = Fixture::start(2).await;
    let p = f.provider_address();
    let u = f.user.address();
    let session = f.new_session().await;
    f.sync().await;
    let good = |f: &Fixture, text: &str| f.prompt(session, &chat(text, true));

    // --- handshake refusals ---
    // A key that is not the claimed user's.
    let stranger = PrivateKeySigner::random();
    let request = SessionReq::build(&stranger, u, U256::from(MOR), f.bid_id, unix_millis_now()).unwrap();
    let reason = refused(exchange(f.addr, frame(method::SESSION_REQUEST, &request)).await);
    assert!(reason.contains(&format!("not to the user {u}")), "{reason}");
    // An unknown bid.
    let reason = refused(f.handshake(B256::repeat_byte(0x42)).await);
    assert_eq!(reason, format!("bid {:#x} not found", B256::repeat_byte(0x42)));
    // Another provider's bid.
    let other = f.chain.sender(OTHER_PROVIDER).await.unwrap();
    let (_, other_bid) = f.chain.provider_with_bid(&other, "model-b", U256::from(PRICE)).await.unwrap();
    let reason = refused(f.handshake(other_bid).await);
    assert!(reason.contains(&format!("belongs to provider {}", other.address())), "{reason}");
    // Our bid on a model this node does not serve.
    let registration = model_registration(p, "model-unserved", U256::from(MOR / 10));
    let allowance = Allowance::new(f.provider.clone());
    let (unserved, _) =
        allowance.spend(registration.stake, || f.provider.model_register(&registration)).await.unwrap();
    let fee = Marketplace::new(f.chain.deployment.diamond, f.chain.provider().unwrap())
        .getBidFee()
        .call()
        .await
        .unwrap();
    let (unserved_bid, _) =
        allowance.spend(fee, || f.provider.post_model_bid(p, unserved, U256::from(PRICE))).await.unwrap();
    let reason = refused(f.handshake(unserved_bid).await);
    assert_eq!(reason, format!("model {unserved:#x} is not served by this provider"));
    // A deleted bid.
    f.provider.delete_model_bid(unserved_bid).await.unwrap();
    f.sync().await;
    let reason = refused(f.handshake(unserved_bid).await);
    assert_eq!(reason, format!("bid {unserved_bid:#x} is not active"));

    // --- capacity: 2 slots, simple policy ---
    let second = f.new_session().await;
    f.sync().await;
    let reason = refused(f.handshake(f.bid_id).await);
    assert!(reason.starts_with("no capacity"), "{reason}");
    assert!(reason.contains("2 of 2 slots"), "{reason}");

    // --- a closed session: close the second one with its report, then prompt it ---
    let report = f.report(second).await;
    f.user_sender.close_session(report.message, report.signed_report).await.unwrap();
    f.sync().await;
    let reason = refused(f.send_prompt(&f.prompt(second, &chat("hello", true))).await);
    assert_eq!(reason, format!("session {second:#x} is closed"));
    // A slot is free again.
    let approval: SessionRes = single(f.handshake(f.bid_id).await).parse_result().unwrap();
    assert_eq!(approval.verify().unwrap(), p);

    // --- prompt refusals ---
    let prompts_before =
        f.store.store.provider_sessions().get(session).await.unwrap().map_or(0, |s| s.prompts);

    // Forged: signed by another key.
    let forged =
        SessionPromptReq::build(&stranger, session, chat("hi", true).to_string(), unix_millis_now()).unwrap();
    let reason = refused(f.send_prompt(&forged).await);
    assert!(reason.starts_with("invalid signature"), "{reason}");
    // Tampered after signing.
    let mut tampered = good(&f, "hi");
    tampered.message = chat("something else", true).to_string();
    let reason = refused(f.send_prompt(&tampered).await);
    assert!(reason.starts_with("invalid signature"), "{reason}");

    // Another provider's session.
    let (other_approval, other_signature) =
        f.chain.signed_approval(&wallet(OTHER_PROVIDER).unwrap(), other_bid, u).await.unwrap();
    let stake = f.chain.session_stake(U256::from(PRICE), 3600).await.unwrap();
    f.chain.give_mor(u, stake).await.unwrap();
    let open = OpenSession {
        user: u,
        amount: stake,
        direct_payment: false,
        approval: other_approval,
        approval_signature: other_signature,
    };
    let (others, _) = Allowance::new(f.user_sender.clone())
        .spend(stake, || f.user_sender.open_session(&open))
        .await
        .unwrap();
    f.sync().await;
    let reason = refused(f.send_prompt(&f.prompt(others, &chat("hi", true))).await);
    assert_eq!(
        reason,
        format!("session {others:#x} belongs to provider {}, not to this provider {p}", other.address())
    );
    // A session that does not exist.
    let reason = refused(f.send_prompt(&f.prompt(B256::repeat_byte(7), &chat("hi", true))).await);
    assert_eq!(reason, format!("session {:#x} not found", B256::repeat_byte(7)));

    // Replayed: the same signed prompt twice.
    let once = good(&f, "only once");
    let first = f.open_chunks(&f.send_prompt(&once).await);
    assert_eq!(first.last().unwrap().as_slice(), DONE_PLAINTEXT);
    let reason = refused(f.send_prompt(&once).await);
    assert_eq!(reason, "request refused: replayed message: this signature was already accepted");

    // Stale and future timestamps.
    let stale =
        SessionPromptReq::build(&f.user, session, chat("old", true).to_string(), unix_millis_now() - 600_000)
            .unwrap();
    let reason = refused(f.send_prompt(&stale).await);
    assert!(reason.starts_with("request refused: stale timestamp"), "{reason}");
    let future =
        SessionPromptReq::build(&f.user, session, chat("new", true).to_string(), unix_millis_now() + 600_000)
            .unwrap();
    let reason = refused(f.send_prompt(&future).await);
    assert!(reason.starts_with("request refused: future timestamp"), "{reason}");

    // Oversized: the frame is refused at the limit, without reading the rest.
    let big = good(&f, &"word ".repeat(MAX_PROMPT_BYTES / 4));
    let reason = refused(f.send_prompt(&big).await);
    assert_eq!(reason, format!("request exceeds PROXY_MAX_PROMPT_BYTES ({MAX_PROMPT_BYTES} bytes)"));

    // Malformed frames.
    let reason = refused(
        exchange(f.addr, br#"{"id":"9","method":"session.prompt","params":{"sessionid":42}}"#.to_vec()).await,
    );
    assert!(reason.starts_with("failed to unmarshal request"), "{reason}");
    assert!(reason.contains("sessionid"), "{reason}");
    let reason = refused(exchange(f.addr, b"[1,2,3]".to_vec()).await);
    assert!(reason.starts_with("failed to unmarshal request: malformed MOR-RPC frame"), "{reason}");
    let reason =
        refused(exchange(f.addr, br#"{"id":"9","method":"session.dance","params":{}}"#.to_vec()).await);
    assert_eq!(reason, "unknown method: session.dance");
    let truncated = {
        let mut stream = tokio::net::TcpStream::connect(f.addr).await.unwrap();
        stream.write_all(br#"{"id":"9","method":"#).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut frames = FramedRead::new(stream, MorRpcCodec::default());
        let mut responses = Vec::new();
        while let Some(frame) = frames.next().await {
            responses.push(RpcResponse::from_slice(&frame.unwrap()).unwrap());
        }
        responses
    };
    assert!(refused(truncated).contains("closed inside a frame"));

    // An unsupported request type.
    let reason =
        refused(f.send_prompt(&f.prompt(session, &json!({"type": "audio_speech", "input": "x"}))).await);
    assert_eq!(reason, "invalid prompt: request type \"audio_speech\" is not supported by this build");

    // Nothing of the above reached the backend or the statistics (except the one answered prompt).
    let stats = f.store.store.provider_sessions().get(session).await.unwrap().unwrap();
    assert_eq!((stats.prompts, stats.failed_prompts), (prompts_before + 1, 0));

    // The backend fails with a status: a signed, encrypted model error with the status and body.
    f.backend.control(Faults { error_status: Some(503), ..Faults::default() });
    let response = single(f.send_prompt(&good(&f, "fail please")).await);
    let error = response.error.expect("an error");
    assert!(error.is_signed());
    error.verify_signer(p).unwrap();
    let plaintext = json_of(&error.decrypt(&f.user).unwrap());
    assert_eq!(
        plaintext,
        json!({"providerModelError": {"error": {"message": "demo backend error 503", "type": "server_error"}}, "upstreamStatus": 503})
    );

    // The backend dies mid-stream: the chunks sent so far, then an unsigned error with the reason.
    f.backend.control(Faults {
        drop_after_chunks: Some(3),
        chunk_delay: Duration::from_millis(20),
        ..Faults::default()
    });
    let responses = f.send_prompt(&good(&f, "break in the middle")).await;
    assert_eq!(responses.len(), 4, "{responses:?}");
    let chunks = f.open_chunks(&responses[..3]);
    assert_eq!(json_of(&chunks[0])["choices"][0]["delta"]["content"], "This");
    let reason = refused(responses[3..].to_vec());
    assert!(reason.starts_with("model backend failed: model backend answer broke off"), "{reason}");

    f.backend.control(Faults::default());
    let stats = f.store.store.provider_sessions().get(session).await.unwrap().unwrap();
    assert_eq!(stats.failed_prompts, 2);

    // An expired session: a provider whose clock is past the session's end refuses it.
    let record = SessionRouter::new(f.chain.deployment.diamond, f.chain.provider().unwrap())
        .getSession(session)
        .call()
        .await
        .unwrap();
    let ahead_ms = (u64::try_from(record.endsAt).unwrap() * 1000).saturating_sub(unix_millis_now()) + 60_000;
    let late = f.serve(Clock::with_offset_ms(i64::try_from(ahead_ms).unwrap())).await;
    let prompt = SessionPromptReq::build(
        &f.user,
        session,
        chat("too late", true).to_string(),
        unix_millis_now() + ahead_ms,
    )
    .unwrap();
    let reason = refused(exchange(late, frame(method::SESSION_PROMPT, &prompt)).await);
    assert!(
        reason.starts_with(&format!("session expired: {session:#x} ended at {}", record.endsAt)),
        "{reason}"
    );

    // The server is still up and serves a good prompt.
    let chunks = f.open_chunks(&f.send_prompt(&good(&f, "still there")).await);
    assert_eq!(chunks.last().unwrap().as_slice(), DONE_PLAINTEXT);
}

/// `proxy-router run` as a process: a bad models config stops start-up naming the entry; with a
/// wallet the node prints and serves its MOR-RPC address; without one it serves none.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_validates_models_at_start_and_serves_mor_rpc_with_a_wallet() {
    use e2e_tests::router::{command, router_env, RouterProcess};

    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let dir = tempfile::tempdir().unwrap();
    let provider = wallet(PROVIDER).unwrap();
    let key = alloy::hex::encode(provider.signer().to_bytes());
    let model = format!("0x{}", "ab".repeat(32));
    let entry = |api_type: &str| {
        json!({"models": [{"modelId": model, "modelName": "m", "apiType": api_type, "apiUrl": "http://127.0.0.1:9/v1/chat/completions"}]})
            .to_string()
    };

    // A model of an apiType this build does not implement: start-up stops and names the entry.
    let vars = router_env(
        &chain,
        dir.path(),
        &[("MODELS_CONFIG_CONTENT", entry("claudeai")), ("WALLET_PRIVATE_KEY", key.clone())],
    );
    let child = command(&vars, dir.path())
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the node exits")
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "MODELS_CONFIG_CONTENT: models[0] (modelId {model}): apiType \"claudeai\" is not supported by this build"
        )),
        "{stderr}"
    );

    // With a wallet and valid models: the MOR-RPC server answers a ping signed by the wallet.
    let vars = router_env(
        &chain,
        dir.path(),
        &[("MODELS_CONFIG_CONTENT", entry("openai")), ("WALLET_PRIVATE_KEY", key)],
    );
    let node = RouterProcess::start(&vars, dir.path()).unwrap();
    let proxy = node.proxy.expect("the MOR-RPC address is printed");
    let user = wallet(USER).unwrap().signer().clone();
    let ping = PingReq::random(&user).unwrap();
    let pong: PongRes = single(exchange(proxy, frame(method::PING, &ping)).await).parse_result().unwrap();
    pong.verify(&ping, provider.address()).unwrap();
    drop(node);

    // Without a wallet there is no provider server.
    let other = tempfile::tempdir().unwrap();
    let node = RouterProcess::start(&router_env(&chain, other.path(), &[]), other.path()).unwrap();
    assert_eq!(node.proxy, None);
}
