//! `make bench`: the relay benchmark of `e2e_tests::bench`, side by side with a direct call, nginx and
//! the LiteLLM proxy. Writes the JSON report and splices the Markdown tables into `docs/benchmarks.md`
//! (between `<!-- bench:begin -->` and `<!-- bench:end -->`).
//!
//! ```text
//! bench [--smoke] [--phase SECONDS] [--idle N,…] [--json-concurrency N,…] [--stream-concurrency N,…]
//!       [--no-nginx] [--no-litellm] [--json PATH] [--markdown PATH | --no-markdown]
//! ```
//!
//! Defaults: the full run, `docs/benchmarks.json`, `docs/benchmarks.md`; nginx's and LiteLLM's
//! configurations and logs under `target/bench/`. `ROUTER_BINARY` names the `proxy-router` binary to run
//! (`make bench` builds and names the release build); without it the debug build is used.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use e2e_tests::bench::{self, Settings};
use e2e_tests::repo_root;

/// `1,32,200` (an empty list is allowed).
fn counts(list: &str) -> anyhow::Result<Vec<usize>> {
    list.split(',').filter(|s| !s.trim().is_empty()).map(|s| Ok(s.trim().parse::<usize>()?)).collect()
}

fn main() -> anyhow::Result<()> {
    let root = repo_root();
    let work_dir = root.join("target").join("bench");
    let mut settings = Settings::full(work_dir.clone());
    let mut json_path = root.join("docs").join("benchmarks.json");
    let mut markdown_path = Some(root.join("docs").join("benchmarks.md"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--smoke" => settings = Settings::smoke(work_dir.clone()),
            "--phase" => settings.phase_s = value("--phase")?.parse().context("--phase: seconds")?,
            "--idle" => settings.idle_streams = counts(&value("--idle")?).context("--idle")?,
            "--json-concurrency" => {
                settings.json_concurrency =
                    counts(&value("--json-concurrency")?).context("--json-concurrency")?
            }
            "--stream-concurrency" => {
                settings.stream_concurrency =
                    counts(&value("--stream-concurrency")?).context("--stream-concurrency")?
            }
            "--no-nginx" => settings.nginx = false,
            "--no-litellm" => settings.litellm = false,
            "--json" => json_path = PathBuf::from(value("--json")?),
            "--markdown" => markdown_path = Some(PathBuf::from(value("--markdown")?)),
            "--no-markdown" => markdown_path = None,
            "-h" | "--help" => {
                println!(
                    "bench [--smoke] [--phase SECONDS] [--idle N,…] [--json-concurrency N,…] \
                     [--stream-concurrency N,…] [--no-nginx] [--no-litellm] [--json PATH] \
                     [--markdown PATH | --no-markdown]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    // The memory test needs about two descriptors per stream in the bench and in each router.
    if let Some(limit) = bench::procs::open_files_limit() {
        let fit = (limit.saturating_sub(512) / 2) as usize;
        for n in settings.idle_streams.iter_mut() {
            if *n > fit {
                eprintln!(
                    "bench: {n} idle streams need more open files than the limit {limit}: {fit} instead"
                );
                *n = fit;
            }
        }
    }
    std::fs::create_dir_all(&work_dir)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(bench::run(&settings))?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));

    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", json_path.display()))?;
    let markdown = report.markdown();
    std::fs::write(work_dir.join("report.md"), &markdown)?;
    if let Some(path) = markdown_path {
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
        std::fs::write(&path, bench::splice(&doc, &markdown))
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("bench: wrote {} and {}", json_path.display(), path.display());
    }
    println!("{markdown}");
    Ok(())
}
