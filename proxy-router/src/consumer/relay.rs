//! Prompts on a session (go-proxy-router.md §4.3, §6): the OpenAI request goes to the provider as
//! `session.prompt` (chat as is, embeddings marked `"type":"embeddings"`, top-level keys sorted as
//! the reference's map re-marshal sorts them, unknown keys kept), and the provider's verified,
//! decrypted chunks come back as [`RelayEvent`]s.
//!
//! # Which session answers
//!
//! The session must be this wallet's, open and not past its end, checked against the local index and
//! the consumer's record (no RPC call; only a session neither knows is looked up on chain, to tell
//! "unknown" from "someone else's"). A session of this wallet that has no record yet (opened by
//! another node, or before the store was lost) is adopted: its provider's endpoint comes from the
//! index and its key from a ping. A session replaced by failover forwards to its successor.
//!
//! # Failover
//!
//! When the session was opened with `failover` and its provider fails **before the first chunk**
//! (unreachable, silent, refusing, invalid answer — not a model's own error answer), the next-best
//! bid of the same model is opened for the session's remaining time (at least the contract's five
//! minutes; same direct-payment and failover choices; the failed provider skipped), the old session
//! is closed, and the prompt is sent again on the new one; the client's request completes. The old
//! session's record points to the new one, so clients that keep sending the old id are served too.
//! The reference announces this with plain-text SSE lines, which break OpenAI clients; we answer the
//! new id in the `X-Session-Id` response header instead (see `api::proxy`).
//!
//! # Statistics
//!
//! Each answered prompt adds its time to first chunk, its output rate and its tokens (from the
//! upstream `usage` when present, else one output token per content chunk) to the session's record;
//! a disputed close reports them.

use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::primitives::B256;
use futures::Stream;
use serde_json::{Map, Value};

use super::client::{Chunk, PromptStream, ProviderKey};
use super::error::ConsumerError;
use super::open::{OpenRequest, MIN_SESSION_DURATION};
use super::{unix_now, Consumer};
use crate::store::{AnsweredPrompt, ConsumerSession, SessionStats};

/// How many times one request may fail over to another provider.
pub const MAX_FAILOVERS: usize = 2;

/// How many failover successors are followed from the session a client names.
const MAX_SUCCESSORS: usize = 16;

/// What the prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
}

/// A client's request, ready to be sent on a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Chat or embeddings.
    pub kind: PromptKind,
    /// The OpenAI request body (a JSON object, unknown keys included).
    pub body: Map<String, Value>,
    /// The MOR-RPC request id (the HTTP `X-Request-Id`).
    pub request_id: String,
}

impl Prompt {
    /// Whether the client asked for a streamed (SSE) answer.
    pub fn streaming(&self) -> bool {
        self.kind == PromptKind::Chat && self.body.get("stream") == Some(&Value::Bool(true))
    }

    /// The `session.prompt` message: the request JSON with sorted keys, embeddings marked.
    pub fn message(&self) -> Result<String, ConsumerError> {
        let mut body = self.body.clone();
        if self.kind == PromptKind::Embeddings {
            body.insert("type".to_owned(), Value::String("embeddings".to_owned()));
        }
        // `serde_json::Map` is ordered by key (no `preserve_order`), like Go's map marshalling.
        serde_json::to_string(&body)
            .map_err(|e| ConsumerError::BadRequest { field: "body", reason: e.to_string() })
    }
}

/// What the relay yields for the client.
#[derive(Debug)]
pub enum RelayEvent {
    /// One chunk's JSON (compact, no line breaks).
    Data(bytes::Bytes),
    /// The end of a streamed answer (`data: [DONE]`).
    Done,
    /// The answer broke off after it had started; nothing follows.
    Error(ConsumerError),
}

/// A prompt's answer: its first chunk has arrived, the rest streams.
#[derive(Debug)]
pub struct Answer {
    /// The session that answered (the asked one, or its failover successor).
    pub session_id: B256,
    /// Sessions replaced by failover while answering this request, oldest first.
    pub replaced: Vec<B256>,
    /// Whether the client asked for a stream.
    pub streaming: bool,
    consumer: Consumer,
    first: Chunk,
    rest: PromptStream,
    started: Instant,
    ttft: Duration,
}

