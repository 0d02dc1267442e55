//! The OpenAI gateway's API keys on the admin API (docs/gateway.md), a thin skin over
//! [`crate::gateway::KeyRing`]:
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | POST | `/auth/keys` | `add_user` | the new key, its secret under `key` (shown this once) |
//! | GET | `/auth/keys` | `add_user` | `{"keys": [...]}` with each key's usage |
//! | GET | `/auth/keys/{id}` | `add_user` | one key, its usage and its sessions |
//! | DELETE | `/auth/keys/{id}` | `add_user` | the revoked key; its sessions are closed by the gateway |
//!
//! `add_user` is the reference's permission for handing out credentials (the admin holds it).

use alloy::primitives::B256;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::wire::BigInt;
use super::{guard, ApiState, AuthStore, Permission};
use crate::gateway::{Gateway, GatewayError, KeyState, NewKey};
use crate::store::GatewaySession;

/// The key routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new()
        .route(
            "/auth/keys",
            guard(auth, P::AddUser, post(create_key)).merge(guard(auth, P::AddUser, get(list_keys))),
        )
        .route(
            "/auth/keys/{id}",
            guard(auth, P::AddUser, get(get_key)).merge(guard(
                auth,
                P::AddUser,
                axum::routing::delete(revoke_key),
            )),
        )
}

/// The OpenAPI description of the key routes.
#[derive(OpenApi)]
#[openapi(
    paths(create_key, list_keys, get_key, revoke_key),
    components(schemas(CreateKeyRequest, KeyJson, KeyUsageJson, KeyList, KeySessionJson)),
    tags((name = "gateway", description = "API keys of the OpenAI gateway (GATEWAY_ADDRESS)"))
)]
pub struct Doc;

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::BadRequest { param, reason } => ApiError::bad_request(param, reason),
            GatewayError::KeyNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "key_not_found", message),
            GatewayError::ModelNotFound { .. } => ApiError::bad_request("models", message),
            GatewayError::Store(e) => e.into(),
            GatewayError::Consumer(e) => e.into(),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message),
        }
    }
}

fn gateway(state: &ApiState) -> Result<&Gateway, ApiError> {
    state.gateway.as_ref().ok_or_else(|| {
        ApiError::service_unavailable("the OpenAI gateway is off on this node (GATEWAY_ADDRESS is empty)")
    })
}

/// `POST /auth/keys` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A name for the key (1 to 100 characters).
    pub name: String,
    /// The models it may use, by on-chain name or `0x` id; leave it out for every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Answered requests allowed over the key's life.
    #[serde(rename = "maxRequests", default)]
    pub max_requests: Option<u64>,
    /// MOR wei the key's sessions may lock or pay at most (decimal string or number).
    #[serde(rename = "budgetMor", default)]
    pub budget_mor: Option<BigInt>,
    /// Requests per minute.
    #[serde(rename = "requestsPerMinute", default)]
    pub requests_per_minute: Option<u32>,
    /// When the key stops working, unix seconds.
    #[serde(rename = "expiresAt", default)]
    pub expires_at: Option<u64>,
}

/// A key's usage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyUsageJson {
    /// Answered requests.
    pub requests: u64,
    /// Their prompt tokens.
    #[serde(rename = "promptTokens")]
    pub prompt_tokens: u64,
    /// Their completion tokens.
    #[serde(rename = "completionTokens")]
    pub completion_tokens: u64,
    /// MOR wei its sessions lock now, hold after today's closes, or paid (direct payment).
    #[serde(rename = "morUsed")]
    pub mor_used: BigInt,
    /// The last answered request, unix seconds.
    #[serde(rename = "lastUsedAt")]
    pub last_used_at: Option<u64>,
}

