//! The gateway's API keys: [`KeyRing`] holds every key in memory (loaded from `store::ApiKeysRepo` at
//! start, written there before any change is used), so authenticating a request is one SHA-256 and
//! one hash-map lookup.
//!
//! - **Secrets** are `sk-mor-` and 43 base64url characters (32 random bytes). Only their SHA-256 is
//!   stored: a key is as strong as 256 random bits, so a slow password hash would add nothing but
//!   latency to every request. The secret is shown once, when the key is made.
//! - **Limits** ([`KeyState`]): the models the key may use, `maxRequests` answered requests over its
//!   life (requests in flight count against it, so concurrent requests cannot overshoot), a
//!   per-minute rate (a GCRA limiter from the `governor` crate: a burst of `requestsPerMinute`, then
//!   one every `60 s / requestsPerMinute`), an expiry, and `budgetMor`, which the session module
//!   checks before it opens a session.
//! - **Revocation** takes effect on the next request; the key's sessions are closed by the sweeper.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use base64::Engine as _;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::RngExt as _;
use sha2::Digest as _;

use super::GatewayError;
use crate::consumer::unix_now;
use crate::store::{ApiKey, KeyUsage, Store};

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "sk-mor-";
/// How many characters of the secret are kept to recognise it (`sk-mor-` and 6 more).
const PREFIX_LEN: usize = 13;
/// Longest key name.
pub const MAX_NAME_LEN: usize = 100;
/// Most models one key may be restricted to.
pub const MAX_MODELS: usize = 256;

/// What the operator asks for when making a key (models already resolved to ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewKey {
    /// A name for it.
    pub name: String,
    /// The models it may use (`None`: every model).
    pub models: Option<Vec<B256>>,
    /// Answered requests allowed over its life.
    pub max_requests: Option<u64>,
    /// MOR wei its sessions may lock or pay.
    pub budget_mor: Option<U256>,
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// When it stops working (unix seconds).
    pub expires_at: Option<u64>,
}

/// One key as the gateway uses it: the stored record and its live counters.
pub struct KeyState {
    /// The record as stored (its usage as it was at load or creation).
    pub record: ApiKey,
    revoked_at: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    last_used_at: AtomicU64,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Held while a session is opened for this key: one open at a time, so concurrent first requests
    /// open one session and the budget is checked against every session already opened.
    pub(crate) open_lock: tokio::sync::Mutex<()>,
    /// The key's current session per model.
    pub(crate) sessions: Mutex<HashMap<B256, Arc<super::sessions::Live>>>,
}

impl std::fmt::Debug for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyState").field("id", &self.record.id).finish_non_exhaustive()
    }
}

impl KeyState {
    fn new(record: ApiKey) -> Self {
        let limiter = record
            .requests_per_minute
            .and_then(NonZeroU32::new)
            .map(|rpm| RateLimiter::direct(Quota::per_minute(rpm)));
        let usage = record.usage;
        Self {
            revoked_at: AtomicU64::new(record.revoked_at.unwrap_or(0)),
            requests: AtomicU64::new(usage.requests),
            in_flight: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(usage.prompt_tokens),
            completion_tokens: AtomicU64::new(usage.completion_tokens),
            last_used_at: AtomicU64::new(usage.last_used_at.unwrap_or(0)),
            limiter,
            open_lock: tokio::sync::Mutex::new(()),
            sessions: Mutex::new(HashMap::new()),
            record,
        }
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Whether it was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.load(Ordering::Acquire) != 0
    }

    /// When it was revoked (unix seconds).
    pub fn revoked_at(&self) -> Option<u64> {
        Some(self.revoked_at.load(Ordering::Acquire)).filter(|at| *at != 0)
    }

    /// Whether the key may use `model`.
    pub fn allows(&self, model: &B256) -> bool {
        self.record.models.as_ref().is_none_or(|models| models.contains(model))
    }

    /// The usage so far (answered requests).
    pub fn usage(&self) -> KeyUsage {
        let last = self.last_used_at.load(Ordering::Relaxed);
        KeyUsage {
            requests: self.requests.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
            last_used_at: (last != 0).then_some(last),
        }
    }

    /// Takes one request from the per-minute rate.
    pub fn check_rate(&self) -> Result<(), GatewayError> {
        let (Some(limiter), Some(limit)) = (&self.limiter, self.record.requests_per_minute) else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| GatewayError::RateLimited {
            limit,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()).max(Duration::from_secs(1)),
        })
    }

    /// Reserves one request against `maxRequests` (answered plus in flight); the reservation is
    /// returned when dropped, or turned into an answered request by [`Reservation::answered`].
    pub fn reserve(self: &Arc<Self>) -> Result<Reservation, GatewayError> {
        if let Some(max) = self.record.max_requests {
            let mut in_flight = self.in_flight.load(Ordering::Acquire);
            loop {
                let answered = self.requests.load(Ordering::Acquire);
                if answered.saturating_add(in_flight) >= max {
                    return Err(GatewayError::QuotaExceeded(format!(
                        "this API key has used its {max} requests ({answered} answered, {in_flight} in flight)"
                    )));
                }
                match self.in_flight.compare_exchange(
                    in_flight,
                    in_flight + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => in_flight = now,
                }
            }
        } else {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Reservation { key: Arc::clone(self), done: false })
    }
}

