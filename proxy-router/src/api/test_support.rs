//! What the API's `oneshot` tests share: a real SQLite store and `proxy.conf`/`.cookie` in a temporary
//! directory, an admin (`admin:ADMIN_PASSWORD`, whitelist `*`), a reader limited to
//! [`READER_PERMISSIONS`], and request helpers that send Basic credentials.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

use super::auth::{AuthConfig, Grant};
use super::*;
use crate::config::Config;

/// The test wallet's key (anvil's first account).
pub const PRIVATE_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Its address, lower-case.
pub const WALLET: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
/// The admin's password (from `COOKIE_CONTENT`).
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// A user that may only read.
pub const READER: (&str, &str) = ("reader", "reader-secret");
/// What [`READER`] may do.
pub const READER_PERMISSIONS: &[Permission] =
    &[Permission::GetProviders, Permission::GetModels, Permission::GetBids, Permission::GetSessions];

/// Basic credentials of the admin.
pub const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);

/// A state over a fresh store and auth files; the directory lives as long as the fixture.
pub struct Fixture {
    /// Holds the store and the auth files.
    pub dir: tempfile::TempDir,
    /// The store the state reads.
    pub store: Store,
    /// Drives the indexer status the state sees.
    pub status: watch::Sender<IndexerStatus>,
    /// The state (no chain, no wallet: add them with `with_chain` / `with_wallet`).
    pub state: ApiState,
}

/// A validated configuration for tests, with storage in `storage`.
pub fn config(storage: &Path) -> Config {
    let env: HashMap<String, String> = [
        ("ETH_NODE_ADDRESS", "https://user:hunter2@rpc.example.com/v2/SECRETKEY,http://127.0.0.1:8545"),
        ("ETH_NODE_CHAIN_ID", "31337"),
        ("DIAMOND_CONTRACT_ADDRESS", "0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        ("MOR_TOKEN_ADDRESS", "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
        ("WALLET_PRIVATE_KEY", PRIVATE_KEY),
        ("PROXY_STORAGE_PATH", storage.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::load(Vec::<String>::new(), &env).unwrap()
}

/// Auth files in `dir` with the admin and [`READER`].
pub fn auth_store(dir: &Path) -> AuthStore {
    let config = AuthConfig {
        auth_config_file_path: dir.join("proxy.conf"),
        cookie_file_path: dir.join(".cookie"),
        cookie_content: Some(format!("admin:{ADMIN_PASSWORD}").into()),
    };
    let auth = AuthStore::open(&config).unwrap();
    let grants: Vec<Grant> = READER_PERMISSIONS.iter().map(|p| Grant::Only(*p)).collect();
    auth.add_user(READER.0, READER.1, &grants).unwrap();
    auth
}

/// A fresh fixture.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (status, receiver) = watch::channel(IndexerStatus::default());
    let config = config(dir.path());
    let wallet = config.wallet.key.as_ref().unwrap().signer().unwrap().address();
    let auth = auth_store(dir.path());
    let state = ApiState::new(store.clone(), receiver, ConfigResponse::new(&config, Some(wallet)), auth);
    Fixture { dir, store, status, state }
}

/// A response's status, headers and body text.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The body as an [`ErrorBody`], checking the content type.
    pub fn error(&self) -> ErrorBody {
        assert_eq!(self.content_type(), "application/json", "{} {}", self.status, self.body);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not an error body ({e}): {}", self.body))
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Sends `request` through `app`.
pub async fn send(app: Router, request: Request<Body>) -> Answer {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// `Authorization: Basic …` for `user:password`.
pub fn basic((user, password): (&str, &str)) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A request with optional credentials and an optional JSON body.
pub fn request(method: Method, uri: &str, creds: Option<(&str, &str)>, json: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(creds) = creds {
        builder = builder.header("authorization", basic(creds));
    }
    match json {
        Some(json) => builder.header("content-type", "application/json").body(Body::from(json.to_owned())),
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

/// `method uri` as the admin, with an optional JSON body, through the whole [`router`].
pub async fn call(state: &ApiState, method: Method, uri: &str, json: Option<&str>) -> Answer {
    send(router(state.clone()), request(method, uri, Some(ADMIN), json)).await
}
