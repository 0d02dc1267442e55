//! [`ApiError`], the one error type of the HTTP API, and the only place where the errors of the
//! modules below (`store`, `chain`) and axum's extractor rejections are mapped to HTTP.
//!
//! Every error answers with a JSON body ([`ErrorBody`]):
//!
//! ```json
//! {"error": "invalid `limit`: invalid digit found in string", "code": "bad_request", "field": "limit"}
//! ```
//!
//! - `error` is the human message under the reference's key (its bodies are `{"error":"…"}`, §1.0),
//!   so scripts that read `.error` keep working;
//! - `code` is a stable snake_case machine code ([`ApiError::code`]) clients can branch on;
//! - `field` names the request field at fault, when one is;
//! - `reason` carries the chain's reason when a transaction or call reverts: the decoded custom
//!   error with its arguments, e.g. `ProviderStakeTooLow(amount=1, minAmount=100)`.
//!
//! A 5xx body never carries the text of the underlying error (SQL, RPC URLs, driver messages): the
//! source is logged with `tracing` and the client gets a fixed message per [`ApiError::code`].

use std::borrow::Cow;
use std::error::Error as StdError;

use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::AuthError;
use crate::chain::ChainError;
use crate::consumer::ConsumerError;
use crate::store::StoreError;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message (the reference's key).
    #[schema(example = "invalid `limit`: invalid digit found in string")]
    pub error: String,
    /// Stable machine code, snake_case (e.g. `bad_request`, `not_found`, `transaction_reverted`).
    #[schema(example = "bad_request")]
    pub code: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "limit")]
    pub field: Option<String>,
    /// The chain's reason for a revert: the decoded custom error and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ProviderStakeTooLow(amount=1, minAmount=100)")]
    pub reason: Option<String>,
}

/// An error answered by the API: status, machine code, human message and optional field and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    field: Option<String>,
    reason: Option<String>,
}

impl ApiError {
    /// A bare error; prefer the named constructors.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, code, message: message.into(), field: None, reason: None }
    }

    /// 400 `bad_request`: `field` of the request is invalid because of `problem`.
    pub fn bad_request(field: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        let field = field.into();
        let message = format!("invalid `{field}`: {problem}");
        Self { field: Some(field), ..Self::new(StatusCode::BAD_REQUEST, "bad_request", message) }
    }

    /// 400 `bad_request` that concerns the request as a whole (no single field).
    pub fn bad_request_body(problem: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", problem)
    }

    /// 404 `not_found`: `what` (e.g. `bid 0x12…`) does not exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 409 `conflict`: the request is valid but clashes with the current state.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503 `service_unavailable`: a dependency is down or not configured; retrying later may work.
    pub fn service_unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", message)
    }

    /// 501 `not_implemented`: the route exists but this node cannot serve it, for `reason` (e.g. no
    /// explorer URL is configured).
    pub fn not_implemented(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", "not implemented")
        }
    }

    /// 500 `internal`: logs `source` (with `context`, what the handler was doing) and answers a fixed
    /// text that reveals nothing of it.
    pub fn internal(context: &'static str, source: &(dyn StdError + 'static)) -> Self {
        tracing::error!(context, error = %ErrorChain(source), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// Adds the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a reason (e.g. a decoded revert).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human message (the body's `error`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The reason, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The response body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.to_string(),
            code: self.code.to_owned(),
            field: self.field.clone(),
            reason: self.reason.clone(),
        }
    }

    /// A 5xx with a fixed message, logging the source.
    fn server(
        status: StatusCode,
        code: &'static str,
        message: &'static str,
        source: &(dyn StdError + 'static),
    ) -> Self {
        tracing::error!(code, error = %ErrorChain(source), "{message}");
        Self::new(status, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl StdError for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// An error and its sources, `a: b: c`, for logs.
struct ErrorChain<'a>(&'a (dyn StdError + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::PageTooLarge { .. } => ApiError::bad_request("limit", &error),
            StoreError::OutOfRange { field, .. } => ApiError::bad_request(*field, &error),
            StoreError::Database { source: sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed, .. } => {
                ApiError::server(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the local database is busy or closed; retry later",
                    &error,
                )
            }
            _ => ApiError::internal("store", &error),
        }
    }
}

impl From<ChainError> for ApiError {
    fn from(error: ChainError) -> Self {
        match &error {
            // The revert's text is the operation, the decoded error and the transaction: no internals.
            ChainError::Reverted { contract_error, data, .. } => {
                let reason = match contract_error {
                    Some(decoded) => decoded.to_string(),
                    None if data.is_empty() => "reverted without data".to_owned(),
                    None => format!("unknown revert data {data}"),
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "transaction_reverted", error.to_string())
                    .with_reason(reason)
            }
            ChainError::Rejected { message, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "transaction_rejected",
                "the RPC node rejected the transaction",
            )
            .with_reason(message.clone()),
            ChainError::OutOfGas { .. } => {
                ApiError::new(StatusCode::CONFLICT, "out_of_gas", error.to_string())
            }
            ChainError::NonceTaken { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "nonce_taken",
                "the wallet's nonce was used by another sender; check the wallet's transactions",
            ),
            ChainError::Rpc { .. } if error.is_transport() => ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "rpc_unavailable",
                "no RPC node is reachable; retry later",
                &error,
            ),
            ChainError::Rpc { .. } => ApiError::server(
                StatusCode::BAD_GATEWAY,
                "rpc_error",
                "the RPC node answered with an error",
                &error,
            ),
            ChainError::ReceiptTimeout { tx_hashes, .. } => {
                let hashes = tx_hashes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                ApiError::server(
                    StatusCode::GATEWAY_TIMEOUT,
                    "receipt_timeout",
                    "the transaction was sent but no receipt arrived in time; it may still be mined",
                    &error,
                )
                .with_reason(format!("sent {hashes}"))
            }
            ChainError::Timeout { .. } => ApiError::server(
                StatusCode::GATEWAY_TIMEOUT,
                "rpc_timeout",
                "the RPC node did not answer in time",
                &error,
            ),
            _ => ApiError::internal("chain", &error),
        }
    }
}

