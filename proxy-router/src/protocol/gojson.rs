//! Go-compatible JSON: the exact bytes Go's `encoding/json.Marshal` produces for the reference's
//! message structs, which is what MOR-RPC signatures cover.
//!
//! The message structs in [`super::messages`] declare their fields in the Go struct's order, with
//! `skip_serializing_if` wherever Go has `omitempty`, and the field types below serialise the way the
//! reference's Go types do:
//!
//! | Go type | JSON | here |
//! |---|---|---|
//! | `common.Address` | `"0x"` + 40 lower-case hex digits (not checksummed) | [`address`] |
//! | `common.Hash` | `"0x"` + 64 lower-case hex digits | [`hash`] |
//! | `lib.HexString` | `"0x"` + lower-case hex, `"0x"` when empty | [`hex_string`] |
//! | `lib.BigInt` | quoted decimal | [`big_int`] |
//! | `uint64` | JSON number | `u64` |
//!
//! [`to_go_json`] serialises with `serde_json` (compact, declaration order, the same escapes for `"`,
//! `\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00XX` with lower-case hex for other control characters) and
//! then applies the one escaping rule serde_json lacks: Go's HTML-safe escaping of `<`, `>` and `&` to
//! `\u003c`, `\u003e`, `\u0026`, and of U+2028 / U+2029 to `\u2028` / `\u2029`. These characters can
//! only occur inside JSON strings in compact output, so a byte-level pass over the whole output is exact.
//! Non-ASCII characters stay raw UTF-8, as in Go.

use serde::Serialize;

use super::error::ProtocolError;

/// Serialises `value` to the bytes Go's `json.Marshal` produces for the equivalent Go struct.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<Vec<u8>, ProtocolError> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| ProtocolError::Serialize { what, reason: e.to_string() })?;
    Ok(go_escape(bytes))
}

/// Applies Go's HTML-safe escaping to compact JSON produced by serde_json (see the module docs).
pub fn go_escape(bytes: Vec<u8>) -> Vec<u8> {
    let needs = bytes.iter().enumerate().any(|(i, &b)| {
        matches!(b, b'<' | b'>' | b'&') || (b == 0xE2 && is_line_or_paragraph_separator(&bytes[i..]))
    });
    if !needs {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'<' => out.extend_from_slice(br"\u003c"),
            b'>' => out.extend_from_slice(br"\u003e"),
            b'&' => out.extend_from_slice(br"\u0026"),
            0xE2 if is_line_or_paragraph_separator(&bytes[i..]) => {
                out.extend_from_slice(if bytes[i + 2] == 0xA8 { br"\u2028" } else { br"\u2029" });
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// U+2028 is `E2 80 A8` and U+2029 is `E2 80 A9` in UTF-8.
fn is_line_or_paragraph_separator(rest: &[u8]) -> bool {
    rest.len() >= 3 && rest[0] == 0xE2 && rest[1] == 0x80 && (rest[2] == 0xA8 || rest[2] == 0xA9)
}

/// Decodes hex the way the reference's `common.FromHex` does for well-formed input: an optional `0x` /
/// `0X` prefix and an odd number of digits padded with a leading zero. Unlike Go it refuses non-hex
/// characters instead of silently truncating.
pub fn decode_hex_lenient(text: &str) -> Result<Vec<u8>, hex::FromHexError> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() % 2 == 1 {
        hex::decode(format!("0{digits}"))
    } else {
        hex::decode(digits)
    }
}

/// Decodes a fixed-size `0x`-prefixed hex value as go-ethereum's `hexutil.UnmarshalFixedJSON` does:
/// the prefix is required, the length must be exact, either letter case is accepted.
fn decode_fixed_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| "hex string without 0x prefix".to_owned())?;
    if digits.len() != 2 * N {
        return Err(format!("hex string has length {}, want {} for {N} bytes", digits.len(), 2 * N));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `common.Address`: lower-case `0x…` (go-ethereum's `MarshalText`), strict `0x` + 40 digits in.
pub mod address {
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as `"0x"` + 40 lower-case hex digits.
    pub fn serialize<S: Serializer>(value: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(value.as_slice())))
    }

    /// Deserialises `"0x"` + 40 hex digits of either case.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::decode_fixed_hex::<20>(&text).map(Address::from).map_err(serde::de::Error::custom)
    }
}

/// `common.Hash`: lower-case `0x…` with 64 digits, strict on the way in.
pub mod hash {
    use alloy::primitives::B256;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as `"0x"` + 64 lower-case hex digits.
    pub fn serialize<S: Serializer>(value: &B256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(value.as_slice())))
    }

    /// Deserialises `"0x"` + 64 hex digits of either case.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<B256, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::decode_fixed_hex::<32>(&text).map(B256::from).map_err(serde::de::Error::custom)
    }
}

