//! The transaction sender: the only way this node writes to the chain. One [`TxSender`] per wallet.
//!
//! # Life cycle of one transaction ([`TxSender::send`])
//!
//! 1. **Estimate** gas for the call (from the wallet, no nonce yet). A revert here returns
//!    [`ChainError::Reverted`] with the decoded custom error and *no nonce is used*. The limit is the
//!    estimate plus a margin.
//! 2. **Price** it: EIP-1559 with tip = `eth_maxPriorityFeePerGas` and max fee = 2 × base fee + tip (as
//!    the reference), or a legacy `gasPrice` with `ETH_NODE_LEGACY_TX` (also when the chain reports no
//!    base fee).
//! 3. **Nonce, sign, send** under one async mutex: the wallet's next nonce comes from a local counter,
//!    initialised from `eth_getTransactionCount(pending)`. The counter is cleared while a send is in
//!    flight, so a cancelled or failed send makes the next caller resynchronise from the node; after
//!    "nonce too low" or "replacement underpriced" (another process used the key) it is resynchronised
//!    and the send retried with the new nonce. When no endpoint answered the send, the transaction is
//!    counted as sent (it may have arrived) and awaited like any other: its bumps rebroadcast it, and
//!    giving its nonce to the next caller could make those bumps replace that caller's transaction.
//!    Concurrent callers therefore queue for a few milliseconds and never share a nonce; the lock is
//!    not held while waiting for receipts.
//! 4. **Wait** for the receipt, polling every transaction sent for this nonce. When none is mined after
//!    `TX_BUMP_INTERVAL`, the *same nonce* is re-signed with tip and max fee raised by
//!    `TX_FEE_BUMP_PERCENT` (and at least today's market fees) and resent, up to `TX_MAX_BUMPS` times.
//!    Whichever of the original and its replacements gets mined is the result; only one can be, since
//!    they share the nonce. The whole wait is bounded by `TX_RECEIPT_TIMEOUT`
//!    ([`ChainError::ReceiptTimeout`] lists every hash sent). If the nonce is consumed by a transaction
//!    this sender did not send, [`ChainError::NonceTaken`]. After either, the nonce counter is
//!    resynchronised from the node, so a nonce that never got mined is filled by the next send.
//! 5. **Check** the status: a mined transaction with status 0 becomes [`ChainError::Reverted`]; the call
//!    is replayed with `eth_call` on the state before its block (then at its block) to recover the revert
//!    data for decoding.
//!
//! The typed helpers (`provider_register`, `open_session`, …) build the calldata with the `sol!`
//! bindings, send it through the same path and parse the ids the contracts emit.

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::{BlockId, BlockNumberOrTag, Encodable2718};
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{keccak256, Address, Bytes, TxHash, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use alloy::transports::RpcError;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::bindings::{Marketplace, ModelRegistry, MorpheusToken, ProviderRegistry, SessionRouter};
use super::errors::{operation_name, revert_data, ChainError};
use super::rpc::Rpc;
use super::wallet::Wallet;
use crate::config::ChainConfig;

/// At most this many transactions of one wallet are between estimation and receipt at once; further
/// callers wait for a slot (within their receipt timeout).
pub const MAX_IN_FLIGHT: usize = 64;

/// Sends that hit a nonce conflict are retried with a fresh nonce this many times.
const NONCE_ATTEMPTS: usize = 3;

/// Consecutive polls that see the nonce used without a receipt of ours before giving up on it (lets a
/// lagging node index the receipt).
const NONCE_TAKEN_POLLS: u32 = 3;

/// The first receipt poll comes this soon after sending; the pause doubles up to the poll interval.
const FIRST_POLL: Duration = Duration::from_millis(20);

/// The gas limit is the estimate plus this share, and at least [`GAS_MARGIN_MIN`] more. The estimate is
/// made on the pending state, which concurrent transactions of the same wallet change before this one
/// is mined: e.g. an allowance consumed to zero in between makes the next `increaseAllowance` write a
/// fresh storage slot (20 000 gas instead of 2 900).
const GAS_MARGIN_PERCENT: u64 = 25;
const GAS_MARGIN_MIN: u64 = 30_000;

/// How transactions are priced, bumped and awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPolicy {
    /// Legacy `gasPrice` instead of EIP-1559.
    pub legacy: bool,
    /// Resend with higher fees when no receipt arrived after this long.
    pub bump_interval: Duration,
    /// Fee increase per resend, in percent.
    pub fee_bump_percent: u32,
    /// Resends before waiting out the timeout.
    pub max_bumps: u32,
    /// The longest wait for a receipt, resends included.
    pub receipt_timeout: Duration,
    /// The longest pause between two receipt polls (the first come sooner).
    pub poll_interval: Duration,
}

