//! The JSON the API speaks, where it must match the reference byte for byte (go-proxy-router.md §1.0):
//!
//! - [`BigInt`]: the reference's `lib.BigInt`, a **quoted** decimal string on output; on input a JSON
//!   number of any size or a quoted base-10 string, parsed exactly (no float rounding: the raw JSON text
//!   is read).
//! - [`RawNumber`]: the reference's raw `*big.Int`, an **unquoted** JSON number of any size.
//! - [`HexBytes`]: `lib.HexString`, `"0x" + hex` (`"0x"` when empty).
//! - The core structs [`ProviderJson`], [`ModelJson`], [`BidJson`], [`SessionJson`] with the reference's
//!   PascalCase keys and number encodings, built from the store's records.
//! - [`PageQuery`]: `offset`, `limit`, `order` query parameters, validated with the field named.
//! - The common wrappers ([`TxResponse`], [`StatusResponse`]).
//!
//! Addresses and hashes serialise as lower-case `0x` hex, as go-ethereum's `MarshalText` does (alloy's
//! `Address` serialises checksummed, so addresses go through [`lower_address`]).

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{Address, B256, U256};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::store::{self, Order, Page};

/// An integer of up to 256 bits: out as a quoted decimal string, in as a JSON number or a quoted
/// decimal string (the reference's `lib.BigInt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, ToSchema)]
#[schema(value_type = String, example = "1000000000000000000")]
pub struct BigInt(pub U256);

impl From<U256> for BigInt {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<u64> for BigInt {
    fn from(value: u64) -> Self {
        Self(U256::from(value))
    }
}

impl Serialize for BigInt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        let digits = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(D::Error::custom)?
        } else {
            text.to_owned()
        };
        parse_decimal(&digits).map(BigInt).map_err(D::Error::custom)
    }
}

/// Parses a non-negative base-10 integer of at most 256 bits, with a reason a person can act on.
pub fn parse_decimal(text: &str) -> Result<U256, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected a decimal integer, got an empty string".into());
    }
    if text.starts_with('-') {
        return Err(format!("expected a non-negative integer, got {text}"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a decimal integer (digits only), got {text}"));
    }
    U256::from_str_radix(text, 10).map_err(|_| format!("{text} does not fit in 256 bits"))
}

/// An unsigned integer of any size as an unquoted JSON number (the reference's raw `*big.Int`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ToSchema)]
#[schema(value_type = u64, example = 1000)]
pub struct RawNumber(pub U256);

impl From<U256> for RawNumber {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<u64> for RawNumber {
    fn from(value: u64) -> Self {
        Self(U256::from(value))
    }
}

impl Serialize for RawNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BigInt::deserialize(deserializer).map(|b| RawNumber(b.0))
    }
}

/// Bytes as `"0x" + hex` (`"0x"` when empty), the reference's `lib.HexString`.
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, example = "0x1234")]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(&text);
        hex::decode(digits).map(HexBytes).map_err(|e| D::Error::custom(format!("invalid hex: {e}")))
    }
}

/// Lower-case `0x` hex of an address (go-ethereum's JSON form).
pub fn lower_address(address: &Address) -> String {
    format!("{address:#x}")
}

/// Serialises an address as lower-case hex.
fn ser_address<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&lower_address(address))
}

/// Parses a 32-byte hash written as 64 hex digits, `0x` optional.
pub fn b256_from_hex(text: &str) -> Result<B256, String> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() != 64 {
        return Err(format!("expected 32 bytes as 64 hex digits, got {text:?}"));
    }
    B256::from_str(digits).map_err(|e| format!("invalid hex: {e}"))
}

/// Parses a path or query value as a 32-byte `0x` hash, naming `field` on failure.
pub fn parse_b256(field: &str, text: &str) -> Result<B256, ApiError> {
    b256_from_hex(text).map_err(|e| ApiError::bad_request(field, e))
}

/// Parses a path or query value as a `0x` address, naming `field` on failure.
pub fn parse_address(field: &str, text: &str) -> Result<Address, ApiError> {
    Address::from_str(text.trim()).map_err(|e| ApiError::bad_request(field, format!("invalid address: {e}")))
}

/// Serde helpers for `0x`-prefixed 32-byte hashes and addresses in request bodies, so a bad value is
/// reported with its field by the JSON extractor.
pub mod hex32 {
    use super::*;

    /// Deserialises a `0x` hash of exactly 32 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<B256, D::Error> {
        let text = String::deserialize(deserializer)?;
        b256_from_hex(&text).map_err(D::Error::custom)
    }
}

