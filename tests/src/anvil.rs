//! Starts a real anvil on a free port and stops it when the handle is dropped.
//!
//! anvil is started with `--port 0`: the kernel picks a free port and anvil prints
//! `Listening on 127.0.0.1:<port>` on stdout, which is read back here, so tests never race for a
//! fixed port. After that, `eth_chainId` is polled until it answers, within [`STARTUP_TIMEOUT`].

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::{bail, Context};

/// How long anvil may take to print its address and answer `eth_chainId`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The chain id anvil uses unless told otherwise.
pub const ANVIL_CHAIN_ID: u64 = 31337;

/// Pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Prefix of the stdout line in which anvil reports its bound address.
const LISTENING_PREFIX: &str = "Listening on ";

/// Path of the anvil binary installed by `npm ci` at the repository root.
pub fn anvil_path() -> PathBuf {
    crate::repo_root().join("node_modules").join(".bin").join("anvil")
}

/// A running anvil. Dropping it kills the process.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    addr: SocketAddr,
}

impl Anvil {
    /// Starts anvil with its default accounts and chain id and waits until it answers `eth_chainId`.
    ///
    /// Fails (never skips) when `node_modules/.bin/anvil` is missing.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Like [`Anvil::start`], with extra command-line arguments for anvil (e.g. `["--block-time", "1"]`).
    pub async fn start_with_args(args: &[&str]) -> anyhow::Result<Self> {
        let path = anvil_path();
        if !path.exists() {
            bail!(
                "anvil not found at {}: run `npm ci` in the repository root to install the pinned Foundry toolchain",
                path.display()
            );
        }
        let mut child = Command::new(&path)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("failed to start {}", path.display()))?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;

        let addr = match read_listening_addr(&mut child, deadline) {
            Ok(addr) => addr,
            Err(e) => {
                kill(&mut child);
                return Err(e);
            }
        };
        let anvil = Self { child, addr };
        anvil.wait_until_ready(deadline).await?;
        Ok(anvil)
    }

    /// The address anvil listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills anvil now (the chain is gone: every later RPC call fails).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// The HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:45123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A read-only provider connected to this anvil.
    pub fn provider(&self) -> anyhow::Result<DynProvider> {
        let url = self.endpoint().parse().context("anvil endpoint is not a valid URL")?;
        Ok(ProviderBuilder::new().connect_http(url).erased())
    }

    async fn wait_until_ready(&self, deadline: Instant) -> anyhow::Result<()> {
        let provider = self.provider()?;
        loop {
            match provider.get_chain_id().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    bail!("anvil at {} did not answer eth_chainId within {STARTUP_TIMEOUT:?}: {e}", self.addr)
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

fn kill(child: &mut Child) {
    // The process may already have exited; there is nothing else to do about a failure here.
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads anvil's stdout until the `Listening on <addr>` line, then keeps draining it in the background
/// so anvil never blocks on a full pipe. The drain thread ends when anvil exits and closes the pipe.
fn read_listening_addr(child: &mut Child, deadline: Instant) -> anyhow::Result<SocketAddr> {
    let stdout = child.stdout.take().context("anvil stdout was not captured")?;
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("anvil-stdout".into())
        .spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sent {
                    continue;
                }
                if let Some(addr) = line.trim().strip_prefix(LISTENING_PREFIX) {
                    sent = true;
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        })
        .context("failed to spawn the anvil stdout reader")?;

    let timeout = deadline.saturating_duration_since(Instant::now());
    let addr = rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => {
            anyhow::anyhow!("anvil did not report its address within {STARTUP_TIMEOUT:?}")
        }
        mpsc::RecvTimeoutError::Disconnected => {
            anyhow::anyhow!("anvil exited before reporting its address (see its output above)")
        }
    })?;
    addr.parse().with_context(|| format!("anvil reported an unparsable address {addr:?}"))
}
