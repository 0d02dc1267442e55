//! The consumer role's routes (go-proxy-router.md §1.2, §1.3, §6):
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | POST | `/blockchain/sessions` | `open_session` | `{"sessionID"}`: open with a ready approval |
//! | POST | `/blockchain/bids/{id}/session` | `open_session` | `{"sessionID"}`: open on one bid |
//! | POST | `/blockchain/models/{id}/session` | `open_session` | `{"sessionID"}`: open with the best provider |
//! | POST | `/proxy/sessions/initiate` | `initiate_session` | the provider's `SessionRes` |
//! | POST | `/proxy/provider/ping` | none (as the reference) | `{"ping": ms, "version"}` |
//! | POST | `/v1/chat/completions` | `chat` | OpenAI JSON or SSE (recorded with a `chat_id` header, see [`super::chats`]) |
//! | POST | `/v1/embeddings` | `embeddings` | OpenAI JSON |
//!
//! # The OpenAI surface
//!
//! The `session_id` header names the session (hex, `0x` optional). The body is any JSON object: the
//! fields we do not know are kept and sent on. A streamed answer (`"stream": true`) is relayed as it
//! arrives, one `data: <chunk JSON>\n\n` event per provider chunk, then `data: [DONE]\n\n`; a
//! non-streamed one is the provider's JSON as is (upstream fields such as `tool_calls`, `usage` and
//! `finish_reason` untouched). Every answer carries `X-Request-Id` (the client's, or 8 new hex
//! characters) and `X-Session-Id` (the session that answered: a failover successor when the
//! session's provider failed and the session was opened with `failover`).
//!
//! Errors before the first byte are JSON: the provider's model error is the reference's
//! `400 {"providerModelError": …}`; everything else is an [`ApiError`] (404 unknown session, 403
//! another user's, 409 closed or expired, 502/504 provider failures, …). Once a stream has started,
//! a failure ends it with one terminal event `data: {"error": {"message", "type", "code"}}\n\n`
//! (no `[DONE]`), and the node carries on.
//!
//! A non-admin user opening a session spends its MOR allowance ([`super::users::spend`]).

use std::convert::Infallible;

use alloy::primitives::{Address, B256};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::users::{reserve_session, SessionCost};
use super::wire::{hex32, parse_b256, BigInt, HexBytes};
use super::{chats, guard, local, ApiState, AuthStore, Permission};
use crate::consumer::client::request_id;
use crate::consumer::{ConsumerError, OpenRequest, Opened, Prompt, PromptKind, ProviderFailure, RelayEvent};
use crate::protocol::SessionRes;

/// The request header naming the session (the reference's, with an underscore).
pub const SESSION_ID_HEADER: &str = "session_id";
/// The request header naming a local model (served by the provider role).
pub const MODEL_ID_HEADER: &str = "model_id";
/// The request id header, echoed in every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The answer header naming the session that answered.
pub const ANSWER_SESSION_HEADER: &str = "x-session-id";

/// The consumer routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new()
        .route("/blockchain/sessions", guard(auth, P::OpenSession, post(open_with_approval)))
        .route("/blockchain/bids/{id}/session", guard(auth, P::OpenSession, post(open_by_bid)))
        .route("/blockchain/models/{id}/session", guard(auth, P::OpenSession, post(open_by_model)))
        .route("/proxy/sessions/initiate", guard(auth, P::InitiateSession, post(initiate)))
        .route("/proxy/provider/ping", post(ping))
        .route("/v1/chat/completions", guard(auth, P::Chat, post(chat_completions)))
        .route("/v1/embeddings", guard(auth, P::Embeddings, post(embeddings)))
}

