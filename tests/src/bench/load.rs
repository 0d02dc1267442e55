//! The load generator: a fixed number of workers, each on a keep-alive connection, sending the same
//! request back to back for a fixed time (or count), and timing each answer as it arrives.
//!
//! For every request it records the whole latency, the time to the first body chunk, and for streams
//! the arrival of each SSE event (events are counted by their `\n\n` ends as the bytes arrive), so a
//! stream's per-event time is `(last event - first event) / (events - 1)`. Percentiles are exact: the
//! samples are sorted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

/// One path to drive: a chat completions URL and the headers it needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Short name (`direct`, `nginx`, `litellm`, `proxy-router`).
    pub name: String,
    /// The full chat completions URL.
    pub url: String,
    /// Extra headers (auth, session).
    pub headers: HeaderMap,
}

impl Target {
    /// A target without extra headers.
    pub fn new(name: &str, url: String) -> Self {
        Self { name: name.to_owned(), url, headers: HeaderMap::new() }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> anyhow::Result<Self> {
        self.headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value)?);
        Ok(self)
    }
}

/// The request body every path gets: a chat request with a `prompt_bytes`-byte user message.
pub fn chat_body(model: &str, prompt_bytes: usize, stream: bool) -> Bytes {
    let prompt: String =
        "please summarise the following text in one line. ".chars().cycle().take(prompt_bytes).collect();
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 256,
        "stream": stream,
    });
    Bytes::from(body.to_string())
}

/// An HTTP client for the load: keep-alive, no proxy, no Nagle.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(300))
        .timeout(Duration::from_secs(120))
        .build()
        .context("build the load client")
}

/// One answered request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// From sending to the last byte.
    pub latency: Duration,
    /// From sending to the first body chunk.
    pub ttfc: Duration,
    /// SSE events received (0 for JSON).
    pub events: u32,
    /// From sending to the first complete event.
    pub first_event: Duration,
    /// From sending to the last complete event.
    pub last_event: Duration,
}

impl Sample {
    /// Mean time between consecutive events, when there were at least two.
    pub fn per_event(&self) -> Option<Duration> {
        (self.events >= 2).then(|| (self.last_event.saturating_sub(self.first_event)) / (self.events - 1))
    }
}

/// Sends one request and reads the whole answer, timing it.
pub async fn request(client: &reqwest::Client, target: &Target, body: &Bytes) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let mut response = client
        .post(&target.url)
        .headers(target.headers.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        anyhow::bail!("{} answered {status}: {}", target.name, text.chars().take(300).collect::<String>());
    }
    let mut sample = Sample {
        latency: Duration::ZERO,
        ttfc: Duration::ZERO,
        events: 0,
        first_event: Duration::ZERO,
        last_event: Duration::ZERO,
    };
    let mut first = true;
    let mut newline = false;
    while let Some(chunk) = response.chunk().await? {
        let at = started.elapsed();
        if first {
            sample.ttfc = at;
            first = false;
        }
        let before = sample.events;
        for &b in chunk.iter() {
            match b {
                b'\n' if newline => {
                    sample.events += 1;
                    newline = false;
                }
                b'\n' => newline = true,
                b'\r' => {}
                _ => newline = false,
            }
        }
        if sample.events > before {
            if before == 0 {
                sample.first_event = at;
            }
            sample.last_event = at;
        }
    }
    sample.latency = started.elapsed();
    Ok(sample)
}

/// Percentiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// Samples.
    pub n: usize,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Stats {
    /// The statistics of `values` (sorted here).
    pub fn of(mut values: Vec<Duration>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let at = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            us(values[rank - 1])
        };
        let sum: f64 = values.iter().map(|d| us(*d)).sum();
        Self {
            n: values.len(),
            mean_us: sum / values.len() as f64,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: us(values[values.len() - 1]),
        }
    }
}

/// How to run one measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Workers (requests in flight).
    pub concurrency: usize,
    /// How long workers start new requests.
    pub duration: Duration,
    /// At most this many requests in all.
    pub max_requests: u64,
}

/// What one phase measured on one path.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Requests answered 2xx and read to the end.
    pub ok: u64,
    /// Requests that failed (status, connection, timeout).
    pub errors: u64,
    /// The first failure's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// From the first request to the last answer, seconds.
    pub elapsed_s: f64,
    /// `ok / elapsed_s`.
    pub rps: f64,
    /// Whole-answer latency.
    pub latency: Stats,
    /// Time to the first body chunk.
    pub ttfc: Stats,
    /// Per-event time of streams (absent for JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_event: Option<Stats>,
    /// Mean SSE events per answer (0 for JSON).
    pub events_per_answer: f64,
}

/// Runs `phase` against `target` with `body`.
pub async fn run(client: &reqwest::Client, target: &Target, body: &Bytes, phase: Phase) -> Outcome {
    let started = Instant::now();
    let deadline = started + phase.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..phase.concurrency.max(1) {
        let (client, target, body, issued) = (client.clone(), target.clone(), body.clone(), issued.clone());
        workers.spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < phase.max_requests {
                match request(&client, &target, &body).await {
                    Ok(sample) => samples.push(sample),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        // A refusing path must not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (samples, errors, first_error)
        });
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((s, e, f)) => {
                samples.extend(s);
                errors += e;
                if first_error.is_none() {
                    first_error = f;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("worker failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = samples.len() as u64;
    let events: u64 = samples.iter().map(|s| u64::from(s.events)).sum();
    let per_event: Vec<Duration> = samples.iter().filter_map(Sample::per_event).collect();
    Outcome {
        ok,
        errors,
        first_error,
        elapsed_s: elapsed,
        rps: if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 },
        latency: Stats::of(samples.iter().map(|s| s.latency).collect()),
        ttfc: Stats::of(samples.iter().map(|s| s.ttfc).collect()),
        per_event: (!per_event.is_empty()).then(|| Stats::of(per_event)),
        events_per_answer: if ok > 0 { events as f64 / ok as f64 } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let stats = Stats::of(values);
        assert_eq!(
            (stats.n, stats.p50_us, stats.p90_us, stats.p99_us, stats.max_us),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert!((stats.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(Stats::of(vec![Duration::from_micros(7)]).p99_us, 7.0);
    }
}
