//! The benchmark's fake OpenAI-compatible backend: **not a model**. It answers
//! `POST /v1/chat/completions` (and `/chat/completions`, as LiteLLM calls it) with bytes prepared once
//! per setting of its [`Knobs`], so that it costs the same little CPU whichever path the request came
//! through:
//!
//! - a non-streamed request gets one `chat.completion` whose content is [`Knobs::json_bytes`] bytes;
//! - `"stream": true` gets [`Knobs::chunks`] `chat.completion.chunk` events of [`Knobs::chunk_bytes`]
//!   content bytes each, [`Knobs::chunk_interval`] apart, then `data: [DONE]`;
//! - every answer starts after [`Knobs::latency`] (the model's "thinking" time);
//! - with [`Knobs::hold`] set, a stream stops after its first event until [`BenchBackend::release`]
//!   (the idle open streams of the memory test).
//!
//! It records nothing per request but two counters, so it runs at any rate for any time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The model name the backend reports.
pub const MODEL: &str = "bench-model";

/// What the backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// Wait before the answer (headers and first chunk).
    pub latency: Duration,
    /// Content events of a stream.
    pub chunks: usize,
    /// Content bytes of each stream event.
    pub chunk_bytes: usize,
    /// Wait between stream events (zero: back to back).
    pub chunk_interval: Duration,
    /// Content bytes of a non-streamed answer.
    pub json_bytes: usize,
    /// Hold every stream after its first event until [`BenchBackend::release`].
    pub hold: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 16,
            chunk_bytes: 16,
            chunk_interval: Duration::ZERO,
            json_bytes: 1024,
            hold: false,
        }
    }
}

/// The answers of one setting, built once.
#[derive(Debug)]
struct Prepared {
    knobs: Knobs,
    json: Bytes,
    events: Vec<Bytes>,
}

impl Prepared {
    fn new(knobs: Knobs) -> Self {
        let created = 1_700_000_000u64;
        let content = filler(knobs.json_bytes);
        let words = content.split(' ').count();
        let json = json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": words, "total_tokens": 8 + words},
        });
        let mut events = Vec::with_capacity(knobs.chunks + 1);
        for i in 0..knobs.chunks {
            let last = i + 1 == knobs.chunks;
            let delta = if i == 0 {
                json!({"role": "assistant", "content": filler(knobs.chunk_bytes)})
            } else {
                json!({"content": filler(knobs.chunk_bytes)})
            };
            let chunk = json!({
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": if last { json!("stop") } else { json!(null) }}],
            });
            events.push(Bytes::from(format!("data: {chunk}\n\n")));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Self { knobs, json: Bytes::from(json.to_string()), events }
    }
}

/// `n` bytes of words.
fn filler(n: usize) -> String {
    const WORDS: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";
    WORDS.chars().cycle().take(n).collect()
}

#[derive(Debug)]
struct Shared {
    prepared: RwLock<Arc<Prepared>>,
    release: watch::Sender<u64>,
    requests: AtomicU64,
    streams: AtomicU64,
}

/// A running benchmark backend (stopped on drop).
#[derive(Debug)]
pub struct BenchBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl BenchBackend {
    /// Starts the backend on a free loopback port.
    pub async fn start(knobs: Knobs) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            prepared: RwLock::new(Arc::new(Prepared::new(knobs))),
            release: watch::channel(0).0,
            requests: AtomicU64::new(0),
            streams: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/chat/completions", post(chat))
            .with_state(shared.clone());
        // Stream events are small writes: send each at once (no Nagle), as a real server should.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
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

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://<addr>/v1/chat/completions`.
    pub fn chat_url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    /// Changes what the backend answers from now on.
    pub fn set(&self, knobs: Knobs) {
        let mut prepared = self.shared.prepared.write().unwrap_or_else(PoisonError::into_inner);
        if prepared.knobs != knobs {
            *prepared = Arc::new(Prepared::new(knobs));
        }
    }

    /// Lets every held stream finish.
    pub fn release(&self) {
        self.shared.release.send_modify(|n| *n += 1);
    }

    /// Requests answered so far, and how many of them were streams.
    pub fn counts(&self) -> (u64, u64) {
        (self.shared.requests.load(Ordering::Relaxed), self.shared.streams.load(Ordering::Relaxed))
    }
}

impl Drop for BenchBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    stream: bool,
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<ChatRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, r#"{"error":{"message":"not a chat request"}}"#).into_response();
    };
    let prepared = shared.prepared.read().unwrap_or_else(PoisonError::into_inner).clone();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let knobs = prepared.knobs;
    if !knobs.latency.is_zero() {
        tokio::time::sleep(knobs.latency).await;
    }
    if !request.stream {
        return ([(header::CONTENT_TYPE, "application/json")], prepared.json.clone()).into_response();
    }
    shared.streams.fetch_add(1, Ordering::Relaxed);
    let mut release = shared.release.subscribe();
    release.mark_unchanged();
    let events =
        futures::stream::unfold((0usize, prepared, release), |(i, prepared, mut release)| async move {
            let event = prepared.events.get(i)?.clone();
            if i > 0 {
                if prepared.knobs.hold && i == 1 {
                    // The sender lives as long as the backend; a closed channel also ends the hold.
                    let _ = release.changed().await;
                }
                if !prepared.knobs.chunk_interval.is_zero() {
                    tokio::time::sleep(prepared.knobs.chunk_interval).await;
                }
            }
            Some((Ok::<_, std::convert::Infallible>(event), (i + 1, prepared, release)))
        });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
