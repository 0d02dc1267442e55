//! The indexer's loop: one [`Indexer::step`] indexes one bounded block range (or undoes a reorg), and
//! [`Indexer::run`] repeats it forever with back-off on errors.
//!
//! One step:
//! 1. read the head; the target is `head - confirmations`;
//! 2. check the stored cursor block (and the newest stored block below it) against the chain: a
//!    different hash is a reorg, handled by walking back the stored hashes to the common ancestor,
//!    re-reading every entity touched above it at the ancestor, and rolling back in one transaction;
//! 3. otherwise fetch the range's logs (all diamond logs, and MOR transfers paid by the diamond or the
//!    funding account, which reveal provider claims), decode which entities they touch, read those
//!    entities at the range's last block, and hand events, journal, entities and the new cursor to
//!    [`Store::apply_batch`] — one SQL transaction, so a crash never applies half a range and the
//!    `(block, log index)` key never applies an event twice. A restart resumes at the cursor.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::pubsub::Subscription;
use alloy::rpc::types::{Filter, Header, Log};
use alloy::sol_types::{SolCall, SolEvent};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::convert::into_changes;
use super::decode::{decode, Touched as Hit};
use super::reader::{read_all, Read};
use super::IndexError;
use crate::chain::bindings::{MorpheusToken, SessionRouter};
use crate::store::{
    BlockRef, EntityChanges, EntityRef, EventRecord, IndexBatch, Page, Rollback, SessionFilter, Store,
    Touched,
};

/// How far back (in stored block hashes) a reorg is searched for its common ancestor; a deeper reorg
/// re-indexes from the start block.
pub const REORG_SEARCH_DEPTH: u64 = 512;

/// What the indexer needs to know.
#[derive(Debug, Clone)]
pub struct IndexerOptions {
    /// The chain id the index belongs to (bound in the store on first use).
    pub chain_id: u64,
    /// The marketplace diamond.
    pub diamond: Address,
    /// The MOR token.
    pub token: Address,
    /// First block of an empty index.
    pub start_block: u64,
    /// Blocks this deep or deeper are indexed.
    pub confirmations: u64,
    /// Largest range of one `eth_getLogs`.
    pub block_range: u64,
    /// Wait between two head polls once caught up, and the first retry delay.
    pub polling_interval: Duration,
    /// Cap of the retry delay.
    pub max_backoff: Duration,
}

/// Progress and health, published after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexerStatus {
    /// Latest head seen.
    pub head: Option<u64>,
    /// Last indexed block (the cursor).
    pub indexed: Option<u64>,
    /// `head - indexed`, in blocks.
    pub lag: Option<u64>,
    /// Consecutive failed steps (0 when healthy).
    pub consecutive_errors: u32,
    /// The last error, if the last step failed.
    pub last_error: Option<String>,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Indexed blocks `from..=to` with this many logs.
    Indexed {
        /// First block of the range.
        from: u64,
        /// Last block of the range (the new cursor).
        to: u64,
        /// Logs stored.
        events: usize,
    },
    /// A reorg was undone; the cursor is now this block (`None`: re-index from the start block).
    RolledBack {
        /// The common ancestor.
        to: Option<u64>,
    },
    /// Nothing to do: the cursor is at `head - confirmations`.
    CaughtUp {
        /// The head seen.
        head: u64,
    },
}

/// The chain indexer. Cheap to build; run it with [`Indexer::run`] under a cancellation token.
pub struct Indexer {
    provider: DynProvider,
    store: Store,
    options: IndexerOptions,
    payers: Vec<Address>,
    status: watch::Sender<IndexerStatus>,
    heads: Option<Subscription<Header>>,
}

impl Indexer {
    /// Binds the store to this chain and diamond (refusing an index built for another pair) and reads
    /// the funding account, whose MOR transfers are provider payouts.
    pub async fn new(
        provider: DynProvider,
        store: Store,
        options: IndexerOptions,
    ) -> Result<Self, IndexError> {
        store.indexer().bind_source(options.chain_id, options.diamond).await?;
        let funding = SessionRouter::new(options.diamond, &provider).getFundingAccount().call().await?;
        let payers = vec![options.diamond, funding];
        let (status, _) = watch::channel(IndexerStatus::default());
        Ok(Self { provider, store, options, payers, status, heads: None })
    }

