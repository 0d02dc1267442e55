//! The MOR-RPC TCP server on `PROXY_ADDRESS`, as the reference speaks it: one request per connection
//! (a JSON object without delimiter), 0..N response objects back to back, then the server closes.
//!
//! Bounds: at most [`ProviderOptions::max_connections`](super::ProviderOptions) connections at once
//! (more are answered "provider busy" and closed); the request must arrive within
//! `request_read_timeout` and be at most `PROXY_MAX_PROMPT_BYTES` long; each response frame must be
//! written within `write_timeout`. A malformed or oversized frame, an unknown method or any refused
//! check is answered with an unsigned error (`"signature":"0x00"`) carrying the reason, and the
//! connection is closed; the server keeps running. On cancellation the listener stops, open
//! connections are cancelled and awaited.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::{Provider, ProviderError};
use crate::protocol::{MorRpcCodec, ProtocolError, RpcError, RpcMessage, RpcResponse};

/// How long a refused connection's remaining input is drained (so the error reaches the consumer
/// instead of being lost in a TCP reset).
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long open connections may take to finish after cancellation.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Connections over the limit that are told "provider busy" at once; beyond, they are dropped.
const MAX_REFUSING: usize = 64;
/// How long telling a connection "provider busy" may take.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound MOR-RPC listener and the provider it serves.
#[derive(Debug)]
pub struct ProviderServer {
    listener: TcpListener,
    provider: Provider,
}

impl ProviderServer {
    /// Binds `provider`'s `PROXY_ADDRESS`.
    pub async fn bind(provider: Provider) -> Result<Self, ProviderError> {
        let address = provider.options().address;
        let listener =
            TcpListener::bind(address).await.map_err(|source| ProviderError::Listen { address, source })?;
        Ok(Self { listener, provider })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ProviderError> {
        let address = self.provider.options().address;
        self.listener.local_addr().map_err(|source| ProviderError::Listen { address, source })
    }

    /// Serves connections until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let Self { listener, provider } = self;
        let limit = std::sync::Arc::new(Semaphore::new(provider.options().max_connections.max(1)));
        let refusing = std::sync::Arc::new(Semaphore::new(MAX_REFUSING));
        let connections = cancel.child_token();
        let mut tasks = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a MOR-RPC connection task failed");
                    }
                    continue;
                }
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: log and keep accepting.
                    tracing::warn!(error = %e, "MOR-RPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let provider = provider.clone();
            let cancel = connections.clone();
            match limit.clone().try_acquire_owned() {
                Ok(permit) => {
                    tasks.spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = serve_connection(&provider, stream, peer) => {}
                        }
                        drop(permit);
                    });
                }
                Err(_) => {
                    tracing::warn!(%peer, "MOR-RPC connection limit reached");
                    if let Ok(permit) = refusing.clone().try_acquire_owned() {
                        tasks.spawn(async move {
                            refuse(stream, &ProviderError::Busy).await;
                            drop(permit);
                        });
                    }
                }
            }
        }
        drop(listener);
        connections.cancel();
        let drained =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
        }
        tracing::info!("MOR-RPC server stopped");
    }
}

/// The response side of one connection: writes frames for the request `id`.
pub(super) struct Reply {
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    id: String,
    timeout: Duration,
    frames: usize,
}

impl Reply {
    fn new(writer: impl AsyncWrite + Send + Unpin + 'static, id: String, timeout: Duration) -> Self {
        Self { writer: Box::new(writer), id, timeout, frames: 0 }
    }

    /// The request's id.
    pub(super) fn id(&self) -> String {
        self.id.clone()
    }

    /// Frames written so far.
    pub(super) fn frames(&self) -> usize {
        self.frames
    }

    /// Writes a successful response carrying `result`.
    pub(super) async fn result<R: Serialize>(&mut self, result: &R) -> Result<(), ProviderError> {
        let response = RpcResponse::result(self.id.clone(), result).map_err(ProviderError::Respond)?;
        self.send(&response).await
    }

