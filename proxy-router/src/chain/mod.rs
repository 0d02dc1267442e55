//! Everything that talks to the chain (except the indexer, which lives in `index` above `chain` and
//! `store`).
//!
//! - [`bindings`]: contract bindings generated at compile time by alloy `sol!` from the JSON ABI files in
//!   `proxy-router/abi/`.
//! - [`rpc`]: [`Rpc`], a cheap-to-clone handle over every configured RPC URL with ordered failover, and
//!   an optional WebSocket provider for new-head subscriptions.
//! - [`wallet`]: [`Wallet`], the node's key from a private key or a BIP-39 mnemonic; only the address is
//!   ever shown.
//! - [`sender`]: [`TxSender`], the one writer per wallet: a single nonce queue, gas estimation first,
//!   EIP-1559 or legacy fees, fee bumps of stuck transactions, a bounded wait for the receipt, and typed
//!   helpers for every write the router makes.
//! - [`allowance`]: [`Allowance`], the MOR allowance for the diamond raised only when needed and never
//!   by two racing approvals.
//! - [`errors`]: [`ChainError`], with reverts decoded into the custom error's name and arguments.
//! - [`startup`]: [`startup::verify`], the start-up checks (chain id, contract code, diamond selectors).
//!
//! `docs/chain.md` describes the life cycle of a transaction and the reasoning behind the nonce and
//! allowance handling. `chain` depends only on `config`; it never imports `protocol` or `store`, nor
//! anything above them.

pub mod allowance;
pub mod bindings;
pub mod errors;
pub mod rpc;
pub mod sender;
pub mod slot;
pub mod startup;
pub mod wallet;

pub use allowance::{Allowance, AllowanceGuard};
pub use errors::{ChainError, DecodedRevert};
pub use rpc::Rpc;
pub use sender::TxSender;
pub use slot::{Signer, WalletSlot, WalletSource};
pub use wallet::Wallet;
