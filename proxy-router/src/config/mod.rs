//! Configuration: the reference's environment variable names (read from the process environment and a
//! `.env` file, with command-line flags overriding), validated once at start-up into typed structs.
//!
//! A bad value stops the node with the variable's name and the reason ([`ConfigError`]); nothing is
//! silently replaced by a default (the reference ignores parse errors). Secrets (the wallet key or
//! mnemonic) are held as [`secrecy::SecretString`] and never appear in `Debug` output or errors.
//!
//! `config` depends on nothing else in the crate.
//!
//! # Loading
//!
//! ```no_run
//! # fn main() -> Result<(), proxy_router::config::ConfigError> {
//! use proxy_router::config::{env_with_dotenv, Config};
//! let env = env_with_dotenv(None)?; // the process environment over ./.env
//! let config = Config::load(["--eth-node-chain-id=8453"], &env)?; // flags over both
//! println!("{config}"); // NAME=value lines, secrets redacted
//! # Ok(()) }
//! ```
//!
//! [`Config::load`] is a pure function of its two arguments, so every rule is unit-tested with maps and
//! argument lists; [`env_with_dotenv`] is the only part that touches the process (environment and file).
//! The variables, their flags, defaults and help live in one table, [`VARIABLES`].
//!
//! # Why the flags are not clap arguments
//!
//! Declaring one clap argument per variable (`#[arg(long = "eth-node-chain-id", env = ...)]`) was
//! rejected: clap cannot read the reference's single-dash long flags (`-eth-node-chain-id` is a cluster
//! of short flags to clap); its `env` reads the process environment, not our `.env`-merged map, so the
//! loader would stop being pure; and its errors name the flag rather than the variable and echo the
//! offending value, which for `--wallet-private-key` would print the key. So the binary's clap
//! definition takes the configuration flags of a command as raw trailing arguments and hands them to
//! [`Config::load`] (see `check-config` in `main.rs`), and [`flags_help`] renders the table for its
//! `--help`. The flag syntax is the Go `flag` package's (see [Flags](#flags)): `-name` or `--name`,
//! `-name=value` or `-name value`.
//!
//! # Flags
//!
//! One per variable: the name in lower case with `-` for `_` (`ETH_NODE_CHAIN_ID` →
//! `--eth-node-chain-id`), plus the reference's `-diamond-address` for `DIAMOND_CONTRACT_ADDRESS`. A
//! boolean flag alone means true. The last repeated flag wins. An unknown flag is an error (the
//! reference skips it, hiding typos); unknown *environment* variables are ignored, since the
//! environment holds many unrelated ones.

mod args;
mod dotenv;
mod error;
mod load;
mod parse;
pub mod unsupported;
pub mod vars;

#[cfg(test)]
pub(crate) mod test_support;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{address, Address};
use alloy::signers::local::coins_bip39::English;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use dotenv::{env_with_dotenv, merge_dotenv, read_dotenv, DEFAULT_DOTENV};
pub use error::{AfterFlag, ConfigError, DotEnvKey, KeyProblem, MnemonicProblem, Origin, Problem};
pub use parse::{format_duration, parse_duration};
pub use vars::{by_flag, by_name, flags_help, VarSpec, VARIABLES};

