//! The wallet's MOR allowance for the diamond, raised safely under concurrency.
//!
//! Every write that moves the wallet's MOR through the diamond (provider and model registration, the
//! bid fee, `openSession`) first reserves its amount here ([`Allowance::reserve`] or
//! [`Allowance::spend`]), and keeps the returned [`AllowanceGuard`] until its transaction is mined.
//!
//! # Why (reference bug #612)
//!
//! The reference read the allowance and then called `approve(amount)` in each request. Two sessions
//! opened in parallel both saw "too low", both approved *their own* amount, the second approval
//! overwrote the first, and one `openSession` failed with "ERC20: insufficient allowance". Its fix,
//! `increaseAllowance(amount)` whenever `allowance < 3 × amount`, no longer overwrites, but still races:
//! two callers that read the allowance before either increase is mined both increase, or both skip
//! because each sees enough for itself while together they need more.
//!
//! # How
//!
//! The on-chain allowance is *shared* by every spend in flight, so reading it tells nothing about what
//! is still free while spends are pending: a spend mined a moment ago has already consumed its part,
//! one still pending has not, and the reader cannot tell which. So the manager keeps the number that
//! matters itself: `unreserved`, the part of the allowance not promised to any spend in flight.
//!
//! - Under one async mutex, `reserve(amount)`: when no reservation is in flight, `unreserved` is read
//!   fresh from the chain (nothing of ours can be pending, so the chain value is exact). Otherwise the
//!   local value is used. If `unreserved < amount`, ONE `increaseAllowance(shortfall)` is sent through
//!   the sender and awaited (mined) while the mutex is held, so there are never two racing approvals
//!   and the spender's gas estimation already sees the new allowance. Then `unreserved -= amount`.
//! - When the spend is mined, the chain has consumed exactly what was reserved: nothing to adjust. When
//!   it certainly did not happen (it reverted, or the node refused it), the amount is given back to
//!   `unreserved` ([`AllowanceGuard::not_spent`]). When the outcome is unknown (receipt timeout, plain
//!   drop), nothing is given back: `unreserved` can only be *under*-estimated, which at worst raises the
//!   allowance a little more than needed, never too little. The next time nothing is in flight, the
//!   chain value replaces the estimate.
//!
//! Raising an allowance that would overflow uint256 (someone approved `MAX`) is refused up front
//! ([`ChainError::AllowanceOverflow`]); with such an allowance no raise is ever needed anyway.
//!
//! What this cannot see: another process spending or revoking the same wallet's allowance while our
//! spends are in flight. A spend then reverts at gas estimation with the decoded
//! `Error("ERC20: insufficient allowance")`, without using a nonce, and the next idle moment resyncs.

use std::sync::{Arc, Mutex, MutexGuard};

use alloy::primitives::{Address, U256};

use super::bindings::MorpheusToken;
use super::errors::ChainError;
use super::sender::TxSender;

/// Counters of what the manager did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowanceStats {
    /// `increaseAllowance` transactions sent.
    pub increases: u64,
    /// Their total.
    pub increased_total: U256,
    /// Reservations currently in flight.
    pub in_flight: usize,
}

/// The allowance of the sender's wallet for one spender (normally the diamond). Cheap to clone; clones
/// share the state, and there must be one per (wallet, spender).
#[derive(Clone)]
pub struct Allowance {
    inner: Arc<Inner>,
}

struct Inner {
    sender: TxSender,
    spender: Address,
    check: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    unreserved: U256,
    stats: AllowanceStats,
}

