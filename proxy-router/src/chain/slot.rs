//! [`WalletSlot`]: the node's signing wallet as the running roles see it. It may be empty (no key
//! configured), filled at start from the configuration, or filled and emptied at runtime (the API's
//! `/wallet` routes). Readers take a cheap clone of the current [`Signer`]; a transaction already
//! under way keeps the signer it started with.

use std::sync::{Arc, PoisonError, RwLock};

use alloy::primitives::Address;

use super::allowance::Allowance;
use super::sender::TxSender;

/// Where the current wallet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletSource {
    /// `WALLET_PRIVATE_KEY` or `WALLET_MNEMONIC`: it cannot be replaced at runtime.
    Config,
    /// Set through the API and kept in the node's key file.
    Stored,
}

/// One wallet's transaction sender and its allowance manager for the diamond.
#[derive(Debug, Clone)]
pub struct Signer {
    /// Sends this wallet's transactions (nonces, fees, receipts).
    pub sender: TxSender,
    /// This wallet's MOR allowance for the diamond.
    pub allowance: Allowance,
    /// Where the key came from.
    pub source: WalletSource,
}

impl Signer {
    /// The signer of `sender`'s wallet, with a fresh allowance manager for the diamond.
    pub fn new(sender: TxSender, source: WalletSource) -> Self {
        let allowance = Allowance::new(sender.clone());
        Self { sender, allowance, source }
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.sender.address()
    }
}

/// The node's current wallet, shared by every role. Cheap to clone; clones share the slot.
#[derive(Debug, Clone, Default)]
pub struct WalletSlot {
    current: Arc<RwLock<Option<Signer>>>,
}

impl WalletSlot {
    /// A slot holding `signer`.
    pub fn with(signer: Signer) -> Self {
        Self { current: Arc::new(RwLock::new(Some(signer))) }
    }

    /// The current signer, if a wallet is set.
    pub fn get(&self) -> Option<Signer> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the current signer, returning the previous one.
    pub fn set(&self, signer: Signer) -> Option<Signer> {
        self.current.write().unwrap_or_else(PoisonError::into_inner).replace(signer)
    }

    /// Empties the slot, returning the previous signer.
    pub fn clear(&self) -> Option<Signer> {
        self.current.write().unwrap_or_else(PoisonError::into_inner).take()
    }
}
