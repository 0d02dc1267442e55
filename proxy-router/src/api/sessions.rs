//! The session and money routes of the reference (go-proxy-router.md §1.2), except opening sessions,
//! plus the routes for on-hold user stake and provider earnings that the reference lacks
//! (peers-and-users.md A.1 items 1–2).
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | GET | `/blockchain/sessions/{id}` | `get_sessions` | `{"session": Session}` |
//! | GET | `/blockchain/sessions/user?user=` | `get_sessions` | `{"sessions": [Session]}` |
//! | GET | `/blockchain/sessions/user/ids?user=` | `get_sessions` | bare array of ids |
//! | GET | `/blockchain/sessions/provider?provider=` | `get_sessions` | `{"sessions": [Session]}` |
//! | GET | `/blockchain/sessions/budget` | `get_budget` | `{"budget": "int"}` |
//! | GET | `/blockchain/token/supply` | `get_supply` | `{"supply": "int"}` |
//! | POST | `/blockchain/sessions/{id}/close` | `close_session` | `{"tx"}` |
//! | GET | `/proxy/sessions/{id}/providerClaimableBalance` | `get_sessions` | `{"balance": "int"}` |
//! | POST | `/proxy/sessions/{id}/providerClaim` | `session_provider_claim` | `{"tx", "claimed"}` |
//! | GET | `/blockchain/sessions/user/stakes-on-hold?user=` (new) | `get_sessions` | [`StakesOnHoldResponse`] |
//! | POST | `/blockchain/sessions/user/withdraw-stakes` (new) | `withdraw_user_stakes` | `{"tx", "withdrawn"}` |
//! | GET | `/proxy/sessions/provider-claimable?provider=` (new) | `get_sessions` | [`ProviderClaimableResponse`] |
//! | POST | `/proxy/sessions/provider-claim-all` (new) | `session_provider_claim` | [`ClaimAllResponse`] |
//!
//! # Where the data comes from
//!
//! Session reads and lists come from the local index (`store`); a session the indexer has not reached
//! yet (just opened) is read from the chain instead of answering 404. Money answers (claimable
//! balances, on-hold stake, budget, supply) and the checks before a write read the chain pinned to its
//! latest block: "now" is that block's timestamp, never the local clock, so the answers agree with
//! what a transaction mined next would do. The provider-wide claimable list is computed from the index
//! (one provider can have thousands of sessions) and `provider-claim-all` re-checks every session on
//! chain before it claims.
//!
//! # Economics
//!
//! [`session_claim`] and [`limit_remaining`] are `claimForProvider` and the provider's 365-day earning
//! limiter of our `SessionRouter.sol`, line for line; the user's on-hold entries are read from the
//! diamond's storage ([`on_hold_slots`]) because no getter lists them, and checked against
//! `getUserStakesOnHold`.
//!
//! # Closing
//!
//! Only the session's user (or its delegate with session rights) may close, which is checked before a
//! transaction is sent. The closing report is the provider's signed report, asked for over MOR-RPC by
//! the consumer role (`consumer::close`), or, when the provider cannot give a usable one, a report
//! signed by the node's own wallet, which the contract treats as a dispute (the reference's fallback).
//! [`closeout_report`] builds the latter when the node runs without the consumer role.

use std::collections::HashMap;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionReceipt;
use axum::body::Bytes as Body;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{payload_too_large, ApiError, ErrorBody};
use super::wire::{
    lower_address, parse_address, parse_b256, BigInt, LimitDefault, PageQuery, SessionJson, TxResponse,
};
use super::{guard, ApiState, AuthStore, ChainAccess, Permission};
use crate::chain::bindings::{Delegation, Marketplace, MorpheusToken, ProviderRegistry, SessionRouter};
use crate::chain::{ChainError, Signer};
use crate::index::convert;
use crate::store::{self, Page, SessionFilter, Store};

mod closeout;
mod economics;
#[cfg(test)]
mod tests;

pub use closeout::{closeout_report, session_report, sign_report, ReportStats, SignedReport};
pub use economics::{
    limit_remaining, on_hold_slots, session_claim, start_of_day, ProviderLimit, SessionClaim, DAY,
    SESSIONS_STORAGE_NAMESPACE, USER_STAKES_ON_HOLD_FIELD,
};

/// Sessions listed per page by default (the reference's `limit` default).
pub const DEFAULT_LIMIT: u64 = 10;
/// Most on-hold entries read from storage for one answer (each costs two storage reads).
pub const MAX_ON_HOLD_ENTRIES: u64 = 1_000;
/// Most claims one `provider-claim-all` call sends (each waits for its receipt).
pub const MAX_CLAIMS_PER_CALL: usize = 10;
/// Storage reads in flight at once.
const READ_CONCURRENCY: usize = 8;

