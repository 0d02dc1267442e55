//! What a benchmark run reports: the targets checked against the runs ([`check_targets`]) and the
//! Markdown tables of `docs/benchmarks.md` ([`Report::markdown`], [`splice`]).

use std::fmt::Write as _;

use super::{IdleStreams, Report, Run, Settings, TargetCheck, DIRECT, GATEWAY, LITELLM, NGINX, OURS};

pub(super) fn find<'a>(runs: &'a [Run], kind: &str, concurrency: usize, path: &str) -> Option<&'a Run> {
    runs.iter().find(|r| r.kind == kind && r.concurrency == concurrency && r.path == path)
}

pub(super) fn check_targets(runs: &[Run], idle: &[IdleStreams], settings: &Settings) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let top = settings.json_concurrency.iter().copied().max().unwrap_or(1);
    let ours = find(runs, "json", top, OURS);
    let ms = |us: f64| format!("{:.2} ms", us / 1000.0);
    let both = |a: Option<f64>, b: Option<f64>| a.zip(b);
    match ours.and_then(|r| both(r.added_p50_us, r.added_p99_us)) {
        Some((p50, p99)) => {
            checks.push(TargetCheck {
                target: format!("added latency p50 ≤ 0.3 ms, 1 KiB JSON chat, both hops, c={top}"),
                measured: ms(p50),
                met: Some(p50 <= 300.0),
            });
            checks.push(TargetCheck {
                target: format!("added latency p99 ≤ 1.5 ms, 1 KiB JSON chat, both hops, c={top}"),
                measured: ms(p99),
                met: Some(p99 <= 1500.0),
            });
        }
        None => checks.push(TargetCheck {
            target: "added latency p50 ≤ 0.3 ms, p99 ≤ 1.5 ms".into(),
            measured: "not measured".into(),
            met: None,
        }),
    }
    let rps = |path: &str| find(runs, "json", top, path).map(|r| r.outcome.rps).filter(|r| *r > 0.0);
    let ours_rps = rps(OURS);
    let ratio = |other: &str, want: f64, what: &str| match both(ours_rps, rps(other)) {
        Some((o, t)) => TargetCheck {
            target: format!("throughput ≥ {what} at c={top}"),
            measured: format!("{o:.0} vs {t:.0} req/s = {:.2}×", o / t),
            met: Some(o / t >= want),
        },
        None => TargetCheck {
            target: format!("throughput ≥ {what} at c={top}"),
            measured: "not measured".into(),
            met: None,
        },
    };
    checks.push(ratio(NGINX, 0.5, "50 % of nginx's one hop"));
    checks.push(ratio(LITELLM, 10.0, "10× LiteLLM's"));
    let stream = find(runs, "stream", 1, OURS).or_else(|| {
        let c = settings.stream_concurrency.iter().copied().min().unwrap_or(1);
        find(runs, "stream", c, OURS)
    });
    let stream_c = stream.map_or(1, |r| r.concurrency);
    match stream.and_then(|r| r.added_per_event_p50_us) {
        Some(us) => checks.push(TargetCheck {
            target: format!("streaming: ≤ 50 µs added per chunk (c={stream_c})"),
            measured: format!("{us:.0} µs"),
            met: Some(us <= 50.0),
        }),
        None => checks.push(TargetCheck {
            target: "streaming: ≤ 50 µs added per chunk".into(),
            measured: "not measured".into(),
            met: None,
        }),
    }
    match stream.and_then(|r| r.added_ttfc_p50_us) {
        Some(us) => checks.push(TargetCheck {
            target: format!("streaming: ≤ 1 ms added time to first chunk (p50, c={stream_c})"),
            measured: ms(us),
            met: Some(us <= 1000.0),
        }),
        None => checks.push(TargetCheck {
            target: "streaming: ≤ 1 ms added time to first chunk".into(),
            measured: "not measured".into(),
            met: None,
        }),
    }
    // The gateway's own cost: the same load through the gateway (key + model name) minus the
    // `session_id` path, at the lowest and the highest concurrency.
    let low = settings.json_concurrency.iter().copied().min().unwrap_or(1);
    let mut levels = vec![low, top];
    levels.dedup();
    for c in levels {
        let p50 = |path: &str| {
            find(runs, "json", c, path).filter(|r| r.outcome.ok > 0).map(|r| r.outcome.latency.p50_us)
        };
        let target = format!("gateway lookup ≤ 50 µs p50 over the session_id path, JSON, c={c}");
        checks.push(match both(p50(GATEWAY), p50(OURS)) {
            Some((g, o)) => TargetCheck {
                target,
                measured: format!("{:.0} µs ({:.2} vs {:.2} ms)", g - o, g / 1000.0, o / 1000.0),
                met: Some(g - o <= 50.0),
            },
            None => TargetCheck { target, measured: "not measured".into(), met: None },
        });
    }
    match idle.iter().max_by_key(|i| i.streams) {
        Some(i) => checks.push(TargetCheck {
            target: format!("≤ 64 KiB RSS per idle open stream at {} streams", i.streams),
            measured: format!("{:.1} KiB ({} of {} open)", i.per_stream_kb, i.opened, i.streams),
            met: Some(i.opened == i.streams && i.per_stream_kb <= 64.0),
        }),
        None => checks.push(TargetCheck {
            target: "≤ 64 KiB RSS per idle open stream".into(),
            measured: "not measured".into(),
            met: None,
        }),
    }
    checks
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:.digits$}"))
}

