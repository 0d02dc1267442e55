//! Every write the router makes goes through `TxSender` against our real contracts on anvil, and its
//! effect is visible through the diamond's getters; MOR balances are checked around every money
//! movement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, U256};
use e2e_tests::chain::{model_registration, wallet, ChainFixture, MOR};
use proxy_router::chain::bindings::{Marketplace, ModelRegistry, ProviderRegistry, SessionRouter};
use proxy_router::chain::sender::OpenSession;
use proxy_router::chain::Allowance;

const PROVIDER: u32 = 2;
const CONSUMER: u32 = 3;
const PRICE: u64 = 10_000_000_000_000; // 1e13 wei/s, the minimum bid price

/// MOR balances of a few accounts at one moment.
struct Balances(Vec<U256>);

async fn balances(chain: &ChainFixture, owners: &[Address]) -> Balances {
    let mut values = Vec::new();
    for owner in owners {
        values.push(chain.mor_balance(*owner).await.unwrap());
    }
    Balances(values)
}

/// Signed difference `after − before` per account, as i128 (amounts in these tests are far below 2^127).
fn deltas(before: &Balances, after: &Balances) -> Vec<i128> {
    before
        .0
        .iter()
        .zip(&after.0)
        .map(
            |(b, a)| {
                if a >= b {
                    i128::try_from(*a - *b).unwrap()
                } else {
                    -i128::try_from(*b - *a).unwrap()
                }
            },
        )
        .collect()
}

