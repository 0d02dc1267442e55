//! The chat history tables: [`ChatsRepo`] keeps one row per chat (the `chat_id` header of the OpenAI
//! routes) and one per prompt/answer exchange ([`Exchange`]), as the reference's chat files do
//! (go-proxy-router.md §5.1), within [`ChatBounds`]: a chat keeps its newest exchanges up to a number
//! and a byte size, and the store keeps the most recently used chats up to a number. Older ones are
//! dropped by the append that crosses a bound, in the same transaction.

use alloy::primitives::B256;
use sqlx::SqlitePool;

use super::codec::{self, Cols};
use super::error::StoreError;
use super::sql;

/// How much chat history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatBounds {
    /// Exchanges kept per chat (the oldest go first).
    pub max_messages: u64,
    /// Bytes of prompts and answers kept per chat (the oldest exchanges go first; the newest one is
    /// always kept).
    pub max_bytes: u64,
    /// Chats kept (the least recently used go first).
    pub max_chats: u64,
}

impl ChatBounds {
    /// 1000 exchanges and 16 MiB per chat, 1000 chats.
    pub const DEFAULT: ChatBounds =
        ChatBounds { max_messages: 1000, max_bytes: 16 * 1024 * 1024, max_chats: 1000 };
}

impl Default for ChatBounds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One chat as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    /// The chat id.
    pub chat_id: B256,
    /// The model it talks to.
    pub model_id: B256,
    /// Its title.
    pub title: String,
    /// Whether the model is one of this node's own (no session).
    pub is_local: bool,
    /// The first exchange's prompt time, unix seconds.
    pub created_at: u64,
}

/// One prompt and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request object as JSON text.
    pub prompt: String,
    /// The answer's text.
    pub response: String,
    /// When the prompt was sent, unix seconds.
    pub prompt_at: u64,
    /// When the answer ended, unix seconds.
    pub response_at: u64,
    /// The answer is an image.
    pub is_image_content: bool,
    /// The answer is raw video.
    pub is_video_raw_content: bool,
    /// The answer is audio.
    pub is_audio_content: bool,
}

/// A whole chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// Its title.
    pub title: String,
    /// The model it talks to.
    pub model_id: B256,
    /// Whether the model is one of this node's own.
    pub is_local: bool,
    /// Its exchanges, oldest first.
    pub messages: Vec<Exchange>,
}

/// The chat tables. Reached through [`Store::chats`](super::Store::chats).
#[derive(Debug, Clone, Copy)]
pub struct ChatsRepo<'a> {
    pub(crate) pool: &'a SqlitePool,
}