/// The session routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new()
        .route("/blockchain/sessions/budget", guard(auth, P::GetBudget, get(budget)))
        .route("/blockchain/token/supply", guard(auth, P::GetSupply, get(supply)))
        .route("/blockchain/sessions/user", guard(auth, P::GetSessions, get(user_sessions)))
        .route("/blockchain/sessions/user/ids", guard(auth, P::GetSessions, get(user_session_ids)))
        .route("/blockchain/sessions/user/stakes-on-hold", guard(auth, P::GetSessions, get(stakes_on_hold)))
        .route(
            "/blockchain/sessions/user/withdraw-stakes",
            guard(auth, P::WithdrawUserStakes, post(withdraw_stakes)),
        )
        .route("/blockchain/sessions/provider", guard(auth, P::GetSessions, get(provider_sessions)))
        .route("/blockchain/sessions/{id}", guard(auth, P::GetSessions, get(session)))
        .route("/blockchain/sessions/{id}/close", guard(auth, P::CloseSession, post(close_session)))
        .route("/proxy/sessions/provider-claimable", guard(auth, P::GetSessions, get(provider_claimable)))
        .route(
            "/proxy/sessions/provider-claim-all",
            guard(auth, P::SessionProviderClaim, post(provider_claim_all)),
        )
        .route(
            "/proxy/sessions/{id}/providerClaimableBalance",
            guard(auth, P::GetSessions, get(provider_claimable_balance)),
        )
        .route(
            "/proxy/sessions/{id}/providerClaim",
            guard(auth, P::SessionProviderClaim, post(provider_claim)),
        )
}

/// The OpenAPI description of the session routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        session,
        user_sessions,
        user_session_ids,
        provider_sessions,
        budget,
        supply,
        close_session,
        provider_claimable_balance,
        provider_claim,
        stakes_on_hold,
        withdraw_stakes,
        provider_claimable,
        provider_claim_all
    ),
    components(schemas(
        SessionJson,
        SessionResponse,
        SessionsResponse,
        BudgetResponse,
        SupplyResponse,
        BalanceResponse,
        ClaimResponse,
        StakesOnHoldResponse,
        OnHoldJson,
        WithdrawRequest,
        WithdrawResponse,
        ProviderClaimableResponse,
        ClaimableSessionJson,
        ClaimAllResponse,
        ClaimJson,
        FailedClaimJson,
        TxResponse
    )),
    tags((name = "sessions", description = "Sessions, budget and supply, closing, provider claims, user on-hold stake"))
)]
pub struct Doc;

// ---------------------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------------------

/// `{"session": Session}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session with its bid's price.
    pub session: SessionJson,
}

/// `{"sessions": [Session]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionsResponse {
    /// One page of sessions.
    pub sessions: Vec<SessionJson>,
}

/// `{"budget": "int"}`: `getTodaysBudget(now)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetResponse {
    /// Today's compute budget, MOR wei.
    pub budget: BigInt,
}

/// `{"supply": "int"}`: `totalMORSupply(now)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SupplyResponse {
    /// The MOR supply the stipend formula uses, wei.
    pub supply: BigInt,
}

/// `{"balance": "int"}`: what `claimForProvider` would pay now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    /// MOR wei.
    pub balance: BigInt,
}

/// `{"tx", "claimed"}`: a mined `claimForProvider`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei the provider received in that transaction.
    pub claimed: BigInt,
}

/// A user's on-hold stake: what an early close locked until the next UTC day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StakesOnHoldResponse {
    /// The user (lower-case hex).
    pub user: String,
    /// Every on-hold entry in storage order (the order `withdrawUserStakes` walks backwards).
    pub on_hold: Vec<OnHoldJson>,
    /// Released and withdrawable now, MOR wei (`getUserStakesOnHold().available_`).
    pub available: BigInt,
    /// Still locked, MOR wei (`getUserStakesOnHold().hold_`).
    pub locked: BigInt,
    /// The earliest release time of a locked entry, unix seconds; null when nothing is locked.
    pub next_release_at: Option<u64>,
    /// The chain time the answer is for (the latest block's timestamp).
    pub now: u64,
    /// The block the answer was read at.
    pub block: u64,
    /// More than [`MAX_ON_HOLD_ENTRIES`] entries exist; only the first ones are listed (the totals are
    /// complete).
    pub truncated: bool,
}

/// One on-hold entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnHoldJson {
    /// MOR wei.
    pub amount: BigInt,
    /// When it is released, unix seconds (the start of the UTC day after the close).
    pub release_at: u64,
    /// `now >= releaseAt`: withdrawable.
    pub released: bool,
}

/// Body of `POST /blockchain/sessions/user/withdraw-stakes` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// At most this many released entries are withdrawn (1–255, default 255).
    pub iterations: Option<u8>,
}

/// `{"tx", "withdrawn"}`: a mined `withdrawUserStakes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawResponse {
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei paid to the user (the `UserWithdrawn` event).
    pub withdrawn: BigInt,
}

