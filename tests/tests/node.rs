//! `proxy-router run` as an operator starts it: a real process configured through its environment,
//! refusing bad starts with a message naming the problem, and indexing over a WebSocket new-heads
//! subscription when ETH_NODE_USE_SUBSCRIPTIONS is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use e2e_tests::chain::{ChainFixture, MOR};
use e2e_tests::repo_root;
use proxy_router::chain::Allowance;
use proxy_router::store::Store;

/// The `proxy-router` binary, built (or found up to date) by cargo.
fn binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "--quiet", "-p", "proxy-router", "--bin", "proxy-router"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build of proxy-router failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    target.join("debug").join("proxy-router")
}

/// The router's environment for the fixture; `overrides` replace or add variables.
fn env(
    chain: &ChainFixture,
    storage: &std::path::Path,
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    let d = &chain.deployment;
    let mut vars = vec![
        ("ETH_NODE_ADDRESS".to_owned(), chain.anvil.endpoint()),
        ("ETH_NODE_CHAIN_ID".to_owned(), "31337".to_owned()),
        ("DIAMOND_CONTRACT_ADDRESS".to_owned(), d.diamond.to_string()),
        ("MOR_TOKEN_ADDRESS".to_owned(), d.mor_token.to_string()),
        ("MULTICALL3_ADDR".to_owned(), d.multicall3.to_string()),
        ("PROXY_STORAGE_PATH".to_owned(), storage.display().to_string()),
        ("INDEXER_START_BLOCK".to_owned(), d.start_block.to_string()),
        ("INDEXER_CONFIRMATIONS".to_owned(), "0".to_owned()),
    ];
    for (name, value) in overrides {
        vars.retain(|(n, _)| n != name);
        vars.push(((*name).to_owned(), value.clone()));
    }
    vars
}

fn command(vars: &[(String, String)], workdir: &std::path::Path) -> Command {
    let mut cmd = Command::new(binary());
    // A clean environment: nothing from the developer's shell or a .env file leaks in.
    cmd.env_clear().current_dir(workdir).arg("run").envs(vars.iter().cloned());
    cmd
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
