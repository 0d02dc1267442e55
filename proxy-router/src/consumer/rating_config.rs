//! `rating-config.json` (`RATING_CONFIG_PATH`), the reference's format (go-proxy-router.md §2.4):
//!
//! ```json
//! {"$schema": "./internal/rating/rating-config-schema.json", "algorithm": "default",
//!  "providerAllowlist": [],
//!  "params": {"weights": {"tps": 0.24, "ttft": 0.08, "duration": 0.24, "success": 0.32, "stake": 0.12}}}
//! ```
//!
//! A missing file means the reference's defaults. A file that exists but is invalid stops the node
//! naming the file and the problem: unreadable, not JSON, an unknown key, an algorithm other than
//! `default`, a weight missing or outside [0, 1], weights not summing to 1, a malformed address. The
//! addresses of `PROVIDER_ALLOW_LIST` are added to the file's allowlist.

use std::path::Path;

use alloy::primitives::Address;
use serde::Deserialize;

use super::error::ConsumerError;
use super::rating::{RatingConfig, Weights};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    #[serde(default = "default_algorithm")]
    algorithm: String,
    #[serde(rename = "providerAllowlist", default)]
    provider_allowlist: Vec<Address>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    weights: FileWeights,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWeights {
    tps: f64,
    ttft: f64,
    duration: f64,
    success: f64,
    stake: f64,
}

fn default_algorithm() -> String {
    "default".to_owned()
}

/// Loads `path` (defaults when it does not exist) and adds `allow_list`.
pub fn load(path: &Path, allow_list: &[Address]) -> Result<RatingConfig, ConsumerError> {
    let error = |reason: String| ConsumerError::RatingConfig { path: path.display().to_string(), reason };
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(error)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RatingConfig::default(),
        Err(e) => return Err(error(format!("cannot read it: {e}"))),
    };
    for address in allow_list {
        if !config.provider_allowlist.contains(address) {
            config.provider_allowlist.push(*address);
        }
    }
    Ok(config)
}

/// Parses and validates the file's contents.
pub fn parse(text: &str) -> Result<RatingConfig, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let file: File = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    if file.algorithm != "default" {
        return Err(format!("unknown algorithm {:?} (only \"default\" exists)", file.algorithm));
    }
    let weights = match file.params {
        Some(Params { weights: w }) => {
            Weights { tps: w.tps, ttft: w.ttft, duration: w.duration, success: w.success, stake: w.stake }
        }
        None => Weights::default(),
    };
    weights.validate().map_err(|e| e.to_string())?;
    Ok(RatingConfig { weights, provider_allowlist: file.provider_allowlist })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_the_default_plus_the_env_allowlist() {
        let dir = tempfile::tempdir().unwrap();
        let extra = Address::repeat_byte(7);
        let config = load(&dir.path().join("rating-config.json"), &[extra]).unwrap();
        assert_eq!(config.weights, Weights::default());
        assert_eq!(config.provider_allowlist, vec![extra]);
    }

    #[test]
    fn the_reference_example_parses() {
        let text = r#"{"$schema":"./internal/rating/rating-config-schema.json","algorithm":"default",
            "providerAllowlist":["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"],
            "params":{"weights":{"tps":0.5,"ttft":0.1,"duration":0.1,"success":0.2,"stake":0.1}}}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rating.json");
        std::fs::write(&path, text).unwrap();
        let provider: Address = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8".parse().unwrap();
        let config = load(&path, &[provider, Address::repeat_byte(1)]).unwrap();
        assert_eq!(config.weights.tps, 0.5);
        assert_eq!(config.provider_allowlist, vec![provider, Address::repeat_byte(1)]);
    }

    #[test]
    fn invalid_files_name_the_problem() {
        for (text, expected) in [
            ("{", "EOF"),
            (r#"{"algorithm":"fancy"}"#, "unknown algorithm"),
            (r#"{"params":{"weights":{"tps":1}}}"#, "missing field"),
            (r#"{"params":{"weights":{"tps":0.5,"ttft":0.5,"duration":0.5,"success":0,"stake":0}}}"#, "sum"),
            (
                r#"{"params":{"weights":{"tps":1.5,"ttft":0,"duration":0,"success":0,"stake":-0.5}}}"#,
                "outside",
            ),
            (r#"{"providerAllowlist":["0x12"]}"#, "providerAllowlist"),
            (r#"{"weights":{}}"#, "unknown field"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "42").unwrap();
        let err = load(&path, &[]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("rating config {}", path.display())), "{err}");
    }
}
