//! The `bids` table: [`BidsRepo`] (reads and single writes) and the row codec used by the batch
//! writer.

use alloy::primitives::B256;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, Arg, ListSpec, Where};
use super::types::{Bid, BidFilter, EntityRef, Page, Paged};
use super::write;

/// Bids, by id. Reached through [`Store::bids`](super::Store::bids).
#[derive(Debug, Clone, Copy)]
pub struct BidsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl BidsRepo<'_> {
    /// The bid with this id.
    pub async fn get(&self, id: B256) -> Result<Option<Bid>, StoreError> {
        let row = sqlx::query(
            "SELECT bid_id, provider, model_id, price_per_second, nonce, created_at, deleted_at \
             FROM bids WHERE bid_id = $1",
        )
        .bind(codec::b256(&id))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get bid"))?;
        row.as_ref().map(decode).transpose()
    }

    /// Bids matching `filter` (e.g. the active bids of a model, or of a provider), oldest first
    /// (or newest with [`Page::newest_first`]).
    pub async fn list(&self, filter: BidFilter, page: Page) -> Result<Paged<Bid>, StoreError> {
        sql::paged(self.pool, &LIST, &filter_sql(&filter), page, decode).await
    }

    /// Inserts or replaces a bid (its own transaction). The indexer writes through
    /// [`Store::apply_batch`](super::Store::apply_batch) instead.
    pub async fn upsert(&self, bid: &Bid) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert bid").await?;
        upsert(&mut tx, bid).await?;
        sql::commit(tx, "upsert bid").await
    }

    /// Deletes a bid; `false` if there was none.
    pub async fn delete(&self, id: B256) -> Result<bool, StoreError> {
        write::delete_one(self.pool, EntityRef::Bid(id)).await
    }
}

pub(crate) fn filter_sql(filter: &BidFilter) -> Where {
    let mut w = Where::new();
    if let Some(model_id) = filter.model_id {
        w.bind("model_id = ", Arg::Text(codec::b256(&model_id)));
    }
    if let Some(provider) = filter.provider {
        w.bind("provider = ", Arg::Text(codec::addr(&provider)));
    }
    if filter.active_only {
        w.cond("deleted_at = 0");
    }
    w
}

pub(crate) const LIST: ListSpec = ListSpec {
    op: "list bids",
    select: "SELECT bid_id, provider, model_id, price_per_second, nonce, created_at, deleted_at \
             FROM bids",
    count: "SELECT COUNT(*) FROM bids",
    order_by: &["created_at", "bid_id"],
};

fn decode(row: &SqliteRow) -> Result<Bid, StoreError> {
    let c = Cols::new(row, "bids");
    Ok(Bid {
        id: c.b256("bid_id")?,
        provider: c.address("provider")?,
        model_id: c.b256("model_id")?,
        price_per_second: c.u256("price_per_second")?,
        nonce: c.u256("nonce")?,
        created_at: c.u64("created_at")?,
        deleted_at: c.u64("deleted_at")?,
    })
}

/// Inserts or replaces one bid inside the caller's transaction.
pub(crate) async fn upsert(conn: &mut SqliteConnection, b: &Bid) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO bids (bid_id, provider, model_id, price_per_second, nonce, created_at, \
         deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (bid_id) DO UPDATE SET provider = excluded.provider, \
         model_id = excluded.model_id, price_per_second = excluded.price_per_second, \
         nonce = excluded.nonce, created_at = excluded.created_at, deleted_at = excluded.deleted_at",
    )
    .bind(codec::b256(&b.id))
    .bind(codec::addr(&b.provider))
    .bind(codec::b256(&b.model_id))
    .bind(codec::u256(&b.price_per_second))
    .bind(codec::u256(&b.nonce))
    .bind(codec::int("bid.created_at", b.created_at)?)
    .bind(codec::int("bid.deleted_at", b.deleted_at)?)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert bid"))?;
    write::clear_stale(conn, &EntityRef::Bid(b.id)).await
}
