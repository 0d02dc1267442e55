//! `make swagger-check`: loads the node's Swagger UI in a real headless Chromium and checks that it
//! shows every operation of the spec.
//!
//! Starts anvil with the marketplace deployed, runs `proxy-router run` against it, asks Chromium
//! (`CHROMIUM`, default `/usr/bin/chromium`, Debian's `chromium` package) for the DOM of
//! `/swagger/index.html` after its scripts ran, and compares the operations Swagger UI rendered
//! (`id="operations-<tag>-<operationId>"`) with the operations of `/openapi.json`. Prints one line per
//! operation and exits non-zero when one is missing or the page did not render.

use std::collections::BTreeSet;
use std::process::{Command, ExitCode};

use anyhow::Context;
use e2e_tests::chain::ChainFixture;
use e2e_tests::router::{curl, router_env, RouterProcess};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium package (apt-get install chromium) or set CHROMIUM"
    );
    let chain = ChainFixture::start().await?;
    let dir = tempfile::tempdir()?;
    let node = RouterProcess::start(&router_env(&chain, dir.path(), &[]), dir.path())?;

    let spec = curl(&[&node.url("/openapi.json")])?.json()?;
    let mut expected = BTreeSet::new();
    for item in spec["paths"].as_object().context("spec without paths")?.values() {
        for operation in item.as_object().context("bad path item")?.values() {
            let tag = operation["tags"][0].as_str().unwrap_or("default");
            let id = operation["operationId"].as_str().context("operation without operationId")?;
            expected.insert(format!("operations-{tag}-{id}"));
        }
    }

    let profile = tempfile::tempdir()?;
    let output = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(node.url("/swagger/index.html"))
        .output()
        .with_context(|| format!("run {chromium}"))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        dom.contains("swagger-ui"),
        "Chromium rendered no Swagger UI: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let title = spec["info"]["title"].as_str().unwrap_or_default();
    let shows_title = dom.contains(title);
    println!("Swagger UI at {}: title {title:?} shown: {shows_title}", node.url("/swagger/index.html"));

    let mut missing = 0;
    for id in &expected {
        let shown = dom.contains(&format!("id=\"{id}\""));
        missing += usize::from(!shown);
        println!("{} {id}", if shown { "shown  " } else { "MISSING" });
    }
    println!("{} of {} operations shown", expected.len() - missing, expected.len());
    Ok(if missing == 0 && shows_title && !expected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
