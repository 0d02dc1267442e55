//! [`StoreError`]: every failure of the store, with typed context. SQL and driver details stay in
//! the error's `source()` chain; the `Display` text names the operation and the reason only.

use std::path::PathBuf;

use super::types::BlockRef;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage directory could not be created.
    #[error("cannot create the storage directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The database file could not be opened.
    #[error("cannot open the database {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations failed (including a database written by a newer version).
    #[error("cannot migrate the database {path} to this version's schema")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migration error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A database operation failed.
    #[error("database operation failed: {op}")]
    Database {
        /// What the store was doing, e.g. `"list bids"`.
        op: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },

    /// A stored value cannot be decoded (the file was edited by hand or is corrupt).
    #[error("corrupt value in {table}.{column}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// A number does not fit in the database's 64-bit signed integers.
    #[error("{field} = {value} is too large to store (at most {max})", max = i64::MAX)]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },

    /// A page larger than [`Page::MAX_LIMIT`](super::Page::MAX_LIMIT) was asked for.
    #[error("page limit {limit} is larger than the maximum {max}")]
    PageTooLarge {
        /// The requested limit.
        limit: u64,
        /// The maximum.
        max: u64,
    },

    /// The event is already stored: applying it again would double-count it.
    #[error("event at block {block_number}, log {log_index} is already indexed")]
    DuplicateEvent {
        /// Block number of the event.
        block_number: u64,
        /// Log index of the event.
        log_index: u64,
    },

    /// A batch or rollback was built on another cursor than the stored one.
    #[error("index cursor moved: the write expected {}, the store holds {}", show(expected), show(actual))]
    CursorMismatch {
        /// The cursor the write was built on.
        expected: Option<BlockRef>,
        /// The cursor in the store.
        actual: Option<BlockRef>,
    },

    /// A batch or rollback is inconsistent (a row outside its block range, two hashes for one block…).
    #[error("invalid index write: {reason}")]
    InvalidBatch {
        /// What is wrong.
        reason: String,
    },

    /// The index was built for another chain or diamond than the configured one.
    #[error(
        "the database indexes chain {stored_chain_id} diamond {stored_diamond}, \
         but the node is configured for chain {chain_id} diamond {diamond}"
    )]
    SourceMismatch {
        /// Chain id recorded in the database.
        stored_chain_id: u64,
        /// Diamond recorded in the database.
        stored_diamond: alloy::primitives::Address,
        /// Configured chain id.
        chain_id: u64,
        /// Configured diamond.
        diamond: alloy::primitives::Address,
    },
}

fn show(cursor: &Option<BlockRef>) -> String {
    match cursor {
        Some(c) => c.to_string(),
        None => "no cursor".to_owned(),
    }
}

impl StoreError {
    /// Wraps a driver error with the operation it interrupted.
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { op, source }
    }
}
