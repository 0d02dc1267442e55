//! Chat history recording, shared by the admin API's `POST /v1/chat/completions` and the OpenAI
//! gateway (the routes that read the history are `api::chats`). Recording chat exchanges: [`ChatLog`] (the store plus `PROXY_STORE_CHAT_CONTEXT`),
//! [`record_exchange`], the answer-text extraction [`answer_text`], and the tap the admin
//! `POST /v1/chat/completions` puts on its answer ([`Capture`], [`tap`]).
//!
//! An exchange is `{prompt: the request object, response: the concatenated text of the answer,
//! promptAt, responseAt}` (unix seconds). The answer's text is `choices[].delta.content` of a stream's
//! chunks, or `choices[].message.content` of a JSON answer, capped at [`MAX_RESPONSE_BYTES`]. The
//! chat's title is its first user message's text, cut at [`MAX_TITLE_CHARS`].
//!
//! A streamed answer is recorded when its stream ends, after its last event was handed to the client
//! (a client that disconnects first leaves no record); a JSON answer after its body. Recording
//! failures are logged and never touch the answer.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::B256;
use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;
use serde_json::{Map, Value};

use crate::store::{ChatBounds, Exchange, Store, StoreError};

/// The request header naming the chat (the reference's, hex32).
pub const CHAT_ID_HEADER: &str = "chat_id";
/// Longest answer text kept per exchange, in bytes (cut at a character boundary).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 256;

/// The chat history recorder: the store and whether `PROXY_STORE_CHAT_CONTEXT` turns storage on.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChatLog {
    store: Store,
    enabled: bool,
    bounds: ChatBounds,
}

impl ChatLog {
    /// Records into `store` when `enabled`, within [`ChatBounds::DEFAULT`].
    pub fn new(store: Store, enabled: bool) -> Self {
        Self { store, enabled, bounds: ChatBounds::DEFAULT }
    }

    /// The same log keeping `bounds`.
    pub fn with_bounds(self, bounds: ChatBounds) -> Self {
        Self { bounds, ..self }
    }

    /// Whether exchanges are stored (`PROXY_STORE_CHAT_CONTEXT`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The store the history lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends one exchange to `chat_id` (see [`record_exchange`]); does nothing when storage is off.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_exchange(
        &self,
        chat_id: B256,
        model_id: B256,
        is_local: bool,
        prompt: &Map<String, Value>,
        response_text: &str,
        prompt_at: u64,
        response_at: u64,
    ) -> Result<(), StoreError> {
        if !self.enabled {
            return Ok(());
        }
        append(
            &self.store,
            self.bounds,
            chat_id,
            model_id,
            is_local,
            prompt,
            response_text,
            prompt_at,
            response_at,
        )
        .await
    }
}

/// Appends one exchange to the chat `chat_id` in `store` (created on its first exchange with
/// `model_id`, `is_local` and the prompt's title), within [`ChatBounds::DEFAULT`]. `response_text`
/// is cut at [`MAX_RESPONSE_BYTES`]; times are unix seconds. Ignores `PROXY_STORE_CHAT_CONTEXT`: call
/// [`ChatLog::record_exchange`] to follow it.
#[allow(clippy::too_many_arguments)]
pub async fn record_exchange(
    store: &Store,
    chat_id: B256,
    model_id: B256,
    is_local: bool,
    prompt: &Map<String, Value>,
    response_text: &str,
    prompt_at: u64,
    response_at: u64,
) -> Result<(), StoreError> {
    append(
        store,
        ChatBounds::DEFAULT,
        chat_id,
        model_id,
        is_local,
        prompt,
        response_text,
        prompt_at,
        response_at,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn append(
    store: &Store,
    bounds: ChatBounds,
    chat_id: B256,
    model_id: B256,
    is_local: bool,
    prompt: &Map<String, Value>,
    response_text: &str,
    prompt_at: u64,
    response_at: u64,
) -> Result<(), StoreError> {
    let exchange = Exchange {
        prompt: Value::Object(prompt.clone()).to_string(),
        response: truncate(response_text, MAX_RESPONSE_BYTES).to_owned(),
        prompt_at,
        response_at,
        is_image_content: false,
        is_video_raw_content: false,
        is_audio_content: false,
    };
    store.chats().append(chat_id, model_id, is_local, &chat_title(prompt), &exchange, bounds).await
}

/// The text of one answer JSON: the `content` strings of `choices[].delta` (a stream chunk) or
/// `choices[].message` (a whole answer), concatenated. `None` when the JSON has neither (usage-only
/// chunks, errors, other bodies).
pub fn answer_text(json: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(json).ok()?;
    let choices = value.get("choices")?.as_array()?;
    let mut text: Option<String> = None;
    for choice in choices {
        let content = choice
            .get("delta")
            .and_then(|d| d.get("content"))
            .or_else(|| choice.get("message").and_then(|m| m.get("content")));
        if let Some(Value::String(s)) = content {
            text.get_or_insert_with(String::new).push_str(s);
        }
    }
    text
}

/// A chat's title: the text of its first user message (the first message when none is the user's),
/// cut at [`MAX_TITLE_CHARS`]; empty without messages.
pub fn chat_title(prompt: &Map<String, Value>) -> String {
    let messages = prompt.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let first = messages
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .or_else(|| messages.first());
    let text = match first.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        // Content parts: the text ones.
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    };
    text.chars().take(MAX_TITLE_CHARS).collect()
}

/// The longest prefix of `text` of at most `max` bytes ending at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Where the recorded model id comes from.
#[derive(Debug, Clone, Copy)]
pub enum ModelRef {
    /// A local model (`model_id` header): the id itself, `isLocal` true.
    Local(B256),
    /// A session: its model, read from the consumer's record when the answer ends.
    Session(B256),
}

/// A `chat_id` header that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidChatId(pub String);

fn parse_chat_id(text: &str) -> Result<B256, InvalidChatId> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() != 64 {
        return Err(InvalidChatId(format!("{text:?} is not 32 bytes of hex")));
    }
    digits.parse().map_err(|_| InvalidChatId(format!("{text:?} is not 32 bytes of hex")))
}

