//! The `consumer_sessions` table: [`ConsumerSessionsRepo`], the consumer role's durable record of the
//! sessions this node uses as a consumer ([`ConsumerSession`]): the provider's endpoint and public
//! key, the failover and direct-payment choices, the failover successor, and the consumer's own
//! statistics ([`AnsweredPrompt`], summed with atomic updates).

use alloy::primitives::{Address, Bytes, B256, U256};
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;

/// What the consumer remembers about one of its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSession {
    /// The on-chain session id.
    pub session_id: B256,
    /// The session's user (this node's wallet).
    pub user: Address,
    /// The bid's provider.
    pub provider: Address,
    /// The bid.
    pub bid_id: B256,
    /// The bid's model.
    pub model_id: B256,
    /// The provider's MOR-RPC endpoint (`host:port`).
    pub endpoint: String,
    /// The provider's public key, once known (handshake or ping).
    pub provider_public_key: Option<Bytes>,
    /// MOR staked or paid.
    pub stake: U256,
    /// Paid directly rather than staked.
    pub direct_payment: bool,
    /// Whether a failing provider is replaced by the next-best bid.
    pub failover: bool,
    /// When the session opened (chain time, unix seconds).
    pub opened_at: u64,
    /// When it ends (unix seconds).
    pub ends_at: u64,
    /// When this node closed it (chain time of the close, unix seconds); 0 while open.
    pub closed_at: u64,
    /// The `closeSession` transaction.
    pub close_tx: Option<B256>,
    /// 0 when closed with the provider's receipt, 1 with our own (a dispute).
    pub closeout_type: Option<u8>,
    /// The session that replaced this one after a failover.
    pub replaced_by: Option<B256>,
    /// The consumer's statistics.
    pub stats: SessionStats,
    /// When the record was created (local clock, unix seconds).
    pub created_at: u64,
}

/// Sums over a session's prompts, as the consumer measured them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Prompts answered.
    pub prompts: u64,
    /// Prompts that failed at the provider.
    pub failures: u64,
    /// Sum of each prompt's output tokens × 1000 per second.
    pub tps_scaled1000_sum: u64,
    /// Sum of each prompt's time to first token, milliseconds.
    pub ttft_ms_sum: u64,
    /// Input tokens over the session.
    pub input_tokens: u64,
    /// Output tokens over the session.
    pub output_tokens: u64,
}

impl SessionStats {
    /// Average tokens per second × 1000 over the prompts (0 without prompts).
    pub fn tps_scaled1000(&self) -> u64 {
        self.tps_scaled1000_sum.checked_div(self.prompts).unwrap_or(0)
    }

    /// Average time to first token in milliseconds (0 without prompts).
    pub fn ttft_ms(&self) -> u64 {
        self.ttft_ms_sum.checked_div(self.prompts).unwrap_or(0)
    }
}

/// One answered prompt, added to a session's [`SessionStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnsweredPrompt {
    /// Output tokens × 1000 per second of the answer.
    pub tps_scaled1000: u64,
    /// Time to the first chunk, milliseconds.
    pub ttft_ms: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// The consumer's sessions. Reached through [`Store::consumer_sessions`](super::Store::consumer_sessions).
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSessionsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) prompt_writes: &'a tokio::sync::Mutex<()>,
    pub(crate) caches: &'a super::cache::Caches,
}

/// `SELECT <every column> FROM consumer_sessions <rest>` as one literal.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT session_id, user_address, provider, bid_id, model_id, endpoint, provider_public_key, \
             stake, direct_payment, failover, opened_at, ends_at, closed_at, close_tx, closeout_type, \
             replaced_by, prompts, failures, tps_scaled1000_sum, ttft_ms_sum, input_tokens, output_tokens, \
             created_at FROM consumer_sessions ",
            $rest
        )
    };
}

