//! The registry routes through the whole router (`oneshot`) against a real SQLite store, without a
//! chain: lists, pagination and order, reads, the JSON shapes of §1.0, permissions, and every
//! validation that answers before the chain is reached. Writes against a chain are in the e2e tests
//! (`tests/tests/api/registry.rs`).

use std::collections::BTreeSet;

use alloy::primitives::{address, Address, Bytes, B256, U256};
use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::api::test_support::*;
use crate::api::wire::SessionJson;
use crate::api::{router, ApiState, ErrorBody};
use crate::store::{self, Store};

const E18: u64 = 1_000_000_000_000_000_000;

/// anvil's first account: its checksummed form has upper-case letters.
const MIXED: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

fn addr(n: u8) -> Address {
    let mut bytes = [0xABu8; 20];
    bytes[19] = n;
    Address::from(bytes)
}

fn id(tag: u8, n: u8) -> B256 {
    let mut bytes = [0xCDu8; 32];
    bytes[0] = tag;
    bytes[31] = n;
    B256::from(bytes)
}

fn provider(n: u8, created_at: u64, is_deleted: bool) -> store::Provider {
    store::Provider {
        address: addr(n),
        endpoint: format!("p{n}.example:3333"),
        stake: U256::from(n) * U256::from(E18),
        created_at,
        limit_period_end: created_at + 1000,
        limit_period_earned: U256::ZERO,
        is_deleted,
    }
}

fn model(n: u8, created_at: u64, is_deleted: bool) -> store::Model {
    store::Model {
        id: id(0x11, n),
        ipfs_cid: id(0x22, n),
        fee: U256::from(7u64),
        stake: U256::from(100u64) * U256::from(E18), // 1e20: beyond u64
        owner: MIXED,
        name: format!("model {n}"),
        tags: vec!["LLM".into(), "fast".into()],
        created_at,
        is_deleted,
    }
}

fn bid(n: u8, provider: Address, model_id: B256, created_at: u64, deleted_at: u64) -> store::Bid {
    store::Bid {
        id: id(0x33, n),
        provider,
        model_id,
        price_per_second: U256::from(10_000_000_000_000u64 * u64::from(n)),
        nonce: U256::from(n),
        created_at,
        deleted_at,
    }
}

/// Providers 1–3 (2 deregistered), models 1–3 (3 deregistered), bids 1–12 on model 1 by provider 1
/// (bid 12 deleted) and bid 13 on model 2 by provider 3.
async fn seed(store: &Store) {
    store.providers().upsert(&provider(1, 100, false)).await.unwrap();
    store.providers().upsert(&provider(2, 200, true)).await.unwrap();
    store.providers().upsert(&provider(3, 300, false)).await.unwrap();
    for n in 1..=3 {
        store.models().upsert(&model(n, 100 * u64::from(n), n == 3)).await.unwrap();
    }
    for n in 1..=12 {
        let deleted = if n == 12 { 5000 } else { 0 };
        store.bids().upsert(&bid(n, addr(1), id(0x11, 1), 1000 + u64::from(n), deleted)).await.unwrap();
    }
    store.bids().upsert(&bid(13, addr(3), id(0x11, 2), 2000, 0)).await.unwrap();
}

async fn seeded() -> (Fixture, ApiState) {
    let f = fixture().await;
    seed(&f.store).await;
    let state = f.state.clone();
    (f, state)
}

