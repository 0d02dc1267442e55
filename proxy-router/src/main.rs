//! The `proxy-router` binary: parses the command line and runs the requested command.
//!
//! Like the reference's binary, `proxy-router` without a subcommand (or with configuration flags only)
//! runs the node, exactly as `proxy-router run`.
//!
//! `check-config` loads the configuration exactly as the node will (environment over `./.env`, then the
//! configuration flags given after the subcommand, see `proxy_router::config`) and prints it with the
//! secrets redacted. Configuration flags are passed to the loader as raw arguments rather than declared
//! to clap, because they follow the reference's Go syntax (`-eth-node-chain-id 8453`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use proxy_router::chain::bindings;
use proxy_router::config::{self, Config, ConfigError};
use proxy_router::node;

/// The flags clap itself answers (help and version); any other leading flag is a configuration flag.
const CLAP_FLAGS: &[&str] = &["-h", "--help", "-V", "--version"];

/// Exit status of an invalid configuration.
const EXIT_CONFIG_INVALID: u8 = 2;

/// A node for a decentralized AI-inference marketplace.
///
/// Providers register models and bids on chain and serve paid sessions by relaying prompts to their own
/// OpenAI-compatible backend; consumers buy sessions and chat through their local router. It is a
/// drop-in replacement for the Go Morpheus-Lumerin proxy-router.
#[derive(Debug, Parser)]
#[command(name = "proxy-router", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the selector of every function, event and error in the contract bindings.
    ///
    /// One line per entry: `<contract> <function|event|error> <selector> <signature>`. Events show
    /// their topic 0 (32 bytes); functions and errors their 4-byte selector. Useful to check that a
    /// deployed diamond serves the functions this build calls.
    Selectors,

    /// Run the node until Ctrl-C: start-up checks, the store, the indexer and the HTTP API.
    ///
    /// Loads the configuration like `check-config`, refuses to start on any problem (naming the
    /// variable, the wrong chain id, a diamond without code or missing selectors), then indexes the
    /// marketplace into the SQLite store under PROXY_STORAGE_PATH, follows the head, and serves the
    /// HTTP API (Swagger UI at /swagger/index.html) on WEB_ADDRESS with Basic auth from
    /// AUTH_CONFIG_FILE_PATH and COOKIE_FILE_PATH. The provider and consumer roles arrive with a later
    /// issue.
    #[command(after_help = config::flags_help())]
    Run {
        /// Configuration flags in the reference's syntax, e.g. `-eth-node-chain-id 8453`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONFIG_FLAGS")]
        flags: Vec<String>,
    },

    /// Load and validate the configuration, then print it with secrets redacted.
    ///
    /// The configuration is read as the node reads it: the process environment, over `./.env` (the
    /// environment wins), then the configuration flags given after `check-config` (they win). Prints
    /// one `NAME=value` line per variable and exits 0, or prints the problem, naming the variable, and
    /// exits 2.
    #[command(after_help = config::flags_help())]
    CheckConfig {
        /// Configuration flags, e.g. `-eth-node-chain-id 8453` or `--eth-node-address=http://…`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONFIG_FLAGS")]
        flags: Vec<String>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    // `proxy-router -eth-node-chain-id 8453 …` (the reference's command line) is `run` with those flags.
    if args.get(1).is_some_and(|a| a.starts_with('-') && !CLAP_FLAGS.contains(&a.as_str())) {
        return run(&args[1..]);
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Selectors) => {
            print_selectors().context("failed to print the selectors")?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::CheckConfig { flags }) => match check_config(&flags) {
            Ok(report) => {
                print!("{report}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("proxy-router: invalid configuration: {e}");
                Ok(ExitCode::from(EXIT_CONFIG_INVALID))
            }
        },
        Some(Command::Run { flags }) => run(&flags),
        // The reference's binary has no subcommands: `proxy-router` alone, or with configuration flags
        // only, runs the node.
        None => run(&[]),
    }
}

/// Exit status when the node refuses to start or stops on an error.
const EXIT_NODE_FAILED: u8 = 1;

fn run(flags: &[String]) -> anyhow::Result<ExitCode> {
    let loaded = config::env_with_dotenv(None).and_then(|env| Config::load(flags, &env).map(|c| (c, env)));
    let (config, env) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("proxy-router: invalid configuration: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG_INVALID));
        }
    };
    if let Err(e) = proxy_router::logging::init(&config.log) {
        eprintln!("proxy-router: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG_INVALID));
    }
    for (name, instead) in config::unsupported::set_in(&env) {
        tracing::warn!(variable = %name, "{name} is set but not acted on: {instead}");
    }
    let runtime = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            on_signal.cancel();
        });
        match node::run(config, cancel).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("proxy-router: {e}");
                Ok(ExitCode::from(EXIT_NODE_FAILED))
            }
        }
    })
}

fn check_config(flags: &[String]) -> Result<String, ConfigError> {
    let env = config::env_with_dotenv(None)?;
    let config = Config::load(flags, &env)?;
    let mut report = config.to_string();
    match &config.wallet.key {
        Some(key) => report.push_str(&format!("# wallet address: {}\n", key.signer()?.address())),
        None => report.push_str("# no wallet key: read-only node\n"),
    }
    for (name, instead) in config::unsupported::set_in(&env) {
        report.push_str(&format!("# warning: {name} is set but not acted on: {instead}\n"));
    }
    Ok(report)
}

fn print_selectors() -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = bindings::selector_table().iter().try_for_each(|entry| {
        writeln!(out, "{} {} {} {}", entry.contract, entry.kind.as_str(), entry.selector, entry.signature)
    });
    match written.and_then(|()| out.flush()) {
        // A closed pipe (`proxy-router selectors | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what `docker stop`, systemd and Kubernetes send): the node
/// then stops its work in order, writing what is queued. If a handler cannot be installed, that
/// signal keeps its default action (the process ends at once).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
