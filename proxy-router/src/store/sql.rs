//! Shared SQL plumbing of the repositories: read and write transactions, and the paginated list
//! query (`COUNT(*)` and one page read in the same snapshot).
//!
//! SQLite-specific: write transactions start with `BEGIN IMMEDIATE`, which takes the write lock at
//! once (waiting up to the busy timeout) instead of failing with `SQLITE_BUSY` when a deferred
//! transaction later tries to upgrade. A PostgreSQL backend would use a plain `BEGIN`.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use super::codec;
use super::error::StoreError;
use super::types::{Order, Page, Paged};

/// A write transaction (`BEGIN IMMEDIATE`).
pub(crate) async fn write_tx(
    pool: &SqlitePool,
    op: &'static str,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db(op))
}

/// A read transaction: every statement in it sees the same snapshot.
pub(crate) async fn read_tx(
    pool: &SqlitePool,
    op: &'static str,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin().await.map_err(StoreError::db(op))
}

/// Commits, naming the operation on failure.
pub(crate) async fn commit(tx: Transaction<'static, Sqlite>, op: &'static str) -> Result<(), StoreError> {
    tx.commit().await.map_err(StoreError::db(op))
}

/// One bound value of a filter.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// A conjunction of conditions: a fixed SQL fragment, optionally followed by one bound value
/// (`("provider = ", Some(Arg::Text(..)))`, `("deleted_at = 0", None)`).
#[derive(Default)]
pub(crate) struct Where {
    parts: Vec<(&'static str, Option<Arg>)>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A condition without a value.
    pub(crate) fn cond(&mut self, sql: &'static str) -> &mut Self {
        self.parts.push((sql, None));
        self
    }

    /// A condition ending in a bound value.
    pub(crate) fn bind(&mut self, sql: &'static str, arg: Arg) -> &mut Self {
        self.parts.push((sql, Some(arg)));
        self
    }

    fn push_to(&self, qb: &mut QueryBuilder<Sqlite>) {
        for (i, (sql, arg)) in self.parts.iter().enumerate() {
            qb.push(if i == 0 { " WHERE " } else { " AND " });
            qb.push(*sql);
            match arg {
                Some(Arg::Text(s)) => {
                    qb.push_bind(s.clone());
                }
                Some(Arg::Int(v)) => {
                    qb.push_bind(*v);
                }
                None => {}
            }
        }
    }
}

/// The static parts of a list query.
pub(crate) struct ListSpec {
    /// Names the operation in errors.
    pub op: &'static str,
    /// `SELECT <columns> FROM <table>`.
    pub select: &'static str,
    /// `SELECT COUNT(*) FROM <table>`.
    pub count: &'static str,
    /// Sort keys, most significant first; the last one must be unique so pages never overlap.
    pub order_by: &'static [&'static str],
}

/// Checks a page request and returns `(offset, limit)` as database integers. An offset beyond any
/// possible row count is clamped (it returns an empty page, as the contracts do).
pub(crate) fn page_bounds(page: &Page) -> Result<(i64, i64), StoreError> {
    if page.limit > Page::MAX_LIMIT {
        return Err(StoreError::PageTooLarge { limit: page.limit, max: Page::MAX_LIMIT });
    }
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    Ok((offset, codec::int("limit", page.limit)?))
}

/// The page query: `<prefix><select> WHERE … ORDER BY … LIMIT … OFFSET …`.
fn select_query(
    prefix: &str,
    spec: &ListSpec,
    filter: &Where,
    order: Order,
    limit: i64,
    offset: i64,
) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(prefix);
    q.push(spec.select);
    filter.push_to(&mut q);
    let dir = match order {
        Order::OldestFirst => " ASC",
        Order::NewestFirst => " DESC",
    };
    for (i, col) in spec.order_by.iter().enumerate() {
        q.push(if i == 0 { " ORDER BY " } else { ", " });
        q.push(*col);
        q.push(dir);
    }
    q.push(" LIMIT ");
    q.push_bind(limit);
    q.push(" OFFSET ");
    q.push_bind(offset);
    q
}

/// SQLite's query plan of a list's page query (one `detail` line per step), for tests that check
/// that lists use an index.
#[cfg(test)]
pub(crate) async fn explain(pool: &SqlitePool, spec: &ListSpec, filter: &Where, order: Order) -> Vec<String> {
    use sqlx::Row;
    let mut q = select_query("EXPLAIN QUERY PLAN ", spec, filter, order, 10, 0);
    let rows = q.build().fetch_all(pool).await.expect("explain");
    rows.iter().map(|r| r.get::<String, _>("detail")).collect()
}

/// Runs a filtered, ordered, paginated list in one read snapshot.
pub(crate) async fn paged<T>(
    pool: &SqlitePool,
    spec: &ListSpec,
    filter: &Where,
    page: Page,
    decode: impl Fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Paged<T>, StoreError> {
    let (offset, limit) = page_bounds(&page)?;
    let mut tx = read_tx(pool, spec.op).await?;

    let mut count = QueryBuilder::<Sqlite>::new(spec.count);
    filter.push_to(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await.map_err(StoreError::db(spec.op))?;

    let mut items = Vec::new();
    if limit > 0 && offset < total {
        let mut q = select_query("", spec, filter, page.order, limit, offset);
        let rows = q.build().fetch_all(&mut *tx).await.map_err(StoreError::db(spec.op))?;
        items = rows.iter().map(&decode).collect::<Result<_, _>>()?;
    }
    // A read-only transaction: ending it cannot lose anything.
    tx.rollback().await.map_err(StoreError::db(spec.op))?;
    Ok(Paged { items, total: u64::try_from(total).unwrap_or(0) })
}
