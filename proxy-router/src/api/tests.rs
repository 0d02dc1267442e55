//! Router tests through `tower::ServiceExt::oneshot`, against a real SQLite store in a temporary
//! directory and an indexer status channel driven by the test. The OpenAPI drift check lives here
//! too: `UPDATE_OPENAPI=1 cargo test -p proxy-router openapi` rewrites `docs/openapi.json`.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use sqlx::Connection;

use super::test_support::*;
use super::*;

fn caught_up(lag: u64, errors: u32) -> IndexerStatus {
    IndexerStatus {
        head: Some(1000),
        indexed: Some(1000 - lag),
        lag: Some(lag),
        consecutive_errors: errors,
        last_error: (errors > 0).then(|| "secret rpc error at https://rpc.example.com/v2/SECRETKEY".into()),
    }
}

async fn get(app: Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let answer = send(app, request(Method::GET, uri, Some(ADMIN), None)).await;
    (answer.status, answer.headers, answer.body)
}

fn content_type(headers: &axum::http::HeaderMap) -> &str {
    headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn error_body(status: StatusCode, headers: &axum::http::HeaderMap, body: &str) -> ErrorBody {
    Answer { status, headers: headers.clone(), body: body.to_owned() }.error()
}

fn committed_spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[tokio::test]
async fn healthcheck_is_healthy_when_caught_up() {
    let f = fixture().await;
    f.status.send_replace(caught_up(2, 0));
    let (status, headers, body) = get(router(f.state), "/healthcheck").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type(&headers), "application/json");
    let health: system::HealthResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(health.status, "healthy");
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert!(health.uptime.ends_with('s'), "{}", health.uptime);
    assert!(health.reasons.is_empty());
    assert_eq!(
        health.indexer,
        system::IndexerHealth { head: Some(1000), indexed: Some(998), lag: Some(2), consecutive_errors: 0 }
    );
    assert!(health.store.writable);
    assert_eq!(health.components.get("store").map(String::as_str), Some("healthy"));
    assert_eq!(health.components.get("indexer").map(String::as_str), Some("healthy, lag=2, errors=0"));
    // The reference's keys are all there.
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    for key in ["status", "version", "uptime", "components"] {
        assert!(value.get(key).is_some(), "missing {key}: {body}");
    }
}

#[tokio::test]
async fn healthcheck_is_degraded_when_the_indexer_lags() {
    let f = fixture().await;
    f.status.send_replace(caught_up(500, 0));
    let (status, _, body) = get(router(f.state), "/healthcheck").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: system::HealthResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(health.status, "degraded");
    assert_eq!(health.reasons.len(), 1, "{:?}", health.reasons);
    assert!(health.reasons[0].contains("500 blocks behind"), "{:?}", health.reasons);
    assert_eq!(health.indexer.lag, Some(500));
}

#[tokio::test]
async fn healthcheck_is_degraded_when_indexer_steps_keep_failing_and_hides_the_error() {
    let f = fixture().await;
    let app = router(f.state);
    f.status.send_replace(caught_up(2, 4));
    let (status, _, body) = get(app.clone(), "/healthcheck").await;
    assert_eq!(status, StatusCode::OK, "below the threshold: {body}");

    f.status.send_replace(caught_up(2, 5));
    let (status, _, body) = get(app, "/healthcheck").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("last 5 steps failed"), "{body}");
    assert!(!body.contains("SECRETKEY") && !body.contains("secret"), "{body}");
}

#[tokio::test]
async fn healthcheck_is_degraded_when_the_store_is_closed() {
    let f = fixture().await;
    f.store.close().await;
    let (status, _, body) = get(router(f.state), "/healthcheck").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: system::HealthResponse = serde_json::from_str(&body).unwrap();
    assert!(!health.store.writable);
    assert_eq!(health.components.get("store").map(String::as_str), Some("unwritable"));
}

/// Holds the database's write lock from another connection, as a stuck writer would.
async fn lock_store(store: &Store) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", store.path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
    conn
}

#[tokio::test]
async fn healthcheck_is_degraded_when_the_store_is_locked() {
    let mut f = fixture().await;
    f.state.health.store_probe_timeout = Duration::from_millis(100);
    let _lock = lock_store(&f.store).await;
    let (status, _, body) = get(router(f.state), "/healthcheck").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("the store does not accept writes"), "{body}");
}

