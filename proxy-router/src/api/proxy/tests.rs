//! The OpenAI routes through the whole router against a scripted MOR-RPC provider on a real socket:
//! the session records are in a real store, so no chain is needed (the prompt path makes no RPC call).

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use axum::http::Method;
use secrecy::SecretString;

use super::*;
use crate::api::test_support::{call, fixture, request, send, ADMIN};
use crate::chain::{Rpc, Signer, TxSender, Wallet, WalletSlot, WalletSource};
use crate::config::WalletKey;
use crate::consumer::test_support::{
    chunk, honest, ok, provider_key, serve, stranger_key, user_key, Script, CHAIN_ID,
};
use crate::consumer::{Consumer, ConsumerSettings};
use crate::protocol::signing::uncompressed_public_key;
use crate::protocol::{unix_millis_now, RpcError, RpcMessage, RpcResponse};
use crate::store::{ConsumerSession, SessionStats, Store};

const USER_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/// A state whose consumer signs as [`user_key`] over a chain nobody answers.
async fn state_with_consumer(store: &Store, base: ApiState) -> ApiState {
    let config = crate::api::test_support::config(std::path::Path::new("unused"));
    let rpc = Rpc::connect(&config.chain).await.unwrap();
    let wallet = Wallet::from_key(&WalletKey::PrivateKey(SecretString::from(USER_KEY.to_owned()))).unwrap();
    let slot = WalletSlot::with(Signer::new(
        TxSender::new(rpc.clone(), wallet, &config.chain),
        WalletSource::Config,
    ));
    let settings = ConsumerSettings {
        chain_id: CHAIN_ID,
        diamond: config.chain.diamond,
        mor_token: config.chain.mor_token,
        response_timeout: Duration::from_secs(2),
        sweep_interval: Duration::from_secs(60),
        rating: Default::default(),
    };
    base.with_wallet(slot.clone()).with_consumer(Consumer::new(store.clone(), rpc, slot, settings))
}

fn record(id: B256, user: Address, endpoint: &str, ends_in: i64) -> ConsumerSession {
    let now = crate::consumer::unix_now();
    ConsumerSession {
        session_id: id,
        user,
        provider: provider_key().address(),
        bid_id: B256::repeat_byte(0xb1),
        model_id: B256::repeat_byte(0xa1),
        endpoint: endpoint.to_owned(),
        provider_public_key: Some(uncompressed_public_key(&provider_key())),
        stake: U256::from(1u8),
        direct_payment: false,
        failover: false,
        opened_at: now - 10,
        ends_at: now.saturating_add_signed(ends_in),
        closed_at: 0,
        close_tx: None,
        closeout_type: None,
        replaced_by: None,
        stats: SessionStats::default(),
        created_at: now,
    }
}

fn chat_request(session: Option<B256>, body: &str, request_id: Option<&str>) -> axum::http::Request<Body> {
    let mut request = request(Method::POST, "/v1/chat/completions", Some(ADMIN), Some(body));
    if let Some(session) = session {
        request.headers_mut().insert("session_id", HeaderValue::from_str(&format!("{session:#x}")).unwrap());
    }
    if let Some(id) = request_id {
        request.headers_mut().insert("x-request-id", HeaderValue::from_str(id).unwrap());
    }
    request
}

const CHUNK_1: &str = r#"{"choices":[{"delta":{"content":"Hel","role":"assistant"},"finish_reason":null,"index":0}],"id":"c1","object":"chat.completion.chunk"}"#;
const CHUNK_2: &str = r#"{"choices":[{"delta":{"content":"lo","tool_calls":[{"id":"t","type":"function"}]},"finish_reason":"stop","index":0}],"id":"c1","object":"chat.completion.chunk"}"#;
const USAGE: &str = r#"{"choices":[],"id":"c1","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}}"#;

