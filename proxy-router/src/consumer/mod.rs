//! The consumer role: what a node does to buy inference from providers and relay it to its own
//! OpenAI clients (go-proxy-router.md §4.2–4.5, §6).
//!
//! - [`client`]: the MOR-RPC client (ping, handshake, prompt streaming, report), every answer
//!   verified against the provider's key before it is used.
//! - [`open`]: opening sessions by bid, by model (rated bids, best first, every provider's failure
//!   reason reported when none accepts) or from a ready approval; stake sizing; the allowance and the
//!   `openSession` transaction; the durable local record.
//! - [`relay`]: prompts (chat completions, embeddings) on a session, streamed back chunk by chunk, the
//!   consumer's statistics, and failover to the next-best bid when a provider fails before the first
//!   byte.
//! - [`close`]: closing with the provider's signed report (or our own, a dispute, when it cannot be
//!   had), the expiry sweeper, and the recovery of this wallet's open sessions at start.
//! - [`rating`] and [`rating_config`]: the reference's bid scorer and its `rating-config.json`.
//! - [`reads`]: the few chain reads the local index cannot answer.
//! - [`share`]: what of a closed session's MOR stays with the contract (on hold, or paid).
//!
//! [`Consumer`] is the role's handle, cheap to clone, shared by the API and the node's sweeper task.
//! The session's truth (open, closed, end) comes from the chain index kept by the indexer; the
//! consumer's own facts (the provider's endpoint and key, failover, statistics) live in
//! `store::ConsumerSessionsRepo`. The prompt path makes no RPC call.
//!
//! `consumer` sits above `protocol`, `chain` and `store`, and below `api`.

pub mod client;
pub mod close;
pub mod error;
pub mod open;
pub mod rating;
pub mod rating_config;
pub mod reads;
pub mod relay;
pub mod share;

#[cfg(test)]
pub(crate) mod test_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;

pub use client::{Chunk, ProviderClient, ProviderKey};
pub use close::Closed;
pub use error::{ConsumerError, ProviderFailure};
pub use open::{OpenRequest, Opened};
pub use relay::{Answer, Prompt, PromptKind, RelayEvent};
pub use share::UserShare;

use crate::chain::{Rpc, Signer, WalletSlot};
use crate::config::Config;
use crate::store::Store;
use rating::RatingConfig;
use reads::ChainReads;

/// The consumer's settings, from the configuration.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The chain id (approvals and reports must name it).
    pub chain_id: u64,
    /// The marketplace diamond.
    pub diamond: Address,
    /// The MOR token.
    pub mor_token: Address,
    /// `CNODE_PNODE_TIMEOUT`: how long a provider may take for each answer frame.
    pub response_timeout: Duration,
    /// `SESSION_SWEEP_INTERVAL`: how often expired sessions are closed.
    pub sweep_interval: Duration,
    /// How bids are rated and which providers are allowed.
    pub rating: RatingConfig,
}

impl ConsumerSettings {
    /// The settings of `config`, loading `RATING_CONFIG_PATH` (a missing file means the defaults; an
    /// invalid one is an error naming it) and adding `PROVIDER_ALLOW_LIST`.
    pub fn from_config(config: &Config) -> Result<Self, ConsumerError> {
        let consumer = &config.consumer;
        let rating = rating_config::load(&consumer.rating_config_path, &consumer.provider_allow_list)?;
        Ok(Self {
            chain_id: config.chain.chain_id,
            diamond: config.chain.diamond,
            mor_token: config.chain.mor_token,
            response_timeout: consumer.pnode_timeout,
            sweep_interval: consumer.sweep_interval,
            rating,
        })
    }
}

/// The consumer role. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Consumer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    chain: ChainReads,
    wallet: WalletSlot,
    client: ProviderClient,
    settings: ConsumerSettings,
}

impl Consumer {
    /// The consumer of the node's `wallet`, with `store` and the chain behind `rpc`.
    pub fn new(store: Store, rpc: Rpc, wallet: WalletSlot, settings: ConsumerSettings) -> Self {
        let chain = ChainReads::new(rpc, settings.diamond, settings.mor_token);
        let client = ProviderClient::new(settings.response_timeout);
        Self { inner: Arc::new(Inner { store, chain, wallet, client, settings }) }
    }

    /// The settings.
    pub fn settings(&self) -> &ConsumerSettings {
        &self.inner.settings
    }

    /// The rating configuration.
    pub fn rating(&self) -> &RatingConfig {
        &self.inner.settings.rating
    }

    /// The wallet's address, when a wallet is set.
    pub fn wallet_address(&self) -> Option<Address> {
        self.inner.wallet.get().map(|s| s.address())
    }

    /// The MOR-RPC client.
    pub fn client(&self) -> &ProviderClient {
        &self.inner.client
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn chain(&self) -> &ChainReads {
        &self.inner.chain
    }

    fn chain_id(&self) -> u64 {
        self.inner.settings.chain_id
    }

    /// The wallet's signer, or [`ConsumerError::NoWallet`].
    fn signer(&self) -> Result<Signer, ConsumerError> {
        self.inner.wallet.get().ok_or(ConsumerError::NoWallet)
    }
}

/// The local clock, unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
