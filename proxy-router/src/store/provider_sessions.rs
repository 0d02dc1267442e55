//! The provider role's own tables (migration `0002_provider.sql`): [`ProviderSessionsRepo`] keeps the
//! consumers' handshake public keys (`provider_users`) and the statistics of the prompts served per
//! session (`provider_sessions`), from which `session.report` signs the receipt. Both survive restarts.
//!
//! It also answers the two capacity questions of the provider's handshake: how many open sessions
//! this provider serves on a model (from the chain index's `sessions` table) and how many of them were
//! active recently (from `provider_sessions`).

use alloy::primitives::{Address, Bytes, B256};
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;

/// The provider's durable per-session state. Reached through
/// [`Store::provider_sessions`](super::Store::provider_sessions).
#[derive(Debug, Clone, Copy)]
pub struct ProviderSessionsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) prompt_writes: &'a tokio::sync::Mutex<()>,
    pub(crate) caches: &'a super::cache::Caches,
}

/// A prompt's [`touch`](ProviderSessionsRepo::touch) is skipped when this process wrote the
/// session's row less than this long before: the row exists already, and its `last_prompt_at` lags
/// by less than this (far below the `idle_timeout` capacity window of minutes).
pub const TOUCH_COALESCE_MS: u64 = 5_000;

/// The session a prompt belongs to, as the provider saw it when serving the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedSession {
    /// The on-chain session id.
    pub session_id: B256,
    /// The session's user.
    pub user: Address,
    /// The session's model.
    pub model_id: B256,
    /// The session's planned end (Unix seconds).
    pub ends_at: u64,
}

/// What one answered prompt measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptStats {
    /// Time from the backend call to the first chunk, in milliseconds.
    pub ttft_ms: u64,
    /// Output tokens per second × 1000.
    pub tps_scaled1000: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// The statistics of one session's prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSessionStats {
    /// The session.
    pub session: ServedSession,
    /// Prompts answered completely.
    pub prompts: u64,
    /// Prompts that failed.
    pub failed_prompts: u64,
    /// Sum of the answered prompts' TTFT (ms).
    pub ttft_ms_sum: u64,
    /// Sum of the answered prompts' tokens/s × 1000.
    pub tps_scaled1000_sum: u64,
    /// Total prompt tokens.
    pub input_tokens: u64,
    /// Total completion tokens.
    pub output_tokens: u64,
    /// Unix milliseconds of the first prompt.
    pub first_prompt_at: u64,
    /// Unix milliseconds of the latest prompt's start or end.
    pub last_prompt_at: u64,
}

impl ProviderSessionStats {
    /// Average TTFT over the answered prompts (0 without any), as the reference's report.
    pub fn avg_ttft_ms(&self) -> u64 {
        self.ttft_ms_sum.checked_div(self.prompts).unwrap_or(0)
    }

    /// Average tokens/s × 1000 over the answered prompts (0 without any).
    pub fn avg_tps_scaled1000(&self) -> u64 {
        self.tps_scaled1000_sum.checked_div(self.prompts).unwrap_or(0)
    }
}

/// Columns added by one prompt event.
#[derive(Default)]
struct Delta {
    prompts: u64,
    failed: u64,
    stats: PromptStats,
}

