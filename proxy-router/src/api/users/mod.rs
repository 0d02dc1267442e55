//! Users, agents and allowances (go-proxy-router.md §1.8, §5.2):
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | POST | `/auth/users` `{"username","password","perms"}` | `add_user` | `{"result":true}` |
//! | DELETE | `/auth/users` `{"username"}` | `remove_user` | `{"result":true}` |
//! | POST | `/auth/users/request` `{"username","password","perms","allowances"}` | none | `{"result":true}` |
//! | POST | `/auth/users/confirm` `{"username","confirm"}` | `agent_requests` | `{"result":true}` |
//! | GET | `/auth/users` | `agent_requests` | `{"agents":[{"username","perms","isConfirmed","allowances"}]}` |
//! | GET | `/auth/users/{username}/txs?cursor=&limit=` | `agent_requests` | `{"txHashes","nextCursor"}` |
//! | GET | `/auth/cookie/path` | none | `{"path"}` |
//! | POST, GET | `/auth/allowance/requests`, POST `/auth/allowance/confirm`, `…/revoke` | see [`allowances`] | |
//!
//! `proxy.conf` itself is [`super::auth`]'s; this module adds the agent flow on top of it, with its
//! records in the store ([`crate::store::AgentsRepo`]):
//!
//! 1. an agent files `POST /auth/users/request` without credentials; the request is stored unconfirmed
//!    with the `proxy.conf` credential made from its password (`saltHex$hashHex`), never the password
//!    (the reference keeps it in plain text), and its requested allowances;
//! 2. a user with `agent_requests` confirms it (the agent becomes a `proxy.conf` user with the requested
//!    whitelist) or declines it (the request and its allowances are deleted);
//! 3. non-admin users spend within their allowances ([`spend`]); the transactions sent for them are
//!    listed by `GET /auth/users/{username}/txs`.
//!
//! # Who may change whom
//!
//! As the reference's current code (`internal/system/auth_delegation.go`), `add_user`,
//! `remove_user` and `agent_requests` are delegable without being a way to become admin: a caller
//! without full access (`*`, or no whitelist with `rpcwhitelistdefault=1`) may only create, change,
//! confirm, decline or remove users whose current and requested permissions it holds itself, never
//! `admin`, never a full-access user, never a user with a spending allowance, never grant `*`; it may
//! not re-confirm a confirmed agent nor decline one; allowances are confirmed and revoked with full
//! access only, and requested by a user for itself. Refusals are 403 `forbidden_user_change`, with a
//! body that differs from the permission check's `{"error":"method not allowed"}`.
//!
//! # Transactions cursor
//!
//! `nextCursor` is the standard base64 (padded) of 8 big-endian bytes, opaque to clients: pass it back
//! as `cursor` (URL-encoded; the URL-safe alphabet and missing padding are accepted too). It is `null`
//! after the last page.

pub mod allowances;
mod checks;
pub mod spend;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use alloy::primitives::B256;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::auth::{rpcauth_credential, Principal, ADMIN_USER};
use super::wire::BigInt;
use super::{guard, ApiError, ApiState, AuthStore, ErrorBody, Permission};
use crate::store::{AgentUser, RequestOutcome};

use checks::{
    authorize_change, blocking, decode_cursor, dominates, encode_cursor, forbidden, grants, required,
    username,
};

pub use spend::{reserve, reserve_session, SessionCost, Spend, SpendToken};

/// Longest user name (the reference's bound).
pub const MAX_USERNAME_LEN: usize = 128;
/// Largest `limit` of `GET /auth/users/{username}/txs`.
pub const MAX_TXS_LIMIT: u64 = 100;
/// Most tokens in one agent request's `allowances`.
pub const MAX_REQUESTED_ALLOWANCES: usize = 16;

/// The user, agent and allowance routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new()
        .route(
            "/auth/users",
            guard(auth, P::AddUser, post(add_user))
                .merge(guard(auth, P::RemoveUser, axum::routing::delete(remove_user)))
                .merge(guard(auth, P::AgentRequests, get(list_agents))),
        )
        .route("/auth/users/request", post(request_user))
        .route("/auth/users/confirm", guard(auth, P::AgentRequests, post(confirm_user)))
        .route("/auth/users/{username}/txs", guard(auth, P::AgentRequests, get(agent_txs)))
        .route("/auth/cookie/path", get(cookie_path))
        .merge(allowances::router(auth))
}

