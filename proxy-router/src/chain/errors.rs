//! [`ChainError`], the one error type of the `chain` module, and the decoding of revert data into the
//! custom error that caused it ([`DecodedRevert`]).
//!
//! Revert data is decoded against the custom errors of every contract binding (the JSON ABI that
//! `sol!` generated for each of [`bindings::CONTRACTS`]), plus the two built-in Solidity errors
//! `Error(string)` (a `require` message such as `"ERC20: insufficient allowance"`) and `Panic(uint256)`
//! (an assertion, overflow, division by zero…). The result carries the error's name and its named
//! arguments, e.g. `ProviderStakeTooLow(amount=1, minAmount=100000000000000000)`. Data with an unknown
//! selector is kept raw in [`ChainError::Reverted::data`], never dropped.
//!
//! No variant ever carries the wallet's key, and RPC URLs appear only in their redacted form
//! ([`crate::chain::rpc::redact_url`]), because providers often put an API key in the URL.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use alloy::dyn_abi::{DynSolValue, ErrorExt};
use alloy::json_abi::Error as AbiError;
use alloy::primitives::{Address, Bytes, Selector, TxHash, B256, U256};
use alloy::transports::{RpcError, TransportErrorKind};

use super::bindings;

/// Selector of Solidity's built-in `Error(string)`.
pub const ERROR_STRING_SELECTOR: Selector = Selector::new([0x08, 0xc3, 0x79, 0xa0]);
/// Selector of Solidity's built-in `Panic(uint256)`.
pub const PANIC_SELECTOR: Selector = Selector::new([0x4e, 0x48, 0x7b, 0x71]);

