//! Local state in SQLite (WAL): the index of the chain (providers, models, bids, sessions and their
//! statistics, the indexer's cursor, recent block hashes, event log and reorg journal) and, later,
//! the node's own state.
//!
//! `store` never imports `chain` or `protocol`, nor anything above them. Its records are plain
//! structs of `alloy` primitives ([`Provider`], [`Model`], [`Bid`], [`Session`],
//! [`ProviderModelStats`], [`ModelStats`], [`EventRecord`]).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), proxy_router::store::StoreError> {
//! use proxy_router::store::{BidFilter, Page, Store};
//! # let model_id = alloy::primitives::B256::ZERO;
//! let store = Store::open(std::path::Path::new("./data")).await?; // ./data/proxy-router.sqlite
//! let bids = store
//!     .bids()
//!     .list(BidFilter { model_id: Some(model_id), active_only: true, ..Default::default() }, Page::new(0, 100))
//!     .await?;
//! println!("{} active bids", bids.total);
//! # Ok(()) }
//! ```
//!
//! One repository per aggregate is reachable from [`Store`]: [`Store::providers`],
//! [`Store::models`], [`Store::bids`], [`Store::sessions`], [`Store::stats`] and
//! [`Store::indexer`]. Each reads by id and lists with filters and `(offset, limit)` pagination
//! ([`Page`] → [`Paged`], with the total, like the contracts' getters). The provider role's own state
//! (consumers' handshake keys, per-session prompt statistics) is [`Store::provider_sessions`], the
//! consumer role's (its sessions' provider endpoint and key, failover, statistics) is
//! [`Store::consumer_sessions`]; the OpenAI gateway's API keys and the sessions it keeps for them are
//! [`Store::api_keys`] and [`Store::gateway_sessions`]; the API's own state is [`Store::agents`] (agent
//! account requests, allowances, their transactions) and [`Store::chats`] (chat history, bounded by
//! [`ChatBounds`]); the indexer never touches any of these.
//!
//! # Atomic writes of the indexer
//!
//! The indexer never writes row by row. It reads the chain first, builds a plain-data
//! [`IndexBatch`] for one block range — the entities' new state ([`EntityChanges`]), the raw
//! events, the journal of which block touched which entity, extra block hashes and the new cursor —
//! and hands it to [`Store::apply_batch`], which writes all of it in ONE SQL transaction: either the
//! whole range is applied and the cursor moves, or nothing changes. A batch states the cursor it was
//! built on ([`IndexBatch::expected_cursor`]); the store refuses it if the stored cursor differs, and
//! the `(block_number, log_index)` primary key of the event log refuses an event applied twice, so
//! a replay after a crash or a second writer can never double-count.
//!
//! Why a data batch rather than a transaction handle given to the indexer: the write lock is held
//! only while SQL runs, never while RPC calls are awaited, so readers and other writers never wait
//! on the network; the batch is plain data, easy to build in tests and independent of the backend;
//! and callers never see SQL or a connection.
//!
//! A reorg is undone by [`Store::rollback`], also one transaction: it deletes the events, journal
//! rows and block hashes above the common ancestor, writes the entities re-read from the chain at
//! the ancestor, marks the other entities touched by the removed blocks as stale
//! ([`IndexerRepo::stale`], kept across restarts until they are written again), moves the cursor
//! back and reports what it removed. [`IndexerRepo::touched_above`] tells the indexer beforehand
//! which entities to re-read.
//!
//! The single-row writes of the repositories (`upsert`, `delete`) run in a transaction each; they
//! exist for tools and tests, not for the indexer.
//!
//! # Caches
//!
//! Every prompt re-reads a few rows (the consumer: its session record, the indexed session and the provider's endpoint; the
//! provider: the session and the consumer's key), and each SQLite query costs a round trip to
//! sqlx's worker thread. [`Store`] therefore keeps small bounded caches (at most 4096 rows each,
//! emptied when full), shared by its clones, that are never stale:
//!
//! - indexed sessions ([`SessionsRepo::get`]) and providers ([`ProvidersRepo::get`]): every write of
//!   the index ([`Store::apply_batch`], [`Store::rollback`], [`Store::reset_index`], the repositories'
//!   `upsert` and `delete`) empties both after it commits, so a session closed on chain is refused
//!   from the batch that indexes the close on (expiry is checked by the callers against `ends_at`);
//! - consumers' handshake keys ([`ProviderSessionsRepo::user_key`]): forgotten when a key is saved;
//! - the consumer's session records ([`ConsumerSessionsRepo::get`]): each write of a record forgets
//!   it, except the statistics' additions (`add_prompt`, `add_failure`), which are applied to the
//!   cached record as well (additions commute, so the copy always equals the committed row);
//! - a read that raced with such a write never fills the cache (each cache has a generation that
//!   writes bump; see `cache.rs`).
//!
//! Only rows found are cached. The caches assume that this process is the only writer of those
//! tables, as the node is. [`ProviderSessionsRepo::touch`] also remembers when this process last
//! wrote each session's statistics row, and skips a prompt's touch within
//! [`TOUCH_COALESCE_MS`] of it (the row exists already).
//!
//! # Encodings
//!
//! Addresses and 32-byte ids are lower-case `0x`-hex TEXT (readable, exact and indexable;
//! checked by the schema), `uint256` amounts are decimal TEXT (lossless; never REAL), timestamps and
//! block numbers BIGINT, flags BOOLEAN, receipts BLOB. See `docs/storage.md`.
//!
//! # A PostgreSQL backend later
//!
//! The repositories in this module are the only code that holds SQL, and callers only see the
//! domain types, so a PostgreSQL backend fits behind the same API: [`Store`] would hold an enum of
//! pools and each repository would dispatch on it. The SQL is written to be portable: `$n`
//! placeholders, `INSERT … ON CONFLICT … DO UPDATE`, `TRUE`/`FALSE`, `LIMIT … OFFSET`, no
//! SQLite functions in queries, and no reserved words as column names. The SQLite-specific bits are
//! few and kept here: the connection pragmas (WAL, `synchronous = NORMAL`, busy timeout, foreign
//! keys) in [`Store::open_in`], `BEGIN IMMEDIATE` for write transactions, the `?`/`$n` binding of
//! `QueryBuilder`, and the migration files themselves (BLOB would be BYTEA, amounts NUMERIC(78,0),
//! in a `migrations/postgres` directory of their own).

