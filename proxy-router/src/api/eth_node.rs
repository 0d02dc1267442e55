//! The RPC URLs chosen at runtime (go-proxy-router.md §1.7), permission `system_config`:
//!
//! - `POST /config/ethNode` `{"urls": [...]}`: every URL must be http, https, ws or wss and answer
//!   `eth_chainId` with the node's chain id within [`PROBE_TIMEOUT`] (probed concurrently). Then the list
//!   is stored in the data directory ([`super::stored::ETH_NODES_FILE`], mode 0600: URLs often carry an
//!   API key) and the node's RPC transport switches to it at once ([`Rpc::set_endpoints`]): the indexer,
//!   the senders and the API send their next requests to the new URLs, in the given order, with
//!   failover. `{"status":"ok"}`.
//! - `DELETE /config/ethNode`: removes the stored list and returns to the configured `ETH_NODE_ADDRESS`
//!   list. `{"status":"ok"}`.
//!
//! At start, the node connects to the stored list when there is one ([`load_stored_eth_nodes`]).
//! The WebSocket provider of new-head subscriptions (`ETH_NODE_USE_SUBSCRIPTIONS`) is not moved: it
//! stays on the URL it was opened on until the node restarts.
//!
//! A URL that fails validation answers 400 with `field` = `urls[i]` and the URL (redacted: scheme,
//! host and port) and the problem in the message; the reference answers 500 "Resource … is not
//! available".
//!
//! [`Rpc::set_endpoints`]: crate::chain::Rpc::set_endpoints

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use url::Url;
use utoipa::{OpenApi, ToSchema};

use super::wire::StatusResponse;
use super::{guard, stored, ApiError, ApiState, AuthStore, ErrorBody, Permission};
use crate::chain::rpc::{probe_chain_id, redact_url};
use crate::chain::ChainError;

pub use super::stored::load_eth_nodes as load_stored_eth_nodes;

/// How long each URL may take to answer `eth_chainId` (the reference's 2 s).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most URLs one request may set.
pub const MAX_URLS: usize = 16;

/// Serialises the changes of the list, so the stored file and the transport always agree.
static ETH_NODES_CHANGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `/config/ethNode` routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    Router::new().route(
        "/config/ethNode",
        guard(auth, Permission::SystemConfig, post(set_eth_nodes)).merge(guard(
            auth,
            Permission::SystemConfig,
            axum::routing::delete(remove_eth_nodes),
        )),
    )
}

/// The OpenAPI description of these routes.
#[derive(OpenApi)]
#[openapi(paths(set_eth_nodes, remove_eth_nodes), components(schemas(EthNodesRequest, StatusResponse)))]
pub struct Doc;

/// `POST /config/ethNode` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EthNodesRequest {
    /// RPC URLs (http, https, ws or wss), tried in this order with failover.
    #[schema(required = true, value_type = Vec<String>, example = json!(["https://base-mainnet.example.com/v2/KEY", "wss://base.example.com"]))]
    pub urls: Option<Vec<String>>,
}

