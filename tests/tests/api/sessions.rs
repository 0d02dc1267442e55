//! Session and money routes against anvil: sessions opened with the chain helpers and read through
//! the API, budget and supply against the contract's views, close / provider claim / on-hold stake
//! withdrawal with MOR balances checked before and after against the contract's formulas.

use alloy::consensus::Transaction as _;
use alloy::primitives::{keccak256, Signature, B256, U256};
use alloy::providers::Provider as _;
use alloy::sol_types::SolCall as _;
use axum::http::Method;
use e2e_tests::api::{ApiFixture, READER};
use e2e_tests::chain::{deltas, session_report, signed as i, wallet, ChainFixture};
use proxy_router::api::sessions::{self as api_sessions, ReportStats, DAY};
use proxy_router::api::wire::lower_address;
use proxy_router::chain::bindings::SessionRouter;
use proxy_router::chain::sender::OpenSession;
use proxy_router::chain::{Signer, WalletSource};
use serde_json::{json, Value};

const PROVIDER: u32 = 2;
const CONSUMER: u32 = 3;
const OTHER_CONSUMER: u32 = 4;
const PRICE: u64 = 10_000_000_000_000; // 1e13 wei/s, the minimum bid price

fn quoted(v: U256) -> Value {
    json!(v.to_string())
}

/// Opens a session of `consumer` on `bid_id` sized for `duration` seconds with the provider's
/// approval; returns its id and stake.
async fn open_session(chain: &ChainFixture, consumer: &Signer, bid_id: B256, duration: u64) -> (B256, U256) {
    let user = consumer.address();
    let stake = chain.session_stake(U256::from(PRICE), duration).await.unwrap();
    chain.give_mor(user, stake).await.unwrap();
    let (approval, approval_signature) =
        chain.signed_approval(&wallet(PROVIDER).unwrap(), bid_id, user).await.unwrap();
    let open = OpenSession { user, amount: stake, direct_payment: false, approval, approval_signature };
    let (id, _) = consumer.allowance.spend(stake, || consumer.sender.open_session(&open)).await.unwrap();
    (id, stake)
}

/// A fixture signing as the consumer, a provider with a bid, and both signers.
async fn market() -> (ApiFixture, Signer, Signer, B256) {
    let fixture = ApiFixture::start(CONSUMER).await.expect("anvil, contracts and the API");
    let consumer = fixture.state.signer().unwrap();
    let provider = Signer::new(fixture.chain.sender(PROVIDER).await.unwrap(), WalletSource::Config);
    let (_, bid_id) =
        fixture.chain.provider_with_bid(&provider.sender, "llama", U256::from(PRICE)).await.unwrap();
    (fixture, consumer, provider, bid_id)
}

