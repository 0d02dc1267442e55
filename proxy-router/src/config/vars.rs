//! The table of configuration variables: name, flag, default and one line of help each.
//!
//! The loader, the flag parser, the `check-config` help text and the consistency tests of
//! `.env.example` and `docs/configuration.md` all read this one table.

/// One configuration variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSpec {
    /// The environment variable (the reference's name where it has one).
    pub name: &'static str,
    /// The flag, without dashes (`eth-node-chain-id` is given as `-eth-node-chain-id` or
    /// `--eth-node-chain-id`).
    pub flag: &'static str,
    /// Other accepted flag names (the reference's own spelling where it differs).
    pub aliases: &'static [&'static str],
    /// A boolean: the flag alone means `true`.
    pub is_bool: bool,
    /// The value is a secret: never printed, never part of an error.
    pub secret: bool,
    /// The default, as written in the docs; empty when there is none.
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// `ETH_NODE_ADDRESS`.
pub const ETH_NODE_ADDRESS: &str = "ETH_NODE_ADDRESS";
/// `ETH_NODE_CHAIN_ID`.
pub const ETH_NODE_CHAIN_ID: &str = "ETH_NODE_CHAIN_ID";
/// `DIAMOND_CONTRACT_ADDRESS`.
pub const DIAMOND_CONTRACT_ADDRESS: &str = "DIAMOND_CONTRACT_ADDRESS";
/// `MOR_TOKEN_ADDRESS`.
pub const MOR_TOKEN_ADDRESS: &str = "MOR_TOKEN_ADDRESS";
/// `MULTICALL3_ADDR`.
pub const MULTICALL3_ADDR: &str = "MULTICALL3_ADDR";
/// `ETH_NODE_LEGACY_TX`.
pub const ETH_NODE_LEGACY_TX: &str = "ETH_NODE_LEGACY_TX";
/// `ETH_NODE_USE_SUBSCRIPTIONS`.
pub const ETH_NODE_USE_SUBSCRIPTIONS: &str = "ETH_NODE_USE_SUBSCRIPTIONS";
/// `ETH_NODE_POLLING_INTERVAL`.
pub const ETH_NODE_POLLING_INTERVAL: &str = "ETH_NODE_POLLING_INTERVAL";
/// `ETH_NODE_MAX_RECONNECTS` (validated, not used: the indexer retries forever).
pub const ETH_NODE_MAX_RECONNECTS: &str = "ETH_NODE_MAX_RECONNECTS";
/// `ETH_NODE_RPC_TIMEOUT`.
pub const ETH_NODE_RPC_TIMEOUT: &str = "ETH_NODE_RPC_TIMEOUT";
/// `TX_RECEIPT_TIMEOUT`.
pub const TX_RECEIPT_TIMEOUT: &str = "TX_RECEIPT_TIMEOUT";
/// `TX_BUMP_INTERVAL`.
pub const TX_BUMP_INTERVAL: &str = "TX_BUMP_INTERVAL";
/// `TX_FEE_BUMP_PERCENT`.
pub const TX_FEE_BUMP_PERCENT: &str = "TX_FEE_BUMP_PERCENT";
/// `TX_MAX_BUMPS`.
pub const TX_MAX_BUMPS: &str = "TX_MAX_BUMPS";
/// `WALLET_PRIVATE_KEY`.
pub const WALLET_PRIVATE_KEY: &str = "WALLET_PRIVATE_KEY";
/// `WALLET_MNEMONIC`.
pub const WALLET_MNEMONIC: &str = "WALLET_MNEMONIC";
/// `WALLET_DERIVATION_PATH`.
pub const WALLET_DERIVATION_PATH: &str = "WALLET_DERIVATION_PATH";
/// `PROXY_STORAGE_PATH`.
pub const PROXY_STORAGE_PATH: &str = "PROXY_STORAGE_PATH";
/// `WEB_ADDRESS`.
pub const WEB_ADDRESS: &str = "WEB_ADDRESS";
/// `AUTH_CONFIG_FILE_PATH`.
pub const AUTH_CONFIG_FILE_PATH: &str = "AUTH_CONFIG_FILE_PATH";
/// `COOKIE_FILE_PATH`.
pub const COOKIE_FILE_PATH: &str = "COOKIE_FILE_PATH";
/// `COOKIE_CONTENT`.
pub const COOKIE_CONTENT: &str = "COOKIE_CONTENT";
/// `PROXY_ADDRESS`.
pub const PROXY_ADDRESS: &str = "PROXY_ADDRESS";
/// `MODELS_CONFIG_PATH`.
pub const MODELS_CONFIG_PATH: &str = "MODELS_CONFIG_PATH";
/// `MODELS_CONFIG_CONTENT`.
pub const MODELS_CONFIG_CONTENT: &str = "MODELS_CONFIG_CONTENT";
/// `LLM_TIMEOUT`.
pub const LLM_TIMEOUT: &str = "LLM_TIMEOUT";
/// `PROXY_MAX_PROMPT_BYTES`.
pub const PROXY_MAX_PROMPT_BYTES: &str = "PROXY_MAX_PROMPT_BYTES";
/// `PROXY_TIMESTAMP_WINDOW`.
pub const PROXY_TIMESTAMP_WINDOW: &str = "PROXY_TIMESTAMP_WINDOW";
/// `PROXY_MAX_CONNECTIONS`.
pub const PROXY_MAX_CONNECTIONS: &str = "PROXY_MAX_CONNECTIONS";
/// `PROXY_SESSION_CONCURRENCY`.
pub const PROXY_SESSION_CONCURRENCY: &str = "PROXY_SESSION_CONCURRENCY";
/// `PROXY_SESSION_QUEUE`.
pub const PROXY_SESSION_QUEUE: &str = "PROXY_SESSION_QUEUE";
/// `RATING_CONFIG_PATH`.
pub const RATING_CONFIG_PATH: &str = "RATING_CONFIG_PATH";
/// `PROVIDER_ALLOW_LIST`.
pub const PROVIDER_ALLOW_LIST: &str = "PROVIDER_ALLOW_LIST";
/// `CNODE_PNODE_TIMEOUT`.
pub const CNODE_PNODE_TIMEOUT: &str = "CNODE_PNODE_TIMEOUT";
/// `SESSION_SWEEP_INTERVAL`.
pub const SESSION_SWEEP_INTERVAL: &str = "SESSION_SWEEP_INTERVAL";
/// `GATEWAY_ADDRESS`.
pub const GATEWAY_ADDRESS: &str = "GATEWAY_ADDRESS";
/// `GATEWAY_SESSION_DURATION`.
pub const GATEWAY_SESSION_DURATION: &str = "GATEWAY_SESSION_DURATION";
/// `GATEWAY_SESSION_RENEW_BEFORE`.
pub const GATEWAY_SESSION_RENEW_BEFORE: &str = "GATEWAY_SESSION_RENEW_BEFORE";
/// `GATEWAY_SESSION_IDLE_TIMEOUT`.
pub const GATEWAY_SESSION_IDLE_TIMEOUT: &str = "GATEWAY_SESSION_IDLE_TIMEOUT";
/// `GATEWAY_SESSION_CONCURRENCY`.
pub const GATEWAY_SESSION_CONCURRENCY: &str = "GATEWAY_SESSION_CONCURRENCY";
/// `GATEWAY_DIRECT_PAYMENT`.
pub const GATEWAY_DIRECT_PAYMENT: &str = "GATEWAY_DIRECT_PAYMENT";
/// `GATEWAY_SWEEP_INTERVAL`.
pub const GATEWAY_SWEEP_INTERVAL: &str = "GATEWAY_SWEEP_INTERVAL";
/// `GATEWAY_CORS_ORIGINS`.
pub const GATEWAY_CORS_ORIGINS: &str = "GATEWAY_CORS_ORIGINS";
/// `LOG_JSON`.
pub const LOG_JSON: &str = "LOG_JSON";
/// `LOG_COLOR`.
pub const LOG_COLOR: &str = "LOG_COLOR";
/// `LOG_IS_PROD`.
pub const LOG_IS_PROD: &str = "LOG_IS_PROD";
/// `LOG_FOLDER_PATH`.
pub const LOG_FOLDER_PATH: &str = "LOG_FOLDER_PATH";
/// `LOG_LEVEL_APP`.
pub const LOG_LEVEL_APP: &str = "LOG_LEVEL_APP";
/// `LOG_LEVEL_TCP`.
pub const LOG_LEVEL_TCP: &str = "LOG_LEVEL_TCP";
/// `LOG_LEVEL_ETH_RPC`.
pub const LOG_LEVEL_ETH_RPC: &str = "LOG_LEVEL_ETH_RPC";
/// `LOG_LEVEL_STORAGE`.
pub const LOG_LEVEL_STORAGE: &str = "LOG_LEVEL_STORAGE";
/// `PROXY_STORE_CHAT_CONTEXT`.
pub const PROXY_STORE_CHAT_CONTEXT: &str = "PROXY_STORE_CHAT_CONTEXT";
/// `INDEXER_START_BLOCK`.
pub const INDEXER_START_BLOCK: &str = "INDEXER_START_BLOCK";
/// `INDEXER_CONFIRMATIONS`.
pub const INDEXER_CONFIRMATIONS: &str = "INDEXER_CONFIRMATIONS";
/// `INDEXER_BLOCK_RANGE`.
pub const INDEXER_BLOCK_RANGE: &str = "INDEXER_BLOCK_RANGE";
/// `INDEXER_MAX_BACKOFF`.
pub const INDEXER_MAX_BACKOFF: &str = "INDEXER_MAX_BACKOFF";

