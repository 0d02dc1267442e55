//! The `openai` model backend client: one POST per prompt to an OpenAI-compatible server (llama.cpp,
//! vLLM, Ollama, hosted APIs), streaming or not, with bounded waits and bounded bodies.
//!
//! - **Request.** The body is the consumer's JSON object with `model` replaced by the configured
//!   `modelName`; every other field is kept as received (unknown ones included). It goes to
//!   [`ModelConfig::chat_url`] or [`ModelConfig::embeddings_url`] (the configured `apiUrl`, or its
//!   sibling endpoint; see [`super::models`]) with `Authorization: Bearer <apiKey>` when a key is set,
//!   and `Accept: text/event-stream` for streamed chats.
//! - **Answer.** A `text/event-stream` response is read line by line: each `data:` line is one JSON
//!   chunk (comments, `event:` and `id:` lines are skipped) and `data: [DONE]` ends it, as the
//!   reference reads it. Any other 2xx response is one JSON document. Chunks are handed over with their
//!   original bytes, so the provider can forward them unchanged.
//! - **Errors.** A non-2xx status is [`BackendError::Upstream`] with the status and the body (the
//!   upstream JSON, or `{"error":{"message":…,"type":"upstream_error"}}` when it is not JSON): the
//!   provider sends it back as a signed model error. Everything else (connection refused, timeouts,
//!   a stream that breaks, malformed JSON, oversized bodies) is an infrastructure error with a reason.
//! - **Timeouts** ([`BackendTimeouts`]): TCP connect; first byte (the response headers and, for a
//!   stream, the first chunk); the whole answer (`LLM_TIMEOUT`), from the request to the last byte.
//! - **Bounds:** a JSON answer of at most [`MAX_JSON_BODY`] bytes, SSE lines of at most
//!   [`MAX_SSE_LINE`] bytes, error bodies truncated at [`MAX_ERROR_BODY`] bytes.
//!
//! [`TokenMeter`] measures what the report needs: the backend's `usage` when it gives one, otherwise
//! an estimate (words of the prompt; streamed content chunks, or words of a full answer).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use url::Url;

use super::models::{Endpoint, ModelConfig};

/// Largest JSON answer read from a backend (a completion or embeddings): 8 MiB, so that its hex
/// ciphertext fits in the MOR-RPC frame limit.
pub const MAX_JSON_BODY: usize = 8 * 1024 * 1024;
/// Longest SSE line read from a backend.
pub const MAX_SSE_LINE: usize = 4 * 1024 * 1024;
/// Longest error body kept from a backend.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Default TCP connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-hop waits of one backend call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendTimeouts {
    /// TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending the request to the response headers and, for a stream, its first chunk.
    pub first_byte: Duration,
    /// From sending the request to the last byte of the answer (`LLM_TIMEOUT`).
    pub total: Duration,
}

impl BackendTimeouts {
    /// The node's waits for `LLM_TIMEOUT`: connect within 10 s (or `llm_timeout` if shorter), first
    /// byte and whole answer within `llm_timeout` (a non-streaming server sends its headers only
    /// once the whole answer is ready).
    pub fn for_llm_timeout(llm_timeout: Duration) -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT.min(llm_timeout),
            first_byte: llm_timeout,
            total: llm_timeout,
        }
    }
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend answered with a non-2xx status: a model error, sent back signed.
    #[error("model backend answered {status}")]
    Upstream {
        /// The HTTP status.
        status: u16,
        /// The upstream JSON body, or `{"error":{"message","type":"upstream_error"}}`.
        body: Value,
    },
    /// The request could not be sent (connection refused, DNS, TLS, reset before the headers).
    #[error("model backend {endpoint} unreachable: {reason}")]
    Unreachable {
        /// Scheme, host, port and path of the endpoint (no query: it may carry a key).
        endpoint: String,
        /// The client's reason.
        reason: String,
    },
    /// A wait ran out.
    #[error("model backend timed out waiting for {stage} (limit {limit:?})")]
    Timeout {
        /// `the response`, `the first chunk` or `the whole answer`.
        stage: &'static str,
        /// The limit that ran out.
        limit: Duration,
    },
    /// The answer broke off (connection dropped mid-stream or mid-body).
    #[error("model backend answer broke off: {reason}")]
    Broken {
        /// The client's reason.
        reason: String,
    },
    /// The answer is not what the protocol says (not JSON, bad SSE).
    #[error("model backend sent malformed data: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The answer exceeded a bound.
    #[error("model backend answer exceeds {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
    /// The HTTP client could not be built (TLS roots missing).
    #[error("cannot build the model backend HTTP client: {reason}")]
    Client {
        /// The builder's reason.
        reason: String,
    },
}

