//! A whole local marketplace for end-to-end tests of the relay: anvil with our contracts, one or more
//! providers (each a stand-in streaming backend and a real provider router process registered on chain
//! with a bid on the shared model) and a real consumer router process, all on loopback. Tests drive
//! the consumer's HTTP API with the real `curl`, as an operator would.
//!
//! Provider `i` is anvil account [`PROVIDER_ACCOUNTS`]`[i]`; the consumer is account [`CONSUMER_ACCOUNT`].
//! Provider 0 owns the model; every provider bids on it at its own price.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use anyhow::{ensure, Context};
use proxy_router::chain::allowance::Allowance;
use proxy_router::chain::bindings::Marketplace;
use serde_json::Value;
use tempfile::TempDir;

use crate::backend::Backend;
use crate::chain::{model_registration, ChainFixture, MOR};
use crate::router::{curl, router_env, CurlAnswer, RouterProcess};

/// anvil accounts of the providers, in order, and their private keys.
pub const PROVIDER_ACCOUNTS: [(u32, &str); 3] = [
    (2, "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"),
    (4, "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"),
    (5, "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"),
];
/// anvil account of the consumer and its private key.
pub const CONSUMER_ACCOUNT: (u32, &str) =
    (3, "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");
/// `user:password` of every router's admin (its `.cookie`).
pub const ADMIN: &str = "admin:e2e";
/// The model's name on chain and in the providers' models-config.
pub const MODEL_NAME: &str = "e2e-model";
/// MOR each party gets from the deployer.
pub const FUNDS: u128 = 100 * MOR;
/// How long to wait for an index to catch up.
const INDEX_WAIT: Duration = Duration::from_secs(60);

/// One provider: its backend, its router process (None once stopped) and its chain identity.
pub struct ProviderNode {
    /// The stand-in model backend it serves.
    pub backend: Backend,
    /// The running provider router (`None` after [`Market::stop_provider`]).
    pub router: Option<RouterProcess>,
    /// Its wallet address.
    pub address: Address,
    /// Its bid on the model.
    pub bid_id: B256,
    /// The price of its bid in wei per second.
    pub price: U256,
    /// Its MOR-RPC endpoint as registered on chain (`127.0.0.1:port`).
    pub endpoint: String,
    _dir: TempDir,
}

/// The marketplace.
pub struct Market {
    /// anvil and the deployed contracts.
    pub chain: ChainFixture,
    /// The providers, in the order of their prices as given to [`Market::start`].
    pub providers: Vec<ProviderNode>,
    /// The consumer router (`None` only while [`Market::restart_consumer`] runs).
    pub consumer: Option<RouterProcess>,
    /// The consumer's wallet address.
    pub consumer_address: Address,
    /// The model every provider bids on.
    pub model_id: B256,
    consumer_vars: Vec<(String, String)>,
    consumer_dir: TempDir,
}

/// A free loopback port (bound and released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn address_of(key: &str) -> anyhow::Result<Address> {
    Ok(key.parse::<alloy::signers::local::PrivateKeySigner>()?.address())
}

/// How [`Market::start_with`] sets the marketplace up; [`MarketOptions::new`] gives what
/// [`Market::start`] uses.
#[derive(Debug, Clone)]
pub struct MarketOptions {
    /// One provider per price (wei per second).
    pub prices: Vec<u64>,
    /// Variables added to (or replacing) the consumer router's.
    pub consumer_env: Vec<(String, String)>,
    /// Variables added to (or replacing) every provider router's.
    pub provider_env: Vec<(String, String)>,
    /// The chat endpoint every provider's models-config names instead of its own stand-in backend
    /// (which is still started).
    pub backend_url: Option<String>,
    /// The model's `concurrentSlots` in every provider's models-config.
    pub concurrent_slots: u32,
}

impl MarketOptions {
    /// One provider per entry of `prices`, default routers, each provider on its own stand-in backend.
    pub fn new(prices: &[u64]) -> Self {
        Self {
            prices: prices.to_vec(),
            consumer_env: Vec::new(),
            provider_env: Vec::new(),
            backend_url: None,
            concurrent_slots: 16,
        }
    }
}

impl Market {
    /// Starts a marketplace with one provider per entry of `prices` (wei per second), every provider and
    /// the consumer funded with [`FUNDS`] MOR, and waits until the consumer has indexed every bid.
    /// `consumer_env` adds or replaces the consumer router's variables.
    pub async fn start(prices: &[u64], consumer_env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut options = MarketOptions::new(prices);
        options.consumer_env = consumer_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        Self::start_with(&options).await
    }

