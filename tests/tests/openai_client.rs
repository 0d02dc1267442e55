//! The official `openai` Python package as the client of a real consumer router, which relays to a real
//! provider router over MOR-RPC and on to the stand-in streaming backend: a streamed chat, a JSON chat
//! and embeddings, each answer checked word for word against what the backend sent.
//!
//! The package is installed by `make python-deps` (a dependency of `make test`) into `target/venv`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use e2e_tests::backend;
use e2e_tests::market::{Market, ADMIN};
use e2e_tests::repo_root;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_python_client_chats_streams_and_embeds_through_two_routers() {
    let python = repo_root().join("target").join("venv").join("bin").join("python");
    assert!(python.is_file(), "run `make python-deps` first: no {}", python.display());
    let market = Market::start(&[10_000_000_000_000], &[]).await.unwrap();
    let session = market.open_session(600).unwrap();

    let prompt = "Tell me about the marketplace, please";
    let output = Command::new(&python)
        .arg(repo_root().join("tests").join("python").join("openai_chat.py"))
        .env("ROUTER_BASE_URL", market.consumer().unwrap().url("/v1"))
        .env("ROUTER_AUTH", ADMIN)
        .env("SESSION_ID", &session)
        .env("PROMPT", prompt)
        .output()
        .unwrap();
    assert!(output.status.success(), "the client failed: {}", String::from_utf8_lossy(&output.stderr));
    let got: Value = serde_json::from_slice(&output.stdout).unwrap();

    let expected = backend::reply(prompt);
    assert_eq!(got["openai_version"], "3.60.0");
    assert_eq!(got["stream_text"], expected);
    // One chunk per reply piece plus the closing chunk with finish_reason.
    assert_eq!(got["stream_chunks"], backend::reply_chunks(prompt).len() + 1);
    assert_eq!(got["stream_finish_reason"], "stop");
    assert_eq!(got["text"], expected);
    assert_eq!(got["finish_reason"], "stop");
    assert!(got["usage"]["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{got}");
    assert_eq!(got["request_id"], "py-client-1");
    let embeddings: Vec<Vec<f64>> = serde_json::from_value(got["embeddings"].clone()).unwrap();
    assert_eq!(embeddings, vec![backend::embedding("alpha beta"), backend::embedding("gamma")]);

    // Each request went to the backend once, with the client's messages.
    let seen = market.providers[0].backend.seen();
    assert_eq!(seen.requests.len(), 3, "{:?}", seen.requests);
    assert_eq!(seen.requests[0]["messages"][0]["content"], prompt);
    assert_eq!(seen.requests[0]["stream"], true);
}