/// One session the gateway opened for a key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeySessionJson {
    /// The on-chain session.
    #[serde(rename = "sessionId")]
    #[schema(value_type = String)]
    pub session_id: B256,
    /// The model.
    #[serde(rename = "modelId")]
    #[schema(value_type = String)]
    pub model_id: B256,
    /// The provider.
    pub provider: String,
    /// MOR wei staked (or paid).
    pub stake: BigInt,
    /// `open`, `closing` or `closed`.
    pub state: String,
    /// Why it is closing or closed.
    #[serde(rename = "closeReason")]
    pub close_reason: Option<String>,
    /// When it opened, unix seconds.
    #[serde(rename = "openedAt")]
    pub opened_at: u64,
    /// When it ends, unix seconds.
    #[serde(rename = "endsAt")]
    pub ends_at: u64,
    /// When it closed, unix seconds (0 before).
    #[serde(rename = "closedAt")]
    pub closed_at: u64,
    /// MOR wei the contract kept at the close (on hold until `releaseAt`, or paid).
    pub held: BigInt,
    /// When `held` comes back, unix seconds (0: paid for good, or nothing held).
    #[serde(rename = "releaseAt")]
    pub release_at: u64,
}

impl From<GatewaySession> for KeySessionJson {
    fn from(s: GatewaySession) -> Self {
        Self {
            session_id: s.session_id,
            model_id: s.model_id,
            provider: format!("{:#x}", s.provider),
            stake: BigInt(s.stake),
            state: s.state.as_str().to_owned(),
            close_reason: s.close_reason,
            opened_at: s.opened_at,
            ends_at: s.ends_at,
            closed_at: s.closed_at,
            held: BigInt(s.held),
            release_at: s.release_at,
        }
    }
}

/// An API key (never its secret, except under `key` in the answer that made it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyJson {
    /// The key's id (`key_…`).
    pub id: String,
    /// The secret, only in the answer of `POST /auth/keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its name.
    pub name: String,
    /// The first characters of the secret.
    #[serde(rename = "keyPrefix")]
    pub key_prefix: String,
    /// The models it may use (`null`: every model).
    #[schema(value_type = Option<Vec<String>>)]
    pub models: Option<Vec<B256>>,
    /// Answered requests allowed.
    #[serde(rename = "maxRequests")]
    pub max_requests: Option<u64>,
    /// MOR wei allowed.
    #[serde(rename = "budgetMor")]
    pub budget_mor: Option<BigInt>,
    /// Requests per minute.
    #[serde(rename = "requestsPerMinute")]
    pub requests_per_minute: Option<u32>,
    /// Expiry, unix seconds.
    #[serde(rename = "expiresAt")]
    pub expires_at: Option<u64>,
    /// Creation, unix seconds.
    #[serde(rename = "createdAt")]
    pub created_at: u64,
    /// Revocation, unix seconds.
    #[serde(rename = "revokedAt")]
    pub revoked_at: Option<u64>,
    /// What it used.
    pub usage: KeyUsageJson,
    /// Its sessions (`GET /auth/keys/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<KeySessionJson>>,
}

/// `GET /auth/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// Every key, oldest first (revoked ones included).
    pub keys: Vec<KeyJson>,
}

async fn key_json(gateway: &Gateway, key: &KeyState, sessions: bool) -> Result<KeyJson, ApiError> {
    let r = &key.record;
    let usage = key.usage();
    let sessions = match sessions {
        true => Some(gateway.sessions_of(key.id()).await?.into_iter().map(KeySessionJson::from).collect()),
        false => None,
    };
    Ok(KeyJson {
        id: r.id.clone(),
        key: None,
        name: r.name.clone(),
        key_prefix: r.key_prefix.clone(),
        models: r.models.clone(),
        max_requests: r.max_requests,
        budget_mor: r.budget_mor.map(BigInt),
        requests_per_minute: r.requests_per_minute,
        expires_at: r.expires_at,
        created_at: r.created_at,
        revoked_at: key.revoked_at(),
        usage: KeyUsageJson {
            requests: usage.requests,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            mor_used: BigInt(gateway.mor_used(key.id()).await?),
            last_used_at: usage.last_used_at,
        },
        sessions,
    })
}

