//! `models-config.json`: the models this node serves as a provider (and can call directly as local
//! models), loaded once at start and validated entry by entry.
//!
//! Two formats, as the reference (notes §2.3):
//!
//! - **V2**, used when the top-level object has a `models` key:
//!   `{"$schema": …, "models": [{"modelId", "modelName", "apiType", "apiUrl", "apiKey"?,
//!   "concurrentSlots"?, "capacityPolicy"?, "parameters"?}, …]}`;
//! - **legacy**: `{"<modelId>": {"modelName", "apiType", "apiUrl", …}, …}` (keys starting with `$` are
//!   skipped).
//!
//! The JSON comes from `MODELS_CONFIG_CONTENT` when it is set and not blank, otherwise from the file at
//! `MODELS_CONFIG_PATH`; a missing file means no models (the node can still be a consumer).
//!
//! Where the reference only logs warnings, a bad entry here stops start-up with a
//! [`ModelsConfigError`] naming the entry (`models[2] (modelId 0x…)`) and the problem: a `modelId` that
//! is not 32 bytes of hex, a missing or empty `modelName`, an unknown `apiType`, an `apiType` of the
//! reference this build does not implement (`claudeai`, `prodia-*`, `hyperbolic-sd`: "not supported
//! by this build"), an `apiUrl` that is not an absolute `http(s)` URL with a host, a negative or
//! non-integer `concurrentSlots`, an unknown `capacityPolicy`, non-string `parameters`, or the same
//! model twice. Unknown keys are kept out and logged.
//!
//! Model ids are normalised to [`B256`]: with or without `0x`, in any case. (The reference uses the
//! configured text verbatim as its map key and looks it up lower-case with `0x`, so an upper-case or
//! unprefixed id is silently never served.)
//!
//! [`Models`] is the registry both roles use: the provider looks up a session's model, the consumer
//! calls a local model by id, and `GET /v1/models` lists [`LocalModel`]s in the reference's PascalCase
//! shape.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::B256;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::config::ProviderConfig;

/// The `apiType`s this build serves.
pub const SUPPORTED_API_TYPES: &[&str] = &["openai"];

/// The reference's other `apiType`s, refused at start with "not supported by this build".
pub const UNSUPPORTED_API_TYPES: &[&str] =
    &["claudeai", "prodia-sd", "prodia-sdxl", "prodia-v2", "hyperbolic-sd"];

/// A model backend's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    /// Any OpenAI-compatible server (llama.cpp, vLLM, Ollama, hosted APIs): chat completions and
    /// embeddings, streaming or not, `Authorization: Bearer <apiKey>`.
    OpenAi,
}

impl ApiType {
    /// The `apiType` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiType::OpenAi => "openai",
        }
    }
}

/// How a model's `concurrentSlots` are counted when a consumer asks for a session (reference
/// `capacity_manager.go`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CapacityPolicy {
    /// Open sessions on the model (not closed, not ended) must be fewer than the slots.
    #[default]
    Simple,
    /// Sessions with a prompt in the last 15 minutes (and not ended) must be fewer than the slots.
    IdleTimeout,
}

impl CapacityPolicy {
    /// The `capacityPolicy` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityPolicy::Simple => "simple",
            CapacityPolicy::IdleTimeout => "idle_timeout",
        }
    }
}

/// One validated model entry.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The on-chain model id.
    pub id: B256,
    /// Sent upstream as `model` (it overrides the client's).
    pub name: String,
    /// The backend's protocol.
    pub api_type: ApiType,
    /// The configured endpoint (see [`ModelConfig::chat_url`] and [`ModelConfig::embeddings_url`]).
    pub api_url: Url,
    /// Sent as `Authorization: Bearer <key>`; never logged.
    pub api_key: Option<SecretString>,
    /// Sessions served at once; 0 means unlimited.
    pub concurrent_slots: u32,
    /// How the slots are counted.
    pub capacity_policy: CapacityPolicy,
    /// Extra backend parameters (kept for backends that use them; `openai` ignores them).
    pub parameters: BTreeMap<String, String>,
}

/// Which OpenAI endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `…/chat/completions`.
    Chat,
    /// `…/embeddings`.
    Embeddings,
}

