//! The money rules of our `SessionRouter.sol` that the API answers with, as pure functions:
//! [`session_claim`] is `claimForProvider` line for line, [`limit_remaining`] the provider's 365-day
//! earning limiter of `_payProvider`, and [`on_hold_slots`] locates a user's on-hold entries in the
//! diamond's storage (no getter lists them; `SessionsStorage` has the same field order in our contracts
//! and the reference's, docs/contracts.md).

use alloy::primitives::{keccak256, Address, U256};
use alloy::sol_types::SolValue;

use crate::store;

/// One UTC day, in seconds (the contracts' `1 days`).
pub const DAY: u64 = 86_400;

/// What `claimForProvider` computes for one session at time `now`, before the provider's limiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionClaim {
    /// When the earnings become claimable: `min(closedAt, endsAt)`, or `endsAt` while open.
    pub end: u64,
    /// `(end − openedAt) × price − providerWithdrawnAmount` (never below 0), or 0 before `end`.
    pub rewards: U256,
    /// The part of a disputed early close withheld until `on_hold_until`.
    pub on_hold: U256,
    /// When `on_hold` is released (0 when nothing is held).
    pub on_hold_until: u64,
    /// `rewards − on_hold` (never below 0): what the contract passes to the limiter.
    pub amount: U256,
}

/// `claimForProvider` of our `SessionRouter.sol` for `session` at bid price `price` and chain time
/// `now`, before the limiter ([`limit_remaining`]).
pub fn session_claim(session: &store::Session, price: U256, now: u64) -> SessionClaim {
    let end = if session.closed_at == 0 { session.ends_at } else { session.closed_at.min(session.ends_at) };
    if now < end {
        return SessionClaim { end, ..SessionClaim::default() };
    }
    let rewards = earned(session, price, end);
    let mut on_hold = U256::ZERO;
    let mut on_hold_until = 0;
    let release = start_of_day(session.closed_at).saturating_add(DAY);
    if session.closeout_type == U256::from(1) && now < release {
        on_hold = disputed_on_hold(session, price);
        if !on_hold.is_zero() {
            on_hold_until = release;
        }
    }
    SessionClaim { end, rewards, on_hold, on_hold_until, amount: rewards.saturating_sub(on_hold) }
}

/// `_earned`: `(end − openedAt) × price − providerWithdrawnAmount`, never below 0.
fn earned(session: &store::Session, price: U256, end: u64) -> U256 {
    let total = U256::from(end.saturating_sub(session.opened_at)).saturating_mul(price);
    total.saturating_sub(session.provider_withdrawn_amount)
}

/// `_disputedOnHold`: for a close before the end, the time used on the closing day × price.
fn disputed_on_hold(session: &store::Session, price: U256) -> U256 {
    if session.closed_at >= session.ends_at {
        return U256::ZERO;
    }
    let from = start_of_day(session.closed_at).max(session.opened_at);
    U256::from(session.closed_at.saturating_sub(from)).saturating_mul(price)
}

/// `startOfTheDay`: the UTC midnight at or before `timestamp`.
pub fn start_of_day(timestamp: u64) -> u64 {
    timestamp - timestamp % DAY
}

/// A provider's earning limit at one time (`_payProvider`'s limiter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderLimit {
    /// What the provider may still be paid: its stake minus what it earned in the current 365-day
    /// window (the whole stake once the window has ended).
    pub remaining: U256,
    /// End of the current window (0 before the first payment).
    pub period_end: u64,
}

/// The limiter: a window that has ended (`now > limitPeriodEnd`) restarts with nothing earned.
pub fn limit_remaining(stake: U256, limit_period_end: u64, limit_period_earned: U256, now: u64) -> U256 {
    if now > limit_period_end {
        stake
    } else {
        stake.saturating_sub(limit_period_earned)
    }
}

/// Namespace of the session storage: `keccak256("diamond.standard.sessions.storage")`.
pub const SESSIONS_STORAGE_NAMESPACE: &str = "diamond.standard.sessions.storage";
/// Position of `userStakesOnHold` in `SessionsStorage` (after `fundingAccount`, `pools`,
/// `providersTotalClaimed`, `sessionNonce`, `sessions`, `maxSessionDuration`, `userSessions`,
/// `providerSessions`, `modelSessions`): the same in our contracts and the reference's.
pub const USER_STAKES_ON_HOLD_FIELD: u64 = 9;

/// The storage slots of `userStakesOnHold[user]`: the array's length, and its first entry (entry `i`
/// holds `amount` at `first + 2i` and `releaseAt` at `first + 2i + 1`).
pub fn on_hold_slots(user: Address) -> (U256, U256) {
    let base = U256::from_be_bytes(keccak256(SESSIONS_STORAGE_NAMESPACE).0);
    let mapping = base.wrapping_add(U256::from(USER_STAKES_ON_HOLD_FIELD));
    let length = keccak256((user, mapping).abi_encode());
    let first = U256::from_be_bytes(keccak256(length).0);
    (U256::from_be_bytes(length.0), first)
}