/// Validates the URLs (scheme, and `eth_chainId` equal to the node's chain within 2 s), stores them in
/// the data directory and switches the node's RPC transport to them.
#[utoipa::path(
    post,
    path = "/config/ethNode",
    tag = "system",
    operation_id = "setEthNode",
    request_body = EthNodesRequest,
    responses(
        (status = 200, description = "The node uses the URLs from now on", body = StatusResponse),
        (status = 400, description = "A URL is invalid, unreachable or on another chain (`field` is `urls[i]`)", body = ErrorBody),
        (status = 503, description = "The node runs without a chain connection", body = ErrorBody),
    )
)]
pub async fn set_eth_nodes(
    State(state): State<ApiState>,
    body: Result<Json<EthNodesRequest>, JsonRejection>,
) -> Result<Json<StatusResponse>, ApiError> {
    let Json(body) = body?;
    let texts = body.urls.ok_or_else(|| ApiError::bad_request("urls", "required"))?;
    if texts.is_empty() {
        return Err(ApiError::bad_request("urls", "give at least one URL"));
    }
    if texts.len() > MAX_URLS {
        return Err(ApiError::bad_request("urls", format!("at most {MAX_URLS} URLs")));
    }
    let mut urls = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let field = format!("urls[{i}]");
        let url =
            Url::parse(text.trim()).map_err(|e| ApiError::bad_request(&field, format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(ApiError::bad_request(
                field,
                format!(
                    "{}: unsupported scheme {:?} (use http, https, ws or wss)",
                    redact_url(&url),
                    url.scheme()
                ),
            ));
        }
        urls.push(url);
    }
    let chain = state.chain()?;
    let answers = futures::future::join_all(urls.iter().map(|url| probe_chain_id(url, PROBE_TIMEOUT))).await;
    for (i, (url, answer)) in urls.iter().zip(answers).enumerate() {
        let field = format!("urls[{i}]");
        match answer {
            Ok(id) if id == chain.chain_id => {}
            Ok(id) => {
                return Err(ApiError::bad_request(
                    field,
                    format!(
                        "{} serves chain id {id}, but this node runs on chain {}",
                        redact_url(url),
                        chain.chain_id
                    ),
                ))
            }
            Err(ChainError::Endpoint { reason, .. }) => {
                return Err(ApiError::bad_request(
                    field,
                    format!("{} is not usable: {reason}", redact_url(url)),
                ))
            }
            Err(other) => return Err(other.into()),
        }
    }
    let _change = ETH_NODES_CHANGE.lock().await;
    stored::save_eth_nodes(&state.data_dir(), &urls)
        .map_err(|e| ApiError::internal("writing the stored RPC URLs", &e))?;
    chain.rpc.set_endpoints(&urls)?;
    Ok(Json(StatusResponse::ok()))
}

/// Removes the stored URLs and returns to the configured `ETH_NODE_ADDRESS` list.
#[utoipa::path(
    delete,
    path = "/config/ethNode",
    tag = "system",
    operation_id = "deleteEthNode",
    responses(
        (status = 200, description = "The node uses the configured URLs again (also when none were stored)", body = StatusResponse),
        (status = 503, description = "The node runs without a chain connection", body = ErrorBody),
    )
)]
pub async fn remove_eth_nodes(State(state): State<ApiState>) -> Result<Json<StatusResponse>, ApiError> {
    let chain = state.chain()?;
    let _change = ETH_NODES_CHANGE.lock().await;
    stored::remove_eth_nodes(&state.data_dir())
        .map_err(|e| ApiError::internal("removing the stored RPC URLs", &e))?;
    chain.rpc.set_endpoints(&chain.config.rpc_urls)?;
    Ok(Json(StatusResponse::ok()))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use super::*;
    use crate::api::test_support::{call, fixture, request, send, READER};

    #[tokio::test]
    async fn bad_bodies_name_the_field() {
        let f = fixture().await;
        let many = format!(r#"{{"urls":[{}]}}"#, vec![r#""http://127.0.0.1:1""#; MAX_URLS + 1].join(","));
        for (json, field) in [
            ("{}", "urls"),
            (r#"{"urls":[]}"#, "urls"),
            (r#"{"urls":"http://x"}"#, "urls"),
            (many.as_str(), "urls"),
            (r#"{"urls":["not a url"]}"#, "urls[0]"),
            (r#"{"urls":["http://127.0.0.1:8545","ftp://example.com/KEY"]}"#, "urls[1]"),
        ] {
            let answer = call(&f.state, Method::POST, "/config/ethNode", Some(json)).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{json}: {}", answer.body);
            assert_eq!(answer.error().field.as_deref(), Some(field), "{json}: {}", answer.body);
            assert!(!answer.body.contains("KEY"), "{}", answer.body);
        }
        assert!(!f.dir.path().join(stored::ETH_NODES_FILE).exists());
    }

    #[tokio::test]
    async fn without_a_chain_the_routes_answer_503() {
        let f = fixture().await;
        let answer =
            call(&f.state, Method::POST, "/config/ethNode", Some(r#"{"urls":["http://127.0.0.1:1"]}"#)).await;
        assert_eq!(
            (answer.status, answer.error().code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "no_chain")
        );
        let answer = call(&f.state, Method::DELETE, "/config/ethNode", None).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn the_routes_need_system_config() {
        let f = fixture().await;
        let app = crate::api::router(f.state.clone());
        for method in [Method::POST, Method::DELETE] {
            let answer =
                send(app.clone(), request(method.clone(), "/config/ethNode", Some(READER), Some("{}"))).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method}");
        }
    }
}
