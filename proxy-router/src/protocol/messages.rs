//! MOR-RPC message types: the envelopes ([`RpcMessage`], [`RpcResponse`], [`RpcError`]) and the params
//! / result objects of every method a chat needs (`network.ping`, `session.request`, `session.prompt`,
//! `session.report`).
//!
//! Every struct declares its fields in the reference's Go declaration order and with its `omitempty`
//! rules, so [`to_go_json`] yields the bytes a Go peer signs and sends. Keys and orders:
//!
//! ```text
//! RPCMessage       {"id","method","params"}
//! RpcResponse      {"id","result" (null on error),"error"? }
//! RpcError         {"message","code","data":{"timestamp","signature"}}      signature kept as "0x" when signing
//! PingReq          {"nonce","signature"}                                     signature kept as "0x" when signing
//! PongRes          {"nonce","version"?,"signature"}                          signature kept as "0x" when signing
//! SessionReq       {"signature"?,"user","key","spend","timestamp","bidid"}
//! SessionRes       {"message","approval","approvalSig","user","timestamp","signature"?}
//! SessionPromptReq {"signature"?,"sessionid","message","timestamp"}
//! SessionPromptRes {"message","signature"?,"timestamp"}
//! SessionReportReq {"signature"?,"message","timestamp"}
//! SessionReportRes {"message","signedReport","signature"?,"timestamp"}
//! ```
//!
//! Decoding follows Go where it matters (unknown keys ignored, a missing `signature` is empty) and is
//! stricter where Go is sloppy (malformed hex is an error, not silently truncated). Keys are matched
//! exactly; Go would also accept other letter cases, which no reference peer sends.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::artifacts::{artifact_signer, SessionApproval, SessionReport};
use super::ecies;
use super::error::ProtocolError;
use super::gojson::{address, big_int, hash, hex_string, to_go_json};
use super::signing::{public_key_address, uncompressed_public_key, Signable, Timestamped};

/// Method names.
pub mod method {
    /// Liveness check and provider identity (`PingReq` → `PongRes`).
    pub const PING: &str = "network.ping";
    /// The session handshake (`SessionReq` → `SessionRes`).
    pub const SESSION_REQUEST: &str = "session.request";
    /// A prompt (`SessionPromptReq` → 0..N `SessionPromptRes`).
    pub const SESSION_PROMPT: &str = "session.prompt";
    /// The provider's signed session report (`SessionReportReq` → `SessionReportRes`).
    pub const SESSION_REPORT: &str = "session.report";
}

/// The `code` of every reference error response.
pub const ERROR_CODE: i64 = 400;

/// The plaintext of the control chunk that ends a streamed answer: the JSON string `"[DONE]"`.
pub const DONE_PLAINTEXT: &[u8] = b"\"[DONE]\"";

/// The `data.signature` of an unsigned (infrastructure) error.
const UNSIGNED_ERROR_SIGNATURE: [u8; 1] = [0x00];

fn raw_json<T: Serialize>(value: &T, what: &'static str) -> Result<Box<RawValue>, ProtocolError> {
    let bytes = to_go_json(value, what)?;
    let text =
        String::from_utf8(bytes).map_err(|e| ProtocolError::Serialize { what, reason: e.to_string() })?;
    RawValue::from_string(text).map_err(|e| ProtocolError::Serialize { what, reason: e.to_string() })
}

fn parse<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, ProtocolError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| ProtocolError::json(what, e))
}

/// A request: `{"id","method","params"}`. `params` is kept as the raw JSON received (or produced).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcMessage {
    /// Request id; the reference uses 8 random hex characters or the HTTP `x-request-id`.
    pub id: String,
    /// One of [`method`].
    pub method: String,
    /// The params object.
    pub params: Box<RawValue>,
}

impl RpcMessage {
    /// Wraps `params` (serialised as Go JSON) into a request.
    pub fn new<P: Serialize>(id: impl Into<String>, method: &str, params: &P) -> Result<Self, ProtocolError> {
        Ok(Self { id: id.into(), method: method.to_owned(), params: raw_json(params, "request params")? })
    }