impl std::fmt::Debug for Allowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allowance")
            .field("owner", &self.inner.sender.address())
            .field("spender", &self.inner.spender)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Allowance {
    /// The allowance of the sender's wallet for the diamond.
    pub fn new(sender: TxSender) -> Self {
        let spender = sender.diamond();
        Self::for_spender(sender, spender)
    }

    /// The allowance of the sender's wallet for `spender`.
    pub fn for_spender(sender: TxSender, spender: Address) -> Self {
        Self {
            inner: Arc::new(Inner {
                sender,
                spender,
                check: tokio::sync::Mutex::new(()),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// What the manager has done so far.
    pub fn stats(&self) -> AllowanceStats {
        let state = self.inner.lock();
        AllowanceStats { in_flight: state.in_flight, ..state.stats }
    }

    /// Makes sure `amount` more can be spent by the spender, raising the allowance by the shortfall when
    /// needed (one mined `increaseAllowance`). Keep the guard until the spending transaction is mined.
    pub async fn reserve(&self, amount: U256) -> Result<AllowanceGuard, ChainError> {
        let _check = self.inner.check.lock().await;
        let idle = self.inner.lock().in_flight == 0;
        let mut on_chain = None;
        if idle {
            let current = self.on_chain().await?;
            self.inner.lock().unreserved = current;
            on_chain = Some(current);
        }
        let unreserved = self.inner.lock().unreserved;
        if unreserved < amount {
            let shortfall = amount - unreserved;
            let current = match on_chain {
                Some(current) => current,
                None => self.on_chain().await?,
            };
            if current.checked_add(shortfall).is_none() {
                return Err(ChainError::AllowanceOverflow {
                    current,
                    spender: self.inner.spender,
                    shortfall,
                });
            }
            tracing::info!(spender = %self.inner.spender, %shortfall, %amount, "raising the MOR allowance");
            self.inner.sender.increase_allowance(self.inner.spender, shortfall).await?;
            let mut state = self.inner.lock();
            state.unreserved = state.unreserved.saturating_add(shortfall);
            state.stats.increases += 1;
            state.stats.increased_total = state.stats.increased_total.saturating_add(shortfall);
        }
        let mut state = self.inner.lock();
        state.unreserved = state.unreserved.saturating_sub(amount);
        state.in_flight += 1;
        Ok(AllowanceGuard { inner: Arc::clone(&self.inner), amount, settled: false })
    }

    /// Reserves `amount`, runs `spend` (the transaction that spends it) and settles the reservation by
    /// the outcome: `Ok` consumed it, [`ChainError::Reverted`] / [`ChainError::Rejected`] did not, any
    /// other error is unknown. (A revert, refusal or out-of-gas leaves no state change behind.)
    pub async fn spend<T, F, Fut>(&self, amount: U256, spend: F) -> Result<T, ChainError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, ChainError>>,
    {
        let guard = self.reserve(amount).await?;
        let result = spend().await;
        match &result {
            Ok(_) => guard.spent(),
            Err(ChainError::Reverted { .. } | ChainError::Rejected { .. } | ChainError::OutOfGas { .. }) => {
                guard.not_spent()
            }
            Err(_) => drop(guard),
        }
        result
    }

    async fn on_chain(&self) -> Result<U256, ChainError> {
        let token = MorpheusToken::new(self.inner.sender.mor_token(), self.inner.sender.rpc().provider());
        token
            .allowance(self.inner.sender.address(), self.inner.spender)
            .call()
            .await
            .map_err(|e| ChainError::from_contract("allowance", e))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters updated without awaiting; a poisoned lock keeps valid values.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A reservation of allowance for one spend. Dropping it without [`AllowanceGuard::spent`] or
/// [`AllowanceGuard::not_spent`] means "outcome unknown": the amount is not given back.
#[must_use = "keep the guard until the spending transaction is mined"]
pub struct AllowanceGuard {
    inner: Arc<Inner>,
    amount: U256,
    settled: bool,
}

impl std::fmt::Debug for AllowanceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllowanceGuard").field("amount", &self.amount).finish()
    }
}

impl AllowanceGuard {
    /// The reserved amount.
    pub fn amount(&self) -> U256 {
        self.amount
    }

    /// The spend was mined: the chain consumed the reserved allowance.
    pub fn spent(mut self) {
        self.settled = true;
    }

    /// The spend certainly did not happen (reverted or refused): the amount is free again.
    pub fn not_spent(mut self) {
        self.settled = true;
        {
            let mut state = self.inner.lock();
            state.unreserved = state.unreserved.saturating_add(self.amount);
        }
        // `self` drops here and leaves the in-flight count.
    }
}

impl Drop for AllowanceGuard {
    fn drop(&mut self) {
        if !self.settled {
            tracing::debug!(amount = %self.amount, "allowance reservation dropped with an unknown outcome");
        }
        let mut state = self.inner.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}
