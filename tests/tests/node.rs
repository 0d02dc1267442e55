//! `proxy-router run` as an operator starts it: a real process configured through its environment,
//! refusing bad starts with a message naming the problem, indexing over a WebSocket new-heads
//! subscription when ETH_NODE_USE_SUBSCRIPTIONS is set, and serving its HTTP API with the admin
//! credentials it writes on first start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use e2e_tests::chain::{ChainFixture, MOR};
use e2e_tests::router::{self, curl, router_env, RouterProcess};
use proxy_router::chain::Allowance;
use proxy_router::store::Store;

fn env(
    chain: &ChainFixture,
    storage: &std::path::Path,
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    router_env(chain, storage, overrides)
}

fn command(vars: &[(String, String)], workdir: &std::path::Path) -> Command {
    router::command(vars, workdir).unwrap()
}

/// Runs the node and expects it to refuse to start.
fn refused(vars: &[(String, String)], workdir: &std::path::Path) -> Output {
    let child = command(vars, workdir).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_with_deadline(child, Duration::from_secs(60))
}

fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_refuses_a_wrong_chain_a_diamond_without_code_and_a_malformed_value() {
    let chain = ChainFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let out = refused(&env(&chain, dir.path(), &[("ETH_NODE_CHAIN_ID", "8453".into())]), dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("8453") && stderr.contains("31337"), "names both chain ids: {stderr}");

    let nowhere = "0x00000000000000000000000000000000000dead1".to_owned();
    let out = refused(&env(&chain, dir.path(), &[("DIAMOND_CONTRACT_ADDRESS", nowhere.clone())]), dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains(&nowhere.to_lowercase()) && stderr.contains("code"), "{stderr}");

    let out = refused(&env(&chain, dir.path(), &[("ETH_NODE_POLLING_INTERVAL", "ten".into())]), dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ETH_NODE_POLLING_INTERVAL") && stderr.contains("ten"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_follows_new_heads_over_a_websocket_subscription() {
    let chain = ChainFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ws = format!("ws://{}", chain.anvil.addr());
    // Polling every 10 minutes: only the subscription can make new blocks show within the test.
    let vars = env(
        &chain,
        dir.path(),
        &[
            ("ETH_NODE_ADDRESS", ws),
            ("ETH_NODE_USE_SUBSCRIPTIONS", "true".into()),
            ("ETH_NODE_POLLING_INTERVAL", "600s".into()),
        ],
    );
    let mut node = command(&vars, dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();

    let store = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if dir.path().join("proxy-router.sqlite").exists() {
                if let Ok(store) = Store::open(dir.path()).await {
                    if store.indexer().cursor().await.unwrap().is_some() {
                        return store;
                    }
                }
            }
            assert!(Instant::now() < deadline, "the node did not index its first range");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;

    let provider = chain.sender(2).await.unwrap();
    let p = provider.address();
    chain.give_mor(p, U256::from(MOR)).await.unwrap();
    let stake = U256::from(MOR / 5);
    Allowance::new(provider.clone())
        .spend(stake, || provider.provider_register(p, stake, "ws.example:3333"))
        .await
        .unwrap();
    let head = chain.provider().unwrap().get_block_number().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while store.providers().get(p).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "block {head} not indexed: the subscription did not wake the node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.providers().get(p).await.unwrap().unwrap().stake, stake);
    assert!(node.try_wait().unwrap().is_none(), "the node keeps running");
    node.kill().unwrap();
    node.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn run_serves_the_api_with_the_admin_cookie_it_creates() {
    let chain = ChainFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = RouterProcess::start(&env(&chain, dir.path(), &[]), dir.path()).unwrap();

    // The defaults put the auth files in the working directory, readable by the owner only.
    let cookie = std::fs::read_to_string(dir.path().join(".cookie")).unwrap();
    let cookie = cookie.trim();
    assert!(cookie.starts_with("admin:") && cookie.len() == "admin:".len() + 32, "{cookie}");
    for file in [".cookie", "proxy.conf"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }

    let health = curl(&[&node.url("/healthcheck")]).unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json().unwrap()["status"], "healthy");
    let anonymous = curl(&[&node.url("/config")]).unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json().unwrap(), serde_json::json!({"error": "no basic auth provided"}));
    let admin = curl(&["-u", cookie, &node.url("/config")]).unwrap();
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(admin.json().unwrap()["DerivedConfig"]["ChainID"], 31337);
    let ui = curl(&[&node.url("/swagger/index.html")]).unwrap();
    assert_eq!(ui.status, 200);
    assert!(ui.body.contains("swagger-ui"), "{}", ui.body);
}