/// `lib.HexString`: `"0x"` + lower-case hex (`"0x"` when empty); accepts input with or without `0x`.
pub mod hex_string {
    use alloy::primitives::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Go's `omitempty` test for a byte slice.
    pub fn is_empty(value: &Bytes) -> bool {
        value.0.is_empty()
    }

    /// Serialises as `"0x"` + lower-case hex.
    pub fn serialize<S: Serializer>(value: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(value)))
    }

    /// Deserialises hex with or without `0x` (odd length padded, as `common.FromHex`).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::decode_hex_lenient(&text).map(Bytes::from).map_err(serde::de::Error::custom)
    }

    /// As [`deserialize`], with JSON `null` (a nil `*lib.HexString`) read as empty.
    pub fn deserialize_nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        match <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)? {
            None => Ok(Bytes::new()),
            Some(text) => super::decode_hex_lenient(&text).map(Bytes::from).map_err(serde::de::Error::custom),
        }
    }
}

/// `lib.BigInt`: a quoted decimal on the way out; a quoted decimal or a bare JSON integer on the way in
/// (the reference strips optional quotes and parses base 10).
pub mod big_int {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as a quoted decimal, e.g. `"270233162839357259772"`.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(u64),
        Text(String),
    }

    /// Deserialises a quoted decimal or a JSON integer that fits in 64 bits.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        match Repr::deserialize(deserializer)? {
            Repr::Number(n) => Ok(U256::from(n)),
            Repr::Text(text) => {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(serde::de::Error::custom(format!("invalid big.Int string: {text:?}")));
                }
                U256::from_str_radix(&text, 10).map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, Address, Bytes, B256, U256};
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Sample {
        #[serde(with = "address")]
        user: Address,
        #[serde(with = "hash")]
        id: B256,
        #[serde(with = "hex_string", default, skip_serializing_if = "hex_string::is_empty")]
        sig: Bytes,
        #[serde(with = "hex_string")]
        empty: Bytes,
        #[serde(with = "big_int")]
        spend: U256,
        text: String,
        ts: u64,
    }

    fn sample(text: &str) -> Sample {
        Sample {
            user: address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            id: b256!("b0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3"),
            sig: Bytes::new(),
            empty: Bytes::new(),
            spend: U256::from(270_233_162_839_357_259_772_u128),
            text: text.to_owned(),
            ts: 1_719_253_477_054,
        }
    }

    #[test]
    fn go_encodings_of_the_reference_types() {
        let json = to_go_json(&sample("x"), "sample").unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"user":"0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc","id":"0xb0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3","empty":"0x","spend":"270233162839357259772","text":"x","ts":1719253477054}"#
        );
    }

    #[test]
    fn html_characters_and_line_separators_are_escaped_like_go() {
        let json = to_go_json(&"a<b>&c\u{2028}d\u{2029}e é ☃ /", "text").unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), r#""a\u003cb\u003e\u0026c\u2028d\u2029e é ☃ /""#);
    }

    #[test]
    fn control_characters_are_escaped_like_go() {
        // Go 1.22+: \b and \f get short escapes, other control characters \u00xx with lower-case hex.
        let json = to_go_json(&"\u{8}\u{c}\n\r\t\u{1}\u{1f}\"\\\u{7f}", "text").unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\\u{7f}\"");
    }

    #[test]
    fn escaping_is_idempotent_on_already_escaped_output() {
        let once = to_go_json(&"<&>", "text").unwrap();
        assert_eq!(go_escape(once.clone()), once);
    }

    #[test]
    fn decoding_accepts_what_go_accepts() {
        let json = r#"{"user":"0X3C44CDDDB6A900FA2B585DD299E03D12FA4293BC","id":"0xB0119306909B29FEB8A2A30F343C32F7CEB0927325A4A6E4936D11D1236556C3","sig":"abc","empty":"0x","spend":270,"text":"\u003c","ts":1}"#;
        let decoded: Sample = serde_json::from_str(json).unwrap();
        assert_eq!(decoded.user, address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc"));
        assert_eq!(decoded.sig, Bytes::from(vec![0x0a, 0xbc]));
        assert_eq!(decoded.spend, U256::from(270));
        assert_eq!(decoded.text, "<");
    }

    #[test]
    fn decoding_rejects_malformed_fixed_values() {
        let base = serde_json::to_value(sample("x")).unwrap();
        for (field, bad) in [
            ("user", "3c44cdddb6a900fa2b585dd299e03d12fa4293bc"),
            ("user", "0x3c44cdddb6a900fa2b585dd299e03d12fa4293"),
            ("id", "0xzz"),
            ("sig", "0xgg"),
            ("spend", "-1"),
            ("spend", "0x10"),
            ("spend", ""),
        ] {
            let mut value = base.clone();
            value[field] = serde_json::Value::String(bad.to_owned());
            assert!(serde_json::from_value::<Sample>(value).is_err(), "{field}={bad} accepted");
        }
    }
}
