//! The JSON-RPC client: one [`Rpc`] handle over every `ETH_NODE_ADDRESS` URL, with ordered failover.
//!
//! # Failover
//!
//! [`FailoverTransport`] is a small tower service under alloy's [`RpcClient`]. Each request goes to the
//! first *healthy* endpoint in the configured order and only moves on to the next when that one fails
//! at the transport level: connection refused, DNS or TLS failure, a non-2xx HTTP status, an
//! unparsable body, a rate-limit answer, or no answer within `ETH_NODE_RPC_TIMEOUT`. A JSON-RPC error
//! answer (a revert, "nonce too low", …) is the node's answer and is returned as is: failing it over
//! would only ask the same question twice.
//!
//! A failed endpoint is marked dead for a cooldown that doubles with each consecutive failure
//! ([`FailoverPolicy`]); while it is dead, requests skip it. After the cooldown it is tried again first,
//! so traffic returns to the preferred (first) URL as soon as it recovers. When every endpoint is dead,
//! they are all tried anyway (in order of recovery), so a node that has come back is found at once.
//!
//! Requests are never fanned out: alloy's `FallbackLayer` sends reads to several nodes in parallel
//! and ranks nodes by latency, which doubles the load on paid endpoints, mixes answers from nodes at
//! different heights and would broadcast `eth_sendRawTransaction` unless configured otherwise. Sending a
//! raw transaction to the next node after a timeout is safe: the signed bytes are identical, so the
//! second node either accepts the same hash or answers "already known", which the sender treats as
//! sent.
//!
//! # Replacing the endpoints
//!
//! [`Rpc::set_endpoints`] swaps the endpoint list of the shared transport, so every clone of the handle
//! (the indexer, the senders, the API) uses the new URLs from its next request on; requests under way
//! finish on the list they started with. [`probe_chain_id`] vets a single URL first (the API's
//! `POST /config/ethNode`).
//!
//! # Subscriptions
//!
//! With `ETH_NODE_USE_SUBSCRIPTIONS`, [`Rpc::connect`] also opens a WebSocket provider on the first ws(s)
//! URL that answers ([`Rpc::pubsub`]), for the indexer's new-head subscription. When none does, it logs
//! a warning and the node polls instead.
//!
//! URLs are only ever shown redacted ([`redact_url`]): hosted RPC providers put the API key in the path.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::pubsub::{PubSubConnect, Subscription};
use alloy::rpc::client::RpcClient;
use alloy::rpc::json_rpc::{Id, Request, RequestPacket, ResponsePacket, ResponsePayload, SerializedRequest};
use alloy::rpc::types::Header;
use alloy::transports::http::reqwest;
use alloy::transports::http::Http;
use alloy::transports::ws::WsConnect;
use alloy::transports::{BoxTransport, RpcError, TransportError, TransportErrorKind, TransportFut};
use tokio::time::Instant;
use url::Url;

use super::errors::ChainError;
use crate::config::ChainConfig;

/// How a failed endpoint is rested before it is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverPolicy {
    /// Cooldown after the first failure; doubled after each further consecutive failure.
    pub cooldown: Duration,
    /// Upper bound of the cooldown.
    pub max_cooldown: Duration,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self { cooldown: Duration::from_secs(1), max_cooldown: Duration::from_secs(60) }
    }
}

/// The health of one endpoint, for logs and the health API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The redacted URL.
    pub url: String,
    /// False while the endpoint rests after a failure.
    pub healthy: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last failure, if any since the last success.
    pub last_error: Option<String>,
    /// Requests this endpoint answered.
    pub successes: u64,
    /// Requests this endpoint failed.
    pub failures: u64,
}

/// A cheap-to-clone handle on the chain: a [`DynProvider`] for reads over the failover transport, and an
/// optional WebSocket provider for subscriptions.
#[derive(Clone)]
pub struct Rpc {
    provider: DynProvider,
    transport: FailoverTransport,
    pubsub: Option<DynProvider>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("endpoints", &self.transport.labels())
            .field("pubsub", &self.pubsub.is_some())
            .finish()
    }
}

impl Rpc {
    /// Builds the client over every URL of `config.rpc_urls` with the default [`FailoverPolicy`].
    /// Connections are made lazily; with `use_subscriptions`, a WebSocket provider is opened now.
    pub async fn connect(config: &ChainConfig) -> Result<Self, ChainError> {
        Self::connect_with(config, FailoverPolicy::default()).await
    }

