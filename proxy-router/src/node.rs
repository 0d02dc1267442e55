//! The composition root: builds the node's shared parts from a validated [`Config`] and supervises its
//! background tasks until cancelled.
//!
//! Today the node is its chain part: start-up checks ([`chain::startup::verify`]), the store, and the
//! indexer following the marketplace (over a WebSocket new-heads subscription when configured, polling
//! otherwise). The provider and consumer roles and the HTTP API join here with their issues.

use tokio_util::sync::CancellationToken;

use crate::chain::{self, Rpc};
use crate::config::Config;
use crate::index::{IndexError, Indexer, IndexerOptions};
use crate::store::{Store, StoreError};

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The chain could not be reached or failed a start-up check (wrong chain id, no code, missing
    /// selectors).
    #[error(transparent)]
    Chain(#[from] chain::ChainError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The indexer could not be set up.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A background task panicked.
    #[error("the {task} task stopped unexpectedly: {reason}")]
    TaskFailed {
        /// The task's name.
        task: &'static str,
        /// The panic or cancellation message.
        reason: String,
    },
}

/// The indexer's options from the configuration.
pub fn indexer_options(config: &Config) -> IndexerOptions {
    IndexerOptions {
        chain_id: config.chain.chain_id,
        diamond: config.chain.diamond,
        token: config.chain.mor_token,
        start_block: config.indexer.start_block,
        confirmations: config.indexer.confirmations,
        block_range: config.indexer.block_range,
        polling_interval: config.chain.polling_interval,
        max_backoff: config.indexer.max_backoff,
    }
}

/// Runs the node until `cancel` fires. Start-up problems are returned before anything runs.
pub async fn run(config: Config, cancel: CancellationToken) -> Result<(), NodeError> {
    let rpc = Rpc::connect(&config.chain).await?;
    let report = chain::startup::verify(&rpc, &config.chain).await?;
    tracing::info!(?report, "start-up checks passed");

    let store = Store::from_config(&config.store).await?;
    let mut indexer = Indexer::new(rpc.provider().clone(), store, indexer_options(&config)).await?;
    if config.chain.use_subscriptions {
        match rpc.subscribe_new_heads().await? {
            Some(heads) => indexer = indexer.with_new_heads(heads),
            None => tracing::warn!("no WebSocket endpoint answered: the indexer polls for new heads"),
        }
    }

    let task = tokio::spawn(indexer.run(cancel.clone()));
    tracing::info!("node running");
    task.await.map_err(|e| NodeError::TaskFailed { task: "indexer", reason: e.to_string() })
}