/// A provider's earnings still to claim, per session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderClaimableResponse {
    /// The provider (lower-case hex).
    pub provider: String,
    /// What claiming every listed session now would pay in total: the sum of `claimable`, capped by
    /// `limitRemaining`.
    pub total: BigInt,
    /// What the provider may still earn in its current 365-day window (its stake minus what it earned
    /// in the window); every claim is capped by it.
    pub limit_remaining: BigInt,
    /// Sessions with something claimable now, held, or still to come (open or not ended), oldest first.
    pub sessions: Vec<ClaimableSessionJson>,
    /// The chain time the answer is for (the latest block's timestamp).
    pub now: u64,
}

/// One session in [`ProviderClaimableResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimableSessionJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// The session's user (lower-case hex).
    pub user: String,
    /// What `claimForProvider` would pay now, MOR wei (capped by `limitRemaining`).
    pub claimable: BigInt,
    /// The part of a disputed early close withheld until `onHoldUntil`, MOR wei.
    pub on_hold: BigInt,
    /// When `onHold` is released, unix seconds; null when nothing is held.
    pub on_hold_until: Option<u64>,
    /// When the session's earnings become claimable: its end (`min(closedAt, endsAt)`, or `endsAt`
    /// while open).
    pub claimable_from: u64,
    /// Already paid to the provider, MOR wei.
    pub withdrawn: BigInt,
    /// Opening time.
    pub opened_at: u64,
    /// Planned end.
    pub ends_at: u64,
    /// Closing time, 0 while open.
    pub closed_at: u64,
}

/// What `provider-claim-all` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimAllResponse {
    /// The mined claims, in order.
    pub claims: Vec<ClaimJson>,
    /// MOR wei received over all claims.
    pub total: BigInt,
    /// Sessions with something claimable that this call did not try (at most
    /// [`MAX_CLAIMS_PER_CALL`] per call); call again.
    pub remaining: u64,
    /// The claim that failed, when one did (the calls before it were mined; the call stopped there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedClaimJson>,
}

/// One mined claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei received.
    pub claimed: BigInt,
}

/// A claim that failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedClaimJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// Why.
    pub error: ErrorBody,
}

/// `?user=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The user's address.
    #[param(value_type = Option<String>, example = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")]
    pub user: Option<String>,
}

/// `?provider=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// The provider's address.
    #[param(value_type = Option<String>, example = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8")]
    pub provider: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------------

/// A session with its bid's price (from the index; from the chain while the index has not reached it).
#[utoipa::path(
    get,
    path = "/blockchain/sessions/{id}",
    tag = "sessions",
    operation_id = "getSession",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "The session", body = SessionResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
    )
)]
pub async fn session(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    if let Some(session) = state.store.sessions().get(id).await? {
        let price = state.store.bids().get(session.bid_id).await?.map(|b| b.price_per_second);
        return Ok(Json(SessionResponse { session: SessionJson::new(&session, price) }));
    }
    let Some(chain) = state.chain.as_ref() else {
        return Err(ApiError::not_found(format!("session {id}")));
    };
    match chain_session(chain, id, BlockId::latest()).await? {
        Some((session, price)) => {
            Ok(Json(SessionResponse { session: SessionJson::new(&session, Some(price)) }))
        }
        None => Err(ApiError::not_found(format!("session {id}"))),
    }
}

/// A user's sessions, oldest first by default.
#[utoipa::path(
    get,
    path = "/blockchain/sessions/user",
    tag = "sessions",
    operation_id = "getSessionsByUser",
    params(UserQuery, PageQuery),
    responses(
        (status = 200, description = "One page of the user's sessions", body = SessionsResponse),
        (status = 400, description = "Missing or invalid `user`, invalid pagination", body = ErrorBody),
    )
)]
pub async fn user_sessions(
    State(state): State<ApiState>,
    query: Result<Query<UserQuery>, QueryRejection>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SessionsResponse>, ApiError> {
    let user = required_address("user", query?.0.user.as_deref())?;
    let filter = SessionFilter { user: Some(user), ..SessionFilter::default() };
    list_sessions(&state.store, filter, &page?.0).await.map(Json)
}

/// The ids of a user's sessions, as a bare JSON array (the reference's shape).
#[utoipa::path(
    get,
    path = "/blockchain/sessions/user/ids",
    tag = "sessions",
    operation_id = "getSessionIdsByUser",
    params(UserQuery, PageQuery),
    responses(
        (status = 200, description = "One page of session ids", body = Vec<String>),
        (status = 400, description = "Missing or invalid `user`, invalid pagination", body = ErrorBody),
    )
)]
pub async fn user_session_ids(
    State(state): State<ApiState>,
    query: Result<Query<UserQuery>, QueryRejection>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Vec<B256>>, ApiError> {
    let user = required_address("user", query?.0.user.as_deref())?;
    let (page, _) = page?.0.page(LimitDefault::Rows(DEFAULT_LIMIT))?;
    let filter = SessionFilter { user: Some(user), ..SessionFilter::default() };
    let sessions = state.store.sessions().list(filter, page).await?;
    Ok(Json(sessions.items.iter().map(|s| s.id).collect()))
}

/// A provider's sessions, oldest first by default.
#[utoipa::path(
    get,
    path = "/blockchain/sessions/provider",
    tag = "sessions",
    operation_id = "getSessionsByProvider",
    params(ProviderQuery, PageQuery),
    responses(
        (status = 200, description = "One page of the provider's sessions", body = SessionsResponse),
        (status = 400, description = "Missing or invalid `provider`, invalid pagination", body = ErrorBody),
    )
)]
pub async fn provider_sessions(
    State(state): State<ApiState>,
    query: Result<Query<ProviderQuery>, QueryRejection>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SessionsResponse>, ApiError> {
    let provider = required_address("provider", query?.0.provider.as_deref())?;
    let filter = SessionFilter { provider: Some(provider), ..SessionFilter::default() };
    list_sessions(&state.store, filter, &page?.0).await.map(Json)
}

/// Today's compute budget: `getTodaysBudget(now)` at the latest block.
#[utoipa::path(
    get,
    path = "/blockchain/sessions/budget",
    tag = "sessions",
    operation_id = "getTodaysBudget",
    responses(
        (status = 200, description = "Today's budget, MOR wei", body = BudgetResponse),
        (status = 503, description = "No chain connection or RPC unavailable", body = ErrorBody),
    )
)]
pub async fn budget(State(state): State<ApiState>) -> Result<Json<BudgetResponse>, ApiError> {
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let budget = SessionRouter::new(chain.diamond, chain.rpc.provider())
        .getTodaysBudget(u128::from(head.timestamp))
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getTodaysBudget", e))?;
    Ok(Json(BudgetResponse { budget: budget.into() }))
}

