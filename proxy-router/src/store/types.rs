//! The store's plain data types: the chain records it holds (one per aggregate), references to them,
//! pagination, and the batches through which the indexer writes.
//!
//! Field names follow the contracts' structs (docs/contracts.md); amounts are exact [`U256`],
//! timestamps are unix seconds, and "not yet" timestamps are 0 exactly as on chain.

use std::fmt;

use alloy::primitives::{Address, Bytes, B256, U256};

/// A provider: `getProvider(address)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The provider's address (its id).
    pub address: Address,
    /// The MOR-RPC endpoint, `host:port`.
    pub endpoint: String,
    /// The stake held by the diamond.
    pub stake: U256,
    /// First registration time.
    pub created_at: u64,
    /// End of the current 365-day reward-limiter window.
    pub limit_period_end: u64,
    /// Rewards earned in the current limiter window.
    pub limit_period_earned: U256,
    /// Deregistered.
    pub is_deleted: bool,
}

impl Provider {
    /// Registered and not deregistered (`getIsProviderActive`).
    pub fn is_active(&self) -> bool {
        self.created_at != 0 && !self.is_deleted
    }
}

/// A model: `getModel(bytes32)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// `keccak256(owner, baseModelId)`.
    pub id: B256,
    /// IPFS content id of the model's description.
    pub ipfs_cid: B256,
    /// The declared fee (unused on chain).
    pub fee: U256,
    /// The stake held by the diamond.
    pub stake: U256,
    /// The model's owner.
    pub owner: Address,
    /// Display name.
    pub name: String,
    /// Tags, in chain order.
    pub tags: Vec<String>,
    /// First registration time.
    pub created_at: u64,
    /// Deregistered.
    pub is_deleted: bool,
}

impl Model {
    /// Registered and not deregistered (`getIsModelActive`).
    pub fn is_active(&self) -> bool {
        self.created_at != 0 && !self.is_deleted
    }
}

/// A bid: `getBid(bytes32)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    /// `keccak256(provider, modelId, nonce)`.
    pub id: B256,
    /// The provider that posted it.
    pub provider: Address,
    /// The model it prices.
    pub model_id: B256,
    /// MOR wei per second.
    pub price_per_second: U256,
    /// Per provider–model counter, starting at 0.
    pub nonce: U256,
    /// Posting time.
    pub created_at: u64,
    /// Deletion time, 0 while active.
    pub deleted_at: u64,
}

impl Bid {
    /// Not deleted (`isBidActive`).
    pub fn is_active(&self) -> bool {
        self.created_at != 0 && self.deleted_at == 0
    }
}

/// A session: `getSession(bytes32)`, plus the bid's provider and model copied in for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `keccak256(user, provider, bidId, sessionNonce)`.
    pub id: B256,
    /// The consumer that opened it.
    pub user: Address,
    /// The bid it was opened on.
    pub bid_id: B256,
    /// The bid's provider (denormalised).
    pub provider: Address,
    /// The bid's model (denormalised).
    pub model_id: B256,
    /// The user's stake.
    pub stake: U256,
    /// The receipt passed to `closeSession`, verbatim; empty while open.
    pub closeout_receipt: Bytes,
    /// 0 = closed with a provider-signed receipt, 1 = dispute.
    pub closeout_type: U256,
    /// What the provider has been paid so far.
    pub provider_withdrawn_amount: U256,
    /// Opening time.
    pub opened_at: u64,
    /// Planned end.
    pub ends_at: u64,
    /// Closing time, 0 while open.
    pub closed_at: u64,
    /// Not closed yet.
    pub is_active: bool,
    /// Paid directly from the user's stake instead of the funding account.
    pub is_direct_payment: bool,
}

/// A LibSD running statistic: `(int64 mean, int64 sqSum)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sd {
    /// Running mean.
    pub mean: i64,
    /// Running sum of squared deviations.
    pub sq_sum: i64,
}

/// `getProviderModelStats(modelId, provider)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderModelStats {
    /// The model.
    pub model_id: B256,
    /// The provider.
    pub provider: Address,
    /// Tokens per second × 1000.
    pub tps_scaled1000: Sd,
    /// Time to first token, milliseconds.
    pub ttft_ms: Sd,
    /// Sum of successful sessions' durations, seconds.
    pub total_duration: u32,
    /// Sessions closed without dispute.
    pub success_count: u32,
    /// Sessions closed.
    pub total_count: u32,
}