/// Makes an API key for the OpenAI gateway. The secret is in `key`, shown this once (only its hash
/// is stored).
#[utoipa::path(
    post,
    path = "/auth/keys",
    tag = "gateway",
    operation_id = "createApiKey",
    request_body = CreateKeyRequest,
    responses(
        (status = 200, description = "The key, with its secret under `key`", body = KeyJson),
        (status = 400, description = "A malformed body, an unknown model, a limit out of range (`field`)", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "The user lacks `add_user`", body = ErrorBody),
        (status = 503, description = "The gateway is off", body = ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<ApiState>,
    body: Result<Json<CreateKeyRequest>, JsonRejection>,
) -> Result<Json<KeyJson>, ApiError> {
    let Json(request) = body?;
    let gateway = gateway(&state)?;
    let models = match request.models {
        None => None,
        Some(names) => {
            let snapshot = gateway.catalog().snapshot().await?;
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                let model = snapshot.resolve(name.trim()).ok_or_else(|| {
                    ApiError::bad_request("models", format!("no model {name:?} in the marketplace"))
                })?;
                if !ids.contains(&model.id) {
                    ids.push(model.id);
                }
            }
            Some(ids)
        }
    };
    let new = NewKey {
        name: request.name,
        models,
        max_requests: request.max_requests,
        budget_mor: request.budget_mor.map(|b| b.0),
        requests_per_minute: request.requests_per_minute,
        expires_at: request.expires_at,
    };
    let (key, secret) = gateway.keys().create(&state.store, new).await?;
    let mut json = key_json(gateway, &key, false).await?;
    json.key = Some(secret);
    Ok(Json(json))
}

/// Every API key with its usage (never the secrets).
#[utoipa::path(
    get,
    path = "/auth/keys",
    tag = "gateway",
    operation_id = "listApiKeys",
    responses(
        (status = 200, description = "Every key, oldest first", body = KeyList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "The user lacks `add_user`", body = ErrorBody),
        (status = 503, description = "The gateway is off", body = ErrorBody),
    )
)]
pub async fn list_keys(State(state): State<ApiState>) -> Result<Json<KeyList>, ApiError> {
    let gateway = gateway(&state)?;
    let mut keys = Vec::new();
    for key in gateway.keys().list() {
        keys.push(key_json(gateway, &key, false).await?);
    }
    Ok(Json(KeyList { keys }))
}

/// One API key, its usage and its sessions.
#[utoipa::path(
    get,
    path = "/auth/keys/{id}",
    tag = "gateway",
    operation_id = "getApiKey",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The key", body = KeyJson),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "The user lacks `add_user`", body = ErrorBody),
        (status = 404, description = "No such key (`key_not_found`)", body = ErrorBody),
        (status = 503, description = "The gateway is off", body = ErrorBody),
    )
)]
pub async fn get_key(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<KeyJson>, ApiError> {
    let gateway = gateway(&state)?;
    let key = gateway.keys().get(&id?.0)?;
    Ok(Json(key_json(gateway, &key, true).await?))
}

/// Revokes an API key: refused from its next request on; its sessions are closed (their stake comes
/// back). Revoking it again changes nothing.
#[utoipa::path(
    delete,
    path = "/auth/keys/{id}",
    tag = "gateway",
    operation_id = "revokeApiKey",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The revoked key", body = KeyJson),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "The user lacks `add_user`", body = ErrorBody),
        (status = 404, description = "No such key (`key_not_found`)", body = ErrorBody),
        (status = 503, description = "The gateway is off", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<KeyJson>, ApiError> {
    let gateway = gateway(&state)?;
    let key = gateway.keys().revoke(&state.store, &id?.0).await?;
    gateway.retire_key(&key).await?;
    Ok(Json(key_json(gateway, &key, true).await?))
}
