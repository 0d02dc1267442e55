//! Automatic sessions: one per (API key, model), kept by the gateway so that a client never sees one.
//!
//! # Which session answers
//!
//! A request uses its key's current session for the model when it has more than
//! `GATEWAY_SESSION_RENEW_BEFORE` left. Otherwise, under the key's open lock (one open at a time per
//! key, so 50 concurrent first requests open exactly one session, and the budget is checked against
//! every session already opened), the gateway checks again, then opens one with the consumer's
//! rating (best bid first, this request's failed providers and those that failed in the last
//! minute skipped) for `GATEWAY_SESSION_DURATION`, its stake capped by what is left of the key's
//! `budgetMor`. The new session serves from then on; one it replaces is marked `closing` (renewal).
//!
//! # Failures
//!
//! A provider that fails before the first byte (unreachable, silent, refusing, lying) is skipped:
//! its session is marked `closing` and the request goes to the next bid through a new session, up to
//! [`MAX_ATTEMPTS`] sessions per request. When none can serve, the answer lists every provider tried
//! and why. A session found closed or expired is dropped and replaced the same way.
//!
//! # Closing
//!
//! The sweeper ([`Gateway::sweep`], every `GATEWAY_SWEEP_INTERVAL` and at once when a session is
//! marked) marks sessions idle longer than `GATEWAY_SESSION_IDLE_TIMEOUT` or past their end, then
//! closes every `closing` session that no request is using, with the provider's receipt when it
//! can be had (`consumer::close`). What the contract keeps of it (stake on hold until the next UTC
//! day, or a direct payment) stays attributed to the key until it is released.
//!
//! # A key's MOR use
//!
//! [`Gateway::mor_used`]: the stake (or payment) of its open and closing sessions, plus what its
//! closed sessions still hold; `budgetMor` bounds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::keys::{KeyRing, KeyState};
use super::{CatalogModel, Gateway, GatewayError};
use crate::consumer::{unix_now, Answer, ConsumerError, OpenRequest, Prompt, ProviderFailure};
use crate::store::{GatewaySession, GatewaySessionState, Store};

/// Sessions one request may try before it gives up.
pub const MAX_ATTEMPTS: usize = 3;

/// How often one request retries a provider that is busy (out of capacity for now) on the same
/// session before it counts as failed; the waits double from [`BUSY_BACKOFF`].
pub const BUSY_RETRIES: u32 = 6;
/// The first wait after a busy provider.
pub const BUSY_BACKOFF: Duration = Duration::from_millis(50);

/// How long a provider that failed is skipped when new sessions are opened.
pub const FAILED_PROVIDER_COOLDOWN: Duration = Duration::from_secs(60);

/// A session the gateway has not closed yet, as the request path sees it.
#[derive(Debug)]
pub struct Live {
    /// The on-chain session.
    pub session_id: B256,
    /// The key it serves.
    pub key_id: String,
    /// The model.
    pub model_id: B256,
    /// The provider.
    pub provider: Address,
    /// The bid.
    pub bid_id: B256,
    /// When it ends (unix seconds).
    pub ends_at: u64,
    in_flight: AtomicUsize,
    last_used: AtomicU64,
    /// `GATEWAY_SESSION_CONCURRENCY` turns: prompts sent on the session at once.
    turns: Arc<Semaphore>,
}

impl Live {
    fn of(row: &GatewaySession, concurrency: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(concurrency.max(1))),
            session_id: row.session_id,
            key_id: row.key_id.clone(),
            model_id: row.model_id,
            provider: row.provider,
            bid_id: row.bid_id,
            ends_at: row.ends_at,
            in_flight: AtomicUsize::new(0),
            last_used: AtomicU64::new(row.last_used_at),
        }
    }

    /// Requests using it now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// One request's use of a session: counted while it lives, and the session's last use when it ends.
#[derive(Debug)]
pub struct InUse {
    live: Arc<Live>,
    turn: Option<OwnedSemaphorePermit>,
}

