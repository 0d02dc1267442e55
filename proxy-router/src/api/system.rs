//! The system resource: `GET /healthcheck` (open) and `GET /config` (permission `system_config`
//! once auth lands), with the reference's response shapes (§1.7) plus our own health details.
//!
//! # Health
//!
//! `/healthcheck` keeps the reference's keys (`status`, `version`, `uptime`, `components`, a map of
//! component name → one-line state) and adds structured detail: the indexer's head, indexed block,
//! lag and consecutive errors (from its status channel), every RPC endpoint's health (redacted URLs,
//! and which one is in use), and whether the store accepts writes. The status is `healthy` (200) or
//! `degraded` (503, as the reference) with the `reasons`, when:
//!
//! - the indexer lags more than [`HealthPolicy::max_lag`] blocks behind the head;
//! - the indexer's last [`HealthPolicy::max_consecutive_errors`] steps or more all failed;
//! - the store does not take its write lock within [`HealthPolicy::store_probe_timeout`].
//!
//! The store probe is [`Store::check_writable`] (`BEGIN IMMEDIATE; ROLLBACK`): it takes the write
//! lock and a pooled connection exactly as the indexer's writes do, so it catches a closed pool, a
//! file that is gone or locked by another writer, and pool exhaustion, while writing nothing (no
//! WAL growth, no probe table). Reading the cursor would prove only that reads work. Health answers
//! carry counts, never error texts: the route is open to anyone who can reach the port.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{guard, ApiState, AuthStore, Permission};
use crate::config::Config;
use crate::store::Store;

/// Status of a healthy node.
pub const HEALTHY: &str = "healthy";
/// Status of a degraded node (answered with 503).
pub const DEGRADED: &str = "degraded";

/// When `/healthcheck` turns `degraded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Largest acceptable `head - indexed`, in blocks (it includes the confirmation depth).
    pub max_lag: u64,
    /// Consecutive failed indexer steps from which the node is degraded.
    pub max_consecutive_errors: u32,
    /// How long the store's write probe may wait for the lock.
    pub store_probe_timeout: Duration,
}

impl Default for HealthPolicy {
    /// 100 blocks of lag (a few minutes on Base or Arbitrum), 5 failed steps in a row, a 2 s probe.
    fn default() -> Self {
        Self { max_lag: 100, max_consecutive_errors: 5, store_probe_timeout: Duration::from_secs(2) }
    }
}

/// The system routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    Router::new()
        .route("/healthcheck", get(healthcheck))
        .route("/config", guard(auth, Permission::SystemConfig, get(config)))
}

/// `GET /healthcheck` body: the reference's keys plus indexer, RPC and store detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// `healthy` or `degraded`.
    #[schema(example = "healthy")]
    pub status: String,
    /// The router's version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// Time since start, in Go duration syntax rounded to the second (as the reference).
    #[schema(example = "1h2m3s")]
    pub uptime: String,
    /// One line per component: `store`, `indexer`, `rpc`.
    pub components: BTreeMap<String, String>,
    /// Why the node is degraded (empty when healthy).
    pub reasons: Vec<String>,
    /// The chain indexer's progress.
    pub indexer: IndexerHealth,
    /// Every configured RPC endpoint, in failover order (empty when the node runs without RPC).
    pub rpc: Vec<EndpointHealth>,
    /// The local database.
    pub store: StoreHealth,
}

/// The indexer's progress in `/healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexerHealth {
    /// Latest head seen (null before the first step).
    pub head: Option<u64>,
    /// Last indexed block (null before the first indexed range).
    pub indexed: Option<u64>,
    /// `head - indexed`, in blocks.
    pub lag: Option<u64>,
    /// Consecutive failed steps (0 when the last step worked).
    pub consecutive_errors: u32,
}

/// One RPC endpoint in `/healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHealth {
    /// The URL without credentials, path or query (they may hold an API key).
    #[schema(example = "https://base-mainnet.example.com/…")]
    pub url: String,
    /// False while the endpoint rests after a failure.
    pub healthy: bool,
    /// True for the endpoint requests go to now (the first healthy one in order).
    pub in_use: bool,
    /// Failures since its last success.
    pub consecutive_failures: u32,
    /// Requests it answered.
    pub successes: u64,
    /// Requests it failed.
    pub failures: u64,
}

/// The store in `/healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreHealth {
    /// The write probe took and released the write lock in time.
    pub writable: bool,
}

