//! Conversions between the domain types and their column encodings: lower-case 0x-hex TEXT for
//! addresses and 32-byte ids, decimal TEXT for `uint256`, BIGINT for `u64`, JSON TEXT for lists, and
//! the `(kind, id, sub_id)` triple of an [`EntityRef`]. Decoding never trusts the file: a bad value is
//! a [`StoreError::Corrupt`] naming the table and column.

use alloy::primitives::{Address, B256, U256};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::error::StoreError;
use super::types::EntityRef;

/// Lower-case `0x`-prefixed hex of an address (42 characters).
pub(crate) fn addr(a: &Address) -> String {
    alloy::hex::encode_prefixed(a.as_slice())
}

/// Lower-case `0x`-prefixed hex of a 32-byte id (66 characters).
pub(crate) fn b256(b: &B256) -> String {
    alloy::hex::encode_prefixed(b.as_slice())
}

/// Decimal text of a `uint256`.
pub(crate) fn u256(v: &U256) -> String {
    v.to_string()
}

/// A `u64` as a database integer.
pub(crate) fn int(field: &'static str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange { field, value: v })
}

/// Reads and decodes one column.
pub(crate) struct Cols<'r> {
    row: &'r SqliteRow,
    table: &'static str,
}

impl<'r> Cols<'r> {
    pub(crate) fn new(row: &'r SqliteRow, table: &'static str) -> Self {
        Self { row, table }
    }

    fn corrupt(&self, column: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { table: self.table, column, reason: reason.into() }
    }

    fn raw<T>(&self, column: &'static str) -> Result<T, StoreError>
    where
        T: for<'a> sqlx::Decode<'a, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        self.row.try_get::<T, _>(column).map_err(|e| self.corrupt(column, e.to_string()))
    }

    pub(crate) fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.raw::<String>(column)
    }

    pub(crate) fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.raw::<Option<String>>(column)
    }

    pub(crate) fn blob(&self, column: &'static str) -> Result<Vec<u8>, StoreError> {
        self.raw::<Vec<u8>>(column)
    }

    pub(crate) fn boolean(&self, column: &'static str) -> Result<bool, StoreError> {
        self.raw::<bool>(column)
    }

    pub(crate) fn i64(&self, column: &'static str) -> Result<i64, StoreError> {
        self.raw::<i64>(column)
    }

    pub(crate) fn opt_i64(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        self.raw::<Option<i64>>(column)
    }

    pub(crate) fn u64(&self, column: &'static str) -> Result<u64, StoreError> {
        let v = self.i64(column)?;
        u64::try_from(v).map_err(|_| self.corrupt(column, format!("negative value {v}")))
    }

    pub(crate) fn u32(&self, column: &'static str) -> Result<u32, StoreError> {
        let v = self.i64(column)?;
        u32::try_from(v).map_err(|_| self.corrupt(column, format!("{v} is not a uint32")))
    }

    pub(crate) fn address(&self, column: &'static str) -> Result<Address, StoreError> {
        let s = self.text(column)?;
        parse_address(&s).map_err(|reason| self.corrupt(column, reason))
    }

    pub(crate) fn b256(&self, column: &'static str) -> Result<B256, StoreError> {
        let s = self.text(column)?;
        parse_b256(&s).map_err(|reason| self.corrupt(column, reason))
    }

    pub(crate) fn u256(&self, column: &'static str) -> Result<U256, StoreError> {
        let s = self.text(column)?;
        parse_u256(&s).map_err(|reason| self.corrupt(column, reason))
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        let s = self.text(column)?;
        serde_json::from_str(&s).map_err(|e| self.corrupt(column, format!("invalid JSON: {e}")))
    }
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let digits = s.strip_prefix("0x").ok_or_else(|| format!("{s:?} has no 0x prefix"))?;
    if digits.len() != 2 * N || digits.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("{s:?} is not {N} bytes of lower-case hex"));
    }
    let mut out = [0u8; N];
    alloy::hex::decode_to_slice(digits, &mut out).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(out)
}

