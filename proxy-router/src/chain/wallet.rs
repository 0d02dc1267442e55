//! The node's signing key: built from `WALLET_PRIVATE_KEY` or from `WALLET_MNEMONIC` +
//! `WALLET_DERIVATION_PATH` ([`WalletKey`]).
//!
//! Only the address is public. The key never appears in `Debug` output, logs or errors: [`Wallet`]'s
//! `Debug` prints the address alone, and a malformed key or phrase yields a fixed reason that never
//! quotes the input (parser errors of the underlying crates may echo a bad character or word, so they
//! are not passed through).

use std::fmt;
use std::str::FromStr;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Signature, B256};
use alloy::signers::local::coins_bip39::English;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use alloy::signers::SignerSync;
use secrecy::ExposeSecret;

use super::errors::ChainError;
use crate::config::WalletKey;

/// A local secp256k1 key. Cloning shares nothing mutable; `Debug` shows only the address.
#[derive(Clone)]
pub struct Wallet {
    signer: PrivateKeySigner,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &format_args!("{}", self.signer.address()))
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Builds the signer from the configured key.
    pub fn from_key(key: &WalletKey) -> Result<Self, ChainError> {
        let signer = match key {
            WalletKey::PrivateKey(secret) => parse_private_key(secret.expose_secret())?,
            WalletKey::Mnemonic { phrase, derivation_path } => {
                from_mnemonic(phrase.expose_secret(), derivation_path)?
            }
        };
        Ok(Self { signer })
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The signer, for transaction signing and message signatures.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The signer as an alloy network wallet (for `TransactionRequest::build`).
    pub fn network_wallet(&self) -> EthereumWallet {
        EthereumWallet::from(self.signer.clone())
    }

    /// EIP-191 signature of a 32-byte hash: `sign("\x19Ethereum Signed Message:\n32" ‖ hash)`, as the
    /// contracts verify approvals and receipts (`ECDSA.toEthSignedMessageHash(keccak256(message))`).
    pub fn sign_eip191_hash(&self, hash: &B256) -> Result<Signature, ChainError> {
        self.signer
            .sign_message_sync(hash.as_slice())
            .map_err(|e| ChainError::Signing { operation: "EIP-191 message".into(), reason: e.to_string() })
    }
}

fn parse_private_key(text: &str) -> Result<PrivateKeySigner, ChainError> {
    let invalid = |reason: &str| ChainError::InvalidWallet {
        variable: "WALLET_PRIVATE_KEY",
        reason: reason.to_owned(),
    };
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")).unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("expected 32 bytes as 64 hex digits, with or without 0x"));
    }
    PrivateKeySigner::from_str(hex)
        .map_err(|_| invalid("not a valid secp256k1 private key (zero or above the curve order)"))
}

fn from_mnemonic(phrase: &str, derivation_path: &str) -> Result<PrivateKeySigner, ChainError> {
    let words = phrase.split_whitespace().count();
    if ![12, 15, 18, 21, 24].contains(&words) {
        return Err(ChainError::InvalidWallet {
            variable: "WALLET_MNEMONIC",
            reason: format!("a BIP-39 phrase has 12, 15, 18, 21 or 24 words, this one has {words}"),
        });
    }
    let builder = MnemonicBuilder::<English>::default()
        .phrase(phrase.split_whitespace().collect::<Vec<_>>().join(" "))
        .derivation_path(derivation_path)
        .map_err(|_| ChainError::InvalidWallet {
            variable: "WALLET_DERIVATION_PATH",
            reason: format!("{derivation_path:?} is not a BIP-32 derivation path such as m/44'/60'/0'/0/0"),
        })?;
    builder.build().map_err(|_| ChainError::InvalidWallet {
        variable: "WALLET_MNEMONIC",
        reason: "not a valid BIP-39 English phrase (unknown word or bad checksum)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, keccak256};
    use secrecy::SecretString;

    const KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const KEY_0_BARE: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const PHRASE: &str = "test test test test test test test test test test test junk";

    fn key(text: &str) -> WalletKey {
        WalletKey::PrivateKey(SecretString::from(text.to_owned()))
    }

    #[test]
    fn private_key_with_or_without_prefix() {
        let a = Wallet::from_key(&key(KEY_0)).unwrap();
        let b = Wallet::from_key(&key(KEY_0_BARE)).unwrap();
        assert_eq!(a.address(), address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
        assert_eq!(a.address(), b.address());
    }

    #[test]
    fn mnemonic_with_derivation_path() {
        let wallet = Wallet::from_key(&WalletKey::Mnemonic {
            phrase: SecretString::from(PHRASE.to_owned()),
            derivation_path: "m/44'/60'/0'/0/2".into(),
        })
        .unwrap();
        assert_eq!(wallet.address(), address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"));
    }

    #[test]
    fn the_key_never_appears_in_debug_output() {
        let wallet = Wallet::from_key(&key(KEY_0)).unwrap();
        let debug = format!("{wallet:?} {:#?}", wallet);
        assert!(debug.contains("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), "{debug}");
        assert!(!debug.to_lowercase().contains(KEY_0_BARE), "{debug}");
        assert!(!debug.contains("ac0974"), "{debug}");

        let config = key(KEY_0);
        let debug = format!("{config:?}");
        assert!(!debug.contains("ac0974"), "{debug}");
    }

    #[test]
    fn errors_never_quote_the_secret() {
        // A near-miss key: one bad character.
        let bad = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ffZZ";
        let error = Wallet::from_key(&key(bad)).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(text.contains("WALLET_PRIVATE_KEY"), "{text}");
        assert!(!text.contains("ac0974") && !text.contains("ZZ"), "{text}");

        let zero = "0x0000000000000000000000000000000000000000000000000000000000000000";
        let error = Wallet::from_key(&key(zero)).unwrap_err();
        assert!(error.to_string().contains("secp256k1"), "{error}");

        let phrase = "test test test test test test test test test test test secretword";
        let error = Wallet::from_key(&WalletKey::Mnemonic {
            phrase: SecretString::from(phrase.to_owned()),
            derivation_path: "m/44'/60'/0'/0/0".into(),
        })
        .unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(text.contains("WALLET_MNEMONIC"), "{text}");
        assert!(!text.contains("secretword") && !text.contains("test test"), "{text}");

        let error = Wallet::from_key(&WalletKey::Mnemonic {
            phrase: SecretString::from("only three words".to_owned()),
            derivation_path: "m/44'/60'/0'/0/0".into(),
        })
        .unwrap_err();
        assert!(!error.to_string().contains("three"), "{error}");

        let error = Wallet::from_key(&WalletKey::Mnemonic {
            phrase: SecretString::from(PHRASE.to_owned()),
            derivation_path: "not/a/path".into(),
        })
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("WALLET_DERIVATION_PATH") && !text.contains("junk"), "{text}");
    }

    #[test]
    fn eip191_signature_recovers_to_the_address() {
        let wallet = Wallet::from_key(&key(KEY_0)).unwrap();
        let hash = keccak256(b"approval");
        let signature = wallet.sign_eip191_hash(&hash).unwrap();
        let recovered = signature.recover_address_from_msg(hash.as_slice()).unwrap();
        assert_eq!(recovered, wallet.address());
        assert_eq!(signature.as_bytes().len(), 65);
    }
}