impl InUse {
    fn new(live: Arc<Live>) -> Self {
        live.in_flight.fetch_add(1, Ordering::AcqRel);
        Self { live, turn: None }
    }

    /// Waits for one of the session's turns (held until this use ends).
    async fn take_turn(&mut self) {
        if self.turn.is_none() {
            // The semaphore is never closed.
            self.turn = Arc::clone(&self.live.turns).acquire_owned().await.ok();
        }
    }

    /// The session.
    pub fn session(&self) -> &Live {
        &self.live
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.live.last_used.fetch_max(unix_now(), Ordering::Relaxed);
        self.live.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every session not closed yet, and the providers cooling down.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<B256, Arc<Live>>>,
    cooldown: Mutex<HashMap<Address, Instant>>,
    wake: Notify,
}

impl Sessions {
    /// The unclosed sessions of the store, each open one made its key's current session for its
    /// model (of two for one pair, left by a crash in a renewal, the later-ending one; the other is
    /// marked `closing`).
    pub(crate) async fn load(
        store: &Store,
        keys: &KeyRing,
        concurrency: usize,
    ) -> Result<Self, GatewayError> {
        let sessions = Self::default();
        for row in store.gateway_sessions().unclosed().await? {
            let live = Arc::new(Live::of(&row, concurrency));
            sessions
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(row.session_id, Arc::clone(&live));
            if row.state != GatewaySessionState::Open {
                continue;
            }
            let Ok(key) = keys.get(&row.key_id) else { continue };
            let superseded = {
                let mut current = key.sessions.lock().unwrap_or_else(PoisonError::into_inner);
                match current.get(&row.model_id) {
                    Some(other) if other.ends_at >= live.ends_at => Some(row.session_id),
                    _ => current.insert(row.model_id, live).map(|old| old.session_id),
                }
            };
            if let Some(session) = superseded {
                store.gateway_sessions().set_closing(session, "superseded").await?;
            }
        }
        Ok(sessions)
    }