/// The OpenAPI description of the consumer routes.
#[derive(OpenApi)]
#[openapi(
    paths(open_with_approval, open_by_bid, open_by_model, initiate, ping, chat_completions, embeddings),
    components(schemas(
        OpenWithApprovalRequest,
        OpenByBidRequest,
        OpenByModelRequest,
        SessionOpenedResponse,
        SkippedProvider,
        InitiateRequest,
        SessionResJson,
        PingRequest,
        PingResponse,
        ProviderModelError
    )),
    tags(
        (name = "sessions", description = "Sessions: open, read, close, claims"),
        (name = "proxy", description = "The consumer's MOR-RPC handshake and ping, and the OpenAI-compatible inference routes")
    )
)]
pub struct Doc;

// -------------------------------------------------------------------------------------------------
// Opening
// -------------------------------------------------------------------------------------------------

/// `POST /blockchain/sessions` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct OpenWithApprovalRequest {
    /// The provider's approval (from `POST /proxy/sessions/initiate`), hex.
    pub approval: HexBytes,
    /// Its EIP-191 signature, hex.
    #[serde(rename = "approvalSig")]
    pub approval_sig: HexBytes,
    /// MOR wei to stake (or pay, with `directPayment`).
    pub stake: BigInt,
    /// Pay the provider directly instead of staking.
    #[serde(rename = "directPayment", default)]
    pub direct_payment: bool,
}

/// `POST /blockchain/bids/{id}/session` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct OpenByBidRequest {
    /// Seconds the stake should pay for (the contract derives the real end; at least 300).
    #[serde(rename = "sessionDuration")]
    pub session_duration: BigInt,
    /// Pay the provider directly instead of staking (ours; the reference's route stakes only).
    #[serde(rename = "directPayment", default)]
    pub direct_payment: bool,
    /// Replace a failing provider by the next-best bid of the model (ours on this route).
    #[serde(default)]
    pub failover: bool,
}

/// `POST /blockchain/models/{id}/session` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct OpenByModelRequest {
    /// Seconds the stake should pay for (the contract derives the real end; at least 300).
    #[serde(rename = "sessionDuration")]
    pub session_duration: BigInt,
    /// Pay the provider directly instead of staking.
    #[serde(rename = "directPayment", default)]
    pub direct_payment: bool,
    /// Replace a provider that fails before answering by the next-best bid, for the remaining time.
    #[serde(default)]
    pub failover: bool,
}

/// A provider that was tried and skipped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkippedProvider {
    /// The provider.
    #[schema(value_type = String)]
    pub provider: Address,
    /// The bid tried.
    #[serde(rename = "bidId")]
    #[schema(value_type = String)]
    pub bid_id: B256,
    /// Why it was skipped.
    pub reason: String,
}

impl From<ProviderFailure> for SkippedProvider {
    fn from(f: ProviderFailure) -> Self {
        Self { provider: f.provider, bid_id: f.bid_id, reason: f.reason }
    }
}

/// `{"sessionID"}` (the reference's answer) plus the transaction and, by model, the providers skipped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionOpenedResponse {
    /// The new session.
    #[serde(rename = "sessionID")]
    #[schema(value_type = String)]
    pub session_id: B256,
    /// The `openSession` transaction.
    #[schema(value_type = String)]
    pub tx: B256,
    /// The bid the session was opened on.
    #[serde(rename = "bidID")]
    #[schema(value_type = String)]
    pub bid_id: B256,
    /// The provider.
    #[schema(value_type = String)]
    pub provider: Address,
    /// MOR wei staked or paid.
    pub stake: BigInt,
    /// When the session ends, unix seconds.
    #[serde(rename = "endsAt")]
    pub ends_at: u64,
    /// Providers tried before and why they were skipped (opening by model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedProvider>,
}

impl From<Opened> for SessionOpenedResponse {
    fn from(o: Opened) -> Self {
        Self {
            session_id: o.session_id,
            tx: o.tx,
            bid_id: o.bid_id,
            provider: o.provider,
            stake: BigInt(o.stake),
            ends_at: o.ends_at,
            skipped: o.skipped.into_iter().map(SkippedProvider::from).collect(),
        }
    }
}

fn duration(value: BigInt) -> Result<u64, ApiError> {
    u64::try_from(value.0).map_err(|_| ApiError::bad_request("sessionDuration", "too large"))
}