async fn get_json(state: &ApiState, uri: &str) -> Value {
    let answer = call(state, Method::GET, uri, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
    answer.json()
}

fn field_of(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {list}"))
        .iter()
        .map(|item| item[field].as_str().map_or_else(|| item[field].to_string(), str::to_owned))
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap_or_else(|| panic!("not an object: {value}")).keys().map(String::as_str).collect()
}

async fn expect_error(
    state: &ApiState,
    method: Method,
    uri: &str,
    json: Option<&str>,
    status: u16,
) -> ErrorBody {
    let answer = call(state, method.clone(), uri, json).await;
    assert_eq!(answer.status.as_u16(), status, "{method} {uri} {json:?}: {}", answer.body);
    answer.error()
}

async fn bad_field(state: &ApiState, method: Method, uri: &str, json: Option<&str>, field: &str) {
    let error = expect_error(state, method.clone(), uri, json, 400).await;
    assert_eq!(error.field.as_deref(), Some(field), "{method} {uri} {json:?}: {error:?}");
}

#[tokio::test]
async fn providers_list_active_ones_all_by_default_with_order_and_pages() {
    let (_f, state) = seeded().await;
    let a1 = format!("{:#x}", addr(1));
    let a3 = format!("{:#x}", addr(3));
    let all = get_json(&state, "/blockchain/providers").await;
    assert_eq!(field_of(&all, "providers", "Address"), [a1.clone(), a3.clone()]);
    let desc = get_json(&state, "/blockchain/providers?order=desc").await;
    assert_eq!(field_of(&desc, "providers", "Address"), [a3.clone(), a1.clone()]);
    let zero = get_json(&state, "/blockchain/providers?limit=0").await;
    assert_eq!(field_of(&zero, "providers", "Address").len(), 2);
    let page = get_json(&state, "/blockchain/providers?offset=1&limit=1").await;
    assert_eq!(field_of(&page, "providers", "Address"), std::slice::from_ref(&a3));
    let page = get_json(&state, "/blockchain/providers?offset=1").await;
    assert_eq!(field_of(&page, "providers", "Address"), [a3]);
    let past = get_json(&state, "/blockchain/providers?offset=5").await;
    assert_eq!(past["providers"], serde_json::json!([]));
    for (query, field) in
        [("limit=x", "limit"), ("offset=-1", "offset"), ("order=up", "order"), ("limit=5000", "limit")]
    {
        bad_field(&state, Method::GET, &format!("/blockchain/providers?{query}"), None, field).await;
    }
}

#[tokio::test]
async fn models_list_active_ones_all_by_default_with_order_and_pages() {
    let (_f, state) = seeded().await;
    let (m1, m2) = (format!("{}", id(0x11, 1)), format!("{}", id(0x11, 2)));
    let all = get_json(&state, "/blockchain/models").await;
    assert_eq!(field_of(&all, "models", "Id"), [m1.clone(), m2.clone()]);
    let desc = get_json(&state, "/blockchain/models?order=DESC").await;
    assert_eq!(field_of(&desc, "models", "Id"), [m2.clone(), m1.clone()]);
    let page = get_json(&state, "/blockchain/models?limit=1&order=desc").await;
    assert_eq!(field_of(&page, "models", "Id"), [m2]);
    bad_field(&state, Method::GET, "/blockchain/models?offset=abc", None, "offset").await;
}

#[tokio::test]
async fn bid_lists_default_to_ten_and_filter_by_provider_model_and_activity() {
    let (_f, state) = seeded().await;
    let nonce = |list: &Value| field_of(list, "bids", "Nonce");
    let m1 = id(0x11, 1);
    let all = get_json(&state, &format!("/blockchain/models/{m1}/bids")).await;
    assert_eq!(nonce(&all), (1..=10).map(|n| n.to_string()).collect::<Vec<_>>());
    let rest = get_json(&state, &format!("/blockchain/models/{m1}/bids?offset=10")).await;
    assert_eq!(nonce(&rest), ["11", "12"]);
    let newest = get_json(&state, &format!("/blockchain/models/{m1}/bids?order=desc&limit=3")).await;
    assert_eq!(nonce(&newest), ["12", "11", "10"]);
    let active = get_json(&state, &format!("/blockchain/models/{m1}/bids/active?order=desc&limit=2")).await;
    assert_eq!(nonce(&active), ["11", "10"]);
    let active = get_json(&state, &format!("/blockchain/models/{m1}/bids/active?limit=100")).await;
    assert_eq!(nonce(&active).len(), 11);
    let none = get_json(&state, &format!("/blockchain/models/{m1}/bids?limit=0")).await;
    assert_eq!(none["bids"], serde_json::json!([]));

    let p1 = addr(1);
    let p3 = addr(3);
    let by_p1 = get_json(&state, &format!("/blockchain/providers/{p1}/bids?limit=20")).await;
    assert_eq!(nonce(&by_p1).len(), 12);
    let by_p1 = get_json(&state, &format!("/blockchain/providers/{p1:#x}/bids/active?limit=20")).await;
    assert_eq!(nonce(&by_p1).len(), 11);
    let by_p3 = get_json(&state, &format!("/blockchain/providers/{p3}/bids")).await;
    assert_eq!(nonce(&by_p3), ["13"]);
    let unknown = get_json(&state, &format!("/blockchain/providers/{}/bids/active", addr(9))).await;
    assert_eq!(unknown["bids"], serde_json::json!([]));

    for uri in [
        "/blockchain/providers/0x1234/bids".to_owned(),
        "/blockchain/providers/nothex/bids/active".to_owned(),
        "/blockchain/models/0x1234/bids".to_owned(),
        "/blockchain/models/xyz/bids/active".to_owned(),
        format!("/blockchain/models/{m1}/bids?limit=-3"),
    ] {
        let field = if uri.contains("limit") { "limit" } else { "id" };
        bad_field(&state, Method::GET, &uri, None, field).await;
    }
}

#[tokio::test]
async fn one_bid_is_read_by_id() {
    let (_f, state) = seeded().await;
    let b = id(0x33, 13);
    let answer = get_json(&state, &format!("/blockchain/bids/{b}")).await;
    assert_eq!(answer["bid"]["Id"], b.to_string());
    assert_eq!(answer["bid"]["Provider"], format!("{:#x}", addr(3)));
    // Without 0x too.
    let bare = get_json(&state, &format!("/blockchain/bids/{}", &b.to_string()[2..])).await;
    assert_eq!(bare, answer);
    let error =
        expect_error(&state, Method::GET, &format!("/blockchain/bids/{}", id(0x33, 99)), None, 404).await;
    assert_eq!(error.code, "not_found");
    bad_field(&state, Method::GET, "/blockchain/bids/0x12", None, "id").await;
}

/// The exact keys and number encodings of go-proxy-router.md §1.0.
#[tokio::test]
async fn json_shapes_match_the_reference() {
    let f = fixture().await;
    let state = f.state.clone();
    let mut p = provider(1, 1_700_000_000, false);
    p.address = MIXED;
    p.stake = U256::from(100u64) * U256::from(E18);
    f.store.providers().upsert(&p).await.unwrap();
    f.store.models().upsert(&model(1, 1_700_000_001, false)).await.unwrap();
    let b = bid(1, MIXED, id(0x11, 1), 1_700_000_002, 0);
    f.store.bids().upsert(&b).await.unwrap();

    // Provider: Stake and CreatedAt quoted (lib.BigInt), lower-case address.
    let answer = call(&state, Method::GET, "/blockchain/providers", None).await;
    let providers = answer.json();
    let provider = &providers["providers"][0];
    assert_eq!(keys(provider), BTreeSet::from(["Address", "Endpoint", "Stake", "CreatedAt", "IsDeleted"]));
    assert_eq!(provider["Address"], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    assert_eq!(provider["Stake"], "100000000000000000000");
    assert_eq!(provider["CreatedAt"], "1700000000");
    assert_eq!(provider["IsDeleted"], false);
    assert!(answer.body.contains(r#""Stake":"100000000000000000000""#), "{}", answer.body);

    // Model: Fee, Stake, CreatedAt raw numbers of any size.
    let answer = call(&state, Method::GET, "/blockchain/models", None).await;
    let models = answer.json();
    let model = &models["models"][0];
    assert_eq!(
        keys(model),
        BTreeSet::from([
            "Id",
            "IpfsCID",
            "Fee",
            "Stake",
            "Owner",
            "Name",
            "Tags",
            "CreatedAt",
            "IsDeleted",
            "ModelType"
        ])
    );
    assert!(answer.body.contains(r#""Fee":7,"#), "{}", answer.body);
    assert!(answer.body.contains(r#""Stake":100000000000000000000,"#), "{}", answer.body);
    assert!(answer.body.contains(r#""CreatedAt":1700000001,"#), "{}", answer.body);
    assert_eq!(model["Id"], id(0x11, 1).to_string());
    assert_eq!(model["IpfsCID"], id(0x22, 1).to_string());
    assert_eq!(model["Owner"], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    assert_eq!(model["Tags"], serde_json::json!(["LLM", "fast"]));
    assert_eq!(model["ModelType"], "LLM");
    assert!(model["Id"].as_str().unwrap().chars().all(|c| !c.is_ascii_uppercase()));

    // Bid: every number quoted.
    let answer = call(&state, Method::GET, &format!("/blockchain/bids/{}", b.id), None).await;
    let bid_json = &answer.json()["bid"];
    assert_eq!(
        keys(bid_json),
        BTreeSet::from([
            "Id",
            "Provider",
            "ModelAgentId",
            "PricePerSecond",
            "Nonce",
            "CreatedAt",
            "DeletedAt"
        ])
    );
    assert_eq!(bid_json["Provider"], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    assert_eq!(bid_json["ModelAgentId"], id(0x11, 1).to_string());
    assert_eq!(bid_json["PricePerSecond"], "10000000000000");
    assert_eq!(bid_json["Nonce"], "1");
    assert_eq!(bid_json["CreatedAt"], "1700000002");
    assert_eq!(bid_json["DeletedAt"], "0");

    // Session (built in the store): raw numbers, CloseoutReceipt hex without 0x.
    let session = store::Session {
        id: id(0x44, 1),
        user: MIXED,
        bid_id: b.id,
        provider: MIXED,
        model_id: id(0x11, 1),
        stake: U256::from(100u64) * U256::from(E18),
        closeout_receipt: Bytes::from(vec![0xAB, 0xCD, 0x01]),
        closeout_type: U256::from(1u64),
        provider_withdrawn_amount: U256::from(5u64),
        opened_at: 1_700_000_010,
        ends_at: 1_700_000_610,
        closed_at: 1_700_000_300,
        is_active: false,
        is_direct_payment: false,
    };
    f.store.sessions().upsert(&session).await.unwrap();
    let stored = f.store.sessions().get(session.id).await.unwrap().unwrap();
    let text = serde_json::to_string(&SessionJson::new(&stored, Some(b.price_per_second))).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&value),
        BTreeSet::from([
            "Id",
            "User",
            "Provider",
            "ModelAgentId",
            "BidID",
            "Stake",
            "PricePerSecond",
            "CloseoutReceipt",
            "CloseoutType",
            "ProviderWithdrawnAmount",
            "OpenedAt",
            "EndsAt",
            "ClosedAt"
        ])
    );
    for raw in [
        r#""Stake":100000000000000000000"#,
        r#""PricePerSecond":10000000000000"#,
        r#""CloseoutType":1"#,
        r#""ProviderWithdrawnAmount":5"#,
        r#""OpenedAt":1700000010"#,
        r#""EndsAt":1700000610"#,
        r#""ClosedAt":1700000300"#,
        r#""CloseoutReceipt":"abcd01""#,
        r#""User":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266""#,
    ] {
        assert!(text.contains(raw), "{raw} not in {text}");
    }
    assert_eq!(value["Id"], session.id.to_string());
    assert_eq!(value["BidID"], b.id.to_string());
}

#[tokio::test]
async fn writes_validate_their_input_before_reaching_the_chain() {
    let f = fixture().await;
    let state = &f.state;
    let post = Method::POST;

    // Providers.
    for (json, field) in [
        (r#"{"stake":"1","endpoint":"no-port"}"#, "endpoint"),
        (r#"{"stake":"1","endpoint":"http://host:3333"}"#, "endpoint"),
        (r#"{"stake":"1","endpoint":"host:0"}"#, "endpoint"),
        (r#"{"stake":"x","endpoint":"host:1"}"#, "stake"),
        (r#"{"stake":-1,"endpoint":"host:1"}"#, "stake"),
        (r#"{"stake":1,"endpoint":7}"#, "endpoint"),
    ] {
        bad_field(state, post.clone(), "/blockchain/providers", Some(json), field).await;
    }
    let error = expect_error(state, post.clone(), "/blockchain/providers", Some(r#"{"stake":1}"#), 400).await;
    assert!(error.error.contains("endpoint"), "{error:?}");
    // Valid input: then the missing chain answers.
    let error = expect_error(
        state,
        post.clone(),
        "/blockchain/providers",
        Some(r#"{"stake":"100000000000000000","endpoint":"host:3333"}"#),
        503,
    )
    .await;
    assert_eq!(error.code, "no_chain");

    // Models.
    let ipfs = id(0x22, 1);
    let model = |name: &str, tags: &str| {
        format!(r#"{{"ipfsID":"{ipfs}","fee":1,"stake":"100","name":"{name}","tags":{tags}}}"#)
    };
    let long = "x".repeat(65);
    for (json, field) in [
        (model("m", r#"["fast","cheap"]"#), "tags"),
        (model("m", "[]"), "tags"),
        (model("m", r#"["llm",""]"#), "tags[1]"),
        (model("m", &format!(r#"["llm","{long}"]"#)), "tags[1]"),
        (model("", r#"["llm"]"#), "name"),
        (model(&long, r#"["llm"]"#), "name"),
        (r#"{"ipfsID":"0x12","fee":1,"stake":1,"name":"m","tags":["llm"]}"#.to_owned(), "ipfsID"),
        (format!(r#"{{"id":"zz","ipfsID":"{ipfs}","fee":1,"stake":1,"name":"m","tags":["llm"]}}"#), "id"),
        (format!(r#"{{"ipfsID":"{ipfs}","fee":"1.5","stake":1,"name":"m","tags":["llm"]}}"#), "fee"),
    ] {
        bad_field(state, post.clone(), "/blockchain/models", Some(&json), field).await;
    }
    // 64 characters and a null id are fine; the chain is what is missing.
    let ok = format!(
        r#"{{"id":null,"ipfsID":"{ipfs}","fee":1,"stake":1,"name":"{}","tags":["Embeddings"]}}"#,
        "é".repeat(64)
    );
    assert_eq!(
        expect_error(state, post.clone(), "/blockchain/models", Some(&ok), 503).await.code,
        "no_chain"
    );

    // Bids.
    let m = id(0x11, 1);
    for (json, field) in [
        (format!(r#"{{"modelID":"{m}","pricePerSecond":0}}"#), "pricePerSecond"),
        (format!(r#"{{"modelID":"{m}","pricePerSecond":"abc"}}"#), "pricePerSecond"),
        (r#"{"modelID":"0x01","pricePerSecond":1}"#.to_owned(), "modelID"),
    ] {
        bad_field(state, post.clone(), "/blockchain/bids", Some(&json), field).await;
    }

    // Deletions and the rated list parse their id first.
    bad_field(state, Method::DELETE, "/blockchain/bids/0x01", None, "id").await;
    bad_field(state, Method::DELETE, "/blockchain/models/not-a-hash", None, "id").await;
    bad_field(state, Method::GET, "/blockchain/models/0x01/bids/rated", None, "id").await;
    let rated = format!("/blockchain/models/{m}/bids/rated");
    assert_eq!(expect_error(state, Method::GET, &rated, None, 503).await.code, "no_chain");
    // The provider deletion needs the wallet to compare the id with.
    let error =
        expect_error(state, Method::DELETE, &format!("/blockchain/providers/{}", addr(1)), None, 503).await;
    assert_eq!(error.code, "no_wallet");
}

#[tokio::test]
async fn routes_require_their_permission() {
    let (_f, state) = seeded().await;
    let m = id(0x11, 1);
    let b = id(0x33, 1);
    let reads = [
        "/blockchain/providers".to_owned(),
        "/blockchain/models".to_owned(),
        format!("/blockchain/providers/{}/bids", addr(1)),
        format!("/blockchain/models/{m}/bids/active"),
        format!("/blockchain/bids/{b}"),
    ];
    for uri in &reads {
        let answer = send(router(state.clone()), request(Method::GET, uri, Some(READER), None)).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        let answer = send(router(state.clone()), request(Method::GET, uri, None, None)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let writes = [
        (Method::POST, "/blockchain/providers".to_owned()),
        (Method::DELETE, format!("/blockchain/providers/{}", addr(1))),
        (Method::POST, "/blockchain/models".to_owned()),
        (Method::DELETE, format!("/blockchain/models/{m}")),
        (Method::POST, "/blockchain/bids".to_owned()),
        (Method::DELETE, format!("/blockchain/bids/{b}")),
    ];
    for (method, uri) in writes {
        let answer =
            send(router(state.clone()), request(method.clone(), &uri, Some(READER), Some("{}"))).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {uri}: {}", answer.body);
        assert_eq!(answer.json()["error"], "method not allowed");
    }
}
