//! OpenAI's wire conventions on the gateway: the error shape ([`OpenAiError`], the one mapping of
//! [`GatewayError`] to HTTP on this surface) and the legacy `/v1/completions` route, which is served
//! as a chat completion and translated back ([`completion_to_chat`], [`chat_to_completion`]).
//!
//! # Errors
//!
//! `{"error": {"message", "type", "code", "param"}}` with the status an OpenAI client expects:
//!
//! | Status | `type` | `code` | When |
//! |---|---|---|---|
//! | 400 | `invalid_request_error` | `invalid_value` | a malformed body; `param` names the field |
//! | 400 | `invalid_request_error` | `provider_model_error` | the model's own error (its body under `provider_error`) |
//! | 401 | `invalid_request_error` | `invalid_api_key` | no key, an unknown, revoked or expired key |
//! | 403 | `permission_error` | `model_not_allowed` | the key may not use the model |
//! | 404 | `invalid_request_error` | `model_not_found` | no such model (also unknown routes: `not_found`) |
//! | 429 | `insufficient_quota` | `insufficient_quota` | the key's request quota or MOR budget is used up |
//! | 429 | `requests` | `rate_limit_exceeded` | the key's per-minute rate, with `Retry-After` |
//! | 502 | `api_error` | `provider_error` | the provider's answer broke off or was invalid |
//! | 503 | `api_error` | `no_provider_available` | no provider could serve: `providers` lists each one tried and why |
//! | 503 | `api_error` | `no_wallet` / `node_insufficient_funds` | the node cannot pay |
//! | 504 | `api_error` | `provider_timeout` | the provider did not answer in time |
//! | 500 | `api_error` | `internal_error` | the node's own failure (details only in its log) |
//!
//! # Completions
//!
//! The marketplace's providers serve chat. A completions request becomes a chat request with one user
//! message holding `prompt` (a string, or an array of one string); every other field is kept. The
//! answer's `choices[].message.content` (or, streamed, `choices[].delta.content`) becomes
//! `choices[].text` of a `text_completion` object; `id`, `created`, `model` and `usage` are kept.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::GatewayError;
use crate::consumer::ConsumerError;

/// An error in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The human reason.
    pub message: String,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// The machine code.
    pub code: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    /// Extra fields of the error object (`providers`, `provider_error`).
    pub extra: Map<String, Value>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl OpenAiError {
    /// An error without `param` or extras.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            code,
            param: None,
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), Value::String(self.message.clone()));
        error.insert("type".into(), Value::String(self.kind.into()));
        error.insert("code".into(), Value::String(self.code.into()));
        error.insert("param".into(), self.param.clone().map_or(Value::Null, Value::String));
        error.extend(self.extra.clone());
        json!({ "error": error })
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "the node failed to serve the request; its log has the details",
        )
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<GatewayError> for OpenAiError {
    fn from(error: GatewayError) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        match error {
            GatewayError::InvalidKey(_) => {
                Self::new(S::UNAUTHORIZED, "invalid_request_error", "invalid_api_key", message)
            }
            GatewayError::ModelNotAllowed { .. } => Self {
                param: Some("model".into()),
                ..Self::new(S::FORBIDDEN, "permission_error", "model_not_allowed", message)
            },
            GatewayError::ModelNotFound { .. } => Self {
                param: Some("model".into()),
                ..Self::new(S::NOT_FOUND, "invalid_request_error", "model_not_found", message)
            },
            GatewayError::BadRequest { param, .. } => Self {
                param: Some(param.into()),
                ..Self::new(S::BAD_REQUEST, "invalid_request_error", "invalid_value", message)
            },
            GatewayError::QuotaExceeded(_) => {
                Self::new(S::TOO_MANY_REQUESTS, "insufficient_quota", "insufficient_quota", message)
            }
            GatewayError::RateLimited { retry_after, .. } => Self {
                retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
                ..Self::new(S::TOO_MANY_REQUESTS, "requests", "rate_limit_exceeded", message)
            },
            GatewayError::NoProvider { failures, .. } => {
                let mut e = Self::new(S::SERVICE_UNAVAILABLE, "api_error", "no_provider_available", message);
                e.extra.insert("providers".into(), serde_json::to_value(&failures).unwrap_or(Value::Null));
                e
            }
            GatewayError::KeyNotFound(_) => {
                Self::new(S::NOT_FOUND, "invalid_request_error", "key_not_found", message)
            }
            GatewayError::Consumer(e) => Self::from_consumer(e),
            GatewayError::Store(e) => {
                tracing::error!(error = %e, "gateway store failure");
                Self::internal()
            }
        }
    }
}

