//! The report that closes a session ([`closeout_report`]) and its encoding ([`session_report`],
//! the reference's 7-word receipt) and signature ([`sign_report`], EIP-191 as the contracts verify).

use alloy::primitives::{keccak256, Bytes, B256, U256};
use alloy::sol_types::SolValue;

use crate::api::ApiError;
use crate::chain::{ChainError, Signer, Wallet};
use crate::store;

/// Performance figures of a closing report (its words 4–7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Average tokens per second × 1000.
    pub tps_scaled1000: u32,
    /// Average time to first token, milliseconds.
    pub ttft_ms: u32,
    /// Input tokens over the session.
    pub input_tokens: u32,
    /// Output tokens over the session.
    pub output_tokens: u32,
}

/// The 7-word session report the routers sign: `abi.encode(bytes32 sessionId, uint256 chainId,
/// uint128 timestampMs, uint32 tpsScaled1000, uint32 ttftMs, uint32 inputTokens, uint32 outputTokens)`
/// (224 bytes; the contract reads the first five words).
pub fn session_report(session_id: B256, chain_id: u64, timestamp_ms: u128, stats: ReportStats) -> Bytes {
    let ReportStats { tps_scaled1000, ttft_ms, input_tokens, output_tokens } = stats;
    Bytes::from(
        (
            session_id,
            U256::from(chain_id),
            timestamp_ms,
            tps_scaled1000,
            ttft_ms,
            input_tokens,
            output_tokens,
        )
            .abi_encode(),
    )
}

/// A report and its EIP-191 signature, as `closeSession` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// The encoded report ([`session_report`]).
    pub report: Bytes,
    /// 65 bytes `r ‖ s ‖ v` (v = 27/28) over `keccak256(report)` with the Ethereum message prefix.
    pub signature: Bytes,
}

/// Signs `report` with `wallet` the way the contracts verify it.
pub fn sign_report(wallet: &Wallet, report: Bytes) -> Result<SignedReport, ChainError> {
    let signature = wallet.sign_eip191_hash(&keccak256(&report))?;
    Ok(SignedReport { report, signature: Bytes::from(signature.as_bytes().to_vec()) })
}

/// The report that closes `session` at chain time `now` (seconds).
///
/// For now the node signs it with its own wallet and without statistics (the node has none yet): on
/// chain this is a dispute, the reference's fallback when the provider cannot be reached. The
/// consumer role replaces this function with the provider's signed report over MOR-RPC
/// (`session.report`), keeping this one as the fallback. The stamp is the chain's time in milliseconds
/// like the reference's, so it is fresh for the contract even when the local clock is off.
pub async fn closeout_report(
    signer: &Signer,
    chain_id: u64,
    session: &store::Session,
    now: u64,
) -> Result<SignedReport, ApiError> {
    let report = session_report(session.id, chain_id, u128::from(now) * 1000, ReportStats::default());
    Ok(sign_report(signer.sender.wallet(), report)?)
}
