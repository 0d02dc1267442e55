//! The MOR-RPC methods a provider serves. Each handler checks the request and writes its response(s)
//! through a [`Reply`]; an `Err` is answered by the server with an unsigned error carrying
//! [`ProviderError::reason`].
//!
//! Checks, cheapest first, so that forged or stale requests cost no storage, chain or backend work:
//! the timestamp window, the signature, then the replay cache (which remembers a signature only after
//! it verified), then the state (bid, session, capacity).

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::backend::{BackendEvent, TokenMeter};
use super::lookup::SessionFacts;
use super::models::{CapacityPolicy, Endpoint};
use super::server::Reply;
use super::{Provider, ProviderError, IDLE_TIMEOUT_WINDOW};
use crate::protocol::ecies::Encryptor;
use crate::protocol::messages::DONE_PLAINTEXT;
use crate::protocol::signing::{public_key_address, Signable};
use crate::protocol::{
    method, PingReq, PongRes, ProtocolError, ReportTokens, RpcError, RpcMessage, RpcResponse,
    SessionPromptReq, SessionPromptRes, SessionReport, SessionReportReq, SessionReportRes, SessionReq,
    SessionRes,
};
use crate::store::{PromptStats, ServedSession};

/// The version a pong reports.
pub(super) const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

fn bad_request(e: ProtocolError) -> ProviderError {
    ProviderError::BadRequest(e.to_string())
}

impl Provider {
    /// Serves one request.
    pub(super) async fn handle(&self, message: &RpcMessage, reply: &mut Reply) -> Result<(), ProviderError> {
        match message.method.as_str() {
            method::PING => self.ping(message, reply).await,
            method::SESSION_REQUEST => self.session_request(message, reply).await,
            method::SESSION_PROMPT => self.session_prompt(message, reply).await,
            method::SESSION_REPORT => self.session_report(message, reply).await,
            other => Err(ProviderError::UnknownMethod(other.to_owned())),
        }
    }

    fn signer(&self) -> Result<PrivateKeySigner, ProviderError> {
        let signer = self.inner.wallet.get().ok_or(ProviderError::NoWallet)?;
        Ok(signer.sender.wallet().signer().clone())
    }

    fn now_ms(&self) -> u64 {
        self.inner.options.clock.now_ms()
    }

    /// `network.ping`: echo the nonce, signed (the reference does not verify the ping's signature;
    /// neither do we: it proves nothing about who may ping).
    async fn ping(&self, message: &RpcMessage, reply: &mut Reply) -> Result<(), ProviderError> {
        let ping: PingReq = message.params().map_err(bad_request)?;
        let pong = PongRes::answer(&ping, VERSION, &self.signer()?).map_err(ProviderError::Respond)?;
        reply.result(&pong).await
    }

    /// `session.request`: verify the consumer, check the bid and the model's capacity, store the
    /// consumer's key and answer the signed approval.
    async fn session_request(&self, message: &RpcMessage, reply: &mut Reply) -> Result<(), ProviderError> {
        let request: SessionReq = message.params().map_err(bad_request)?;
        let now = self.now_ms();
        self.inner.replay.window().check(request.timestamp, now).map_err(ProviderError::Replay)?;
        let key_address = request.verify().map_err(ProviderError::BadSignature)?;
        if key_address != request.user {
            return Err(ProviderError::KeyNotUser { user: request.user, actual: key_address });
        }
        self.inner.replay.check(&request, now).map_err(ProviderError::Replay)?;

        let signer = self.signer()?;
        let me = signer.address();
        let inner = &self.inner;
        let bid = inner
            .lookup
            .bid(&inner.store, &inner.rpc, request.bid_id)
            .await?
            .ok_or(ProviderError::BidNotFound(request.bid_id))?;
        if bid.provider != me {
            return Err(ProviderError::NotOurBid { bid: request.bid_id, owner: bid.provider, me });
        }
        if !bid.active {
            return Err(ProviderError::BidInactive(request.bid_id));
        }
        let model = inner.models.get(&bid.model_id).ok_or(ProviderError::ModelNotServed(bid.model_id))?;
        if model.concurrent_slots > 0 {
            let now_secs = now / 1000;
            let repo = inner.store.provider_sessions();
            let used = match model.capacity_policy {
                CapacityPolicy::Simple => repo.count_open(me, model.id, now_secs).await?,
                CapacityPolicy::IdleTimeout => {
                    let since = now.saturating_sub(IDLE_TIMEOUT_WINDOW.as_millis() as u64);
                    repo.count_recently_active(model.id, since, now_secs).await?
                }
            };
            if used >= u64::from(model.concurrent_slots) {
                return Err(ProviderError::NoCapacity {
                    model: model.id,
                    used,
                    slots: model.concurrent_slots,
                    policy: model.capacity_policy.as_str(),
                });
            }
        }
        inner.store.provider_sessions().save_user_key(request.user, &request.key, now).await?;
        let response =
            SessionRes::build(&signer, request.bid_id, U256::from(inner.options.chain_id), request.user, now)
                .map_err(ProviderError::Respond)?;
        tracing::info!(user = %request.user, bid = %request.bid_id, model = %model.id, "session approved");
        reply.result(&response).await
    }