impl TxPolicy {
    /// The policy of `ETH_NODE_LEGACY_TX` and `TX_*`; receipts are polled four times per bump interval
    /// (between 50 ms and 1 s).
    pub fn from_config(config: &ChainConfig) -> Self {
        Self {
            legacy: config.legacy_tx,
            bump_interval: config.tx_bump_interval,
            fee_bump_percent: config.tx_fee_bump_percent,
            max_bumps: config.tx_max_bumps,
            receipt_timeout: config.tx_receipt_timeout,
            poll_interval: (config.tx_bump_interval / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(1)),
        }
    }
}

/// Fees of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fees {
    /// EIP-1559.
    Eip1559 {
        /// `maxFeePerGas`.
        max_fee: u128,
        /// `maxPriorityFeePerGas`.
        tip: u128,
    },
    /// Legacy.
    Legacy {
        /// `gasPrice`.
        gas_price: u128,
    },
}

impl Fees {
    /// Every price raised by `percent` (rounded up, at least 1 wei).
    pub fn bumped(self, percent: u32) -> Self {
        let raise = |v: u128| {
            let raised = v.saturating_mul(100 + u128::from(percent)).div_ceil(100);
            raised.max(v.saturating_add(1))
        };
        match self {
            Fees::Eip1559 { max_fee, tip } => Fees::Eip1559 { max_fee: raise(max_fee), tip: raise(tip) },
            Fees::Legacy { gas_price } => Fees::Legacy { gas_price: raise(gas_price) },
        }
    }

    /// The higher of each price of `self` and `other` (same kind), keeping max fee ≥ tip.
    fn at_least(self, other: Fees) -> Self {
        match (self, other) {
            (Fees::Eip1559 { max_fee, tip }, Fees::Eip1559 { max_fee: m, tip: t }) => {
                let tip = tip.max(t);
                Fees::Eip1559 { max_fee: max_fee.max(m).max(tip), tip }
            }
            (Fees::Legacy { gas_price }, Fees::Legacy { gas_price: g }) => {
                Fees::Legacy { gas_price: gas_price.max(g) }
            }
            (mine, _) => mine,
        }
    }

    fn apply(self, tx: TransactionRequest) -> TransactionRequest {
        let mut tx = tx;
        match self {
            Fees::Eip1559 { max_fee, tip } => {
                tx.gas_price = None;
                tx.max_fee_per_gas = Some(max_fee);
                tx.max_priority_fee_per_gas = Some(tip);
            }
            Fees::Legacy { gas_price } => {
                tx.max_fee_per_gas = None;
                tx.max_priority_fee_per_gas = None;
                tx.gas_price = Some(gas_price);
            }
        }
        tx
    }
}

/// A model to register ([`TxSender::model_register`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRegistration {
    /// The owner (the wallet, or a delegator).
    pub owner: Address,
    /// The owner's base id; the model id is `keccak256(owner ‖ base_id)`.
    pub base_id: B256,
    /// IPFS CID of the model card.
    pub ipfs_cid: B256,
    /// Fee (informational in the contracts).
    pub fee: U256,
    /// MOR staked (must reach the model minimum stake).
    pub stake: U256,
    /// Display name.
    pub name: String,
    /// Tags, e.g. `["llm", "tee"]`.
    pub tags: Vec<String>,
}