    /// Like [`Rpc::connect`] with an explicit failover policy.
    pub async fn connect_with(config: &ChainConfig, policy: FailoverPolicy) -> Result<Self, ChainError> {
        let transport = FailoverTransport::new(&config.rpc_urls, config.rpc_timeout, policy)?;
        let is_local =
            config.rpc_urls.iter().all(|url| alloy::transports::utils::guess_local_url(url.as_str()));
        let client = RpcClient::new(transport.clone(), is_local);
        let provider = ProviderBuilder::new().disable_recommended_fillers().connect_client(client).erased();
        let pubsub = if config.use_subscriptions {
            connect_pubsub(&config.rpc_urls, config.rpc_timeout).await
        } else {
            None
        };
        Ok(Self { provider, transport, pubsub })
    }

    /// The provider for reads and raw requests (over the failover transport).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The WebSocket provider, when subscriptions are configured and a ws(s) URL answered.
    pub fn pubsub(&self) -> Option<&DynProvider> {
        self.pubsub.as_ref()
    }

    /// Subscribes to new block headers over the WebSocket provider; `Ok(None)` when there is none
    /// (the caller polls instead).
    pub async fn subscribe_new_heads(&self) -> Result<Option<Subscription<Header>>, ChainError> {
        let Some(pubsub) = &self.pubsub else { return Ok(None) };
        pubsub
            .subscribe_blocks()
            .await
            .map(Some)
            .map_err(|source| ChainError::Rpc { method: "eth_subscribe", source })
    }

    /// The health of every endpoint, in the configured order.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        self.transport.status()
    }

    /// Makes every clone of this handle (the indexer's provider, each wallet's sender, the API) send its
    /// next requests to `urls`, in this order, with the same timeout and failover policy. Requests under
    /// way finish where they started. The WebSocket subscription provider ([`Rpc::pubsub`]) is not
    /// replaced: it keeps following new heads on the URL it was opened on. On error nothing changes.
    pub fn set_endpoints(&self, urls: &[Url]) -> Result<(), ChainError> {
        self.transport.replace(urls)?;
        tracing::info!(endpoints = ?self.transport.labels(), "RPC endpoints replaced");
        Ok(())
    }
}

/// Opens a WebSocket provider on the first ws(s) URL that connects within `timeout`.
async fn connect_pubsub(urls: &[Url], timeout: Duration) -> Option<DynProvider> {
    let ws_urls: Vec<&Url> = urls.iter().filter(|u| matches!(u.scheme(), "ws" | "wss")).collect();
    if ws_urls.is_empty() {
        tracing::warn!(
            "ETH_NODE_USE_SUBSCRIPTIONS is set but ETH_NODE_ADDRESS has no ws(s) URL: following the chain by polling"
        );
        return None;
    }
    for url in ws_urls {
        let connect = ProviderBuilder::new().disable_recommended_fillers().connect_ws(ws_connect(url));
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(provider)) => {
                tracing::info!(url = %redact_url(url), "subscriptions over WebSocket");
                return Some(provider.erased());
            }
            Ok(Err(e)) => tracing::warn!(url = %redact_url(url), error = %e, "WebSocket connection failed"),
            Err(_) => tracing::warn!(url = %redact_url(url), ?timeout, "WebSocket connection timed out"),
        }
    }
    tracing::warn!("no WebSocket endpoint answered: following the chain by polling");
    None
}

fn ws_connect(url: &Url) -> WsConnect {
    WsConnect::new(url.as_str()).with_max_retries(3).with_retry_interval(Duration::from_secs(1))
}

/// `scheme://host[:port]`, followed by `/…` when the URL has a path or query (which may hold an API
/// key). Credentials are dropped.
pub fn redact_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if url.path().len() > 1 || url.query().is_some() { "/…" } else { "" };
    format!("{}://{host}{port}{rest}", url.scheme())
}

/// Ordered-failover transport over several endpoints (see the module docs). Cheap to clone; clones
/// share the endpoint list, which [`FailoverTransport::replace`] swaps for every clone at once.
#[derive(Clone)]
pub struct FailoverTransport {
    shared: Arc<Shared>,
}

/// The current endpoint list. A request takes the list it starts with (a cheap `Arc` clone) and keeps
/// it to the end, so a replacement never disturbs a request in flight.
struct Shared {
    current: RwLock<Arc<Failover>>,
    request_timeout: Duration,
    policy: FailoverPolicy,
}

