//! The `sessions` table: [`SessionsRepo`] (reads and single writes) and the row codec used by the
//! batch writer. The bid's provider and model are stored with each session so that the API can list
//! a provider's or a model's sessions through an index, without a join.

use alloy::primitives::B256;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, Arg, ListSpec, Where};
use super::types::{EntityRef, Page, Paged, Session, SessionFilter};
use super::write;

/// Sessions, by id. Reached through [`Store::sessions`](super::Store::sessions).
#[derive(Debug, Clone, Copy)]
pub struct SessionsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) caches: &'a super::cache::Caches,
}

impl SessionsRepo<'_> {
    /// The session with this id.
    pub async fn get(&self, id: B256) -> Result<Option<Session>, StoreError> {
        let miss = match self.caches.sessions.get(&id) {
            Ok(cached) => return Ok(Some(cached)),
            Err(miss) => miss,
        };
        let row = sqlx::query(
            "SELECT session_id, user_address, bid_id, provider, model_id, stake, closeout_receipt, \
             closeout_type, provider_withdrawn_amount, opened_at, ends_at, closed_at, is_active, \
             is_direct_payment FROM sessions WHERE session_id = $1",
        )
        .bind(codec::b256(&id))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get session"))?;
        let found = row.as_ref().map(decode).transpose()?;
        if let Some(found) = &found {
            self.caches.sessions.put(miss, id, found.clone());
        }
        Ok(found)
    }

    /// Sessions matching `filter` (a user's, a provider's, a model's, a bid's; open only), oldest
    /// opening first (or newest with [`Page::newest_first`]).
    pub async fn list(&self, filter: SessionFilter, page: Page) -> Result<Paged<Session>, StoreError> {
        sql::paged(self.pool, &LIST, &filter_sql(&filter), page, decode).await
    }

    /// Open sessions whose planned end is at or before `time` (for an expiry sweeper), soonest
    /// end first, at most `limit` ([`Page::MAX_LIMIT`] at most).
    pub async fn active_ending_by(&self, time: u64, limit: u64) -> Result<Vec<Session>, StoreError> {
        let (_, limit) = sql::page_bounds(&Page::new(0, limit))?;
        let rows = sqlx::query(
            "SELECT session_id, user_address, bid_id, provider, model_id, stake, closeout_receipt, \
             closeout_type, provider_withdrawn_amount, opened_at, ends_at, closed_at, is_active, \
             is_direct_payment FROM sessions WHERE is_active = TRUE AND ends_at <= $1 \
             ORDER BY ends_at, session_id LIMIT $2",
        )
        .bind(codec::int("time", time)?)
        .bind(limit)
        .fetch_all(self.pool)
        .await
        .map_err(StoreError::db("list ending sessions"))?;
        rows.iter().map(decode).collect()
    }

    /// Inserts or replaces a session (its own transaction). The indexer writes through
    /// [`Store::apply_batch`](super::Store::apply_batch) instead.
    pub async fn upsert(&self, session: &Session) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert session").await?;
        upsert(&mut tx, session).await?;
        let committed = sql::commit(tx, "upsert session").await;
        self.caches.invalidate_index();
        committed
    }

    /// Deletes a session; `false` if there was none.
    pub async fn delete(&self, id: B256) -> Result<bool, StoreError> {
        let deleted = write::delete_one(self.pool, EntityRef::Session(id)).await;
        self.caches.invalidate_index();
        deleted
    }
}

pub(crate) fn filter_sql(filter: &SessionFilter) -> Where {
    let mut w = Where::new();
    if let Some(user) = filter.user {
        w.bind("user_address = ", Arg::Text(codec::addr(&user)));
    }
    if let Some(provider) = filter.provider {
        w.bind("provider = ", Arg::Text(codec::addr(&provider)));
    }
    if let Some(model_id) = filter.model_id {
        w.bind("model_id = ", Arg::Text(codec::b256(&model_id)));
    }
    if let Some(bid_id) = filter.bid_id {
        w.bind("bid_id = ", Arg::Text(codec::b256(&bid_id)));
    }
    if filter.active_only {
        w.cond("is_active = TRUE");
    }
    w
}

pub(crate) const LIST: ListSpec = ListSpec {
    op: "list sessions",
    select: "SELECT session_id, user_address, bid_id, provider, model_id, stake, closeout_receipt, \
             closeout_type, provider_withdrawn_amount, opened_at, ends_at, closed_at, is_active, \
             is_direct_payment FROM sessions",
    count: "SELECT COUNT(*) FROM sessions",
    order_by: &["opened_at", "session_id"],
};

fn decode(row: &SqliteRow) -> Result<Session, StoreError> {
    let c = Cols::new(row, "sessions");
    Ok(Session {
        id: c.b256("session_id")?,
        user: c.address("user_address")?,
        bid_id: c.b256("bid_id")?,
        provider: c.address("provider")?,
        model_id: c.b256("model_id")?,
        stake: c.u256("stake")?,
        closeout_receipt: c.blob("closeout_receipt")?.into(),
        closeout_type: c.u256("closeout_type")?,
        provider_withdrawn_amount: c.u256("provider_withdrawn_amount")?,
        opened_at: c.u64("opened_at")?,
        ends_at: c.u64("ends_at")?,
        closed_at: c.u64("closed_at")?,
        is_active: c.boolean("is_active")?,
        is_direct_payment: c.boolean("is_direct_payment")?,
    })
}

/// Inserts or replaces one session inside the caller's transaction.
pub(crate) async fn upsert(conn: &mut SqliteConnection, s: &Session) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (session_id, user_address, bid_id, provider, model_id, stake, \
         closeout_receipt, closeout_type, provider_withdrawn_amount, opened_at, ends_at, closed_at, \
         is_active, is_direct_payment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (session_id) DO UPDATE SET user_address = excluded.user_address, \
         bid_id = excluded.bid_id, provider = excluded.provider, model_id = excluded.model_id, \
         stake = excluded.stake, closeout_receipt = excluded.closeout_receipt, \
         closeout_type = excluded.closeout_type, \
         provider_withdrawn_amount = excluded.provider_withdrawn_amount, \
         opened_at = excluded.opened_at, ends_at = excluded.ends_at, \
         closed_at = excluded.closed_at, is_active = excluded.is_active, \
         is_direct_payment = excluded.is_direct_payment",
    )
    .bind(codec::b256(&s.id))
    .bind(codec::addr(&s.user))
    .bind(codec::b256(&s.bid_id))
    .bind(codec::addr(&s.provider))
    .bind(codec::b256(&s.model_id))
    .bind(codec::u256(&s.stake))
    .bind(s.closeout_receipt.to_vec())
    .bind(codec::u256(&s.closeout_type))
    .bind(codec::u256(&s.provider_withdrawn_amount))
    .bind(codec::int("session.opened_at", s.opened_at)?)
    .bind(codec::int("session.ends_at", s.ends_at)?)
    .bind(codec::int("session.closed_at", s.closed_at)?)
    .bind(s.is_active)
    .bind(s.is_direct_payment)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert session"))?;
    write::clear_stale(conn, &EntityRef::Session(s.id)).await
}