fn path_title(name: &str) -> &str {
    match name {
        DIRECT => "direct",
        NGINX => "nginx (1 hop)",
        LITELLM => "LiteLLM (1 hop)",
        OURS => "**proxy-router** (2 hops)",
        GATEWAY => "**proxy-router gateway** (API key + model, 2 hops)",
        other => other,
    }
}

impl Report {
    /// The Markdown tables of the run (the part of `docs/benchmarks.md` the benchmark writes).
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let _ = writeln!(
            md,
            "Run of {}, {} × {} (Linux {}); the benchmark took {:.0} s. Each phase {:.0} s after {:.0} s of \
             warm-up; loopback only.\n",
            m.date, m.cores, m.cpu, m.kernel, self.elapsed_s, s.phase_s, s.warmup_s
        );

        let _ = writeln!(md, "#### Targets\n\n| Target | Measured | Met |\n|---|---|---|");
        for t in &self.targets {
            let met = match t.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            };
            let _ = writeln!(md, "| {} | {} | {} |", t.target, t.measured, met);
        }

        let _ = writeln!(
            md,
            "\n#### Non-streamed chat ({} B prompt, {} B answer content)\n\n\
             | Concurrency | Path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU s / 1000 req | errors |\n\
             |---|---|---|---|---|---|---|---|---|",
            s.prompt_bytes, s.json_bytes
        );
        for r in self.runs.iter().filter(|r| r.kind == "json") {
            let o = &r.outcome;
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
                r.concurrency,
                path_title(&r.path),
                o.rps,
                o.latency.p50_us / 1000.0,
                o.latency.p99_us / 1000.0,
                opt(r.added_p50_us.map(|v| v / 1000.0), 2),
                opt(r.added_p99_us.map(|v| v / 1000.0), 2),
                opt(r.cpu_s_per_1000, 2),
                o.errors
            );
        }

        let _ = writeln!(
            md,
            "\n#### Streamed chat ({} events of {} B content, back to back, then `[DONE]`)\n\n\
             | Concurrency | Path | streams/s | TTFC p50 ms | added TTFC p50 ms | per chunk p50 µs | added per chunk µs | whole stream p50 ms | CPU s / 1000 streams | errors |\n\
             |---|---|---|---|---|---|---|---|---|---|",
            s.stream_chunks, s.chunk_bytes
        );
        for r in self.runs.iter().filter(|r| r.kind == "stream") {
            let o = &r.outcome;
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.2} | {} | {} | {} | {:.2} | {} | {} |",
                r.concurrency,
                path_title(&r.path),
                o.rps,
                o.ttfc.p50_us / 1000.0,
                opt(r.added_ttfc_p50_us.map(|v| v / 1000.0), 2),
                opt(o.per_event.map(|p| p.p50_us), 1),
                opt(r.added_per_event_p50_us, 1),
                o.latency.p50_us / 1000.0,
                opt(r.cpu_s_per_1000, 2),
                o.errors
            );
        }

        let others = [NGINX, LITELLM].into_iter().filter(|p| self.paths.iter().any(|i| i.name == *p));
        let others: Vec<&str> = others.collect();
        if !others.is_empty() {
            let _ = write!(md, "\n#### Ratios (proxy-router ÷ other)\n\n| Measure |");
            for o in &others {
                let _ = write!(md, " us / {} |", path_title(o));
            }
            let _ = write!(md, "\n|---|");
            for _ in &others {
                let _ = write!(md, "---|");
            }
            let _ = writeln!(md);
            let mut row = |label: String, value: &dyn Fn(&Run) -> Option<f64>, kind: &str, c: usize| {
                let ours = find(&self.runs, kind, c, OURS).and_then(value);
                let _ = write!(md, "| {label} |");
                for o in &others {
                    let theirs = find(&self.runs, kind, c, o).and_then(value);
                    let cell = match (ours, theirs) {
                        (Some(a), Some(b)) if b.abs() > f64::EPSILON => format!("{:.2}", a / b),
                        _ => "—".to_owned(),
                    };
                    let _ = write!(md, " {cell} |");
                }
                let _ = writeln!(md);
            };
            for &c in &s.json_concurrency {
                row(format!("req/s, JSON, c={c}"), &|r| Some(r.outcome.rps), "json", c);
            }
            for &c in &s.json_concurrency {
                row(format!("added p50 latency, JSON, c={c}"), &|r| r.added_p50_us, "json", c);
            }
            for &c in &s.json_concurrency {
                row(format!("CPU s per 1000 req, JSON, c={c}"), &|r| r.cpu_s_per_1000, "json", c);
            }
            for &c in &s.stream_concurrency {
                row(format!("added TTFC p50, stream, c={c}"), &|r| r.added_ttfc_p50_us, "stream", c);
            }
            let rss = |name: &str| self.paths.iter().find(|p| p.name == name).and_then(|p| p.peak_rss_kb);
            let _ = write!(md, "| peak RSS |");
            for o in &others {
                let cell = match (rss(OURS), rss(o)) {
                    (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
                    _ => "—".to_owned(),
                };
                let _ = write!(md, " {cell} |");
            }
            let _ = writeln!(md);
        }

        let since = if self.peak_rss_after_memory_test { "the load phases" } else { "the whole run" };
        let _ = writeln!(
            md,
            "\n#### Peak RSS (`VmHWM`, summed over the path's processes, over {since})\n\n\
             | Path | Processes | RSS MiB at the start of the load phases | Peak RSS MiB |\n|---|---|---|---|"
        );
        for p in &self.paths {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                path_title(&p.name),
                p.processes,
                opt(p.start_rss_kb.map(|k| k as f64 / 1024.0), 1),
                opt(p.peak_rss_kb.map(|k| k as f64 / 1024.0), 1)
            );
        }

        let c = &self.crypto;
        let _ = writeln!(
            md,
            "\n#### The protocol's cryptography per chunk on this machine\n\n\
             One {}-byte chunk, timed in the benchmark process as the routers do it (one ephemeral ECIES key per \
             answer, a fresh IV per frame): the provider encrypts it and signs the frame in {:.1} µs; the \
             consumer checks the signature and decrypts in {:.1} µs: {:.1} µs of CPU per chunk that no amount of \
             relay tuning removes (with the two routers on two cores, the per-chunk time can approach the larger \
             of the two).",
            c.chunk_bytes,
            c.provider_us,
            c.consumer_us,
            c.provider_us + c.consumer_us
        );

        if !self.idle_streams.is_empty() {
            let _ = writeln!(
                md,
                "\n#### Idle open streams through both routers\n\n\
                 | Streams | Opened | Open in s | Consumer RSS MiB before → open | Provider RSS MiB before → open | Added KiB per stream |\n\
                 |---|---|---|---|---|---|"
            );
            for i in &self.idle_streams {
                let mib = |k: u64| k as f64 / 1024.0;
                let _ = writeln!(
                    md,
                    "| {} | {}{} | {:.1} | {:.1} → {:.1} | {:.1} → {:.1} | {:.1} |",
                    i.streams,
                    i.opened,
                    if i.failed > 0 { format!(" ({} failed)", i.failed) } else { String::new() },
                    i.open_s,
                    mib(i.consumer_before_kb),
                    mib(i.consumer_open_kb),
                    mib(i.provider_before_kb),
                    mib(i.provider_open_kb),
                    i.per_stream_kb
                );
            }
        }
        md
    }

    /// Every answered count of every run (for checks).
    pub fn answered(&self) -> u64 {
        self.runs.iter().map(|r| r.outcome.ok).sum()
    }
}

/// Replaces the text between `<!-- bench:begin -->` and `<!-- bench:end -->` in `doc` with `generated`
/// (appends the markers and the text when they are missing).
pub fn splice(doc: &str, generated: &str) -> String {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{BEGIN}\n{generated}{END}{}", &doc[..b], &doc[e + END.len()..])
        }
        _ => format!("{doc}\n{BEGIN}\n{generated}{END}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_between_markers_or_appends() {
        let doc = "# B\n\nintro\n<!-- bench:begin -->\nold\n<!-- bench:end -->\ntail\n";
        assert_eq!(
            splice(doc, "new\n"),
            "# B\n\nintro\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\ntail\n"
        );
        assert_eq!(splice("# B\n", "x\n"), "# B\n\n<!-- bench:begin -->\nx\n<!-- bench:end -->\n");
    }
}
