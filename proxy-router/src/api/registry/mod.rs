//! The registry resources (go-proxy-router.md §1.1): providers, models and bids.
//!
//! - [`providers`]: `GET/POST /blockchain/providers`, `DELETE /blockchain/providers/{id}`,
//!   `GET /blockchain/providers/{id}/bids[/active]`;
//! - [`models`]: `GET/POST /blockchain/models`, `DELETE /blockchain/models/{id}`,
//!   `GET /blockchain/models/{id}/bids[/active|/rated]`;
//! - [`bids`]: `POST /blockchain/bids`, `GET/DELETE /blockchain/bids/{id}`.
//!
//! Reads come from the store (the indexer keeps it equal to the chain), so they never wait on an RPC
//! node. Writes go through the wallet's [`Signer`](crate::chain::Signer): MOR spends first reserve
//! their amount with the allowance manager, and every write answers after its receipt. What a write
//! created is then read **from the chain at the receipt's block** (the indexer may not have seen it
//! yet), and deletions are checked on chain first, so a missing entity answers 404 and an entity
//! already deleted 409 without spending gas; anything else the contract refuses comes back as 422
//! with the decoded revert in `reason`.
//!
//! Lists take `offset`, `limit` and `order` ([`PageQuery`](crate::api::wire::PageQuery)); providers and models list every row by
//! default (`limit` absent or 0), the bid lists 10. Providers and models lists hold active entries
//! only, as the reference's (it pages `getActiveProviders` / `getActiveModelIds`); bid lists hold every
//! bid, their `/active` variants the bids not deleted.

pub mod bids;
pub mod models;
pub mod providers;

#[cfg(test)]
mod tests;

use std::future::Future;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::wire::{BidJson, ModelJson, ModelType, ProviderJson, TxResponse};
use super::{guard, ApiState, AuthStore, ChainAccess, Permission};
use crate::chain::bindings::{Marketplace, ModelRegistry, ProviderRegistry};
use crate::chain::ChainError;
use crate::index::convert;
use crate::store::{self, Page, Paged, StoreError};

/// The registry routes, each behind its reference permission.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission::*;
    Router::new()
        .route(
            "/blockchain/providers",
            guard(auth, GetProviders, get(providers::list)).merge(guard(
                auth,
                CreateProvider,
                post(providers::create),
            )),
        )
        .route("/blockchain/providers/{id}", guard(auth, DeleteProvider, delete(providers::remove)))
        .route("/blockchain/providers/{id}/bids", guard(auth, GetBids, get(providers::bids)))
        .route("/blockchain/providers/{id}/bids/active", guard(auth, GetBids, get(providers::active_bids)))
        .route(
            "/blockchain/models",
            guard(auth, GetModels, get(models::list)).merge(guard(auth, CreateModel, post(models::create))),
        )
        .route("/blockchain/models/{id}", guard(auth, DeleteModel, delete(models::remove)))
        .route("/blockchain/models/{id}/bids", guard(auth, GetBids, get(models::bids)))
        .route("/blockchain/models/{id}/bids/active", guard(auth, GetBids, get(models::active_bids)))
        .route("/blockchain/models/{id}/bids/rated", guard(auth, GetBids, get(models::rated_bids)))
        .route("/blockchain/bids", guard(auth, CreateBid, post(bids::create)))
        .route(
            "/blockchain/bids/{id}",
            guard(auth, GetBids, get(bids::get)).merge(guard(auth, DeleteBids, delete(bids::remove))),
        )
}

/// The registry routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        providers::list,
        providers::create,
        providers::remove,
        providers::bids,
        providers::active_bids,
        models::list,
        models::create,
        models::remove,
        models::bids,
        models::active_bids,
        models::rated_bids,
        bids::create,
        bids::get,
        bids::remove,
    ),
    components(schemas(
        ProviderJson,
        ModelJson,
        ModelType,
        BidJson,
        TxResponse,
        ErrorBody,
        ProvidersResponse,
        ProviderResponse,
        ModelsResponse,
        ModelResponse,
        BidsResponse,
        BidResponse,
        ScoredBidJson,
        RatedBidsResponse,
        providers::CreateProviderRequest,
        models::CreateModelRequest,
        bids::CreateBidRequest,
    )),
    tags(
        (name = "providers", description = "Provider registry: list, register, deregister, provider bids"),
        (name = "models", description = "Model registry: list, register, deregister, model bids and rating"),
        (name = "bids", description = "Marketplace bids: post, read, delete"),
    )
)]
pub struct Doc;

