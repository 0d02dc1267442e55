//! The user, agent and allowance routes through the whole router (`oneshot`), against a real store and
//! real `proxy.conf`/`.cookie` files in a temporary directory; allowance enforcement on the send and
//! open-session routes against an RPC endpoint that counts its connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alloy::primitives::{B256, U256};
use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::api::auth::Grant;
use crate::api::test_support::{call, fixture, request, send, Answer, Fixture, ADMIN, ADMIN_PASSWORD};
use crate::api::{router, ChainAccess};

const MOR: &str = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";

async fn call_as(
    state: &ApiState,
    creds: Option<(&str, &str)>,
    method: Method,
    uri: &str,
    json: Option<&str>,
) -> Answer {
    send(router(state.clone()), request(method, uri, creds, json)).await
}

fn assert_bad(answer: &Answer, field: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {}", answer.body);
    assert_eq!(answer.error().field.as_deref(), Some(field), "{}", answer.body);
}

fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json(), json!({"result": true}));
}

fn add_user(f: &Fixture, name: &str, password: &str, perms: &[Permission]) {
    let grants: Vec<Grant> = perms.iter().map(|p| Grant::Only(*p)).collect();
    f.state.auth.add_user(name, password, &grants).unwrap();
}

#[tokio::test]
async fn add_and_remove_users() {
    let f = fixture().await;
    let body = r#"{"username":"ops","password":"ops-pw","perms":["agent_requests"]}"#;
    assert_ok(&call(&f.state, Method::POST, "/auth/users", Some(body)).await);
    // The new user logs in with its password and only its permissions.
    let ops = Some(("ops", "ops-pw"));
    assert_eq!(call_as(&f.state, ops, Method::GET, "/auth/users", None).await.status, StatusCode::OK);
    assert_eq!(call_as(&f.state, ops, Method::GET, "/config", None).await.status, StatusCode::FORBIDDEN);
    assert!(std::fs::read_to_string(f.dir.path().join("proxy.conf"))
        .unwrap()
        .contains("rpcwhitelist=ops:agent_requests"));

    assert_ok(&call(&f.state, Method::DELETE, "/auth/users", Some(r#"{"username":"ops"}"#)).await);
    assert_eq!(
        call_as(&f.state, ops, Method::GET, "/auth/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = call(&f.state, Method::DELETE, "/auth/users", Some(r#"{"username":"ops"}"#)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    let admin = call(&f.state, Method::DELETE, "/auth/users", Some(r#"{"username":"admin"}"#)).await;
    assert_eq!((admin.status, admin.error().code.as_str()), (StatusCode::FORBIDDEN, "forbidden_user_change"));
}

#[tokio::test]
async fn updating_admin_rewrites_the_cookie() {
    let f = fixture().await;
    let body = r#"{"username":"admin","password":"rotated","perms":["*"]}"#;
    assert_ok(&call(&f.state, Method::POST, "/auth/users", Some(body)).await);
    assert_eq!(std::fs::read_to_string(f.dir.path().join(".cookie")).unwrap(), "admin:rotated\n");
    let old = call_as(&f.state, Some(ADMIN), Method::GET, "/auth/users", None).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = call_as(&f.state, Some(("admin", "rotated")), Method::GET, "/auth/users", None).await;
    assert_eq!(new.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_user_bodies_name_the_field() {
    let f = fixture().await;
    for (method, uri, body, field) in [
        (Method::POST, "/auth/users", r#"{"password":"p","perms":[]}"#, "username"),
        (Method::POST, "/auth/users", r#"{"username":"u","perms":[]}"#, "password"),
        (Method::POST, "/auth/users", r#"{"username":"u","password":"p"}"#, "perms"),
        (Method::POST, "/auth/users", r#"{"username":"u","password":"p","perms":["fly"]}"#, "perms"),
        (Method::POST, "/auth/users", r#"{"username":"u","password":"p","perms":"chat"}"#, "perms"),
        (Method::POST, "/auth/users", r#"{"username":"a:b","password":"p","perms":[]}"#, "username"),
        (Method::POST, "/auth/users", r#"{"username":"a b","password":"p","perms":[]}"#, "username"),
        (Method::POST, "/auth/users", r#"{"username":"u","password":"p\u0001","perms":[]}"#, "password"),
        (Method::DELETE, "/auth/users", "{}", "username"),
        (Method::POST, "/auth/users/request", r#"{"password":"p","perms":[],"allowances":{}}"#, "username"),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"admin","password":"p","perms":[],"allowances":{}}"#,
            "username",
        ),
        (Method::POST, "/auth/users/request", r#"{"username":"bot","perms":[],"allowances":{}}"#, "password"),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"bot","password":"p","allowances":{}}"#,
            "perms",
        ),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"bot","password":"p","perms":["x"],"allowances":{}}"#,
            "perms",
        ),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"bot","password":"p","perms":[]}"#,
            "allowances",
        ),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"bot","password":"p","perms":[],"allowances":{"btc":"1"}}"#,
            "allowances",
        ),
        (
            Method::POST,
            "/auth/users/request",
            r#"{"username":"bot","password":"p","perms":[],"allowances":{"eth":"-1"}}"#,
            "allowances.eth",
        ),
        (Method::POST, "/auth/users/confirm", r#"{"confirm":true}"#, "username"),
        (Method::POST, "/auth/users/confirm", r#"{"username":"bot"}"#, "confirm"),
        (Method::POST, "/auth/allowance/requests", r#"{"token":"eth","allowance":"1"}"#, "username"),
        (Method::POST, "/auth/allowance/requests", r#"{"username":"admin","allowance":"1"}"#, "token"),
        (
            Method::POST,
            "/auth/allowance/requests",
            r#"{"username":"admin","token":"0x12","allowance":"1"}"#,
            "token",
        ),
        (Method::POST, "/auth/allowance/requests", r#"{"username":"admin","token":"eth"}"#, "allowance"),
        (Method::POST, "/auth/allowance/confirm", r#"{"username":"u","token":"eth"}"#, "confirm"),
        (Method::POST, "/auth/allowance/revoke", r#"{"username":"u"}"#, "token"),
    ] {
        let answer = call(&f.state, method, uri, Some(body)).await;
        assert_bad(&answer, field);
    }
    assert!(f.store.agents().list().await.unwrap().is_empty());
}

#[tokio::test]
async fn routes_need_credentials_and_their_permission() {
    let f = fixture().await;
    for (method, uri, perm) in [
        (Method::POST, "/auth/users", Permission::AddUser),
        (Method::DELETE, "/auth/users", Permission::RemoveUser),
        (Method::GET, "/auth/users", Permission::AgentRequests),
        (Method::POST, "/auth/users/confirm", Permission::AgentRequests),
        (Method::GET, "/auth/users/bot/txs?limit=1", Permission::AgentRequests),
        (Method::POST, "/auth/allowance/requests", Permission::RequestAllowance),
        (Method::GET, "/auth/allowance/requests", Permission::AgentRequests),
        (Method::POST, "/auth/allowance/confirm", Permission::AgentRequests),
        (Method::POST, "/auth/allowance/revoke", Permission::AgentRequests),
    ] {
        let none = call_as(&f.state, None, method.clone(), uri, Some("{}")).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        add_user(&f, "holder", "pw", &[perm]);
        add_user(&f, "other", "pw", &[Permission::Chat]);
        let other = call_as(&f.state, Some(("other", "pw")), method.clone(), uri, Some("{}")).await;
        assert_eq!(other.status, StatusCode::FORBIDDEN, "{method} {uri}");
        let holder = call_as(&f.state, Some(("holder", "pw")), method.clone(), uri, Some("{}")).await;
        assert_ne!(holder.status, StatusCode::FORBIDDEN, "{method} {uri}: {}", holder.body);
        assert_ne!(holder.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    // The open ones.
    let request = r#"{"username":"bot","password":"p","perms":[],"allowances":{}}"#;
    assert_ok(&call_as(&f.state, None, Method::POST, "/auth/users/request", Some(request)).await);
    assert_eq!(call_as(&f.state, None, Method::GET, "/auth/cookie/path", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_delegated_user_manager_cannot_escalate() {
    let f = fixture().await;
    add_user(&f, "manager", "pw", &[Permission::AddUser, Permission::RemoveUser, Permission::GetBalance]);
    add_user(&f, "ops", "ops-pw", &[Permission::SendMor]);
    let manager = Some(("manager", "pw"));
    for body in [
        r#"{"username":"admin","password":"x","perms":["get_balance"]}"#,
        r#"{"username":"backdoor","password":"x","perms":["*"]}"#,
        r#"{"username":"backdoor","password":"x","perms":["send_mor"]}"#,
        r#"{"username":"ops","password":"x","perms":["get_balance"]}"#,
    ] {
        let answer = call_as(&f.state, manager, Method::POST, "/auth/users", Some(body)).await;
        assert_eq!(
            (answer.status, answer.error().code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden_user_change"),
            "{body}"
        );
    }
    assert!(f.state.auth.verify("ops", "ops-pw").is_ok());
    assert!(f.state.auth.verify("admin", ADMIN_PASSWORD).is_ok());
    assert!(f.state.auth.verify("backdoor", "x").is_err());
    let removal =
        call_as(&f.state, manager, Method::DELETE, "/auth/users", Some(r#"{"username":"ops"}"#)).await;
    assert_eq!(removal.status, StatusCode::FORBIDDEN, "{}", removal.body);
    // A subset of its own permissions is fine.
    let body = r#"{"username":"junior","password":"j","perms":["get_balance"]}"#;
    assert_ok(&call_as(&f.state, manager, Method::POST, "/auth/users", Some(body)).await);
    assert_ok(
        &call_as(&f.state, manager, Method::DELETE, "/auth/users", Some(r#"{"username":"junior"}"#)).await,
    );
}

#[tokio::test]
async fn an_agent_request_confirmed_logs_in_with_its_password_and_only_its_perms() {
    let f = fixture().await;
    let body = json!({
        "username": "bot", "password": "bot-secret-pw", "perms": ["agent_requests", "send_mor"],
        "allowances": {MOR.to_uppercase().replace("0X", "0x"): "1000", "ETH": 5}
    })
    .to_string();
    assert_ok(&call_as(&f.state, None, Method::POST, "/auth/users/request", Some(&body)).await);
    let dup = call_as(&f.state, None, Method::POST, "/auth/users/request", Some(&body)).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    // Before confirmation the agent cannot log in.
    let bot = Some(("bot", "bot-secret-pw"));
    assert_eq!(
        call_as(&f.state, bot, Method::GET, "/auth/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let listed = call(&f.state, Method::GET, "/auth/users", None).await;
    assert_eq!(
        listed.json(),
        json!({"agents": [{"username": "bot", "perms": ["agent_requests", "send_mor"], "isConfirmed": false,
                           "allowances": {"eth": "5", MOR: "1000"}}]})
    );
    // The password is nowhere in the database.
    f.store.close().await;
    let db = std::fs::read(f.store.path()).unwrap();
    let wal = std::fs::read(f.store.path().with_extension("sqlite-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(13).any(|w| w == b"bot-secret-pw"), "the password is stored");
    }
    let f = Fixture { store: crate::store::Store::open(f.dir.path()).await.unwrap(), ..f };
    let state = ApiState { store: f.store.clone(), ..f.state.clone() };

    assert_ok(
        &call(&state, Method::POST, "/auth/users/confirm", Some(r#"{"username":"bot","confirm":true}"#))
            .await,
    );
    assert_eq!(call_as(&state, bot, Method::GET, "/auth/users", None).await.status, StatusCode::OK);
    assert_eq!(call_as(&state, bot, Method::GET, "/config", None).await.status, StatusCode::FORBIDDEN);
    assert!(state.auth.allows("bot", Permission::SendMor));
    assert!(!state.auth.allows("bot", Permission::SendEth));
    let listed = call(&state, Method::GET, "/auth/users", None).await.json();
    assert_eq!(listed["agents"][0]["isConfirmed"], true);

    // Removing the user removes its agent record too.
    assert_ok(&call(&state, Method::DELETE, "/auth/users", Some(r#"{"username":"bot"}"#)).await);
    assert_eq!(call(&state, Method::GET, "/auth/users", None).await.json(), json!({"agents": []}));
}

#[tokio::test]
async fn declining_deletes_the_request_and_unknown_requests_are_404() {
    let f = fixture().await;
    let body = r#"{"username":"bot","password":"pw","perms":["chat"],"allowances":{}}"#;
    assert_ok(&call_as(&f.state, None, Method::POST, "/auth/users/request", Some(body)).await);
    assert_ok(
        &call(&f.state, Method::POST, "/auth/users/confirm", Some(r#"{"username":"bot","confirm":false}"#))
            .await,
    );
    assert_eq!(call(&f.state, Method::GET, "/auth/users", None).await.json(), json!({"agents": []}));
    assert!(f.state.auth.verify("bot", "pw").is_err());
    let unknown =
        call(&f.state, Method::POST, "/auth/users/confirm", Some(r#"{"username":"bot","confirm":true}"#))
            .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    // A name that a proxy.conf user holds cannot be requested.
    let taken = r#"{"username":"reader","password":"pw","perms":[],"allowances":{}}"#;
    assert_eq!(
        call_as(&f.state, None, Method::POST, "/auth/users/request", Some(taken)).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn a_delegated_confirmer_only_confirms_what_it_holds() {
    let f = fixture().await;
    add_user(&f, "helper", "pw", &[Permission::AgentRequests, Permission::Chat]);
    let helper = Some(("helper", "pw"));
    for body in [
        r#"{"username":"greedy","password":"pw","perms":["*"],"allowances":{}}"#,
        r#"{"username":"rich","password":"pw","perms":["chat"],"allowances":{"eth":"10"}}"#,
        r#"{"username":"fine","password":"pw","perms":["chat"],"allowances":{}}"#,
    ] {
        assert_ok(&call_as(&f.state, None, Method::POST, "/auth/users/request", Some(body)).await);
    }
    for name in ["greedy", "rich"] {
        let body = format!(r#"{{"username":"{name}","confirm":true}}"#);
        let answer = call_as(&f.state, helper, Method::POST, "/auth/users/confirm", Some(&body)).await;
        assert_eq!(
            (answer.status, answer.error().code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden_user_change"),
            "{name}"
        );
    }
    assert_ok(
        &call_as(
            &f.state,
            helper,
            Method::POST,
            "/auth/users/confirm",
            Some(r#"{"username":"fine","confirm":true}"#),
        )
        .await,
    );
    assert!(f.state.auth.verify("fine", "pw").is_ok());
    // It may not decline a confirmed agent; the admin may.
    let decline = r#"{"username":"fine","confirm":false}"#;
    assert_eq!(
        call_as(&f.state, helper, Method::POST, "/auth/users/confirm", Some(decline)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_ok(
        &call(&f.state, Method::POST, "/auth/users/confirm", Some(r#"{"username":"greedy","confirm":true}"#))
            .await,
    );
    assert!(f.state.auth.has_full_access("greedy"));
}

#[tokio::test]
async fn allowance_requests_are_confirmed_declined_and_revoked() {
    let f = fixture().await;
    add_user(&f, "bot", "pw", &[Permission::RequestAllowance]);
    add_user(&f, "helper", "pw", &[Permission::AgentRequests]);
    let bot = Some(("bot", "pw"));
    let own = json!({"username": "bot", "token": MOR.to_uppercase().replace("0X", "0x"), "allowance": "700"})
        .to_string();
    assert_ok(&call_as(&f.state, bot, Method::POST, "/auth/allowance/requests", Some(&own)).await);
    let eth = r#"{"username":"bot","token":"eth","allowance":9}"#;
    assert_ok(&call_as(&f.state, bot, Method::POST, "/auth/allowance/requests", Some(eth)).await);
    let other = r#"{"username":"reader","token":"eth","allowance":"1"}"#;
    let answer = call_as(&f.state, bot, Method::POST, "/auth/allowance/requests", Some(other)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);

    let pending = call(&f.state, Method::GET, "/auth/allowance/requests", None).await;
    assert_eq!(pending.status, StatusCode::OK);
    let requests = pending.json()["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(requests.contains(&json!({"username": "bot", "token": MOR, "allowance": "700"})));

    // agent_requests alone does not move money.
    let confirm = json!({"username": "bot", "token": MOR, "confirm": true}).to_string();
    let helper =
        call_as(&f.state, Some(("helper", "pw")), Method::POST, "/auth/allowance/confirm", Some(&confirm))
            .await;
    assert_eq!(helper.status, StatusCode::FORBIDDEN, "{}", helper.body);
    assert_ok(&call(&f.state, Method::POST, "/auth/allowance/confirm", Some(&confirm)).await);
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::from(700u64));
    let again = call(&f.state, Method::POST, "/auth/allowance/confirm", Some(&confirm)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    let decline = r#"{"username":"bot","token":"ETH","confirm":false}"#;
    assert_ok(&call(&f.state, Method::POST, "/auth/allowance/confirm", Some(decline)).await);
    assert_eq!(f.store.agents().allowance("bot", "eth").await.unwrap(), U256::ZERO);
    assert_eq!(
        call(&f.state, Method::GET, "/auth/allowance/requests", None).await.json(),
        json!({"requests": []})
    );

    let revoke = json!({"username": "bot", "token": MOR}).to_string();
    let helper =
        call_as(&f.state, Some(("helper", "pw")), Method::POST, "/auth/allowance/revoke", Some(&revoke))
            .await;
    assert_eq!(helper.status, StatusCode::FORBIDDEN);
    assert_ok(&call(&f.state, Method::POST, "/auth/allowance/revoke", Some(&revoke)).await);
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn transactions_are_paged_with_an_opaque_cursor() {
    let f = fixture().await;
    for i in 1..=3u8 {
        f.store.agents().record_tx("bot", B256::repeat_byte(i), u64::from(i)).await.unwrap();
    }
    let first = call(&f.state, Method::GET, "/auth/users/bot/txs?limit=2", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first = first.json();
    assert_eq!(first["txHashes"], json!([B256::repeat_byte(3), B256::repeat_byte(2)]));
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let encoded = cursor.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let second =
        call(&f.state, Method::GET, &format!("/auth/users/bot/txs?limit=2&cursor={encoded}"), None).await;
    assert_eq!(second.json(), json!({"txHashes": [B256::repeat_byte(1)], "nextCursor": null}));
    let none = call(&f.state, Method::GET, "/auth/users/nobody/txs?limit=5", None).await;
    assert_eq!(none.json(), json!({"txHashes": [], "nextCursor": null}));
    for (query, field) in [
        ("", "limit"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=x", "limit"),
        ("?limit=1&cursor=abc", "cursor"),
    ] {
        assert_bad(&call(&f.state, Method::GET, &format!("/auth/users/bot/txs{query}"), None).await, field);
    }
}

#[tokio::test]
async fn the_cookie_path_is_absolute_and_open() {
    let f = fixture().await;
    let answer = call_as(&f.state, None, Method::GET, "/auth/cookie/path", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let path = answer.json()["path"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&path).is_absolute(), "{path}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("admin:{ADMIN_PASSWORD}"));
}

// ---------------------------------------------------------------------------------------------------
// Enforcement
// ---------------------------------------------------------------------------------------------------

/// An RPC endpoint that accepts connections, counts them and closes them at once.
async fn counting_rpc() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, count)
}

async fn state_with_chain(f: &Fixture, url: &str) -> ApiState {
    let mut config = crate::api::test_support::config(f.dir.path());
    config.chain.rpc_urls = vec![url.parse().unwrap()];
    let rpc = crate::chain::Rpc::connect(&config.chain).await.unwrap();
    let key = config.wallet.key.as_ref().unwrap();
    let sender =
        crate::chain::TxSender::new(rpc.clone(), crate::chain::Wallet::from_key(key).unwrap(), &config.chain);
    let signer = crate::chain::Signer::new(sender, crate::chain::WalletSource::Config);
    f.state
        .clone()
        .with_chain(ChainAccess::new(rpc, &config.chain))
        .with_wallet(crate::chain::WalletSlot::with(signer))
}

#[tokio::test]
async fn sends_and_opens_over_the_allowance_are_refused_before_any_chain_call() {
    let f = fixture().await;
    let (url, connections) = counting_rpc().await;
    let state = state_with_chain(&f, &url).await;
    add_user(&f, "bot", "pw", &[Permission::SendMor, Permission::SendEth, Permission::OpenSession]);
    f.store.agents().set_allowance("bot", MOR, U256::from(5u8)).await.unwrap();
    let bot = Some(("bot", "pw"));
    let to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let approval = r#"{"approval":"0x01","approvalSig":"0x02","stake":"6"}"#;
    for (uri, body) in [
        ("/blockchain/send/mor", format!(r#"{{"to":"{to}","amount":"6"}}"#)),
        ("/blockchain/send/eth", format!(r#"{{"to":"{to}","amount":"1"}}"#)),
        ("/blockchain/sessions", approval.to_owned()),
    ] {
        let answer = call_as(&state, bot, Method::POST, uri, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}: {}", answer.body);
        let error = answer.error();
        assert_eq!(error.code, "allowance_exceeded", "{uri}");
        assert!(error.reason.unwrap_or_default().contains("allowance["), "{uri}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing reached the chain");
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::from(5u8));
    assert!(f.store.agents().txs("bot", None, 10).await.unwrap().tx_hashes.is_empty());

    // Within the allowance, and for the admin whatever the amount, the request goes on to the chain
    // (which fails here): nothing is spent.
    let within = format!(r#"{{"to":"{to}","amount":"5"}}"#);
    let answer = call_as(&state, bot, Method::POST, "/blockchain/send/mor", Some(&within)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    assert_eq!(answer.error().code, "rpc_unavailable");
    let big = format!(r#"{{"to":"{to}","amount":"1000000"}}"#);
    let answer = call(&state, Method::POST, "/blockchain/send/mor", Some(&big)).await;
    assert_eq!(answer.error().code, "rpc_unavailable", "{}", answer.body);
    assert!(connections.load(Ordering::SeqCst) > 0);
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::from(5u8));
}

#[tokio::test]
async fn a_settled_spend_lowers_the_allowance_and_lists_the_transaction() {
    let f = fixture().await;
    let (url, _) = counting_rpc().await;
    let state = state_with_chain(&f, &url).await;
    add_user(&f, "bot", "pw", &[Permission::SendMor]);
    f.store.agents().set_allowance("bot", MOR, U256::from(10u8)).await.unwrap();
    let bot = state.auth.verify("bot", "pw").unwrap();
    let spend = reserve(&state, &bot, SpendToken::Mor, U256::from(4u8)).await.unwrap();
    spend.settle(&state, B256::repeat_byte(0x42), U256::from(4u8)).await;
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::from(6u8));
    let txs = call(&state, Method::GET, "/auth/users/bot/txs?limit=10", None).await.json();
    assert_eq!(txs["txHashes"], json!([B256::repeat_byte(0x42)]));
    assert!(reserve(&state, &bot, SpendToken::Mor, U256::from(7u8)).await.is_err());
    // A dropped spend (the request failed) changes nothing.
    drop(reserve(&state, &bot, SpendToken::Mor, U256::from(6u8)).await.unwrap());
    assert_eq!(f.store.agents().allowance("bot", MOR).await.unwrap(), U256::from(6u8));
    // The admin spends without an allowance and leaves no record.
    let admin = state.auth.verify("admin", ADMIN_PASSWORD).unwrap();
    let spend = reserve(&state, &admin, SpendToken::Eth, U256::MAX).await.unwrap();
    spend.settle(&state, B256::repeat_byte(0x43), U256::MAX).await;
    assert!(f.store.agents().txs("admin", None, 10).await.unwrap().tx_hashes.is_empty());
}
