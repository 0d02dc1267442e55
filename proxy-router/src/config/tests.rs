//! Tests of [`Config::load`] as a whole: required variables, defaults, precedence, cross-variable rules,
//! and that secrets never leak through errors, `Debug` or the effective configuration.

use std::collections::HashMap;
use std::str::FromStr;

use super::test_support::TempDir;
use super::*;

const DIAMOND: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const TOKEN: &str = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";
const KEY0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const PHRASE: &str = "test test test test test test test test test test test junk";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("ETH_NODE_ADDRESS", "http://127.0.0.1:8545"),
        ("ETH_NODE_CHAIN_ID", "31337"),
        ("DIAMOND_CONTRACT_ADDRESS", DIAMOND),
        ("MOR_TOKEN_ADDRESS", TOKEN),
        ("HOME", "/somewhere"),
        ("UNRELATED_GARBAGE", "this is not validated"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in pairs {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(std::iter::empty::<&str>(), &env(pairs))
}

fn load_err(pairs: &[(&str, &str)]) -> String {
    load(pairs).unwrap_err().to_string()
}

#[test]
fn the_four_required_variables_are_enough_and_the_rest_defaults() {
    let c = load(&[]).unwrap();
    assert_eq!(c.chain.rpc_urls, [Url::parse("http://127.0.0.1:8545").unwrap()]);
    assert_eq!(c.chain.chain_id, 31337);
    assert_eq!(c.chain.diamond, Address::from_str(DIAMOND).unwrap());
    assert_eq!(c.chain.mor_token, Address::from_str(TOKEN).unwrap());
    assert_eq!(c.chain.multicall3, DEFAULT_MULTICALL3);
    assert!(!c.chain.legacy_tx);
    assert!(!c.chain.use_subscriptions);
    assert_eq!(c.chain.polling_interval, DEFAULT_POLLING_INTERVAL);
    assert_eq!(c.chain.rpc_timeout, DEFAULT_RPC_TIMEOUT);
    assert_eq!(c.chain.tx_receipt_timeout, DEFAULT_TX_RECEIPT_TIMEOUT);
    assert_eq!(c.chain.tx_bump_interval, DEFAULT_TX_BUMP_INTERVAL);
    assert_eq!(c.chain.tx_fee_bump_percent, DEFAULT_TX_FEE_BUMP_PERCENT);
    assert_eq!(c.chain.tx_max_bumps, DEFAULT_TX_MAX_BUMPS);
    assert!(c.wallet.key.is_none());
    assert_eq!(c.store.storage_path, PathBuf::from("./data/"));
    assert_eq!(c.indexer.start_block, 0);
    assert_eq!(c.indexer.confirmations, DEFAULT_CONFIRMATIONS);
    assert_eq!(c.indexer.block_range, DEFAULT_BLOCK_RANGE);
    assert_eq!(c.indexer.max_backoff, DEFAULT_MAX_BACKOFF);
    assert_eq!(c.web.address, DEFAULT_WEB_ADDRESS);
    assert_eq!(c.web.auth_config_file_path, PathBuf::from("./proxy.conf"));
    assert_eq!(c.web.cookie_file_path, PathBuf::from("./.cookie"));
    assert!(c.web.cookie_content.is_none());
    assert_eq!(c.provider.proxy_address, DEFAULT_PROXY_ADDRESS);
    assert_eq!(c.provider.llm_timeout, DEFAULT_LLM_TIMEOUT);
    assert_eq!(c.provider.max_prompt_bytes, DEFAULT_MAX_PROMPT_BYTES);
    assert!(c.provider.models_config_content.is_none());
    assert!(c.consumer.provider_allow_list.is_empty());
    assert_eq!(c.consumer.pnode_timeout, DEFAULT_PNODE_TIMEOUT);
    assert!(c.consumer.store_chat_context, "PROXY_STORE_CHAT_CONTEXT defaults to true, as the reference");
}

#[test]
fn the_provider_allow_list_is_checked_address_by_address() {
    let list = format!("{TOKEN}, {DIAMOND},");
    assert_eq!(load(&[("PROVIDER_ALLOW_LIST", &list)]).unwrap().consumer.provider_allow_list.len(), 2);
    let error = load_err(&[("PROVIDER_ALLOW_LIST", &format!("{TOKEN},0x12"))]);
    assert!(error.contains("PROVIDER_ALLOW_LIST") && error.contains("0x12"), "{error}");
    let error = load_err(&[("PROXY_ADDRESS", "localhost:3333")]);
    assert!(error.contains("PROXY_ADDRESS"), "{error}");
    let error = load_err(&[("PROXY_MAX_PROMPT_BYTES", "10")]);
    assert!(error.contains("PROXY_MAX_PROMPT_BYTES"), "{error}");
}

#[test]
fn the_web_address_is_an_ip_and_port() {
    assert_eq!(load(&[("WEB_ADDRESS", "[::1]:0")]).unwrap().web.address.to_string(), "[::1]:0");
    for bad in ["localhost:8082", "0.0.0.0", "0.0.0.0:99999"] {
        let error = load_err(&[("WEB_ADDRESS", bad)]);
        assert!(error.contains("WEB_ADDRESS") && error.contains("IP:port"), "{bad}: {error}");
    }
}

#[test]
fn the_documented_defaults_are_the_real_ones() {
    let defaults = load(&[]).unwrap().to_string();
    for spec in VARIABLES.iter().filter(|s| !s.default.is_empty()) {
        let explicit = load(&[(spec.name, spec.default)]).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert_eq!(explicit.to_string(), defaults, "{}", spec.name);
    }
    assert_eq!(DEFAULT_MULTICALL3.to_string(), by_name("MULTICALL3_ADDR").unwrap().default);
    assert_eq!(DEFAULT_DERIVATION_PATH, by_name("WALLET_DERIVATION_PATH").unwrap().default);
}

#[test]
fn each_required_variable_is_named_with_its_flag_when_missing() {
    for (var, flag) in [
        ("ETH_NODE_ADDRESS", "eth-node-address"),
        ("ETH_NODE_CHAIN_ID", "eth-node-chain-id"),
        ("DIAMOND_CONTRACT_ADDRESS", "diamond-contract-address"),
        ("MOR_TOKEN_ADDRESS", "mor-token-address"),
    ] {
        for value in [None, Some(""), Some("   ")] {
            let mut env = env(&[]);
            match value {
                None => env.remove(var),
                Some(v) => env.insert(var.to_owned(), v.to_owned()),
            };
            let err = Config::load(std::iter::empty::<&str>(), &env).unwrap_err();
            assert_eq!(err.var(), Some(var));
            assert_eq!(
                err.to_string(),
                format!("{var} is required: set it in the environment, in .env, or with the flag --{flag}")
            );
        }
    }
    assert!(load_err(&[("ETH_NODE_ADDRESS", " , ,")]).starts_with("ETH_NODE_ADDRESS is required"));
}

#[test]
fn the_issue_example_message() {
    assert_eq!(
        load_err(&[("ETH_NODE_POLLING_INTERVAL", "ten")]),
        "ETH_NODE_POLLING_INTERVAL: \"ten\" is not a duration (use 10s, 1m30s or a number of seconds)"
    );
}

#[test]
fn flags_override_the_environment_and_are_named_in_errors() {
    let env = env(&[("ETH_NODE_CHAIN_ID", "1"), ("ETH_NODE_POLLING_INTERVAL", "5s")]);
    let c = Config::load(["-eth-node-chain-id", "8453", "--eth-node-polling-interval=250ms"], &env).unwrap();
    assert_eq!(c.chain.chain_id, 8453);
    assert_eq!(c.chain.polling_interval, Duration::from_millis(250));

    let err = Config::load(["--eth-node-chain-id=zero"], &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ETH_NODE_CHAIN_ID (flag --eth-node-chain-id): \"zero\" is not a positive integer"
    );
    assert!(
        matches!(&err, ConfigError::Invalid { origin: Origin::Flag(f), .. } if f == "--eth-node-chain-id")
    );

    // Every variable can be set by its flag alone.
    let flags = [
        "--eth-node-address=ws://h:1",
        "--eth-node-chain-id=7",
        "-diamond-address",
        DIAMOND,
        "--mor-token-address",
        TOKEN,
        "--multicall3-addr",
        TOKEN,
        "--eth-node-legacy-tx",
        "--eth-node-use-subscriptions=true",
        "--eth-node-polling-interval=2",
        "--eth-node-max-reconnects=-1",
        "--eth-node-rpc-timeout=3s",
        "--tx-receipt-timeout=4m",
        "--tx-bump-interval=5s",
        "--tx-fee-bump-percent=12",
        "--tx-max-bumps=0",
        "--wallet-mnemonic",
        PHRASE,
        "--wallet-derivation-path=m/44'/60'/0'/0/2",
        "--proxy-storage-path=/var/lib/router",
        "--web-address=127.0.0.1:9000",
        "--auth-config-file-path=/etc/router/proxy.conf",
        "--cookie-file-path=/etc/router/.cookie",
        "--cookie-content=admin:hunter2",
        "--proxy-address=127.0.0.1:3334",
        "--models-config-path=/etc/router/models.json",
        "--models-config-content={}",
        "--llm-timeout=30s",
        "--proxy-max-prompt-bytes=2048",
        "--proxy-timestamp-window=1m",
        "--proxy-max-connections=64",
        "--proxy-session-concurrency=4",
        "--proxy-session-queue=0",
        "--rating-config-path=/etc/router/rating.json",
        "--provider-allow-list",
        TOKEN,
        "--cnode-pnode-timeout=15s",
        "--session-sweep-interval=10s",
        "--gateway-address=0.0.0.0:9083",
        "--gateway-session-duration=10m",
        "--gateway-session-renew-before=1m",
        "--gateway-session-idle-timeout=5m",
        "--gateway-session-concurrency=4",
        "--gateway-direct-payment",
        "--gateway-sweep-interval=5s",
        "--gateway-cors-origins=https://a.example, https://b.example",
        "--proxy-store-chat-context=false",
        "--log-json=false",
        "--log-color",
        "--log-is-prod",
        "--log-folder-path=/var/log/router",
        "--log-level-app=debug",
        "--log-level-tcp=warn",
        "--log-level-eth-rpc=fatal",
        "--log-level-storage=error",
        "--indexer-start-block=100",
        "--indexer-confirmations=0",
        "--indexer-block-range=500",
        "--indexer-max-backoff=1m",
    ];
    let c = Config::load(flags, &HashMap::new()).unwrap();
    let expected = format!(
        "ETH_NODE_ADDRESS=ws://h:1/\nETH_NODE_CHAIN_ID=7\nDIAMOND_CONTRACT_ADDRESS={DIAMOND}\n\
         MOR_TOKEN_ADDRESS={token}\nMULTICALL3_ADDR={token}\nETH_NODE_LEGACY_TX=true\n\
         ETH_NODE_USE_SUBSCRIPTIONS=true\nETH_NODE_POLLING_INTERVAL=2s\nETH_NODE_RPC_TIMEOUT=3s\n\
         TX_RECEIPT_TIMEOUT=4m\nTX_BUMP_INTERVAL=5s\nTX_FEE_BUMP_PERCENT=12\nTX_MAX_BUMPS=0\n\
         WALLET_PRIVATE_KEY=\nWALLET_MNEMONIC=<redacted>\nWALLET_DERIVATION_PATH=m/44'/60'/0'/0/2\n\
         PROXY_STORAGE_PATH=/var/lib/router\nWEB_ADDRESS=127.0.0.1:9000\n\
         AUTH_CONFIG_FILE_PATH=/etc/router/proxy.conf\nCOOKIE_FILE_PATH=/etc/router/.cookie\n\
         COOKIE_CONTENT=<redacted>\nPROXY_ADDRESS=127.0.0.1:3334\nMODELS_CONFIG_PATH=/etc/router/models.json\n\
         MODELS_CONFIG_CONTENT={{}}\nLLM_TIMEOUT=30s\nPROXY_MAX_PROMPT_BYTES=2048\nPROXY_TIMESTAMP_WINDOW=1m\n\
         PROXY_MAX_CONNECTIONS=64\nPROXY_SESSION_CONCURRENCY=4\nPROXY_SESSION_QUEUE=0\n\
         RATING_CONFIG_PATH=/etc/router/rating.json\nPROVIDER_ALLOW_LIST={token}\nCNODE_PNODE_TIMEOUT=15s\n\
         SESSION_SWEEP_INTERVAL=10s\nPROXY_STORE_CHAT_CONTEXT=false\n\
         LOG_JSON=true\nLOG_COLOR=true\nLOG_IS_PROD=true\nLOG_FOLDER_PATH=/var/log/router\nLOG_LEVEL_APP=debug\n\
         LOG_LEVEL_TCP=warn\nLOG_LEVEL_ETH_RPC=error\nLOG_LEVEL_STORAGE=error\nGATEWAY_ADDRESS=0.0.0.0:9083\nGATEWAY_SESSION_DURATION=10m\n\
         GATEWAY_SESSION_RENEW_BEFORE=1m\nGATEWAY_SESSION_IDLE_TIMEOUT=5m\nGATEWAY_SESSION_CONCURRENCY=4\nGATEWAY_DIRECT_PAYMENT=true\n\
         GATEWAY_SWEEP_INTERVAL=5s\nGATEWAY_CORS_ORIGINS=https://a.example,https://b.example\n\
         INDEXER_START_BLOCK=100\nINDEXER_CONFIRMATIONS=0\n\
         INDEXER_BLOCK_RANGE=500\nINDEXER_MAX_BACKOFF=1m\n",
        token = Address::from_str(TOKEN).unwrap()
    );
    assert_eq!(c.to_string(), expected);
    for spec in VARIABLES {
        let flag = format!("--{}", spec.flag);
        assert!(
            ["diamond-contract-address", "wallet-private-key"].contains(&spec.flag)
                || flags.iter().any(|f| f.split('=').next() == Some(&flag)),
            "the test misses {flag}"
        );
    }
}

#[test]
fn an_empty_flag_unsets_the_environment_value() {
    let env = env(&[("ETH_NODE_POLLING_INTERVAL", "5s")]);
    let c = Config::load(["--eth-node-polling-interval="], &env).unwrap();
    assert_eq!(c.chain.polling_interval, DEFAULT_POLLING_INTERVAL);
    let err = Config::load(["--eth-node-chain-id", ""], &env).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { var: "ETH_NODE_CHAIN_ID", .. }), "{err}");
}

