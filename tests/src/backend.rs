//! A stand-in OpenAI-compatible model backend for tests and the demo: **not a model**. It answers
//! `POST /v1/chat/completions` (streaming SSE or one JSON object) with a deterministic reply built from
//! the last user message, and `POST /v1/embeddings` with deterministic vectors, so tests can check the
//! exact bytes a client receives through two routers.
//!
//! [`Backend::control`] injects failures on demand: a delay between chunks, an upstream error status, or
//! dropping the connection after a number of streamed chunks (a backend dying mid-stream).
//! [`Backend::stop`] closes the listener and every connection (a backend that is down).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The model name the backend reports when the request names none.
pub const DEFAULT_MODEL: &str = "demo-model";
/// Dimensions of the embedding vectors.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// Failures to inject, shared with the running server.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Sleep between streamed chunks.
    pub chunk_delay: Duration,
    /// Answer every request with this status and an OpenAI-style error body.
    pub error_status: Option<u16>,
    /// Drop the connection after streaming this many chunks (no `[DONE]`).
    pub drop_after_chunks: Option<usize>,
}

/// What the server saw, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Every request body, in order.
    pub requests: Vec<Value>,
    /// Every `Authorization` header, in order (`None` when absent).
    pub authorizations: Vec<Option<String>>,
}

#[derive(Debug, Default)]
struct Shared {
    faults: Mutex<Faults>,
    seen: Mutex<Seen>,
}

/// A running stand-in backend (stopped on drop).
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Backend {
    /// Starts the backend on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    /// Starts the backend on `addr`.
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            // The server ends when the task is aborted.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/v1/chat/completions`: the full endpoint URL models-config wants.
    pub fn chat_url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    /// `http://<addr>/v1/embeddings`.
    pub fn embeddings_url(&self) -> String {
        format!("http://{}/v1/embeddings", self.addr)
    }

    /// Replaces the injected faults.
    pub fn control(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// What the backend has seen so far.
    pub fn seen(&self) -> Seen {
        self.shared.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Closes the listener and every open connection.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .with_state(shared)
}

/// The deterministic reply to `prompt`, split into the chunks the stream sends.
pub fn reply_chunks(prompt: &str) -> Vec<String> {
    let words: Vec<&str> = prompt.split_whitespace().take(16).collect();
    let mut chunks =
        vec!["This".to_owned(), " is".to_owned(), " a".to_owned(), " demo".to_owned(), " reply".to_owned()];
    if !words.is_empty() {
        chunks.push(" to:".to_owned());
        chunks.extend(words.iter().map(|w| format!(" {w}")));
    }
    chunks.push(".".to_owned());
    chunks
}

/// The whole deterministic reply to `prompt`.
pub fn reply(prompt: &str) -> String {
    reply_chunks(prompt).concat()
}

/// The deterministic embedding of `input`.
pub fn embedding(input: &str) -> Vec<f64> {
    let hash = alloy::primitives::keccak256(input.as_bytes());
    hash.iter().take(EMBEDDING_DIMENSIONS).map(|b| f64::from(*b) / 255.0).collect()
}

fn last_user_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn record(shared: &Shared, headers: &HeaderMap, body: &Value) -> Faults {
    let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
    seen.requests.push(body.clone());
    seen.authorizations.push(headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned));
    shared.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn upstream_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": format!("demo backend error {}", status.as_u16()), "type": "server_error"}});
    (status, Json(body)).into_response()
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let faults = record(&shared, &headers, &body);
    if let Some(status) = faults.error_status {
        return upstream_error(status);
    }
    let model = body["model"].as_str().unwrap_or(DEFAULT_MODEL).to_owned();
    let prompt = last_user_message(&body);
    let chunks = reply_chunks(&prompt);
    let prompt_tokens = prompt.split_whitespace().count();
    let completion_tokens = chunks.len();
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = "chatcmpl-demo";
    let created = 1_700_000_000u64;

    if body["stream"].as_bool() != Some(true) {
        return Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": chunks.concat()},
                "finish_reason": "stop",
            }],
            "usage": usage,
        }))
        .into_response();
    }

    let total = chunks.len();
    let frames = chunks.into_iter().enumerate().map(move |(i, text)| {
        let delta = if i == 0 { json!({"role": "assistant", "content": text}) } else { json!({"content": text}) };
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": if i + 1 == total { json!("stop") } else { Value::Null }}],
        })
    });
    let mut events: Vec<Result<Bytes, std::io::Error>> =
        frames.map(|frame| Ok(Bytes::from(format!("data: {frame}\n\n")))).collect();
    events.push(Ok(Bytes::from(format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "choices": [], "usage": usage})
    ))));
    events.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    if let Some(n) = faults.drop_after_chunks {
        events.truncate(n);
        events.push(Err(std::io::Error::other("the demo backend dropped the connection")));
    }
    let delay = faults.chunk_delay;
    let stream = futures::stream::iter(events).then(move |event| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        event
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let faults = record(&shared, &headers, &body);
    if let Some(status) = faults.error_status {
        return upstream_error(status);
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "input must be a string or an array of strings"}})),
            )
                .into_response()
        }
    };
    let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| json!({"object": "embedding", "index": i, "embedding": embedding(input)}))
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"].as_str().unwrap_or(DEFAULT_MODEL),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}