/// Health of the node: indexer lag and errors, RPC endpoints, store writability.
#[utoipa::path(
    get,
    path = "/healthcheck",
    tag = "system",
    operation_id = "healthcheck",
    security(()),
    responses(
        (status = 200, description = "Healthy", body = HealthResponse),
        (status = 503, description = "Degraded: the indexer lags or fails, or the store is unwritable", body = HealthResponse),
    )
)]
pub async fn healthcheck(State(state): State<ApiState>) -> impl IntoResponse {
    let report = health(&state).await;
    let status = if report.status == HEALTHY { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
}

/// Builds the health report (see the module docs for the rules).
pub async fn health(state: &ApiState) -> HealthResponse {
    let policy = state.health;
    let indexer = state.indexer.borrow().clone();
    let writable = store_writable(&state.store, policy.store_probe_timeout).await;
    let endpoints = state.chain.as_ref().map(|chain| chain.rpc.endpoints()).unwrap_or_default();

    let mut reasons = Vec::new();
    let mut components = BTreeMap::new();

    if writable {
        components.insert("store".to_owned(), HEALTHY.to_owned());
    } else {
        components.insert("store".to_owned(), "unwritable".to_owned());
        reasons.push("the store does not accept writes".to_owned());
    }

    let lagging = indexer.lag.filter(|lag| *lag > policy.max_lag);
    let failing = indexer.consecutive_errors >= policy.max_consecutive_errors;
    if let Some(lag) = lagging {
        reasons.push(format!("the indexer is {lag} blocks behind the head (at most {})", policy.max_lag));
    }
    if failing {
        reasons.push(format!("the indexer's last {} steps failed", indexer.consecutive_errors));
    }
    let lag_text = indexer.lag.map_or_else(|| "unknown".to_owned(), |lag| lag.to_string());
    let indexer_state = if lagging.is_some() || failing { DEGRADED } else { HEALTHY };
    components.insert(
        "indexer".to_owned(),
        format!("{indexer_state}, lag={lag_text}, errors={}", indexer.consecutive_errors),
    );

    let in_use = endpoints.iter().position(|e| e.healthy);
    if !endpoints.is_empty() {
        let healthy = endpoints.iter().filter(|e| e.healthy).count();
        let rpc_state = if healthy > 0 { HEALTHY } else { "unreachable" };
        components.insert("rpc".to_owned(), format!("{rpc_state}, {healthy}/{} endpoints", endpoints.len()));
    }
    let rpc = endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| EndpointHealth {
            // Already redacted by the transport (`chain::rpc::redact_url`).
            url: e.url,
            healthy: e.healthy,
            in_use: in_use == Some(i),
            consecutive_failures: e.consecutive_failures,
            successes: e.successes,
            failures: e.failures,
        })
        .collect();

    HealthResponse {
        status: if reasons.is_empty() { HEALTHY } else { DEGRADED }.to_owned(),
        version: VERSION.to_owned(),
        uptime: go_duration_seconds(state.started.elapsed()),
        components,
        reasons,
        indexer: IndexerHealth {
            head: indexer.head,
            indexed: indexer.indexed,
            lag: indexer.lag,
            consecutive_errors: indexer.consecutive_errors,
        },
        rpc,
        store: StoreHealth { writable },
    }
}

async fn store_writable(store: &Store, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, store.check_writable()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health: the store is not writable");
            false
        }
        Err(_) => {
            tracing::warn!(?timeout, "health: the store's write probe timed out");
            false
        }
    }
}

/// A duration rounded to the second in Go's `time.Duration.String()` syntax: `0s`, `45s`, `2m5s`,
/// `1h0m7s`.
pub fn go_duration_seconds(duration: Duration) -> String {
    let total = duration.as_secs() + u64::from(duration.subsec_millis() >= 500);
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The router's version (`CARGO_PKG_VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from: `PROXY_ROUTER_COMMIT` at build time, else `unknown`.
pub const COMMIT: &str = match option_env!("PROXY_ROUTER_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// `GET /config` body: the reference's `ConfigResponse` (PascalCase keys), secrets left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigResponse {
    /// The router's version.
    pub version: String,
    /// The commit it was built from.
    pub commit: String,
    /// The sanitised configuration.
    pub config: SanitizedConfig,
    /// Values derived at start-up.
    pub derived_config: DerivedConfig,
}

/// The configuration without secrets. Sections and keys follow the reference's `Config` struct where
/// we have the setting; `Indexer` and `Transactions` are ours. Durations are integer nanoseconds, as
/// Go's `time.Duration` marshals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SanitizedConfig {
    /// `ETH_NODE_*`.
    pub blockchain: BlockchainSection,
    /// Contract addresses.
    pub marketplace: MarketplaceSection,
    /// Local state.
    pub proxy: ProxySection,
    /// `INDEXER_*` (ours).
    pub indexer: IndexerSection,
    /// `TX_*` (ours).
    pub transactions: TransactionsSection,
}

/// The `Blockchain` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct BlockchainSection {
    /// `ETH_NODE_CHAIN_ID`.
    #[serde(rename = "ChainID")]
    pub chain_id: u64,
    /// `ETH_NODE_ADDRESS`, each URL redacted to `scheme://host[:port]` (+ `/…` when it had a path).
    pub eth_node_address: String,
    /// `ETH_NODE_LEGACY_TX`.
    pub eth_legacy_tx: bool,
    /// `ETH_NODE_USE_SUBSCRIPTIONS`.
    pub use_subscriptions: bool,
    /// `ETH_NODE_POLLING_INTERVAL`, nanoseconds.
    pub polling_interval: u64,
    /// `ETH_NODE_RPC_TIMEOUT`, nanoseconds (ours).
    pub rpc_timeout: u64,
    /// `MULTICALL3_ADDR`.
    pub multicall3_address: String,
}

