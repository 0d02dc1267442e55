//! Configuration: the reference's environment variable names (read from the process environment and a
//! `.env` file, with command-line flags overriding), validated once at start-up into typed structs.
//!
//! A bad value stops the node with the variable's name and the reason ([`ConfigError`]); nothing is
//! silently replaced by a default (the reference ignores parse errors). Secrets (the wallet key or
//! mnemonic) are held as [`secrecy::SecretString`] and never appear in `Debug` output or errors.
//!
//! `config` depends on nothing else in the crate.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{address, Address};
use secrecy::SecretString;
use url::Url;

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