/// The MOR supply of the stipend formula: `totalMORSupply(now)` at the latest block.
#[utoipa::path(
    get,
    path = "/blockchain/token/supply",
    tag = "sessions",
    operation_id = "getTokenSupply",
    responses(
        (status = 200, description = "The supply, MOR wei", body = SupplyResponse),
        (status = 503, description = "No chain connection or RPC unavailable", body = ErrorBody),
    )
)]
pub async fn supply(State(state): State<ApiState>) -> Result<Json<SupplyResponse>, ApiError> {
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let supply = SessionRouter::new(chain.diamond, chain.rpc.provider())
        .totalMORSupply(u128::from(head.timestamp))
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("totalMORSupply", e))?;
    Ok(Json(SupplyResponse { supply: supply.into() }))
}

// ---------------------------------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------------------------------

/// Closes a session with the provider's signed report (`closeoutType` 0), or with one signed by the
/// node's wallet when the provider cannot give a usable one (a dispute, `closeoutType` 1; see the
/// module docs). Only the session's user or its session delegate may close.
#[utoipa::path(
    post,
    path = "/blockchain/sessions/{id}/close",
    tag = "sessions",
    operation_id = "closeSession",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "Mined `closeSession`", body = TxResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 403, description = "The wallet is not the session's user nor its delegate (`not_session_user`)", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Already closed (`session_closed`)", body = ErrorBody),
        (status = 422, description = "The transaction reverted; `reason` has the contract error", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn close_session(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let head = Head::latest(chain).await?;
    let (session, _) = chain_session(chain, id, head.block_id())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    if session.closed_at != 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_closed",
            format!("session {id} is already closed"),
        )
        .with_reason(format!("closed at {}", session.closed_at)));
    }
    if !may_act_for(chain, head, signer.address(), session.user).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_session_user",
            format!(
                "only the session's user {} or its session delegate may close it; this node's wallet is {}",
                lower_address(&session.user),
                lower_address(&signer.address())
            ),
        ));
    }
    let head = crate::consumer::reads::Head { number: head.number, timestamp: head.timestamp };
    let closed = match state.consumer.as_ref() {
        Some(consumer) => consumer.close_open(&session, head).await?.tx,
        // Without the consumer role (tests of this module): our own report, a dispute.
        None => {
            let report = closeout_report(&signer, chain.chain_id, &session, head.timestamp).await?;
            signer.sender.close_session(report.report, report.signature).await?.transaction_hash
        }
    };
    Ok(Json(TxResponse { tx: closed }))
}

// ---------------------------------------------------------------------------------------------------
// Provider claims
// ---------------------------------------------------------------------------------------------------

/// What `claimForProvider` would pay for the session now (read on chain at the latest block,
/// including the provider's earning limit). `0` before the session's end: the contract pays nothing
/// then.
#[utoipa::path(
    get,
    path = "/proxy/sessions/{id}/providerClaimableBalance",
    tag = "sessions",
    operation_id = "getProviderClaimableBalance",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "Claimable now, MOR wei", body = BalanceResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "No chain connection or RPC unavailable", body = ErrorBody),
    )
)]
pub async fn provider_claimable_balance(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let (session, price) = chain_session(chain, id, head.block_id())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    let limit = provider_limit(chain, head, session.provider).await?;
    let claim = session_claim(&session, price, head.timestamp);
    Ok(Json(BalanceResponse { balance: claim.amount.min(limit.remaining).into() }))
}

