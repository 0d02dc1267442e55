-- The local index of the marketplace (providers, models, bids, sessions and their statistics) and the
-- indexer's own state (cursor, recent block hashes, raw event log, per-block journal of touched
-- entities). docs/storage.md explains every table.
--
-- Encodings, chosen to be exact and portable to PostgreSQL:
--   * addresses and 32-byte ids: lower-case 0x-hex TEXT (42 and 66 characters), checked below;
--   * uint256 amounts: decimal TEXT, never REAL or NUMERIC (SQLite would turn big numbers into lossy
--     floating point); PostgreSQL can use NUMERIC(78, 0);
--   * timestamps (unix seconds) and block numbers: BIGINT;
--   * flags: BOOLEAN, written with TRUE / FALSE;
--   * raw bytes: BLOB (BYTEA in PostgreSQL).
-- There are no foreign keys between index tables on purpose: the chain is the source of truth and the
-- indexer may learn about entities in any order (start block after a registration, reorg refreshes).
-- "user" is a reserved word in PostgreSQL, hence sessions.user_address.

CREATE TABLE providers (
    address             TEXT    NOT NULL PRIMARY KEY
                        CHECK (length(address) = 42 AND address = lower(address)),
    endpoint            TEXT    NOT NULL,
    stake               TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    limit_period_end    BIGINT  NOT NULL,
    limit_period_earned TEXT    NOT NULL,
    is_deleted          BOOLEAN NOT NULL
);
CREATE INDEX providers_by_state ON providers (is_deleted, created_at, address);

CREATE TABLE models (
    model_id   TEXT    NOT NULL PRIMARY KEY
               CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    ipfs_cid   TEXT    NOT NULL CHECK (length(ipfs_cid) = 66 AND ipfs_cid = lower(ipfs_cid)),
    fee        TEXT    NOT NULL,
    stake      TEXT    NOT NULL,
    owner      TEXT    NOT NULL CHECK (length(owner) = 42 AND owner = lower(owner)),
    name       TEXT    NOT NULL,
    -- JSON array of strings, in chain order.
    tags       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    is_deleted BOOLEAN NOT NULL
);
CREATE INDEX models_by_state ON models (is_deleted, created_at, model_id);
CREATE INDEX models_by_owner ON models (owner, created_at, model_id);

CREATE TABLE bids (
    bid_id           TEXT   NOT NULL PRIMARY KEY
                     CHECK (length(bid_id) = 66 AND bid_id = lower(bid_id)),
    provider         TEXT   NOT NULL CHECK (length(provider) = 42 AND provider = lower(provider)),
    model_id         TEXT   NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    price_per_second TEXT   NOT NULL,
    nonce            TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    -- 0 while the bid is active, as on chain.
    deleted_at       BIGINT NOT NULL
);
CREATE INDEX bids_by_model ON bids (model_id, deleted_at, created_at, bid_id);
CREATE INDEX bids_by_provider ON bids (provider, deleted_at, created_at, bid_id);

CREATE TABLE sessions (
    session_id                TEXT    NOT NULL PRIMARY KEY
                              CHECK (length(session_id) = 66 AND session_id = lower(session_id)),
    user_address              TEXT    NOT NULL
                              CHECK (length(user_address) = 42 AND user_address = lower(user_address)),
    bid_id                    TEXT    NOT NULL CHECK (length(bid_id) = 66 AND bid_id = lower(bid_id)),
    -- provider and model_id are copied from the bid so that the API can filter without a join.
    provider                  TEXT    NOT NULL CHECK (length(provider) = 42 AND provider = lower(provider)),
    model_id                  TEXT    NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    stake                     TEXT    NOT NULL,
    closeout_receipt          BLOB    NOT NULL,
    closeout_type             TEXT    NOT NULL,
    provider_withdrawn_amount TEXT    NOT NULL,
    opened_at                 BIGINT  NOT NULL,
    ends_at                   BIGINT  NOT NULL,
    -- 0 while the session is open, as on chain.
    closed_at                 BIGINT  NOT NULL,
    is_active                 BOOLEAN NOT NULL,
    is_direct_payment         BOOLEAN NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_address, opened_at, session_id);
