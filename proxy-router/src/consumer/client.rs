//! The consumer's MOR-RPC client: one TCP connection per request to a provider's on-chain endpoint,
//! as the reference speaks it (go-proxy-router.md §3), built on [`crate::protocol`].
//!
//! - [`ProviderClient::ping`]: `network.ping`; the pong must echo the nonce and be signed by the
//!   provider's address. The provider's public key is recovered from the pong's signature, which lets
//!   a node that lost (or never had) the handshake's key talk to the provider again.
//! - [`ProviderClient::initiate`]: `session.request` signed with the wallet, carrying its uncompressed
//!   public key. The answer must be signed by the public key it returns, **that key must hash to the
//!   bid's provider address** (the reference never checks it), and the approval must name the bid,
//!   the chain and the user asked for.
//! - [`ProviderClient::prompt`]: `session.prompt`; every frame's signature is checked against the
//!   provider's key **before** it is decrypted (ECIES with the wallet key) or forwarded. Errors before
//!   the first frame are returned as errors (so the caller can fail over or answer JSON); afterwards
//!   the [`PromptStream`] yields chunks until `"[DONE]"`, a full answer or EOF.
//! - [`ProviderClient::report`]: `session.report`; the answer's signature is checked against the
//!   provider's key, the report must be for the session and chain asked for, and its EIP-191 signer
//!   must be the provider (otherwise closing with it would be a dispute anyway).
//!
//! Bounds: dial timeout 3 s ([`DIAL_TIMEOUT`]); the first frame must arrive within the response timeout
//! (`CNODE_PNODE_TIMEOUT`), and so must every later frame (an idle limit the reference lacks); a frame
//! may be at most [`MAX_RESPONSE_FRAME`] bytes.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use futures::StreamExt as _;
use serde_json::value::RawValue;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use super::error::ConsumerError;
use crate::protocol::ecies::Decryptor;
use crate::protocol::messages::DONE_PLAINTEXT;
use crate::protocol::signing::public_key_address;
use crate::protocol::{
    method, unix_millis_now, MorRpcCodec, PingReq, PongRes, RpcMessage, RpcResponse, SessionApproval,
    SessionPromptReq, SessionPromptRes, SessionReport, SessionReportReq, SessionReportRes, SessionReq,
    SessionRes, Signable as _,
};

/// How long dialling a provider may take (the reference's).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest response frame accepted from a provider (a full non-streamed answer, hex-encoded and
/// encrypted, fits comfortably).
pub const MAX_RESPONSE_FRAME: usize = crate::protocol::DEFAULT_MAX_FRAME_LEN;

/// The initial size of a connection's read buffer. A streamed chunk's frame (signature and
/// hex-encoded ciphertext) is usually well under it; a bigger frame grows the buffer as it arrives
/// (up to [`MAX_RESPONSE_FRAME`]). An open stream keeps its buffer while it waits for the next chunk,
/// so this is per-stream memory: `tokio_util`'s default of 8 KiB for reading, plus 8 KiB for writing
/// with `Framed`, was most of a stream's own cost.
const READ_BUFFER: usize = 2 * 1024;

/// A provider's identity as the consumer uses it: its address and a public key that hashes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    /// The provider's address (the bid's provider).
    pub address: Address,
    /// Its secp256k1 public key (65 bytes uncompressed or 33 compressed).
    pub public_key: Bytes,
}

impl ProviderKey {
    /// Checks that `public_key` belongs to `address`.
    pub fn new(address: Address, public_key: Bytes) -> Result<Self, String> {
        let actual = public_key_address(&public_key).map_err(|e| e.to_string())?;
        if actual != address {
            return Err(format!("its public key belongs to {actual}, not to the provider {address}"));
        }
        Ok(Self { address, public_key })
    }
}

/// The answer to a ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Round trip, dial included.
    pub latency: Duration,
    /// The provider's build version (may be empty).
    pub version: String,
    /// The provider's key, recovered from the pong's signature.
    pub key: ProviderKey,
}

