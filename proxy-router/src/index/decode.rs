//! Turns marketplace logs into the entities they touch.
//!
//! The indexer never trusts event payloads for state: an event only says WHICH provider, model, bid or
//! session changed; the indexer then reads that entity's whole state from the diamond at the end of the
//! indexed range. That keeps the tables equal to the chain even for changes without an event of their own
//! (a provider claim changes `providerWithdrawnAmount` and `limitPeriodEarned` and is only visible as a MOR
//! `Transfer` to the provider).

use alloy::primitives::{Address, Log, B256};
use alloy::sol_types::SolEvent;

use crate::chain::bindings::{Marketplace, ModelRegistry, MorpheusToken, ProviderRegistry, SessionRouter};
use crate::chain::sender::bid_id;

/// An on-chain entity whose state the indexer must (re)read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Touched {
    /// `getProvider(address)`.
    Provider(Address),
    /// `getModel(modelId)`.
    Model(B256),
    /// `getBid(bidId)`.
    Bid(B256),
    /// `getSession(sessionId)`; the session's model and provider stats are derived from it.
    Session(B256),
    /// Every not yet fully paid session of this provider (a MOR payout to the provider, i.e. a claim or a
    /// close, changed some session's `providerWithdrawnAmount` without naming it).
    ProviderPayouts(Address),
}

/// What one log means for the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedLog {
    /// The event's name, e.g. `SessionOpened` (`Unknown` for a diamond log we do not map).
    pub name: &'static str,
    /// Entities to re-read.
    pub touched: Vec<Touched>,
}

/// Decodes a log of the diamond or of the MOR token. `payers` are the addresses whose MOR transfers are
/// provider payouts (the diamond and the funding account). Logs of other contracts, unknown events and
/// undecodable data map to no entity (the reference also skips logs it cannot map).
pub fn decode(log: &Log, diamond: Address, token: Address, payers: &[Address]) -> DecodedLog {
    if log.address == token {
        return decode_token(log, payers);
    }
    if log.address != diamond {
        return DecodedLog { name: "Unknown", touched: Vec::new() };
    }
    let Some(topic0) = log.data.topics().first().copied() else {
        return DecodedLog { name: "Unknown", touched: Vec::new() };
    };
    let data = &log.data;
    let decoded = match topic0 {
        ProviderRegistry::ProviderRegistered::SIGNATURE_HASH => {
            ProviderRegistry::ProviderRegistered::decode_log_data(data)
                .map(|e| ("ProviderRegistered", vec![Touched::Provider(e.provider)]))
        }
        ProviderRegistry::ProviderDeregistered::SIGNATURE_HASH => {
            ProviderRegistry::ProviderDeregistered::decode_log_data(data)
                .map(|e| ("ProviderDeregistered", vec![Touched::Provider(e.provider)]))
        }
        ModelRegistry::ModelRegisteredUpdated::SIGNATURE_HASH => {
            ModelRegistry::ModelRegisteredUpdated::decode_log_data(data)
                .map(|e| ("ModelRegisteredUpdated", vec![Touched::Model(e.modelId)]))
        }
        ModelRegistry::ModelDeregistered::SIGNATURE_HASH => {
            ModelRegistry::ModelDeregistered::decode_log_data(data)
                .map(|e| ("ModelDeregistered", vec![Touched::Model(e.modelId)]))
        }
        Marketplace::MarketplaceBidPosted::SIGNATURE_HASH => {
            Marketplace::MarketplaceBidPosted::decode_log_data(data)
                .map(|e| ("MarketplaceBidPosted", vec![Touched::Bid(bid_id(e.provider, e.modelId, e.nonce))]))
        }
        Marketplace::MarketplaceBidDeleted::SIGNATURE_HASH => {
            Marketplace::MarketplaceBidDeleted::decode_log_data(data).map(|e| {
                ("MarketplaceBidDeleted", vec![Touched::Bid(bid_id(e.provider, e.modelId, e.nonce))])
            })
        }
        SessionRouter::SessionOpened::SIGNATURE_HASH => SessionRouter::SessionOpened::decode_log_data(data)
            .map(|e| ("SessionOpened", vec![Touched::Session(e.sessionId)])),
        SessionRouter::SessionClosed::SIGNATURE_HASH => SessionRouter::SessionClosed::decode_log_data(data)
            .map(|e| ("SessionClosed", vec![Touched::Session(e.sessionId), Touched::Provider(e.providerId)])),
        SessionRouter::UserWithdrawn::SIGNATURE_HASH => {
            SessionRouter::UserWithdrawn::decode_log_data(data).map(|_| ("UserWithdrawn", Vec::new()))
        }
        Marketplace::MaretplaceFeeUpdated::SIGNATURE_HASH => Ok(("MaretplaceFeeUpdated", Vec::new())),
        Marketplace::MarketplaceBidMinMaxPriceUpdated::SIGNATURE_HASH => {
            Ok(("MarketplaceBidMinMaxPriceUpdated", Vec::new()))
        }
        ProviderRegistry::ProviderMinimumStakeUpdated::SIGNATURE_HASH => {
            Ok(("ProviderMinimumStakeUpdated", Vec::new()))
        }
        ModelRegistry::ModelMinimumStakeUpdated::SIGNATURE_HASH => {
            Ok(("ModelMinimumStakeUpdated", Vec::new()))
        }
        _ => Ok(("Unknown", Vec::new())),
    };
    match decoded {
        Ok((name, touched)) => DecodedLog { name, touched },
        Err(_) => DecodedLog { name: "Malformed", touched: Vec::new() },
    }
}

