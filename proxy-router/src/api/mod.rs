//! The HTTP API: one axum router per resource, merged by [`router`] under shared layers, with the
//! OpenAPI description generated from the handlers ([`ApiDoc`]) and Swagger UI.
//!
//! - [`error`]: [`ApiError`], the one mapping of every module's errors (and axum's extractor
//!   rejections) to HTTP: status, stable machine `code`, the human message under the reference's key
//!   `error`, the field at fault and a revert's decoded reason.
//! - [`system`]: `GET /healthcheck` (open) and `GET /config`.
//! - [`metrics`]: `GET /metrics` (open): the Prometheus metrics.
//! - [`registry`]: providers, models and bids (`/blockchain/providers`, `/blockchain/models`,
//!   `/blockchain/bids`), including the rated bids of a model.
//! - [`sessions`]: sessions, budget and supply, closing, provider claims, user on-hold stake.
//! - [`wallet`]: the wallet (`/wallet`, its key file) and its tokens (`/blockchain/balance`,
//!   `allowance`, `approve`, `send/eth`, `send/mor`, `latestBlock`, `transactions`).
//! - [`eth_node`]: `POST`/`DELETE /config/ethNode`, the RPC URLs chosen at runtime.
//! - [`proxy`]: the consumer role's routes: opening sessions (by bid, by model, from an approval),
//!   the handshake and ping, and the OpenAI surface (`/v1/chat/completions`, `/v1/embeddings`).
//! - [`keys`]: the OpenAI gateway's API keys (`/auth/keys`).
//! - [`users`]: users, agent account requests, allowances and their enforcement (`/auth/*`).
//! - [`chats`]: the chat history (`/v1/chats`) and its recorder on `/v1/chat/completions`.
//! - Auth (HTTP Basic against `proxy.conf`, the `.cookie` admin, the reference's permission names)
//!   lives in `auth` (see the marker below).
//!
//! # Routes common to every resource
//!
//! - `/swagger/index.html`: Swagger UI (assets vendored in the binary, nothing is downloaded);
//! - `/swagger/doc.json` (the reference's Swagger path family) and `/openapi.json`: the spec, which is
//!   also committed as `docs/openapi.json`. The test `api::tests::openapi_spec_matches_committed_file`
//!   fails when they differ; `UPDATE_OPENAPI=1 cargo test -p proxy-router openapi` rewrites the file.
//!
//! # Layers
//!
//! From the outside in: a `tracing` span per request; error bodies made JSON (any 4xx/5xx that is not
//! already JSON, e.g. the 413 of the body limit, the timeout's 504, axum's 405, becomes an
//! [`ApiError`] body, so no error is ever an empty or plain-text body); a request timeout
//! ([`ApiLimits::request_timeout`], 504); a request body limit ([`ApiLimits::body_limit`], 413).
//! Unknown routes answer a JSON 404.
//!
//! `api` sits at the top: it reads `store`, the indexer's status and `chain`, and nothing below
//! imports it.

pub mod auth;
pub mod chats;
pub mod error;
pub mod eth_node;
pub mod keys;
pub mod local;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod sessions;
pub mod stored;
pub mod system;
pub mod users;
pub mod wallet;
pub mod wire;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::sync::watch;
use tokio::time::Instant;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ErrorBody};
pub use system::{ConfigResponse, HealthPolicy};

use alloy::primitives::Address;
use axum::routing::MethodRouter;

pub use auth::{AuthStore, Permission};

use crate::chain::{Rpc, Signer, WalletSlot};
use crate::config::ChainConfig;
use crate::consumer::rating::RatingConfig;
use crate::consumer::Consumer;
use crate::index::IndexerStatus;
use crate::store::Store;

/// Where Swagger UI is mounted (`/swagger/index.html`, as the reference).
pub const SWAGGER_PATH: &str = "/swagger";
/// The spec inside the Swagger path family (the reference's `doc.json`).
pub const SWAGGER_SPEC_PATH: &str = "/swagger/doc.json";
/// The spec at a conventional path.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Bounds applied to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body, in bytes (413 beyond).
    pub body_limit: usize,
    /// Longest time a request may take (504 beyond). Routes that wait for a transaction receipt need
    /// at least `TX_RECEIPT_TIMEOUT` plus an RPC round trip; the node sets it from the configuration.
    pub request_timeout: Duration,
}

impl Default for ApiLimits {
    /// 1 MiB bodies, 60 s per request.
    fn default() -> Self {
        Self { body_limit: 1024 * 1024, request_timeout: Duration::from_secs(60) }
    }
}