mod agents;
mod api_keys;
mod bids;
mod cache;
mod chats;
mod codec;
mod consumer_sessions;
mod error;
mod gateway_sessions;
mod indexer;
mod models;
mod provider_sessions;
mod providers;
mod sessions;
mod sql;
mod stats;
mod types;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions;

pub use agents::{
    AgentUser, AgentsRepo, AllowanceRequest, RequestOutcome, TxPage, MAX_ALLOWANCE_REQUESTS_PER_USER,
    MAX_PENDING_AGENT_REQUESTS,
};
pub use api_keys::{ApiKey, ApiKeysRepo, KeyUsage, UsageDelta};
pub use bids::BidsRepo;
pub use chats::{Chat, ChatBounds, ChatSummary, ChatsRepo, Exchange};
pub use consumer_sessions::{AnsweredPrompt, ConsumerSession, ConsumerSessionsRepo, SessionStats};
pub use error::StoreError;
pub use gateway_sessions::{GatewaySession, GatewaySessionState, GatewaySessionsRepo};
pub use indexer::{IndexerRepo, PruneReport};
pub use models::ModelsRepo;
pub use provider_sessions::{
    PromptStats, ProviderSessionStats, ProviderSessionsRepo, ServedSession, TOUCH_COALESCE_MS,
};
pub use providers::ProvidersRepo;
pub use sessions::SessionsRepo;
pub use stats::StatsRepo;
pub use types::{
    Bid, BidFilter, BlockRef, EntityChanges, EntityRef, EventFilter, EventRecord, IndexBatch, Model,
    ModelFilter, ModelStats, Order, Page, Paged, Provider, ProviderFilter, ProviderModelStats, Rollback,
    RollbackReport, Sd, Session, SessionFilter, Touched,
};

