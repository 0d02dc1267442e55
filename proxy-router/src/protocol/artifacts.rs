//! The two on-chain artifacts a provider signs over MOR-RPC: the **session approval** the consumer
//! passes to `openSession`, and the **session report** (receipt) the consumer passes to `closeSession`.
//!
//! Both are `abi.encode` of static words (not `encodePacked`) and both are signed with EIP-191 over
//! `keccak256(artifact)` ([`super::signing::sign_eip191`], v ∈ {27, 28}):
//!
//! - approval = `abi.encode(bytes32 bidId, uint256 chainId, address user, uint128 timestampMs)`,
//!   128 bytes;
//! - report = `abi.encode(bytes32 sessionId, uint256 chainId, uint128 timestampMs, uint32 tpsScaled1000,
//!   uint32 ttftMs, uint32 inputTokens, uint32 outputTokens)`, 224 bytes. The contract decodes only
//!   the first five words and keeps the whole receipt verbatim; reports of older routers have exactly
//!   those five words (160 bytes), which [`SessionReport::decode`] also reads.
//!
//! Timestamps are **milliseconds** as in the reference (`time.Now().UnixMilli()`); our contracts
//! accept both units, the live diamond treats them as seconds (see `docs/contracts.md`).

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;

use super::error::ProtocolError;
use super::signing::{recover_eip191, sign_eip191};

const APPROVAL: &str = "session approval";
const REPORT: &str = "session report";

/// Length of an encoded approval: four 32-byte words.
pub const APPROVAL_LEN: usize = 128;
/// Length of an encoded report with token counts: seven words.
pub const REPORT_LEN: usize = 224;
/// Length of a report without token counts (older routers): five words.
pub const REPORT_LEN_WITHOUT_TOKENS: usize = 160;

/// What a provider signs to let `user` open a session on `bid_id` (`openSession`'s `approvalEncoded_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionApproval {
    /// The bid the session is opened on.
    pub bid_id: B256,
    /// The chain id the approval is valid on (`block.chainid`).
    pub chain_id: U256,
    /// The consumer the approval is for (our contracts enforce it; the live diamond ignores it).
    pub user: Address,
    /// When the provider signed it, Unix **milliseconds**.
    pub timestamp_ms: u128,
}

impl SessionApproval {
    /// The 128-byte ABI encoding.
    pub fn encode(&self) -> Bytes {
        (self.bid_id, self.chain_id, self.user, self.timestamp_ms).abi_encode_params().into()
    }

    /// Decodes exactly 128 bytes, refusing dirty padding.
    pub fn decode(encoded: &[u8]) -> Result<Self, ProtocolError> {
        check_len(APPROVAL, encoded, &[APPROVAL_LEN])?;
        let (bid_id, chain_id, user, timestamp_ms) =
            <(B256, U256, Address, u128)>::abi_decode_params_validate(encoded)
                .map_err(|e| ProtocolError::InvalidArtifact { what: APPROVAL, reason: e.to_string() })?;
        Ok(Self { bid_id, chain_id, user, timestamp_ms })
    }

    /// Encodes and signs (EIP-191): returns `(approval, approvalSig)` as sent in `SessionRes`.
    pub fn sign(&self, signer: &PrivateKeySigner) -> Result<(Bytes, Bytes), ProtocolError> {
        let encoded = self.encode();
        let signature = sign_eip191(signer, &encoded)?;
        Ok((encoded, signature))
    }

    /// Checks the fields a consumer asked for: the bid, the chain and the user.
    pub fn check(&self, bid_id: B256, chain_id: U256, user: Address) -> Result<(), ProtocolError> {
        expect("approval bid id", bid_id, self.bid_id)?;
        expect("approval chain id", chain_id, self.chain_id)?;
        expect("approval user", user, self.user)
    }
}

/// The token counts at the end of a current report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportTokens {
    /// Prompt tokens over the session.
    pub input: u32,
    /// Completion tokens over the session.
    pub output: u32,
}

/// A provider's account of a session (`closeSession`'s `receiptEncoded_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReport {
    /// The session.
    pub session_id: B256,
    /// The chain id the report is valid on.
    pub chain_id: U256,
    /// When it was signed, Unix **milliseconds**.
    pub timestamp_ms: u128,
    /// Average tokens per second × 1000.
    pub tps_scaled1000: u32,
    /// Average time to first token in milliseconds.
    pub ttft_ms: u32,
    /// Token totals; `None` for the five-word reports of older routers.
    pub tokens: Option<ReportTokens>,
}

impl SessionReport {
    /// The ABI encoding: 224 bytes, or 160 when `tokens` is `None`.
    pub fn encode(&self) -> Bytes {
        let head = (self.session_id, self.chain_id, self.timestamp_ms, self.tps_scaled1000, self.ttft_ms);
        match self.tokens {
            Some(tokens) => (head.0, head.1, head.2, head.3, head.4, tokens.input, tokens.output)
                .abi_encode_params()
                .into(),
            None => head.abi_encode_params().into(),
        }
    }

