//! A stuck transaction is resent with the same nonce and higher fees, and the bumped one is mined.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use alloy::primitives::{Address, TxHash, U256};
use alloy::providers::Provider;
use e2e_tests::chain::{wallet, ChainFixture};
use proxy_router::chain::sender::{TxPolicy, TxSender};

/// The pending transaction of `from` in anvil's pool: (hash, maxPriorityFeePerGas, maxFeePerGas).
async fn pending_of(chain: &ChainFixture, from: Address) -> Option<(TxHash, u128, u128)> {
    let content: serde_json::Value =
        chain.provider().unwrap().raw_request("txpool_content".into(), ()).await.unwrap();
    let pending = content.get("pending")?.as_object()?;
    let (_, by_nonce) = pending.iter().find(|(address, _)| address.parse::<Address>().ok() == Some(from))?;
    let (_, tx) = by_nonce.as_object()?.iter().next()?;
    let number = |key: &str| u128::from_str_radix(tx.get(key)?.as_str()?.trim_start_matches("0x"), 16).ok();
    Some((tx.get("hash")?.as_str()?.parse().ok()?, number("maxPriorityFeePerGas")?, number("maxFeePerGas")?))
}

/// Polls `probe` until it returns `Some`, within `deadline`.
async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_transaction_is_bumped_and_only_the_bumped_one_lands() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let read = chain.provider().unwrap();
    read.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (false,)).await.unwrap();

    let policy = TxPolicy {
        legacy: false,
        bump_interval: Duration::from_millis(400),
        fee_bump_percent: 20,
        max_bumps: 1,
        receipt_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
    };
    let sender = TxSender::with_policy(chain.rpc().await.unwrap(), wallet(2).unwrap(), &chain.config, policy);
    let from = sender.address();
    let nonce = read.get_transaction_count(from).await.unwrap();
    let diamond = chain.deployment.diamond;

    let sending = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.approve(diamond, U256::from(42u64)).await })
    };

    // The original waits in the pool (nothing is mined), then its replacement takes its place.
    let deadline = Duration::from_secs(20);
    let (first, first_tip, first_max) = wait_for("the original", deadline, || pending_of(&chain, from)).await;
    let (bumped, bumped_tip, bumped_max) = wait_for("the replacement", deadline, || async {
        pending_of(&chain, from).await.filter(|(hash, ..)| *hash != first)
    })
    .await;
    assert!(bumped_tip >= first_tip * 120 / 100, "tip {first_tip} -> {bumped_tip}");
    assert!(bumped_max >= first_max * 120 / 100, "max fee {first_max} -> {bumped_max}");

    chain.mine().await.unwrap();
    let receipt = sending.await.unwrap().expect("the bumped transaction is mined");
    assert_eq!(receipt.transaction_hash, bumped);
    assert!(receipt.status());

    // Only one transaction with this nonce landed: the bumped one.
    assert!(read.get_transaction_receipt(first).await.unwrap().is_none());
    assert_eq!(read.get_transaction_count(from).await.unwrap(), nonce + 1);
    let block = read.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
    assert_eq!(block.transactions.hashes().collect::<Vec<_>>(), [bumped]);
    let mined = read.get_transaction_by_hash(bumped).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&mined), nonce);
    assert_eq!(alloy::consensus::Transaction::max_priority_fee_per_gas(&mined), Some(bumped_tip));
    assert_eq!(chain.allowance(from).await.unwrap(), U256::from(42u64));
}

#[tokio::test(flavor = "multi_thread")]
async fn unmined_transaction_times_out_listing_every_hash_and_the_next_send_resyncs() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let read = chain.provider().unwrap();
    read.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (false,)).await.unwrap();
    let policy = TxPolicy {
        legacy: false,
        bump_interval: Duration::from_millis(300),
        fee_bump_percent: 15,
        max_bumps: 2,
        receipt_timeout: Duration::from_millis(1500),
        poll_interval: Duration::from_millis(50),
    };
    let sender = TxSender::with_policy(chain.rpc().await.unwrap(), wallet(2).unwrap(), &chain.config, policy);
    let diamond = chain.deployment.diamond;

    let error = sender.approve(diamond, U256::from(1u64)).await.unwrap_err();
    let proxy_router::chain::ChainError::ReceiptTimeout { nonce, tx_hashes, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(*nonce, 0);
    assert_eq!(tx_hashes.len(), 3, "the original and two bumps: {error}");
    let pending = pending_of(&chain, sender.address()).await.expect("still in the pool");
    assert_eq!(pending.0, tx_hashes[2], "the last bump is the one waiting");

    // Mining resumes: the waiting transaction lands, and the next send takes the following nonce.
    read.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (true,)).await.unwrap();
    chain.mine().await.unwrap();
    let receipt = sender.approve(diamond, U256::from(2u64)).await.unwrap();
    let mined = read.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&mined), 1);
    assert_eq!(chain.allowance(sender.address()).await.unwrap(), U256::from(2u64));
}
