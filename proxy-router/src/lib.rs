//! `proxy-router`: one node for a decentralized AI-inference marketplace, a drop-in replacement for the
//! Go Morpheus-Lumerin proxy-router.
//!
//! A **provider** registers itself, its models and price bids on chain and serves paid sessions by
//! relaying prompts to its own OpenAI-compatible model backend. A **consumer** buys sessions from
//! providers and chats through its local router with any OpenAI client. Both roles run in one process.
//!
//! # Module map
//!
//! Present in this build:
//!
//! - [`chain`]: contract bindings generated from the committed ABI files in `proxy-router/abi/`, the RPC
//!   client (several URLs with failover), the wallet, the transaction sender (one nonce queue, fee bumps,
//!   reverts decoded into typed errors), the MOR allowance manager and the start-up checks.
//!
//! Arriving with later issues (they do not exist yet):
//!
//! - `config`: env variables and flags (the reference's names), `models-config.json` and
//!   `rating-config.json`, validated into a typed `Config`.
//! - `store`: the local SQLite index of the chain and the node's own state.
//! - `protocol`: MOR-RPC messages, Go-compatible JSON bytes, signatures, ECIES, TCP framing.
//! - `provider`: the provider role (MOR-RPC server, model backends, capacity, session reports).
//! - `consumer`: the consumer role (bid rating, sessions, prompt relay, expiry sweeper).
//! - `api`: the HTTP API (the reference's REST paths, OpenAPI, auth).
//! - `node`: the composition root that builds shared state and supervises background tasks.
//!
//! # Dependency direction
//!
//! `api` → `consumer` / `provider` → `protocol`, `chain`, `store` → `config`. `protocol`, `chain` and
//! `store` never import each other or anything above them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod chain;
pub mod config;
pub mod index;
pub mod node;
pub mod store;
