//! [`ConsumerError`], the one error type of the consumer role, and [`ProviderFailure`], the reason a
//! provider was skipped when a session is opened by model.
//!
//! The variants are typed so that the API maps them to HTTP without parsing strings (`api::proxy`),
//! and so that opening by model and failover can tell a *provider* failure (unreachable, silent,
//! refusing, lying: try the next one) from everything else (a model's own error answer, a bad request,
//! the chain refusing a transaction: stop).

use std::time::Duration;

use alloy::primitives::{Address, B256};
use serde::Serialize;

use crate::chain::ChainError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// Why a provider was not used when opening a session by model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderFailure {
    /// The provider.
    pub provider: Address,
    /// The bid that was tried.
    #[serde(rename = "bidId")]
    pub bid_id: B256,
    /// Why it failed, as a sentence.
    pub reason: String,
}

/// Everything that can go wrong in the consumer role.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// No wallet is configured or set: the consumer cannot sign.
    #[error("no wallet is set: configure WALLET_PRIVATE_KEY or WALLET_MNEMONIC, or POST /wallet/privateKey")]
    NoWallet,

    /// The provider's TCP endpoint could not be reached (DNS, refused, dial timeout).
    #[error("provider {endpoint} is unreachable: {reason}")]
    Unreachable {
        /// The `host:port` dialled.
        endpoint: String,
        /// What the socket said.
        reason: String,
    },

    /// The provider accepted the connection but did not answer in time.
    #[error("provider {endpoint} did not answer within {waited:?}")]
    Timeout {
        /// The `host:port`.
        endpoint: String,
        /// How long we waited.
        waited: Duration,
    },

    /// The provider closed the connection before sending anything.
    #[error("provider {endpoint} closed the connection without sending any data")]
    NoData {
        /// The `host:port`.
        endpoint: String,
    },

    /// The provider refused the request with an (unsigned) infrastructure error: no capacity, session
    /// expired, bad signature…
    #[error("provider {endpoint} refused: {message}")]
    Refused {
        /// The `host:port`.
        endpoint: String,
        /// The provider's error text.
        message: String,
    },

    /// The provider answered something we must not trust or cannot read: a bad or foreign signature,
    /// undecryptable data, malformed JSON, an approval for another bid.
    #[error("provider {endpoint} sent an invalid answer: {reason}")]
    InvalidAnswer {
        /// The `host:port`.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },

    /// The provider's model backend answered an error (signed by the provider). The body is what the
    /// reference puts under `providerModelError`.
    #[error("the provider's model answered an error")]
    Model {
        /// The upstream error JSON.
        body: serde_json::Value,
    },

    /// The provider's stream broke after it had started (connection lost, error frame, no `[DONE]`).
    #[error("the provider's answer broke off: {reason}")]
    Interrupted {
        /// Why.
        reason: String,
    },

    /// The session's provider failed before answering and no other provider could take over.
    #[error("{original}; failover to another provider failed: {reason}")]
    FailoverFailed {
        /// The provider's failure.
        original: String,
        /// Why no replacement session could be opened.
        reason: String,
    },

    /// The client's request is invalid.
    #[error("invalid `{field}`: {reason}")]
    BadRequest {
        /// The request field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },

    /// No session with this id exists (neither in the index nor on chain nor locally).
    #[error("session {0} not found")]
    SessionNotFound(B256),

    /// The session belongs to another user than this node's wallet.
    #[error("session {session} belongs to {user}, not to this node's wallet {wallet}")]
    NotOurSession {
        /// The session.
        session: B256,
        /// Its user.
        user: Address,
        /// This node's wallet.
        wallet: Address,
    },

    /// The session is closed.
    #[error("session {0} is closed")]
    SessionClosed(B256),

    /// The session's time is over.
    #[error("session {session} expired at {ends_at} (unix seconds)")]
    SessionExpired {
        /// The session.
        session: B256,
        /// When it ended.
        ends_at: u64,
    },

    /// The bid does not exist or is deleted.
    #[error("bid {0} not found or not active")]
    BidNotFound(B256),

    /// The bid is this node's own (a provider cannot buy from itself).
    #[error("bid {0} is this node's own bid")]
    OwnBid(B256),

    /// The wallet holds less MOR than the session needs.
    #[error("insufficient MOR: the session needs {needed} wei, the wallet holds {available}")]
    InsufficientFunds {
        /// The stake or payment.
        needed: alloy::primitives::U256,
        /// The wallet's balance.
        available: alloy::primitives::U256,
    },

    /// Every bid would need a stake (or payment) above the caller's limit (the gateway's key budget).
    #[error("the session needs {needed} wei of MOR, above the limit of {limit} wei")]
    StakeAboveLimit {
        /// The smallest stake a bid needed.
        needed: alloy::primitives::U256,
        /// The limit.
        limit: alloy::primitives::U256,
    },

    /// The provider of a bid is not registered (or deregistered).
    #[error("provider {0} is not registered")]
    ProviderNotFound(Address),

    /// The model has no active bid (after the allowlist and this node's own bids are removed).
    #[error("model {model} has no active bid to open a session on{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    NoBids {
        /// The model.
        model: B256,
        /// What was filtered out, if anything.
        hint: Option<String>,
    },

    /// Every provider of the model was tried and none opened a session.
    #[error("no provider accepting session: {}", describe(failures))]
    NoProviderAccepted {
        /// Each provider's reason, best-rated first.
        failures: Vec<ProviderFailure>,
    },

    /// The rating configuration file is invalid.
    #[error("rating config {path}: {reason}")]
    RatingConfig {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// The chain refused or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),

    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A message could not be built or signed locally.
    #[error("MOR-RPC: {0}")]
    Protocol(#[from] ProtocolError),
}

fn describe(failures: &[ProviderFailure]) -> String {
    serde_json::to_string(failures).unwrap_or_else(|_| format!("{failures:?}"))
}

impl ConsumerError {
    /// Whether the error is the provider's fault (unreachable, silent, refusing, invalid answers), so
    /// that the next provider may be tried: when opening by model, and for failover.
    pub fn is_provider_failure(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Timeout { .. }
                | Self::NoData { .. }
                | Self::Refused { .. }
                | Self::InvalidAnswer { .. }
        )
    }

    /// Whether the provider refused for lack of capacity right now (its connection or per-session
    /// limits: "provider busy", "too many prompts in flight; retry later"): the same provider may
    /// serve the request a moment later.
    pub fn is_provider_busy(&self) -> bool {
        matches!(self, Self::Refused { message, .. }
            if message.contains("busy") || message.contains("too many") || message.contains("retry later"))
    }

    pub(crate) fn invalid(endpoint: &str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidAnswer { endpoint: endpoint.to_owned(), reason: reason.to_string() }
    }
}
