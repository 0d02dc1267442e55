//! Start-up checks of the chain configuration: fail loudly, with a typed error naming the problem,
//! instead of degrading silently (reference issues #736 and SmartContracts #62).
//!
//! [`verify`] checks, in this order:
//! 1. `eth_chainId` equals `ETH_NODE_CHAIN_ID` ([`ChainError::ChainIdMismatch`] shows both);
//! 2. `DIAMOND_CONTRACT_ADDRESS` has code ([`ChainError::NoCode`]);
//! 3. `MOR_TOKEN_ADDRESS` has code, and is the token the diamond uses (`getToken()`);
//! 4. the diamond serves every function the router calls ([`required_functions`]): the loupe's
//!    `facetAddress(selector)` must be non-zero for each; [`ChainError::MissingSelectors`] lists the
//!    missing ones by signature and selector.
//!
//! Multicall3 is optional (reads fall back to single calls): its absence is reported, not fatal.

use alloy::primitives::{Address, Selector};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::bindings::{
    LumerinDiamond, Marketplace, ModelRegistry, MorpheusToken, ProviderRegistry, SessionRouter,
};
use super::errors::ChainError;
use super::rpc::Rpc;
use crate::config::ChainConfig;

/// Loupe queries in flight at once.
const CONCURRENT_CHECKS: usize = 8;

/// One function the router calls through the diamond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredFunction {
    /// The canonical signature, e.g. `openSession(address,uint256,bool,bytes,bytes)`.
    pub signature: &'static str,
    /// Its selector.
    pub selector: Selector,
}

macro_rules! required {
    ($($call:ty),* $(,)?) => {
        vec![$(RequiredFunction { signature: <$call as SolCall>::SIGNATURE, selector: Selector::from(<$call as SolCall>::SELECTOR) }),*]
    };
}

