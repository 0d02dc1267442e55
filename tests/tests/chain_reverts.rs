//! Reverts decode into the custom error's name and arguments (or `Error(string)`), at gas estimation
//! without using a nonce, and for a mined transaction with status 0 by replaying the call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::dyn_abi::DynSolValue;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use e2e_tests::anvil::ANVIL_CHAIN_ID;
use e2e_tests::chain::{approval, sign, wallet, ChainFixture, MOR};
use proxy_router::chain::bindings::ProviderRegistry;
use proxy_router::chain::sender::OpenSession;
use proxy_router::chain::ChainError;

const MIN_PROVIDER_STAKE: u64 = 100_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn revert_at_estimation_is_decoded_and_uses_no_nonce() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let read = chain.provider().unwrap();
    let provider = chain.sender(2).await.unwrap();
    let p = provider.address();
    let nonce_before = read.get_transaction_count(p).pending().await.unwrap();

    // A custom error with arguments.
    let error = provider.provider_register(p, U256::from(1u64), "x:1").await.unwrap_err();
    let ChainError::Reverted { operation, tx_hash, contract_error: Some(decoded), .. } = &error else {
        panic!("expected a decoded revert, got {error:?}")
    };
    assert_eq!((operation.as_str(), *tx_hash), ("providerRegister", None));
    assert_eq!(decoded.name, "ProviderStakeTooLow");
    assert_eq!(decoded.contract, "ProviderRegistry");
    assert_eq!(decoded.arg("amount"), Some(&DynSolValue::Uint(U256::from(1u64), 256)));
    assert_eq!(decoded.arg("minAmount"), Some(&DynSolValue::Uint(U256::from(MIN_PROVIDER_STAKE), 256)));
    assert_eq!(
        error.to_string(),
        "providerRegister reverted: ProviderStakeTooLow(amount=1, minAmount=100000000000000000)"
    );

    // `Error(string)` from the token: enough stake, but no allowance for the diamond.
    chain.give_mor(p, U256::from(MOR)).await.unwrap();
    let error = provider.provider_register(p, U256::from(MOR / 5), "x:1").await.unwrap_err();
    let decoded = error.contract_error().expect("decoded");
    assert_eq!(decoded.reason(), Some("ERC20: insufficient allowance"));
    assert_eq!(error.to_string(), r#"providerRegister reverted: Error("ERC20: insufficient allowance")"#);

    // A custom error without arguments: an approval for a bid that does not exist.
    let consumer = chain.sender(3).await.unwrap();
    let u = consumer.address();
    let now_ms = u128::from(chain.chain_time().await.unwrap()) * 1000;
    let approval = approval(B256::repeat_byte(0x77), ANVIL_CHAIN_ID, u, now_ms);
    let open = OpenSession {
        user: u,
        amount: U256::from(MOR),
        direct_payment: false,
        approval_signature: sign(&wallet(2).unwrap(), &approval).unwrap(),
        approval,
    };
    let error = consumer.open_session(&open).await.unwrap_err();
    assert_eq!(error.to_string(), "openSession reverted: SessionBidNotFound()");

    // None of the reverts used a nonce: the next transaction of each wallet takes the old one.
    assert_eq!(read.get_transaction_count(p).pending().await.unwrap(), nonce_before);
    let receipt = provider.approve(chain.deployment.diamond, U256::from(1u64)).await.unwrap();
    let mined = read.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&mined), nonce_before);
    assert_eq!(read.get_transaction_count(u).pending().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn mined_revert_is_replayed_and_decoded() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let read = chain.provider().unwrap();
    let provider = chain.sender(2).await.unwrap();
    let p = provider.address();
    let nonce_before = read.get_transaction_count(p).await.unwrap();

    // An explicit gas limit skips the estimation, so the reverting call is mined with status 0.
    let call = ProviderRegistry::providerRegisterCall {
        provider_: p,
        amount_: U256::from(5u64),
        endpoint_: "x".into(),
    };
    let tx = TransactionRequest::default()
        .with_to(chain.deployment.diamond)
        .with_input(Bytes::from(call.abi_encode()))
        .with_gas_limit(300_000);
    let error = provider.send(tx).await.unwrap_err();
    let ChainError::Reverted { operation, tx_hash: Some(hash), contract_error: Some(decoded), .. } = &error
    else {
        panic!("expected a decoded mined revert, got {error:?}")
    };
    assert_eq!(operation, "providerRegister");
    assert_eq!(decoded.to_string(), "ProviderStakeTooLow(amount=5, minAmount=100000000000000000)");
    let receipt = read.get_transaction_receipt(*hash).await.unwrap().unwrap();
    assert!(!receipt.status());
    assert!(error.to_string().contains(&hash.to_string()), "{error}");
    // A mined transaction uses its nonce even when it reverts.
    assert_eq!(read.get_transaction_count(p).await.unwrap(), nonce_before + 1);
}