    /// The session of a prompt or report, checked to be this provider's. A session the index does not
    /// hold yet is read from the chain only for a request signed by a consumer that made a handshake
    /// here, so forged requests for made-up sessions cost no RPC call.
    async fn our_session<M: Signable>(
        &self,
        id: alloy::primitives::B256,
        request: &M,
        me: Address,
    ) -> Result<SessionFacts, ProviderError> {
        let inner = &self.inner;
        // The index (or the cache of chain reads) first: a known session costs no signature recovery.
        let session = match inner.lookup.session(&inner.store, &inner.rpc, id, false).await? {
            Some(session) => Some(session),
            None => {
                let known_signer = match request.recover_signer() {
                    Ok(signer) => inner.store.provider_sessions().user_key(signer).await?.is_some(),
                    Err(_) => false,
                };
                if known_signer {
                    inner.lookup.session(&inner.store, &inner.rpc, id, true).await?
                } else {
                    None
                }
            }
        };
        let session = session.ok_or(ProviderError::SessionNotFound(id))?;
        if session.provider != me {
            return Err(ProviderError::NotOurSession { session: id, owner: session.provider, me });
        }
        Ok(session)
    }

    /// Verifies a consumer's signed request against the session user's key (from its handshake, or,
    /// if this provider lost it, recovered from the signature and bound to the user's address) and
    /// returns the key.
    async fn verify_user<M: Signable>(&self, message: &M, user: Address) -> Result<Bytes, ProviderError> {
        let repo = self.inner.store.provider_sessions();
        if let Some(key) = repo.user_key(user).await? {
            message.verify_public_key(&key).map_err(ProviderError::BadSignature)?;
            return Ok(key);
        }
        let key = message.recover_public_key().map_err(ProviderError::BadSignature)?;
        let actual = public_key_address(&key).map_err(ProviderError::BadSignature)?;
        if actual != user {
            return Err(ProviderError::BadSignature(ProtocolError::WrongSigner { expected: user, actual }));
        }
        repo.save_user_key(user, &key, self.now_ms()).await?;
        Ok(key)
    }

    /// `session.prompt`: check the session and the consumer, then relay to the backend and stream
    /// each chunk back signed and encrypted.
    async fn session_prompt(&self, message: &RpcMessage, reply: &mut Reply) -> Result<(), ProviderError> {
        let request: SessionPromptReq = message.params().map_err(bad_request)?;
        let limit = self.inner.options.max_prompt_bytes;
        if request.message.len() > limit {
            return Err(ProviderError::PromptTooLarge { size: request.message.len(), limit });
        }
        let now = self.now_ms();
        self.inner.replay.window().check(request.timestamp, now).map_err(ProviderError::Replay)?;
        let signer = self.signer()?;
        let session = self.our_session(request.session_id, &request, signer.address()).await?;
        let user_key = self.verify_user(&request, session.user).await?;
        self.inner.replay.check(&request, now).map_err(ProviderError::Replay)?;
        if session.closed_at != 0 {
            return Err(ProviderError::SessionClosed(session.id));
        }
        if session.ends_at.saturating_mul(1000) < now {
            return Err(ProviderError::SessionExpired {
                session: session.id,
                ends_at: session.ends_at,
                now: now / 1000,
            });
        }
        let model = self
            .inner
            .models
            .get(&session.model_id)
            .ok_or(ProviderError::ModelNotServed(session.model_id))?;
        let (endpoint, body) = parse_prompt(&request.message)?;

        let _turn = self.inner.gates.enter(session.id, self.inner.options.backend_timeouts.total).await?;
        let served = ServedSession {
            session_id: session.id,
            user: session.user,
            model_id: session.model_id,
            ends_at: session.ends_at,
        };
        let repo = self.inner.store.provider_sessions();
        repo.touch(&served, self.now_ms()).await?;
        let outcome = self.relay(model, endpoint, body, &signer, &user_key, reply).await;
        match &outcome {
            Ok(Some(stats)) => repo.record_success(&served, stats, self.now_ms()).await?,
            Ok(None) | Err(_) => repo.record_failure(&served, self.now_ms()).await?,
        }
        outcome.map(|_| ())
    }