/// A session to open ([`TxSender::open_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// The user (the wallet, or a delegator).
    pub user: Address,
    /// MOR staked or paid.
    pub amount: U256,
    /// Direct payment from the user instead of a stake.
    pub direct_payment: bool,
    /// The provider's approval: `abi.encode(bidId, chainId, user, uint128 timestampMs)`.
    pub approval: Bytes,
    /// The provider's EIP-191 signature of `keccak256(approval)`.
    pub approval_signature: Bytes,
}

/// The one writer of a wallet. Cheap to clone; clones share the nonce queue.
#[derive(Clone)]
pub struct TxSender {
    inner: Arc<Inner>,
}

struct Inner {
    rpc: Rpc,
    wallet: Wallet,
    network_wallet: EthereumWallet,
    chain_id: u64,
    diamond: Address,
    mor_token: Address,
    policy: TxPolicy,
    /// The next nonce to use; `None` means "ask the node" (at start, and after any doubt).
    nonce: Mutex<Option<u64>>,
    in_flight: Semaphore,
}

impl std::fmt::Debug for TxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSender")
            .field("address", &self.inner.wallet.address())
            .field("chain_id", &self.inner.chain_id)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// One signed transaction that was handed to the node.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    hash: TxHash,
    fees: Fees,
}

/// What the node said to `eth_sendRawTransaction`.
enum SendOutcome {
    Accepted,
    /// The nonce is already used (mined).
    NonceTooLow,
    /// Another pending transaction holds the nonce with higher or equal fees.
    ReplacementUnderpriced,
    /// No endpoint answered: the transaction may or may not have arrived.
    Unknown(String),
    Rejected(String),
}

impl TxSender {
    /// A sender for `wallet` on the chain and contracts of `config`.
    pub fn new(rpc: Rpc, wallet: Wallet, config: &ChainConfig) -> Self {
        Self::with_policy(rpc, wallet, config, TxPolicy::from_config(config))
    }

    /// Like [`TxSender::new`] with an explicit policy.
    pub fn with_policy(rpc: Rpc, wallet: Wallet, config: &ChainConfig, policy: TxPolicy) -> Self {
        let network_wallet = wallet.network_wallet();
        Self {
            inner: Arc::new(Inner {
                rpc,
                wallet,
                network_wallet,
                chain_id: config.chain_id,
                diamond: config.diamond,
                mor_token: config.mor_token,
                policy,
                nonce: Mutex::new(None),
                in_flight: Semaphore::new(MAX_IN_FLIGHT),
            }),
        }
    }

    /// The wallet's address (the `from` of every transaction).
    pub fn address(&self) -> Address {
        self.inner.wallet.address()
    }

    /// The wallet.
    pub fn wallet(&self) -> &Wallet {
        &self.inner.wallet
    }

    /// The RPC handle.
    pub fn rpc(&self) -> &Rpc {
        &self.inner.rpc
    }

    /// The marketplace diamond.
    pub fn diamond(&self) -> Address {
        self.inner.diamond
    }

    /// The MOR token.
    pub fn mor_token(&self) -> Address {
        self.inner.mor_token
    }

    /// The policy in use.
    pub fn policy(&self) -> TxPolicy {
        self.inner.policy
    }

    /// Estimates, prices, signs and sends `tx` from the wallet, then waits for its receipt, bumping the
    /// fees of a stuck transaction (see the module docs). `tx.to` must be set; `from`, `nonce`, the
    /// chain id and the fees are filled in here, `gas` only when absent.
    pub async fn send(&self, tx: TransactionRequest) -> Result<TransactionReceipt, ChainError> {
        let operation = operation_name(tx.input.input().map(|b| b.as_ref()).unwrap_or_default());
        let sent = self.send_as(tx, &operation).await;
        let m = crate::metrics::global();
        match &sent {
            Ok(receipt) => m.tx_mined(
                &operation,
                receipt.gas_used,
                U256::from(receipt.gas_used).saturating_mul(U256::from(receipt.effective_gas_price)),
            ),
            Err(_) => m.tx_failed(&operation),
        }
        sent
    }

