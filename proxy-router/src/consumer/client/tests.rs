//! The client against a scripted provider on a real TCP socket: each test's provider answers with
//! messages built by `protocol`, honest or tampered.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use tokio::net::TcpListener;

use super::*;
use crate::consumer::test_support::*;
use crate::protocol::signing::uncompressed_public_key;
use crate::protocol::{Request, RpcError};

fn client() -> ProviderClient {
    ProviderClient::new(Duration::from_secs(2))
}

#[tokio::test]
async fn ping_verifies_the_provider_and_recovers_its_key() {
    let provider = provider_key();
    let endpoint = serve(honest(provider.clone(), vec![])).await;
    let pong = client().ping(&endpoint, provider.address(), &user_key()).await.unwrap();
    assert_eq!(pong.version, "v-test");
    assert_eq!(pong.key, key_of(&provider));

    // The same pong claimed for another address is refused.
    let err = client().ping(&endpoint, stranger_key().address(), &user_key()).await.unwrap_err();
    assert!(matches!(err, ConsumerError::InvalidAnswer { .. }), "{err}");
    assert!(err.to_string().contains("signed by"), "{err}");
}

#[tokio::test]
async fn handshake_is_verified_and_bound_to_the_provider_address() {
    let provider = provider_key();
    let user = user_key();
    let bid = B256::repeat_byte(0x42);
    let endpoint = serve(honest(provider.clone(), vec![])).await;
    let spend = U256::from(1_000u64);
    let handshake = client()
        .initiate(&endpoint, provider.address(), &user, user.address(), spend, bid, CHAIN_ID)
        .await
        .unwrap();
    assert_eq!(handshake.approval.bid_id, bid);
    assert_eq!(handshake.approval.user, user.address());
    assert_eq!(handshake.key, key_of(&provider));

    // A well-signed answer from a key that is not the bid's provider: the reference accepts it; we
    // do not.
    let impostor = serve(honest(stranger_key(), vec![])).await;
    let err = client()
        .initiate(&impostor, provider.address(), &user, user.address(), spend, bid, CHAIN_ID)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not to the provider"), "{err}");
    assert!(err.is_provider_failure());

    // An approval for another chain.
    let err = client()
        .initiate(&endpoint, provider.address(), &user, user.address(), spend, bid, 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("approval chain id"), "{err}");
}

#[tokio::test]
async fn a_tampered_handshake_is_refused() {
    let provider = provider_key();
    let script: Script = Arc::new(move |request: &RpcMessage| {
        let Request::SessionRequest(req) = request.request().unwrap() else { return vec![] };
        let mut res =
            SessionRes::build(&provider, req.bid_id, U256::from(CHAIN_ID), req.user, req.timestamp).unwrap();
        res.timestamp += 1;
        vec![ok(&request.id, &res)]
    });
    let endpoint = serve(script).await;
    let user = user_key();
    let err = client()
        .initiate(
            &endpoint,
            provider_key().address(),
            &user,
            user.address(),
            U256::from(1u8),
            B256::ZERO,
            CHAIN_ID,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::InvalidAnswer { .. }), "{err}");
}

