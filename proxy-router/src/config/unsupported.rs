//! The reference's variables this node does not act on (yet), each with what it does instead. None is
//! silently ignored: [`set_in`] names every one that is set, and the node warns at start-up (and
//! `check-config` prints the same lines). `ETH_NODE_MAX_RECONNECTS` is validated by the loader and
//! listed here too, since its value changes nothing.

use std::collections::HashMap;

/// A variable (or, ending in `*`, a family) and what this node does instead of acting on it.
pub type Unsupported = (&'static str, &'static str);

/// Every reference variable that is accepted without an effect.
pub const UNSUPPORTED: &[Unsupported] = &[
    ("ETH_NODE_MAX_RECONNECTS", "the indexer and the RPC client retry forever, with backoff capped by INDEXER_MAX_BACKOFF"),
    ("ENVIRONMENT", "no effect: GET /auth/cookie/path answers the cookie file's absolute path in every environment"),
    ("WEB_PUBLIC_URL", "no effect: Swagger UI calls the host it was loaded from"),
    ("BLOCKSCOUT_API_URL", "not used yet: GET /blockchain/transactions is not served (501)"),
    ("EXPLORER_MAX_RETRIES", "not used: no block explorer is called"),
    ("EXPLORER_RETRY_DELAY", "not used: no block explorer is called"),
    ("AGENTS_CONFIG_PATH", "not used yet: agents (MCP tools) are not served"),
    ("AGENT_CONFIG_PATH", "not used yet: agents (MCP tools) are not served"),
    ("AGENT_CONFIG_CONTENT", "not used yet: agents (MCP tools) are not served"),
    ("CNODE_PNODE_MAX_RETRIES", "not used: a provider that fails before the first byte is replaced by the next bid (failover, the gateway's retries) instead of retried"),
    ("CNODE_PNODE_AUDIO_MAX_RETRIES", "not used yet: the audio routes are not served"),
    ("PROXY_FORWARD_CHAT_CONTEXT", "no effect, as in the reference (its forwarding is a no-op): prompts are sent as the client sent them"),
    ("RATING_CONFIG_CONTENT", "not used yet: the rating is read from RATING_CONFIG_PATH"),
    ("SESSION_HEALTH_POLICY", "not used yet: sessions open on any bid the rating ranks (the reference's permissive policy)"),
    ("MODEL_HEALTH_CHECK_INTERVAL", "not used yet: the provider does not probe its models"),
    ("MODEL_HEALTH_CHECK_PROBE_DELAY", "not used yet: the provider does not probe its models"),
    ("MODEL_HEALTH_MAX_CONSECUTIVE_ERRORS", "not used yet: the provider does not probe its models"),
    ("APP_RESET_KEYCHAIN", "no effect: this node keeps no keychain; remove the wallet with DELETE /wallet"),
    ("IPFS_DISABLED", "no effect: IPFS is not served (/ipfs/* answers 501)"),
    ("IPFS_MULTADDR", "no effect: IPFS is not served (/ipfs/* answers 501)"),
    ("DOCKER_*", "no effect: Docker management is not served (/docker/* answers 501)"),
    ("TEE_*", "not used yet: no TEE attestation; models are reported as not attested"),
    ("ARTIFACT_REGISTRY_URL", "not used yet: no TEE attestation"),
    ("ARTIFACT_REGISTRY_REFRESH_INTERVAL", "not used yet: no TEE attestation"),
    ("SEV_ARTIFACT_REGISTRY_URL", "not used yet: no TEE attestation"),
    ("SYS_*", "no effect: the node changes no sysctl or rlimit; set them in the service manager"),
];

/// Whether `name` is `pattern` (or in its `PREFIX_*` family).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// What [`UNSUPPORTED`] says of `name`, if anything.
pub fn lookup(name: &str) -> Option<&'static str> {
    UNSUPPORTED.iter().find(|(pattern, _)| matches(pattern, name)).map(|(_, instead)| *instead)
}

