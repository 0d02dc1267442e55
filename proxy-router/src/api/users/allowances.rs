//! Allowance requests (go-proxy-router.md §1.8, §5.2 step 5):
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | POST | `/auth/allowance/requests` `{"username","token","allowance"}` | `request_allowance` | `{"result":true}` |
//! | GET | `/auth/allowance/requests` | `agent_requests` | `{"requests":[{"username","token","allowance"}]}` |
//! | POST | `/auth/allowance/confirm` `{"username","token","confirm"}` | `agent_requests` | `{"result":true}` |
//! | POST | `/auth/allowance/revoke` `{"username","token"}` | `agent_requests` | `{"result":true}` |
//!
//! Tokens are keyed by the lower-case token address, or `eth` for ETH ([`token_key`]). A confirmed
//! request *replaces* the user's allowance of that token (as the reference's `SetAllowance`); revoking
//! sets it to 0. A user asks for itself only, unless it has full access; confirming and revoking
//! need full access (allowances are money: `agent_requests` alone neither approves nor revokes them,
//! as in the reference's current code).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{forbidden, required, ResultResponse};
use crate::api::auth::Principal;
use crate::api::wire::{parse_address, BigInt};
use crate::api::{guard, ApiError, ApiState, AuthStore, ErrorBody, Permission};
use crate::store::{AllowanceRequest, MAX_ALLOWANCE_REQUESTS_PER_USER};

/// The key of ETH allowances.
pub const ETH: &str = "eth";

/// The allowance routes.
pub(super) fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new()
        .route(
            "/auth/allowance/requests",
            guard(auth, P::RequestAllowance, post(request_allowance)).merge(guard(
                auth,
                P::AgentRequests,
                axum::routing::get(list_requests),
            )),
        )
        .route("/auth/allowance/confirm", guard(auth, P::AgentRequests, post(confirm_allowance)))
        .route("/auth/allowance/revoke", guard(auth, P::AgentRequests, post(revoke_allowance)))
}

/// The allowance key of `token`: `eth` (any case), or an address, lower-cased. 400 naming `field`.
pub fn token_key(field: &str, token: &str) -> Result<String, ApiError> {
    let token = token.trim();
    if token.eq_ignore_ascii_case(ETH) {
        return Ok(ETH.to_owned());
    }
    let address = parse_address(field, token).map_err(|_| {
        ApiError::bad_request(field, format!("{token:?} is neither `eth` nor a token address"))
    })?;
    Ok(crate::api::wire::lower_address(&address))
}

/// `POST /auth/allowance/requests` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AllowanceRequestBody {
    /// The user asking (itself, unless the caller has full access).
    #[schema(required = true, value_type = String, example = "my-agent")]
    pub username: Option<String>,
    /// `eth`, or the token's address (e.g. MOR's).
    #[schema(required = true, value_type = String, example = "eth")]
    pub token: Option<String>,
    /// The allowance asked for, wei.
    #[schema(required = true, value_type = String, example = "1000000000000000000")]
    pub allowance: Option<BigInt>,
}

/// `GET /auth/allowance/requests` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllowanceRequestsResponse {
    /// Pending requests, oldest first.
    pub requests: Vec<AllowanceRequestJson>,
}

/// One pending allowance request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllowanceRequestJson {
    /// The user.
    pub username: String,
    /// The token key (`eth` or a lower-case address).
    pub token: String,
    /// The allowance asked for, wei.
    pub allowance: BigInt,
}

/// `POST /auth/allowance/confirm` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmAllowanceRequest {
    /// The user.
    #[schema(required = true, value_type = String, example = "my-agent")]
    pub username: Option<String>,
    /// The token of the request.
    #[schema(required = true, value_type = String, example = "eth")]
    pub token: Option<String>,
    /// `true`: the request's amount becomes the allowance; `false`: the request is dropped.
    #[schema(required = true, value_type = bool)]
    pub confirm: Option<bool>,
}

/// `POST /auth/allowance/revoke` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeAllowanceRequest {
    /// The user.
    #[schema(required = true, value_type = String, example = "my-agent")]
    pub username: Option<String>,
    /// The token.
    #[schema(required = true, value_type = String, example = "eth")]
    pub token: Option<String>,
}