/// Default of `ETH_NODE_POLLING_INTERVAL`.
pub const DEFAULT_POLLING_INTERVAL: Duration = Duration::from_secs(10);
/// Default of `ETH_NODE_RPC_TIMEOUT`.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `TX_RECEIPT_TIMEOUT`.
pub const DEFAULT_TX_RECEIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// Default of `TX_BUMP_INTERVAL`.
pub const DEFAULT_TX_BUMP_INTERVAL: Duration = Duration::from_secs(20);
/// Default of `TX_FEE_BUMP_PERCENT`.
pub const DEFAULT_TX_FEE_BUMP_PERCENT: u32 = 15;
/// Default of `TX_MAX_BUMPS`.
pub const DEFAULT_TX_MAX_BUMPS: u32 = 5;
/// Default of `WALLET_DERIVATION_PATH`.
pub const DEFAULT_DERIVATION_PATH: &str = "m/44'/60'/0'/0/0";
/// Default of `PROXY_STORAGE_PATH`.
pub const DEFAULT_STORAGE_PATH: &str = "./data/";
/// Default of `INDEXER_CONFIRMATIONS`.
pub const DEFAULT_CONFIRMATIONS: u64 = 2;
/// Default of `INDEXER_BLOCK_RANGE`.
pub const DEFAULT_BLOCK_RANGE: u64 = 2000;
/// Default of `PROXY_ADDRESS` (the reference's).
pub const DEFAULT_PROXY_ADDRESS: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 3333));
/// Default of `MODELS_CONFIG_PATH`.
pub const DEFAULT_MODELS_CONFIG_PATH: &str = "./models-config.json";
/// Default of `LLM_TIMEOUT` (the reference's).
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_secs(240);
/// Default of `PROXY_MAX_PROMPT_BYTES`.
pub const DEFAULT_MAX_PROMPT_BYTES: usize = 4 * 1024 * 1024;
/// Default of `PROXY_TIMESTAMP_WINDOW`.
pub const DEFAULT_TIMESTAMP_WINDOW: Duration = Duration::from_secs(300);
/// Default of `PROXY_MAX_CONNECTIONS`.
pub const DEFAULT_PROXY_MAX_CONNECTIONS: usize = 512;
/// Default of `PROXY_SESSION_CONCURRENCY` (the reference serves one prompt of a session at a time).
pub const DEFAULT_SESSION_CONCURRENCY: usize = 1;
/// Default of `PROXY_SESSION_QUEUE`.
pub const DEFAULT_SESSION_QUEUE: usize = 8;
/// Default of `RATING_CONFIG_PATH` (the reference's).
pub const DEFAULT_RATING_CONFIG_PATH: &str = "./rating-config.json";
/// Default of `CNODE_PNODE_TIMEOUT` (the reference's).
pub const DEFAULT_PNODE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default of `SESSION_SWEEP_INTERVAL` (the reference's ticker).
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Default of `WEB_ADDRESS` (the reference's).
pub const DEFAULT_WEB_ADDRESS: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 8082));
/// Default of `AUTH_CONFIG_FILE_PATH` (the reference's).
pub const DEFAULT_AUTH_CONFIG_FILE_PATH: &str = "./proxy.conf";
/// Default of `COOKIE_FILE_PATH` (the reference's).
pub const DEFAULT_COOKIE_FILE_PATH: &str = "./.cookie";
/// Default of `GATEWAY_ADDRESS`.
pub const DEFAULT_GATEWAY_ADDRESS: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8083));
/// Default of `GATEWAY_SESSION_DURATION`.
pub const DEFAULT_GATEWAY_SESSION_DURATION: Duration = Duration::from_secs(3600);
/// Default of `GATEWAY_SESSION_RENEW_BEFORE`.
pub const DEFAULT_GATEWAY_RENEW_BEFORE: Duration = Duration::from_secs(120);
/// Default of `GATEWAY_SESSION_IDLE_TIMEOUT`.
pub const DEFAULT_GATEWAY_IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// Default of `GATEWAY_SWEEP_INTERVAL`.
pub const DEFAULT_GATEWAY_SWEEP_INTERVAL: Duration = Duration::from_secs(15);
/// Default of `INDEXER_MAX_BACKOFF`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// What the effective configuration shows in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// The canonical Multicall3 address, used unless `MULTICALL3_ADDR` says otherwise.
pub const DEFAULT_MULTICALL3: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// Everything the node needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// RPC endpoints, chain id, contract addresses and transaction policy.
    pub chain: ChainConfig,
    /// The node's key.
    pub wallet: WalletConfig,
    /// Where the node keeps its state.
    pub store: StoreConfig,
    /// How the chain index is built and followed.
    pub indexer: IndexerConfig,
    /// The HTTP API: address and auth files.
    pub web: WebConfig,
    /// The provider role: MOR-RPC listener, models, backend timeout, defences.
    pub provider: ProviderConfig,
    /// The consumer role: rating, provider timeout, expiry sweeper.
    pub consumer: ConsumerConfig,
    /// The OpenAI gateway: its listener and its session policy.
    pub gateway: GatewayConfig,
    /// Where and how the node logs.
    pub log: LogConfig,
}

/// Logs: `LOG_JSON` (or `LOG_IS_PROD`), `LOG_COLOR`, `LOG_FOLDER_PATH` and the levels
/// `LOG_LEVEL_APP`, `LOG_LEVEL_TCP`, `LOG_LEVEL_ETH_RPC`, `LOG_LEVEL_STORAGE` (zap's names; `dpanic`,
/// `panic` and `fatal` mean `error`). `RUST_LOG`, when set, replaces the levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// One JSON object per line.
    pub json: bool,
    /// ANSI colours in text lines.
    pub color: bool,
    /// Also write to `<folder>/<start time>/main.log`.
    pub folder: Option<PathBuf>,
    /// The node's own lines.
    pub app: tracing::Level,
    /// MOR-RPC connections.
    pub tcp: tracing::Level,
    /// Chain RPC and transactions.
    pub eth_rpc: tracing::Level,
    /// The store.
    pub storage: tracing::Level,
}

