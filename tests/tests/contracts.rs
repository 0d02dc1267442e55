//! Our contracts deployed by the project's deploy script on a real anvil, read through the Rust bindings
//! generated from `proxy-router/abi` (alloy `sol!`): the bindings and the deployed diamond agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::json_abi::JsonAbi;
use alloy::primitives::{Address, U256};
use e2e_tests::anvil::{Anvil, ANVIL_CHAIN_ID};
use e2e_tests::deploy::deploy_marketplace;
use proxy_router::chain::bindings::{
    Delegation, LumerinDiamond, Marketplace, ModelRegistry, MorpheusToken, ProviderRegistry, SessionRouter,
};

const ONE_TENTH_MOR: u128 = 100_000_000_000_000_000;

#[tokio::test]
async fn deploy_script_wires_a_diamond_the_bindings_can_read() {
    let anvil = Anvil::start().await.expect("start anvil");
    let d = deploy_marketplace(&anvil).expect("deploy");
    let provider = anvil.provider().unwrap();
    assert_eq!(d.chain_id, ANVIL_CHAIN_ID);

    let diamond = LumerinDiamond::new(d.diamond, provider.clone());
    assert_eq!(diamond.owner().call().await.unwrap(), d.owner);

    let marketplace = Marketplace::new(d.diamond, provider.clone());
    assert_eq!(marketplace.getToken().call().await.unwrap(), d.mor_token);
    assert_eq!(marketplace.getBidFee().call().await.unwrap(), U256::from(ONE_TENTH_MOR));
    let bounds = marketplace.getMinMaxBidPricePerSecond().call().await.unwrap();
    assert_eq!(
        (bounds._0, bounds._1),
        (U256::from(10_000_000_000_000u64), U256::from(10_000_000_000_000_000u64))
    );

    let providers = ProviderRegistry::new(d.diamond, provider.clone());
    assert_eq!(providers.getProviderMinimumStake().call().await.unwrap(), U256::from(ONE_TENTH_MOR));
    // Unknown ids give zero structs, never a revert (the router batches these through Multicall3).
    let unknown = providers.getProvider(Address::repeat_byte(0x42)).call().await.unwrap();
    assert_eq!(unknown.createdAt, 0);
    assert!(unknown.endpoint.is_empty());

    let sessions = SessionRouter::new(d.diamond, provider.clone());
    assert_eq!(sessions.getPools().call().await.unwrap().len(), 5);
    assert_eq!(sessions.getFundingAccount().call().await.unwrap(), d.funding_account);
    assert_eq!(sessions.getMaxSessionDuration().call().await.unwrap(), 7 * 24 * 3600);

    let delegation = Delegation::new(d.diamond, provider.clone());
    assert_eq!(delegation.getRegistry().call().await.unwrap(), d.delegate_registry);

    // The funding account holds MOR and has approved the diamond, so it can pay providers.
    let token = MorpheusToken::new(d.mor_token, provider.clone());
    assert_eq!(token.decimals().call().await.unwrap(), 18);
    assert!(token.balanceOf(d.funding_account).call().await.unwrap() > U256::ZERO);
    assert_eq!(token.allowance(d.funding_account, d.diamond).call().await.unwrap(), U256::MAX);
}

#[tokio::test]
async fn every_facet_function_of_the_bindings_is_cut_into_the_diamond() {
    let anvil = Anvil::start().await.expect("start anvil");
    let d = deploy_marketplace(&anvil).expect("deploy");
    let diamond = LumerinDiamond::new(d.diamond, anvil.provider().unwrap());

    let facets: [(&str, JsonAbi, Address); 5] = [
        ("ProviderRegistry", ProviderRegistry::abi::contract(), d.provider_registry_facet),
        ("ModelRegistry", ModelRegistry::abi::contract(), d.model_registry_facet),
        ("Marketplace", Marketplace::abi::contract(), d.marketplace_facet),
        ("SessionRouter", SessionRouter::abi::contract(), d.session_router_facet),
        ("Delegation", Delegation::abi::contract(), d.delegation_facet),
    ];
    let mut checked = 0;
    for (name, abi, facet) in facets {
        for function in abi.functions() {
            let served_by = diamond.facetAddress(function.selector()).call().await.unwrap();
            assert_eq!(served_by, facet, "{name}.{} is not served by its facet", function.signature());
            checked += 1;
        }
    }
    // 8 provider + 10 model + 18 marketplace/bid + 29 session/stats + 8 delegation selectors.
    assert_eq!(checked, 73);
}
