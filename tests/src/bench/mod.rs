//! The relay benchmark (`make bench`, `tests/src/bin/bench.rs`): what a router costs between an OpenAI
//! client and the model, measured the same way for us and for what a user would otherwise put there,
//! in one run on loopback.
//!
//! Paths, each driven by the same [`load`] generator with the same requests:
//!
//! - `direct`: the fake backend ([`backend`]) itself — the baseline every "added" number subtracts;
//! - `nginx`: Debian's nginx as a plain one-hop reverse proxy to the backend ([`procs::start_nginx`]);
//! - `litellm`: the LiteLLM proxy with the backend as an OpenAI-compatible model ([`procs::start_litellm`]);
//! - `proxy-router`: our consumer router → MOR-RPC → our provider router → the backend, on a session
//!   opened through [`crate::market`]. anvil is needed to open the session only: it is **stopped
//!   before anything is measured**, so a chain call on the prompt path would fail the request;
//! - `gateway`: the same two routers reached through the consumer's OpenAI gateway with nothing but an
//!   API key and the model name; the gateway opens its own session for the key before anvil stops.
//!   What it adds over `proxy-router` is the gateway's own cost (key, model, session lookup, usage).
//!
//! Per path and concurrency: requests per second, latency percentiles and what they add over
//! `direct`, time to first chunk and per-chunk time of streams, CPU seconds per 1 000 requests of the
//! path's processes (`/proc/<pid>/stat`), and their peak RSS (`VmHWM`). The memory test holds N
//! streams open and idle through our routers and reports RSS per stream. [`Report`] is written as JSON
//! and as the Markdown tables of `docs/benchmarks.md`.

pub mod backend;
pub mod load;
pub mod procs;
mod report;

pub use report::splice;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use serde::Serialize;

use self::backend::{BenchBackend, Knobs};
use self::load::{Outcome, Phase, Target};
use crate::market::{Market, MarketOptions, ADMIN, MODEL_NAME};

/// Name of the baseline path.
pub const DIRECT: &str = "direct";
/// Name of nginx's path.
pub const NGINX: &str = "nginx";
/// Name of LiteLLM's path.
pub const LITELLM: &str = "litellm";
/// Name of our path (consumer + provider) with the session in the `session_id` header.
pub const OURS: &str = "proxy-router";
/// Name of our path through the consumer's OpenAI gateway: an API key and the model name only.
pub const GATEWAY: &str = "gateway";

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Measured time of each phase, seconds.
    pub phase_s: f64,
    /// Unmeasured warm-up before each phase, seconds.
    pub warmup_s: f64,
    /// Most requests of one phase.
    pub max_requests: u64,
    /// Concurrencies of the non-streamed phases.
    pub json_concurrency: Vec<usize>,
    /// Concurrencies of the streamed phases.
    pub stream_concurrency: Vec<usize>,
    /// Bytes of the user message.
    pub prompt_bytes: usize,
    /// Content bytes of a non-streamed answer.
    pub json_bytes: usize,
    /// Content events of a streamed answer.
    pub stream_chunks: usize,
    /// Content bytes per event.
    pub chunk_bytes: usize,
    /// Idle open streams of the memory test (each a separate run), through our routers.
    pub idle_streams: Vec<usize>,
    /// Whether nginx is measured.
    pub nginx: bool,
    /// Whether LiteLLM is measured.
    pub litellm: bool,
    /// Where nginx's and LiteLLM's configurations and logs go.
    #[serde(skip)]
    pub work_dir: PathBuf,
}

impl Settings {
    /// The full benchmark of `make bench`.
    pub fn full(work_dir: PathBuf) -> Self {
        Self {
            phase_s: 5.0,
            warmup_s: 1.0,
            max_requests: 2_000_000,
            json_concurrency: vec![1, 32, 200],
            stream_concurrency: vec![1, 32],
            prompt_bytes: 1024,
            json_bytes: 1024,
            stream_chunks: 64,
            chunk_bytes: 16,
            idle_streams: vec![5000],
            nginx: true,
            litellm: true,
            work_dir,
        }
    }

    /// A few requests through `direct` and our routers only (the smoke test of `make test`).
    pub fn smoke(work_dir: PathBuf) -> Self {
        Self {
            phase_s: 0.3,
            warmup_s: 0.05,
            max_requests: 40,
            json_concurrency: vec![1, 4],
            stream_concurrency: vec![2],
            stream_chunks: 8,
            idle_streams: vec![16],
            nginx: false,
            litellm: false,
            ..Self::full(work_dir)
        }
    }
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// Online cores.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// UTC date and time of the run (`date -u`).
    pub date: String,
}

