//! [`ConfigError`]: why a configuration was refused.
//!
//! Every message names the variable (or the flag, or the `.env` file and line) and the reason, so the
//! operator can fix it without reading code. Values are quoted in messages to help spot typos, except
//! the wallet secrets (`WALLET_PRIVATE_KEY`, `WALLET_MNEMONIC`): their problems ([`KeyProblem`],
//! [`MnemonicProblem`]) carry no part of the value, by construction.

use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be used. The node refuses to start with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is required: set it in the environment, in .env, or with the flag --{flag}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// Its flag, without dashes.
        flag: &'static str,
    },
    /// A value does not parse or breaks a rule.
    #[error("{var}{origin}: {problem}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong with it.
        problem: Problem,
    },
    /// Two variables that exclude each other are both set.
    #[error("{first} and {second} are both set: set only one of them")]
    Conflict {
        /// The first variable.
        first: &'static str,
        /// The second variable.
        second: &'static str,
    },
    /// `ETH_NODE_USE_SUBSCRIPTIONS=true` without a WebSocket URL to subscribe on.
    #[error(
        "ETH_NODE_USE_SUBSCRIPTIONS is true but no URL in ETH_NODE_ADDRESS is ws:// or wss://: add a \
         WebSocket URL or set ETH_NODE_USE_SUBSCRIPTIONS=false"
    )]
    SubscriptionsNeedWebSocket,
    /// A flag that names no configuration variable. Only the flag's name is kept, never its value.
    #[error("unknown flag {flag}: docs/configuration.md lists the flags (one per variable, e.g. --eth-node-chain-id)")]
    UnknownFlag {
        /// The flag as written, without any `=value`.
        flag: String,
    },
    /// A flag that takes a value came last, without one.
    #[error("flag {flag} ({var}) needs a value: {flag}=<value> or {flag} <value>")]
    FlagWithoutValue {
        /// The flag as written.
        flag: String,
        /// The variable it sets.
        var: &'static str,
    },
    /// A command-line argument that is not a flag (it is not echoed: it could be a misplaced secret).
    #[error(
        "unexpected argument #{position}{after}: configuration flags look like --name=value or -name value"
    )]
    UnexpectedArgument {
        /// 1-based position among the configuration arguments.
        position: usize,
        /// The flag just before it, if any.
        after: AfterFlag,
    },
    /// The `.env` file does not parse. The line's content is not echoed (it may hold a secret).
    #[error("{path}: line {line}{key}: {reason}", path = path.display())]
    DotEnvSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number where the bad entry starts.
        line: usize,
        /// The variable the line seems to set, when it can be told.
        key: DotEnvKey,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `.env` file exists but cannot be read.
    #[error("cannot read {path}: {source}", path = path.display())]
    DotEnvRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The environment (the process environment merged over `.env`).
    Env,
    /// A command-line flag, as written (`-eth-node-chain-id`, `--eth-node-chain-id`, …).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env => Ok(()),
            Origin::Flag(flag) => write!(f, " (flag {flag})"),
        }
    }
}

/// The flag that came before an unexpected argument, for [`ConfigError::UnexpectedArgument`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterFlag(pub Option<String>);

impl fmt::Display for AfterFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(flag) => write!(f, " (after {flag})"),
            None => Ok(()),
        }
    }
}

/// The variable a bad `.env` line seems to set, for [`ConfigError::DotEnvSyntax`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnvKey(pub Option<String>);

impl fmt::Display for DotEnvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(key) => write!(f, " ({key})"),
            None => Ok(()),
        }
    }
}