    /// Decodes a 224-byte (or a 160-byte legacy) report, refusing dirty padding.
    pub fn decode(encoded: &[u8]) -> Result<Self, ProtocolError> {
        check_len(REPORT, encoded, &[REPORT_LEN, REPORT_LEN_WITHOUT_TOKENS])?;
        let invalid = |e: alloy::sol_types::Error| ProtocolError::InvalidArtifact {
            what: REPORT,
            reason: e.to_string(),
        };
        if encoded.len() == REPORT_LEN {
            let (session_id, chain_id, timestamp_ms, tps_scaled1000, ttft_ms, input, output) =
                <(B256, U256, u128, u32, u32, u32, u32)>::abi_decode_params_validate(encoded)
                    .map_err(invalid)?;
            Ok(Self {
                session_id,
                chain_id,
                timestamp_ms,
                tps_scaled1000,
                ttft_ms,
                tokens: Some(ReportTokens { input, output }),
            })
        } else {
            let (session_id, chain_id, timestamp_ms, tps_scaled1000, ttft_ms) =
                <(B256, U256, u128, u32, u32)>::abi_decode_params_validate(encoded).map_err(invalid)?;
            Ok(Self { session_id, chain_id, timestamp_ms, tps_scaled1000, ttft_ms, tokens: None })
        }
    }

    /// Encodes and signs (EIP-191): returns `(report, signedReport)` as sent in `SessionReportRes`.
    /// The consumer's fallback signs the same structure with its own key (a disputed close).
    pub fn sign(&self, signer: &PrivateKeySigner) -> Result<(Bytes, Bytes), ProtocolError> {
        let encoded = self.encode();
        let signature = sign_eip191(signer, &encoded)?;
        Ok((encoded, signature))
    }

    /// Checks the session and the chain a consumer expects.
    pub fn check(&self, session_id: B256, chain_id: U256) -> Result<(), ProtocolError> {
        expect("report session id", session_id, self.session_id)?;
        expect("report chain id", chain_id, self.chain_id)
    }
}

/// The address that signed an encoded approval or report (EIP-191, as the SessionRouter recovers it).
/// Whether that address may sign for the bid's provider (itself, a delegate, a contract's owner) is for
/// the caller to decide.
pub fn artifact_signer(encoded: &[u8], signature: &[u8]) -> Result<Address, ProtocolError> {
    recover_eip191(encoded, signature)
}

fn check_len(what: &'static str, encoded: &[u8], allowed: &[usize]) -> Result<(), ProtocolError> {
    if allowed.contains(&encoded.len()) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidArtifact {
            what,
            reason: format!("{} bytes, expected {allowed:?}", encoded.len()),
        })
    }
}

fn expect<T: PartialEq + std::fmt::Display>(
    what: &'static str,
    expected: T,
    actual: T,
) -> Result<(), ProtocolError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ProtocolError::Mismatch { what, expected: expected.to_string(), actual: actual.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::b256;

    fn approval() -> SessionApproval {
        SessionApproval {
            bid_id: b256!("b0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3"),
            chain_id: U256::from(8453),
            user: alloy::primitives::address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc"),
            timestamp_ms: 1_719_253_478_123,
        }
    }

    #[test]
    fn approval_round_trips_and_refuses_other_lengths_and_dirty_padding() {
        let encoded = approval().encode();
        assert_eq!(encoded.len(), APPROVAL_LEN);
        assert_eq!(SessionApproval::decode(&encoded).unwrap(), approval());
        assert!(SessionApproval::decode(&encoded[..127]).is_err());
        let mut longer = encoded.to_vec();
        longer.extend_from_slice(&[0; 32]);
        assert!(SessionApproval::decode(&longer).is_err());
        // A set bit in the address word's padding.
        let mut dirty = encoded.to_vec();
        dirty[64] = 1;
        assert!(matches!(SessionApproval::decode(&dirty), Err(ProtocolError::InvalidArtifact { .. })));
        // A set bit above uint128 in the timestamp word.
        let mut dirty = encoded.to_vec();
        dirty[96] = 1;
        assert!(matches!(SessionApproval::decode(&dirty), Err(ProtocolError::InvalidArtifact { .. })));
    }

    #[test]
    fn approval_check_names_the_mismatching_field() {
        let a = approval();
        a.check(a.bid_id, a.chain_id, a.user).unwrap();
        let err = a.check(a.bid_id, U256::from(1), a.user).unwrap_err();
        assert!(matches!(err, ProtocolError::Mismatch { what: "approval chain id", .. }));
    }

    #[test]
    fn legacy_five_word_reports_decode_without_tokens() {
        let report = SessionReport {
            session_id: B256::repeat_byte(0x11),
            chain_id: U256::from(8453),
            timestamp_ms: 1,
            tps_scaled1000: 2,
            ttft_ms: 3,
            tokens: None,
        };
        let encoded = report.encode();
        assert_eq!(encoded.len(), REPORT_LEN_WITHOUT_TOKENS);
        assert_eq!(SessionReport::decode(&encoded).unwrap(), report);
        assert!(SessionReport::decode(&encoded[..159]).is_err());
        let mut dirty = encoded.to_vec();
        dirty[96 + 27] = 1; // above uint32 in tpsScaled1000
        assert!(SessionReport::decode(&dirty).is_err());
    }

    #[test]
    fn signed_artifacts_recover_to_the_signer_and_tampering_changes_the_signer() {
        let signer = PrivateKeySigner::random();
        let (encoded, signature) = approval().sign(&signer).unwrap();
        assert_eq!(artifact_signer(&encoded, &signature).unwrap(), signer.address());
        let mut tampered = encoded.to_vec();
        tampered[127] ^= 1;
        assert_ne!(artifact_signer(&tampered, &signature).ok(), Some(signer.address()));
    }
}
