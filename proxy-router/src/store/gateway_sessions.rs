//! The `gateway_sessions` table: [`GatewaySessionsRepo`], the sessions the OpenAI gateway opened for
//! its API keys ([`GatewaySession`]): which key and model each serves, when it was last used, its
//! state in the gateway's life cycle ([`GatewaySessionState`]) and, once closed, the MOR still
//! attributed to its key (stake on hold until the next UTC day, or what a direct payment paid).

use alloy::primitives::{Address, B256, U256};
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql;

/// Where a gateway session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewaySessionState {
    /// Serves its key and model.
    Open,
    /// Replaced, idle, expired, failed or its key revoked: to be closed on chain.
    Closing,
    /// Closed on chain.
    Closed,
}

impl GatewaySessionState {
    /// The column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closing" => Some(Self::Closing),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// One session the gateway opened for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySession {
    /// The on-chain session.
    pub session_id: B256,
    /// The API key it serves.
    pub key_id: String,
    /// The model.
    pub model_id: B256,
    /// The provider.
    pub provider: Address,
    /// The bid.
    pub bid_id: B256,
    /// The bid's price, wei per second.
    pub price_per_second: U256,
    /// MOR staked (or paid, with a direct payment).
    pub stake: U256,
    /// Paid directly rather than staked.
    pub direct_payment: bool,
    /// When it opened (chain time, unix seconds).
    pub opened_at: u64,
    /// When it ends (unix seconds).
    pub ends_at: u64,
    /// Its last answered request (unix seconds).
    pub last_used_at: u64,
    /// Where it is in its life.
    pub state: GatewaySessionState,
    /// Why it is closing or closed.
    pub close_reason: Option<String>,
    /// When it was closed (chain time, unix seconds); 0 before.
    pub closed_at: u64,
    /// The `closeSession` transaction, when this node sent it.
    pub close_tx: Option<B256>,
    /// After the close, the MOR still attributed to the key.
    pub held: U256,
    /// When `held` stops counting (unix seconds); 0: for good (a payment).
    pub release_at: u64,
    /// When the row was written (unix seconds).
    pub created_at: u64,
}

/// The gateway's sessions. Reached through [`Store::gateway_sessions`](super::Store::gateway_sessions).
#[derive(Debug, Clone, Copy)]
pub struct GatewaySessionsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT session_id, key_id, model_id, provider, bid_id, price_per_second, stake, direct_payment, \
             opened_at, ends_at, last_used_at, state, close_reason, closed_at, close_tx, held, release_at, \
             created_at FROM gateway_sessions ",
            $rest
        )
    };
}