    /// Parses a request frame.
    pub fn from_slice(frame: &[u8]) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(frame).map_err(|e| ProtocolError::json("request", e))?;
        parse(text, "request")
    }

    /// The frame bytes (Go JSON, no delimiter).
    pub fn to_vec(&self) -> Result<Vec<u8>, ProtocolError> {
        to_go_json(self, "request")
    }

    /// Parses the params as `P`.
    pub fn params<P: DeserializeOwned>(&self) -> Result<P, ProtocolError> {
        parse(self.params.get(), "request params")
    }

    /// Parses the params according to the method.
    pub fn request(&self) -> Result<Request, ProtocolError> {
        match self.method.as_str() {
            method::PING => self.params().map(Request::Ping),
            method::SESSION_REQUEST => self.params().map(Request::SessionRequest),
            method::SESSION_PROMPT => self.params().map(Request::SessionPrompt),
            method::SESSION_REPORT => self.params().map(Request::SessionReport),
            other => Err(ProtocolError::UnknownMethod { method: other.to_owned() }),
        }
    }
}

/// A parsed request of one of the chat methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `network.ping`.
    Ping(PingReq),
    /// `session.request`.
    SessionRequest(SessionReq),
    /// `session.prompt`.
    SessionPrompt(SessionPromptReq),
    /// `session.report`.
    SessionReport(SessionReportReq),
}

/// A response: `{"id","result","error"?}`; `result` is `null` when `error` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcResponse {
    /// The request's id.
    pub id: String,
    /// The result object, or `None` (JSON `null`) on error.
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    /// The error, absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    /// A successful response carrying `result` (serialised as Go JSON).
    pub fn result<R: Serialize>(id: impl Into<String>, result: &R) -> Result<Self, ProtocolError> {
        Ok(Self { id: id.into(), result: Some(raw_json(result, "response result")?), error: None })
    }

    /// An error response (`"result":null`).
    pub fn error(id: impl Into<String>, error: RpcError) -> Self {
        Self { id: id.into(), result: None, error: Some(error) }
    }

    /// Parses a response frame.
    pub fn from_slice(frame: &[u8]) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(frame).map_err(|e| ProtocolError::json("response", e))?;
        parse(text, "response")
    }

    /// The frame bytes (Go JSON, no delimiter).
    pub fn to_vec(&self) -> Result<Vec<u8>, ProtocolError> {
        to_go_json(self, "response")
    }

    /// Parses the result as `R`; an error response yields [`ProtocolError::Remote`].
    pub fn parse_result<R: DeserializeOwned>(&self) -> Result<R, ProtocolError> {
        if let Some(error) = &self.error {
            return Err(ProtocolError::Remote { message: error.message.clone(), signed: error.is_signed() });
        }
        match &self.result {
            Some(raw) => parse(raw.get(), "response result"),
            None => Err(ProtocolError::json("response", "neither result nor error")),
        }
    }
}

/// `data` of an [`RpcError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcErrorData {
    /// When the error was produced, Unix milliseconds.
    pub timestamp: u64,
    /// The provider's signature, `0x00` for unsigned errors (not `omitempty`).
    #[serde(
        serialize_with = "hex_string::serialize",
        deserialize_with = "hex_string::deserialize_nullable",
        default
    )]
    pub signature: Bytes,
}

/// An error response body: `{"message","code":400,"data":{"timestamp","signature"}}`.
///
/// Two kinds exist in the reference: **unsigned** infrastructure errors (validation, bad signature, no
/// capacity, expiry…) whose signature is `0x00` and whose message is the Go error text, and **signed**
/// model errors whose message is hex ECIES ciphertext of `{"providerModelError": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error text, or hex ciphertext for a model error.
    pub message: String,
    /// Always 400 in the reference.
    pub code: i64,
    /// Timestamp and signature.
    pub data: RpcErrorData,
}

impl RpcError {
    /// An unsigned infrastructure error (`"signature":"0x00"`) with the reference's error text.
    pub fn unsigned(message: impl Into<String>, timestamp_ms: u64) -> Self {
        Self {
            message: message.into(),
            code: ERROR_CODE,
            data: RpcErrorData {
                timestamp: timestamp_ms,
                signature: Bytes::from_static(&UNSIGNED_ERROR_SIGNATURE),
            },
        }
    }

    /// A signed model error: `plaintext` (the `{"providerModelError":…}` JSON) encrypted to the
    /// consumer and signed by the provider.
    pub fn model_error(
        provider: &PrivateKeySigner,
        consumer_public_key: &[u8],
        plaintext: &[u8],
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self {
            message: ecies::encrypt_hex(consumer_public_key, plaintext)?,
            code: ERROR_CODE,
            data: RpcErrorData { timestamp: timestamp_ms, signature: Bytes::new() },
        }
        .signed(provider)
    }