impl BackendError {
    /// Whether this is the model's own answer (signed and encrypted back) rather than an
    /// infrastructure failure.
    pub fn is_model_error(&self) -> bool {
        matches!(self, BackendError::Upstream { .. })
    }
}

/// One piece of a backend answer.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// A JSON chunk (a streamed `chat.completion.chunk`, or the whole non-streamed answer), with its
    /// bytes as received.
    Data {
        /// The bytes of the JSON value.
        raw: Bytes,
        /// The parsed value.
        json: Value,
    },
    /// The stream's `data: [DONE]`.
    Done,
}

/// The `openai` backend client, shared by all prompts (one connection pool). Cheap to clone.
#[derive(Debug, Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    timeouts: BackendTimeouts,
}

impl BackendClient {
    /// A client with these waits.
    pub fn new(timeouts: BackendTimeouts) -> Result<Self, BackendError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| BackendError::Client { reason: e.to_string() })?;
        Ok(Self { http, timeouts })
    }

    /// The waits.
    pub fn timeouts(&self) -> BackendTimeouts {
        self.timeouts
    }

    /// Sends `body` (a JSON object; its `model` is replaced by the model's name) to `model`'s
    /// `endpoint`. Returns once the response headers arrived with a 2xx status; read the answer
    /// with [`BackendAnswer::next_event`].
    pub async fn send(
        &self,
        model: &ModelConfig,
        endpoint: Endpoint,
        mut body: Map<String, Value>,
    ) -> Result<BackendAnswer, BackendError> {
        let started = Instant::now();
        let deadline = started + self.timeouts.total;
        let first_byte = started + self.timeouts.first_byte.min(self.timeouts.total);
        let url = model.endpoint_url(endpoint);
        let streamed = body.get("stream").and_then(Value::as_bool) == Some(true);
        body.insert("model".into(), Value::String(model.name.clone()));
        let payload =
            serde_json::to_vec(&body).map_err(|e| BackendError::Malformed { reason: e.to_string() })?;

        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload);
        if streamed {
            request = request.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(key) = &model.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = match tokio::time::timeout_at(first_byte, request.send()).await {
            Err(_) => {
                let (stage, limit) = if first_byte < deadline {
                    ("the response", self.timeouts.first_byte)
                } else {
                    ("the whole answer", self.timeouts.total)
                };
                return Err(BackendError::Timeout { stage, limit });
            }
            Ok(Err(e)) => {
                return Err(BackendError::Unreachable {
                    endpoint: endpoint_of(&url),
                    reason: error_chain(&e.without_url()),
                })
            }
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        if !status.is_success() {
            let body = read_error_body(response, deadline).await;
            return Err(BackendError::Upstream { status: status.as_u16(), body });
        }
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"));
        // Nothing reads the headers from here on, and they share hyper's first read buffer (8 KiB):
        // kept, it stays allocated for the whole answer next to the buffer the body is read into.
        let mut response = response;
        response.headers_mut().clear();
        Ok(BackendAnswer {
            response,
            is_stream,
            started,
            first_byte,
            deadline,
            timeouts: self.timeouts,
            buf: BytesMut::new(),
            got_data: false,
            finished: false,
        })
    }
}

/// `scheme://host:port/path` of a URL (no query, no credentials).
fn endpoint_of(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// The error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn read_error_body(mut response: reqwest::Response, deadline: Instant) -> Value {
    let mut body = Vec::new();
    let read = tokio::time::timeout_at(deadline, async {
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_ERROR_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    });
    let _ = read.await;
    match serde_json::from_slice::<Value>(&body) {
        Ok(json) => json,
        Err(_) => {
            let text = String::from_utf8_lossy(&body).trim().to_owned();
            json!({"error": {"message": text, "type": "upstream_error"}})
        }
    }
}

/// A backend's 2xx answer being read.
#[derive(Debug)]
pub struct BackendAnswer {
    response: reqwest::Response,
    is_stream: bool,
    started: Instant,
    first_byte: Instant,
    deadline: Instant,
    timeouts: BackendTimeouts,
    buf: BytesMut,
    got_data: bool,
    finished: bool,
}