/// The unsupported variables set (non-empty) in `env`, sorted by name, with what the node does instead.
pub fn set_in(env: &HashMap<String, String>) -> Vec<(String, &'static str)> {
    let mut found: Vec<(String, &'static str)> = env
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .filter_map(|(name, _)| lookup(name).map(|instead| (name.clone(), instead)))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::VARIABLES;

    /// The variable names of the reference's `.env.example` and of its documented environment
    /// (go-proxy-router.md §2, v7.md §2), as facts: every one is read by this node or listed above.
    const REFERENCE: &[&str] = &[
        "AGENTS_CONFIG_PATH",
        "AGENT_CONFIG_CONTENT",
        "AGENT_CONFIG_PATH",
        "APP_RESET_KEYCHAIN",
        "ARTIFACT_REGISTRY_REFRESH_INTERVAL",
        "ARTIFACT_REGISTRY_URL",
        "AUTH_CONFIG_FILE_PATH",
        "BLOCKSCOUT_API_URL",
        "CNODE_PNODE_AUDIO_MAX_RETRIES",
        "CNODE_PNODE_MAX_RETRIES",
        "CNODE_PNODE_TIMEOUT",
        "COOKIE_CONTENT",
        "COOKIE_FILE_PATH",
        "DIAMOND_CONTRACT_ADDRESS",
        "DOCKER_API_VERSION",
        "DOCKER_CERT_PATH",
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "ENVIRONMENT",
        "ETH_NODE_ADDRESS",
        "ETH_NODE_CHAIN_ID",
        "ETH_NODE_LEGACY_TX",
        "ETH_NODE_MAX_RECONNECTS",
        "ETH_NODE_POLLING_INTERVAL",
        "ETH_NODE_USE_SUBSCRIPTIONS",
        "EXPLORER_MAX_RETRIES",
        "EXPLORER_RETRY_DELAY",
        "IPFS_DISABLED",
        "IPFS_MULTADDR",
        "LLM_TIMEOUT",
        "LOG_COLOR",
        "LOG_FOLDER_PATH",
        "LOG_IS_PROD",
        "LOG_JSON",
        "LOG_LEVEL_APP",
        "LOG_LEVEL_ETH_RPC",
        "LOG_LEVEL_STORAGE",
        "LOG_LEVEL_TCP",
        "MODELS_CONFIG_CONTENT",
        "MODELS_CONFIG_PATH",
        "MODEL_HEALTH_CHECK_INTERVAL",
        "MODEL_HEALTH_CHECK_PROBE_DELAY",
        "MODEL_HEALTH_MAX_CONSECUTIVE_ERRORS",
        "MOR_TOKEN_ADDRESS",
        "MULTICALL3_ADDR",
        "PROVIDER_ALLOW_LIST",
        "PROXY_ADDRESS",
        "PROXY_FORWARD_CHAT_CONTEXT",
        "PROXY_STORAGE_PATH",
        "PROXY_STORE_CHAT_CONTEXT",
        "RATING_CONFIG_CONTENT",
        "RATING_CONFIG_PATH",
        "SESSION_HEALTH_POLICY",
        "SEV_ARTIFACT_REGISTRY_URL",
        "SYS_ENABLE",
        "SYS_LOCAL_PORT_RANGE",
        "SYS_NET_DEV_MAX_BACKLOG",
        "SYS_RLIMIT_HARD",
        "SYS_RLIMIT_SOFT",
        "SYS_SOMAXCONN",
        "SYS_TCP_MAX_SYN_BACKLOG",
        "TEE_IMAGE_REPO",
        "TEE_PORTAL_URL",
        "WALLET_PRIVATE_KEY",
        "WEB_ADDRESS",
        "WEB_PUBLIC_URL",
    ];

    fn read(name: &str) -> bool {
        VARIABLES.iter().any(|v| v.name == name) && lookup(name).is_none()
            || name == "ETH_NODE_MAX_RECONNECTS"
    }

    #[test]
    fn every_reference_variable_is_read_or_warned_about() {
        for name in REFERENCE {
            assert!(read(name) || lookup(name).is_some(), "{name} is neither read nor warned about");
        }
    }

    #[test]
    fn every_variable_of_our_docs_is_read_or_warned_about() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in [".env.example", "docs/configuration.md"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let names = text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            for name in names
                .filter(|n| n.len() > 3 && n.contains('_') && n.starts_with(|c: char| c.is_ascii_uppercase()))
            {
                let known = VARIABLES.iter().any(|v| v.name == name) || lookup(name).is_some();
                // Other upper-case words of the docs (RUST_LOG, HTTP methods, SQL) are not variables.
                let documented_var =
                    text.contains(&format!("`{name}`")) || text.contains(&format!("{name}="));
                assert!(
                    known || !documented_var || name == "RUST_LOG",
                    "{file}: {name} is neither read nor warned about"
                );
            }
        }
    }

    #[test]
    fn families_and_names_match() {
        assert!(
            lookup("DOCKER_HOST").is_some() && lookup("SYS_SOMAXCONN").is_some() && lookup("TEE_X").is_some()
        );
        assert!(lookup("WEB_ADDRESS").is_none());
        let env: HashMap<String, String> =
            [("DOCKER_HOST", "unix:///x"), ("ENVIRONMENT", ""), ("WEB_ADDRESS", "a")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let set = set_in(&env);
        assert_eq!(set.len(), 1, "{set:?}");
        assert_eq!(set[0].0, "DOCKER_HOST");
    }
}
