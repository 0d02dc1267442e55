//! Indexer backfill throughput against a real anvil with our contracts: a benchmark, not a test.
//!
//! Fills the chain with `MODELS` models and bids (two diamond logs each) from concurrent writers, then
//! backfills a fresh store `RUNS` times in `BLOCK_RANGE`-block ranges and prints logs per second (the
//! median run). Run: `cargo bench -p e2e-tests --bench indexer_backfill`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use alloy::primitives::U256;
use alloy::providers::Provider;
use e2e_tests::chain::{model_registration, ChainFixture, MOR};
use e2e_tests::index::{catch_up, indexer, TempStore};
use futures::stream::{self, StreamExt};
use proxy_router::chain::Allowance;
use proxy_router::index::Step;

const MODELS: usize = 300;
const WRITERS: usize = 8;
const BLOCK_RANGE: u64 = 2000;
const RUNS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let chain = ChainFixture::start().await.unwrap();
    let provider = chain.sender(2).await.unwrap();
    let p = provider.address();
    let price = U256::from(10_000_000_000_000u64);
    chain.provider_with_bid(&provider, "first", price).await.unwrap();
    chain.give_mor(p, U256::from(200 * MOR)).await.unwrap();
    let allowance = Allowance::new(provider.clone());

    let started = Instant::now();
    stream::iter(0..MODELS)
        .for_each_concurrent(WRITERS, |i| {
            let (provider, allowance) = (provider.clone(), allowance.clone());
            async move {
                let registration = model_registration(p, &format!("bench-{i}"), U256::from(MOR / 10));
                let (model, _) = allowance
                    .spend(registration.stake, || provider.model_register(&registration))
                    .await
                    .unwrap();
                allowance
                    .spend(U256::from(MOR / 10), || provider.post_model_bid(p, model, price))
                    .await
                    .unwrap();
            }
        })
        .await;
    let head = chain.provider().unwrap().get_block_number().await.unwrap();
    println!(
        "filled the chain: {} models and bids in {:.1}s, head at block {head}",
        MODELS + 1,
        started.elapsed().as_secs_f64()
    );

    let mut rates = Vec::new();
    for run in 1..=RUNS {
        let temp = TempStore::new().await.unwrap();
        let mut ix = indexer(&chain, &temp.store, 0, BLOCK_RANGE).await.unwrap();
        let started = Instant::now();
        let steps = catch_up(&mut ix).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let logs: usize =
            steps.iter().map(|s| if let Step::Indexed { events, .. } = s { *events } else { 0 }).sum();
        let blocks = head - chain.deployment.start_block + 1;
        let rate = logs as f64 / seconds;
        println!(
            "run {run}: {logs} logs over {blocks} blocks in {seconds:.3}s = {rate:.0} logs/s ({:.0} blocks/s)",
            blocks as f64 / seconds
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("indexer backfill throughput (median of {RUNS}): {:.0} logs/s", rates[RUNS / 2]);
}