/// A user asks for an allowance of one token (a new request replaces its previous one for that token).
#[utoipa::path(
    post,
    path = "/auth/allowance/requests",
    tag = "auth",
    operation_id = "requestAllowance",
    request_body = AllowanceRequestBody,
    responses(
        (status = 200, description = "Stored", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid", body = ErrorBody),
        (status = 403, description = "The request is for another user (`forbidden_user_change`)", body = ErrorBody),
        (status = 429, description = "The user has too many pending requests", body = ErrorBody),
    )
)]
pub async fn request_allowance(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<AllowanceRequestBody>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = required("username", body.username)?;
    let token = token_key("token", &required("token", body.token)?)?;
    let allowance = body.allowance.ok_or_else(|| ApiError::bad_request("allowance", "required"))?.0;
    if username != principal.user() && !state.auth.has_full_access(principal.user()) {
        return Err(forbidden("a user may only ask for its own allowance"));
    }
    let request = AllowanceRequest { username, token, allowance, requested_at: crate::consumer::unix_now() };
    if !state.store.agents().request_allowance(&request).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("at most {MAX_ALLOWANCE_REQUESTS_PER_USER} allowance requests may wait per user"),
        ));
    }
    Ok(ResultResponse::ok())
}

/// The pending allowance requests.
#[utoipa::path(
    get,
    path = "/auth/allowance/requests",
    tag = "auth",
    operation_id = "getAllowanceRequests",
    responses((status = 200, description = "Pending requests, oldest first", body = AllowanceRequestsResponse))
)]
pub async fn list_requests(
    State(state): State<ApiState>,
) -> Result<Json<AllowanceRequestsResponse>, ApiError> {
    let requests = state.store.agents().allowance_requests().await?;
    let requests = requests
        .into_iter()
        .map(|r| AllowanceRequestJson {
            username: r.username,
            token: r.token,
            allowance: BigInt(r.allowance),
        })
        .collect();
    Ok(Json(AllowanceRequestsResponse { requests }))
}

/// Confirms (the requested amount becomes the user's allowance of the token) or declines a request.
/// Needs full access.
#[utoipa::path(
    post,
    path = "/auth/allowance/confirm",
    tag = "auth",
    operation_id = "confirmAllowance",
    request_body = ConfirmAllowanceRequest,
    responses(
        (status = 200, description = "Confirmed or declined", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid", body = ErrorBody),
        (status = 403, description = "The caller lacks full access (`forbidden_user_change`)", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    )
)]
pub async fn confirm_allowance(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<ConfirmAllowanceRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = required("username", body.username)?;
    let token = token_key("token", &required("token", body.token)?)?;
    let confirm = body.confirm.ok_or_else(|| ApiError::bad_request("confirm", "required"))?;
    full_access(&state, &principal)?;
    match state.store.agents().answer_allowance_request(&username, &token, confirm).await? {
        Some(_) => Ok(ResultResponse::ok()),
        None => Err(ApiError::not_found(format!("allowance request of {username:?} for {token}"))),
    }
}

/// Sets the user's allowance of the token to 0. Needs full access.
#[utoipa::path(
    post,
    path = "/auth/allowance/revoke",
    tag = "auth",
    operation_id = "revokeAllowance",
    request_body = RevokeAllowanceRequest,
    responses(
        (status = 200, description = "Revoked", body = ResultResponse),
        (status = 400, description = "A field is missing or invalid", body = ErrorBody),
        (status = 403, description = "The caller lacks full access (`forbidden_user_change`)", body = ErrorBody),
    )
)]
pub async fn revoke_allowance(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<RevokeAllowanceRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let Json(body) = body?;
    let username = required("username", body.username)?;
    let token = token_key("token", &required("token", body.token)?)?;
    full_access(&state, &principal)?;
    state.store.agents().set_allowance(&username, &token, alloy::primitives::U256::ZERO).await?;
    Ok(ResultResponse::ok())
}

fn full_access(state: &ApiState, principal: &Principal) -> Result<(), ApiError> {
    if state.auth.has_full_access(principal.user()) {
        Ok(())
    } else {
        Err(forbidden("confirming and revoking allowances needs full access"))
    }
}
