//! Reads the current state of touched entities from the diamond at one block.
//!
//! Every read is an `eth_call` pinned to the same block (the end of the indexed range), so one batch is a
//! consistent snapshot. Reads run with bounded concurrency. Unknown ids read as zero structs (the getters
//! never revert), which the caller turns into "absent".

use std::collections::BTreeSet;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::chain::bindings::{
    IBidStorage, IModelStorage, IProviderStorage, ISessionStorage, IStatsStorage, Marketplace, ModelRegistry,
    ProviderRegistry, SessionRouter,
};

/// How many `eth_call`s of one batch run at the same time.
pub const READ_CONCURRENCY: usize = 16;

/// Provider record as the diamond returns it.
pub type ProviderState = IProviderStorage::Provider;
/// Model record as the diamond returns it.
pub type ModelState = IModelStorage::Model;
/// Bid record as the diamond returns it.
pub type BidState = IBidStorage::Bid;
/// Session record as the diamond returns it.
pub type SessionState = ISessionStorage::Session;
/// Per provider and model statistics.
pub type ProviderModelStatsState = IStatsStorage::ProviderModelStats;
/// Per model statistics.
pub type ModelStatsState = IStatsStorage::ModelStats;

/// One entity read at a block. `None` means the diamond does not know it (zero struct).
#[derive(Clone)]
pub enum Snapshot {
    /// `getProvider`.
    Provider(Address, Option<ProviderState>),
    /// `getModel`.
    Model(B256, Option<ModelState>),
    /// `getBid`.
    Bid(B256, Option<BidState>),
    /// `getSession`, with the bid's provider and model (the session's own struct does not carry them).
    Session(B256, Option<(SessionState, Address, B256)>),
    /// `getProviderModelStats(model, provider)`.
    ProviderModelStats(B256, Address, ProviderModelStatsState),
    /// `getModelStats(model)`.
    ModelStats(B256, ModelStatsState),
}

/// What to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Read {
    /// A provider.
    Provider(Address),
    /// A model.
    Model(B256),
    /// A bid.
    Bid(B256),
    /// A session, and then the statistics of its provider and model.
    Session(B256),
    /// The statistics of a provider on a model.
    ProviderModelStats(B256, Address),
    /// The statistics of a model.
    ModelStats(B256),
}

/// Reads every entity of `reads` at `block`. A session also yields the statistics of its (model,
/// provider) pair and of its model.
pub async fn read_all(
    provider: &DynProvider,
    diamond: Address,
    reads: &BTreeSet<Read>,
    block: u64,
) -> Result<Vec<Snapshot>, alloy::contract::Error> {
    let at = BlockId::number(block);
    let batches: Vec<Vec<Snapshot>> = stream::iter(reads.iter().copied())
        .map(|read| read_one(provider, diamond, read, at))
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(batches.into_iter().flatten().collect())
}

async fn read_one(
    provider: &DynProvider,
    diamond: Address,
    read: Read,
    at: BlockId,
) -> Result<Vec<Snapshot>, alloy::contract::Error> {
    match read {
        Read::Provider(address) => {
            let p = ProviderRegistry::new(diamond, provider).getProvider(address).block(at).call().await?;
            Ok(vec![Snapshot::Provider(address, (p.createdAt != 0).then_some(p))])
        }
        Read::Model(id) => {
            let m = ModelRegistry::new(diamond, provider).getModel(id).block(at).call().await?;
            Ok(vec![Snapshot::Model(id, (m.createdAt != 0).then_some(m))])
        }
        Read::Bid(id) => {
            let b = Marketplace::new(diamond, provider).getBid(id).block(at).call().await?;
            Ok(vec![Snapshot::Bid(id, (b.createdAt != 0).then_some(b))])
        }
        Read::Session(id) => {
            let router = SessionRouter::new(diamond, provider);
            let s = router.getSession(id).block(at).call().await?;
            if s.openedAt == 0 {
                return Ok(vec![Snapshot::Session(id, None)]);
            }
            let bid = Marketplace::new(diamond, provider).getBid(s.bidId).block(at).call().await?;
            let (model, bid_provider) = (bid.modelId, bid.provider);
            let pm = router.getProviderModelStats(model, bid_provider).block(at).call().await?;
            let ms = router.getModelStats(model).block(at).call().await?;
            Ok(vec![
                Snapshot::Session(id, Some((s, bid_provider, model))),
                Snapshot::ProviderModelStats(model, bid_provider, pm),
                Snapshot::ModelStats(model, ms),
            ])
        }
        Read::ProviderModelStats(model, stats_provider) => {
            let router = SessionRouter::new(diamond, provider);
            let pm = router.getProviderModelStats(model, stats_provider).block(at).call().await?;
            Ok(vec![Snapshot::ProviderModelStats(model, stats_provider, pm)])
        }
        Read::ModelStats(model) => {
            let ms = SessionRouter::new(diamond, provider).getModelStats(model).block(at).call().await?;
            Ok(vec![Snapshot::ModelStats(model, ms)])
        }
    }
}