fn decode_token(log: &Log, payers: &[Address]) -> DecodedLog {
    match MorpheusToken::Transfer::decode_log_data(&log.data) {
        Ok(transfer) if payers.contains(&transfer.from) => {
            DecodedLog { name: "Transfer", touched: vec![Touched::ProviderPayouts(transfer.to)] }
        }
        Ok(_) => DecodedLog { name: "Transfer", touched: Vec::new() },
        Err(_) => DecodedLog { name: "Unknown", touched: Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, LogData, U256};

    const DIAMOND: Address = address!("00000000000000000000000000000000000000d1");
    const TOKEN: Address = address!("00000000000000000000000000000000000000e2");
    const FUNDING: Address = address!("00000000000000000000000000000000000000f3");
    const PROVIDER: Address = address!("00000000000000000000000000000000000000a4");
    const USER: Address = address!("00000000000000000000000000000000000000b5");

    fn log_of(address: Address, data: LogData) -> Log {
        Log { address, data }
    }

    fn decode_at(address: Address, data: LogData) -> DecodedLog {
        decode(&log_of(address, data), DIAMOND, TOKEN, &[DIAMOND, FUNDING])
    }

    #[test]
    fn session_closed_touches_the_session_and_its_provider() {
        let sid = B256::repeat_byte(0x33);
        let event = SessionRouter::SessionClosed { user: USER, sessionId: sid, providerId: PROVIDER };
        let decoded = decode_at(DIAMOND, event.encode_log_data());
        assert_eq!(decoded.name, "SessionClosed");
        assert_eq!(decoded.touched, vec![Touched::Session(sid), Touched::Provider(PROVIDER)]);
    }

    #[test]
    fn bid_posted_touches_the_derived_bid_id() {
        let model = B256::repeat_byte(0x44);
        let event =
            Marketplace::MarketplaceBidPosted { provider: PROVIDER, modelId: model, nonce: U256::from(3) };
        let decoded = decode_at(DIAMOND, event.encode_log_data());
        assert_eq!(decoded.touched, vec![Touched::Bid(bid_id(PROVIDER, model, U256::from(3)))]);
    }

    #[test]
    fn payouts_are_transfers_from_the_diamond_or_the_funding_account() {
        let payout = MorpheusToken::Transfer { from: FUNDING, to: PROVIDER, value: U256::from(5) };
        assert_eq!(
            decode_at(TOKEN, payout.encode_log_data()).touched,
            vec![Touched::ProviderPayouts(PROVIDER)]
        );
        let other = MorpheusToken::Transfer { from: USER, to: PROVIDER, value: U256::from(5) };
        assert!(decode_at(TOKEN, other.encode_log_data()).touched.is_empty());
    }

    #[test]
    fn logs_of_other_contracts_and_unknown_topics_touch_nothing() {
        let event = ProviderRegistry::ProviderRegistered { provider: PROVIDER };
        assert!(decode_at(USER, event.encode_log_data()).touched.is_empty());
        let unknown = LogData::new_unchecked(vec![B256::repeat_byte(0x99)], Default::default());
        assert_eq!(decode_at(DIAMOND, unknown).name, "Unknown");
        let truncated = LogData::new_unchecked(
            vec![ProviderRegistry::ProviderRegistered::SIGNATURE_HASH],
            Default::default(),
        );
        assert_eq!(decode_at(DIAMOND, truncated).name, "Malformed");
    }
}
