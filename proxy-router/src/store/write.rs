//! The indexer's atomic writes: [`apply_batch`] (one block range) and [`rollback`] (a reorg), each a
//! single `BEGIN IMMEDIATE … COMMIT`, plus the per-entity delete and the journal helpers shared by
//! the repositories.
//!
//! Every function taking a `&mut SqliteConnection` runs inside its caller's transaction; only the
//! functions taking the pool open (and commit or roll back) a transaction of their own.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{SqliteConnection, SqlitePool};

use super::codec;
use super::error::StoreError;
use super::types::{BlockRef, EntityChanges, EntityRef, EventRecord, IndexBatch, Rollback, RollbackReport};
use super::{bids, models, providers, sessions, sql, stats};

/// Removes an entity from the stale set (it has just been written).
pub(crate) async fn clear_stale(conn: &mut SqliteConnection, entity: &EntityRef) -> Result<(), StoreError> {
    let (kind, id, sub) = codec::entity_cols(entity);
    sqlx::query("DELETE FROM index_stale WHERE entity_kind = $1 AND entity_id = $2 AND entity_sub_id = $3")
        .bind(kind)
        .bind(id)
        .bind(sub)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("clear stale entity"))?;
    Ok(())
}

/// Deletes one entity inside the caller's transaction; `false` if it was not stored.
pub(crate) async fn delete_entity(
    conn: &mut SqliteConnection,
    entity: &EntityRef,
) -> Result<bool, StoreError> {
    let q = match entity {
        EntityRef::Provider(a) => {
            sqlx::query("DELETE FROM providers WHERE address = $1").bind(codec::addr(a))
        }
        EntityRef::Model(id) => sqlx::query("DELETE FROM models WHERE model_id = $1").bind(codec::b256(id)),
        EntityRef::Bid(id) => sqlx::query("DELETE FROM bids WHERE bid_id = $1").bind(codec::b256(id)),
        EntityRef::Session(id) => {
            sqlx::query("DELETE FROM sessions WHERE session_id = $1").bind(codec::b256(id))
        }
        EntityRef::ProviderModelStats { model_id, provider } => {
            sqlx::query("DELETE FROM provider_model_stats WHERE model_id = $1 AND provider = $2")
                .bind(codec::b256(model_id))
                .bind(codec::addr(provider))
        }
        EntityRef::ModelStats(id) => {
            sqlx::query("DELETE FROM model_stats WHERE model_id = $1").bind(codec::b256(id))
        }
    };
    let done = q.execute(&mut *conn).await.map_err(StoreError::db("delete entity"))?;
    clear_stale(conn, entity).await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes one entity in a transaction of its own.
pub(crate) async fn delete_one(pool: &SqlitePool, entity: EntityRef) -> Result<bool, StoreError> {
    let mut tx = sql::write_tx(pool, "delete entity").await?;
    let found = delete_entity(&mut tx, &entity).await?;
    sql::commit(tx, "delete entity").await?;
    Ok(found)
}

/// Applies entity changes inside the caller's transaction: removals first, then upserts.
async fn apply_changes(conn: &mut SqliteConnection, changes: &EntityChanges) -> Result<(), StoreError> {
    for e in &changes.removed {
        delete_entity(conn, e).await?;
    }
    for p in &changes.providers {
        providers::upsert(conn, p).await?;
    }
    for m in &changes.models {
        models::upsert(conn, m).await?;
    }
    for b in &changes.bids {
        bids::upsert(conn, b).await?;
    }
    for s in &changes.sessions {
        sessions::upsert(conn, s).await?;
    }
    for s in &changes.provider_model_stats {
        stats::upsert_provider_model(conn, s).await?;
    }
    for s in &changes.model_stats {
        stats::upsert_model(conn, s).await?;
    }
    Ok(())
}

/// The stored cursor, read inside the caller's transaction.
pub(crate) async fn read_cursor(conn: &mut SqliteConnection) -> Result<Option<BlockRef>, StoreError> {
    let row = sqlx::query("SELECT block_number, block_hash FROM index_cursor WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db("read index cursor"))?;
    row.as_ref()
        .map(|r| {
            let c = codec::Cols::new(r, "index_cursor");
            Ok(BlockRef::new(c.u64("block_number")?, c.b256("block_hash")?))
        })
        .transpose()
}

async fn set_cursor(conn: &mut SqliteConnection, to: &BlockRef) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO index_cursor (id, block_number, block_hash) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, \
         block_hash = excluded.block_hash",
    )
    .bind(codec::int("cursor.number", to.number)?)
    .bind(codec::b256(&to.hash))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("write index cursor"))?;
    Ok(())
}

async fn put_block(conn: &mut SqliteConnection, block: &BlockRef) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO index_blocks (block_number, block_hash) VALUES ($1, $2) \
         ON CONFLICT (block_number) DO UPDATE SET block_hash = excluded.block_hash",
    )
    .bind(codec::int("block.number", block.number)?)
    .bind(codec::b256(&block.hash))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("record block hash"))?;
    Ok(())
}

