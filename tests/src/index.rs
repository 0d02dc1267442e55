//! The indexer on a real anvil: a store in a temporary directory, an [`Indexer`] over the router's RPC
//! client, and a check that the store's tables equal the chain at a block.

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::primitives::U256;
use anyhow::{bail, Context};
use proxy_router::chain::bindings::{Marketplace, ModelRegistry, ProviderRegistry, SessionRouter};
use proxy_router::index::{read_entities, Indexer, IndexerOptions, Step};
use proxy_router::store::{BidFilter, EntityRef, ModelFilter, Page, ProviderFilter, SessionFilter, Store};
use tempfile::TempDir;

use crate::chain::ChainFixture;

/// Largest number of steps [`catch_up`] takes before it gives up.
const MAX_STEPS: usize = 10_000;

/// A store in a fresh temporary directory (removed on drop).
pub struct TempStore {
    /// The store.
    pub store: Store,
    /// Its directory.
    pub dir: TempDir,
}

impl TempStore {
    /// Opens a store in a new temporary directory.
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path()).await?;
        Ok(Self { store, dir })
    }

    /// Opens the same directory again (a restart).
    pub async fn reopen(&self) -> anyhow::Result<Store> {
        Ok(Store::open(self.dir.path()).await?)
    }
}

/// Indexer options for the fixture's contracts.
pub fn options(chain: &ChainFixture, confirmations: u64, block_range: u64) -> IndexerOptions {
    IndexerOptions {
        chain_id: chain.config.chain_id,
        diamond: chain.deployment.diamond,
        token: chain.deployment.mor_token,
        start_block: chain.deployment.start_block,
        confirmations,
        block_range,
        polling_interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// An indexer over the router's RPC client (failover transport) writing to `store`.
pub async fn indexer(
    chain: &ChainFixture,
    store: &Store,
    confirmations: u64,
    block_range: u64,
) -> anyhow::Result<Indexer> {
    let rpc = chain.rpc().await?;
    Ok(Indexer::new(rpc.provider().clone(), store.clone(), options(chain, confirmations, block_range))
        .await?)
}

/// Steps until the indexer reports it is caught up; returns the steps taken.
pub async fn catch_up(indexer: &mut Indexer) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    for _ in 0..MAX_STEPS {
        let step = indexer.step().await?;
        let done = matches!(step, Step::CaughtUp { .. });
        steps.push(step);
        if done {
            return Ok(steps);
        }
    }
    bail!("the indexer did not catch up within {MAX_STEPS} steps")
}

/// Mines `blocks` empty blocks.
pub async fn mine_blocks(chain: &ChainFixture, blocks: u64) -> anyhow::Result<()> {
    for _ in 0..blocks {
        chain.mine().await?;
    }
    Ok(())
}

/// Every id the diamond can enumerate at `block`: all models, their bids and sessions, the bids'
/// providers and the active providers.
async fn chain_entities(chain: &ChainFixture, block: u64) -> anyhow::Result<BTreeSet<EntityRef>> {
    let provider = chain.provider()?;
    let diamond = chain.deployment.diamond;
    let at = alloy::eips::BlockId::number(block);
    let all = U256::from(1_000_000u64);
    let mut out = BTreeSet::new();

    let models = ModelRegistry::new(diamond, &provider).getModelIds(U256::ZERO, all).block(at).call().await?;
    let providers = ProviderRegistry::new(diamond, &provider)
        .getActiveProviders(U256::ZERO, all)
        .block(at)
        .call()
        .await?;
    out.extend(providers._0.into_iter().map(EntityRef::Provider));
    for model in models._0 {
        out.insert(EntityRef::Model(model));
        let bids = Marketplace::new(diamond, &provider)
            .getModelBids(model, U256::ZERO, all)
            .block(at)
            .call()
            .await?;
        for bid in bids._0 {
            out.insert(EntityRef::Bid(bid));
            let b = Marketplace::new(diamond, &provider).getBid(bid).block(at).call().await?;
            out.insert(EntityRef::Provider(b.provider));
            out.insert(EntityRef::ProviderModelStats { model_id: model, provider: b.provider });
        }
        out.insert(EntityRef::ModelStats(model));
        let sessions = SessionRouter::new(diamond, &provider)
            .getModelSessions(model, U256::ZERO, all)
            .block(at)
            .call()
            .await?;
        out.extend(sessions._0.into_iter().map(EntityRef::Session));
    }
    Ok(out)
}

/// Every entity the store holds.
async fn store_entities(store: &Store) -> anyhow::Result<BTreeSet<EntityRef>> {
    let mut out = BTreeSet::new();
    let page = Page::new(0, Page::MAX_LIMIT);
    for p in store.providers().list(ProviderFilter::default(), page).await?.items {
        out.insert(EntityRef::Provider(p.address));
        for s in store.stats().by_provider(p.address, page).await?.items {
            out.insert(EntityRef::ProviderModelStats { model_id: s.model_id, provider: s.provider });
        }
    }
    for m in store.models().list(ModelFilter::default(), page).await?.items {
        out.insert(EntityRef::Model(m.id));
        if store.stats().model(m.id).await?.is_some() {
            out.insert(EntityRef::ModelStats(m.id));
        }
    }
    out.extend(
        store.bids().list(BidFilter::default(), page).await?.items.into_iter().map(|b| EntityRef::Bid(b.id)),
    );
    out.extend(
        store
            .sessions()
            .list(SessionFilter::default(), page)
            .await?
            .items
            .into_iter()
            .map(|s| EntityRef::Session(s.id)),
    );
    Ok(out)
}

/// Fails unless every entity the store holds or the diamond enumerates has, in the store, exactly the
/// state the diamond returns at `block` (absent when the diamond does not know it).
pub async fn assert_tables_equal_chain(
    chain: &ChainFixture,
    store: &Store,
    block: u64,
) -> anyhow::Result<()> {
    let mut entities = chain_entities(chain, block).await?;
    entities.extend(store_entities(store).await?);
    let expected = read_entities(&chain.provider()?, chain.deployment.diamond, &entities, block).await?;

    for p in &expected.providers {
        let got = store.providers().get(p.address).await?;
        anyhow::ensure!(got.as_ref() == Some(p), "provider {}: store {got:?}, chain {p:?}", p.address);
    }
    for m in &expected.models {
        let got = store.models().get(m.id).await?;
        anyhow::ensure!(got.as_ref() == Some(m), "model {}: store {got:?}, chain {m:?}", m.id);
    }
    for b in &expected.bids {
        let got = store.bids().get(b.id).await?;
        anyhow::ensure!(got.as_ref() == Some(b), "bid {}: store {got:?}, chain {b:?}", b.id);
    }
    for s in &expected.sessions {
        let got = store.sessions().get(s.id).await?;
        anyhow::ensure!(got.as_ref() == Some(s), "session {}: store {got:?}, chain {s:?}", s.id);
    }
    for s in &expected.provider_model_stats {
        let got = store.stats().provider_model(s.model_id, s.provider).await?;
        anyhow::ensure!(
            got.as_ref() == Some(s),
            "stats {}/{}: store {got:?}, chain {s:?}",
            s.model_id,
            s.provider
        );
    }
    for s in &expected.model_stats {
        let got = store.stats().model(s.model_id).await?;
        anyhow::ensure!(got.as_ref() == Some(s), "model stats {}: store {got:?}, chain {s:?}", s.model_id);
    }
    for removed in &expected.removed {
        let present = match *removed {
            EntityRef::Provider(a) => store.providers().get(a).await?.is_some(),
            EntityRef::Model(id) => store.models().get(id).await?.is_some(),
            EntityRef::Bid(id) => store.bids().get(id).await?.is_some(),
            EntityRef::Session(id) => store.sessions().get(id).await?.is_some(),
            EntityRef::ProviderModelStats { model_id, provider } => {
                store.stats().provider_model(model_id, provider).await?.is_some()
            }
            EntityRef::ModelStats(id) => store.stats().model(id).await?.is_some(),
        };
        anyhow::ensure!(!present, "{removed} is in the store but not on chain at block {block}");
    }
    Ok(())
}

/// The indexed cursor block number.
pub async fn cursor(store: &Store) -> anyhow::Result<u64> {
    Ok(store.indexer().cursor().await?.context("the index is empty")?.number)
}