#[test]
fn dotenv_then_process_environment_then_flags() {
    let dir = TempDir::new();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        format!(
            "ETH_NODE_ADDRESS=http://file:8545\nETH_NODE_CHAIN_ID=1\nDIAMOND_CONTRACT_ADDRESS={DIAMOND}\n\
             MOR_TOKEN_ADDRESS={TOKEN}\nTX_MAX_BUMPS=1\n"
        ),
    )
    .unwrap();
    let process = || [("ETH_NODE_CHAIN_ID".to_owned(), "2".to_owned())];
    let env = merge_dotenv(&path, process()).unwrap();
    let c = Config::load(std::iter::empty::<&str>(), &env).unwrap();
    assert_eq!((c.chain.chain_id, c.chain.tx_max_bumps), (2, 1));
    assert_eq!(c.chain.rpc_urls[0].as_str(), "http://file:8545/");
    let c = Config::load(["-eth-node-chain-id=3"], &env).unwrap();
    assert_eq!(c.chain.chain_id, 3);
    let env = merge_dotenv(&dir.path().join("missing.env"), process()).unwrap();
    assert!(matches!(Config::load(std::iter::empty::<&str>(), &env), Err(ConfigError::Missing { .. })));
}

#[test]
fn the_example_env_file_parses_and_loads_once_the_contracts_are_filled_in() {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example"));
    let mut vars = read_dotenv(&path).unwrap();
    let err = Config::load(std::iter::empty::<&str>(), &vars).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { var: "DIAMOND_CONTRACT_ADDRESS", .. }), "{err}");
    vars.insert("DIAMOND_CONTRACT_ADDRESS".into(), DIAMOND.into());
    vars.insert("MOR_TOKEN_ADDRESS".into(), TOKEN.into());
    let c = Config::load(std::iter::empty::<&str>(), &vars).unwrap();
    assert_eq!(c.chain.chain_id, 31337);
}

