//! Closing sessions (go-proxy-router.md §4.4), the expiry sweeper and the recovery at start.
//!
//! # Close
//!
//! 1. Ask the provider for its signed report (`session.report`) at the endpoint and key of the
//!    session's record (the key recovered by a ping when the record has none). The answer must be
//!    signed by the provider's key, name this session and chain, carry the provider's EIP-191 signature,
//!    and be fresh enough for the contract (its millisecond stamp not older than the contract's ten
//!    minutes, with a minute to spare, by the chain's clock). Closing with it is not a dispute
//!    (`closeoutType` 0): the provider is paid in full and the statistics count.
//! 2. Otherwise (provider unreachable, lost its state, lying, clock off) build the same report from
//!    the consumer's own statistics, stamped with the chain's clock, signed by the wallet: a dispute
//!    (`closeoutType` 1), the reference's fallback. If the chain refuses the provider's report, the
//!    close is retried once with our own.
//! 3. `closeSession` through the wallet's sender; the record is marked closed.
//!
//! # Sweeper
//!
//! Every `SESSION_SWEEP_INTERVAL` ([`Consumer::run`]): this wallet's sessions that the index shows open
//! with `endsAt` before the chain's latest block time, plus those of the local records that the index
//! has not caught up with, are closed as above. Failures are logged and retried at the next tick.
//!
//! # Recovery
//!
//! At start ([`Consumer::recover`]), every local record this node had not closed is checked on chain
//! (closed elsewhere → marked closed), and every open session of this wallet in the index without a
//! record is adopted (endpoint from the index, key from a ping when first needed), so a restart, or a
//! lost store, loses no session: each can still be prompted and closed.

use alloy::eips::BlockId;
use alloy::primitives::{Bytes, B256, U256};
use tokio_util::sync::CancellationToken;

use super::client::VerifiedReport;
use super::error::ConsumerError;
use super::reads::Head;
use super::Consumer;
use crate::chain::bindings::MorpheusToken;
use crate::chain::ChainError;
use crate::protocol::{ReportTokens, SessionReport};
use crate::store::{self, SessionFilter};

/// The MOR `token` moved from `diamond` to `user` by the transaction of `receipt`.
fn refund_in(
    receipt: &alloy::rpc::types::TransactionReceipt,
    token: alloy::primitives::Address,
    diamond: alloy::primitives::Address,
    user: alloy::primitives::Address,
) -> U256 {
    use alloy::sol_types::SolEvent as _;
    receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == token)
        .filter_map(|log| MorpheusToken::Transfer::decode_log_data(log.data()).ok())
        .filter(|t| t.from == diamond && t.to == user)
        .fold(U256::ZERO, |sum, t| sum.saturating_add(t.value))
}

/// The contract's validity of a signed report (`SIGNATURE_TTL`), seconds.
pub const REPORT_TTL: u64 = 600;

/// Spare time a provider's report must still have when we send it, seconds.
const REPORT_MARGIN: u64 = 60;

/// How many sessions one sweep closes at most.
const SWEEP_LIMIT: u64 = 100;

/// A closed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The session.
    pub session_id: B256,
    /// The `closeSession` transaction.
    pub tx: B256,
    /// 0 with the provider's report, 1 with our own (a dispute).
    pub closeout_type: u8,
    /// Why the provider's report was not used, when it was not.
    pub provider_error: Option<String>,
    /// MOR wei the close returned to the user (its `Transfer`s from the diamond to the user in the
    /// `closeSession` receipt): the stake minus what is kept on hold or paid.
    pub refund: U256,
}

/// What a recovery found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Open sessions with a record, still open on chain.
    pub resumed: usize,
    /// Open sessions of this wallet in the index that had no record.
    pub adopted: usize,
    /// Records whose session was closed meanwhile.
    pub closed_meanwhile: usize,
}

impl Consumer {
    /// Closes `session_id` if it is this wallet's and open (read on chain at the latest block).
    pub async fn close(&self, session_id: B256) -> Result<Closed, ConsumerError> {
        let me = self.signer()?.address();
        let head = self.chain().head().await?;
        let session = self
            .chain()
            .session(session_id, head.block_id())
            .await?
            .ok_or(ConsumerError::SessionNotFound(session_id))?;
        if session.closed_at != 0 {
            self.store().consumer_sessions().mark_closed(session_id, session.closed_at, None, None).await?;
            return Err(ConsumerError::SessionClosed(session_id));
        }
        if session.user != me {
            return Err(ConsumerError::NotOurSession { session: session_id, user: session.user, wallet: me });
        }
        self.close_open(&session, head).await
    }