pub(crate) fn parse_address(s: &str) -> Result<Address, String> {
    parse_hex::<20>(s).map(Address::from)
}

pub(crate) fn parse_b256(s: &str) -> Result<B256, String> {
    parse_hex::<32>(s).map(B256::from)
}

pub(crate) fn parse_u256(s: &str) -> Result<U256, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("{s:?} is not a decimal number"));
    }
    U256::from_str_radix(s, 10).map_err(|e| format!("{s:?}: {e}"))
}

/// Column values of an [`EntityRef`] in the journal tables: `(kind, id, sub_id)`.
pub(crate) fn entity_cols(e: &EntityRef) -> (&'static str, String, String) {
    match e {
        EntityRef::Provider(a) => ("provider", addr(a), String::new()),
        EntityRef::Model(id) => ("model", b256(id), String::new()),
        EntityRef::Bid(id) => ("bid", b256(id), String::new()),
        EntityRef::Session(id) => ("session", b256(id), String::new()),
        EntityRef::ProviderModelStats { model_id, provider } => {
            ("provider_model_stats", b256(model_id), addr(provider))
        }
        EntityRef::ModelStats(id) => ("model_stats", b256(id), String::new()),
    }
}

/// Decodes an [`EntityRef`] from a journal row.
pub(crate) fn entity_from_row(row: &SqliteRow, table: &'static str) -> Result<EntityRef, StoreError> {
    let c = Cols::new(row, table);
    let kind = c.text("entity_kind")?;
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt { table, column, reason };
    let id = c.text("entity_id")?;
    let sub = c.text("entity_sub_id")?;
    let b = || parse_b256(&id).map_err(|r| corrupt("entity_id", r));
    Ok(match kind.as_str() {
        "provider" => EntityRef::Provider(parse_address(&id).map_err(|r| corrupt("entity_id", r))?),
        "model" => EntityRef::Model(b()?),
        "bid" => EntityRef::Bid(b()?),
        "session" => EntityRef::Session(b()?),
        "provider_model_stats" => EntityRef::ProviderModelStats {
            model_id: b()?,
            provider: parse_address(&sub).map_err(|r| corrupt("entity_sub_id", r))?,
        },
        "model_stats" => EntityRef::ModelStats(b()?),
        other => return Err(corrupt("entity_kind", format!("unknown kind {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_strict() {
        let a = Address::repeat_byte(0xAB);
        let s = addr(&a);
        assert_eq!(s, format!("0x{}", "ab".repeat(20)));
        assert_eq!(parse_address(&s), Ok(a));
        assert!(parse_address(&s.to_uppercase().replacen("0X", "0x", 1)).is_err());
        assert!(parse_address(&s[2..]).is_err());
        assert!(parse_address("0x1234").is_err());
        let id = B256::repeat_byte(0x0f);
        assert_eq!(parse_b256(&b256(&id)), Ok(id));
        assert!(parse_b256(&addr(&a)).is_err());
    }

    #[test]
    fn u256_decimal_round_trip_and_rejects_junk() {
        for v in [U256::ZERO, U256::from(1u8), U256::MAX, U256::MAX - U256::from(1u8)] {
            assert_eq!(parse_u256(&u256(&v)), Ok(v));
        }
        assert!(parse_u256("").is_err());
        assert!(parse_u256("-1").is_err());
        assert!(parse_u256("0x10").is_err());
        assert!(parse_u256("1.5").is_err());
        // One more than U256::MAX.
        assert!(parse_u256("115792089237316195423570985008687907853269984665640564039457584007913129639936")
            .is_err());
    }

    #[test]
    fn u64_out_of_range_is_refused() {
        assert_eq!(int("x", i64::MAX as u64).ok(), Some(i64::MAX));
        assert!(matches!(int("x", u64::MAX), Err(StoreError::OutOfRange { field: "x", value: u64::MAX })));
    }
}