/// `structs.Provider` of the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ProviderJson {
    /// The provider's address (lower-case hex).
    #[serde(serialize_with = "ser_address")]
    #[schema(value_type = String, example = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")]
    pub address: Address,
    /// MOR-RPC endpoint, `host:port`.
    pub endpoint: String,
    /// Stake held by the diamond (quoted).
    pub stake: BigInt,
    /// First registration time, unix seconds (quoted).
    pub created_at: BigInt,
    /// Deregistered.
    pub is_deleted: bool,
}

impl From<&store::Provider> for ProviderJson {
    fn from(p: &store::Provider) -> Self {
        Self {
            address: p.address,
            endpoint: p.endpoint.clone(),
            stake: p.stake.into(),
            created_at: p.created_at.into(),
            is_deleted: p.is_deleted,
        }
    }
}

/// The kind of a model, derived from its tags (the reference's `ModelType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ModelType {
    /// Text generation.
    Llm,
    /// Speech to text.
    Stt,
    /// Text to speech.
    Tts,
    /// Embeddings.
    Embedding,
    /// No known tag.
    Unknown,
}

impl ModelType {
    /// The type named by the first tag that names one (the reference's `model_tags.go` lists).
    pub fn from_tags<S: AsRef<str>>(tags: &[S]) -> Self {
        tags.iter().map(|t| Self::from_tag(t.as_ref())).find(|t| *t != Self::Unknown).unwrap_or(Self::Unknown)
    }

    /// The type one tag names (case-insensitive), or [`ModelType::Unknown`].
    pub fn from_tag(tag: &str) -> Self {
        match tag.trim().to_ascii_lowercase().as_str() {
            "llm" | "textgeneration" | "text2text" | "text-to-text" | "t2t" => Self::Llm,
            "stt" | "transcribe" | "s2t" | "speech" | "speech-to-text" | "speech2text" => Self::Stt,
            "tts" | "text-to-speech" | "text2speech" | "t2s" => Self::Tts,
            "embedding" | "embeddings" => Self::Embedding,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Llm => "LLM",
            Self::Stt => "STT",
            Self::Tts => "TTS",
            Self::Embedding => "EMBEDDING",
            Self::Unknown => "UNKNOWN",
        })
    }
}

/// `structs.Model` of the reference: raw (unquoted) numbers for `Fee`, `Stake`, `CreatedAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ModelJson {
    /// On-chain model id.
    #[schema(value_type = String)]
    pub id: B256,
    /// IPFS content id (32 bytes).
    #[serde(rename = "IpfsCID")]
    #[schema(value_type = String)]
    pub ipfs_cid: B256,
    /// Declared fee (unquoted number).
    pub fee: RawNumber,
    /// Stake held by the diamond (unquoted number).
    pub stake: RawNumber,
    /// Owner (lower-case hex).
    #[serde(serialize_with = "ser_address")]
    #[schema(value_type = String)]
    pub owner: Address,
    /// Display name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// First registration time, unix seconds (unquoted number).
    pub created_at: RawNumber,
    /// Deregistered.
    pub is_deleted: bool,
    /// Kind derived from the tags.
    pub model_type: ModelType,
}

impl From<&store::Model> for ModelJson {
    fn from(m: &store::Model) -> Self {
        Self {
            id: m.id,
            ipfs_cid: m.ipfs_cid,
            fee: m.fee.into(),
            stake: m.stake.into(),
            owner: m.owner,
            name: m.name.clone(),
            tags: m.tags.clone(),
            created_at: m.created_at.into(),
            is_deleted: m.is_deleted,
            model_type: ModelType::from_tags(&m.tags),
        }
    }
}

/// `structs.Bid` of the reference: every number quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct BidJson {
    /// Bid id.
    #[schema(value_type = String)]
    pub id: B256,
    /// The provider (lower-case hex).
    #[serde(serialize_with = "ser_address")]
    #[schema(value_type = String)]
    pub provider: Address,
    /// The model.
    #[schema(value_type = String)]
    pub model_agent_id: B256,
    /// MOR wei per second.
    pub price_per_second: BigInt,
    /// Per provider–model counter.
    pub nonce: BigInt,
    /// Posting time, unix seconds.
    pub created_at: BigInt,
    /// Deletion time, 0 while active.
    pub deleted_at: BigInt,
}

impl From<&store::Bid> for BidJson {
    fn from(b: &store::Bid) -> Self {
        Self {
            id: b.id,
            provider: b.provider,
            model_agent_id: b.model_id,
            price_per_second: b.price_per_second.into(),
            nonce: b.nonce.into(),
            created_at: b.created_at.into(),
            deleted_at: b.deleted_at.into(),
        }
    }
}

