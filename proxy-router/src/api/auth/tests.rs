//! Tests of [`super`]: the rpcauth hash, `proxy.conf` parsing and rewriting, `.cookie` creation, password
//! and whitelist checks, and the 401/403 answers through a real axum router.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use secrecy::SecretString;
use tower::ServiceExt as _;

use super::*;

fn config(dir: &Path) -> AuthConfig {
    AuthConfig {
        auth_config_file_path: dir.join("proxy.conf"),
        cookie_file_path: dir.join(".cookie"),
        cookie_content: None,
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A store over a `proxy.conf` with the given text, plus an existing cookie (so no admin is added).
fn store_with(dir: &Path, conf: &str) -> AuthStore {
    let cfg = config(dir);
    std::fs::write(&cfg.auth_config_file_path, conf).unwrap();
    std::fs::write(&cfg.cookie_file_path, "admin:unused\n").unwrap();
    AuthStore::open(&cfg).unwrap()
}

fn rpcauth_line(user: &str, salt: &[u8], password: &str) -> String {
    format!("rpcauth={user}:{}${}", hex::encode(salt), rpcauth_hash_hex(salt, password))
}

#[test]
fn hmac_is_keyed_with_the_salt_bytes() {
    let salt: Vec<u8> = (0u8..16).collect();
    // Fixed vector from Python: hmac.new(bytes(range(16)), b"pass", hashlib.sha256).hexdigest().
    assert_eq!(
        rpcauth_hash_hex(&salt, "pass"),
        "fbf6a091a3941220f87416da864d690f3a61ab79e4e93051e948e444f4390026"
    );
    // Same thing computed directly with the hmac crate.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&salt).unwrap();
    mac.update(b"pass");
    assert_eq!(rpcauth_hash_hex(&salt, "pass"), hex::encode(mac.finalize().into_bytes()));
    // Keyed with the salt's hex text instead, the result differs: the key really is the bytes.
    assert_ne!(rpcauth_hash_hex(hex::encode(&salt).as_bytes(), "pass"), rpcauth_hash_hex(&salt, "pass"));
}

#[test]
fn permission_names_are_the_references_plus_withdraw_user_stakes() {
    let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names.join(" "),
        "add_user agent_requests approve audio_speech audio_transcription call_agent_tool chat close_session \
         create_bid create_model create_provider delete_bids delete_model delete_provider docker_build \
         docker_manage docker_version edit_chat_history embeddings get_agent_tools get_allowance get_balance \
         get_bids get_budget get_chat_history get_latest_block get_local_agents get_local_models get_models \
         get_providers get_sessions get_supply get_transactions get_wallet initiate_session ipfs_add ipfs_get \
         ipfs_pin ipfs_pinned ipfs_unpin ipfs_version open_session remove_user remove_wallet request_allowance \
         send_eth send_mor session_provider_claim set_wallet system_config \
         withdraw_user_stakes"
    );
    for p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>().unwrap(), *p);
        assert_eq!(p.to_string().parse::<Grant>().unwrap(), Grant::Only(*p));
    }
    assert_eq!("*".parse::<Grant>().unwrap(), Grant::All);
    assert!(matches!("get_everything".parse::<Grant>(), Err(AuthError::UnknownPermission(_))));
}

#[test]
fn parse_and_render_round_trip_keeps_comments() {
    let dir = tempfile::tempdir().unwrap();
    let salt = [7u8; 16];
    let text = format!(
        "# users of this node\n{}\n\nrpcwhitelist=bob:get_bids, get_models\nrpcwhitelist=eve:\n\
         rpcwhitelistdefault=1\n",
        rpcauth_line("bob", &salt, "pw")
    );
    let file = AuthFile::parse(&text, &dir.path().join("proxy.conf")).unwrap();
    let rendered = file.render();
    assert_eq!(rendered, text.replace("get_bids, get_models", "get_bids,get_models"));
    assert_eq!(AuthFile::parse(&rendered, Path::new("x")).unwrap().render(), rendered);
    assert!(file.whitelist_default());
    assert_eq!(file.whitelist("bob").unwrap(), ["get_bids", "get_models"]);
    // An explicitly empty whitelist denies everything, as in the reference.
    assert!(file.whitelist("eve").unwrap().is_empty());
    assert_eq!(file.credential("bob").unwrap().0, &salt[..]);
}