/// The OpenAPI description of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        add_user,
        remove_user,
        request_user,
        confirm_user,
        list_agents,
        agent_txs,
        cookie_path,
        allowances::request_allowance,
        allowances::list_requests,
        allowances::confirm_allowance,
        allowances::revoke_allowance
    ),
    components(schemas(
        AddUserRequest,
        RemoveUserRequest,
        AgentUserRequest,
        ConfirmUserRequest,
        ResultResponse,
        AgentUsersResponse,
        AgentUserJson,
        TxsResponse,
        CookiePathResponse,
        allowances::AllowanceRequestBody,
        allowances::AllowanceRequestsResponse,
        allowances::AllowanceRequestJson,
        allowances::ConfirmAllowanceRequest,
        allowances::RevokeAllowanceRequest
    )),
    tags((name = "auth", description = "API users, agent accounts and their allowances"))
)]
pub struct Doc;

// ---------------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------------

/// `POST /auth/users` body. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
pub struct AddUserRequest {
    /// The user name (1 to 128 characters, no spaces, `:`, `$` or `,`).
    #[schema(required = true, value_type = String, example = "ops")]
    pub username: Option<String>,
    /// Its password.
    #[schema(required = true, value_type = String, example = "s3cret")]
    pub password: Option<String>,
    /// Its whitelist: permission names or `*` (the reference's docs say `methods`; the key is `perms`).
    #[schema(required = true, value_type = Vec<String>, example = json!(["get_balance", "send_mor"]))]
    pub perms: Option<Vec<String>>,
}

/// `DELETE /auth/users` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RemoveUserRequest {
    /// The user to remove.
    #[schema(required = true, value_type = String, example = "ops")]
    pub username: Option<String>,
}

/// `POST /auth/users/request` body. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
pub struct AgentUserRequest {
    /// The user name asked for (`admin` is reserved).
    #[schema(required = true, value_type = String, example = "my-agent")]
    pub username: Option<String>,
    /// Its password (only its salted HMAC is stored).
    #[schema(required = true, value_type = String, example = "agent-secret")]
    pub password: Option<String>,
    /// The permissions asked for.
    #[schema(required = true, value_type = Vec<String>, example = json!(["send_mor", "open_session"]))]
    pub perms: Option<Vec<String>>,
    /// The allowances asked for: token (`eth` or the token's address) to wei.
    #[schema(required = true, value_type = BTreeMap<String, String>, example = json!({"eth": "1000000000000000"}))]
    pub allowances: Option<BTreeMap<String, BigInt>>,
}

/// `POST /auth/users/confirm` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmUserRequest {
    /// The agent.
    #[schema(required = true, value_type = String, example = "my-agent")]
    pub username: Option<String>,
    /// `true` confirms (the agent becomes a `proxy.conf` user), `false` declines (the request is deleted).
    #[schema(required = true, value_type = bool)]
    pub confirm: Option<bool>,
}

/// `{"result": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResultResponse {
    /// Always `true`.
    pub result: bool,
}

impl ResultResponse {
    fn ok() -> Json<Self> {
        Json(Self { result: true })
    }
}

/// `GET /auth/users` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentUsersResponse {
    /// Every agent request, confirmed or not, oldest first.
    pub agents: Vec<AgentUserJson>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentUserJson {
    /// Its user name.
    pub username: String,
    /// The permissions it asked for (its whitelist once confirmed).
    pub perms: Vec<String>,
    /// Whether it was confirmed.
    pub is_confirmed: bool,
    /// What it may still spend: token key (`eth` or a lower-case address) to wei.
    #[schema(value_type = BTreeMap<String, String>)]
    pub allowances: BTreeMap<String, BigInt>,
}

impl From<AgentUser> for AgentUserJson {
    fn from(a: AgentUser) -> Self {
        Self {
            username: a.username,
            perms: a.perms,
            is_confirmed: a.is_confirmed,
            allowances: a.allowances.into_iter().map(|(t, v)| (t, BigInt(v))).collect(),
        }
    }
}

/// `GET /auth/users/{username}/txs` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TxsQuery {
    /// The `nextCursor` of the previous page (opaque base64); absent for the first page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<String>,
    /// Transactions per page, 1 to 100.
    #[param(required = true, value_type = String, example = "10")]
    pub limit: Option<String>,
}

/// `GET /auth/users/{username}/txs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TxsResponse {
    /// Transaction hashes, newest first.
    #[schema(value_type = Vec<String>)]
    pub tx_hashes: Vec<B256>,
    /// The cursor of the next page, `null` after the last one.
    pub next_cursor: Option<String>,
}

/// `GET /auth/cookie/path` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CookiePathResponse {
    /// The absolute path of the `.cookie` file this node uses.
    #[schema(example = "/var/lib/proxy-router/.cookie")]
    pub path: String,
}

// ---------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------

