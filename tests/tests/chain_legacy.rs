//! ETH_NODE_LEGACY_TX: the sender pays with a legacy `gasPrice` instead of EIP-1559 fees, and the
//! write still lands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::consensus::{Transaction as _, TxType};
use alloy::primitives::U256;
use alloy::providers::Provider;
use e2e_tests::chain::{wallet, ChainFixture, MOR};
use proxy_router::chain::bindings::ProviderRegistry;
use proxy_router::chain::{Allowance, TxSender};

#[tokio::test(flavor = "multi_thread")]
async fn legacy_transactions_carry_a_gas_price_and_land() {
    let mut chain = ChainFixture::start().await.unwrap();
    chain.config.legacy_tx = true;
    let sender = TxSender::new(chain.rpc().await.unwrap(), wallet(2).unwrap(), &chain.config);
    let p = sender.address();
    chain.give_mor(p, U256::from(MOR)).await.unwrap();

    let stake = U256::from(MOR / 5);
    let receipt = Allowance::new(sender.clone())
        .spend(stake, || sender.provider_register(p, stake, "legacy.example:3333"))
        .await
        .unwrap();

    let tx =
        chain.provider().unwrap().get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(tx.inner.tx_type(), TxType::Legacy);
    assert!(tx.inner.gas_price().is_some_and(|price| price > 0));
    let registered = ProviderRegistry::new(chain.deployment.diamond, chain.provider().unwrap())
        .getProvider(p)
        .call()
        .await
        .unwrap();
    assert_eq!(registered.stake, stake);
}
