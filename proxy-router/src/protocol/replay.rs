//! Replay defences the reference lacks, usable by a provider without breaking Go consumers (which sign
//! each request with the current time in milliseconds immediately before sending it).
//!
//! - [`TimestampWindow`] refuses a request whose `timestamp` is older than `max_age` or further in the
//!   future than `max_future_skew` (clock skew between the two machines).
//! - [`ReplayGuard`] adds a bounded cache of accepted signatures: within the window, a signature is
//!   accepted once. Entries are keyed by `keccak256(r ‖ s)`, so flipping `v` does not make a replay look
//!   new (and high-`s` twins are refused by signature verification). Entries leave the cache once
//!   their timestamp falls out of the window, because the window alone refuses them from then on.
//!
//! Memory is bounded by `capacity`. When more fresh signatures arrive within one window than that,
//! the entries with the oldest timestamps are evicted and the guard raises a **floor**: a message
//! whose timestamp is not newer than the newest evicted one is refused
//! ([`ProtocolError::BelowReplayFloor`]). So an evicted signature can never be replayed, at the price
//! of refusing late-arriving old messages while the provider is flooded.
//!
//! Record a message only **after** its signature verified, so that forged messages cannot fill the
//! cache.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{keccak256, B256};

use super::error::ProtocolError;
use super::signing::{Signable, Timestamped};

/// Default age limit of a request: 5 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);
/// Default tolerance for a sender's clock running ahead: 1 minute.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);
/// Default number of signatures remembered.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// The local clock in Unix milliseconds (0 if the clock is before 1970).
pub fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The accepted range of message timestamps around the local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    /// How far in the past a timestamp may lie.
    pub max_age: Duration,
    /// How far in the future a timestamp may lie.
    pub max_future_skew: Duration,
}

impl Default for TimestampWindow {
    fn default() -> Self {
        Self { max_age: DEFAULT_MAX_AGE, max_future_skew: DEFAULT_MAX_FUTURE_SKEW }
    }
}

impl TimestampWindow {
    /// Checks `timestamp_ms` against `now_ms` (both Unix milliseconds). The bounds are inclusive.
    pub fn check(&self, timestamp_ms: u64, now_ms: u64) -> Result<(), ProtocolError> {
        if timestamp_ms < now_ms.saturating_sub(millis(self.max_age)) {
            return Err(ProtocolError::StaleTimestamp { timestamp_ms, now_ms, max_age: self.max_age });
        }
        if timestamp_ms > now_ms.saturating_add(millis(self.max_future_skew)) {
            return Err(ProtocolError::FutureTimestamp {
                timestamp_ms,
                now_ms,
                max_skew: self.max_future_skew,
            });
        }
        Ok(())
    }
}

