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
    // Started and listening: its migrations are done, so opening the store beside it cannot race them.
    let mut node = RouterProcess::start(&vars, dir.path()).unwrap();

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
    assert!(node.is_running(), "the node keeps running");
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

/// Polls `url` with curl (admin credentials) until `done` holds for the JSON answer, up to 30 s.
fn wait_for_json(cookie: &str, url: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = curl(&["-u", cookie, url]).unwrap();
        if answer.status == 200 {
            let json = answer.json().unwrap();
            if done(&json) {
                return json;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} never reached the expected state: {} {}",
            answer.status,
            answer.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_onboards_with_curl_and_a_second_router_sees_the_same_data() {
    let chain = ChainFixture::start().await.unwrap();
    // anvil account 3, funded with MOR; its key is given to the provider's router.
    let key = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
    let provider_address = "0x90f79bf6eb2c4f870365e785982e1f101e93b906";
    chain.give_mor(provider_address.parse().unwrap(), U256::from(10 * MOR)).await.unwrap();

    let provider_dir = tempfile::tempdir().unwrap();
    let vars = env(&chain, provider_dir.path(), &[("WALLET_PRIVATE_KEY", key.to_owned())]);
    let provider = RouterProcess::start(&vars, provider_dir.path()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = RouterProcess::start(&env(&chain, other_dir.path(), &[]), other_dir.path()).unwrap();
    let cookie = std::fs::read_to_string(provider_dir.path().join(".cookie")).unwrap().trim().to_owned();
    let other_cookie = std::fs::read_to_string(other_dir.path().join(".cookie")).unwrap().trim().to_owned();
    let post = |path: &str, body: &str| {
        curl(&[
            "-u",
            &cookie,
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &provider.url(path),
        ])
        .unwrap()
    };

    // Register the provider, a model and a bid: the curl lines an operator would type.
    let registered = post(
        "/blockchain/providers",
        r#"{"stake": "200000000000000000", "endpoint": "provider.example:3333"}"#,
    );
    assert_eq!(registered.status, 200, "{}", registered.body);
    let registered = registered.json().unwrap();
    assert_eq!(registered["provider"]["Address"], provider_address);
    assert_eq!(registered["provider"]["Stake"], "200000000000000000");

    let model = post(
        "/blockchain/models",
        r#"{"ipfsID": "0x0000000000000000000000000000000000000000000000000000000000000abc", "fee": 0,
            "stake": "100000000000000000", "name": "llama-curl", "tags": ["llm"]}"#,
    );
    assert_eq!(model.status, 200, "{}", model.body);
    let model = model.json().unwrap();
    let model_id = model["model"]["Id"].as_str().unwrap().to_owned();
    assert_eq!(model["model"]["Name"], "llama-curl");
    assert_eq!(model["model"]["ModelType"], "LLM");

    let bid = post(
        "/blockchain/bids",
        &format!(r#"{{"modelID": "{model_id}", "pricePerSecond": "10000000000000"}}"#),
    );
    assert_eq!(bid.status, 200, "{}", bid.body);
    let bid = bid.json().unwrap();
    let bid_id = bid["bid"]["Id"].as_str().unwrap().to_owned();
    assert_eq!(bid["bid"]["Provider"], provider_address);
    assert_eq!(bid["bid"]["PricePerSecond"], "10000000000000");

    // Both routers list the same provider, model and bid once their indexers reached the block.
    let has = |key: &'static str, field: &'static str, value: String| {
        move |json: &serde_json::Value| {
            json[key].as_array().is_some_and(|items| items.iter().any(|item| item[field] == value.as_str()))
        }
    };
    for (router, cookie) in [(&provider, &cookie), (&other, &other_cookie)] {
        let providers = wait_for_json(
            cookie,
            &router.url("/blockchain/providers"),
            has("providers", "Address", provider_address.into()),
        );
        let models =
            wait_for_json(cookie, &router.url("/blockchain/models"), has("models", "Id", model_id.clone()));
        let bids = wait_for_json(
            cookie,
            &router.url(&format!("/blockchain/models/{model_id}/bids/active")),
            has("bids", "Id", bid_id.clone()),
        );
        assert_eq!(providers["providers"][0]["Endpoint"], "provider.example:3333");
        assert_eq!(models["models"].as_array().unwrap().len(), 1);
        assert_eq!(bids["bids"][0], bid["bid"]);
    }

    // Delete the bid: both routers stop listing it as active.
    let deleted =
        curl(&["-u", &cookie, "-X", "DELETE", &provider.url(&format!("/blockchain/bids/{bid_id}"))]).unwrap();
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.json().unwrap()["tx"].as_str().unwrap().starts_with("0x"));
    for (router, cookie) in [(&provider, &cookie), (&other, &other_cookie)] {
        let active = wait_for_json(
            cookie,
            &router.url(&format!("/blockchain/models/{model_id}/bids/active")),
            |json| json["bids"].as_array().is_some_and(Vec::is_empty),
        );
        assert_eq!(active, serde_json::json!({"bids": []}));
        let bid = wait_for_json(cookie, &router.url(&format!("/blockchain/bids/{bid_id}")), |json| {
            json["bid"]["DeletedAt"] != "0"
        });
        assert_eq!(bid["bid"]["Id"], bid_id.as_str());
    }

    // The second router has no wallet: it reads the same chain but cannot write.
    let refused = curl(&[
        "-u", &other_cookie, "-X", "POST", "-H", "content-type: application/json",
        "-d", r#"{"modelID": "0x0000000000000000000000000000000000000000000000000000000000000001", "pricePerSecond": 1}"#,
        &other.url("/blockchain/bids"),
    ])
    .unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json().unwrap()["code"], "no_wallet");
}

#[test]
fn without_a_subcommand_the_binary_runs_the_node_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["-eth-node-chain-id", "8453"][..]] {
        let out = Command::new(router::binary().unwrap())
            .env_clear()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("ETH_NODE_ADDRESS is required"), "{args:?}: {stderr}");
    }
}
