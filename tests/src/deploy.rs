//! Deploys our marketplace contracts on a test anvil with the project's own deploy script
//! (`contracts/script/DeployLocal.s.sol`, run by the pinned `forge`), and reads back the addresses.
//!
//! The script is the one operators and the demo use, so the tests exercise exactly that wiring.
//! `contracts/out` must be built (`make contracts`); forge then only links and broadcasts (~1-2 s).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use alloy::primitives::Address;
use anyhow::{bail, Context};
use serde::Deserialize;

use crate::anvil::Anvil;

/// Serialises forge runs inside one test process: concurrent `forge script` runs would share
/// `contracts/broadcast` and the script cache.
static FORGE_LOCK: Mutex<()> = Mutex::new(());

/// The addresses written by the deploy script (`deployments/*.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id the script ran on.
    pub chain_id: u64,
    /// Block number before the first deployment transaction (where an indexer starts).
    pub start_block: u64,
    /// Diamond owner (the deployer).
    pub owner: Address,
    /// Account that pays providers of non-direct sessions; it has approved the diamond.
    pub funding_account: Address,
    /// The marketplace diamond.
    pub diamond: Address,
    /// The MOR-like token.
    pub mor_token: Address,
    /// The delegate registry the diamond trusts.
    pub delegate_registry: Address,
    /// Multicall3 on this chain.
    pub multicall3: Address,
    /// Facet implementing IProviderRegistry.
    pub provider_registry_facet: Address,
    /// Facet implementing IModelRegistry.
    pub model_registry_facet: Address,
    /// Facet implementing IMarketplace and IBidStorage.
    pub marketplace_facet: Address,
    /// Facet implementing ISessionRouter and IStatsStorage.
    pub session_router_facet: Address,
    /// Facet implementing IDelegation.
    pub delegation_facet: Address,
}

/// Path of the forge binary installed by `npm ci` at the repository root.
pub fn forge_path() -> PathBuf {
    crate::repo_root().join("node_modules").join(".bin").join("forge")
}

/// Runs the deploy script against `anvil` with its default keys and economics and returns the addresses.
pub fn deploy_marketplace(anvil: &Anvil) -> anyhow::Result<Deployment> {
    let forge = forge_path();
    if !forge.exists() {
        bail!("forge not found at {}: run `npm ci` in the repository root", forge.display());
    }
    let contracts = crate::repo_root().join("contracts");
    if !contracts.join("out").exists() {
        bail!("contracts/out is missing: run `make contracts` first");
    }
    // Relative to contracts/, inside the directory the script may write (foundry.toml fs_permissions).
    let relative = format!("deployments/test-{}-{}.json", std::process::id(), anvil.addr().port());

    let output = {
        let _guard = FORGE_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Command::new(&forge)
            .current_dir(&contracts)
            .args(["script", "script/DeployLocal.s.sol", "--broadcast", "--rpc-url", &anvil.endpoint()])
            .env("DEPLOYMENT_FILE", &relative)
            .output()
            .with_context(|| format!("failed to run {}", forge.display()))?
    };
    if !output.status.success() {
        bail!(
            "forge script failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let path = contracts.join(&relative);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the deployment file {relative}"))
}