/// Opens a session with an approval obtained before from `POST /proxy/sessions/initiate`.
#[utoipa::path(
    post,
    path = "/blockchain/sessions",
    tag = "sessions",
    operation_id = "openSessionWithApproval",
    request_body = OpenWithApprovalRequest,
    responses(
        (status = 200, description = "Opened (`SessionOpened` seen)", body = SessionOpenedResponse),
        (status = 400, description = "Malformed body, an approval for another user or chain", body = ErrorBody),
        (status = 404, description = "The approval's bid does not exist or is deleted", body = ErrorBody),
        (status = 422, description = "Not enough MOR, or the contract refused (`reason`)", body = ErrorBody),
        (status = 503, description = "No chain, wallet or consumer", body = ErrorBody),
    )
)]
pub async fn open_with_approval(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<OpenWithApprovalRequest>, JsonRejection>,
) -> Result<Json<SessionOpenedResponse>, ApiError> {
    let Json(request) = body?;
    let spend = reserve_session(&state, &principal, SessionCost::Stake(request.stake.0)).await?;
    let opened = state
        .consumer()?
        .open_with_approval(
            request.approval.0.into(),
            request.approval_sig.0.into(),
            request.stake.0,
            request.direct_payment,
        )
        .await?;
    spend.settle(&state, opened.tx, opened.stake).await;
    Ok(Json(opened.into()))
}

/// Opens a session on one bid: handshake with its provider, allowance, `openSession`.
#[utoipa::path(
    post,
    path = "/blockchain/bids/{id}/session",
    tag = "sessions",
    operation_id = "openSessionByBid",
    params(("id" = String, Path, description = "Bid id, 32 bytes hex")),
    request_body = OpenByBidRequest,
    responses(
        (status = 200, description = "Opened (`SessionOpened` seen)", body = SessionOpenedResponse),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 404, description = "No such active bid, or its provider is not registered", body = ErrorBody),
        (status = 409, description = "The bid is this node's own (`own_bid`)", body = ErrorBody),
        (status = 422, description = "Not enough MOR, or the contract refused (`reason`)", body = ErrorBody),
        (status = 502, description = "The provider failed the handshake", body = ErrorBody),
        (status = 503, description = "No chain, wallet or consumer", body = ErrorBody),
    )
)]
pub async fn open_by_bid(
    State(state): State<ApiState>,
    principal: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<OpenByBidRequest>, JsonRejection>,
) -> Result<Json<SessionOpenedResponse>, ApiError> {
    let bid_id = parse_b256("id", &id?.0)?;
    let Json(request) = body?;
    let open = OpenRequest {
        duration: duration(request.session_duration)?,
        direct_payment: request.direct_payment,
        failover: request.failover,
        max_stake: None,
    };
    let spend = reserve_session(&state, &principal, SessionCost::Bid(bid_id, &open)).await?;
    let opened = state.consumer()?.open_by_bid(bid_id, open).await?;
    spend.settle(&state, opened.tx, opened.stake).await;
    Ok(Json(opened.into()))
}

/// Opens a session on a model: its active bids are rated (`rating-config.json`), this node's own
/// skipped, and providers tried best first; the answer lists the providers skipped and why. When none
/// accepts, 502 `no_provider_accepted` gives every provider's reason in `reason` (JSON).
#[utoipa::path(
    post,
    path = "/blockchain/models/{id}/session",
    tag = "sessions",
    operation_id = "openSessionByModel",
    params(("id" = String, Path, description = "Model id, 32 bytes hex")),
    request_body = OpenByModelRequest,
    responses(
        (status = 200, description = "Opened (`SessionOpened` seen)", body = SessionOpenedResponse),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 404, description = "The model has no active bid (`no_bids`)", body = ErrorBody),
        (status = 422, description = "Not enough MOR, or the contract refused (`reason`)", body = ErrorBody),
        (status = 502, description = "No provider accepted (`no_provider_accepted`, reasons in `reason`)", body = ErrorBody),
        (status = 503, description = "No chain, wallet or consumer", body = ErrorBody),
    )
)]
pub async fn open_by_model(
    State(state): State<ApiState>,
    principal: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<OpenByModelRequest>, JsonRejection>,
) -> Result<Json<SessionOpenedResponse>, ApiError> {
    let model_id = parse_b256("id", &id?.0)?;
    let Json(request) = body?;
    let open = OpenRequest {
        duration: duration(request.session_duration)?,
        direct_payment: request.direct_payment,
        failover: request.failover,
        max_stake: None,
    };
    let spend = reserve_session(&state, &principal, SessionCost::Model(model_id, &open)).await?;
    let opened = state.consumer()?.open_by_model(model_id, open).await?;
    spend.settle(&state, opened.tx, opened.stake).await;
    Ok(Json(opened.into()))
}

