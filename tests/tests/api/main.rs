//! The HTTP API against a real chain: one test binary, one module per resource (`cargo test -p
//! e2e-tests --test api <module>`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod registry;
mod sessions;
mod wallet;
