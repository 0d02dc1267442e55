//! [`ProtocolError`], the one error type of the `protocol` module.
//!
//! Variants are typed so that the provider and the consumer can map them to the reference's error texts
//! (the provider answers most failures with an unsigned `RpcError`, see [`super::messages::RpcError`])
//! or to HTTP statuses without parsing strings. No variant carries key material.

use std::time::Duration;

use alloy::primitives::Address;

/// Everything that can go wrong while framing, parsing, signing, verifying, encrypting or decrypting
/// MOR-RPC messages.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Reading from or writing to the TCP stream failed.
    #[error("MOR-RPC I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A frame grew past the configured maximum before its JSON value ended. Nothing beyond the limit
    /// was buffered; the connection must be dropped.
    #[error("MOR-RPC frame exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The configured maximum frame length in bytes.
        limit: usize,
    },

    /// The byte stream is not a sequence of JSON objects (a frame starts with something other than
    /// `{`, brackets do not match, or it nests deeper than the limit).
    #[error("malformed MOR-RPC frame at byte {offset}: {reason}")]
    MalformedFrame {
        /// Offset of the offending byte inside the current frame.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },

    /// The peer closed the connection in the middle of a frame.
    #[error("MOR-RPC connection closed inside a frame ({buffered} bytes of it received)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame that had arrived.
        buffered: usize,
    },

    /// A frame or a field is not the JSON the message type expects.
    #[error("malformed MOR-RPC {what}: {reason}")]
    MalformedJson {
        /// What was being decoded, e.g. `session.prompt params`.
        what: &'static str,
        /// The decoder's reason (field and position).
        reason: String,
    },

    /// A request names a method this build does not serve. The reference answers
    /// `unknown method: <name>`.
    #[error("unknown method: {method}")]
    UnknownMethod {
        /// The method as received.
        method: String,
    },

    /// The peer answered with an error response.
    #[error("provider error: {message}")]
    Remote {
        /// The error text (hex ciphertext for a signed model error).
        message: String,
        /// Whether the error was signed (a model error, encrypted to the consumer).
        signed: bool,
    },

    /// A message could not be serialised (only possible for payloads serde cannot represent).
    #[error("cannot serialise MOR-RPC {what}: {reason}")]
    Serialize {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's reason.
        reason: String,
    },

    /// A signature is not a well-formed secp256k1 signature for this scheme (length, `v` byte, high
    /// `s`, or no key recovers from it).
    #[error("bad signature: {reason}")]
    BadSignature {
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A valid signature, but by another key than the expected one.
    #[error("signed by {actual}, expected {expected}")]
    WrongSigner {
        /// The address the signature had to come from.
        expected: Address,
        /// The address it recovers to.
        actual: Address,
    },

    /// A public key is not a point on secp256k1 (65-byte uncompressed `04…` or 33-byte compressed).
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Producing a signature failed.
    #[error("signing failed: {reason}")]
    Signing {
        /// The signer's reason.
        reason: String,
    },

    /// A message's timestamp is older than the accepted window.
    #[error("stale timestamp: {timestamp_ms} ms is more than {max_age:?} before now ({now_ms} ms)")]
    StaleTimestamp {
        /// The message's timestamp (Unix milliseconds).
        timestamp_ms: u64,
        /// The local clock (Unix milliseconds).
        now_ms: u64,
        /// The accepted age.
        max_age: Duration,
    },

    /// A message's timestamp lies further in the future than the accepted clock skew.
    #[error("future timestamp: {timestamp_ms} ms is more than {max_skew:?} after now ({now_ms} ms)")]
    FutureTimestamp {
        /// The message's timestamp (Unix milliseconds).
        timestamp_ms: u64,
        /// The local clock (Unix milliseconds).
        now_ms: u64,
        /// The accepted skew into the future.
        max_skew: Duration,
    },

    /// A signature was already accepted once within the window (a replayed message).
    #[error("replayed message: this signature was already accepted")]
    Replay,

    /// The replay cache was full and had to forget messages up to this timestamp; an older message
    /// can no longer be proven fresh and is refused.
    #[error("message timestamp {timestamp_ms} ms is not newer than the replay cache's floor {floor_ms} ms")]
    BelowReplayFloor {
        /// The message's timestamp (Unix milliseconds).
        timestamp_ms: u64,
        /// The newest timestamp the cache had to forget.
        floor_ms: u64,
    },

    /// ECIES decryption failed (too short, bad ephemeral key, MAC mismatch, bad hex).
    #[error("ECIES decryption failed: {reason}")]
    Decrypt {
        /// Why it failed.
        reason: &'static str,
    },

    /// An on-chain artifact (approval or report) is not the expected ABI encoding.
    #[error("invalid {what}: {reason}")]
    InvalidArtifact {
        /// `session approval` or `session report`.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// A decoded artifact or message names another value than the one the caller expects (chain id,
    /// bid id, user, session id).
    #[error("{what} mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// The field, e.g. `approval chain id`.
        what: &'static str,
        /// The expected value.
        expected: String,
        /// The value found.
        actual: String,
    },
}

impl ProtocolError {
    pub(crate) fn json(what: &'static str, err: impl std::fmt::Display) -> Self {
        Self::MalformedJson { what, reason: err.to_string() }
    }
}