struct Failover {
    endpoints: Vec<Endpoint>,
    request_timeout: Duration,
    policy: FailoverPolicy,
}

struct Endpoint {
    label: String,
    backend: Backend,
    health: Mutex<Health>,
}

enum Backend {
    /// A connectionless transport (HTTP, or a test double).
    Ready(BoxTransport),
    /// A WebSocket, connected on first use and reconnected after it fails.
    Ws { url: Url, connection: tokio::sync::Mutex<Option<BoxTransport>> },
}

#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    dead_until: Option<Instant>,
    last_error: Option<String>,
    successes: u64,
    failures: u64,
}

impl FailoverTransport {
    /// One endpoint per URL (http, https, ws, wss), tried in this order. Each request to one endpoint
    /// is bounded by `request_timeout`.
    pub fn new(urls: &[Url], request_timeout: Duration, policy: FailoverPolicy) -> Result<Self, ChainError> {
        let endpoints = endpoints_for(urls, request_timeout)?;
        Ok(Self::from_endpoints(endpoints, request_timeout, policy))
    }

    /// Failover over ready-made transports, e.g. test doubles that fail on purpose.
    pub fn from_transports(
        transports: Vec<(String, BoxTransport)>,
        request_timeout: Duration,
        policy: FailoverPolicy,
    ) -> Self {
        Self::from_endpoints(ready_endpoints(transports), request_timeout, policy)
    }

    fn from_endpoints(endpoints: Vec<Endpoint>, request_timeout: Duration, policy: FailoverPolicy) -> Self {
        let failover = Arc::new(Failover { endpoints, request_timeout, policy });
        Self { shared: Arc::new(Shared { current: RwLock::new(failover), request_timeout, policy }) }
    }

    /// Replaces the endpoint list of this transport and of every clone (same timeout and policy; the
    /// new endpoints start healthy). Requests already under way finish on the old list. On error the
    /// list is unchanged.
    pub fn replace(&self, urls: &[Url]) -> Result<(), ChainError> {
        let endpoints = endpoints_for(urls, self.shared.request_timeout)?;
        self.swap(endpoints);
        Ok(())
    }

    /// Like [`FailoverTransport::replace`] with ready-made transports (test doubles).
    pub fn replace_transports(&self, transports: Vec<(String, BoxTransport)>) {
        self.swap(ready_endpoints(transports));
    }

    fn swap(&self, endpoints: Vec<Endpoint>) {
        let failover = Arc::new(Failover {
            endpoints,
            request_timeout: self.shared.request_timeout,
            policy: self.shared.policy,
        });
        *self.shared.current.write().unwrap_or_else(PoisonError::into_inner) = failover;
    }