impl Machine {
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let kernel =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self { cpu, cores: std::thread::available_parallelism().map_or(1, |n| n.get()), kernel, date }
    }
}

/// One path's processes and memory.
#[derive(Debug, Clone, Serialize)]
pub struct PathInfo {
    /// Path name.
    pub name: String,
    /// What runs it.
    pub processes: String,
    /// Peak RSS of its processes at the end of the run, KiB (none for `direct`: in-process).
    pub peak_rss_kb: Option<u64>,
    /// RSS of its processes when the load phases started, KiB: for our routers, what the memory test
    /// left them holding (freed heap the allocator keeps), which the peak includes.
    pub start_rss_kb: Option<u64>,
}

/// One measured phase on one path.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `json` or `stream`.
    pub kind: &'static str,
    /// Requests in flight.
    pub concurrency: usize,
    /// Path name.
    pub path: String,
    /// What the load generator saw.
    pub outcome: Outcome,
    /// CPU seconds of the path's processes during the phase.
    pub cpu_s: Option<f64>,
    /// CPU seconds per 1 000 answered requests.
    pub cpu_s_per_1000: Option<f64>,
    /// Median latency minus `direct`'s, µs.
    pub added_p50_us: Option<f64>,
    /// 99th percentile latency minus `direct`'s, µs.
    pub added_p99_us: Option<f64>,
    /// Median time to first chunk minus `direct`'s, µs.
    pub added_ttfc_p50_us: Option<f64>,
    /// Median per-event time of streams minus `direct`'s, µs.
    pub added_per_event_p50_us: Option<f64>,
}

/// The memory test's result.
#[derive(Debug, Clone, Serialize)]
pub struct IdleStreams {
    /// Streams asked for.
    pub streams: usize,
    /// Streams that got their first event and were held.
    pub opened: usize,
    /// Streams that failed to open.
    pub failed: usize,
    /// The first failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Seconds to open them all.
    pub open_s: f64,
    /// RSS of the consumer before, KiB.
    pub consumer_before_kb: u64,
    /// RSS of the consumer with every stream open, KiB.
    pub consumer_open_kb: u64,
    /// RSS of the provider before, KiB.
    pub provider_before_kb: u64,
    /// RSS of the provider with every stream open, KiB.
    pub provider_open_kb: u64,
    /// Added RSS of both per open stream, KiB.
    pub per_stream_kb: f64,
}

/// The cryptography MOR-RPC requires per answer frame, timed in this process on one core as the routers
/// do it: the provider encrypts the chunk to the consumer (ECIES under the answer's ephemeral key, a
/// fresh IV per frame) and signs the frame; the consumer checks the signature and decrypts. The floor
/// under our per-chunk time. Measured over one answer of [`CryptoFloor::ROUNDS`] frames, so the one
/// ECDH per answer on each side is included, spread over its frames.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CryptoFloor {
    /// Bytes of the chunk encrypted.
    pub chunk_bytes: usize,
    /// µs per frame on the provider (`SessionPromptRes::encrypt`).
    pub provider_us: f64,
    /// µs per frame on the consumer (signature recovery and decryption).
    pub consumer_us: f64,
}

impl CryptoFloor {
    /// Frames of the measured answer.
    const ROUNDS: u32 = 200;

    fn measure() -> anyhow::Result<Self> {
        use alloy::signers::local::PrivateKeySigner;
        use proxy_router::protocol::ecies::{Decryptor, Encryptor};
        use proxy_router::protocol::signing::uncompressed_public_key;
        use proxy_router::protocol::{SessionPromptRes, Signable as _};
        const ROUNDS: u32 = CryptoFloor::ROUNDS;
        let (provider, consumer) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let consumer_key = uncompressed_public_key(&consumer);
        let chunk = br#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"lorem ipsum dol"},"finish_reason":null}]}"#;
        let started = Instant::now();
        let encryptor = Encryptor::new(&consumer_key)?;
        let mut frames = Vec::new();
        for i in 0..ROUNDS {
            frames.push(SessionPromptRes::encrypt_with(&provider, &encryptor, chunk, u64::from(i))?);
        }
        let provider_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        let started = Instant::now();
        let mut decryptor = Decryptor::new(&consumer)?;
        for frame in &frames {
            frame.verify_signer(provider.address())?;
            anyhow::ensure!(
                frame.decrypt_with(&mut decryptor)? == chunk,
                "the chunk did not decrypt to itself"
            );
        }
        let consumer_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        Ok(Self { chunk_bytes: chunk.len(), provider_us, consumer_us })
    }
}

