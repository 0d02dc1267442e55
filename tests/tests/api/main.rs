//! The HTTP API end to end: the whole router against anvil with our contracts, a real store and
//! indexer. One test binary; each resource has its module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wallet;