    /// Whether the error carries a real signature (the reference treats empty and `0x00` as unsigned).
    pub fn is_signed(&self) -> bool {
        !(self.data.signature.is_empty() || self.data.signature.as_ref() == UNSIGNED_ERROR_SIGNATURE)
    }

    /// Decrypts a signed model error's message with the consumer's key.
    pub fn decrypt(&self, consumer: &PrivateKeySigner) -> Result<Vec<u8>, ProtocolError> {
        ecies::decrypt_hex(consumer, &self.message)
    }

    /// [`RpcError::decrypt`] through an answer stream's [`ecies::Decryptor`].
    pub fn decrypt_with(&self, decryptor: &mut ecies::Decryptor) -> Result<Vec<u8>, ProtocolError> {
        decryptor.decrypt_hex(&self.message)
    }
}

impl Signable for RpcError {
    const WHAT: &'static str = "error";
    fn signature(&self) -> &Bytes {
        &self.data.signature
    }
    fn signature_mut(&mut self) -> &mut Bytes {
        &mut self.data.signature
    }
}

impl Timestamped for RpcError {
    fn timestamp_ms(&self) -> u64 {
        self.data.timestamp
    }
}

/// `network.ping` params. The reference never verifies this signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingReq {
    /// 8 random bytes.
    #[serde(with = "hex_string")]
    pub nonce: Bytes,
    /// Signature by the consumer (not `omitempty`: signed as `"0x"`).
    #[serde(with = "hex_string", default)]
    pub signature: Bytes,
}

impl PingReq {
    /// A ping with 8 random nonce bytes, signed by `signer`.
    pub fn random(signer: &PrivateKeySigner) -> Result<Self, ProtocolError> {
        use rand::RngExt as _;
        let mut nonce = [0u8; 8];
        rand::rng().fill(&mut nonce[..]);
        Self { nonce: Bytes::copy_from_slice(&nonce), signature: Bytes::new() }.signed(signer)
    }
}

/// `network.ping` result. The consumer recovers the provider's address from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PongRes {
    /// The ping's nonce, echoed.
    #[serde(with = "hex_string")]
    pub nonce: Bytes,
    /// The provider's build version (`omitempty`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Signature by the provider (not `omitempty`: signed as `"0x"`).
    #[serde(with = "hex_string", default)]
    pub signature: Bytes,
}

impl PongRes {
    /// The provider's answer to `ping`, signed.
    pub fn answer(
        ping: &PingReq,
        version: impl Into<String>,
        provider: &PrivateKeySigner,
    ) -> Result<Self, ProtocolError> {
        Self { nonce: ping.nonce.clone(), version: version.into(), signature: Bytes::new() }.signed(provider)
    }

    /// Checks that the pong echoes `ping`'s nonce and was signed by `provider`.
    pub fn verify(&self, ping: &PingReq, provider: Address) -> Result<(), ProtocolError> {
        if self.nonce != ping.nonce {
            return Err(ProtocolError::Mismatch {
                what: "pong nonce",
                expected: ping.nonce.to_string(),
                actual: self.nonce.to_string(),
            });
        }
        self.verify_signer(provider)
    }
}

/// `session.request` params: the consumer asks a provider to approve a session on a bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReq {
    /// Signature by the consumer (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
    /// The user the session is for.
    #[serde(with = "address")]
    pub user: Address,
    /// The signer's 65-byte uncompressed public key (`04…`), used to verify this and later requests
    /// and to encrypt responses.
    #[serde(with = "hex_string")]
    pub key: Bytes,
    /// The stake or payment the consumer will commit, in wei.
    #[serde(with = "big_int")]
    pub spend: U256,
    /// Unix milliseconds.
    pub timestamp: u64,
    /// The bid.
    #[serde(rename = "bidid", with = "hash")]
    pub bid_id: B256,
}

impl SessionReq {
    /// A signed `session.request` from `signer` (its public key goes into `key`).
    pub fn build(
        signer: &PrivateKeySigner,
        user: Address,
        spend: U256,
        bid_id: B256,
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self {
            signature: Bytes::new(),
            user,
            key: uncompressed_public_key(signer),
            spend,
            timestamp: timestamp_ms,
            bid_id,
        }
        .signed(signer)
    }