/// A target of the issue and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is asked.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met, or not (`None`: not measured in this run).
    pub met: Option<bool>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where and when.
    pub machine: Machine,
    /// What was run.
    pub settings: Settings,
    /// Whether the peak RSS of [`Report::paths`] was reset after the memory test (so it is the load
    /// phases' peak); otherwise it includes the memory test's.
    pub peak_rss_after_memory_test: bool,
    /// What the protocol's cryptography costs per streamed chunk on this machine.
    pub crypto: CryptoFloor,
    /// The paths and their memory.
    pub paths: Vec<PathInfo>,
    /// Every phase on every path.
    pub runs: Vec<Run>,
    /// The memory test.
    pub idle_streams: Vec<IdleStreams>,
    /// The issue's targets.
    pub targets: Vec<TargetCheck>,
    /// Seconds the whole run took (set-up included).
    pub elapsed_s: f64,
}

struct Path {
    target: Target,
    /// The `model` its requests name.
    model: &'static str,
    pids: Vec<u32>,
    processes: String,
}

/// Runs the benchmark. Progress goes to stderr.
pub async fn run(settings: &Settings) -> anyhow::Result<Report> {
    let started = Instant::now();
    let machine = Machine::read();
    let ticks = procs::clock_ticks();
    let knobs = Knobs {
        json_bytes: settings.json_bytes,
        chunks: settings.stream_chunks,
        chunk_bytes: settings.chunk_bytes,
        ..Knobs::default()
    };
    let backend = BenchBackend::start(knobs).await?;
    eprintln!("bench: backend on {}", backend.addr());

    // Our routers: a provider serving the model from the bench backend, a consumer with a session.
    let mut options = MarketOptions::new(&[10_000_000_000_000]);
    options.backend_url = Some(backend.chat_url());
    let quiet = ("RUST_LOG".to_owned(), "error".to_owned());
    options.provider_env = vec![
        // One session carries the whole load: let its prompts run side by side.
        ("PROXY_SESSION_CONCURRENCY".to_owned(), "1000000".to_owned()),
        ("PROXY_MAX_CONNECTIONS".to_owned(), "1000000".to_owned()),
        quiet.clone(),
    ];
    options.consumer_env = vec![
        // The gateway's one session for the key carries the whole load too.
        ("GATEWAY_SESSION_CONCURRENCY".to_owned(), "1000000".to_owned()),
        quiet,
    ];
    let mut market = Market::start_with(&options).await.context("start the marketplace")?;
    let session = market.open_session(3600).context("open a session")?;
    eprintln!("bench: session {session} open");
    let consumer = market.consumer()?;
    let provider = market.providers[0].router.as_ref().context("no provider router")?;
    let ours_pids = vec![consumer.pid(), provider.pid()];
    let (consumer_pid, provider_pid) = (consumer.pid(), provider.pid());
    eprintln!("bench: consumer router pid {consumer_pid}, provider router pid {provider_pid}");
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(ADMIN));
    let ours = Target::new(OURS, consumer.url("/v1/chat/completions"))
        .header("authorization", &auth)?
        .header("session_id", &session)?;
    let (_, api_key) = market.create_key(&serde_json::json!({"name": "bench"}))?;
    let gateway = Target::new(GATEWAY, consumer.gateway_url("/v1/chat/completions")?)
        .header("authorization", &format!("Bearer {api_key}"))?;
    let client = load::client()?;
    // One prompt of each kind before the chain goes away (the consumer learns the provider's key, the
    // gateway opens the key's session).
    for stream in [false, true] {
        load::request(&client, &ours, &load::chat_body(backend::MODEL, 64, stream)).await?;
        load::request(&client, &gateway, &load::chat_body(MODEL_NAME, 64, stream)).await?;
    }
    market.chain.anvil.stop();
    eprintln!("bench: anvil stopped; from here on a chain call would fail the request");

    let mut paths = vec![Path {
        target: Target::new(DIRECT, backend.chat_url()),
        model: backend::MODEL,
        pids: Vec::new(),
        processes: "the fake backend itself (no proxy)".to_owned(),
    }];
    let _nginx = if settings.nginx {
        let nginx = procs::start_nginx(&settings.work_dir.join("nginx"), backend.addr())?;
        eprintln!("bench: nginx on {}", nginx.base_url);
        paths.push(Path {
            target: Target::new(NGINX, format!("{}/v1/chat/completions", nginx.base_url)),
            model: backend::MODEL,
            pids: vec![nginx.pid()],
            processes: "nginx master + workers (one per core)".to_owned(),
        });
        Some(nginx)
    } else {
        None
    };
    let _litellm = if settings.litellm {
        let litellm = procs::start_litellm(&settings.work_dir.join("litellm"), &backend.base_url())?;
        eprintln!("bench: litellm on {}", litellm.base_url);
        paths.push(Path {
            target: Target::new(LITELLM, format!("{}/v1/chat/completions", litellm.base_url)),
            model: backend::MODEL,
            pids: vec![litellm.pid()],
            processes: "litellm proxy (one worker) and its children".to_owned(),
        });
        Some(litellm)
    } else {
        None
    };
    paths.push(Path {
        target: ours,
        model: backend::MODEL,
        pids: ours_pids.clone(),
        processes: "consumer router + provider router".to_owned(),
    });
    let ours_index = paths.len() - 1;
    paths.push(Path {
        target: gateway,
        model: MODEL_NAME,
        pids: ours_pids,
        processes: "consumer router (its gateway) + provider router".to_owned(),
    });

    // The memory test first, on fresh processes.
    let mut idle = Vec::new();
    for &n in &settings.idle_streams {
        let result =
            idle_streams(&client, &paths[ours_index].target, &backend, n, consumer_pid, provider_pid).await;
        eprintln!(
            "bench: {} idle streams: {} open, {:.1} KiB per stream",
            n, result.opened, result.per_stream_kb
        );
        idle.push(result);
    }
    backend.set(knobs);
    // Peak RSS from here on is the load phases' (the memory test is reported on its own).
    let start_rss: Vec<Option<u64>> =
        paths.iter().map(|p| (!p.pids.is_empty()).then(|| procs::rss_kb(&p.pids))).collect();
    let peak_reset = paths.iter().all(|p| procs::reset_peak_rss(&p.pids));
    let crypto = CryptoFloor::measure()?;
    eprintln!(
        "bench: crypto per chunk: provider {:.0} µs (encrypt + sign), consumer {:.0} µs (verify + decrypt)",
        crypto.provider_us, crypto.consumer_us
    );

    let mut runs = Vec::new();
    let phase_time = Duration::from_secs_f64(settings.phase_s);
    let warmup_time = Duration::from_secs_f64(settings.warmup_s);
    let kinds = [("json", false, &settings.json_concurrency), ("stream", true, &settings.stream_concurrency)];
    for (kind, stream, concurrencies) in kinds {
        for &concurrency in concurrencies.iter() {
            for path in &paths {
                let body = load::chat_body(path.model, settings.prompt_bytes, stream);
                let warmup =
                    Phase { concurrency, duration: warmup_time, max_requests: settings.max_requests };
                load::run(&client, &path.target, &body, warmup).await;
                let cpu_before = (!path.pids.is_empty()).then(|| procs::cpu_seconds(&path.pids, ticks));
                let phase = Phase { concurrency, duration: phase_time, max_requests: settings.max_requests };
                let outcome = load::run(&client, &path.target, &body, phase).await;
                let cpu_s = cpu_before.map(|before| procs::cpu_seconds(&path.pids, ticks) - before);
                let cpu_s_per_1000 = cpu_s.filter(|_| outcome.ok > 0).map(|c| c * 1000.0 / outcome.ok as f64);
                eprintln!(
                    "bench: {kind:6} c={concurrency:<3} {:12} {:>9.0} req/s  p50 {:>8.0} µs  p99 {:>8.0} µs  ttfc p50 {:>8.0} µs  errors {}{}",
                    path.target.name,
                    outcome.rps,
                    outcome.latency.p50_us,
                    outcome.latency.p99_us,
                    outcome.ttfc.p50_us,
                    outcome.errors,
                    outcome.first_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
                );
                runs.push(Run {
                    kind,
                    concurrency,
                    path: path.target.name.clone(),
                    outcome,
                    cpu_s,
                    cpu_s_per_1000,
                    added_p50_us: None,
                    added_p99_us: None,
                    added_ttfc_p50_us: None,
                    added_per_event_p50_us: None,
                });
            }
        }
    }
    fill_added(&mut runs);

    let path_infos = paths
        .iter()
        .zip(start_rss)
        .map(|(p, start_rss_kb)| PathInfo {
            name: p.target.name.clone(),
            processes: p.processes.clone(),
            peak_rss_kb: (!p.pids.is_empty()).then(|| procs::peak_rss_kb(&p.pids)),
            start_rss_kb,
        })
        .collect();
    let targets = report::check_targets(&runs, &idle, settings);
    drop(market);
    Ok(Report {
        machine,
        settings: settings.clone(),
        peak_rss_after_memory_test: peak_reset,
        crypto,
        paths: path_infos,
        runs,
        idle_streams: idle,
        targets,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// Holds `n` streams open and idle through `target` (our consumer) and measures the routers' RSS.
async fn idle_streams(
    client: &reqwest::Client,
    target: &Target,
    backend: &BenchBackend,
    n: usize,
    consumer_pid: u32,
    provider_pid: u32,
) -> IdleStreams {
    backend.set(Knobs { chunks: 4, chunk_bytes: 16, hold: true, ..Knobs::default() });
    let consumer_before_kb = procs::rss_kb(&[consumer_pid]);
    let provider_before_kb = procs::rss_kb(&[provider_pid]);
    let body = load::chat_body(backend::MODEL, 256, true);
    let opening = Arc::new(tokio::sync::Semaphore::new(128));
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let finish = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, target, body, opening, opened_tx, finish) = (
            client.clone(),
            target.clone(),
            body.clone(),
            opening.clone(),
            opened_tx.clone(),
            finish.clone(),
        );
        tasks.spawn(async move {
            let permit = opening.acquire_owned().await;
            let sent = client
                .post(&target.url)
                .headers(target.headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            let mut response = match sent {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    let _ = opened_tx
                        .send(Err(format!("{status}: {}", text.chars().take(300).collect::<String>())));
                    return;
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e.to_string()));
                    return;
                }
            };
            // The first event arrived: the stream is open through both routers.
            let first = response.chunk().await;
            drop(permit);
            let _ = opened_tx.send(first.map(|_| ()).map_err(|e| e.to_string()));
            finish.notified().await;
            while let Ok(Some(_)) = response.chunk().await {}
        });
    }
    drop(opened_tx);
    let (mut opened, mut failed, mut first_error) = (0usize, 0usize, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while opened + failed < n {
        match tokio::time::timeout_at(deadline, opened_rx.recv()).await {
            Ok(Some(Ok(()))) => opened += 1,
            Ok(Some(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let consumer_open_kb = procs::rss_kb(&[consumer_pid]);
    let provider_open_kb = procs::rss_kb(&[provider_pid]);
    let added = (consumer_open_kb + provider_open_kb).saturating_sub(consumer_before_kb + provider_before_kb);
    let per_stream_kb = if opened > 0 { added as f64 / opened as f64 } else { 0.0 };
    backend.release();
    finish.notify_waiters();
    // Tasks that had not reached `notified` yet see the release through the backend.
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            finish.notify_waiters();
            match tokio::time::timeout(Duration::from_millis(200), tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {}
            }
        }
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    IdleStreams {
        streams: n,
        opened,
        failed,
        first_error,
        open_s,
        consumer_before_kb,
        consumer_open_kb,
        provider_before_kb,
        provider_open_kb,
        per_stream_kb,
    }
}

/// Sets each run's "added" numbers: the path's minus `direct`'s at the same kind and concurrency.
fn fill_added(runs: &mut [Run]) {
    let baselines: Vec<(&'static str, usize, Outcome)> = runs
        .iter()
        .filter(|r| r.path == DIRECT)
        .map(|r| (r.kind, r.concurrency, r.outcome.clone()))
        .collect();
    for run in runs.iter_mut() {
        let Some((_, _, base)) = baselines.iter().find(|(k, c, _)| *k == run.kind && *c == run.concurrency)
        else {
            continue;
        };
        if run.outcome.ok == 0 || base.ok == 0 {
            continue;
        }
        let o = &run.outcome;
        run.added_p50_us = Some(o.latency.p50_us - base.latency.p50_us);
        run.added_p99_us = Some(o.latency.p99_us - base.latency.p99_us);
        run.added_ttfc_p50_us = Some(o.ttfc.p50_us - base.ttfc.p50_us);
        if let (Some(p), Some(b)) = (&o.per_event, &base.per_event) {
            run.added_per_event_p50_us = Some(p.p50_us - b.p50_us);
        }
    }
}