/// What the handlers share. Cheap to clone: every field is a handle (`Arc`s inside).
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The local chain index.
    pub store: Store,
    /// The indexer's progress and health.
    pub indexer: watch::Receiver<IndexerStatus>,
    /// The chain; `None` for a node (or a test) running without RPC.
    pub chain: Option<ChainAccess>,
    /// The node's wallet (empty when no key is configured or set).
    pub wallet: WalletSlot,
    /// Who may call which route.
    pub auth: AuthStore,
    /// The `/config` answer, built once at start-up from the validated configuration.
    pub config: Arc<ConfigResponse>,
    /// When `/healthcheck` turns degraded.
    pub health: HealthPolicy,
    /// Request bounds.
    pub limits: ApiLimits,
    /// When the node started (for `uptime`).
    pub started: Instant,
    /// How bids are rated (`rating-config.json`; the reference's default weights until it is loaded).
    pub rating: Arc<RatingConfig>,
    /// The consumer role (opening, prompting, closing sessions); `None` in a node or test without it.
    pub consumer: Option<Consumer>,
    /// The node's own models (models-config), callable without a session through the `model_id`
    /// header, and listed by `GET /v1/models`.
    pub local_models: Option<local::LocalModels>,
    /// The OpenAI gateway, whose API keys `/auth/keys` manages; `None` when it is off.
    pub gateway: Option<crate::gateway::Gateway>,
    /// The chat history recorder of `/v1/chat/completions` (`PROXY_STORE_CHAT_CONTEXT`; on by default).
    pub chat_log: chats::ChatLog,
}

/// The chain as the API reads it: the RPC transport and the contracts' addresses.
#[derive(Debug, Clone)]
pub struct ChainAccess {
    /// The RPC endpoints, with failover.
    pub rpc: Rpc,
    /// The chain id the node verified at start.
    pub chain_id: u64,
    /// The marketplace diamond.
    pub diamond: Address,
    /// The MOR token.
    pub mor_token: Address,
    /// The chain configuration as loaded (its `rpc_urls` are the configured `ETH_NODE_ADDRESS` list,
    /// which `DELETE /config/ethNode` returns to); the `/wallet` routes build senders from it.
    pub config: Arc<ChainConfig>,
}

impl ChainAccess {
    /// The chain of `config`, reached through `rpc`. Pass the configuration as loaded, even when `rpc`
    /// was connected to stored URLs ([`eth_node::load_stored_eth_nodes`]).
    pub fn new(rpc: Rpc, config: &ChainConfig) -> Self {
        Self {
            rpc,
            chain_id: config.chain_id,
            diamond: config.diamond,
            mor_token: config.mor_token,
            config: Arc::new(config.clone()),
        }
    }
}

impl ApiState {
    /// State without chain access or wallet, with the default [`HealthPolicy`] and [`ApiLimits`],
    /// started now.
    pub fn new(
        store: Store,
        indexer: watch::Receiver<IndexerStatus>,
        config: ConfigResponse,
        auth: AuthStore,
    ) -> Self {
        Self {
            chat_log: chats::ChatLog::new(store.clone(), true),
            store,
            indexer,
            chain: None,
            wallet: WalletSlot::default(),
            auth,
            config: Arc::new(config),
            health: HealthPolicy::default(),
            limits: ApiLimits::default(),
            started: Instant::now(),
            rating: Arc::new(RatingConfig::default()),
            consumer: None,
            local_models: None,
            gateway: None,
        }
    }

    /// The same state reading the chain through `chain`.
    pub fn with_chain(self, chain: ChainAccess) -> Self {
        Self { chain: Some(chain), ..self }
    }

    /// The same state signing with the wallet in `wallet`.
    pub fn with_wallet(self, wallet: WalletSlot) -> Self {
        Self { wallet, ..self }
    }

    /// The same state rating bids with `rating`.
    pub fn with_rating(self, rating: RatingConfig) -> Self {
        Self { rating: Arc::new(rating), ..self }
    }

    /// The same state with the consumer role (its rating configuration becomes the state's).
    pub fn with_consumer(self, consumer: Consumer) -> Self {
        Self { rating: Arc::new(consumer.rating().clone()), consumer: Some(consumer), ..self }
    }

    /// The same state serving `models` locally (the `model_id` header and `GET /v1/models`).
    pub fn with_local_models(self, models: local::LocalModels) -> Self {
        Self { local_models: Some(models), ..self }
    }

    /// The same state managing `gateway`'s API keys.
    pub fn with_gateway(self, gateway: crate::gateway::Gateway) -> Self {
        Self { gateway: Some(gateway), ..self }
    }

    /// The same state storing chat history or not (`PROXY_STORE_CHAT_CONTEXT`).
    pub fn with_chat_history(self, enabled: bool) -> Self {
        Self { chat_log: chats::ChatLog::new(self.store.clone(), enabled), ..self }
    }