CREATE INDEX sessions_by_provider ON sessions (provider, opened_at, session_id);
CREATE INDEX sessions_by_model ON sessions (model_id, opened_at, session_id);
CREATE INDEX sessions_by_bid ON sessions (bid_id, opened_at, session_id);
CREATE INDEX sessions_by_state ON sessions (is_active, ends_at);

-- getProviderModelStats(modelId, provider): LibSD (mean, sqSum) pairs are int64 on chain.
CREATE TABLE provider_model_stats (
    model_id       TEXT   NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    provider       TEXT   NOT NULL CHECK (length(provider) = 42 AND provider = lower(provider)),
    tps_mean       BIGINT NOT NULL,
    tps_sq_sum     BIGINT NOT NULL,
    ttft_mean      BIGINT NOT NULL,
    ttft_sq_sum    BIGINT NOT NULL,
    total_duration BIGINT NOT NULL,
    success_count  BIGINT NOT NULL,
    total_count    BIGINT NOT NULL,
    PRIMARY KEY (model_id, provider)
);
CREATE INDEX provider_model_stats_by_provider ON provider_model_stats (provider, model_id);

-- getModelStats(modelId).
CREATE TABLE model_stats (
    model_id                TEXT   NOT NULL PRIMARY KEY
                            CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    tps_mean                BIGINT NOT NULL,
    tps_sq_sum              BIGINT NOT NULL,
    ttft_mean               BIGINT NOT NULL,
    ttft_sq_sum             BIGINT NOT NULL,
    total_duration_mean     BIGINT NOT NULL,
    total_duration_sq_sum   BIGINT NOT NULL,
    provider_count          BIGINT NOT NULL
);

-- The indexer's cursor: the last block whose events are all applied. At most one row.
CREATE TABLE index_cursor (
    id           INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    block_number BIGINT  NOT NULL,
    block_hash   TEXT    NOT NULL
);

-- The chain and diamond this index belongs to. At most one row.
CREATE TABLE index_source (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    chain_id BIGINT  NOT NULL,
    diamond  TEXT    NOT NULL CHECK (length(diamond) = 42 AND diamond = lower(diamond))
);

-- Hashes of recently indexed blocks, for reorg detection. Pruned below a depth.
CREATE TABLE index_blocks (
    block_number BIGINT NOT NULL PRIMARY KEY,
    block_hash   TEXT   NOT NULL
);

-- The raw marketplace event log. The primary key means an event can never be applied twice.
CREATE TABLE index_events (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    block_hash   TEXT   NOT NULL,
    tx_hash      TEXT   NOT NULL,
    tx_index     BIGINT NOT NULL,
    address      TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    -- JSON array of 0x-hex topics.
    topics       TEXT   NOT NULL,
    data         BLOB   NOT NULL,
    -- The decoded arguments as a JSON object, when the indexer provides them.
    decoded      TEXT,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX index_events_by_name ON index_events (name, block_number, log_index);
CREATE INDEX index_events_by_tx ON index_events (tx_hash);

-- Which entities each indexed block touched, so that a reorg knows what to re-read from the chain.
-- entity_sub_id is '' except for provider-model statistics (model id + provider).
CREATE TABLE index_touched (
    block_number  BIGINT NOT NULL,
    entity_kind   TEXT   NOT NULL,
    entity_id     TEXT   NOT NULL,
    entity_sub_id TEXT   NOT NULL,
    PRIMARY KEY (block_number, entity_kind, entity_id, entity_sub_id)
);

-- Entities touched by rolled-back blocks that have not been re-read from the chain yet. Any later
-- write of the entity removes its row.
CREATE TABLE index_stale (
    entity_kind   TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    entity_sub_id TEXT NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, entity_sub_id)
);