// -------------------------------------------------------------------------------------------------
// Handshake and ping
// -------------------------------------------------------------------------------------------------

/// `POST /proxy/sessions/initiate` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InitiateRequest {
    /// The user the session is for.
    #[schema(value_type = String)]
    pub user: Address,
    /// The bid's provider (the approval must come from its key).
    #[schema(value_type = String)]
    pub provider: Address,
    /// MOR wei the user will stake.
    pub spend: BigInt,
    /// The provider's MOR-RPC endpoint, `host:port`.
    #[serde(rename = "providerUrl")]
    pub provider_url: String,
    /// The bid.
    #[serde(rename = "bidId", deserialize_with = "hex32::deserialize")]
    #[schema(value_type = String)]
    pub bid_id: B256,
}

/// The provider's `SessionRes`, as it sent it (the reference's answer).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionResJson {
    /// The provider's public key, hex.
    pub message: String,
    /// The approval for `openSession`, hex.
    pub approval: String,
    /// Its EIP-191 signature, hex.
    #[serde(rename = "approvalSig")]
    pub approval_sig: String,
    /// The user.
    pub user: String,
    /// Unix milliseconds.
    pub timestamp: u64,
    /// The provider's signature of the message, hex.
    pub signature: String,
}

/// Runs the MOR-RPC handshake (`session.request`) with a provider and answers its verified approval.
#[utoipa::path(
    post,
    path = "/proxy/sessions/initiate",
    tag = "proxy",
    operation_id = "initiateSession",
    request_body = InitiateRequest,
    responses(
        (status = 200, description = "The provider's signed approval", body = SessionResJson),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 502, description = "The provider is unreachable, refused or answered something invalid", body = ErrorBody),
        (status = 503, description = "No wallet or consumer", body = ErrorBody),
    )
)]
pub async fn initiate(
    State(state): State<ApiState>,
    body: Result<Json<InitiateRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(r) = body?;
    let response: SessionRes =
        state.consumer()?.initiate(r.user, r.provider, r.spend.0, &r.provider_url, r.bid_id).await?;
    let json = serde_json::to_value(&response).map_err(|e| ApiError::internal("SessionRes", &e))?;
    Ok(Json(json))
}

/// `POST /proxy/provider/ping` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PingRequest {
    /// The provider's address: the pong must be signed by it.
    #[serde(rename = "providerAddr")]
    #[schema(value_type = String)]
    pub provider_addr: Address,
    /// Its MOR-RPC endpoint, `host:port`.
    #[serde(rename = "providerUrl")]
    pub provider_url: String,
}

/// `{"ping": ms, "version"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PingResponse {
    /// Round trip in milliseconds.
    pub ping: u64,
    /// The provider's build version.
    pub version: String,
}

