//! `make demo`: a whole local marketplace on this machine, driven through the routers' HTTP APIs.
//!
//! 1. anvil with our contracts (the project's deploy script);
//! 2. a model backend: `DEMO_BACKEND_URL` (a real OpenAI-compatible chat endpoint such as llama.cpp's or
//!    Ollama's `…/v1/chat/completions`, with `DEMO_BACKEND_MODEL` naming its model) or else the
//!    stand-in backend of `e2e_tests::backend` (clearly not a model: it answers a fixed sentence);
//! 3. a provider router (anvil account 2) serving that backend, and a consumer router (account 3);
//! 4. through the provider's API: register the provider, a model and a bid;
//! 5. through the consumer's API: open a session by model, stream one chat answer to the terminal, close
//!    the session; then the balances before and after;
//! 6. through the consumer's admin API: create an API key, then stream one chat through the consumer's
//!    OpenAI gateway with nothing but that key and the model name (the gateway buys the session).
//!
//! Then it keeps running (Ctrl-C stops everything) and prints, and writes to `DEMO_INFO_FILE` (default
//! `target/demo/connection.json`), the Swagger URLs, the gateway's base URL and API key (`gateway.*`),
//! the consumer's admin OpenAI route, the credentials and an open session for `curl` or any OpenAI
//! client. With `DEMO_EXIT=1` it stops after the walk-through (the smoke test in `make test` uses that).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use alloy::primitives::{Address, U256};
use anyhow::{bail, ensure, Context};
use e2e_tests::backend::Backend;
use e2e_tests::chain::{ChainFixture, MOR};
use e2e_tests::repo_root;
use e2e_tests::router::{curl, router_env, CurlAnswer, RouterProcess};
use serde_json::{json, Value};

/// anvil account 2: the provider.
const PROVIDER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
/// anvil account 3: the consumer.
const CONSUMER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
/// The admin password of both routers (written to their `.cookie` files).
const ADMIN_PASSWORD: &str = "demo";

/// One router's API as the demo calls it.
struct Api<'a> {
    router: &'a RouterProcess,
    credentials: String,
}

impl Api<'_> {
    fn get(&self, path: &str) -> anyhow::Result<Value> {
        expect_ok(curl(&["-u", &self.credentials, &self.router.url(path)])?, path)
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let body = body.to_string();
        let answer = curl(&[
            "-u",
            &self.credentials,
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &self.router.url(path),
        ])?;
        expect_ok(answer, path)
    }
}

fn expect_ok(answer: CurlAnswer, path: &str) -> anyhow::Result<Value> {
    ensure!(answer.status == 200, "{path} answered {}: {}", answer.status, answer.body);
    answer.json()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn mor(amount: U256) -> String {
    let whole = amount / U256::from(MOR);
    let frac = format!("{:018}", amount % U256::from(MOR));
    let frac = frac.trim_end_matches('0');
    format!("{whole}.{} MOR", if frac.is_empty() { "0" } else { frac })
}

/// Streams one chat answer with `curl` (extra `args` give the auth, body and URL), printing its text as
/// it arrives; fails on an error frame or a stream that ends without `[DONE]`.
fn stream_chat(args: &[String]) -> anyhow::Result<()> {
    let mut child = Command::new("curl")
        .args(["-sS", "-N", "-H", "content-type: application/json"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut done = false;
    let mut other = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data: ") else {
            other.push_str(&line);
            continue;
        };
        if data.trim() == "[DONE]" {
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data).with_context(|| format!("bad frame {data}"))?;
        if let Some(error) = chunk.get("error") {
            bail!("the chat failed: {error}");
        }
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            print!("{text}");
            std::io::stdout().flush()?;
        }
    }
    println!();
    child.wait()?;
    ensure!(done, "the stream ended without [DONE]: {other}");
    Ok(())
}

