-- The OpenAI gateway's own state (docs/gateway.md): the API keys it hands out and the sessions it keeps
-- for each (key, model). Nothing here is on chain: the chain index stays the truth about a session's
-- stake, end and close; these rows say which key a session belongs to, how it is used, and what of its
-- MOR is still attributed to the key after it closed.
-- Encodings as in 0001: lower-case 0x-hex TEXT ids, decimal TEXT amounts, BIGINT unix seconds.

CREATE TABLE api_keys (
    -- `key_` and 16 hex characters: public, names the key in the admin API.
    id                  TEXT    NOT NULL PRIMARY KEY,
    name                TEXT    NOT NULL,
    -- SHA-256 of the secret, lower-case hex. The secret itself is never stored.
    key_hash            TEXT    NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    -- The first characters of the secret, to recognise it in a list.
    key_prefix          TEXT    NOT NULL,
    -- JSON array of the 0x model ids the key may use; NULL: every model.
    models              TEXT,
    max_requests        BIGINT,
    -- MOR wei the key's sessions may lock or pay at most.
    budget_mor          TEXT,
    requests_per_minute BIGINT,
    expires_at          BIGINT,
    created_at          BIGINT  NOT NULL,
    revoked_at          BIGINT,
    -- Usage: answered requests and their tokens.
    requests            BIGINT  NOT NULL DEFAULT 0,
    prompt_tokens       BIGINT  NOT NULL DEFAULT 0,
    completion_tokens   BIGINT  NOT NULL DEFAULT 0,
    last_used_at        BIGINT
);

CREATE TABLE gateway_sessions (
    session_id          TEXT    NOT NULL PRIMARY KEY
                        CHECK (length(session_id) = 66 AND session_id = lower(session_id)),
    key_id              TEXT    NOT NULL REFERENCES api_keys (id),
    model_id            TEXT    NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    provider            TEXT    NOT NULL CHECK (length(provider) = 42 AND provider = lower(provider)),
    bid_id              TEXT    NOT NULL CHECK (length(bid_id) = 66 AND bid_id = lower(bid_id)),
    price_per_second    TEXT    NOT NULL,
    stake               TEXT    NOT NULL,
    direct_payment      BOOLEAN NOT NULL,
    opened_at           BIGINT  NOT NULL,
    ends_at             BIGINT  NOT NULL,
    last_used_at        BIGINT  NOT NULL,
    -- open: serves the pair; closing: replaced, idle, expired, failed or revoked, to be closed;
    -- closed: closed on chain.
    state               TEXT    NOT NULL CHECK (state IN ('open', 'closing', 'closed')),
    close_reason        TEXT,
    closed_at           BIGINT  NOT NULL DEFAULT 0,
    close_tx            TEXT,
    -- After the close: MOR still attributed to the key (stake on hold until release_at; with direct
    -- payment, what the provider was paid, release_at 0 = for good).
    held                TEXT    NOT NULL DEFAULT '0',
    release_at          BIGINT  NOT NULL DEFAULT 0,
    created_at          BIGINT  NOT NULL
);
CREATE INDEX gateway_sessions_key ON gateway_sessions (key_id, state);
CREATE INDEX gateway_sessions_state ON gateway_sessions (state);
