//! The chain indexer: backfills the marketplace's events from a start block in bounded ranges, then
//! follows the head at a confirmation depth, detects reorgs and keeps the `store` tables equal to the
//! chain. It sits above `chain` (reads) and `store` (writes), which never import each other.

pub mod convert;
pub mod decode;
mod indexer;
pub mod reader;

pub use indexer::{read_entities, Indexer, IndexerOptions, IndexerStatus, Step, REORG_SEARCH_DEPTH};

use crate::store::StoreError;

/// Why one indexer step failed. Every variant is retried by [`Indexer::run`].
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A JSON-RPC request failed (node down, timeout, range too large).
    #[error("RPC request failed: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// A contract read failed.
    #[error("contract read failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// The store refused or failed a write.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The node does not know a block below its own head (it is syncing or pruned).
    #[error("the RPC node has no block {0}")]
    MissingBlock(u64),
    /// A mined log came without its block number, hash, index or transaction hash.
    #[error("the RPC node returned a log without block number, block hash, log index or transaction hash")]
    IncompleteLog,
}