/// A verified handshake: the provider's approval for `openSession`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The provider's answer as received (its `approval` and `approvalSig` go to `openSession`).
    pub response: SessionRes,
    /// The decoded approval.
    pub approval: SessionApproval,
    /// The provider's key (checked against the bid's provider address).
    pub key: ProviderKey,
}

/// A verified session report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    /// The encoded report for `closeSession`.
    pub report: Bytes,
    /// Its EIP-191 signature by the provider.
    pub signature: Bytes,
    /// The decoded report.
    pub decoded: SessionReport,
}

/// One decrypted chunk of a prompt's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// A JSON value (a chat completion chunk, a full completion, an embeddings object…), compact.
    Data(bytes::Bytes),
    /// The `"[DONE]"` control chunk that ends a streamed answer.
    Done,
}

/// The MOR-RPC client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    dial_timeout: Duration,
    response_timeout: Duration,
    max_frame_len: usize,
    stamps: Arc<PromptStamps>,
}

/// Timestamps of signed prompts such that two identical prompts on one session never carry the same
/// one. Signatures are deterministic (RFC 6979): the same session, message and millisecond would sign to
/// the same bytes, which the provider's replay guard rightly refuses as a replay. A prompt identical to
/// one already stamped at or after this millisecond gets the next free millisecond instead (ahead of
/// the clock only while identical prompts come faster than one per millisecond).
#[derive(Debug, Default)]
struct PromptStamps {
    /// Hash of (session, message) → the last timestamp used for it.
    last: Mutex<HashMap<u64, u64>>,
}

/// Entries kept before the stale ones (stamped before now) are dropped.
const PROMPT_STAMPS_KEPT: usize = 4096;

impl PromptStamps {
    fn stamp(&self, session_id: B256, message: &str, now_ms: u64) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (session_id, message).hash(&mut hasher);
        let key = hasher.finish();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.len() >= PROMPT_STAMPS_KEPT {
            last.retain(|_, stamped| *stamped >= now_ms);
        }
        let stamp = match last.get(&key) {
            Some(&previous) if previous >= now_ms => previous + 1,
            _ => now_ms,
        };
        last.insert(key, stamp);
        stamp
    }
}

/// A connection after its request was sent: only its answer frames are read (the request is written
/// once, straight to the socket, so there is no write buffer to keep).
type Conn = FramedRead<TcpStream, MorRpcCodec>;

impl ProviderClient {
    /// A client waiting up to `response_timeout` (`CNODE_PNODE_TIMEOUT`) for each answer frame.
    pub fn new(response_timeout: Duration) -> Self {
        Self {
            dial_timeout: DIAL_TIMEOUT,
            response_timeout,
            max_frame_len: MAX_RESPONSE_FRAME,
            stamps: Arc::default(),
        }
    }

    /// How long each answer frame may take.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// `network.ping`: checks the pong is signed by `provider` and recovers its public key.
    pub async fn ping(
        &self,
        endpoint: &str,
        provider: Address,
        wallet: &PrivateKeySigner,
    ) -> Result<Pong, ConsumerError> {
        let started = Instant::now();
        let ping = PingReq::random(wallet)?;
        let response = self.call(endpoint, method::PING, &ping, &request_id()).await?;
        let pong: PongRes = result(endpoint, &response)?;
        pong.verify(&ping, provider).map_err(|e| ConsumerError::invalid(endpoint, format!("pong: {e}")))?;
        let public_key = pong.recover_public_key().map_err(|e| ConsumerError::invalid(endpoint, e))?;
        let key = ProviderKey::new(provider, public_key).map_err(|e| ConsumerError::invalid(endpoint, e))?;
        Ok(Pong { latency: started.elapsed(), version: pong.version, key })
    }