#[test]
fn several_rpc_urls_keep_their_order() {
    let c = load(&[("ETH_NODE_ADDRESS", "https://a.example/rpc,http://b.example:8545")]).unwrap();
    let urls: Vec<_> = c.chain.rpc_urls.iter().map(Url::as_str).collect();
    assert_eq!(urls, ["https://a.example/rpc", "http://b.example:8545/"]);
    assert_eq!(
        load_err(&[("ETH_NODE_ADDRESS", "https://a.example,mailto:x@y")]),
        "ETH_NODE_ADDRESS: \"mailto:x@y\" uses the scheme \"mailto\": use http, https, ws or wss"
    );
}

#[test]
fn subscriptions_need_a_websocket_url() {
    let err = load(&[("ETH_NODE_USE_SUBSCRIPTIONS", "true")]).unwrap_err();
    assert!(matches!(err, ConfigError::SubscriptionsNeedWebSocket));
    assert!(err.to_string().starts_with("ETH_NODE_USE_SUBSCRIPTIONS is true but no URL in ETH_NODE_ADDRESS"));
    let c =
        load(&[("ETH_NODE_USE_SUBSCRIPTIONS", "1"), ("ETH_NODE_ADDRESS", "http://a:1,wss://b/ws")]).unwrap();
    assert!(c.chain.use_subscriptions);
    assert!(load(&[("ETH_NODE_USE_SUBSCRIPTIONS", "False")]).is_ok());
    assert_eq!(
        load_err(&[("ETH_NODE_USE_SUBSCRIPTIONS", "yes")]),
        "ETH_NODE_USE_SUBSCRIPTIONS: \"yes\" is not a boolean (use true, false, 1 or 0)"
    );
    assert!(
        load_err(&[("ETH_NODE_LEGACY_TX", "on")]).starts_with("ETH_NODE_LEGACY_TX: \"on\" is not a boolean")
    );
}