/// `getModelStats(modelId)`: statistics across the providers of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStats {
    /// The model.
    pub model_id: B256,
    /// Tokens per second × 1000 (one observation per provider).
    pub tps_scaled1000: Sd,
    /// Time to first token, milliseconds.
    pub ttft_ms: Sd,
    /// Providers' total durations.
    pub total_duration: Sd,
    /// Providers with at least one successful session.
    pub count: u32,
}

/// A reference to one stored chain entity: the unit of the reorg journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityRef {
    /// A provider, by address.
    Provider(Address),
    /// A model, by id.
    Model(B256),
    /// A bid, by id.
    Bid(B256),
    /// A session, by id.
    Session(B256),
    /// The statistics of one provider on one model.
    ProviderModelStats {
        /// The model.
        model_id: B256,
        /// The provider.
        provider: Address,
    },
    /// The statistics of a model.
    ModelStats(B256),
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider(a) => write!(f, "provider {a}"),
            Self::Model(id) => write!(f, "model {id}"),
            Self::Bid(id) => write!(f, "bid {id}"),
            Self::Session(id) => write!(f, "session {id}"),
            Self::ProviderModelStats { model_id, provider } => {
                write!(f, "stats of provider {provider} on model {model_id}")
            }
            Self::ModelStats(id) => write!(f, "stats of model {id}"),
        }
    }
}

/// A block by number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

impl BlockRef {
    /// A block reference.
    pub fn new(number: u64, hash: B256) -> Self {
        Self { number, hash }
    }
}

impl fmt::Display for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} ({})", self.number, self.hash)
    }
}

/// One marketplace log, as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Position of the log in its block; unique with `block_number`.
    pub log_index: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Position of the transaction in its block.
    pub tx_index: u64,
    /// Emitting contract (the diamond).
    pub address: Address,
    /// Event name, e.g. `SessionOpened`.
    pub name: String,
    /// Raw topics, topic0 first.
    pub topics: Vec<B256>,
    /// Raw data.
    pub data: Bytes,
    /// Decoded arguments, when the indexer provides them.
    pub decoded: Option<serde_json::Value>,
}

/// One row of the journal: `block_number` touched `entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Touched {
    /// The block whose events changed the entity.
    pub block_number: u64,
    /// The entity.
    pub entity: EntityRef,
}

/// Entity writes applied together. Removals are applied first, then the upserts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityChanges {
    /// Providers to insert or replace.
    pub providers: Vec<Provider>,
    /// Models to insert or replace.
    pub models: Vec<Model>,
    /// Bids to insert or replace.
    pub bids: Vec<Bid>,
    /// Sessions to insert or replace.
    pub sessions: Vec<Session>,
    /// Provider-model statistics to insert or replace.
    pub provider_model_stats: Vec<ProviderModelStats>,
    /// Model statistics to insert or replace.
    pub model_stats: Vec<ModelStats>,
    /// Entities to delete (e.g. created only in orphaned blocks: the chain returns a zero struct).
    pub removed: Vec<EntityRef>,
}

impl EntityChanges {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
            && self.models.is_empty()
            && self.bids.is_empty()
            && self.sessions.is_empty()
            && self.provider_model_stats.is_empty()
            && self.model_stats.is_empty()
            && self.removed.is_empty()
    }

    /// Every entity this value writes or removes.
    pub fn entities(&self) -> Vec<EntityRef> {
        let mut out = Vec::new();
        out.extend(self.removed.iter().copied());
        out.extend(self.providers.iter().map(|p| EntityRef::Provider(p.address)));
        out.extend(self.models.iter().map(|m| EntityRef::Model(m.id)));
        out.extend(self.bids.iter().map(|b| EntityRef::Bid(b.id)));
        out.extend(self.sessions.iter().map(|s| EntityRef::Session(s.id)));
        out.extend(
            self.provider_model_stats
                .iter()
                .map(|s| EntityRef::ProviderModelStats { model_id: s.model_id, provider: s.provider }),
        );
        out.extend(self.model_stats.iter().map(|s| EntityRef::ModelStats(s.model_id)));
        out
    }
}