/// The OpenAI gateway: `GATEWAY_ADDRESS`, `GATEWAY_SESSION_DURATION`, `GATEWAY_SESSION_RENEW_BEFORE`,
/// `GATEWAY_SESSION_IDLE_TIMEOUT`, `GATEWAY_SESSION_CONCURRENCY`, `GATEWAY_DIRECT_PAYMENT`, `GATEWAY_SWEEP_INTERVAL`,
/// `GATEWAY_CORS_ORIGINS`.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_ADDRESS`: where the gateway listens (default `127.0.0.1:8083`); `None` when the
    /// variable is set empty (or to `off`): no gateway.
    pub address: Option<std::net::SocketAddr>,
    /// `GATEWAY_SESSION_DURATION`: how long the sessions the gateway opens last (default 1 h, at least
    /// the contract's 5 min).
    pub session_duration: Duration,
    /// `GATEWAY_SESSION_RENEW_BEFORE`: a session with less time left is replaced by a new one before
    /// it is used (default 2 min).
    pub renew_before: Duration,
    /// `GATEWAY_SESSION_IDLE_TIMEOUT`: a session unused for longer is closed and its stake returns
    /// (default 15 min).
    pub idle_timeout: Duration,
    /// `GATEWAY_SESSION_CONCURRENCY`: prompts sent on one session at once (default 1, as providers
    /// serve one prompt of a session at a time by default).
    pub session_concurrency: usize,
    /// `GATEWAY_DIRECT_PAYMENT`: pay providers directly instead of staking (default false).
    pub direct_payment: bool,
    /// `GATEWAY_SWEEP_INTERVAL`: how often idle, expired and failed sessions are closed (default 15 s).
    pub sweep_interval: Duration,
    /// `GATEWAY_CORS_ORIGINS`: origins allowed to call the gateway from a browser (default `*`, any).
    pub cors_origins: Vec<String>,
}

/// The provider role: `PROXY_ADDRESS`, `MODELS_CONFIG_*`, `LLM_TIMEOUT`, `PROXY_MAX_PROMPT_BYTES`,
/// `PROXY_TIMESTAMP_WINDOW`, `PROXY_MAX_CONNECTIONS`, `PROXY_SESSION_CONCURRENCY`, `PROXY_SESSION_QUEUE`. The models file's contents are validated by the provider module at start.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `PROXY_ADDRESS`: the MOR-RPC TCP listener (default `0.0.0.0:3333`).
    pub proxy_address: std::net::SocketAddr,
    /// `MODELS_CONFIG_PATH`: the models file (default `./models-config.json`).
    pub models_config_path: PathBuf,
    /// `MODELS_CONFIG_CONTENT`: models JSON used instead of the file.
    pub models_config_content: Option<String>,
    /// `LLM_TIMEOUT`: longest wait for a backend's whole answer (default 240 s).
    pub llm_timeout: Duration,
    /// `PROXY_MAX_PROMPT_BYTES`: largest prompt accepted (default 4 MiB).
    pub max_prompt_bytes: usize,
    /// `PROXY_TIMESTAMP_WINDOW`: accepted clock difference of signed requests (default 5 min).
    pub timestamp_window: Duration,
    /// `PROXY_MAX_CONNECTIONS`: MOR-RPC connections served at once (default 512).
    pub max_connections: usize,
    /// `PROXY_SESSION_CONCURRENCY`: prompts of one session served at once (default 1).
    pub session_concurrency: usize,
    /// `PROXY_SESSION_QUEUE`: prompts of one session waiting for their turn (default 8).
    pub session_queue: usize,
}