#[test]
fn the_chain_id_is_a_positive_integer() {
    assert_eq!(
        load_err(&[("ETH_NODE_CHAIN_ID", "0")]),
        "ETH_NODE_CHAIN_ID: 0 is out of range: it must be a positive integer"
    );
    assert_eq!(
        load_err(&[("ETH_NODE_CHAIN_ID", "-5")]),
        "ETH_NODE_CHAIN_ID: \"-5\" is not a positive integer"
    );
    assert_eq!(
        load_err(&[("ETH_NODE_CHAIN_ID", "0x2105")]),
        "ETH_NODE_CHAIN_ID: \"0x2105\" is not a positive integer"
    );
    assert_eq!(load(&[("ETH_NODE_CHAIN_ID", " 8453 ")]).unwrap().chain.chain_id, 8453);
}

#[test]
fn contract_addresses_are_checked_by_name() {
    let wrong = DIAMOND.replacen("Fb", "fB", 1);
    assert!(load_err(&[("DIAMOND_CONTRACT_ADDRESS", &wrong)])
        .starts_with(&format!("DIAMOND_CONTRACT_ADDRESS: {wrong:?} has a wrong EIP-55 checksum")));
    assert_eq!(
        load_err(&[("MOR_TOKEN_ADDRESS", "0x1234")]),
        "MOR_TOKEN_ADDRESS: \"0x1234\" is not an address (0x followed by 40 hex digits)"
    );
    assert_eq!(
        load_err(&[("MULTICALL3_ADDR", "0x0000000000000000000000000000000000000000")]),
        "MULTICALL3_ADDR: the zero address holds no contract"
    );
}

