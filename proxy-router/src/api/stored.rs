//! What the API keeps in the node's data directory (`PROXY_STORAGE_PATH`) across restarts:
//!
//! - [`WALLET_FILE`] (`wallet-key.json`): the key set through `POST /wallet/privateKey` or
//!   `POST /wallet/mnemonic`, as `{"privateKey":"0x…"}` or `{"mnemonic":"…","derivationPath":"…"}`;
//! - [`ETH_NODES_FILE`] (`eth-nodes.json`): the RPC URLs set through `POST /config/ethNode`, as
//!   `{"urls":["…"]}` (they may hold an API key).
//!
//! Both are written atomically with mode 0600 by the auth files' writer (a temporary file in the same
//! directory, synced, then renamed), so a crash leaves the old file or the new one, never half of one.
//! A file that group or others may read is reported with a warning when it is loaded.
//!
//! Errors never quote a file's content: a wallet file holds a secret, and serde's messages may echo the
//! value they failed on, so a parse error reports the line and column only.

use std::io;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::auth::{write_private, AuthError};
use crate::chain::rpc::redact_url;
use crate::chain::Wallet;
use crate::config::{WalletKey, DEFAULT_DERIVATION_PATH};

/// The wallet key file in the data directory.
pub const WALLET_FILE: &str = "wallet-key.json";
/// The stored RPC URL list in the data directory.
pub const ETH_NODES_FILE: &str = "eth-nodes.json";

/// A file of the data directory cannot be read, written or understood.
#[derive(Debug, thiserror::Error)]
pub enum StoredFileError {
    /// Reading, writing or removing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file's content is not what the node writes. The reason never quotes the content.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The JSON of [`WALLET_FILE`]: exactly one of the key and the phrase.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WalletFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mnemonic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    derivation_path: Option<String>,
}

/// The JSON of [`ETH_NODES_FILE`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EthNodesFile {
    urls: Vec<String>,
}

/// Writes `key` to [`WALLET_FILE`] in `dir` (created if missing), replacing any previous key.
pub fn save_wallet(dir: &Path, key: &WalletKey) -> Result<(), StoredFileError> {
    let file = match key {
        WalletKey::PrivateKey(secret) => WalletFile {
            private_key: Some(secret.expose_secret().trim().to_owned()),
            mnemonic: None,
            derivation_path: None,
        },
        WalletKey::Mnemonic { phrase, derivation_path } => WalletFile {
            private_key: None,
            mnemonic: Some(phrase.expose_secret().split_whitespace().collect::<Vec<_>>().join(" ")),
            derivation_path: Some(derivation_path.clone()),
        },
    };
    write_json(&dir.join(WALLET_FILE), &file)
}

/// The key stored in `dir`'s [`WALLET_FILE`], `None` when there is none. The key is checked (it must
/// yield a signer), so a damaged file is reported here rather than as a configuration error.
pub fn load_wallet(dir: &Path) -> Result<Option<WalletKey>, StoredFileError> {
    let path = dir.join(WALLET_FILE);
    let Some(file) = read_json::<WalletFile>(&path)? else { return Ok(None) };
    let corrupt = |reason: String| StoredFileError::Corrupt { path: path.clone(), reason };
    let key = match (file.private_key, file.mnemonic) {
        (Some(key), None) if file.derivation_path.is_none() => WalletKey::PrivateKey(SecretString::from(key)),
        (None, Some(phrase)) => WalletKey::Mnemonic {
            phrase: SecretString::from(phrase),
            derivation_path: file.derivation_path.unwrap_or_else(|| DEFAULT_DERIVATION_PATH.to_owned()),
        },
        _ => {
            return Err(corrupt("expected {\"privateKey\"} or {\"mnemonic\", \"derivationPath\"}".to_owned()))
        }
    };
    Wallet::from_key(&key).map_err(|e| match e {
        crate::chain::ChainError::InvalidWallet { reason, .. } => corrupt(reason),
        other => corrupt(other.to_string()),
    })?;
    Ok(Some(key))
}

/// Removes [`WALLET_FILE`] from `dir`; `false` when there was none.
pub fn remove_wallet(dir: &Path) -> Result<bool, StoredFileError> {
    remove(&dir.join(WALLET_FILE))
}

/// Writes `urls` to [`ETH_NODES_FILE`] in `dir` (created if missing).
pub fn save_eth_nodes(dir: &Path, urls: &[Url]) -> Result<(), StoredFileError> {
    let file = EthNodesFile { urls: urls.iter().map(|u| u.as_str().to_owned()).collect() };
    write_json(&dir.join(ETH_NODES_FILE), &file)
}

