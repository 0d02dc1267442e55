//! The HTTP API end to end: the whole router against anvil with our deployed contracts, a real store
//! kept in step by the real indexer, and Basic auth. One module per resource.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sessions;
