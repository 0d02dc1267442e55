//! Unit tests of the session routes through the whole router (`oneshot`, a real SQLite store, no
//! chain), and of the economics, storage-slot and report functions against the contract's rules.

use alloy::primitives::{address, b256, Bytes, Signature};
use axum::http::Method;
use serde_json::{json, Value};

use super::*;
use crate::api::test_support::*;
use crate::chain::Wallet;
use crate::config::WalletKey;

const PRICE: u64 = 10_000_000_000_000; // 1e13 wei/s

fn user(n: u8) -> Address {
    Address::repeat_byte(0x50 + n)
}

fn provider_addr(n: u8) -> Address {
    Address::repeat_byte(0x70 + n)
}

fn bid(n: u8, provider: u8) -> store::Bid {
    store::Bid {
        id: B256::repeat_byte(0xB0 + n),
        provider: provider_addr(provider),
        model_id: B256::repeat_byte(0x11),
        price_per_second: U256::from(PRICE) + U256::from(n),
        nonce: U256::from(n),
        created_at: 1_700_000_000,
        deleted_at: 0,
    }
}

fn session_of(n: u8, user_n: u8, b: &store::Bid) -> store::Session {
    store::Session {
        id: B256::repeat_byte(n),
        user: user(user_n),
        bid_id: b.id,
        provider: b.provider,
        model_id: b.model_id,
        stake: U256::from(10u64).pow(U256::from(20u64)) + U256::from(n),
        closeout_receipt: Bytes::new(),
        closeout_type: U256::ZERO,
        provider_withdrawn_amount: U256::ZERO,
        opened_at: 1_700_001_000 + u64::from(n),
        ends_at: 1_700_004_600 + u64::from(n),
        closed_at: 0,
        is_active: true,
        is_direct_payment: false,
    }
}

/// Two bids of two providers; user 1 has sessions 1..=12 on bid 1, user 2 has sessions 20 and 21 on
/// bid 2 (21 closed with a receipt).
async fn seeded() -> Fixture {
    let f = fixture().await;
    let (b1, b2) = (bid(1, 1), bid(2, 2));
    f.store.bids().upsert(&b1).await.unwrap();
    f.store.bids().upsert(&b2).await.unwrap();
    for n in 1..=12 {
        f.store.sessions().upsert(&session_of(n, 1, &b1)).await.unwrap();
    }
    f.store.sessions().upsert(&session_of(20, 2, &b2)).await.unwrap();
    let closed = store::Session {
        closeout_receipt: Bytes::from(vec![0xab, 0xcd]),
        closeout_type: U256::from(1),
        provider_withdrawn_amount: U256::from(77u64),
        closed_at: 1_700_002_000,
        is_active: false,
        ..session_of(21, 2, &b2)
    };
    f.store.sessions().upsert(&closed).await.unwrap();
    f
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key].as_array().unwrap().iter().map(|s| s["Id"].as_str().unwrap().to_owned()).collect()
}

fn hex_id(n: u8) -> String {
    format!("{}", B256::repeat_byte(n))
}