/// `{"providers": [Provider]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvidersResponse {
    /// Active providers.
    pub providers: Vec<ProviderJson>,
}

/// `{"provider": Provider}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderResponse {
    /// The provider as the chain holds it after the transaction.
    pub provider: ProviderJson,
}

/// `{"models": [Model]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// Active models.
    pub models: Vec<ModelJson>,
}

/// `{"model": Model}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelResponse {
    /// The model as the chain holds it after the transaction.
    pub model: ModelJson,
}

/// `{"bids": [Bid]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidsResponse {
    /// Bids.
    pub bids: Vec<BidJson>,
}

/// `{"bid": Bid}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidResponse {
    /// The bid.
    pub bid: BidJson,
}

/// The reference's `structs.ScoredBid`: `{"ID", "Bid", "Score"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoredBidJson {
    /// The bid's id (the reference leaves it the zero hash; we fill it).
    #[serde(rename = "ID")]
    #[schema(value_type = String)]
    pub id: B256,
    /// The bid.
    #[serde(rename = "Bid")]
    pub bid: BidJson,
    /// Its score: higher is better (see `consumer::rating`).
    #[serde(rename = "Score")]
    pub score: f64,
}

/// `{"bids": [ScoredBid]}`, best first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RatedBidsResponse {
    /// Active bids of the model with their scores, by descending score.
    pub bids: Vec<ScoredBidJson>,
}

/// The rows of `page`, or with `limit = None` every row from `page.offset` on, fetched
/// [`Page::MAX_LIMIT`] at a time.
pub(crate) async fn collect<T, F, Fut>(page: Page, limit: Option<u64>, fetch: F) -> Result<Vec<T>, ApiError>
where
    F: Fn(Page) -> Fut,
    Fut: Future<Output = Result<Paged<T>, StoreError>>,
{
    if limit.is_some() {
        return Ok(fetch(page).await?.items);
    }
    let mut rows = Vec::new();
    let mut offset = page.offset;
    loop {
        let chunk = fetch(Page { offset, limit: Page::MAX_LIMIT, ..page }).await?;
        let fetched = chunk.items.len() as u64;
        rows.extend(chunk.items);
        offset = offset.saturating_add(fetched);
        if fetched == 0 || offset >= chunk.total {
            return Ok(rows);
        }
    }
}

/// `block`, or the latest block.
fn block_id(block: Option<u64>) -> BlockId {
    block.map_or(BlockId::latest(), BlockId::number)
}

/// The provider `address` as the chain holds it (at `block`, else the latest), `None` if it never
/// registered.
pub(crate) async fn chain_provider(
    chain: &ChainAccess,
    address: Address,
    block: Option<u64>,
) -> Result<Option<store::Provider>, ApiError> {
    let registry = ProviderRegistry::new(chain.diamond, chain.rpc.provider());
    let p = registry
        .getProvider(address)
        .block(block_id(block))
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getProvider", e))?;
    Ok((p.createdAt != 0).then(|| convert::provider(address, p)))
}

/// The model `id` as the chain holds it (at `block`, else the latest), `None` if it never existed.
pub(crate) async fn chain_model(
    chain: &ChainAccess,
    id: B256,
    block: Option<u64>,
) -> Result<Option<store::Model>, ApiError> {
    let registry = ModelRegistry::new(chain.diamond, chain.rpc.provider());
    let m = registry
        .getModel(id)
        .block(block_id(block))
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getModel", e))?;
    Ok((m.createdAt != 0).then(|| convert::model(id, m)))
}

/// The bid `id` as the chain holds it (at `block`, else the latest), `None` if it never existed.
pub(crate) async fn chain_bid(
    chain: &ChainAccess,
    id: B256,
    block: Option<u64>,
) -> Result<Option<store::Bid>, ApiError> {
    let marketplace = Marketplace::new(chain.diamond, chain.rpc.provider());
    let b = marketplace
        .getBid(id)
        .block(block_id(block))
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getBid", e))?;
    Ok((b.createdAt != 0).then(|| convert::bid(id, b)))
}

/// 502 for a write whose receipt arrived but whose result the chain does not show at that block
/// (an RPC node behind the one that returned the receipt).
pub(crate) fn not_visible(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "rpc_inconsistent",
        format!("the transaction was mined but the RPC node does not show {what} yet; read it again shortly"),
    )
}