#[test]
fn bad_lines_are_refused_with_their_number() {
    let cases = [
        ("rpcauth=bob:00$11\nrpcwhitlist=bob:*\n", 1, "the hash is not 32 bytes of hex"),
        ("# ok\nrpcwhitlist=bob:*\n", 2, "unknown key"),
        ("rpcwhitelistdefault=yes\n", 1, "0 or 1"),
        ("\n\nrpcauth=bob\n", 3, "expected rpcauth="),
        ("rpcauth=bob:zz$00\n", 1, "salt is not hex"),
        ("just text\n", 1, "key=value"),
    ];
    for (text, line, reason) in cases {
        match AuthFile::parse(text, Path::new("proxy.conf")) {
            Err(AuthError::Syntax { line: l, reason: r, .. }) => {
                assert_eq!(l, line, "{text:?}");
                assert!(r.contains(reason), "{text:?}: {r}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn go_bools_are_accepted_for_the_default() {
    for (value, expected) in [("0", false), ("1", true), ("true", true), ("F", false)] {
        let file = AuthFile::parse(&format!("rpcwhitelistdefault={value}\n"), Path::new("p")).unwrap();
        assert_eq!(file.whitelist_default(), expected, "{value}");
    }
}

#[test]
fn first_start_creates_a_private_cookie_and_whitelists_admin() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let store = AuthStore::open(&cfg).unwrap();

    let cookie = std::fs::read_to_string(&cfg.cookie_file_path).unwrap();
    let password = cookie.strip_prefix("admin:").unwrap().strip_suffix('\n').unwrap();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(mode(&cfg.cookie_file_path), 0o600);
    assert_eq!(mode(&cfg.auth_config_file_path), 0o600);

    let conf = std::fs::read_to_string(&cfg.auth_config_file_path).unwrap();
    let lines: Vec<&str> = conf.lines().collect();
    assert_eq!(lines.len(), 3, "{conf}");
    let (user, salt_hash) = lines[0].strip_prefix("rpcauth=").unwrap().split_once(':').unwrap();
    assert_eq!(user, "admin");
    let (salt, hash) = salt_hash.split_once('$').unwrap();
    assert_eq!(salt.len(), 32);
    assert_eq!(hash, rpcauth_hash_hex(&hex::decode(salt).unwrap(), password));
    assert_eq!(lines[1], "rpcwhitelist=admin:*");
    assert_eq!(lines[2], "rpcwhitelistdefault=0");

    let admin = store.verify("admin", password).unwrap();
    assert!(admin.is_admin());
    for p in Permission::ALL {
        store.check(&admin, *p).unwrap();
    }

    // A second start reads the same files and changes nothing.
    let again = AuthStore::open(&cfg).unwrap();
    again.verify("admin", password).unwrap();
    assert_eq!(std::fs::read_to_string(&cfg.cookie_file_path).unwrap(), cookie);
    assert_eq!(std::fs::read_to_string(&cfg.auth_config_file_path).unwrap(), conf);
}

#[test]
fn cookie_content_seeds_the_cookie_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        cookie_content: Some(SecretString::from("admin:s3cret".to_owned())),
        ..config(dir.path())
    };
    let store = AuthStore::open(&cfg).unwrap();
    assert_eq!(std::fs::read_to_string(&cfg.cookie_file_path).unwrap(), "admin:s3cret");
    assert_eq!(mode(&cfg.cookie_file_path), 0o600);
    let admin = store.verify("admin", "s3cret").unwrap();
    store.check(&admin, Permission::SystemConfig).unwrap();
}

#[test]
fn existing_cookie_without_proxy_conf_adds_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(&cfg.cookie_file_path, "admin:from-file\n").unwrap();
    let store = AuthStore::open(&cfg).unwrap();
    store.verify("admin", "from-file").unwrap();
    assert_eq!(std::fs::read_to_string(&cfg.cookie_file_path).unwrap(), "admin:from-file\n");

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(&cfg.cookie_file_path, "no-colon\n").unwrap();
    assert!(matches!(AuthStore::open(&cfg), Err(AuthError::BadCookie { .. })));
}

#[test]
fn loose_modes_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.conf");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(loose_mode(&path), Some(0o644));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(loose_mode(&path), None);
}

#[test]
fn verify_good_and_bad_passwords_and_unknown_users() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &format!("{}\n", rpcauth_line("bob", &[1; 16], "right")));
    assert_eq!(store.verify("bob", "right").unwrap().user(), "bob");
    assert!(matches!(store.verify("bob", "wrong"), Err(AuthError::BadCredentials)));
    assert!(matches!(store.verify("bob", ""), Err(AuthError::BadCredentials)));
    assert!(matches!(store.verify("nobody", "right"), Err(AuthError::BadCredentials)));
}

