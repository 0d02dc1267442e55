//! The chat history routes through the whole router (`oneshot`) against a real store; recording on
//! `POST /v1/chat/completions` through a scripted MOR-RPC provider (session path) and a real HTTP
//! backend (local model path); the answer-text extraction.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::*;
use crate::api::router;
use crate::api::test_support::{call, fixture, request, send, Answer, ADMIN};
use crate::chain::{Rpc, Signer, TxSender, Wallet, WalletSlot, WalletSource};
use crate::config::WalletKey;
use crate::consumer::test_support::{honest, provider_key, serve, user_key, CHAIN_ID};
use crate::consumer::{Consumer, ConsumerSettings};
use crate::protocol::signing::uncompressed_public_key;
use crate::store::{ConsumerSession, SessionStats, Store};

const CHAT: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
const MODEL: B256 = B256::repeat_byte(0xa1);

fn prompt(text: &str) -> Map<String, Value> {
    json!({"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
        .as_object()
        .unwrap()
        .clone()
}

fn chat_id() -> B256 {
    CHAT.parse().unwrap()
}

#[tokio::test]
async fn recorded_chats_are_listed_read_renamed_and_deleted() {
    let f = fixture().await;
    assert_eq!(call(&f.state, Method::GET, "/v1/chats", None).await.json(), json!([]));
    record_exchange(&f.store, chat_id(), MODEL, false, &prompt("hello there"), "Hi!", 100, 102)
        .await
        .unwrap();
    record_exchange(&f.store, chat_id(), MODEL, false, &prompt("again"), "Yes.", 110, 111).await.unwrap();

    let list = call(&f.state, Method::GET, "/v1/chats", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.json(),
        json!([{"chatId": CHAT, "modelId": MODEL, "title": "hello there", "isLocal": false, "createdAt": 100}])
    );
    let chat = call(&f.state, Method::GET, &format!("/v1/chats/{CHAT}"), None).await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.body);
    assert_eq!(
        chat.json(),
        json!({"title": "hello there", "modelId": MODEL, "isLocal": false, "messages": [
            {"prompt": prompt("hello there"), "response": "Hi!", "promptAt": 100, "responseAt": 102,
             "isImageContent": false, "isVideoRawContent": false, "isAudioContent": false},
            {"prompt": prompt("again"), "response": "Yes.", "promptAt": 110, "responseAt": 111,
             "isImageContent": false, "isVideoRawContent": false, "isAudioContent": false},
        ]})
    );
    // `0x` is optional in the path.
    let bare = call(&f.state, Method::GET, &format!("/v1/chats/{}", &CHAT[2..]), None).await;
    assert_eq!(bare.status, StatusCode::OK);

    let renamed =
        call(&f.state, Method::POST, &format!("/v1/chats/{CHAT}"), Some(r#"{"title":"Greetings"}"#)).await;
    assert_eq!((renamed.status, renamed.json()), (StatusCode::OK, json!({"result": true})));
    let list = call(&f.state, Method::GET, "/v1/chats", None).await.json();
    assert_eq!(list[0]["title"], "Greetings");
    let deleted = call(&f.state, Method::DELETE, &format!("/v1/chats/{CHAT}"), None).await;
    assert_eq!((deleted.status, deleted.json()), (StatusCode::OK, json!({"result": true})));
    assert_eq!(call(&f.state, Method::GET, "/v1/chats", None).await.json(), json!([]));
}

#[tokio::test]
async fn unknown_chats_are_404_and_bad_input_names_the_field() {
    let f = fixture().await;
    let other = "0x2222222222222222222222222222222222222222222222222222222222222222";
    for (method, json) in
        [(Method::GET, None), (Method::POST, Some(r#"{"title":"x"}"#)), (Method::DELETE, None)]
    {
        let answer = call(&f.state, method.clone(), &format!("/v1/chats/{other}"), json).await;
        assert_eq!(
            (answer.status, answer.error().code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method}"
        );
        let answer = call(&f.state, method.clone(), "/v1/chats/0x1234", json).await;
        assert_eq!(
            (answer.status, answer.error().field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("id")),
            "{method}"
        );
    }
    record_exchange(&f.store, chat_id(), MODEL, true, &prompt("q"), "a", 1, 2).await.unwrap();
    for body in [
        "{}",
        r#"{"title":""}"#,
        r#"{"title":7}"#,
        &json!({"title": "x".repeat(MAX_RENAME_CHARS + 1)}).to_string(),
    ] {
        let answer = call(&f.state, Method::POST, &format!("/v1/chats/{CHAT}"), Some(body)).await;
        assert_eq!(
            (answer.status, answer.error().field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("title")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_routes_need_their_permissions() {
    let f = fixture().await;
    use crate::api::auth::Grant;
    f.state.auth.add_user("reader", "pw", &[Grant::Only(Permission::GetChatHistory)]).unwrap();
    let reader = Some(("reader", "pw"));
    let send_as =
        |creds, method, uri: String, json| send(router(f.state.clone()), request(method, &uri, creds, json));
    assert_eq!(send_as(None, Method::GET, "/v1/chats".into(), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(send_as(reader, Method::GET, "/v1/chats".into(), None).await.status, StatusCode::OK);
    let rename = send_as(reader, Method::POST, format!("/v1/chats/{CHAT}"), Some(r#"{"title":"x"}"#)).await;
    assert_eq!(rename.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send_as(reader, Method::DELETE, format!("/v1/chats/{CHAT}"), None).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn chats_survive_reopening_the_store() {
    let f = fixture().await;
    record_exchange(&f.store, chat_id(), MODEL, true, &prompt("kept"), "answer", 5, 6).await.unwrap();
    f.store.close().await;
    let store = Store::open(f.dir.path()).await.unwrap();
    let state = crate::api::ApiState { store: store.clone(), ..f.state.clone() };
    let chat = call(&state, Method::GET, &format!("/v1/chats/{CHAT}"), None).await.json();
    assert_eq!((chat["title"].as_str(), chat["isLocal"].as_bool()), (Some("kept"), Some(true)));
    assert_eq!(chat["messages"][0]["response"], "answer");
}

#[test]
fn answer_text_reads_deltas_and_messages() {
    assert_eq!(answer_text(br#"{"choices":[{"delta":{"content":"Hel"}}]}"#).as_deref(), Some("Hel"));
    assert_eq!(
        answer_text(br#"{"choices":[{"message":{"content":"Whole","role":"assistant"}}]}"#).as_deref(),
        Some("Whole")
    );
    assert_eq!(answer_text(br#"{"choices":[{"delta":{"role":"assistant"}}]}"#), None);
    assert_eq!(answer_text(br#"{"choices":[],"usage":{"total_tokens":3}}"#), None);
    assert_eq!(answer_text(br#"{"choices":[{"message":{"content":null,"tool_calls":[]}}]}"#), None);
    assert_eq!(answer_text(b"{not json"), None);
    assert_eq!(answer_text(br#"{"error":{"message":"x"}}"#), None);
}

#[test]
fn titles_are_the_first_user_message_cut_short() {
    assert_eq!(chat_title(&prompt("hello")), "hello");
    let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url"}, {"type": "text", "text": "here"}]}]});
    assert_eq!(chat_title(parts.as_object().unwrap()), "look here");
    let long = prompt(&"é".repeat(MAX_TITLE_CHARS + 10));
    assert_eq!(chat_title(&long).chars().count(), MAX_TITLE_CHARS);
    let system_only = json!({"messages": [{"role": "system", "content": "sys"}]});
    assert_eq!(chat_title(system_only.as_object().unwrap()), "sys");
    assert_eq!(chat_title(&Map::new()), "");
}

#[tokio::test]
async fn storage_off_records_nothing_and_a_bad_chat_id_is_400() {
    let f = fixture().await;
    let log = ChatLog::new(f.store.clone(), false);
    log.record_exchange(chat_id(), MODEL, true, &prompt("q"), "a", 1, 2).await.unwrap();
    assert!(f.store.chats().list().await.unwrap().is_empty());
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(CHAT_ID_HEADER, HeaderValue::from_static(CHAT));
    assert!(Capture::start(&log, &headers, &prompt("q")).unwrap().is_none());
    headers.insert(CHAT_ID_HEADER, HeaderValue::from_static("0x12"));
    let e = ApiError::from(Capture::start(&log, &headers, &prompt("q")).unwrap_err());
    assert_eq!(e.field(), Some(CHAT_ID_HEADER));
}

#[tokio::test]
async fn the_tap_records_a_stream_split_anywhere_and_passes_it_through() {
    let f = fixture().await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(CHAT_ID_HEADER, HeaderValue::from_static(CHAT));
    let capture = Capture::start(&f.state.chat_log, &headers, &prompt("q")).unwrap();
    let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n";
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        events.as_bytes().chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let response = Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(pieces)))
        .unwrap();
    let tapped = tap(capture, ModelRef::Local(MODEL), response);
    let bytes = http_body_util::BodyExt::collect(tapped.into_body()).await.unwrap().to_bytes();
    assert_eq!(bytes, events.as_bytes());
    let chat = f.store.chats().get(chat_id()).await.unwrap().unwrap();
    assert_eq!((chat.messages[0].response.as_str(), chat.is_local, chat.model_id), ("Hello", true, MODEL));
}

// ---------------------------------------------------------------------------------------------------
// Recording on /v1/chat/completions
// ---------------------------------------------------------------------------------------------------

const USER_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

async fn state_with_consumer(f: &crate::api::test_support::Fixture) -> ApiState {
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
    f.state.clone().with_wallet(slot.clone()).with_consumer(Consumer::new(
        f.store.clone(),
        rpc,
        slot,
        settings,
    ))
}

fn session_record(id: B256, endpoint: &str) -> ConsumerSession {
    let now = crate::consumer::unix_now();
    ConsumerSession {
        session_id: id,
        user: user_key().address(),
        provider: provider_key().address(),
        bid_id: B256::repeat_byte(0xb1),
        model_id: MODEL,
        endpoint: endpoint.to_owned(),
        provider_public_key: Some(uncompressed_public_key(&provider_key())),
        stake: U256::from(1u8),
        direct_payment: false,
        failover: false,
        opened_at: now - 10,
        ends_at: now + 600,
        closed_at: 0,
        close_tx: None,
        closeout_type: None,
        replaced_by: None,
        stats: SessionStats::default(),
        created_at: now,
    }
}

async fn chat(state: &ApiState, header: (&'static str, String), chat: Option<&str>, body: &Value) -> Answer {
    let mut request = request(Method::POST, "/v1/chat/completions", Some(ADMIN), Some(&body.to_string()));
    request.headers_mut().insert(header.0, HeaderValue::from_str(&header.1).unwrap());
    if let Some(chat) = chat {
        request.headers_mut().insert(CHAT_ID_HEADER, HeaderValue::from_str(chat).unwrap());
    }
    send(router(state.clone()), request).await
}

#[tokio::test]
async fn session_answers_are_recorded_with_the_sessions_model() {
    let f = fixture().await;
    let state = state_with_consumer(&f).await;
    const C1: &str = r#"{"choices":[{"delta":{"content":"Hel","role":"assistant"},"index":0}],"object":"chat.completion.chunk"}"#;
    const C2: &str =
        r#"{"choices":[{"delta":{"content":"lo!"},"index":0}],"object":"chat.completion.chunk"}"#;
    let endpoint = serve(honest(provider_key(), vec![C1, C2])).await;
    let session = B256::repeat_byte(9);
    f.store.consumer_sessions().upsert(&session_record(session, &endpoint)).await.unwrap();
    let body = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say hello"}]});
    let header = ("session_id", format!("{session:#x}"));
    let answer = chat(&state, header.clone(), Some(CHAT), &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, format!("data: {C1}\n\ndata: {C2}\n\ndata: [DONE]\n\n"));

    // A JSON answer on the same chat.
    let full = r#"{"choices":[{"index":0,"message":{"content":"Bye.","role":"assistant"}}],"object":"chat.completion"}"#;
    let endpoint = serve(honest(provider_key(), vec![full])).await;
    f.store.consumer_sessions().upsert(&session_record(session, &endpoint)).await.unwrap();
    let second = json!({"model": "m", "messages": [{"role": "user", "content": "Say bye"}]});
    let answer = chat(&state, header.clone(), Some(CHAT), &second).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, full));

    let stored = call(&state, Method::GET, &format!("/v1/chats/{CHAT}"), None).await.json();
    assert_eq!(stored["title"], "Say hello");
    assert_eq!(stored["modelId"], json!(MODEL));
    assert_eq!(stored["isLocal"], false);
    let messages = stored["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0]["prompt"].clone(), messages[0]["response"].as_str()), (body, Some("Hello!")));
    assert_eq!(
        (messages[1]["prompt"].clone(), messages[1]["response"].as_str()),
        (second.clone(), Some("Bye."))
    );
    assert!(messages[0]["promptAt"].as_u64().unwrap() <= messages[0]["responseAt"].as_u64().unwrap());

    // Without the header nothing is recorded; a malformed one is refused before anything is sent.
    let endpoint = serve(honest(provider_key(), vec![full])).await;
    f.store.consumer_sessions().upsert(&session_record(session, &endpoint)).await.unwrap();
    assert_eq!(chat(&state, header.clone(), None, &second).await.status, StatusCode::OK);
    assert_eq!(f.store.chats().list().await.unwrap().len(), 1);
    let bad = chat(&state, header.clone(), Some("0x12"), &second).await;
    assert_eq!((bad.status, bad.error().field.as_deref()), (StatusCode::BAD_REQUEST, Some(CHAT_ID_HEADER)));

    // PROXY_STORE_CHAT_CONTEXT=false: the header is accepted, nothing is stored.
    let off = state.clone().with_chat_history(false);
    let other = "0x3333333333333333333333333333333333333333333333333333333333333333";
    assert_eq!(chat(&off, header, Some(other), &second).await.status, StatusCode::OK);
    assert_eq!(f.store.chats().list().await.unwrap().len(), 1);
}

/// A model backend answering `Local answer` as a stream or a JSON object.
async fn backend() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|axum::Json(body): axum::Json<Value>| async move {
            if body["stream"] == true {
                let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Local \"}}]}\n\n\
                              data: {\"choices\":[{\"delta\":{\"content\":\"answer\"}}]}\n\ndata: [DONE]\n\n";
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from(events))
                    .unwrap()
            } else {
                let json = r#"{"choices":[{"message":{"content":"Local answer","role":"assistant"}}]}"#;
                Response::builder().header("content-type", "application/json").body(Body::from(json)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1/chat/completions")
}

#[tokio::test]
async fn local_model_answers_are_recorded_as_local() {
    use crate::provider::models::ConfigSource;
    use crate::provider::{BackendClient, Models};
    let f = fixture().await;
    let url = backend().await;
    let model = format!("{MODEL:#x}");
    let text = format!(
        r#"{{"models":[{{"modelId":"{model}","modelName":"served","apiType":"openai","apiUrl":"{url}"}}]}}"#
    );
    let models = Models::parse(&text, ConfigSource::Content).unwrap();
    let client = BackendClient::new(crate::provider::backend::BackendTimeouts::for_llm_timeout(
        Duration::from_secs(10),
    ))
    .unwrap();
    let state = f.state.clone().with_local_models(crate::api::local::LocalModels::new(models, client));
    for stream in [true, false] {
        let body =
            json!({"stream": stream, "messages": [{"role": "user", "content": format!("stream {stream}")}]});
        let answer = chat(&state, ("model_id", model.clone()), Some(CHAT), &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let stored = f.store.chats().get(chat_id()).await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.is_local, stored.model_id), ("stream true", true, MODEL));
    let texts: Vec<&str> = stored.messages.iter().map(|m| m.response.as_str()).collect();
    assert_eq!(texts, ["Local answer", "Local answer"]);
}
