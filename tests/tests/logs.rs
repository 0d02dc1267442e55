//! The logs of a whole e2e run, at debug level, as JSON lines in `LOG_FOLDER_PATH`: every line parses,
//! a request's lines carry its request id, and neither the API key, nor the admin credentials, nor the
//! prompt, nor the answer appears anywhere in the consumer's or the providers' logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e_tests::backend;
use e2e_tests::market::{Market, MarketOptions, ADMIN, MODEL_NAME};
use serde_json::{json, Value};

fn log_lines(folder: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for run in std::fs::read_dir(folder).unwrap() {
        let file = run.unwrap().path().join("main.log");
        lines.extend(std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned));
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_with_request_ids_and_never_hold_keys_or_prompts() {
    let consumer_logs = tempfile::tempdir().unwrap();
    let provider_logs = tempfile::tempdir().unwrap();
    let verbose = |dir: &tempfile::TempDir| {
        vec![
            ("LOG_FOLDER_PATH".to_owned(), dir.path().display().to_string()),
            ("LOG_JSON".to_owned(), "true".to_owned()),
            ("LOG_LEVEL_APP".to_owned(), "debug".to_owned()),
            ("LOG_LEVEL_TCP".to_owned(), "debug".to_owned()),
            ("LOG_LEVEL_ETH_RPC".to_owned(), "debug".to_owned()),
            ("LOG_LEVEL_STORAGE".to_owned(), "info".to_owned()),
        ]
    };
    let mut options = MarketOptions::new(&[10_000_000_000_000]);
    options.consumer_env = verbose(&consumer_logs);
    options.provider_env = verbose(&provider_logs);
    let market = Market::start_with(&options).await.unwrap();

    let (_, key) = market.create_key(&json!({"name": "logs"})).unwrap();
    let prompt = "the-quokka-whispers-its-secret-recipe";
    let body = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": prompt}]});
    let gateway = market.gateway().unwrap();
    let request_id = "logs-test-request-7f3a";
    let answer = gateway
        .post_with("/v1/chat/completions", &key, &body, &[("x-request-id", request_id)])
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = market.open_session(600).unwrap();
    let admin = market.chat(&session, &body).unwrap();
    assert_eq!(admin.status, 200, "{}", admin.body);
    let reply = backend::reply(prompt);
    assert!(answer.body.contains(&reply), "{}", answer.body);

    // Lines are written as they come: the files are complete once the routers are gone.
    drop(market);
    let consumer = log_lines(consumer_logs.path());
    let providers = log_lines(provider_logs.path());
    assert!(consumer.len() > 20 && !providers.is_empty(), "{} and {} lines", consumer.len(), providers.len());
    for line in consumer.iter().chain(&providers) {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["timestamp"].is_string(), "{line}");
        for secret in [key.as_str(), &key["sk-mor-".len()..], prompt, reply.as_str(), ADMIN] {
            assert!(!line.contains(secret), "a log line holds {secret:?}: {line}");
        }
    }
    let tagged = consumer.iter().filter(|l| l.contains(request_id)).count();
    assert!(tagged >= 1, "no consumer line carries the request id {request_id}");
    for line in consumer.iter().filter(|l| l.contains(request_id)) {
        let parsed: Value = serde_json::from_str(line).unwrap();
        let spans = parsed["spans"].as_array().cloned().unwrap_or_default();
        assert!(
            spans.iter().chain(std::iter::once(&parsed["span"])).any(|s| s["id"] == request_id),
            "the id is the request span's: {line}"
        );
    }
}
