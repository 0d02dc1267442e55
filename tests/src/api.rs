//! The HTTP API on a real chain: anvil with the deployed marketplace, a real SQLite store kept in step by
//! a real indexer, auth files with an admin, and the whole `proxy_router::api::router` driven through
//! `tower::ServiceExt::oneshot` with Basic credentials.

use std::collections::HashMap;

use alloy::primitives::Address;
use anyhow::Context;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use proxy_router::api::auth::{AuthConfig, Grant};
use proxy_router::api::{router, ApiState, AuthStore, ChainAccess, ConfigResponse, Permission};
use proxy_router::chain::{Signer, WalletSlot, WalletSource};
use proxy_router::config::Config;
use proxy_router::index::Indexer;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::chain::{wallet, ChainFixture};
use crate::index::{catch_up, indexer, TempStore};

/// The admin's password.
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The admin's credentials (whitelist `*`).
pub const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
/// A user that may only read providers, models, bids and sessions.
pub const READER: (&str, &str) = ("reader", "reader-secret");

/// A chain, a store with its indexer, auth files and an API state signing with one anvil account.
pub struct ApiFixture {
    /// anvil with the marketplace.
    pub chain: ChainFixture,
    /// The store the API reads (and its directory, which also holds the auth files).
    pub store: TempStore,
    /// Keeps the store in step with the chain ([`ApiFixture::sync`]).
    pub indexer: Indexer,
    /// The state the router is built from.
    pub state: ApiState,
    /// The wallet the API signs with.
    pub address: Address,
}

/// A response's status, headers and body text.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (fails with the body when it is not).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {} {}", self.status, self.body))
    }

    /// Fails unless the status is `expected`, showing the body.
    pub fn expect(self, expected: u16) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.status.as_u16() == expected,
            "expected {expected}, got {} {}",
            self.status,
            self.body
        );
        Ok(self)
    }
}

impl ApiFixture {
    /// Starts anvil, deploys, and builds a state signing with anvil account `account`.
    pub async fn start(account: u32) -> anyhow::Result<Self> {
        let chain = ChainFixture::start().await?;
        Self::on(chain, account).await
    }

    /// A fixture on an existing chain, signing with anvil account `account`.
    pub async fn on(chain: ChainFixture, account: u32) -> anyhow::Result<Self> {
        let store = TempStore::new().await?;
        let indexer = indexer(&chain, &store.store, 0, 1000).await?;
        let rpc = chain.rpc().await?;
        let signer_wallet = wallet(account)?;
        let address = signer_wallet.address();
        let sender = proxy_router::chain::TxSender::new(rpc.clone(), signer_wallet, &chain.config);
        let config = node_config(&chain, store.dir.path())?;
        let auth = auth_store(store.dir.path())?;
        let (_status, receiver) = watch::channel(Default::default());
        let state =
            ApiState::new(store.store.clone(), receiver, ConfigResponse::new(&config, Some(address)), auth)
                .with_chain(ChainAccess::new(rpc, &chain.config))
                .with_wallet(WalletSlot::with(Signer::new(sender, WalletSource::Config)));
        Ok(Self { chain, store, indexer, state, address })
    }

    /// Indexes the chain up to its head, so reads see every mined write.
    pub async fn sync(&mut self) -> anyhow::Result<()> {
        catch_up(&mut self.indexer).await?;
        Ok(())
    }

    /// `method uri` as the admin with an optional JSON body.
    pub async fn call(&self, method: Method, uri: &str, json: Option<&str>) -> anyhow::Result<Answer> {
        self.call_as(Some(ADMIN), method, uri, json).await
    }

    /// `method uri` with optional credentials and JSON body.
    pub async fn call_as(
        &self,
        creds: Option<(&str, &str)>,
        method: Method,
        uri: &str,
        json: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some((user, password)) = creds {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            builder = builder.header("authorization", format!("Basic {token}"));
        }
        let request = match json {
            Some(json) => {
                builder.header("content-type", "application/json").body(Body::from(json.to_owned()))?
            }
            None => builder.body(Body::empty())?,
        };
        let response = router(self.state.clone()).oneshot(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
    }
}

/// A node configuration for `chain` with storage in `dir` (no wallet: the fixture sets its own).
pub fn node_config(chain: &ChainFixture, dir: &std::path::Path) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = [
        ("ETH_NODE_ADDRESS", chain.anvil.endpoint()),
        ("ETH_NODE_CHAIN_ID", chain.config.chain_id.to_string()),
        ("DIAMOND_CONTRACT_ADDRESS", chain.deployment.diamond.to_string()),
        ("MOR_TOKEN_ADDRESS", chain.deployment.mor_token.to_string()),
        ("PROXY_STORAGE_PATH", dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Config::load(Vec::<String>::new(), &env)?)
}

/// Auth files in `dir` with the admin and [`READER`].
pub fn auth_store(dir: &std::path::Path) -> anyhow::Result<AuthStore> {
    let config = AuthConfig {
        auth_config_file_path: dir.join("proxy.conf"),
        cookie_file_path: dir.join(".cookie"),
        cookie_content: Some(format!("admin:{ADMIN_PASSWORD}").into()),
    };
    let auth = AuthStore::open(&config)?;
    let grants =
        [Permission::GetProviders, Permission::GetModels, Permission::GetBids, Permission::GetSessions]
            .map(Grant::Only);
    auth.add_user(READER.0, READER.1, &grants)?;
    Ok(auth)
}