/// Everything that can go wrong in the `chain` module.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A JSON-RPC request failed on every configured endpoint, or the node answered with an error that
    /// is not a revert.
    #[error("RPC {method} failed: {source}")]
    Rpc {
        /// The JSON-RPC method or the operation, e.g. `eth_estimateGas`.
        method: &'static str,
        /// The transport or node error (URLs redacted by the failover transport).
        #[source]
        source: RpcError<TransportErrorKind>,
    },

    /// A call or transaction reverted. `contract_error` is the decoded custom error when the selector
    /// is known; `data` always holds the raw revert data.
    #[error("{operation} reverted{}{}", describe_revert(contract_error.as_deref(), data), tx_hash.map(|h| format!(" (transaction {h})")).unwrap_or_default())]
    Reverted {
        /// The contract function (e.g. `providerRegister`) or the 4-byte selector when unknown.
        operation: String,
        /// The mined transaction that reverted; `None` when the revert happened at gas estimation
        /// (no transaction was sent and no nonce was used).
        tx_hash: Option<TxHash>,
        /// The decoded error, when the data's selector belongs to a known error.
        contract_error: Option<Box<DecodedRevert>>,
        /// The raw revert data (empty when the node gave none).
        data: Bytes,
    },

    /// The transaction was mined but used all its gas (the state it was estimated on changed).
    /// Nothing it did remains; it can be sent again.
    #[error("{operation} ran out of gas ({gas_limit}) in transaction {tx_hash}")]
    OutOfGas {
        /// The operation.
        operation: String,
        /// The mined transaction.
        tx_hash: TxHash,
        /// Its gas limit, all used.
        gas_limit: u64,
    },

    /// The RPC node serves another chain than `ETH_NODE_CHAIN_ID`.
    #[error("wrong chain: ETH_NODE_CHAIN_ID is {expected} but the RPC node reports chain id {actual}")]
    ChainIdMismatch {
        /// The configured chain id.
        expected: u64,
        /// The chain id the node reported.
        actual: u64,
    },

    /// A configured contract address has no code on this chain.
    #[error("{contract} address {address} has no contract code on chain {chain_id} (check {variable})")]
    NoCode {
        /// Which contract, e.g. `diamond`.
        contract: &'static str,
        /// The env variable that configures it.
        variable: &'static str,
        /// The configured address.
        address: Address,
        /// The chain that was asked.
        chain_id: u64,
    },

    /// `MOR_TOKEN_ADDRESS` is not the token the diamond moves.
    #[error("MOR_TOKEN_ADDRESS is {configured} but the diamond uses token {diamond_token}")]
    TokenMismatch {
        /// The configured token.
        configured: Address,
        /// The diamond's `getToken()`.
        diamond_token: Address,
    },

    /// The diamond does not serve functions the router calls (a facet is missing or was cut out).
    #[error("diamond {diamond} does not serve {} function(s) the router calls: {}", missing.len(), missing.join(", "))]
    MissingSelectors {
        /// The diamond address.
        diamond: Address,
        /// The missing functions as `signature (selector)`.
        missing: Vec<String>,
    },

    /// The wallet configuration cannot produce a key. The reason never quotes the secret.
    #[error("invalid wallet {variable}: {reason}")]
    InvalidWallet {
        /// The env variable at fault.
        variable: &'static str,
        /// Why, without the secret.
        reason: String,
    },

    /// A transaction could not be signed.
    #[error("failed to sign the {operation} transaction: {reason}")]
    Signing {
        /// The operation being signed.
        operation: String,
        /// Why.
        reason: String,
    },

    /// The node refused a transaction (insufficient funds, fee cap below base fee, …).
    #[error("the node rejected the {operation} transaction with nonce {nonce}: {message}")]
    Rejected {
        /// The operation.
        operation: String,
        /// The nonce it carried.
        nonce: u64,
        /// The node's message.
        message: String,
    },

    /// No receipt arrived within `TX_RECEIPT_TIMEOUT`, bumps included. Every hash that was sent is listed;
    /// one of them may still be mined later.
    #[error("no receipt for {operation} (nonce {nonce}) within {waited:?}; sent {}", join_hashes(tx_hashes))]
    ReceiptTimeout {
        /// The operation.
        operation: String,
        /// The nonce of every attempt.
        nonce: u64,
        /// The original transaction and its fee-bumped replacements.
        tx_hashes: Vec<TxHash>,
        /// How long the sender waited.
        waited: Duration,
    },

    /// The nonce was used by a transaction this sender did not send (another process uses the same key).
    #[error(
        "nonce {nonce} of {operation} was used by a transaction not sent by this router; sent {}",
        join_hashes(tx_hashes)
    )]
    NonceTaken {
        /// The operation.
        operation: String,
        /// The nonce.
        nonce: u64,
        /// What this sender had sent with that nonce.
        tx_hashes: Vec<TxHash>,
    },

    /// The transaction was mined but its receipt lacks the event the operation must emit.
    #[error("{operation} in transaction {tx_hash} emitted no {event} event")]
    MissingEvent {
        /// The operation.
        operation: &'static str,
        /// The event that was expected.
        event: &'static str,
        /// The mined transaction.
        tx_hash: TxHash,
    },

    /// Raising the allowance by the shortfall would overflow uint256.
    #[error("MOR allowance {current} for {spender} cannot grow by {shortfall} without overflowing uint256")]
    AllowanceOverflow {
        /// The current on-chain allowance.
        current: U256,
        /// The spender.
        spender: Address,
        /// The amount that was missing.
        shortfall: U256,
    },

    /// A JSON-RPC endpoint could not be configured.
    #[error("RPC endpoint {url}: {reason}")]
    Endpoint {
        /// The redacted URL.
        url: String,
        /// Why.
        reason: String,
    },

    /// The operation waited longer than its bound.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        operation: &'static str,
        /// The bound.
        after: Duration,
    },

    /// Data returned by a contract could not be decoded with its binding.
    #[error("failed to decode the result of {operation}: {reason}")]
    Decode {
        /// The call.
        operation: &'static str,
        /// Why.
        reason: String,
    },
}

impl ChainError {
    /// Wraps an RPC error, turning a revert (an error payload with revert data or a revert message) into
    /// [`ChainError::Reverted`].
    pub fn from_rpc(method: &'static str, operation: &str, error: RpcError<TransportErrorKind>) -> Self {
        match revert_data(&error) {
            Some(data) => ChainError::reverted(operation, None, data),
            None => ChainError::Rpc { method, source: error },
        }
    }