#[test]
fn whitelist_default_applies_to_users_without_a_whitelist() {
    for (default, allowed) in [("0", false), ("1", true)] {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "{}\n{}\nrpcwhitelist=bob:get_bids\nrpcwhitelistdefault={default}\n",
            rpcauth_line("bob", &[1; 16], "pw"),
            rpcauth_line("carol", &[2; 16], "pw"),
        );
        let store = store_with(dir.path(), &conf);
        let bob = store.verify("bob", "pw").unwrap();
        let carol = store.verify("carol", "pw").unwrap();
        // Bob's own whitelist wins over the default either way.
        store.check(&bob, Permission::GetBids).unwrap();
        assert!(matches!(
            store.check(&bob, Permission::SendMor),
            Err(AuthError::Forbidden { permission: Permission::SendMor })
        ));
        assert_eq!(store.check(&carol, Permission::SendMor).is_ok(), allowed, "default {default}");
    }
}

#[test]
fn add_and_remove_users_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(&cfg.auth_config_file_path, "# keep me\nrpcwhitelistdefault=0\n").unwrap();
    std::fs::write(&cfg.cookie_file_path, "admin:unused\n").unwrap();
    let store = AuthStore::open(&cfg).unwrap();

    store.add_user("bob", "pw1", &[Grant::Only(Permission::GetBids)]).unwrap();
    let bob = store.verify("bob", "pw1").unwrap();
    store.check(&bob, Permission::GetBids).unwrap();
    assert!(store.check(&bob, Permission::CreateBid).is_err());
    assert_eq!(mode(&cfg.auth_config_file_path), 0o600);

    // Replacing keeps one line of each kind, in place.
    store.add_user("bob", "pw2", &[Grant::All]).unwrap();
    assert!(store.verify("bob", "pw1").is_err());
    store.check(&store.verify("bob", "pw2").unwrap(), Permission::CreateBid).unwrap();
    let conf = std::fs::read_to_string(&cfg.auth_config_file_path).unwrap();
    let kinds: Vec<&str> = conf.lines().map(|l| l.split(['=', ':']).next().unwrap()).collect();
    assert_eq!(kinds, ["# keep me", "rpcwhitelistdefault", "rpcauth", "rpcwhitelist"], "{conf}");
    assert!(conf.contains("rpcwhitelist=bob:*\n"));

    // A fresh store reads what was written.
    let reopened = AuthStore::open(&cfg).unwrap();
    reopened.verify("bob", "pw2").unwrap();

    store.remove_user("bob").unwrap();
    assert!(store.verify("bob", "pw2").is_err());
    assert!(store.check(&bob, Permission::GetBids).is_err(), "a removed user keeps no rights");
    let conf = std::fs::read_to_string(&cfg.auth_config_file_path).unwrap();
    assert_eq!(conf, "# keep me\nrpcwhitelistdefault=0\n");
    assert!(matches!(store.remove_user("bob"), Err(AuthError::UnknownUser(_))));
    assert!(matches!(store.remove_user("admin"), Err(AuthError::AdminRemoval)));

    assert!(matches!(store.add_user("a:b", "pw", &[]), Err(AuthError::InvalidUsername(_))));
    assert!(matches!(store.add_user("", "pw", &[]), Err(AuthError::InvalidUsername(_))));
    assert!(matches!(store.add_user("bob", "", &[]), Err(AuthError::InvalidPassword(_))));
    assert!(matches!(store.add_user("bob", "a\nb", &[]), Err(AuthError::InvalidPassword(_))));
}

#[test]
fn updating_admin_rewrites_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let store = AuthStore::open(&cfg).unwrap();
    store.add_user("admin", "new-password", &[Grant::All]).unwrap();
    assert_eq!(std::fs::read_to_string(&cfg.cookie_file_path).unwrap(), "admin:new-password\n");
    assert_eq!(mode(&cfg.cookie_file_path), 0o600);
    store.verify("admin", "new-password").unwrap();
}

