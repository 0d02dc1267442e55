//! Converts what the diamond returns into the store's records: for the indexer's batches (an entity
//! the diamond does not know, a zero struct, becomes a removal, so the tables stay equal to the chain
//! after a reorg as well) and for the direct chain reads of the API, the consumer and the provider.

use alloy::primitives::{Address, B256};

use super::reader::{
    BidState, ModelState, ModelStatsState, ProviderModelStatsState, ProviderState, SessionState, Snapshot,
};
use crate::chain::bindings::LibSD;
use crate::store::{self, EntityChanges, EntityRef};

/// Chain timestamps are `uint128` seconds; anything beyond `u64` is clamped (year 584 billion).
pub fn secs(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// `getProvider(address)` as the store's record.
pub fn provider(address: Address, p: ProviderState) -> store::Provider {
    store::Provider {
        address,
        endpoint: p.endpoint,
        stake: p.stake,
        created_at: secs(p.createdAt),
        limit_period_end: secs(p.limitPeriodEnd),
        limit_period_earned: p.limitPeriodEarned,
        is_deleted: p.isDeleted,
    }
}

/// `getModel(id)` as the store's record.
pub fn model(id: B256, m: ModelState) -> store::Model {
    store::Model {
        id,
        ipfs_cid: m.ipfsCID,
        fee: m.fee,
        stake: m.stake,
        owner: m.owner,
        name: m.name,
        tags: m.tags,
        created_at: secs(m.createdAt),
        is_deleted: m.isDeleted,
    }
}

/// `getBid(id)` as the store's record.
pub fn bid(id: B256, b: BidState) -> store::Bid {
    store::Bid {
        id,
        provider: b.provider,
        model_id: b.modelId,
        price_per_second: b.pricePerSecond,
        nonce: b.nonce,
        created_at: secs(b.createdAt),
        deleted_at: secs(b.deletedAt),
    }
}

/// `getSession(id)` as the store's record, with its bid's provider and model.
pub fn session(id: B256, s: SessionState, provider: Address, model_id: B256) -> store::Session {
    store::Session {
        id,
        user: s.user,
        bid_id: s.bidId,
        provider,
        model_id,
        stake: s.stake,
        closeout_receipt: s.closeoutReceipt,
        closeout_type: s.closeoutType,
        provider_withdrawn_amount: s.providerWithdrawnAmount,
        opened_at: secs(s.openedAt),
        ends_at: secs(s.endsAt),
        closed_at: secs(s.closedAt),
        is_active: s.isActive,
        is_direct_payment: s.isDirectPaymentFromUser,
    }
}

fn sd(value: &LibSD::SD) -> store::Sd {
    store::Sd { mean: value.mean, sq_sum: value.sqSum }
}

fn provider_model_stats(
    model_id: B256,
    provider: Address,
    s: &ProviderModelStatsState,
) -> store::ProviderModelStats {
    store::ProviderModelStats {
        model_id,
        provider,
        tps_scaled1000: sd(&s.tpsScaled1000),
        ttft_ms: sd(&s.ttftMs),
        total_duration: s.totalDuration,
        success_count: s.successCount,
        total_count: s.totalCount,
    }
}

fn model_stats(model_id: B256, s: &ModelStatsState) -> store::ModelStats {
    store::ModelStats {
        model_id,
        tps_scaled1000: sd(&s.tpsScaled1000),
        ttft_ms: sd(&s.ttftMs),
        total_duration: sd(&s.totalDuration),
        count: s.count,
    }
}

/// Folds snapshots into the changes of one batch (upserts, or removals for unknown entities).
pub fn into_changes(snapshots: Vec<Snapshot>) -> EntityChanges {
    let mut changes = EntityChanges::default();
    for snapshot in snapshots {
        match snapshot {
            Snapshot::Provider(address, None) => changes.removed.push(EntityRef::Provider(address)),
            Snapshot::Provider(address, Some(p)) => changes.providers.push(provider(address, p)),
            Snapshot::Model(id, None) => changes.removed.push(EntityRef::Model(id)),
            Snapshot::Model(id, Some(m)) => changes.models.push(model(id, m)),
            Snapshot::Bid(id, None) => changes.removed.push(EntityRef::Bid(id)),
            Snapshot::Bid(id, Some(b)) => changes.bids.push(bid(id, b)),
            Snapshot::Session(id, None) => changes.removed.push(EntityRef::Session(id)),
            Snapshot::Session(id, Some((s, p, m))) => changes.sessions.push(session(id, s, p, m)),
            Snapshot::ProviderModelStats(model_id, provider, s) if s.totalCount == 0 => {
                changes.removed.push(EntityRef::ProviderModelStats { model_id, provider })
            }
            Snapshot::ProviderModelStats(model_id, provider, s) => {
                changes.provider_model_stats.push(provider_model_stats(model_id, provider, &s))
            }
            Snapshot::ModelStats(model_id, s) => {
                let stats = model_stats(model_id, &s);
                let zero = store::Sd::default();
                if stats.count == 0
                    && stats.tps_scaled1000 == zero
                    && stats.ttft_ms == zero
                    && stats.total_duration == zero
                {
                    changes.removed.push(EntityRef::ModelStats(model_id));
                } else {
                    changes.model_stats.push(stats);
                }
            }
        }
    }
    dedup(&mut changes);
    changes
}

/// One session read yields the stats of its pair and model; several sessions of the same pair yield
/// the same stats several times. Keep one of each (they were read at the same block).
fn dedup(changes: &mut EntityChanges) {
    changes.provider_model_stats.sort_by_key(|s| (s.model_id, s.provider));
    changes.provider_model_stats.dedup_by_key(|s| (s.model_id, s.provider));
    changes.model_stats.sort_by_key(|s| s.model_id);
    changes.model_stats.dedup_by_key(|s| s.model_id);
    changes.removed.sort();
    changes.removed.dedup();
}
