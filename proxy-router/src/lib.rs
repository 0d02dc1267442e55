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
//! - [`config`]: env variables, `.env` and flags (the reference's names), validated into a typed
//!   [`config::Config`]; a bad value stops start-up naming the variable.
//! - [`chain`]: contract bindings generated from the committed ABI files in `proxy-router/abi/`, the RPC
//!   client (several URLs with failover), the wallet, the transaction sender (one nonce queue, fee bumps,
//!   reverts decoded into typed errors), the MOR allowance manager and the start-up checks.
//! - [`store`]: the local SQLite (WAL) index of the chain: one repository per aggregate, atomic index
//!   batches and reorg rollbacks.
//! - [`index`]: the indexer that keeps the store equal to the chain (backfill, follow, reorgs, restart).
//! - [`node`]: the composition root: start-up checks, store, auth, wallet, indexer, HTTP API, provider and
//!   consumer under one cancellation token (`proxy-router run`).
//! - [`protocol`]: MOR-RPC, the provider↔consumer wire protocol, byte compatible with the reference:
//!   message types, Go-compatible JSON bytes, message and EIP-191 signatures, the session approval and
//!   report artifacts, go-ethereum's ECIES, the bounded TCP framing codec and the replay defences.
//! - [`provider`]: the provider role: `models-config.json` validated into the [`provider::Models`]
//!   registry, the `openai` backend client, and the MOR-RPC TCP server on `PROXY_ADDRESS` (handshake,
//!   streamed signed and encrypted answers, signed reports from durable statistics).
//! - [`consumer`]: the consumer role: bid rating (`rating-config.json`), the MOR-RPC client, opening
//!   sessions, the prompt relay with failover, closing, the expiry sweeper and recovery at start.
//! - [`chats`]: chat history recording (`chat_id` header) for the admin API and the gateway.
//! - [`logging`]: the log subscriber (`LOG_*`) and the request-id span of both HTTP surfaces.
//! - [`metrics`]: the Prometheus registry every module records into (`GET /metrics`).
//! - [`error_bodies`]: JSON bodies for the bare error responses of layers, on both HTTP surfaces.
//! - [`gateway`]: the OpenAI gateway on `GATEWAY_ADDRESS`: API keys with quotas and budgets, and the
//!   sessions it buys, reuses, renews and closes for each key and model.
//! - [`api`]: the HTTP API: the reference's REST routes and JSON, reference-compatible Basic auth
//!   ([`api::auth`]), one [`api::error::ApiError`], the OpenAPI spec and Swagger UI.
//!
//! # Dependency direction
//!
//! `api` → `consumer` / `provider` → `protocol`, `index` → `chain`, `store` → `config`, with `node` on
//! top composing them. `protocol`, `chain` and `store` never import each other or anything above them;
//! `index` is the one module that reads the chain and writes the store.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod chain;
pub mod chats;
pub mod config;
pub mod consumer;
pub mod error_bodies;
pub mod gateway;
pub mod index;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod provider;
pub mod store;