impl From<ConsumerError> for ApiError {
    /// The consumer role's errors. A provider's model error is answered by the handlers themselves as
    /// the reference's `400 {"providerModelError": …}`; here it becomes a plain 400.
    fn from(error: ConsumerError) -> Self {
        let message = error.to_string();
        match error {
            ConsumerError::NoWallet => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_wallet", message),
            ConsumerError::Unreachable { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_unreachable", message)
            }
            ConsumerError::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "provider_timeout", message)
            }
            ConsumerError::NoData { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_no_data", message)
            }
            ConsumerError::Refused { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_refused", message)
            }
            ConsumerError::InvalidAnswer { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_invalid_answer", message)
            }
            ConsumerError::Interrupted { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_interrupted", message)
            }
            ConsumerError::FailoverFailed { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "failover_failed", message)
            }
            ConsumerError::Model { body } => {
                ApiError::new(StatusCode::BAD_REQUEST, "provider_model_error", message)
                    .with_reason(body.to_string())
            }
            ConsumerError::BadRequest { field, reason } => ApiError::bad_request(field, reason),
            ConsumerError::SessionNotFound(_)
            | ConsumerError::BidNotFound(_)
            | ConsumerError::ProviderNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            ConsumerError::NotOurSession { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "not_session_user", message)
            }
            ConsumerError::SessionClosed(_) => ApiError::new(StatusCode::CONFLICT, "session_closed", message),
            ConsumerError::SessionExpired { .. } => {
                ApiError::new(StatusCode::CONFLICT, "session_expired", message)
            }
            ConsumerError::OwnBid(_) => ApiError::new(StatusCode::CONFLICT, "own_bid", message),
            ConsumerError::InsufficientFunds { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds", message)
            }
            ConsumerError::StakeAboveLimit { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "stake_above_limit", message)
            }
            ConsumerError::NoBids { .. } => ApiError::new(StatusCode::NOT_FOUND, "no_bids", message),
            ConsumerError::NoProviderAccepted { failures } => {
                let reason = serde_json::to_string(&failures).unwrap_or_default();
                ApiError::new(StatusCode::BAD_GATEWAY, "no_provider_accepted", message).with_reason(reason)
            }
            ConsumerError::Chain(e) => e.into(),
            ConsumerError::Store(e) => e.into(),
            e @ (ConsumerError::RatingConfig { .. } | ConsumerError::Protocol(_)) => {
                ApiError::internal("consumer", &e)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    /// User management's errors: the request fields at fault are the `/auth/users` bodies' names.
    fn from(error: AuthError) -> Self {
        match &error {
            AuthError::InvalidUsername(reason) => ApiError::bad_request("username", reason),
            AuthError::InvalidPassword(reason) => ApiError::bad_request("password", reason),
            AuthError::UnknownPermission(_) => ApiError::bad_request("perms", &error),
            AuthError::UnknownUser(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", error.to_string()),
            AuthError::AdminRemoval => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden_user_change", error.to_string())
            }
            AuthError::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", error.to_string())
            }
            AuthError::MissingCredentials | AuthError::MalformedCredentials | AuthError::BadCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", error.to_string())
            }
            _ => ApiError::internal("auth files", &error),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match &rejection {
            JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
                match json_path_error(&rejection) {
                    Some((path, inner)) if path != "." => ApiError::bad_request(path, inner),
                    Some((_, inner)) => ApiError::bad_request_body(format!("invalid JSON body: {inner}")),
                    None => ApiError::bad_request_body("invalid JSON body"),
                }
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request with `Content-Type: application/json`",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
            other => {
                ApiError::bad_request_body(format!("cannot read the request body: {}", other.body_text()))
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        match find_source::<serde_path_to_error::Error<serde::de::value::Error>>(&rejection) {
            Some(e) if e.path().to_string() != "." => ApiError::bad_request(e.path().to_string(), e.inner()),
            Some(e) => ApiError::bad_request_body(format!("invalid query string: {}", e.inner())),
            None => ApiError::bad_request_body(format!("invalid query string: {}", rejection.body_text())),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let PathRejection::FailedToDeserializePathParams(e) = &rejection else {
            // Missing path parameters are a routing bug, not the client's fault.
            return ApiError::internal("path parameters", &rejection);
        };
        match e.kind() {
            PathErrorKind::ParseErrorAtKey { key, value, expected_type } => {
                ApiError::bad_request(key.clone(), format!("cannot parse `{value}` as {expected_type}"))
            }
            PathErrorKind::DeserializeError { key, message, .. } => {
                ApiError::bad_request(key.clone(), message)
            }
            PathErrorKind::InvalidUtf8InPathParam { key } => {
                ApiError::bad_request(key.clone(), "not valid UTF-8")
            }
            PathErrorKind::UnsupportedType { .. } => ApiError::internal("path parameters", &rejection),
            _ => ApiError::bad_request_body(format!("invalid path: {}", e.body_text())),
        }
    }
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
}

/// The JSON path (`.` for the root, else e.g. `stake` or `models[0].id`) and the inner error of a
/// JSON rejection.
fn json_path_error(rejection: &JsonRejection) -> Option<(String, String)> {
    let e = find_source::<serde_path_to_error::Error<serde_json::Error>>(rejection)?;
    Some((e.path().to_string(), e.inner().to_string()))
}

/// The first error of type `T` in `error`'s source chain.
fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Bytes, B256};
    use alloy::sol_types::SolError;
    use alloy::transports::{RpcError, TransportErrorKind};
    use axum::body::Body;
    use axum::extract::{FromRequest, FromRequestParts, Path, Query};
    use axum::http::Request;
    use http_body_util::BodyExt;
    use serde::Deserialize;

    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, ErrorBody, String) {
        let response = error.into_response();
        let status = response.status();
        assert_eq!(
            response.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (status, serde_json::from_str(&text).unwrap(), text)
    }

    #[tokio::test]
    async fn body_uses_the_reference_error_key_and_omits_empty_fields() {
        let (status, body, text) = body_of(ApiError::not_found("bid 0x01")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body.error, "bid 0x01 not found");
        assert_eq!(body.code, "not_found");
        assert_eq!(text, r#"{"error":"bid 0x01 not found","code":"not_found"}"#);
    }

    #[tokio::test]
    async fn constructors_have_their_status_and_code() {
        let cases = [
            (ApiError::bad_request("limit", "too big"), 400, "bad_request"),
            (ApiError::conflict("bid exists"), 409, "conflict"),
            (ApiError::service_unavailable("no wallet"), 503, "service_unavailable"),
            (ApiError::not_implemented("no explorer URL"), 501, "not_implemented"),
            (payload_too_large(), 413, "payload_too_large"),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status().as_u16(), error.code()), (status, code), "{error}");
        }
        let (_, body, _) = body_of(ApiError::bad_request("limit", "too big")).await;
        assert_eq!(body.field.as_deref(), Some("limit"));
        assert_eq!(body.error, "invalid `limit`: too big");
        let (_, body, _) = body_of(ApiError::not_implemented("no explorer URL")).await;
        assert_eq!(body.reason.as_deref(), Some("no explorer URL"));
    }

    #[tokio::test]
    async fn internal_never_shows_its_source() {
        let source = std::io::Error::other("secret sql: SELECT * FROM wallet at /var/db");
        let (status, body, text) = body_of(ApiError::internal("test", &source)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.code, "internal");
        assert!(!text.contains("secret") && !text.contains("SELECT"), "{text}");
    }

    #[tokio::test]
    async fn store_errors_map_to_400_503_or_opaque_500() {
        let e: ApiError = StoreError::PageTooLarge { limit: 1000, max: 100 }.into();
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("limit")));

        let e: ApiError = StoreError::OutOfRange { field: "offset", value: u64::MAX }.into();
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("offset")));

        let e: ApiError = StoreError::Database { op: "list bids", source: sqlx::Error::PoolTimedOut }.into();
        assert_eq!((e.status(), e.code()), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"));

        let secret = "no such table: secret_table";
        let e: ApiError =
            StoreError::Database { op: "list bids", source: sqlx::Error::Protocol(secret.into()) }.into();
        assert_eq!((e.status(), e.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        let (_, _, text) = body_of(e).await;
        assert!(!text.contains("secret_table") && !text.contains("list bids"), "{text}");

        let e: ApiError = StoreError::Corrupt { table: "bids", column: "x", reason: "bad".into() }.into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body_of(e).await.2.contains("bids"));
    }

    #[tokio::test]
    async fn reverts_are_422_with_the_decoded_error_in_reason() {
        let data = crate::chain::bindings::ProviderRegistry::ProviderStakeTooLow {
            amount: alloy::primitives::U256::from(1),
            minAmount: alloy::primitives::U256::from(100),
        }
        .abi_encode();
        let e: ApiError = ChainError::reverted("providerRegister", None, Bytes::from(data)).into();
        assert_eq!((e.status(), e.code()), (StatusCode::UNPROCESSABLE_ENTITY, "transaction_reverted"));
        assert_eq!(e.reason(), Some("ProviderStakeTooLow(amount=1, minAmount=100)"));
        assert!(e.message().contains("providerRegister reverted"), "{}", e.message());

        let e: ApiError = ChainError::reverted("bid", None, Bytes::new()).into();
        assert_eq!(e.reason(), Some("reverted without data"));
        let e: ApiError = ChainError::reverted("bid", None, Bytes::from(vec![1, 2, 3, 4])).into();
        assert_eq!(e.reason(), Some("unknown revert data 0x01020304"));
    }

    #[tokio::test]
    async fn rpc_failures_are_502_or_503_without_the_source_text() {
        let source = RpcError::Transport(TransportErrorKind::Custom(
            "connect to https://rpc.example/secret-key refused".into(),
        ));
        let e: ApiError = ChainError::Rpc { method: "eth_call", source }.into();
        assert_eq!((e.status(), e.code()), (StatusCode::SERVICE_UNAVAILABLE, "rpc_unavailable"));
        let (_, _, text) = body_of(e).await;
        assert!(!text.contains("secret-key") && !text.contains("rpc.example"), "{text}");

        let source: RpcError<TransportErrorKind> = RpcError::NullResp;
        let e: ApiError = ChainError::Rpc { method: "eth_call", source }.into();
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_GATEWAY, "rpc_error"));

        let e: ApiError =
            ChainError::Timeout { operation: "eth_call", after: std::time::Duration::ZERO }.into();
        assert_eq!(e.status(), StatusCode::GATEWAY_TIMEOUT);

        let hash = B256::repeat_byte(0xab);
        let e: ApiError = ChainError::ReceiptTimeout {
            operation: "bid".into(),
            nonce: 1,
            tx_hashes: vec![hash],
            waited: std::time::Duration::ZERO,
        }
        .into();
        assert_eq!((e.status(), e.code()), (StatusCode::GATEWAY_TIMEOUT, "receipt_timeout"));
        assert_eq!(e.reason(), Some(format!("sent {hash}").as_str()));

        let e: ApiError = ChainError::Decode { operation: "getBid", reason: "secret decode".into() }.into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body_of(e).await.2.contains("secret"));
    }

    #[test]
    fn rejected_and_conflicting_transactions_are_4xx() {
        let e: ApiError = ChainError::Rejected {
            operation: "bid".into(),
            nonce: 3,
            message: "insufficient funds for gas * price + value".into(),
        }
        .into();
        assert_eq!((e.status(), e.code()), (StatusCode::UNPROCESSABLE_ENTITY, "transaction_rejected"));
        assert_eq!(e.reason(), Some("insufficient funds for gas * price + value"));

        let e: ApiError =
            ChainError::NonceTaken { operation: "bid".into(), nonce: 3, tx_hashes: vec![] }.into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e: ApiError =
            ChainError::OutOfGas { operation: "bid".into(), tx_hash: B256::ZERO, gas_limit: 1 }.into();
        assert_eq!((e.status(), e.code()), (StatusCode::CONFLICT, "out_of_gas"));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Payload {
        stake: u64,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        id: u8,
    }

    async fn json_rejection(content_type: Option<&str>, body: &str) -> ApiError {
        let mut request = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let rejection = axum::Json::<Payload>::from_request(request, &()).await.unwrap_err();
        rejection.into()
    }

    #[tokio::test]
    async fn json_rejections_are_400_naming_the_field() {
        let e = json_rejection(Some("application/json"), r#"{"stake":"x","inner":{"id":1}}"#).await;
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("stake")));

        let e = json_rejection(Some("application/json"), r#"{"stake":1,"inner":{"id":300}}"#).await;
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("inner.id")));
        assert!(e.message().contains("inner.id"), "{}", e.message());

        let e = json_rejection(Some("application/json"), r#"{"stake":1}"#).await;
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, None));
        assert!(e.message().contains("missing field `inner`"), "{}", e.message());

        let e = json_rejection(Some("application/json"), "{not json").await;
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "bad_request"));

        let e = json_rejection(None, "{}").await;
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // A body without Content-Length that crosses the limit while it is read (the body limit
        // layer wraps it in `Limited`).
        let limited = http_body_util::Limited::new(Body::from(vec![b' '; 64]), 16);
        let request =
            Request::post("/").header("content-type", "application/json").body(Body::new(limited)).unwrap();
        let rejection = axum::Json::<Payload>::from_request(request, &()).await.unwrap_err();
        let e = ApiError::from(rejection);
        assert_eq!((e.status(), e.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Pagination {
        offset: u64,
        limit: u8,
    }

    #[tokio::test]
    async fn query_rejections_are_400_naming_the_field() {
        let (mut parts, ()) = Request::builder().uri("/?offset=1&limit=300").body(()).unwrap().into_parts();
        let rejection = Query::<Pagination>::from_request_parts(&mut parts, &()).await.unwrap_err();
        let e = ApiError::from(rejection);
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("limit")));
    }

    #[tokio::test]
    async fn path_rejections_are_400_naming_the_parameter() {
        let app = axum::Router::new().route(
            "/bids/{id}/{n}",
            axum::routing::get(|p: Result<Path<(String, u8)>, PathRejection>| async move {
                match p {
                    Ok(_) => StatusCode::OK.into_response(),
                    Err(rejection) => ApiError::from(rejection).into_response(),
                }
            }),
        );
        let named = axum::Router::new().route(
            "/models/{id}",
            axum::routing::get(|p: Result<Path<IdPath>, PathRejection>| async move {
                match p {
                    Ok(_) => StatusCode::OK.into_response(),
                    Err(rejection) => ApiError::from(rejection).into_response(),
                }
            }),
        );
        use tower::ServiceExt;
        let request = Request::get("/models/abc").body(Body::empty()).unwrap();
        let response = named.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.field.as_deref(), Some("id"));

        let request = Request::get("/bids/x/999").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.code, "bad_request");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct IdPath {
        id: u32,
    }
}