    /// Wakes the caught-up indexer on every new head of this subscription (`ETH_NODE_USE_SUBSCRIPTIONS`)
    /// instead of waiting for the next poll. Polling stays as the fallback, and a closed subscription
    /// simply returns the indexer to polling.
    pub fn with_new_heads(mut self, heads: Subscription<Header>) -> Self {
        self.heads = Some(heads);
        self
    }

    /// A receiver of the indexer's status (lag, errors) for health checks.
    pub fn status(&self) -> watch::Receiver<IndexerStatus> {
        self.status.subscribe()
    }

    /// Runs until `cancel` fires. RPC and store errors are logged, published in the status and
    /// retried with exponential back-off capped at `max_backoff`; they never end the loop.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut errors: u32 = 0;
        loop {
            let mut caught_up = false;
            let wait = match self.step().await {
                Ok(Step::CaughtUp { .. }) => {
                    errors = 0;
                    caught_up = true;
                    self.options.polling_interval
                }
                Ok(step) => {
                    errors = 0;
                    tracing::debug!(?step, "indexer step");
                    Duration::ZERO
                }
                Err(error) => {
                    errors = errors.saturating_add(1);
                    tracing::warn!(%error, consecutive = errors, "indexer step failed; retrying");
                    self.status.send_modify(|s| {
                        s.consecutive_errors = errors;
                        s.last_error = Some(error.to_string());
                    });
                    backoff(self.options.polling_interval, self.options.max_backoff, errors)
                }
            };
            if wait.is_zero() {
                if cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            let heads = self.heads.as_mut().filter(|_| caught_up);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                head = next_head(heads) => {
                    if head.is_none() {
                        tracing::warn!("new-heads subscription closed: the indexer polls from now on");
                        self.heads = None;
                    }
                }
            }
        }
    }

    /// Does one unit of work: undo a reorg, index one range, or report that it is caught up.
    pub async fn step(&mut self) -> Result<Step, IndexError> {
        let head = self.provider.get_block_number().await?;
        let target = head.saturating_sub(self.options.confirmations);
        let cursor = self.store.indexer().cursor().await?;

        if let Some(cursor) = cursor {
            if let Some(step) = self.check_reorg(cursor).await? {
                self.publish(head, self.store.indexer().cursor().await?.map(|c| c.number));
                return Ok(step);
            }
        }

        let from = cursor.map_or(self.options.start_block, |c| c.number + 1);
        if from > target {
            self.publish(head, cursor.map(|c| c.number));
            return Ok(Step::CaughtUp { head });
        }
        let to = target.min(from.saturating_add(self.options.block_range.max(1) - 1));
        let events = self.index_range(cursor, from, to).await?;
        self.publish(head, Some(to));
        Ok(Step::Indexed { from, to, events })
    }

    fn publish(&self, head: u64, indexed: Option<u64>) {
        self.status.send_replace(IndexerStatus {
            head: Some(head),
            indexed,
            lag: indexed.map(|i| head.saturating_sub(i)),
            consecutive_errors: 0,
            last_error: None,
        });
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, IndexError> {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await?;
        Ok(block.map(|b| b.header.hash))
    }

    /// Compares the cursor block and the newest stored block below it with the chain; on a mismatch
    /// rolls back to the common ancestor.
    async fn check_reorg(&self, cursor: BlockRef) -> Result<Option<Step>, IndexError> {
        let stored = self.store.indexer().blocks_at_or_below(cursor.number, 2).await?;
        let mut probes = vec![cursor];
        probes.extend(stored.into_iter().filter(|b| b.number != cursor.number));
        for probe in probes {
            if self.block_hash(probe.number).await? != Some(probe.hash) {
                return Ok(Some(self.roll_back(cursor).await?));
            }
        }
        Ok(None)
    }

    async fn roll_back(&self, cursor: BlockRef) -> Result<Step, IndexError> {
        let stored = self.store.indexer().blocks_at_or_below(cursor.number, REORG_SEARCH_DEPTH).await?;
        let mut ancestor = None;
        for block in stored {
            if self.block_hash(block.number).await? == Some(block.hash) {
                ancestor = Some(block);
                break;
            }
        }
        let Some(ancestor) = ancestor else {
            tracing::warn!(%cursor, "reorg deeper than the stored block hashes: re-indexing from the start block");
            self.store.reset_index().await?;
            return Ok(Step::RolledBack { to: None });
        };

        let touched = self.store.indexer().touched_above(ancestor.number).await?;
        let changes = read_entities(&self.provider, self.options.diamond, &touched, ancestor.number).await?;
        let report =
            self.store.rollback(&Rollback { expected_cursor: cursor, to: ancestor, changes }).await?;
        tracing::warn!(
            from = %cursor,
            to = %ancestor,
            events_removed = report.events_removed,
            entities = report.touched.len(),
            "chain reorganised: rolled back to the common ancestor"
        );
        Ok(Step::RolledBack { to: Some(ancestor.number) })
    }

    async fn index_range(&self, cursor: Option<BlockRef>, from: u64, to: u64) -> Result<usize, IndexError> {
        // The end block first: a reorg after this point shows up as a hash mismatch at the next step.
        let to_hash = self.block_hash(to).await?.ok_or(IndexError::MissingBlock(to))?;

        let diamond_logs = Filter::new().address(self.options.diamond).from_block(from).to_block(to);
        let payouts = Filter::new()
            .address(self.options.token)
            .event_signature(MorpheusToken::Transfer::SIGNATURE_HASH)
            .topic1(self.payers.iter().map(|p| p.into_word()).collect::<Vec<B256>>())
            .from_block(from)
            .to_block(to);
        let mut logs = self.provider.get_logs(&diamond_logs).await?;
        logs.extend(self.provider.get_logs(&payouts).await?);
        logs.retain(|l| !l.removed);
        logs.sort_by_key(|l| (l.block_number, l.log_index));

        let mut events = Vec::with_capacity(logs.len());
        let mut journal: BTreeSet<(u64, EntityRef)> = BTreeSet::new();
        let mut reads: BTreeSet<Read> = BTreeSet::new();
        let mut payout_txs: BTreeMap<B256, (u64, Address)> = BTreeMap::new();

        for log in &logs {
            let (Some(block_number), Some(block_hash), Some(log_index), Some(tx_hash)) =
                (log.block_number, log.block_hash, log.log_index, log.transaction_hash)
            else {
                return Err(IndexError::IncompleteLog);
            };
            let decoded = decode(&log.inner, self.options.diamond, self.options.token, &self.payers);
            for hit in &decoded.touched {
                match *hit {
                    Hit::Provider(a) => note(&mut reads, &mut journal, block_number, Read::Provider(a)),
                    Hit::Model(id) => note(&mut reads, &mut journal, block_number, Read::Model(id)),
                    Hit::Bid(id) => note(&mut reads, &mut journal, block_number, Read::Bid(id)),
                    Hit::Session(id) => note(&mut reads, &mut journal, block_number, Read::Session(id)),
                    Hit::ProviderPayouts(p) => {
                        payout_txs.insert(tx_hash, (block_number, p));
                    }
                }
            }
            events.push(event_record(log, block_number, block_hash, log_index, tx_hash, decoded.name));
        }

        for (tx_hash, (block_number, payee)) in payout_txs {
            self.payout_reads(tx_hash, block_number, payee, &mut reads, &mut journal).await?;
        }

        let snapshots = read_all(&self.provider, self.options.diamond, &reads, to).await?;
        // A session read also yields its stats: journal them at the session's blocks.
        let session_blocks: Vec<(u64, B256)> = journal
            .iter()
            .filter_map(|(b, e)| match e {
                EntityRef::Session(id) => Some((*b, *id)),
                _ => None,
            })
            .collect();
        let changes = into_changes(snapshots);
        for (block, id) in session_blocks {
            if let Some(s) = changes.sessions.iter().find(|s| s.id == id) {
                journal.insert((
                    block,
                    EntityRef::ProviderModelStats { model_id: s.model_id, provider: s.provider },
                ));
                journal.insert((block, EntityRef::ModelStats(s.model_id)));
            }
        }

        let count = events.len();
        let batch = IndexBatch {
            expected_cursor: cursor,
            to: BlockRef::new(to, to_hash),
            blocks: Vec::new(),
            events,
            touched: journal
                .into_iter()
                .map(|(block_number, entity)| Touched { block_number, entity })
                .collect(),
            changes,
        };
        self.store.apply_batch(&batch).await?;
        Ok(count)
    }

    /// A MOR payout to `payee` changed some session's `providerWithdrawnAmount`. A direct
    /// `claimForProvider(sessionId)` call names the session; otherwise (a claim through a contract such
    /// as a subnet delegate, or the payout of a close, whose session is read anyway) every unsettled
    /// session of the payee is re-read.
    async fn payout_reads(
        &self,
        tx_hash: B256,
        block_number: u64,
        payee: Address,
        reads: &mut BTreeSet<Read>,
        journal: &mut BTreeSet<(u64, EntityRef)>,
    ) -> Result<(), IndexError> {
        note(reads, journal, block_number, Read::Provider(payee));
        let tx = self.provider.get_transaction_by_hash(tx_hash).await?;
        if let Some(tx) = tx.filter(|tx| tx.to() == Some(self.options.diamond)) {
            let input = tx.input();
            if let Ok(call) = SessionRouter::claimForProviderCall::abi_decode(input) {
                note(reads, journal, block_number, Read::Session(call.sessionId_));
                return Ok(());
            }
            if input.starts_with(&SessionRouter::closeSessionCall::SELECTOR) {
                return Ok(()); // SessionClosed names the session.
            }
        }
        let mut offset = 0;
        loop {
            let filter = SessionFilter { provider: Some(payee), ..Default::default() };
            let page = self.store.sessions().list(filter, Page::new(offset, Page::MAX_LIMIT)).await?;
            for session in &page.items {
                if session.closed_at == 0 || session.closeout_type != alloy::primitives::U256::ZERO {
                    note(reads, journal, block_number, Read::Session(session.id));
                }
            }
            offset += page.items.len() as u64;
            if page.items.is_empty() || offset >= page.total {
                return Ok(());
            }
        }
    }
}

