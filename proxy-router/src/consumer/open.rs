//! Opening sessions (go-proxy-router.md §4.2): by bid, by model, or from a ready approval.
//!
//! 1. **Stake sizing**: `price × duration` for a direct payment, otherwise
//!    `ceil(totalMORSupply(now) × price × duration / getTodaysBudget(now))` at the chain's latest block
//!    (the stake whose stipend pays for `duration`; the contract derives the real `endsAt`).
//! 2. **Handshake** (`session.request`) with the bid's provider at its on-chain endpoint: the approval
//!    must come from the provider's own key ([`super::client`]).
//! 3. **`openSession`** through the wallet's transaction sender, with the MOR allowance reserved first
//!    (`chain::Allowance`: one raise for the shortfall, never two racing approvals). The session is
//!    usable as soon as the receipt carries `SessionOpened`: its record (provider endpoint and key,
//!    failover, direct payment, end) is written before the id is returned.
//!
//! By model, the model's active bids from the local index are rated ([`super::rating`], with the
//! allowlist), this node's own bids are skipped, and providers are tried best first: a provider that
//! fails the handshake (unreachable, silent, refusing, lying) is skipped with its reason; when none
//! accepts, every reason is reported ([`ConsumerError::NoProviderAccepted`]). A failure after a
//! successful handshake (the transaction) stops the attempt: it is not the provider's fault.

use std::collections::HashMap;

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes, B256, U256};

use super::client::{Handshake, Pong, ProviderKey};
use super::error::{ConsumerError, ProviderFailure};
use super::rating::{self, Candidate, ModelSpread, PairStats, ScoreInput};
use super::{unix_now, Consumer};
use crate::chain::sender::OpenSession;
use crate::chain::Signer;
use crate::protocol::{SessionApproval, SessionRes};
use crate::store::{self, BidFilter, ConsumerSession, Page, SessionStats};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRequest {
    /// Seconds the stake should pay for.
    pub duration: u64,
    /// Pay the provider directly instead of staking.
    pub direct_payment: bool,
    /// Replace a failing provider by the next-best bid.
    pub failover: bool,
    /// The most MOR the stake (or payment) may be: bids that would need more are skipped (the
    /// gateway's per-key budget). `None`: no limit.
    pub max_stake: Option<U256>,
}

/// An opened session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The on-chain session id.
    pub session_id: B256,
    /// The `openSession` transaction.
    pub tx: B256,
    /// The bid.
    pub bid_id: B256,
    /// The provider.
    pub provider: Address,
    /// MOR staked or paid.
    pub stake: U256,
    /// When it ends (unix seconds, from the chain).
    pub ends_at: u64,
    /// Providers that were tried first and why they were skipped (by model only).
    pub skipped: Vec<ProviderFailure>,
}

/// The contract's minimum session length (`MIN_SESSION_DURATION`, 5 minutes).
pub const MIN_SESSION_DURATION: u64 = 300;

/// The stake or payment for `duration` seconds at `price` per second (see the module docs).
pub fn stake_for(
    price: U256,
    duration: u64,
    direct_payment: bool,
    supply: U256,
    budget: U256,
) -> Result<U256, ConsumerError> {
    let cost = price
        .checked_mul(U256::from(duration))
        .ok_or_else(|| bad("sessionDuration", "price × duration overflows uint256"))?;
    if direct_payment {
        return Ok(cost);
    }
    if budget.is_zero() {
        return Err(bad("sessionDuration", "the compute budget is 0 today: no stake can buy time"));
    }
    let product =
        supply.checked_mul(cost).ok_or_else(|| bad("sessionDuration", "supply × cost overflows uint256"))?;
    Ok(product.div_ceil(budget))
}

fn bad(field: &'static str, reason: impl Into<String>) -> ConsumerError {
    ConsumerError::BadRequest { field, reason: reason.into() }
}

impl Consumer {
    /// `POST /blockchain/bids/{id}/session`: opens a session on one bid.
    pub async fn open_by_bid(&self, bid_id: B256, request: OpenRequest) -> Result<Opened, ConsumerError> {
        check_duration(request.duration)?;
        let signer = self.signer()?;
        let head = self.chain().head().await?;
        let bid = match self.store().bids().get(bid_id).await? {
            Some(bid) => Some(bid),
            None => self.chain().bid(bid_id, head.block_id()).await?,
        }
        .filter(store::Bid::is_active)
        .ok_or(ConsumerError::BidNotFound(bid_id))?;
        if bid.provider == signer.address() {
            return Err(ConsumerError::OwnBid(bid_id));
        }
        let endpoint = self.endpoint(bid.provider, head.block_id()).await?;
        let (supply, budget) = self.chain().supply_and_budget(head).await?;
        let amount =
            stake_for(bid.price_per_second, request.duration, request.direct_payment, supply, budget)?;
        if let Some(limit) = request.max_stake.filter(|limit| amount > *limit) {
            return Err(ConsumerError::StakeAboveLimit { needed: amount, limit });
        }
        self.ensure_balance(&signer, amount).await?;
        let handshake = self.handshake(&signer, &bid, &endpoint, amount).await?;
        self.commit(&signer, &bid, &endpoint, handshake, amount, request, Vec::new()).await
    }

