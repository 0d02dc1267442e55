//! The `proxy-router` binary as an operator runs it: built by cargo, started with a clean environment
//! in a working directory, its HTTP API address read from the line it prints at start, and driven
//! with the real `curl`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::chain::ChainFixture;
use crate::repo_root;

/// The line prefix the node prints once its HTTP API listens.
pub const LISTENING: &str = "proxy-router: HTTP API listening on http://";
/// The line prefix the node prints once its provider's MOR-RPC server listens (before [`LISTENING`]).
pub const MOR_RPC_LISTENING: &str = "proxy-router: MOR-RPC listening on ";

/// The line prefix the node prints once its OpenAI gateway listens (before [`LISTENING`]).
pub const GATEWAY_LISTENING: &str = "proxy-router: OpenAI gateway listening on http://";

/// Names a prebuilt `proxy-router` binary to run instead of cargo's debug build (`make bench` points it
/// at the release build).
pub const ROUTER_BINARY: &str = "ROUTER_BINARY";

/// The `proxy-router` binary: the one [`ROUTER_BINARY`] names, else the debug build (built, or found up to
/// date, by cargo).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ROUTER_BINARY).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let path = if path.is_relative() { repo_root().join(path) } else { path };
        anyhow::ensure!(path.is_file(), "{ROUTER_BINARY}={} is not a file", path.display());
        return Ok(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "--quiet", "-p", "proxy-router", "--bin", "proxy-router"])
        .status()
        .context("run cargo build")?;
    anyhow::ensure!(status.success(), "cargo build of proxy-router failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    Ok(target.join("debug").join("proxy-router"))
}

/// The router's environment for `chain` with its state in `storage`, and the API and the provider's
/// MOR-RPC server on free loopback ports; `overrides` replace or add variables.
pub fn router_env(
    chain: &ChainFixture,
    storage: &Path,
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    let d = &chain.deployment;
    let mut vars = vec![
        ("ETH_NODE_ADDRESS".to_owned(), chain.anvil.endpoint()),
        ("ETH_NODE_CHAIN_ID".to_owned(), chain.config.chain_id.to_string()),
        ("DIAMOND_CONTRACT_ADDRESS".to_owned(), d.diamond.to_string()),
        ("MOR_TOKEN_ADDRESS".to_owned(), d.mor_token.to_string()),
        ("MULTICALL3_ADDR".to_owned(), d.multicall3.to_string()),
        ("PROXY_STORAGE_PATH".to_owned(), storage.display().to_string()),
        ("INDEXER_START_BLOCK".to_owned(), d.start_block.to_string()),
        ("INDEXER_CONFIRMATIONS".to_owned(), "0".to_owned()),
        ("ETH_NODE_POLLING_INTERVAL".to_owned(), "200ms".to_owned()),
        ("WEB_ADDRESS".to_owned(), "127.0.0.1:0".to_owned()),
        ("PROXY_ADDRESS".to_owned(), "127.0.0.1:0".to_owned()),
        ("GATEWAY_ADDRESS".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    for (name, value) in overrides {
        vars.retain(|(n, _)| n != name);
        vars.push(((*name).to_owned(), value.clone()));
    }
    vars
}

/// `proxy-router run` with exactly `vars` (nothing from the caller's environment or a `.env` file) in
/// `workdir`.
pub fn command(vars: &[(String, String)], workdir: &Path) -> anyhow::Result<Command> {
    let mut cmd = Command::new(binary()?);
    cmd.env_clear().current_dir(workdir).arg("run").envs(vars.iter().cloned());
    Ok(cmd)
}

/// A running router (killed on drop) and its HTTP API address.
pub struct RouterProcess {
    child: Child,
    /// Where its HTTP API listens.
    pub api: SocketAddr,
    /// Where its provider's MOR-RPC server listens (only with a wallet).
    pub proxy: Option<SocketAddr>,
    /// Where its OpenAI gateway listens (unless `GATEWAY_ADDRESS` turns it off).
    pub gateway: Option<SocketAddr>,
}

impl RouterProcess {
    /// Starts the router and waits (up to 60 s) for its "listening" line.
    pub fn start(vars: &[(String, String)], workdir: &Path) -> anyhow::Result<Self> {
        let mut child = command(vars, workdir)?.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut proxy = None;
            let mut gateway = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix(MOR_RPC_LISTENING) {
                    proxy = Some(addr.trim().to_owned());
                }
                if let Some(addr) = line.strip_prefix(GATEWAY_LISTENING) {
                    gateway = Some(addr.trim().to_owned());
                }
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    let _ = tx.send((addr.trim().to_owned(), proxy.clone(), gateway.clone()));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((addr, proxy, gateway)) => Ok(Self {
                child,
                api: addr.parse().with_context(|| format!("bad address {addr}"))?,
                proxy: proxy.map(|p| p.parse().with_context(|| format!("bad address {p}"))).transpose()?,
                gateway: gateway
                    .map(|g| g.parse().with_context(|| format!("bad address {g}")))
                    .transpose()?,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                bail!("the router did not start its HTTP API (exit: {status})")
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://<api>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// `http://<gateway>` + `path` (fails when the gateway is off).
    pub fn gateway_url(&self, path: &str) -> anyhow::Result<String> {
        let gateway = self.gateway.context("the router's OpenAI gateway is off")?;
        Ok(format!("http://{gateway}{path}"))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the router as `docker stop` does (SIGTERM) and waits for it to exit, at most `limit`;
    /// returns its exit status.
    pub fn terminate(&mut self, limit: std::time::Duration) -> anyhow::Result<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {} failed", self.pid());
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "the router did not stop within {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `curl` got: the HTTP status and the body.
#[derive(Debug)]
pub struct CurlAnswer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl CurlAnswer {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {} {}", self.status, self.body))
    }
}

/// Runs `curl -sS <args>` and returns the status and the body (the status is read from `-w`).
pub fn curl(args: &[&str]) -> anyhow::Result<CurlAnswer> {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "600", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .context("run curl")?;
    anyhow::ensure!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout)?;
    let (body, status) = text.rsplit_once('\n').context("no status line")?;
    Ok(CurlAnswer { status: status.trim().parse()?, body: body.to_owned() })
}
