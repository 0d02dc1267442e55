//! Real OpenAI clients against the consumer router's gateway with nothing but a base URL, an API key and
//! a model name: the official `openai` Python package (models, chat streamed with usage and not, the
//! legacy completions streamed and not, embeddings, its error classes) and LangChain's `ChatOpenAI`
//! streaming an answer. The gateway buys the session itself; every answer is checked word for word
//! against what the stand-in backend sent.
//!
//! The packages are installed by `make python-deps` (a dependency of `make test`) into `target/venv`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use e2e_tests::backend;
use e2e_tests::market::{Market, MODEL_NAME};
use e2e_tests::repo_root;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_package_and_langchain_work_with_only_a_key_and_a_model_name() {
    let python = repo_root().join("target").join("venv").join("bin").join("python");
    assert!(python.is_file(), "run `make python-deps` first: no {}", python.display());
    let market = Market::start(&[10_000_000_000_000], &[]).await.unwrap();
    let (id, secret) = market.create_key(&json!({"name": "python"})).unwrap();

    let prompt = "Tell me about the marketplace, please";
    let output = Command::new(&python)
        .arg(repo_root().join("tests").join("python").join("gateway_clients.py"))
        .env("GATEWAY_BASE_URL", market.gateway().unwrap().openai_base_url())
        .env("GATEWAY_API_KEY", &secret)
        .env("MODEL", MODEL_NAME)
        .env("PROMPT", prompt)
        .output()
        .unwrap();
    assert!(output.status.success(), "the clients failed: {}", String::from_utf8_lossy(&output.stderr));
    let got: Value = serde_json::from_slice(&output.stdout).unwrap();

    let expected = backend::reply(prompt);
    assert_eq!(got["models"], json!([MODEL_NAME]));
    assert_eq!(got["model"]["id"], MODEL_NAME);
    assert_eq!(got["model"]["object"], "model");
    assert_eq!(got["model"]["extra"]["model_id"], format!("{:#x}", market.model_id));
    assert_eq!(got["model"]["extra"]["bids"], 1);
    assert_eq!(got["model"]["extra"]["min_price_per_second"], "10000000000000");
    assert_eq!(got["stream_text"], expected);
    assert_eq!(got["stream_finish_reason"], "stop");
    let usage = &got["stream_usage"];
    assert!(usage["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{got}");
    assert_eq!(got["text"], expected);
    assert_eq!(got["completion_object"], "text_completion");
    assert_eq!(got["completion_text"], expected);
    assert_eq!(got["completion_stream_text"], expected);
    let embeddings: Vec<Vec<f64>> = serde_json::from_value(got["embeddings"].clone()).unwrap();
    assert_eq!(embeddings, vec![backend::embedding("alpha beta"), backend::embedding("gamma")]);
    assert_eq!(got["unknown_model"], json!({"status": 404, "code": "model_not_found"}));
    assert_eq!(got["bad_key"], json!({"status": 401, "code": "invalid_api_key"}));
    assert_eq!(got["langchain_text"], expected);
    assert!(got["langchain_pieces"].as_u64().unwrap() > 1, "LangChain streamed: {got}");

    // One session served every call, and the key's usage counts each answered request.
    let key = market.key(&id).unwrap();
    let sessions = key["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{key}");
    assert_eq!(sessions[0]["state"], "open");
    assert_eq!(market.consumer_sessions().unwrap().len(), 1);
    market
        .wait_until(|| Ok((market.key(&id)?["usage"]["requests"] == 6).then_some(())))
        .unwrap_or_else(|e| panic!("usage never reached 6 requests: {e}: {}", market.key(&id).unwrap()));
    let seen = market.providers[0].backend.seen();
    assert_eq!(seen.requests.len(), 6, "{:?}", seen.requests);
    assert_eq!(seen.requests[0]["messages"][0]["content"], prompt);

    // The gateway describes itself, without a key, exactly as the committed spec.
    let spec = market.gateway().unwrap().get("/openapi.json", "").await.unwrap();
    assert_eq!(spec.status, 200, "{}", spec.body);
    let committed = std::fs::read_to_string(repo_root().join("docs").join("gateway-openapi.json")).unwrap();
    assert_eq!(spec.json().unwrap(), serde_json::from_str::<Value>(&committed).unwrap());
}
