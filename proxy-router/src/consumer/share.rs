//! What of a closed session's MOR its user has not got back ([`UserShare`]): the stake of the stipend
//! used on the day of `min(closedAt, endsAt)`, kept on hold until the next UTC day (after any close
//! on that day, early or late), or what a direct payment paid the provider. The
//! contract's `_refundUser` (SessionRouter.sol) computes the same, line for line; the gateway
//! attributes it to the API key the session served.

use alloy::eips::BlockId;
use alloy::primitives::{B256, U256};

use super::error::ConsumerError;
use super::Consumer;

/// One UTC day, in seconds.
const DAY: u64 = 86_400;

/// What a closed session's user does not have back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserShare {
    /// When the session was closed (chain time, unix seconds).
    pub closed_at: u64,
    /// MOR wei: on hold (staked) or paid (direct payment).
    pub held: U256,
    /// When `held` comes back (the next UTC midnight after the close); 0 for a payment (for good).
    pub release_at: u64,
}

impl Consumer {
    /// The user's share of the closed session `session_id`, read on chain at the latest block; `None`
    /// while the session is open or unknown.
    pub async fn user_share(&self, session_id: B256) -> Result<Option<UserShare>, ConsumerError> {
        let at = BlockId::latest();
        let Some(session) = self.chain().session(session_id, at).await? else { return Ok(None) };
        if session.closed_at == 0 {
            return Ok(None);
        }
        let price = match self.store().bids().get(session.bid_id).await? {
            Some(bid) => bid.price_per_second,
            None => {
                self.chain().bid(session.bid_id, at).await?.map(|b| b.price_per_second).unwrap_or_default()
            }
        };
        let end = session.closed_at.min(session.ends_at);
        if session.is_direct_payment {
            let paid = U256::from(end.saturating_sub(session.opened_at)).saturating_mul(price);
            return Ok(Some(UserShare {
                closed_at: session.closed_at,
                held: paid.min(session.stake),
                release_at: 0,
            }));
        }
        // The stipend used on the day of `end` is locked until the next UTC day (v7.8: late closes too),
        // unless that day was over at the close.
        let start_of_day = end - end % DAY;
        if session.closed_at >= start_of_day + DAY {
            return Ok(Some(UserShare { closed_at: session.closed_at, held: U256::ZERO, release_at: 0 }));
        }
        let used_today =
            U256::from(end.saturating_sub(session.opened_at.max(start_of_day))).saturating_mul(price);
        let lock = self.chain().stipend_to_stake(used_today, start_of_day).await?.min(session.stake);
        let release_at = if lock.is_zero() { 0 } else { start_of_day + DAY };
        Ok(Some(UserShare { closed_at: session.closed_at, held: lock, release_at }))
    }
}