/// Everything the indexer learnt from one block range, applied in ONE transaction by
/// [`Store::apply_batch`](super::Store::apply_batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBatch {
    /// The cursor the batch was built on (`None` on an empty index). The batch is refused if the
    /// stored cursor is different, so two writers, or a replay, can never apply a range twice.
    pub expected_cursor: Option<BlockRef>,
    /// The new cursor: the last block of the range. Its hash is recorded for reorg detection.
    pub to: BlockRef,
    /// Further block hashes to record (every event's block is recorded anyway).
    pub blocks: Vec<BlockRef>,
    /// The range's logs, all in blocks after `expected_cursor` and up to `to`.
    pub events: Vec<EventRecord>,
    /// Which blocks touched which entities, all in the same block range.
    pub touched: Vec<Touched>,
    /// The entities' state as read from the chain.
    pub changes: EntityChanges,
}

/// A reorg rollback, applied in ONE transaction by [`Store::rollback`](super::Store::rollback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The cursor the rollback was computed from; refused if the stored cursor differs.
    pub expected_cursor: BlockRef,
    /// The last block still on the canonical chain (the common ancestor): the new cursor.
    pub to: BlockRef,
    /// Entities re-read from the chain at `to`, written in the same transaction. Entities touched
    /// above `to` and not written here stay listed in [`IndexerRepo::stale`](super::IndexerRepo::stale)
    /// until a later write.
    pub changes: EntityChanges,
}

/// What a rollback removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackReport {
    /// Every entity the removed blocks had touched.
    pub touched: std::collections::BTreeSet<EntityRef>,
    /// Events deleted.
    pub events_removed: u64,
    /// Block hashes deleted.
    pub blocks_removed: u64,
    /// Entities still to re-read (touched, not in the rollback's `changes`).
    pub stale: std::collections::BTreeSet<EntityRef>,
}

/// Sort order of a list: by creation (or opening) time, then id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// A page request: skip `offset` rows, return at most `limit` (at most [`Page::MAX_LIMIT`]).
/// `limit = 0` returns only the total, and an offset past the end returns an empty page, as the
/// contracts' `(offset, limit)` getters do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
    /// Sort order.
    pub order: Order,
}

impl Page {
    /// The largest page the store returns in one call.
    pub const MAX_LIMIT: u64 = 1000;

    /// `limit` rows after `offset`, oldest first.
    pub fn new(offset: u64, limit: u64) -> Self {
        Self { offset, limit, order: Order::OldestFirst }
    }

    /// The same page, newest first.
    pub fn newest_first(self) -> Self {
        Self { order: Order::NewestFirst, ..self }
    }
}

/// One page of a list and the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The rows of the page.
    pub items: Vec<T>,
    /// Rows matching the filter, over all pages.
    pub total: u64,
}

/// Filter of [`ProvidersRepo::list`](super::ProvidersRepo::list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderFilter {
    /// Only providers that are not deregistered.
    pub active_only: bool,
}

/// Filter of [`ModelsRepo::list`](super::ModelsRepo::list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelFilter {
    /// Only models that are not deregistered.
    pub active_only: bool,
    /// Only this owner's models.
    pub owner: Option<Address>,
}

/// Filter of [`BidsRepo::list`](super::BidsRepo::list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BidFilter {
    /// Only bids that are not deleted.
    pub active_only: bool,
    /// Only this provider's bids.
    pub provider: Option<Address>,
    /// Only bids on this model.
    pub model_id: Option<B256>,
}

/// Filter of [`SessionsRepo::list`](super::SessionsRepo::list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions not closed yet.
    pub active_only: bool,
    /// Only this user's sessions.
    pub user: Option<Address>,
    /// Only sessions served by this provider.
    pub provider: Option<Address>,
    /// Only sessions on this model.
    pub model_id: Option<B256>,
    /// Only sessions opened on this bid.
    pub bid_id: Option<B256>,
}

/// Filter of [`IndexerRepo::events`](super::IndexerRepo::events).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events in blocks at or after this one.
    pub from_block: Option<u64>,
    /// Only events in blocks at or before this one.
    pub to_block: Option<u64>,
    /// Only events with this name.
    pub name: Option<String>,
}