    /// How many sessions are not closed yet.
    pub(crate) fn live_count(&self) -> usize {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn get(&self, id: &B256) -> Option<Arc<Live>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    fn cooling(&self) -> Vec<Address> {
        let mut cooldown = self.cooldown.lock().unwrap_or_else(PoisonError::into_inner);
        cooldown.retain(|_, since| since.elapsed() < FAILED_PROVIDER_COOLDOWN);
        cooldown.keys().copied().collect()
    }
}

fn current_of(key: &KeyState) -> std::sync::MutexGuard<'_, HashMap<B256, Arc<Live>>> {
    key.sessions.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Gateway {
    /// Sends `prompt` for `key` on its session for `model` (bought, renewed or replaced as needed)
    /// and returns the answer once its first chunk has arrived, with the session's use.
    pub async fn prompt(
        &self,
        key: &Arc<KeyState>,
        model: &CatalogModel,
        prompt: &Prompt,
    ) -> Result<(Answer, InUse), GatewayError> {
        let mut tried: Vec<Address> = Vec::new();
        let mut failures: Vec<ProviderFailure> = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let mut in_use = match self.session_for(key, model, &tried).await {
                Ok(in_use) => in_use,
                Err(GatewayError::NoProvider { failures: more, reason }) => {
                    failures.extend(more);
                    return Err(GatewayError::NoProvider { failures, reason });
                }
                Err(e) => return Err(e),
            };
            let live = Arc::clone(&in_use.live);
            in_use.take_turn().await;
            let mut sent = self.consumer().prompt(live.session_id, prompt).await;
            let mut backoff = BUSY_BACKOFF;
            for _ in 0..BUSY_RETRIES {
                match &sent {
                    Err(e) if e.is_provider_busy() => {
                        tracing::debug!(session = %live.session_id, error = %e, "provider busy: retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        sent = self.consumer().prompt(live.session_id, prompt).await;
                    }
                    _ => break,
                }
            }
            match sent {
                Ok(answer) => return Ok((answer, in_use)),
                Err(e) if e.is_provider_failure() => {
                    tracing::warn!(session = %live.session_id, provider = %live.provider, error = %e, "provider failed before the first byte: trying the next bid");
                    tried.push(live.provider);
                    failures.push(ProviderFailure {
                        provider: live.provider,
                        bid_id: live.bid_id,
                        reason: e.to_string(),
                    });
                    self.inner
                        .sessions
                        .cooldown
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(live.provider, Instant::now());
                    drop(in_use);
                    self.retire(key, &live, "provider failed").await?;
                }
                Err(e @ (ConsumerError::SessionClosed(_) | ConsumerError::SessionExpired { .. })) => {
                    tracing::info!(session = %live.session_id, reason = %e, "gateway session ended: opening another");
                    drop(in_use);
                    self.retire(key, &live, "ended").await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(GatewayError::NoProvider {
            failures,
            reason: Some(format!("gave up after {MAX_ATTEMPTS} sessions")),
        })
    }

    fn fresh(&self, live: &Live, tried: &[Address]) -> bool {
        live.ends_at > unix_now().saturating_add(self.settings().renew_before.as_secs())
            && !tried.contains(&live.provider)
    }

    /// The current session of `key` for `model` in use by this request, opened if there is none
    /// with enough time left (see the module docs).
    async fn session_for(
        &self,
        key: &Arc<KeyState>,
        model: &CatalogModel,
        tried: &[Address],
    ) -> Result<InUse, GatewayError> {
        if let Some(live) = current_of(key).get(&model.id).filter(|l| self.fresh(l, tried)) {
            return Ok(InUse::new(Arc::clone(live)));
        }
        let _turn = key.open_lock.lock().await;
        let previous = {
            let current = current_of(key);
            let previous = current.get(&model.id).cloned();
            if let Some(live) = previous.as_ref().filter(|l| self.fresh(l, tried)) {
                return Ok(InUse::new(Arc::clone(live)));
            }
            previous
        };
        if key.is_revoked() {
            return Err(GatewayError::InvalidKey(format!("the API key {} was revoked", key.id())));
        }
        let live = self.open(key, model, tried).await?;
        let in_use = InUse::new(Arc::clone(&live));
        current_of(key).insert(model.id, Arc::clone(&live));
        if let Some(previous) = previous {
            self.retire(key, &previous, "renewed").await?;
        }
        Ok(in_use)
    }

    /// Opens a session for `key` on `model` and records it (the caller holds the key's open lock).
    async fn open(
        &self,
        key: &KeyState,
        model: &CatalogModel,
        tried: &[Address],
    ) -> Result<Arc<Live>, GatewayError> {
        let max_stake = match key.record.budget_mor {
            Some(budget) => {
                let used = self.mor_used(key.id()).await?;
                if used >= budget {
                    return Err(GatewayError::QuotaExceeded(format!(
                        "this API key's budget of {budget} wei of MOR is used: its sessions lock or paid {used} wei"
                    )));
                }
                Some(budget - used)
            }
            None => None,
        };
        let settings = self.settings();
        let request = OpenRequest {
            duration: settings.session_duration.as_secs(),
            direct_payment: settings.direct_payment,
            failover: false,
            max_stake,
        };
        let cooling = self.inner.sessions.cooling();
        let mut omit: Vec<Address> = tried.to_vec();
        omit.extend(cooling.iter().filter(|p| !tried.contains(p)));
        let consumer = self.consumer();
        let mut opened = consumer.open_by_model_omitting(model.id, request, &omit).await;
        if matches!(opened, Err(ConsumerError::NoBids { .. })) && omit.len() > tried.len() {
            // Only providers cooling down are left: better one of them than none.
            opened = consumer.open_by_model_omitting(model.id, request, tried).await;
        }
        let opened = opened.map_err(|e| match e {
            ConsumerError::StakeAboveLimit { needed, limit } => GatewayError::QuotaExceeded(format!(
                "a session on {} needs {needed} wei of MOR; this API key has {limit} wei of its budget left",
                model.name
            )),
            e @ ConsumerError::NoBids { .. } => {
                GatewayError::NoProvider { failures: Vec::new(), reason: Some(e.to_string()) }
            }
            ConsumerError::NoProviderAccepted { failures } => {
                GatewayError::NoProvider { failures, reason: None }
            }
            e => GatewayError::Consumer(e),
        })?;
        let now = unix_now();
        let store = self.store();
        let opened_at = store.consumer_sessions().get(opened.session_id).await?.map_or(now, |r| r.opened_at);
        let price = store.bids().get(opened.bid_id).await?.map(|b| b.price_per_second).unwrap_or_default();
        let row = GatewaySession {
            session_id: opened.session_id,
            key_id: key.id().to_owned(),
            model_id: model.id,
            provider: opened.provider,
            bid_id: opened.bid_id,
            price_per_second: price,
            stake: opened.stake,
            direct_payment: settings.direct_payment,
            opened_at,
            ends_at: opened.ends_at,
            last_used_at: now,
            state: GatewaySessionState::Open,
            close_reason: None,
            closed_at: 0,
            close_tx: None,
            held: U256::ZERO,
            release_at: 0,
            created_at: now,
        };
        store.gateway_sessions().insert(&row).await?;
        tracing::info!(key = %key.id(), model = %model.name, session = %row.session_id, provider = %row.provider, stake = %row.stake, ends_at = row.ends_at, "gateway session opened");
        let live = Arc::new(Live::of(&row, settings.session_concurrency));
        self.inner
            .sessions
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(row.session_id, Arc::clone(&live));
        Ok(live)
    }

    /// Stops using `live` for its key (if it is still the current one) and marks it `closing`.
    async fn retire(&self, key: &KeyState, live: &Live, reason: &str) -> Result<(), GatewayError> {
        {
            let mut current = current_of(key);
            if current.get(&live.model_id).is_some_and(|c| c.session_id == live.session_id) {
                current.remove(&live.model_id);
            }
        }
        if self.store().gateway_sessions().set_closing(live.session_id, reason).await? {
            tracing::info!(session = %live.session_id, key = %key.id(), reason, "gateway session to be closed");
        }
        self.inner.sessions.wake.notify_one();
        Ok(())
    }

    /// Marks every session of `key` `closing` (its key was revoked); the sweeper closes them.
    pub async fn retire_key(&self, key: &KeyState) -> Result<usize, GatewayError> {
        let current: Vec<Arc<Live>> = current_of(key).drain().map(|(_, live)| live).collect();
        let mut marked = 0;
        for row in self.store().gateway_sessions().of_key(key.id()).await? {
            if row.state == GatewaySessionState::Open
                && self.store().gateway_sessions().set_closing(row.session_id, "key revoked").await?
            {
                marked += 1;
            }
        }
        drop(current);
        self.inner.sessions.wake.notify_one();
        Ok(marked)
    }

    /// The MOR wei `key_id`'s sessions lock (open or closing), hold (closed early today) or paid
    /// (closed, direct payment).
    pub async fn mor_used(&self, key_id: &str) -> Result<U256, GatewayError> {
        let now = unix_now();
        let mut used = U256::ZERO;
        for row in self.store().gateway_sessions().of_key(key_id).await? {
            let counted = match row.state {
                GatewaySessionState::Open | GatewaySessionState::Closing => row.stake,
                GatewaySessionState::Closed if row.release_at == 0 || row.release_at > now => row.held,
                GatewaySessionState::Closed => U256::ZERO,
            };
            used = used.saturating_add(counted);
        }
        Ok(used)
    }

    /// Every session of `key_id`, oldest first.
    pub async fn sessions_of(&self, key_id: &str) -> Result<Vec<GatewaySession>, GatewayError> {
        Ok(self.store().gateway_sessions().of_key(key_id).await?)
    }

    pub(crate) async fn sweep_loop(self, cancel: CancellationToken) {
        let interval = self.settings().sweep_interval;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
                _ = self.inner.sessions.wake.notified() => {}
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "gateway sweep failed; retrying at the next tick");
            }
        }
    }

    /// Marks idle and expired sessions `closing` and closes every `closing` session no request is
    /// using; returns how many were closed. A session that cannot be closed now is retried later.
    pub async fn sweep(&self) -> Result<usize, GatewayError> {
        let now = unix_now();
        let idle = self.settings().idle_timeout.as_secs();
        let mut closed = 0;
        for row in self.store().gateway_sessions().unclosed().await? {
            let live = self.inner.sessions.get(&row.session_id);
            let mut state = row.state;
            if state == GatewaySessionState::Open {
                let last_used = live
                    .as_ref()
                    .map_or(row.last_used_at, |l| l.last_used.load(Ordering::Relaxed).max(row.last_used_at));
                let reason = if row.ends_at <= now {
                    Some("expired")
                } else if last_used.saturating_add(idle) <= now {
                    Some("idle")
                } else {
                    None
                };
                let Some(reason) = reason else { continue };
                // Taken out of its key's map first, so no new request picks it up.
                if let Ok(key) = self.keys().get(&row.key_id) {
                    let mut current = current_of(&key);
                    if let Some(l) = current.get(&row.model_id).filter(|l| l.session_id == row.session_id) {
                        if reason == "idle" && l.in_flight() > 0 {
                            continue;
                        }
                        current.remove(&row.model_id);
                    }
                }
                self.store().gateway_sessions().set_closing(row.session_id, reason).await?;
                tracing::info!(session = %row.session_id, key = %row.key_id, reason, "gateway session to be closed");
                state = GatewaySessionState::Closing;
            }
            if state != GatewaySessionState::Closing || live.as_ref().is_some_and(|l| l.in_flight() > 0) {
                continue;
            }
            match self.close_one(&row).await {
                Ok(()) => closed += 1,
                Err(e) => {
                    tracing::warn!(session = %row.session_id, error = %e, "cannot close the gateway session yet")
                }
            }
        }
        Ok(closed)
    }

    async fn close_one(&self, row: &GatewaySession) -> Result<(), GatewayError> {
        let consumer = self.consumer();
        let (tx, refund) = match consumer.close(row.session_id).await {
            Ok(closed) => (Some(closed.tx), Some(closed.refund)),
            Err(ConsumerError::SessionClosed(_)) => (None, None),
            Err(e @ (ConsumerError::SessionNotFound(_) | ConsumerError::NotOurSession { .. })) => {
                tracing::warn!(session = %row.session_id, error = %e, "gateway session is not this wallet's to close: forgotten");
                self.store()
                    .gateway_sessions()
                    .set_closed(row.session_id, unix_now(), None, U256::ZERO, 0)
                    .await?;
                self.forget(&row.session_id);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut share = consumer.user_share(row.session_id).await?.unwrap_or_default();
        if let Some(refund) = refund {
            // What the close returned is exact; the share computed from the session is the fallback
            // for a session someone else closed.
            share.held = row.stake.saturating_sub(refund);
            share.release_at = match row.direct_payment || share.held.is_zero() {
                true => 0,
                false => share.closed_at - share.closed_at % 86_400 + 86_400,
            };
        }
        self.store()
            .gateway_sessions()
            .set_closed(row.session_id, share.closed_at.max(1), tx, share.held, share.release_at)
            .await?;
        self.forget(&row.session_id);
        tracing::info!(session = %row.session_id, key = %row.key_id, tx = ?tx, held = %share.held, release_at = share.release_at, "gateway session closed");
        Ok(())
    }

    fn forget(&self, session_id: &B256) {
        self.inner.sessions.live.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
    }
}