    /// `session.request` for `bid_id` of `provider`, committing `spend` wei for `user`.
    #[allow(clippy::too_many_arguments)]
    pub async fn initiate(
        &self,
        endpoint: &str,
        provider: Address,
        wallet: &PrivateKeySigner,
        user: Address,
        spend: U256,
        bid_id: B256,
        chain_id: u64,
    ) -> Result<Handshake, ConsumerError> {
        let request = SessionReq::build(wallet, user, spend, bid_id, unix_millis_now())?;
        let response = self.call(endpoint, method::SESSION_REQUEST, &request, &request_id()).await?;
        let response: SessionRes = result(endpoint, &response)?;
        let signer =
            response.verify().map_err(|e| ConsumerError::invalid(endpoint, format!("handshake: {e}")))?;
        let key = ProviderKey::new(provider, response.public_key.clone())
            .map_err(|e| ConsumerError::invalid(endpoint, format!("handshake: {e}")))?;
        debug_assert_eq!(signer, key.address);
        let approval = response
            .decode_approval()
            .map_err(|e| ConsumerError::invalid(endpoint, format!("handshake: {e}")))?;
        approval
            .check(bid_id, U256::from(chain_id), user)
            .map_err(|e| ConsumerError::invalid(endpoint, format!("handshake: {e}")))?;
        if response.user != user {
            return Err(ConsumerError::invalid(
                endpoint,
                format!("handshake: answer is for user {}, not {user}", response.user),
            ));
        }
        Ok(Handshake { response, approval, key })
    }

    /// `session.prompt` with `message` (the request JSON). Returns the first chunk and the stream of
    /// the rest; anything that goes wrong before the first chunk is an error.
    pub async fn prompt(
        &self,
        endpoint: &str,
        key: &ProviderKey,
        wallet: &PrivateKeySigner,
        session_id: B256,
        message: String,
        request_id: &str,
    ) -> Result<(Chunk, PromptStream), ConsumerError> {
        let timestamp = self.stamps.stamp(session_id, &message, unix_millis_now());
        let request = SessionPromptReq::build(wallet, session_id, message, timestamp)?;
        let mut conn = self.send(endpoint, method::SESSION_PROMPT, &request, request_id).await?;
        let frame = match self.next_frame(endpoint, &mut conn).await? {
            Some(frame) => frame,
            None => return Err(ConsumerError::NoData { endpoint: endpoint.to_owned() }),
        };
        // One decryptor per answer: the provider uses one ephemeral key for all frames of an answer, so
        // only the first frame costs an ECDH (a new key per frame, as Go providers send, just misses).
        let mut decryptor = Decryptor::new(wallet)?;
        let first = open_frame(endpoint, key, &mut decryptor, &frame)?;
        let stream = PromptStream {
            conn,
            endpoint: endpoint.to_owned(),
            key: key.clone(),
            decryptor,
            timeout: self.response_timeout,
            finished: first == Chunk::Done,
        };
        Ok((first, stream))
    }

    /// `session.report` for `session_id`: the provider's signed report, verified.
    pub async fn report(
        &self,
        endpoint: &str,
        key: &ProviderKey,
        wallet: &PrivateKeySigner,
        session_id: B256,
        chain_id: u64,
    ) -> Result<VerifiedReport, ConsumerError> {
        let request = SessionReportReq::build(wallet, session_id, unix_millis_now())?;
        let response = self.call(endpoint, method::SESSION_REPORT, &request, &request_id()).await?;
        let response: SessionReportRes = result(endpoint, &response)?;
        response
            .verify_public_key(&key.public_key)
            .map_err(|e| ConsumerError::invalid(endpoint, format!("report message: {e}")))?;
        let decoded =
            response.decode_report().map_err(|e| ConsumerError::invalid(endpoint, format!("report: {e}")))?;
        decoded
            .check(session_id, U256::from(chain_id))
            .map_err(|e| ConsumerError::invalid(endpoint, format!("report: {e}")))?;
        let signer =
            response.report_signer().map_err(|e| ConsumerError::invalid(endpoint, format!("report: {e}")))?;
        if signer != key.address {
            return Err(ConsumerError::invalid(
                endpoint,
                format!("report signed by {signer}, not by the provider {}", key.address),
            ));
        }
        Ok(VerifiedReport { report: response.message, signature: response.signed_report, decoded })
    }