    /// Closes `session`, which the caller checked is open and may be closed by this wallet, as of
    /// `head`: with the provider's report when it can be had, else with our own.
    pub async fn close_open(&self, session: &store::Session, head: Head) -> Result<Closed, ConsumerError> {
        let signer = self.signer()?;
        let (mut report, mut closeout_type, mut provider_error) = match self
            .provider_report(session, head)
            .await
        {
            Ok(r) => (r, 0u8, None),
            Err(e) => {
                tracing::info!(session = %session.id, error = %e, "no usable provider report: closing with our own (a dispute)");
                (self.own_report(session, head).await?, 1u8, Some(e.to_string()))
            }
        };
        let receipt = match signer.sender.close_session(report.0.clone(), report.1.clone()).await {
            Ok(receipt) => receipt,
            Err(e @ ChainError::Reverted { .. }) if closeout_type == 0 => {
                tracing::warn!(session = %session.id, error = %e, "the chain refused the provider's report: closing with our own");
                provider_error = Some(format!("the chain refused the provider's report: {e}"));
                report = self.own_report(session, head).await?;
                closeout_type = 1;
                signer.sender.close_session(report.0.clone(), report.1.clone()).await?
            }
            Err(e) => return Err(e.into()),
        };
        let records = self.store().consumer_sessions();
        if records.get(session.id).await?.is_none() {
            self.adopt(session).await?;
        }
        records
            .mark_closed(session.id, head.timestamp, Some(receipt.transaction_hash), Some(closeout_type))
            .await?;
        tracing::info!(session = %session.id, tx = %receipt.transaction_hash, closeout_type, "session closed");
        let refund =
            refund_in(&receipt, self.inner.settings.mor_token, self.inner.settings.diamond, session.user);
        Ok(Closed {
            session_id: session.id,
            tx: receipt.transaction_hash,
            closeout_type,
            provider_error,
            refund,
        })
    }

    /// The provider's report, verified and fresh enough for the contract.
    async fn provider_report(
        &self,
        session: &store::Session,
        head: Head,
    ) -> Result<(Bytes, Bytes), ConsumerError> {
        let signer = self.signer()?;
        let mut record = match self.store().consumer_sessions().get(session.id).await? {
            Some(record) => record,
            None => self.adopt(session).await?,
        };
        if let Some(provider) = self.store().providers().get(session.provider).await? {
            if !provider.endpoint.is_empty() && provider.endpoint != record.endpoint {
                record.endpoint = provider.endpoint;
                record.provider_public_key = None;
            }
        }
        let key = self.ensure_key(&mut record).await?;
        let VerifiedReport { report, signature, decoded } = self
            .client()
            .report(&record.endpoint, &key, signer.sender.wallet().signer(), session.id, self.chain_id())
            .await?;
        let stamp = report_seconds(decoded.timestamp_ms);
        if stamp.saturating_add(REPORT_TTL) < head.timestamp.saturating_add(REPORT_MARGIN) {
            return Err(ConsumerError::invalid(
                &record.endpoint,
                format!("its report is stamped {stamp}, too old for the chain's time {}", head.timestamp),
            ));
        }
        Ok((report, signature))
    }

    /// Our own report from the consumer's statistics, stamped with the chain's clock in milliseconds,
    /// signed by the wallet (a dispute on chain).
    async fn own_report(
        &self,
        session: &store::Session,
        head: Head,
    ) -> Result<(Bytes, Bytes), ConsumerError> {
        let signer = self.signer()?;
        let stats =
            self.store().consumer_sessions().get(session.id).await?.map(|r| r.stats).unwrap_or_default();
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let report = SessionReport {
            session_id: session.id,
            chain_id: U256::from(self.chain_id()),
            timestamp_ms: u128::from(head.timestamp) * 1000,
            tps_scaled1000: clamp(stats.tps_scaled1000()),
            ttft_ms: clamp(stats.ttft_ms()),
            tokens: Some(ReportTokens {
                input: clamp(stats.input_tokens),
                output: clamp(stats.output_tokens),
            }),
        };
        Ok(report.sign(signer.sender.wallet().signer())?)
    }