impl GatewaySessionsRepo<'_> {
    /// Inserts a new session row.
    pub async fn insert(&self, s: &GatewaySession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateway_sessions (session_id, key_id, model_id, provider, bid_id, price_per_second, \
             stake, direct_payment, opened_at, ends_at, last_used_at, state, close_reason, closed_at, \
             close_tx, held, release_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(codec::b256(&s.session_id))
        .bind(&s.key_id)
        .bind(codec::b256(&s.model_id))
        .bind(codec::addr(&s.provider))
        .bind(codec::b256(&s.bid_id))
        .bind(codec::u256(&s.price_per_second))
        .bind(codec::u256(&s.stake))
        .bind(s.direct_payment)
        .bind(codec::int("gateway_session.opened_at", s.opened_at)?)
        .bind(codec::int("gateway_session.ends_at", s.ends_at)?)
        .bind(codec::int("gateway_session.last_used_at", s.last_used_at)?)
        .bind(s.state.as_str())
        .bind(s.close_reason.as_deref())
        .bind(codec::int("gateway_session.closed_at", s.closed_at)?)
        .bind(s.close_tx.as_ref().map(codec::b256))
        .bind(codec::u256(&s.held))
        .bind(codec::int("gateway_session.release_at", s.release_at)?)
        .bind(codec::int("gateway_session.created_at", s.created_at)?)
        .execute(self.pool)
        .await
        .map_err(StoreError::db("insert gateway session"))?;
        Ok(())
    }

    /// The row of `session_id`.
    pub async fn get(&self, session_id: B256) -> Result<Option<GatewaySession>, StoreError> {
        let row = sqlx::query(select!("WHERE session_id = $1"))
            .bind(codec::b256(&session_id))
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("get gateway session"))?;
        row.as_ref().map(decode).transpose()
    }

    /// Every session of `key_id`, oldest first.
    pub async fn of_key(&self, key_id: &str) -> Result<Vec<GatewaySession>, StoreError> {
        let rows = sqlx::query(select!("WHERE key_id = $1 ORDER BY opened_at, session_id"))
            .bind(key_id)
            .fetch_all(self.pool)
            .await
            .map_err(StoreError::db("list gateway sessions of a key"))?;
        rows.iter().map(decode).collect()
    }

    /// Every session not closed yet (open or closing), oldest first.
    pub async fn unclosed(&self) -> Result<Vec<GatewaySession>, StoreError> {
        let rows = sqlx::query(select!("WHERE state <> 'closed' ORDER BY opened_at, session_id"))
            .fetch_all(self.pool)
            .await
            .map_err(StoreError::db("list unclosed gateway sessions"))?;
        rows.iter().map(decode).collect()
    }

    /// Moves an open session to `closing` with `reason`; `false` if it was not open.
    pub async fn set_closing(&self, session_id: B256, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gateway_sessions SET state = 'closing', close_reason = $2 \
             WHERE session_id = $1 AND state = 'open'",
        )
        .bind(codec::b256(&session_id))
        .bind(reason)
        .execute(self.pool)
        .await
        .map_err(StoreError::db("mark gateway session closing"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the close: chain time, transaction and what stays attributed to the key.
    pub async fn set_closed(
        &self,
        session_id: B256,
        closed_at: u64,
        close_tx: Option<B256>,
        held: U256,
        release_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gateway_sessions SET state = 'closed', closed_at = $2, close_tx = $3, held = $4, \
             release_at = $5, close_reason = COALESCE(close_reason, 'closed elsewhere') \
             WHERE session_id = $1 AND state <> 'closed'",
        )
        .bind(codec::b256(&session_id))
        .bind(codec::int("gateway_session.closed_at", closed_at.max(1))?)
        .bind(close_tx.as_ref().map(codec::b256))
        .bind(codec::u256(&held))
        .bind(codec::int("gateway_session.release_at", release_at)?)
        .execute(self.pool)
        .await
        .map_err(StoreError::db("mark gateway session closed"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves each session's `last_used_at` forward to the given time, in one transaction.
    pub async fn touch(&self, uses: &[(B256, u64)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = sql::write_tx(self.pool, "touch gateway sessions").await?;
        for (session_id, at) in uses {
            sqlx::query(
                "UPDATE gateway_sessions SET last_used_at = MAX(last_used_at, $2) WHERE session_id = $1",
            )
            .bind(codec::b256(session_id))
            .bind(codec::int("gateway_session.last_used_at", *at)?)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("touch gateway sessions"))?;
        }
        sql::commit(tx, "touch gateway sessions").await
    }
}

fn decode(row: &SqliteRow) -> Result<GatewaySession, StoreError> {
    let c = Cols::new(row, "gateway_sessions");
    let state = c.text("state")?;
    let state = GatewaySessionState::parse(&state).ok_or_else(|| StoreError::Corrupt {
        table: "gateway_sessions",
        column: "state",
        reason: format!("unknown state {state:?}"),
    })?;
    let close_tx =
        c.opt_text("close_tx")?.map(|s| codec::parse_b256(&s)).transpose().map_err(|reason| {
            StoreError::Corrupt { table: "gateway_sessions", column: "close_tx", reason }
        })?;
    Ok(GatewaySession {
        session_id: c.b256("session_id")?,
        key_id: c.text("key_id")?,
        model_id: c.b256("model_id")?,
        provider: c.address("provider")?,
        bid_id: c.b256("bid_id")?,
        price_per_second: c.u256("price_per_second")?,
        stake: c.u256("stake")?,
        direct_payment: c.boolean("direct_payment")?,
        opened_at: c.u64("opened_at")?,
        ends_at: c.u64("ends_at")?,
        last_used_at: c.u64("last_used_at")?,
        state,
        close_reason: c.opt_text("close_reason")?,
        closed_at: c.u64("closed_at")?,
        close_tx,
        held: c.u256("held")?,
        release_at: c.u64("release_at")?,
        created_at: c.u64("created_at")?,
    })
}
