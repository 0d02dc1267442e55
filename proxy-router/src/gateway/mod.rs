//! The OpenAI gateway: the consumer node as an OpenAI endpoint that any client reaches with nothing
//! but an API key and a model name, paying the marketplace for its users on its own (docs/gateway.md).
//!
//! - [`keys`]: the API keys ([`KeyRing`]): secrets made and hashed, authentication, the model
//!   restriction, the request quota, the per-minute rate limit, expiry and revocation, and each
//!   key's usage counters.
//! - [`catalog`]: the marketplace's models as the gateway names them (on-chain name or `0x` id), with
//!   their active bid count and lowest price, rebuilt from the chain index when it moves.
//! - [`sessions`]: one session per (key, model), bought, reused, renewed before its end, replaced when
//!   its provider fails before the first byte, closed when idle, expired or its key is revoked; the
//!   key's MOR budget; the sweeper that closes what is due ([`Gateway::run`]).
//! - [`usage`]: the writer that makes each answered request's usage durable off the request path.
//! - [`openai`]: OpenAI's error shape and the `/v1/completions` ↔ chat translation.
//! - [`openapi`]: the OpenAPI description of the gateway's routes (`/openapi.json`).
//! - [`http`]: the listener's axum router (`GATEWAY_ADDRESS`): the OpenAI routes only, CORS, bounds.
//!
//! Everything the gateway decides is in SQLite (`store::ApiKeysRepo`, `store::GatewaySessionsRepo`)
//! before it is acted on, so a restart loses no key, no usage and no session, and opens nothing
//! twice. The session's truth (open, closed, end) stays the chain index's; the gateway uses the
//! consumer role ([`crate::consumer::Consumer`]) to open, prompt and close.
//!
//! `gateway` sits beside `api`: above `consumer` and `store`, below `node`.

pub mod catalog;
pub mod http;
pub mod keys;
pub mod openai;
pub mod openapi;
pub mod sessions;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use catalog::{Catalog, CatalogModel};
pub use keys::{KeyRing, KeyState, NewKey};

use crate::chats::ChatLog;
use crate::config::GatewayConfig;
use crate::consumer::{Consumer, ConsumerError, ProviderFailure};
use crate::index::IndexerStatus;
use crate::store::{Store, StoreError};

/// How the gateway buys and keeps sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// `GATEWAY_SESSION_DURATION`.
    pub session_duration: Duration,
    /// `GATEWAY_SESSION_RENEW_BEFORE`.
    pub renew_before: Duration,
    /// `GATEWAY_SESSION_IDLE_TIMEOUT`.
    pub idle_timeout: Duration,
    /// `GATEWAY_SESSION_CONCURRENCY`.
    pub session_concurrency: usize,
    /// `GATEWAY_DIRECT_PAYMENT`.
    pub direct_payment: bool,
    /// `GATEWAY_SWEEP_INTERVAL`.
    pub sweep_interval: Duration,
    /// `GATEWAY_CORS_ORIGINS` (`*`: any).
    pub cors_origins: Vec<String>,
}

impl GatewaySettings {
    /// The settings of the validated configuration.
    pub fn from_config(config: &GatewayConfig) -> Self {
        Self {
            session_duration: config.session_duration,
            renew_before: config.renew_before,
            idle_timeout: config.idle_timeout,
            session_concurrency: config.session_concurrency,
            direct_payment: config.direct_payment,
            sweep_interval: config.sweep_interval,
            cors_origins: config.cors_origins.clone(),
        }
    }
}

