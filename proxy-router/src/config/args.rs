//! Command-line configuration flags, parsed the way the reference's Go `flag` package reads them.
//!
//! One flag per variable ([`super::vars::VARIABLES`]): `-name` and `--name` are the same flag, and a value
//! is given as `-name=value` or `-name value` (the next argument is taken whatever it looks like, so
//! `--eth-node-max-reconnects -1` works). A boolean flag alone means `true`; `-name=false` or
//! `-name false` (the next argument is taken only if it is a boolean) sets it explicitly. The last of
//! repeated flags wins. `--` ends the flags. Unlike the reference, an unknown flag or a stray argument
//! is an error, not silently skipped: a mistyped flag would otherwise be ignored.

use std::collections::HashMap;

use super::error::{AfterFlag, ConfigError};
use super::vars::{self, VarSpec};

/// A value given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagValue {
    /// The value (possibly empty, which means "unset").
    pub value: String,
    /// The flag as written, without `=value`.
    pub flag: String,
}

/// Parses configuration flags into values by variable name.
pub(crate) fn parse_flags<I, S>(args: I) -> Result<HashMap<&'static str, FlagValue>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<S> = args.into_iter().collect();
    let mut values = HashMap::new();
    let mut last_flag: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let token = args[i].as_ref();
        let position = i + 1;
        i += 1;
        if token == "--" {
            if i < args.len() {
                return Err(ConfigError::UnexpectedArgument {
                    position: position + 1,
                    after: AfterFlag(Some("--".to_owned())),
                });
            }
            break;
        }
        let Some(body) = flag_body(token) else {
            return Err(ConfigError::UnexpectedArgument { position, after: AfterFlag(last_flag) });
        };
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let written = token[..token.len() - body.len() + name.len()].to_owned();
        let Some(spec) = vars::by_flag(name) else {
            return Err(ConfigError::UnknownFlag { flag: written });
        };
        let value = match inline_value {
            Some(value) => value.to_owned(),
            None => take_value(spec, &written, args.get(i).map(AsRef::as_ref), &mut i)?,
        };
        values.insert(spec.name, FlagValue { value, flag: written.clone() });
        last_flag = Some(written);
    }
    Ok(values)
}

/// The flag's text after its one or two leading dashes, or `None` for an argument that is no flag.
fn flag_body(token: &str) -> Option<&str> {
    let body = token.strip_prefix("--").or_else(|| token.strip_prefix('-'))?;
    if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
        None
    } else {
        Some(body)
    }
}

/// The value of a flag written without `=`: the next argument, or `true` for a boolean alone.
fn take_value(
    spec: &VarSpec,
    written: &str,
    next: Option<&str>,
    i: &mut usize,
) -> Result<String, ConfigError> {
    if spec.is_bool {
        return Ok(match next {
            Some(next) if is_bool_literal(next) => {
                *i += 1;
                next.to_owned()
            }
            _ => "true".to_owned(),
        });
    }
    match next {
        Some(next) => {
            *i += 1;
            Ok(next.to_owned())
        }
        None => Err(ConfigError::FlagWithoutValue { flag: written.to_owned(), var: spec.name }),
    }
}

