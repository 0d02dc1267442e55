//! The marketplace's models as the gateway names them ([`Catalog`]): every active model of the chain
//! index with its active bid count and lowest price per second.
//!
//! A client names a model by its on-chain name or its `0x` id. On-chain names are not unique: a name
//! shared by several models means the one with the most active bids (then the oldest); the others
//! are reachable by id. The catalog is rebuilt from the store when the indexer's cursor has moved
//! since it was built, so it is never older than the index, and costs nothing while the chain is
//! quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use alloy::primitives::{Address, B256, U256};
use tokio::sync::watch;

use crate::index::IndexerStatus;
use crate::store::{BidFilter, ModelFilter, Page, Store, StoreError};

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    /// The on-chain model id.
    pub id: B256,
    /// Its on-chain name.
    pub name: String,
    /// Its owner.
    pub owner: Address,
    /// When it was registered (unix seconds).
    pub created_at: u64,
    /// Active bids on it.
    pub bids: u64,
    /// The lowest active bid's price, wei per second.
    pub min_price_per_second: Option<U256>,
}

/// A snapshot of the catalog.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every active model, oldest first.
    pub models: Vec<CatalogModel>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<B256, usize>,
}

impl Snapshot {
    fn new(models: Vec<CatalogModel>) -> Self {
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, model) in models.iter().enumerate() {
            by_id.insert(model.id, i);
            match by_name.get(&model.name) {
                Some(&j) if models[j].bids >= model.bids => {}
                _ => {
                    by_name.insert(model.name.clone(), i);
                }
            }
        }
        Self { models, by_name, by_id }
    }

    /// The model `name_or_id` names: an exact on-chain name, or a `0x` id (any case).
    pub fn resolve(&self, name_or_id: &str) -> Option<&CatalogModel> {
        if let Some(&i) = self.by_name.get(name_or_id) {
            return Some(&self.models[i]);
        }
        let id = parse_id(name_or_id)?;
        self.by_id.get(&id).map(|&i| &self.models[i])
    }

    /// Whether `model` is the one its name resolves to (the others are listed by id).
    pub fn is_named(&self, model: &CatalogModel) -> bool {
        self.by_name.get(&model.name).is_some_and(|&i| self.models[i].id == model.id)
    }
}

/// A `0x`-prefixed 32-byte hex id.
pub fn parse_id(text: &str) -> Option<B256> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
    if digits.len() != 64 {
        return None;
    }
    digits.parse().ok()
}

/// The catalog, rebuilt when the index moves. Cheap to share.
#[derive(Debug)]
pub struct Catalog {
    store: Store,
    indexer: watch::Receiver<IndexerStatus>,
    cached: Mutex<Option<(Option<u64>, Arc<Snapshot>)>>,
}

impl Catalog {
    /// The catalog of `store`'s index, whose progress `indexer` reports.
    pub fn new(store: Store, indexer: watch::Receiver<IndexerStatus>) -> Self {
        Self { store, indexer, cached: Mutex::new(None) }
    }

    /// The current snapshot (rebuilt first if the index moved since the last one).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        let indexed = self.indexer.borrow().indexed;
        if let Some((at, snapshot)) = self.cached.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            if *at == indexed {
                return Ok(Arc::clone(snapshot));
            }
        }
        let snapshot = Arc::new(Snapshot::new(self.build().await?));
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((indexed, Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    async fn build(&self) -> Result<Vec<CatalogModel>, StoreError> {
        let mut models = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .store
                .models()
                .list(ModelFilter { active_only: true, owner: None }, Page::new(offset, Page::MAX_LIMIT))
                .await?;
            let fetched = page.items.len() as u64;
            models.extend(page.items);
            offset += fetched;
            if fetched == 0 || offset >= page.total {
                break;
            }
        }
        let mut out = Vec::with_capacity(models.len());
        for model in models {
            let (bids, min_price) = self.bid_summary(model.id).await?;
            out.push(CatalogModel {
                id: model.id,
                name: model.name,
                owner: model.owner,
                created_at: model.created_at,
                bids,
                min_price_per_second: min_price,
            });
        }
        out.sort_by_key(|m| (m.created_at, m.id));
        Ok(out)
    }

    async fn bid_summary(&self, model_id: B256) -> Result<(u64, Option<U256>), StoreError> {
        let filter = BidFilter { active_only: true, provider: None, model_id: Some(model_id) };
        let mut count = 0;
        let mut min: Option<U256> = None;
        let mut offset = 0;
        loop {
            let page = self.store.bids().list(filter, Page::new(offset, Page::MAX_LIMIT)).await?;
            let fetched = page.items.len() as u64;
            for bid in &page.items {
                count += 1;
                min = Some(min.map_or(bid.price_per_second, |m| m.min(bid.price_per_second)));
            }
            offset += fetched;
            if fetched == 0 || offset >= page.total {
                break;
            }
        }
        Ok((count, min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: u8, name: &str, bids: u64, created_at: u64) -> CatalogModel {
        CatalogModel {
            id: B256::repeat_byte(id),
            name: name.into(),
            owner: Address::ZERO,
            created_at,
            bids,
            min_price_per_second: None,
        }
    }

    #[test]
    fn names_resolve_to_the_model_with_most_bids_and_ids_to_their_model() {
        let snapshot =
            Snapshot::new(vec![model(1, "llama", 1, 1), model(2, "llama", 3, 2), model(3, "qwen", 0, 3)]);
        assert_eq!(snapshot.resolve("llama").unwrap().id, B256::repeat_byte(2));
        let first = format!("{:#x}", B256::repeat_byte(1));
        assert_eq!(snapshot.resolve(&first).unwrap().id, B256::repeat_byte(1));
        assert_eq!(
            snapshot.resolve(&first.to_uppercase().replace("0X", "0x")).unwrap().id,
            B256::repeat_byte(1)
        );
        assert!(snapshot.resolve("mistral").is_none());
        assert!(snapshot.resolve("0x1234").is_none());
        assert!(snapshot.is_named(&snapshot.models[1]) && !snapshot.is_named(&snapshot.models[0]));
    }
}
