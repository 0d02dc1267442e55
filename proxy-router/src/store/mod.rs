//! Local state in SQLite (WAL): the index of the chain (providers, models, bids, sessions and their
//! statistics, the indexer's cursor and recent block hashes) and, later, the node's own state.
//!
//! `store` never imports `chain` or `protocol`, nor anything above them.
