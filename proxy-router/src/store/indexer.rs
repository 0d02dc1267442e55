//! The indexer's own state: [`IndexerRepo`] reads the cursor, the recent block hashes, the event log,
//! the journal of touched entities and the stale set; it also prunes old reorg data and binds the
//! index to one chain and diamond. Writes of the cursor, events and journal go only through
//! [`Store::apply_batch`](super::Store::apply_batch) and [`Store::rollback`](super::Store::rollback).

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256};
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, Arg, ListSpec, Where};
use super::types::{BlockRef, EntityRef, EventFilter, EventRecord, Page, Paged};
use super::write;

/// What [`IndexerRepo::prune_below`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Block hashes deleted.
    pub blocks_removed: u64,
    /// Journal rows deleted.
    pub touched_removed: u64,
}

/// The indexer's state. Reached through [`Store::indexer`](super::Store::indexer).
#[derive(Debug, Clone, Copy)]
pub struct IndexerRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl IndexerRepo<'_> {
    /// The last block whose events are all applied; `None` on an empty index.
    pub async fn cursor(&self) -> Result<Option<BlockRef>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db("read index cursor"))?;
        write::read_cursor(&mut conn).await
    }

    /// The recorded hash of block `number`, if it is still kept.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        let row = sqlx::query("SELECT block_hash FROM index_blocks WHERE block_number = $1")
            .bind(codec::int("block_number", number)?)
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("read block hash"))?;
        row.as_ref().map(|r| Cols::new(r, "index_blocks").b256("block_hash")).transpose()
    }

    /// The recorded blocks at or below `number`, highest first, at most `limit`
    /// ([`Page::MAX_LIMIT`] at most): the candidates for a common ancestor after a reorg.
    pub async fn blocks_at_or_below(&self, number: u64, limit: u64) -> Result<Vec<BlockRef>, StoreError> {
        let (_, limit) = sql::page_bounds(&Page::new(0, limit))?;
        let rows = sqlx::query(
            "SELECT block_number, block_hash FROM index_blocks WHERE block_number <= $1 \
             ORDER BY block_number DESC LIMIT $2",
        )
        .bind(codec::int("block_number", number)?)
        .bind(limit)
        .fetch_all(self.pool)
        .await
        .map_err(StoreError::db("list block hashes"))?;
        rows.iter()
            .map(|r| {
                let c = Cols::new(r, "index_blocks");
                Ok(BlockRef::new(c.u64("block_number")?, c.b256("block_hash")?))
            })
            .collect()
    }

    /// One event by position.
    pub async fn event(&self, block_number: u64, log_index: u64) -> Result<Option<EventRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT block_number, log_index, block_hash, tx_hash, tx_index, address, name, topics, \
             data, decoded FROM index_events WHERE block_number = $1 AND log_index = $2",
        )
        .bind(codec::int("block_number", block_number)?)
        .bind(codec::int("log_index", log_index)?)
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get event"))?;
        row.as_ref().map(decode_event).transpose()
    }

    /// Indexed events matching `filter`, in chain order (or reversed with
    /// [`Page::newest_first`]).
    pub async fn events(&self, filter: &EventFilter, page: Page) -> Result<Paged<EventRecord>, StoreError> {
        let mut w = Where::new();
        if let Some(name) = &filter.name {
            w.bind("name = ", Arg::Text(name.clone()));
        }
        if let Some(from) = filter.from_block {
            w.bind("block_number >= ", Arg::Int(codec::int("from_block", from)?));
        }
        if let Some(to) = filter.to_block {
            w.bind("block_number <= ", Arg::Int(codec::int("to_block", to)?));
        }
        sql::paged(self.pool, &EVENTS, &w, page, decode_event).await
    }

    /// The entities touched by blocks after `number`: what a rollback to `number` must re-read
    /// from the chain.
    pub async fn touched_above(&self, number: u64) -> Result<BTreeSet<EntityRef>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db("read entity journal"))?;
        write::touched_above(&mut conn, number).await
    }

    /// Entities touched by rolled-back blocks and not written since: they must be re-read from the
    /// chain (also after a restart). Any write of an entity removes it from this set.
    pub async fn stale(&self) -> Result<BTreeSet<EntityRef>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::db("read stale entities"))?;
        write::stale(&mut conn).await
    }

    /// Deletes block hashes and journal rows of blocks before `number` (never the cursor's block:
    /// `number` is lowered to the cursor). Events are kept.
    pub async fn prune_below(&self, number: u64) -> Result<PruneReport, StoreError> {
        let op = "prune reorg data";
        let mut tx = sql::write_tx(self.pool, op).await?;
        let limit = match write::read_cursor(&mut tx).await? {
            Some(c) => number.min(c.number),
            None => 0,
        };
        let n = codec::int("block_number", limit)?;
        let blocks_removed = sqlx::query("DELETE FROM index_blocks WHERE block_number < $1")
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(op))?
            .rows_affected();
        let touched_removed = sqlx::query("DELETE FROM index_touched WHERE block_number < $1")
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(op))?
            .rows_affected();
        sql::commit(tx, op).await?;
        Ok(PruneReport { blocks_removed, touched_removed })
    }

    /// The chain id and diamond this index was built from, once bound.
    pub async fn source(&self) -> Result<Option<(u64, Address)>, StoreError> {
        let row = sqlx::query("SELECT chain_id, diamond FROM index_source WHERE id = 1")
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("read index source"))?;
        row.as_ref()
            .map(|r| {
                let c = Cols::new(r, "index_source");
                Ok((c.u64("chain_id")?, c.address("diamond")?))
            })
            .transpose()
    }

    /// Binds the index to `chain_id` and `diamond` on first use; afterwards refuses any other pair
    /// with [`StoreError::SourceMismatch`], so that a configuration change never mixes two chains'
    /// data in one index.
    pub async fn bind_source(&self, chain_id: u64, diamond: Address) -> Result<(), StoreError> {
        let op = "bind index source";
        let mut tx = sql::write_tx(self.pool, op).await?;
        let row = sqlx::query("SELECT chain_id, diamond FROM index_source WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(op))?;
        match row {
            Some(r) => {
                let c = Cols::new(&r, "index_source");
                let (stored_chain_id, stored_diamond) = (c.u64("chain_id")?, c.address("diamond")?);
                if (stored_chain_id, stored_diamond) != (chain_id, diamond) {
                    return Err(StoreError::SourceMismatch {
                        stored_chain_id,
                        stored_diamond,
                        chain_id,
                        diamond,
                    });
                }
            }
            None => {
                sqlx::query("INSERT INTO index_source (id, chain_id, diamond) VALUES (1, $1, $2)")
                    .bind(codec::int("chain_id", chain_id)?)
                    .bind(codec::addr(&diamond))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(op))?;
            }
        }
        sql::commit(tx, op).await
    }
}

pub(crate) const EVENTS: ListSpec = ListSpec {
    op: "list events",
    select: "SELECT block_number, log_index, block_hash, tx_hash, tx_index, address, name, topics, \
             data, decoded FROM index_events",
    count: "SELECT COUNT(*) FROM index_events",
    order_by: &["block_number", "log_index"],
};

fn decode_event(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    let c = Cols::new(row, "index_events");
    let topics: Vec<String> = c.json("topics")?;
    let topics = topics
        .iter()
        .map(|t| codec::parse_b256(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| StoreError::Corrupt { table: "index_events", column: "topics", reason })?;
    let decoded = match c.opt_text("decoded")? {
        Some(s) => Some(serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            table: "index_events",
            column: "decoded",
            reason: format!("invalid JSON: {e}"),
        })?),
        None => None,
    };
    Ok(EventRecord {
        block_number: c.u64("block_number")?,
        block_hash: c.b256("block_hash")?,
        log_index: c.u64("log_index")?,
        tx_hash: c.b256("tx_hash")?,
        tx_index: c.u64("tx_index")?,
        address: c.address("address")?,
        name: c.text("name")?,
        topics,
        data: c.blob("data")?.into(),
        decoded,
    })
}