/// Pings a provider over MOR-RPC and checks the pong is signed by its address. Open, as the reference.
#[utoipa::path(
    post,
    path = "/proxy/provider/ping",
    tag = "proxy",
    operation_id = "pingProvider",
    security(()),
    request_body = PingRequest,
    responses(
        (status = 200, description = "The provider answered, signed by its address", body = PingResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 502, description = "Unreachable, or the pong is not the provider's", body = ErrorBody),
        (status = 503, description = "No wallet or consumer", body = ErrorBody),
    )
)]
pub async fn ping(
    State(state): State<ApiState>,
    body: Result<Json<PingRequest>, JsonRejection>,
) -> Result<Json<PingResponse>, ApiError> {
    let Json(r) = body?;
    let pong = state.consumer()?.ping(r.provider_addr, &r.provider_url).await?;
    let ms = u64::try_from(pong.latency.as_millis()).unwrap_or(u64::MAX);
    Ok(Json(PingResponse { ping: ms, version: pong.version }))
}

// -------------------------------------------------------------------------------------------------
// OpenAI surface
// -------------------------------------------------------------------------------------------------

/// The reference's answer to a provider's model error: `400 {"providerModelError": …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderModelError {
    /// The model backend's error, as it answered it.
    #[serde(rename = "providerModelError")]
    #[schema(value_type = Object)]
    pub provider_model_error: Value,
}

