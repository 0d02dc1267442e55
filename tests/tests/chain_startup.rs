//! Start-up checks refuse a wrong chain id, contract addresses without code, a token the diamond does
//! not use and a diamond missing functions the router calls, each with a message naming the problem.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, FixedBytes};
use alloy::sol_types::SolCall;
use e2e_tests::anvil::ANVIL_CHAIN_ID;
use e2e_tests::chain::ChainFixture;
use proxy_router::chain::bindings::{LumerinDiamond, SessionRouter};
use proxy_router::chain::startup::{required_functions, verify};
use proxy_router::chain::{ChainError, Rpc};

#[tokio::test(flavor = "multi_thread")]
async fn verify_accepts_the_deployment_and_refuses_each_misconfiguration() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let rpc = chain.rpc().await.unwrap();

    let report = verify(&rpc, &chain.config).await.unwrap();
    assert_eq!(report.chain_id, ANVIL_CHAIN_ID);
    assert_eq!(report.functions_checked, required_functions().len());
    assert!(report.multicall3_present);

    // Wrong chain id: both ids in the message.
    let mut config = chain.config.clone();
    config.chain_id = 8453;
    let error = verify(&rpc, &config).await.unwrap_err();
    assert!(matches!(error, ChainError::ChainIdMismatch { expected: 8453, actual: ANVIL_CHAIN_ID }));
    assert_eq!(
        error.to_string(),
        "wrong chain: ETH_NODE_CHAIN_ID is 8453 but the RPC node reports chain id 31337"
    );

    // A diamond address without code.
    let nowhere = Address::repeat_byte(0x42);
    let mut config = chain.config.clone();
    config.diamond = nowhere;
    let error = verify(&rpc, &config).await.unwrap_err();
    assert!(matches!(error, ChainError::NoCode { variable: "DIAMOND_CONTRACT_ADDRESS", .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("marketplace diamond") && message.contains(&nowhere.to_string()), "{message}");
    assert!(message.contains("DIAMOND_CONTRACT_ADDRESS"), "{message}");

    // A token address without code.
    let mut config = chain.config.clone();
    config.mor_token = nowhere;
    let error = verify(&rpc, &config).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("MOR token") && message.contains("MOR_TOKEN_ADDRESS"), "{message}");
    assert!(message.contains(&nowhere.to_string()), "{message}");

    // A contract that is not the diamond's token.
    let mut config = chain.config.clone();
    config.mor_token = chain.deployment.multicall3;
    let error = verify(&rpc, &config).await.unwrap_err();
    assert!(matches!(error, ChainError::TokenMismatch { .. }), "{error}");
    assert!(error.to_string().contains(&chain.deployment.mor_token.to_string()), "{error}");

    // Not the diamond at all (the token has code but no loupe): every function is reported missing.
    let mut config = chain.config.clone();
    config.diamond = chain.deployment.mor_token;
    let error = verify(&rpc, &config).await.unwrap_err();
    let ChainError::MissingSelectors { missing, .. } = &error else { panic!("{error}") };
    assert_eq!(missing.len(), required_functions().len());
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_the_functions_a_diamond_does_not_serve() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    // The owner (account 0) cuts two functions out of the diamond, as on the Base diamond of
    // SmartContracts issue #62 where withdrawUserStakes was never registered.
    let owner = chain.sender(0).await.unwrap();
    let removed: Vec<FixedBytes<4>> = vec![
        SessionRouter::withdrawUserStakesCall::SELECTOR.into(),
        SessionRouter::claimForProviderCall::SELECTOR.into(),
    ];
    let cut = LumerinDiamond::Facet {
        facetAddress: chain.deployment.session_router_facet,
        action: 2, // Remove
        functionSelectors: removed,
    };
    let call = LumerinDiamond::diamondCut_1Call { facets_: vec![cut] };
    owner.send_call(chain.deployment.diamond, &call).await.unwrap();

    let rpc: Rpc = chain.rpc().await.unwrap();
    let error = verify(&rpc, &chain.config).await.unwrap_err();
    let ChainError::MissingSelectors { diamond, missing } = &error else { panic!("{error}") };
    assert_eq!(*diamond, chain.deployment.diamond);
    assert_eq!(
        missing,
        &["claimForProvider(bytes32) (0xf2e96e8e)", "withdrawUserStakes(address,uint8) (0xa98a7c6b)"]
    );
    let message = error.to_string();
    assert!(message.contains("does not serve 2 function(s)"), "{message}");
    assert!(message.contains("withdrawUserStakes(address,uint8)"), "{message}");
}
