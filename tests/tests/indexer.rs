//! The indexer against our contracts on a real anvil: every write the router makes (through the
//! sender) shows in the store's tables once it is `confirmations` deep; a reorg under a live indexer
//! leaves the tables equal to the chain; a restart mid-backfill loses and repeats no event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use e2e_tests::chain::{model_registration, wallet, ChainFixture, MOR};
use e2e_tests::index::{assert_tables_equal_chain, catch_up, cursor, indexer, mine_blocks, TempStore};
use proxy_router::chain::bindings::MorpheusToken;
use proxy_router::chain::sender::OpenSession;
use proxy_router::chain::Allowance;
use proxy_router::index::{Indexer, Step};
use proxy_router::store::{EventFilter, Page};
use tokio_util::sync::CancellationToken;

const PROVIDER: u32 = 2;
const CONSUMER: u32 = 3;
const PRICE: u64 = 10_000_000_000_000;
const CONFIRMATIONS: u64 = 2;

/// Mines `CONFIRMATIONS` blocks, then indexes until caught up, and checks the tables.
async fn settle(chain: &ChainFixture, ix: &mut Indexer, store: &proxy_router::store::Store) {
    mine_blocks(chain, CONFIRMATIONS).await.unwrap();
    catch_up(ix).await.unwrap();
    assert_tables_equal_chain(chain, store, cursor(store).await.unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_shows_in_the_tables_within_the_confirmation_depth() {
    let chain = ChainFixture::start().await.unwrap();
    let temp = TempStore::new().await.unwrap();
    let store = &temp.store;
    let mut ix = indexer(&chain, store, CONFIRMATIONS, 50).await.unwrap();
    catch_up(&mut ix).await.unwrap();

    let provider = chain.sender(PROVIDER).await.unwrap();
    let consumer = chain.sender(CONSUMER).await.unwrap();
    let (p, u) = (provider.address(), consumer.address());
    let provider_allowance = Allowance::new(provider.clone());
    let consumer_allowance = Allowance::new(consumer.clone());
    let price = U256::from(PRICE);

    // Register the provider: invisible until it is CONFIRMATIONS deep, then in the table.
    chain.give_mor(p, U256::from(10 * MOR)).await.unwrap();
    let stake = U256::from(MOR / 5);
    provider_allowance.spend(stake, || provider.provider_register(p, stake, "p.example:3333")).await.unwrap();
    catch_up(&mut ix).await.unwrap();
    assert!(store.providers().get(p).await.unwrap().is_none(), "not yet confirmed");
    settle(&chain, &mut ix, store).await;
    let row = store.providers().get(p).await.unwrap().expect("provider indexed");
    assert_eq!((row.stake, row.endpoint.as_str(), row.is_deleted), (stake, "p.example:3333", false));

    // Model and bid.
    let registration = model_registration(p, "indexed-model", U256::from(MOR / 10));
    let (model_id, _) = provider_allowance
        .spend(registration.stake, || provider.model_register(&registration))
        .await
        .unwrap();
    let fee = U256::from(MOR / 10);
    let (bid_id, _) =
        provider_allowance.spend(fee, || provider.post_model_bid(p, model_id, price)).await.unwrap();
    settle(&chain, &mut ix, store).await;
    assert_eq!(store.models().get(model_id).await.unwrap().unwrap().name, "indexed-model");
    assert_eq!(store.bids().get(bid_id).await.unwrap().unwrap().price_per_second, price);

    // Open a session, close it early with the provider's report: session, stats and provider payout.
    chain.give_mor(u, U256::from(2_000 * MOR)).await.unwrap();
    let amount = chain.session_stake(price, 3600).await.unwrap();
    let (approval, approval_signature) =
        chain.signed_approval(&wallet(PROVIDER).unwrap(), bid_id, u).await.unwrap();
    let open = OpenSession { user: u, amount, direct_payment: false, approval, approval_signature };
    let (session_id, _) = consumer_allowance.spend(amount, || consumer.open_session(&open)).await.unwrap();
    settle(&chain, &mut ix, store).await;
    let session = store.sessions().get(session_id).await.unwrap().expect("session indexed");
    assert!(session.is_active && session.provider == p && session.model_id == model_id);

    chain.advance_time(600).await.unwrap();
    let (report, signature) = chain.signed_report(&wallet(PROVIDER).unwrap(), session_id).await.unwrap();
    consumer.close_session(report, signature).await.unwrap();
    settle(&chain, &mut ix, store).await;
    let session = store.sessions().get(session_id).await.unwrap().unwrap();
    assert!(!session.is_active && session.closed_at != 0);
    assert!(session.provider_withdrawn_amount > U256::ZERO, "provider paid at close");
    let stats = store.stats().provider_model(model_id, p).await.unwrap().expect("stats indexed");
    assert_eq!((stats.success_count, stats.total_count), (1, 1));

    // A second session the provider claims after its end (a claim has no diamond event of its own:
    // the indexer sees the MOR payout and re-reads the session).
    let amount = chain.session_stake(price, 400).await.unwrap();
    let (approval, approval_signature) =
        chain.signed_approval(&wallet(PROVIDER).unwrap(), bid_id, u).await.unwrap();
    let open = OpenSession { user: u, amount, direct_payment: false, approval, approval_signature };
    let (claimed, _) = consumer_allowance.spend(amount, || consumer.open_session(&open)).await.unwrap();
    settle(&chain, &mut ix, store).await;
    chain.advance_time(2 * 3600).await.unwrap();
    provider.claim_for_provider(claimed).await.unwrap();
    settle(&chain, &mut ix, store).await;
    assert!(store.sessions().get(claimed).await.unwrap().unwrap().provider_withdrawn_amount > U256::ZERO);

    // The on-hold stake of the early close, withdrawn the next day.
    chain.jump_to_next_utc_day(60).await.unwrap();
    consumer.withdraw_user_stakes(u, 10).await.unwrap();
    settle(&chain, &mut ix, store).await;

    // Delete the bid, deregister the model and the provider.
    provider.delete_model_bid(bid_id).await.unwrap();
    provider.model_deregister(model_id).await.unwrap();
    provider.provider_deregister(p).await.unwrap();
    settle(&chain, &mut ix, store).await;
    assert!(!store.bids().get(bid_id).await.unwrap().unwrap().is_active());
    assert!(store.models().get(model_id).await.unwrap().unwrap().is_deleted);
    assert!(store.providers().get(p).await.unwrap().unwrap().is_deleted);

    // Health: the lag is the confirmation depth once caught up.
    let status = ix.status().borrow().clone();
    assert_eq!(status.lag, Some(CONFIRMATIONS));
    assert_eq!(status.consecutive_errors, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_under_a_live_indexer_leaves_the_tables_equal_to_the_chain() {
    let chain = ChainFixture::start().await.unwrap();
    let temp = TempStore::new().await.unwrap();
    let store = &temp.store;
    let mut ix = indexer(&chain, store, 0, 50).await.unwrap();
    let provider = chain.sender(PROVIDER).await.unwrap();
    let price = U256::from(PRICE);
    let (model_a, bid_a) = chain.provider_with_bid(&provider, "kept", price).await.unwrap();
    catch_up(&mut ix).await.unwrap();

    // Fork point: everything after it will be orphaned.
    let anvil = chain.provider().unwrap();
    let snapshot: U256 = anvil.raw_request("evm_snapshot".into(), ()).await.unwrap();
    let p = provider.address();
    let allowance = Allowance::new(provider.clone());
    let orphan = model_registration(p, "orphaned", U256::from(MOR / 10));
    let (model_b, _) = allowance.spend(orphan.stake, || provider.model_register(&orphan)).await.unwrap();
    let (bid_b, _) =
        allowance.spend(U256::from(MOR / 10), || provider.post_model_bid(p, model_b, price)).await.unwrap();
    provider.delete_model_bid(bid_a).await.unwrap();
    catch_up(&mut ix).await.unwrap();
    assert!(store.models().get(model_b).await.unwrap().is_some());
    assert!(!store.bids().get(bid_a).await.unwrap().unwrap().is_active());

    // The other branch: revert, then a different and longer history.
    let reverted: bool = anvil.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    let provider = chain.sender(PROVIDER).await.unwrap(); // fresh nonce queue after the revert
    let allowance = Allowance::new(provider.clone());
    let other = model_registration(p, "winner", U256::from(MOR / 10));
    let (model_c, _) = allowance.spend(other.stake, || provider.model_register(&other)).await.unwrap();
    mine_blocks(&chain, 8).await.unwrap();

    let steps = catch_up(&mut ix).await.unwrap();
    assert!(steps.iter().any(|s| matches!(s, Step::RolledBack { to: Some(_) })), "reorg detected: {steps:?}");
    let head = anvil.get_block_number().await.unwrap();
    assert_eq!(cursor(store).await.unwrap(), head);
    assert_tables_equal_chain(&chain, store, head).await.unwrap();
    assert!(store.models().get(model_b).await.unwrap().is_none(), "orphaned model removed");
    assert!(store.bids().get(bid_b).await.unwrap().is_none(), "orphaned bid removed");
    assert!(store.bids().get(bid_a).await.unwrap().unwrap().is_active(), "orphaned delete undone");
    assert!(store.models().get(model_c).await.unwrap().is_some());
    assert!(store.models().get(model_a).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_backfill_neither_loses_nor_repeats_an_event() {
    let chain = ChainFixture::start().await.unwrap();
    let provider = chain.sender(PROVIDER).await.unwrap();
    let p = provider.address();
    let price = U256::from(PRICE);
    chain.provider_with_bid(&provider, "first", price).await.unwrap();
    let allowance = Allowance::new(provider.clone());
    for i in 0..12 {
        let registration = model_registration(p, &format!("model-{i}"), U256::from(MOR / 10));
        let (model, _) =
            allowance.spend(registration.stake, || provider.model_register(&registration)).await.unwrap();
        allowance.spend(U256::from(MOR / 10), || provider.post_model_bid(p, model, price)).await.unwrap();
    }
    let head = chain.provider().unwrap().get_block_number().await.unwrap();

    // Run with tiny ranges and stop it mid-backfill.
    let temp = TempStore::new().await.unwrap();
    let ix = indexer(&chain, &temp.store, 0, 3).await.unwrap();
    let mut status = ix.status();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(ix.run(cancel.clone()));
    let middle = chain.deployment.start_block + (head - chain.deployment.start_block) / 2;
    tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(|s| s.indexed.is_some_and(|i| i >= middle)),
    )
    .await
    .expect("indexer progressed")
    .unwrap();
    cancel.cancel();
    running.await.unwrap();
    let stopped_at = cursor(&temp.store).await.unwrap();
    assert!(stopped_at < head, "stopped mid-backfill ({stopped_at} < {head})");

    // Restart on the same database file and finish.
    let store = temp.reopen().await.unwrap();
    let mut ix = indexer(&chain, &store, 0, 3).await.unwrap();
    let steps = catch_up(&mut ix).await.unwrap();
    assert!(
        matches!(steps.first(), Some(Step::Indexed { from, .. }) if *from == stopped_at + 1),
        "{steps:?}"
    );

    // Exactly the chain's logs: all diamond logs and the MOR payouts of the diamond or funding account.
    let d = &chain.deployment;
    let range = |f: Filter| f.from_block(d.start_block).to_block(head);
    let rpc = chain.provider().unwrap();
    let mut expected: Vec<(u64, u64)> = rpc
        .get_logs(&range(Filter::new().address(d.diamond)))
        .await
        .unwrap()
        .into_iter()
        .chain(
            rpc.get_logs(
                &range(Filter::new().address(d.mor_token))
                    .event_signature(MorpheusToken::Transfer::SIGNATURE_HASH)
                    .topic1(vec![d.diamond.into_word(), d.funding_account.into_word()]),
            )
            .await
            .unwrap(),
        )
        .map(|l| (l.block_number.unwrap(), l.log_index.unwrap()))
        .collect();
    expected.sort_unstable();
    let filter = EventFilter { to_block: Some(head), ..Default::default() };
    let mut stored = Vec::new();
    let mut offset = 0;
    loop {
        let page = store.indexer().events(&filter, Page::new(offset, Page::MAX_LIMIT)).await.unwrap();
        stored.extend(page.items.iter().map(|e| (e.block_number, e.log_index)));
        offset += page.items.len() as u64;
        if page.items.is_empty() || offset >= page.total {
            break;
        }
    }
    stored.sort_unstable();
    assert!(!expected.is_empty());
    assert_eq!(stored.len(), stored.iter().collect::<BTreeSet<_>>().len(), "no event twice");
    assert_eq!(stored, expected, "every log once");
    assert_tables_equal_chain(&chain, &store, head).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_failures_are_retried_forever_and_reported_in_the_status() {
    let chain = ChainFixture::start().await.unwrap();
    let temp = TempStore::new().await.unwrap();
    let mut ix = indexer(&chain, &temp.store, 0, 50).await.unwrap();
    catch_up(&mut ix).await.unwrap();
    let mut status = ix.status();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(ix.run(cancel.clone()));

    // The only RPC node goes away: the indexer keeps running, counting and reporting the failures.
    let ChainFixture { anvil, .. } = chain;
    drop(anvil);
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| s.consecutive_errors >= 3))
        .await
        .expect("failures reported")
        .unwrap();
    let last = status.borrow().clone();
    assert!(last.last_error.is_some(), "the error is published: {last:?}");
    assert!(!running.is_finished(), "the indexer is still running");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("stops when cancelled").unwrap();
}