fn is_bool_literal(s: &str) -> bool {
    ["true", "false", "1", "0"].iter().any(|b| s.eq_ignore_ascii_case(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<HashMap<&'static str, FlagValue>, ConfigError> {
        parse_flags(args)
    }

    fn value(map: &HashMap<&'static str, FlagValue>, var: &str) -> Option<(String, String)> {
        map.get(var).map(|v| (v.value.clone(), v.flag.clone()))
    }

    #[test]
    fn single_and_double_dash_with_equals_or_space() {
        let map = parse(&[
            "-eth-node-chain-id=5",
            "--eth-node-address",
            "http://a",
            "-proxy-storage-path",
            "/x",
            "--mor-token-address=0xabc",
        ])
        .unwrap();
        assert_eq!(value(&map, "ETH_NODE_CHAIN_ID"), Some(("5".into(), "-eth-node-chain-id".into())));
        assert_eq!(value(&map, "ETH_NODE_ADDRESS"), Some(("http://a".into(), "--eth-node-address".into())));
        assert_eq!(value(&map, "PROXY_STORAGE_PATH"), Some(("/x".into(), "-proxy-storage-path".into())));
        assert_eq!(value(&map, "MOR_TOKEN_ADDRESS"), Some(("0xabc".into(), "--mor-token-address".into())));
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn the_reference_diamond_flag_is_an_alias() {
        let map = parse(&["-diamond-address=0x1"]).unwrap();
        assert_eq!(value(&map, "DIAMOND_CONTRACT_ADDRESS"), Some(("0x1".into(), "-diamond-address".into())));
    }

    #[test]
    fn a_value_may_start_with_a_dash_and_may_contain_equals() {
        let map = parse(&["--eth-node-max-reconnects", "-1", "--eth-node-address=http://h/?a=b"]).unwrap();
        assert_eq!(map["ETH_NODE_MAX_RECONNECTS"].value, "-1");
        assert_eq!(map["ETH_NODE_ADDRESS"].value, "http://h/?a=b");
    }

    #[test]
    fn booleans_alone_mean_true_and_take_only_a_boolean_next() {
        let map = parse(&["--eth-node-legacy-tx", "--eth-node-use-subscriptions", "FALSE"]).unwrap();
        assert_eq!(map["ETH_NODE_LEGACY_TX"].value, "true");
        assert_eq!(map["ETH_NODE_USE_SUBSCRIPTIONS"].value, "FALSE");

        let map =
            parse(&["-eth-node-legacy-tx=0", "-eth-node-use-subscriptions", "-eth-node-chain-id=1"]).unwrap();
        assert_eq!(map["ETH_NODE_LEGACY_TX"].value, "0");
        assert_eq!(map["ETH_NODE_USE_SUBSCRIPTIONS"].value, "true");
        assert_eq!(map["ETH_NODE_CHAIN_ID"].value, "1");

        // A non-boolean after a boolean flag is not swallowed: it is a stray argument.
        let err = parse(&["--eth-node-legacy-tx", "yes"]).unwrap_err();
        assert!(matches!(err, ConfigError::UnexpectedArgument { position: 2, .. }), "{err}");
        assert_eq!(err.to_string(), "unexpected argument #2 (after --eth-node-legacy-tx): configuration flags look like --name=value or -name value");
    }

    #[test]
    fn the_last_repeated_flag_wins() {
        let map = parse(&["--eth-node-chain-id=1", "-eth-node-chain-id", "2"]).unwrap();
        assert_eq!(value(&map, "ETH_NODE_CHAIN_ID"), Some(("2".into(), "-eth-node-chain-id".into())));
    }

    #[test]
    fn unknown_flags_name_the_flag_but_not_the_value() {
        let err = parse(&["--wallet-privat-key=0xdeadbeef"]).unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownFlag { flag } if flag == "--wallet-privat-key"));
        let text = err.to_string();
        assert!(text.starts_with("unknown flag --wallet-privat-key:"), "{text}");
        assert!(!text.contains("deadbeef"), "{text}");

        let err = parse(&["-log-level", "debug"]).unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownFlag { flag } if flag == "-log-level"));
        let err = parse(&["---eth-node-chain-id=1"]).unwrap_err();
        assert!(matches!(err, ConfigError::UnexpectedArgument { position: 1, .. }));
    }

    #[test]
    fn a_value_flag_at_the_end_needs_its_value() {
        let err = parse(&["--eth-node-chain-id"]).unwrap_err();
        assert!(matches!(err, ConfigError::FlagWithoutValue { var: "ETH_NODE_CHAIN_ID", .. }));
        assert_eq!(
            err.to_string(),
            "flag --eth-node-chain-id (ETH_NODE_CHAIN_ID) needs a value: --eth-node-chain-id=<value> or \
             --eth-node-chain-id <value>"
        );
    }

    #[test]
    fn stray_arguments_are_refused_without_being_echoed() {
        let err = parse(&["0xsecret"]).unwrap_err();
        assert!(matches!(err, ConfigError::UnexpectedArgument { position: 1, after: AfterFlag(None) }));
        assert!(!err.to_string().contains("secret"));
        for args in [&["-"][..], &["--", "x"][..], &["-="][..]] {
            assert!(matches!(parse(args).unwrap_err(), ConfigError::UnexpectedArgument { .. }), "{args:?}");
        }
    }

    #[test]
    fn double_dash_alone_ends_the_flags() {
        assert!(parse(&["--eth-node-chain-id=1", "--"]).unwrap().contains_key("ETH_NODE_CHAIN_ID"));
        assert!(parse(&[]).unwrap().is_empty());
    }
}
