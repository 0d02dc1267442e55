//! The `api_keys` table: [`ApiKeysRepo`], the OpenAI gateway's API keys ([`ApiKey`]): who may call
//! the gateway, for which models, within which limits, and what each key has used so far
//! ([`KeyUsage`], summed with atomic updates by [`ApiKeysRepo::add_usage`]).
//!
//! A key's secret is never stored: only its SHA-256 (`key_hash`) and its first characters
//! (`key_prefix`, to recognise it in a list).

use alloy::primitives::{B256, U256};
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql;

/// One API key of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id (`key_…`).
    pub id: String,
    /// The operator's name for it.
    pub name: String,
    /// SHA-256 of the secret, lower-case hex.
    pub key_hash: String,
    /// The first characters of the secret.
    pub key_prefix: String,
    /// The models it may use (`None`: every model).
    pub models: Option<Vec<B256>>,
    /// Answered requests allowed over its life.
    pub max_requests: Option<u64>,
    /// MOR wei its sessions may lock or pay at most.
    pub budget_mor: Option<U256>,
    /// Requests allowed per minute.
    pub requests_per_minute: Option<u32>,
    /// When it stops working (unix seconds).
    pub expires_at: Option<u64>,
    /// When it was created (unix seconds).
    pub created_at: u64,
    /// When it was revoked (unix seconds).
    pub revoked_at: Option<u64>,
    /// What it used.
    pub usage: KeyUsage,
}

/// What a key used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Answered requests.
    pub requests: u64,
    /// Prompt tokens of those requests.
    pub prompt_tokens: u64,
    /// Completion tokens of those requests.
    pub completion_tokens: u64,
    /// The last answered request (unix seconds).
    pub last_used_at: Option<u64>,
}

/// Usage to add to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// The key.
    pub key_id: String,
    /// Answered requests.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// When the last of them was answered (unix seconds).
    pub at: u64,
}

/// The gateway's keys. Reached through [`Store::api_keys`](super::Store::api_keys).
#[derive(Debug, Clone, Copy)]
pub struct ApiKeysRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, key_hash, key_prefix, models, max_requests, budget_mor, requests_per_minute, \
             expires_at, created_at, revoked_at, requests, prompt_tokens, completion_tokens, last_used_at \
             FROM api_keys ",
            $rest
        )
    };
}

fn opt_int(field: &'static str, v: Option<u64>) -> Result<Option<i64>, StoreError> {
    v.map(|v| codec::int(field, v)).transpose()
}

impl ApiKeysRepo<'_> {
    /// Inserts a new key (its usage starts at what `key.usage` says, normally zero).
    pub async fn insert(&self, key: &ApiKey) -> Result<(), StoreError> {
        let models = key
            .models
            .as_ref()
            .map(|m| serde_json::to_string(&m.iter().map(codec::b256).collect::<Vec<_>>()))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                table: "api_keys",
                column: "models",
                reason: e.to_string(),
            })?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, key_prefix, models, max_requests, budget_mor, \
             requests_per_minute, expires_at, created_at, revoked_at, requests, prompt_tokens, \
             completion_tokens, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.key_prefix)
        .bind(models)
        .bind(opt_int("api_key.max_requests", key.max_requests)?)
        .bind(key.budget_mor.as_ref().map(codec::u256))
        .bind(key.requests_per_minute.map(i64::from))
        .bind(opt_int("api_key.expires_at", key.expires_at)?)
        .bind(codec::int("api_key.created_at", key.created_at)?)
        .bind(opt_int("api_key.revoked_at", key.revoked_at)?)
        .bind(codec::int("api_key.requests", key.usage.requests)?)
        .bind(codec::int("api_key.prompt_tokens", key.usage.prompt_tokens)?)
        .bind(codec::int("api_key.completion_tokens", key.usage.completion_tokens)?)
        .bind(opt_int("api_key.last_used_at", key.usage.last_used_at)?)
        .execute(self.pool)
        .await
        .map_err(StoreError::db("insert api key"))?;
        Ok(())
    }

    /// Every key, oldest first (revoked ones included).
    pub async fn list(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(select!("ORDER BY created_at, id"))
            .fetch_all(self.pool)
            .await
            .map_err(StoreError::db("list api keys"))?;
        rows.iter().map(decode).collect()
    }

    /// The key `id`.
    pub async fn get(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("get api key"))?;
        row.as_ref().map(decode).transpose()
    }

    /// Marks the key revoked at `at`; `false` if it does not exist or was revoked already.
    pub async fn revoke(&self, id: &str, at: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(codec::int("api_key.revoked_at", at)?)
            .execute(self.pool)
            .await
            .map_err(StoreError::db("revoke api key"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds usage to several keys in one transaction.
    pub async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = sql::write_tx(self.pool, "add api key usage").await?;
        for d in deltas {
            sqlx::query(
                "UPDATE api_keys SET requests = requests + $2, prompt_tokens = prompt_tokens + $3, \
                 completion_tokens = completion_tokens + $4, \
                 last_used_at = MAX(COALESCE(last_used_at, 0), $5) WHERE id = $1",
            )
            .bind(&d.key_id)
            .bind(codec::int("usage.requests", d.requests)?)
            .bind(codec::int("usage.prompt_tokens", d.prompt_tokens)?)
            .bind(codec::int("usage.completion_tokens", d.completion_tokens)?)
            .bind(codec::int("usage.at", d.at)?)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("add api key usage"))?;
        }
        sql::commit(tx, "add api key usage").await
    }
}

fn decode(row: &SqliteRow) -> Result<ApiKey, StoreError> {
    let c = Cols::new(row, "api_keys");
    let opt_u64 = |column: &'static str| -> Result<Option<u64>, StoreError> {
        match c.opt_i64(column)? {
            None => Ok(None),
            Some(v) => u64::try_from(v).map(Some).map_err(|_| StoreError::Corrupt {
                table: "api_keys",
                column,
                reason: format!("negative value {v}"),
            }),
        }
    };
    let models = match c.opt_text("models")? {
        None => None,
        Some(text) => {
            let ids: Vec<String> = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                table: "api_keys",
                column: "models",
                reason: e.to_string(),
            })?;
            let ids = ids
                .iter()
                .map(|s| codec::parse_b256(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| StoreError::Corrupt { table: "api_keys", column: "models", reason })?;
            Some(ids)
        }
    };
    let budget_mor = c
        .opt_text("budget_mor")?
        .map(|s| codec::parse_u256(&s))
        .transpose()
        .map_err(|reason| StoreError::Corrupt { table: "api_keys", column: "budget_mor", reason })?;
    let requests_per_minute = opt_u64("requests_per_minute")?
        .map(|v| {
            u32::try_from(v).map_err(|_| StoreError::Corrupt {
                table: "api_keys",
                column: "requests_per_minute",
                reason: format!("{v} is too large"),
            })
        })
        .transpose()?;
    Ok(ApiKey {
        id: c.text("id")?,
        name: c.text("name")?,
        key_hash: c.text("key_hash")?,
        key_prefix: c.text("key_prefix")?,
        models,
        max_requests: opt_u64("max_requests")?,
        budget_mor,
        requests_per_minute,
        expires_at: opt_u64("expires_at")?,
        created_at: c.u64("created_at")?,
        revoked_at: opt_u64("revoked_at")?,
        usage: KeyUsage {
            requests: c.u64("requests")?,
            prompt_tokens: c.u64("prompt_tokens")?,
            completion_tokens: c.u64("completion_tokens")?,
            last_used_at: opt_u64("last_used_at")?,
        },
    })
}