async fn insert_event(conn: &mut SqliteConnection, e: &EventRecord) -> Result<(), StoreError> {
    let topics: Vec<String> = e.topics.iter().map(codec::b256).collect();
    let decoded = e.decoded.as_ref().map(|v| v.to_string());
    let res = sqlx::query(
        "INSERT INTO index_events (block_number, log_index, block_hash, tx_hash, tx_index, address, \
         name, topics, data, decoded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(codec::int("event.block_number", e.block_number)?)
    .bind(codec::int("event.log_index", e.log_index)?)
    .bind(codec::b256(&e.block_hash))
    .bind(codec::b256(&e.tx_hash))
    .bind(codec::int("event.tx_index", e.tx_index)?)
    .bind(codec::addr(&e.address))
    .bind(e.name.clone())
    .bind(serde_json::Value::from(topics).to_string())
    .bind(e.data.to_vec())
    .bind(decoded)
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(StoreError::DuplicateEvent { block_number: e.block_number, log_index: e.log_index })
        }
        Err(source) => Err(StoreError::Database { op: "insert event", source }),
    }
}

async fn insert_touched(
    conn: &mut SqliteConnection,
    block_number: u64,
    entity: &EntityRef,
) -> Result<(), StoreError> {
    let (kind, id, sub) = codec::entity_cols(entity);
    sqlx::query(
        "INSERT INTO index_touched (block_number, entity_kind, entity_id, entity_sub_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(codec::int("touched.block_number", block_number)?)
    .bind(kind)
    .bind(id)
    .bind(sub)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("record touched entity"))?;
    Ok(())
}

fn invalid(reason: String) -> StoreError {
    StoreError::InvalidBatch { reason }
}

/// Checks that every row of the batch lies in `(expected_cursor, to]` and that no block number has
/// two hashes. Returns the block hashes to record, by number.
fn check_batch(batch: &IndexBatch) -> Result<BTreeMap<u64, BlockRef>, StoreError> {
    let base = batch.expected_cursor.map(|c| c.number);
    if let Some(cur) = batch.expected_cursor {
        if batch.to.number < cur.number || (batch.to.number == cur.number && batch.to != cur) {
            return Err(invalid(format!("the new cursor {} is not after the current one {cur}", batch.to)));
        }
    }
    let in_range = |n: u64| base.is_none_or(|b| n > b) && n <= batch.to.number;
    let range = || match base {
        Some(b) => format!("({b}, {}]", batch.to.number),
        None => format!("[0, {}]", batch.to.number),
    };

    let mut hashes: BTreeMap<u64, BlockRef> = BTreeMap::new();
    let blocks = batch
        .blocks
        .iter()
        .copied()
        .chain(batch.events.iter().map(|e| BlockRef::new(e.block_number, e.block_hash)));
    for b in blocks {
        if !in_range(b.number) {
            return Err(invalid(format!("block {} is outside the batch's range {}", b.number, range())));
        }
        match hashes.get(&b.number) {
            Some(prev) if prev.hash != b.hash => {
                return Err(invalid(format!(
                    "block {} has two hashes in one batch: {} and {}",
                    b.number, prev.hash, b.hash
                )));
            }
            _ => {
                hashes.insert(b.number, b);
            }
        }
    }
    if let Some(prev) = hashes.get(&batch.to.number) {
        if prev.hash != batch.to.hash {
            return Err(invalid(format!(
                "block {} has two hashes in one batch: {} and {}",
                batch.to.number, prev.hash, batch.to.hash
            )));
        }
    }
    hashes.insert(batch.to.number, batch.to);
    if let Some(t) = batch.touched.iter().find(|t| !in_range(t.block_number)) {
        return Err(invalid(format!(
            "{} is journalled at block {}, outside the batch's range {}",
            t.entity,
            t.block_number,
            range()
        )));
    }
    Ok(hashes)
}

/// Runs `body` in a write transaction: commit on success, explicit rollback on error.
macro_rules! in_write_tx {
    ($pool:expr, $op:expr, |$conn:ident| $body:expr) => {{
        let mut tx = sql::write_tx($pool, $op).await?;
        let result = {
            let $conn: &mut SqliteConnection = &mut tx;
            $body
        };
        match result {
            Ok(value) => {
                sql::commit(tx, $op).await?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rb) = tx.rollback().await {
                    tracing::warn!(op = $op, error = %rb, "rolling back a failed write failed");
                }
                Err(err)
            }
        }
    }};
}