/// `structs.Session` of the reference: every number raw (unquoted), `CloseoutReceipt` hex **without**
/// `0x`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SessionJson {
    /// Session id.
    #[serde(rename = "Id")]
    #[schema(value_type = String)]
    pub id: B256,
    /// The consumer (lower-case hex).
    #[serde(rename = "User", serialize_with = "ser_address")]
    #[schema(value_type = String)]
    pub user: Address,
    /// The provider (lower-case hex).
    #[serde(rename = "Provider", serialize_with = "ser_address")]
    #[schema(value_type = String)]
    pub provider: Address,
    /// The model.
    #[serde(rename = "ModelAgentId")]
    #[schema(value_type = String)]
    pub model_agent_id: B256,
    /// The bid.
    #[serde(rename = "BidID")]
    #[schema(value_type = String)]
    pub bid_id: B256,
    /// The user's stake.
    #[serde(rename = "Stake")]
    pub stake: RawNumber,
    /// The bid's price, MOR wei per second (0 when the bid is unknown locally).
    #[serde(rename = "PricePerSecond")]
    pub price_per_second: RawNumber,
    /// The closing receipt, hex without `0x` (empty while open).
    #[serde(rename = "CloseoutReceipt")]
    pub closeout_receipt: String,
    /// 0 = closed with the provider's receipt, 1 = dispute.
    #[serde(rename = "CloseoutType")]
    pub closeout_type: RawNumber,
    /// Paid to the provider so far.
    #[serde(rename = "ProviderWithdrawnAmount")]
    pub provider_withdrawn_amount: RawNumber,
    /// Opening time, unix seconds.
    #[serde(rename = "OpenedAt")]
    pub opened_at: RawNumber,
    /// Planned end, unix seconds.
    #[serde(rename = "EndsAt")]
    pub ends_at: RawNumber,
    /// Closing time, 0 while open.
    #[serde(rename = "ClosedAt")]
    pub closed_at: RawNumber,
}

impl SessionJson {
    /// The reference's session JSON, with the price of the session's bid (`None`: 0).
    pub fn new(s: &store::Session, price_per_second: Option<U256>) -> Self {
        Self {
            id: s.id,
            user: s.user,
            provider: s.provider,
            model_agent_id: s.model_id,
            bid_id: s.bid_id,
            stake: s.stake.into(),
            price_per_second: price_per_second.unwrap_or_default().into(),
            closeout_receipt: hex::encode(&s.closeout_receipt),
            closeout_type: s.closeout_type.into(),
            provider_withdrawn_amount: s.provider_withdrawn_amount.into(),
            opened_at: s.opened_at.into(),
            ends_at: s.ends_at.into(),
            closed_at: s.closed_at.into(),
        }
    }
}

/// `{"tx": "0x…"}`: the hash of a mined transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxResponse {
    /// Transaction hash.
    #[schema(value_type = String, example = "0x5f7c…")]
    pub tx: B256,
}

/// `{"status": "ok"}`: the reference's answer of a setting that took effect (`OkRes()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

impl StatusResponse {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self { status: "ok".to_owned() }
    }
}

/// Pagination query parameters: `offset` (default 0), `limit` (default per route), `order`
/// (`asc`, the default, or `desc`; the reference always answered descending, see
/// docs/compatibility.md).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows to skip.
    #[param(value_type = Option<String>, example = "0")]
    pub offset: Option<String>,
    /// Rows to return (at most 1000; `0` = every row on the routes that list all by default).
    #[param(value_type = Option<String>, example = "10")]
    pub limit: Option<String>,
    /// `asc` (oldest first) or `desc` (newest first).
    #[param(value_type = Option<String>, example = "asc")]
    pub order: Option<String>,
}

/// What a route does with `limit` when it is absent or 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitDefault {
    /// Absent means this many rows; 0 means none (the count only).
    Rows(u64),
    /// Absent or 0 means every row (the reference's providers and models lists).
    All,
}