    /// [`Market::start`] with every option.
    pub async fn start_with(options: &MarketOptions) -> anyhow::Result<Self> {
        let prices = &options.prices[..];
        ensure!(!prices.is_empty() && prices.len() <= PROVIDER_ACCOUNTS.len(), "1 to 3 providers");
        let chain = ChainFixture::start().await?;
        let owner = address_of(PROVIDER_ACCOUNTS[0].1)?;
        let registration = model_registration(owner, MODEL_NAME, U256::from(MOR / 10));
        let model_id = proxy_router::chain::sender::model_id(owner, registration.base_id);
        let bid_fee =
            Marketplace::new(chain.deployment.diamond, chain.provider()?).getBidFee().call().await?;

        let mut providers = Vec::new();
        for (i, price) in prices.iter().enumerate() {
            let (account, key) = PROVIDER_ACCOUNTS[i];
            let sender = chain.sender(account).await?;
            let address = sender.address();
            chain.give_mor(address, U256::from(FUNDS)).await?;
            let endpoint = format!("127.0.0.1:{}", free_port()?);
            let allowance = Allowance::new(sender.clone());
            let stake = U256::from(MOR / 5);
            allowance.spend(stake, || sender.provider_register(address, stake, &endpoint)).await?;
            if i == 0 {
                allowance.spend(registration.stake, || sender.model_register(&registration)).await?;
            }
            let price = U256::from(*price);
            let (bid_id, _) =
                allowance.spend(bid_fee, || sender.post_model_bid(address, model_id, price)).await?;

            let backend = Backend::start().await?;
            let dir = tempfile::tempdir()?;
            let models_config = serde_json::json!({"models": [{
                "modelId": format!("{model_id:#x}"),
                "modelName": MODEL_NAME,
                "apiType": "openai",
                "apiUrl": options.backend_url.clone().unwrap_or_else(|| backend.chat_url()),
                "concurrentSlots": options.concurrent_slots,
                "capacityPolicy": "simple",
            }]});
            let mut provider_vars = vec![
                ("WALLET_PRIVATE_KEY", key.to_owned()),
                ("PROXY_ADDRESS", endpoint.clone()),
                ("MODELS_CONFIG_CONTENT", models_config.to_string()),
                ("COOKIE_CONTENT", ADMIN.to_owned()),
            ];
            provider_vars.extend(options.provider_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
            let vars = router_env(&chain, dir.path(), &provider_vars);
            let router = RouterProcess::start(&vars, dir.path())?;
            providers.push(ProviderNode {
                backend,
                router: Some(router),
                address,
                bid_id,
                price,
                endpoint,
                _dir: dir,
            });
        }

        let (_, consumer_key) = CONSUMER_ACCOUNT;
        let consumer_address = address_of(consumer_key)?;
        chain.give_mor(consumer_address, U256::from(FUNDS)).await?;
        let consumer_dir = tempfile::tempdir()?;
        let mut overrides =
            vec![("WALLET_PRIVATE_KEY", consumer_key.to_owned()), ("COOKIE_CONTENT", ADMIN.to_owned())];
        overrides.extend(options.consumer_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let consumer_vars = router_env(&chain, consumer_dir.path(), &overrides);
        let consumer = RouterProcess::start(&consumer_vars, consumer_dir.path())?;
        let market = Self {
            chain,
            providers,
            consumer: Some(consumer),
            consumer_address,
            model_id,
            consumer_vars,
            consumer_dir,
        };
        market.wait_for_bids(prices.len())?;
        Ok(market)
    }

    /// The running consumer router.
    pub fn consumer(&self) -> anyhow::Result<&RouterProcess> {
        self.consumer.as_ref().context("the consumer router is not running")
    }

    /// The consumer's data directory (its SQLite store and `.cookie`).
    pub fn consumer_dir(&self) -> &Path {
        self.consumer_dir.path()
    }

    /// Stops the consumer router and starts it again on the same data directory and variables.
    pub fn restart_consumer(&mut self) -> anyhow::Result<()> {
        drop(self.consumer.take());
        self.consumer = Some(RouterProcess::start(&self.consumer_vars, self.consumer_dir.path())?);
        Ok(())
    }

    /// Restarts the consumer router the way an operator does (SIGTERM, then start again): it stops in
    /// order and writes what it has queued. Fails unless it exits with status 0.
    pub fn restart_consumer_gracefully(&mut self) -> anyhow::Result<()> {
        if let Some(mut consumer) = self.consumer.take() {
            let status = consumer.terminate(Duration::from_secs(60))?;
            anyhow::ensure!(status.success(), "the consumer exited with {status} on SIGTERM");
        }
        self.consumer = Some(RouterProcess::start(&self.consumer_vars, self.consumer_dir.path())?);
        Ok(())
    }

    /// Kills provider `i`'s router process: its MOR-RPC endpoint stops answering.
    pub fn stop_provider(&mut self, i: usize) {
        drop(self.providers[i].router.take());
    }

    /// `GET path` on the consumer with the admin's credentials.
    pub fn get(&self, path: &str) -> anyhow::Result<CurlAnswer> {
        curl(&["-u", ADMIN, &self.consumer()?.url(path)])
    }

    /// `POST path` with a JSON body on the consumer with the admin's credentials.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<CurlAnswer> {
        self.post_with(path, body, &[])
    }

    /// `POST path` with a JSON body and extra `name: value` headers.
    pub fn post_with(&self, path: &str, body: &Value, headers: &[&str]) -> anyhow::Result<CurlAnswer> {
        let body = body.to_string();
        let url = self.consumer()?.url(path);
        let mut args = vec!["-u", ADMIN, "-X", "POST", "-H", "content-type: application/json"];
        for header in headers {
            args.extend(["-H", header]);
        }
        args.extend(["-d", &body, &url]);
        curl(&args)
    }

    /// `POST /v1/chat/completions` on `session` (as the `session_id` header).
    pub fn chat(&self, session: &str, body: &Value) -> anyhow::Result<CurlAnswer> {
        self.post_with("/v1/chat/completions", body, &[&format!("session_id: {session}")])
    }

    /// Opens a session by model for `duration` seconds; `extra` fields are added to the request
    /// (`failover`, `directPayment`). Answers the raw reply.
    pub fn open_by_model(&self, duration: u64, extra: &Value) -> anyhow::Result<CurlAnswer> {
        let mut body = serde_json::json!({ "sessionDuration": duration });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.post(&format!("/blockchain/models/{:#x}/session", self.model_id), &body)
    }

    /// Opens a session by model and answers its id (fails unless the reply is 200 with a `sessionID`).
    pub fn open_session(&self, duration: u64) -> anyhow::Result<String> {
        let answer = self.open_by_model(duration, &serde_json::json!({}))?;
        ensure!(answer.status == 200, "open by model answered {}: {}", answer.status, answer.body);
        Ok(answer.json()?["sessionID"].as_str().context("no sessionID")?.to_owned())
    }

    /// The consumer's view of a session (`GET /blockchain/sessions/{id}`'s `session`).
    pub fn session(&self, id: &str) -> anyhow::Result<Value> {
        let answer = self.get(&format!("/blockchain/sessions/{id}"))?;
        ensure!(answer.status == 200, "session {id}: {} {}", answer.status, answer.body);
        Ok(answer.json()?["session"].clone())
    }

    /// Waits until the consumer's index shows `id` closed, and answers the session.
    pub fn wait_closed(&self, id: &str) -> anyhow::Result<Value> {
        self.wait_until(|| {
            let session = self.session(id)?;
            Ok(session["ClosedAt"].as_u64().is_some_and(|t| t > 0).then_some(session))
        })
        .with_context(|| format!("session {id} never closed"))
    }

    /// Waits until the consumer has indexed `count` active bids on the model.
    pub fn wait_for_bids(&self, count: usize) -> anyhow::Result<()> {
        let path = format!("/blockchain/models/{:#x}/bids/active", self.model_id);
        self.wait_until(|| {
            let answer = self.get(&path)?;
            let seen = answer.json().ok().and_then(|v| v["bids"].as_array().map(Vec::len)).unwrap_or(0);
            Ok((seen >= count).then_some(()))
        })
        .context("the consumer never indexed every bid")
    }

    /// Polls `check` every 100 ms until it answers `Some` (up to 60 s).
    pub fn wait_until<T>(&self, mut check: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
        let deadline = Instant::now() + INDEX_WAIT;
        loop {
            if let Some(value) = check()? {
                return Ok(value);
            }
            ensure!(Instant::now() < deadline, "timed out after {INDEX_WAIT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
