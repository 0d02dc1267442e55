//! `/blockchain/bids`: post a bid of the node's provider, read one, delete one.

use alloy::primitives::B256;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{chain_bid, chain_model, chain_provider, not_visible, BidResponse};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::wire::{hex32, lower_address, parse_b256, BidJson, BigInt, TxResponse};
use crate::api::ApiState;
use crate::chain::bindings::Marketplace;
use crate::chain::ChainError;

/// `POST /blockchain/bids` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateBidRequest {
    /// The model to bid on (32 bytes hex).
    #[serde(rename = "modelID", deserialize_with = "hex32::deserialize")]
    #[schema(value_type = String, example = "0x6a4813e866a48da528c533e706344ea853a1d3f21e37b4c8e7ffd5ff25779018")]
    pub model_id: B256,
    /// MOR wei per second, within the marketplace's minimum and maximum.
    #[serde(rename = "pricePerSecond")]
    pub price_per_second: BigInt,
}

/// Posts a bid of the node's provider on a model; it replaces the provider's previous active bid on
/// that model. Raises the MOR allowance by what is missing for the bid fee first. Answers the bid as
/// the chain holds it after the transaction.
#[utoipa::path(
    post,
    path = "/blockchain/bids",
    tag = "bids",
    operation_id = "createBid",
    request_body = CreateBidRequest,
    responses(
        (status = 200, description = "Posted; the bid read from the chain", body = super::BidResponse),
        (status = 400, description = "Bad `modelID` or `pricePerSecond`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `create_bid`", body = ErrorBody),
        (status = 404, description = "The model does not exist or is deregistered", body = ErrorBody),
        (status = 409, description = "The node's wallet is not a registered provider", body = ErrorBody),
        (status = 422, description = "The contract refused, e.g. `MarketplaceBidPricePerSecondInvalid` in `reason`", body = ErrorBody),
        (status = 503, description = "No chain connection or no wallet", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateBidRequest>, JsonRejection>,
) -> Result<Json<BidResponse>, ApiError> {
    let Json(request) = body?;
    let price = request.price_per_second.0;
    if price.is_zero() {
        return Err(ApiError::bad_request("pricePerSecond", "must be greater than 0"));
    }
    let model_id = request.model_id;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let me = signer.address();
    // Checked before any allowance is raised: posting would revert after the approval was paid for.
    if chain_model(chain, model_id, None).await?.is_none_or(|m| m.is_deleted) {
        return Err(ApiError::not_found(format_args!("active model {model_id}")));
    }
    if chain_provider(chain, me, None).await?.is_none_or(|p| p.is_deleted) {
        return Err(ApiError::conflict(format!(
            "this node's wallet {} is not a registered provider: POST /blockchain/providers first",
            lower_address(&me)
        )));
    }
    let fee = Marketplace::new(chain.diamond, chain.rpc.provider())
        .getBidFee()
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getBidFee", e))?;
    let (bid_id, receipt) =
        signer.allowance.spend(fee, || signer.sender.post_model_bid(me, model_id, price)).await?;
    let bid = chain_bid(chain, bid_id, receipt.block_number)
        .await?
        .ok_or_else(|| not_visible(format_args!("bid {bid_id}")))?;
    Ok(Json(BidResponse { bid: BidJson::from(&bid) }))
}

/// One bid, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/bids/{id}",
    tag = "bids",
    operation_id = "getBid",
    params(("id" = String, Path, description = "Bid id (32 bytes hex)")),
    responses(
        (status = 200, description = "The bid", body = super::BidResponse),
        (status = 400, description = "Bad `id`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_bids`", body = ErrorBody),
        (status = 404, description = "No such bid in the index", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BidResponse>, ApiError> {
    let Path(id) = path?;
    let id = parse_b256("id", &id)?;
    let bid =
        state.store.bids().get(id).await?.ok_or_else(|| ApiError::not_found(format_args!("bid {id}")))?;
    Ok(Json(BidResponse { bid: BidJson::from(&bid) }))
}

/// Deletes an active bid. The contract refuses a wallet that is neither the bid's provider nor its
/// delegate.
#[utoipa::path(
    delete,
    path = "/blockchain/bids/{id}",
    tag = "bids",
    operation_id = "deleteBid",
    params(("id" = String, Path, description = "Bid id (32 bytes hex)")),
    responses(
        (status = 200, description = "Deleted", body = TxResponse),
        (status = 400, description = "Bad `id`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `delete_bids`", body = ErrorBody),
        (status = 404, description = "No such bid on chain", body = ErrorBody),
        (status = 409, description = "Already deleted", body = ErrorBody),
        (status = 422, description = "The contract refused (e.g. not the bid's provider)", body = ErrorBody),
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
    match chain_bid(chain, id, None).await? {
        None => return Err(ApiError::not_found(format_args!("bid {id}"))),
        Some(b) if b.deleted_at != 0 => {
            return Err(ApiError::conflict(format!("bid {id} is already deleted")))
        }
        Some(_) => {}
    }
    let receipt = signer.sender.delete_model_bid(id).await?;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}
