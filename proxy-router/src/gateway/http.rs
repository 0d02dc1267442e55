//! The gateway's listener (`GATEWAY_ADDRESS`): the OpenAI surface and nothing else, authenticated by
//! API keys (`Authorization: Bearer <key>`, or `x-api-key: <key>`), CORS on.
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | POST | `/v1/chat/completions` | OpenAI JSON, or SSE with `"stream": true` (`stream_options.include_usage` honoured) |
//! | POST | `/v1/completions` | `text_completion` JSON or SSE (served as a chat, see [`super::openai`]) |
//! | POST | `/v1/embeddings` | the provider's embeddings object |
//! | GET | `/v1/models` | `{"object":"list","data":[…]}`: the models with an active bid this key may use |
//! | GET | `/v1/models/{model}` | one model object (by on-chain name or `0x` id) |
//! | GET | `/openapi.json` | this surface's OpenAPI description (no key needed, [`super::openapi`]) |
//!
//! A model object is OpenAI's `{"id": <name>, "object": "model", "created", "owned_by": <owner>}` plus
//! `name` (the on-chain name), `model_id` (the marketplace id), `bids` (active bids) and
//! `min_price_per_second` (wei, decimal text). Request bodies are relayed with every field kept; `model` names the marketplace model.
//! Every answer carries `X-Request-Id` (the client's or a new one) and, for inference,
//! `X-Session-Id` (the on-chain session that answered). Errors are OpenAI's shape
//! ([`super::openai::OpenAiError`]), including the bounds' 413 and 504 and unknown routes' 404.
//! A chat that names a `chat_id` (hex32) is kept in the node's chat history (`crate::chats`,
//! readable on the admin API's `/v1/chats`) when `PROXY_STORE_CHAT_CONTEXT` is on.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt as _};
use serde_json::{json, Map, Value};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi as _;

use super::keys::{KeyState, Reservation};
use super::openai::{chat_to_completion, completion_to_chat, usage_chunk, OpenAiError};
use super::openapi::{
    ChatRequest, CompletionRequest, EmbeddingsRequest, ErrorResponse, ModelList, ModelObject, OPENAPI_PATH,
};
use super::sessions::InUse;
use super::usage::UsageEvent;
use super::{CatalogModel, Gateway, GatewayError};
use crate::chats::{tap, Capture, ModelRef};
use crate::consumer::client::request_id;
use crate::consumer::{unix_now, Prompt, PromptKind, RelayEvent};
use crate::provider::backend::TokenMeter;

/// The request id header, echoed in every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The answer header naming the session that answered.
pub const SESSION_HEADER: &str = "x-session-id";
/// The alternative key header.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Request bounds of the gateway's listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (413 beyond).
    pub body_limit: usize,
    /// Longest request (504 beyond), opening a session included.
    pub request_timeout: Duration,
}

/// The gateway's whole router, under its layers (from the outside in: trace, OpenAI-shaped error
/// bodies, CORS, timeout, body limit).
pub fn router(gateway: Gateway, limits: Limits) -> Router {
    let cors = cors(&gateway.settings().cors_origins);
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*model}", get(get_model))
        .route(OPENAPI_PATH, get(spec))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway)
        .layer(RequestBodyLimitLayer::new(limits.body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, limits.request_timeout))
        .layer(cors)
        .layer(axum::middleware::map_response(openai_error_bodies))
        .layer(axum::middleware::from_fn(|r, n| crate::metrics::track("gateway", r, n)))
        .layer(axum::middleware::from_fn(crate::logging::request_span))
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER), HeaderName::from_static(SESSION_HEADER)])
        .max_age(Duration::from_secs(3600));
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(Any);
    }
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    layer.allow_origin(AllowOrigin::list(allowed))
}

/// What the client is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Completions,
    Embeddings,
}

/// A chat answer from the marketplace: OpenAI JSON, or SSE with `"stream": true`.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    operation_id = "createChatCompletion",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The provider's `chat.completion` (JSON) or `chat.completion.chunk` events ending with `data: [DONE]` (SSE); `X-Session-Id` names the session", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "A malformed body (`param` names the field), or the model's own error", body = ErrorResponse),
        (status = 401, description = "No key, or an unknown, revoked or expired key (`invalid_api_key`)", body = ErrorResponse),
        (status = 403, description = "The key may not use the model (`model_not_allowed`)", body = ErrorResponse),
        (status = 404, description = "No such model, or no active bid on it (`model_not_found`)", body = ErrorResponse),
        (status = 429, description = "Quota or budget used up (`insufficient_quota`), or the rate limit (`rate_limit_exceeded`, with `Retry-After`)", body = ErrorResponse),
        (status = 503, description = "No provider could serve (`no_provider_available`, each one tried and why), or the node cannot pay", body = ErrorResponse),
        (status = 504, description = "The provider or the whole request took too long", body = ErrorResponse),
    )
)]
async fn chat(State(gateway): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    serve(gateway, headers, body, Route::Chat).await
}

