//! `/blockchain/models`: list the active models, register one owned by the node's wallet, deregister
//! one, list a model's bids and rate its active bids.

use std::collections::HashMap;

use alloy::primitives::{B256, U256};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use rand::RngExt as _;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::{
    chain_model, collect, not_visible, BidsResponse, ModelResponse, ModelsResponse, RatedBidsResponse,
    ScoredBidJson,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::wire::{
    b256_from_hex, hex32, parse_b256, BidJson, BigInt, LimitDefault, ModelJson, ModelType, PageQuery,
    TxResponse,
};
use crate::api::ApiState;
use crate::chain::bindings::ProviderRegistry;
use crate::chain::sender::ModelRegistration;
use crate::chain::ChainError;
use crate::consumer::rating::{self, Candidate, ModelSpread, PairStats, ScoreInput};
use crate::store::{BidFilter, ModelFilter, Page};

/// Longest model name and longest tag, in characters (the reference's validation).
pub const MAX_NAME_LEN: usize = 64;

/// `POST /blockchain/models` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateModelRequest {
    /// The owner's base id (32 bytes hex); random when absent. The model id is
    /// `keccak256(owner ‖ id)`.
    #[serde(default, deserialize_with = "opt_hex32")]
    #[schema(value_type = Option<String>, example = "0x0000000000000000000000000000000000000000000000000000000000000001")]
    pub id: Option<B256>,
    /// IPFS CID of the model card (32 bytes hex).
    #[serde(rename = "ipfsID", deserialize_with = "hex32::deserialize")]
    #[schema(value_type = String, example = "0x0000000000000000000000000000000000000000000000000000000000000002")]
    pub ipfs_id: B256,
    /// Declared fee (informational on chain).
    pub fee: BigInt,
    /// MOR wei to stake (at least the model minimum stake).
    pub stake: BigInt,
    /// Display name, 1 to 64 characters.
    #[schema(example = "llama-3-8b")]
    pub name: String,
    /// Tags, 1 to 64 characters each; one must name a model type (`llm`, `stt`, `tts`, `embedding`
    /// or a synonym).
    #[schema(example = json!(["llm", "tee"]))]
    pub tags: Vec<String>,
}