impl BackendAnswer {
    /// Whether the answer is a `text/event-stream`.
    pub fn is_stream(&self) -> bool {
        self.is_stream
    }

    /// When the request was sent.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The next piece of the answer; `None` once it is complete. A non-streamed answer is one
    /// [`BackendEvent::Data`]; a stream is its chunks, then [`BackendEvent::Done`] (also when the
    /// server closes the stream cleanly without `[DONE]`).
    pub async fn next_event(&mut self) -> Result<Option<BackendEvent>, BackendError> {
        if self.finished {
            return Ok(None);
        }
        if !self.is_stream {
            let body = self.read_all().await?;
            self.finished = true;
            let json: Value = serde_json::from_slice(&body)
                .map_err(|e| BackendError::Malformed { reason: format!("the answer is not JSON: {e}") })?;
            return Ok(Some(BackendEvent::Data { raw: body, json }));
        }
        loop {
            if let Some(line) = self.take_line()? {
                match parse_sse_line(&line)? {
                    Some(event) => {
                        if event == BackendEvent::Done {
                            self.finished = true;
                        }
                        self.got_data = true;
                        return Ok(Some(event));
                    }
                    None => continue,
                }
            }
            match self.read_chunk().await? {
                Some(chunk) => {
                    self.buf.extend_from_slice(&chunk);
                }
                None => {
                    // Clean end of the body: a last line without newline, then the end of the stream.
                    self.finished = true;
                    let rest = self.buf.split().freeze();
                    if let Some(event) = parse_sse_line(&rest)?.filter(|e| *e != BackendEvent::Done) {
                        return Ok(Some(event));
                    }
                    return Ok(Some(BackendEvent::Done));
                }
            }
        }
    }