/// Claims the session's earnings for its provider (`claimForProvider`); answers after the receipt
/// with the MOR received. 409 `nothing_to_claim` (with the reason) instead of a transaction that would
/// pay nothing.
#[utoipa::path(
    post,
    path = "/proxy/sessions/{id}/providerClaim",
    tag = "sessions",
    operation_id = "claimProviderBalance",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "Mined `claimForProvider`", body = ClaimResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 403, description = "The wallet is not the session's provider nor its delegate (`not_session_provider`)", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Nothing claimable now (`nothing_to_claim`; `reason` says why)", body = ErrorBody),
        (status = 422, description = "The transaction reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn provider_claim(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let head = Head::latest(chain).await?;
    let (session, price) = chain_session(chain, id, head.block_id())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    if !may_act_for(chain, head, signer.address(), session.provider).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_session_provider",
            format!(
                "only the session's provider {} or its session delegate may claim; this node's wallet is {}",
                lower_address(&session.provider),
                lower_address(&signer.address())
            ),
        ));
    }
    let limit = provider_limit(chain, head, session.provider).await?;
    let claim = session_claim(&session, price, head.timestamp);
    if claim.amount.min(limit.remaining).is_zero() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_to_claim",
            format!("session {id} has nothing to claim now"),
        )
        .with_reason(nothing_to_claim_reason(&claim, &limit, head.timestamp)));
    }
    let receipt = signer.sender.claim_for_provider(id).await?;
    let claimed = transfers_to(&receipt, chain.mor_token, session.provider);
    Ok(Json(ClaimResponse { tx: receipt.transaction_hash, claimed: claimed.into() }))
}

/// A provider's sessions with earnings to claim now, held, or still to come, and the total claimable
/// now. Computed from the local index at the chain's latest time; the earning limit is read on chain.
#[utoipa::path(
    get,
    path = "/proxy/sessions/provider-claimable",
    tag = "sessions",
    operation_id = "getProviderClaimable",
    params(("provider" = Option<String>, Query, description = "The provider (default: this node's wallet)")),
    responses(
        (status = 200, description = "Claimable earnings per session", body = ProviderClaimableResponse),
        (status = 400, description = "Invalid `provider`", body = ErrorBody),
        (status = 503, description = "No chain, or no wallet and no `provider`", body = ErrorBody),
    )
)]
pub async fn provider_claimable(
    State(state): State<ApiState>,
    query: Result<Query<ProviderQuery>, QueryRejection>,
) -> Result<Json<ProviderClaimableResponse>, ApiError> {
    let provider = match query?.0.provider.as_deref() {
        Some(text) if !text.trim().is_empty() => parse_address("provider", text)?,
        _ => state.signer()?.address(),
    };
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let limit = provider_limit(chain, head, provider).await?;
    let sessions = provider_claims(&state.store, chain, head, provider).await?;
    let sum = sessions.iter().fold(U256::ZERO, |acc, (_, claim)| acc.saturating_add(claim.amount));
    Ok(Json(ProviderClaimableResponse {
        provider: lower_address(&provider),
        total: sum.min(limit.remaining).into(),
        limit_remaining: limit.remaining.into(),
        sessions: sessions.iter().map(|(s, claim)| claimable_json(s, claim, limit.remaining)).collect(),
        now: head.timestamp,
    }))
}

