//! Allowance enforcement (go-proxy-router.md §5.2 step 4): a non-admin user's `open_session` and
//! `send_mor` need `allowance[MOR token] ≥ amount`, its `send_eth` needs `allowance["eth"] ≥ amount`;
//! after the transaction the allowance is lowered by what was spent and the hash is recorded for
//! `GET /auth/users/{username}/txs`. The admin (`.cookie` user) is not limited.
//!
//! A handler calls [`reserve`] (or [`reserve_session`]) before it sends anything and
//! [`Spend::settle`] after the transaction succeeded:
//!
//! ```ignore
//! let spend = users::reserve(&state, &principal, SpendToken::Mor, amount).await?; // 403 allowance_exceeded
//! let receipt = signer.sender.send_call(…).await?;
//! spend.settle(&state, receipt.transaction_hash, amount).await;
//! ```
//!
//! [`Spend`] holds a per-user lock from the check to the settlement, so two concurrent requests of
//! one user cannot both spend the same allowance; a request that fails in between (dropping the
//! [`Spend`]) spends nothing. A user's transactions are therefore sent one at a time.
//!
//! The stake of a session opened by bid or by model is computed by the consumer at the block it opens
//! on. [`reserve_session`] checks the allowance against the same formula at the latest block, by
//! model against the dearest of the bids the consumer may choose; the settlement lowers the allowance
//! by the stake actually used (never below 0).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use alloy::primitives::{B256, U256};
use axum::http::StatusCode;
use tokio::sync::OwnedMutexGuard;

use super::allowances::ETH;
use crate::api::auth::Principal;
use crate::api::wire::lower_address;
use crate::api::{ApiError, ApiState};
use crate::consumer::open::stake_for;
use crate::consumer::reads::ChainReads;
use crate::consumer::{ConsumerError, OpenRequest};
use crate::store;

/// The token a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendToken {
    /// The chain's MOR token (keyed by its lower-case address).
    Mor,
    /// ETH (keyed `"eth"`).
    Eth,
}

/// What a session request would stake.
#[derive(Debug, Clone, Copy)]
pub enum SessionCost<'a> {
    /// `POST /blockchain/sessions`: the stake of the body.
    Stake(U256),
    /// `POST /blockchain/bids/{id}/session`.
    Bid(B256, &'a OpenRequest),
    /// `POST /blockchain/models/{id}/session`.
    Model(B256, &'a OpenRequest),
}

/// A checked allowance, held until the transaction is done (see the module docs).
#[derive(Debug)]
#[must_use = "settle the spend after the transaction, or drop it when nothing was sent"]
pub struct Spend {
    hold: Option<Hold>,
}

#[derive(Debug)]
struct Hold {
    user: String,
    token: String,
    _lock: OwnedMutexGuard<()>,
}

/// Checks that the request's user may spend `amount` of `token`: always for the admin, otherwise
/// 403 `allowance_exceeded` when its allowance is smaller. Reads only the store (and the MOR token's
/// address from the configuration): nothing is sent.
pub async fn reserve(
    state: &ApiState,
    principal: &Principal,
    token: SpendToken,
    amount: U256,
) -> Result<Spend, ApiError> {
    if principal.is_admin() {
        return Ok(Spend { hold: None });
    }
    let key = match token {
        SpendToken::Eth => ETH.to_owned(),
        SpendToken::Mor => lower_address(&state.chain()?.mor_token),
    };
    let user = principal.user().to_owned();
    let lock = user_lock(&user).lock_owned().await;
    let allowance = state.store.agents().allowance(&user, &key).await?;
    if amount > allowance {
        let what = match token {
            SpendToken::Eth => "ETH",
            SpendToken::Mor => "MOR",
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "allowance_exceeded",
            format!(
                "user {user:?} may spend {allowance} wei of {what}, less than the {amount} wei this needs"
            ),
        )
        .with_reason(format!("allowance[{key}] = {allowance} < {amount}")));
    }
    Ok(Spend { hold: Some(Hold { user, token: key, _lock: lock }) })
}

/// [`reserve`] for opening a session: MOR, the stake the consumer would use (see the module docs).
/// The admin skips the estimate (no chain read).
pub async fn reserve_session(
    state: &ApiState,
    principal: &Principal,
    cost: SessionCost<'_>,
) -> Result<Spend, ApiError> {
    if principal.is_admin() {
        return Ok(Spend { hold: None });
    }
    let amount = match cost {
        SessionCost::Stake(stake) => stake,
        SessionCost::Bid(id, request) => estimate(state, Some(id), None, request).await?,
        SessionCost::Model(id, request) => estimate(state, None, Some(id), request).await?,
    };
    reserve(state, principal, SpendToken::Mor, amount).await
}

impl Spend {
    /// After the transaction `tx` spent `spent`: lowers the user's allowance (never below 0) and
    /// records `tx`. The money has moved, so a store failure here is logged, not answered.
    pub async fn settle(self, state: &ApiState, tx: B256, spent: U256) {
        let Some(hold) = self.hold else { return };
        let now = crate::consumer::unix_now();
        match state.store.agents().spend(&hold.user, &hold.token, spent, tx, now).await {
            Ok(left) => {
                tracing::info!(user = hold.user, token = hold.token, %spent, %left, %tx, "allowance spent")
            }
            Err(e) => tracing::error!(
                user = hold.user,
                token = hold.token,
                %spent,
                %tx,
                error = %e,
                "the transaction succeeded but the allowance could not be lowered"
            ),
        }
    }
}

/// The largest stake the consumer may use for the session: the bid's, or the dearest of the model's
/// candidate bids (the consumer's rated bids, without this node's own).
async fn estimate(
    state: &ApiState,
    bid: Option<B256>,
    model: Option<B256>,
    request: &OpenRequest,
) -> Result<U256, ApiError> {
    let chain = state.chain()?;
    let reads = ChainReads::new(chain.rpc.clone(), chain.diamond, chain.mor_token);
    let me = state.signer().ok().map(|s| s.address());
    let head = reads.head().await?;
    let bids: Vec<store::Bid> = match (bid, model) {
        (Some(id), _) => {
            let found = match state.store.bids().get(id).await? {
                Some(bid) => Some(bid),
                None => reads.bid(id, head.block_id()).await?,
            };
            vec![found.filter(store::Bid::is_active).ok_or(ConsumerError::BidNotFound(id))?]
        }
        (None, Some(id)) => state.consumer()?.rated_bids(id).await?.into_iter().map(|(b, _)| b).collect(),
        (None, None) => Vec::new(),
    };
    let Some(price) = bids.iter().filter(|b| Some(b.provider) != me).map(|b| b.price_per_second).max() else {
        // Nothing the consumer could open: it refuses before sending anything.
        return Ok(U256::ZERO);
    };
    let (supply, budget) =
        if request.direct_payment { (U256::ZERO, U256::ZERO) } else { reads.supply_and_budget(head).await? };
    Ok(stake_for(price, request.duration, request.direct_payment, supply, budget)?)
}

/// The lock of one user's spending. Unused entries are dropped as others are taken.
fn user_lock(user: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.retain(|_, lock| Arc::strong_count(lock) > 1);
    locks.entry(user.to_owned()).or_default().clone()
}
