//! Failover between RPC URLs: with a dead first URL, reads and writes go to the next one; WebSocket
//! URLs serve requests and the new-head subscription, and polling is the fallback without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use e2e_tests::anvil::ANVIL_CHAIN_ID;
use e2e_tests::chain::{wallet, ChainFixture};
use futures::StreamExt;
use proxy_router::chain::bindings::Marketplace;
use proxy_router::chain::{startup, Rpc, TxSender};
use url::Url;

/// An http URL on which nothing listens: a port the kernel handed out and that was closed again.
fn dead_url() -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_first_url_reads_and_writes_continue_on_the_second() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let mut config = chain.config.clone();
    config.rpc_urls = vec![dead_url(), chain.anvil.endpoint().parse().unwrap()];
    let rpc = Rpc::connect(&config).await.unwrap();

    // Reads: the start-up checks, plain RPC and a contract getter.
    let report = startup::verify(&rpc, &config).await.unwrap();
    assert_eq!(report.chain_id, ANVIL_CHAIN_ID);
    assert!(rpc.provider().get_block_number().await.unwrap() > 0);
    let market = Marketplace::new(config.diamond, rpc.provider().clone());
    assert_eq!(market.getToken().call().await.unwrap(), config.mor_token);

    // Writes: estimation, fees, nonce, raw send and receipts all through the failover.
    let sender = TxSender::new(rpc.clone(), wallet(2).unwrap(), &config);
    sender.approve(config.diamond, U256::from(10u64)).await.unwrap();
    sender.increase_allowance(config.diamond, U256::from(5u64)).await.unwrap();
    assert_eq!(chain.allowance(sender.address()).await.unwrap(), U256::from(15u64));

    let endpoints = rpc.endpoints();
    assert!(!endpoints[0].healthy, "{endpoints:?}");
    assert_eq!(endpoints[0].last_error.as_deref(), Some("connection failed"));
    assert!(endpoints[0].failures >= 1);
    assert!(endpoints[1].healthy && endpoints[1].successes > 10, "{endpoints:?}");
    // The dead endpoint rests: far fewer attempts on it than requests served.
    assert!(endpoints[0].failures < endpoints[1].successes / 2, "{endpoints:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_url_serves_requests_and_new_head_subscription() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let ws: Url = format!("ws://{}", chain.anvil.addr()).parse().unwrap();
    let mut config = chain.config.clone();
    config.rpc_urls = vec![dead_url(), ws];
    config.use_subscriptions = true;
    let rpc = Rpc::connect(&config).await.unwrap();
    assert!(rpc.pubsub().is_some());

    // Requests fail over from the dead http URL to the WebSocket.
    assert_eq!(rpc.provider().get_chain_id().await.unwrap(), ANVIL_CHAIN_ID);
    let sender = TxSender::new(rpc.clone(), wallet(2).unwrap(), &config);
    sender.approve(config.diamond, U256::from(3u64)).await.unwrap();
    assert_eq!(chain.allowance(sender.address()).await.unwrap(), U256::from(3u64));

    // New heads arrive over the subscription.
    let subscription = rpc.subscribe_new_heads().await.unwrap().expect("a subscription");
    let mut heads = subscription.into_stream();
    let before = chain.provider().unwrap().get_block_number().await.unwrap();
    chain.mine().await.unwrap();
    let head =
        tokio::time::timeout(Duration::from_secs(10), heads.next()).await.expect("a head in time").unwrap();
    assert_eq!(head.number, before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_without_a_websocket_url_fall_back_to_polling() {
    let chain = ChainFixture::start().await.expect("anvil with the marketplace");
    let mut config = chain.config.clone();
    config.use_subscriptions = true;
    let rpc = Rpc::connect(&config).await.unwrap();
    assert!(rpc.pubsub().is_none());
    assert!(rpc.subscribe_new_heads().await.unwrap().is_none());
    assert_eq!(rpc.provider().get_chain_id().await.unwrap(), ANVIL_CHAIN_ID);

    // A ws URL that does not answer also falls back to polling (after its connect timeout).
    let dead_ws: Url = dead_url().as_str().replacen("http", "ws", 1).parse().unwrap();
    config.rpc_urls.push(dead_ws);
    config.rpc_timeout = Duration::from_secs(2);
    let rpc = Rpc::connect(&config).await.unwrap();
    assert!(rpc.pubsub().is_none());
    assert_eq!(rpc.provider().get_chain_id().await.unwrap(), ANVIL_CHAIN_ID);
}