#[test]
fn durations_take_units_or_bare_seconds_and_refuse_zero() {
    let duration_vars = [
        "ETH_NODE_POLLING_INTERVAL",
        "ETH_NODE_RPC_TIMEOUT",
        "TX_RECEIPT_TIMEOUT",
        "TX_BUMP_INTERVAL",
        "INDEXER_MAX_BACKOFF",
    ];
    for var in duration_vars {
        let shown = |c: Config| c.effective().into_iter().find(|(name, _)| *name == var).unwrap().1;
        assert_eq!(shown(load(&[(var, "90")]).unwrap()), "1m30s", "{var}");
        assert_eq!(shown(load(&[(var, "1m30s")]).unwrap()), "1m30s", "{var}");
        assert_eq!(shown(load(&[(var, "250ms")]).unwrap()), "250ms", "{var}");
        for zero in ["0", "0s", "0ms"] {
            assert_eq!(
                load_err(&[(var, zero)]),
                format!("{var}: {zero:?} is zero: it must be longer than zero")
            );
        }
        assert!(load_err(&[(var, "-1s")]).starts_with(&format!("{var}: \"-1s\" is not a duration")));
    }
}

#[test]
fn transaction_and_indexer_numbers_are_range_checked() {
    assert_eq!(load(&[("TX_FEE_BUMP_PERCENT", "10")]).unwrap().chain.tx_fee_bump_percent, 10);
    assert_eq!(
        load_err(&[("TX_FEE_BUMP_PERCENT", "9")]),
        "TX_FEE_BUMP_PERCENT: 9 is out of range: it must be an integer from 10 to 1000 (nodes refuse a \
         replacement below +10%)"
    );
    assert!(
        load_err(&[("TX_FEE_BUMP_PERCENT", "1001")]).starts_with("TX_FEE_BUMP_PERCENT: 1001 is out of range")
    );
    assert!(load_err(&[("TX_FEE_BUMP_PERCENT", "12.5")]).starts_with("TX_FEE_BUMP_PERCENT: \"12.5\" is not"));
    assert_eq!(load(&[("TX_MAX_BUMPS", "0")]).unwrap().chain.tx_max_bumps, 0);
    assert!(load_err(&[("TX_MAX_BUMPS", "-1")]).starts_with("TX_MAX_BUMPS: \"-1\" is not"));
    assert_eq!(load(&[("INDEXER_CONFIRMATIONS", "0")]).unwrap().indexer.confirmations, 0);
    assert_eq!(load(&[("INDEXER_START_BLOCK", "12345678")]).unwrap().indexer.start_block, 12_345_678);
    assert!(
        load_err(&[("INDEXER_START_BLOCK", "latest")]).starts_with("INDEXER_START_BLOCK: \"latest\" is not")
    );
    assert_eq!(
        load_err(&[("INDEXER_BLOCK_RANGE", "0")]),
        "INDEXER_BLOCK_RANGE: 0 is out of range: it must be a positive integer"
    );
}