    /// The reference's check: the signature verifies against the self-asserted `key`. Returns the
    /// key's address (which may differ from `user` when a delegate opens a session for a user).
    pub fn verify(&self) -> Result<Address, ProtocolError> {
        self.verify_public_key(&self.key)
    }

    /// Stricter binding than the reference: `key` must belong to `user`. A provider can require it when
    /// it does not serve delegated consumers.
    pub fn ensure_key_is_user(&self) -> Result<(), ProtocolError> {
        let actual = public_key_address(&self.key)?;
        if actual == self.user {
            Ok(())
        } else {
            Err(ProtocolError::WrongSigner { expected: self.user, actual })
        }
    }
}

/// `session.request` result: the provider's approval for `openSession`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRes {
    /// The provider's 65-byte uncompressed public key.
    #[serde(rename = "message", with = "hex_string")]
    pub public_key: Bytes,
    /// The 128-byte approval ([`SessionApproval`]).
    #[serde(with = "hex_string")]
    pub approval: Bytes,
    /// EIP-191 signature of the approval (v = 27/28).
    #[serde(rename = "approvalSig", with = "hex_string")]
    pub approval_sig: Bytes,
    /// The user from the request.
    #[serde(with = "address")]
    pub user: Address,
    /// Unix milliseconds (also the approval's timestamp).
    pub timestamp: u64,
    /// Signature by the provider (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
}

impl SessionRes {
    /// The provider's signed answer: builds and EIP-191-signs the approval for `bid_id`, `chain_id` and
    /// `user` at `timestamp_ms`, then signs the message.
    pub fn build(
        provider: &PrivateKeySigner,
        bid_id: B256,
        chain_id: U256,
        user: Address,
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        let approval = SessionApproval { bid_id, chain_id, user, timestamp_ms: u128::from(timestamp_ms) };
        let (approval, approval_sig) = approval.sign(provider)?;
        Self {
            public_key: uncompressed_public_key(provider),
            approval,
            approval_sig,
            user,
            timestamp: timestamp_ms,
            signature: Bytes::new(),
        }
        .signed(provider)
    }

    /// Checks that the message is signed by the holder of `public_key` and that the approval is signed
    /// by the same key; returns that address. Whether it may act for the bid's provider (itself, a
    /// delegate, a contract provider's owner) is the caller's decision — the chain decides in the end.
    pub fn verify(&self) -> Result<Address, ProtocolError> {
        let signer = self.verify_public_key(&self.public_key)?;
        let approval_signer = artifact_signer(&self.approval, &self.approval_sig)?;
        if approval_signer != signer {
            return Err(ProtocolError::WrongSigner { expected: signer, actual: approval_signer });
        }
        Ok(signer)
    }

    /// The decoded approval.
    pub fn decode_approval(&self) -> Result<SessionApproval, ProtocolError> {
        SessionApproval::decode(&self.approval)
    }
}

/// `session.prompt` params. `message` is the OpenAI request JSON as a string, in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPromptReq {
    /// Signature by the consumer (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
    /// The on-chain session.
    #[serde(rename = "sessionid", with = "hash")]
    pub session_id: B256,
    /// The request JSON (chat, or typed audio/embeddings requests).
    pub message: String,
    /// Unix milliseconds.
    pub timestamp: u64,
}

impl SessionPromptReq {
    /// A signed prompt.
    pub fn build(
        signer: &PrivateKeySigner,
        session_id: B256,
        message: impl Into<String>,
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self { signature: Bytes::new(), session_id, message: message.into(), timestamp: timestamp_ms }
            .signed(signer)
    }
}

/// One streamed `session.prompt` result: `message` is hex ECIES ciphertext (no `0x`) of one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPromptRes {
    /// Hex ciphertext of the chunk's JSON.
    pub message: String,
    /// Signature by the provider (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
    /// Unix milliseconds.
    pub timestamp: u64,
}

impl SessionPromptRes {
    /// Encrypts `plaintext` (one chunk's JSON) to the consumer and signs the result.
    pub fn encrypt(
        provider: &PrivateKeySigner,
        consumer_public_key: &[u8],
        plaintext: &[u8],
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self {
            message: ecies::encrypt_hex(consumer_public_key, plaintext)?,
            signature: Bytes::new(),
            timestamp: timestamp_ms,
        }
        .signed(provider)
    }