    /// `POST /blockchain/models/{id}/session`: rates the model's bids and opens a session with the
    /// best provider that accepts.
    pub async fn open_by_model(&self, model_id: B256, request: OpenRequest) -> Result<Opened, ConsumerError> {
        self.open_by_model_omitting(model_id, request, &[]).await
    }

    /// Like [`Consumer::open_by_model`], never trying the providers in `omit` (failover).
    pub(crate) async fn open_by_model_omitting(
        &self,
        model_id: B256,
        request: OpenRequest,
        omit: &[Address],
    ) -> Result<Opened, ConsumerError> {
        check_duration(request.duration)?;
        let signer = self.signer()?;
        let me = signer.address();
        let head = self.chain().head().await?;
        let rated = self.rated_bids(model_id).await?;
        let total = rated.len();
        let candidates: Vec<store::Bid> = rated
            .into_iter()
            .map(|(bid, _)| bid)
            .filter(|b| b.provider != me && !omit.contains(&b.provider))
            .collect();
        if candidates.is_empty() {
            let hint = (total > 0).then(|| {
                format!("{total} rated bid(s), all of them this node's own or of providers already tried")
            });
            return Err(ConsumerError::NoBids { model: model_id, hint });
        }
        let (supply, budget) = self.chain().supply_and_budget(head).await?;
        let mut failures = Vec::new();
        let mut cheapest_above_limit: Option<U256> = None;
        for bid in candidates {
            let fail = |reason: String| ProviderFailure { provider: bid.provider, bid_id: bid.id, reason };
            let endpoint = match self.endpoint(bid.provider, head.block_id()).await {
                Ok(endpoint) => endpoint,
                Err(e @ ConsumerError::ProviderNotFound(_)) => {
                    failures.push(fail(e.to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let amount =
                stake_for(bid.price_per_second, request.duration, request.direct_payment, supply, budget)?;
            if let Some(limit) = request.max_stake.filter(|limit| amount > *limit) {
                cheapest_above_limit = Some(cheapest_above_limit.map_or(amount, |c| c.min(amount)));
                failures.push(fail(format!("its stake of {amount} wei is above the limit of {limit} wei")));
                continue;
            }
            self.ensure_balance(&signer, amount).await?;
            match self.handshake(&signer, &bid, &endpoint, amount).await {
                Ok(handshake) => {
                    return self.commit(&signer, &bid, &endpoint, handshake, amount, request, failures).await
                }
                Err(e) if e.is_provider_failure() => {
                    tracing::info!(provider = %bid.provider, bid = %bid.id, error = %e, "provider skipped");
                    failures.push(fail(e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        match (cheapest_above_limit, request.max_stake) {
            // Every candidate was above the limit: the limit, not the providers, is the reason.
            (Some(needed), Some(limit)) if failures.iter().all(|f| f.reason.contains("above the limit")) => {
                Err(ConsumerError::StakeAboveLimit { needed, limit })
            }
            _ => Err(ConsumerError::NoProviderAccepted { failures }),
        }
    }

    /// `POST /blockchain/sessions`: opens a session with an approval obtained before (e.g. through
    /// [`Consumer::initiate`]). The provider's key is learned later, by a ping, when a prompt needs it.
    pub async fn open_with_approval(
        &self,
        approval: Bytes,
        approval_signature: Bytes,
        stake: U256,
        direct_payment: bool,
    ) -> Result<Opened, ConsumerError> {
        let signer = self.signer()?;
        let decoded = SessionApproval::decode(&approval).map_err(|e| bad("approval", e.to_string()))?;
        if decoded.chain_id != U256::from(self.chain_id()) {
            return Err(bad(
                "approval",
                format!("it is for chain {}, not {}", decoded.chain_id, self.chain_id()),
            ));
        }
        if decoded.user != signer.address() {
            return Err(bad(
                "approval",
                format!("it is for user {}, not for this node's wallet {}", decoded.user, signer.address()),
            ));
        }
        if stake.is_zero() {
            return Err(bad("stake", "must be greater than 0"));
        }
        let head = self.chain().head().await?;
        let bid = match self.store().bids().get(decoded.bid_id).await? {
            Some(bid) => Some(bid),
            None => self.chain().bid(decoded.bid_id, head.block_id()).await?,
        }
        .filter(store::Bid::is_active)
        .ok_or(ConsumerError::BidNotFound(decoded.bid_id))?;
        let endpoint = self.endpoint(bid.provider, head.block_id()).await.unwrap_or_default();
        self.ensure_balance(&signer, stake).await?;
        let open = OpenSession {
            user: signer.address(),
            amount: stake,
            direct_payment,
            approval,
            approval_signature,
        };
        self.send_open(&signer, &bid, &endpoint, None, open, false, Vec::new()).await
    }

    /// `POST /proxy/sessions/initiate`: only the handshake, answered as the provider sent it.
    pub async fn initiate(
        &self,
        user: Address,
        provider: Address,
        spend: U256,
        endpoint: &str,
        bid_id: B256,
    ) -> Result<SessionRes, ConsumerError> {
        let signer = self.signer()?;
        let wallet = signer.sender.wallet().signer();
        let handshake =
            self.client().initiate(endpoint, provider, wallet, user, spend, bid_id, self.chain_id()).await?;
        Ok(handshake.response)
    }

    /// `POST /proxy/provider/ping`.
    pub async fn ping(&self, provider: Address, endpoint: &str) -> Result<Pong, ConsumerError> {
        let signer = self.signer()?;
        self.client().ping(endpoint, provider, signer.sender.wallet().signer()).await
    }

    /// The model's active bids from the index, rated and sorted best first (the allowlist applied).
    pub async fn rated_bids(&self, model_id: B256) -> Result<Vec<(store::Bid, f64)>, ConsumerError> {
        let store = self.store();
        let filter = BidFilter { active_only: true, provider: None, model_id: Some(model_id) };
        let mut bids = Vec::new();
        let mut offset = 0;
        loop {
            let page = store.bids().list(filter, Page::new(offset, Page::MAX_LIMIT)).await?;
            let fetched = page.items.len() as u64;
            bids.extend(page.items);
            offset += fetched;
            if fetched == 0 || offset >= page.total {
                break;
            }
        }
        if bids.is_empty() {
            return Ok(Vec::new());
        }
        let min_stake = self.chain().provider_minimum_stake().await?;
        let model = store.stats().model(model_id).await?.as_ref().map(ModelSpread::from).unwrap_or_default();
        let mut stakes: HashMap<Address, U256> = HashMap::new();
        let mut candidates = Vec::with_capacity(bids.len());
        for bid in &bids {
            let provider_stake = match stakes.get(&bid.provider) {
                Some(stake) => *stake,
                None => {
                    let stake =
                        store.providers().get(bid.provider).await?.map(|p| p.stake).unwrap_or_default();
                    stakes.insert(bid.provider, stake);
                    stake
                }
            };
            let pair = store.stats().provider_model(model_id, bid.provider).await?;
            candidates.push(Candidate {
                bid_id: bid.id,
                provider: bid.provider,
                input: ScoreInput {
                    provider_model: pair.as_ref().map(PairStats::from).unwrap_or_default(),
                    model,
                    provider_stake,
                    min_stake,
                    price_per_second: bid.price_per_second,
                },
            });
        }
        let mut by_id: HashMap<B256, store::Bid> = bids.into_iter().map(|b| (b.id, b)).collect();
        Ok(rating::rate(self.rating(), &candidates)
            .into_iter()
            .filter_map(|r| by_id.remove(&r.bid_id).map(|bid| (bid, r.score)))
            .collect())
    }

    /// The provider's endpoint from the index, else from the chain (just registered).
    pub(crate) async fn endpoint(&self, provider: Address, at: BlockId) -> Result<String, ConsumerError> {
        let record = match self.store().providers().get(provider).await? {
            Some(p) => Some(p),
            None => self.chain().provider(provider, at).await?,
        };
        match record {
            Some(p) if !p.is_deleted => Ok(p.endpoint),
            _ => Err(ConsumerError::ProviderNotFound(provider)),
        }
    }

    async fn ensure_balance(&self, signer: &Signer, amount: U256) -> Result<(), ConsumerError> {
        let balance = self.chain().mor_balance(signer.address()).await?;
        if balance < amount {
            return Err(ConsumerError::InsufficientFunds { needed: amount, available: balance });
        }
        Ok(())
    }

    async fn handshake(
        &self,
        signer: &Signer,
        bid: &store::Bid,
        endpoint: &str,
        amount: U256,
    ) -> Result<Handshake, ConsumerError> {
        let wallet = signer.sender.wallet().signer();
        self.client()
            .initiate(endpoint, bid.provider, wallet, signer.address(), amount, bid.id, self.chain_id())
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        signer: &Signer,
        bid: &store::Bid,
        endpoint: &str,
        handshake: Handshake,
        amount: U256,
        request: OpenRequest,
        skipped: Vec<ProviderFailure>,
    ) -> Result<Opened, ConsumerError> {
        let open = OpenSession {
            user: signer.address(),
            amount,
            direct_payment: request.direct_payment,
            approval: handshake.response.approval.clone(),
            approval_signature: handshake.response.approval_sig.clone(),
        };
        self.send_open(signer, bid, endpoint, Some(handshake.key), open, request.failover, skipped).await
    }

    /// Sends `openSession`, waits for `SessionOpened`, reads the session's end and writes the record.
    #[allow(clippy::too_many_arguments)]
    async fn send_open(
        &self,
        signer: &Signer,
        bid: &store::Bid,
        endpoint: &str,
        key: Option<ProviderKey>,
        open: OpenSession,
        failover: bool,
        skipped: Vec<ProviderFailure>,
    ) -> Result<Opened, ConsumerError> {
        let amount = open.amount;
        let (session_id, receipt) =
            signer.allowance.spend(amount, || signer.sender.open_session(&open)).await?;
        let at = receipt.block_number.map(BlockId::number).unwrap_or_else(BlockId::latest);
        let session = self.chain().session(session_id, at).await?;
        let (opened_at, ends_at) = match &session {
            Some(s) => (s.opened_at, s.ends_at),
            // A lagging RPC node: the receipt proves the session exists; its end comes with the index.
            None => (unix_now(), unix_now()),
        };
        let record = ConsumerSession {
            session_id,
            user: open.user,
            provider: bid.provider,
            bid_id: bid.id,
            model_id: bid.model_id,
            endpoint: endpoint.to_owned(),
            provider_public_key: key.map(|k| k.public_key),
            stake: amount,
            direct_payment: open.direct_payment,
            failover,
            opened_at,
            ends_at,
            closed_at: 0,
            close_tx: None,
            closeout_type: None,
            replaced_by: None,
            stats: SessionStats::default(),
            created_at: unix_now(),
        };
        self.store().consumer_sessions().upsert(&record).await?;
        tracing::info!(session = %session_id, provider = %bid.provider, bid = %bid.id, ends_at, failover, "session opened");
        Ok(Opened {
            session_id,
            tx: receipt.transaction_hash,
            bid_id: bid.id,
            provider: bid.provider,
            stake: amount,
            ends_at,
            skipped,
        })
    }
}

/// The contract refuses a session shorter than [`MIN_SESSION_DURATION`] (`SessionTooShort`): refused
/// here, before a provider's handshake and an allowance transaction are spent on it.
fn check_duration(duration: u64) -> Result<(), ConsumerError> {
    if duration < MIN_SESSION_DURATION {
        return Err(bad(
            "sessionDuration",
            format!(
                "{duration} s is shorter than the {MIN_SESSION_DURATION} s the contract accepts (MIN_SESSION_DURATION)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stake_sizing_follows_the_reference() {
        let price = U256::from(1_000u64);
        // Direct payment: price × duration.
        assert_eq!(stake_for(price, 600, true, U256::ZERO, U256::ZERO).unwrap(), U256::from(600_000u64));
        // Staked: supply × cost / budget, rounded up.
        let stake = stake_for(price, 600, false, U256::from(7u64), U256::from(3u64)).unwrap();
        assert_eq!(stake, U256::from(1_400_000u64));
        let stake = stake_for(price, 1, false, U256::from(10u64), U256::from(3u64)).unwrap();
        assert_eq!(stake, U256::from(3_334u64));
        assert!(matches!(
            stake_for(price, 600, false, U256::from(7u64), U256::ZERO),
            Err(ConsumerError::BadRequest { field: "sessionDuration", .. })
        ));
        assert!(stake_for(U256::MAX, 2, true, U256::ZERO, U256::ZERO).is_err());
        assert!(check_duration(0).is_err());
        assert!(matches!(
            check_duration(MIN_SESSION_DURATION - 1),
            Err(ConsumerError::BadRequest { field: "sessionDuration", .. })
        ));
        assert!(check_duration(MIN_SESSION_DURATION).is_ok());
    }
}
