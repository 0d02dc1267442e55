//! The `provider_model_stats` and `model_stats` tables: [`StatsRepo`] (reads and single writes) and
//! the row codecs used by the batch writer. LibSD pairs are stored as two BIGINT columns each.

use alloy::primitives::{Address, B256};
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql::{self, Arg, ListSpec, Where};
use super::types::{EntityRef, ModelStats, Page, Paged, ProviderModelStats, Sd};
use super::write;

/// On-chain statistics. Reached through [`Store::stats`](super::Store::stats).
#[derive(Debug, Clone, Copy)]
pub struct StatsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl StatsRepo<'_> {
    /// The statistics of `provider` on `model_id`.
    pub async fn provider_model(
        &self,
        model_id: B256,
        provider: Address,
    ) -> Result<Option<ProviderModelStats>, StoreError> {
        let row = sqlx::query(
            "SELECT model_id, provider, tps_mean, tps_sq_sum, ttft_mean, ttft_sq_sum, \
             total_duration, success_count, total_count FROM provider_model_stats \
             WHERE model_id = $1 AND provider = $2",
        )
        .bind(codec::b256(&model_id))
        .bind(codec::addr(&provider))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get provider-model stats"))?;
        row.as_ref().map(decode_pm).transpose()
    }

    /// The statistics of every provider on `model_id`, by provider address.
    pub async fn by_model(
        &self,
        model_id: B256,
        page: Page,
    ) -> Result<Paged<ProviderModelStats>, StoreError> {
        let mut w = Where::new();
        w.bind("model_id = ", Arg::Text(codec::b256(&model_id)));
        sql::paged(self.pool, &PM_BY_MODEL, &w, page, decode_pm).await
    }

    /// The statistics of `provider` on every model, by model id.
    pub async fn by_provider(
        &self,
        provider: Address,
        page: Page,
    ) -> Result<Paged<ProviderModelStats>, StoreError> {
        let mut w = Where::new();
        w.bind("provider = ", Arg::Text(codec::addr(&provider)));
        sql::paged(self.pool, &PM_BY_PROVIDER, &w, page, decode_pm).await
    }

    /// The statistics of `model_id` across its providers.
    pub async fn model(&self, model_id: B256) -> Result<Option<ModelStats>, StoreError> {
        let row = sqlx::query(
            "SELECT model_id, tps_mean, tps_sq_sum, ttft_mean, ttft_sq_sum, total_duration_mean, \
             total_duration_sq_sum, provider_count FROM model_stats WHERE model_id = $1",
        )
        .bind(codec::b256(&model_id))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get model stats"))?;
        row.as_ref().map(decode_model).transpose()
    }

    /// Inserts or replaces provider-model statistics (its own transaction).
    pub async fn upsert_provider_model(&self, s: &ProviderModelStats) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert provider-model stats").await?;
        upsert_provider_model(&mut tx, s).await?;
        sql::commit(tx, "upsert provider-model stats").await
    }

    /// Inserts or replaces model statistics (its own transaction).
    pub async fn upsert_model(&self, s: &ModelStats) -> Result<(), StoreError> {
        let mut tx = sql::write_tx(self.pool, "upsert model stats").await?;
        upsert_model(&mut tx, s).await?;
        sql::commit(tx, "upsert model stats").await
    }

    /// Deletes provider-model statistics; `false` if there were none.
    pub async fn delete_provider_model(&self, model_id: B256, provider: Address) -> Result<bool, StoreError> {
        write::delete_one(self.pool, EntityRef::ProviderModelStats { model_id, provider }).await
    }

    /// Deletes model statistics; `false` if there were none.
    pub async fn delete_model(&self, model_id: B256) -> Result<bool, StoreError> {
        write::delete_one(self.pool, EntityRef::ModelStats(model_id)).await
    }
}

const PM_SELECT: &str = "SELECT model_id, provider, tps_mean, tps_sq_sum, ttft_mean, ttft_sq_sum, \
                         total_duration, success_count, total_count FROM provider_model_stats";

pub(crate) const PM_BY_MODEL: ListSpec = ListSpec {
    op: "list provider-model stats",
    select: PM_SELECT,
    count: "SELECT COUNT(*) FROM provider_model_stats",
    order_by: &["provider"],
};