/// Everything that can go wrong in the gateway; [`http`] maps each to OpenAI's error shape, and
/// `api::keys` the admin ones to the API's.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No key, an unknown key, a revoked or an expired one.
    #[error("{0}")]
    InvalidKey(String),
    /// The key may not use this model.
    #[error("this API key may not use the model {model}")]
    ModelNotAllowed {
        /// The model as the client named it.
        model: String,
    },
    /// No such model in the marketplace.
    #[error("the model {model} does not exist in the marketplace")]
    ModelNotFound {
        /// The model as the client named it.
        model: String,
    },
    /// The request is malformed.
    #[error("invalid `{param}`: {reason}")]
    BadRequest {
        /// The field at fault.
        param: &'static str,
        /// Why.
        reason: String,
    },
    /// The key's request quota or MOR budget is used up.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The key's per-minute rate limit is reached.
    #[error("rate limit of {limit} requests per minute reached for this API key; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// The key's limit.
        limit: u32,
        /// When a request would pass.
        retry_after: Duration,
    },
    /// No provider could serve the model: each one tried, with its reason.
    #[error("no provider could serve the model: {}", describe(failures, reason))]
    NoProvider {
        /// The providers tried and why each failed.
        failures: Vec<ProviderFailure>,
        /// Why no (other) session could be opened, when that is the last word.
        reason: Option<String>,
    },
    /// No API key with this id (admin API).
    #[error("no API key {0}")]
    KeyNotFound(String),
    /// The consumer role failed (the model's own error, a provider timing out mid-way, the chain).
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(failures: &[ProviderFailure], reason: &Option<String>) -> String {
    let mut parts: Vec<String> = failures
        .iter()
        .map(|f| format!("provider {} (bid {}): {}", f.provider, f.bid_id, f.reason))
        .collect();
    if let Some(reason) = reason {
        parts.push(reason.clone());
    }
    if parts.is_empty() {
        "no bid".to_owned()
    } else {
        parts.join("; ")
    }
}

/// The gateway. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    consumer: Consumer,
    settings: GatewaySettings,
    keys: KeyRing,
    catalog: Catalog,
    sessions: sessions::Sessions,
    usage: usage::UsageQueue,
    chats: ChatLog,
}

impl Gateway {
    /// The gateway over `store` and `consumer`, its keys and open sessions loaded from the store.
    /// `indexer` tells the model catalog when the index moved; `chats` records the exchanges of
    /// requests that name a chat.
    pub async fn new(
        store: Store,
        consumer: Consumer,
        indexer: watch::Receiver<IndexerStatus>,
        settings: GatewaySettings,
        chats: ChatLog,
    ) -> Result<Self, GatewayError> {
        let keys = KeyRing::load(&store).await?;
        let sessions = sessions::Sessions::load(&store, &keys, settings.session_concurrency).await?;
        let catalog = Catalog::new(store.clone(), indexer);
        let usage = usage::UsageQueue::new();
        tracing::info!(keys = keys.len(), sessions = sessions.live_count(), "gateway state loaded");
        Ok(Self {
            inner: Arc::new(Inner { store, consumer, settings, keys, catalog, sessions, usage, chats }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &GatewaySettings {
        &self.inner.settings
    }

    /// The API keys.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The model catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The chat history recorder (`chat_id` header, `PROXY_STORE_CHAT_CONTEXT`).
    pub fn chats(&self) -> &ChatLog {
        &self.inner.chats
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn consumer(&self) -> &Consumer {
        &self.inner.consumer
    }

    /// The wallet's address, when one is set (the gateway's sessions are its).
    pub fn wallet(&self) -> Option<Address> {
        self.consumer().wallet_address()
    }

    /// Queues an answered request's usage for the writer.
    pub async fn record_usage(&self, event: usage::UsageEvent) {
        self.inner.usage.record(event).await;
    }

    /// Runs the gateway's background work until `cancel` fires: the sweeper (idle, expired, replaced,
    /// failed and revoked sessions closed) and the usage writer, which drains what is queued before
    /// it returns.
    pub async fn run(self, cancel: CancellationToken) {
        let sweeper = self.clone().sweep_loop(cancel.clone());
        let writer = self.inner.usage.run(self.store().clone(), cancel);
        tokio::join!(sweeper, writer);
    }
}