impl Consumer {
    /// Sends `prompt` on `session_id` (failing over when the session allows it) and returns the
    /// answer once its first chunk has arrived. Errors before that are returned as errors.
    pub async fn prompt(&self, session_id: B256, prompt: &Prompt) -> Result<Answer, ConsumerError> {
        let message = prompt.message()?;
        let mut current = session_id;
        let mut replaced = Vec::new();
        loop {
            let mut record = self.resolve(current).await?;
            current = record.session_id;
            let error = match self.send(&mut record, &message, &prompt.request_id).await {
                Ok((first, rest, started, ttft)) => {
                    return Ok(Answer {
                        session_id: current,
                        replaced,
                        streaming: prompt.streaming(),
                        consumer: self.clone(),
                        first,
                        rest,
                        started,
                        ttft,
                    })
                }
                Err(e) if e.is_provider_failure() => e,
                Err(e) => return Err(e),
            };
            if let Err(e) = self.store().consumer_sessions().add_failure(current).await {
                tracing::warn!(session = %current, error = %e, "cannot count a failed prompt");
            }
            if !record.failover || replaced.len() >= MAX_FAILOVERS {
                return Err(error);
            }
            tracing::warn!(session = %current, provider = %record.provider, %error, "provider failed, failing over");
            let successor = self.fail_over(&record).await.map_err(|reason| {
                ConsumerError::FailoverFailed { original: error.to_string(), reason: reason.to_string() }
            })?;
            replaced.push(current);
            current = successor;
        }
    }

    async fn send(
        &self,
        record: &mut ConsumerSession,
        message: &str,
        request_id: &str,
    ) -> Result<(Chunk, PromptStream, Instant, Duration), ConsumerError> {
        let signer = self.signer()?;
        let key = self.ensure_key(record).await?;
        let started = Instant::now();
        let (first, rest) = self
            .client()
            .prompt(
                &record.endpoint,
                &key,
                signer.sender.wallet().signer(),
                record.session_id,
                message.to_owned(),
                request_id,
            )
            .await?;
        Ok((first, rest, started, started.elapsed()))
    }

    /// The open session of this wallet that answers for `session_id` (following failover
    /// successors), checked and with its record, adopted if it had none.
    pub(crate) async fn resolve(&self, session_id: B256) -> Result<ConsumerSession, ConsumerError> {
        let me = self.signer()?.address();
        let records = self.store().consumer_sessions();
        let mut id = session_id;
        let mut record = records.get(id).await?;
        for _ in 0..MAX_SUCCESSORS {
            match record.as_ref().and_then(|r| r.replaced_by) {
                Some(next) => {
                    id = next;
                    record = records.get(id).await?;
                }
                None => break,
            }
        }
        let indexed = match self.store().sessions().get(id).await? {
            Some(s) => Some(s),
            // Neither the index nor the record knows it: ask the chain, once, to tell an unknown
            // session from another user's (not a hot path: the request fails either way otherwise).
            None if record.is_none() => self.chain().session(id, BlockId::latest()).await?,
            None => None,
        };
        let user = record.as_ref().map(|r| r.user).or(indexed.as_ref().map(|s| s.user));
        let Some(user) = user else { return Err(ConsumerError::SessionNotFound(id)) };
        if user != me {
            return Err(ConsumerError::NotOurSession { session: id, user, wallet: me });
        }
        let closed = record.as_ref().is_some_and(|r| r.closed_at != 0)
            || indexed.as_ref().is_some_and(|s| s.closed_at != 0);
        if closed {
            return Err(ConsumerError::SessionClosed(id));
        }
        let ends_at = indexed.as_ref().map(|s| s.ends_at).or(record.as_ref().map(|r| r.ends_at)).unwrap_or(0);
        if ends_at <= unix_now() {
            return Err(ConsumerError::SessionExpired { session: id, ends_at });
        }
        let mut record = match (record, indexed) {
            (Some(record), _) => record,
            (None, Some(session)) => self.adopt(&session).await?,
            (None, None) => return Err(ConsumerError::SessionNotFound(id)),
        };
        record.ends_at = ends_at;
        // The provider may have moved: the index holds its current endpoint.
        if let Some(provider) = self.store().providers().get(record.provider).await? {
            if !provider.endpoint.is_empty() && provider.endpoint != record.endpoint {
                tracing::info!(session = %id, from = %record.endpoint, to = %provider.endpoint, "provider endpoint changed");
                record.endpoint = provider.endpoint;
                record.provider_public_key = None;
            }
        }
        Ok(record)
    }

    /// A record for a session of this wallet that has none (opened elsewhere, or the store was lost):
    /// the endpoint from the index (or chain), the key learned later by a ping, no failover.
    pub(crate) async fn adopt(
        &self,
        session: &crate::store::Session,
    ) -> Result<ConsumerSession, ConsumerError> {
        let endpoint = self.endpoint(session.provider, BlockId::latest()).await.unwrap_or_default();
        let record = ConsumerSession {
            session_id: session.id,
            user: session.user,
            provider: session.provider,
            bid_id: session.bid_id,
            model_id: session.model_id,
            endpoint,
            provider_public_key: None,
            stake: session.stake,
            direct_payment: session.is_direct_payment,
            failover: false,
            opened_at: session.opened_at,
            ends_at: session.ends_at,
            closed_at: session.closed_at,
            close_tx: None,
            closeout_type: None,
            replaced_by: None,
            stats: SessionStats::default(),
            created_at: unix_now(),
        };
        self.store().consumer_sessions().upsert(&record).await?;
        tracing::info!(session = %session.id, provider = %session.provider, "session adopted from the chain index");
        Ok(record)
    }