    /// Wraps the error of a contract call made through a `sol!` binding (`X::new(..).foo().call()`):
    /// a revert becomes [`ChainError::Reverted`], an undecodable answer [`ChainError::Decode`].
    pub fn from_contract(function: &'static str, error: alloy::contract::Error) -> Self {
        match error {
            alloy::contract::Error::TransportError(e) => ChainError::from_rpc(function, function, e),
            other => ChainError::Decode { operation: function, reason: other.to_string() },
        }
    }

    /// A revert of `operation` with raw `data`, decoded against every binding's errors.
    pub fn reverted(operation: &str, tx_hash: Option<TxHash>, data: Bytes) -> Self {
        ChainError::Reverted {
            operation: operation.to_owned(),
            tx_hash,
            contract_error: decode_revert(&data).map(Box::new),
            data,
        }
    }

    /// The decoded custom error when this is a revert with a known selector.
    pub fn contract_error(&self) -> Option<&DecodedRevert> {
        match self {
            ChainError::Reverted { contract_error, .. } => contract_error.as_deref(),
            _ => None,
        }
    }

    /// True for a transport failure (every endpoint down or timing out), as opposed to an answer.
    pub fn is_transport(&self) -> bool {
        matches!(self, ChainError::Rpc { source: RpcError::Transport(_), .. })
    }
}

/// Extracts revert data from an RPC error: the `data` of an error payload whose message says
/// "revert", or empty data for a bare `execution reverted` without data.
pub fn revert_data(error: &RpcError<TransportErrorKind>) -> Option<Bytes> {
    let RpcError::ErrorResp(payload) = error else { return None };
    if let Some(data) = payload.as_revert_data() {
        return Some(data);
    }
    let message = payload.message.to_ascii_lowercase();
    // `execution reverted` (code 3 or -32000) without data: a revert without a reason.
    (message.contains("execution reverted") || message == "revert" || message.starts_with("reverted"))
        .then(Bytes::new)
}

/// A revert decoded against the known errors: its name, signature and named arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRevert {
    /// The error name, e.g. `ProviderStakeTooLow`, `Error` or `Panic`.
    pub name: String,
    /// The canonical signature, e.g. `ProviderStakeTooLow(uint256,uint256)`.
    pub signature: String,
    /// The 4-byte selector.
    pub selector: Selector,
    /// The contract binding that declares it (`Solidity` for `Error` and `Panic`).
    pub contract: &'static str,
    /// The arguments in order, with their ABI names (empty names are shown as `argN`).
    pub args: Vec<(String, DynSolValue)>,
}

impl DecodedRevert {
    /// The argument called `name`, if any.
    pub fn arg(&self, name: &str) -> Option<&DynSolValue> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The `Error(string)` message, when this is one.
    pub fn reason(&self) -> Option<&str> {
        match (self.selector, self.args.first()) {
            (ERROR_STRING_SELECTOR, Some((_, DynSolValue::String(s)))) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for DecodedRevert {
    /// `Name(arg=value, …)`; `Error("message")`; `Panic(0x11: arithmetic overflow or underflow)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.selector == PANIC_SELECTOR {
            if let Some((_, DynSolValue::Uint(code, _))) = self.args.first() {
                return write!(f, "Panic({code:#x}: {})", panic_reason(*code));
            }
        }
        if let Some(reason) = self.reason() {
            return write!(f, "Error({reason:?})");
        }
        write!(f, "{}(", self.name)?;
        for (i, (name, value)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={}", DisplayValue(value))?;
        }
        f.write_str(")")
    }
}

/// Decodes revert data: `None` for empty data, an unknown selector or a body that does not match.
pub fn decode_revert(data: &[u8]) -> Option<DecodedRevert> {
    let selector = Selector::try_from(data.get(..4)?).ok()?;
    let known = known_errors().get(&selector)?;
    let decoded = known.error.decode_error(data).ok()?;
    let args = known
        .error
        .inputs
        .iter()
        .zip(decoded.body)
        .enumerate()
        .map(|(i, (param, value))| {
            let name = if param.name.is_empty() { format!("arg{i}") } else { param.name.clone() };
            (name, value)
        })
        .collect();
    Some(DecodedRevert {
        name: known.error.name.clone(),
        signature: known.error.signature(),
        selector,
        contract: known.contract,
        args,
    })
}

/// The name of the function whose selector starts `calldata`, looked up in every binding; the hex
/// selector when unknown, `"transfer"` for empty calldata.
pub fn operation_name(calldata: &[u8]) -> String {
    let Some(selector) = calldata.get(..4).and_then(|s| Selector::try_from(s).ok()) else {
        return "transfer".to_owned();
    };
    known_functions().get(&selector).cloned().unwrap_or_else(|| selector.to_string())
}

struct KnownError {
    contract: &'static str,
    error: AbiError,
}

fn known_errors() -> &'static HashMap<Selector, KnownError> {
    static ERRORS: OnceLock<HashMap<Selector, KnownError>> = OnceLock::new();
    ERRORS.get_or_init(|| {
        let mut map = HashMap::new();
        for binding in bindings::CONTRACTS {
            for error in (binding.abi)().errors() {
                // The same error (e.g. InsufficientRightsForOperation) is declared by several facets
                // with the same signature; the first declaration wins.
                map.entry(error.selector())
                    .or_insert_with(|| KnownError { contract: binding.name, error: error.clone() });
            }
        }
        for signature in ["Error(string reason)", "Panic(uint256 code)"] {
            if let Ok(error) = AbiError::parse(signature) {
                map.insert(error.selector(), KnownError { contract: "Solidity", error });
            }
        }
        map
    })
}