    /// Sends one request and reads exactly one response frame.
    async fn call<P: serde::Serialize>(
        &self,
        endpoint: &str,
        method: &str,
        params: &P,
        id: &str,
    ) -> Result<RpcResponse, ConsumerError> {
        let mut conn = self.send(endpoint, method, params, id).await?;
        let frame = self
            .next_frame(endpoint, &mut conn)
            .await?
            .ok_or_else(|| ConsumerError::NoData { endpoint: endpoint.to_owned() })?;
        RpcResponse::from_slice(&frame).map_err(|e| ConsumerError::invalid(endpoint, e))
    }

    async fn send<P: serde::Serialize>(
        &self,
        endpoint: &str,
        method: &str,
        params: &P,
        id: &str,
    ) -> Result<Conn, ConsumerError> {
        let frame = RpcMessage::new(id, method, params)?.to_vec()?;
        let address = dial_address(endpoint);
        let mut stream = match tokio::time::timeout(self.dial_timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(ConsumerError::Unreachable {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ConsumerError::Unreachable {
                    endpoint: endpoint.to_owned(),
                    reason: format!("no TCP connection within {:?}", self.dial_timeout),
                })
            }
        };
        // Small request frames: send them without Nagle's delay. Failing to set it is harmless.
        let _ = stream.set_nodelay(true);
        let sent = tokio::time::timeout(self.response_timeout, async {
            stream.write_all(&frame).await?;
            stream.flush().await
        });
        match sent.await {
            Ok(Ok(())) => {
                Ok(FramedRead::with_capacity(stream, MorRpcCodec::new(self.max_frame_len), READ_BUFFER))
            }
            Ok(Err(e)) => Err(ConsumerError::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: crate::protocol::ProtocolError::Io(e).to_string(),
            }),
            Err(_) => {
                Err(ConsumerError::Timeout { endpoint: endpoint.to_owned(), waited: self.response_timeout })
            }
        }
    }

    async fn next_frame(
        &self,
        endpoint: &str,
        conn: &mut Conn,
    ) -> Result<Option<bytes::Bytes>, ConsumerError> {
        read_frame(endpoint, conn, self.response_timeout).await
    }
}

async fn read_frame(
    endpoint: &str,
    conn: &mut Conn,
    timeout: Duration,
) -> Result<Option<bytes::Bytes>, ConsumerError> {
    match tokio::time::timeout(timeout, conn.next()).await {
        Err(_) => Err(ConsumerError::Timeout { endpoint: endpoint.to_owned(), waited: timeout }),
        Ok(None) => Ok(None),
        Ok(Some(Ok(frame))) => Ok(Some(frame)),
        Ok(Some(Err(crate::protocol::ProtocolError::Io(e)))) => {
            Err(ConsumerError::Unreachable { endpoint: endpoint.to_owned(), reason: e.to_string() })
        }
        Ok(Some(Err(e))) => Err(ConsumerError::invalid(endpoint, e)),
    }
}

/// The rest of a prompt's answer.
#[derive(Debug)]
pub struct PromptStream {
    conn: Conn,
    endpoint: String,
    key: ProviderKey,
    /// The wallet's decryptor, holding the keys of the answer's ephemeral key.
    decryptor: Decryptor,
    timeout: Duration,
    finished: bool,
}

impl PromptStream {
    /// The next chunk; `None` once the provider closed the connection or sent `"[DONE]"`. A frame that
    /// fails verification, an error frame, a broken connection or a silent provider is an error, after
    /// which the stream is finished.
    pub async fn next_chunk(&mut self) -> Option<Result<Chunk, ConsumerError>> {
        if self.finished {
            return None;
        }
        let frame = match read_frame(&self.endpoint, &mut self.conn, self.timeout).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                self.finished = true;
                return None;
            }
            Err(e) => {
                self.finished = true;
                return Some(Err(e));
            }
        };
        let chunk = open_frame(&self.endpoint, &self.key, &mut self.decryptor, &frame);
        if !matches!(chunk, Ok(Chunk::Data(_))) {
            self.finished = true;
        }
        Some(chunk)
    }
}