/// What is wrong with one value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// Not a URL at all.
    #[error("{value:?} is not a URL ({reason})")]
    NotAUrl {
        /// The value.
        value: String,
        /// Why it does not parse.
        reason: url::ParseError,
    },
    /// A URL with a scheme other than http, https, ws or wss.
    #[error("{value:?} uses the scheme {scheme:?}: use http, https, ws or wss")]
    UnsupportedScheme {
        /// The value.
        value: String,
        /// Its scheme.
        scheme: String,
    },
    /// A URL without a host.
    #[error("{value:?} has no host")]
    NoHost {
        /// The value.
        value: String,
    },
    /// Not a duration.
    #[error("{value:?} is not a duration (use 10s, 1m30s or a number of seconds)")]
    NotADuration {
        /// The value.
        value: String,
    },
    /// A zero duration where zero makes no sense.
    #[error("{value:?} is zero: it must be longer than zero")]
    ZeroDuration {
        /// The value.
        value: String,
    },
    /// Not an `IP:port` socket address.
    #[error("{value:?} is not an IP:port address (e.g. 0.0.0.0:8082 or [::1]:8082)")]
    NotASocketAddress {
        /// The value.
        value: String,
    },
    /// Not a boolean.
    #[error("{value:?} is not a boolean (use true, false, 1 or 0)")]
    NotABool {
        /// The value.
        value: String,
    },
    /// Not an integer of the expected kind.
    #[error("{value:?} is not {expected}")]
    NotAnInteger {
        /// The value.
        value: String,
        /// What was expected, e.g. "a positive integer".
        expected: &'static str,
    },
    /// An integer outside the allowed range.
    #[error("{value} is out of range: it must be {expected}")]
    OutOfRange {
        /// The value.
        value: String,
        /// The allowed range, e.g. "at least 10".
        expected: &'static str,
    },
    /// Not a 20-byte hex address.
    #[error("{value:?} is not an address (0x followed by 40 hex digits)")]
    NotAnAddress {
        /// The value.
        value: String,
    },
    /// A mixed-case address whose case does not match its EIP-55 checksum.
    #[error(
        "{value:?} has a wrong EIP-55 checksum: a mixed-case address must match its checksum, so a \
         character is probably mistyped (check it against the source)"
    )]
    BadChecksum {
        /// The value.
        value: String,
    },
    /// The zero address, which holds no contract.
    #[error("the zero address holds no contract")]
    ZeroAddress,
    /// A bad private key (the value is never included).
    #[error(transparent)]
    PrivateKey(#[from] KeyProblem),
    /// A bad mnemonic (the value is never included).
    #[error(transparent)]
    Mnemonic(#[from] MnemonicProblem),
    /// Not a BIP-32 derivation path.
    #[error("{value:?} is not a BIP-32 derivation path like m/44'/60'/0'/0/0 ({reason})")]
    DerivationPath {
        /// The value (a path is not secret).
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// What is wrong with `WALLET_PRIVATE_KEY`. Carries no part of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Not 64 hex digits.
    #[error("the private key must be 32 bytes written as 64 hex digits, with or without 0x (it has {len} characters)")]
    WrongLength {
        /// Number of characters after the optional `0x`.
        len: usize,
    },
    /// A character that is not a hex digit.
    #[error("the private key contains a character that is not a hex digit")]
    NotHex,
    /// Zero, or not below the secp256k1 group order.
    #[error("the private key is not a valid secp256k1 key (zero, or not below the curve order)")]
    NotOnCurve,
}

/// What is wrong with `WALLET_MNEMONIC`. Carries no word of the phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MnemonicProblem {
    /// A word count BIP-39 does not allow.
    #[error("the mnemonic has {words} words: a BIP-39 mnemonic has 12, 15, 18, 21 or 24")]
    WordCount {
        /// Words found.
        words: usize,
    },
    /// A word outside the English list.
    #[error("word {position} of the mnemonic is not in the BIP-39 English word list")]
    UnknownWord {
        /// 1-based position of the word.
        position: usize,
    },
    /// The last word does not match the checksum of the others.
    #[error("the mnemonic fails its BIP-39 checksum (a word is wrong or out of order)")]
    Checksum,
    /// The key could not be derived (practically impossible for a valid phrase and path).
    #[error("no key can be derived from the mnemonic at this derivation path")]
    Derivation,
}

impl ConfigError {
    /// The variable this error is about, when it is about one.
    pub fn var(&self) -> Option<&'static str> {
        match self {
            ConfigError::Missing { var, .. }
            | ConfigError::Invalid { var, .. }
            | ConfigError::FlagWithoutValue { var, .. } => Some(var),
            ConfigError::Conflict { first, .. } => Some(first),
            ConfigError::SubscriptionsNeedWebSocket => Some("ETH_NODE_USE_SUBSCRIPTIONS"),
            ConfigError::UnknownFlag { .. }
            | ConfigError::UnexpectedArgument { .. }
            | ConfigError::DotEnvSyntax { .. }
            | ConfigError::DotEnvRead { .. } => None,
        }
    }
}
