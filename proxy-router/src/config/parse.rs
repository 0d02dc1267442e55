//! Parsers of single values: each turns one variable's text into a typed value or a
//! [`ConfigError::Invalid`] naming the variable. Secrets are checked without ever being echoed.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::coins_bip39::{English, Mnemonic, Wordlist};
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use secrecy::SecretString;
use url::Url;

use super::error::{ConfigError, KeyProblem, MnemonicProblem, Origin, Problem};

/// One variable's raw value (trimmed, never empty) and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Raw<'a> {
    /// The variable.
    pub var: &'static str,
    /// Its text.
    pub value: &'a str,
    /// Where it came from.
    pub origin: Origin,
}

impl Raw<'_> {
    fn invalid(&self, problem: impl Into<Problem>) -> ConfigError {
        ConfigError::Invalid { var: self.var, origin: self.origin.clone(), problem: problem.into() }
    }

    fn owned(&self) -> String {
        self.value.to_owned()
    }

    /// `true`, `false`, `1` or `0`, in any case.
    pub fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(self.invalid(Problem::NotABool { value: self.owned() })),
        }
    }

    /// An `IP:port` socket address (no host names, as the reference's `netip.ParseAddrPort`).
    pub fn socket_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        self.value.parse().map_err(|_| self.invalid(Problem::NotASocketAddress { value: self.owned() }))
    }

    /// An unsigned integer in `min..=max`; `expected` describes the range in errors.
    pub fn unsigned(&self, min: u64, max: u64, expected: &'static str) -> Result<u64, ConfigError> {
        let n: u64 = self
            .value
            .parse()
            .map_err(|_| self.invalid(Problem::NotAnInteger { value: self.owned(), expected }))?;
        if n < min || n > max {
            return Err(self.invalid(Problem::OutOfRange { value: self.owned(), expected }));
        }
        Ok(n)
    }

    /// A signed integer of at least `min`; `expected` describes the range in errors.
    pub fn signed_at_least(&self, min: i64, expected: &'static str) -> Result<i64, ConfigError> {
        let n: i64 = self
            .value
            .parse()
            .map_err(|_| self.invalid(Problem::NotAnInteger { value: self.owned(), expected }))?;
        if n < min {
            return Err(self.invalid(Problem::OutOfRange { value: self.owned(), expected }));
        }
        Ok(n)
    }

    /// A duration longer than zero (see [`parse_duration`]).
    pub fn nonzero_duration(&self) -> Result<Duration, ConfigError> {
        let d = parse_duration(self.value)
            .ok_or_else(|| self.invalid(Problem::NotADuration { value: self.owned() }))?;
        if d.is_zero() {
            return Err(self.invalid(Problem::ZeroDuration { value: self.owned() }));
        }
        Ok(d)
    }

    /// A duration of at least `min` (see [`parse_duration`]); `expected` says so in the error.
    pub fn duration_at_least(&self, min: Duration, expected: &'static str) -> Result<Duration, ConfigError> {
        let d = self.nonzero_duration()?;
        if d < min {
            return Err(self.out_of_range(expected));
        }
        Ok(d)
    }

    /// The error of a value outside what the variable accepts (`expected` says what it does).
    pub fn out_of_range(&self, expected: &'static str) -> ConfigError {
        self.invalid(Problem::OutOfRange { value: self.owned(), expected })
    }

    /// Comma-separated addresses, each checked as [`Raw::contract_address`]; blanks are skipped.
    pub fn address_list(&self) -> Result<Vec<Address>, ConfigError> {
        self.value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Raw { var: self.var, value: item, origin: self.origin.clone() }.contract_address())
            .collect()
    }

    /// A contract address: `0x` and 40 hex digits, lower case, upper case or EIP-55 checksummed; not
    /// the zero address.
    pub fn contract_address(&self) -> Result<Address, ConfigError> {
        let not_an_address = || self.invalid(Problem::NotAnAddress { value: self.owned() });
        let hex = self.value.strip_prefix("0x").ok_or_else(not_an_address)?;
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_an_address());
        }
        let address = Address::from_str(hex).map_err(|_| not_an_address())?;
        let mixed_case =
            hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
        if mixed_case && address.to_checksum(None) != self.value {
            return Err(self.invalid(Problem::BadChecksum { value: self.owned() }));
        }
        if address.is_zero() {
            return Err(self.invalid(Problem::ZeroAddress));
        }
        Ok(address)
    }

    /// Comma-separated http(s)/ws(s) URLs with a host; empty items are skipped. May return an empty
    /// list (only commas): the caller decides whether that is missing.
    pub fn rpc_urls(&self) -> Result<Vec<Url>, ConfigError> {
        let mut urls = Vec::new();
        for item in self.value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let url = Url::parse(item)
                .map_err(|reason| self.invalid(Problem::NotAUrl { value: item.to_owned(), reason }))?;
            if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
                return Err(self.invalid(Problem::UnsupportedScheme {
                    value: item.to_owned(),
                    scheme: url.scheme().to_owned(),
                }));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(self.invalid(Problem::NoHost { value: item.to_owned() }));
            }
            urls.push(url);
        }
        Ok(urls)
    }

    /// A secp256k1 private key: 64 hex digits with or without `0x`. Kept as written (trimmed).
    pub fn private_key(&self) -> Result<SecretString, ConfigError> {
        private_key_signer(self.value).map_err(|problem| self.invalid(problem))?;
        Ok(SecretString::from(self.value))
    }

    /// A BIP-39 English mnemonic, returned normalized (lower case, single spaces).
    pub fn mnemonic(&self) -> Result<SecretString, ConfigError> {
        let phrase = normalize_mnemonic(self.value);
        check_mnemonic(&phrase).map_err(|problem| self.invalid(problem))?;
        Ok(SecretString::from(phrase))
    }

    /// A BIP-32 derivation path such as `m/44'/60'/0'/0/0`.
    pub fn derivation_path(&self) -> Result<String, ConfigError> {
        let invalid = |reason: String| self.invalid(Problem::DerivationPath { value: self.owned(), reason });
        if !self.value.starts_with("m/") {
            return Err(invalid("it must start with m/".to_owned()));
        }
        let _checked = MnemonicBuilder::<English>::default()
            .derivation_path(self.value)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(self.value.to_owned())
    }
}

