//! [`Config::load`]: flags over environment, every variable validated, first problem reported.
//!
//! The function is pure: it reads only its arguments, so tests give it maps and argument lists. The
//! variables are checked in the order of [`super::vars::VARIABLES`], then the rules that tie several
//! together (one wallet secret at most, a WebSocket URL for subscriptions).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::args::{parse_flags, FlagValue};
use super::error::{ConfigError, Origin};
use super::parse::Raw;
use super::vars::{self, *};
use super::{
    ChainConfig, Config, ConsumerConfig, GatewayConfig, IndexerConfig, LogConfig, ProviderConfig,
    StoreConfig, WalletConfig, WalletKey, WebConfig, DEFAULT_AUTH_CONFIG_FILE_PATH, DEFAULT_BLOCK_RANGE,
    DEFAULT_CONFIRMATIONS, DEFAULT_COOKIE_FILE_PATH, DEFAULT_DERIVATION_PATH, DEFAULT_GATEWAY_ADDRESS,
    DEFAULT_GATEWAY_IDLE_TIMEOUT, DEFAULT_GATEWAY_RENEW_BEFORE, DEFAULT_GATEWAY_SESSION_DURATION,
    DEFAULT_GATEWAY_SWEEP_INTERVAL, DEFAULT_LLM_TIMEOUT, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_PROMPT_BYTES,
    DEFAULT_MODELS_CONFIG_PATH, DEFAULT_MULTICALL3, DEFAULT_PNODE_TIMEOUT, DEFAULT_POLLING_INTERVAL,
    DEFAULT_PROXY_ADDRESS, DEFAULT_PROXY_MAX_CONNECTIONS, DEFAULT_RATING_CONFIG_PATH, DEFAULT_RPC_TIMEOUT,
    DEFAULT_SESSION_CONCURRENCY, DEFAULT_SESSION_QUEUE, DEFAULT_STORAGE_PATH, DEFAULT_SWEEP_INTERVAL,
    DEFAULT_TIMESTAMP_WINDOW, DEFAULT_TX_BUMP_INTERVAL, DEFAULT_TX_FEE_BUMP_PERCENT, DEFAULT_TX_MAX_BUMPS,
    DEFAULT_TX_RECEIPT_TIMEOUT, DEFAULT_WEB_ADDRESS,
};

/// The values of every variable: a flag wins over the environment.
struct Sources<'a> {
    env: &'a HashMap<String, String>,
    flags: HashMap<&'static str, FlagValue>,
}

