//! The provider role: serves paid sessions over MOR-RPC by relaying prompts to the node's own model
//! backends (how to run one: `docs/provider.md`).
//!
//! - [`models`]: `models-config.json` (V2 and legacy formats), validated at start into the [`Models`]
//!   registry; also the consumer's local models and `GET /v1/models`.
//! - [`backend`]: the `openai` backend client (chat and embeddings, streaming or not, per-hop
//!   timeouts, token metering).
//! - [`server`]: the MOR-RPC TCP server on `PROXY_ADDRESS` (bounded connections, request read timeout,
//!   frame limit), dispatching to the handlers.
//! - `handlers`: `network.ping`, `session.request` (bid and capacity checks, signed approval),
//!   `session.prompt` (session checks, replay guard, per-session concurrency, signed and encrypted
//!   chunks), `session.report` (signed receipt from the durable statistics).
//! - `lookup`: bids and sessions from the chain index, with one chain read (then cached) when the
//!   indexer has not seen them yet; `gate`: the per-session request semaphores.
//!
//! State that must survive a restart (consumers' handshake keys, per-session statistics) is in the
//! store ([`crate::store::ProviderSessionsRepo`]). The node's wallet is read from the [`WalletSlot`] on
//! every request, so the provider always signs with the current key.
//!
//! Depends on `protocol`, `chain` (reads, wallet), `store` and `config`; nothing imports it but `node`
//! (and the API, for the local models).

pub mod backend;
mod gate;
mod handlers;
mod lookup;
pub mod models;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};

pub use backend::{BackendClient, BackendError, BackendTimeouts};
pub use models::{LocalModel, ModelConfig, Models, ModelsConfigError};
pub use server::ProviderServer;

use crate::chain::{Rpc, WalletSlot};
use crate::config::Config;
use crate::protocol::{ProtocolError, ReplayGuard, TimestampWindow};
use crate::store::{Store, StoreError};