#[tokio::test]
async fn get_session_reads_the_index_with_the_bid_price_in_the_reference_shape() {
    let f = seeded().await;
    let answer = call(&f.state, Method::GET, &format!("/blockchain/sessions/{}", hex_id(21)), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expected = format!(
        concat!(
            r#"{{"session":{{"Id":"{id}","User":"{user}","Provider":"{provider}","ModelAgentId":"{model}","#,
            r#""BidID":"{bid}","Stake":100000000000000000021,"PricePerSecond":10000000000002,"#,
            r#""CloseoutReceipt":"abcd","CloseoutType":1,"ProviderWithdrawnAmount":77,"#,
            r#""OpenedAt":1700001021,"EndsAt":1700004621,"ClosedAt":1700002000}}}}"#
        ),
        id = hex_id(21),
        user = lower_address(&user(2)),
        provider = lower_address(&provider_addr(2)),
        model = B256::repeat_byte(0x11),
        bid = B256::repeat_byte(0xB2),
    );
    assert_eq!(answer.body, expected);

    // `0x` is optional in the id, as in the other hash parameters.
    let bare = hex_id(21).trim_start_matches("0x").to_owned();
    let answer = call(&f.state, Method::GET, &format!("/blockchain/sessions/{bare}"), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn get_session_rejects_bad_ids_and_answers_404_for_unknown_ones() {
    let f = seeded().await;
    let answer = call(&f.state, Method::GET, "/blockchain/sessions/0x1234", None).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error().field.as_deref(), Some("id"));
    let answer = call(&f.state, Method::GET, &format!("/blockchain/sessions/{}", hex_id(99)), None).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.error().code, "not_found");
}

#[tokio::test]
async fn user_sessions_are_paged_ordered_and_filtered() {
    let f = seeded().await;
    let uri = format!("/blockchain/sessions/user?user={}", lower_address(&user(1)));
    let answer = call(&f.state, Method::GET, &uri, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let expected: Vec<String> = (1..=10).map(hex_id).collect();
    assert_eq!(ids(&body, "sessions"), expected, "default limit 10, oldest first");
    assert_eq!(body["sessions"][0]["PricePerSecond"], json!(PRICE + 1));

    let answer = call(&f.state, Method::GET, &format!("{uri}&offset=10&limit=5"), None).await;
    assert_eq!(ids(&answer.json(), "sessions"), [hex_id(11), hex_id(12)]);
    let answer = call(&f.state, Method::GET, &format!("{uri}&limit=3&order=desc"), None).await;
    assert_eq!(ids(&answer.json(), "sessions"), [hex_id(12), hex_id(11), hex_id(10)]);

    // The checksummed form is accepted too.
    let uri2 = format!("/blockchain/sessions/user?user={}", user(2));
    let answer = call(&f.state, Method::GET, &uri2, None).await;
    assert_eq!(ids(&answer.json(), "sessions"), [hex_id(20), hex_id(21)]);

    let answer = call(
        &f.state,
        Method::GET,
        "/blockchain/sessions/user?user=0x0000000000000000000000000000000000000001",
        None,
    )
    .await;
    assert_eq!(answer.body, r#"{"sessions":[]}"#);
}

#[tokio::test]
async fn user_session_ids_are_a_bare_array() {
    let f = seeded().await;
    let uri = format!("/blockchain/sessions/user/ids?user={}&limit=2&order=desc", lower_address(&user(2)));
    let answer = call(&f.state, Method::GET, &uri, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json(), json!([hex_id(21), hex_id(20)]));
}

#[tokio::test]
async fn provider_sessions_list_only_that_providers_sessions() {
    let f = seeded().await;
    let uri =
        format!("/blockchain/sessions/provider?provider={}&limit=100", lower_address(&provider_addr(2)));
    let answer = call(&f.state, Method::GET, &uri, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(ids(&body, "sessions"), [hex_id(20), hex_id(21)]);
    assert_eq!(body["sessions"][1]["CloseoutType"], json!(1));
}

#[tokio::test]
async fn lists_name_the_bad_query_field() {
    let f = seeded().await;
    let cases = [
        ("/blockchain/sessions/user", "user"),
        ("/blockchain/sessions/user?user=", "user"),
        ("/blockchain/sessions/user?user=0x12", "user"),
        ("/blockchain/sessions/user/ids", "user"),
        ("/blockchain/sessions/user/ids?user=nope", "user"),
        ("/blockchain/sessions/provider", "provider"),
        ("/blockchain/sessions/provider?provider=0xzz", "provider"),
    ];
    for (uri, field) in cases {
        let answer = call(&f.state, Method::GET, uri, None).await;
        assert_eq!(answer.status, 400, "{uri}: {}", answer.body);
        assert_eq!(answer.error().field.as_deref(), Some(field), "{uri}");
    }
    let u = lower_address(&user(1));
    for (query, field) in
        [("limit=abc", "limit"), ("limit=5000", "limit"), ("offset=-1", "offset"), ("order=up", "order")]
    {
        for path in ["/blockchain/sessions/user", "/blockchain/sessions/user/ids"] {
            let answer = call(&f.state, Method::GET, &format!("{path}?user={u}&{query}"), None).await;
            assert_eq!(answer.status, 400, "{path}?{query}: {}", answer.body);
            assert_eq!(answer.error().field.as_deref(), Some(field));
        }
    }
}

#[tokio::test]
async fn chain_routes_answer_503_without_a_chain() {
    let f = seeded().await;
    let id = hex_id(20);
    let cases = [
        (Method::GET, "/blockchain/sessions/budget".to_owned()),
        (Method::GET, "/blockchain/token/supply".to_owned()),
        (Method::GET, format!("/proxy/sessions/{id}/providerClaimableBalance")),
        (Method::POST, format!("/proxy/sessions/{id}/providerClaim")),
        (Method::POST, format!("/blockchain/sessions/{id}/close")),
        (Method::GET, format!("/blockchain/sessions/user/stakes-on-hold?user={}", lower_address(&user(1)))),
        (
            Method::GET,
            format!("/proxy/sessions/provider-claimable?provider={}", lower_address(&provider_addr(1))),
        ),
        (Method::POST, "/blockchain/sessions/user/withdraw-stakes".to_owned()),
        (Method::POST, "/proxy/sessions/provider-claim-all".to_owned()),
    ];
    for (method, uri) in cases {
        let answer = call(&f.state, method.clone(), &uri, None).await;
        assert_eq!(answer.status, 503, "{method} {uri}: {}", answer.body);
        assert_eq!(answer.error().code, "no_chain", "{method} {uri}");
    }
    // Without a wallet, the routes that default to it say so.
    let answer = call(&f.state, Method::GET, "/blockchain/sessions/user/stakes-on-hold", None).await;
    assert_eq!((answer.status.as_u16(), answer.error().code.as_str()), (503, "no_wallet"));
    let answer = call(&f.state, Method::GET, "/proxy/sessions/provider-claimable", None).await;
    assert_eq!((answer.status.as_u16(), answer.error().code.as_str()), (503, "no_wallet"));
}

#[tokio::test]
async fn money_routes_check_their_input_before_the_chain() {
    let f = seeded().await;
    let cases = [
        (Method::GET, "/proxy/sessions/0x12/providerClaimableBalance", "id"),
        (Method::POST, "/proxy/sessions/xyz/providerClaim", "id"),
        (Method::POST, "/blockchain/sessions/0x/close", "id"),
        (Method::GET, "/blockchain/sessions/user/stakes-on-hold?user=0x1", "user"),
        (Method::GET, "/proxy/sessions/provider-claimable?provider=bad", "provider"),
    ];
    for (method, uri, field) in cases {
        let answer = call(&f.state, method.clone(), uri, None).await;
        assert_eq!(answer.status, 400, "{method} {uri}: {}", answer.body);
        assert_eq!(answer.error().field.as_deref(), Some(field), "{method} {uri}");
    }
}

#[tokio::test]
async fn withdraw_body_is_optional_but_validated() {
    let f = seeded().await;
    let uri = "/blockchain/sessions/user/withdraw-stakes";
    for (body, field) in [
        (r#"{"iterations":0}"#, Some("iterations")),
        (r#"{"iterations":256}"#, Some("iterations")),
        (r#"{"iterations":"x"}"#, Some("iterations")),
        ("not json", None),
    ] {
        let answer = call(&f.state, Method::POST, uri, Some(body)).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.error().field.as_deref(), field, "{body}");
    }
    let answer = call(&f.state, Method::POST, uri, Some(r#"{"iterations":1,"user":"0x01"}"#)).await;
    assert_eq!(answer.status, 400, "unknown fields are refused: {}", answer.body);
    assert!(answer.error().error.contains("unknown field `user`"), "{}", answer.body);
    // Valid bodies (and none) get past validation to the chain check.
    for body in [None, Some(""), Some("{}"), Some(r#"{"iterations":5}"#)] {
        let answer = call(&f.state, Method::POST, uri, body).await;
        assert_eq!(answer.error().code, "no_chain", "{body:?}: {}", answer.body);
    }
}

#[tokio::test]
async fn permissions_follow_the_reference() {
    let f = seeded().await;
    let app = || crate::api::router(f.state.clone());
    let id = hex_id(20);
    // The reader may read sessions (get_sessions)…
    let answer =
        send(app(), request(Method::GET, &format!("/blockchain/sessions/{id}"), Some(READER), None)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // …but not the budget, the supply, nor write.
    for (method, uri) in [
        (Method::GET, "/blockchain/sessions/budget".to_owned()),
        (Method::GET, "/blockchain/token/supply".to_owned()),
        (Method::POST, format!("/blockchain/sessions/{id}/close")),
        (Method::POST, format!("/proxy/sessions/{id}/providerClaim")),
        (Method::POST, "/proxy/sessions/provider-claim-all".to_owned()),
        (Method::POST, "/blockchain/sessions/user/withdraw-stakes".to_owned()),
    ] {
        let answer = send(app(), request(method.clone(), &uri, Some(READER), None)).await;
        assert_eq!(answer.status, 403, "{method} {uri}: {}", answer.body);
    }
    let answer = send(app(), request(Method::GET, &format!("/blockchain/sessions/{id}"), None, None)).await;
    assert_eq!(answer.status, 401);
}

#[test]
fn every_route_is_in_the_spec() {
    let spec = crate::api::openapi();
    for (path, method) in [
        ("/blockchain/sessions/{id}", "get"),
        ("/blockchain/sessions/user", "get"),
        ("/blockchain/sessions/user/ids", "get"),
        ("/blockchain/sessions/provider", "get"),
        ("/blockchain/sessions/budget", "get"),
        ("/blockchain/token/supply", "get"),
        ("/blockchain/sessions/{id}/close", "post"),
        ("/proxy/sessions/{id}/providerClaimableBalance", "get"),
        ("/proxy/sessions/{id}/providerClaim", "post"),
        ("/blockchain/sessions/user/stakes-on-hold", "get"),
        ("/blockchain/sessions/user/withdraw-stakes", "post"),
        ("/proxy/sessions/provider-claimable", "get"),
        ("/proxy/sessions/provider-claim-all", "post"),
    ] {
        let item = spec.paths.paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let json = serde_json::to_value(item).unwrap();
        assert!(json.get(method).is_some(), "{method} {path} missing");
    }
}

// ---------------------------------------------------------------------------------------------------
// Economics: the cases of SessionRouter.sol's claimForProvider and limiter
// ---------------------------------------------------------------------------------------------------

const MIDNIGHT: u64 = 1_700_006_400; // a UTC midnight (1_700_006_400 % 86_400 == 0)

fn timed(opened_at: u64, ends_at: u64, closed_at: u64, dispute: bool, withdrawn: u64) -> store::Session {
    store::Session {
        opened_at,
        ends_at,
        closed_at,
        is_active: closed_at == 0,
        closeout_type: U256::from(u64::from(dispute)),
        provider_withdrawn_amount: U256::from(withdrawn),
        ..session_of(1, 1, &bid(1, 1))
    }
}

#[test]
fn midnight_constant_is_a_utc_midnight() {
    assert_eq!(MIDNIGHT % DAY, 0);
    assert_eq!(start_of_day(MIDNIGHT + 5), MIDNIGHT);
    assert_eq!(start_of_day(MIDNIGHT - 1), MIDNIGHT - DAY);
}

#[test]
fn nothing_is_claimable_before_the_end() {
    let price = U256::from(3u64);
    let open = timed(MIDNIGHT + 100, MIDNIGHT + 1_000, 0, false, 0);
    let claim = session_claim(&open, price, MIDNIGHT + 999);
    assert_eq!(claim, SessionClaim { end: MIDNIGHT + 1_000, ..SessionClaim::default() });
    // At the end exactly (`block.timestamp < end` returns), the whole session is claimable.
    let claim = session_claim(&open, price, MIDNIGHT + 1_000);
    assert_eq!((claim.rewards, claim.amount), (U256::from(2_700u64), U256::from(2_700u64)));
    // An early close ends the session at the close.
    let closed = timed(MIDNIGHT + 100, MIDNIGHT + 1_000, MIDNIGHT + 400, false, 0);
    assert_eq!(session_claim(&closed, price, MIDNIGHT + 399).amount, U256::ZERO);
    assert_eq!(session_claim(&closed, price, MIDNIGHT + 400).end, MIDNIGHT + 400);
}

#[test]
fn claims_subtract_what_was_paid_and_never_go_below_zero() {
    let price = U256::from(3u64);
    let closed = timed(MIDNIGHT + 100, MIDNIGHT + 1_000, MIDNIGHT + 400, false, 500);
    let claim = session_claim(&closed, price, MIDNIGHT + 500);
    assert_eq!(
        (claim.rewards, claim.on_hold, claim.amount),
        (U256::from(400u64), U256::ZERO, U256::from(400u64))
    );
    let overpaid = timed(MIDNIGHT + 100, MIDNIGHT + 1_000, MIDNIGHT + 400, false, 5_000);
    assert_eq!(session_claim(&overpaid, price, MIDNIGHT + 500).amount, U256::ZERO);
    // A late close is capped at `endsAt`.
    let late = timed(MIDNIGHT + 100, MIDNIGHT + 1_000, MIDNIGHT + 9_000, false, 0);
    assert_eq!(session_claim(&late, price, MIDNIGHT + 9_000).amount, U256::from(2_700u64));
}

#[test]
fn a_disputed_early_close_holds_the_closing_days_part_until_the_next_day() {
    let price = U256::from(3u64);
    // Opened 600 s before midnight, closed with a dispute 100 s after it (the contracts test's case).
    let s = timed(MIDNIGHT - 600, MIDNIGHT + 5_000, MIDNIGHT + 100, true, 0);
    let claim = session_claim(&s, price, MIDNIGHT + 200);
    assert_eq!(claim.rewards, U256::from(700u64 * 3));
    assert_eq!(claim.on_hold, U256::from(100u64 * 3));
    assert_eq!(claim.on_hold_until, MIDNIGHT + DAY);
    assert_eq!(claim.amount, U256::from(600u64 * 3));
    // After the payout at close (600 s × price), nothing is claimable until the next day…
    let paid = timed(MIDNIGHT - 600, MIDNIGHT + 5_000, MIDNIGHT + 100, true, 1_800);
    assert_eq!(session_claim(&paid, price, MIDNIGHT + DAY - 1).amount, U256::ZERO);
    // …and then the held part is.
    let claim = session_claim(&paid, price, MIDNIGHT + DAY);
    assert_eq!((claim.on_hold, claim.on_hold_until, claim.amount), (U256::ZERO, 0, U256::from(300u64)));
    // The hold counts from the opening when it is on the closing day.
    let same_day = timed(MIDNIGHT + 1_000, MIDNIGHT + 9_000, MIDNIGHT + 1_600, true, 0);
    let claim = session_claim(&same_day, price, MIDNIGHT + 2_000);
    assert_eq!((claim.on_hold, claim.amount), (U256::from(1_800u64), U256::ZERO));
}

#[test]
fn no_hold_without_a_dispute_or_for_a_late_close() {
    let price = U256::from(3u64);
    let agreed = timed(MIDNIGHT + 1_000, MIDNIGHT + 9_000, MIDNIGHT + 1_600, false, 0);
    assert_eq!(session_claim(&agreed, price, MIDNIGHT + 2_000).amount, U256::from(1_800u64));
    let late_dispute = timed(MIDNIGHT + 1_000, MIDNIGHT + 1_500, MIDNIGHT + 1_600, true, 0);
    let claim = session_claim(&late_dispute, price, MIDNIGHT + 2_000);
    assert_eq!((claim.on_hold, claim.amount), (U256::ZERO, U256::from(1_500u64)));
}

#[test]
fn the_limiter_restarts_after_its_window() {
    let stake = U256::from(1_000u64);
    assert_eq!(limit_remaining(stake, 500, U256::from(300u64), 500), U256::from(700u64));
    assert_eq!(limit_remaining(stake, 500, U256::from(300u64), 501), stake);
    assert_eq!(limit_remaining(stake, 500, U256::from(3_000u64), 10), U256::ZERO);
    assert_eq!(limit_remaining(stake, 0, U256::ZERO, 1), stake, "never paid: the whole stake");
}

#[test]
fn nothing_to_claim_reasons_name_the_cause() {
    let limit = ProviderLimit { remaining: U256::from(5u64), period_end: 42 };
    let before = SessionClaim { end: 100, ..SessionClaim::default() };
    assert!(nothing_to_claim_reason(&before, &limit, 50).contains("from its end at 100"));
    let paid = SessionClaim { end: 100, ..SessionClaim::default() };
    assert!(nothing_to_claim_reason(&paid, &limit, 150).contains("has been paid"));
    let held = SessionClaim {
        end: 100,
        rewards: U256::from(3u64),
        on_hold: U256::from(3u64),
        on_hold_until: 86_400,
        amount: U256::ZERO,
    };
    assert!(nothing_to_claim_reason(&held, &limit, 150).contains("held until 86400"));
    let capped = SessionClaim { end: 100, rewards: U256::from(3u64), amount: U256::from(3u64), ..held };
    let empty = ProviderLimit { remaining: U256::ZERO, period_end: 42 };
    assert!(nothing_to_claim_reason(&capped, &empty, 150).contains("ends at 42"));
}

// ---------------------------------------------------------------------------------------------------
// Storage slots, delegation rights, reports
// ---------------------------------------------------------------------------------------------------

#[test]
fn on_hold_slots_follow_solidity_storage_layout() {
    // The namespace hash docs/contracts.md lists for SESSIONS_STORAGE_SLOT.
    let base = keccak256(SESSIONS_STORAGE_NAMESPACE);
    assert!(format!("{base}").starts_with("0x6f5f17fa"), "{base}");
    assert!(format!("{base}").ends_with("6c72"), "{base}");

    // mapping(address => OnHold[]) at field 9: keccak256(pad32(user) ‖ (base + 9)); the array data at
    // keccak256(that slot).
    let who = address!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(who.as_slice());
    let field = U256::from_be_bytes(base.0) + U256::from(9u64);
    preimage[32..].copy_from_slice(&field.to_be_bytes::<32>());
    let length = keccak256(preimage);
    let (length_slot, first) = on_hold_slots(who);
    assert_eq!(length_slot, U256::from_be_bytes(length.0));
    assert_eq!(first, U256::from_be_bytes(keccak256(length.0).0));
}

#[test]
fn session_rights_are_the_contracts_rule() {
    let rights = format!("{}", session_rights());
    assert!(rights.starts_with("0xbb0b3346") && rights.ends_with("79f5"), "{rights}");
}

#[test]
fn session_report_is_seven_abi_words() {
    let id = b256!("1111111111111111111111111111111111111111111111111111111111111111");
    let stats =
        ReportStats { tps_scaled1000: 25_000, ttft_ms: 300, input_tokens: 1_000, output_tokens: 2_000 };
    let report = session_report(id, 31_337, 1_700_000_000_123, stats);
    assert_eq!(report.len(), 7 * 32);
    let word = |i: usize| U256::from_be_slice(&report[i * 32..(i + 1) * 32]);
    assert_eq!(&report[..32], id.as_slice());
    assert_eq!(word(1), U256::from(31_337u64));
    assert_eq!(word(2), U256::from(1_700_000_000_123u64));
    assert_eq!([word(3), word(4), word(5), word(6)], [25_000u64, 300, 1_000, 2_000].map(U256::from));
}

#[test]
fn reports_are_signed_eip191_by_the_wallet() {
    let key = WalletKey::PrivateKey(PRIVATE_KEY.to_owned().into());
    let wallet = Wallet::from_key(&key).unwrap();
    let report = session_report(B256::repeat_byte(7), 1, 2, ReportStats::default());
    let signed = sign_report(&wallet, report.clone()).unwrap();
    assert_eq!(signed.report, report);
    assert_eq!(signed.signature.len(), 65);
    assert!(matches!(signed.signature[64], 27 | 28), "v = {}", signed.signature[64]);
    let signature = Signature::try_from(signed.signature.as_ref()).unwrap();
    let signer = signature.recover_address_from_msg(keccak256(&report)).unwrap();
    assert_eq!(signer, wallet.address());
    assert_eq!(lower_address(&signer), WALLET);
}
