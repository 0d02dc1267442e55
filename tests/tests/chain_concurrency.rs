//! Twenty concurrent writers from one wallet: every transaction is mined, nonces never collide, and
//! the allowance manager raises exactly what is spent (no lost or racing increases, reference #612).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::Provider;
use e2e_tests::anvil::ANVIL_CHAIN_ID;
use e2e_tests::chain::{approval, sign, wallet, ChainFixture, MOR};
use proxy_router::chain::bindings::{Marketplace, SessionRouter};
use proxy_router::chain::sender::{ModelRegistration, OpenSession};
use proxy_router::chain::Allowance;
use tokio::task::JoinSet;

const WRITERS: usize = 20;
const PRICE: u64 = 10_000_000_000_000;

fn registration(owner: Address, index: usize, stake: U256) -> ModelRegistration {
    let name = format!("model-{index}");
    ModelRegistration {
        owner,
        base_id: keccak256(name.as_bytes()),
        ipfs_cid: B256::ZERO,
        fee: U256::ZERO,
        stake,
        name,
        tags: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_model_registrations_and_bids_from_one_wallet() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let d = chain.deployment.clone();
    let read = chain.provider().unwrap();
    let provider = chain.sender(2).await.unwrap();
    let p = provider.address();
    let allowance = Allowance::new(provider.clone());
    chain.give_mor(p, U256::from(100 * MOR)).await.unwrap();
    let stake = U256::from(MOR / 5);
    allowance.spend(stake, || provider.provider_register(p, stake, "p:3333")).await.unwrap();

    let model_stake = U256::from(MOR / 10);
    let fee = Marketplace::new(d.diamond, read.clone()).getBidFee().call().await.unwrap();
    let nonce_before = read.get_transaction_count(p).await.unwrap();
    let increases_before = allowance.stats().increases;
    let balance_before = chain.mor_balance(p).await.unwrap();

    let mut writers = JoinSet::new();
    for index in 0..WRITERS {
        let (provider, allowance) = (provider.clone(), allowance.clone());
        writers.spawn(async move {
            let model = registration(p, index, model_stake);
            let (model_id, _) = allowance.spend(model_stake, || provider.model_register(&model)).await?;
            let (bid_id, _) =
                allowance.spend(fee, || provider.post_model_bid(p, model_id, U256::from(PRICE))).await?;
            Ok::<_, proxy_router::chain::ChainError>(bid_id)
        });
    }
    let mut bids = HashSet::new();
    while let Some(result) = writers.join_next().await {
        bids.insert(result.unwrap().expect("every writer succeeds"));
    }
    assert_eq!(bids.len(), WRITERS);

    // All forty writes and the increases are mined, with consecutive nonces and nothing else.
    let stats = allowance.stats();
    let increases = stats.increases - increases_before;
    let nonce_after = read.get_transaction_count(p).await.unwrap();
    assert_eq!(nonce_after - nonce_before, 2 * WRITERS as u64 + increases);
    assert!(increases >= 1 && increases <= 2 * WRITERS as u64);

    let market = Marketplace::new(d.diamond, read.clone());
    let (active, total) =
        market.getProviderActiveBids(p, U256::ZERO, U256::from(100)).call().await.unwrap().into();
    assert_eq!(total, U256::from(WRITERS));
    assert_eq!(active.into_iter().collect::<HashSet<_>>(), bids);

    // The allowance rose by exactly what was spent and is back to zero; the MOR moved once per write.
    let spent = (model_stake + fee) * U256::from(WRITERS);
    assert_eq!(stats.increased_total, stake + spent);
    assert_eq!(chain.allowance(p).await.unwrap(), U256::ZERO);
    assert_eq!(balance_before - chain.mor_balance(p).await.unwrap(), spent);
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_open_sessions_each_needing_allowance() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let d = chain.deployment.clone();
    let read = chain.provider().unwrap();
    let provider = chain.sender(2).await.unwrap();
    let consumer = chain.sender(3).await.unwrap();
    let (p, u) = (provider.address(), consumer.address());

    // One provider with one bid.
    let provider_allowance = Allowance::new(provider.clone());
    chain.give_mor(p, U256::from(10 * MOR)).await.unwrap();
    let stake = U256::from(MOR / 5);
    provider_allowance.spend(stake, || provider.provider_register(p, stake, "p:3333")).await.unwrap();
    let model = registration(p, 0, U256::from(MOR / 10));
    let (model_id, _) =
        provider_allowance.spend(model.stake, || provider.model_register(&model)).await.unwrap();
    let fee = Marketplace::new(d.diamond, read.clone()).getBidFee().call().await.unwrap();
    let (bid_id, _) = provider_allowance
        .spend(fee, || provider.post_model_bid(p, model_id, U256::from(PRICE)))
        .await
        .unwrap();

    // Twenty sessions opened at once, each with its own approval (distinct timestamps).
    let amount = chain.session_stake(U256::from(PRICE), 600).await.unwrap();
    chain.give_mor(u, amount * U256::from(WRITERS + 1)).await.unwrap();
    let allowance = Allowance::new(consumer.clone());
    let balance_before = chain.mor_balance(u).await.unwrap();
    let nonce_before = read.get_transaction_count(u).await.unwrap();
    let now_ms = u128::from(chain.chain_time().await.unwrap()) * 1000;
    let provider_wallet = wallet(2).unwrap();

    let mut writers = JoinSet::new();
    for index in 0..WRITERS {
        let approval = approval(bid_id, ANVIL_CHAIN_ID, u, now_ms + index as u128);
        let open = OpenSession {
            user: u,
            amount,
            direct_payment: false,
            approval_signature: sign(&provider_wallet, &approval).unwrap(),
            approval,
        };
        let (consumer, allowance) = (consumer.clone(), allowance.clone());
        writers.spawn(async move {
            allowance.spend(amount, || consumer.open_session(&open)).await.map(|(id, _)| id)
        });
    }
    let mut opened = HashSet::new();
    while let Some(result) = writers.join_next().await {
        opened.insert(result.unwrap().expect("every session opens"));
    }
    assert_eq!(opened.len(), WRITERS);

    let stats = allowance.stats();
    let nonce_after = read.get_transaction_count(u).await.unwrap();
    assert_eq!(nonce_after - nonce_before, WRITERS as u64 + stats.increases);
    assert_eq!(stats.increased_total, amount * U256::from(WRITERS));
    assert_eq!(chain.allowance(u).await.unwrap(), U256::ZERO);
    assert_eq!(balance_before - chain.mor_balance(u).await.unwrap(), amount * U256::from(WRITERS));

    let sessions = SessionRouter::new(d.diamond, read.clone());
    let (ids, total) = sessions.getUserSessions(u, U256::ZERO, U256::from(100)).call().await.unwrap().into();
    assert_eq!(total, U256::from(WRITERS));
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), opened);
}