/// Claims every session of this node's wallet (as provider) that has something claimable, oldest
/// first, at most [`MAX_CLAIMS_PER_CALL`] per call, until the earning limit is used up. Each session
/// is re-checked on chain before its claim. Stops at the first failure: the claims before it are
/// listed with the failure.
#[utoipa::path(
    post,
    path = "/proxy/sessions/provider-claim-all",
    tag = "sessions",
    operation_id = "claimAllProviderBalances",
    responses(
        (status = 200, description = "The mined claims (possibly none)", body = ClaimAllResponse),
        (status = 422, description = "The first claim reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn provider_claim_all(State(state): State<ApiState>) -> Result<Json<ClaimAllResponse>, ApiError> {
    let chain = state.chain()?;
    let signer = state.signer()?;
    let provider = signer.address();
    let head = Head::latest(chain).await?;
    let mut remaining_limit = provider_limit(chain, head, provider).await?.remaining;
    let candidates: Vec<B256> = provider_claims(&state.store, chain, head, provider)
        .await?
        .into_iter()
        .filter(|(_, claim)| !claim.amount.is_zero())
        .map(|(s, _)| s.id)
        .collect();

    let mut answer =
        ClaimAllResponse { claims: Vec::new(), total: BigInt::default(), remaining: 0, failed: None };
    let mut tried = 0;
    for id in &candidates {
        if tried == MAX_CLAIMS_PER_CALL || remaining_limit.is_zero() {
            break;
        }
        tried += 1;
        match claim_one(chain, &signer, head, *id, remaining_limit).await {
            Ok(Some((tx, claimed))) => {
                remaining_limit = remaining_limit.saturating_sub(claimed);
                answer.total = BigInt(answer.total.0.saturating_add(claimed));
                answer.claims.push(ClaimJson { session_id: *id, tx, claimed: claimed.into() });
            }
            Ok(None) => {}
            Err(error) if answer.claims.is_empty() => return Err(error),
            Err(error) => {
                answer.failed = Some(FailedClaimJson { session_id: *id, error: error.body() });
                break;
            }
        }
    }
    answer.remaining = (candidates.len() - tried) as u64;
    Ok(Json(answer))
}

/// Claims one session if the chain (at `head`) says it has something claimable; `None` otherwise.
async fn claim_one(
    chain: &ChainAccess,
    signer: &Signer,
    head: Head,
    id: B256,
    limit: U256,
) -> Result<Option<(B256, U256)>, ApiError> {
    let Some((session, price)) = chain_session(chain, id, head.block_id()).await? else {
        return Ok(None);
    };
    if session_claim(&session, price, head.timestamp).amount.min(limit).is_zero() {
        return Ok(None);
    }
    let receipt = signer.sender.claim_for_provider(id).await?;
    Ok(Some((receipt.transaction_hash, transfers_to(&receipt, chain.mor_token, session.provider))))
}

// ---------------------------------------------------------------------------------------------------
// User on-hold stake
// ---------------------------------------------------------------------------------------------------

/// A user's on-hold stake (locked by early closes until the next UTC day), entry by entry with its
/// release time, and the totals of `getUserStakesOnHold`.
#[utoipa::path(
    get,
    path = "/blockchain/sessions/user/stakes-on-hold",
    tag = "sessions",
    operation_id = "getUserStakesOnHold",
    params(("user" = Option<String>, Query, description = "The user (default: this node's wallet)")),
    responses(
        (status = 200, description = "On-hold entries and totals", body = StakesOnHoldResponse),
        (status = 400, description = "Invalid `user`", body = ErrorBody),
        (status = 502, description = "The diamond's storage does not match `getUserStakesOnHold` (`unexpected_contract_state`)", body = ErrorBody),
        (status = 503, description = "No chain, or no wallet and no `user`", body = ErrorBody),
    )
)]
pub async fn stakes_on_hold(
    State(state): State<ApiState>,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Json<StakesOnHoldResponse>, ApiError> {
    let user = match query?.0.user.as_deref() {
        Some(text) if !text.trim().is_empty() => parse_address("user", text)?,
        _ => state.signer()?.address(),
    };
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    Ok(Json(on_hold(chain, head, user).await?))
}

/// Withdraws this node's wallet's released on-hold stake (`withdrawUserStakes`); answers after the
/// receipt with the amount paid. 409 `nothing_to_withdraw` (with the next release time) when nothing
/// is released yet.
#[utoipa::path(
    post,
    path = "/blockchain/sessions/user/withdraw-stakes",
    tag = "sessions",
    operation_id = "withdrawUserStakes",
    request_body(content = Option<WithdrawRequest>, description = "Optional; `{}` or no body withdraws up to 255 entries", content_type = "application/json"),
    responses(
        (status = 200, description = "Mined `withdrawUserStakes`", body = WithdrawResponse),
        (status = 400, description = "Invalid `iterations` or body", body = ErrorBody),
        (status = 409, description = "Nothing released yet (`nothing_to_withdraw`)", body = ErrorBody),
        (status = 422, description = "The transaction reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn withdraw_stakes(
    State(state): State<ApiState>,
    body: Result<Body, BytesRejection>,
) -> Result<Json<WithdrawResponse>, ApiError> {
    let request: WithdrawRequest = optional_json(body)?;
    let iterations = match request.iterations {
        None => u8::MAX,
        Some(0) => return Err(ApiError::bad_request("iterations", "must be at least 1")),
        Some(n) => n,
    };
    let chain = state.chain()?;
    let signer = state.signer()?;
    let user = signer.address();
    let head = Head::latest(chain).await?;
    let held = on_hold(chain, head, user).await?;
    if held.available.0.is_zero() {
        let reason = match held.next_release_at {
            Some(at) => format!("{} MOR wei are locked; the next part is released at {at}", held.locked.0),
            None => "the wallet has no on-hold stake".to_owned(),
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_to_withdraw",
            "no on-hold stake is released yet",
        )
        .with_reason(reason));
    }
    let receipt = signer.sender.withdraw_user_stakes(user, iterations).await?;
    let withdrawn = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == chain.diamond)
        .filter_map(|log| log.log_decode::<SessionRouter::UserWithdrawn>().ok())
        .fold(U256::ZERO, |acc, log| acc.saturating_add(log.inner.data.amount_));
    Ok(Json(WithdrawResponse { tx: receipt.transaction_hash, withdrawn: withdrawn.into() }))
}

