//! Shared helpers for the end-to-end tests of `proxy-router`.
//!
//! The tests run against real components only: a real anvil from the pinned npm toolchain
//! (`node_modules/.bin/anvil`, installed by `npm ci` at the repository root), and later the real
//! contracts, real routers and a real streaming model backend.

pub mod anvil;
pub mod api;
pub mod backend;
pub mod bench;
pub mod chain;
pub mod deploy;
pub mod gateway;
pub mod index;
pub mod market;
pub mod router;

use std::path::PathBuf;

/// The repository root: the parent of this crate's directory.
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}