fn known_functions() -> &'static HashMap<Selector, String> {
    static FUNCTIONS: OnceLock<HashMap<Selector, String>> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let mut map = HashMap::new();
        for binding in bindings::CONTRACTS {
            for function in (binding.abi)().functions() {
                map.entry(function.selector()).or_insert_with(|| function.name.clone());
            }
        }
        map
    })
}

/// What a Solidity panic code means (from the Solidity documentation).
pub fn panic_reason(code: U256) -> &'static str {
    match code.saturating_to::<u64>() {
        0x00 => "generic compiler panic",
        0x01 => "assertion failed",
        0x11 => "arithmetic overflow or underflow",
        0x12 => "division or modulo by zero",
        0x21 => "invalid enum value",
        0x22 => "invalid storage byte array encoding",
        0x31 => "pop on an empty array",
        0x32 => "array index out of bounds",
        0x41 => "out of memory",
        0x51 => "call to an uninitialised function pointer",
        _ => "unknown panic code",
    }
}

fn describe_revert(decoded: Option<&DecodedRevert>, data: &Bytes) -> String {
    match decoded {
        Some(decoded) => format!(": {decoded}"),
        None if data.is_empty() => " without data".to_owned(),
        None => format!(" with unknown data {data}"),
    }
}

fn join_hashes(hashes: &[TxHash]) -> String {
    hashes.iter().map(B256::to_string).collect::<Vec<_>>().join(", ")
}

/// Formats an ABI value for humans: numbers in decimal, addresses checksummed, bytes in hex,
/// strings quoted.
struct DisplayValue<'a>(&'a DynSolValue);