/// Reads `user`'s on-hold entries from the diamond's storage at `head` and checks them against
/// `getUserStakesOnHold`.
async fn on_hold(chain: &ChainAccess, head: Head, user: Address) -> Result<StakesOnHoldResponse, ApiError> {
    let provider = chain.rpc.provider();
    let totals = SessionRouter::new(chain.diamond, provider)
        .getUserStakesOnHold(user, u8::MAX)
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getUserStakesOnHold", e))?;

    let (length_slot, first) = on_hold_slots(user);
    let read = |slot: U256| async move {
        provider
            .get_storage_at(chain.diamond, slot)
            .number(head.number)
            .await
            .map_err(|e| ApiError::from(ChainError::from_rpc("eth_getStorageAt", "on-hold entries", e)))
    };
    let length = read(length_slot).await?;
    let truncated = length > U256::from(MAX_ON_HOLD_ENTRIES);
    let count = if truncated { MAX_ON_HOLD_ENTRIES } else { length.to::<u64>() };
    let entries: Vec<(U256, U256)> = futures::stream::iter(0..count)
        .map(|i| {
            let amount_slot = first.wrapping_add(U256::from(2 * i));
            async move {
                let amount = read(amount_slot).await?;
                let release_at = read(amount_slot.wrapping_add(U256::from(1))).await?;
                Ok::<_, ApiError>((amount, release_at))
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;

    let now = head.timestamp;
    let mut on_hold = Vec::with_capacity(entries.len());
    let (mut released_sum, mut locked_sum) = (U256::ZERO, U256::ZERO);
    let mut next_release_at: Option<u64> = None;
    for (amount, release_at) in entries {
        // `releaseAt` is a uint128 in the low half of its slot.
        let release_at = u64::try_from(release_at & U256::from(u128::MAX)).unwrap_or(u64::MAX);
        let released = now >= release_at;
        if released {
            released_sum = released_sum.saturating_add(amount);
        } else {
            locked_sum = locked_sum.saturating_add(amount);
            next_release_at = Some(next_release_at.map_or(release_at, |n| n.min(release_at)));
        }
        on_hold.push(OnHoldJson { amount: amount.into(), release_at, released });
    }
    if !truncated && (released_sum != totals.available_ || locked_sum != totals.hold_) {
        tracing::error!(
            %user, block = head.number, %released_sum, %locked_sum, available = %totals.available_,
            hold = %totals.hold_, "on-hold entries in storage do not add up to getUserStakesOnHold"
        );
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "unexpected_contract_state",
            "the diamond's on-hold entries do not match getUserStakesOnHold (unknown storage layout)",
        ));
    }
    Ok(StakesOnHoldResponse {
        user: lower_address(&user),
        on_hold,
        available: totals.available_.into(),
        locked: totals.hold_.into(),
        next_release_at,
        now,
        block: head.number,
        truncated,
    })
}

fn nothing_to_claim_reason(claim: &SessionClaim, limit: &ProviderLimit, now: u64) -> String {
    if now < claim.end {
        format!("the session's earnings are claimable from its end at {} (chain time now {now})", claim.end)
    } else if claim.rewards.is_zero() {
        "everything the session earned has been paid".to_owned()
    } else if claim.amount.is_zero() {
        format!("{} MOR wei of a disputed early close are held until {}", claim.on_hold, claim.on_hold_until)
    } else {
        format!(
            "the provider has been paid its whole stake in the current 365-day window, which ends at {}",
            limit.period_end
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// The chain's latest block: reads are pinned to its number and "now" is its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    number: u64,
    timestamp: u64,
}

impl Head {
    async fn latest(chain: &ChainAccess) -> Result<Self, ApiError> {
        let block = chain
            .rpc
            .provider()
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ChainError::from_rpc("eth_getBlockByNumber", "latest block", e))?
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_GATEWAY, "rpc_error", "the RPC node returned no latest block")
            })?;
        Ok(Self { number: block.header.number, timestamp: block.header.timestamp })
    }

    fn block_id(self) -> BlockId {
        BlockId::number(self.number)
    }
}

/// The session `id` on chain at `at` as the store's record, with its bid's price; `None` when the
/// chain does not know it.
async fn chain_session(
    chain: &ChainAccess,
    id: B256,
    at: BlockId,
) -> Result<Option<(store::Session, U256)>, ApiError> {
    let provider = chain.rpc.provider();
    let s = SessionRouter::new(chain.diamond, provider)
        .getSession(id)
        .block(at)
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getSession", e))?;
    if s.user == Address::ZERO {
        return Ok(None);
    }
    let bid = Marketplace::new(chain.diamond, provider)
        .getBid(s.bidId)
        .block(at)
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getBid", e))?;
    let session = convert::session(id, s, bid.provider, bid.modelId);
    Ok(Some((session, bid.pricePerSecond)))
}

/// The earning limit of `provider` at `head`.
async fn provider_limit(
    chain: &ChainAccess,
    head: Head,
    provider: Address,
) -> Result<ProviderLimit, ApiError> {
    let p = ProviderRegistry::new(chain.diamond, chain.rpc.provider())
        .getProvider(provider)
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getProvider", e))?;
    let period_end = convert::secs(p.limitPeriodEnd);
    Ok(ProviderLimit {
        remaining: limit_remaining(p.stake, period_end, p.limitPeriodEarned, head.timestamp),
        period_end,
    })
}