/// The consumer role: `RATING_CONFIG_PATH`, `PROVIDER_ALLOW_LIST`, `CNODE_PNODE_TIMEOUT`,
/// `SESSION_SWEEP_INTERVAL`, `PROXY_STORE_CHAT_CONTEXT`. The rating file's contents are validated by the consumer module at start.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `RATING_CONFIG_PATH`: rating weights and allowlist (default `./rating-config.json`).
    pub rating_config_path: PathBuf,
    /// `PROVIDER_ALLOW_LIST`: providers added to the rating allowlist.
    pub provider_allow_list: Vec<Address>,
    /// `CNODE_PNODE_TIMEOUT`: longest wait for a provider's first frame (default 90 s).
    pub pnode_timeout: Duration,
    /// `SESSION_SWEEP_INTERVAL`: period of the expired-session sweeper (default 1 min).
    pub sweep_interval: Duration,
    /// `PROXY_STORE_CHAT_CONTEXT`: keep the chat history of requests naming a `chat_id` (default true,
    /// the reference's).
    pub store_chat_context: bool,
}

/// The HTTP API: `WEB_ADDRESS`, `AUTH_CONFIG_FILE_PATH`, `COOKIE_FILE_PATH`, `COOKIE_CONTENT`. The auth
/// files' contents are checked by the API's auth module when the node starts.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `WEB_ADDRESS`: where the HTTP API listens (default `0.0.0.0:8082`).
    pub address: std::net::SocketAddr,
    /// `AUTH_CONFIG_FILE_PATH`: the users file (default `./proxy.conf`).
    pub auth_config_file_path: PathBuf,
    /// `COOKIE_FILE_PATH`: the admin's credentials (default `./.cookie`).
    pub cookie_file_path: PathBuf,
    /// `COOKIE_CONTENT`: `admin:<password>` for a missing cookie file. Secret.
    pub cookie_content: Option<SecretString>,
}

/// Chain access: `ETH_NODE_*`, `DIAMOND_CONTRACT_ADDRESS`, `MOR_TOKEN_ADDRESS`, `MULTICALL3_ADDR`, `TX_*`.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// `ETH_NODE_ADDRESS`: one or more comma-separated http(s) or ws(s) URLs, tried in order with failover.
    pub rpc_urls: Vec<Url>,
    /// `ETH_NODE_CHAIN_ID`: required; start-up refuses an RPC node that reports another chain.
    pub chain_id: u64,
    /// `DIAMOND_CONTRACT_ADDRESS`: the marketplace diamond.
    pub diamond: Address,
    /// `MOR_TOKEN_ADDRESS`: the MOR ERC-20.
    pub mor_token: Address,
    /// `MULTICALL3_ADDR`: Multicall3 (default [`DEFAULT_MULTICALL3`]).
    pub multicall3: Address,
    /// `ETH_NODE_LEGACY_TX`: legacy `gasPrice` transactions instead of EIP-1559 (default false).
    pub legacy_tx: bool,
    /// `ETH_NODE_USE_SUBSCRIPTIONS`: follow new heads over a WebSocket subscription instead of polling
    /// (default false; needs a ws(s) URL).
    pub use_subscriptions: bool,
    /// `ETH_NODE_POLLING_INTERVAL`: head polling interval, also the base retry delay (default 10 s).
    pub polling_interval: Duration,
    /// `ETH_NODE_RPC_TIMEOUT`: timeout of one JSON-RPC request (default 30 s).
    pub rpc_timeout: Duration,
    /// `TX_RECEIPT_TIMEOUT`: the longest a write waits for its receipt, bumps included (default 3 min).
    pub tx_receipt_timeout: Duration,
    /// `TX_BUMP_INTERVAL`: a transaction without a receipt after this long is resent with higher fees
    /// (default 20 s, as the reference's escalator).
    pub tx_bump_interval: Duration,
    /// `TX_FEE_BUMP_PERCENT`: fee increase of each resend (default 15, at least 10 as nodes require).
    pub tx_fee_bump_percent: u32,
    /// `TX_MAX_BUMPS`: resends before giving up (default 5).
    pub tx_max_bumps: u32,
}

/// The node's key: `WALLET_PRIVATE_KEY`, or `WALLET_MNEMONIC` with `WALLET_DERIVATION_PATH`.
#[derive(Debug, Clone)]
pub struct WalletConfig {
    /// `None` when neither variable is set (read-only node).
    pub key: Option<WalletKey>,
}

/// Where the key comes from. The secret never leaves this value except to build the signer.
#[derive(Debug, Clone)]
pub enum WalletKey {
    /// `WALLET_PRIVATE_KEY`: 32 bytes hex, with or without `0x`.
    PrivateKey(SecretString),
    /// `WALLET_MNEMONIC` (BIP-39 English) and `WALLET_DERIVATION_PATH` (default `m/44'/60'/0'/0/0`).
    Mnemonic {
        /// The phrase.
        phrase: SecretString,
        /// BIP-32 derivation path.
        derivation_path: String,
    },
}