#[tokio::test]
async fn prompt_streams_verified_decrypted_chunks_until_done() {
    let provider = provider_key();
    let chunks = vec![r#"{"object":"chat.completion.chunk","n":1}"#, "{\"n\":\n2}"];
    let endpoint = serve(honest(provider.clone(), chunks)).await;
    let (first, mut rest) = client()
        .prompt(&endpoint, &key_of(&provider), &user_key(), B256::repeat_byte(1), "{}".into(), "abc")
        .await
        .unwrap();
    assert_eq!(first, Chunk::Data(bytes::Bytes::from_static(br#"{"object":"chat.completion.chunk","n":1}"#)));
    // A chunk with a line break is re-serialised compact so it cannot break the SSE framing.
    assert_eq!(
        rest.next_chunk().await.unwrap().unwrap(),
        Chunk::Data(bytes::Bytes::from_static(br#"{"n":2}"#))
    );
    assert_eq!(rest.next_chunk().await.unwrap().unwrap(), Chunk::Done);
    assert!(rest.next_chunk().await.is_none());
}

#[tokio::test]
async fn a_frame_signed_by_another_key_is_never_decrypted() {
    let provider = provider_key();
    let stranger = stranger_key();
    let script: Script = Arc::new(move |request: &RpcMessage| {
        vec![
            ok(&request.id, &chunk(&provider, br#"{"n":1}"#)),
            ok(&request.id, &chunk(&stranger, br#"{"n":2}"#)),
        ]
    });
    let endpoint = serve(script).await;
    let (first, mut rest) = client()
        .prompt(&endpoint, &key_of(&provider_key()), &user_key(), B256::ZERO, "{}".into(), "x")
        .await
        .unwrap();
    assert_eq!(first, Chunk::Data(bytes::Bytes::from_static(br#"{"n":1}"#)));
    let err = rest.next_chunk().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("frame signature"), "{err}");
    assert!(rest.next_chunk().await.is_none());

    // Forged as the first frame: an error before any byte is forwarded.
    let stranger = stranger_key();
    let forged: Script =
        Arc::new(move |request: &RpcMessage| vec![ok(&request.id, &chunk(&stranger, b"{}"))]);
    let endpoint = serve(forged).await;
    let err = client()
        .prompt(&endpoint, &key_of(&provider_key()), &user_key(), B256::ZERO, "{}".into(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::InvalidAnswer { .. }), "{err}");
}

#[tokio::test]
async fn errors_before_the_first_chunk() {
    let key = key_of(&provider_key());
    let user = user_key();

    // Unsigned infrastructure error.
    let refused: Script = Arc::new(|request: &RpcMessage| {
        vec![RpcResponse::error(&request.id, RpcError::unsigned("session expired", unix_millis_now()))
            .to_vec()
            .unwrap()]
    });
    let endpoint = serve(refused).await;
    let err = client().prompt(&endpoint, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    assert!(matches!(&err, ConsumerError::Refused { message, .. } if message == "session expired"), "{err}");
    assert!(err.is_provider_failure());

    // Signed model error: decrypted, the inner `providerModelError` returned.
    let provider = provider_key();
    let model_error: Script = Arc::new(move |request: &RpcMessage| {
        let plaintext = br#"{"providerModelError":{"error":{"message":"bad model"}}}"#;
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
    let err = client().prompt(&endpoint, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    match &err {
        ConsumerError::Model { body } => assert_eq!(body["error"]["message"], "bad model"),
        other => panic!("expected a model error, got {other}"),
    }
    assert!(!err.is_provider_failure());

    // Closed without data.
    let silent_close: Script = Arc::new(|_: &RpcMessage| vec![]);
    let endpoint = serve(silent_close).await;
    let err = client().prompt(&endpoint, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    assert!(matches!(err, ConsumerError::NoData { .. }), "{err}");

    // Silent past the response timeout.
    let silent: Script = Arc::new(|_: &RpcMessage| vec![Vec::new()]);
    let endpoint = serve(silent).await;
    let quick = ProviderClient::new(Duration::from_millis(200));
    let err = quick.prompt(&endpoint, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    assert!(matches!(err, ConsumerError::Timeout { .. }), "{err}");

    // Nobody listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = client().prompt(&closed, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    assert!(matches!(err, ConsumerError::Unreachable { .. }), "{err}");

    // Malformed JSON frame.
    let garbage: Script = Arc::new(|_: &RpcMessage| vec![br#"{"id":"x","result":{"message":12}}"#.to_vec()]);
    let endpoint = serve(garbage).await;
    let err = client().prompt(&endpoint, &key, &user, B256::ZERO, "{}".into(), "x").await.unwrap_err();
    assert!(matches!(err, ConsumerError::InvalidAnswer { .. }), "{err}");
}

#[tokio::test]
async fn report_is_verified() {
    let provider = provider_key();
    let endpoint = serve(honest(provider.clone(), vec![])).await;
    let session = B256::repeat_byte(7);
    let report =
        client().report(&endpoint, &key_of(&provider), &user_key(), session, CHAIN_ID).await.unwrap();
    assert_eq!(report.decoded.session_id, session);
    assert_eq!(report.decoded.tps_scaled1000, 25_000);
    assert_eq!(
        crate::protocol::artifacts::artifact_signer(&report.report, &report.signature).unwrap(),
        provider.address()
    );

    // Another chain's report.
    let err = client().report(&endpoint, &key_of(&provider), &user_key(), session, 1).await.unwrap_err();
    assert!(err.to_string().contains("report chain id"), "{err}");

    // Signed by someone else than the key we hold for the provider.
    let stranger = serve(honest(stranger_key(), vec![])).await;
    let err =
        client().report(&stranger, &key_of(&provider), &user_key(), session, CHAIN_ID).await.unwrap_err();
    assert!(err.to_string().contains("report message"), "{err}");
}

#[test]
fn keys_must_hash_to_the_address() {
    let provider = provider_key();
    assert!(ProviderKey::new(provider.address(), uncompressed_public_key(&provider)).is_ok());
    let err = ProviderKey::new(Address::ZERO, uncompressed_public_key(&provider)).unwrap_err();
    assert!(err.contains("not to the provider"), "{err}");
    assert!(ProviderKey::new(provider.address(), Bytes::from_static(&[4, 1, 2])).is_err());
    assert_eq!(dial_address("tcp://host:3333/"), "host:3333");
    assert_eq!(request_id().len(), 8);
}

#[test]
fn identical_prompts_never_share_a_timestamp() {
    let stamps = PromptStamps::default();
    let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
    // The same prompt on the same session, three times in one millisecond: three timestamps.
    assert_eq!(stamps.stamp(a, "hi", 1_000), 1_000);
    assert_eq!(stamps.stamp(a, "hi", 1_000), 1_001);
    assert_eq!(stamps.stamp(a, "hi", 1_000), 1_002);
    // Another message or another session is not moved.
    assert_eq!(stamps.stamp(a, "ho", 1_000), 1_000);
    assert_eq!(stamps.stamp(b, "hi", 1_000), 1_000);
    // Once the clock passes the last stamp, the clock is used again.
    assert_eq!(stamps.stamp(a, "hi", 1_005), 1_005);
    // The table stays bounded: stale entries go when it is full.
    for i in 0..(PROMPT_STAMPS_KEPT as u64 + 10) {
        stamps.stamp(a, &i.to_string(), 2_000 + i);
    }
    assert!(stamps.last.lock().unwrap().len() <= PROMPT_STAMPS_KEPT);
}