    /// The endpoint list requests go to now.
    fn current(&self) -> Arc<Failover> {
        Arc::clone(&self.shared.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The health of every endpoint in configured order.
    pub fn status(&self) -> Vec<EndpointStatus> {
        let now = Instant::now();
        self.current()
            .endpoints
            .iter()
            .map(|endpoint| {
                let health = lock(&endpoint.health);
                EndpointStatus {
                    url: endpoint.label.clone(),
                    healthy: health.dead_until.is_none_or(|until| until <= now),
                    consecutive_failures: health.consecutive_failures,
                    last_error: health.last_error.clone(),
                    successes: health.successes,
                    failures: health.failures,
                }
            })
            .collect()
    }

    fn labels(&self) -> Vec<String> {
        self.current().endpoints.iter().map(|e| e.label.clone()).collect()
    }
}

/// One endpoint per URL, refusing schemes other than http, https, ws and wss.
fn endpoints_for(urls: &[Url], request_timeout: Duration) -> Result<Vec<Endpoint>, ChainError> {
    if urls.is_empty() {
        return Err(ChainError::Endpoint { url: String::new(), reason: "no RPC URL configured".into() });
    }
    let client = reqwest::Client::builder()
        .connect_timeout(request_timeout)
        .timeout(request_timeout)
        .build()
        .map_err(|e| ChainError::Endpoint { url: String::new(), reason: format!("HTTP client: {e}") })?;
    urls.iter()
        .map(|url| {
            let backend = match url.scheme() {
                "http" | "https" => {
                    Backend::Ready(BoxTransport::new(Http::with_client(client.clone(), url.clone())))
                }
                "ws" | "wss" => Backend::Ws { url: url.clone(), connection: tokio::sync::Mutex::new(None) },
                other => {
                    return Err(ChainError::Endpoint {
                        url: redact_url(url),
                        reason: format!("unsupported scheme {other:?} (use http, https, ws or wss)"),
                    })
                }
            };
            Ok(Endpoint { label: redact_url(url), backend, health: Mutex::default() })
        })
        .collect()
}

fn ready_endpoints(transports: Vec<(String, BoxTransport)>) -> Vec<Endpoint> {
    transports
        .into_iter()
        .map(|(label, transport)| Endpoint {
            label,
            backend: Backend::Ready(transport),
            health: Mutex::default(),
        })
        .collect()
}

/// Asks `url` alone for `eth_chainId`, within `timeout` (connection included). Used to vet a URL
/// before the node switches to it; the error's reason is short and never contains the URL's path.
pub async fn probe_chain_id(url: &Url, timeout: Duration) -> Result<u64, ChainError> {
    let failed = |reason: String| ChainError::Endpoint { url: redact_url(url), reason };
    let endpoints = endpoints_for(std::slice::from_ref(url), timeout)?;
    let Some(endpoint) = endpoints.into_iter().next() else {
        return Err(failed("no endpoint".into()));
    };
    let request: SerializedRequest = Request::new("eth_chainId", Id::Number(1), ())
        .try_into()
        .map_err(|e: serde_json::Error| failed(format!("cannot serialise the request: {e}")))?;
    let response = match tokio::time::timeout(timeout, endpoint.call(RequestPacket::Single(request))).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(failed(describe_failure(&error))),
        Err(_) => return Err(failed(format!("no answer within {timeout:?}"))),
    };
    let ResponsePacket::Single(response) = response else {
        return Err(failed("answered a batch to a single request".into()));
    };
    match response.payload {
        ResponsePayload::Success(raw) => serde_json::from_str::<alloy::primitives::U64>(raw.get())
            .map(|id| id.to::<u64>())
            .map_err(|_| failed("answered eth_chainId with something that is not a chain id".into())),
        ResponsePayload::Failure(error) => {
            Err(failed(format!("answered eth_chainId with error {}: {}", error.code, error.message)))
        }
    }
}

fn lock(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    // A panic while holding this lock cannot leave the counters inconsistent in a harmful way.
    health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Failover {
    /// Healthy endpoints in configured order, then resting ones by the time they recover.
    fn order(&self, now: Instant) -> Vec<usize> {
        let mut healthy = Vec::new();
        let mut resting = Vec::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            match lock(&endpoint.health).dead_until {
                Some(until) if until > now => resting.push((until, i)),
                _ => healthy.push(i),
            }
        }
        resting.sort();
        healthy.extend(resting.into_iter().map(|(_, i)| i));
        healthy
    }

    async fn request(&self, request: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let mut failures = Vec::new();
        let mut rate_limited_answer = None;
        for index in self.order(Instant::now()) {
            let endpoint = &self.endpoints[index];
            let outcome = tokio::time::timeout(self.request_timeout, endpoint.call(request.clone())).await;
            let reason = match outcome {
                Ok(Ok(response)) if is_rate_limited(&response) => {
                    rate_limited_answer = Some(response);
                    "rate limited".to_owned()
                }
                Ok(Ok(response)) => {
                    endpoint.succeeded();
                    return Ok(response);
                }
                // Our own request could not be serialised: no endpoint will do better.
                Ok(Err(error @ RpcError::SerError(_))) => return Err(error),
                Ok(Err(error)) => {
                    endpoint.disconnect().await;
                    describe_failure(&error)
                }
                Err(_) => {
                    endpoint.disconnect().await;
                    format!("no answer within {:?}", self.request_timeout)
                }
            };
            let methods: Vec<&str> = request.method_names().take(3).collect();
            tracing::warn!(endpoint = %endpoint.label, ?methods, %reason, "RPC endpoint failed, trying the next");
            endpoint.failed(&reason, &self.policy);
            failures.push(format!("{}: {reason}", endpoint.label));
        }
        if let Some(response) = rate_limited_answer {
            return Ok(response);
        }
        Err(TransportErrorKind::custom_str(&format!(
            "all {} RPC endpoint(s) failed: {}",
            self.endpoints.len(),
            failures.join("; ")
        )))
    }
}

impl Endpoint {
    async fn call(&self, request: RequestPacket) -> Result<ResponsePacket, TransportError> {
        match &self.backend {
            Backend::Ready(transport) => {
                let mut transport = transport.clone();
                tower::Service::call(&mut transport, request).await
            }
            Backend::Ws { url, connection } => {
                let mut transport = {
                    let mut slot = connection.lock().await;
                    match slot.as_ref() {
                        Some(transport) => transport.clone(),
                        None => {
                            let frontend = ws_connect(url).into_service().await?;
                            let transport = BoxTransport::new(frontend);
                            *slot = Some(transport.clone());
                            transport
                        }
                    }
                };
                tower::Service::call(&mut transport, request).await
            }
        }
    }

