//! `GET /metrics` read by a Prometheus text parser (`prometheus-parse`) on a real consumer router:
//! the counters and histograms move with the traffic of the test (chats through a session and through
//! the gateway, the session's opening transaction), and the gauges say what the chain and the store
//! say (open sessions, the index, the wallet's MOR).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e_tests::market::{Market, MODEL_NAME};
use e2e_tests::router::curl;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

fn scrape(market: &Market) -> Vec<Sample> {
    // Open like /healthcheck: no credentials.
    let answer = curl(&[&market.consumer().unwrap().url("/metrics")]).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.body;
    assert!(body.ends_with("# EOF\n"), "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap().samples
}

/// The value of `metric` with every `labels` pair, or 0 when no such sample exists yet.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_with_the_traffic() {
    let market = Market::start(&[10_000_000_000_000], &[]).await.unwrap();
    let before = scrape(&market);
    let gateway_chats = [("surface", "gateway"), ("route", "/v1/chat/completions"), ("status", "200")];
    assert_eq!(value(&before, "proxy_router_http_requests_total", &gateway_chats), 0.0);
    assert!(value(&before, "proxy_router_indexer_indexed_block", &[]) > 0.0, "the index is reported");
    assert!(value(&before, "proxy_router_wallet_mor", &[]) > 0.0, "the wallet's MOR is reported");
    assert_eq!(value(&before, "proxy_router_open_sessions", &[]), 0.0);

    // One chat through the gateway (it opens a session), then two more.
    let (_, key) = market.create_key(&json!({"name": "metrics"})).unwrap();
    let gateway = market.gateway().unwrap();
    for n in 0..3 {
        let answer = gateway.chat(&key, MODEL_NAME, &format!("chat {n}")).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let after = scrape(&market);
    assert_eq!(value(&after, "proxy_router_http_requests_total", &gateway_chats), 3.0);
    let answered = |s: &[Sample]| value(s, "proxy_router_prompts_total", &[("outcome", "answered")]);
    assert_eq!(answered(&after) - answered(&before), 3.0);
    assert_eq!(
        value(&after, "proxy_router_prompt_ttft_seconds_count", &[])
            - value(&before, "proxy_router_prompt_ttft_seconds_count", &[]),
        3.0
    );
    let opened = [("operation", "openSession"), ("result", "mined")];
    assert_eq!(value(&after, "proxy_router_transactions_total", &opened), 1.0, "the gateway's one session");
    assert!(
        value(&after, "proxy_router_gas_used_total", &[])
            > value(&before, "proxy_router_gas_used_total", &[])
    );
    assert_eq!(value(&after, "proxy_router_open_sessions", &[]), 1.0);
    // The first scrape itself was counted on the admin surface.
    let scrapes = [("surface", "api"), ("route", "/metrics"), ("status", "200")];
    assert!(value(&after, "proxy_router_http_requests_total", &scrapes) >= 1.0);

    // An admin-route chat on a session of its own moves the same prompt counter.
    let session = market.open_session(600).unwrap();
    let chat = market
        .chat(&session, &json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
    assert_eq!(chat.status, 200, "{}", chat.body);
    let last = scrape(&market);
    assert_eq!(answered(&last) - answered(&after), 1.0);
    assert_eq!(value(&last, "proxy_router_open_sessions", &[]), 2.0);
    let admin_chats = [("surface", "api"), ("route", "/v1/chat/completions"), ("status", "200")];
    assert_eq!(value(&last, "proxy_router_http_requests_total", &admin_chats), 1.0);
}
