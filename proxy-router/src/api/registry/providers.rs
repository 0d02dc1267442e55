//! `/blockchain/providers`: list the active providers, register (or top up and update) the node's own
//! provider, deregister it, and list a provider's bids.

use std::net::Ipv6Addr;
use std::str::FromStr;

use alloy::primitives::Address;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{chain_provider, collect, not_visible, BidsResponse, ProviderResponse, ProvidersResponse};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::wire::{
    lower_address, parse_address, BidJson, BigInt, LimitDefault, PageQuery, ProviderJson, TxResponse,
};
use crate::api::ApiState;
use crate::store::{BidFilter, ProviderFilter};

/// Longest endpoint accepted (the chain stores any string; this keeps junk out of the registry).
pub const MAX_ENDPOINT_LEN: usize = 255;

/// `POST /blockchain/providers` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateProviderRequest {
    /// MOR wei to add to the provider's stake (0 only updates the endpoint of a registered provider).
    pub stake: BigInt,
    /// The MOR-RPC endpoint consumers connect to, `host:port`.
    #[schema(example = "provider.example.com:3333")]
    pub endpoint: String,
}

/// Active providers, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/providers",
    tag = "providers",
    operation_id = "listProviders",
    params(PageQuery),
    responses(
        (status = 200, description = "Active providers (every one unless `limit` is given)", body = super::ProvidersResponse),
        (status = 400, description = "Bad `offset`, `limit` or `order`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `get_providers`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<ProvidersResponse>, ApiError> {
    let Query(query) = query?;
    let (page, limit) = query.page(LimitDefault::All)?;
    let filter = ProviderFilter { active_only: true };
    let repo = state.store.providers();
    let rows = collect(page, limit, |p| repo.list(filter, p)).await?;
    Ok(Json(ProvidersResponse { providers: rows.iter().map(ProviderJson::from).collect() }))
}

/// Registers the node's wallet as a provider, or adds stake and sets the endpoint of the registered
/// one. Raises the MOR allowance by what is missing for `stake` first. Answers the provider as the
/// chain holds it after the transaction.
#[utoipa::path(
    post,
    path = "/blockchain/providers",
    tag = "providers",
    operation_id = "createProvider",
    request_body = CreateProviderRequest,
    responses(
        (status = 200, description = "Registered; the provider read from the chain", body = super::ProviderResponse),
        (status = 400, description = "Bad `stake` or `endpoint`", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `create_provider`", body = ErrorBody),
        (status = 422, description = "The contract refused, e.g. `ProviderStakeTooLow` in `reason`", body = ErrorBody),
        (status = 503, description = "No chain connection or no wallet", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateProviderRequest>, JsonRejection>,
) -> Result<Json<ProviderResponse>, ApiError> {
    let Json(request) = body?;
    let endpoint = validate_endpoint(&request.endpoint).map_err(|e| ApiError::bad_request("endpoint", e))?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let me = signer.address();
    let stake = request.stake.0;
    let receipt =
        signer.allowance.spend(stake, || signer.sender.provider_register(me, stake, &endpoint)).await?;
    let provider = chain_provider(chain, me, receipt.block_number)
        .await?
        .ok_or_else(|| not_visible(format_args!("provider {}", lower_address(&me))))?;
    Ok(Json(ProviderResponse { provider: ProviderJson::from(&provider) }))
}

/// Deregisters the node's own provider and refunds its unlocked stake. As in the reference, `id` does
/// not choose the provider; an `id` that is an address other than the node's wallet is refused.
#[utoipa::path(
    delete,
    path = "/blockchain/providers/{id}",
    tag = "providers",
    operation_id = "deleteProvider",
    params(("id" = String, Path, description = "The node's wallet address (anything that is not an address is ignored)")),
    responses(
        (status = 200, description = "Deregistered", body = TxResponse),
        (status = 400, description = "`id` is another address than the node's wallet", body = ErrorBody),
        (status = 401, description = "No or wrong credentials", body = ErrorBody),
        (status = 403, description = "Missing permission `delete_provider`", body = ErrorBody),
        (status = 404, description = "The wallet is not a registered provider", body = ErrorBody),
        (status = 409, description = "Already deregistered", body = ErrorBody),
        (status = 422, description = "The contract refused, e.g. `ProviderHasActiveBids` in `reason`", body = ErrorBody),
        (status = 503, description = "No chain connection or no wallet", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let Path(id) = path?;
    let signer = state.signer()?;
    let me = signer.address();
    if let Ok(other) = Address::from_str(id.trim()) {
        if other != me {
            return Err(ApiError::bad_request(
                "id",
                format!(
                    "{} is not this node's wallet {}: a node deregisters only its own provider",
                    lower_address(&other),
                    lower_address(&me)
                ),
            ));
        }
    }
    let chain = state.chain()?;
    match chain_provider(chain, me, None).await? {
        None => return Err(ApiError::not_found(format_args!("provider {}", lower_address(&me)))),
        Some(p) if p.is_deleted => {
            return Err(ApiError::conflict(format!(
                "provider {} is already deregistered",
                lower_address(&me)
            )))
        }
        Some(_) => {}
    }
    let receipt = signer.sender.provider_deregister(me).await?;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}

/// Every bid of a provider, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/providers/{id}/bids",
    tag = "providers",
    operation_id = "listProviderBids",
    params(("id" = String, Path, description = "Provider address"), PageQuery),
    responses(
        (status = 200, description = "The provider's bids, deleted ones included (10 unless `limit` is given)", body = super::BidsResponse),
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
    provider_bids(state, path, query, false).await
}

/// The active bids of a provider, from the local index.
#[utoipa::path(
    get,
    path = "/blockchain/providers/{id}/bids/active",
    tag = "providers",
    operation_id = "listProviderActiveBids",
    params(("id" = String, Path, description = "Provider address"), PageQuery),
    responses(
        (status = 200, description = "The provider's bids not deleted (10 unless `limit` is given)", body = super::BidsResponse),
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
    provider_bids(state, path, query, true).await
}

async fn provider_bids(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
    active_only: bool,
) -> Result<Json<BidsResponse>, ApiError> {
    let Path(id) = path?;
    let Query(query) = query?;
    let provider = parse_address("id", &id)?;
    let (page, limit) = query.page(LimitDefault::Rows(10))?;
    let filter = BidFilter { active_only, provider: Some(provider), model_id: None };
    let repo = state.store.bids();
    let rows = collect(page, limit, |p| repo.list(filter, p)).await?;
    Ok(Json(BidsResponse { bids: rows.iter().map(BidJson::from).collect() }))
}

/// Checks a MOR-RPC endpoint `host:port`: a host name (letters, digits, `-`, `_`, `.`), an IPv4
/// address or a bracketed IPv6 address, and a port in 1–65535. Returns it trimmed.
pub fn validate_endpoint(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        return Err("expected host:port, got an empty string".into());
    }
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(format!("longer than {MAX_ENDPOINT_LEN} characters"));
    }
    if endpoint.contains("://") {
        return Err(format!("expected host:port without a scheme, got {endpoint:?}"));
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Err(format!("expected host:port, got {endpoint:?} (no port)"));
    };
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?} in {endpoint:?}"))?;
    if port == 0 {
        return Err(format!("port 0 in {endpoint:?}: expected 1-65535"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Ipv6Addr::from_str(inner).map_err(|_| format!("invalid IPv6 address {host:?} in {endpoint:?}"))?;
    } else if host.is_empty() {
        return Err(format!("empty host in {endpoint:?}"));
    } else if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(format!("invalid host {host:?} in {endpoint:?}"));
    }
    Ok(endpoint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::validate_endpoint;

    #[test]
    fn endpoints_are_host_and_port() {
        for ok in ["provider.example.com:3333", "10.0.0.1:1", "[::1]:65535", "my_host-1:3333", " a:1 "] {
            assert!(validate_endpoint(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_endpoint(" a:1 ").unwrap(), "a:1");
        for bad in [
            "",
            "host",
            ":3333",
            "host:",
            "host:0",
            "host:65536",
            "host:port",
            "http://host:3333",
            "ho st:3333",
            "[::1:3333",
            "[zz]:3333",
            "host/path:3333",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
        assert!(validate_endpoint(&format!("{}:1", "a".repeat(300))).is_err());
    }
}
