//! What the consumer's tests share: well-known keys and a scripted MOR-RPC provider on a real TCP
//! socket, answering with messages built by `protocol`.

use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use super::client::ProviderKey;
use crate::protocol::signing::uncompressed_public_key;
use alloy::primitives::U256;

use crate::protocol::messages::DONE_PLAINTEXT;
use crate::protocol::{
    unix_millis_now, MorRpcCodec, PongRes, ReportTokens, Request, RpcMessage, RpcResponse, SessionPromptRes,
    SessionReport, SessionReportRes, SessionRes, Signable as _,
};

pub(crate) const CHAIN_ID: u64 = 8453;

pub(crate) fn provider_key() -> PrivateKeySigner {
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".parse().unwrap()
}

pub(crate) fn user_key() -> PrivateKeySigner {
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a".parse().unwrap()
}

pub(crate) fn stranger_key() -> PrivateKeySigner {
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6".parse().unwrap()
}

pub(crate) fn key_of(signer: &PrivateKeySigner) -> ProviderKey {
    ProviderKey::new(signer.address(), uncompressed_public_key(signer)).unwrap()
}

/// What the scripted provider does with a request.
pub(crate) type Script = Arc<dyn Fn(&RpcMessage) -> Vec<Vec<u8>> + Send + Sync>;

/// Serves `script` on a loopback port; each connection gets the frames the script returns.
pub(crate) async fn serve(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let mut conn = Framed::new(socket, MorRpcCodec::default());
                let Some(Ok(frame)) = conn.next().await else { return };
                let request = RpcMessage::from_slice(&frame).unwrap();
                for out in script(&request) {
                    if out.is_empty() {
                        // An empty frame means: stay silent for a while.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        continue;
                    }
                    if conn.send(out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr.to_string()
}

pub(crate) fn ok<R: serde::Serialize>(id: &str, result: &R) -> Vec<u8> {
    RpcResponse::result(id, result).unwrap().to_vec().unwrap()
}

pub(crate) fn chunk(provider: &PrivateKeySigner, plaintext: &[u8]) -> SessionPromptRes {
    SessionPromptRes::encrypt(provider, &uncompressed_public_key(&user_key()), plaintext, unix_millis_now())
        .unwrap()
}

/// An honest provider signing with `signer`: pongs, approvals, streamed chunks, reports.
pub(crate) fn honest(signer: PrivateKeySigner, chunks: Vec<&'static str>) -> Script {
    Arc::new(move |request: &RpcMessage| {
        let id = request.id.as_str();
        match request.request().unwrap() {
            Request::Ping(ping) => vec![ok(id, &PongRes::answer(&ping, "v-test", &signer).unwrap())],
            Request::SessionRequest(req) => {
                req.verify().unwrap();
                let res =
                    SessionRes::build(&signer, req.bid_id, U256::from(CHAIN_ID), req.user, req.timestamp)
                        .unwrap();
                vec![ok(id, &res)]
            }
            Request::SessionPrompt(req) => {
                req.verify_signer(user_key().address()).unwrap();
                let mut frames: Vec<Vec<u8>> =
                    chunks.iter().map(|c| ok(id, &chunk(&signer, c.as_bytes()))).collect();
                frames.push(ok(id, &chunk(&signer, DONE_PLAINTEXT)));
                frames
            }
            Request::SessionReport(req) => {
                let report = SessionReport {
                    session_id: req.session_id().unwrap(),
                    chain_id: U256::from(CHAIN_ID),
                    timestamp_ms: u128::from(unix_millis_now()),
                    tps_scaled1000: 25_000,
                    ttft_ms: 120,
                    tokens: Some(ReportTokens { input: 10, output: 20 }),
                };
                vec![ok(id, &SessionReportRes::build(&signer, &report, unix_millis_now()).unwrap())]
            }
        }
    })
}