    async fn send_as(
        &self,
        tx: TransactionRequest,
        operation: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        let policy = self.inner.policy;
        let _slot = tokio::time::timeout(policy.receipt_timeout, self.inner.in_flight.acquire())
            .await
            .map_err(|_| ChainError::Timeout {
                operation: "waiting for a transaction slot",
                after: policy.receipt_timeout,
            })?
            .map_err(|_| ChainError::Timeout {
                operation: "transaction sender closed",
                after: Duration::ZERO,
            })?;

        let mut tx = tx.with_from(self.address()).with_chain_id(self.inner.chain_id);
        tx.nonce = None;
        if tx.gas.is_none() {
            let estimate = self
                .provider()
                .estimate_gas(tx.clone())
                .await
                .map_err(|e| ChainError::from_rpc("eth_estimateGas", operation, e))?;
            let margin = (estimate.saturating_mul(GAS_MARGIN_PERCENT) / 100).max(GAS_MARGIN_MIN);
            tx.gas = Some(estimate.saturating_add(margin));
        }
        let fees = self.market_fees().await?;
        let (tx, first) = self.submit_new(tx, fees, operation).await?;
        let receipt = match self.await_receipt(&tx, first, operation).await {
            Ok(receipt) => receipt,
            Err(error) => {
                // A nonce that never got mined (or was taken) leaves a gap or a wrong count: the next
                // send asks the node again.
                *self.inner.nonce.lock().await = None;
                return Err(error);
            }
        };
        self.check_status(&tx, receipt, operation).await
    }

    /// Sends `call` to `to` (see [`TxSender::send`]).
    pub async fn send_call<C: SolCall>(
        &self,
        to: Address,
        call: &C,
    ) -> Result<TransactionReceipt, ChainError> {
        self.send(TransactionRequest::default().with_to(to).with_input(call.abi_encode())).await
    }

    // ---------------------------------------------------------------------------------------------
    // Typed helpers: every write the router makes.
    // ---------------------------------------------------------------------------------------------

    /// `providerRegister(provider, amount, endpoint)`: registers (or adds stake to) a provider. Needs a
    /// MOR allowance of `amount` for the diamond.
    pub async fn provider_register(
        &self,
        provider: Address,
        amount: U256,
        endpoint: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        let call = ProviderRegistry::providerRegisterCall {
            provider_: provider,
            amount_: amount,
            endpoint_: endpoint.to_owned(),
        };
        self.send_call(self.diamond(), &call).await
    }

