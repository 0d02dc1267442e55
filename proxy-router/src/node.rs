//! The composition root: builds the node's shared parts from a validated [`Config`] and supervises its
//! background tasks until cancelled.
//!
//! Start-up, in order (any failure is returned before anything runs): the chain checks
//! ([`chain::startup::verify`]), the store, the API's auth files (`proxy.conf` and the admin `.cookie`,
//! created on first start), the wallet (from the configuration, else the key file the API writes), the
//! RPC URLs (the list set through the API, else the configured one), the indexer (over a WebSocket
//! new-heads subscription when configured, polling otherwise), the OpenAI gateway bound on
//! `GATEWAY_ADDRESS` (unless turned off), the HTTP API bound on `WEB_ADDRESS`, and, when a wallet is
//! set, the provider's MOR-RPC listener on `PROXY_ADDRESS`. The models config and the
//! consumer's `rating-config.json` are loaded and validated first of all (a bad entry stops start-up
//! naming it). Then the indexer, the HTTP server, the gateway's server and its sweeper and usage writer
//! ([`Gateway::run`]), the provider server and the consumer's background work (session recovery, then
//! the expiry sweeper, [`Consumer::run`]) run until `cancel` fires or one of them stops; the others
//! are then stopped too.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use crate::api::auth::{AuthConfig, AuthError, AuthStore};
use crate::api::{self, stored, ApiLimits, ApiState, ChainAccess, ConfigResponse};
use crate::chain::{self, Rpc, Signer, TxSender, Wallet, WalletSlot, WalletSource};
use crate::config::{ChainConfig, Config};
use crate::consumer::{Consumer, ConsumerError, ConsumerSettings};
use crate::gateway::{self, Gateway, GatewayError, GatewaySettings};
use crate::index::{IndexError, Indexer, IndexerOptions};
use crate::provider::{
    BackendClient, BackendError, BackendTimeouts, Models, ModelsConfigError, Provider, ProviderError,
    ProviderOptions, ProviderServer,
};
use crate::store::{Store, StoreError};

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The chain could not be reached or failed a start-up check (wrong chain id, no code, missing
    /// selectors).
    #[error(transparent)]
    Chain(#[from] chain::ChainError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The indexer could not be set up.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A file the API keeps (the wallet key set at runtime, the RPC URLs) could not be read.
    #[error(transparent)]
    Stored(#[from] crate::api::stored::StoredFileError),
    /// The consumer role's configuration is invalid (`RATING_CONFIG_PATH`).
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// `models-config.json` (or `MODELS_CONFIG_CONTENT`) is invalid; the error names the entry.
    #[error(transparent)]
    Models(#[from] ModelsConfigError),
    /// The provider could not start (its listener on `PROXY_ADDRESS`, its backend client).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The HTTP client for the local models could not be built.
    #[error("local models: {0}")]
    Backend(#[from] BackendError),
    /// The API's auth files could not be read or created.
    #[error("API auth: {0}")]
    Auth(#[from] AuthError),
    /// The HTTP API could not listen on `WEB_ADDRESS`, or its server failed.
    #[error("HTTP API on {address} (WEB_ADDRESS): {source}")]
    Http {
        /// The address.
        address: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The OpenAI gateway's state could not be loaded.
    #[error("OpenAI gateway: {0}")]
    Gateway(#[from] GatewayError),
    /// The OpenAI gateway could not listen on `GATEWAY_ADDRESS`, or its server failed.
    #[error("OpenAI gateway on {address} (GATEWAY_ADDRESS): {source}")]
    GatewayHttp {
        /// The address.
        address: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// A background task panicked.
    #[error("the {task} task stopped unexpectedly: {reason}")]
    TaskFailed {
        /// The task's name.
        task: &'static str,
        /// The panic or cancellation message.
        reason: String,
    },
}

/// The indexer's options from the configuration.
pub fn indexer_options(config: &Config) -> IndexerOptions {
    IndexerOptions {
        chain_id: config.chain.chain_id,
        diamond: config.chain.diamond,
        token: config.chain.mor_token,
        start_block: config.indexer.start_block,
        confirmations: config.indexer.confirmations,
        block_range: config.indexer.block_range,
        polling_interval: config.chain.polling_interval,
        max_backoff: config.indexer.max_backoff,
    }
}

/// The API's request bounds for `config`: a write may wait for two receipts (the allowance, then the
/// call), each bounded by `TX_RECEIPT_TIMEOUT`, plus RPC round trips; so the request timeout is twice
/// the receipt timeout plus four RPC timeouts; a chat waits for a provider's first frame
/// (`CNODE_PNODE_TIMEOUT`), twice with a failover. A chat body may be as large as a provider accepts
/// (`PROXY_MAX_PROMPT_BYTES`), and never less than the default.
pub fn api_limits(config: &Config) -> ApiLimits {
    let chain = &config.chain;
    let defaults = ApiLimits::default();
    let request_timeout = (chain.tx_receipt_timeout * 2 + chain.rpc_timeout * 4)
        .max(config.consumer.pnode_timeout * 2)
        .max(defaults.request_timeout);
    ApiLimits { request_timeout, body_limit: defaults.body_limit.max(config.provider.max_prompt_bytes) }
}

/// The gateway's request bounds: the API's body limit; time for up to
/// [`gateway::sessions::MAX_ATTEMPTS`] sessions to be opened (allowance and `openSession` receipts,
/// RPC round trips, the provider's first frame) within one request.
pub fn gateway_limits(config: &Config) -> gateway::http::Limits {
    let chain = &config.chain;
    let api = api_limits(config);
    let per_attempt = chain.tx_receipt_timeout * 2 + chain.rpc_timeout * 4 + config.consumer.pnode_timeout;
    let attempts = u32::try_from(gateway::sessions::MAX_ATTEMPTS).unwrap_or(u32::MAX);
    gateway::http::Limits {
        body_limit: api.body_limit,
        request_timeout: (per_attempt * attempts).max(api.request_timeout),
    }
}

/// Runs the node until `cancel` fires. Start-up problems are returned before anything runs.
pub async fn run(config: Config, cancel: CancellationToken) -> Result<(), NodeError> {
    let consumer_settings = ConsumerSettings::from_config(&config)?;
    let models = Models::load(&config.provider)?;
    let data_dir = &config.store.storage_path;
    // RPC URLs set through `POST /config/ethNode` replace the configured ones until deleted.
    let rpc = match stored::load_eth_nodes(data_dir)? {
        Some(urls) => {
            tracing::info!(count = urls.len(), "using the RPC URLs set through the API");
            Rpc::connect(&ChainConfig { rpc_urls: urls, ..config.chain.clone() }).await?
        }
        None => Rpc::connect(&config.chain).await?,
    };
    let report = chain::startup::verify(&rpc, &config.chain).await?;
    tracing::info!(?report, "start-up checks passed");

    let store = Store::from_config(&config.store).await?;
    let auth = AuthStore::open(&AuthConfig::from_web(&config.web)?)?;
    // The configured key wins; otherwise a key set through `POST /wallet/…` is used.
    let wallet = WalletSlot::default();
    let key = match &config.wallet.key {
        Some(key) => Some((key.clone(), WalletSource::Config)),
        None => stored::load_wallet(data_dir)?.map(|key| (key, WalletSource::Stored)),
    };
    if let Some((key, source)) = key {
        let sender = TxSender::new(rpc.clone(), Wallet::from_key(&key)?, &config.chain);
        wallet.set(Signer::new(sender, source));
    }

    let mut indexer = Indexer::new(rpc.provider().clone(), store.clone(), indexer_options(&config)).await?;
    if config.chain.use_subscriptions {
        match rpc.subscribe_new_heads().await? {
            Some(heads) => indexer = indexer.with_new_heads(heads),
            None => tracing::warn!("no WebSocket endpoint answered: the indexer polls for new heads"),
        }
    }

    let address = config.web.address;
    let listener =
        tokio::net::TcpListener::bind(address).await.map_err(|source| NodeError::Http { address, source })?;
    let bound = listener.local_addr().map_err(|source| NodeError::Http { address, source })?;
    // A provider signs approvals, chunks and reports: it serves only when a wallet is set at start
    // (a wallet replaced later through the API is used from then on).
    let provider_server = match wallet.get() {
        Some(_) => {
            let provider = Provider::new(
                ProviderOptions::from_config(&config),
                store.clone(),
                rpc.clone(),
                wallet.clone(),
                models.clone(),
            )?;
            let server = ProviderServer::bind(provider).await?;
            let proxy = server.local_addr()?;
            tracing::info!(%proxy, "MOR-RPC provider listening");
            println!("proxy-router: MOR-RPC listening on {proxy}");
            Some(server)
        }
        None => {
            tracing::warn!("no wallet: the provider's MOR-RPC server (PROXY_ADDRESS) is not started");
            None
        }
    };

    let wallet_address = wallet.get().map(|s| s.address());
    let consumer = Consumer::new(store.clone(), rpc.clone(), wallet.clone(), consumer_settings);
    let gateway = match config.gateway.address {
        Some(address) => {
            let gateway = Gateway::new(
                store.clone(),
                consumer.clone(),
                indexer.status(),
                GatewaySettings::from_config(&config.gateway),
                crate::chats::ChatLog::new(store.clone(), config.consumer.store_chat_context),
            )
            .await?;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| NodeError::GatewayHttp { address, source })?;
            let bound = listener.local_addr().map_err(|source| NodeError::GatewayHttp { address, source })?;
            // Printed before the HTTP API's line, which scripts wait for.
            tracing::info!(%bound, "OpenAI gateway listening on http://{bound}/v1");
            println!("proxy-router: OpenAI gateway listening on http://{bound}");
            Some((gateway, listener, bound))
        }
        None => {
            tracing::info!("the OpenAI gateway is off (GATEWAY_ADDRESS is empty)");
            None
        }
    };
    let state = ApiState {
        limits: api_limits(&config),
        ..ApiState::new(store, indexer.status(), ConfigResponse::new(&config, wallet_address), auth)
    }
    .with_chain(ChainAccess::new(rpc, &config.chain))
    .with_wallet(wallet)
    .with_consumer(consumer.clone())
    .with_chat_history(config.consumer.store_chat_context)
    .with_local_models(api::local::LocalModels::new(
        models,
        BackendClient::new(BackendTimeouts::for_llm_timeout(config.provider.llm_timeout))?,
    ));

    let state = match &gateway {
        Some((gateway, _, _)) => state.with_gateway(gateway.clone()),
        None => state,
    };

    let consumer_task = tokio::spawn(consumer.run(cancel.clone()));
    let gateway_limits = gateway_limits(&config);
    let gateway_cancel = cancel.clone();
    let gateway_task = tokio::spawn(async move {
        let Some((gateway, listener, bound)) = gateway else { return Ok(()) };
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let background = gateway.clone().run(gateway_cancel.clone());
        let server =
            axum::serve(listener, gateway::http::router(gateway, gateway_limits).into_make_service())
                .with_graceful_shutdown(gateway_cancel.clone().cancelled_owned());
        let (served, ()) = tokio::join!(
            async {
                let served = server.await;
                // The background work stops with the server (its writer drains first).
                gateway_cancel.cancel();
                served
            },
            background
        );
        served.map_err(|source| NodeError::GatewayHttp { address: bound, source })
    });
    let indexer_task = tokio::spawn(indexer.run(cancel.clone()));
    let shutdown = cancel.clone();
    let http_task = tokio::spawn(async move {
        // Streamed answers are many small writes: without TCP_NODELAY each one after the first waits for
        // the client's (delayed) ACK of the previous one, up to 40 ms.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // `into_make_service`: every connection gets a clone of the finished router (an `Arc`).
        // Serving the `Router` itself rebuilds its whole route table for each connection (axum's
        // `with_state(())` per accepted stream): about 90 KiB per open connection, and slower accepts.
        axum::serve(listener, api::router(state).into_make_service())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    // Operators and scripts read this line to find the API (WEB_ADDRESS may use port 0).
    tracing::info!(%bound, "HTTP API listening on http://{bound} (Swagger UI at /swagger/index.html)");
    println!("proxy-router: HTTP API listening on http://{bound}");

    let provider_cancel = cancel.clone();
    let provider_task = tokio::spawn(async move {
        if let Some(server) = provider_server {
            server.run(provider_cancel.clone()).await;
            // The server only returns when cancelled.
            provider_cancel.cancel();
        }
    });

    let (indexer_done, http_done, provider_done, consumer_done, gateway_done) = tokio::join!(
        async {
            let result = indexer_task.await;
            cancel.cancel();
            result
        },
        async {
            let result = http_task.await;
            cancel.cancel();
            result
        },
        async {
            let result = provider_task.await;
            if result.is_err() {
                cancel.cancel();
            }
            result
        },
        async {
            let result = consumer_task.await;
            cancel.cancel();
            result
        },
        async {
            let result = gateway_task.await;
            cancel.cancel();
            result
        }
    );
    gateway_done.map_err(|e| NodeError::TaskFailed { task: "gateway", reason: e.to_string() })??;
    consumer_done.map_err(|e| NodeError::TaskFailed { task: "consumer", reason: e.to_string() })?;
    indexer_done.map_err(|e| NodeError::TaskFailed { task: "indexer", reason: e.to_string() })?;
    provider_done.map_err(|e| NodeError::TaskFailed { task: "provider", reason: e.to_string() })?;
    http_done
        .map_err(|e| NodeError::TaskFailed { task: "http", reason: e.to_string() })?
        .map_err(|source| NodeError::Http { address: bound, source })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn api_limits_fit_a_provider_sized_prompt_and_a_failover() {
        let mut config = crate::api::test_support::config(std::path::Path::new("unused"));
        let limits = api_limits(&config);
        assert_eq!(limits.body_limit, config.provider.max_prompt_bytes);
        assert!(limits.request_timeout >= config.consumer.pnode_timeout * 2);

        config.provider.max_prompt_bytes = 1000;
        config.consumer.pnode_timeout = Duration::from_secs(600);
        let limits = api_limits(&config);
        assert_eq!(limits.body_limit, ApiLimits::default().body_limit, "never below the default");
        assert_eq!(limits.request_timeout, Duration::from_secs(1200));
    }
}
