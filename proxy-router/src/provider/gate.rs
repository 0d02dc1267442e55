//! Per-session request gates: at most `concurrency` prompts of one session are served at once (the
//! reference: one), at most `queue` more wait for their turn (each no longer than a given limit), and
//! the rest are refused at once. Gates of idle sessions are dropped when the table grows, so memory
//! is bounded by the sessions in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::B256;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ProviderError;

/// Idle gates are pruned when the table holds more than this many.
const PRUNE_ABOVE: usize = 1024;

struct Gate {
    semaphore: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// The gates of every session.
pub(super) struct SessionGates {
    gates: Mutex<HashMap<B256, Arc<Gate>>>,
    concurrency: usize,
    queue: usize,
}

/// A prompt's turn; the next waiting prompt of the session runs when it is dropped.
pub(super) struct Turn {
    _permit: OwnedSemaphorePermit,
    _gate: Arc<Gate>,
}

impl SessionGates {
    pub(super) fn new(concurrency: usize, queue: usize) -> Self {
        Self { gates: Mutex::new(HashMap::new()), concurrency: concurrency.max(1), queue }
    }

    fn gate(&self, session: B256) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if gates.len() > PRUNE_ABOVE {
            // A gate only the table holds has no prompt running or waiting.
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates
            .entry(session)
            .or_insert_with(|| {
                Arc::new(Gate {
                    semaphore: Arc::new(Semaphore::new(self.concurrency)),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Waits (at most `wait`) for a turn of `session`; refused at once when the queue is full.
    pub(super) async fn enter(&self, session: B256, wait: Duration) -> Result<Turn, ProviderError> {
        let gate = self.gate(session);
        if let Ok(permit) = gate.semaphore.clone().try_acquire_owned() {
            return Ok(Turn { _permit: permit, _gate: gate });
        }
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ProviderError::SessionBusy(session));
        }
        let acquired = tokio::time::timeout(wait, gate.semaphore.clone().acquire_owned()).await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        match acquired {
            Ok(Ok(permit)) => Ok(Turn { _permit: permit, _gate: gate }),
            // The semaphore is never closed; a timeout means the session stayed busy.
            _ => Err(ProviderError::SessionBusy(session)),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_at_a_time_others_queue_then_refused() {
        let gates = Arc::new(SessionGates::new(1, 1));
        let s = B256::repeat_byte(1);
        let first = gates.enter(s, Duration::from_secs(5)).await.unwrap();
        // Another session is independent.
        let _other = gates.enter(B256::repeat_byte(2), Duration::from_secs(5)).await.unwrap();

        let waiter = {
            let gates = gates.clone();
            tokio::spawn(async move { gates.enter(s, Duration::from_secs(5)).await.map(|_| ()) })
        };
        // Let the waiter queue up, then a third prompt finds the queue full.
        while gates.gate(s).waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(
            matches!(gates.enter(s, Duration::from_secs(5)).await, Err(ProviderError::SessionBusy(id)) if id == s)
        );
        drop(first);
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_wait_is_bounded() {
        let gates = SessionGates::new(1, 4);
        let s = B256::repeat_byte(1);
        let _first = gates.enter(s, Duration::from_secs(5)).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(gates.enter(s, Duration::from_millis(50)).await.is_err());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(gates.gate(s).waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn idle_gates_are_pruned() {
        let gates = SessionGates::new(1, 1);
        let busy = gates.enter(B256::repeat_byte(0xff), Duration::from_secs(1)).await.unwrap();
        for i in 0..=PRUNE_ABOVE {
            let mut id = B256::ZERO;
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            drop(gates.enter(id, Duration::from_secs(1)).await.unwrap());
        }
        gates.gate(B256::repeat_byte(0xee));
        assert!(gates.len() <= 3, "only the busy gate and the newest remain: {}", gates.len());
        drop(busy);
    }
}