    /// `providerDeregister(provider)`: refunds the unlocked stake.
    pub async fn provider_deregister(&self, provider: Address) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.diamond(), &ProviderRegistry::providerDeregisterCall { provider_: provider })
            .await
    }

    /// `modelRegister(…)`: registers or updates a model; returns its id (from `ModelRegisteredUpdated`).
    /// Needs a MOR allowance of `model.stake`.
    pub async fn model_register(
        &self,
        model: &ModelRegistration,
    ) -> Result<(B256, TransactionReceipt), ChainError> {
        let call = ModelRegistry::modelRegisterCall {
            modelOwner_: model.owner,
            baseModelId_: model.base_id,
            ipfsCID_: model.ipfs_cid,
            fee_: model.fee,
            amount_: model.stake,
            name_: model.name.clone(),
            tags_: model.tags.clone(),
        };
        let receipt = self.send_call(self.diamond(), &call).await?;
        let event: ModelRegistry::ModelRegisteredUpdated = self.event(&receipt, "modelRegister")?;
        Ok((event.modelId, receipt))
    }

    /// `modelDeregister(modelId)`: refunds the model stake.
    pub async fn model_deregister(&self, model_id: B256) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.diamond(), &ModelRegistry::modelDeregisterCall { modelId_: model_id }).await
    }

    /// `postModelBid(provider, modelId, pricePerSecond)`: returns the bid id (from
    /// `MarketplaceBidPosted`). Needs a MOR allowance of the bid fee.
    pub async fn post_model_bid(
        &self,
        provider: Address,
        model_id: B256,
        price_per_second: U256,
    ) -> Result<(B256, TransactionReceipt), ChainError> {
        let call = Marketplace::postModelBidCall {
            provider_: provider,
            modelId_: model_id,
            pricePerSecond_: price_per_second,
        };
        let receipt = self.send_call(self.diamond(), &call).await?;
        let event: Marketplace::MarketplaceBidPosted = self.event(&receipt, "postModelBid")?;
        Ok((bid_id(event.provider, event.modelId, event.nonce), receipt))
    }

    /// `deleteModelBid(bidId)`.
    pub async fn delete_model_bid(&self, bid_id: B256) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.diamond(), &Marketplace::deleteModelBidCall { bidId_: bid_id }).await
    }

    /// `openSession(user, amount, isDirectPaymentFromUser, approval, signature)`: returns the session id
    /// (from `SessionOpened`). Needs a MOR allowance of `amount`.
    pub async fn open_session(&self, open: &OpenSession) -> Result<(B256, TransactionReceipt), ChainError> {
        let call = SessionRouter::openSessionCall {
            user_: open.user,
            amount_: open.amount,
            isDirectPaymentFromUser_: open.direct_payment,
            approvalEncoded_: open.approval.clone(),
            signature_: open.approval_signature.clone(),
        };
        let receipt = self.send_call(self.diamond(), &call).await?;
        let event: SessionRouter::SessionOpened = self.event(&receipt, "openSession")?;
        Ok((event.sessionId, receipt))
    }

    /// `closeSession(receipt, signature)` with the provider-signed (or, in a dispute, user-signed)
    /// session report.
    pub async fn close_session(
        &self,
        report: Bytes,
        signature: Bytes,
    ) -> Result<TransactionReceipt, ChainError> {
        let call = SessionRouter::closeSessionCall { receiptEncoded_: report, signature_: signature };
        self.send_call(self.diamond(), &call).await
    }

    /// `claimForProvider(sessionId)`: pays the provider what the session earned so far.
    pub async fn claim_for_provider(&self, session_id: B256) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.diamond(), &SessionRouter::claimForProviderCall { sessionId_: session_id }).await
    }

    /// `withdrawUserStakes(user, iterations)`: withdraws released on-hold stakes.
    pub async fn withdraw_user_stakes(
        &self,
        user: Address,
        iterations: u8,
    ) -> Result<TransactionReceipt, ChainError> {
        let call = SessionRouter::withdrawUserStakesCall { user_: user, iterations_: iterations };
        self.send_call(self.diamond(), &call).await
    }

    /// MOR `approve(spender, amount)`. Prefer [`crate::chain::allowance::Allowance`] for spending
    /// through the diamond: approvals overwrite each other (reference bug #612).
    pub async fn approve(&self, spender: Address, amount: U256) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.mor_token(), &MorpheusToken::approveCall { spender, amount }).await
    }

    /// MOR `increaseAllowance(spender, addedValue)`.
    pub async fn increase_allowance(
        &self,
        spender: Address,
        added: U256,
    ) -> Result<TransactionReceipt, ChainError> {
        self.send_call(self.mor_token(), &MorpheusToken::increaseAllowanceCall { spender, addedValue: added })
            .await
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    fn provider(&self) -> &alloy::providers::DynProvider {
        self.inner.rpc.provider()
    }

    /// The first event `E` the diamond emitted in `receipt`.
    fn event<E: SolEvent>(
        &self,
        receipt: &TransactionReceipt,
        operation: &'static str,
    ) -> Result<E, ChainError> {
        receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.diamond())
            .find_map(|log| log.log_decode::<E>().ok())
            .map(|log| log.inner.data)
            .ok_or(ChainError::MissingEvent {
                operation,
                event: E::SIGNATURE,
                tx_hash: receipt.transaction_hash,
            })
    }

    /// Today's fees: EIP-1559 from the tip suggestion and the latest base fee, or the legacy gas price.
    async fn market_fees(&self) -> Result<Fees, ChainError> {
        let provider = self.provider();
        if !self.inner.policy.legacy {
            let block = provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
                .map_err(|source| ChainError::Rpc { method: "eth_getBlockByNumber", source })?;
            if let Some(base_fee) = block.and_then(|b| b.header.base_fee_per_gas) {
                let tip = provider
                    .get_max_priority_fee_per_gas()
                    .await
                    .map_err(|source| ChainError::Rpc { method: "eth_maxPriorityFeePerGas", source })?;
                let max_fee = u128::from(base_fee).saturating_mul(2).saturating_add(tip);
                return Ok(Fees::Eip1559 { max_fee, tip });
            }
            tracing::warn!("the chain reports no base fee: sending a legacy transaction");
        }
        let gas_price = provider
            .get_gas_price()
            .await
            .map_err(|source| ChainError::Rpc { method: "eth_gasPrice", source })?;
        Ok(Fees::Legacy { gas_price })
    }

    /// Signs `tx` with `nonce` and `fees`; returns the raw bytes and the hash.
    async fn sign(
        &self,
        tx: &TransactionRequest,
        nonce: u64,
        fees: Fees,
        operation: &str,
    ) -> Result<(Bytes, TxHash), ChainError> {
        let tx = fees.apply(tx.clone().with_nonce(nonce));
        let envelope = tx
            .build(&self.inner.network_wallet)
            .await
            .map_err(|e| ChainError::Signing { operation: operation.to_owned(), reason: e.to_string() })?;
        Ok((Bytes::from(envelope.encoded_2718()), *envelope.tx_hash()))
    }

    async fn send_raw(&self, raw: &Bytes, hash: TxHash) -> SendOutcome {
        match self.provider().send_raw_transaction(raw).await {
            Ok(pending) if *pending.tx_hash() == hash => SendOutcome::Accepted,
            Ok(pending) => {
                SendOutcome::Rejected(format!("the node returned hash {} for {hash}", pending.tx_hash()))
            }
            Err(RpcError::ErrorResp(payload)) => {
                let message = payload.message.to_lowercase();
                if [
                    "already known",
                    "known transaction",
                    "already imported",
                    "alreadyknown",
                    "already exists",
                ]
                .iter()
                .any(|m| message.contains(m))
                {
                    SendOutcome::Accepted
                } else if message.contains("nonce too low")
                    || message.contains("nonce is too low")
                    || message.contains("oldnonce")
                {
                    SendOutcome::NonceTooLow
                } else if message.contains("replacement")
                    && (message.contains("underpriced") || message.contains("fee too low"))
                {
                    SendOutcome::ReplacementUnderpriced
                } else {
                    SendOutcome::Rejected(payload.message.to_string())
                }
            }
            Err(e @ RpcError::Transport(_)) => SendOutcome::Unknown(e.to_string()),
            Err(e) => SendOutcome::Rejected(e.to_string()),
        }
    }

    async fn pending_nonce(&self) -> Result<u64, ChainError> {
        self.provider()
            .get_transaction_count(self.address())
            .pending()
            .await
            .map_err(|source| ChainError::Rpc { method: "eth_getTransactionCount", source })
    }

    /// Takes the next nonce, signs and sends under the nonce lock; returns the request with its nonce.
    async fn submit_new(
        &self,
        tx: TransactionRequest,
        fees: Fees,
        operation: &str,
    ) -> Result<(TransactionRequest, Attempt), ChainError> {
        let mut last_conflict = (0, String::new());
        for _ in 0..NONCE_ATTEMPTS {
            let mut next = self.inner.nonce.lock().await;
            let nonce = match *next {
                Some(nonce) => nonce,
                None => self.pending_nonce().await?,
            };
            // Unknown until the node has answered: a cancelled send makes the next caller resync.
            *next = None;
            let (raw, hash) = self.sign(&tx, nonce, fees, operation).await?;
            match self.send_raw(&raw, hash).await {
                SendOutcome::Accepted => {
                    *next = Some(nonce + 1);
                    tracing::info!(%operation, nonce, %hash, "transaction sent");
                    return Ok((tx.with_nonce(nonce), Attempt { hash, fees }));
                }
                SendOutcome::Unknown(reason) => {
                    // It may have arrived: count it as sent and wait for it like any other. If it did
                    // not, the bumps rebroadcast it and fill the gap; handing its nonce to the next
                    // caller instead could make our bump replace that caller's transaction.
                    *next = Some(nonce + 1);
                    tracing::warn!(%operation, nonce, %hash, %reason, "no endpoint confirmed the transaction; waiting for it anyway");
                    return Ok((tx.with_nonce(nonce), Attempt { hash, fees }));
                }
                SendOutcome::NonceTooLow | SendOutcome::ReplacementUnderpriced => {
                    tracing::warn!(%operation, nonce, "nonce already used elsewhere; resynchronising from the node");
                    last_conflict =
                        (nonce, "nonce already used by another transaction, 3 times in a row".to_owned());
                }
                SendOutcome::Rejected(message) => {
                    *next = Some(nonce);
                    return Err(ChainError::Rejected { operation: operation.to_owned(), nonce, message });
                }
            }
        }
        let (nonce, message) = last_conflict;
        Err(ChainError::Rejected { operation: operation.to_owned(), nonce, message })
    }

    /// Polls for a receipt of any attempt at this nonce, bumping fees on schedule (module docs).
    async fn await_receipt(
        &self,
        tx: &TransactionRequest,
        first: Attempt,
        operation: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        let policy = self.inner.policy;
        let nonce = tx.nonce.unwrap_or_default();
        let started = Instant::now();
        let deadline = started + policy.receipt_timeout;
        let mut attempts = vec![first];
        let mut last_fees = first.fees;
        let mut bumps = 0;
        let mut next_bump = started + policy.bump_interval;
        let mut nonce_used_polls = 0;
        let mut pause = FIRST_POLL / 2;
        loop {
            // The mined nonce first, then the receipts: a receipt mined in between is still found.
            let mined_nonce = self.provider().get_transaction_count(self.address()).latest().await;
            for attempt in attempts.iter().rev() {
                match self.provider().get_transaction_receipt(attempt.hash).await {
                    Ok(Some(receipt)) => {
                        if attempts.len() > 1 {
                            tracing::info!(%operation, nonce, hash = %attempt.hash, attempts = attempts.len(), "bumped transaction mined");
                        }
                        return Ok(receipt);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%operation, hash = %attempt.hash, error = %e, "receipt poll failed")
                    }
                }
            }
            match mined_nonce {
                Ok(count) if count > nonce => {
                    nonce_used_polls += 1;
                    if nonce_used_polls >= NONCE_TAKEN_POLLS {
                        return Err(ChainError::NonceTaken {
                            operation: operation.to_owned(),
                            nonce,
                            tx_hashes: attempts.iter().map(|a| a.hash).collect(),
                        });
                    }
                }
                Ok(_) => nonce_used_polls = 0,
                Err(e) => tracing::warn!(%operation, error = %e, "nonce poll failed"),
            }

            let now = Instant::now();
            if now >= deadline {
                return Err(ChainError::ReceiptTimeout {
                    operation: operation.to_owned(),
                    nonce,
                    tx_hashes: attempts.iter().map(|a| a.hash).collect(),
                    waited: now - started,
                });
            }
            if now >= next_bump && bumps < policy.max_bumps && nonce_used_polls == 0 {
                bumps += 1;
                next_bump = now + policy.bump_interval;
                let mut fees = last_fees.bumped(policy.fee_bump_percent);
                match self.market_fees().await {
                    Ok(market) => fees = fees.at_least(market),
                    Err(e) => {
                        tracing::warn!(%operation, error = %e, "fee suggestion failed; bumping the last fees")
                    }
                }
                last_fees = fees;
                match self.sign(tx, nonce, fees, operation).await {
                    Ok((raw, hash)) => match self.send_raw(&raw, hash).await {
                        SendOutcome::Accepted | SendOutcome::Unknown(_) => {
                            tracing::warn!(%operation, nonce, %hash, bump = bumps, ?fees, "no receipt yet: resent with higher fees");
                            attempts.push(Attempt { hash, fees });
                        }
                        SendOutcome::NonceTooLow => {
                            tracing::info!(%operation, nonce, "nonce mined while bumping; waiting for its receipt")
                        }
                        SendOutcome::ReplacementUnderpriced => {
                            tracing::warn!(%operation, nonce, ?fees, "bump refused as underpriced; the next bump goes higher")
                        }
                        SendOutcome::Rejected(message) => {
                            tracing::warn!(%operation, nonce, %message, "bump rejected; still waiting for the earlier transaction")
                        }
                    },
                    Err(e) => tracing::warn!(%operation, error = %e, "signing the bump failed"),
                }
            }
            // Quick first polls (fast chains and dev nodes mine within milliseconds), then the interval.
            pause = (pause * 2).min(policy.poll_interval);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// A mined transaction with status 0 becomes [`ChainError::Reverted`], with the revert data replayed
    /// by `eth_call` on the parent block's state, then on the block's own state.
    async fn check_status(
        &self,
        tx: &TransactionRequest,
        receipt: TransactionReceipt,
        operation: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        if receipt.status() {
            return Ok(receipt);
        }
        if tx.gas.is_some_and(|limit| receipt.gas_used >= limit) {
            tracing::warn!(%operation, hash = %receipt.transaction_hash, gas = receipt.gas_used, "transaction ran out of gas");
            return Err(ChainError::OutOfGas {
                operation: operation.to_owned(),
                tx_hash: receipt.transaction_hash,
                gas_limit: receipt.gas_used,
            });
        }
        let mut call = tx.clone();
        call.nonce = None;
        call.max_fee_per_gas = None;
        call.max_priority_fee_per_gas = None;
        call.gas_price = None;
        let mut data = Bytes::new();
        if let Some(block) = receipt.block_number {
            for at in [block.saturating_sub(1), block] {
                match self.provider().call(call.clone()).block(BlockId::number(at)).await {
                    Err(e) => {
                        if let Some(found) = revert_data(&e) {
                            data = found;
                            break;
                        }
                    }
                    Ok(_) => continue,
                }
            }
        }
        tracing::warn!(%operation, hash = %receipt.transaction_hash, "transaction reverted");
        Err(ChainError::reverted(operation, Some(receipt.transaction_hash), data))
    }
}

