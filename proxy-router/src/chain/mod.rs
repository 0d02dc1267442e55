//! Everything that talks to the chain.
//!
//! Today this module owns only the contract bindings ([`bindings`]), generated at compile time from the
//! JSON ABI files committed in `proxy-router/abi/`. Later issues add the RPC client (several URLs), the
//! wallet, the transaction sender (one nonce queue, fee bumps, reverts decoded into typed errors) and the
//! event indexer here.
//!
//! `chain` never imports `protocol` or `store`, nor anything above them.

pub mod bindings;
