//! The chain reads of the consumer role that the local index cannot answer: the chain's clock, the
//! stake-sizing inputs (supply and today's budget), balances, and fresh records of a session, bid or
//! provider when the indexer has not reached them yet (just opened, just registered). None of them is
//! on the prompt path.

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider as _;

use super::error::ConsumerError;
use crate::chain::bindings::{Marketplace, MorpheusToken, ProviderRegistry, SessionRouter};
use crate::chain::{ChainError, Rpc};
use crate::index::convert;
use crate::store;

/// The latest block: its number and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block timestamp, unix seconds (the chain's "now").
    pub timestamp: u64,
}

impl Head {
    /// The block to pin reads to.
    pub fn block_id(self) -> BlockId {
        BlockId::number(self.number)
    }
}

/// Reads of the diamond and the MOR token over `rpc`.
#[derive(Debug, Clone)]
pub struct ChainReads {
    rpc: Rpc,
    diamond: Address,
    mor_token: Address,
}

impl ChainReads {
    /// Reads of `diamond` and `mor_token` through `rpc`.
    pub fn new(rpc: Rpc, diamond: Address, mor_token: Address) -> Self {
        Self { rpc, diamond, mor_token }
    }

    /// The latest block.
    pub async fn head(&self) -> Result<Head, ConsumerError> {
        let block = self
            .rpc
            .provider()
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ChainError::from_rpc("eth_getBlockByNumber", "latest block", e))?
            .ok_or_else(|| ChainError::Rpc {
                method: "eth_getBlockByNumber",
                source: alloy::transports::TransportErrorKind::custom_str(
                    "the RPC node returned no latest block",
                ),
            })?;
        Ok(Head { number: block.header.number, timestamp: block.header.timestamp })
    }

    /// `(totalMORSupply(now), getTodaysBudget(now))` at `head`.
    pub async fn supply_and_budget(&self, head: Head) -> Result<(U256, U256), ConsumerError> {
        let router = SessionRouter::new(self.diamond, self.rpc.provider());
        let now = u128::from(head.timestamp);
        let supply = router
            .totalMORSupply(now)
            .block(head.block_id())
            .call()
            .await
            .map_err(|e| ChainError::from_contract("totalMORSupply", e))?;
        let budget = router
            .getTodaysBudget(now)
            .block(head.block_id())
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getTodaysBudget", e))?;
        Ok((supply, budget))
    }

    /// `getProviderMinimumStake()`.
    pub async fn provider_minimum_stake(&self) -> Result<U256, ConsumerError> {
        Ok(ProviderRegistry::new(self.diamond, self.rpc.provider())
            .getProviderMinimumStake()
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getProviderMinimumStake", e))?)
    }

    /// The MOR balance of `owner`.
    pub async fn mor_balance(&self, owner: Address) -> Result<U256, ConsumerError> {
        Ok(MorpheusToken::new(self.mor_token, self.rpc.provider())
            .balanceOf(owner)
            .call()
            .await
            .map_err(|e| ChainError::from_contract("balanceOf", e))?)
    }

    /// The session as the store would record it, `None` if the chain does not know it.
    pub async fn session(&self, id: B256, at: BlockId) -> Result<Option<store::Session>, ConsumerError> {
        let provider = self.rpc.provider();
        let s = SessionRouter::new(self.diamond, provider)
            .getSession(id)
            .block(at)
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getSession", e))?;
        if s.user == Address::ZERO {
            return Ok(None);
        }
        let bid = self.bid(s.bidId, at).await?.ok_or(ConsumerError::BidNotFound(s.bidId))?;
        Ok(Some(convert::session(id, s, bid.provider, bid.model_id)))
    }

    /// The bid, `None` if it never existed.
    pub async fn bid(&self, id: B256, at: BlockId) -> Result<Option<store::Bid>, ConsumerError> {
        let b = Marketplace::new(self.diamond, self.rpc.provider())
            .getBid(id)
            .block(at)
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getBid", e))?;
        Ok((b.createdAt != 0).then(|| convert::bid(id, b)))
    }

    /// `stipendToStake(stipend, timestamp)`: the stake whose stipend on the day of `timestamp` is
    /// `stipend` (what an early close keeps on hold).
    pub async fn stipend_to_stake(&self, stipend: U256, timestamp: u64) -> Result<U256, ConsumerError> {
        Ok(SessionRouter::new(self.diamond, self.rpc.provider())
            .stipendToStake(stipend, u128::from(timestamp))
            .call()
            .await
            .map_err(|e| ChainError::from_contract("stipendToStake", e))?)
    }

    /// The provider, `None` if it never registered.
    pub async fn provider(
        &self,
        address: Address,
        at: BlockId,
    ) -> Result<Option<store::Provider>, ConsumerError> {
        let p = ProviderRegistry::new(self.diamond, self.rpc.provider())
            .getProvider(address)
            .block(at)
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getProvider", e))?;
        Ok((p.createdAt != 0).then(|| convert::provider(address, p)))
    }
}
