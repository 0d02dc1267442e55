//! MOR-RPC, the wire protocol between consumer and provider routers on the provider's TCP port, byte
//! compatible with the reference Go router (facts and vectors: `docs/protocol.md`).
//!
//! This module owns:
//!
//! - [`framing`]: concatenated JSON objects on a TCP stream, as a bounded `tokio_util` codec;
//! - [`messages`]: the envelopes and the params/results of `network.ping`, `session.request`,
//!   `session.prompt` and `session.report`, in the reference's field order;
//! - [`gojson`]: the exact bytes Go's `encoding/json` produces, which signatures cover;
//! - [`signing`]: Go-style message signatures (`keccak256`, v ∈ {0, 1}) and EIP-191 artifact
//!   signatures (v ∈ {27, 28}), verification against an address or a public key;
//! - [`artifacts`]: the session approval (`openSession`) and the session report (`closeSession`);
//! - [`ecies`]: go-ethereum's ECIES, which encrypts every provider→consumer payload;
//! - [`replay`]: the defences the reference lacks (timestamp window, seen-signature cache);
//! - [`ProtocolError`].
//!
//! It is a library: the provider's server and the consumer's client use it. It depends on nothing else
//! in the crate (no chain, no store, no config).

pub mod artifacts;
pub mod ecies;
pub mod error;
pub mod framing;
pub mod gojson;
pub mod messages;
pub mod replay;
pub mod signing;

#[cfg(test)]
mod vectors;

pub use artifacts::{ReportTokens, SessionApproval, SessionReport};
pub use error::ProtocolError;
pub use framing::{MorRpcCodec, DEFAULT_MAX_FRAME_LEN};
pub use messages::{
    method, PingReq, PongRes, Request, RpcError, RpcErrorData, RpcMessage, RpcResponse, SessionPromptReq,
    SessionPromptRes, SessionReportReq, SessionReportRes, SessionReq, SessionRes,
};
pub use replay::{unix_millis_now, ReplayGuard, TimestampWindow};
pub use signing::{Signable, Timestamped};
