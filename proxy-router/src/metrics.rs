//! The node's Prometheus metrics: one process-wide registry ([`global`]) that the HTTP surfaces, the
//! consumer's relay and the transaction sender record into as things happen, and that the admin API
//! serves at `GET /metrics` in the OpenMetrics text format (which Prometheus scrapes as is). Values
//! that belong to the chain or the store (open sessions, the indexer's lag, the wallet's balances)
//! are gauges the scrape handler sets just before encoding ([`Metrics::set_scrape_values`]).
//!
//! Names, all prefixed `proxy_router_` (docs/operations.md):
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `surface` (`api`, `gateway`), `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `surface`, `route` |
//! | `prompts_total` | counter | `outcome` (`answered`, `failed`) |
//! | `prompt_ttft_seconds`, `prompt_duration_seconds` | histogram | — |
//! | `transactions_total` | counter | `operation`, `result` (`mined`, `failed`) |
//! | `gas_used_total`, `tx_fees_eth_total` | counter | — |
//! | `open_sessions` | gauge | — |
//! | `indexer_head_block`, `indexer_indexed_block`, `indexer_lag_blocks` | gauge | — |
//! | `wallet_eth`, `wallet_mor` | gauge | — |
//!
//! Routes are axum's matched paths (`/blockchain/sessions/{id}`), never the raw path, so ids do not
//! become label values; nothing secret (keys, prompts, addresses) is ever a label.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `api` or `gateway`.
    pub surface: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The matched route (`unmatched` for none).
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of a request's duration.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `api` or `gateway`.
    pub surface: &'static str,
    /// The matched route.
    pub route: String,
}

/// Labels of a prompt's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `answered` or `failed`.
    pub outcome: &'static str,
}

/// Labels of a transaction.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TxLabels {
    /// The contract function (`openSession`, `closeSession`, …).
    pub operation: String,
    /// `mined` or `failed`.
    pub result: &'static str,
}

type Seconds = Family<RouteLabels, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Seconds,
    prompts: Family<OutcomeLabels, Counter>,
    prompt_ttft: Histogram,
    prompt_duration: Histogram,
    transactions: Family<TxLabels, Counter>,
    gas_used: Counter,
    tx_fees_eth: Counter<f64, AtomicU64>,
    open_sessions: Gauge,
    indexer_head: Gauge,
    indexer_indexed: Gauge,
    indexer_lag: Gauge,
    wallet_eth: FloatGauge,
    wallet_mor: FloatGauge,
}

fn latency_buckets() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("proxy_router");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        let http_duration: Seconds = Family::new_with_constructor(latency_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to the answer's head (streams: to the first byte)",
            http_duration.clone(),
        );
        let prompts = Family::<OutcomeLabels, Counter>::default();
        registry.register("prompts", "Prompts relayed to providers, by outcome", prompts.clone());
        let prompt_ttft = latency_buckets();
        registry.register("prompt_ttft_seconds", "Time to the provider's first token", prompt_ttft.clone());
        let prompt_duration = latency_buckets();
        registry.register("prompt_duration_seconds", "Time to the answer's end", prompt_duration.clone());
        let transactions = Family::<TxLabels, Counter>::default();
        registry.register("transactions", "Transactions sent by the wallet, by result", transactions.clone());
        let gas_used = Counter::default();
        registry.register("gas_used", "Gas used by the wallet's mined transactions", gas_used.clone());
        let tx_fees_eth = Counter::<f64, AtomicU64>::default();
        registry.register(
            "tx_fees_eth",
            "ETH paid in fees by the wallet's mined transactions",
            tx_fees_eth.clone(),
        );
        let open_sessions = Gauge::default();
        registry.register(
            "open_sessions",
            "Sessions of this node's wallet not yet closed",
            open_sessions.clone(),
        );
        let indexer_head = Gauge::default();
        registry.register("indexer_head_block", "The chain head the indexer last saw", indexer_head.clone());
        let indexer_indexed = Gauge::default();
        registry.register("indexer_indexed_block", "The last block indexed", indexer_indexed.clone());
        let indexer_lag = Gauge::default();
        registry.register("indexer_lag_blocks", "Blocks between the head and the index", indexer_lag.clone());
        let wallet_eth = FloatGauge::default();
        registry.register("wallet_eth", "The wallet's ETH (read at most every 15 s)", wallet_eth.clone());
        let wallet_mor = FloatGauge::default();
        registry.register("wallet_mor", "The wallet's MOR (read at most every 15 s)", wallet_mor.clone());
        Self {
            registry,
            http_requests,
            http_duration,
            prompts,
            prompt_ttft,
            prompt_duration,
            transactions,
            gas_used,
            tx_fees_eth,
            open_sessions,
            indexer_head,
            indexer_indexed,
            indexer_lag,
            wallet_eth,
            wallet_mor,
        }
    }

    /// One answered HTTP request.
    pub fn http(&self, surface: &'static str, method: &str, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.http_requests
            .get_or_create(&HttpLabels { surface, method: method.to_owned(), route: route.clone(), status })
            .inc();
        self.http_duration.get_or_create(&RouteLabels { surface, route }).observe(took.as_secs_f64());
    }

    /// One prompt answered by a provider.
    pub fn prompt_answered(&self, ttft: Duration, took: Duration) {
        self.prompts.get_or_create(&OutcomeLabels { outcome: "answered" }).inc();
        self.prompt_ttft.observe(ttft.as_secs_f64());
        self.prompt_duration.observe(took.as_secs_f64());
    }

    /// One prompt whose answer broke off.
    pub fn prompt_failed(&self) {
        self.prompts.get_or_create(&OutcomeLabels { outcome: "failed" }).inc();
    }

    /// One transaction mined (`fee`: wei paid for its gas).
    pub fn tx_mined(&self, operation: &str, gas_used: u64, fee: U256) {
        self.transactions.get_or_create(&TxLabels { operation: operation.to_owned(), result: "mined" }).inc();
        self.gas_used.inc_by(gas_used);
        self.tx_fees_eth.inc_by(ether(fee));
    }

    /// One transaction that failed (not sent, not mined in time, or reverted).
    pub fn tx_failed(&self, operation: &str) {
        self.transactions
            .get_or_create(&TxLabels { operation: operation.to_owned(), result: "failed" })
            .inc();
    }

    /// The values read at scrape time.
    pub fn set_scrape_values(&self, values: &ScrapeValues) {
        let gauge = |g: &Gauge, v: Option<u64>| g.set(v.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)));
        gauge(&self.open_sessions, values.open_sessions);
        gauge(&self.indexer_head, values.indexer_head);
        gauge(&self.indexer_indexed, values.indexer_indexed);
        gauge(&self.indexer_lag, values.indexer_lag);
        if let Some((eth, mor)) = values.wallet {
            self.wallet_eth.set(ether(eth));
            self.wallet_mor.set(ether(mor));
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// What the scrape handler reads from the store, the indexer and the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeValues {
    /// Open sessions of the wallet.
    pub open_sessions: Option<u64>,
    /// The indexer's head.
    pub indexer_head: Option<u64>,
    /// The last indexed block.
    pub indexer_indexed: Option<u64>,
    /// Their distance.
    pub indexer_lag: Option<u64>,
    /// The wallet's ETH and MOR in wei, when they could be read.
    pub wallet: Option<(U256, U256)>,
}

/// 18-decimal wei as a float (exact enough for a gauge).
fn ether(wei: U256) -> f64 {
    let unit = U256::from(10u64.pow(18));
    let whole = u128::try_from(wei / unit).unwrap_or(u128::MAX) as f64;
    let frac = u64::try_from(wei % unit).unwrap_or(0) as f64;
    whole + frac / 1e18
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Middleware for an HTTP surface: counts each request by its matched route and status and times
/// it to the answer's head.
pub async fn track(surface: &'static str, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    global().http(surface, &method, &route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn counters_and_gauges_are_encoded_with_their_labels() {
        let m = Metrics::new();
        m.http("api", "GET", "/healthcheck", 200, Duration::from_millis(3));
        m.http("api", "GET", "/healthcheck", 200, Duration::from_millis(5));
        m.tx_mined("openSession", 21_000, U256::from(2_100_000_000_000_000u64));
        m.set_scrape_values(&ScrapeValues {
            open_sessions: Some(2),
            wallet: Some((U256::from(10u64.pow(18)), U256::from(5 * 10u64.pow(17)))),
            ..ScrapeValues::default()
        });
        let text = m.encode().unwrap();
        assert!(
            text.contains(
                r#"proxy_router_http_requests_total{surface="api",method="GET",route="/healthcheck",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"proxy_router_http_request_duration_seconds_count{surface="api",route="/healthcheck"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"proxy_router_transactions_total{operation="openSession",result="mined"} 1"#),
            "{text}"
        );
        assert!(text.contains("proxy_router_gas_used_total 21000"), "{text}");
        assert!(text.contains("proxy_router_tx_fees_eth_total 0.0021"), "{text}");
        assert!(text.contains("proxy_router_open_sessions 2"), "{text}");
        assert!(text.contains("proxy_router_wallet_mor 0.5"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn wei_become_ether() {
        assert_eq!(ether(U256::from(1_500_000_000_000_000_000u64)), 1.5);
        assert_eq!(ether(U256::ZERO), 0.0);
    }
}