/// One request in flight against a key's quota.
#[derive(Debug)]
pub struct Reservation {
    key: Arc<KeyState>,
    done: bool,
}

impl Reservation {
    /// The key.
    pub fn key(&self) -> &Arc<KeyState> {
        &self.key
    }

    /// The request was answered with these tokens: it now counts as used.
    pub fn answered(mut self, prompt_tokens: u64, completion_tokens: u64) {
        let key = &self.key;
        key.requests.fetch_add(1, Ordering::AcqRel);
        key.prompt_tokens.fetch_add(prompt_tokens, Ordering::Relaxed);
        key.completion_tokens.fetch_add(completion_tokens, Ordering::Relaxed);
        key.last_used_at.fetch_max(unix_now(), Ordering::Relaxed);
        key.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.done = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.key.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Every key, by the hash of its secret and by id.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_hash: RwLock<HashMap<String, Arc<KeyState>>>,
    by_id: RwLock<HashMap<String, Arc<KeyState>>>,
}

/// The SHA-256 of a secret, lower-case hex (what is stored).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn new_id() -> String {
    let bytes: [u8; 8] = rand::rng().random();
    format!("key_{}", hex::encode(bytes))
}

impl KeyRing {
    /// Every stored key.
    pub async fn load(store: &Store) -> Result<Self, GatewayError> {
        let ring = Self::default();
        for key in store.api_keys().list().await? {
            ring.insert(Arc::new(KeyState::new(key)));
        }
        Ok(ring)
    }