/// Reads `entities` from the diamond at `block` as the store's records (unknown ones as removals).
pub async fn read_entities(
    provider: &DynProvider,
    diamond: Address,
    entities: &BTreeSet<EntityRef>,
    block: u64,
) -> Result<EntityChanges, IndexError> {
    let reads = entities.iter().map(|e| read_of(*e)).collect();
    Ok(into_changes(read_all(provider, diamond, &reads, block).await?))
}

/// The next head of the subscription; `None` when it closed. Pending forever without a subscription,
/// so the `select!` branch never fires.
async fn next_head(heads: Option<&mut Subscription<Header>>) -> Option<Header> {
    match heads {
        Some(heads) => loop {
            match heads.recv().await {
                Ok(head) => return Some(head),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        },
        None => std::future::pending().await,
    }
}

fn note(reads: &mut BTreeSet<Read>, journal: &mut BTreeSet<(u64, EntityRef)>, block: u64, read: Read) {
    reads.insert(read);
    journal.insert((block, entity_of(read)));
}

fn entity_of(read: Read) -> EntityRef {
    match read {
        Read::Provider(a) => EntityRef::Provider(a),
        Read::Model(id) => EntityRef::Model(id),
        Read::Bid(id) => EntityRef::Bid(id),
        Read::Session(id) => EntityRef::Session(id),
        Read::ProviderModelStats(model_id, provider) => EntityRef::ProviderModelStats { model_id, provider },
        Read::ModelStats(id) => EntityRef::ModelStats(id),
    }
}

fn read_of(entity: EntityRef) -> Read {
    match entity {
        EntityRef::Provider(a) => Read::Provider(a),
        EntityRef::Model(id) => Read::Model(id),
        EntityRef::Bid(id) => Read::Bid(id),
        EntityRef::Session(id) => Read::Session(id),
        EntityRef::ProviderModelStats { model_id, provider } => Read::ProviderModelStats(model_id, provider),
        EntityRef::ModelStats(id) => Read::ModelStats(id),
    }
}

fn event_record(
    log: &Log,
    block_number: u64,
    block_hash: B256,
    log_index: u64,
    tx_hash: B256,
    name: &str,
) -> EventRecord {
    EventRecord {
        block_number,
        block_hash,
        log_index,
        tx_hash,
        tx_index: log.transaction_index.unwrap_or_default(),
        address: log.address(),
        name: name.to_owned(),
        topics: log.topics().to_vec(),
        data: log.data().data.clone(),
        decoded: None,
    }
}

/// `base * 2^(n-1)`, capped at `max`.
fn backoff(base: Duration, max: Duration, consecutive_errors: u32) -> Duration {
    let factor = 1u32.checked_shl(consecutive_errors.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(base, max, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, max, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, max, 4), Duration::from_secs(8));
        assert_eq!(backoff(base, max, 10), max);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }
}
