//! The agent tables: [`AgentsRepo`] keeps agents' account requests ([`AgentUser`], with the `proxy.conf`
//! credential made from the password, never the password itself), what each user may still spend per
//! token ([`AgentsRepo::allowance`], keyed by the lower-case token address or `"eth"`), pending
//! allowance requests ([`AllowanceRequest`]) and the transactions sent for a user ([`AgentsRepo::txs`],
//! newest first, cursor pagination).
//!
//! The store knows nothing of permissions or HTTP: perms are plain names, tokens plain keys, checked by
//! the API before they get here. Allowances are not tied to an agent row, so a user added directly to
//! `proxy.conf` can hold one too.

use std::collections::BTreeMap;

use alloy::primitives::{B256, U256};
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql;

/// Pending (unconfirmed) account requests kept at most: `POST /auth/users/request` needs no credentials,
/// so the table must not grow without bound.
pub const MAX_PENDING_AGENT_REQUESTS: u64 = 100;
/// Pending allowance requests kept at most per user.
pub const MAX_ALLOWANCE_REQUESTS_PER_USER: u64 = 32;

/// An agent's account request, confirmed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUser {
    /// The user name it asked for.
    pub username: String,
    /// The `proxy.conf` credential made from its password: `saltHex$hashHex`.
    pub credential: String,
    /// The permissions it asked for (the whitelist it gets when confirmed).
    pub perms: Vec<String>,
    /// Whether the admin confirmed it (it is then a `proxy.conf` user).
    pub is_confirmed: bool,
    /// What it may still spend, by token key (`"eth"` or a lower-case address).
    pub allowances: BTreeMap<String, U256>,
    /// When it asked (local clock, unix seconds).
    pub created_at: u64,
}

/// A user's request for an allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceRequest {
    /// The user.
    pub username: String,
    /// The token key (`"eth"` or a lower-case address).
    pub token: String,
    /// The allowance it asks for (it replaces the current one when confirmed).
    pub allowance: U256,
    /// When it asked (local clock, unix seconds).
    pub requested_at: u64,
}

/// What [`AgentsRepo::add_request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Stored.
    Added,
    /// A request (or agent) with this name exists already.
    Exists,
    /// [`MAX_PENDING_AGENT_REQUESTS`] requests are pending.
    TooMany,
}

/// One page of a user's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPage {
    /// The hashes.
    pub tx_hashes: Vec<B256>,
    /// Where the next page starts (pass it as `before`), `None` after the last one.
    pub next: Option<u64>,
}

