-- The API's own state (go-proxy-router.md §5.1, §5.2): agent account requests and their allowances, the
-- transactions done for an agent, and the chat history of the admin API's OpenAI routes. None of it is part
-- of the chain index.
-- Encodings as in 0001: lower-case 0x-hex TEXT ids, decimal TEXT amounts, BIGINT unix seconds.

-- An agent's account request (POST /auth/users/request), kept after it is confirmed: the password is NOT
-- stored, only the proxy.conf credential made from it (saltHex$hashHex, HMAC-SHA256 keyed by the salt).
CREATE TABLE agent_users (
    username     TEXT    NOT NULL PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 128),
    credential   TEXT    NOT NULL,
    -- The requested whitelist, as a JSON array of permission names.
    perms        TEXT    NOT NULL,
    is_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL
);

-- What a user may still spend, per token: the lower-case token address, or 'eth'. Requested allowances of
-- an agent request are stored here too (they apply once the agent is confirmed and can log in).
CREATE TABLE agent_allowances (
    username  TEXT NOT NULL,
    token     TEXT NOT NULL CHECK (token = 'eth' OR (length(token) = 42 AND token = lower(token))),
    allowance TEXT NOT NULL,
    PRIMARY KEY (username, token)
);

-- Pending allowance requests (POST /auth/allowance/requests); one per user and token, the last one wins.
CREATE TABLE agent_allowance_requests (
    username     TEXT   NOT NULL,
    token        TEXT   NOT NULL CHECK (token = 'eth' OR (length(token) = 42 AND token = lower(token))),
    allowance    TEXT   NOT NULL,
    requested_at BIGINT NOT NULL,
    PRIMARY KEY (username, token)
);

-- Transactions sent for a non-admin user (open session, send MOR/ETH), newest last by seq.
CREATE TABLE agent_txs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    username   TEXT    NOT NULL,
    tx_hash    TEXT    NOT NULL CHECK (length(tx_hash) = 66 AND tx_hash = lower(tx_hash)),
    created_at BIGINT  NOT NULL
);
CREATE INDEX agent_txs_user ON agent_txs (username, seq);

-- Chat history: one row per chat (the chat_id header) and one per prompt/answer exchange.
CREATE TABLE chats (
    chat_id    TEXT    NOT NULL PRIMARY KEY CHECK (length(chat_id) = 66 AND chat_id = lower(chat_id)),
    model_id   TEXT    NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    title      TEXT    NOT NULL,
    is_local   BOOLEAN NOT NULL,
    -- The first exchange's promptAt (the reference's createdAt).
    created_at BIGINT  NOT NULL,
    -- The last exchange's responseAt (for evicting the least recently used chat).
    updated_at BIGINT  NOT NULL
);
CREATE INDEX chats_updated ON chats (updated_at);

CREATE TABLE chat_messages (
    chat_id             TEXT    NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    -- The request object, JSON.
    prompt              TEXT    NOT NULL,
    -- The answer's text.
    response            TEXT    NOT NULL,
    prompt_at           BIGINT  NOT NULL,
    response_at         BIGINT  NOT NULL,
    is_image_content    BOOLEAN NOT NULL DEFAULT FALSE,
    is_video_raw_content BOOLEAN NOT NULL DEFAULT FALSE,
    is_audio_content    BOOLEAN NOT NULL DEFAULT FALSE,
    -- length(prompt) + length(response) in bytes, for the per-chat byte bound.
    bytes               BIGINT  NOT NULL,
    PRIMARY KEY (chat_id, seq)
);