    /// The consumer role, or 503 `no_consumer` when this node or test runs without it.
    pub fn consumer(&self) -> Result<&Consumer, ApiError> {
        self.consumer.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_consumer",
                "the consumer role is not running on this node",
            )
        })
    }

    /// The chain, or 503 `no_chain` when the node runs without RPC.
    pub fn chain(&self) -> Result<&ChainAccess, ApiError> {
        self.chain.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_chain",
                "this node runs without a chain connection",
            )
        })
    }

    /// The node's data directory (`PROXY_STORAGE_PATH`, as `/config` shows it), where the API keeps
    /// the wallet key file and the stored RPC URLs.
    pub fn data_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.config.config.proxy.storage_path)
    }

    /// The wallet's signer, or 503 `no_wallet` when no key is configured or set.
    pub fn signer(&self) -> Result<Signer, ApiError> {
        self.wallet.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_wallet",
                "no wallet is set: configure WALLET_PRIVATE_KEY or WALLET_MNEMONIC, or POST /wallet/privateKey",
            )
        })
    }
}

/// Protects one method route with `permission` (401/403 as the reference, see [`auth`]).
pub fn guard(
    auth: &AuthStore,
    permission: Permission,
    route: MethodRouter<ApiState>,
) -> MethodRouter<ApiState> {
    route.route_layer(auth.require(permission))
}

/// The OpenAPI description of every route, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "proxy-router",
        description = "REST API of proxy-router, a node of the Morpheus decentralized AI-inference \
                       marketplace, compatible with the reference Go proxy-router. Errors answer \
                       `{\"error\": message, \"code\": machine_code}` plus `field` and `reason` when known."
    ),
    paths(system::healthcheck, system::config),
    components(schemas(ErrorBody)),
    modifiers(&BasicAuth),
    security(("basicAuth" = [])),
    tags((name = "system", description = "Health and configuration"))
)]
pub struct ApiDoc;

/// Declares HTTP Basic auth (`proxy.conf` users, see [`auth`]) as the spec's security scheme, so
/// Swagger UI's "Authorize" button sends credentials. Open routes override it with `security(())`.
struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basicAuth", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

/// The generated OpenAPI document: [`ApiDoc`] merged with each resource module's own description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    // Each resource module merges its `Doc` here: `doc.merge(module::Doc::openapi());`
    let mut doc = ApiDoc::openapi();
    doc.merge(registry::Doc::openapi());
    doc.merge(sessions::Doc::openapi());
    doc.merge(wallet::Doc::openapi());
    doc.merge(eth_node::Doc::openapi());
    doc.merge(proxy::Doc::openapi());
    doc.merge(local::Doc::openapi());
    doc.merge(keys::Doc::openapi());
    doc.merge(users::Doc::openapi());
    doc.merge(chats::Doc::openapi());
    doc.merge(metrics::Doc::openapi());
    doc
}

/// The generated OpenAPI document as committed in `docs/openapi.json`: pretty JSON and a final
/// newline.
pub fn openapi_json() -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&openapi())?;
    json.push('\n');
    Ok(json)
}

/// The whole API: every resource's router, Swagger UI and the spec, under the shared layers.
pub fn router(state: ApiState) -> Router {
    let limits = state.limits;
    let auth = state.auth.clone();
    let api = Router::new()
        .merge(system::router(&auth))
        .merge(metrics::router())
        .merge(registry::router(&auth))
        .merge(sessions::router(&auth))
        .merge(wallet::router(&auth))
        .merge(eth_node::router(&auth))
        .merge(proxy::router(&auth))
        .merge(local::router(&auth))
        .merge(keys::router(&auth))
        .merge(users::router(&auth))
        .merge(chats::router(&auth))
        .route(OPENAPI_PATH, axum::routing::get(openapi_spec))
        .merge(SwaggerUi::new(SWAGGER_PATH).url(SWAGGER_SPEC_PATH, openapi()))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    api.layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limits.body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::map_response(json_error_bodies))
        .layer(axum::middleware::from_fn(|r, n| crate::metrics::track("api", r, n)))
        .layer(axum::middleware::from_fn(crate::logging::request_span))
}

async fn openapi_spec() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Replaces the body of an error response that is not JSON (from a layer, axum or Swagger UI) with
/// an [`ApiError`] body, keeping the status and the other headers (e.g. `Allow`).
async fn json_error_bodies(response: Response) -> Response {
    crate::error_bodies::ensure_json(response, |status| {
        let error = match status {
            StatusCode::PAYLOAD_TOO_LARGE => error::payload_too_large(),
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the request took too long and was cancelled",
            ),
            StatusCode::NOT_FOUND => ApiError::new(status, "not_found", "not found"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::new(status, "method_not_allowed", "method not allowed")
            }
            _ => ApiError::new(
                status,
                if status.is_server_error() { "internal" } else { "bad_request" },
                status.canonical_reason().unwrap_or("error"),
            ),
        };
        error.into_response()
    })
}
