//! The `models` table: [`ModelsRepo`] (reads and single writes) and the row codec used by the batch
//! writer. Tags are stored as a JSON array of strings.

use alloy::primitives::B256;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, Arg, ListSpec, Where};
use super::types::{EntityRef, Model, ModelFilter, Page, Paged};
use super::write;

/// Models, by id. Reached through [`Store::models`](super::Store::models).
#[derive(Debug, Clone, Copy)]
pub struct ModelsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl ModelsRepo<'_> {
    /// The model with this id.
    pub async fn get(&self, id: B256) -> Result<Option<Model>, StoreError> {
        let row = sqlx::query(
            "SELECT model_id, ipfs_cid, fee, stake, owner, name, tags, created_at, is_deleted \
             FROM models WHERE model_id = $1",
        )
        .bind(codec::b256(&id))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get model"))?;
        row.as_ref().map(decode).transpose()
    }

    /// Models matching `filter`, oldest registration first (or newest with
    /// [`Page::newest_first`]).
    pub async fn list(&self, filter: ModelFilter, page: Page) -> Result<Paged<Model>, StoreError> {
        sql::paged(self.pool, &LIST, &filter_sql(&filter), page, decode).await
    }

    /// Inserts or replaces a model (its own transaction). The indexer writes through
    /// [`Store::apply_batch`](super::Store::apply_batch) instead.
    pub async fn upsert(&self, model: &Model) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert model").await?;
        upsert(&mut tx, model).await?;
        sql::commit(tx, "upsert model").await
    }

    /// Deletes a model; `false` if there was none.
    pub async fn delete(&self, id: B256) -> Result<bool, StoreError> {
        write::delete_one(self.pool, EntityRef::Model(id)).await
    }
}

pub(crate) fn filter_sql(filter: &ModelFilter) -> Where {
    let mut w = Where::new();
    if let Some(owner) = filter.owner {
        w.bind("owner = ", Arg::Text(codec::addr(&owner)));
    }
    if filter.active_only {
        w.cond("is_deleted = FALSE");
    }
    w
}

pub(crate) const LIST: ListSpec = ListSpec {
    op: "list models",
    select: "SELECT model_id, ipfs_cid, fee, stake, owner, name, tags, created_at, is_deleted \
             FROM models",
    count: "SELECT COUNT(*) FROM models",
    order_by: &["created_at", "model_id"],
};

fn decode(row: &SqliteRow) -> Result<Model, StoreError> {
    let c = Cols::new(row, "models");
    Ok(Model {
        id: c.b256("model_id")?,
        ipfs_cid: c.b256("ipfs_cid")?,
        fee: c.u256("fee")?,
        stake: c.u256("stake")?,
        owner: c.address("owner")?,
        name: c.text("name")?,
        tags: c.json("tags")?,
        created_at: c.u64("created_at")?,
        is_deleted: c.boolean("is_deleted")?,
    })
}

/// Inserts or replaces one model inside the caller's transaction.
pub(crate) async fn upsert(conn: &mut SqliteConnection, m: &Model) -> Result<(), StoreError> {
    let tags = serde_json::Value::from(m.tags.clone()).to_string();
    sqlx::query(
        "INSERT INTO models (model_id, ipfs_cid, fee, stake, owner, name, tags, created_at, \
         is_deleted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (model_id) DO UPDATE SET ipfs_cid = excluded.ipfs_cid, fee = excluded.fee, \
         stake = excluded.stake, owner = excluded.owner, name = excluded.name, \
         tags = excluded.tags, created_at = excluded.created_at, is_deleted = excluded.is_deleted",
    )
    .bind(codec::b256(&m.id))
    .bind(codec::b256(&m.ipfs_cid))
    .bind(codec::u256(&m.fee))
    .bind(codec::u256(&m.stake))
    .bind(codec::addr(&m.owner))
    .bind(m.name.clone())
    .bind(tags)
    .bind(codec::int("model.created_at", m.created_at)?)
    .bind(m.is_deleted)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert model"))?;
    write::clear_stale(conn, &EntityRef::Model(m.id)).await
}