fn sessions_view(
    fixture: &ApiFixture,
) -> SessionRouter::SessionRouterInstance<alloy::providers::DynProvider> {
    SessionRouter::new(fixture.chain.deployment.diamond, fixture.chain.provider().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_read_through_the_api_and_budget_and_supply_match_the_contract() {
    let (mut fixture, consumer, provider, bid_id) = market().await;
    let (id, stake) = open_session(&fixture.chain, &consumer, bid_id, 3600).await;
    let record = sessions_view(&fixture).getSession(id).call().await.unwrap();

    // Not indexed yet: read from the chain instead of a 404.
    let path = format!("/blockchain/sessions/{id}");
    let before_sync =
        fixture.call(Method::GET, &path, None).await.unwrap().expect(200).unwrap().json().unwrap();

    fixture.sync().await.unwrap();
    let body = fixture.call(Method::GET, &path, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(body, before_sync, "the index and the chain give the same answer");
    let session = &body["session"];
    assert_eq!(session["Id"], json!(id.to_string()));
    assert_eq!(session["User"], json!(lower_address(&consumer.address())));
    assert_eq!(session["Provider"], json!(lower_address(&provider.address())));
    assert_eq!(session["BidID"], json!(bid_id.to_string()));
    assert_eq!(session["Stake"].to_string(), stake.to_string(), "raw number");
    assert_eq!(session["PricePerSecond"], json!(PRICE));
    assert_eq!(session["OpenedAt"], json!(u64::try_from(record.openedAt).unwrap()));
    assert_eq!(session["EndsAt"], json!(u64::try_from(record.endsAt).unwrap()));
    assert_eq!((session["ClosedAt"].clone(), session["CloseoutReceipt"].clone()), (json!(0), json!("")));

    let user = lower_address(&consumer.address());
    let list = fixture
        .call(Method::GET, &format!("/blockchain/sessions/user?user={user}"), None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["sessions"], json!([session]));
    let ids = fixture
        .call(Method::GET, &format!("/blockchain/sessions/user/ids?user={user}"), None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ids, json!([id.to_string()]));
    let by_provider = fixture
        .call_as(
            Some(READER),
            Method::GET,
            &format!("/blockchain/sessions/provider?provider={}", provider.address()),
            None,
        )
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(by_provider["sessions"], json!([session]));
    let missing =
        fixture.call(Method::GET, &format!("/blockchain/sessions/{}", B256::repeat_byte(9)), None).await;
    missing.unwrap().expect(404).unwrap();

    // Budget and supply are the contract's views at the chain's time (not the local clock).
    fixture.chain.advance_time(3 * DAY).await.unwrap();
    let now = u128::from(fixture.chain.chain_time().await.unwrap());
    let view = sessions_view(&fixture);
    let budget = fixture.call(Method::GET, "/blockchain/sessions/budget", None).await.unwrap();
    let budget = budget.expect(200).unwrap().json().unwrap();
    assert_eq!(budget, json!({"budget": view.getTodaysBudget(now).call().await.unwrap().to_string()}));
    let supply = fixture.call(Method::GET, "/blockchain/token/supply", None).await.unwrap();
    let supply = supply.expect(200).unwrap().json().unwrap();
    assert_eq!(supply, json!({"supply": view.totalMORSupply(now).call().await.unwrap().to_string()}));
    assert_ne!(supply["supply"], json!("0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn early_close_then_provider_claim_and_on_hold_withdrawal_move_exactly_the_contracts_amounts() {
    let (mut fixture, consumer, provider, bid_id) = market().await;
    let d = fixture.chain.deployment.clone();
    let (u, p) = (consumer.address(), provider.address());
    let who = [u, p, d.funding_account, d.diamond];
    let price = U256::from(PRICE);
    let view = sessions_view(&fixture);

    // Open early in a UTC day and use it ten minutes: the close happens the same day.
    fixture.chain.jump_to_next_utc_day(60).await.unwrap();
    let (id, stake) = open_session(&fixture.chain, &consumer, bid_id, 3600).await;
    fixture.chain.advance_time(600).await.unwrap();

    // Close with the node's own report (a dispute on chain).
    let before = fixture.chain.mor_balances(&who).await.unwrap();
    let close = fixture.call(Method::POST, &format!("/blockchain/sessions/{id}/close"), Some("{}")).await;
    let tx: B256 =
        serde_json::from_value(close.unwrap().expect(200).unwrap().json().unwrap()["tx"].clone()).unwrap();
    let after = fixture.chain.mor_balances(&who).await.unwrap();
    let read = fixture.chain.provider().unwrap();
    let receipt = read.get_transaction_receipt(tx).await.unwrap().unwrap();
    assert!(receipt.status() && receipt.from == u, "mined by the consumer");
    // The report is signed by the consumer's wallet (EIP-191 over its keccak256).
    let sent = read.get_transaction_by_hash(tx).await.unwrap().unwrap();
    let call = SessionRouter::closeSessionCall::abi_decode(sent.input()).unwrap();
    let signature = Signature::try_from(call.signature_.as_ref()).unwrap();
    assert_eq!(signature.recover_address_from_msg(keccak256(&call.receiptEncoded_)).unwrap(), u);

    let record = view.getSession(id).call().await.unwrap();
    let (opened, ends, closed) = (
        u64::try_from(record.openedAt).unwrap(),
        u64::try_from(record.endsAt).unwrap(),
        u64::try_from(record.closedAt).unwrap(),
    );
    assert!(closed > opened && closed < ends, "early close: {opened} {closed} {ends}");
    assert_eq!(record.closeoutType, U256::from(1), "self-signed report: a dispute");
    // The receipt is the 7-word report of the tests' helper, stamped with the chain time in ms, and
    // signed by the consumer.
    let stamp = U256::from_be_slice(&record.closeoutReceipt[64..96]).to::<u128>();
    assert_eq!(
        record.closeoutReceipt,
        session_report(id, fixture.chain.config.chain_id, stamp, [0, 0, 0, 0])
    );
    assert_eq!(
        record.closeoutReceipt,
        api_sessions::session_report(id, fixture.chain.config.chain_id, stamp, ReportStats::default())
    );
    assert!(
        stamp / 1000 <= u128::from(closed) && stamp / 1000 + 600 >= u128::from(closed),
        "fresh stamp {stamp}"
    );

    // The contract's formulas: the user gets the stake minus today's locked part, the provider its
    // earnings minus today's disputed part (all of them: same day), from the funding account.
    let day = closed - closed % DAY;
    let used_today = U256::from(closed - opened.max(day)) * price;
    let lock = view.stipendToStake(used_today, u128::from(day)).call().await.unwrap().min(stake);
    let earned = U256::from(closed - opened) * price;
    let held_for_provider = U256::from(closed - day.max(opened)) * price;
    let paid = earned - held_for_provider;
    assert_eq!(paid, U256::ZERO, "a same-day disputed close pays the provider nothing yet");
    assert!(!lock.is_zero() && lock < stake, "lock {lock} of {stake}");
    assert_eq!(deltas(&before, &after), [i(stake - lock), i(paid), -i(paid), -i(stake - lock)]);

    let again = fixture.call(Method::POST, &format!("/blockchain/sessions/{id}/close"), None).await.unwrap();
    let again = again.expect(409).unwrap().json().unwrap();
    assert_eq!(again["code"], json!("session_closed"));

    // The on-hold stake is listed with its release time; nothing is withdrawable yet.
    fixture.sync().await.unwrap();
    let held = fixture.call(Method::GET, "/blockchain/sessions/user/stakes-on-hold", None).await.unwrap();
    let held = held.expect(200).unwrap().json().unwrap();
    assert_eq!(held["user"], json!(lower_address(&u)));
    assert_eq!(
        held["onHold"],
        json!([{"amount": lock.to_string(), "releaseAt": day + DAY, "released": false}])
    );
    assert_eq!((held["available"].clone(), held["locked"].clone()), (json!("0"), quoted(lock)));
    assert_eq!(held["nextReleaseAt"], json!(day + DAY));
    let early = fixture.call(Method::POST, "/blockchain/sessions/user/withdraw-stakes", None).await.unwrap();
    let early = early.expect(409).unwrap().json().unwrap();
    assert_eq!(early["code"], json!("nothing_to_withdraw"));
    assert!(early["reason"].as_str().unwrap().contains(&format!("released at {}", day + DAY)), "{early}");

    // The provider's part is held until the next UTC day.
    let claimable_path = format!("/proxy/sessions/{id}/providerClaimableBalance");
    let balance =
        fixture.call(Method::GET, &claimable_path, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(balance, json!({"balance": "0"}));
    let list_path = format!("/proxy/sessions/provider-claimable?provider={p}");
    let list =
        fixture.call(Method::GET, &list_path, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(list["total"], json!("0"));
    assert_eq!(list["sessions"][0]["sessionId"], json!(id.to_string()));
    assert_eq!(list["sessions"][0]["onHold"], quoted(held_for_provider));
    assert_eq!(list["sessions"][0]["onHoldUntil"], json!(day + DAY));
    fixture.state.wallet.set(provider.clone());
    let claim_path = format!("/proxy/sessions/{id}/providerClaim");
    let refused =
        fixture.call(Method::POST, &claim_path, None).await.unwrap().expect(409).unwrap().json().unwrap();
    assert_eq!(refused["code"], json!("nothing_to_claim"));
    assert!(refused["reason"].as_str().unwrap().contains("held until"), "{refused}");

    // Next day: the provider claims exactly the claimable amount; the user withdraws exactly the lock.
    fixture.chain.jump_to_next_utc_day(60).await.unwrap();
    fixture.sync().await.unwrap();
    let balance =
        fixture.call(Method::GET, &claimable_path, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(balance, json!({"balance": held_for_provider.to_string()}));
    let list = fixture.call(Method::GET, "/proxy/sessions/provider-claimable", None).await.unwrap();
    let list = list.expect(200).unwrap().json().unwrap();
    assert_eq!(list["total"], quoted(held_for_provider), "defaults to the wallet: {list}");
    let before = fixture.chain.mor_balances(&who).await.unwrap();
    let claim =
        fixture.call(Method::POST, &claim_path, None).await.unwrap().expect(200).unwrap().json().unwrap();
    let after = fixture.chain.mor_balances(&who).await.unwrap();
    assert_eq!(claim["claimed"], quoted(held_for_provider));
    let claimed = i(held_for_provider);
    assert_eq!(deltas(&before, &after), [0, claimed, -claimed, 0]);
    assert_eq!(view.getSession(id).call().await.unwrap().providerWithdrawnAmount, earned);

    fixture.state.wallet.set(consumer.clone());
    let held = fixture.call(Method::GET, "/blockchain/sessions/user/stakes-on-hold", None).await.unwrap();
    let held = held.expect(200).unwrap().json().unwrap();
    assert_eq!(
        held["onHold"],
        json!([{"amount": lock.to_string(), "releaseAt": day + DAY, "released": true}])
    );
    assert_eq!((held["available"].clone(), held["locked"].clone()), (quoted(lock), json!("0")));
    assert_eq!(held["nextReleaseAt"], Value::Null);
    let before = fixture.chain.mor_balances(&who).await.unwrap();
    let withdrawn = fixture
        .call(Method::POST, "/blockchain/sessions/user/withdraw-stakes", Some(r#"{"iterations": 10}"#))
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    let after = fixture.chain.mor_balances(&who).await.unwrap();
    assert_eq!(withdrawn["withdrawn"], quoted(lock));
    assert_eq!(deltas(&before, &after), [i(lock), 0, 0, -i(lock)]);
    let held =
        fixture.call(Method::GET, &format!("/blockchain/sessions/user/stakes-on-hold?user={u}"), None).await;
    let held = held.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!((held["onHold"].clone(), held["available"].clone()), (json!([]), json!("0")));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_wallets_are_refused_and_claim_all_pays_ended_sessions() {
    let (mut fixture, consumer, provider, bid_id) = market().await;
    let d = fixture.chain.deployment.clone();
    let p = provider.address();
    let price = U256::from(PRICE);
    let view = sessions_view(&fixture);

    // A session of another consumer: this node's wallet may neither close nor claim it.
    let other = Signer::new(fixture.chain.sender(OTHER_CONSUMER).await.unwrap(), WalletSource::Config);
    let (theirs, _) = open_session(&fixture.chain, &other, bid_id, 600).await;
    let nonce_before =
        fixture.chain.provider().unwrap().get_transaction_count(consumer.address()).await.unwrap();
    let close =
        fixture.call(Method::POST, &format!("/blockchain/sessions/{theirs}/close"), None).await.unwrap();
    let close = close.expect(403).unwrap().json().unwrap();
    assert_eq!(close["code"], json!("not_session_user"));
    let claim =
        fixture.call(Method::POST, &format!("/proxy/sessions/{theirs}/providerClaim"), None).await.unwrap();
    assert_eq!(claim.expect(403).unwrap().json().unwrap()["code"], json!("not_session_provider"));
    let nonce_after =
        fixture.chain.provider().unwrap().get_transaction_count(consumer.address()).await.unwrap();
    assert_eq!(nonce_before, nonce_after, "no transaction was sent");
    let unknown = B256::repeat_byte(0x42);
    for (method, path) in [
        (Method::POST, format!("/blockchain/sessions/{unknown}/close")),
        (Method::POST, format!("/proxy/sessions/{unknown}/providerClaim")),
        (Method::GET, format!("/proxy/sessions/{unknown}/providerClaimableBalance")),
    ] {
        fixture.call(method, &path, None).await.unwrap().expect(404).unwrap();
    }

    // Our own session runs to its end without being closed; before the end nothing is claimable.
    let (ours, _) = open_session(&fixture.chain, &consumer, bid_id, 600).await;
    fixture.state.wallet.set(provider.clone());
    let claim_path = format!("/proxy/sessions/{ours}/providerClaim");
    let early =
        fixture.call(Method::POST, &claim_path, None).await.unwrap().expect(409).unwrap().json().unwrap();
    assert!(early["reason"].as_str().unwrap().contains("from its end"), "{early}");
    let record = view.getSession(ours).call().await.unwrap();
    let theirs_record = view.getSession(theirs).call().await.unwrap();
    let ends = u64::try_from(record.endsAt.max(theirs_record.endsAt)).unwrap();
    let now = fixture.chain.chain_time().await.unwrap();
    fixture.chain.advance_time(ends - now + 1).await.unwrap();
    fixture.sync().await.unwrap();

    // Both sessions ended: the list and the total follow the contract's formula.
    let expected_ours = U256::from(record.endsAt - record.openedAt) * price;
    let expected_theirs = U256::from(theirs_record.endsAt - theirs_record.openedAt) * price;
    let list = fixture.call(Method::GET, "/proxy/sessions/provider-claimable", None).await.unwrap();
    let list = list.expect(200).unwrap().json().unwrap();
    assert_eq!(list["provider"], json!(lower_address(&p)));
    assert_eq!(list["total"], quoted(expected_ours + expected_theirs));
    let listed: Vec<(String, String)> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["sessionId"].as_str().unwrap().to_owned(), s["claimable"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        listed,
        [(theirs.to_string(), expected_theirs.to_string()), (ours.to_string(), expected_ours.to_string())]
    );

    // Claim-all pays both, exactly, from the funding account.
    let who = [p, d.funding_account];
    let before = fixture.chain.mor_balances(&who).await.unwrap();
    let all = fixture.call(Method::POST, "/proxy/sessions/provider-claim-all", None).await.unwrap();
    let all = all.expect(200).unwrap().json().unwrap();
    let after = fixture.chain.mor_balances(&who).await.unwrap();
    let total = expected_ours + expected_theirs;
    assert_eq!(all["total"], quoted(total), "{all}");
    assert_eq!(all["claims"].as_array().unwrap().len(), 2);
    assert_eq!(all["claims"][1]["claimed"], quoted(expected_ours));
    assert_eq!((all["remaining"].clone(), all.get("failed")), (json!(0), None));
    assert_eq!(deltas(&before, &after), [i(total), -i(total)]);
    assert_eq!(view.getSession(ours).call().await.unwrap().providerWithdrawnAmount, expected_ours);

    // Nothing is left: the list is empty, a second claim is refused, claim-all claims nothing.
    fixture.sync().await.unwrap();
    let list = fixture.call(Method::GET, "/proxy/sessions/provider-claimable", None).await.unwrap();
    let list = list.expect(200).unwrap().json().unwrap();
    assert_eq!((list["total"].clone(), list["sessions"].clone()), (json!("0"), json!([])));
    let again =
        fixture.call(Method::POST, &claim_path, None).await.unwrap().expect(409).unwrap().json().unwrap();
    assert!(again["reason"].as_str().unwrap().contains("has been paid"), "{again}");
    let none = fixture.call(Method::POST, "/proxy/sessions/provider-claim-all", None).await.unwrap();
    assert_eq!(
        none.expect(200).unwrap().json().unwrap(),
        json!({"claims": [], "total": "0", "remaining": 0})
    );

    // The consumer closes its ended session: what comes back plus what the v7.8 day-lock holds (the
    // stipend used on the day of its end, until the next UTC day) is the whole stake.
    fixture.state.wallet.set(consumer.clone());
    let stake = record.stake;
    let on_hold = || async {
        let held = view.getUserStakesOnHold(consumer.address(), 255).call().await.unwrap();
        held.available_ + held.hold_
    };
    let held_before = on_hold().await;
    let before = fixture.chain.mor_balances(&[consumer.address(), d.diamond]).await.unwrap();
    fixture
        .call(Method::POST, &format!("/blockchain/sessions/{ours}/close"), None)
        .await
        .unwrap()
        .expect(200)
        .unwrap();
    let after = fixture.chain.mor_balances(&[consumer.address(), d.diamond]).await.unwrap();
    let held = on_hold().await - held_before;
    assert!(held <= stake, "{held} of {stake}");
    assert_eq!(deltas(&before, &after), [i(stake - held), -i(stake - held)]);
}