impl ModelConfig {
    /// Where chat completions are posted: `apiUrl` itself, except that a `…/embeddings` URL is
    /// turned into its sibling `…/chat/completions` and a bare `…/v1` gets `/chat/completions`
    /// appended.
    pub fn chat_url(&self) -> Url {
        self.endpoint_url(Endpoint::Chat)
    }

    /// Where embeddings are posted: the sibling `…/embeddings` of a `…/chat/completions` URL,
    /// `…/v1` + `/embeddings`, or `apiUrl` itself for any other path (as the reference, which posts
    /// every request to `apiUrl`).
    pub fn embeddings_url(&self) -> Url {
        self.endpoint_url(Endpoint::Embeddings)
    }

    /// The URL for `endpoint` (see [`ModelConfig::chat_url`]).
    pub fn endpoint_url(&self, endpoint: Endpoint) -> Url {
        let path = self.api_url.path().trim_end_matches('/');
        let base = ["/chat/completions", "/embeddings"]
            .iter()
            .find_map(|suffix| path.strip_suffix(suffix))
            .or_else(|| path.ends_with("/v1").then_some(path));
        let Some(base) = base else { return self.api_url.clone() };
        let suffix = match endpoint {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Embeddings => "/embeddings",
        };
        let mut url = self.api_url.clone();
        url.set_path(&format!("{base}{suffix}"));
        url
    }

    /// The entry as `GET /v1/models` shows it.
    pub fn local_model(&self) -> LocalModel {
        LocalModel {
            id: format!("{:#x}", self.id),
            name: self.name.clone(),
            model: self.name.clone(),
            api_type: self.api_type.as_str().to_owned(),
            api_url: self.api_url.to_string(),
            slots: self.concurrent_slots,
            capacity_policy: self.capacity_policy.as_str().to_owned(),
        }
    }
}

/// A configured model in the reference's `GET /v1/models` shape (`aiengine.LocalModel`, PascalCase
/// keys, not the OpenAI list format). The API key is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct LocalModel {
    /// The model id, `0x` + 64 lower-case hex digits.
    pub id: String,
    /// `modelName`.
    pub name: String,
    /// `modelName` again (the reference fills both).
    pub model: String,
    /// `apiType`.
    pub api_type: String,
    /// `apiUrl` as configured.
    pub api_url: String,
    /// `concurrentSlots` (0 = unlimited).
    pub slots: u32,
    /// `capacityPolicy` (`simple` when not configured).
    pub capacity_policy: String,
}

/// The validated models, in configuration order, by id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Models {
    entries: Arc<Vec<Arc<ModelConfig>>>,
    by_id: Arc<HashMap<B256, usize>>,
}

/// Where the models JSON came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `MODELS_CONFIG_CONTENT`.
    Content,
    /// The file at `MODELS_CONFIG_PATH`.
    File(PathBuf),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Content => f.write_str("MODELS_CONFIG_CONTENT"),
            ConfigSource::File(path) => write!(f, "models config {} (MODELS_CONFIG_PATH)", path.display()),
        }
    }
}