fn i(v: U256) -> i128 {
    i128::try_from(v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_model_bid_and_approval_writes() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let d = chain.deployment.clone();
    let read = chain.provider().unwrap();
    let provider = chain.sender(PROVIDER).await.unwrap();
    let p = provider.address();
    let allowance = Allowance::new(provider.clone());
    chain.give_mor(p, U256::from(10 * MOR)).await.unwrap();
    let who = [p, d.diamond];

    // providerRegister: the stake moves from the provider to the diamond.
    let stake = U256::from(MOR / 5);
    let before = balances(&chain, &who).await;
    allowance.spend(stake, || provider.provider_register(p, stake, "127.0.0.1:3333")).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [-i(stake), i(stake)]);
    let registry = ProviderRegistry::new(d.diamond, read.clone());
    let record = registry.getProvider(p).call().await.unwrap();
    assert_eq!((record.stake, record.endpoint.as_str(), record.isDeleted), (stake, "127.0.0.1:3333", false));
    assert!(registry.getIsProviderActive(p).call().await.unwrap());

    // modelRegister: the model stake moves; the id is the contract's.
    let model_stake = U256::from(MOR / 10);
    let registration = model_registration(p, "llama-3-8b", model_stake);
    let before = balances(&chain, &who).await;
    let (model_id, _) =
        allowance.spend(model_stake, || provider.model_register(&registration)).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [-i(model_stake), i(model_stake)]);
    let models = ModelRegistry::new(d.diamond, read.clone());
    assert_eq!(models.getModelId(p, registration.base_id).call().await.unwrap(), model_id);
    let record = models.getModel(model_id).call().await.unwrap();
    assert_eq!((record.owner, record.stake, record.name.as_str()), (p, model_stake, "llama-3-8b"));
    assert_eq!(record.tags, ["llm", "test"]);
    assert!(models.getIsModelActive(model_id).call().await.unwrap());

    // postModelBid: the bid fee moves; the id is the contract's.
    let market = Marketplace::new(d.diamond, read.clone());
    let fee = market.getBidFee().call().await.unwrap();
    let before = balances(&chain, &who).await;
    let (bid_id, _) =
        allowance.spend(fee, || provider.post_model_bid(p, model_id, U256::from(PRICE))).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [-i(fee), i(fee)]);
    assert_eq!(market.getBidId(p, model_id, U256::ZERO).call().await.unwrap(), bid_id);
    let bid = market.getBid(bid_id).call().await.unwrap();
    assert_eq!((bid.provider, bid.modelId, bid.pricePerSecond), (p, model_id, U256::from(PRICE)));
    assert!(market.isBidActive(bid_id).call().await.unwrap());
    let (active, _) =
        market.getModelActiveBids(model_id, U256::ZERO, U256::from(10)).call().await.unwrap().into();
    assert_eq!(active, [bid_id]);

    // deleteModelBid: no money moves (the fee is not refunded).
    let before = balances(&chain, &who).await;
    provider.delete_model_bid(bid_id).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [0, 0]);
    assert!(!market.isBidActive(bid_id).call().await.unwrap());
    assert!(market.getBid(bid_id).call().await.unwrap().deletedAt > 0);

    // modelDeregister: the model stake comes back.
    let before = balances(&chain, &who).await;
    provider.model_deregister(model_id).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [i(model_stake), -i(model_stake)]);
    assert!(models.getModel(model_id).call().await.unwrap().isDeleted);

    // providerDeregister: the stake comes back (nothing earned, nothing locked).
    let before = balances(&chain, &who).await;
    provider.provider_deregister(p).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [i(stake), -i(stake)]);
    assert!(registry.getProvider(p).call().await.unwrap().isDeleted);
    assert!(!registry.getIsProviderActive(p).call().await.unwrap());

    // approve / increaseAllowance: allowances change, balances do not.
    let before = balances(&chain, &who).await;
    provider.approve(d.diamond, U256::from(5u64)).await.unwrap();
    assert_eq!(chain.allowance(p).await.unwrap(), U256::from(5u64));
    provider.increase_allowance(d.diamond, U256::from(7u64)).await.unwrap();
    assert_eq!(chain.allowance(p).await.unwrap(), U256::from(12u64));
    provider.approve(d.diamond, U256::ZERO).await.unwrap();
    assert_eq!(chain.allowance(p).await.unwrap(), U256::ZERO);
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [0, 0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_open_close_claim_and_withdraw() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let d = chain.deployment.clone();
    let read = chain.provider().unwrap();
    let provider = chain.sender(PROVIDER).await.unwrap();
    let consumer = chain.sender(CONSUMER).await.unwrap();
    let (p, u) = (provider.address(), consumer.address());
    let (model_id, bid_id) = chain.provider_with_bid(&provider, "m", U256::from(PRICE)).await.unwrap();
    let sessions = SessionRouter::new(d.diamond, read.clone());
    let consumer_allowance = Allowance::new(consumer.clone());
    let price = U256::from(PRICE);

    let stake_a = chain.session_stake(price, 3600).await.unwrap();
    let stake_b = chain.session_stake(price, 600).await.unwrap();
    chain.give_mor(u, (stake_a + stake_b) * U256::from(2)).await.unwrap();
    let who = [u, p, d.funding_account, d.diamond];

    // Session A: openSession with the provider's approval moves the stake to the diamond.
    let (approval_a, signature_a) =
        chain.signed_approval(&wallet(PROVIDER).unwrap(), bid_id, u).await.unwrap();
    let open = OpenSession {
        user: u,
        amount: stake_a,
        direct_payment: false,
        approval: approval_a,
        approval_signature: signature_a,
    };
    let before = balances(&chain, &who).await;
    let (session_a, _) = consumer_allowance.spend(stake_a, || consumer.open_session(&open)).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [-i(stake_a), 0, 0, i(stake_a)]);
    let record = sessions.getSession(session_a).call().await.unwrap();
    assert_eq!((record.user, record.bidId, record.stake, record.isActive), (u, bid_id, stake_a, true));
    assert!(
        record.endsAt >= record.openedAt + 3600,
        "sized for an hour: {} .. {}",
        record.openedAt,
        record.endsAt
    );
    let (user_sessions, _) =
        sessions.getUserSessions(u, U256::ZERO, U256::from(10)).call().await.unwrap().into();
    assert_eq!(user_sessions, [session_a]);

    // Ten minutes of use, then an early close with the provider's report: the provider is paid from
    // the funding account, today's share of the stake is held until the next UTC day, the rest returns.
    chain.advance_time(600).await.unwrap();
    let (report, report_signature) =
        chain.signed_report(&wallet(PROVIDER).unwrap(), session_a).await.unwrap();
    let before = balances(&chain, &who).await;
    consumer.close_session(report.clone(), report_signature).await.unwrap();
    let after = balances(&chain, &who).await;
    let record = sessions.getSession(session_a).call().await.unwrap();
    assert!(!record.isActive && record.closedAt > 0 && record.closedAt < record.endsAt);
    assert_eq!(record.closeoutType, U256::ZERO, "provider-signed: no dispute");
    assert_eq!(record.closeoutReceipt, report);
    let earned = U256::from(record.closedAt - record.openedAt) * price;
    let held = sessions.getUserStakesOnHold(u, 10).call().await.unwrap();
    assert_eq!(held.available_, U256::ZERO);
    let lock = held.hold_;
    assert!(lock > U256::ZERO && lock < stake_a, "lock {lock} of {stake_a}");
    assert_eq!(deltas(&before, &after), [i(stake_a - lock), i(earned), -i(earned), -i(stake_a - lock)]);
    let stats = sessions.getProviderModelStats(model_id, p).call().await.unwrap();
    assert_eq!((stats.totalCount, stats.successCount), (1, 1));

    // Session B runs to its end; the provider claims its earnings before anyone closes it.
    let (approval_b, signature_b) =
        chain.signed_approval(&wallet(PROVIDER).unwrap(), bid_id, u).await.unwrap();
    let open = OpenSession {
        user: u,
        amount: stake_b,
        direct_payment: false,
        approval: approval_b,
        approval_signature: signature_b,
    };
    let (session_b, _) = consumer_allowance.spend(stake_b, || consumer.open_session(&open)).await.unwrap();
    let record = sessions.getSession(session_b).call().await.unwrap();
    let now = chain.chain_time().await.unwrap();
    chain.advance_time(u64::try_from(record.endsAt).unwrap() - now + 1).await.unwrap();
    let before = balances(&chain, &who).await;
    provider.claim_for_provider(session_b).await.unwrap();
    let paid = U256::from(record.endsAt - record.openedAt) * price;
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [0, i(paid), -i(paid), 0]);
    assert_eq!(sessions.getSession(session_b).call().await.unwrap().providerWithdrawnAmount, paid);

    // Closing B after its end, the same day: the v7.8 day-lock keeps the stake of the stipend B used
    // today; the rest comes back, and the provider has nothing more to get.
    let (report, report_signature) =
        chain.signed_report(&wallet(PROVIDER).unwrap(), session_b).await.unwrap();
    let before = balances(&chain, &who).await;
    let held_before = sessions.getUserStakesOnHold(u, 10).call().await.unwrap();
    consumer.close_session(report, report_signature).await.unwrap();
    let held_after = sessions.getUserStakesOnHold(u, 10).call().await.unwrap();
    let lock_b = (held_after.available_ + held_after.hold_) - (held_before.available_ + held_before.hold_);
    assert!(lock_b <= stake_b, "lock {lock_b} of {stake_b}");
    assert_eq!(
        deltas(&before, &balances(&chain, &who).await),
        [i(stake_b - lock_b), 0, 0, -i(stake_b - lock_b)]
    );

    // The next UTC day the held stakes of A and B are released and withdrawUserStakes pays them out.
    chain.jump_to_next_utc_day(60).await.unwrap();
    let held = sessions.getUserStakesOnHold(u, 10).call().await.unwrap();
    assert_eq!((held.available_, held.hold_), (lock + lock_b, U256::ZERO));
    let before = balances(&chain, &who).await;
    consumer.withdraw_user_stakes(u, 10).await.unwrap();
    assert_eq!(deltas(&before, &balances(&chain, &who).await), [i(lock + lock_b), 0, 0, -i(lock + lock_b)]);
    let held = sessions.getUserStakesOnHold(u, 10).call().await.unwrap();
    assert_eq!((held.available_, held.hold_), (U256::ZERO, U256::ZERO));

    // The consumer's allowance manager raised exactly what the two sessions spent.
    assert_eq!(chain.allowance(u).await.unwrap(), U256::ZERO);
    assert_eq!(consumer_allowance.stats().increased_total, stake_a + stake_b);
}