/// Chat completion on a session (`session_id` header): OpenAI's request and answer, streamed as SSE
/// with `"stream": true`.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "proxy",
    operation_id = "chatCompletions",
    params(
        ("session_id" = Option<String>, Header, description = "The session, 32 bytes hex (required unless `model_id` names a local model)"),
        ("model_id" = Option<String>, Header, description = "Without `session_id`: a model of this node's models-config, called directly (no session, no MOR)"),
        ("x-request-id" = Option<String>, Header, description = "Echoed in `X-Request-Id`; generated when absent"),
    ),
    request_body(content = Object, description = "OpenAI chat completion request; unknown fields are kept"),
    responses(
        (status = 200, description = "OpenAI chat completion (JSON), or `text/event-stream` of `data: <chunk>` events and `data: [DONE]`; a stream that breaks ends with `data: {\"error\": …}`", body = Object,
         headers(("X-Request-Id" = String, description = "The request id"), ("X-Session-Id" = String, description = "The session that answered"))),
        (status = 400, description = "Malformed JSON or headers, or the model's own error (`providerModelError`)", body = ProviderModelError),
        (status = 403, description = "The session belongs to another user", body = ErrorBody),
        (status = 404, description = "Unknown session, or unknown local model", body = ErrorBody),
        (status = 409, description = "The session is closed or expired", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 502, description = "The provider failed (and failover, if enabled, too)", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat_completions(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    inference(state, headers, body, PromptKind::Chat).await
}

/// Embeddings on a session (`session_id` header): OpenAI's request and answer.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "proxy",
    operation_id = "embeddings",
    params(
        ("session_id" = Option<String>, Header, description = "The session, 32 bytes hex (required unless `model_id` names a local model)"),
        ("model_id" = Option<String>, Header, description = "Without `session_id`: a model of this node's models-config, called directly (no session, no MOR)"),
        ("x-request-id" = Option<String>, Header, description = "Echoed in `X-Request-Id`; generated when absent"),
    ),
    request_body(content = Object, description = "OpenAI embeddings request; unknown fields are kept"),
    responses(
        (status = 200, description = "OpenAI embeddings object", body = Object,
         headers(("X-Request-Id" = String, description = "The request id"), ("X-Session-Id" = String, description = "The session that answered"))),
        (status = 400, description = "Malformed JSON or headers, or the model's own error (`providerModelError`)", body = ProviderModelError),
        (status = 403, description = "The session belongs to another user", body = ErrorBody),
        (status = 404, description = "Unknown session, or unknown local model", body = ErrorBody),
        (status = 409, description = "The session is closed or expired", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
    )
)]
pub async fn embeddings(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    inference(state, headers, body, PromptKind::Embeddings).await
}

async fn inference(state: ApiState, headers: HeaderMap, body: Bytes, kind: PromptKind) -> Response {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(request_id);
    let mut response = match answer(&state, &headers, body, kind, &request_id).await {
        Ok(response) => response,
        Err(error) => error_response(error),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

fn error_response(error: ConsumerErrorOrApi) -> Response {
    match error {
        ConsumerErrorOrApi::Consumer(ConsumerError::Model { body }) => {
            (StatusCode::BAD_REQUEST, Json(ProviderModelError { provider_model_error: body })).into_response()
        }
        ConsumerErrorOrApi::Consumer(e) => ApiError::from(e).into_response(),
        ConsumerErrorOrApi::Api(e) => e.into_response(),
        ConsumerErrorOrApi::Local(e) => e.into_response(),
    }
}

enum ConsumerErrorOrApi {
    Consumer(ConsumerError),
    Api(ApiError),
    Local(local::LocalError),
}

impl From<local::LocalError> for ConsumerErrorOrApi {
    fn from(e: local::LocalError) -> Self {
        Self::Local(e)
    }
}

impl From<ConsumerError> for ConsumerErrorOrApi {
    fn from(e: ConsumerError) -> Self {
        Self::Consumer(e)
    }
}

impl From<ApiError> for ConsumerErrorOrApi {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

async fn answer(
    state: &ApiState,
    headers: &HeaderMap,
    body: Bytes,
    kind: PromptKind,
    request_id: &str,
) -> Result<Response, ConsumerErrorOrApi> {
    let body = parse_body(&body)?;
    let capture = match kind {
        PromptKind::Chat => chats::Capture::start(&state.chat_log, headers, &body).map_err(ApiError::from)?,
        PromptKind::Embeddings => None,
    };
    let session = headers.get(SESSION_ID_HEADER).map(|v| {
        v.to_str()
            .map_err(|_| ApiError::bad_request(SESSION_ID_HEADER, "not ASCII"))
            .and_then(|v| parse_b256(SESSION_ID_HEADER, v.trim()))
    });
    let Some(session) = session else {
        if let Some(model_id) = headers.get(MODEL_ID_HEADER) {
            let model_id =
                model_id.to_str().map_err(|_| ApiError::bad_request(MODEL_ID_HEADER, "not ASCII"))?;
            let model = crate::provider::models::parse_model_id(model_id.trim()).unwrap_or_default();
            let response = local::answer(state, model_id, kind, body).await?;
            return Ok(chats::tap(capture, chats::ModelRef::Local(model), response));
        }
        return Err(ApiError::bad_request(
            SESSION_ID_HEADER,
            "missing: name the session in the `session_id` header (open one with POST /blockchain/models/{id}/session), \
             or a model of this node's models-config in the `model_id` header",
        )
        .into());
    };
    let session = session?;
    let consumer = state.consumer()?;
    let prompt = Prompt { kind, body, request_id: request_id.to_owned() };
    let answer = consumer.prompt(session, &prompt).await?;
    let answered = answer.session_id;
    let answered_by = HeaderValue::from_str(&format!("{answered:#x}")).ok();
    let mut response = if answer.streaming {
        let events = answer.into_events().map(|event| Ok::<_, Infallible>(sse(event)));
        let mut response = Response::new(Body::from_stream(events));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        let json = answer.into_json().await?;
        ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response()
    };
    if let Some(value) = answered_by {
        response.headers_mut().insert(HeaderName::from_static(ANSWER_SESSION_HEADER), value);
    }
    Ok(chats::tap(capture, chats::ModelRef::Session(answered), response))
}

/// The request body as a JSON object.
fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request_body("the request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request_body(format!("invalid JSON body: {e}"))),
    }
}

/// One SSE event.
fn sse(event: RelayEvent) -> Bytes {
    match event {
        RelayEvent::Data(data) => local::data_event(&data),
        RelayEvent::Done => Bytes::from_static(b"data: [DONE]\n\n"),
        RelayEvent::Error(error) => {
            let body = json!({"error": {"message": error.to_string(), "type": "provider_error", "code": "provider_interrupted"}});
            Bytes::from(format!("data: {body}\n\n"))
        }
    }
}

#[cfg(test)]
mod tests;