/// The entry an error is about: its place in the file and its `modelId` as written, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// `models[3]` (V2) or `"<key>"` (legacy).
    pub location: String,
    /// The `modelId` text, when the entry has one.
    pub model_id: Option<String>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.model_id {
            Some(id) if !self.location.contains(id.as_str()) => write!(f, "{} (modelId {id})", self.location),
            _ => f.write_str(&self.location),
        }
    }
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The entry is not a JSON object.
    #[error("the entry must be a JSON object")]
    NotAnObject,
    /// A required field is absent, null or empty.
    #[error("{field} is required")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{field} must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `modelId` is not 32 bytes of hex.
    #[error("modelId {value:?} is not 32 bytes of hex (64 hex digits, with or without 0x)")]
    ModelId {
        /// The text.
        value: String,
    },
    /// `apiType` is not one of the reference's.
    #[error("unknown apiType {value:?} (supported: {})", SUPPORTED_API_TYPES.join(", "))]
    UnknownApiType {
        /// The text.
        value: String,
    },
    /// `apiType` exists in the reference but this build does not implement it.
    #[error("apiType {value:?} is not supported by this build (supported: {})", SUPPORTED_API_TYPES.join(", "))]
    UnsupportedApiType {
        /// The text.
        value: String,
    },
    /// `apiUrl` is not a usable backend URL.
    #[error("apiUrl {reason}")]
    ApiUrl {
        /// Why (the URL itself is not repeated: it may carry a key).
        reason: String,
    },
    /// `concurrentSlots` is not an integer from 0 to 2^32 − 1.
    #[error("concurrentSlots must be an integer from 0 (unlimited) to {}, got {value}", u32::MAX)]
    ConcurrentSlots {
        /// The JSON value.
        value: String,
    },
    /// `capacityPolicy` is unknown.
    #[error("capacityPolicy {value:?} is unknown (simple, idle_timeout)")]
    CapacityPolicy {
        /// The text.
        value: String,
    },
    /// The model is configured twice.
    #[error("model {id:#x} is already configured by {first}")]
    Duplicate {
        /// The normalised id.
        id: B256,
        /// The first entry's location.
        first: String,
    },
}

/// Why the models configuration was refused at start.
#[derive(Debug, thiserror::Error)]
pub enum ModelsConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {source_ref}: {error}")]
    Read {
        /// The file.
        source_ref: ConfigSource,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The text is not a JSON object, or `models` is not an array.
    #[error("{source_ref}: {reason}")]
    Json {
        /// Where the JSON came from.
        source_ref: ConfigSource,
        /// What is wrong.
        reason: String,
    },
    /// One entry is invalid.
    #[error("{source_ref}: {entry}: {problem}")]
    Entry {
        /// Where the JSON came from.
        source_ref: ConfigSource,
        /// The entry.
        entry: Box<EntryRef>,
        /// What is wrong with it.
        problem: EntryProblem,
    },
}

impl Models {
    /// No models.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads the models of `config`: `MODELS_CONFIG_CONTENT` when set and not blank, otherwise the file
    /// at `MODELS_CONFIG_PATH` (absent file: no models).
    pub fn load(config: &ProviderConfig) -> Result<Self, ModelsConfigError> {
        Self::load_from(&config.models_config_path, config.models_config_content.as_deref())
    }

    /// [`Models::load`] from a path and optional content.
    pub fn load_from(path: &Path, content: Option<&str>) -> Result<Self, ModelsConfigError> {
        if let Some(content) = content.filter(|c| !c.trim().is_empty()) {
            return Self::parse(content, ConfigSource::Content);
        }
        let source_ref = ConfigSource::File(path.to_path_buf());
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, source_ref),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no models config file: this node serves no models");
                Ok(Self::empty())
            }
            Err(error) => Err(ModelsConfigError::Read { source_ref, error }),
        }
    }

    /// Parses and validates a models config text (either format).
    pub fn parse(text: &str, source_ref: ConfigSource) -> Result<Self, ModelsConfigError> {
        let json_err = |reason: String| ModelsConfigError::Json { source_ref: source_ref.clone(), reason };
        let root: Value = serde_json::from_str(text).map_err(|e| json_err(format!("not valid JSON: {e}")))?;
        let Value::Object(root) = root else {
            return Err(json_err("the top level must be a JSON object".into()));
        };
        let raw: Vec<(EntryRef, Value, Option<Value>)> = match root.get("models") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let model_id = item.get("modelId").cloned();
                    let entry = EntryRef {
                        location: format!("models[{i}]"),
                        model_id: model_id.as_ref().and_then(Value::as_str).map(str::to_owned),
                    };
                    (entry, item.clone(), model_id)
                })
                .collect(),
            Some(_) => return Err(json_err("\"models\" must be an array of model entries".into())),
            None => root
                .iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, item)| {
                    let entry = EntryRef { location: format!("entry {key:?}"), model_id: Some(key.clone()) };
                    (entry, item.clone(), Some(Value::String(key.clone())))
                })
                .collect(),
        };

        let mut entries: Vec<Arc<ModelConfig>> = Vec::with_capacity(raw.len());
        let mut locations: Vec<String> = Vec::with_capacity(raw.len());
        let mut by_id: HashMap<B256, usize> = HashMap::new();
        for (entry, item, model_id) in raw {
            let fail = |problem| ModelsConfigError::Entry {
                source_ref: source_ref.clone(),
                entry: Box::new(entry.clone()),
                problem,
            };
            let model = parse_entry(&entry, item, model_id).map_err(fail)?;
            if let Some(first) = by_id.get(&model.id).and_then(|&i| locations.get(i)) {
                return Err(fail(EntryProblem::Duplicate { id: model.id, first: first.clone() }));
            }
            by_id.insert(model.id, entries.len());
            locations.push(entry.location.clone());
            entries.push(Arc::new(model));
        }
        for model in &entries {
            tracing::info!(
                model_id = %format!("{:#x}", model.id),
                name = %model.name,
                api_type = model.api_type.as_str(),
                slots = model.concurrent_slots,
                policy = model.capacity_policy.as_str(),
                "model configured"
            );
        }
        Ok(Self { entries: Arc::new(entries), by_id: Arc::new(by_id) })
    }

    /// The model with this id.
    pub fn get(&self, id: &B256) -> Option<&Arc<ModelConfig>> {
        self.by_id.get(id).and_then(|&i| self.entries.get(i))
    }

    /// Every model, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModelConfig>> {
        self.entries.iter()
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no model is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every model in the `GET /v1/models` shape, in configuration order.
    pub fn local_models(&self) -> Vec<LocalModel> {
        self.entries.iter().map(|m| m.local_model()).collect()
    }
}