    /// Calls the backend and streams its answer. `Ok(None)`: the backend answered a model error,
    /// which was sent signed.
    async fn relay(
        &self,
        model: &super::ModelConfig,
        endpoint: Endpoint,
        body: Map<String, Value>,
        signer: &PrivateKeySigner,
        user_key: &[u8],
        reply: &mut Reply,
    ) -> Result<Option<PromptStats>, ProviderError> {
        let mut meter = TokenMeter::for_request(&body);
        let started = Instant::now();
        let mut answer = match self.inner.backend.send(model, endpoint, body).await {
            Ok(answer) => answer,
            Err(super::BackendError::Upstream { status, body }) => {
                tracing::warn!(model = %model.id, status, "model backend answered an error");
                let plaintext = serde_json::to_vec(&serde_json::json!({
                    "providerModelError": body,
                    "upstreamStatus": status,
                }))
                .map_err(|e| {
                    ProviderError::Respond(ProtocolError::Serialize {
                        what: "model error",
                        reason: e.to_string(),
                    })
                })?;
                let error = RpcError::model_error(signer, user_key, &plaintext, self.now_ms())
                    .map_err(ProviderError::Respond)?;
                reply.send(&RpcResponse::error(reply.id(), error)).await?;
                return Ok(None);
            }
            Err(e) => return Err(ProviderError::Backend(e)),
        };
        // One ephemeral key per answer: the ECDH and key derivation once, a fresh IV per frame.
        let encryptor = Encryptor::new(user_key).map_err(ProviderError::Respond)?;
        let mut ttft = None;
        while let Some(event) = answer.next_event().await.map_err(ProviderError::Backend)? {
            let plaintext = match event {
                BackendEvent::Done => DONE_PLAINTEXT.to_vec(),
                BackendEvent::Data { raw, mut json } => {
                    ttft.get_or_insert_with(|| started.elapsed());
                    meter.observe(&json);
                    if endpoint == Endpoint::Chat && is_final_chunk(&json) {
                        if let Some(object) = json.as_object_mut() {
                            object.insert("usage_from_provider".into(), meter.usage_json());
                        }
                        serde_json::to_vec(&json).map_err(|e| {
                            ProviderError::Respond(ProtocolError::Serialize {
                                what: "chunk",
                                reason: e.to_string(),
                            })
                        })?
                    } else {
                        raw.to_vec()
                    }
                }
            };
            let frame = SessionPromptRes::encrypt_with(signer, &encryptor, &plaintext, self.now_ms())
                .map_err(ProviderError::Respond)?;
            reply.result(&frame).await?;
        }
        let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ttft_ms = ttft.map_or(wall_ms, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        let output = meter.output_tokens();
        Ok(Some(PromptStats {
            ttft_ms,
            // tokens × 1000 per second, over at least one second (the reference divides by whole
            // seconds, at least 1).
            tps_scaled1000: output.saturating_mul(1_000_000) / wall_ms.max(1000),
            input_tokens: meter.input_tokens(),
            output_tokens: output,
        }))
    }

    /// `session.report`: the receipt signed from the session's statistics (zeros before any prompt).
    async fn session_report(&self, message: &RpcMessage, reply: &mut Reply) -> Result<(), ProviderError> {
        let request: SessionReportReq = message.params().map_err(bad_request)?;
        let session_id = request.session_id().map_err(bad_request)?;
        let now = self.now_ms();
        self.inner.replay.window().check(request.timestamp, now).map_err(ProviderError::Replay)?;
        let signer = self.signer()?;
        let session = self.our_session(session_id, &request, signer.address()).await?;
        self.verify_user(&request, session.user).await?;
        self.inner.replay.check(&request, now).map_err(ProviderError::Replay)?;

        let stats = self.inner.store.provider_sessions().get(session_id).await?;
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let report = SessionReport {
            session_id,
            chain_id: U256::from(self.inner.options.chain_id),
            timestamp_ms: u128::from(now),
            tps_scaled1000: stats.map_or(0, |s| u32_of(s.avg_tps_scaled1000())),
            ttft_ms: stats.map_or(0, |s| u32_of(s.avg_ttft_ms())),
            tokens: Some(ReportTokens {
                input: stats.map_or(0, |s| u32_of(s.input_tokens)),
                output: stats.map_or(0, |s| u32_of(s.output_tokens)),
            }),
        };
        let response = SessionReportRes::build(&signer, &report, now).map_err(ProviderError::Respond)?;
        tracing::info!(session = %session_id, prompts = stats.map_or(0, |s| s.prompts), "session report signed");
        reply.result(&response).await
    }
}

/// The request inside `session.prompt.message`: a JSON object; `"type":"embeddings"` selects the
/// embeddings endpoint, no `type` a chat; the `type` key is removed before the backend call.
fn parse_prompt(message: &str) -> Result<(Endpoint, Map<String, Value>), ProviderError> {
    let mut body: Map<String, Value> = serde_json::from_str(message)
        .map_err(|e| ProviderError::InvalidPrompt(format!("the message is not a JSON object: {e}")))?;
    let endpoint = match body.remove("type") {
        None => Endpoint::Chat,
        Some(Value::String(kind)) if kind == "embeddings" => Endpoint::Embeddings,
        Some(Value::String(kind)) if kind == "audio_transcription" || kind == "audio_speech" => {
            return Err(ProviderError::InvalidPrompt(format!(
                "request type {kind:?} is not supported by this build"
            )))
        }
        Some(other) => return Err(ProviderError::InvalidPrompt(format!("unknown request type {other}"))),
    };
    Ok((endpoint, body))
}

/// A chat answer's last chunk: a whole completion, or a stream chunk with a `finish_reason` or
/// `usage` (where the reference adds `usage_from_provider`).
fn is_final_chunk(chunk: &Value) -> bool {
    if chunk.get("object").and_then(Value::as_str) == Some("chat.completion") {
        return true;
    }
    let finished = chunk
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .and_then(|choice| choice.get("finish_reason"))
        .and_then(Value::as_str)
        .is_some_and(|reason| !reason.is_empty());
    finished || chunk.get("usage").is_some_and(Value::is_object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prompts_select_the_endpoint_and_lose_their_type() {
        let (endpoint, body) = parse_prompt(r#"{"messages":[],"stream":true,"x":1}"#).unwrap();
        assert_eq!((endpoint, body.get("x")), (Endpoint::Chat, Some(&json!(1))));
        let (endpoint, body) = parse_prompt(r#"{"type":"embeddings","input":"a"}"#).unwrap();
        assert_eq!(endpoint, Endpoint::Embeddings);
        assert!(!body.contains_key("type"));
        for bad in [r#"{"type":"audio_speech"}"#, r#"{"type":"image"}"#, "[1]", "not json"] {
            assert!(matches!(parse_prompt(bad), Err(ProviderError::InvalidPrompt(_))), "{bad}");
        }
    }

    #[test]
    fn final_chunks() {
        assert!(is_final_chunk(&json!({"object": "chat.completion", "choices": []})));
        assert!(is_final_chunk(&json!({"choices": [{"delta": {}, "finish_reason": "stop"}]})));
        assert!(is_final_chunk(&json!({"choices": [], "usage": {"prompt_tokens": 1}})));
        assert!(!is_final_chunk(&json!({"choices": [{"delta": {"content": "a"}, "finish_reason": null}]})));
        assert!(!is_final_chunk(&json!({"choices": [], "usage": null})));
    }
}
