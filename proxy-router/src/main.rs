//! The `proxy-router` binary: parses the command line and runs the requested command.
//!
//! The node roles (provider and consumer) arrive with later issues; until then running the binary
//! without a subcommand says so and exits with status 2.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use proxy_router::chain::bindings;

/// Exit status when the node itself is requested but not part of this build.
const EXIT_NODE_UNAVAILABLE: u8 = 2;

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
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Selectors) => {
            print_selectors().context("failed to print the selectors")?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "proxy-router: the node (provider and consumer roles) is not available in this build yet; \
                 see README.md for the current status. Run `proxy-router --help` for the available commands."
            );
            Ok(ExitCode::from(EXIT_NODE_UNAVAILABLE))
        }
    }
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