#[test]
fn max_reconnects_is_checked_but_not_kept() {
    for ok in ["-1", "0", "30", "1000000"] {
        assert!(load(&[("ETH_NODE_MAX_RECONNECTS", ok)]).is_ok(), "{ok}");
    }
    assert_eq!(
        load_err(&[("ETH_NODE_MAX_RECONNECTS", "-2")]),
        "ETH_NODE_MAX_RECONNECTS: -2 is out of range: it must be an integer >= -1"
    );
    assert_eq!(
        load_err(&[("ETH_NODE_MAX_RECONNECTS", "infinite")]),
        "ETH_NODE_MAX_RECONNECTS: \"infinite\" is not an integer >= -1"
    );
    let c = load(&[("ETH_NODE_MAX_RECONNECTS", "-1")]).unwrap();
    assert!(c.effective().iter().all(|(name, _)| *name != "ETH_NODE_MAX_RECONNECTS"));
}

#[test]
fn the_effective_configuration_lists_every_kept_variable_in_table_order() {
    let names: Vec<_> = load(&[]).unwrap().effective().into_iter().map(|(name, _)| name).collect();
    let table: Vec<_> =
        VARIABLES.iter().map(|s| s.name).filter(|name| *name != "ETH_NODE_MAX_RECONNECTS").collect();
    assert_eq!(names, table);
}

