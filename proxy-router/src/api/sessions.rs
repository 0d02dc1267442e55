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
//!
//! # Files
//!
//! This file holds the routes, the reads, the close and the shared helpers; `types` the JSON,
//! `claims` the provider's claims, `stakes` the user's on-hold stake, `economics` the contract's
//! formulas and `closeout` the dispute report.

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

mod claims;
mod closeout;
mod economics;
mod stakes;
mod types;

pub use claims::*;
pub use stakes::*;
pub use types::*;
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