/// A chat request being recorded: taken before the prompt is sent, completed by [`tap`].
#[derive(Debug)]
pub struct Capture {
    log: ChatLog,
    chat_id: B256,
    prompt: Map<String, Value>,
    prompt_at: u64,
}

impl Capture {
    /// Starts recording when the request names a chat (`chat_id` header) and storage is on. A
    /// malformed header is 400 `chat_id` (as the reference validates it), whether or not storage is on.
    pub fn start(
        log: &ChatLog,
        headers: &HeaderMap,
        prompt: &Map<String, Value>,
    ) -> Result<Option<Self>, InvalidChatId> {
        let Some(value) = headers.get(CHAT_ID_HEADER) else { return Ok(None) };
        let text = value.to_str().map_err(|_| InvalidChatId("not ASCII".into()))?;
        let chat_id = parse_chat_id(text.trim())?;
        if !log.enabled() {
            return Ok(None);
        }
        Ok(Some(Self { log: log.clone(), chat_id, prompt: prompt.clone(), prompt_at: unix_now() }))
    }
}

/// Records the answer `response` of `capture` as it passes to the client (see the module docs).
/// Anything but a 200 answer, or no capture, passes untouched.
pub fn tap(capture: Option<Capture>, model: ModelRef, response: Response) -> Response {
    let Some(capture) = capture else { return response };
    if response.status() != StatusCode::OK {
        return response;
    }
    let streaming = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let (parts, body) = response.into_parts();
    struct Tapped {
        inner: axum::body::BodyDataStream,
        capture: Option<Capture>,
        model: ModelRef,
        reader: Reader,
    }
    let state = Tapped {
        inner: body.into_data_stream(),
        capture: Some(capture),
        model,
        reader: Reader::new(streaming),
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        match state.inner.next().await {
            Some(Ok(bytes)) => {
                state.reader.push(&bytes);
                Some((Ok::<Bytes, axum::Error>(bytes), state))
            }
            Some(Err(e)) => Some((Err(e), state)),
            None => {
                if let Some(capture) = state.capture.take() {
                    finish(capture, state.model, state.reader.text()).await;
                }
                None
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Stores the exchange once the answer is complete; failures are logged.
async fn finish(capture: Capture, model: ModelRef, text: String) {
    let response_at = unix_now();
    let (model_id, is_local) = match model {
        ModelRef::Local(id) => (id, true),
        ModelRef::Session(session) => match capture.log.store().consumer_sessions().get(session).await {
            Ok(Some(record)) => (record.model_id, false),
            Ok(None) => {
                tracing::warn!(%session, chat = %capture.chat_id, "chat not recorded: the session has no record");
                return;
            }
            Err(e) => {
                tracing::warn!(%session, chat = %capture.chat_id, error = %e, "chat not recorded");
                return;
            }
        },
    };
    if let Err(e) = capture
        .log
        .record_exchange(
            capture.chat_id,
            model_id,
            is_local,
            &capture.prompt,
            &text,
            capture.prompt_at,
            response_at,
        )
        .await
    {
        tracing::warn!(chat = %capture.chat_id, error = %e, "chat not recorded");
    }
}

/// Collects an answer's text from its bytes: SSE `data:` events one by one, or a JSON body whole (up
/// to [`MAX_RESPONSE_BYTES`] × 4 of JSON; a larger body records no text).
#[derive(Debug)]
struct Reader {
    streaming: bool,
    buffer: Vec<u8>,
    text: String,
    overflow: bool,
}

impl Reader {
    fn new(streaming: bool) -> Self {
        Self { streaming, buffer: Vec::new(), text: String::new(), overflow: false }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overflow {
            return;
        }
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() > 4 * MAX_RESPONSE_BYTES {
            self.overflow = true;
            self.buffer = Vec::new();
            return;
        }
        if !self.streaming {
            return;
        }
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
            for line in event.split(|b| *b == b'\n') {
                let Some(data) = line.strip_prefix(b"data:") else { continue };
                let data = data.strip_prefix(b" ").unwrap_or(data);
                if data == b"[DONE]" {
                    continue;
                }
                if let Some(piece) = answer_text(data) {
                    if self.text.len() < MAX_RESPONSE_BYTES {
                        self.text.push_str(&piece);
                    }
                }
            }
        }
    }

    fn text(mut self) -> String {
        if !self.streaming && !self.overflow {
            self.text = answer_text(&self.buffer).unwrap_or_default();
        }
        self.text
    }
}