#[test]
fn url_passwords_are_hidden_in_the_effective_configuration() {
    let c = load(&[("ETH_NODE_ADDRESS", "https://user:hunter2@rpc.example/")]).unwrap();
    let shown = c.to_string();
    assert!(shown.contains("ETH_NODE_ADDRESS=https://user:***@rpc.example/\n"), "{shown}");
    assert!(!shown.contains("hunter2"));
}

#[test]
fn a_private_key_gives_the_signer_and_stays_secret() {
    let c = load(&[("WALLET_PRIVATE_KEY", KEY0)]).unwrap();
    let key = c.wallet.key.as_ref().unwrap();
    assert!(matches!(key, WalletKey::PrivateKey(_)));
    let anvil0 = Address::from_str("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
    assert_eq!(key.signer().unwrap().address(), anvil0);
    let without_0x = load(&[("WALLET_PRIVATE_KEY", &KEY0[2..])]).unwrap();
    assert_eq!(without_0x.wallet.key.unwrap().signer().unwrap().address(), anvil0);

    let debug = format!("{c:?}");
    let display = c.to_string();
    for shown in [&debug, &display] {
        assert!(!shown.contains(&KEY0[2..]) && !shown.contains(&KEY0[2..18]), "{shown}");
    }
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(display.contains("WALLET_PRIVATE_KEY=<redacted>\n"), "{display}");
}

#[test]
fn a_mnemonic_gives_the_signer_at_its_path_and_stays_secret() {
    let c = load(&[("WALLET_MNEMONIC", PHRASE), ("WALLET_DERIVATION_PATH", "m/44'/60'/0'/0/2")]).unwrap();
    let key = c.wallet.key.as_ref().unwrap();
    let anvil2 = Address::from_str("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC").unwrap();
    assert_eq!(key.signer().unwrap().address(), anvil2);
    let default_path = load(&[("WALLET_MNEMONIC", PHRASE)]).unwrap();
    match default_path.wallet.key.as_ref().unwrap() {
        WalletKey::Mnemonic { derivation_path, .. } => assert_eq!(derivation_path, DEFAULT_DERIVATION_PATH),
        other => panic!("{other:?}"),
    }
    let anvil0 = Address::from_str("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
    assert_eq!(default_path.wallet.key.unwrap().signer().unwrap().address(), anvil0);

    for shown in [format!("{c:?}"), c.to_string()] {
        assert!(!shown.contains("test test") && !shown.contains("junk"), "{shown}");
    }
}

#[test]
fn the_two_wallet_secrets_exclude_each_other() {
    let err = load(&[("WALLET_PRIVATE_KEY", KEY0), ("WALLET_MNEMONIC", PHRASE)]).unwrap_err();
    assert_eq!(err.to_string(), "WALLET_PRIVATE_KEY and WALLET_MNEMONIC are both set: set only one of them");
    // Also across sources: one from the environment, the other from a flag.
    let err = Config::load(["--wallet-mnemonic", PHRASE], &env(&[("WALLET_PRIVATE_KEY", KEY0)])).unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }));
    // An empty one does not count.
    assert!(load(&[("WALLET_PRIVATE_KEY", KEY0), ("WALLET_MNEMONIC", "")]).is_ok());
}