const fn var(name: &'static str, flag: &'static str, default: &'static str, help: &'static str) -> VarSpec {
    VarSpec { name, flag, aliases: &[], is_bool: false, secret: false, default, help }
}

const fn boolean(name: &'static str, flag: &'static str, help: &'static str) -> VarSpec {
    VarSpec { name, flag, aliases: &[], is_bool: true, secret: false, default: "false", help }
}

const fn secret(name: &'static str, flag: &'static str, help: &'static str) -> VarSpec {
    VarSpec { name, flag, aliases: &[], is_bool: false, secret: true, default: "", help }
}

/// Every variable this build reads, in the order they are validated.
pub const VARIABLES: &[VarSpec] = &[
    var(
        ETH_NODE_ADDRESS,
        "eth-node-address",
        "",
        "Required. JSON-RPC URLs (http, https, ws, wss), comma-separated, tried in order with failover.",
    ),
    var(
        ETH_NODE_CHAIN_ID,
        "eth-node-chain-id",
        "",
        "Required. Chain id; start-up refuses an RPC node that reports another one.",
    ),
    VarSpec {
        aliases: &["diamond-address"],
        ..var(DIAMOND_CONTRACT_ADDRESS, "diamond-contract-address", "", "Required. The marketplace diamond.")
    },
    var(MOR_TOKEN_ADDRESS, "mor-token-address", "", "Required. The MOR ERC-20 token."),
    var(
        MULTICALL3_ADDR,
        "multicall3-addr",
        "0xcA11bde05977b3631167028862bE2a173976CA11",
        "Multicall3 contract used for batched reads.",
    ),
    boolean(
        ETH_NODE_LEGACY_TX,
        "eth-node-legacy-tx",
        "Send legacy gasPrice transactions instead of EIP-1559.",
    ),
    boolean(
        ETH_NODE_USE_SUBSCRIPTIONS,
        "eth-node-use-subscriptions",
        "Follow new blocks over a WebSocket subscription instead of polling (needs a ws(s) URL).",
    ),
    var(
        ETH_NODE_POLLING_INTERVAL,
        "eth-node-polling-interval",
        "10s",
        "Head polling interval, also the base retry delay after RPC errors.",
    ),
    var(
        ETH_NODE_MAX_RECONNECTS,
        "eth-node-max-reconnects",
        "30",
        "Accepted for compatibility and checked (an integer >= -1), but unused: the indexer retries forever.",
    ),
    var(ETH_NODE_RPC_TIMEOUT, "eth-node-rpc-timeout", "30s", "Timeout of one JSON-RPC request."),
    var(
        TX_RECEIPT_TIMEOUT,
        "tx-receipt-timeout",
        "3m",
        "Longest wait for a transaction's receipt, fee bumps included.",
    ),
    var(
        TX_BUMP_INTERVAL,
        "tx-bump-interval",
        "20s",
        "A transaction without a receipt after this long is resent with higher fees.",
    ),
    var(
        TX_FEE_BUMP_PERCENT,
        "tx-fee-bump-percent",
        "15",
        "Fee increase of each resend, in percent (10 to 1000).",
    ),
    var(TX_MAX_BUMPS, "tx-max-bumps", "5", "Resends before giving up on a transaction."),
    secret(
        WALLET_PRIVATE_KEY,
        "wallet-private-key",
        "The node's key: 32 bytes hex, with or without 0x. Unset with WALLET_MNEMONIC unset: read-only node.",
    ),
    secret(
        WALLET_MNEMONIC,
        "wallet-mnemonic",
        "The node's key as a BIP-39 English mnemonic (12 to 24 words), instead of WALLET_PRIVATE_KEY.",
    ),
    var(
        WALLET_DERIVATION_PATH,
        "wallet-derivation-path",
        "m/44'/60'/0'/0/0",
        "BIP-32 derivation path of the key in WALLET_MNEMONIC.",
    ),
    var(
        PROXY_STORAGE_PATH,
        "proxy-storage-path",
        "./data/",
        "Directory of the node's state; the database is <path>/proxy-router.sqlite.",
    ),
    var(WEB_ADDRESS, "web-address", "0.0.0.0:8082", "HTTP API listen address (IP:port)."),
    var(
        AUTH_CONFIG_FILE_PATH,
        "auth-config-file-path",
        "./proxy.conf",
        "API users and their permissions (rpcauth, rpcwhitelist lines); created with the admin on first start.",
    ),
    var(
        COOKIE_FILE_PATH,
        "cookie-file-path",
        "./.cookie",
        "The admin's credentials (admin:<password>, mode 0600); a random password is written on first start.",
    ),
    secret(
        COOKIE_CONTENT,
        "cookie-content",
        "admin:<password> to write into a missing cookie file instead of a random password.",
    ),
    var(PROXY_ADDRESS, "proxy-address", "0.0.0.0:3333", "Provider MOR-RPC TCP listen address (IP:port)."),
    var(
        MODELS_CONFIG_PATH,
        "models-config-path",
        "./models-config.json",
        "Models this node serves as a provider (V2 or legacy format); a missing file means none.",
    ),
    var(
        MODELS_CONFIG_CONTENT,
        "models-config-content",
        "",
        "models-config JSON used instead of the file at MODELS_CONFIG_PATH.",
    ),
    var(LLM_TIMEOUT, "llm-timeout", "240s", "Provider to model backend: longest wait for a whole answer."),
    var(
        PROXY_MAX_PROMPT_BYTES,
        "proxy-max-prompt-bytes",
        "4194304",
        "Largest prompt (request body or MOR-RPC message) accepted, in bytes.",
    ),
    var(
        PROXY_TIMESTAMP_WINDOW,
        "proxy-timestamp-window",
        "5m",
        "Provider: signed MOR-RPC requests must be stamped within this much of the local clock (replay defence).",
    ),
    var(
        PROXY_MAX_CONNECTIONS,
        "proxy-max-connections",
        "512",
        "Provider: MOR-RPC connections served at once; more are answered \"provider busy\".",
    ),
    var(
        PROXY_SESSION_CONCURRENCY,
        "proxy-session-concurrency",
        "1",
        "Provider: prompts of one session served at once (the reference: one).",
    ),
    var(
        PROXY_SESSION_QUEUE,
        "proxy-session-queue",
        "8",
        "Provider: prompts of one session waiting for their turn; more are refused at once.",
    ),
    var(
        RATING_CONFIG_PATH,
        "rating-config-path",
        "./rating-config.json",
        "Consumer: provider rating weights and allowlist; a missing file means the built-in defaults.",
    ),
    var(
        PROVIDER_ALLOW_LIST,
        "provider-allow-list",
        "",
        "Consumer: comma-separated provider addresses added to the rating allowlist (empty: every provider).",
    ),
    var(
        CNODE_PNODE_TIMEOUT,
        "cnode-pnode-timeout",
        "90s",
        "Consumer: longest wait for the provider's first response frame.",
    ),
    var(
        SESSION_SWEEP_INTERVAL,
        "session-sweep-interval",
        "1m",
        "Consumer: how often expired sessions of this wallet are closed.",
    ),
    VarSpec {
        default: "true",
        ..boolean(
            PROXY_STORE_CHAT_CONTEXT,
            "proxy-store-chat-context",
            "Consumer: keep the chat history of /v1/chat/completions requests that name a chat_id.",
        )
    },
    boolean(LOG_JSON, "log-json", "Logs: one JSON object per line instead of text."),
    boolean(LOG_COLOR, "log-color", "Logs: ANSI colours in text lines."),
    boolean(LOG_IS_PROD, "log-is-prod", "Logs: production format (JSON, no colours), as LOG_JSON=true."),
    var(
        LOG_FOLDER_PATH,
        "log-folder-path",
        "",
        "Logs: also written to <folder>/<start time>/main.log (empty: standard output only).",
    ),
    var(LOG_LEVEL_APP, "log-level-app", "info", "Logs: level of the node's own lines (debug, info, warn, error)."),
    var(LOG_LEVEL_TCP, "log-level-tcp", "info", "Logs: level of MOR-RPC connections (provider server, consumer client)."),
    var(LOG_LEVEL_ETH_RPC, "log-level-eth-rpc", "info", "Logs: level of chain RPC and transactions."),
    var(LOG_LEVEL_STORAGE, "log-level-storage", "info", "Logs: level of the SQLite store."),
    var(
        GATEWAY_ADDRESS,
        "gateway-address",
        "127.0.0.1:8083",
        "OpenAI gateway: where it listens (API keys only, no admin routes); empty or `off` turns it off.",
    ),
    var(
        GATEWAY_SESSION_DURATION,
        "gateway-session-duration",
        "1h",
        "OpenAI gateway: how long the sessions it opens last (at least 5m, the contract's minimum).",
    ),
    var(
        GATEWAY_SESSION_RENEW_BEFORE,
        "gateway-session-renew-before",
        "2m",
        "OpenAI gateway: a session with less time left is replaced by a new one before it is used.",
    ),
    var(
        GATEWAY_SESSION_IDLE_TIMEOUT,
        "gateway-session-idle-timeout",
        "15m",
        "OpenAI gateway: a session unused this long is closed, so its stake comes back.",
    ),
    var(
        GATEWAY_SESSION_CONCURRENCY,
        "gateway-session-concurrency",
        "1",
        "OpenAI gateway: prompts sent on one session at once; more wait their turn (providers serve one by default).",
    ),
    boolean(
        GATEWAY_DIRECT_PAYMENT,
        "gateway-direct-payment",
        "OpenAI gateway: pay providers directly instead of staking.",
    ),
    var(
        GATEWAY_SWEEP_INTERVAL,
        "gateway-sweep-interval",
        "15s",
        "OpenAI gateway: how often idle, expired and failed sessions are closed.",
    ),
    var(
        GATEWAY_CORS_ORIGINS,
        "gateway-cors-origins",
        "*",
        "OpenAI gateway: comma-separated origins browsers may call it from (`*`: any).",
    ),
    var(
        INDEXER_START_BLOCK,
        "indexer-start-block",
        "0",
        "First block indexed on an empty database (use the diamond's deployment block on a public chain).",
    ),
    var(INDEXER_CONFIRMATIONS, "indexer-confirmations", "2", "Only blocks at least this deep are indexed."),
    var(
        INDEXER_BLOCK_RANGE,
        "indexer-block-range",
        "2000",
        "Largest eth_getLogs block range during backfill.",
    ),
    var(
        INDEXER_MAX_BACKOFF,
        "indexer-max-backoff",
        "60s",
        "Cap of the retry delay after RPC errors; retries never stop.",
    ),
];