/// A legacy completion, served as a chat and answered as a `text_completion`.
#[utoipa::path(
    post,
    path = "/v1/completions",
    tag = "openai",
    operation_id = "createCompletion",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A `text_completion` (JSON) or its events (SSE)", content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "A malformed body (`param` names the field), or the model's own error", body = ErrorResponse),
        (status = 401, description = "No key, or an unknown, revoked or expired key (`invalid_api_key`)", body = ErrorResponse),
        (status = 403, description = "The key may not use the model (`model_not_allowed`)", body = ErrorResponse),
        (status = 404, description = "No such model, or no active bid on it (`model_not_found`)", body = ErrorResponse),
        (status = 429, description = "Quota or budget used up (`insufficient_quota`), or the rate limit (`rate_limit_exceeded`, with `Retry-After`)", body = ErrorResponse),
        (status = 503, description = "No provider could serve (`no_provider_available`, each one tried and why), or the node cannot pay", body = ErrorResponse),
        (status = 504, description = "The provider or the whole request took too long", body = ErrorResponse),
    )
)]
async fn completions(State(gateway): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    serve(gateway, headers, body, Route::Completions).await
}

/// Embeddings from the marketplace.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "openai",
    operation_id = "createEmbedding",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "The provider's embeddings object", content_type = "application/json"),
        (status = 400, description = "A malformed body (`param` names the field), or the model's own error", body = ErrorResponse),
        (status = 401, description = "No key, or an unknown, revoked or expired key (`invalid_api_key`)", body = ErrorResponse),
        (status = 403, description = "The key may not use the model (`model_not_allowed`)", body = ErrorResponse),
        (status = 404, description = "No such model, or no active bid on it (`model_not_found`)", body = ErrorResponse),
        (status = 429, description = "Quota or budget used up (`insufficient_quota`), or the rate limit (`rate_limit_exceeded`, with `Retry-After`)", body = ErrorResponse),
        (status = 503, description = "No provider could serve (`no_provider_available`, each one tried and why), or the node cannot pay", body = ErrorResponse),
        (status = 504, description = "The provider or the whole request took too long", body = ErrorResponse),
    )
)]
async fn embeddings(State(gateway): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    serve(gateway, headers, body, Route::Embeddings).await
}

fn client_request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(request_id)
}

async fn serve(gateway: Gateway, headers: HeaderMap, body: Bytes, route: Route) -> Response {
    let id = client_request_id(&headers);
    let mut response = match answer(&gateway, &headers, &body, route, &id).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(request = %id, error = %error, "gateway request refused");
            OpenAiError::from(error).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

/// The key of the request: `Authorization: Bearer <key>`, else `x-api-key`.
fn authenticate(gateway: &Gateway, headers: &HeaderMap) -> Result<Arc<KeyState>, GatewayError> {
    let bearer = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let secret = bearer
        .or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            GatewayError::InvalidKey(
                "no API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)".into(),
            )
        })?;
    gateway.keys().authenticate(secret)
}

fn bad(param: &'static str, reason: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest { param, reason: reason.into() }
}

/// The body as a JSON object with the fields the route needs checked.
fn parse_body(body: &[u8], route: Route) -> Result<Map<String, Value>, GatewayError> {
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("body", "the request body must be a JSON object")),
        Err(e) => return Err(bad("body", format!("invalid JSON: {e}"))),
    };
    match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        Some(_) => return Err(bad("model", "must be a model name or a 0x model id")),
        None => return Err(bad("model", "missing: name the model (GET /v1/models lists them)")),
    }
    match route {
        Route::Chat => match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            Some(_) => return Err(bad("messages", "must be a non-empty array of messages")),
            None => return Err(bad("messages", "missing")),
        },
        Route::Embeddings => match body.get("input") {
            Some(Value::String(_) | Value::Array(_)) => {}
            Some(_) => return Err(bad("input", "must be a string or an array")),
            None => return Err(bad("input", "missing")),
        },
        Route::Completions => {}
    }
    if let Some(stream) = body.get("stream") {
        if !stream.is_boolean() && !stream.is_null() {
            return Err(bad("stream", "must be a boolean"));
        }
    }
    Ok(body)
}