    /// [`SessionPromptRes::encrypt`] with the answer's [`ecies::Encryptor`]: every frame of one
    /// streamed answer shares the ephemeral key (a fresh IV each), so only the first pays for the ECDH.
    /// The ciphertext is in the usual format; a peer decrypts each frame on its own.
    pub fn encrypt_with(
        provider: &PrivateKeySigner,
        encryptor: &ecies::Encryptor,
        plaintext: &[u8],
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self { message: encryptor.encrypt_hex(plaintext), signature: Bytes::new(), timestamp: timestamp_ms }
            .signed(provider)
    }

    /// Decrypts the chunk with the consumer's key (verify the signature first).
    pub fn decrypt(&self, consumer: &PrivateKeySigner) -> Result<Vec<u8>, ProtocolError> {
        ecies::decrypt_hex(consumer, &self.message)
    }

    /// [`SessionPromptRes::decrypt`] through the answer stream's [`ecies::Decryptor`], which reuses the
    /// keys of the previous frame's ephemeral key (verify the signature first).
    pub fn decrypt_with(&self, decryptor: &mut ecies::Decryptor) -> Result<Vec<u8>, ProtocolError> {
        decryptor.decrypt_hex(&self.message)
    }
}

/// `session.report` params: `message` is the session id as `0x` + 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReportReq {
    /// Signature by the consumer (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
    /// `0x<sessionId>`, lower case.
    pub message: String,
    /// Unix milliseconds.
    pub timestamp: u64,
}

impl SessionReportReq {
    /// A signed report request for `session_id`.
    pub fn build(
        signer: &PrivateKeySigner,
        session_id: B256,
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        Self { signature: Bytes::new(), message: format!("{session_id:#x}"), timestamp: timestamp_ms }
            .signed(signer)
    }

    /// The session id in `message`.
    pub fn session_id(&self) -> Result<B256, ProtocolError> {
        let bytes = super::gojson::decode_hex_lenient(&self.message)
            .map_err(|e| ProtocolError::json("session.report message", e))?;
        B256::try_from(bytes.as_slice())
            .map_err(|_| ProtocolError::json("session.report message", "not a 32-byte session id"))
    }
}

/// `session.report` result: the provider-signed report for `closeSession`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReportRes {
    /// The encoded report ([`SessionReport`]).
    #[serde(with = "hex_string")]
    pub message: Bytes,
    /// EIP-191 signature of the report (v = 27/28).
    #[serde(rename = "signedReport", with = "hex_string")]
    pub signed_report: Bytes,
    /// Signature by the provider (`omitempty`).
    #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
    pub signature: Bytes,
    /// Unix milliseconds.
    pub timestamp: u64,
}

impl SessionReportRes {
    /// Encodes and EIP-191-signs `report`, then signs the message.
    pub fn build(
        provider: &PrivateKeySigner,
        report: &SessionReport,
        timestamp_ms: u64,
    ) -> Result<Self, ProtocolError> {
        let (message, signed_report) = report.sign(provider)?;
        Self { message, signed_report, signature: Bytes::new(), timestamp: timestamp_ms }.signed(provider)
    }

    /// The decoded report.
    pub fn decode_report(&self) -> Result<SessionReport, ProtocolError> {
        SessionReport::decode(&self.message)
    }

    /// The address that EIP-191-signed the report (what `closeSession` will recover).
    pub fn report_signer(&self) -> Result<Address, ProtocolError> {
        artifact_signer(&self.message, &self.signed_report)
    }
}

macro_rules! signable {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl Signable for $ty {
            const WHAT: &'static str = $what;
            fn signature(&self) -> &Bytes {
                &self.signature
            }
            fn signature_mut(&mut self) -> &mut Bytes {
                &mut self.signature
            }
        }
    )*};
}

signable! {
    PingReq => "network.ping params",
    PongRes => "network.ping result",
    SessionReq => "session.request params",
    SessionRes => "session.request result",
    SessionPromptReq => "session.prompt params",
    SessionPromptRes => "session.prompt result",
    SessionReportReq => "session.report params",
    SessionReportRes => "session.report result",
}

macro_rules! timestamped {
    ($($ty:ty),* $(,)?) => {$(
        impl Timestamped for $ty {
            fn timestamp_ms(&self) -> u64 {
                self.timestamp
            }
        }
    )*};
}

timestamped!(SessionReq, SessionRes, SessionPromptReq, SessionPromptRes, SessionReportReq, SessionReportRes);
