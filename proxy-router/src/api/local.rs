//! The node's own models (models-config), used without a session, as the reference's local models
//! (go-proxy-router.md §1.3, §6):
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | GET | `/v1/models` | `get_local_models` | `[LocalModel]` (PascalCase, the reference's shape) |
//!
//! and `POST /v1/chat/completions` / `POST /v1/embeddings` with a `model_id` header and no
//! `session_id` ([`super::proxy`] sends those here): the request goes straight to the model's backend
//! with the provider role's client (`modelName` replaces `model`, the `apiKey` is sent), and the answer
//! comes back as the remote path's: SSE `data:` events and `data: [DONE]`, or the backend's JSON as is;
//! the backend's error status is the reference's `400 {"providerModelError": …}`; a backend that cannot be
//! reached or times out is 502 / 504 with the reason; a stream that breaks ends with one terminal
//! `data: {"error": …}` event. No chain, no MOR.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use super::error::ApiError;
use super::{guard, ApiState, AuthStore, Permission};
use crate::consumer::PromptKind;
use crate::provider::backend::BackendEvent;
use crate::provider::models::{parse_model_id, Endpoint};
use crate::provider::{BackendClient, BackendError, LocalModel, Models};

/// The models served locally and the backend client that calls them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalModels {
    models: Models,
    client: BackendClient,
}

impl LocalModels {
    /// Serves `models` through `client`.
    pub fn new(models: Models, client: BackendClient) -> Self {
        Self { models, client }
    }
}

/// The local model routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    Router::new().route("/v1/models", guard(auth, Permission::GetLocalModels, get(list_models)))
}

/// The OpenAPI description of the local model routes.
#[derive(OpenApi)]
#[openapi(paths(list_models), components(schemas(LocalModel)))]
pub struct Doc;

/// The models of this node's models-config (not the chain's, not OpenAI's list format: the
/// reference's `LocalModel` objects). The API keys are never shown.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "proxy",
    operation_id = "localModels",
    responses(
        (status = 200, description = "The configured models, in configuration order", body = [LocalModel]),
    )
)]
pub async fn list_models(State(state): State<ApiState>) -> Json<Vec<LocalModel>> {
    Json(state.local_models.as_ref().map(|l| l.models.local_models()).unwrap_or_default())
}

/// Why a local call failed before its answer started.
pub(super) enum LocalError {
    /// Our own refusal (unknown model, no local models).
    Api(ApiError),
    /// The backend answered an error status: the reference's `providerModelError`.
    Model(Value),
}

impl From<ApiError> for LocalError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl IntoResponse for LocalError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Model(body) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "providerModelError": body }))).into_response()
            }
        }
    }
}

/// Answers `body` with the local model named by the `model_id` header value `model_id`.
pub(super) async fn answer(
    state: &ApiState,
    model_id: &str,
    kind: PromptKind,
    body: Map<String, Value>,
) -> Result<Response, LocalError> {
    let id = parse_model_id(model_id.trim())
        .ok_or_else(|| ApiError::bad_request("model_id", "not a 32-byte hex model id"))?;
    let local = state.local_models.as_ref().ok_or_else(|| unknown_model(model_id))?;
    let model = local.models.get(&id).ok_or_else(|| unknown_model(model_id))?;
    let endpoint = match kind {
        PromptKind::Chat => Endpoint::Chat,
        PromptKind::Embeddings => Endpoint::Embeddings,
    };
    let mut answer = local.client.send(model, endpoint, body).await.map_err(backend_error)?;
    if !answer.is_stream() {
        return match answer.next_event().await.map_err(backend_error)? {
            Some(BackendEvent::Data { raw, .. }) => {
                Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], raw).into_response())
            }
            _ => Err(LocalError::Api(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "backend_no_data",
                "the model backend answered nothing",
            ))),
        };
    }
    let events = futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.next_event().await {
            Ok(Some(BackendEvent::Data { raw, .. })) => {
                Some((Ok::<_, Infallible>(data_event(&raw)), Some(answer)))
            }
            Ok(Some(BackendEvent::Done)) | Ok(None) => {
                Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), None))
            }
            Err(e) => {
                let body = json!({"error": {"message": e.to_string(), "type": "backend_error", "code": "backend_interrupted"}});
                Some((Ok(Bytes::from(format!("data: {body}\n\n"))), None))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One SSE `data:` event carrying `raw` as is.
pub(super) fn data_event(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(raw);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn unknown_model(model_id: &str) -> LocalError {
    LocalError::Api(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_local_model",
        format!("model_id {model_id} is not in this node's models-config (GET /v1/models lists them)"),
    ))
}

fn backend_error(error: BackendError) -> LocalError {
    let message = error.to_string();
    match error {
        BackendError::Upstream { body, .. } => LocalError::Model(body),
        BackendError::Timeout { .. } => {
            LocalError::Api(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "backend_timeout", message))
        }
        _ => LocalError::Api(ApiError::new(StatusCode::BAD_GATEWAY, "backend_failed", message)),
    }
}