    /// Writes one response frame.
    pub(super) async fn send(&mut self, response: &RpcResponse) -> Result<(), ProviderError> {
        let bytes = response.to_vec().map_err(ProviderError::Respond)?;
        let write = async {
            self.writer.write_all(&bytes).await?;
            self.writer.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                self.frames += 1;
                Ok(())
            }
            Ok(Err(e)) => Err(ProviderError::Write(e.to_string())),
            Err(_) => Err(ProviderError::Write(format!("no progress within {:?}", self.timeout))),
        }
    }

    async fn error(&mut self, error: &ProviderError, now_ms: u64) -> Result<(), ProviderError> {
        let response = RpcResponse::error(self.id.clone(), RpcError::unsigned(error.reason(), now_ms));
        self.send(&response).await
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.writer.shutdown()).await;
    }
}

/// Reads one request from `stream` and answers it.
async fn serve_connection(provider: &Provider, stream: TcpStream, peer: SocketAddr) {
    let options = provider.options();
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, MorRpcCodec::new(options.max_prompt_bytes));
    let first = tokio::time::timeout(options.request_read_timeout, frames.next()).await;
    let frame: Result<Bytes, ProviderError> = match first {
        Err(_) => Err(ProviderError::ReadTimeout(options.request_read_timeout)),
        Ok(None) => return, // closed without a request
        Ok(Some(Err(ProtocolError::FrameTooLarge { limit }))) => Err(ProviderError::FrameTooLarge { limit }),
        Ok(Some(Err(e))) => Err(ProviderError::BadRequest(e.to_string())),
        Ok(Some(Ok(frame))) => Ok(frame),
    };
    let message = frame.and_then(|frame| {
        RpcMessage::from_slice(&frame).map_err(|e| ProviderError::BadRequest(e.to_string()))
    });
    let message = match message {
        Ok(message) => message,
        Err(error) => {
            tracing::info!(%peer, reason = %error, "MOR-RPC request refused");
            let mut reply = Reply::new(write, String::new(), options.write_timeout);
            if reply.error(&error, options.clock.now_ms()).await.is_ok() {
                let read = frames.into_inner();
                finish(reply, read).await;
            }
            return;
        }
    };

    // One request per connection: its read buffer (8 KiB or more) is not kept while the answer
    // streams. The drain in `finish` reads whatever the consumer sends after it, as before.
    let read = frames.into_inner();
    let mut reply = Reply::new(write, message.id.clone(), options.write_timeout);
    let method = message.method.clone();
    match provider.handle(&message, &mut reply).await {
        Ok(()) => tracing::debug!(%peer, %method, frames = reply.frames(), "MOR-RPC request served"),
        Err(error @ ProviderError::Write(_)) => {
            tracing::info!(%peer, %method, reason = %error, "MOR-RPC consumer went away");
            return;
        }
        Err(error) => {
            tracing::info!(%peer, %method, frames = reply.frames(), reason = %error, "MOR-RPC request refused");
            if reply.error(&error, options.clock.now_ms()).await.is_err() {
                return;
            }
        }
    }
    finish(reply, read).await;
}

