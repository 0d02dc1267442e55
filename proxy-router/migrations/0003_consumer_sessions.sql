-- The consumer role's own record of the sessions this node opened (or adopted after a restart): what
-- the chain does not hold but a prompt or a close needs — the provider's endpoint and public key as
-- learned at the handshake (or recovered from a ping), the failover and direct-payment choices made at
-- open, the successor after a failover, and the consumer's own statistics (the fallback report of a
-- disputed close is built from them). The chain index (sessions) stays the truth about open/closed and
-- the end time; ends_at here is a copy read at open, for the prompt path.
-- Encodings as in 0001: lower-case 0x-hex TEXT ids, decimal TEXT amounts, BIGINT unix seconds.

CREATE TABLE consumer_sessions (
    session_id          TEXT    NOT NULL PRIMARY KEY
                        CHECK (length(session_id) = 66 AND session_id = lower(session_id)),
    user_address        TEXT    NOT NULL
                        CHECK (length(user_address) = 42 AND user_address = lower(user_address)),
    provider            TEXT    NOT NULL CHECK (length(provider) = 42 AND provider = lower(provider)),
    bid_id              TEXT    NOT NULL CHECK (length(bid_id) = 66 AND bid_id = lower(bid_id)),
    model_id            TEXT    NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    -- The provider's MOR-RPC endpoint (host:port) when the session was opened or last refreshed.
    endpoint            TEXT    NOT NULL,
    -- The provider's secp256k1 public key (65 bytes uncompressed); NULL until known.
    provider_public_key BLOB,
    stake               TEXT    NOT NULL,
    direct_payment      BOOLEAN NOT NULL,
    failover            BOOLEAN NOT NULL,
    opened_at           BIGINT  NOT NULL,
    ends_at             BIGINT  NOT NULL,
    -- 0 while open as far as this node knows.
    closed_at           BIGINT  NOT NULL DEFAULT 0,
    -- The closeSession transaction and whether it carried the provider's receipt (0) or ours (1).
    close_tx            TEXT,
    closeout_type       INTEGER,
    -- The session that replaced this one after a failover.
    replaced_by         TEXT    CHECK (replaced_by IS NULL OR length(replaced_by) = 66),
    -- The consumer's statistics over the session's prompts.
    prompts             BIGINT  NOT NULL DEFAULT 0,
    failures            BIGINT  NOT NULL DEFAULT 0,
    tps_scaled1000_sum  BIGINT  NOT NULL DEFAULT 0,
    ttft_ms_sum         BIGINT  NOT NULL DEFAULT 0,
    input_tokens        BIGINT  NOT NULL DEFAULT 0,
    output_tokens       BIGINT  NOT NULL DEFAULT 0,
    -- Local clock, unix seconds.
    created_at          BIGINT  NOT NULL
);
CREATE INDEX consumer_sessions_open ON consumer_sessions (user_address, closed_at, ends_at);