/// Parses a duration: a bare integer is seconds (`10`); otherwise Go or humantime syntax (`10s`, `4m`,
/// `1m30s`, `250ms`, `1.5h`, `2h 30min`; Go's `µs` is accepted too). `None` if it is none of these or
/// is negative.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Duration::from_secs);
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    humantime::parse_duration(&text.replace(['µ', 'μ'], "u")).ok()
}

/// Formats a duration the way [`parse_duration`] reads it back (`10s`, `1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// The signer of a private key written as 64 hex digits with or without `0x`.
pub(crate) fn private_key_signer(text: &str) -> Result<PrivateKeySigner, KeyProblem> {
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyProblem::NotHex);
    }
    if hex.len() != 64 {
        return Err(KeyProblem::WrongLength { len: hex.len() });
    }
    let bytes = B256::from_str(hex).map_err(|_| KeyProblem::NotHex)?;
    PrivateKeySigner::from_bytes(&bytes).map_err(|_| KeyProblem::NotOnCurve)
}

/// Lower case, words separated by single spaces.
pub(crate) fn normalize_mnemonic(text: &str) -> String {
    text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// Checks a normalized phrase: word count, every word in the English list, checksum.
pub(crate) fn check_mnemonic(phrase: &str) -> Result<(), MnemonicProblem> {
    let words: Vec<&str> = phrase.split(' ').filter(|w| !w.is_empty()).collect();
    if ![12, 15, 18, 21, 24].contains(&words.len()) {
        return Err(MnemonicProblem::WordCount { words: words.len() });
    }
    let list = English::get_all();
    if let Some(position) = words.iter().position(|w| list.binary_search(w).is_err()) {
        return Err(MnemonicProblem::UnknownWord { position: position + 1 });
    }
    Mnemonic::<English>::new_from_phrase(phrase).map(|_| ()).map_err(|_| MnemonicProblem::Checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(value: &str) -> Raw<'_> {
        Raw { var: "X", value, origin: Origin::Env }
    }

    #[test]
    fn durations_accept_go_humantime_and_bare_seconds() {
        let cases = [
            ("10", 10_000),
            ("10s", 10_000),
            ("4m", 240_000),
            ("1m30s", 90_000),
            ("1m 30s", 90_000),
            ("250ms", 250),
            ("1.5s", 1_500),
            ("1h", 3_600_000),
            ("2h30m", 9_000_000),
            ("1500us", 1),
            ("1500µs", 1),
            (" 7s ", 7_000),
        ];
        for (text, millis) in cases {
            assert_eq!(parse_duration(text).map(|d| d.as_millis()), Some(millis), "{text}");
        }
        for text in ["", "ten", "s", "-1s", "-1", "10 parsecs", "1e3", "0x10"] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn formatted_durations_read_back() {
        for d in [
            Duration::from_secs(10),
            Duration::from_secs(90),
            Duration::from_millis(250),
            Duration::from_secs(3 * 3600 + 1),
        ] {
            let text = format_duration(d);
            assert!(!text.contains(' '), "{text}");
            assert_eq!(parse_duration(&text), Some(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn nonzero_durations_refuse_zero_and_name_the_syntax() {
        assert_eq!(raw("1m").nonzero_duration().unwrap(), Duration::from_secs(60));
        let err = raw("0s").nonzero_duration().unwrap_err();
        assert_eq!(err.to_string(), "X: \"0s\" is zero: it must be longer than zero");
        let err = raw("ten").nonzero_duration().unwrap_err();
        assert_eq!(err.to_string(), "X: \"ten\" is not a duration (use 10s, 1m30s or a number of seconds)");
    }

    #[test]
    fn booleans_are_true_false_1_0_in_any_case_and_nothing_else() {
        for (text, value) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("FaLsE", false),
            ("0", false),
        ] {
            assert_eq!(raw(text).boolean().unwrap(), value, "{text}");
        }
        for text in ["yes", "no", "t", "f", "on", "2", "truee"] {
            let err = raw(text).boolean().unwrap_err();
            assert_eq!(err.to_string(), format!("X: {text:?} is not a boolean (use true, false, 1 or 0)"));
        }
    }

    #[test]
    fn integers_check_syntax_and_range() {
        assert_eq!(raw("5").unsigned(1, u64::MAX, "a positive integer").unwrap(), 5);
        let err = raw("0").unsigned(1, u64::MAX, "a positive integer").unwrap_err();
        assert_eq!(err.to_string(), "X: 0 is out of range: it must be a positive integer");
        for text in ["-1", "1.5", "abc", "0x10", "99999999999999999999999"] {
            let err = raw(text).unsigned(1, u64::MAX, "a positive integer").unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { problem: Problem::NotAnInteger { .. }, .. }),
                "{text}"
            );
        }
        assert_eq!(raw("-1").signed_at_least(-1, "an integer >= -1").unwrap(), -1);
        assert!(raw("-2").signed_at_least(-1, "an integer >= -1").is_err());
    }

    const CHECKSUMMED: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    #[test]
    fn addresses_accept_checksummed_lower_and_upper_case() {
        let expected = Address::from_str(CHECKSUMMED).unwrap();
        let upper = format!("0x{}", CHECKSUMMED[2..].to_uppercase());
        for text in [CHECKSUMMED.to_owned(), CHECKSUMMED.to_lowercase(), upper] {
            assert_eq!(raw(&text).contract_address().unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn addresses_refuse_a_wrong_checksum_bad_hex_and_zero() {
        let wrong = CHECKSUMMED.replacen("Fb", "fB", 1);
        let err = raw(&wrong).contract_address().unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { problem: Problem::BadChecksum { .. }, .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("X: {wrong:?} has a wrong EIP-55 checksum")), "{err}");
        for text in [
            &CHECKSUMMED[2..],
            "0x1234",
            "0x5FbDB2315678afecb367f032d93F642f64180aaZ",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3aa",
        ] {
            let err = raw(text).contract_address().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("X: {text:?} is not an address (0x followed by 40 hex digits)")
            );
        }
        let err = raw("0x0000000000000000000000000000000000000000").contract_address().unwrap_err();
        assert_eq!(err.to_string(), "X: the zero address holds no contract");
    }

    #[test]
    fn rpc_urls_are_comma_separated_http_or_ws_with_a_host() {
        let urls = raw("http://127.0.0.1:8545, wss://node.example/ws ,,https://a.example/v1/key,")
            .rpc_urls()
            .unwrap();
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://127.0.0.1:8545/", "wss://node.example/ws", "https://a.example/v1/key"]);
        assert!(raw(",").rpc_urls().unwrap().is_empty());

        let err = raw("http://ok, ftp://node").rpc_urls().unwrap_err();
        assert_eq!(err.to_string(), "X: \"ftp://node\" uses the scheme \"ftp\": use http, https, ws or wss");
        let err = raw("127.0.0.1:8545").rpc_urls().unwrap_err();
        assert!(err.to_string().starts_with("X: \"127.0.0.1:8545\" "), "{err}");
        let err = raw("localhost").rpc_urls().unwrap_err();
        assert_eq!(err.to_string(), "X: \"localhost\" is not a URL (relative URL without a base)");
        let err = raw("http://").rpc_urls().unwrap_err();
        assert!(err.to_string().starts_with("X: \"http://\" is not a URL"), "{err}");
    }

    const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn private_keys_are_64_hex_digits_with_or_without_0x() {
        let address = Address::from_str("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
        for text in [KEY.to_owned(), format!("0x{KEY}"), format!("0x{}", KEY.to_uppercase())] {
            assert_eq!(private_key_signer(&text).unwrap().address(), address, "{text}");
        }
    }

    #[test]
    fn bad_private_keys_say_why_without_echoing_the_key() {
        let cases = [
            (format!("0x{}", &KEY[..62]), KeyProblem::WrongLength { len: 62 }),
            (format!("{KEY}00"), KeyProblem::WrongLength { len: 66 }),
            (format!("0x{}zz", &KEY[..62]), KeyProblem::NotHex),
            (format!("0x{}", "0".repeat(64)), KeyProblem::NotOnCurve),
            (format!("0x{}", "f".repeat(64)), KeyProblem::NotOnCurve),
        ];
        for (text, problem) in cases {
            let err = raw(&text).private_key().unwrap_err();
            match &err {
                ConfigError::Invalid { problem: Problem::PrivateKey(p), .. } => assert_eq!(p, &problem),
                other => panic!("{other}"),
            }
            let shown = err.to_string();
            assert!(!shown.contains(&text) && !shown.contains(&KEY[..16]), "{shown}");
            assert!(!format!("{err:?}").contains(&KEY[..16]), "{err:?}");
        }
    }

    const PHRASE: &str = "test test test test test test test test test test test junk";

    #[test]
    fn mnemonics_are_normalized_and_checked_fully() {
        use secrecy::ExposeSecret;
        let phrase =
            raw("  Test test TEST test\ttest test test test test test test junk ").mnemonic().unwrap();
        assert_eq!(phrase.expose_secret(), PHRASE);
        let phrase24 = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon art";
        assert!(check_mnemonic(phrase24).is_ok());
    }

    #[test]
    fn bad_mnemonics_say_why_without_echoing_any_word() {
        let cases = [
            (
                "test test test test test test test test test test junk",
                MnemonicProblem::WordCount { words: 11 },
            ),
            (
                "test test test test test test test test test test test junk junk",
                MnemonicProblem::WordCount { words: 13 },
            ),
            (
                "test test test test test test test test test zebrx test junk",
                MnemonicProblem::UnknownWord { position: 10 },
            ),
            ("test test test test test test test test test test test test", MnemonicProblem::Checksum),
            ("junk test test test test test test test test test test test", MnemonicProblem::Checksum),
        ];
        for (text, problem) in cases {
            let err = raw(text).mnemonic().unwrap_err();
            match &err {
                ConfigError::Invalid { problem: Problem::Mnemonic(p), .. } => assert_eq!(p, &problem),
                other => panic!("{other}"),
            }
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(
                    !shown.contains("test") && !shown.contains("junk") && !shown.contains("zebrx"),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn derivation_paths_are_checked() {
        assert_eq!(raw("m/44'/60'/0'/0/7").derivation_path().unwrap(), "m/44'/60'/0'/0/7");
        for text in ["m/44'/60'/x", "44/60", "m/44'/60'/0'/0/2147483648"] {
            let err = raw(text).derivation_path().unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("X: {text:?} is not a BIP-32 derivation path")),
                "{err}"
            );
        }
    }
}