/// The known keys of an entry.
const KNOWN_KEYS: &[&str] = &[
    "modelId",
    "modelName",
    "apiType",
    "apiUrl",
    "apiKey",
    "concurrentSlots",
    "capacityPolicy",
    "parameters",
];

fn parse_entry(entry: &EntryRef, item: Value, model_id: Option<Value>) -> Result<ModelConfig, EntryProblem> {
    let Value::Object(fields) = item else { return Err(EntryProblem::NotAnObject) };
    for key in fields.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        tracing::warn!(entry = %entry, key = %key, "models config: unknown key ignored");
    }
    let model_id = required_string(model_id.as_ref(), "modelId")?;
    let id = parse_model_id(&model_id).ok_or(EntryProblem::ModelId { value: model_id })?;
    let name = required_string(fields.get("modelName"), "modelName")?;
    let api_type = required_string(fields.get("apiType"), "apiType")?;
    let api_type = match api_type.as_str() {
        "openai" => ApiType::OpenAi,
        other if UNSUPPORTED_API_TYPES.contains(&other) => {
            return Err(EntryProblem::UnsupportedApiType { value: api_type })
        }
        _ => return Err(EntryProblem::UnknownApiType { value: api_type }),
    };
    let api_url = parse_api_url(&required_string(fields.get("apiUrl"), "apiUrl")?)?;
    let api_key = optional_string(fields.get("apiKey"), "apiKey")?.map(SecretString::from);
    let concurrent_slots = match fields.get("concurrentSlots") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| EntryProblem::ConcurrentSlots { value: value.to_string() })?,
    };
    let capacity_policy = match optional_string(fields.get("capacityPolicy"), "capacityPolicy")?.as_deref() {
        None | Some("simple") => CapacityPolicy::Simple,
        Some("idle_timeout") => CapacityPolicy::IdleTimeout,
        Some(other) => return Err(EntryProblem::CapacityPolicy { value: other.to_owned() }),
    };
    let parameters = match fields.get("parameters") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => string_map(map)?,
        Some(_) => {
            return Err(EntryProblem::WrongType { field: "parameters", expected: "an object of strings" })
        }
    };
    Ok(ModelConfig { id, name, api_type, api_url, api_key, concurrent_slots, capacity_policy, parameters })
}

fn string_map(map: &Map<String, Value>) -> Result<BTreeMap<String, String>, EntryProblem> {
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(EntryProblem::WrongType { field: "parameters", expected: "an object of strings" }),
        })
        .collect()
}

/// A string field that must be present and not empty.
fn required_string(value: Option<&Value>, field: &'static str) -> Result<String, EntryProblem> {
    optional_string(value, field)?.ok_or(EntryProblem::Missing { field })
}

