-- The provider role's own state (not part of the chain index, never touched by the indexer):
--   * provider_users: each consumer's public key from its last session.request handshake, needed to
--     verify its prompts and to encrypt the answers after a restart;
--   * provider_sessions: per-session statistics of the prompts served, from which session.report signs
--     the receipt (averages of TTFT and tokens/s, token totals), and the last activity the
--     idle_timeout capacity policy counts.
-- Same encodings as 0001: lower-case 0x-hex TEXT ids, BIGINT numbers, BLOB bytes.

CREATE TABLE provider_users (
    address     TEXT   NOT NULL PRIMARY KEY
                CHECK (length(address) = 42 AND address = lower(address)),
    -- secp256k1 public key as sent in session.request (65 bytes 04‖x‖y, or 33 bytes compressed).
    public_key  BLOB   NOT NULL CHECK (length(public_key) IN (33, 65)),
    -- Unix milliseconds of the handshake that stored it.
    updated_at  BIGINT NOT NULL
);

CREATE TABLE provider_sessions (
    session_id          TEXT   NOT NULL PRIMARY KEY
                        CHECK (length(session_id) = 66 AND session_id = lower(session_id)),
    user_address        TEXT   NOT NULL
                        CHECK (length(user_address) = 42 AND user_address = lower(user_address)),
    model_id            TEXT   NOT NULL CHECK (length(model_id) = 66 AND model_id = lower(model_id)),
    -- The session's planned end on chain (Unix seconds).
    ends_at             BIGINT NOT NULL,
    -- Prompts answered completely, and prompts that failed (backend error, broken stream, consumer gone).
    prompts             BIGINT NOT NULL CHECK (prompts >= 0),
    failed_prompts      BIGINT NOT NULL CHECK (failed_prompts >= 0),
    -- Sums over the answered prompts; the report divides them by `prompts`.
    ttft_ms_sum         BIGINT NOT NULL CHECK (ttft_ms_sum >= 0),
    tps_scaled1000_sum  BIGINT NOT NULL CHECK (tps_scaled1000_sum >= 0),
    input_tokens        BIGINT NOT NULL CHECK (input_tokens >= 0),
    output_tokens       BIGINT NOT NULL CHECK (output_tokens >= 0),
    -- Unix milliseconds of the first prompt and of the latest prompt's start or end.
    first_prompt_at     BIGINT NOT NULL,
    last_prompt_at      BIGINT NOT NULL
);
CREATE INDEX provider_sessions_by_activity ON provider_sessions (model_id, last_prompt_at);