/// How far the demo moves anvil's clock while the session is open, so the close pays for real use.
const SESSION_USE_SECONDS: u64 = 300;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let exit_after = std::env::var("DEMO_EXIT").is_ok_and(|v| v == "1");
    println!("== Starting anvil and deploying the marketplace contracts");
    let chain = ChainFixture::start().await?;
    let d = &chain.deployment;
    println!(
        "   chain {} at {}, diamond {}, MOR {}",
        chain.config.chain_id,
        chain.anvil.endpoint(),
        d.diamond,
        d.mor_token
    );

    let stand_in;
    let (backend_url, backend_model, backend_label) = match std::env::var("DEMO_BACKEND_URL") {
        Ok(url) if !url.is_empty() => {
            let model = std::env::var("DEMO_BACKEND_MODEL").unwrap_or_else(|_| "default".into());
            (url, model, "your backend (DEMO_BACKEND_URL)")
        }
        _ => {
            stand_in = Backend::start().await?;
            (
                stand_in.chat_url(),
                "demo-model".to_owned(),
                "the STAND-IN backend (not a model: a fixed reply)",
            )
        }
    };
    println!("== Model backend: {backend_url} — {backend_label}");

    let provider_address: Address = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc".parse()?;
    let consumer_address: Address = "0x90f79bf6eb2c4f870365e785982e1f101e93b906".parse()?;
    for who in [provider_address, consumer_address] {
        chain.give_mor(who, U256::from(100 * MOR)).await?;
    }

    let model_base_id = "0x000000000000000000000000000000000000000000000000000000000000d3e0";
    let model_id = proxy_router::chain::sender::model_id(provider_address, model_base_id.parse()?);
    let models_config = json!({"models": [{
        "modelId": format!("{model_id:#x}"),
        "modelName": backend_model,
        "apiType": "openai",
        "apiUrl": backend_url,
        "concurrentSlots": 8,
        "capacityPolicy": "simple",
    }]});

    let work = repo_root().join("target").join("demo");
    let provider_dir = work.join("provider");
    let consumer_dir = work.join("consumer");
    for dir in [&provider_dir, &consumer_dir] {
        // A fresh chain each run: yesterday's index would not match it.
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
    }
    let proxy_port = free_port()?;
    let cookie = format!("admin:{ADMIN_PASSWORD}");
    println!("== Starting the provider router (MOR-RPC on 127.0.0.1:{proxy_port})");
    let provider = RouterProcess::start(
        &router_env(
            &chain,
            &provider_dir,
            &[
                ("WALLET_PRIVATE_KEY", PROVIDER_KEY.to_owned()),
                ("PROXY_ADDRESS", format!("127.0.0.1:{proxy_port}")),
                ("MODELS_CONFIG_CONTENT", models_config.to_string()),
                ("COOKIE_CONTENT", cookie.clone()),
            ],
        ),
        &provider_dir,
    )?;
    println!("== Starting the consumer router");
    let consumer = RouterProcess::start(
        &router_env(
            &chain,
            &consumer_dir,
            &[
                ("WALLET_PRIVATE_KEY", CONSUMER_KEY.to_owned()),
                ("PROXY_ADDRESS", format!("127.0.0.1:{}", free_port()?)),
                ("COOKIE_CONTENT", cookie.clone()),
            ],
        ),
        &consumer_dir,
    )?;
    let p = Api { router: &provider, credentials: cookie.clone() };
    let c = Api { router: &consumer, credentials: cookie.clone() };

    println!("== Provider onboarding through its API");
    p.post(
        "/blockchain/providers",
        &json!({"stake": "200000000000000000", "endpoint": format!("127.0.0.1:{proxy_port}")}),
    )?;
    let model = p.post(
        "/blockchain/models",
        &json!({"id": model_base_id, "ipfsID": format!("{:#x}", alloy::primitives::keccak256(b"demo")), "fee": 0,
                "stake": "100000000000000000", "name": backend_model, "tags": ["llm", "demo"]}),
    )?;
    ensure!(model["model"]["Id"] == format!("{model_id:#x}"), "unexpected model id: {model}");
    let bid = p.post(
        "/blockchain/bids",
        &json!({"modelID": format!("{model_id:#x}"), "pricePerSecond": "10000000000000"}),
    )?;
    println!(
        "   provider {provider_address}, model {model_id:#x}, bid {}",
        bid["bid"]["Id"].as_str().unwrap_or_default()
    );

    let balances = |label: &'static str| {
        let chain = &chain;
        async move {
            let funding = chain.deployment.funding_account;
            let rows = [
                ("provider", provider_address),
                ("consumer", consumer_address),
                ("funding account", funding),
                ("diamond", chain.deployment.diamond),
            ];
            let mut out = Vec::new();
            for (name, who) in rows {
                out.push((name, chain.mor_balance(who).await?));
            }
            println!("   MOR balances {label}:");
            for (name, amount) in &out {
                println!("     {name:<16} {}", mor(*amount));
            }
            anyhow::Ok(out)
        }
    };
    let before = balances("before the session").await?;

    println!("== Consumer: open a session by model");
    // The consumer's index must have seen the bid first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let bids = c.get(&format!("/blockchain/models/{model_id:#x}/bids/active"))?;
        if bids["bids"].as_array().is_some_and(|b| !b.is_empty()) {
            break;
        }
        ensure!(std::time::Instant::now() < deadline, "the consumer never indexed the bid");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let opened = c.post(
        &format!("/blockchain/models/{model_id:#x}/session"),
        &json!({"sessionDuration": 600, "directPayment": false, "failover": false}),
    )?;
    let session_id = opened["sessionID"].as_str().context("no sessionID")?.to_owned();
    println!("   session {session_id}");

    println!("== Consumer: one streamed chat answer through both routers");
    let prompt = json!({"model": backend_model, "stream": true,
                        "messages": [{"role": "user", "content": "Say hello to the Morpheus marketplace in one sentence."}]});
    print!("   assistant: ");
    stream_chat(&[
        "-u".to_owned(),
        cookie.clone(),
        "-H".to_owned(),
        format!("session_id: {session_id}"),
        "-d".to_owned(),
        prompt.to_string(),
        consumer.url("/v1/chat/completions"),
    ])?;

    println!("== Moving anvil's clock {SESSION_USE_SECONDS} s forward: the session has been used that long");
    chain.advance_time(SESSION_USE_SECONDS).await?;
    println!("== Consumer: close the session with the provider's receipt");
    let closed = c.post(&format!("/blockchain/sessions/{session_id}/close"), &json!({}))?;
    println!("   closed in tx {}", closed["tx"].as_str().unwrap_or_default());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let session = loop {
        let session = c.get(&format!("/blockchain/sessions/{session_id}"))?;
        if session["session"]["ClosedAt"].as_u64().is_some_and(|t| t > 0) {
            break session;
        }
        ensure!(std::time::Instant::now() < deadline, "the consumer never indexed the close");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let closeout = &session["session"]["CloseoutType"];
    println!(
        "   closeout type {closeout} ({})",
        if closeout == 0 {
            "the provider's signed receipt: no dispute"
        } else {
            "our own receipt: a dispute"
        }
    );
    let after = balances("after closing").await?;
    println!("   changes:");
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        let sign = if a >= b { "+" } else { "-" };
        let delta = if a >= b { *a - *b } else { *b - *a };
        println!("     {name:<16} {sign}{}", mor(delta));
    }

    let held = c.get("/blockchain/sessions/user/stakes-on-hold")?;
    println!(
        "   the consumer's stake for today's use ({} wei) is on hold until unix time {} (the next UTC day);",
        held["locked"].as_str().unwrap_or("0"),
        held["nextReleaseAt"]
    );
    println!("   the rest came back at close. Withdraw it later with POST /blockchain/sessions/user/withdraw-stakes.");

    println!(
        "== Gateway: an API key for OpenAI clients, then one chat with only that key and the model name"
    );
    let key = c.post(
        "/auth/keys",
        &json!({"name": "demo", "models": [backend_model], "budgetMor": (50 * MOR).to_string()}),
    )?;
    let api_key = key["key"].as_str().context("no key in the answer")?.to_owned();
    let gateway_base = consumer.gateway_url("/v1")?;
    println!("   key {} (\"demo\", budget 50 MOR, model {backend_model})", key["id"]);
    print!("   assistant: ");
    let gateway_prompt = json!({"model": backend_model, "stream": true,
                                "messages": [{"role": "user", "content": "Say hello through the gateway."}]});
    stream_chat(&[
        "-H".to_owned(),
        format!("authorization: Bearer {api_key}"),
        "-d".to_owned(),
        gateway_prompt.to_string(),
        format!("{gateway_base}/chat/completions"),
    ])?;
    let key = c.get(&format!("/auth/keys/{}", key["id"].as_str().unwrap_or_default()))?;
    println!(
        "   the gateway bought session {} for the key; usage: {}",
        key["sessions"][0]["sessionId"].as_str().unwrap_or("?"),
        key["usage"]
    );

    // A second session stays open for the user to play with.
    let open =
        c.post(&format!("/blockchain/models/{model_id:#x}/session"), &json!({"sessionDuration": 3600}))?;
    let info = json!({
        "chainRpc": chain.anvil.endpoint(),
        "diamond": d.diamond,
        "morToken": d.mor_token,
        "provider": {"api": provider.url(""), "swagger": provider.url("/swagger/index.html"), "morRpc": format!("127.0.0.1:{proxy_port}"), "address": provider_address},
        "consumer": {"api": consumer.url(""), "swagger": consumer.url("/swagger/index.html"), "openaiBaseUrl": consumer.url("/v1"), "address": consumer_address},
        "credentials": {"user": "admin", "password": ADMIN_PASSWORD},
        "modelId": format!("{model_id:#x}"),
        "openSession": open["sessionID"],
        "backend": backend_url,
        "gateway": {"openaiBaseUrl": gateway_base, "apiKey": api_key, "model": backend_model},
    });
    let info_file = std::env::var("DEMO_INFO_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| work.join("connection.json"));
    std::fs::write(&info_file, serde_json::to_string_pretty(&info)?)?;
    println!("== The marketplace is running (details in {}):", info_file.display());
    println!("   provider Swagger UI   {}", provider.url("/swagger/index.html"));
    println!("   consumer Swagger UI   {}", consumer.url("/swagger/index.html"));
    println!(
        "   admin OpenAI route    {} (Basic auth admin:{ADMIN_PASSWORD} and a session_id header)",
        consumer.url("/v1")
    );
    println!("   gateway base URL      {gateway_base} (any OpenAI client)");
    println!("   gateway API key       {api_key}");
    println!(
        "   try: curl -H 'authorization: Bearer {api_key}' -H 'content-type: application/json' -d '{{\"model\":\"{backend_model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}' {gateway_base}/chat/completions"
    );
    println!(
        "   open session          {} (send it as the session_id header)",
        open["sessionID"].as_str().unwrap_or_default()
    );
    println!(
        "   try: curl -u admin:{ADMIN_PASSWORD} -H 'session_id: {}' -H 'content-type: application/json' -d '{{\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}' {}",
        open["sessionID"].as_str().unwrap_or_default(),
        consumer.url("/v1/chat/completions")
    );
    if exit_after {
        println!("== DEMO_EXIT=1: stopping");
        return Ok(());
    }
    println!("== Ctrl-C stops everything");
    tokio::signal::ctrl_c().await?;
    println!("== Stopping");
    Ok(())
}
