//! The gateway's OpenAPI description, served on the gateway at `/openapi.json` (no key needed) and
//! committed as `docs/gateway-openapi.json`; the test below fails when the two differ
//! (`UPDATE_OPENAPI=1 cargo test -p proxy-router --lib openapi` rewrites the file).
//!
//! The request bodies are OpenAI's and are relayed with every field kept, so only the fields the
//! gateway itself reads are described; the answers of the inference routes are the provider's.

use serde::Serialize;
use utoipa::{Modify, OpenApi, ToSchema};

use super::http;
use super::CatalogModel;

/// Where the gateway serves its spec.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// One model: OpenAI's model object plus the marketplace's fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelObject {
    /// What a request names it by: its on-chain name, or its `0x` id when another model with the
    /// same name has more bids.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When it was registered, unix seconds.
    pub created: u64,
    /// The address that registered it.
    pub owned_by: String,
    /// Its on-chain name.
    pub name: String,
    /// Its marketplace id.
    pub model_id: String,
    /// Its active bids.
    pub bids: u64,
    /// The lowest active price, MOR wei per second, decimal text (`null` without bids).
    pub min_price_per_second: Option<String>,
}

impl ModelObject {
    /// The object of `model`; `named` when its name resolves to it.
    pub fn of(model: &CatalogModel, named: bool) -> Self {
        Self {
            id: if named { model.name.clone() } else { format!("{:#x}", model.id) },
            object: "model",
            created: model.created_at,
            owned_by: format!("{:#x}", model.owner),
            name: model.name.clone(),
            model_id: format!("{:#x}", model.id),
            bids: model.bids,
            min_price_per_second: model.min_price_per_second.map(|p| p.to_string()),
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models with an active bid that the key may use.
    pub data: Vec<ModelObject>,
}

/// An error, in OpenAI's shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// The fields of an error (`docs/gateway.md` lists every code).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for a human.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `insufficient_quota`, `api_error`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The machine code (`invalid_api_key`, `model_not_found`, `rate_limit_exceeded`, …).
    pub code: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
}

/// The fields of a chat request the gateway reads; every other field goes to the provider as sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatRequest {
    /// The marketplace model: its on-chain name or `0x` id.
    pub model: String,
    /// The conversation, OpenAI's message objects (non-empty).
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<serde_json::Value>,
    /// Server-sent events instead of one JSON answer.
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a last chunk with the usage.
    #[schema(value_type = Option<Object>)]
    pub stream_options: Option<serde_json::Value>,
}

/// The fields of a completions request the gateway reads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompletionRequest {
    /// The marketplace model: its on-chain name or `0x` id.
    pub model: String,
    /// The prompt: a string, or an array of one string.
    #[schema(value_type = Object)]
    pub prompt: serde_json::Value,
    /// Server-sent events instead of one JSON answer.
    pub stream: Option<bool>,
}

/// The fields of an embeddings request the gateway reads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// The marketplace model: its on-chain name or `0x` id.
    pub model: String,
    /// A string or an array of strings (or token arrays).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

/// The gateway's spec.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "proxy-router OpenAI gateway",
        description = "The consumer node as an OpenAI endpoint: an API key (POST /auth/keys on the admin API) \
                       and a marketplace model name; sessions are bought for the key. See docs/gateway.md."
    ),
    paths(http::chat, http::completions, http::embeddings, http::list_models, http::get_model),
    components(schemas(
        ModelObject, ModelList, ErrorResponse, ErrorDetail, ChatRequest, CompletionRequest, EmbeddingsRequest
    )),
    modifiers(&BearerKey),
    security(("apiKey" = [])),
    tags((name = "openai", description = "OpenAI's routes, authenticated by an API key"))
)]
pub struct Doc;

/// Declares the API key as a bearer token, OpenAI's way.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("apiKey", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The spec as committed: pretty JSON and a final newline.
pub fn openapi_json() -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&Doc::openapi())?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/gateway-openapi.json")
    }

    #[test]
    fn gateway_openapi_spec_describes_every_route() {
        let spec: serde_json::Value = serde_json::from_str(&openapi_json().unwrap()).unwrap();
        for (path, method) in [
            ("/v1/chat/completions", "post"),
            ("/v1/completions", "post"),
            ("/v1/embeddings", "post"),
            ("/v1/models", "get"),
            ("/v1/models/{model}", "get"),
        ] {
            let op = &spec["paths"][path][method];
            assert!(op.is_object(), "{method} {path} missing");
            for status in ["401", "429"] {
                assert!(op["responses"][status].is_object(), "{method} {path}: no {status}");
            }
        }
        assert_eq!(spec["components"]["securitySchemes"]["apiKey"]["scheme"], "bearer");
    }

    /// Fails when `docs/gateway-openapi.json` is not the generated spec; `UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn gateway_openapi_spec_matches_committed_file() {
        let generated = openapi_json().unwrap();
        let path = committed_path();
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| !v.is_empty() && v != "0") {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/gateway-openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p proxy-router --lib \
             openapi` and commit the result"
        );
    }
}
