//! The `providers` table: [`ProvidersRepo`] (reads and single writes) and the row codec used by
//! the batch writer.

use alloy::primitives::Address;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, ListSpec, Where};
use super::types::{EntityRef, Page, Paged, Provider, ProviderFilter};
use super::write;

/// Providers, by address. Reached through [`Store::providers`](super::Store::providers).
#[derive(Debug, Clone, Copy)]
pub struct ProvidersRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) caches: &'a super::cache::Caches,
}

impl ProvidersRepo<'_> {
    /// The provider with this address.
    pub async fn get(&self, address: Address) -> Result<Option<Provider>, StoreError> {
        let miss = match self.caches.providers.get(&address) {
            Ok(cached) => return Ok(Some(cached)),
            Err(miss) => miss,
        };
        let row = sqlx::query(
            "SELECT address, endpoint, stake, created_at, limit_period_end, limit_period_earned, \
             is_deleted FROM providers WHERE address = $1",
        )
        .bind(codec::addr(&address))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get provider"))?;
        let found = row.as_ref().map(decode).transpose()?;
        if let Some(found) = &found {
            self.caches.providers.put(miss, address, found.clone());
        }
        Ok(found)
    }

    /// Providers matching `filter`, oldest registration first (or newest with
    /// [`Page::newest_first`]).
    pub async fn list(&self, filter: ProviderFilter, page: Page) -> Result<Paged<Provider>, StoreError> {
        sql::paged(self.pool, &LIST, &filter_sql(&filter), page, decode).await
    }

    /// Inserts or replaces a provider (its own transaction). The indexer writes through
    /// [`Store::apply_batch`](super::Store::apply_batch) instead.
    pub async fn upsert(&self, provider: &Provider) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert provider").await?;
        upsert(&mut tx, provider).await?;
        let committed = sql::commit(tx, "upsert provider").await;
        self.caches.invalidate_index();
        committed
    }

    /// Deletes a provider; `false` if there was none.
    pub async fn delete(&self, address: Address) -> Result<bool, StoreError> {
        let deleted = write::delete_one(self.pool, EntityRef::Provider(address)).await;
        self.caches.invalidate_index();
        deleted
    }
}

pub(crate) fn filter_sql(filter: &ProviderFilter) -> Where {
    let mut w = Where::new();
    if filter.active_only {
        w.cond("is_deleted = FALSE");
    }
    w
}

pub(crate) const LIST: ListSpec = ListSpec {
    op: "list providers",
    select: "SELECT address, endpoint, stake, created_at, limit_period_end, limit_period_earned, \
             is_deleted FROM providers",
    count: "SELECT COUNT(*) FROM providers",
    order_by: &["created_at", "address"],
};

fn decode(row: &SqliteRow) -> Result<Provider, StoreError> {
    let c = Cols::new(row, "providers");
    Ok(Provider {
        address: c.address("address")?,
        endpoint: c.text("endpoint")?,
        stake: c.u256("stake")?,
        created_at: c.u64("created_at")?,
        limit_period_end: c.u64("limit_period_end")?,
        limit_period_earned: c.u256("limit_period_earned")?,
        is_deleted: c.boolean("is_deleted")?,
    })
}

/// Inserts or replaces one provider inside the caller's transaction.
pub(crate) async fn upsert(conn: &mut SqliteConnection, p: &Provider) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO providers (address, endpoint, stake, created_at, limit_period_end, \
         limit_period_earned, is_deleted) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (address) DO UPDATE SET endpoint = excluded.endpoint, stake = excluded.stake, \
         created_at = excluded.created_at, limit_period_end = excluded.limit_period_end, \
         limit_period_earned = excluded.limit_period_earned, is_deleted = excluded.is_deleted",
    )
    .bind(codec::addr(&p.address))
    .bind(p.endpoint.clone())
    .bind(codec::u256(&p.stake))
    .bind(codec::int("provider.created_at", p.created_at)?)
    .bind(codec::int("provider.limit_period_end", p.limit_period_end)?)
    .bind(codec::u256(&p.limit_period_earned))
    .bind(p.is_deleted)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert provider"))?;
    write::clear_stale(conn, &EntityRef::Provider(p.address)).await
}