/// Verifies, decrypts and classifies one `session.prompt` response frame. The signature is checked
/// before anything is decrypted.
fn open_frame(
    endpoint: &str,
    key: &ProviderKey,
    decryptor: &mut Decryptor,
    frame: &[u8],
) -> Result<Chunk, ConsumerError> {
    let response = RpcResponse::from_slice(frame).map_err(|e| ConsumerError::invalid(endpoint, e))?;
    if let Some(error) = &response.error {
        if !error.is_signed() {
            return Err(ConsumerError::Refused {
                endpoint: endpoint.to_owned(),
                message: error.message.clone(),
            });
        }
        // `key.address` is the address of `key.public_key` (checked once, in `ProviderKey::new`):
        // recovering the signer and comparing addresses is the check against the key, without parsing
        // and hashing the key again for every frame.
        error
            .verify_signer(key.address)
            .map_err(|e| ConsumerError::invalid(endpoint, format!("error frame signature: {e}")))?;
        let plaintext = error
            .decrypt_with(decryptor)
            .map_err(|e| ConsumerError::invalid(endpoint, format!("error frame: {e}")))?;
        let mut body: serde_json::Value = serde_json::from_slice(&plaintext)
            .map_err(|e| ConsumerError::invalid(endpoint, format!("error frame is not JSON: {e}")))?;
        let body = match body.get_mut("providerModelError") {
            Some(inner) => inner.take(),
            None => body,
        };
        return Err(ConsumerError::Model { body });
    }
    let chunk: SessionPromptRes = result(endpoint, &response)?;
    chunk
        .verify_signer(key.address)
        .map_err(|e| ConsumerError::invalid(endpoint, format!("frame signature: {e}")))?;
    let plaintext =
        chunk.decrypt_with(decryptor).map_err(|e| ConsumerError::invalid(endpoint, format!("frame: {e}")))?;
    if plaintext == DONE_PLAINTEXT {
        return Ok(Chunk::Done);
    }
    Ok(Chunk::Data(compact_json(endpoint, plaintext)?))
}

/// Checks that a chunk is one JSON value and makes sure it holds no line break (which would end an
/// SSE event early or inject fields): compact JSON is forwarded as is, anything else re-serialised.
fn compact_json(endpoint: &str, plaintext: Vec<u8>) -> Result<bytes::Bytes, ConsumerError> {
    let raw: &RawValue = serde_json::from_slice(&plaintext)
        .map_err(|e| ConsumerError::invalid(endpoint, format!("chunk is not JSON: {e}")))?;
    if !raw.get().bytes().any(|b| b == b'\n' || b == b'\r') && raw.get().len() == plaintext.len() {
        return Ok(bytes::Bytes::from(plaintext));
    }
    let value: serde_json::Value = serde_json::from_str(raw.get())
        .map_err(|e| ConsumerError::invalid(endpoint, format!("chunk is not JSON: {e}")))?;
    let compact = serde_json::to_vec(&value).map_err(|e| ConsumerError::invalid(endpoint, e))?;
    Ok(bytes::Bytes::from(compact))
}

fn result<R: serde::de::DeserializeOwned>(
    endpoint: &str,
    response: &RpcResponse,
) -> Result<R, ConsumerError> {
    if let Some(error) = &response.error {
        return Err(ConsumerError::Refused { endpoint: endpoint.to_owned(), message: error.message.clone() });
    }
    response.parse_result().map_err(|e| ConsumerError::invalid(endpoint, e))
}

/// The reference's request id: 8 random hex characters.
pub fn request_id() -> String {
    use rand::RngExt as _;
    let mut bytes = [0u8; 4];
    rand::rng().fill(&mut bytes[..]);
    alloy::hex::encode(bytes)
}

/// The on-chain endpoint as a socket address to dial: `host:port`, tolerating a `tcp://` prefix and a
/// trailing slash.
fn dial_address(endpoint: &str) -> &str {
    let endpoint = endpoint.trim();
    let endpoint = endpoint.strip_prefix("tcp://").unwrap_or(endpoint);
    endpoint.trim_end_matches('/')
}

#[cfg(test)]
mod tests;