/// Every diamond function the router calls: all writes of the sender and the getters of the indexer,
/// the API and the consumer.
pub fn required_functions() -> Vec<RequiredFunction> {
    use Marketplace as M;
    use ModelRegistry as Mo;
    use ProviderRegistry as P;
    use SessionRouter as S;
    required![
        // Writes.
        P::providerRegisterCall,
        P::providerDeregisterCall,
        Mo::modelRegisterCall,
        Mo::modelDeregisterCall,
        M::postModelBidCall,
        M::deleteModelBidCall,
        S::openSessionCall,
        S::closeSessionCall,
        S::claimForProviderCall,
        S::withdrawUserStakesCall,
        // Providers.
        P::getProviderCall,
        P::getActiveProvidersCall,
        P::getIsProviderActiveCall,
        P::getProviderMinimumStakeCall,
        // Models.
        Mo::getModelCall,
        Mo::getModelIdsCall,
        Mo::getActiveModelIdsCall,
        Mo::getIsModelActiveCall,
        Mo::getModelMinimumStakeCall,
        // Bids and the market.
        M::getBidCall,
        M::isBidActiveCall,
        M::getModelBidsCall,
        M::getModelActiveBidsCall,
        M::getProviderBidsCall,
        M::getProviderActiveBidsCall,
        M::getBidFeeCall,
        M::getMinMaxBidPricePerSecondCall,
        M::getTokenCall,
        // Sessions, stakes and the budget.
        S::getSessionCall,
        S::getUserSessionsCall,
        S::getProviderSessionsCall,
        S::getModelSessionsCall,
        S::getProviderModelStatsCall,
        S::getModelStatsCall,
        S::getTodaysBudgetCall,
        S::totalMORSupplyCall,
        S::getUserStakesOnHoldCall,
        S::getIsProviderApprovalUsedCall,
        S::getMaxSessionDurationCall,
    ]
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupReport {
    /// The chain id (equal to the configured one).
    pub chain_id: u64,
    /// How many diamond functions were found served.
    pub functions_checked: usize,
    /// Whether `MULTICALL3_ADDR` has code.
    pub multicall3_present: bool,
}

/// Runs the start-up checks (module docs). Every RPC is bounded by the client's request timeout.
pub async fn verify(rpc: &Rpc, config: &ChainConfig) -> Result<StartupReport, ChainError> {
    let provider = rpc.provider();
    let actual =
        provider.get_chain_id().await.map_err(|source| ChainError::Rpc { method: "eth_chainId", source })?;
    if actual != config.chain_id {
        return Err(ChainError::ChainIdMismatch { expected: config.chain_id, actual });
    }

    let has_code = |address: Address| async move {
        provider
            .get_code_at(address)
            .await
            .map(|code| !code.is_empty())
            .map_err(|source| ChainError::Rpc { method: "eth_getCode", source })
    };
    if !has_code(config.diamond).await? {
        return Err(ChainError::NoCode {
            contract: "marketplace diamond",
            variable: "DIAMOND_CONTRACT_ADDRESS",
            address: config.diamond,
            chain_id: actual,
        });
    }
    if !has_code(config.mor_token).await? {
        return Err(ChainError::NoCode {
            contract: "MOR token",
            variable: "MOR_TOKEN_ADDRESS",
            address: config.mor_token,
            chain_id: actual,
        });
    }

    let functions = required_functions();
    let diamond = LumerinDiamond::new(config.diamond, provider.clone());
    let served: Vec<(RequiredFunction, bool)> = stream::iter(functions.iter().copied())
        .map(|function| {
            let diamond = &diamond;
            async move {
                match diamond.facetAddress(function.selector).call().await {
                    Ok(facet) => Ok((function, facet != Address::ZERO)),
                    Err(alloy::contract::Error::TransportError(e)) => match super::errors::revert_data(&e) {
                        // The diamond has no loupe: it cannot prove anything it serves.
                        Some(_) => Ok((function, false)),
                        None => Err(ChainError::Rpc { method: "facetAddress", source: e }),
                    },
                    Err(e) => Err(ChainError::from_contract("facetAddress", e)),
                }
            }
        })
        .buffered(CONCURRENT_CHECKS)
        .try_collect()
        .await?;
    let missing: Vec<String> = served
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(f, _)| format!("{} ({})", f.signature, f.selector))
        .collect();
    if !missing.is_empty() {
        return Err(ChainError::MissingSelectors { diamond: config.diamond, missing });
    }

    let token = Marketplace::new(config.diamond, provider.clone())
        .getToken()
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getToken", e))?;
    if token != config.mor_token {
        return Err(ChainError::TokenMismatch { configured: config.mor_token, diamond_token: token });
    }
    // The token answers as an ERC-20 (a contract without `balanceOf` is not the token).
    MorpheusToken::new(config.mor_token, provider.clone())
        .balanceOf(config.diamond)
        .call()
        .await
        .map_err(|e| ChainError::from_contract("balanceOf", e))?;

    let multicall3_present = has_code(config.multicall3).await?;
    if !multicall3_present {
        tracing::warn!(address = %config.multicall3, "MULTICALL3_ADDR has no code: reads are not batched");
    }
    tracing::info!(chain_id = actual, diamond = %config.diamond, functions = functions.len(), "chain configuration verified");
    Ok(StartupReport { chain_id: actual, functions_checked: functions.len(), multicall3_present })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn required_functions_are_unique_and_belong_to_the_facets() {
        let functions = required_functions();
        let selectors: HashSet<_> = functions.iter().map(|f| f.selector).collect();
        assert_eq!(selectors.len(), functions.len());
        let facet_functions: HashSet<_> = [
            ProviderRegistry::abi::contract(),
            ModelRegistry::abi::contract(),
            Marketplace::abi::contract(),
            SessionRouter::abi::contract(),
        ]
        .iter()
        .flat_map(|abi| abi.functions().map(|f| f.selector()).collect::<Vec<_>>())
        .collect();
        for function in &functions {
            assert!(facet_functions.contains(&function.selector), "{}", function.signature);
        }
        assert!(functions.iter().any(|f| f.signature == "withdrawUserStakes(address,uint8)"));
    }
}