impl fmt::Display for DisplayValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DynSolValue::Bool(b) => write!(f, "{b}"),
            DynSolValue::Int(i, _) => write!(f, "{i}"),
            DynSolValue::Uint(u, _) => write!(f, "{u}"),
            DynSolValue::FixedBytes(word, size) => {
                write!(f, "0x{}", alloy::hex::encode(&word[..(*size).min(32)]))
            }
            DynSolValue::Address(a) => write!(f, "{a}"),
            DynSolValue::Function(func) => write!(f, "{func}"),
            DynSolValue::Bytes(b) => write!(f, "0x{}", alloy::hex::encode(b)),
            DynSolValue::String(s) => write!(f, "{s:?}"),
            DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            DynSolValue::Tuple(items) => {
                f.write_str("(")?;
                write_list(f, items)?;
                f.write_str(")")
            }
            #[allow(unreachable_patterns)]
            other => write!(f, "{other:?}"),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[DynSolValue]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", DisplayValue(item))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::bindings::{ProviderRegistry, SessionRouter};
    use alloy::primitives::address;
    use alloy::rpc::json_rpc::ErrorPayload;
    use alloy::sol_types::{Panic, Revert, SolError};

    #[test]
    fn custom_error_decodes_with_name_and_arguments() {
        let data = ProviderRegistry::ProviderStakeTooLow {
            amount: U256::from(5u64),
            minAmount: U256::from(100_000_000_000_000_000u64),
        }
        .abi_encode();
        let decoded = decode_revert(&data).unwrap();
        assert_eq!(decoded.name, "ProviderStakeTooLow");
        assert_eq!(decoded.signature, "ProviderStakeTooLow(uint256,uint256)");
        assert_eq!(decoded.contract, "ProviderRegistry");
        assert_eq!(decoded.arg("amount"), Some(&DynSolValue::Uint(U256::from(5u64), 256)));
        assert_eq!(decoded.to_string(), "ProviderStakeTooLow(amount=5, minAmount=100000000000000000)");
    }

    #[test]
    fn error_without_arguments_and_with_an_address() {
        let data = SessionRouter::SessionBidNotFound {}.abi_encode();
        assert_eq!(decode_revert(&data).unwrap().to_string(), "SessionBidNotFound()");

        let data = SessionRouter::InsufficientRightsForOperation {
            delegator: address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            delegatee: address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        }
        .abi_encode();
        assert_eq!(
            decode_revert(&data).unwrap().to_string(),
            "InsufficientRightsForOperation(delegator=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266, \
             delegatee=0x70997970C51812dc3A010C7d01b50e0d17dc79C8)"
        );
    }

    #[test]
    fn builtin_error_string_and_panic() {
        let data = Revert::from("ERC20: insufficient allowance").abi_encode();
        let decoded = decode_revert(&data).unwrap();
        assert_eq!(decoded.reason(), Some("ERC20: insufficient allowance"));
        assert_eq!(decoded.to_string(), r#"Error("ERC20: insufficient allowance")"#);

        let data = Panic { code: U256::from(0x11) }.abi_encode();
        let decoded = decode_revert(&data).unwrap();
        assert_eq!(decoded.name, "Panic");
        assert_eq!(decoded.to_string(), "Panic(0x11: arithmetic overflow or underflow)");
    }

    #[test]
    fn unknown_selector_keeps_the_raw_data() {
        let data = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
        assert!(decode_revert(&data).is_none());
        let error = ChainError::reverted("postModelBid", None, data.clone());
        let ChainError::Reverted { data: kept, contract_error, .. } = &error else { panic!("{error}") };
        assert_eq!(kept, &data);
        assert!(contract_error.is_none());
        assert_eq!(error.to_string(), "postModelBid reverted with unknown data 0xdeadbeef010203");
        assert_eq!(ChainError::reverted("x", None, Bytes::new()).to_string(), "x reverted without data");
    }

    #[test]
    fn truncated_body_of_a_known_selector_is_not_decoded() {
        let mut data =
            ProviderRegistry::ProviderStakeTooLow { amount: U256::from(1), minAmount: U256::from(2) }
                .abi_encode();
        data.truncate(20);
        assert!(decode_revert(&data).is_none());
    }

    #[test]
    fn rpc_error_payload_with_revert_data_becomes_reverted() {
        let payload: ErrorPayload = serde_json::from_value(serde_json::json!({
            "code": 3,
            "message": "execution reverted: custom error 0x1de03f33",
            "data": "0x1de03f33"
        }))
        .unwrap();
        let error = ChainError::from_rpc("eth_estimateGas", "openSession", RpcError::ErrorResp(payload));
        assert_eq!(error.contract_error().unwrap().name, "SessionBidNotFound");
        assert_eq!(error.to_string(), "openSession reverted: SessionBidNotFound()");

        let payload: ErrorPayload =
            serde_json::from_value(serde_json::json!({"code": -32000, "message": "insufficient funds"}))
                .unwrap();
        let error = ChainError::from_rpc("eth_estimateGas", "openSession", RpcError::ErrorResp(payload));
        assert!(matches!(error, ChainError::Rpc { .. }), "{error}");
    }

    #[test]
    fn operation_names_come_from_the_bindings() {
        use alloy::sol_types::SolCall;
        let call = ProviderRegistry::providerDeregisterCall { provider_: Address::ZERO }.abi_encode();
        assert_eq!(operation_name(&call), "providerDeregister");
        assert_eq!(operation_name(&[1, 2, 3, 4]), "0x01020304");
        assert_eq!(operation_name(&[]), "transfer");
    }
}