impl PageQuery {
    /// The store page this query asks for. `None` for `limit` means "every row" ([`LimitDefault::All`]).
    pub fn page(&self, default: LimitDefault) -> Result<(Page, Option<u64>), ApiError> {
        let offset = match self.offset.as_deref() {
            None | Some("") => 0,
            Some(text) => {
                let value = parse_decimal(text).map_err(|e| ApiError::bad_request("offset", e))?;
                u64::try_from(value).map_err(|_| ApiError::bad_request("offset", "too large"))?
            }
        };
        let limit = match (self.limit.as_deref(), default) {
            (None | Some(""), LimitDefault::Rows(n)) => Some(n),
            (None | Some(""), LimitDefault::All) => None,
            (Some(text), default) => {
                let value: u64 = text
                    .trim()
                    .parse()
                    .map_err(|e| ApiError::bad_request("limit", format!("{e}: {text:?}")))?;
                if value > Page::MAX_LIMIT {
                    return Err(ApiError::bad_request("limit", format!("at most {}", Page::MAX_LIMIT)));
                }
                match (value, default) {
                    (0, LimitDefault::All) => None,
                    (v, _) => Some(v),
                }
            }
        };
        let order = match self.order.as_deref().map(str::trim) {
            None | Some("") => Order::OldestFirst,
            Some(o) if o.eq_ignore_ascii_case("asc") => Order::OldestFirst,
            Some(o) if o.eq_ignore_ascii_case("desc") => Order::NewestFirst,
            Some(o) => {
                return Err(ApiError::bad_request("order", format!("expected asc or desc, got {o:?}")))
            }
        };
        let page = Page { offset, limit: limit.unwrap_or(Page::MAX_LIMIT), order };
        Ok((page, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        stake: BigInt,
    }

    async fn through_axum(json: &str) -> Result<BigInt, String> {
        use axum::extract::FromRequest;
        let request = axum::http::Request::post("/")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(json.to_owned()))
            .unwrap();
        axum::Json::<Body>::from_request(request, &()).await.map(|b| b.0.stake).map_err(|e| e.body_text())
    }

    #[tokio::test]
    async fn bigint_reads_numbers_of_any_size_and_strings_exactly_through_axum() {
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(through_axum(&format!(r#"{{"stake": {big}}}"#)).await.unwrap().0, U256::MAX);
        assert_eq!(through_axum(&format!(r#"{{"stake": "{big}"}}"#)).await.unwrap().0, U256::MAX);
        let e18 = U256::from(10u64).pow(U256::from(20u64));
        assert_eq!(through_axum(r#"{"stake": 100000000000000000000}"#).await.unwrap().0, e18);
        for bad in ["1.5", "-1", "1e3", "\"0x10\"", "\"\"", "true", "null"] {
            let error = through_axum(&format!(r#"{{"stake": {bad}}}"#)).await.unwrap_err();
            assert!(error.contains("stake"), "{bad}: {error}");
        }
        let too_big = format!("{big}0");
        assert!(through_axum(&format!(r#"{{"stake": {too_big}}}"#)).await.unwrap_err().contains("256 bits"));
    }

    #[test]
    fn numbers_serialise_quoted_or_raw_as_the_reference() {
        let e20 = U256::from(10u64).pow(U256::from(20u64));
        assert_eq!(serde_json::to_string(&BigInt(e20)).unwrap(), "\"100000000000000000000\"");
        assert_eq!(serde_json::to_string(&RawNumber(e20)).unwrap(), "100000000000000000000");
        assert_eq!(serde_json::to_string(&HexBytes(vec![])).unwrap(), "\"0x\"");
        assert_eq!(serde_json::to_string(&HexBytes(vec![0xab])).unwrap(), "\"0xab\"");
    }

    #[test]
    fn model_type_comes_from_the_first_known_tag() {
        assert_eq!(ModelType::from_tags(&["fast", "LLM"]), ModelType::Llm);
        assert_eq!(ModelType::from_tags(&["embeddings", "llm"]), ModelType::Embedding);
        assert_eq!(ModelType::from_tags(&["speech-to-text"]), ModelType::Stt);
        assert_eq!(ModelType::from_tags(&["t2s"]), ModelType::Tts);
        assert_eq!(ModelType::from_tags::<&str>(&[]), ModelType::Unknown);
        assert_eq!(serde_json::to_string(&ModelType::Embedding).unwrap(), "\"EMBEDDING\"");
    }

    #[test]
    fn page_query_validates_each_field() {
        let q = |o: Option<&str>, l: Option<&str>, ord: Option<&str>| PageQuery {
            offset: o.map(Into::into),
            limit: l.map(Into::into),
            order: ord.map(Into::into),
        };
        let (page, limit) = q(None, None, None).page(LimitDefault::Rows(10)).unwrap();
        assert_eq!((page.offset, page.limit, page.order, limit), (0, 10, Order::OldestFirst, Some(10)));
        let (page, limit) = q(Some("5"), Some("0"), Some("desc")).page(LimitDefault::All).unwrap();
        assert_eq!((page.offset, page.order, limit), (5, Order::NewestFirst, None));
        for (query, field) in [
            (q(Some("x"), None, None), "offset"),
            (q(None, Some("-1"), None), "limit"),
            (q(None, Some("1001"), None), "limit"),
            (q(None, None, Some("up")), "order"),
        ] {
            assert_eq!(query.page(LimitDefault::Rows(10)).unwrap_err().field(), Some(field));
        }
    }
}