/// The bid id the marketplace derives: `keccak256(abi.encodePacked(provider, modelId, nonce))`.
pub fn bid_id(provider: Address, model_id: B256, nonce: U256) -> B256 {
    let mut packed = Vec::with_capacity(20 + 32 + 32);
    packed.extend_from_slice(provider.as_slice());
    packed.extend_from_slice(model_id.as_slice());
    packed.extend_from_slice(&nonce.to_be_bytes::<32>());
    keccak256(packed)
}

/// The model id the registry derives: `keccak256(abi.encodePacked(owner, baseModelId))`.
pub fn model_id(owner: Address, base_id: B256) -> B256 {
    let mut packed = Vec::with_capacity(20 + 32);
    packed.extend_from_slice(owner.as_slice());
    packed.extend_from_slice(base_id.as_slice());
    keccak256(packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_raises_every_price_by_the_percentage_rounding_up() {
        let fees = Fees::Eip1559 { max_fee: 2_000_000_001, tip: 1 }.bumped(15);
        assert_eq!(fees, Fees::Eip1559 { max_fee: 2_300_000_002, tip: 2 });
        assert_eq!(Fees::Legacy { gas_price: 100 }.bumped(10), Fees::Legacy { gas_price: 110 });
        assert_eq!(Fees::Legacy { gas_price: 0 }.bumped(10), Fees::Legacy { gas_price: 1 });
    }

    #[test]
    fn bumped_fees_follow_a_rising_market() {
        let bumped = Fees::Eip1559 { max_fee: 100, tip: 10 }.bumped(10);
        let market = Fees::Eip1559 { max_fee: 500, tip: 5 };
        assert_eq!(bumped.at_least(market), Fees::Eip1559 { max_fee: 500, tip: 11 });
        let low_max = Fees::Eip1559 { max_fee: 3, tip: 2 }.at_least(Fees::Eip1559 { max_fee: 1, tip: 9 });
        assert_eq!(low_max, Fees::Eip1559 { max_fee: 9, tip: 9 });
    }
}