/// See [`Store::apply_batch`](super::Store::apply_batch).
pub(crate) async fn apply_batch(pool: &SqlitePool, batch: &IndexBatch) -> Result<(), StoreError> {
    let blocks = check_batch(batch)?;
    in_write_tx!(pool, "apply index batch", |conn| {
        async {
            let actual = read_cursor(conn).await?;
            if actual != batch.expected_cursor {
                return Err(StoreError::CursorMismatch { expected: batch.expected_cursor, actual });
            }
            apply_changes(conn, &batch.changes).await?;
            for e in &batch.events {
                insert_event(conn, e).await?;
            }
            for t in &batch.touched {
                insert_touched(conn, t.block_number, &t.entity).await?;
            }
            for b in blocks.values() {
                put_block(conn, b).await?;
            }
            set_cursor(conn, &batch.to).await
        }
        .await
    })
}

async fn entities_from(
    conn: &mut SqliteConnection,
    query: &'static str,
    above: Option<i64>,
    table: &'static str,
) -> Result<BTreeSet<EntityRef>, StoreError> {
    let mut q = sqlx::query(query);
    if let Some(n) = above {
        q = q.bind(n);
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(StoreError::db("read entity journal"))?;
    rows.iter().map(|r| codec::entity_from_row(r, table)).collect()
}

/// The entities journalled in blocks after `number`, inside the caller's transaction.
pub(crate) async fn touched_above(
    conn: &mut SqliteConnection,
    number: u64,
) -> Result<BTreeSet<EntityRef>, StoreError> {
    entities_from(
        conn,
        "SELECT DISTINCT entity_kind, entity_id, entity_sub_id FROM index_touched \
         WHERE block_number > $1",
        Some(codec::int("block_number", number)?),
        "index_touched",
    )
    .await
}

/// The stale set, inside the caller's transaction.
pub(crate) async fn stale(conn: &mut SqliteConnection) -> Result<BTreeSet<EntityRef>, StoreError> {
    entities_from(conn, "SELECT entity_kind, entity_id, entity_sub_id FROM index_stale", None, "index_stale")
        .await
}

/// See [`Store::rollback`](super::Store::rollback).
pub(crate) async fn rollback(pool: &SqlitePool, rb: &Rollback) -> Result<RollbackReport, StoreError> {
    let (cur, to) = (rb.expected_cursor, rb.to);
    if to.number > cur.number || (to.number == cur.number && to != cur) {
        return Err(invalid(format!("the rollback target {to} is not before the current cursor {cur}")));
    }
    in_write_tx!(pool, "roll back index", |conn| {
        async {
            let actual = read_cursor(conn).await?;
            if actual != Some(cur) {
                return Err(StoreError::CursorMismatch { expected: Some(cur), actual });
            }
            let n = codec::int("rollback.to", to.number)?;
            let stored = sqlx::query("SELECT block_hash FROM index_blocks WHERE block_number = $1")
                .bind(n)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("read block hash"))?;
            if let Some(row) = stored {
                let hash = codec::Cols::new(&row, "index_blocks").b256("block_hash")?;
                if hash != to.hash {
                    return Err(invalid(format!(
                        "block {} is indexed with hash {hash}, the rollback target says {}",
                        to.number, to.hash
                    )));
                }
            }

            let touched = touched_above(conn, to.number).await?;
            let events_removed = sqlx::query("DELETE FROM index_events WHERE block_number > $1")
                .bind(n)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("delete rolled-back events"))?
                .rows_affected();
            sqlx::query("DELETE FROM index_touched WHERE block_number > $1")
                .bind(n)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("delete rolled-back journal"))?;
            let blocks_removed = sqlx::query("DELETE FROM index_blocks WHERE block_number > $1")
                .bind(n)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("delete rolled-back block hashes"))?
                .rows_affected();

            for e in &touched {
                let (kind, id, sub) = codec::entity_cols(e);
                sqlx::query(
                    "INSERT INTO index_stale (entity_kind, entity_id, entity_sub_id) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(kind)
                .bind(id)
                .bind(sub)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("mark stale entity"))?;
            }
            // Writing an entity clears its stale mark, so what remains is what still needs a re-read.
            apply_changes(conn, &rb.changes).await?;
            put_block(conn, &to).await?;
            set_cursor(conn, &to).await?;
            let stale = stale(conn).await?;
            Ok(RollbackReport { touched, events_removed, blocks_removed, stale })
        }
        .await
    })
}

/// See [`Store::reset_index`](super::Store::reset_index).
pub(crate) async fn reset_index(pool: &SqlitePool) -> Result<(), StoreError> {
    const TABLES: [&str; 11] = [
        "DELETE FROM providers",
        "DELETE FROM models",
        "DELETE FROM bids",
        "DELETE FROM sessions",
        "DELETE FROM provider_model_stats",
        "DELETE FROM model_stats",
        "DELETE FROM index_cursor",
        "DELETE FROM index_blocks",
        "DELETE FROM index_events",
        "DELETE FROM index_touched",
        "DELETE FROM index_stale",
    ];
    in_write_tx!(pool, "reset index", |conn| {
        async {
            for stmt in TABLES {
                sqlx::query(stmt).execute(&mut *conn).await.map_err(StoreError::db("reset index"))?;
            }
            Ok(())
        }
        .await
    })
}
