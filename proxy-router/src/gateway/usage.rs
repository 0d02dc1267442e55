//! The usage writer: each answered request's usage (its key's request and tokens, its session's last
//! use) is queued ([`UsageQueue::record`]) and written by one task, many requests per transaction,
//! so the request path never waits for SQLite. The key's in-memory counters move at once
//! (`keys::Reservation::answered`), so quotas never lag behind the writer.
//!
//! The queue is bounded ([`CAPACITY`]): when the writer falls behind, requests wait for room rather
//! than memory growing. Every [`FLUSH_AFTER`] the writer takes what is queued and writes it, at
//! most [`BATCH`] events per transaction; queueing wakes nothing. On shutdown the writer drains the queue before it
//! returns; a crash loses at most the last quarter second of usage (never keys or sessions).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use alloy::primitives::B256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, UsageDelta};

/// Requests queued at most before a request waits for the writer.
pub const CAPACITY: usize = 8192;
/// Requests written in one transaction at most.
const BATCH: usize = 1024;
/// Longest a queued event waits for its batch to be written.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// The key.
    pub key_id: String,
    /// The session that answered.
    pub session_id: B256,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// When it was answered (unix seconds).
    pub at: u64,
}

/// The queue and its receiving end (taken by [`UsageQueue::run`]).
#[derive(Debug)]
pub struct UsageQueue {
    tx: mpsc::Sender<UsageEvent>,
    rx: Mutex<Option<mpsc::Receiver<UsageEvent>>>,
}

impl Default for UsageQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageQueue {
    /// An empty queue.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(CAPACITY);
        Self { tx, rx: Mutex::new(Some(rx)) }
    }

    /// Queues one answered request (waits while the queue is full).
    pub async fn record(&self, event: UsageEvent) {
        if self.tx.send(event).await.is_err() {
            tracing::warn!("the usage writer has stopped: a request's usage is not stored");
        }
    }

    /// Writes what is queued until `cancel` fires, then what is left.
    pub async fn run(&self, store: Store, cancel: CancellationToken) {
        let Some(mut rx) = self.rx.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            tracing::error!("the gateway's usage writer was started twice");
            return;
        };
        // The writer sleeps on a timer, never on the queue: a request queueing its usage wakes no
        // thread (a send wakes the receiver only when it waits in `recv`), and a busy gateway writes
        // one transaction per FLUSH_AFTER instead of competing with every request's own SQLite writes.
        let mut tick = tokio::time::interval(FLUSH_AFTER);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => break,
            }
            let mut batch = Vec::new();
            while let Ok(event) = rx.try_recv() {
                batch.push(event);
                if batch.len() == BATCH {
                    write(&store, &batch).await;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                write(&store, &batch).await;
            }
        }
        rx.close();
        let mut rest = Vec::new();
        while let Some(event) = rx.recv().await {
            rest.push(event);
        }
        for chunk in rest.chunks(BATCH) {
            write(&store, chunk).await;
        }
    }
}

async fn write(store: &Store, events: &[UsageEvent]) {
    let mut keys: HashMap<&str, UsageDelta> = HashMap::new();
    let mut sessions: HashMap<B256, u64> = HashMap::new();
    for e in events {
        let delta = keys.entry(&e.key_id).or_insert_with(|| UsageDelta {
            key_id: e.key_id.clone(),
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            at: 0,
        });
        delta.requests += 1;
        delta.prompt_tokens = delta.prompt_tokens.saturating_add(e.prompt_tokens);
        delta.completion_tokens = delta.completion_tokens.saturating_add(e.completion_tokens);
        delta.at = delta.at.max(e.at);
        let at = sessions.entry(e.session_id).or_default();
        *at = (*at).max(e.at);
    }
    let deltas: Vec<UsageDelta> = keys.into_values().collect();
    if let Err(e) = store.api_keys().add_usage(&deltas).await {
        tracing::error!(error = %e, requests = events.len(), "cannot store the gateway's usage");
    }
    let touches: Vec<(B256, u64)> = sessions.into_iter().collect();
    if let Err(e) = store.gateway_sessions().touch(&touches).await {
        tracing::warn!(error = %e, "cannot store the gateway sessions' last use");
    }
}