/// An optional `0x` hash of exactly 32 bytes (`null` or absent: none).
fn opt_hex32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<B256>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| b256_from_hex(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// Active models, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/models",
    tag = "models",
    operation_id = "listModels",
    params(PageQuery),
    responses(
        (status = 200, description = "Active models (every one unless `limit` is given)", body = super::ModelsResponse),
        (status = 400, description = "Bad `offset`, `limit` or `order`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_models`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<ModelsResponse>, ApiError> {
    let Query(query) = query?;
    let (page, limit) = query.page(LimitDefault::All)?;
    let filter = ModelFilter { active_only: true, owner: None };
    let repo = state.store.models();
    let rows = collect(page, limit, |p| repo.list(filter, p)).await?;
    Ok(Json(ModelsResponse { models: rows.iter().map(ModelJson::from).collect() }))
}

/// Registers (or updates and tops up) a model owned by the node's wallet. Raises the MOR allowance by
/// what is missing for `stake` first. Answers the model as the chain holds it after the transaction.
#[utoipa::path(
    post,
    path = "/blockchain/models",
    tag = "models",
    operation_id = "createModel",
    request_body = CreateModelRequest,
    responses(
        (status = 200, description = "Registered; the model read from the chain", body = super::ModelResponse),
        (status = 400, description = "A bad field (`ipfsID`, `fee`, `stake`, `name`, `tags`…), named in `field`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `create_model`", body = ErrorBody),
        (status = 422, description = "The contract refused, e.g. `ModelStakeTooLow` in `reason`", body = ErrorBody),
        (status = 503, description = "No chain connection or no wallet", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateModelRequest>, JsonRejection>,
) -> Result<Json<ModelResponse>, ApiError> {
    let Json(request) = body?;
    let name = request.name.trim().to_owned();
    check_length("name", &name)?;
    if request.tags.is_empty() {
        return Err(ApiError::bad_request("tags", "at least one tag is required"));
    }
    let tags: Vec<String> = request.tags.iter().map(|t| t.trim().to_owned()).collect();
    for (i, tag) in tags.iter().enumerate() {
        check_length(&format!("tags[{i}]"), tag)?;
    }
    if ModelType::from_tags(&tags) == ModelType::Unknown {
        return Err(ApiError::bad_request(
            "tags",
            "no tag names a model type: add one of llm, stt, tts, embedding (or a synonym such as \
             text-to-text, speech-to-text, text-to-speech, embeddings)",
        ));
    }
    let chain = state.chain()?;
    let signer = state.signer()?;
    let me = signer.address();
    let base_id = request.id.unwrap_or_else(random_id);
    let registration = ModelRegistration {
        owner: me,
        base_id,
        ipfs_cid: request.ipfs_id,
        fee: request.fee.0,
        stake: request.stake.0,
        name,
        tags,
    };
    let (id, receipt) =
        signer.allowance.spend(registration.stake, || signer.sender.model_register(&registration)).await?;
    let model = chain_model(chain, id, receipt.block_number)
        .await?
        .ok_or_else(|| not_visible(format_args!("model {id}")))?;
    Ok(Json(ModelResponse { model: ModelJson::from(&model) }))
}

fn check_length(field: &str, value: &str) -> Result<(), ApiError> {
    match value.chars().count() {
        0 => Err(ApiError::bad_request(field, "must not be empty")),
        n if n > MAX_NAME_LEN => {
            Err(ApiError::bad_request(field, format!("{n} characters, at most {MAX_NAME_LEN} allowed")))
        }
        _ => Ok(()),
    }
}

/// A random 32-byte base id (the reference's default).
fn random_id() -> B256 {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    B256::from(bytes)
}

/// Deregisters a model and refunds its stake to the owner. The contract refuses while the model has
/// active bids, and for a wallet that is neither the owner nor its delegate.
#[utoipa::path(
    delete,
    path = "/blockchain/models/{id}",
    tag = "models",
    operation_id = "deleteModel",
    params(("id" = String, Path, description = "Model id (32 bytes hex)")),
    responses(
        (status = 200, description = "Deregistered", body = TxResponse),
        (status = 400, description = "Bad `id`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `delete_model`", body = ErrorBody),
        (status = 404, description = "No such model on chain", body = ErrorBody),
        (status = 409, description = "Already deregistered", body = ErrorBody),
        (status = 422, description = "The contract refused, e.g. `ModelHasActiveBids` in `reason`", body = ErrorBody),
        (status = 503, description = "No chain connection or no wallet", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let Path(id) = path?;
    let id = parse_b256("id", &id)?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    match chain_model(chain, id, None).await? {
        None => return Err(ApiError::not_found(format_args!("model {id}"))),
        Some(m) if m.is_deleted => {
            return Err(ApiError::conflict(format!("model {id} is already deregistered")))
        }
        Some(_) => {}
    }
    let receipt = signer.sender.model_deregister(id).await?;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}

/// Every bid on a model, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/models/{id}/bids",
    tag = "models",
    operation_id = "listModelBids",
    params(("id" = String, Path, description = "Model id (32 bytes hex)"), PageQuery),
    responses(
        (status = 200, description = "The model's bids, deleted ones included (10 unless `limit` is given)", body = super::BidsResponse),
        (status = 400, description = "Bad `id`, `offset`, `limit` or `order`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_bids`", body = ErrorBody),
    )
)]
pub async fn bids(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<BidsResponse>, ApiError> {
    model_bids(state, path, query, false).await
}

/// The active bids on a model, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/models/{id}/bids/active",
    tag = "models",
    operation_id = "listModelActiveBids",
    params(("id" = String, Path, description = "Model id (32 bytes hex)"), PageQuery),
    responses(
        (status = 200, description = "The model's bids not deleted (10 unless `limit` is given)", body = super::BidsResponse),
        (status = 400, description = "Bad `id`, `offset`, `limit` or `order`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_bids`", body = ErrorBody),
    )
)]
pub async fn active_bids(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<BidsResponse>, ApiError> {
    model_bids(state, path, query, true).await
}

async fn model_bids(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
    active_only: bool,
) -> Result<Json<BidsResponse>, ApiError> {
    let Path(id) = path?;
    let Query(query) = query?;
    let model_id = parse_b256("id", &id)?;
    let (page, limit) = query.page(LimitDefault::Rows(10))?;
    let filter = BidFilter { active_only, provider: None, model_id: Some(model_id) };
    let repo = state.store.bids();
    let rows = collect(page, limit, |p| repo.list(filter, p)).await?;
    Ok(Json(BidsResponse { bids: rows.iter().map(BidJson::from).collect() }))
}

/// Every active bid on a model, scored by the rating configuration (the default scorer: provider
/// statistics on the model against the model's, success ratio and provider stake, divided by the
/// price) and sorted by descending score. Bids of providers outside the allowlist and bids with a
/// zero price are left out. Statistics and stakes come from the local index, the minimum provider
/// stake from the chain.
#[utoipa::path(
    get,
    path = "/blockchain/models/{id}/bids/rated",
    tag = "models",
    operation_id = "listModelRatedBids",
    params(("id" = String, Path, description = "Model id (32 bytes hex)")),
    responses(
        (status = 200, description = "Scored active bids, best first", body = super::RatedBidsResponse),
        (status = 400, description = "Bad `id`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_bids`", body = ErrorBody),
        (status = 503, description = "No chain connection (the minimum stake is read from it)", body = ErrorBody),
    )
)]
pub async fn rated_bids(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RatedBidsResponse>, ApiError> {
    let Path(id) = path?;
    let model_id = parse_b256("id", &id)?;
    let chain = state.chain()?;
    let min_stake = ProviderRegistry::new(chain.diamond, chain.rpc.provider())
        .getProviderMinimumStake()
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getProviderMinimumStake", e))?;

    let store = &state.store;
    let filter = BidFilter { active_only: true, provider: None, model_id: Some(model_id) };
    let repo = store.bids();
    let bids = collect(Page::new(0, Page::MAX_LIMIT), None, |p| repo.list(filter, p)).await?;
    let model = store.stats().model(model_id).await?.as_ref().map(ModelSpread::from).unwrap_or_default();

    let mut candidates = Vec::with_capacity(bids.len());
    let mut stakes: HashMap<_, U256> = HashMap::new();
    for bid in &bids {
        let provider_stake = match stakes.get(&bid.provider) {
            Some(stake) => *stake,
            None => {
                let stake = store.providers().get(bid.provider).await?.map(|p| p.stake).unwrap_or_default();
                stakes.insert(bid.provider, stake);
                stake
            }
        };
        let provider_model =
            store.stats().provider_model(model_id, bid.provider).await?.as_ref().map(PairStats::from);
        candidates.push(Candidate {
            bid_id: bid.id,
            provider: bid.provider,
            input: ScoreInput {
                provider_model: provider_model.unwrap_or_default(),
                model,
                provider_stake,
                min_stake,
                price_per_second: bid.price_per_second,
            },
        });
    }
    let by_id: HashMap<B256, &crate::store::Bid> = bids.iter().map(|b| (b.id, b)).collect();
    let scored = rating::rate(&state.rating, &candidates)
        .into_iter()
        .filter_map(|r| {
            by_id.get(&r.bid_id).map(|bid| ScoredBidJson {
                id: r.bid_id,
                bid: BidJson::from(*bid),
                score: r.score,
            })
        })
        .collect();
    Ok(Json(RatedBidsResponse { bids: scored }))
}