    /// Drops a WebSocket connection after a failure so that the next use reconnects.
    async fn disconnect(&self) {
        if let Backend::Ws { connection, .. } = &self.backend {
            connection.lock().await.take();
        }
    }

    fn succeeded(&self) {
        let mut health = lock(&self.health);
        if health.consecutive_failures > 0 {
            tracing::info!(endpoint = %self.label, "RPC endpoint answers again");
        }
        health.consecutive_failures = 0;
        health.dead_until = None;
        health.last_error = None;
        health.successes += 1;
    }

    fn failed(&self, reason: &str, policy: &FailoverPolicy) {
        let mut health = lock(&self.health);
        health.consecutive_failures = health.consecutive_failures.saturating_add(1);
        health.failures += 1;
        let doublings = health.consecutive_failures.saturating_sub(1).min(16);
        let cooldown = policy.cooldown.saturating_mul(1 << doublings).min(policy.max_cooldown);
        health.dead_until = Some(Instant::now() + cooldown);
        health.last_error = Some(reason.to_owned());
    }
}

/// True when every response of the packet is a rate-limit error (another endpoint may answer).
fn is_rate_limited(response: &ResponsePacket) -> bool {
    let mut errors = response.iter_errors().peekable();
    if errors.peek().is_none() {
        return false;
    }
    let all_errors = match response {
        ResponsePacket::Single(_) => true,
        ResponsePacket::Batch(items) => items.iter().all(|r| r.is_error()),
    };
    all_errors && errors.all(|e| e.is_retry_err())
}

/// A short description of a transport failure, without the URL (reqwest errors embed it).
fn describe_failure(error: &TransportError) -> String {
    match error {
        RpcError::Transport(TransportErrorKind::Custom(inner)) => {
            match inner.downcast_ref::<reqwest::Error>() {
                Some(e) if e.is_connect() => "connection failed".to_owned(),
                Some(e) if e.is_timeout() => "timed out".to_owned(),
                Some(e) => {
                    // `without_url` needs ownership; rebuild the message from the error chain instead.
                    let mut message = String::from("HTTP request failed");
                    let mut source = std::error::Error::source(e);
                    while let Some(s) = source {
                        message = format!("{message}: {s}");
                        source = s.source();
                    }
                    message
                }
                None => inner.to_string(),
            }
        }
        RpcError::Transport(TransportErrorKind::HttpError(e)) => format!("HTTP status {}", e.status),
        RpcError::Transport(kind) => kind.to_string(),
        RpcError::DeserError { .. } => "unparsable response".to_owned(),
        RpcError::NullResp => "null response".to_owned(),
        other => other.to_string(),
    }
}

impl tower::Service<RequestPacket> for FailoverTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let failover = self.current();
        Box::pin(async move { failover.request(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::{Id, Request, Response, ResponsePayload, SerializedRequest};
    use serde_json::value::RawValue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A test double: answers, fails at the transport level, answers with a JSON-RPC error, or hangs.
    #[derive(Clone)]
    struct Double {
        behaviour: Arc<Mutex<Behaviour>>,
        calls: Arc<AtomicUsize>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Behaviour {
        Answer(u64),
        Refuse,
        RpcError,
        RateLimited,
        Hang,
    }

    impl Double {
        fn new(behaviour: Behaviour) -> Self {
            Self { behaviour: Arc::new(Mutex::new(behaviour)), calls: Arc::default() }
        }
        fn set(&self, behaviour: Behaviour) {
            *self.behaviour.lock().unwrap() = behaviour;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl tower::Service<RequestPacket> for Double {
        type Response = ResponsePacket;
        type Error = TransportError;
        type Future = TransportFut<'static>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: RequestPacket) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let behaviour = *self.behaviour.lock().unwrap();
            Box::pin(async move {
                let RequestPacket::Single(request) = request else { panic!("batch") };
                let id = request.id().clone();
                let payload = match behaviour {
                    Behaviour::Answer(n) => {
                        ResponsePayload::Success(RawValue::from_string(format!("\"{n:#x}\"")).unwrap())
                    }
                    Behaviour::Refuse => return Err(TransportErrorKind::custom_str("connection refused")),
                    Behaviour::RpcError => ResponsePayload::Failure(
                        serde_json::from_str(r#"{"code":3,"message":"execution reverted","data":"0x"}"#)
                            .unwrap(),
                    ),
                    Behaviour::RateLimited => ResponsePayload::Failure(
                        serde_json::from_str(r#"{"code":429,"message":"too many requests"}"#).unwrap(),
                    ),
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        unreachable!()
                    }
                };
                Ok(ResponsePacket::Single(Response { id, payload }))
            })
        }
    }

    fn request() -> RequestPacket {
        let request: SerializedRequest =
            Request::new("eth_blockNumber", Id::Number(1), ()).try_into().unwrap();
        RequestPacket::Single(request)
    }

    fn answer(response: &ResponsePacket) -> Option<String> {
        match response {
            ResponsePacket::Single(Response { payload: ResponsePayload::Success(raw), .. }) => {
                Some(raw.get().to_owned())
            }
            _ => None,
        }
    }

    const POLICY: FailoverPolicy =
        FailoverPolicy { cooldown: Duration::from_secs(10), max_cooldown: Duration::from_secs(40) };

    fn failover(doubles: &[&Double], timeout: Duration) -> FailoverTransport {
        FailoverTransport::from_transports(
            doubles
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("node{i}"), BoxTransport::new((*d).clone())))
                .collect(),
            timeout,
            POLICY,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn dead_first_endpoint_fails_over_then_rests_then_is_retried() {
        let first = Double::new(Behaviour::Refuse);
        let second = Double::new(Behaviour::Answer(2));
        let mut transport = failover(&[&first, &second], Duration::from_secs(5));

        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x2\""));
        assert_eq!((first.calls(), second.calls()), (1, 1));
        let status = transport.status();
        assert!(!status[0].healthy);
        assert_eq!(status[0].last_error.as_deref(), Some("connection refused"));
        assert!(status[1].healthy);

        // While it rests, the dead endpoint is skipped.
        tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!((first.calls(), second.calls()), (1, 2));

        // After the cooldown it is tried first again and, once it answers, traffic returns to it.
        first.set(Behaviour::Answer(1));
        tokio::time::advance(POLICY.cooldown + Duration::from_millis(1)).await;
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x1\""));
        assert_eq!((first.calls(), second.calls()), (2, 2));
        assert!(transport.status()[0].healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn cooldown_doubles_with_consecutive_failures() {
        let first = Double::new(Behaviour::Refuse);
        let second = Double::new(Behaviour::Answer(2));
        let mut transport = failover(&[&first, &second], Duration::from_secs(5));
        tower::Service::call(&mut transport, request()).await.unwrap();
        tokio::time::advance(POLICY.cooldown + Duration::from_millis(1)).await;
        tower::Service::call(&mut transport, request()).await.unwrap(); // second failure: 20 s
        assert_eq!(first.calls(), 2);
        tokio::time::advance(POLICY.cooldown + Duration::from_millis(1)).await;
        tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(first.calls(), 2, "still resting after 10 s of a 20 s cooldown");
        tokio::time::advance(POLICY.cooldown).await;
        tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(first.calls(), 3);
        assert_eq!(transport.status()[0].consecutive_failures, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_endpoint_times_out_and_fails_over() {
        let first = Double::new(Behaviour::Hang);
        let second = Double::new(Behaviour::Answer(7));
        let mut transport = failover(&[&first, &second], Duration::from_millis(200));
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x7\""));
        assert_eq!(transport.status()[0].last_error.as_deref(), Some("no answer within 200ms"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_json_rpc_error_is_an_answer_and_does_not_fail_over() {
        let first = Double::new(Behaviour::RpcError);
        let second = Double::new(Behaviour::Answer(2));
        let mut transport = failover(&[&first, &second], Duration::from_secs(5));
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert!(response.is_error());
        assert_eq!(second.calls(), 0);
        assert!(transport.status()[0].healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_endpoint_fails_over_and_the_answer_is_kept_when_all_are_limited() {
        let first = Double::new(Behaviour::RateLimited);
        let second = Double::new(Behaviour::Answer(2));
        let mut transport = failover(&[&first, &second], Duration::from_secs(5));
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x2\""));

        second.set(Behaviour::RateLimited);
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert!(response.is_error(), "the rate-limit answer itself is returned");
    }

    #[tokio::test(start_paused = true)]
    async fn all_endpoints_down_is_a_transport_error_naming_each() {
        let first = Double::new(Behaviour::Refuse);
        let second = Double::new(Behaviour::Refuse);
        let mut transport = failover(&[&first, &second], Duration::from_secs(5));
        let error = tower::Service::call(&mut transport, request()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("all 2 RPC endpoint(s) failed"), "{message}");
        assert!(
            message.contains("node0: connection refused") && message.contains("node1: connection refused")
        );

        // All resting: both are still tried (in order of recovery) rather than failing at once.
        first.set(Behaviour::Answer(1));
        let response = tower::Service::call(&mut transport, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x1\""));
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_the_endpoints_reaches_every_clone_and_resets_health() {
        let old = Double::new(Behaviour::Refuse);
        let backup = Double::new(Behaviour::Answer(1));
        let transport = failover(&[&old, &backup], Duration::from_secs(5));
        let mut clone = transport.clone();
        tower::Service::call(&mut clone, request()).await.unwrap();
        assert!(!transport.status()[0].healthy);

        let new = Double::new(Behaviour::Answer(9));
        transport.replace_transports(vec![("new".to_owned(), BoxTransport::new(new.clone()))]);
        let response = tower::Service::call(&mut clone, request()).await.unwrap();
        assert_eq!(answer(&response).as_deref(), Some("\"0x9\""));
        assert_eq!((old.calls(), backup.calls(), new.calls()), (1, 1, 1));
        let status = clone.status();
        assert_eq!(status.len(), 1);
        assert_eq!((status[0].url.as_str(), status[0].healthy, status[0].successes), ("new", true, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_under_way_finishes_on_the_list_it_started_with() {
        let slow = Double::new(Behaviour::Hang);
        let transport = failover(&[&slow], Duration::from_secs(5));
        let mut clone = transport.clone();
        let pending = tokio::spawn(async move { tower::Service::call(&mut clone, request()).await });
        tokio::task::yield_now().await;
        assert_eq!(slow.calls(), 1);
        let new = Double::new(Behaviour::Answer(3));
        transport.replace_transports(vec![("new".to_owned(), BoxTransport::new(new.clone()))]);
        // The old request times out on the old endpoint instead of moving to the new list.
        let error = pending.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("all 1 RPC endpoint(s) failed: node0"), "{error}");
        assert_eq!(new.calls(), 0);
    }

    #[test]
    fn a_bad_replacement_leaves_the_list_unchanged() {
        let first = Double::new(Behaviour::Answer(1));
        let transport = failover(&[&first], Duration::from_secs(5));
        let url: Url = "ftp://example.com".parse().unwrap();
        let error = transport.replace(&[url]).unwrap_err();
        assert!(error.to_string().contains("unsupported scheme"), "{error}");
        assert!(transport.replace(&[]).is_err());
        assert_eq!(transport.labels(), vec!["node0".to_owned()]);
    }

    #[tokio::test]
    async fn probe_names_the_failure_without_the_url_path() {
        // Nothing listens on a port we bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url: Url = format!("http://127.0.0.1:{port}/v2/SECRET").parse().unwrap();
        let error = probe_chain_id(&url, Duration::from_secs(2)).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("connection failed"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn urls_are_redacted() {
        let url: Url = "https://user:pw@base-mainnet.g.alchemy.com/v2/SECRETKEY".parse().unwrap();
        assert_eq!(redact_url(&url), "https://base-mainnet.g.alchemy.com/…");
        let url: Url = "http://127.0.0.1:8545".parse().unwrap();
        assert_eq!(redact_url(&url), "http://127.0.0.1:8545");
        let url: Url = "wss://node.example/?key=SECRET".parse().unwrap();
        assert_eq!(redact_url(&url), "wss://node.example/…");
    }

    #[test]
    fn unsupported_scheme_is_refused() {
        let url: Url = "ftp://example.com".parse().unwrap();
        let Err(error) = FailoverTransport::new(&[url], Duration::from_secs(1), POLICY) else { panic!() };
        assert!(error.to_string().contains("unsupported scheme"), "{error}");
    }
}