/// The model `body` names, if the key may use it.
async fn model_of(gateway: &Gateway, key: &KeyState, name: &str) -> Result<CatalogModel, GatewayError> {
    let snapshot = gateway.catalog().snapshot().await?;
    let model = snapshot
        .resolve(name)
        .cloned()
        .ok_or_else(|| GatewayError::ModelNotFound { model: name.to_owned() })?;
    if !key.allows(&model.id) {
        return Err(GatewayError::ModelNotAllowed { model: name.to_owned() });
    }
    Ok(model)
}

async fn answer(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
    route: Route,
    request_id: &str,
) -> Result<Response, GatewayError> {
    let key = authenticate(gateway, headers)?;
    key.check_rate()?;
    let body = parse_body(body, route)?;
    let name = body.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    let model = model_of(gateway, &key, &name).await?;
    let reservation = key.reserve()?;
    let include_usage =
        body.get("stream_options").and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true));
    let (kind, body) = match route {
        Route::Chat => (PromptKind::Chat, body),
        Route::Completions => (PromptKind::Chat, completion_to_chat(body)?),
        Route::Embeddings => (PromptKind::Embeddings, body),
    };
    let chat = match route {
        Route::Chat => Capture::start(gateway.chats(), headers, &body)
            .map_err(|e| GatewayError::BadRequest { param: "chat_id", reason: e.0 })?,
        _ => None,
    };
    let meter = TokenMeter::for_request(&body);
    let prompt = Prompt { kind, body, request_id: request_id.to_owned() };
    let (answer, in_use) = gateway.prompt(&key, &model, &prompt).await?;
    let session_id = answer.session_id;
    let session = HeaderValue::from_str(&format!("{session_id:#x}")).ok();
    let finish = Finish { gateway: gateway.clone(), reservation, in_use, meter };
    let mut response = if answer.streaming {
        let object = if route == Route::Completions { "text_completion" } else { "chat.completion.chunk" };
        let events = stream(answer.into_events(), finish, route, include_usage.then_some((object, name)));
        let mut response = Response::new(Body::from_stream(events.map(Ok::<_, Infallible>)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        let json = answer.into_json().await?;
        let mut finish = finish;
        if let Ok(value) = serde_json::from_slice::<Value>(&json) {
            finish.meter.observe(&value);
        }
        let json = if route == Route::Completions { chat_to_completion(&json) } else { json };
        finish.done().await;
        ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response()
    };
    if let Some(session) = session {
        response.headers_mut().insert(HeaderName::from_static(SESSION_HEADER), session);
    }
    Ok(tap(chat, ModelRef::Session(session_id), response))
}

/// What a request holds until its answer is complete: its quota reservation, its session's use and
/// its token counts; [`Finish::done`] books them.
struct Finish {
    gateway: Gateway,
    reservation: Reservation,
    in_use: InUse,
    meter: TokenMeter,
}

impl Finish {
    async fn done(self) {
        let Finish { gateway, reservation, in_use, meter } = self;
        let (prompt_tokens, completion_tokens) = (meter.input_tokens(), meter.output_tokens());
        let event = UsageEvent {
            key_id: reservation.key().id().to_owned(),
            session_id: in_use.session().session_id,
            prompt_tokens,
            completion_tokens,
            at: unix_now(),
        };
        reservation.answered(prompt_tokens, completion_tokens);
        drop(in_use);
        gateway.record_usage(event).await;
    }
}

fn sse(data: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(data.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// The SSE events of a streamed answer: each chunk relayed (translated for completions), a usage
/// chunk of our own before `[DONE]` when the client asked for one and the provider sent none, and
/// the request booked once the answer is complete. A stream that breaks ends with an error event and
/// books nothing.
fn stream(
    events: impl Stream<Item = RelayEvent> + Send + 'static,
    finish: Finish,
    route: Route,
    usage: Option<(&'static str, String)>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    struct State<S> {
        events: std::pin::Pin<Box<S>>,
        finish: Option<Finish>,
        queued: VecDeque<Bytes>,
    }
    let state = State { events: Box::pin(events), finish: Some(finish), queued: VecDeque::new() };
    futures::stream::unfold(state, move |mut state| {
        let usage = usage.clone();
        async move {
            if let Some(next) = state.queued.pop_front() {
                return Some((next, state));
            }
            let finish = state.finish.as_mut()?;
            match state.events.next().await {
                Some(RelayEvent::Data(data)) => {
                    if let Ok(value) = serde_json::from_slice::<Value>(&data) {
                        finish.meter.observe(&value);
                    }
                    let data = if route == Route::Completions { chat_to_completion(&data) } else { data };
                    Some((sse(&data), state))
                }
                Some(RelayEvent::Done) | None => {
                    let finish = state.finish.take()?;
                    if let Some((object, model)) = usage.filter(|_| !finish.meter.has_usage()) {
                        let chunk = usage_chunk(
                            object,
                            &model,
                            finish.meter.input_tokens(),
                            finish.meter.output_tokens(),
                        );
                        state.queued.push_back(sse(&chunk));
                    }
                    state.queued.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                    finish.done().await;
                    let first = state.queued.pop_front()?;
                    Some((first, state))
                }
                Some(RelayEvent::Error(error)) => {
                    state.finish = None;
                    let body = json!({"error": {"message": error.to_string(), "type": "api_error", "code": "provider_interrupted", "param": null}});
                    Some((sse(body.to_string().as_bytes()), state))
                }
            }
        }
    })
}

#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    operation_id = "listModels",
    responses(
        (status = 200, description = "OpenAI's model list", body = ModelList),
        (status = 401, description = "No key, or an unknown, revoked or expired key (`invalid_api_key`)", body = ErrorResponse),
        (status = 429, description = "The rate limit (`rate_limit_exceeded`)", body = ErrorResponse),
    )
)]
async fn list_models(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let listed = async {
        let key = authenticate(&gateway, &headers)?;
        let snapshot = gateway.catalog().snapshot().await?;
        let data: Vec<ModelObject> = snapshot
            .models
            .iter()
            .filter(|m| m.bids > 0 && key.allows(&m.id))
            .map(|m| ModelObject::of(m, snapshot.is_named(m)))
            .collect();
        Ok::<_, GatewayError>(Json(ModelList { object: "list", data }).into_response())
    };
    listed.await.unwrap_or_else(|e| OpenAiError::from(e).into_response())
}

/// One model, by on-chain name or `0x` id.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "openai",
    operation_id = "retrieveModel",
    responses(
        (status = 200, description = "The model", body = ModelObject),
        (status = 403, description = "The key may not use the model (`model_not_allowed`)", body = ErrorResponse),
        (status = 404, description = "No such model (`model_not_found`)", body = ErrorResponse),
        (status = 401, description = "No key, or an unknown, revoked or expired key (`invalid_api_key`)", body = ErrorResponse),
        (status = 429, description = "The rate limit (`rate_limit_exceeded`)", body = ErrorResponse),
    ),
    params(("model" = String, Path, description = "The model's on-chain name or `0x` id"))
)]
async fn get_model(State(gateway): State<Gateway>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let found = async {
        let key = authenticate(&gateway, &headers)?;
        let model = model_of(&gateway, &key, &name).await?;
        let snapshot = gateway.catalog().snapshot().await?;
        Ok::<_, GatewayError>(Json(ModelObject::of(&model, snapshot.is_named(&model))).into_response())
    };
    found.await.unwrap_or_else(|e| OpenAiError::from(e).into_response())
}

/// The gateway's OpenAPI description (no key needed: it holds nothing secret).
async fn spec() -> Response {
    Json(super::openapi::Doc::openapi()).into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> OpenAiError {
    OpenAiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        format!("no route for {method} {} on the OpenAI gateway", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> OpenAiError {
    OpenAiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Gives the error responses of the layers (413, 504) OpenAI's JSON body.
async fn openai_error_bodies(response: Response) -> Response {
    crate::error_bodies::ensure_json(response, |status| {
        let error = match status {
            StatusCode::PAYLOAD_TOO_LARGE => OpenAiError::new(
                status,
                "invalid_request_error",
                "request_too_large",
                "the request body is larger than the gateway accepts (PROXY_MAX_PROMPT_BYTES)",
            ),
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => OpenAiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                "timeout",
                "the request took too long and was cancelled",
            ),
            _ => OpenAiError::new(
                status,
                if status.is_server_error() { "api_error" } else { "invalid_request_error" },
                if status.is_server_error() { "internal_error" } else { "bad_request" },
                status.canonical_reason().unwrap_or("error"),
            ),
        };
        error.into_response()
    })
}