impl ChatsRepo<'_> {
    /// Appends `exchange` to the chat, creating it with `model_id`, `is_local` and `title` when it is
    /// new (an existing chat keeps its own), then applies `bounds`.
    pub async fn append(
        &self,
        chat_id: B256,
        model_id: B256,
        is_local: bool,
        title: &str,
        exchange: &Exchange,
        bounds: ChatBounds,
    ) -> Result<(), StoreError> {
        const OP: &str = "append chat";
        let id = codec::b256(&chat_id);
        let mut tx = sql::write_tx(self.pool, OP).await?;
        sqlx::query(
            "INSERT INTO chats (chat_id, model_id, title, is_local, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (chat_id) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(&id)
        .bind(codec::b256(&model_id))
        .bind(title)
        .bind(is_local)
        .bind(codec::int("prompt_at", exchange.prompt_at)?)
        .bind(codec::int("response_at", exchange.response_at)?)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        let bytes = exchange.prompt.len().saturating_add(exchange.response.len());
        sqlx::query(
            "INSERT INTO chat_messages (chat_id, seq, prompt, response, prompt_at, response_at, \
             is_image_content, is_video_raw_content, is_audio_content, bytes) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages WHERE chat_id = $1), \
             $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&exchange.prompt)
        .bind(&exchange.response)
        .bind(codec::int("prompt_at", exchange.prompt_at)?)
        .bind(codec::int("response_at", exchange.response_at)?)
        .bind(exchange.is_image_content)
        .bind(exchange.is_video_raw_content)
        .bind(exchange.is_audio_content)
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;

        // The chat's bounds: walk its exchanges newest first and drop everything from the first one
        // that no longer fits.
        let sizes: Vec<(i64, i64)> =
            sqlx::query_as("SELECT seq, bytes FROM chat_messages WHERE chat_id = $1 ORDER BY seq DESC")
                .bind(&id)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(OP))?;
        let mut kept_bytes: u64 = 0;
        let mut drop_from = None;
        for (i, (seq, size)) in sizes.iter().enumerate() {
            kept_bytes = kept_bytes.saturating_add(u64::try_from(*size).unwrap_or(0));
            let count = u64::try_from(i + 1).unwrap_or(u64::MAX);
            if i > 0 && (count > bounds.max_messages || kept_bytes > bounds.max_bytes) {
                drop_from = Some(*seq);
                break;
            }
        }
        if let Some(seq) = drop_from {
            sqlx::query("DELETE FROM chat_messages WHERE chat_id = $1 AND seq <= $2")
                .bind(&id)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(OP))?;
        }

        // The store's bound: the least recently used other chats go.
        let chats: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chats")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        let excess = u64::try_from(chats).unwrap_or(0).saturating_sub(bounds.max_chats);
        if excess > 0 {
            sqlx::query(
                "DELETE FROM chats WHERE chat_id IN (SELECT chat_id FROM chats WHERE chat_id != $1 \
                 ORDER BY updated_at, chat_id LIMIT $2)",
            )
            .bind(&id)
            .bind(i64::try_from(excess).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        }
        sql::commit(tx, OP).await
    }

    /// Every chat, newest first.
    pub async fn list(&self) -> Result<Vec<ChatSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT chat_id, model_id, title, is_local, created_at FROM chats \
             ORDER BY created_at DESC, chat_id",
        )
        .fetch_all(self.pool)
        .await
        .map_err(StoreError::db("list chats"))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "chats");
                Ok(ChatSummary {
                    chat_id: c.b256("chat_id")?,
                    model_id: c.b256("model_id")?,
                    title: c.text("title")?,
                    is_local: c.boolean("is_local")?,
                    created_at: c.u64("created_at")?,
                })
            })
            .collect()
    }

    /// The chat with its exchanges, `None` when unknown.
    pub async fn get(&self, chat_id: B256) -> Result<Option<Chat>, StoreError> {
        const OP: &str = "get chat";
        let id = codec::b256(&chat_id);
        let mut tx = sql::read_tx(self.pool, OP).await?;
        let row = sqlx::query("SELECT model_id, title, is_local FROM chats WHERE chat_id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(OP))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(StoreError::db(OP))?;
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT prompt, response, prompt_at, response_at, is_image_content, is_video_raw_content, \
             is_audio_content FROM chat_messages WHERE chat_id = $1 ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(OP))?;
        tx.rollback().await.map_err(StoreError::db(OP))?;
        let c = Cols::new(&row, "chats");
        let messages = rows
            .iter()
            .map(|row| {
                let c = Cols::new(row, "chat_messages");
                Ok(Exchange {
                    prompt: c.text("prompt")?,
                    response: c.text("response")?,
                    prompt_at: c.u64("prompt_at")?,
                    response_at: c.u64("response_at")?,
                    is_image_content: c.boolean("is_image_content")?,
                    is_video_raw_content: c.boolean("is_video_raw_content")?,
                    is_audio_content: c.boolean("is_audio_content")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(Chat {
            title: c.text("title")?,
            model_id: c.b256("model_id")?,
            is_local: c.boolean("is_local")?,
            messages,
        }))
    }

    /// Renames the chat; `false` when unknown.
    pub async fn rename(&self, chat_id: B256, title: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE chats SET title = $1 WHERE chat_id = $2")
            .bind(title)
            .bind(codec::b256(&chat_id))
            .execute(self.pool)
            .await
            .map_err(StoreError::db("rename chat"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the chat and its exchanges; `false` when unknown.
    pub async fn delete(&self, chat_id: B256) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM chats WHERE chat_id = $1")
            .bind(codec::b256(&chat_id))
            .execute(self.pool)
            .await
            .map_err(StoreError::db("delete chat"))?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
#[path = "chats_tests.rs"]
mod tests;