#[tokio::test]
async fn requests_are_checked_before_anything_is_sent() {
    let f = fixture().await;
    // No consumer: a clear 503 once the request itself is valid.
    let answer =
        send(crate::api::router(f.state.clone()), chat_request(Some(B256::ZERO), "{}", Some("abc"))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    assert_eq!(answer.error().code, "no_consumer");
    assert_eq!(answer.headers["x-request-id"], "abc");

    let state = state_with_consumer(&f.store, f.state.clone()).await;
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(B256::ZERO), "{\"messages\": [", None))
            .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.error().error.starts_with("invalid JSON body"), "{}", answer.body);
    let generated = answer.headers["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 8);
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));

    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(B256::ZERO), "[1, 2]", None)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error().error, "the request body must be a JSON object");

    let answer = send(crate::api::router(state.clone()), chat_request(None, "{}", None)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error().field.as_deref(), Some("session_id"));

    let mut bad = chat_request(None, "{}", None);
    bad.headers_mut().insert("session_id", HeaderValue::from_static("0x1234"));
    let answer = send(crate::api::router(state.clone()), bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error().field.as_deref(), Some("session_id"));

    // Oversized bodies stop at the body limit.
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let answer = send(crate::api::router(state), chat_request(Some(B256::ZERO), &huge, None)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn sessions_that_cannot_answer_are_refused_with_a_reason() {
    let f = fixture().await;
    let state = state_with_consumer(&f.store, f.state.clone()).await;
    let repo = f.store.consumer_sessions();
    let me = user_key().address();

    let theirs = B256::repeat_byte(1);
    repo.upsert(&record(theirs, stranger_key().address(), "127.0.0.1:1", 600)).await.unwrap();
    let answer = send(crate::api::router(state.clone()), chat_request(Some(theirs), "{}", None)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(answer.error().code, "not_session_user");

    let expired = B256::repeat_byte(2);
    repo.upsert(&record(expired, me, "127.0.0.1:1", -5)).await.unwrap();
    let answer = send(crate::api::router(state.clone()), chat_request(Some(expired), "{}", None)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.error().code, "session_expired");

    let closed = B256::repeat_byte(3);
    repo.upsert(&record(closed, me, "127.0.0.1:1", 600)).await.unwrap();
    repo.mark_closed(closed, 1, None, Some(0)).await.unwrap();
    let answer = send(crate::api::router(state.clone()), chat_request(Some(closed), "{}", None)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.error().code, "session_closed");

    // A failed-over session forwards to its successor (here closed too, named in the error).
    let replaced = B256::repeat_byte(4);
    repo.upsert(&record(replaced, me, "127.0.0.1:1", 600)).await.unwrap();
    repo.set_replaced_by(replaced, closed).await.unwrap();
    let answer = send(crate::api::router(state.clone()), chat_request(Some(replaced), "{}", None)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(answer.error().error.contains(&format!("{closed}")), "{}", answer.body);

    // The provider is down and the session has no failover: 502 with the reason, counted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = listener.local_addr().unwrap().to_string();
    drop(listener);
    let open = B256::repeat_byte(5);
    repo.upsert(&record(open, me, &down, 600)).await.unwrap();
    let answer = send(crate::api::router(state.clone()), chat_request(Some(open), "{}", None)).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert_eq!(answer.error().code, "provider_unreachable");
    assert_eq!(repo.get(open).await.unwrap().unwrap().stats.failures, 1);
}

#[tokio::test]
async fn chat_streams_through_and_keeps_upstream_fields() {
    let f = fixture().await;
    let state = state_with_consumer(&f.store, f.state.clone()).await;
    let endpoint = serve(honest(provider_key(), vec![CHUNK_1, CHUNK_2, USAGE])).await;
    let session = B256::repeat_byte(9);
    f.store.consumer_sessions().upsert(&record(session, user_key().address(), &endpoint, 600)).await.unwrap();

    let body =
        r#"{"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}],"custom_field":{"k":1}}"#;
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(session), body, Some("req-7"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.content_type(), "text/event-stream");
    assert_eq!(answer.headers["x-request-id"], "req-7");
    assert_eq!(answer.headers["x-session-id"], format!("{session:#x}"));
    assert_eq!(
        answer.body,
        format!("data: {CHUNK_1}\n\ndata: {CHUNK_2}\n\ndata: {USAGE}\n\ndata: [DONE]\n\n")
    );

    // Non-streamed: the provider's JSON as is.
    let full = r#"{"choices":[{"finish_reason":"tool_calls","index":0,"message":{"content":null,"tool_calls":[{"function":{"arguments":"{}","name":"f"},"id":"t","type":"function"}]}}],"object":"chat.completion","usage":{"completion_tokens":4,"prompt_tokens":6}}"#;
    let endpoint = serve(honest(provider_key(), vec![full])).await;
    let plain = B256::repeat_byte(10);
    f.store.consumer_sessions().upsert(&record(plain, user_key().address(), &endpoint, 600)).await.unwrap();
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(plain), r#"{"messages":[]}"#, None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/json");
    assert_eq!(answer.body, full);

    let stats = f.store.consumer_sessions().get(session).await.unwrap().unwrap().stats;
    assert_eq!((stats.prompts, stats.input_tokens, stats.output_tokens, stats.failures), (1, 3, 2, 0));
    let stats = f.store.consumer_sessions().get(plain).await.unwrap().unwrap().stats;
    assert_eq!((stats.prompts, stats.input_tokens, stats.output_tokens), (1, 6, 4));
}

#[tokio::test]
async fn the_prompt_reaches_the_provider_with_sorted_keys_and_embeddings_marked() {
    let f = fixture().await;
    let state = state_with_consumer(&f.store, f.state.clone()).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let provider = provider_key();
    let script: Script = Arc::new(move |request: &RpcMessage| {
        let params: crate::protocol::SessionPromptReq = request.params().unwrap();
        log.lock().unwrap().push(params.message.clone());
        vec![ok(&request.id, &chunk(&provider, br#"{"object":"list","data":[]}"#))]
    });
    let endpoint = serve(script).await;
    let session = B256::repeat_byte(11);
    f.store.consumer_sessions().upsert(&record(session, user_key().address(), &endpoint, 600)).await.unwrap();
    let mut embeddings =
        request(Method::POST, "/v1/embeddings", Some(ADMIN), Some(r#"{"input":"a","model":"m","z":1}"#));
    embeddings.headers_mut().insert("session_id", HeaderValue::from_str(&format!("{session:#x}")).unwrap());
    let answer = send(crate::api::router(state), embeddings).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, r#"{"object":"list","data":[]}"#);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![r#"{"input":"a","model":"m","type":"embeddings","z":1}"#.to_owned()]
    );
}

#[tokio::test]
async fn provider_errors_before_and_after_the_first_chunk() {
    let f = fixture().await;
    let state = state_with_consumer(&f.store, f.state.clone()).await;
    let me = user_key().address();

    // The model's own error: the reference's 400 {"providerModelError": …}.
    let provider = provider_key();
    let model_error: Script = Arc::new(move |request: &RpcMessage| {
        let plaintext = br#"{"providerModelError":{"error":{"message":"context too long","type":"invalid_request_error"}}}"#;
        let error = RpcError::model_error(
            &provider,
            &uncompressed_public_key(&user_key()),
            plaintext,
            unix_millis_now(),
        )
        .unwrap();
        vec![RpcResponse::error(&request.id, error).to_vec().unwrap()]
    });
    let endpoint = serve(model_error).await;
    let session = B256::repeat_byte(12);
    f.store.consumer_sessions().upsert(&record(session, me, &endpoint, 600)).await.unwrap();
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(session), r#"{"stream":true}"#, None))
            .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(
        answer.json(),
        serde_json::json!({"providerModelError": {"error": {"message": "context too long", "type": "invalid_request_error"}}})
    );

    // The provider dies after one chunk: a terminal SSE error event, no [DONE].
    let provider = provider_key();
    let dies: Script =
        Arc::new(move |request: &RpcMessage| vec![ok(&request.id, &chunk(&provider, CHUNK_1.as_bytes()))]);
    let endpoint = serve(dies).await;
    let session = B256::repeat_byte(13);
    f.store.consumer_sessions().upsert(&record(session, me, &endpoint, 600)).await.unwrap();
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(session), r#"{"stream":true}"#, None))
            .await;
    assert_eq!(answer.status, StatusCode::OK);
    let events: Vec<&str> = answer.body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{}", answer.body);
    assert_eq!(events[0], format!("data: {CHUNK_1}"));
    let error: serde_json::Value = serde_json::from_str(events[1].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "provider_interrupted");
    assert!(error["error"]["message"].as_str().unwrap().contains("before [DONE]"), "{error}");
    assert_eq!(f.store.consumer_sessions().get(session).await.unwrap().unwrap().stats.failures, 1);

    // A forged second frame: the stream ends with an error and the forged chunk never reaches the client.
    let provider = provider_key();
    let stranger = stranger_key();
    let forged: Script = Arc::new(move |request: &RpcMessage| {
        vec![
            ok(&request.id, &chunk(&provider, CHUNK_1.as_bytes())),
            ok(&request.id, &chunk(&stranger, br#"{"injected":true}"#)),
        ]
    });
    let endpoint = serve(forged).await;
    let session = B256::repeat_byte(14);
    f.store.consumer_sessions().upsert(&record(session, me, &endpoint, 600)).await.unwrap();
    let answer =
        send(crate::api::router(state.clone()), chat_request(Some(session), r#"{"stream":true}"#, None))
            .await;
    assert!(!answer.body.contains("injected"), "{}", answer.body);
    assert!(answer.body.contains("frame signature"), "{}", answer.body);

    // The router is still up.
    let health = call(&state, Method::GET, "/healthcheck", None).await;
    assert_ne!(health.status, StatusCode::INTERNAL_SERVER_ERROR);
}