/// A string field; absent, null and `""` are `None`.
fn optional_string(value: Option<&Value>, field: &'static str) -> Result<Option<String>, EntryProblem> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(EntryProblem::WrongType { field, expected: "a string" }),
    }
}

/// `^(0x)?[0-9a-fA-F]{64}$` → the id.
pub fn parse_model_id(text: &str) -> Option<B256> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    alloy::hex::decode_to_slice(digits, &mut out).ok()?;
    Some(B256::from(out))
}

fn parse_api_url(text: &str) -> Result<Url, EntryProblem> {
    let url = Url::parse(text)
        .map_err(|e| EntryProblem::ApiUrl { reason: format!("is not an absolute URL ({e})") })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EntryProblem::ApiUrl {
            reason: format!("has scheme {:?}; only http and https are supported", url.scheme()),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EntryProblem::ApiUrl { reason: "has no host".into() });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const ID: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

    fn parse(text: &str) -> Result<Models, ModelsConfigError> {
        Models::parse(text, ConfigSource::Content)
    }

    fn v2(entry: &str) -> String {
        format!(r#"{{"$schema":"./schema.json","models":[{entry}]}}"#)
    }

    fn entry_error(text: &str) -> (EntryRef, EntryProblem, String) {
        match parse(text) {
            Err(err @ ModelsConfigError::Entry { .. }) => {
                let message = err.to_string();
                let ModelsConfigError::Entry { entry, problem, .. } = err else { unreachable!() };
                (*entry, problem, message)
            }
            other => panic!("expected an entry error, got {other:?}"),
        }
    }

    #[test]
    fn v2_entries_are_parsed_with_defaults_and_normalised_ids() {
        // The second id is upper case and has no 0x: the reference would never serve it.
        let second_text = format!("22{}", "AB".repeat(31));
        let text = format!(
            r#"{{"models":[
              {{"modelId":"{ID}","modelName":"llama","apiType":"openai",
                "apiUrl":"http://127.0.0.1:8080/v1/chat/completions","apiKey":"sk-1",
                "concurrentSlots":6,"capacityPolicy":"idle_timeout","parameters":{{"cfg_scale":"5"}}}},
              {{"modelId":"{second_text}","modelName":"other","apiType":"openai","apiUrl":"https://api.example/v1"}}
            ]}}"#
        );
        let models = parse(&text).unwrap();
        assert_eq!(models.len(), 2);
        let first = models.get(&ID.parse().unwrap()).unwrap();
        assert_eq!(first.name, "llama");
        assert_eq!(first.api_type, ApiType::OpenAi);
        assert_eq!(first.api_key.as_ref().unwrap().expose_secret(), "sk-1");
        assert_eq!((first.concurrent_slots, first.capacity_policy), (6, CapacityPolicy::IdleTimeout));
        assert_eq!(first.parameters.get("cfg_scale").map(String::as_str), Some("5"));

        let second_id: B256 = format!("0x22{}", "ab".repeat(31)).parse().unwrap();
        let second = models.get(&second_id).expect("upper-case id without 0x is normalised");
        assert_eq!((second.concurrent_slots, second.capacity_policy), (0, CapacityPolicy::Simple));
        assert!(second.api_key.is_none());
        assert_eq!(models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["llama", "other"]);
    }

    #[test]
    fn legacy_map_is_parsed_and_dollar_keys_skipped() {
        let text = format!(
            r#"{{"$schema":"x","{}":{{"modelName":"m","apiType":"openai","apiUrl":"http://h:1/v1/chat/completions","concurrentSlots":2}}}}"#,
            &ID[2..]
        );
        let models = parse(&text).unwrap();
        assert_eq!(models.len(), 1);
        let model = models.get(&ID.parse().unwrap()).unwrap();
        assert_eq!((model.name.as_str(), model.concurrent_slots), ("m", 2));
    }

    #[test]
    fn each_refusal_names_the_entry_and_the_problem() {
        let good = |id: &str| {
            format!(
                r#"{{"modelId":"{id}","modelName":"m","apiType":"openai","apiUrl":"http://h:1/v1/chat/completions"}}"#
            )
        };
        let with = |field: &str, value: &str| {
            let mut v: Value = serde_json::from_str(&good(ID)).unwrap();
            v[field] = serde_json::from_str(value).unwrap();
            format!("{},{}", good(&ID.replace("0x11", "0x22")), v)
        };

        let (entry, problem, message) = entry_error(&v2(&with("apiType", r#""gemini""#)));
        assert_eq!(entry, EntryRef { location: "models[1]".into(), model_id: Some(ID.into()) });
        assert_eq!(problem, EntryProblem::UnknownApiType { value: "gemini".into() });
        assert_eq!(
            message,
            format!("MODELS_CONFIG_CONTENT: models[1] (modelId {ID}): unknown apiType \"gemini\" (supported: openai)")
        );

        for unsupported in UNSUPPORTED_API_TYPES {
            let (_, problem, message) = entry_error(&v2(&with("apiType", &format!("{unsupported:?}"))));
            assert_eq!(problem, EntryProblem::UnsupportedApiType { value: (*unsupported).into() });
            assert!(message.contains("not supported by this build"), "{message}");
        }

        let (entry, problem, _) = entry_error(&v2(&with("modelId", r#""0x1234""#)));
        assert_eq!(entry.location, "models[1]");
        assert_eq!(problem, EntryProblem::ModelId { value: "0x1234".into() });
        let (_, problem, _) = entry_error(&v2(&with("modelId", &format!("\"{}zz\"", &ID[..64]))));
        assert!(matches!(problem, EntryProblem::ModelId { .. }));
        let (_, problem, _) = entry_error(&v2(&with("modelId", "null")));
        assert_eq!(problem, EntryProblem::Missing { field: "modelId" });

        for (url, reason) in [
            (r#""ftp://h/v1""#, "scheme \"ftp\""),
            (r#""/v1/chat/completions""#, "not an absolute URL"),
            (r#""unix:/tmp/sock""#, "scheme \"unix\""),
            (r#""http://:80/v1""#, "not an absolute URL"),
        ] {
            let (entry, problem, message) = entry_error(&v2(&with("apiUrl", url)));
            assert_eq!(entry.location, "models[1]");
            assert!(matches!(problem, EntryProblem::ApiUrl { .. }), "{url}: {problem:?}");
            assert!(message.contains(reason), "{url}: {message}");
        }
        let (_, problem, _) = entry_error(&v2(&with("apiUrl", r#""""#)));
        assert_eq!(problem, EntryProblem::Missing { field: "apiUrl" });

        for slots in ["-1", "1.5", "\"6\"", "4294967296"] {
            let (_, problem, message) = entry_error(&v2(&with("concurrentSlots", slots)));
            assert_eq!(problem, EntryProblem::ConcurrentSlots { value: slots.into() }, "{slots}");
            assert!(message.contains("concurrentSlots must be an integer"), "{message}");
        }

        let (_, problem, _) = entry_error(&v2(&with("capacityPolicy", r#""fifo""#)));
        assert_eq!(problem, EntryProblem::CapacityPolicy { value: "fifo".into() });
        let (_, problem, _) = entry_error(&v2(&with("modelName", r#""""#)));
        assert_eq!(problem, EntryProblem::Missing { field: "modelName" });
        let (_, problem, _) = entry_error(&v2(&with("modelName", "7")));
        assert_eq!(problem, EntryProblem::WrongType { field: "modelName", expected: "a string" });
        let (_, problem, _) = entry_error(&v2(&with("parameters", r#"{"steps":30}"#)));
        assert!(matches!(problem, EntryProblem::WrongType { field: "parameters", .. }));

        let (entry, problem, message) =
            entry_error(&v2(&format!("{},{}", good(ID), good(&ID[2..].to_uppercase()))));
        assert_eq!(entry.location, "models[1]");
        assert_eq!(problem, EntryProblem::Duplicate { id: ID.parse().unwrap(), first: "models[0]".into() });
        assert!(message.contains("already configured by models[0]"), "{message}");

        let (entry, problem, _) = entry_error(&v2("42"));
        assert_eq!((entry.location.as_str(), problem), ("models[0]", EntryProblem::NotAnObject));

        // Legacy entries are named by their key.
        let (entry, problem, message) =
            entry_error(r#"{"abc":{"modelName":"m","apiType":"openai","apiUrl":"http://h/v1"}}"#);
        assert_eq!(entry.location, "entry \"abc\"");
        assert_eq!(problem, EntryProblem::ModelId { value: "abc".into() });
        assert_eq!(message, "MODELS_CONFIG_CONTENT: entry \"abc\": modelId \"abc\" is not 32 bytes of hex (64 hex digits, with or without 0x)");
    }

    #[test]
    fn whole_file_problems() {
        for (text, reason) in [
            ("not json", "not valid JSON"),
            ("[]", "must be a JSON object"),
            (r#"{"models":{}}"#, "\"models\" must be an array"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(matches!(err, ModelsConfigError::Json { .. }), "{text}");
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
        assert!(parse(r#"{"models":[]}"#).unwrap().is_empty());
        assert!(parse("{}").unwrap().is_empty());
    }

    #[test]
    fn content_wins_over_the_file_and_a_missing_file_means_no_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models-config.json");
        assert!(Models::load_from(&path, None).unwrap().is_empty());
        assert!(Models::load_from(&path, Some("  ")).unwrap().is_empty(), "blank content is unset");

        std::fs::write(
            &path,
            v2(r#"{"modelId":"0x12","modelName":"m","apiType":"openai","apiUrl":"http://h/v1"}"#),
        )
        .unwrap();
        let err = Models::load_from(&path, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("models config {} (MODELS_CONFIG_PATH): models[0]", path.display())),
            "{err}"
        );

        let content =
            v2(&format!(r#"{{"modelId":"{ID}","modelName":"m","apiType":"openai","apiUrl":"http://h/v1"}}"#));
        assert_eq!(Models::load_from(&path, Some(&content)).unwrap().len(), 1);

        let not_a_file = dir.path();
        assert!(matches!(Models::load_from(not_a_file, None), Err(ModelsConfigError::Read { .. })));
    }

    #[test]
    fn endpoint_urls_derive_siblings() {
        let model = |url: &str| {
            let text =
                v2(&format!(r#"{{"modelId":"{ID}","modelName":"m","apiType":"openai","apiUrl":"{url}"}}"#));
            parse(&text).unwrap().get(&ID.parse().unwrap()).unwrap().as_ref().clone()
        };
        let m = model("http://h:8080/v1/chat/completions");
        assert_eq!(m.chat_url().as_str(), "http://h:8080/v1/chat/completions");
        assert_eq!(m.embeddings_url().as_str(), "http://h:8080/v1/embeddings");
        let m = model("https://h/api/v1/embeddings?x=1");
        assert_eq!(m.chat_url().as_str(), "https://h/api/v1/chat/completions?x=1");
        assert_eq!(m.embeddings_url().as_str(), "https://h/api/v1/embeddings?x=1");
        let m = model("http://h/v1/");
        assert_eq!(m.chat_url().as_str(), "http://h/v1/chat/completions");
        assert_eq!(m.embeddings_url().as_str(), "http://h/v1/embeddings");
        let m = model("http://h/generate");
        assert_eq!(m.chat_url().as_str(), "http://h/generate");
        assert_eq!(m.embeddings_url().as_str(), "http://h/generate");
    }

    #[test]
    fn local_models_use_the_reference_shape() {
        let text = v2(&format!(
            r#"{{"modelId":"{}","modelName":"llama","apiType":"openai","apiUrl":"http://h/v1/chat/completions","apiKey":"secret","concurrentSlots":3}}"#,
            ID.to_uppercase().replace("0X", "0x")
        ));
        let models = parse(&text).unwrap();
        let json = serde_json::to_value(models.local_models()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{
                "Id": ID, "Name": "llama", "Model": "llama", "ApiType": "openai",
                "ApiUrl": "http://h/v1/chat/completions", "Slots": 3, "CapacityPolicy": "simple"
            }])
        );
        assert!(!format!("{:?}", models.get(&ID.parse().unwrap()).unwrap()).contains("secret"));
    }
}