/// Local state: `PROXY_STORAGE_PATH`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `PROXY_STORAGE_PATH`: directory of the node's state (default `./data/`). The SQLite database is
    /// `<path>/proxy-router.sqlite`.
    pub storage_path: PathBuf,
}

/// The chain index: `INDEXER_*`.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// `INDEXER_START_BLOCK`: first block to index on an empty database (default 0; use the diamond's
    /// deployment block on a public chain).
    pub start_block: u64,
    /// `INDEXER_CONFIRMATIONS`: only blocks at least this deep are indexed (default 2).
    pub confirmations: u64,
    /// `INDEXER_BLOCK_RANGE`: largest `eth_getLogs` range during backfill (default 2000).
    pub block_range: u64,
    /// `INDEXER_MAX_BACKOFF`: cap of the retry delay after RPC errors (default 60 s); retries never stop.
    pub max_backoff: Duration,
}

impl WalletKey {
    /// Builds the signer. This is the only way the secret leaves the value. For a mnemonic it runs the
    /// BIP-39 seed derivation (PBKDF2), so call it once at start-up.
    pub fn signer(&self) -> Result<PrivateKeySigner, ConfigError> {
        match self {
            WalletKey::PrivateKey(key) => {
                parse::private_key_signer(key.expose_secret()).map_err(|problem| ConfigError::Invalid {
                    var: vars::WALLET_PRIVATE_KEY,
                    origin: Origin::Env,
                    problem: problem.into(),
                })
            }
            WalletKey::Mnemonic { phrase, derivation_path } => {
                let invalid = |problem: MnemonicProblem| ConfigError::Invalid {
                    var: vars::WALLET_MNEMONIC,
                    origin: Origin::Env,
                    problem: problem.into(),
                };
                let phrase = parse::normalize_mnemonic(phrase.expose_secret());
                parse::check_mnemonic(&phrase).map_err(invalid)?;
                MnemonicBuilder::<English>::default()
                    .phrase(phrase)
                    .derivation_path(derivation_path)
                    .map_err(|e| ConfigError::Invalid {
                        var: vars::WALLET_DERIVATION_PATH,
                        origin: Origin::Env,
                        problem: Problem::DerivationPath {
                            value: derivation_path.clone(),
                            reason: e.to_string(),
                        },
                    })?
                    .build()
                    .map_err(|_| invalid(MnemonicProblem::Derivation))
            }
        }
    }
}

