//! Chat history (go-proxy-router.md §1.4, §5.1):
//!
//! | Method | Path | Permission | Answer |
//! |---|---|---|---|
//! | GET | `/v1/chats` | `get_chat_history` | `[{"chatId","modelId","title","isLocal","createdAt"}]`, newest first (`[]` when none) |
//! | GET | `/v1/chats/{id}` | `get_chat_history` | `{"title","modelId","isLocal","messages":[…]}` |
//! | POST | `/v1/chats/{id}` `{"title"}` | `edit_chat_history` | `{"result":true}` |
//! | DELETE | `/v1/chats/{id}` | `edit_chat_history` | `{"result":true}` |
//!
//! A message is `{"prompt": the request object, "response": the answer's text, "promptAt",
//! "responseAt" (unix seconds), "isImageContent", "isVideoRawContent", "isAudioContent"}`. Ids are
//! lower-case `0x` hex; `{id}` takes hex with or without `0x`. An unknown chat is 404.
//!
//! The history is written by the OpenAI route `POST /v1/chat/completions` when the request carries a
//! `chat_id` header and `PROXY_STORE_CHAT_CONTEXT` is on (the reference's default): see [`crate::chats`].
//! It lives in SQLite (`chats`, `chat_messages`), bounded by [`crate::store::ChatBounds`].

#[cfg(test)]
mod tests;

use alloy::primitives::B256;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{OpenApi, ToSchema};

use super::users::ResultResponse;
use super::wire::parse_b256;
use super::{guard, ApiError, ApiState, AuthStore, ErrorBody, Permission};
use crate::store;

pub use crate::chats::{
    answer_text, chat_title, record_exchange, tap, Capture, ChatLog, InvalidChatId, ModelRef, CHAT_ID_HEADER,
    MAX_RESPONSE_BYTES, MAX_TITLE_CHARS,
};

impl From<InvalidChatId> for ApiError {
    fn from(e: InvalidChatId) -> Self {
        ApiError::bad_request(CHAT_ID_HEADER, e.0)
    }
}

/// Longest title accepted by `POST /v1/chats/{id}`, in characters.
pub const MAX_RENAME_CHARS: usize = 1024;

/// The chat history routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    use Permission as P;
    Router::new().route("/v1/chats", guard(auth, P::GetChatHistory, get(list_chats))).route(
        "/v1/chats/{id}",
        guard(auth, P::GetChatHistory, get(get_chat))
            .merge(guard(auth, P::EditChatHistory, axum::routing::post(rename_chat)))
            .merge(guard(auth, P::EditChatHistory, axum::routing::delete(delete_chat))),
    )
}

/// The OpenAPI description of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(list_chats, get_chat, rename_chat, delete_chat),
    components(schemas(ChatJson, ChatHistoryJson, ChatMessageJson, RenameChatRequest)),
    tags((name = "chats", description = "Chat history of the OpenAI routes (the `chat_id` header)"))
)]
pub struct Doc;

/// One chat as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatJson {
    /// The chat id (the `chat_id` header).
    #[schema(value_type = String)]
    pub chat_id: B256,
    /// The model.
    #[schema(value_type = String)]
    pub model_id: B256,
    /// The title (the first user message, or as renamed).
    pub title: String,
    /// A local model (no session).
    pub is_local: bool,
    /// The first prompt's time, unix seconds.
    pub created_at: u64,
}

impl From<store::ChatSummary> for ChatJson {
    fn from(c: store::ChatSummary) -> Self {
        Self {
            chat_id: c.chat_id,
            model_id: c.model_id,
            title: c.title,
            is_local: c.is_local,
            created_at: c.created_at,
        }
    }
}

/// A whole chat.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatHistoryJson {
    /// The title.
    pub title: String,
    /// The model.
    #[schema(value_type = String)]
    pub model_id: B256,
    /// A local model (no session).
    pub is_local: bool,
    /// The exchanges, oldest first.
    pub messages: Vec<ChatMessageJson>,
}

/// One prompt and its answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageJson {
    /// The request object as sent.
    #[schema(value_type = Object)]
    pub prompt: Box<RawValue>,
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

/// `POST /v1/chats/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameChatRequest {
    /// The new title (1 to 1024 characters).
    #[schema(required = true, value_type = String, example = "Trip planning")]
    pub title: Option<String>,
}

/// The stored chats, newest first.
#[utoipa::path(
    get,
    path = "/v1/chats",
    tag = "chats",
    operation_id = "getChats",
    responses((status = 200, description = "The chats (`[]` when none)", body = [ChatJson]))
)]
pub async fn list_chats(State(state): State<ApiState>) -> Result<Json<Vec<ChatJson>>, ApiError> {
    let chats = state.store.chats().list().await?;
    Ok(Json(chats.into_iter().map(ChatJson::from).collect()))
}

/// One chat with its exchanges.
#[utoipa::path(
    get,
    path = "/v1/chats/{id}",
    tag = "chats",
    operation_id = "getChat",
    params(("id" = String, Path, description = "The chat id, 32 bytes hex")),
    responses(
        (status = 200, description = "The chat", body = ChatHistoryJson),
        (status = 400, description = "`id` is not 32 bytes of hex", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
    )
)]
pub async fn get_chat(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ChatHistoryJson>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chat = state.store.chats().get(id).await?.ok_or_else(|| ApiError::not_found(format!("chat {id}")))?;
    let messages = chat
        .messages
        .into_iter()
        .map(|m| {
            let prompt =
                RawValue::from_string(m.prompt).map_err(|e| ApiError::internal("stored chat prompt", &e))?;
            Ok(ChatMessageJson {
                prompt,
                response: m.response,
                prompt_at: m.prompt_at,
                response_at: m.response_at,
                is_image_content: m.is_image_content,
                is_video_raw_content: m.is_video_raw_content,
                is_audio_content: m.is_audio_content,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(ChatHistoryJson {
        title: chat.title,
        model_id: chat.model_id,
        is_local: chat.is_local,
        messages,
    }))
}

/// Renames a chat.
#[utoipa::path(
    post,
    path = "/v1/chats/{id}",
    tag = "chats",
    operation_id = "renameChat",
    params(("id" = String, Path, description = "The chat id, 32 bytes hex")),
    request_body = RenameChatRequest,
    responses(
        (status = 200, description = "Renamed", body = ResultResponse),
        (status = 400, description = "`id` or `title` is missing or invalid", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
    )
)]
pub async fn rename_chat(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<RenameChatRequest>, JsonRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let Json(body) = body?;
    let title = body
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("title", "required"))?;
    if title.chars().count() > MAX_RENAME_CHARS {
        return Err(ApiError::bad_request("title", format!("at most {MAX_RENAME_CHARS} characters")));
    }
    if !state.store.chats().rename(id, &title).await? {
        return Err(ApiError::not_found(format!("chat {id}")));
    }
    Ok(Json(ResultResponse { result: true }))
}

/// Deletes a chat and its exchanges.
#[utoipa::path(
    delete,
    path = "/v1/chats/{id}",
    tag = "chats",
    operation_id = "deleteChat",
    params(("id" = String, Path, description = "The chat id, 32 bytes hex")),
    responses(
        (status = 200, description = "Deleted", body = ResultResponse),
        (status = 400, description = "`id` is not 32 bytes of hex", body = ErrorBody),
        (status = 404, description = "No such chat", body = ErrorBody),
    )
)]
pub async fn delete_chat(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ResultResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    if !state.store.chats().delete(id).await? {
        return Err(ApiError::not_found(format!("chat {id}")));
    }
    Ok(Json(ResultResponse { result: true }))
}