    /// One complete line from the buffer (without `\n` / `\r\n`).
    fn take_line(&mut self) -> Result<Option<Bytes>, BackendError> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                Ok(Some(line.freeze()))
            }
            None if self.buf.len() > MAX_SSE_LINE => Err(BackendError::TooLarge { limit: MAX_SSE_LINE }),
            None => Ok(None),
        }
    }

    /// The next body chunk within the waits.
    async fn read_chunk(&mut self) -> Result<Option<Bytes>, BackendError> {
        let (until, stage, limit) = if !self.got_data && self.first_byte < self.deadline {
            (self.first_byte, "the first chunk", self.timeouts.first_byte)
        } else {
            (self.deadline, "the whole answer", self.timeouts.total)
        };
        match tokio::time::timeout_at(until, self.response.chunk()).await {
            Err(_) => Err(BackendError::Timeout { stage, limit }),
            Ok(Err(e)) => Err(BackendError::Broken { reason: error_chain(&e.without_url()) }),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    async fn read_all(&mut self) -> Result<Bytes, BackendError> {
        let mut body = BytesMut::new();
        loop {
            let until = self.deadline;
            match tokio::time::timeout_at(until, self.response.chunk()).await {
                Err(_) => {
                    return Err(BackendError::Timeout {
                        stage: "the whole answer",
                        limit: self.timeouts.total,
                    })
                }
                Ok(Err(e)) => return Err(BackendError::Broken { reason: error_chain(&e.without_url()) }),
                Ok(Ok(None)) => return Ok(body.freeze()),
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > MAX_JSON_BODY {
                        return Err(BackendError::TooLarge { limit: MAX_JSON_BODY });
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
    }
}

/// One SSE line: `data: <json>` → a chunk, `data: [DONE]` → the end; blank lines, comments and other
/// fields → `None`.
fn parse_sse_line(line: &[u8]) -> Result<Option<BackendEvent>, BackendError> {
    let Some(data) = line.strip_prefix(b"data:") else { return Ok(None) };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed == b"[DONE]" {
        return Ok(Some(BackendEvent::Done));
    }
    let json: Value = serde_json::from_slice(trimmed)
        .map_err(|e| BackendError::Malformed { reason: format!("a stream chunk is not JSON: {e}") })?;
    Ok(Some(BackendEvent::Data { raw: Bytes::copy_from_slice(trimmed), json }))
}

/// Token counts of one prompt: the backend's `usage` when present, otherwise estimates.
#[derive(Debug, Clone, Default)]
pub struct TokenMeter {
    prompt_estimate: u64,
    counted_output: u64,
    usage_prompt: Option<u64>,
    usage_completion: Option<u64>,
}

impl TokenMeter {
    /// A meter for a chat request (`messages`) or an embeddings request (`input`): the prompt estimate
    /// is the number of whitespace-separated words of its text.
    pub fn for_request(body: &Map<String, Value>) -> Self {
        let mut words = 0u64;
        if let Some(messages) = body.get("messages").and_then(Value::as_array) {
            for message in messages {
                words += text_words(message.get("content").unwrap_or(&Value::Null));
            }
        }
        if let Some(input) = body.get("input") {
            words += text_words(input);
        }
        Self { prompt_estimate: words, ..Self::default() }
    }

    /// Observes one answer chunk (streamed or whole).
    pub fn observe(&mut self, chunk: &Value) {
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            if let Some(p) = usage.get("prompt_tokens").and_then(Value::as_u64) {
                self.usage_prompt = Some(p);
            }
            if let Some(c) = usage.get("completion_tokens").and_then(Value::as_u64) {
                self.usage_completion = Some(c);
            }
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some(content) = choice.pointer("/delta/content").and_then(Value::as_str) {
                if !content.is_empty() {
                    self.counted_output += 1;
                }
            }
            if let Some(content) = choice.pointer("/message/content") {
                self.counted_output += text_words(content);
            }
        }
    }

    /// Whether an answer chunk carried the backend's `usage.completion_tokens`.
    pub fn has_usage(&self) -> bool {
        self.usage_completion.is_some()
    }

    /// Prompt tokens: the backend's `usage.prompt_tokens`, else the word estimate.
    pub fn input_tokens(&self) -> u64 {
        self.usage_prompt.unwrap_or(self.prompt_estimate)
    }

    /// Completion tokens: the backend's `usage.completion_tokens`, else streamed content chunks (or
    /// the words of a whole answer).
    pub fn output_tokens(&self) -> u64 {
        self.usage_completion.unwrap_or(self.counted_output)
    }

    /// `{prompt_tokens, completion_tokens, total_tokens}` as the reference's `usage_from_provider`.
    pub fn usage_json(&self) -> Value {
        let (input, output) = (self.input_tokens(), self.output_tokens());
        json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
    }
}

/// Words of a string, of the `text` parts of a content array, or of an array of strings.
fn text_words(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(_) => text_words(item),
                Value::Object(part) => part.get("text").map_or(0, text_words),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::{Json, Router};
    use futures::StreamExt;

    use super::*;
    use crate::provider::models::{ConfigSource, Models};

    #[derive(Default)]
    struct Seen {
        bodies: Vec<(String, Value)>,
        auth: Vec<Option<String>>,
    }

    /// A tiny OpenAI-like server: `/v1/chat/completions` streams three chunks (or answers JSON),
    /// `/v1/embeddings` answers JSON, `/fail` answers 503 JSON, `/fail-text` 500 text, `/slow` never
    /// answers, `/drop` streams one chunk and breaks, `/garbage` streams a non-JSON chunk.
    async fn server() -> (SocketAddr, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = |seen: Arc<Mutex<Seen>>, path: &'static str| {
            move |headers: HeaderMap, Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    let mut s = seen.lock().unwrap();
                    s.bodies.push((path.to_owned(), body.clone()));
                    s.auth.push(headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()));
                    body
                }
            }
        };
        let chat = {
            let record = record(seen.clone(), "chat");
            move |headers: HeaderMap, body: Json<Value>| async move {
                let body = record(headers, body).await;
                if body["stream"] == true {
                    let events = [
                        ": keep-alive\n\n".to_owned(),
                        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n".to_owned(),
                        "event: message\ndata:{\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n".to_owned(),
                        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n".to_owned(),
                    ];
                    let stream =
                        futures::stream::iter(events.map(|e| Ok::<_, std::io::Error>(Bytes::from(e))));
                    Response::builder()
                        .header("content-type", "text/event-stream; charset=utf-8")
                        .body(Body::from_stream(stream))
                        .unwrap()
                } else {
                    Json(json!({"object": "chat.completion", "model": body["model"], "extra": body["extra"],
                        "choices": [{"message": {"role": "assistant", "content": "one two three"}}]}))
                    .into_response()
                }
            }
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route(
                "/v1/embeddings",
                post({
                    let record = record(seen.clone(), "embeddings");
                    move |headers: HeaderMap, body: Json<Value>| async move {
                        record(headers, body).await;
                        Json(json!({"object": "list", "data": [{"embedding": [0.5, 0.25]}]}))
                    }
                }),
            )
            .route(
                "/fail/v1/chat/completions",
                post(|| async {
                    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": {"message": "overloaded"}})))
                }),
            )
            .route(
                "/fail-text/v1/chat/completions",
                post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route(
                "/slow/v1/chat/completions",
                post(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .route(
                "/drop/v1/chat/completions",
                post(|| async {
                    // The failure comes a moment after the first chunk, so the headers and the chunk
                    // are flushed before the connection breaks.
                    let stream = futures::stream::iter([
                        Ok(Bytes::from("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")),
                        Err(std::io::Error::other("gone")),
                    ])
                    .then(|item| async move {
                        if item.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        item
                    });
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .unwrap()
                }),
            )
            .route(
                "/garbage/v1/chat/completions",
                post(|| async {
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from("data: {not json\n\n"))
                        .unwrap()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, seen)
    }

    fn model(url: &str, key: Option<&str>) -> ModelConfig {
        let key = key.map(|k| format!(r#","apiKey":"{k}""#)).unwrap_or_default();
        let text = format!(
            r#"{{"models":[{{"modelId":"{}","modelName":"served-name","apiType":"openai","apiUrl":"{url}"{key}}}]}}"#,
            "0x".to_owned() + &"ab".repeat(32)
        );
        Models::parse(&text, ConfigSource::Content).unwrap().iter().next().unwrap().as_ref().clone()
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn client() -> BackendClient {
        BackendClient::new(BackendTimeouts::for_llm_timeout(Duration::from_secs(10))).unwrap()
    }

    async fn collect(answer: &mut BackendAnswer) -> Result<Vec<BackendEvent>, BackendError> {
        let mut events = Vec::new();
        while let Some(event) = answer.next_event().await? {
            events.push(event);
        }
        Ok(events)
    }

    #[tokio::test]
    async fn streamed_chat_yields_json_chunks_then_done_with_model_overridden_and_fields_kept() {
        let (addr, seen) = server().await;
        let m = model(&format!("http://{addr}/v1/chat/completions"), Some("sk-test"));
        let request = body(
            json!({"model": "client-choice", "stream": true, "messages": [{"role": "user", "content": "say hello now"}], "tool_choice": "auto", "x_custom": {"a": 1}}),
        );
        let mut meter = TokenMeter::for_request(&request);
        let mut answer = client().send(&m, Endpoint::Chat, request).await.unwrap();
        assert!(answer.is_stream());
        let events = collect(&mut answer).await.unwrap();
        assert_eq!(events.len(), 4, "{events:?}");
        let BackendEvent::Data { raw, json } = &events[0] else { panic!() };
        assert_eq!(raw.as_ref(), br#"{"choices":[{"delta":{"content":"Hel"}}]}"#);
        assert_eq!(json["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(events[3], BackendEvent::Done);
        for event in &events {
            if let BackendEvent::Data { json, .. } = event {
                meter.observe(json);
            }
        }
        assert_eq!((meter.input_tokens(), meter.output_tokens()), (4, 2), "usage from the backend wins");

        let seen = seen.lock().unwrap();
        let (path, sent) = &seen.bodies[0];
        assert_eq!(path, "chat");
        assert_eq!(sent["model"], "served-name");
        assert_eq!(sent["tool_choice"], "auto");
        assert_eq!(sent["x_custom"], json!({"a": 1}));
        assert_eq!(seen.auth[0].as_deref(), Some("Bearer sk-test"));
    }

    #[tokio::test]
    async fn plain_chat_and_embeddings_are_one_json_answer() {
        let (addr, seen) = server().await;
        let m = model(&format!("http://{addr}/v1/chat/completions"), None);
        let request = body(
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a b"}]}], "extra": 7}),
        );
        let mut meter = TokenMeter::for_request(&request);
        let mut answer = client().send(&m, Endpoint::Chat, request).await.unwrap();
        assert!(!answer.is_stream());
        let events = collect(&mut answer).await.unwrap();
        assert_eq!(events.len(), 1);
        let BackendEvent::Data { json, .. } = &events[0] else { panic!() };
        assert_eq!((json["model"].as_str(), json["extra"].as_i64()), (Some("served-name"), Some(7)));
        meter.observe(json);
        assert_eq!((meter.input_tokens(), meter.output_tokens()), (2, 3), "estimates without usage");
        assert_eq!(
            meter.usage_json(),
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );

        let request = body(json!({"input": ["x y", "z"], "encoding_format": "float"}));
        let mut answer = client().send(&m, Endpoint::Embeddings, request).await.unwrap();
        let events = collect(&mut answer).await.unwrap();
        let BackendEvent::Data { json, .. } = &events[0] else { panic!() };
        assert_eq!(json["data"][0]["embedding"], json!([0.5, 0.25]));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bodies[1].0, "embeddings", "the sibling embeddings URL");
        assert_eq!(seen.bodies[1].1["encoding_format"], "float");
        assert_eq!(seen.auth[1], None);
    }

    #[tokio::test]
    async fn upstream_errors_carry_status_and_body() {
        let (addr, _) = server().await;
        let err = client()
            .send(
                &model(&format!("http://{addr}/fail/v1/chat/completions"), None),
                Endpoint::Chat,
                body(json!({})),
            )
            .await
            .unwrap_err();
        assert!(err.is_model_error());
        let BackendError::Upstream { status, body: error_body } = err else { panic!() };
        assert_eq!((status, error_body), (503, json!({"error": {"message": "overloaded"}})));

        let err = client()
            .send(
                &model(&format!("http://{addr}/fail-text/v1/chat/completions"), None),
                Endpoint::Chat,
                body(json!({})),
            )
            .await
            .unwrap_err();
        let BackendError::Upstream { status, body: error_body } = err else { panic!() };
        assert_eq!(
            (status, error_body),
            (500, json!({"error": {"message": "boom", "type": "upstream_error"}}))
        );
    }

    #[tokio::test]
    async fn infrastructure_failures_are_typed() {
        let (addr, _) = server().await;
        // Nothing listens on port 1.
        let err = client()
            .send(&model("http://127.0.0.1:1/v1/chat/completions", None), Endpoint::Chat, body(json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BackendError::Unreachable { endpoint, .. } if endpoint == "http://127.0.0.1:1/v1/chat/completions"),
            "{err}"
        );
        assert!(!err.is_model_error());

        let quick = BackendClient::new(BackendTimeouts {
            connect: Duration::from_secs(1),
            first_byte: Duration::from_millis(200),
            total: Duration::from_secs(5),
        })
        .unwrap();
        let err = quick
            .send(
                &model(&format!("http://{addr}/slow/v1/chat/completions"), None),
                Endpoint::Chat,
                body(json!({})),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::Timeout { stage: "the response", .. }), "{err}");

        let mut answer = client()
            .send(
                &model(&format!("http://{addr}/drop/v1/chat/completions"), None),
                Endpoint::Chat,
                body(json!({"stream": true})),
            )
            .await
            .unwrap();
        assert!(matches!(answer.next_event().await, Ok(Some(BackendEvent::Data { .. }))));
        let err = answer.next_event().await.unwrap_err();
        assert!(matches!(err, BackendError::Broken { .. }), "{err}");

        let mut answer = client()
            .send(
                &model(&format!("http://{addr}/garbage/v1/chat/completions"), None),
                Endpoint::Chat,
                body(json!({"stream": true})),
            )
            .await
            .unwrap();
        let err = answer.next_event().await.unwrap_err();
        assert!(matches!(err, BackendError::Malformed { .. }), "{err}");
    }

    #[test]
    fn sse_lines() {
        assert_eq!(parse_sse_line(b"").unwrap(), None);
        assert_eq!(parse_sse_line(b": comment").unwrap(), None);
        assert_eq!(parse_sse_line(b"id: 3").unwrap(), None);
        assert_eq!(parse_sse_line(b"data: [DONE]").unwrap(), Some(BackendEvent::Done));
        assert_eq!(parse_sse_line(b"data:[DONE] ").unwrap(), Some(BackendEvent::Done));
        let Some(BackendEvent::Data { raw, json }) = parse_sse_line(b"data: {\"a\":1}").unwrap() else {
            panic!()
        };
        assert_eq!((raw.as_ref(), json), (&b"{\"a\":1}"[..], json!({"a": 1})));
        assert!(parse_sse_line(b"data: nope").is_err());
    }
}