/// The agent tables. Reached through [`Store::agents`](super::Store::agents).
#[derive(Debug, Clone, Copy)]
pub struct AgentsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl AgentsRepo<'_> {
    /// Stores a new account request with its requested allowances, unless the name is taken or too many
    /// requests are pending.
    pub async fn add_request(&self, agent: &AgentUser) -> Result<RequestOutcome, StoreError> {
        const OP: &str = "add agent request";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_users WHERE username = $1")
            .bind(&agent.username)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        if exists > 0 {
            return Ok(RequestOutcome::Exists);
        }
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_users WHERE is_confirmed = FALSE")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        if u64::try_from(pending).unwrap_or(u64::MAX) >= MAX_PENDING_AGENT_REQUESTS {
            return Ok(RequestOutcome::TooMany);
        }
        let perms = serde_json::Value::from(agent.perms.clone()).to_string();
        sqlx::query(
            "INSERT INTO agent_users (username, credential, perms, is_confirmed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&agent.username)
        .bind(&agent.credential)
        .bind(perms)
        .bind(agent.is_confirmed)
        .bind(codec::int("created_at", agent.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        for (token, amount) in &agent.allowances {
            set_allowance(&mut tx, &agent.username, token, amount, OP).await?;
        }
        sql::commit(tx, OP).await?;
        Ok(RequestOutcome::Added)
    }

    /// The agent, with its allowances.
    pub async fn get(&self, username: &str) -> Result<Option<AgentUser>, StoreError> {
        const OP: &str = "get agent";
        let row = sqlx::query(
            "SELECT username, credential, perms, is_confirmed, created_at FROM agent_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db(OP))?;
        let Some(row) = row else { return Ok(None) };
        let mut agent = decode_agent(&row)?;
        agent.allowances = self.allowances(username).await?;
        Ok(Some(agent))
    }

    /// Every agent, oldest request first, with its allowances.
    pub async fn list(&self) -> Result<Vec<AgentUser>, StoreError> {
        const OP: &str = "list agents";
        let mut tx = sql::read_tx(self.pool, OP).await?;
        let rows = sqlx::query(
            "SELECT username, credential, perms, is_confirmed, created_at FROM agent_users \
             ORDER BY created_at, username",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        let mut agents = rows.iter().map(decode_agent).collect::<Result<Vec<_>, _>>()?;
        let allowances = sqlx::query(
            "SELECT a.username, a.token, a.allowance FROM agent_allowances a \
             JOIN agent_users u ON u.username = a.username",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        tx.rollback().await.map_err(StoreError::db(OP))?;
        for row in &allowances {
            let c = Cols::new(row, "agent_allowances");
            let user = c.text("username")?;
            if let Some(agent) = agents.iter_mut().find(|a| a.username == user) {
                agent.allowances.insert(c.text("token")?, c.u256("allowance")?);
            }
        }
        Ok(agents)
    }

    /// Marks the agent confirmed; `false` when there is no such agent.
    pub async fn confirm(&self, username: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agent_users SET is_confirmed = TRUE WHERE username = $1")
            .bind(username)
            .execute(self.pool)
            .await
            .map_err(StoreError::db("confirm agent"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the user: its agent row, allowances and allowance requests (its transaction history is
    /// kept). `false` when none of them existed.
    pub async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        const OP: &str = "delete agent";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        let mut removed = 0;
        for statement in [
            "DELETE FROM agent_users WHERE username = $1",
            "DELETE FROM agent_allowances WHERE username = $1",
            "DELETE FROM agent_allowance_requests WHERE username = $1",
        ] {
            let done =
                sqlx::query(statement).bind(username).execute(&mut *tx).await.map_err(StoreError::db(OP))?;
            removed += done.rows_affected();
        }
        sql::commit(tx, OP).await?;
        Ok(removed > 0)
    }

    /// The user's allowances by token.
    pub async fn allowances(&self, username: &str) -> Result<BTreeMap<String, U256>, StoreError> {
        let rows = sqlx::query("SELECT token, allowance FROM agent_allowances WHERE username = $1")
            .bind(username)
            .fetch_all(self.pool)
            .await
            .map_err(StoreError::db("get allowances"))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "agent_allowances");
                Ok((c.text("token")?, c.u256("allowance")?))
            })
            .collect()
    }

    /// What the user may still spend of `token` (0 when nothing was allowed).
    pub async fn allowance(&self, username: &str, token: &str) -> Result<U256, StoreError> {
        let row = sqlx::query("SELECT allowance FROM agent_allowances WHERE username = $1 AND token = $2")
            .bind(username)
            .bind(token)
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("get allowance"))?;
        match row {
            Some(row) => Cols::new(&row, "agent_allowances").u256("allowance"),
            None => Ok(U256::ZERO),
        }
    }

    /// Sets the user's allowance of `token` (0 revokes it).
    pub async fn set_allowance(&self, username: &str, token: &str, amount: U256) -> Result<(), StoreError> {
        const OP: &str = "set allowance";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        set_allowance(&mut tx, username, token, &amount, OP).await?;
        sql::commit(tx, OP).await
    }

    /// After a transaction spent `amount` of `token` for the user: lowers its allowance by `amount`
    /// (never below 0) and records `tx_hash`, in one transaction. Returns what is left.
    pub async fn spend(
        &self,
        username: &str,
        token: &str,
        amount: U256,
        tx_hash: B256,
        now: u64,
    ) -> Result<U256, StoreError> {
        const OP: &str = "spend allowance";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        let row = sqlx::query("SELECT allowance FROM agent_allowances WHERE username = $1 AND token = $2")
            .bind(username)
            .bind(token)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        let current = match row {
            Some(row) => Cols::new(&row, "agent_allowances").u256("allowance")?,
            None => U256::ZERO,
        };
        let left = current.saturating_sub(amount);
        set_allowance(&mut tx, username, token, &left, OP).await?;
        insert_tx(&mut tx, username, tx_hash, now, OP).await?;
        sql::commit(tx, OP).await?;
        Ok(left)
    }

    /// Records a transaction sent for the user.
    pub async fn record_tx(&self, username: &str, tx_hash: B256, now: u64) -> Result<(), StoreError> {
        const OP: &str = "record agent tx";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        insert_tx(&mut tx, username, tx_hash, now, OP).await?;
        sql::commit(tx, OP).await
    }

    /// Up to `limit` of the user's transactions, newest first, older than the cursor `before` (from
    /// [`TxPage::next`]) when given.
    pub async fn txs(&self, username: &str, before: Option<u64>, limit: u64) -> Result<TxPage, StoreError> {
        const OP: &str = "list agent txs";
        let before = before.map_or(Ok(i64::MAX), |b| codec::int("cursor", b))?;
        let rows = sqlx::query(
            "SELECT seq, tx_hash FROM agent_txs WHERE username = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(username)
        .bind(before)
        .bind(codec::int("limit", limit)?.saturating_add(1))
        .fetch_all(self.pool)
        .await
        .map_err(StoreError::db(OP))?;
        let shown = usize::try_from(limit).unwrap_or(usize::MAX).min(rows.len());
        let mut page = TxPage { tx_hashes: Vec::with_capacity(shown), next: None };
        for row in &rows[..shown] {
            page.tx_hashes.push(Cols::new(row, "agent_txs").b256("tx_hash")?);
        }
        if rows.len() > shown {
            if let Some(last) = shown.checked_sub(1).and_then(|i| rows.get(i)) {
                page.next = Some(Cols::new(last, "agent_txs").u64("seq")?);
            }
        }
        Ok(page)
    }

    /// Stores (or replaces) the user's request for an allowance of `token`. `false` when the user has
    /// [`MAX_ALLOWANCE_REQUESTS_PER_USER`] other requests pending.
    pub async fn request_allowance(&self, request: &AllowanceRequest) -> Result<bool, StoreError> {
        const OP: &str = "request allowance";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM agent_allowance_requests WHERE username = $1 AND token != $2",
        )
        .bind(&request.username)
        .bind(&request.token)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        if u64::try_from(others).unwrap_or(u64::MAX) >= MAX_ALLOWANCE_REQUESTS_PER_USER {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO agent_allowance_requests (username, token, allowance, requested_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (username, token) DO UPDATE SET \
             allowance = excluded.allowance, requested_at = excluded.requested_at",
        )
        .bind(&request.username)
        .bind(&request.token)
        .bind(codec::u256(&request.allowance))
        .bind(codec::int("requested_at", request.requested_at)?)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        sql::commit(tx, OP).await?;
        Ok(true)
    }

    /// Every pending allowance request, oldest first.
    pub async fn allowance_requests(&self) -> Result<Vec<AllowanceRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, token, allowance, requested_at FROM agent_allowance_requests \
             ORDER BY requested_at, username, token",
        )
        .fetch_all(self.pool)
        .await
        .map_err(StoreError::db("list allowance requests"))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "agent_allowance_requests");
                Ok(AllowanceRequest {
                    username: c.text("username")?,
                    token: c.text("token")?,
                    allowance: c.u256("allowance")?,
                    requested_at: c.u64("requested_at")?,
                })
            })
            .collect()
    }

    /// Answers the user's request for `token`: removes it and, when `confirm`, makes its amount the
    /// user's allowance, in one transaction. `None` when there is no such request, else the request.
    pub async fn answer_allowance_request(
        &self,
        username: &str,
        token: &str,
        confirm: bool,
    ) -> Result<Option<U256>, StoreError> {
        const OP: &str = "answer allowance request";
        let mut tx = sql::write_tx(self.pool, OP).await?;
        let row = sqlx::query(
            "DELETE FROM agent_allowance_requests WHERE username = $1 AND token = $2 RETURNING allowance",
        )
        .bind(username)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        let Some(row) = row else { return Ok(None) };
        let amount = Cols::new(&row, "agent_allowance_requests").u256("allowance")?;
        if confirm {
            set_allowance(&mut tx, username, token, &amount, OP).await?;
        }
        sql::commit(tx, OP).await?;
        Ok(Some(amount))
    }
}

fn decode_agent(row: &sqlx::sqlite::SqliteRow) -> Result<AgentUser, StoreError> {
    let c = Cols::new(row, "agent_users");
    Ok(AgentUser {
        username: c.text("username")?,
        credential: c.text("credential")?,
        perms: c.json("perms")?,
        is_confirmed: c.boolean("is_confirmed")?,
        allowances: BTreeMap::new(),
        created_at: c.u64("created_at")?,
    })
}

async fn set_allowance(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    username: &str,
    token: &str,
    amount: &U256,
    op: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agent_allowances (username, token, allowance) VALUES ($1, $2, $3) \
         ON CONFLICT (username, token) DO UPDATE SET allowance = excluded.allowance",
    )
    .bind(username)
    .bind(token)
    .bind(codec::u256(amount))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db(op))?;
    Ok(())
}

async fn insert_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    username: &str,
    tx_hash: B256,
    now: u64,
    op: &'static str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agent_txs (username, tx_hash, created_at) VALUES ($1, $2, $3)")
        .bind(username)
        .bind(codec::b256(&tx_hash))
        .bind(codec::int("created_at", now)?)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db(op))?;
    Ok(())
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
