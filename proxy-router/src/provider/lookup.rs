//! Bids and sessions as the provider checks them: from the chain index in the store first (no RPC on
//! the hot path); when the indexer has not seen the entity yet (it was just created), one chain read,
//! bounded in concurrency. A session read from the chain is cached (bounded) until the index has it;
//! the index always wins, so a later close is seen.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use alloy::primitives::{Address, B256};
use tokio::sync::Semaphore;

use super::{ProviderError, CHAIN_FALLBACK_CONCURRENCY};
use crate::chain::bindings::{Marketplace, SessionRouter};
use crate::chain::Rpc;
use crate::index::convert;
use crate::store::Store;

/// Sessions read from the chain kept at most.
const SESSION_CACHE_CAPACITY: usize = 4096;

/// What the provider needs to know about a bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BidFacts {
    pub provider: Address,
    pub model_id: B256,
    pub active: bool,
}

/// What the provider needs to know about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionFacts {
    pub id: B256,
    pub user: Address,
    pub provider: Address,
    pub model_id: B256,
    pub ends_at: u64,
    pub closed_at: u64,
}

pub(super) struct Lookup {
    diamond: Address,
    reads: Semaphore,
    sessions: Mutex<HashMap<B256, SessionFacts>>,
}

impl Lookup {
    pub(super) fn new(diamond: Address) -> Self {
        Self {
            diamond,
            reads: Semaphore::new(CHAIN_FALLBACK_CONCURRENCY),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The bid, or `None` if neither the index nor the chain knows it.
    pub(super) async fn bid(
        &self,
        store: &Store,
        rpc: &Rpc,
        id: B256,
    ) -> Result<Option<BidFacts>, ProviderError> {
        if let Some(bid) = store.bids().get(id).await? {
            return Ok(Some(BidFacts {
                provider: bid.provider,
                model_id: bid.model_id,
                active: bid.is_active(),
            }));
        }
        let _permit = self.reads.acquire().await.map_err(|e| ProviderError::Chain(e.to_string()))?;
        let bid = Marketplace::new(self.diamond, rpc.provider())
            .getBid(id)
            .call()
            .await
            .map_err(|e| ProviderError::Chain(format!("getBid({id:#x}): {e}")))?;
        if bid.createdAt == 0 {
            return Ok(None);
        }
        tracing::debug!(bid = %id, "bid read from the chain: not indexed yet");
        Ok(Some(BidFacts { provider: bid.provider, model_id: bid.modelId, active: bid.deletedAt == 0 }))
    }

    /// The session, or `None` if neither the index nor the chain knows it. The chain is asked only
    /// when `ask_chain` (the caller's proof that the request is worth an RPC call).
    pub(super) async fn session(
        &self,
        store: &Store,
        rpc: &Rpc,
        id: B256,
        ask_chain: bool,
    ) -> Result<Option<SessionFacts>, ProviderError> {
        if let Some(s) = store.sessions().get(id).await? {
            self.lock().remove(&id);
            return Ok(Some(SessionFacts {
                id,
                user: s.user,
                provider: s.provider,
                model_id: s.model_id,
                ends_at: s.ends_at,
                closed_at: s.closed_at,
            }));
        }
        if let Some(cached) = self.lock().get(&id) {
            return Ok(Some(*cached));
        }
        if !ask_chain {
            return Ok(None);
        }
        let _permit = self.reads.acquire().await.map_err(|e| ProviderError::Chain(e.to_string()))?;
        let session = SessionRouter::new(self.diamond, rpc.provider())
            .getSession(id)
            .call()
            .await
            .map_err(|e| ProviderError::Chain(format!("getSession({id:#x}): {e}")))?;
        if session.openedAt == 0 {
            return Ok(None);
        }
        let bid = Marketplace::new(self.diamond, rpc.provider())
            .getBid(session.bidId)
            .call()
            .await
            .map_err(|e| ProviderError::Chain(format!("getBid({:#x}): {e}", session.bidId)))?;
        let facts = SessionFacts {
            id,
            user: session.user,
            provider: bid.provider,
            model_id: bid.modelId,
            ends_at: convert::secs(session.endsAt),
            closed_at: convert::secs(session.closedAt),
        };
        tracing::debug!(session = %id, "session read from the chain: not indexed yet");
        let mut cache = self.lock();
        if cache.len() >= SESSION_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(id, facts);
        Ok(Some(facts))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<B256, SessionFacts>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
