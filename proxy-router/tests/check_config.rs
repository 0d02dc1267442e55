//! `proxy-router check-config` as an operator runs it: a real process with its own environment and a
//! `.env` file in its working directory. Valid configurations print with secrets redacted and exit 0;
//! invalid ones exit 2 with a message naming the variable (or the `.env` line), never the secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

const KEY0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DIAMOND: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const TOKEN: &str = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";

/// A fresh working directory, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(dotenv: Option<&str>) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir()
            .join(format!("proxy-router-check-config-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(text) = dotenv {
            std::fs::write(dir.join(".env"), text).unwrap();
        }
        WorkDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &WorkDir, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_proxy-router"))
        .arg("check-config")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("run proxy-router");
    (status.code(), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

fn dotenv() -> String {
    format!(
        "ETH_NODE_ADDRESS=http://127.0.0.1:8545\nETH_NODE_CHAIN_ID=1\nDIAMOND_CONTRACT_ADDRESS={DIAMOND}\n\
         MOR_TOKEN_ADDRESS={TOKEN}\nWALLET_PRIVATE_KEY={KEY0}\n"
    )
}

#[test]
fn a_valid_configuration_prints_redacted_and_exits_0() {
    let dir = WorkDir::new(Some(&dotenv()));
    let (code, out, err) = run(&dir, &[("ETH_NODE_CHAIN_ID", "2")], &["-eth-node-polling-interval", "90"]);
    assert_eq!(code, Some(0), "{err}");
    // The environment beats .env, the flag sets its variable.
    assert!(out.contains("ETH_NODE_CHAIN_ID=2\n"), "{out}");
    assert!(out.contains("ETH_NODE_POLLING_INTERVAL=1m30s\n"), "{out}");
    assert!(out.contains("WALLET_PRIVATE_KEY=<redacted>\n"), "{out}");
    assert!(out.contains("# wallet address: 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n"), "{out}");
    assert!(!out.contains(&KEY0[2..]) && !err.contains(&KEY0[2..]));

    let (code, out, _) = run(&dir, &[], &["--eth-node-chain-id=3"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("ETH_NODE_CHAIN_ID=3\n"), "{out}");
}

#[test]
fn an_invalid_value_exits_2_naming_the_variable() {
    let dir = WorkDir::new(Some(&dotenv()));
    let (code, out, err) = run(&dir, &[("ETH_NODE_POLLING_INTERVAL", "ten")], &[]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err,
        "proxy-router: invalid configuration: ETH_NODE_POLLING_INTERVAL: \"ten\" is not a duration (use 10s, \
         1m30s or a number of seconds)\n"
    );

    let (code, _, err) = run(&WorkDir::new(None), &[], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ETH_NODE_ADDRESS is required"), "{err}");

    let (code, _, err) = run(&dir, &[], &["--eth-node-chain-id=0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ETH_NODE_CHAIN_ID (flag --eth-node-chain-id): 0 is out of range"), "{err}");
}

#[test]
fn a_bad_key_exits_2_without_showing_it() {
    let bad = format!("{KEY0}ab");
    let dir = WorkDir::new(Some(&dotenv()));
    let (code, out, err) = run(&dir, &[("WALLET_PRIVATE_KEY", &bad)], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("WALLET_PRIVATE_KEY: the private key must be 32 bytes"), "{err}");
    assert!(!err.contains(&KEY0[2..20]) && !out.contains(&KEY0[2..20]), "{err}{out}");
}

#[test]
fn a_malformed_dotenv_exits_2_naming_the_file_and_line() {
    let text = format!(
        "{}WALLET_PRIVATE_KEY = {KEY0} oops\n",
        dotenv().replace(&format!("WALLET_PRIVATE_KEY={KEY0}\n"), "")
    );
    let dir = WorkDir::new(Some(&text));
    let (code, _, err) = run(&dir, &[], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains(".env: line 5 (WALLET_PRIVATE_KEY): malformed value"), "{err}");
    assert!(!err.contains(&KEY0[2..20]), "{err}");
}

#[test]
fn an_unknown_flag_exits_2_naming_it() {
    let dir = WorkDir::new(Some(&dotenv()));
    let (code, _, err) = run(&dir, &[], &["--eth-node-chain", "5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown flag --eth-node-chain:"), "{err}");
}

#[test]
fn reference_variables_without_effect_are_named_with_what_the_node_does_instead() {
    let dir = WorkDir::new(Some(&format!(
        "{}DOCKER_HOST=unix:///var/run/docker.sock\nENVIRONMENT=production\n",
        dotenv()
    )));
    let (code, out, err) = run(&dir, &[("SESSION_HEALTH_POLICY", "strict"), ("WEB_PUBLIC_URL", "")], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("# warning: DOCKER_HOST is set but not acted on: no effect: Docker management"),
        "{out}"
    );
    assert!(out.contains("# warning: ENVIRONMENT is set but not acted on:"), "{out}");
    assert!(out.contains("# warning: SESSION_HEALTH_POLICY is set but not acted on:"), "{out}");
    // An empty value is not a setting.
    assert!(!out.contains("WEB_PUBLIC_URL is set"), "{out}");
}