pub(crate) const PM_BY_PROVIDER: ListSpec = ListSpec {
    op: "list provider-model stats",
    select: PM_SELECT,
    count: "SELECT COUNT(*) FROM provider_model_stats",
    order_by: &["model_id"],
};

fn sd(c: &Cols<'_>, mean: &'static str, sq_sum: &'static str) -> Result<Sd, StoreError> {
    Ok(Sd { mean: c.i64(mean)?, sq_sum: c.i64(sq_sum)? })
}

fn decode_pm(row: &SqliteRow) -> Result<ProviderModelStats, StoreError> {
    let c = Cols::new(row, "provider_model_stats");
    Ok(ProviderModelStats {
        model_id: c.b256("model_id")?,
        provider: c.address("provider")?,
        tps_scaled1000: sd(&c, "tps_mean", "tps_sq_sum")?,
        ttft_ms: sd(&c, "ttft_mean", "ttft_sq_sum")?,
        total_duration: c.u32("total_duration")?,
        success_count: c.u32("success_count")?,
        total_count: c.u32("total_count")?,
    })
}

fn decode_model(row: &SqliteRow) -> Result<ModelStats, StoreError> {
    let c = Cols::new(row, "model_stats");
    Ok(ModelStats {
        model_id: c.b256("model_id")?,
        tps_scaled1000: sd(&c, "tps_mean", "tps_sq_sum")?,
        ttft_ms: sd(&c, "ttft_mean", "ttft_sq_sum")?,
        total_duration: sd(&c, "total_duration_mean", "total_duration_sq_sum")?,
        count: c.u32("provider_count")?,
    })
}

/// Inserts or replaces provider-model statistics inside the caller's transaction.
pub(crate) async fn upsert_provider_model(
    conn: &mut SqliteConnection,
    s: &ProviderModelStats,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO provider_model_stats (model_id, provider, tps_mean, tps_sq_sum, ttft_mean, \
         ttft_sq_sum, total_duration, success_count, total_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (model_id, provider) DO UPDATE SET tps_mean = excluded.tps_mean, \
         tps_sq_sum = excluded.tps_sq_sum, ttft_mean = excluded.ttft_mean, \
         ttft_sq_sum = excluded.ttft_sq_sum, total_duration = excluded.total_duration, \
         success_count = excluded.success_count, total_count = excluded.total_count",
    )
    .bind(codec::b256(&s.model_id))
    .bind(codec::addr(&s.provider))
    .bind(s.tps_scaled1000.mean)
    .bind(s.tps_scaled1000.sq_sum)
    .bind(s.ttft_ms.mean)
    .bind(s.ttft_ms.sq_sum)
    .bind(i64::from(s.total_duration))
    .bind(i64::from(s.success_count))
    .bind(i64::from(s.total_count))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert provider-model stats"))?;
    let entity = EntityRef::ProviderModelStats { model_id: s.model_id, provider: s.provider };
    write::clear_stale(conn, &entity).await
}

/// Inserts or replaces model statistics inside the caller's transaction.
pub(crate) async fn upsert_model(conn: &mut SqliteConnection, s: &ModelStats) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO model_stats (model_id, tps_mean, tps_sq_sum, ttft_mean, ttft_sq_sum, \
         total_duration_mean, total_duration_sq_sum, provider_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (model_id) DO UPDATE SET tps_mean = excluded.tps_mean, \
         tps_sq_sum = excluded.tps_sq_sum, ttft_mean = excluded.ttft_mean, \
         ttft_sq_sum = excluded.ttft_sq_sum, total_duration_mean = excluded.total_duration_mean, \
         total_duration_sq_sum = excluded.total_duration_sq_sum, \
         provider_count = excluded.provider_count",
    )
    .bind(codec::b256(&s.model_id))
    .bind(s.tps_scaled1000.mean)
    .bind(s.tps_scaled1000.sq_sum)
    .bind(s.ttft_ms.mean)
    .bind(s.ttft_ms.sq_sum)
    .bind(s.total_duration.mean)
    .bind(s.total_duration.sq_sum)
    .bind(i64::from(s.count))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("upsert model stats"))?;
    write::clear_stale(conn, &EntityRef::ModelStats(s.model_id)).await
}