impl OpenAiError {
    fn from_consumer(error: ConsumerError) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        match error {
            ConsumerError::Model { body } => {
                let upstream = body.pointer("/error/message").and_then(Value::as_str).map(str::to_owned);
                let mut e = Self::new(
                    S::BAD_REQUEST,
                    "invalid_request_error",
                    "provider_model_error",
                    upstream.map_or(message, |m| format!("the provider's model answered an error: {m}")),
                );
                e.extra.insert("provider_error".into(), body);
                e
            }
            ConsumerError::BadRequest { field, .. } => Self {
                param: Some(field.into()),
                ..Self::new(S::BAD_REQUEST, "invalid_request_error", "invalid_value", message)
            },
            ConsumerError::Timeout { .. } => {
                Self::new(S::GATEWAY_TIMEOUT, "api_error", "provider_timeout", message)
            }
            ConsumerError::NoWallet => Self::new(S::SERVICE_UNAVAILABLE, "api_error", "no_wallet", message),
            ConsumerError::InsufficientFunds { .. } => {
                Self::new(S::SERVICE_UNAVAILABLE, "api_error", "node_insufficient_funds", message)
            }
            ConsumerError::Chain(e) => {
                tracing::warn!(error = %e, "gateway: chain failure");
                Self::new(
                    S::BAD_GATEWAY,
                    "api_error",
                    "chain_error",
                    "the chain could not be reached or refused the node's transaction; retry later",
                )
            }
            ConsumerError::Store(e) => {
                tracing::error!(error = %e, "gateway: consumer store failure");
                Self::internal()
            }
            ConsumerError::Protocol(e) => {
                tracing::error!(error = %e, "gateway: MOR-RPC message failure");
                Self::internal()
            }
            _ => Self::new(S::BAD_GATEWAY, "api_error", "provider_error", message),
        }
    }
}

/// The chat request that serves the completions request `body`.
pub fn completion_to_chat(mut body: Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let bad = |reason: &str| GatewayError::BadRequest { param: "prompt", reason: reason.to_owned() };
    let prompt = match body.remove("prompt") {
        Some(Value::String(text)) => text,
        Some(Value::Array(items)) if items.len() == 1 => match items.into_iter().next() {
            Some(Value::String(text)) => text,
            _ => return Err(bad("must be a string or an array of one string")),
        },
        Some(Value::Array(_)) => return Err(bad("only one prompt per request is supported")),
        Some(_) => return Err(bad("must be a string or an array of one string")),
        None => return Err(bad("missing")),
    };
    body.insert("messages".into(), json!([{ "role": "user", "content": prompt }]));
    Ok(body)
}

/// A chat answer (a whole `chat.completion` or one `chat.completion.chunk`) as a `text_completion`.
/// Bytes that are not a JSON object are returned unchanged.
pub fn chat_to_completion(chat: &[u8]) -> Bytes {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(chat) else {
        return Bytes::copy_from_slice(chat);
    };
    if let Some(Value::Array(choices)) = object.remove("choices") {
        let choices: Vec<Value> = choices
            .into_iter()
            .map(|choice| {
                let text = choice
                    .pointer("/message/content")
                    .or_else(|| choice.pointer("/delta/content"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                json!({
                    "text": text,
                    "index": choice.get("index").cloned().unwrap_or(json!(0)),
                    "logprobs": Value::Null,
                    "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        object.insert("choices".into(), Value::Array(choices));
    }
    object.insert("object".into(), Value::String("text_completion".into()));
    Bytes::from(Value::Object(object).to_string())
}

/// The closing usage chunk of a stream whose client asked for `stream_options.include_usage` and
/// whose provider sent none: the node's own counts (`usage_estimated: true`).
pub fn usage_chunk(object: &str, model: &str, prompt_tokens: u64, completion_tokens: u64) -> Bytes {
    let chunk = json!({
        "id": format!("usage-{}", crate::consumer::client::request_id()),
        "object": object,
        "created": crate::consumer::unix_now(),
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "usage_estimated": true,
    });
    Bytes::from(chunk.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_become_chat_and_come_back_as_text() {
        let body = json!({"model": "m", "prompt": "Say hi", "max_tokens": 5, "x_extra": 1});
        let chat = completion_to_chat(body.as_object().cloned().unwrap()).unwrap();
        assert_eq!(
            Value::Object(chat),
            json!({"model": "m", "max_tokens": 5, "x_extra": 1, "messages": [{"role": "user", "content": "Say hi"}]})
        );
        let one = json!({"prompt": ["a"]}).as_object().cloned().unwrap();
        assert!(completion_to_chat(one).is_ok());
        for bad in [json!({}), json!({"prompt": 3}), json!({"prompt": ["a", "b"]})] {
            let e = completion_to_chat(bad.as_object().cloned().unwrap()).unwrap_err();
            assert!(matches!(e, GatewayError::BadRequest { param: "prompt", .. }), "{e}");
        }

        let answer = br#"{"id":"c1","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}"#;
        let text: Value = serde_json::from_slice(&chat_to_completion(answer)).unwrap();
        assert_eq!(
            text,
            json!({"id":"c1","object":"text_completion","created":7,"model":"m","choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}})
        );
        let chunk = br#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"H"},"finish_reason":null}]}"#;
        let text: Value = serde_json::from_slice(&chat_to_completion(chunk)).unwrap();
        assert_eq!(text["choices"][0]["text"], "H");
        assert_eq!(text["object"], "text_completion");
    }

    #[test]
    fn errors_have_openai_shape_and_status() {
        let e = OpenAiError::from(GatewayError::RateLimited {
            limit: 2,
            retry_after: std::time::Duration::from_millis(1500),
        });
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(2));
        let body = e.body();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["param"], Value::Null);
        let e = OpenAiError::from(GatewayError::BadRequest { param: "messages", reason: "missing".into() });
        assert_eq!(
            (e.status, e.body()["error"]["param"].clone()),
            (StatusCode::BAD_REQUEST, json!("messages"))
        );
        let e =
            OpenAiError::from(GatewayError::NoProvider { failures: vec![], reason: Some("no bid".into()) });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.body()["error"]["providers"], json!([]));
        let e = OpenAiError::from(GatewayError::InvalidKey("x".into()));
        assert_eq!((e.status, e.code), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    }
}