/// The `Marketplace` section (the wallet key is never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MarketplaceSection {
    /// `DIAMOND_CONTRACT_ADDRESS`, lower-case hex.
    pub diamond_contract_address: String,
    /// `MOR_TOKEN_ADDRESS`, lower-case hex.
    pub mor_token_address: String,
}

/// The `Proxy` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ProxySection {
    /// `PROXY_STORAGE_PATH`.
    pub storage_path: String,
}

/// The `Indexer` section (ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct IndexerSection {
    /// `INDEXER_START_BLOCK`.
    pub start_block: u64,
    /// `INDEXER_CONFIRMATIONS`.
    pub confirmations: u64,
    /// `INDEXER_BLOCK_RANGE`.
    pub block_range: u64,
    /// `INDEXER_MAX_BACKOFF`, nanoseconds.
    pub max_backoff: u64,
}

/// The `Transactions` section (ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionsSection {
    /// `TX_RECEIPT_TIMEOUT`, nanoseconds.
    pub receipt_timeout: u64,
    /// `TX_BUMP_INTERVAL`, nanoseconds.
    pub bump_interval: u64,
    /// `TX_FEE_BUMP_PERCENT`.
    pub fee_bump_percent: u32,
    /// `TX_MAX_BUMPS`.
    pub max_bumps: u32,
}

/// The reference's `DerivedConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DerivedConfig {
    /// The node's address, lower-case hex; null on a read-only node (no wallet configured).
    pub wallet_address: Option<String>,
    /// The chain id.
    #[serde(rename = "ChainID")]
    pub chain_id: u64,
    /// The RPC URLs in use, redacted.
    #[serde(rename = "EthNodeURLs")]
    pub eth_node_urls: Vec<String>,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl ConfigResponse {
    /// The `/config` answer for `config`, with the wallet's `address` (derived once at start-up;
    /// `None` on a read-only node). The wallet key or mnemonic is never read.
    pub fn new(config: &Config, address: Option<alloy::primitives::Address>) -> Self {
        let c = &config.chain;
        let urls: Vec<String> = c.rpc_urls.iter().map(crate::chain::rpc::redact_url).collect();
        let wallet_address = address.map(|a| format!("{a:#x}"));
        ConfigResponse {
            version: VERSION.to_owned(),
            commit: COMMIT.to_owned(),
            config: SanitizedConfig {
                blockchain: BlockchainSection {
                    chain_id: c.chain_id,
                    eth_node_address: urls.join(","),
                    eth_legacy_tx: c.legacy_tx,
                    use_subscriptions: c.use_subscriptions,
                    polling_interval: nanos(c.polling_interval),
                    rpc_timeout: nanos(c.rpc_timeout),
                    multicall3_address: format!("{:#x}", c.multicall3),
                },
                marketplace: MarketplaceSection {
                    diamond_contract_address: format!("{:#x}", c.diamond),
                    mor_token_address: format!("{:#x}", c.mor_token),
                },
                proxy: ProxySection { storage_path: config.store.storage_path.display().to_string() },
                indexer: IndexerSection {
                    start_block: config.indexer.start_block,
                    confirmations: config.indexer.confirmations,
                    block_range: config.indexer.block_range,
                    max_backoff: nanos(config.indexer.max_backoff),
                },
                transactions: TransactionsSection {
                    receipt_timeout: nanos(c.tx_receipt_timeout),
                    bump_interval: nanos(c.tx_bump_interval),
                    fee_bump_percent: c.tx_fee_bump_percent,
                    max_bumps: c.tx_max_bumps,
                },
            },
            derived_config: DerivedConfig { wallet_address, chain_id: c.chain_id, eth_node_urls: urls },
        }
    }
}

/// The node's configuration, secrets left out (wallet key, mnemonic, URL paths and credentials).
#[utoipa::path(
    get,
    path = "/config",
    tag = "system",
    operation_id = "getConfig",
    responses(
        (status = 200, description = "The sanitised configuration", body = ConfigResponse),
    )
)]
pub async fn config(State(state): State<ApiState>) -> Json<ConfigResponse> {
    Json(ConfigResponse::clone(&state.config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_uses_go_duration_syntax() {
        assert_eq!(go_duration_seconds(Duration::ZERO), "0s");
        assert_eq!(go_duration_seconds(Duration::from_millis(45_600)), "46s");
        assert_eq!(go_duration_seconds(Duration::from_secs(125)), "2m5s");
        assert_eq!(go_duration_seconds(Duration::from_secs(3607)), "1h0m7s");
        assert_eq!(go_duration_seconds(Duration::from_secs(90_000)), "25h0m0s");
    }
}