/// The rights a session delegate holds: `keccak256("delegation.rules.session")`.
pub fn session_rights() -> B256 {
    keccak256("delegation.rules.session")
}

/// Whether `caller` may act on `principal`'s sessions: it is `principal`, or holds its session rights
/// in the delegate registry (what the contract's `_validateDelegatee` checks). A reverting check (the
/// reference's diamond without a registry) means "not delegated".
async fn may_act_for(
    chain: &ChainAccess,
    head: Head,
    caller: Address,
    principal: Address,
) -> Result<bool, ApiError> {
    if caller == principal {
        return Ok(true);
    }
    let delegated = Delegation::new(chain.diamond, chain.rpc.provider())
        .isRightsDelegated(caller, principal, session_rights())
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("isRightsDelegated", e));
    match delegated {
        Ok(delegated) => Ok(delegated),
        // The reference's diamond reverts without data when no delegate registry is set: nobody is
        // delegated then.
        Err(ChainError::Reverted { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// MOR moved to `to` by `token` transfers in `receipt`.
fn transfers_to(receipt: &TransactionReceipt, token: Address, to: Address) -> U256 {
    receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == token)
        .filter_map(|log| log.log_decode::<MorpheusToken::Transfer>().ok())
        .filter(|log| log.inner.data.to == to)
        .fold(U256::ZERO, |acc, log| acc.saturating_add(log.inner.data.value))
}

/// A provider's sessions with something to claim now, held, or to come, oldest first, with their
/// claims at `head`, from the store (bid prices missing from the store are read on chain).
async fn provider_claims(
    store: &Store,
    chain: &ChainAccess,
    head: Head,
    provider: Address,
) -> Result<Vec<(store::Session, SessionClaim)>, ApiError> {
    let filter = SessionFilter { provider: Some(provider), ..SessionFilter::default() };
    let mut prices = Prices::default();
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = store.sessions().list(filter, Page::new(offset, Page::MAX_LIMIT)).await?;
        offset += page.items.len() as u64;
        let done = page.items.is_empty() || offset >= page.total;
        for session in page.items {
            let price = match prices.get(store, session.bid_id).await? {
                Some(price) => price,
                None => chain_bid_price(chain, head, session.bid_id).await?,
            };
            let claim = session_claim(&session, price, head.timestamp);
            let still_to_come = head.timestamp < claim.end;
            if still_to_come || !claim.amount.is_zero() || !claim.on_hold.is_zero() {
                out.push((session, claim));
            }
        }
        if done {
            return Ok(out);
        }
    }
}

async fn chain_bid_price(chain: &ChainAccess, head: Head, bid_id: B256) -> Result<U256, ApiError> {
    Ok(Marketplace::new(chain.diamond, chain.rpc.provider())
        .getBid(bid_id)
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getBid", e))?
        .pricePerSecond)
}

fn claimable_json(session: &store::Session, claim: &SessionClaim, limit: U256) -> ClaimableSessionJson {
    ClaimableSessionJson {
        session_id: session.id,
        user: lower_address(&session.user),
        claimable: claim.amount.min(limit).into(),
        on_hold: claim.on_hold.into(),
        on_hold_until: (claim.on_hold_until != 0).then_some(claim.on_hold_until),
        claimable_from: claim.end,
        withdrawn: session.provider_withdrawn_amount.into(),
        opened_at: session.opened_at,
        ends_at: session.ends_at,
        closed_at: session.closed_at,
    }
}

/// Bid prices from the store, each read once per request.
#[derive(Debug, Default)]
struct Prices(HashMap<B256, Option<U256>>);

impl Prices {
    async fn get(&mut self, store: &Store, bid_id: B256) -> Result<Option<U256>, ApiError> {
        if let Some(price) = self.0.get(&bid_id) {
            return Ok(*price);
        }
        let price = store.bids().get(bid_id).await?.map(|b| b.price_per_second);
        self.0.insert(bid_id, price);
        Ok(price)
    }
}

/// One page of sessions matching `filter`, each with its bid's price.
async fn list_sessions(
    store: &Store,
    filter: SessionFilter,
    query: &PageQuery,
) -> Result<SessionsResponse, ApiError> {
    let (page, _) = query.page(LimitDefault::Rows(DEFAULT_LIMIT))?;
    let sessions = store.sessions().list(filter, page).await?;
    let mut prices = Prices::default();
    let mut out = Vec::with_capacity(sessions.items.len());
    for session in &sessions.items {
        let price = prices.get(store, session.bid_id).await?;
        out.push(SessionJson::new(session, price));
    }
    Ok(SessionsResponse { sessions: out })
}

/// A required address query parameter.
fn required_address(field: &str, value: Option<&str>) -> Result<Address, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Err(ApiError::bad_request(field, "required")),
        Some(text) => parse_address(field, text),
    }
}

/// An optional JSON body: empty means `T::default()`; otherwise it must parse, and a bad field is
/// named.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: Result<Body, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request_body(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request_body(format!("invalid JSON body: {}", e.inner()))
        } else {
            ApiError::bad_request(path, e.inner())
        }
    })
}