impl ProviderSessionsRepo<'_> {
    /// Stores (or replaces) `user`'s public key from a handshake at `at_ms`.
    pub async fn save_user_key(
        &self,
        user: Address,
        public_key: &[u8],
        at_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_users (address, public_key, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (address) DO UPDATE SET public_key = excluded.public_key, \
             updated_at = excluded.updated_at",
        )
        .bind(codec::addr(&user))
        .bind(public_key.to_vec())
        .bind(codec::int("provider_users.updated_at", at_ms)?)
        .execute(self.pool)
        .await
        .map_err(StoreError::db("save user key"))?;
        self.caches.user_keys.forget(&user);
        Ok(())
    }

    /// `user`'s public key from its latest handshake.
    pub async fn user_key(&self, user: Address) -> Result<Option<Bytes>, StoreError> {
        let miss = match self.caches.user_keys.get(&user) {
            Ok(key) => return Ok(Some(key)),
            Err(miss) => miss,
        };
        let key: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT public_key FROM provider_users WHERE address = $1")
                .bind(codec::addr(&user))
                .fetch_optional(self.pool)
                .await
                .map_err(StoreError::db("get user key"))?;
        let key = key.map(Bytes::from);
        if let Some(key) = &key {
            self.caches.user_keys.put(miss, user, key.clone());
        }
        Ok(key)
    }

    /// Marks `session` active at `at_ms` (a prompt starts), creating its row if needed, so that the
    /// session is recorded even if the node stops before the answer ends. Skipped (the row exists)
    /// when this process wrote the row less than [`TOUCH_COALESCE_MS`] before `at_ms`.
    pub async fn touch(&self, session: &ServedSession, at_ms: u64) -> Result<(), StoreError> {
        if self.touched_recently(session.session_id, at_ms) {
            return Ok(());
        }
        self.add(session, Delta::default(), at_ms, "touch provider session").await
    }

    fn touched_recently(&self, session_id: B256, at_ms: u64) -> bool {
        let touched = self.caches.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        touched.get(&session_id).is_some_and(|&last| at_ms.saturating_sub(last) < TOUCH_COALESCE_MS)
    }

    fn remember_write(&self, session_id: B256, at_ms: u64) {
        let mut touched = self.caches.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if touched.len() >= super::cache::CAPACITY && !touched.contains_key(&session_id) {
            touched.clear();
        }
        let last = touched.entry(session_id).or_insert(at_ms);
        *last = (*last).max(at_ms);
    }

    /// Adds one answered prompt's statistics, at `at_ms`.
    pub async fn record_success(
        &self,
        session: &ServedSession,
        stats: &PromptStats,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let delta = Delta { prompts: 1, failed: 0, stats: *stats };
        self.add(session, delta, at_ms, "record prompt").await
    }

    /// Counts one failed prompt, at `at_ms`.
    pub async fn record_failure(&self, session: &ServedSession, at_ms: u64) -> Result<(), StoreError> {
        let delta = Delta { prompts: 0, failed: 1, stats: PromptStats::default() };
        self.add(session, delta, at_ms, "record failed prompt").await
    }

    async fn add(&self, s: &ServedSession, d: Delta, at_ms: u64, op: &'static str) -> Result<(), StoreError> {
        let _turn = self.prompt_writes.lock().await;
        sqlx::query(
            "INSERT INTO provider_sessions (session_id, user_address, model_id, ends_at, prompts, \
             failed_prompts, ttft_ms_sum, tps_scaled1000_sum, input_tokens, output_tokens, \
             first_prompt_at, last_prompt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (session_id) DO UPDATE SET ends_at = excluded.ends_at, \
             prompts = provider_sessions.prompts + excluded.prompts, \
             failed_prompts = provider_sessions.failed_prompts + excluded.failed_prompts, \
             ttft_ms_sum = provider_sessions.ttft_ms_sum + excluded.ttft_ms_sum, \
             tps_scaled1000_sum = provider_sessions.tps_scaled1000_sum + excluded.tps_scaled1000_sum, \
             input_tokens = provider_sessions.input_tokens + excluded.input_tokens, \
             output_tokens = provider_sessions.output_tokens + excluded.output_tokens, \
             last_prompt_at = CASE WHEN excluded.last_prompt_at > provider_sessions.last_prompt_at \
             THEN excluded.last_prompt_at ELSE provider_sessions.last_prompt_at END",
        )
        .bind(codec::b256(&s.session_id))
        .bind(codec::addr(&s.user))
        .bind(codec::b256(&s.model_id))
        .bind(codec::int("provider_sessions.ends_at", s.ends_at)?)
        .bind(codec::int("provider_sessions.prompts", d.prompts)?)
        .bind(codec::int("provider_sessions.failed_prompts", d.failed)?)
        .bind(codec::int("provider_sessions.ttft_ms", d.stats.ttft_ms)?)
        .bind(codec::int("provider_sessions.tps_scaled1000", d.stats.tps_scaled1000)?)
        .bind(codec::int("provider_sessions.input_tokens", d.stats.input_tokens)?)
        .bind(codec::int("provider_sessions.output_tokens", d.stats.output_tokens)?)
        .bind(codec::int("provider_sessions.last_prompt_at", at_ms)?)
        .execute(self.pool)
        .await
        .map_err(StoreError::db(op))?;
        self.remember_write(s.session_id, at_ms);
        Ok(())
    }

    /// The statistics of `session_id`, if it served a prompt.
    pub async fn get(&self, session_id: B256) -> Result<Option<ProviderSessionStats>, StoreError> {
        let row = sqlx::query(
            "SELECT session_id, user_address, model_id, ends_at, prompts, failed_prompts, ttft_ms_sum, \
             tps_scaled1000_sum, input_tokens, output_tokens, first_prompt_at, last_prompt_at \
             FROM provider_sessions WHERE session_id = $1",
        )
        .bind(codec::b256(&session_id))
        .fetch_optional(self.pool)
        .await
        .map_err(StoreError::db("get provider session"))?;
        row.as_ref().map(decode).transpose()
    }

    /// Sessions of `provider` on `model_id` that are open on chain (per the index) and end after
    /// `now` (Unix seconds): the `simple` capacity policy's count.
    pub async fn count_open(&self, provider: Address, model_id: B256, now: u64) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE provider = $1 AND model_id = $2 AND closed_at = 0 \
             AND ends_at > $3",
        )
        .bind(codec::addr(&provider))
        .bind(codec::b256(&model_id))
        .bind(codec::int("now", now)?)
        .fetch_one(self.pool)
        .await
        .map_err(StoreError::db("count open sessions"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Sessions on `model_id` with a prompt at or after `since_ms` that end after `now` (Unix seconds)
    /// and are not known closed: the `idle_timeout` capacity policy's count.
    pub async fn count_recently_active(
        &self,
        model_id: B256,
        since_ms: u64,
        now: u64,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM provider_sessions p LEFT JOIN sessions s \
             ON s.session_id = p.session_id WHERE p.model_id = $1 AND p.last_prompt_at >= $2 \
             AND p.ends_at > $3 AND (s.closed_at IS NULL OR s.closed_at = 0)",
        )
        .bind(codec::b256(&model_id))
        .bind(codec::int("since", since_ms)?)
        .bind(codec::int("now", now)?)
        .fetch_one(self.pool)
        .await
        .map_err(StoreError::db("count active sessions"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

fn decode(row: &SqliteRow) -> Result<ProviderSessionStats, StoreError> {
    let c = Cols::new(row, "provider_sessions");
    Ok(ProviderSessionStats {
        session: ServedSession {
            session_id: c.b256("session_id")?,
            user: c.address("user_address")?,
            model_id: c.b256("model_id")?,
            ends_at: c.u64("ends_at")?,
        },
        prompts: c.u64("prompts")?,
        failed_prompts: c.u64("failed_prompts")?,
        ttft_ms_sum: c.u64("ttft_ms_sum")?,
        tps_scaled1000_sum: c.u64("tps_scaled1000_sum")?,
        input_tokens: c.u64("input_tokens")?,
        output_tokens: c.u64("output_tokens")?,
        first_prompt_at: c.u64("first_prompt_at")?,
        last_prompt_at: c.u64("last_prompt_at")?,
    })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256, U256};

    use super::*;
    use crate::store::{Session, Store};

    fn served(ends_at: u64) -> ServedSession {
        ServedSession {
            session_id: b256!("1111111111111111111111111111111111111111111111111111111111111111"),
            user: address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc"),
            model_id: b256!("2222222222222222222222222222222222222222222222222222222222222222"),
            ends_at,
        }
    }

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        (store, dir)
    }

    #[tokio::test]
    async fn user_keys_are_stored_replaced_and_survive_a_reopen() {
        let (store, dir) = store().await;
        let user = address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
        let repo = store.provider_sessions();
        assert_eq!(repo.user_key(user).await.unwrap(), None);
        repo.save_user_key(user, &[4u8; 65], 1).await.unwrap();
        repo.save_user_key(user, &[2u8; 33], 2).await.unwrap();
        store.close().await;
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.provider_sessions().user_key(user).await.unwrap().unwrap().as_ref(), &[2u8; 33]);
        // A key of another length is refused by the schema.
        assert!(store.provider_sessions().save_user_key(user, &[4u8; 64], 3).await.is_err());
    }

    #[tokio::test]
    async fn prompt_statistics_add_up_and_average() {
        let (store, _dir) = store().await;
        let repo = store.provider_sessions();
        let s = served(2_000);
        assert_eq!(repo.get(s.session_id).await.unwrap(), None);
        repo.touch(&s, 1_000).await.unwrap();
        let first = PromptStats { ttft_ms: 100, tps_scaled1000: 20_000, input_tokens: 10, output_tokens: 40 };
        repo.record_success(&s, &first, 1_500).await.unwrap();
        repo.touch(&s, 1_600).await.unwrap();
        repo.record_failure(&s, 1_700).await.unwrap();
        let second = PromptStats { ttft_ms: 301, tps_scaled1000: 30_001, input_tokens: 5, output_tokens: 7 };
        repo.record_success(&s, &second, 1_650).await.unwrap();
        let stats = repo.get(s.session_id).await.unwrap().unwrap();
        assert_eq!(stats.session, s);
        assert_eq!((stats.prompts, stats.failed_prompts), (2, 1));
        assert_eq!((stats.input_tokens, stats.output_tokens), (15, 47));
        assert_eq!((stats.ttft_ms_sum, stats.tps_scaled1000_sum), (401, 50_001));
        assert_eq!((stats.avg_ttft_ms(), stats.avg_tps_scaled1000()), (200, 25_000));
        assert_eq!((stats.first_prompt_at, stats.last_prompt_at), (1_000, 1_700), "latest activity wins");

        let empty = ProviderSessionStats { prompts: 0, ttft_ms_sum: 0, tps_scaled1000_sum: 0, ..stats };
        assert_eq!((empty.avg_ttft_ms(), empty.avg_tps_scaled1000()), (0, 0));
    }

    fn chain_session(s: &ServedSession, provider: Address, closed_at: u64) -> Session {
        Session {
            id: s.session_id,
            user: s.user,
            bid_id: B256::repeat_byte(3),
            provider,
            model_id: s.model_id,
            stake: U256::from(1),
            closeout_receipt: Bytes::new(),
            closeout_type: U256::ZERO,
            provider_withdrawn_amount: U256::ZERO,
            opened_at: 1,
            ends_at: s.ends_at,
            closed_at,
            is_active: closed_at == 0,
            is_direct_payment: false,
        }
    }

    #[tokio::test]
    async fn capacity_counts_open_and_recently_active_sessions() {
        let (store, _dir) = store().await;
        let repo = store.provider_sessions();
        let provider = address!("70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let open = served(2_000);
        let ended = ServedSession { session_id: B256::repeat_byte(5), ends_at: 900, ..open };
        let closed = ServedSession { session_id: B256::repeat_byte(6), ..open };
        let other_model =
            ServedSession { session_id: B256::repeat_byte(7), model_id: B256::repeat_byte(8), ..open };
        for (s, closed_at) in [(&open, 0), (&ended, 0), (&closed, 950), (&other_model, 0)] {
            store.sessions().upsert(&chain_session(s, provider, closed_at)).await.unwrap();
        }

        assert_eq!(repo.count_open(provider, open.model_id, 1_000).await.unwrap(), 1);
        assert_eq!(repo.count_open(provider, open.model_id, 800).await.unwrap(), 2);
        assert_eq!(repo.count_open(Address::ZERO, open.model_id, 800).await.unwrap(), 0);

        for s in [&open, &ended, &closed, &other_model] {
            repo.touch(s, 10_000).await.unwrap();
        }
        // Not yet indexed sessions count too (no chain row to say they are closed).
        let unindexed = ServedSession { session_id: B256::repeat_byte(9), ..open };
        repo.touch(&unindexed, 5_000).await.unwrap();
        assert_eq!(repo.count_recently_active(open.model_id, 9_000, 1_000).await.unwrap(), 1);
        assert_eq!(repo.count_recently_active(open.model_id, 5_000, 1_000).await.unwrap(), 2);
        assert_eq!(repo.count_recently_active(open.model_id, 10_001, 1_000).await.unwrap(), 0);
    }
}