    /// The provider's key for `record`: the one recorded, or recovered from a ping (and recorded).
    pub(crate) async fn ensure_key(
        &self,
        record: &mut ConsumerSession,
    ) -> Result<ProviderKey, ConsumerError> {
        if record.endpoint.is_empty() {
            record.endpoint = self.endpoint(record.provider, BlockId::latest()).await?;
        }
        if let Some(key) = &record.provider_public_key {
            if let Ok(key) = ProviderKey::new(record.provider, key.clone()) {
                return Ok(key);
            }
        }
        let signer = self.signer()?;
        let pong =
            self.client().ping(&record.endpoint, record.provider, signer.sender.wallet().signer()).await?;
        self.store()
            .consumer_sessions()
            .set_provider(record.session_id, &record.endpoint, &pong.key.public_key)
            .await?;
        record.provider_public_key = Some(pong.key.public_key.clone());
        Ok(pong.key)
    }

    /// Opens the next-best bid of `failed`'s model for its remaining time, links the two records and
    /// closes the failed session. Returns the new session.
    async fn fail_over(&self, failed: &ConsumerSession) -> Result<B256, ConsumerError> {
        let remaining = failed.ends_at.saturating_sub(unix_now());
        if remaining < MIN_SESSION_DURATION {
            return Err(ConsumerError::BadRequest {
                field: "session_id",
                reason: format!(
                    "only {remaining} s remain, less than the {MIN_SESSION_DURATION} s a new session must last"
                ),
            });
        }
        let request = OpenRequest {
            duration: remaining,
            direct_payment: failed.direct_payment,
            failover: true,
            max_stake: None,
        };
        let opened = self.open_by_model_omitting(failed.model_id, request, &[failed.provider]).await?;
        self.store().consumer_sessions().set_replaced_by(failed.session_id, opened.session_id).await?;
        tracing::info!(old = %failed.session_id, new = %opened.session_id, provider = %opened.provider, "failed over");
        match self.close(failed.session_id).await {
            Ok(closed) => {
                tracing::info!(session = %failed.session_id, tx = %closed.tx, "failed session closed")
            }
            Err(e) => {
                tracing::warn!(session = %failed.session_id, error = %e, "cannot close the failed session yet; the sweeper will")
            }
        }
        Ok(opened.session_id)
    }
}

/// Counts tokens over an answer's chunks.
#[derive(Debug, Default)]
struct Tally {
    content_chunks: u64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    full_answer: bool,
}

impl Tally {
    fn add(&mut self, chunk: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(chunk) else { return };
        if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
            if let Some(n) = usage.get("prompt_tokens").and_then(Value::as_u64) {
                self.prompt_tokens = Some(n);
            }
            if let Some(n) = usage.get("completion_tokens").and_then(Value::as_u64) {
                self.completion_tokens = Some(n);
            }
        }
        match value.get("object").and_then(Value::as_str) {
            Some("chat.completion") | Some("list") => self.full_answer = true,
            _ => {}
        }
        let has_content = value.get("choices").and_then(Value::as_array).is_some_and(|choices| {
            choices.iter().any(|c| {
                c.pointer("/delta/content")
                    .or(c.pointer("/message/content"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            })
        });
        if has_content {
            self.content_chunks += 1;
        }
    }

    fn stats(&self, ttft: Duration, wall: Duration) -> AnsweredPrompt {
        let output = self.completion_tokens.unwrap_or(self.content_chunks);
        let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX).max(1);
        AnsweredPrompt {
            tps_scaled1000: output.saturating_mul(1_000_000) / wall_ms,
            ttft_ms: u64::try_from(ttft.as_millis()).unwrap_or(u64::MAX),
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: output,
        }
    }
}

impl Answer {
    /// The whole answer of a non-streamed request: its first (and only) JSON chunk.
    pub async fn into_json(self) -> Result<bytes::Bytes, ConsumerError> {
        let Answer { consumer, first, session_id, started, ttft, .. } = self;
        let Chunk::Data(body) = first else {
            return Err(ConsumerError::Interrupted {
                reason: "the provider ended the answer without data".into(),
            });
        };
        let mut tally = Tally::default();
        tally.add(&body);
        crate::metrics::global().prompt_answered(ttft, started.elapsed());
        record(&consumer, session_id, tally.stats(ttft, started.elapsed())).await;
        Ok(body)
    }