impl Config {
    /// The effective configuration as `(variable, value)` pairs in the order of [`VARIABLES`], the
    /// secrets replaced by [`REDACTED`] and URL passwords by `***`. Unset optional variables have an
    /// empty value. `ETH_NODE_MAX_RECONNECTS` is absent: it is checked but not kept.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let c = &self.chain;
        let urls = c.rpc_urls.iter().map(redact_url).collect::<Vec<_>>().join(",");
        let (private_key, mnemonic, path) = match &self.wallet.key {
            None => (String::new(), String::new(), String::new()),
            Some(WalletKey::PrivateKey(_)) => (REDACTED.to_owned(), String::new(), String::new()),
            Some(WalletKey::Mnemonic { derivation_path, .. }) => {
                (String::new(), REDACTED.to_owned(), derivation_path.clone())
            }
        };
        vec![
            (vars::ETH_NODE_ADDRESS, urls),
            (vars::ETH_NODE_CHAIN_ID, c.chain_id.to_string()),
            (vars::DIAMOND_CONTRACT_ADDRESS, c.diamond.to_string()),
            (vars::MOR_TOKEN_ADDRESS, c.mor_token.to_string()),
            (vars::MULTICALL3_ADDR, c.multicall3.to_string()),
            (vars::ETH_NODE_LEGACY_TX, c.legacy_tx.to_string()),
            (vars::ETH_NODE_USE_SUBSCRIPTIONS, c.use_subscriptions.to_string()),
            (vars::ETH_NODE_POLLING_INTERVAL, format_duration(c.polling_interval)),
            (vars::ETH_NODE_RPC_TIMEOUT, format_duration(c.rpc_timeout)),
            (vars::TX_RECEIPT_TIMEOUT, format_duration(c.tx_receipt_timeout)),
            (vars::TX_BUMP_INTERVAL, format_duration(c.tx_bump_interval)),
            (vars::TX_FEE_BUMP_PERCENT, c.tx_fee_bump_percent.to_string()),
            (vars::TX_MAX_BUMPS, c.tx_max_bumps.to_string()),
            (vars::WALLET_PRIVATE_KEY, private_key),
            (vars::WALLET_MNEMONIC, mnemonic),
            (vars::WALLET_DERIVATION_PATH, path),
            (vars::PROXY_STORAGE_PATH, self.store.storage_path.display().to_string()),
            (vars::WEB_ADDRESS, self.web.address.to_string()),
            (vars::AUTH_CONFIG_FILE_PATH, self.web.auth_config_file_path.display().to_string()),
            (vars::COOKIE_FILE_PATH, self.web.cookie_file_path.display().to_string()),
            (
                vars::COOKIE_CONTENT,
                self.web.cookie_content.as_ref().map_or(String::new(), |_| REDACTED.to_owned()),
            ),
            (vars::PROXY_ADDRESS, self.provider.proxy_address.to_string()),
            (vars::MODELS_CONFIG_PATH, self.provider.models_config_path.display().to_string()),
            (vars::MODELS_CONFIG_CONTENT, self.provider.models_config_content.clone().unwrap_or_default()),
            (vars::LLM_TIMEOUT, format_duration(self.provider.llm_timeout)),
            (vars::PROXY_MAX_PROMPT_BYTES, self.provider.max_prompt_bytes.to_string()),
            (vars::PROXY_TIMESTAMP_WINDOW, format_duration(self.provider.timestamp_window)),
            (vars::PROXY_MAX_CONNECTIONS, self.provider.max_connections.to_string()),
            (vars::PROXY_SESSION_CONCURRENCY, self.provider.session_concurrency.to_string()),
            (vars::PROXY_SESSION_QUEUE, self.provider.session_queue.to_string()),
            (vars::RATING_CONFIG_PATH, self.consumer.rating_config_path.display().to_string()),
            (
                vars::PROVIDER_ALLOW_LIST,
                self.consumer
                    .provider_allow_list
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (vars::CNODE_PNODE_TIMEOUT, format_duration(self.consumer.pnode_timeout)),
            (vars::SESSION_SWEEP_INTERVAL, format_duration(self.consumer.sweep_interval)),
            (vars::PROXY_STORE_CHAT_CONTEXT, self.consumer.store_chat_context.to_string()),
            (vars::LOG_JSON, self.log.json.to_string()),
            (vars::LOG_COLOR, self.log.color.to_string()),
            (vars::LOG_IS_PROD, self.log.json.to_string()),
            (
                vars::LOG_FOLDER_PATH,
                self.log.folder.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            (vars::LOG_LEVEL_APP, self.log.app.to_string().to_lowercase()),
            (vars::LOG_LEVEL_TCP, self.log.tcp.to_string().to_lowercase()),
            (vars::LOG_LEVEL_ETH_RPC, self.log.eth_rpc.to_string().to_lowercase()),
            (vars::LOG_LEVEL_STORAGE, self.log.storage.to_string().to_lowercase()),
            (vars::GATEWAY_ADDRESS, self.gateway.address.map_or_else(|| "off".to_owned(), |a| a.to_string())),
            (vars::GATEWAY_SESSION_DURATION, format_duration(self.gateway.session_duration)),
            (vars::GATEWAY_SESSION_RENEW_BEFORE, format_duration(self.gateway.renew_before)),
            (vars::GATEWAY_SESSION_IDLE_TIMEOUT, format_duration(self.gateway.idle_timeout)),
            (vars::GATEWAY_SESSION_CONCURRENCY, self.gateway.session_concurrency.to_string()),
            (vars::GATEWAY_DIRECT_PAYMENT, self.gateway.direct_payment.to_string()),
            (vars::GATEWAY_SWEEP_INTERVAL, format_duration(self.gateway.sweep_interval)),
            (vars::GATEWAY_CORS_ORIGINS, self.gateway.cors_origins.join(",")),
            (vars::INDEXER_START_BLOCK, self.indexer.start_block.to_string()),
            (vars::INDEXER_CONFIRMATIONS, self.indexer.confirmations.to_string()),
            (vars::INDEXER_BLOCK_RANGE, self.indexer.block_range.to_string()),
            (vars::INDEXER_MAX_BACKOFF, format_duration(self.indexer.max_backoff)),
        ]
    }
}

/// The effective configuration, one `NAME=value` line per variable, secrets redacted (see
/// [`Config::effective`]).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.effective() {
            writeln!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// The URL with its password, if any, replaced by `***`.
fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests;