/// The RPC URLs stored in `dir`'s [`ETH_NODES_FILE`], `None` when there are none.
pub fn load_eth_nodes(dir: &Path) -> Result<Option<Vec<Url>>, StoredFileError> {
    let path = dir.join(ETH_NODES_FILE);
    let Some(file) = read_json::<EthNodesFile>(&path)? else { return Ok(None) };
    let corrupt = |reason: String| StoredFileError::Corrupt { path: path.clone(), reason };
    if file.urls.is_empty() {
        return Err(corrupt("the URL list is empty".to_owned()));
    }
    let mut urls = Vec::with_capacity(file.urls.len());
    for (i, text) in file.urls.iter().enumerate() {
        let url = Url::parse(text).map_err(|e| corrupt(format!("urls[{i}] is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(corrupt(format!("urls[{i}] ({}) is not http, https, ws or wss", redact_url(&url))));
        }
        urls.push(url);
    }
    Ok(Some(urls))
}

/// Removes [`ETH_NODES_FILE`] from `dir`; `false` when there was none.
pub fn remove_eth_nodes(dir: &Path) -> Result<bool, StoredFileError> {
    remove(&dir.join(ETH_NODES_FILE))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoredFileError> {
    let io_error = |source| StoredFileError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let mut text = serde_json::to_string_pretty(value).map_err(|e| io_error(io::Error::other(e)))?;
    text.push('\n');
    write_private(path, &text).map_err(|e| match e {
        AuthError::Io { source, .. } => io_error(source),
        other => io_error(io::Error::other(other.to_string())),
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoredFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoredFileError::Io { path: path.to_path_buf(), source }),
    };
    warn_if_loose(path);
    serde_json::from_str(&text).map(Some).map_err(|e| StoredFileError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "not the JSON the node writes ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

fn remove(path: &Path) -> Result<bool, StoredFileError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoredFileError::Io { path: path.to_path_buf(), source }),
    }
}

#[cfg(unix)]
fn warn_if_loose(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{mode:o}"),
                "file is accessible by group or others; run chmod 600 on it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_loose(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_private_key_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_wallet(dir.path()).unwrap().is_none());
        save_wallet(dir.path(), &WalletKey::PrivateKey(SecretString::from(KEY.to_owned()))).unwrap();
        let path = dir.path().join(WALLET_FILE);
        assert_eq!(mode(&path), 0o600);
        let Some(WalletKey::PrivateKey(key)) = load_wallet(dir.path()).unwrap() else { panic!("no key") };
        assert_eq!(key.expose_secret(), KEY);
        assert!(remove_wallet(dir.path()).unwrap());
        assert!(!remove_wallet(dir.path()).unwrap());
        assert!(load_wallet(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_mnemonic_round_trips_with_its_path_and_replaces_a_key() {
        let dir = tempfile::tempdir().unwrap();
        save_wallet(dir.path(), &WalletKey::PrivateKey(SecretString::from(KEY.to_owned()))).unwrap();
        let phrase = "test test test test test test test test test  test test junk";
        let key = WalletKey::Mnemonic {
            phrase: SecretString::from(phrase.to_owned()),
            derivation_path: "m/44'/60'/0'/0/2".to_owned(),
        };
        save_wallet(dir.path(), &key).unwrap();
        let Some(WalletKey::Mnemonic { phrase, derivation_path }) = load_wallet(dir.path()).unwrap() else {
            panic!("no mnemonic")
        };
        assert_eq!(phrase.expose_secret(), "test test test test test test test test test test test junk");
        assert_eq!(derivation_path, "m/44'/60'/0'/0/2");
    }

    #[test]
    fn a_damaged_wallet_file_is_corrupt_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WALLET_FILE);
        for content in [
            r#"{"privateKey":"0xSECRETSECRET"}"#.to_owned(),
            r#"{"privateKey":"SECRET","mnemonic":"SECRET"}"#.to_owned(),
            r#"{"privateKey":12345678901234567890123}"#.to_owned(),
            r#"{"privateKey":"SECRET","other":1}"#.to_owned(),
            "SECRET".to_owned(),
        ] {
            std::fs::write(&path, &content).unwrap();
            let error = load_wallet(dir.path()).unwrap_err();
            let text = format!("{error} {error:?}");
            assert!(matches!(error, StoredFileError::Corrupt { .. }), "{text}");
            assert!(!text.contains("SECRET") && !text.contains("12345678"), "{text}");
        }
    }

    #[test]
    fn eth_nodes_round_trip_and_bad_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_eth_nodes(dir.path()).unwrap().is_none());
        let urls: Vec<Url> =
            vec!["https://rpc.example/v2/KEY".parse().unwrap(), "ws://127.0.0.1:8546".parse().unwrap()];
        save_eth_nodes(dir.path(), &urls).unwrap();
        assert_eq!(mode(&dir.path().join(ETH_NODES_FILE)), 0o600);
        assert_eq!(load_eth_nodes(dir.path()).unwrap(), Some(urls));

        std::fs::write(dir.path().join(ETH_NODES_FILE), r#"{"urls":["ftp://x/KEY"]}"#).unwrap();
        let error = load_eth_nodes(dir.path()).unwrap_err().to_string();
        assert!(error.contains("urls[0]") && !error.contains("KEY"), "{error}");
        std::fs::write(dir.path().join(ETH_NODES_FILE), r#"{"urls":[]}"#).unwrap();
        assert!(load_eth_nodes(dir.path()).is_err());
        assert!(remove_eth_nodes(dir.path()).unwrap());
        assert!(load_eth_nodes(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_missing_data_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        save_eth_nodes(&nested, &["http://127.0.0.1:8545".parse().unwrap()]).unwrap();
        assert!(load_eth_nodes(&nested).unwrap().is_some());
    }
}
