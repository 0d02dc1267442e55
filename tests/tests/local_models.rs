//! The node's own models without a session (the reference's local models): a real router process with
//! a models-config pointing at the stand-in backend and no wallet, driven with curl: `GET /v1/models`,
//! chat (streamed and not) and embeddings with the `model_id` header, and every failure answered with its
//! status, machine code and reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use e2e_tests::backend::{self, Backend, Faults};
use e2e_tests::chain::ChainFixture;
use e2e_tests::router::{curl, router_env, CurlAnswer, RouterProcess};
use serde_json::{json, Value};

const MODEL_ID: &str = "0x00000000000000000000000000000000000000000000000000000000000010ca";
const ADMIN: &str = "admin:local";

fn post(router: &RouterProcess, path: &str, headers: &[&str], body: &str) -> CurlAnswer {
    let mut args = vec!["-u", ADMIN, "-X", "POST", "-H", "content-type: application/json"];
    for header in headers {
        args.extend(["-H", header]);
    }
    let url = router.url(path);
    args.extend(["-d", body, &url]);
    curl(&args).unwrap()
}

fn data_events(body: &str) -> Vec<&str> {
    body.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn local_models_answer_without_a_session_and_refuse_with_reasons() {
    let chain = ChainFixture::start().await.unwrap();
    let backend = Backend::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let models = json!({"models": [{
        "modelId": MODEL_ID,
        "modelName": "local-llm",
        "apiType": "openai",
        "apiUrl": backend.chat_url(),
        "apiKey": "sk-local-secret",
    }]});
    let router = RouterProcess::start(
        &router_env(
            &chain,
            dir.path(),
            &[("MODELS_CONFIG_CONTENT", models.to_string()), ("COOKIE_CONTENT", ADMIN.to_owned())],
        ),
        dir.path(),
    )
    .unwrap();
    let header = format!("model_id: {MODEL_ID}");

    // The configured models in the reference's shape, the key never shown.
    let listed = curl(&["-u", ADMIN, &router.url("/v1/models")]).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.json().unwrap(),
        json!([{"Id": MODEL_ID, "Name": "local-llm", "Model": "local-llm", "ApiType": "openai",
                "ApiUrl": backend.chat_url(), "Slots": 0, "CapacityPolicy": "simple"}])
    );
    assert!(!listed.body.contains("sk-local-secret"));

    // Streamed chat: the backend's chunks as SSE events, then [DONE].
    let prompt = "hello local model";
    let streamed = post(
        &router,
        "/v1/chat/completions",
        &[&header, "x-request-id: local-1"],
        &json!({"stream": true, "messages": [{"role": "user", "content": prompt}]}).to_string(),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    let events = data_events(&streamed.body);
    assert_eq!(events.last(), Some(&"[DONE]"), "{}", streamed.body);
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, backend::reply(prompt));
    let seen = backend.seen();
    assert_eq!(seen.requests[0]["model"], "local-llm", "modelName replaces the client's model");
    assert_eq!(seen.authorizations[0].as_deref(), Some("Bearer sk-local-secret"));

    // Non-streamed chat: the backend's JSON as is, unknown fields sent on.
    let whole = post(
        &router,
        "/v1/chat/completions",
        &[&header],
        &json!({"messages": [{"role": "user", "content": prompt}], "x_custom": 7}).to_string(),
    );
    assert_eq!(whole.status, 200, "{}", whole.body);
    let whole = whole.json().unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], backend::reply(prompt));
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert_eq!(backend.seen().requests[1]["x_custom"], 7);

    // Embeddings go to the sibling endpoint.
    let embedded = post(&router, "/v1/embeddings", &[&header], &json!({"input": ["a b", "c"]}).to_string());
    assert_eq!(embedded.status, 200, "{}", embedded.body);
    let vectors: Vec<Vec<f64>> = embedded.json().unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(vectors, vec![backend::embedding("a b"), backend::embedding("c")]);

    // Refusals: each a status, a machine code and a reason; nothing reaches the backend.
    let requests_before = backend.seen().requests.len();
    let chat = json!({"messages": [{"role": "user", "content": "x"}]}).to_string();
    let unknown = format!("model_id: 0x{}", "ab".repeat(32));
    for (headers, status, code) in [
        (vec![unknown.as_str()], 404, "unknown_local_model"),
        (vec!["model_id: 0x1234"], 400, "bad_request"),
        (vec![], 400, "bad_request"),
    ] {
        let answer = post(&router, "/v1/chat/completions", &headers, &chat);
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.body);
        let body = answer.json().unwrap();
        assert_eq!(body["code"], code, "{headers:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    let malformed = post(&router, "/v1/chat/completions", &[&header], "{not json");
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(backend.seen().requests.len(), requests_before);

    // The backend's own error is the reference's providerModelError.
    backend.control(Faults { error_status: Some(503), ..Faults::default() });
    let failed = post(&router, "/v1/chat/completions", &[&header], &chat);
    assert_eq!(failed.status, 400, "{}", failed.body);
    assert_eq!(failed.json().unwrap()["providerModelError"]["error"]["message"], "demo backend error 503");

    // A backend that dies mid-stream ends the stream with one terminal error event (the delay lets the
    // backend's headers and first chunks out before it dies).
    backend.control(Faults {
        drop_after_chunks: Some(2),
        chunk_delay: Duration::from_millis(20),
        ..Faults::default()
    });
    let broken = post(
        &router,
        "/v1/chat/completions",
        &[&header],
        &json!({"stream": true, "messages": [{"role": "user", "content": prompt}]}).to_string(),
    );
    assert_eq!(broken.status, 200, "{}", broken.body);
    let events = data_events(&broken.body);
    assert_eq!(events.len(), 3, "{}", broken.body);
    let last: Value = serde_json::from_str(events[2]).unwrap();
    assert_eq!(last["error"]["code"], "backend_interrupted", "{last}");

    // A backend that is down: 502 with the reason.
    backend.stop();
    let down = post(&router, "/v1/chat/completions", &[&header], &chat);
    assert_eq!(down.status, 502, "{}", down.body);
    assert_eq!(down.json().unwrap()["code"], "backend_failed");
}