use crate::config::StoreConfig;

/// The database file's name inside `PROXY_STORAGE_PATH`.
pub const DB_FILE_NAME: &str = "proxy-router.sqlite";

/// Connections in the pool at most (readers run in parallel under WAL; writes are serialised by
/// SQLite).
pub const MAX_CONNECTIONS: u32 = 8;

/// How long a statement waits for a lock held by another connection before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caller waits for a free pooled connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The node's database: a bounded pool of SQLite connections to one WAL-mode file. Cheap to clone
/// (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    /// Taken by the per-prompt statistics writes, so that concurrent prompts queue here instead of
    /// colliding on SQLite's write lock, whose busy handler sleeps (1 to 100 ms) between retries.
    prompt_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The request path's caches (see "Caches" in the module docs).
    caches: std::sync::Arc<cache::Caches>,
}

impl Store {
    /// Opens (creating if needed) `<dir>/proxy-router.sqlite`, creating `dir` too, and migrates it
    /// to the current schema.
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
        Self::open_in(&dir.join(DB_FILE_NAME)).await
    }

    /// Opens the store at `PROXY_STORAGE_PATH` ([`StoreConfig::storage_path`]).
    pub async fn from_config(config: &StoreConfig) -> Result<Store, StoreError> {
        Self::open(&config.storage_path).await
    }

    /// Opens (creating if needed) the database file `file` and migrates it to the current schema.
    ///
    /// The file is switched to WAL journal mode (readers never wait for the writer), with
    /// `synchronous = NORMAL` (a power cut may lose the last commits, never consistency; the
    /// indexer re-reads what was lost from the chain), foreign keys on, and a busy timeout. A file
    /// written by a newer version of the node (an unknown migration) is refused.
    pub async fn open_in(file: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let path = file.to_path_buf();
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);

        // One connection switches the file to WAL (a persistent setting that needs a moment of
        // exclusive access) and runs the migrations; the pool's connections then find WAL set.
        let mut setup =
            options.clone().journal_mode(SqliteJournalMode::Wal).connect().await.map_err(open_err)?;
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut setup).await.map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "SQLite refused WAL journal mode");
        }
        MIGRATOR
            .run(&mut setup)
            .await
            .map_err(|source| StoreError::Migrate { path: path.clone(), source })?;
        sqlx::Connection::close(setup).await.map_err(open_err)?;

        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        tracing::info!(path = %path.display(), "store opened");
        Ok(Store { pool, path, prompt_writes: std::sync::Arc::default(), caches: std::sync::Arc::default() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for those in use to be returned. The WAL is checkpointed
    /// into the main file when the last connection closes.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Providers.
    pub fn providers(&self) -> ProvidersRepo<'_> {
        ProvidersRepo { pool: &self.pool, caches: &self.caches }
    }

    /// Models.
    pub fn models(&self) -> ModelsRepo<'_> {
        ModelsRepo { pool: &self.pool }
    }

    /// Bids.
    pub fn bids(&self) -> BidsRepo<'_> {
        BidsRepo { pool: &self.pool }
    }

    /// Sessions.
    pub fn sessions(&self) -> SessionsRepo<'_> {
        SessionsRepo { pool: &self.pool, caches: &self.caches }
    }

    /// Provider-model and model statistics.
    pub fn stats(&self) -> StatsRepo<'_> {
        StatsRepo { pool: &self.pool }
    }

    /// The consumer role's own records of its sessions (endpoint, key, failover, statistics).
    pub fn consumer_sessions(&self) -> ConsumerSessionsRepo<'_> {
        ConsumerSessionsRepo { pool: &self.pool, prompt_writes: &self.prompt_writes, caches: &self.caches }
    }

    /// The provider role's own state: consumers' handshake keys and per-session prompt statistics
    /// (not part of the chain index).
    pub fn provider_sessions(&self) -> ProviderSessionsRepo<'_> {
        ProviderSessionsRepo { pool: &self.pool, prompt_writes: &self.prompt_writes, caches: &self.caches }
    }

    /// The OpenAI gateway's API keys and their usage.
    pub fn api_keys(&self) -> ApiKeysRepo<'_> {
        ApiKeysRepo { pool: &self.pool }
    }

    /// The sessions the OpenAI gateway opened for its keys.
    pub fn gateway_sessions(&self) -> GatewaySessionsRepo<'_> {
        GatewaySessionsRepo { pool: &self.pool }
    }

    /// The API's agents: account requests, allowances, allowance requests, transactions.
    pub fn agents(&self) -> AgentsRepo<'_> {
        AgentsRepo { pool: &self.pool }
    }

    /// The chat history of the OpenAI routes.
    pub fn chats(&self) -> ChatsRepo<'_> {
        ChatsRepo { pool: &self.pool }
    }

    /// The indexer's cursor, block hashes, event log, journal and source.
    pub fn indexer(&self) -> IndexerRepo<'_> {
        IndexerRepo { pool: &self.pool }
    }

    /// Checks that the database accepts writes right now: takes the write lock (`BEGIN IMMEDIATE`)
    /// and releases it at once (`ROLLBACK`), writing nothing. It fails when no pooled connection is
    /// free, the file cannot be locked (another writer holds it past the busy timeout) or the file
    /// is gone or unreadable; the caller bounds how long it waits.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let tx = sql::write_tx(&self.pool, "check writable").await?;
        tx.rollback().await.map_err(StoreError::db("check writable"))
    }

    /// Applies one indexed block range atomically: entity removals and upserts, events, journal
    /// rows, block hashes (those listed, every event's block, and `to`) and the new cursor, in one
    /// transaction.
    ///
    /// Refused as a whole, with nothing written, when the stored cursor is not
    /// `batch.expected_cursor` ([`StoreError::CursorMismatch`]), when a row lies outside
    /// `(expected_cursor, to]` or a block has two hashes ([`StoreError::InvalidBatch`]), when an
    /// event is already stored ([`StoreError::DuplicateEvent`]), or on any database error.
    pub async fn apply_batch(&self, batch: &IndexBatch) -> Result<(), StoreError> {
        let applied = write::apply_batch(&self.pool, batch).await;
        // After the commit (or a failure, to be safe): no cached row may outlive the write.
        self.caches.invalidate_index();
        applied?;
        tracing::debug!(to = batch.to.number, events = batch.events.len(), "index batch applied");
        Ok(())
    }

    /// Undoes the blocks after `rollback.to` atomically (see the module docs): deletes their
    /// events, journal rows and block hashes, writes `rollback.changes`, marks the other entities
    /// they touched as stale and sets the cursor to `rollback.to`.
    ///
    /// Refused as a whole when the stored cursor is not `rollback.expected_cursor`, when `to` is
    /// not before it, or when `to`'s recorded hash differs.
    pub async fn rollback(&self, rollback: &Rollback) -> Result<RollbackReport, StoreError> {
        let report = write::rollback(&self.pool, rollback).await;
        self.caches.invalidate_index();
        let report = report?;
        tracing::info!(
            from = rollback.expected_cursor.number,
            to = rollback.to.number,
            events_removed = report.events_removed,
            touched = report.touched.len(),
            stale = report.stale.len(),
            "index rolled back"
        );
        Ok(report)
    }

    /// Empties the whole chain index (entities, statistics, events, journal, block hashes, stale
    /// set and cursor) in one transaction, for a re-index from scratch after a reorg deeper than
    /// the kept block hashes. The bound source ([`IndexerRepo::bind_source`]) is kept.
    pub async fn reset_index(&self) -> Result<(), StoreError> {
        let reset = write::reset_index(&self.pool).await;
        self.caches.invalidate_index();
        reset?;
        tracing::warn!(path = %self.path.display(), "chain index reset");
        Ok(())
    }
}