/// How many signatures the replay guard remembers.
pub const REPLAY_CAPACITY: usize = 100_000;
/// Connections served at once (`PROXY_MAX_CONNECTIONS`); more are answered "busy" and closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = crate::config::DEFAULT_PROXY_MAX_CONNECTIONS;
/// How long a new connection may take to send its request.
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one response frame may take to be written (a consumer that stops reading).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Prompts of one session served at once (`PROXY_SESSION_CONCURRENCY`; the reference serves one at a
/// time).
pub const DEFAULT_SESSION_CONCURRENCY: usize = crate::config::DEFAULT_SESSION_CONCURRENCY;
/// Prompts of one session waiting for their turn (`PROXY_SESSION_QUEUE`); more are refused.
pub const DEFAULT_SESSION_QUEUE: usize = crate::config::DEFAULT_SESSION_QUEUE;
/// Chain reads for bids or sessions the index does not hold yet, at once.
pub const CHAIN_FALLBACK_CONCURRENCY: usize = 4;
/// The `idle_timeout` capacity policy's window: sessions with a prompt this recent count.
pub const IDLE_TIMEOUT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The clock the provider stamps and checks with: the system clock plus an offset (0 in production;
/// tests move it to make sessions expire without waiting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock shifted by `offset_ms` (positive: ahead).
    pub fn with_offset_ms(offset_ms: i64) -> Self {
        Self { offset_ms }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        let now = i128::from(crate::protocol::unix_millis_now()) + i128::from(self.offset_ms);
        u64::try_from(now.max(0)).unwrap_or(u64::MAX)
    }

    /// Now, in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// Limits and behaviour of the provider, from the configuration (see [`ProviderOptions::from_config`]).
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// `PROXY_ADDRESS`.
    pub address: std::net::SocketAddr,
    /// The chain id the approvals and reports are signed for (`ETH_NODE_CHAIN_ID`).
    pub chain_id: u64,
    /// The diamond (for chain reads of bids and sessions the index lacks).
    pub diamond: Address,
    /// `PROXY_MAX_PROMPT_BYTES`: largest request frame and prompt.
    pub max_prompt_bytes: usize,
    /// `PROXY_TIMESTAMP_WINDOW`: accepted age (and clock skew ahead) of signed requests.
    pub timestamp_window: Duration,
    /// Waits of the backend calls (`LLM_TIMEOUT`).
    pub backend_timeouts: BackendTimeouts,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may take to send its request.
    pub request_read_timeout: Duration,
    /// How long one response frame may take to be written.
    pub write_timeout: Duration,
    /// Prompts of one session served at once.
    pub session_concurrency: usize,
    /// Prompts of one session waiting; more are refused.
    pub session_queue: usize,
    /// The clock.
    pub clock: Clock,
}

impl ProviderOptions {
    /// The options of `config` with the default bounds.
    pub fn from_config(config: &Config) -> Self {
        let provider = &config.provider;
        Self {
            address: provider.proxy_address,
            chain_id: config.chain.chain_id,
            diamond: config.chain.diamond,
            max_prompt_bytes: provider.max_prompt_bytes,
            timestamp_window: provider.timestamp_window,
            backend_timeouts: BackendTimeouts::for_llm_timeout(provider.llm_timeout),
            max_connections: provider.max_connections,
            request_read_timeout: DEFAULT_REQUEST_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            session_concurrency: provider.session_concurrency,
            session_queue: provider.session_queue,
            clock: Clock::system(),
        }
    }
}

/// Everything that can refuse or fail a provider request. The `Display` text is the reason sent to
/// the consumer in an unsigned error (internal details of the store stay out of it; see
/// [`ProviderError::reason`]).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The request frame or its params are not valid JSON of the expected shape.
    #[error("failed to unmarshal request: {0}")]
    BadRequest(String),
    /// The method is not served.
    #[error("unknown method: {0}")]
    UnknownMethod(String),
    /// The request frame is larger than `PROXY_MAX_PROMPT_BYTES`.
    #[error("request exceeds PROXY_MAX_PROMPT_BYTES ({limit} bytes)")]
    FrameTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection sent no complete request in time.
    #[error("no complete request within {0:?}")]
    ReadTimeout(Duration),
    /// The prompt text is larger than `PROXY_MAX_PROMPT_BYTES`.
    #[error("prompt of {size} bytes exceeds PROXY_MAX_PROMPT_BYTES ({limit} bytes)")]
    PromptTooLarge {
        /// The prompt's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The prompt is not an OpenAI request this provider serves.
    #[error("invalid prompt: {0}")]
    InvalidPrompt(String),
    /// The signature does not verify.
    #[error("invalid signature: {0}")]
    BadSignature(ProtocolError),
    /// The handshake key is not the key of the user it claims to be.
    #[error("invalid signature: the key belongs to {actual}, not to the user {user}")]
    KeyNotUser {
        /// The claimed user.
        user: Address,
        /// The key's address.
        actual: Address,
    },
    /// The timestamp is outside the window, or the signature was already used.
    #[error("request refused: {0}")]
    Replay(ProtocolError),
    /// The bid does not exist.
    #[error("bid {0:#x} not found")]
    BidNotFound(B256),
    /// The bid was deleted.
    #[error("bid {0:#x} is not active")]
    BidInactive(B256),
    /// The bid is another provider's.
    #[error("bid {bid:#x} belongs to provider {owner}, not to this provider {me}")]
    NotOurBid {
        /// The bid.
        bid: B256,
        /// Its provider.
        owner: Address,
        /// This provider.
        me: Address,
    },
    /// The model is not in this node's models config.
    #[error("model {0:#x} is not served by this provider")]
    ModelNotServed(B256),
    /// The model's slots are taken (the reference's text is `no capacity`).
    #[error("no capacity: model {model:#x} has {used} of {slots} slots in use ({policy} policy)")]
    NoCapacity {
        /// The model.
        model: B256,
        /// Slots counted as used.
        used: u64,
        /// `concurrentSlots`.
        slots: u32,
        /// The capacity policy.
        policy: &'static str,
    },
    /// The session does not exist (not in the index, not on chain).
    #[error("session {0:#x} not found")]
    SessionNotFound(B256),
    /// The session is another provider's.
    #[error("session {session:#x} belongs to provider {owner}, not to this provider {me}")]
    NotOurSession {
        /// The session.
        session: B256,
        /// Its provider.
        owner: Address,
        /// This provider.
        me: Address,
    },
    /// The session was closed on chain.
    #[error("session {0:#x} is closed")]
    SessionClosed(B256),
    /// The session's end has passed.
    #[error("session expired: {session:#x} ended at {ends_at} (now {now})")]
    SessionExpired {
        /// The session.
        session: B256,
        /// Its end (Unix seconds).
        ends_at: u64,
        /// The provider's clock (Unix seconds).
        now: u64,
    },
    /// The user never made a handshake with this provider and its key cannot be recovered.
    #[error("user {0} not found: no session.request from this user")]
    UserNotFound(Address),
    /// Too many prompts of one session are waiting.
    #[error("session {0:#x} has too many prompts in flight; retry later")]
    SessionBusy(B256),
    /// The provider has no wallet to sign with.
    #[error("this provider has no wallet configured")]
    NoWallet,
    /// The provider serves as many connections as it allows.
    #[error("provider busy: too many connections")]
    Busy,
    /// The model backend failed (not a model error: those are sent signed).
    #[error("model backend failed: {0}")]
    Backend(BackendError),
    /// A chain read failed.
    #[error("chain read failed: {0}")]
    Chain(String),
    /// The store failed.
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    /// Signing or encrypting a response failed.
    #[error("cannot build the response: {0}")]
    Respond(ProtocolError),
    /// Writing to the consumer failed or timed out (it went away or stopped reading).
    #[error("writing to the consumer failed: {0}")]
    Write(String),
    /// The listener could not be bound.
    #[error("MOR-RPC listener on {address} (PROXY_ADDRESS): {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl ProviderError {
    /// The text sent to the consumer: the `Display` text, except that storage internals are replaced
    /// by a generic reason.
    pub fn reason(&self) -> String {
        match self {
            ProviderError::Store(_) => "provider storage unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The provider service shared by every connection. Cheap to clone.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    options: ProviderOptions,
    store: Store,
    rpc: Rpc,
    wallet: WalletSlot,
    models: Models,
    backend: BackendClient,
    replay: ReplayGuard,
    gates: gate::SessionGates,
    lookup: lookup::Lookup,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("address", &self.inner.options.address)
            .field("models", &self.inner.models.len())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The provider over `store` (the chain index and the provider's own tables), `rpc` (fallback
    /// reads), the node's wallet slot and the validated models.
    pub fn new(
        options: ProviderOptions,
        store: Store,
        rpc: Rpc,
        wallet: WalletSlot,
        models: Models,
    ) -> Result<Self, ProviderError> {
        let backend = BackendClient::new(options.backend_timeouts).map_err(ProviderError::Backend)?;
        let window =
            TimestampWindow { max_age: options.timestamp_window, max_future_skew: options.timestamp_window };
        let gates = gate::SessionGates::new(options.session_concurrency, options.session_queue);
        let lookup = lookup::Lookup::new(options.diamond);
        Ok(Self {
            inner: Arc::new(Inner {
                replay: ReplayGuard::new(window, REPLAY_CAPACITY),
                options,
                store,
                rpc,
                wallet,
                models,
                backend,
                gates,
                lookup,
            }),
        })
    }

    /// The options.
    pub fn options(&self) -> &ProviderOptions {
        &self.inner.options
    }

    /// The models served.
    pub fn models(&self) -> &Models {
        &self.inner.models
    }
}