/// Adds or updates a `proxy.conf` user; for `admin` the `.cookie` file is rewritten too. A caller
/// without full access may only grant permissions it holds (see the module docs).
#[utoipa::path(
    post,
    path = "/auth/users",
    tag = "auth",
    operation_id = "addUser",
    request_body = AddUserRequest,
    responses(
        (status = 200, description = "Stored", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid (an unknown permission names `perms`)", body = ErrorBody),
        (status = 403, description = "The caller may not make this change (`forbidden_user_change`)", body = ErrorBody),
    )
)]
pub async fn add_user(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<AddUserRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = username("username", body.username)?;
    let password = required("password", body.password)?;
    let grants = grants(&required("perms", body.perms)?)?;
    authorize_change(&state, principal.user(), &username, Some(&grants)).await?;
    let auth = state.auth.clone();
    blocking(move || auth.add_user(&username, &password, &grants)).await?;
    Ok(ResultResponse::ok())
}

/// Removes a user from `proxy.conf` and its agent record, allowances and allowance requests (its
/// transaction history is kept). `admin` cannot be removed.
#[utoipa::path(
    delete,
    path = "/auth/users",
    tag = "auth",
    operation_id = "removeUser",
    request_body = RemoveUserRequest,
    responses(
        (status = 200, description = "Removed", body = ResultResponse),
        (status = 400, description = "`username` is missing", body = ErrorBody),
        (status = 403, description = "`admin`, or a user the caller may not change (`forbidden_user_change`)", body = ErrorBody),
        (status = 404, description = "No such user or agent", body = ErrorBody),
    )
)]
pub async fn remove_user(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<RemoveUserRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = required("username", body.username)?;
    if username == ADMIN_USER {
        return Err(forbidden("the admin user cannot be removed"));
    }
    authorize_change(&state, principal.user(), &username, None).await?;
    let auth = state.auth.clone();
    let target = username.clone();
    let in_conf = match blocking(move || auth.remove_user(&target)).await {
        Ok(()) => true,
        Err(e) if e.status() == StatusCode::NOT_FOUND => false,
        Err(e) => return Err(e),
    };
    let in_store = state.store.agents().delete(&username).await?;
    if !in_conf && !in_store {
        return Err(ApiError::not_found(format!("user {username:?}")));
    }
    Ok(ResultResponse::ok())
}

/// An agent asks for an account: stored unconfirmed until a user with `agent_requests` confirms it.
/// Open (no credentials), as the reference; at most 100 requests wait at a time.
#[utoipa::path(
    post,
    path = "/auth/users/request",
    tag = "auth",
    operation_id = "requestAgentUser",
    security(()),
    request_body = AgentUserRequest,
    responses(
        (status = 200, description = "Stored, unconfirmed", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid, or `admin` was asked for", body = ErrorBody),
        (status = 409, description = "The name is taken (a user or a request)", body = ErrorBody),
        (status = 429, description = "Too many requests are waiting for confirmation", body = ErrorBody),
    )
)]
pub async fn request_user(
    State(state): State<ApiState>,
    body: Result<Json<AgentUserRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = username("username", body.username)?;
    if username == ADMIN_USER {
        return Err(ApiError::bad_request("username", "admin is a reserved username"));
    }
    let password = required("password", body.password)?;
    let perms = required("perms", body.perms)?;
    grants(&perms)?;
    let requested = required("allowances", body.allowances)?;
    if requested.len() > MAX_REQUESTED_ALLOWANCES {
        return Err(ApiError::bad_request(
            "allowances",
            format!("at most {MAX_REQUESTED_ALLOWANCES} tokens"),
        ));
    }
    let mut allowances = BTreeMap::new();
    for (token, amount) in requested {
        allowances.insert(allowances::token_key("allowances", &token)?, amount.0);
    }
    if state.auth.has_user(&username) {
        return Err(ApiError::conflict(format!("user {username:?} exists")));
    }
    let credential = rpcauth_credential(&password)?;
    let agent = AgentUser {
        username,
        credential,
        perms,
        is_confirmed: false,
        allowances,
        created_at: crate::consumer::unix_now(),
    };
    match state.store.agents().add_request(&agent).await? {
        RequestOutcome::Added => Ok(ResultResponse::ok()),
        RequestOutcome::Exists => {
            Err(ApiError::conflict(format!("username {:?} already has a request", agent.username)))
        }
        RequestOutcome::TooMany => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many agent requests are waiting for confirmation; retry later",
        )),
    }
}