    /// Closes this wallet's expired sessions once; returns how many were closed.
    pub async fn sweep(&self) -> Result<usize, ConsumerError> {
        let me = self.signer()?.address();
        let head = self.chain().head().await?;
        let now = head.timestamp;
        let mut due: Vec<B256> = self
            .store()
            .sessions()
            .active_ending_by(now.saturating_sub(1), SWEEP_LIMIT)
            .await?
            .into_iter()
            .filter(|s| s.user == me)
            .map(|s| s.id)
            .collect();
        for record in self.store().consumer_sessions().open_of(me).await? {
            if record.ends_at < now && !due.contains(&record.session_id) {
                due.push(record.session_id);
            }
        }
        let mut closed = 0;
        for id in due {
            match self.close(id).await {
                Ok(c) => {
                    closed += 1;
                    tracing::info!(session = %id, tx = %c.tx, closeout_type = c.closeout_type, "expired session closed");
                }
                Err(ConsumerError::SessionClosed(_)) => {}
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "cannot close an expired session; retrying at the next sweep")
                }
            }
        }
        Ok(closed)
    }

    /// Reconciles the local records with the chain and adopts this wallet's open sessions that have
    /// none (see the module docs).
    pub async fn recover(&self) -> Result<Recovery, ConsumerError> {
        let me = self.signer()?.address();
        let records = self.store().consumer_sessions();
        let mut recovery = Recovery::default();
        let open = records.open_of(me).await?;
        for record in &open {
            match self.chain().session(record.session_id, BlockId::latest()).await? {
                Some(s) if s.closed_at != 0 => {
                    records.mark_closed(s.id, s.closed_at, None, None).await?;
                    recovery.closed_meanwhile += 1;
                }
                Some(_) => recovery.resumed += 1,
                None => {
                    tracing::warn!(session = %record.session_id, "a recorded session is unknown to the chain")
                }
            }
        }
        let mut offset = 0;
        loop {
            let filter = SessionFilter { user: Some(me), active_only: true, ..SessionFilter::default() };
            let page = self
                .store()
                .sessions()
                .list(filter, store::Page::new(offset, store::Page::MAX_LIMIT))
                .await?;
            let fetched = page.items.len() as u64;
            for session in page.items {
                if records.get(session.id).await?.is_none() {
                    self.adopt(&session).await?;
                    recovery.adopted += 1;
                }
            }
            offset += fetched;
            if fetched == 0 || offset >= page.total {
                break;
            }
        }
        tracing::info!(?recovery, "consumer sessions recovered");
        Ok(recovery)
    }

    /// The consumer's background work until `cancel`: the recovery once, then the sweeper every
    /// `SESSION_SWEEP_INTERVAL`. Errors are logged and retried; a node without a wallet idles.
    pub async fn run(self, cancel: CancellationToken) {
        let interval = self.settings().sweep_interval;
        let mut recovered = false;
        loop {
            if !recovered {
                match self.recover().await {
                    Ok(_) => recovered = true,
                    Err(ConsumerError::NoWallet) => {}
                    Err(e) => tracing::warn!(error = %e, "session recovery failed; retrying"),
                }
            }
            if recovered {
                match self.sweep().await {
                    Ok(0) | Err(ConsumerError::NoWallet) => {}
                    Ok(n) => tracing::info!(closed = n, "sweeper closed expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "sweep failed; retrying"),
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// A report stamp in seconds: the routers stamp milliseconds, older ones seconds (the contract's rule).
fn report_seconds(stamp: u128) -> u64 {
    const MILLISECONDS_THRESHOLD: u128 = 100_000_000_000;
    let seconds = if stamp >= MILLISECONDS_THRESHOLD { stamp / 1000 } else { stamp };
    u64::try_from(seconds).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_stamps_in_both_units() {
        assert_eq!(report_seconds(1_719_260_000_000), 1_719_260_000);
        assert_eq!(report_seconds(1_719_260_000), 1_719_260_000);
    }
}