impl<'a> Sources<'a> {
    /// The variable's trimmed value, `None` when unset or empty. A flag given with an empty value
    /// unsets the variable even if the environment sets it.
    fn get(&self, var: &'static str) -> Option<Raw<'_>> {
        let (value, origin) = match self.flags.get(var) {
            Some(flag) => (flag.value.as_str(), Origin::Flag(flag.flag.clone())),
            None => (self.env.get(var)?.as_str(), Origin::Env),
        };
        let value = value.trim();
        (!value.is_empty()).then_some(Raw { var, value, origin })
    }

    /// Whether the variable is given with an empty value (or `off`): a listener turned off.
    fn turned_off(&self, var: &'static str) -> bool {
        let value = match self.flags.get(var) {
            Some(flag) => flag.value.as_str(),
            None => match self.env.get(var) {
                Some(value) => value.as_str(),
                None => return false,
            },
        };
        let value = value.trim();
        value.is_empty() || value.eq_ignore_ascii_case("off")
    }

    fn required(&self, var: &'static str) -> Result<Raw<'_>, ConfigError> {
        self.get(var).ok_or_else(|| missing(var))
    }
}

fn missing(var: &'static str) -> ConfigError {
    ConfigError::Missing { var, flag: vars::by_name(var).map_or("", |spec| spec.flag) }
}

impl Config {
    /// Builds the configuration from command-line flags (`args`, without the program name or
    /// subcommand: see [the module docs](super#flags) for their syntax) over the environment `env` (see
    /// [`super::env_with_dotenv`]). Empty values count as unset; unknown environment variables are
    /// ignored; unknown flags are errors. Returns the first problem found.
    pub fn load<I, S>(args: I, env: &HashMap<String, String>) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let src = Sources { env, flags: parse_flags(args)? };

        let rpc_urls = src.required(ETH_NODE_ADDRESS)?.rpc_urls()?;
        if rpc_urls.is_empty() {
            return Err(missing(ETH_NODE_ADDRESS));
        }
        let chain_id = src.required(ETH_NODE_CHAIN_ID)?.unsigned(1, u64::MAX, "a positive integer")?;
        let diamond = src.required(DIAMOND_CONTRACT_ADDRESS)?.contract_address()?;
        let mor_token = src.required(MOR_TOKEN_ADDRESS)?.contract_address()?;
        let multicall3 = src.get(MULTICALL3_ADDR).map_or(Ok(DEFAULT_MULTICALL3), |v| v.contract_address())?;
        let legacy_tx = src.get(ETH_NODE_LEGACY_TX).map_or(Ok(false), |v| v.boolean())?;
        let use_subscriptions = src.get(ETH_NODE_USE_SUBSCRIPTIONS).map_or(Ok(false), |v| v.boolean())?;
        let duration = |var, default| src.get(var).map_or(Ok(default), |v| v.nonzero_duration());
        // A count of connections or prompts: up to a million.
        let count = |var, default: usize, min: u64| {
            let expected =
                if min == 0 { "an integer from 0 to 1000000" } else { "an integer from 1 to 1000000" };
            src.get(var).map_or(Ok(default), |v| v.unsigned(min, 1_000_000, expected).map(|n| n as usize))
        };
        let polling_interval = duration(ETH_NODE_POLLING_INTERVAL, DEFAULT_POLLING_INTERVAL)?;
        if let Some(v) = src.get(ETH_NODE_MAX_RECONNECTS) {
            v.signed_at_least(-1, "an integer >= -1")?;
        }
        let rpc_timeout = duration(ETH_NODE_RPC_TIMEOUT, DEFAULT_RPC_TIMEOUT)?;
        let tx_receipt_timeout = duration(TX_RECEIPT_TIMEOUT, DEFAULT_TX_RECEIPT_TIMEOUT)?;
        let tx_bump_interval = duration(TX_BUMP_INTERVAL, DEFAULT_TX_BUMP_INTERVAL)?;
        let tx_fee_bump_percent =
            src.get(TX_FEE_BUMP_PERCENT).map_or(Ok(DEFAULT_TX_FEE_BUMP_PERCENT), |v| {
                v.unsigned(10, 1000, "an integer from 10 to 1000 (nodes refuse a replacement below +10%)")
                    .map(|n| n as u32)
            })?;
        let tx_max_bumps = src.get(TX_MAX_BUMPS).map_or(Ok(DEFAULT_TX_MAX_BUMPS), |v| {
            v.unsigned(0, 1000, "an integer from 0 to 1000").map(|n| n as u32)
        })?;

        let key = wallet_key(&src)?;

        let storage_path =
            src.get(PROXY_STORAGE_PATH).map_or(PathBuf::from(DEFAULT_STORAGE_PATH), |v| v.value.into());

        let web = WebConfig {
            address: src.get(WEB_ADDRESS).map_or(Ok(DEFAULT_WEB_ADDRESS), |v| v.socket_addr())?,
            auth_config_file_path: src
                .get(AUTH_CONFIG_FILE_PATH)
                .map_or(PathBuf::from(DEFAULT_AUTH_CONFIG_FILE_PATH), |v| v.value.into()),
            cookie_file_path: src
                .get(COOKIE_FILE_PATH)
                .map_or(PathBuf::from(DEFAULT_COOKIE_FILE_PATH), |v| v.value.into()),
            cookie_content: src.get(COOKIE_CONTENT).map(|v| SecretString::from(v.value.to_owned())),
        };

        let provider = ProviderConfig {
            proxy_address: src.get(PROXY_ADDRESS).map_or(Ok(DEFAULT_PROXY_ADDRESS), |v| v.socket_addr())?,
            models_config_path: src
                .get(MODELS_CONFIG_PATH)
                .map_or(PathBuf::from(DEFAULT_MODELS_CONFIG_PATH), |v| v.value.into()),
            models_config_content: src.get(MODELS_CONFIG_CONTENT).map(|v| v.value.to_owned()),
            llm_timeout: duration(LLM_TIMEOUT, DEFAULT_LLM_TIMEOUT)?,
            max_prompt_bytes: src.get(PROXY_MAX_PROMPT_BYTES).map_or(Ok(DEFAULT_MAX_PROMPT_BYTES), |v| {
                v.unsigned(1024, 64 * 1024 * 1024, "an integer from 1024 to 67108864 (64 MiB)")
                    .map(|n| n as usize)
            })?,
            timestamp_window: duration(PROXY_TIMESTAMP_WINDOW, DEFAULT_TIMESTAMP_WINDOW)?,
            max_connections: count(PROXY_MAX_CONNECTIONS, DEFAULT_PROXY_MAX_CONNECTIONS, 1)?,
            session_concurrency: count(PROXY_SESSION_CONCURRENCY, DEFAULT_SESSION_CONCURRENCY, 1)?,
            session_queue: count(PROXY_SESSION_QUEUE, DEFAULT_SESSION_QUEUE, 0)?,
        };
        let consumer = ConsumerConfig {
            rating_config_path: src
                .get(RATING_CONFIG_PATH)
                .map_or(PathBuf::from(DEFAULT_RATING_CONFIG_PATH), |v| v.value.into()),
            provider_allow_list: src.get(PROVIDER_ALLOW_LIST).map_or(Ok(Vec::new()), |v| v.address_list())?,
            pnode_timeout: duration(CNODE_PNODE_TIMEOUT, DEFAULT_PNODE_TIMEOUT)?,
            sweep_interval: duration(SESSION_SWEEP_INTERVAL, DEFAULT_SWEEP_INTERVAL)?,
            store_chat_context: src.get(PROXY_STORE_CHAT_CONTEXT).map_or(Ok(true), |v| v.boolean())?,
        };

        let gateway = GatewayConfig {
            address: if src.turned_off(GATEWAY_ADDRESS) {
                None
            } else {
                Some(src.get(GATEWAY_ADDRESS).map_or(Ok(DEFAULT_GATEWAY_ADDRESS), |v| v.socket_addr())?)
            },
            session_duration: src.get(GATEWAY_SESSION_DURATION).map_or(
                Ok(DEFAULT_GATEWAY_SESSION_DURATION),
                |v| {
                    v.duration_at_least(
                        Duration::from_secs(300),
                        "a duration of at least 5m (the contract's shortest session)",
                    )
                },
            )?,
            renew_before: duration(GATEWAY_SESSION_RENEW_BEFORE, DEFAULT_GATEWAY_RENEW_BEFORE)?,
            idle_timeout: duration(GATEWAY_SESSION_IDLE_TIMEOUT, DEFAULT_GATEWAY_IDLE_TIMEOUT)?,
            session_concurrency: count(GATEWAY_SESSION_CONCURRENCY, 1, 1)?,
            direct_payment: src.get(GATEWAY_DIRECT_PAYMENT).map_or(Ok(false), |v| v.boolean())?,
            sweep_interval: duration(GATEWAY_SWEEP_INTERVAL, DEFAULT_GATEWAY_SWEEP_INTERVAL)?,
            cors_origins: src.get(GATEWAY_CORS_ORIGINS).map_or_else(
                || vec!["*".to_owned()],
                |v| v.value.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect(),
            ),
        };
        if gateway.renew_before >= gateway.session_duration {
            // The default (2 min) is always shorter than the shortest session: the variable is set.
            if let Some(v) = src.get(GATEWAY_SESSION_RENEW_BEFORE) {
                return Err(v.out_of_range("a duration shorter than GATEWAY_SESSION_DURATION"));
            }
        }

        let level = |var| {
            src.get(var).map_or(Ok(tracing::Level::INFO), |v| {
                match v.value.trim().to_ascii_lowercase().as_str() {
                    "debug" => Ok(tracing::Level::DEBUG),
                    "info" => Ok(tracing::Level::INFO),
                    "warn" => Ok(tracing::Level::WARN),
                    "error" | "dpanic" | "panic" | "fatal" => Ok(tracing::Level::ERROR),
                    _ => Err(v.out_of_range(
                        "a level: debug, info, warn or error (dpanic, panic, fatal mean error)",
                    )),
                }
            })
        };
        let flag = |var| src.get(var).map_or(Ok(false), |v| v.boolean());
        let log = LogConfig {
            json: flag(LOG_JSON)? || flag(LOG_IS_PROD)?,
            color: flag(LOG_COLOR)?,
            folder: src
                .get(LOG_FOLDER_PATH)
                .map(|v| v.value.trim())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            app: level(LOG_LEVEL_APP)?,
            tcp: level(LOG_LEVEL_TCP)?,
            eth_rpc: level(LOG_LEVEL_ETH_RPC)?,
            storage: level(LOG_LEVEL_STORAGE)?,
        };

        let block = |var, default, min, expected| {
            src.get(var).map_or(Ok(default), |v| v.unsigned(min, u64::MAX, expected))
        };
        let start_block = block(INDEXER_START_BLOCK, 0, 0, "a block number (an integer >= 0)")?;
        let confirmations = block(INDEXER_CONFIRMATIONS, DEFAULT_CONFIRMATIONS, 0, "an integer >= 0")?;
        let block_range = block(INDEXER_BLOCK_RANGE, DEFAULT_BLOCK_RANGE, 1, "a positive integer")?;
        let max_backoff = duration(INDEXER_MAX_BACKOFF, DEFAULT_MAX_BACKOFF)?;

        if use_subscriptions && !rpc_urls.iter().any(|url| matches!(url.scheme(), "ws" | "wss")) {
            return Err(ConfigError::SubscriptionsNeedWebSocket);
        }

        Ok(Config {
            chain: ChainConfig {
                rpc_urls,
                chain_id,
                diamond,
                mor_token,
                multicall3,
                legacy_tx,
                use_subscriptions,
                polling_interval,
                rpc_timeout,
                tx_receipt_timeout,
                tx_bump_interval,
                tx_fee_bump_percent,
                tx_max_bumps,
            },
            wallet: WalletConfig { key },
            store: StoreConfig { storage_path },
            indexer: IndexerConfig { start_block, confirmations, block_range, max_backoff },
            web,
            provider,
            consumer,
            gateway,
            log,
        })
    }
}

/// `WALLET_PRIVATE_KEY`, or `WALLET_MNEMONIC` with `WALLET_DERIVATION_PATH`, or neither. The path is
/// checked even when no mnemonic uses it.
fn wallet_key(src: &Sources<'_>) -> Result<Option<WalletKey>, ConfigError> {
    let private_key = src.get(WALLET_PRIVATE_KEY);
    let mnemonic = src.get(WALLET_MNEMONIC);
    if private_key.is_some() && mnemonic.is_some() {
        return Err(ConfigError::Conflict { first: WALLET_PRIVATE_KEY, second: WALLET_MNEMONIC });
    }
    let private_key = private_key.map(|v| v.private_key()).transpose()?;
    let phrase = mnemonic.map(|v| v.mnemonic()).transpose()?;
    let derivation_path = src
        .get(WALLET_DERIVATION_PATH)
        .map_or(Ok(DEFAULT_DERIVATION_PATH.to_owned()), |v| v.derivation_path())?;
    Ok(match (private_key, phrase) {
        (Some(key), _) => Some(WalletKey::PrivateKey(key)),
        (None, Some(phrase)) => Some(WalletKey::Mnemonic { phrase, derivation_path }),
        (None, None) => None,
    })
}