/// Closes the write side, then drains what the consumer still sends for a moment, so that the
/// responses are not discarded by a TCP reset.
async fn finish(reply: Reply, mut read: impl AsyncRead + Unpin) {
    reply.close().await;
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Answers a connection that will not be served and closes it, within [`REFUSE_TIMEOUT`].
async fn refuse(stream: TcpStream, error: &ProviderError) {
    let (read, write) = stream.into_split();
    let mut reply = Reply::new(write, String::new(), REFUSE_TIMEOUT);
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        if reply.error(error, crate::protocol::unix_millis_now()).await.is_ok() {
            reply.close().await;
            let mut read = read;
            let mut sink = [0u8; 8192];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use alloy::primitives::{B256, U256};
    use alloy::signers::local::PrivateKeySigner;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::chain::{Rpc, Signer, TxSender, Wallet, WalletSlot, WalletSource};
    use crate::config::Config;
    use crate::protocol::{method, PingReq, PongRes, SessionReq};
    use crate::provider::{Models, ProviderOptions};
    use crate::store::Store;

    const KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    /// A provider whose chain is unreachable (nothing listens on port 9), with an empty store.
    async fn start(max_connections: usize) -> (SocketAddr, CancellationToken, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let env: HashMap<String, String> = [
            ("ETH_NODE_ADDRESS", "http://127.0.0.1:9"),
            ("ETH_NODE_CHAIN_ID", "31337"),
            ("DIAMOND_CONTRACT_ADDRESS", "0x5FbDB2315678afecb367f032d93F642f64180aa3"),
            ("MOR_TOKEN_ADDRESS", "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
            ("WALLET_PRIVATE_KEY", KEY),
            ("PROXY_ADDRESS", "127.0.0.1:0"),
            ("ETH_NODE_RPC_TIMEOUT", "2s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config::load(Vec::<String>::new(), &env).unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let rpc = Rpc::connect(&config.chain).await.unwrap();
        let wallet = Wallet::from_key(config.wallet.key.as_ref().unwrap()).unwrap();
        let slot = WalletSlot::with(Signer::new(
            TxSender::new(rpc.clone(), wallet, &config.chain),
            WalletSource::Config,
        ));
        let options = ProviderOptions {
            max_connections,
            request_read_timeout: Duration::from_millis(300),
            ..ProviderOptions::from_config(&config)
        };
        let provider = Provider::new(options, store, rpc, slot, Models::empty()).unwrap();
        let server = ProviderServer::bind(provider).await.unwrap();
        let addr = server.local_addr().unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(server.run(cancel.clone()));
        (addr, cancel, dir)
    }

    async fn exchange(stream: TcpStream, request: &[u8]) -> Vec<RpcResponse> {
        let mut stream = stream;
        stream.write_all(request).await.unwrap();
        let mut frames = FramedRead::new(stream, MorRpcCodec::default());
        let mut responses = Vec::new();
        while let Some(frame) = frames.next().await {
            responses.push(RpcResponse::from_slice(&frame.unwrap()).unwrap());
        }
        responses
    }

    fn reason(responses: &[RpcResponse]) -> String {
        assert_eq!(responses.len(), 1, "{responses:?}");
        let error = responses[0].error.as_ref().expect("an error");
        assert!(!error.is_signed());
        error.message.clone()
    }

    #[tokio::test]
    async fn bounds_and_infrastructure_errors_are_answered_and_the_server_stays_up() {
        let (addr, cancel, _dir) = start(1).await;
        let provider = PrivateKeySigner::from_bytes(&KEY.parse().unwrap()).unwrap();

        // A connection that sends nothing is told so after the read timeout.
        let idle = TcpStream::connect(addr).await.unwrap();
        // While it holds the only slot, another connection is refused as busy.
        let busy = exchange(TcpStream::connect(addr).await.unwrap(), b"").await;
        assert_eq!(reason(&busy), "provider busy: too many connections");
        let timed_out = exchange(idle, b"").await;
        assert_eq!(reason(&timed_out), "no complete request within 300ms");

        // A ping is answered and signed by the wallet.
        let user = PrivateKeySigner::random();
        let ping = PingReq::random(&user).unwrap();
        let request = RpcMessage::new("1", method::PING, &ping).unwrap().to_vec().unwrap();
        let responses = exchange(TcpStream::connect(addr).await.unwrap(), &request).await;
        let pong: PongRes = responses[0].parse_result().unwrap();
        pong.verify(&ping, provider.address()).unwrap();
        assert_eq!(responses[0].id, "1");

        // The bid is not indexed and the chain is down: an infrastructure error with the reason.
        let now = crate::protocol::unix_millis_now();
        let handshake =
            SessionReq::build(&user, user.address(), U256::from(1), B256::repeat_byte(1), now).unwrap();
        let request = RpcMessage::new("2", method::SESSION_REQUEST, &handshake).unwrap().to_vec().unwrap();
        let responses = exchange(TcpStream::connect(addr).await.unwrap(), &request).await;
        let message = reason(&responses);
        assert!(message.starts_with("chain read failed: getBid("), "{message}");
        assert_eq!(responses[0].id, "2");

        // Still serving.
        let request =
            RpcMessage::new("3", method::PING, &PingReq::random(&user).unwrap()).unwrap().to_vec().unwrap();
        let responses = exchange(TcpStream::connect(addr).await.unwrap(), &request).await;
        assert!(responses[0].error.is_none());
        cancel.cancel();
    }
}