#[test]
fn a_derivation_path_is_checked_even_without_a_mnemonic() {
    assert!(load_err(&[("WALLET_DERIVATION_PATH", "m/44'/x")])
        .starts_with("WALLET_DERIVATION_PATH: \"m/44'/x\" is not a BIP-32 derivation path"));
    assert!(load(&[("WALLET_PRIVATE_KEY", KEY0), ("WALLET_DERIVATION_PATH", "m/44'/60'/0'/0/1")]).is_ok());
}

#[test]
fn secrets_never_appear_in_errors() {
    let bad_keys = [
        format!("{}ff", KEY0),
        KEY0.replace('a', "g"),
        "0x0000000000000000000000000000000000000000000000000000000000000000".to_owned(),
    ];
    for key in &bad_keys {
        for err in [
            load(&[("WALLET_PRIVATE_KEY", key)]).unwrap_err(),
            Config::load(["--wallet-private-key", key.as_str()], &env(&[])).unwrap_err(),
        ] {
            assert_eq!(err.var(), Some("WALLET_PRIVATE_KEY"));
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains(&key[2..20]) && !shown.contains(&KEY0[2..20]), "{shown}");
                assert!(shown.contains("WALLET_PRIVATE_KEY") || shown.contains("PrivateKey"), "{shown}");
            }
        }
    }
    let bad_phrases = [
        "test test test test test test test test test test junk",
        "test test test test test test test test test test test test",
        "test test test test test test test test test test test jnuk",
    ];
    for phrase in bad_phrases {
        let err = load(&[("WALLET_MNEMONIC", phrase)]).unwrap_err();
        assert!(err.to_string().starts_with("WALLET_MNEMONIC: "), "{err}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("test") && !shown.contains("junk") && !shown.contains("jnuk"), "{shown}");
        }
    }
    // A mistyped secret flag is refused by its name only.
    let err = Config::load([format!("--wallet-privat-key={KEY0}")], &env(&[])).unwrap_err();
    assert!(!err.to_string().contains(&KEY0[2..20]), "{err}");
}

#[test]
fn errors_come_in_table_order() {
    let err = load(&[("ETH_NODE_CHAIN_ID", "x"), ("INDEXER_BLOCK_RANGE", "0"), ("WALLET_PRIVATE_KEY", "x")])
        .unwrap_err();
    assert_eq!(err.var(), Some("ETH_NODE_CHAIN_ID"));
    let err = load(&[("INDEXER_BLOCK_RANGE", "0"), ("WALLET_PRIVATE_KEY", "x")]).unwrap_err();
    assert_eq!(err.var(), Some("WALLET_PRIVATE_KEY"));
}

#[test]
fn the_gateway_listens_by_default_turns_off_when_empty_and_checks_its_session_policy() {
    let c = load(&[]).unwrap();
    assert_eq!(c.gateway.address, Some(crate::config::DEFAULT_GATEWAY_ADDRESS));
    assert_eq!(c.gateway.cors_origins, ["*"]);
    assert_eq!(load(&[("GATEWAY_ADDRESS", "")]).unwrap().gateway.address, None);
    assert_eq!(load(&[("GATEWAY_ADDRESS", "off")]).unwrap().gateway.address, None);
    assert!(load_err(&[("GATEWAY_ADDRESS", "localhost:1")]).starts_with("GATEWAY_ADDRESS: "));
    assert!(load_err(&[("GATEWAY_SESSION_DURATION", "4m")]).starts_with("GATEWAY_SESSION_DURATION: "));
    assert!(load_err(&[("GATEWAY_SESSION_RENEW_BEFORE", "1h")]).starts_with("GATEWAY_SESSION_RENEW_BEFORE: "));
    let c = load(&[("GATEWAY_SESSION_DURATION", "300s"), ("GATEWAY_SESSION_RENEW_BEFORE", "299s")]).unwrap();
    assert_eq!(c.gateway.renew_before, Duration::from_secs(299));
}