/// Confirms an agent request (the agent becomes a `proxy.conf` user with the permissions it asked
/// for and can log in with its password) or declines it (the request and its allowances are deleted;
/// a confirmed agent's `proxy.conf` user stays until `DELETE /auth/users`).
#[utoipa::path(
    post,
    path = "/auth/users/confirm",
    tag = "auth",
    operation_id = "confirmAgentUser",
    request_body = ConfirmUserRequest,
    responses(
        (status = 200, description = "Confirmed or declined", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid", body = ErrorBody),
        (status = 403, description = "The caller may not make this change (`forbidden_user_change`)", body = ErrorBody),
        (status = 404, description = "No such agent request", body = ErrorBody),
        (status = 409, description = "A `proxy.conf` user already has the agent's name", body = ErrorBody),
    )
)]
pub async fn confirm_user(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<ConfirmUserRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = required("username", body.username)?;
    let confirm = body.confirm.ok_or_else(|| ApiError::bad_request("confirm", "required"))?;
    let agent = state
        .store
        .agents()
        .get(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent request {username:?}")))?;
    let grants = grants(&agent.perms)?;
    let full = state.auth.has_full_access(principal.user());
    if !full && agent.is_confirmed {
        return Err(forbidden("only a full-access user may re-confirm or decline a confirmed agent"));
    }
    if !confirm {
        if !full {
            dominates(&state.auth, principal.user(), &grants)?;
        }
        state.store.agents().delete(&username).await?;
        return Ok(ResultResponse::ok());
    }
    if !full && agent.allowances.values().any(|a| !a.is_zero()) {
        return Err(forbidden("only a full-access user may confirm an agent with spending allowances"));
    }
    if !agent.is_confirmed && state.auth.has_user(&username) {
        return Err(ApiError::conflict(format!("a user named {username:?} exists already")));
    }
    authorize_change(&state, principal.user(), &username, Some(&grants)).await?;
    let auth = state.auth.clone();
    let (user, credential) = (username.clone(), agent.credential.clone());
    blocking(move || auth.add_user_with_credential(&user, &credential, &grants)).await?;
    state.store.agents().confirm(&username).await?;
    Ok(ResultResponse::ok())
}

/// Every agent request, confirmed or not, with its allowances.
#[utoipa::path(
    get,
    path = "/auth/users",
    tag = "auth",
    operation_id = "getAgentUsers",
    responses((status = 200, description = "The agents, oldest request first", body = AgentUsersResponse))
)]
pub async fn list_agents(State(state): State<ApiState>) -> Result<Json<AgentUsersResponse>, ApiError> {
    let agents = state.store.agents().list().await?;
    Ok(Json(AgentUsersResponse { agents: agents.into_iter().map(AgentUserJson::from).collect() }))
}

/// The transactions sent for a user (opened sessions, MOR and ETH sent), newest first.
#[utoipa::path(
    get,
    path = "/auth/users/{username}/txs",
    tag = "auth",
    operation_id = "getAgentTxs",
    params(("username" = String, Path, description = "The user"), TxsQuery),
    responses(
        (status = 200, description = "One page of transaction hashes", body = TxsResponse),
        (status = 400, description = "`limit` is missing or out of 1..100, or `cursor` is not one of ours", body = ErrorBody),
    )
)]
pub async fn agent_txs(
    State(state): State<ApiState>,
    username: Result<Path<String>, PathRejection>,
    query: Result<Query<TxsQuery>, QueryRejection>,
) -> Result<Json<TxsResponse>, ApiError> {
    let Path(username) = username?;
    let Query(query) = query?;
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => return Err(ApiError::bad_request("limit", "required")),
        Some(text) => {
            text.parse::<u64>().map_err(|e| ApiError::bad_request("limit", format!("{e}: {text:?}")))?
        }
    };
    if !(1..=MAX_TXS_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit", format!("must be between 1 and {MAX_TXS_LIMIT}")));
    }
    let before =
        query.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
    let page = state.store.agents().txs(&username, before, limit).await?;
    Ok(Json(TxsResponse { tx_hashes: page.tx_hashes, next_cursor: page.next.map(encode_cursor) }))
}

/// The absolute path of the `.cookie` file, so a local UI can read the admin's credentials. Open, as
/// the reference.
#[utoipa::path(
    get,
    path = "/auth/cookie/path",
    tag = "auth",
    operation_id = "getCookiePath",
    security(()),
    responses((status = 200, description = "The cookie file's absolute path", body = CookiePathResponse))
)]
pub async fn cookie_path(State(state): State<ApiState>) -> Result<Json<CookiePathResponse>, ApiError> {
    let path =
        std::path::absolute(state.auth.cookie_path()).map_err(|e| ApiError::internal("cookie path", &e))?;
    Ok(Json(CookiePathResponse { path: path.display().to_string() }))
}