/// The variable a flag sets, by its name without dashes (`eth-node-chain-id` or an alias).
pub fn by_flag(flag: &str) -> Option<&'static VarSpec> {
    VARIABLES.iter().find(|spec| spec.flag == flag || spec.aliases.contains(&flag))
}

/// The spec of a variable by its name.
pub fn by_name(name: &str) -> Option<&'static VarSpec> {
    VARIABLES.iter().find(|spec| spec.name == name)
}

/// Help text listing every flag, its variable, default and meaning (for `--help` of commands that
/// take configuration flags).
pub fn flags_help() -> String {
    let mut out = String::from(
        "Configuration flags (each overrides its environment variable, which overrides .env; \
         -name and --name, -name=value and -name value are all accepted):\n",
    );
    for spec in VARIABLES {
        let value = if spec.is_bool { "[=BOOL]" } else { " <VALUE>" };
        out.push_str(&format!("  --{}{value}  ({})\n", spec.flag, spec.name));
        out.push_str(&format!("      {}", spec.help));
        if !spec.default.is_empty() {
            out.push_str(&format!(" Default: {}.", spec.default));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags_are_unique_and_derived_from_each_other() {
        for (i, spec) in VARIABLES.iter().enumerate() {
            assert_eq!(spec.flag, spec.name.to_lowercase().replace('_', "-"), "{}", spec.name);
            for other in &VARIABLES[i + 1..] {
                assert_ne!(spec.name, other.name);
                assert_ne!(spec.flag, other.flag);
                assert!(!other.aliases.contains(&spec.flag));
            }
            assert_eq!(by_name(spec.name), Some(spec));
            assert_eq!(by_flag(spec.flag), Some(spec));
        }
        assert_eq!(by_flag("diamond-address").map(|s| s.name), Some(DIAMOND_CONTRACT_ADDRESS));
        assert_eq!(by_flag("no-such-flag"), None);
    }

    #[test]
    fn only_the_wallet_and_cookie_secrets_are_secret() {
        let secrets: Vec<_> = VARIABLES.iter().filter(|s| s.secret).map(|s| s.name).collect();
        assert_eq!(secrets, [WALLET_PRIVATE_KEY, WALLET_MNEMONIC, COOKIE_CONTENT]);
    }

    #[test]
    fn help_lists_every_flag_and_variable() {
        let help = flags_help();
        for spec in VARIABLES {
            assert!(help.contains(&format!("--{}", spec.flag)), "{}", spec.flag);
            assert!(help.contains(spec.name), "{}", spec.name);
        }
    }

    #[test]
    fn env_example_documents_every_variable() {
        let example = include_str!("../../../.env.example");
        for spec in VARIABLES {
            assert!(
                example.lines().any(|line| {
                    let line = line.trim_start_matches('#').trim_start();
                    line.starts_with(&format!("{}=", spec.name))
                }),
                ".env.example lacks {}",
                spec.name
            );
        }
    }

    #[test]
    fn configuration_doc_documents_every_variable_and_flag() {
        let doc = include_str!("../../../docs/configuration.md");
        for spec in VARIABLES {
            assert!(doc.contains(&format!("`{}`", spec.name)), "docs/configuration.md lacks {}", spec.name);
            assert!(
                doc.contains(&format!("`--{}`", spec.flag)),
                "docs/configuration.md lacks --{}",
                spec.flag
            );
        }
    }
}