#[tokio::test]
async fn a_request_over_the_time_limit_answers_504_json() {
    let mut f = fixture().await;
    // The probe waits for the lock longer than the request may take.
    f.state.health.store_probe_timeout = Duration::from_secs(5);
    f.state.limits.request_timeout = Duration::from_millis(100);
    let _lock = lock_store(&f.store).await;
    let (status, headers, body) = get(router(f.state), "/healthcheck").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(error_body(status, &headers, &body).code, "timeout");
}

#[tokio::test]
async fn config_has_the_reference_keys_and_no_secrets() {
    let f = fixture().await;
    let (status, _, body) = get(router(f.state), "/config").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    for key in ["Version", "Commit", "Config", "DerivedConfig"] {
        assert!(value.get(key).is_some(), "missing {key}: {body}");
    }
    assert_eq!(value["DerivedConfig"]["WalletAddress"], WALLET);
    assert_eq!(value["DerivedConfig"]["ChainID"], 31337);
    assert_eq!(
        value["DerivedConfig"]["EthNodeURLs"],
        serde_json::json!(["https://rpc.example.com/…", "http://127.0.0.1:8545"])
    );
    assert_eq!(value["Config"]["Blockchain"]["ChainID"], 31337);
    assert_eq!(value["Config"]["Blockchain"]["PollingInterval"], 10_000_000_000u64);
    assert_eq!(
        value["Config"]["Marketplace"]["DiamondContractAddress"],
        "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    );
    for secret in [PRIVATE_KEY, "SECRETKEY", "hunter2", "user:"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
}

#[tokio::test]
async fn body_over_the_limit_answers_413_json() {
    let f = fixture().await;
    let body = vec![b'x'; ApiLimits::default().body_limit + 1];
    let request = Request::post("/healthcheck")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    let Answer { status, headers, body } = send(router(f.state), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let error = error_body(status, &headers, &body);
    assert_eq!(error.code, "payload_too_large");
    assert_eq!(error.error, "the request body is too large");
}

#[tokio::test]
async fn unknown_route_answers_404_json() {
    let f = fixture().await;
    let (status, headers, body) = get(router(f.state), "/blockchain/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error = error_body(status, &headers, &body);
    assert_eq!(error.code, "route_not_found");
    assert_eq!(error.error, "no route for GET /blockchain/nothing-here");
}

#[tokio::test]
async fn wrong_method_answers_405_json_with_allow() {
    let f = fixture().await;
    let request = Request::delete("/healthcheck").body(Body::empty()).unwrap();
    let Answer { status, headers, body } = send(router(f.state), request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(error_body(status, &headers, &body).code, "method_not_allowed");
    let allow = headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(allow.contains("GET"), "allow: {allow}");
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let f = fixture().await;
    let (status, headers, body) = get(router(f.state), "/swagger/index.html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/html"), "{headers:?}");
    assert!(body.to_lowercase().contains("swagger"), "{body}");

    let f = fixture().await;
    let (status, _, body) = get(router(f.state), "/swagger/swagger-initializer.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(SWAGGER_SPEC_PATH), "the UI loads our spec: {body}");
}

#[tokio::test]
async fn swagger_doc_json_and_the_spec_path_serve_the_committed_spec() {
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_spec_path()).unwrap()).unwrap();
    for path in [SWAGGER_SPEC_PATH, OPENAPI_PATH] {
        let f = fixture().await;
        let (status, headers, body) = get(router(f.state), path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type(&headers), "application/json", "{path}");
        let served: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(served, committed, "{path} differs from docs/openapi.json");
    }
}

#[test]
fn spec_documents_the_system_routes_and_the_error_body() {
    let spec = serde_json::to_value(openapi()).unwrap();
    for path in ["/healthcheck", "/config"] {
        assert!(spec["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert!(spec["paths"]["/healthcheck"]["get"]["responses"]["503"].is_object());
    for schema in ["ErrorBody", "HealthResponse", "ConfigResponse"] {
        assert!(spec["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}

/// Fails when `docs/openapi.json` is not the generated spec. `UPDATE_OPENAPI=1` rewrites the file
/// instead (then review and commit it).
#[test]
fn openapi_spec_matches_committed_file() {
    let generated = openapi_json().unwrap();
    let path = committed_spec_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the API: run `UPDATE_OPENAPI=1 cargo test -p proxy-router openapi` \
         and commit the result"
    );
}

#[tokio::test]
async fn config_needs_system_config_and_healthcheck_is_open() {
    let f = fixture().await;
    assert!(f.dir.path().join(".cookie").is_file());
    let none = send(router(f.state.clone()), request(Method::GET, "/config", None, None)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json(), serde_json::json!({"error": "no basic auth provided"}));
    let wrong =
        send(router(f.state.clone()), request(Method::GET, "/config", Some(("admin", "nope")), None)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json(), serde_json::json!({"error": "invalid username or password"}));
    let reader = send(router(f.state.clone()), request(Method::GET, "/config", Some(READER), None)).await;
    assert_eq!(reader.status, StatusCode::FORBIDDEN);
    assert_eq!(reader.json(), serde_json::json!({"error": "method not allowed"}));
    assert_eq!(call(&f.state, Method::GET, "/config", None).await.status, StatusCode::OK);
    let open = send(router(f.state.clone()), request(Method::GET, "/healthcheck", None, None)).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
}

/// The permission of every protected operation, as the reference's tables (go-proxy-router.md §1.1,
/// §1.2, §1.4, §1.6, §1.7, §1.8) and ours for the routes the reference lacks. Operations the spec marks open
/// (`security: [{}]`) are not listed.
const ROUTE_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("get", "/config", "system_config"),
    // The gateway's API keys (ours).
    ("post", "/auth/keys", "add_user"),
    ("get", "/auth/keys", "add_user"),
    ("get", "/auth/keys/{id}", "add_user"),
    ("delete", "/auth/keys/{id}", "add_user"),
    // §1.1
    ("get", "/blockchain/providers", "get_providers"),
    ("post", "/blockchain/providers", "create_provider"),
    ("delete", "/blockchain/providers/{id}", "delete_provider"),
    ("get", "/blockchain/providers/{id}/bids", "get_bids"),
    ("get", "/blockchain/providers/{id}/bids/active", "get_bids"),
    ("get", "/blockchain/models", "get_models"),
    ("post", "/blockchain/models", "create_model"),
    ("delete", "/blockchain/models/{id}", "delete_model"),
    ("get", "/blockchain/models/{id}/bids", "get_bids"),
    ("get", "/blockchain/models/{id}/bids/active", "get_bids"),
    ("get", "/blockchain/models/{id}/bids/rated", "get_bids"),
    ("post", "/blockchain/bids", "create_bid"),
    ("get", "/blockchain/bids/{id}", "get_bids"),
    ("delete", "/blockchain/bids/{id}", "delete_bids"),
    // §1.2
    ("get", "/blockchain/sessions/{id}", "get_sessions"),
    ("post", "/blockchain/sessions/{id}/close", "close_session"),
    ("get", "/blockchain/sessions/user", "get_sessions"),
    ("get", "/blockchain/sessions/user/ids", "get_sessions"),
    ("get", "/blockchain/sessions/provider", "get_sessions"),
    ("get", "/blockchain/sessions/budget", "get_budget"),
    ("get", "/blockchain/token/supply", "get_supply"),
    ("get", "/proxy/sessions/{id}/providerClaimableBalance", "get_sessions"),
    ("post", "/proxy/sessions/{id}/providerClaim", "session_provider_claim"),
    ("get", "/blockchain/balance", "get_balance"),
    ("get", "/blockchain/allowance", "get_allowance"),
    ("post", "/blockchain/approve", "approve"),
    ("post", "/blockchain/send/eth", "send_eth"),
    ("post", "/blockchain/send/mor", "send_mor"),
    ("get", "/blockchain/transactions", "get_transactions"),
    ("get", "/blockchain/latestBlock", "get_latest_block"),
    ("post", "/blockchain/sessions", "open_session"),
    ("post", "/blockchain/bids/{id}/session", "open_session"),
    ("post", "/blockchain/models/{id}/session", "open_session"),
    // §1.3 (`/proxy/provider/ping` is open, as the reference's)
    ("post", "/proxy/sessions/initiate", "initiate_session"),
    ("post", "/v1/chat/completions", "chat"),
    ("post", "/v1/embeddings", "embeddings"),
    ("get", "/v1/models", "get_local_models"),
    // §1.6
    ("get", "/wallet", "get_wallet"),
    ("post", "/wallet/privateKey", "set_wallet"),
    ("post", "/wallet/mnemonic", "set_wallet"),
    ("delete", "/wallet", "remove_wallet"),
    // §1.7
    ("post", "/config/ethNode", "system_config"),
    ("delete", "/config/ethNode", "system_config"),
    // §1.4
    ("get", "/v1/chats", "get_chat_history"),
    ("get", "/v1/chats/{id}", "get_chat_history"),
    ("post", "/v1/chats/{id}", "edit_chat_history"),
    ("delete", "/v1/chats/{id}", "edit_chat_history"),
    // §1.8 (`/auth/users/request` and `/auth/cookie/path` are open, as the reference's)
    ("post", "/auth/users", "add_user"),
    ("delete", "/auth/users", "remove_user"),
    ("get", "/auth/users", "agent_requests"),
    ("post", "/auth/users/confirm", "agent_requests"),
    ("get", "/auth/users/{username}/txs", "agent_requests"),
    ("post", "/auth/allowance/requests", "request_allowance"),
    ("get", "/auth/allowance/requests", "agent_requests"),
    ("post", "/auth/allowance/confirm", "agent_requests"),
    ("post", "/auth/allowance/revoke", "agent_requests"),
    // Ours: the user's on-hold stake and its withdrawal, a provider's claimable sessions and claiming them.
    ("get", "/blockchain/sessions/user/stakes-on-hold", "get_sessions"),
    ("post", "/blockchain/sessions/user/withdraw-stakes", "withdraw_user_stakes"),
    ("get", "/proxy/sessions/provider-claimable", "get_sessions"),
    ("post", "/proxy/sessions/provider-claim-all", "session_provider_claim"),
];

/// Every operation of the spec: `(method, path, open)`.
fn spec_operations() -> Vec<(String, String, bool)> {
    let spec = serde_json::to_value(openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let open = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r == &serde_json::json!({})));
            out.push((method.clone(), path.clone(), open));
        }
    }
    out
}

/// The path with each `{param}` replaced by a well-formed value (auth runs before any extractor).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str("0x1111111111111111111111111111111111111111111111111111111111111111");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Refused by the auth layer (not by the handler): 401, or 403 with the reference's body.
fn refused_by_auth(answer: &Answer) -> bool {
    answer.status == StatusCode::UNAUTHORIZED
        || (answer.status == StatusCode::FORBIDDEN
            && serde_json::from_str::<serde_json::Value>(&answer.body).ok()
                == Some(serde_json::json!({"error": "method not allowed"})))
}

#[tokio::test]
async fn every_protected_route_answers_401_without_credentials_and_only_its_permission_opens_it() {
    use super::auth::Grant;
    let f = fixture().await;
    // One user per permission, holding only that one.
    for permission in Permission::ALL {
        f.state
            .auth
            .add_user(&format!("only-{}", permission.as_str()), "pw", &[Grant::Only(*permission)])
            .unwrap();
    }
    let operations = spec_operations();
    assert!(!operations.is_empty());
    for (method, path, open) in operations {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let uri = concrete(&path);
        let anonymous = send(router(f.state.clone()), request(method.clone(), &uri, None, None)).await;
        if open {
            assert!(!refused_by_auth(&anonymous), "{method} {path} is documented open: {}", anonymous.body);
            assert!(
                ROUTE_PERMISSIONS.iter().all(|(_, p, _)| *p != path),
                "{path} is open and has a permission"
            );
            continue;
        }
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", anonymous.body);
        assert_eq!(
            anonymous.json(),
            serde_json::json!({"error": "no basic auth provided"}),
            "{method} {path}"
        );

        let expected = ROUTE_PERMISSIONS
            .iter()
            .find(|(m, p, _)| m.eq_ignore_ascii_case(method.as_str()) && *p == path)
            .map(|(_, _, permission)| *permission)
            .unwrap_or_else(|| panic!("{method} {path} is missing from ROUTE_PERMISSIONS"));
        let mut opening = Vec::new();
        for permission in Permission::ALL {
            let user = format!("only-{}", permission.as_str());
            let answer =
                send(router(f.state.clone()), request(method.clone(), &uri, Some((&user, "pw")), None)).await;
            if !refused_by_auth(&answer) {
                opening.push(permission.as_str());
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path} as {user}");
            }
        }
        assert_eq!(opening, [expected], "{method} {path}: the permissions that open it");
    }
}