/// Timestamp window plus a bounded cache of accepted signatures; see the module docs. Shared by all
/// connections of a provider (`&self` methods, internally locked; no lock is held across an await).
#[derive(Debug)]
pub struct ReplayGuard {
    window: TimestampWindow,
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<B256>,
    by_time: BTreeSet<(u64, B256)>,
    floor_ms: Option<u64>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(TimestampWindow::default(), DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayGuard {
    /// A guard with `window` remembering at most `capacity` signatures (at least one).
    pub fn new(window: TimestampWindow, capacity: usize) -> Self {
        Self { window, capacity: capacity.max(1), seen: Mutex::new(Seen::default()) }
    }

    /// The timestamp window.
    pub fn window(&self) -> TimestampWindow {
        self.window
    }

    /// Number of signatures currently remembered.
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether no signature is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accepts a verified message once: checks its timestamp against the window and its signature
    /// against the cache, then remembers the signature.
    pub fn check<M: Signable + Timestamped>(&self, message: &M, now_ms: u64) -> Result<(), ProtocolError> {
        self.check_raw(message.timestamp_ms(), message.signature(), now_ms)
    }

    /// [`ReplayGuard::check`] on a timestamp and a raw 65-byte signature.
    pub fn check_raw(&self, timestamp_ms: u64, signature: &[u8], now_ms: u64) -> Result<(), ProtocolError> {
        self.window.check(timestamp_ms, now_ms)?;
        let key = keccak256(&signature[..signature.len().min(64)]);
        let oldest_fresh = now_ms.saturating_sub(millis(self.window.max_age));

        let mut seen = self.lock();
        seen.forget_before(oldest_fresh);
        if let Some(floor_ms) = seen.floor_ms {
            if timestamp_ms <= floor_ms {
                return Err(ProtocolError::BelowReplayFloor { timestamp_ms, floor_ms });
            }
        }
        if !seen.keys.insert(key) {
            return Err(ProtocolError::Replay);
        }
        seen.by_time.insert((timestamp_ms, key));
        while seen.keys.len() > self.capacity {
            let Some((evicted_ms, evicted)) = seen.by_time.pop_first() else { break };
            seen.keys.remove(&evicted);
            seen.floor_ms = Some(seen.floor_ms.map_or(evicted_ms, |f| f.max(evicted_ms)));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // The critical sections cannot panic half-way; a poisoned lock still holds a consistent set.
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Seen {
    fn forget_before(&mut self, oldest_fresh_ms: u64) {
        while let Some(&(timestamp_ms, key)) = self.by_time.first() {
            if timestamp_ms >= oldest_fresh_ms {
                break;
            }
            self.by_time.pop_first();
            self.keys.remove(&key);
        }
        if self.floor_ms.is_some_and(|floor| floor < oldest_fresh_ms) {
            self.floor_ms = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::SessionPromptReq;
    use alloy::signers::local::PrivateKeySigner;

    const NOW: u64 = 1_719_253_478_500;

    fn sig(n: u8) -> [u8; 65] {
        let mut s = [n; 65];
        s[64] = 0;
        s
    }

    #[test]
    fn window_refuses_stale_and_future_timestamps_inclusive_bounds() {
        let window =
            TimestampWindow { max_age: Duration::from_secs(10), max_future_skew: Duration::from_secs(2) };
        window.check(NOW, NOW).unwrap();
        window.check(NOW - 10_000, NOW).unwrap();
        window.check(NOW + 2_000, NOW).unwrap();
        assert!(matches!(window.check(NOW - 10_001, NOW), Err(ProtocolError::StaleTimestamp { .. })));
        assert!(matches!(window.check(NOW + 2_001, NOW), Err(ProtocolError::FutureTimestamp { .. })));
        assert!(matches!(window.check(0, NOW), Err(ProtocolError::StaleTimestamp { .. })));
        assert!(matches!(window.check(u64::MAX, NOW), Err(ProtocolError::FutureTimestamp { .. })));
    }

    #[test]
    fn a_signed_message_is_accepted_once() {
        let signer = PrivateKeySigner::random();
        let guard = ReplayGuard::default();
        let prompt = SessionPromptReq::build(&signer, B256::repeat_byte(1), "{}", NOW).unwrap();
        guard.check(&prompt, NOW).unwrap();
        assert!(matches!(guard.check(&prompt, NOW + 1), Err(ProtocolError::Replay)));
        let next = SessionPromptReq::build(&signer, B256::repeat_byte(1), "{}", NOW + 1).unwrap();
        guard.check(&next, NOW + 1).unwrap();
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn flipping_v_does_not_bypass_the_cache() {
        let guard = ReplayGuard::default();
        let mut a = sig(7);
        guard.check_raw(NOW, &a, NOW).unwrap();
        a[64] = 1;
        assert!(matches!(guard.check_raw(NOW, &a, NOW), Err(ProtocolError::Replay)));
    }

    #[test]
    fn stale_replays_are_refused_by_the_window_after_the_cache_forgot_them() {
        let window =
            TimestampWindow { max_age: Duration::from_secs(10), max_future_skew: Duration::from_secs(1) };
        let guard = ReplayGuard::new(window, 10);
        guard.check_raw(NOW, &sig(1), NOW).unwrap();
        // Ten seconds later the entry is still fresh: a replay is caught by the cache.
        assert!(matches!(guard.check_raw(NOW, &sig(1), NOW + 10_000), Err(ProtocolError::Replay)));
        // Later it has left the cache, and the window refuses the replay.
        guard.check_raw(NOW + 10_001, &sig(2), NOW + 10_001).unwrap();
        assert_eq!(guard.len(), 1);
        assert!(matches!(
            guard.check_raw(NOW, &sig(1), NOW + 10_001),
            Err(ProtocolError::StaleTimestamp { .. })
        ));
    }

    #[test]
    fn a_full_cache_evicts_the_oldest_and_raises_the_floor() {
        let guard = ReplayGuard::new(TimestampWindow::default(), 3);
        for (i, ts) in [NOW + 3, NOW + 1, NOW + 2].into_iter().enumerate() {
            guard.check_raw(ts, &sig(i as u8 + 1), NOW).unwrap();
        }
        // A fourth evicts the oldest timestamp (NOW + 1, signature 2).
        guard.check_raw(NOW + 4, &sig(4), NOW).unwrap();
        assert_eq!(guard.len(), 3);
        // Replaying the evicted message is refused by the floor…
        assert!(matches!(
            guard.check_raw(NOW + 1, &sig(2), NOW),
            Err(ProtocolError::BelowReplayFloor { floor_ms, .. }) if floor_ms == NOW + 1
        ));
        // …as is any other message not newer than it, while newer ones still pass.
        assert!(matches!(guard.check_raw(NOW, &sig(9), NOW), Err(ProtocolError::BelowReplayFloor { .. })));
        guard.check_raw(NOW + 5, &sig(5), NOW).unwrap();
        // The remembered ones are still replays.
        assert!(matches!(guard.check_raw(NOW + 3, &sig(1), NOW), Err(ProtocolError::Replay)));
    }

    #[test]
    fn the_floor_lapses_once_it_is_out_of_the_window() {
        let window =
            TimestampWindow { max_age: Duration::from_secs(1), max_future_skew: Duration::from_secs(1) };
        let guard = ReplayGuard::new(window, 1);
        guard.check_raw(NOW, &sig(1), NOW).unwrap();
        guard.check_raw(NOW + 1, &sig(2), NOW).unwrap();
        assert!(matches!(guard.check_raw(NOW, &sig(3), NOW), Err(ProtocolError::BelowReplayFloor { .. })));
        let later = NOW + 1_001;
        guard.check_raw(later - 1_000, &sig(4), later).unwrap();
    }
}