    /// The events of a streamed answer, ending with [`RelayEvent::Done`] or [`RelayEvent::Error`].
    /// A stream that stops without `[DONE]` (and without a full answer) ends with an error event.
    pub fn into_events(self) -> impl Stream<Item = RelayEvent> + Send + 'static {
        struct State {
            answer: Answer,
            first: Option<Chunk>,
            tally: Tally,
            done: bool,
        }
        let first = Some(self.first.clone());
        let state = State { answer: self, first, tally: Tally::default(), done: false };
        futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let next = match state.first.take() {
                Some(chunk) => Some(Ok(chunk)),
                None => state.answer.rest.next_chunk().await,
            };
            let event = match next {
                Some(Ok(Chunk::Data(data))) => {
                    state.tally.add(&data);
                    return Some((RelayEvent::Data(data), state));
                }
                Some(Ok(Chunk::Done)) => RelayEvent::Done,
                Some(Err(e)) => RelayEvent::Error(ConsumerError::Interrupted { reason: e.to_string() }),
                None if state.tally.full_answer => RelayEvent::Done,
                None => RelayEvent::Error(ConsumerError::Interrupted {
                    reason: "the provider closed the stream before [DONE]".into(),
                }),
            };
            state.done = true;
            let answer = &state.answer;
            match &event {
                RelayEvent::Error(e) => {
                    crate::metrics::global().prompt_failed();
                    tracing::warn!(session = %answer.session_id, error = %e, "answer broke off");
                    if let Err(e) =
                        answer.consumer.store().consumer_sessions().add_failure(answer.session_id).await
                    {
                        tracing::warn!(error = %e, "cannot count a failed prompt");
                    }
                }
                _ => {
                    crate::metrics::global().prompt_answered(answer.ttft, answer.started.elapsed());
                    let stats = state.tally.stats(answer.ttft, answer.started.elapsed());
                    record(&answer.consumer, answer.session_id, stats).await;
                }
            }
            Some((event, state))
        })
    }
}

async fn record(consumer: &Consumer, session_id: B256, stats: AnsweredPrompt) {
    if let Err(e) = consumer.store().consumer_sessions().add_prompt(session_id, stats).await {
        tracing::warn!(session = %session_id, error = %e, "cannot record prompt statistics");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(kind: PromptKind, body: Value) -> Prompt {
        Prompt { kind, body: body.as_object().cloned().unwrap(), request_id: "r".into() }
    }

    #[test]
    fn messages_sort_keys_keep_unknown_ones_and_mark_embeddings() {
        let chat = prompt(
            PromptKind::Chat,
            serde_json::json!({"stream": true, "model": "m", "messages": [{"role": "user", "content": "hi <b>"}], "x_extra": {"b": 1, "a": 2}}),
        );
        assert!(chat.streaming());
        assert_eq!(
            chat.message().unwrap(),
            r#"{"messages":[{"content":"hi <b>","role":"user"}],"model":"m","stream":true,"x_extra":{"a":2,"b":1}}"#
        );
        let embeddings = prompt(PromptKind::Embeddings, serde_json::json!({"input": "x", "stream": true}));
        assert!(!embeddings.streaming());
        assert_eq!(embeddings.message().unwrap(), r#"{"input":"x","stream":true,"type":"embeddings"}"#);
    }

    #[test]
    fn tally_prefers_upstream_usage() {
        let mut tally = Tally::default();
        tally.add(br#"{"object":"chat.completion.chunk","choices":[{"delta":{"content":"a"}}]}"#);
        tally.add(br#"{"object":"chat.completion.chunk","choices":[{"delta":{"content":""}}]}"#);
        tally.add(br#"{"object":"chat.completion.chunk","choices":[{"delta":{"content":"b"}}]}"#);
        let stats = tally.stats(Duration::from_millis(40), Duration::from_millis(500));
        assert_eq!((stats.output_tokens, stats.input_tokens, stats.ttft_ms), (2, 0, 40));
        assert_eq!(stats.tps_scaled1000, 4_000);
        tally.add(br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}}"#);
        let stats = tally.stats(Duration::from_millis(40), Duration::from_secs(3));
        assert_eq!((stats.output_tokens, stats.input_tokens, stats.tps_scaled1000), (9, 7, 3_000));
        assert!(!tally.full_answer);
        tally.add(br#"{"object":"chat.completion","choices":[{"message":{"content":"x"}}]}"#);
        assert!(tally.full_answer);
    }
}