impl ConsumerSessionsRepo<'_> {
    /// Inserts a record, or replaces everything but the statistics and the close of an existing one.
    pub async fn upsert(&self, s: &ConsumerSession) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO consumer_sessions (session_id, user_address, provider, bid_id, model_id, endpoint, \
             provider_public_key, stake, direct_payment, failover, opened_at, ends_at, closed_at, close_tx, \
             closeout_type, replaced_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (session_id) DO UPDATE SET user_address = excluded.user_address, \
             provider = excluded.provider, bid_id = excluded.bid_id, model_id = excluded.model_id, \
             endpoint = excluded.endpoint, \
             provider_public_key = COALESCE(excluded.provider_public_key, provider_public_key), \
             stake = excluded.stake, direct_payment = excluded.direct_payment, failover = excluded.failover, \
             opened_at = excluded.opened_at, ends_at = excluded.ends_at, \
             replaced_by = COALESCE(excluded.replaced_by, replaced_by)",
        )
        .bind(codec::b256(&s.session_id))
        .bind(codec::addr(&s.user))
        .bind(codec::addr(&s.provider))
        .bind(codec::b256(&s.bid_id))
        .bind(codec::b256(&s.model_id))
        .bind(&s.endpoint)
        .bind(s.provider_public_key.as_ref().map(|k| k.to_vec()))
        .bind(codec::u256(&s.stake))
        .bind(s.direct_payment)
        .bind(s.failover)
        .bind(codec::int("consumer_session.opened_at", s.opened_at)?)
        .bind(codec::int("consumer_session.ends_at", s.ends_at)?)
        .bind(codec::int("consumer_session.closed_at", s.closed_at)?)
        .bind(s.close_tx.as_ref().map(codec::b256))
        .bind(s.closeout_type.map(i64::from))
        .bind(s.replaced_by.as_ref().map(codec::b256))
        .bind(codec::int("consumer_session.created_at", s.created_at)?)
        .execute(self.pool)
        .await;
        self.caches.consumer_sessions.forget(&s.session_id);
        done.map_err(StoreError::db("upsert consumer session"))?;
        Ok(())
    }

    /// The record of `session_id`.
    pub async fn get(&self, session_id: B256) -> Result<Option<ConsumerSession>, StoreError> {
        let miss = match self.caches.consumer_sessions.get(&session_id) {
            Ok(cached) => return Ok(Some(cached)),
            Err(miss) => miss,
        };
        let row = sqlx::query(select!("WHERE session_id = $1"))
            .bind(codec::b256(&session_id))
            .fetch_optional(self.pool)
            .await
            .map_err(StoreError::db("get consumer session"))?;
        let found = row.as_ref().map(decode).transpose()?;
        if let Some(found) = &found {
            self.caches.consumer_sessions.put(miss, session_id, found.clone());
        }
        Ok(found)
    }

    /// `user`'s sessions this node has not closed, soonest end first.
    pub async fn open_of(&self, user: Address) -> Result<Vec<ConsumerSession>, StoreError> {
        let rows =
            sqlx::query(select!("WHERE user_address = $1 AND closed_at = 0 ORDER BY ends_at, session_id"))
                .bind(codec::addr(&user))
                .fetch_all(self.pool)
                .await
                .map_err(StoreError::db("list open consumer sessions"))?;
        rows.iter().map(decode).collect()
    }

    /// Records the provider's endpoint and public key (learned again after a restart or a change).
    pub async fn set_provider(
        &self,
        session_id: B256,
        endpoint: &str,
        public_key: &Bytes,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE consumer_sessions SET endpoint = $2, provider_public_key = $3 WHERE session_id = $1",
        )
        .bind(codec::b256(&session_id))
        .bind(endpoint)
        .bind(public_key.to_vec())
        .execute(self.pool)
        .await;
        self.caches.consumer_sessions.forget(&session_id);
        let done = done.map_err(StoreError::db("set consumer session provider"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that this node closed the session at chain time `closed_at`.
    pub async fn mark_closed(
        &self,
        session_id: B256,
        closed_at: u64,
        close_tx: Option<B256>,
        closeout_type: Option<u8>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE consumer_sessions SET closed_at = $2, close_tx = $3, closeout_type = $4 WHERE session_id = $1",
        )
        .bind(codec::b256(&session_id))
        .bind(codec::int("consumer_session.closed_at", closed_at.max(1))?)
        .bind(close_tx.as_ref().map(codec::b256))
        .bind(closeout_type.map(i64::from))
        .execute(self.pool)
        .await;
        self.caches.consumer_sessions.forget(&session_id);
        let done = done.map_err(StoreError::db("mark consumer session closed"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `successor` replaced the session after a failover.
    pub async fn set_replaced_by(&self, session_id: B256, successor: B256) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE consumer_sessions SET replaced_by = $2 WHERE session_id = $1")
            .bind(codec::b256(&session_id))
            .bind(codec::b256(&successor))
            .execute(self.pool)
            .await;
        self.caches.consumer_sessions.forget(&session_id);
        let done = done.map_err(StoreError::db("set consumer session successor"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds one answered prompt to the session's statistics (one atomic statement).
    pub async fn add_prompt(&self, session_id: B256, prompt: AnsweredPrompt) -> Result<(), StoreError> {
        let _turn = self.prompt_writes.lock().await;
        let done = sqlx::query(
            "UPDATE consumer_sessions SET prompts = prompts + 1, \
             tps_scaled1000_sum = tps_scaled1000_sum + $2, ttft_ms_sum = ttft_ms_sum + $3, \
             input_tokens = input_tokens + $4, output_tokens = output_tokens + $5 WHERE session_id = $1",
        )
        .bind(codec::b256(&session_id))
        .bind(codec::int("prompt.tps_scaled1000", prompt.tps_scaled1000)?)
        .bind(codec::int("prompt.ttft_ms", prompt.ttft_ms)?)
        .bind(codec::int("prompt.input_tokens", prompt.input_tokens)?)
        .bind(codec::int("prompt.output_tokens", prompt.output_tokens)?)
        .execute(self.pool)
        .await;
        if done.is_err() {
            self.caches.consumer_sessions.forget(&session_id);
        } else {
            self.caches.consumer_sessions.update(&session_id, |r| {
                let stats = &mut r.stats;
                stats.prompts = stats.prompts.saturating_add(1);
                stats.tps_scaled1000_sum = stats.tps_scaled1000_sum.saturating_add(prompt.tps_scaled1000);
                stats.ttft_ms_sum = stats.ttft_ms_sum.saturating_add(prompt.ttft_ms);
                stats.input_tokens = stats.input_tokens.saturating_add(prompt.input_tokens);
                stats.output_tokens = stats.output_tokens.saturating_add(prompt.output_tokens);
            });
        }
        done.map_err(StoreError::db("add consumer prompt stats"))?;
        Ok(())
    }

    /// Counts one prompt that failed at the provider.
    pub async fn add_failure(&self, session_id: B256) -> Result<(), StoreError> {
        let _turn = self.prompt_writes.lock().await;
        let done = sqlx::query("UPDATE consumer_sessions SET failures = failures + 1 WHERE session_id = $1")
            .bind(codec::b256(&session_id))
            .execute(self.pool)
            .await;
        if done.is_err() {
            self.caches.consumer_sessions.forget(&session_id);
        } else {
            self.caches.consumer_sessions.update(&session_id, |r| {
                r.stats.failures = r.stats.failures.saturating_add(1);
            });
        }
        done.map_err(StoreError::db("add consumer prompt failure"))?;
        Ok(())
    }
}

fn decode(row: &SqliteRow) -> Result<ConsumerSession, StoreError> {
    let c = Cols::new(row, "consumer_sessions");
    let opt_b256 = |column: &'static str| -> Result<Option<B256>, StoreError> {
        c.opt_text(column)?
            .map(|s| {
                codec::parse_b256(&s).map_err(|reason| StoreError::Corrupt {
                    table: "consumer_sessions",
                    column,
                    reason,
                })
            })
            .transpose()
    };
    let closeout_type = sqlx::Row::try_get::<Option<i64>, _>(row, "closeout_type")
        .map_err(|e| corrupt("closeout_type", e.to_string()))?
        .map(|v| u8::try_from(v).map_err(|_| corrupt("closeout_type", format!("{v} is not 0 or 1"))))
        .transpose()?;
    let public_key = sqlx::Row::try_get::<Option<Vec<u8>>, _>(row, "provider_public_key")
        .map_err(|e| corrupt("provider_public_key", e.to_string()))?;
    Ok(ConsumerSession {
        session_id: c.b256("session_id")?,
        user: c.address("user_address")?,
        provider: c.address("provider")?,
        bid_id: c.b256("bid_id")?,
        model_id: c.b256("model_id")?,
        endpoint: c.text("endpoint")?,
        provider_public_key: public_key.map(Bytes::from),
        stake: c.u256("stake")?,
        direct_payment: c.boolean("direct_payment")?,
        failover: c.boolean("failover")?,
        opened_at: c.u64("opened_at")?,
        ends_at: c.u64("ends_at")?,
        closed_at: c.u64("closed_at")?,
        close_tx: opt_b256("close_tx")?,
        closeout_type,
        replaced_by: opt_b256("replaced_by")?,
        stats: SessionStats {
            prompts: c.u64("prompts")?,
            failures: c.u64("failures")?,
            tps_scaled1000_sum: c.u64("tps_scaled1000_sum")?,
            ttft_ms_sum: c.u64("ttft_ms_sum")?,
            input_tokens: c.u64("input_tokens")?,
            output_tokens: c.u64("output_tokens")?,
        },
        created_at: c.u64("created_at")?,
    })
}

fn corrupt(column: &'static str, reason: String) -> StoreError {
    StoreError::Corrupt { table: "consumer_sessions", column, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn record(id: u8, user: Address, ends_at: u64) -> ConsumerSession {
        ConsumerSession {
            session_id: B256::repeat_byte(id),
            user,
            provider: Address::repeat_byte(0x70),
            bid_id: B256::repeat_byte(0xb1),
            model_id: B256::repeat_byte(0xa1),
            endpoint: "127.0.0.1:3333".into(),
            provider_public_key: None,
            stake: U256::from(10u64).pow(U256::from(20u64)),
            direct_payment: false,
            failover: true,
            opened_at: 1_000,
            ends_at,
            closed_at: 0,
            close_tx: None,
            closeout_type: None,
            replaced_by: None,
            stats: SessionStats::default(),
            created_at: 5,
        }
    }

    #[tokio::test]
    async fn records_survive_a_reopen_and_sum_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let user = Address::repeat_byte(0x3c);
        {
            let store = Store::open(dir.path()).await.unwrap();
            let repo = store.consumer_sessions();
            repo.upsert(&record(1, user, 2_000)).await.unwrap();
            repo.upsert(&record(2, user, 1_500)).await.unwrap();
            repo.upsert(&record(3, Address::repeat_byte(9), 1_500)).await.unwrap();
            let key = Bytes::from(vec![4u8; 65]);
            assert!(repo.set_provider(B256::repeat_byte(1), "10.0.0.1:4444", &key).await.unwrap());
            // An upsert without a key keeps the known one.
            repo.upsert(&record(1, user, 2_000)).await.unwrap();
            for (ttft, out) in [(100, 10), (300, 30)] {
                let prompt = AnsweredPrompt {
                    tps_scaled1000: 5_000,
                    ttft_ms: ttft,
                    input_tokens: 2,
                    output_tokens: out,
                };
                repo.add_prompt(B256::repeat_byte(1), prompt).await.unwrap();
            }
            repo.add_failure(B256::repeat_byte(1)).await.unwrap();
            assert!(repo
                .mark_closed(B256::repeat_byte(2), 1_600, Some(B256::repeat_byte(0xcc)), Some(0))
                .await
                .unwrap());
            assert!(repo.set_replaced_by(B256::repeat_byte(2), B256::repeat_byte(1)).await.unwrap());
            assert!(!repo.mark_closed(B256::repeat_byte(0xee), 1, None, None).await.unwrap());
            store.close().await;
        }
        let store = Store::open(dir.path()).await.unwrap();
        let repo = store.consumer_sessions();
        let one = repo.get(B256::repeat_byte(1)).await.unwrap().unwrap();
        assert_eq!(one.endpoint, "127.0.0.1:3333");
        assert_eq!(one.provider_public_key, Some(Bytes::from(vec![4u8; 65])));
        assert_eq!(one.stats.prompts, 2);
        assert_eq!(one.stats.failures, 1);
        assert_eq!(one.stats.ttft_ms(), 200);
        assert_eq!(one.stats.tps_scaled1000(), 5_000);
        assert_eq!((one.stats.input_tokens, one.stats.output_tokens), (4, 40));
        assert_eq!(one.stake, U256::from(10u64).pow(U256::from(20u64)));
        let two = repo.get(B256::repeat_byte(2)).await.unwrap().unwrap();
        assert_eq!((two.closed_at, two.closeout_type), (1_600, Some(0)));
        assert_eq!(two.close_tx, Some(B256::repeat_byte(0xcc)));
        assert_eq!(two.replaced_by, Some(B256::repeat_byte(1)));
        let open: Vec<B256> = repo.open_of(user).await.unwrap().iter().map(|s| s.session_id).collect();
        assert_eq!(open, vec![B256::repeat_byte(1)]);
        assert!(repo.get(B256::repeat_byte(0xee)).await.unwrap().is_none());
    }
}