#[test]
fn auth_config_from_env() {
    let cfg = AuthConfig::from_env(&env(&[])).unwrap();
    assert_eq!(cfg.auth_config_file_path, PathBuf::from("./proxy.conf"));
    assert_eq!(cfg.cookie_file_path, PathBuf::from("./.cookie"));
    assert!(cfg.cookie_content.is_none());

    let cfg = AuthConfig::from_env(&env(&[
        ("AUTH_CONFIG_FILE_PATH", "conf/proxy.conf"),
        ("COOKIE_FILE_PATH", "conf/.cookie"),
        ("COOKIE_CONTENT", "admin:pw\n"),
    ]))
    .unwrap();
    assert_eq!(cfg.auth_config_file_path, PathBuf::from("conf/proxy.conf"));
    assert_eq!(cfg.cookie_content.as_ref().map(|c| c.expose_secret().to_owned()).unwrap(), "admin:pw\n");

    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("COOKIE_CONTENT", "bob:pw")], "COOKIE_CONTENT"),
        (&[("COOKIE_CONTENT", "admin:")], "COOKIE_CONTENT"),
        (&[("COOKIE_CONTENT", "admin:a\u{7}b")], "COOKIE_CONTENT"),
        (&[("AUTH_CONFIG_FILE_PATH", "conf/")], "AUTH_CONFIG_FILE_PATH"),
        (&[("COOKIE_FILE_PATH", "./proxy.conf")], "COOKIE_FILE_PATH"),
    ];
    for (pairs, var) in cases {
        let err = AuthConfig::from_env(&env(pairs)).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(var), "{pairs:?}: {message}");
        assert!(!message.contains("pw"), "the password never appears: {message}");
    }
}

// ----------------------------------------------------------------------------------------------------
// Through a router
// ----------------------------------------------------------------------------------------------------

fn router(store: &AuthStore) -> Router {
    Router::new()
        .route("/blockchain/bids", get(|p: Principal| async move { format!("hello {}", p.user()) }))
        .route_layer(require(store, Permission::GetBids))
        .route("/healthcheck", get(|| async { "open" }))
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

async fn call(app: Router, path: &str, authorization: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::builder().uri(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let www = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, www, String::from_utf8(body.to_vec()).unwrap())
}

fn router_store(dir: &Path) -> AuthStore {
    let conf = format!(
        "{}\nrpcwhitelist=reader:get_bids\n{}\nrpcwhitelist=writer:create_bid\n",
        rpcauth_line("reader", &[3; 16], "rpw"),
        rpcauth_line("writer", &[4; 16], "wpw"),
    );
    store_with(dir, &conf)
}

#[tokio::test]
async fn missing_or_wrong_credentials_answer_401() {
    let dir = tempfile::tempdir().unwrap();
    let store = router_store(dir.path());
    let cases = [
        (None, r#"{"error":"no basic auth provided"}"#),
        (Some("Bearer abc".to_owned()), r#"{"error":"invalid basic auth provided"}"#),
        (Some("Basic !!!".to_owned()), r#"{"error":"invalid basic auth provided"}"#),
        (Some(basic("reader", "")), r#"{"error":"invalid basic auth provided"}"#),
        (Some(basic("reader", "nope")), r#"{"error":"invalid username or password"}"#),
        (Some(basic("nobody", "rpw")), r#"{"error":"invalid username or password"}"#),
    ];
    for (authorization, expected) in cases {
        let (status, www, body) = call(router(&store), "/blockchain/bids", authorization.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(www.as_deref(), Some(r#"Basic realm="proxy-router""#));
        assert_eq!(body, expected, "{authorization:?}");
    }
}

#[tokio::test]
async fn whitelist_without_the_permission_answers_403() {
    let dir = tempfile::tempdir().unwrap();
    let store = router_store(dir.path());
    let (status, www, body) = call(router(&store), "/blockchain/bids", Some(&basic("writer", "wpw"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(www, None);
    assert_eq!(body, r#"{"error":"method not allowed"}"#);
}

#[tokio::test]
async fn granted_permission_reaches_the_handler_with_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let store = router_store(dir.path());
    let (status, _, body) = call(router(&store), "/blockchain/bids", Some(&basic("reader", "rpw"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "hello reader");

    // Granting through add_user takes effect on the next request.
    store.add_user("writer", "wpw", &[Grant::Only(Permission::GetBids)]).unwrap();
    let (status, _, body) = call(router(&store), "/blockchain/bids", Some(&basic("writer", "wpw"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello writer"));

    // Open routes need nothing.
    let (status, _, body) = call(router(&store), "/healthcheck", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "open"));
}