    fn insert(&self, key: Arc<KeyState>) {
        self.by_hash
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.record.key_hash.clone(), Arc::clone(&key));
        self.by_id.write().unwrap_or_else(PoisonError::into_inner).insert(key.record.id.clone(), key);
    }

    /// How many keys there are (revoked ones included).
    pub fn len(&self) -> usize {
        self.by_id.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key whose secret is `secret`, if it may be used now.
    pub fn authenticate(&self, secret: &str) -> Result<Arc<KeyState>, GatewayError> {
        let invalid = || {
            GatewayError::InvalidKey(
                "incorrect API key provided: make one with POST /auth/keys on the node's admin API".into(),
            )
        };
        if !secret.starts_with(SECRET_PREFIX) {
            return Err(invalid());
        }
        let key = self
            .by_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hash_secret(secret))
            .cloned()
            .ok_or_else(invalid)?;
        if key.is_revoked() {
            return Err(GatewayError::InvalidKey(format!("the API key {} was revoked", key.id())));
        }
        if let Some(expires_at) = key.record.expires_at {
            if unix_now() >= expires_at {
                return Err(GatewayError::InvalidKey(format!(
                    "the API key {} expired at {expires_at} (unix seconds)",
                    key.id()
                )));
            }
        }
        Ok(key)
    }

    /// Makes a key: validated, stored, then usable. Returns its state and the secret (shown once).
    pub async fn create(&self, store: &Store, new: NewKey) -> Result<(Arc<KeyState>, String), GatewayError> {
        let bad = |param, reason: &str| GatewayError::BadRequest { param, reason: reason.to_owned() };
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(bad("name", "must be 1 to 100 characters"));
        }
        if let Some(models) = &new.models {
            if models.is_empty() || models.len() > MAX_MODELS {
                return Err(bad("models", "must list 1 to 256 models (leave it out for every model)"));
            }
        }
        if new.max_requests == Some(0) {
            return Err(bad("maxRequests", "must be at least 1"));
        }
        if new.requests_per_minute == Some(0) {
            return Err(bad("requestsPerMinute", "must be at least 1"));
        }
        if new.budget_mor.is_some_and(|b| b.is_zero()) {
            return Err(bad("budgetMor", "must be more than 0 wei"));
        }
        let now = unix_now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(bad("expiresAt", "must be in the future (unix seconds)"));
        }
        let secret = new_secret();
        let record = ApiKey {
            id: new_id(),
            name,
            key_hash: hash_secret(&secret),
            key_prefix: secret.chars().take(PREFIX_LEN).collect(),
            models: new.models,
            max_requests: new.max_requests,
            budget_mor: new.budget_mor,
            requests_per_minute: new.requests_per_minute,
            expires_at: new.expires_at,
            created_at: now,
            revoked_at: None,
            usage: KeyUsage::default(),
        };
        store.api_keys().insert(&record).await?;
        let key = Arc::new(KeyState::new(record));
        self.insert(Arc::clone(&key));
        tracing::info!(key = %key.id(), name = %key.record.name, "API key created");
        Ok((key, secret))
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<Arc<KeyState>> {
        let mut keys: Vec<_> =
            self.by_id.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        keys.sort_by(|a, b| (a.record.created_at, &a.record.id).cmp(&(b.record.created_at, &b.record.id)));
        keys
    }

    /// The key `id`.
    pub fn get(&self, id: &str) -> Result<Arc<KeyState>, GatewayError> {
        self.by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .ok_or_else(|| GatewayError::KeyNotFound(id.to_owned()))
    }

    /// Revokes the key `id` (stored first); revoking a revoked key changes nothing.
    pub async fn revoke(&self, store: &Store, id: &str) -> Result<Arc<KeyState>, GatewayError> {
        let key = self.get(id)?;
        let now = unix_now().max(1);
        if store.api_keys().revoke(id, now).await? {
            tracing::info!(key = %id, "API key revoked");
            let _ = key.revoked_at.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn keys_authenticate_by_secret_only_and_survive_a_reload() {
        let (_dir, store) = store().await;
        let ring = KeyRing::load(&store).await.unwrap();
        let (key, secret) =
            ring.create(&store, NewKey { name: "alice".into(), ..NewKey::default() }).await.unwrap();
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 43);
        assert_eq!(ring.authenticate(&secret).unwrap().id(), key.id());
        assert!(matches!(ring.authenticate("sk-mor-wrong"), Err(GatewayError::InvalidKey(_))));
        assert!(matches!(ring.authenticate("Bearer x"), Err(GatewayError::InvalidKey(_))));
        // Only the hash and a prefix are stored.
        let stored = store.api_keys().get(key.id()).await.unwrap().unwrap();
        assert_eq!(stored.key_hash, hash_secret(&secret));
        assert!(secret.starts_with(&stored.key_prefix) && stored.key_prefix.len() < secret.len());

        let reloaded = KeyRing::load(&store).await.unwrap();
        assert_eq!(reloaded.authenticate(&secret).unwrap().id(), key.id());
        reloaded.revoke(&store, key.id()).await.unwrap();
        assert!(
            matches!(reloaded.authenticate(&secret), Err(GatewayError::InvalidKey(m)) if m.contains("revoked"))
        );
        let again = KeyRing::load(&store).await.unwrap();
        assert!(again.authenticate(&secret).is_err(), "revocation is durable");
    }

    #[tokio::test]
    async fn limits_are_validated_and_enforced() {
        let (_dir, store) = store().await;
        let ring = KeyRing::default();
        let bad = |new: NewKey| {
            let ring = &ring;
            let store = &store;
            async move { ring.create(store, new).await.unwrap_err() }
        };
        let named = || NewKey { name: "k".into(), ..NewKey::default() };
        assert!(matches!(bad(NewKey::default()).await, GatewayError::BadRequest { param: "name", .. }));
        assert!(matches!(
            bad(NewKey { max_requests: Some(0), ..named() }).await,
            GatewayError::BadRequest { param: "maxRequests", .. }
        ));
        assert!(matches!(
            bad(NewKey { expires_at: Some(1), ..named() }).await,
            GatewayError::BadRequest { param: "expiresAt", .. }
        ));
        assert!(matches!(
            bad(NewKey { models: Some(vec![]), ..named() }).await,
            GatewayError::BadRequest { param: "models", .. }
        ));
        assert!(ring.is_empty(), "nothing was stored");

        let (key, _) = ring
            .create(&store, NewKey { max_requests: Some(2), requests_per_minute: Some(3), ..named() })
            .await
            .unwrap();
        let first = key.reserve().unwrap();
        let second = key.reserve().unwrap();
        assert!(matches!(key.reserve(), Err(GatewayError::QuotaExceeded(_))), "in-flight requests count");
        drop(second);
        first.answered(5, 7);
        let third = key.reserve().unwrap();
        assert!(matches!(key.reserve(), Err(GatewayError::QuotaExceeded(_))));
        third.answered(1, 1);
        assert_eq!(key.usage().requests, 2);
        assert_eq!((key.usage().prompt_tokens, key.usage().completion_tokens), (6, 8));

        for _ in 0..3 {
            key.check_rate().unwrap();
        }
        match key.check_rate() {
            Err(GatewayError::RateLimited { limit: 3, retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1) && retry_after <= Duration::from_secs(20))
            }
            other => panic!("{other:?}"),
        }
    }
}
