//! The relay benchmark's smoke test: the same program code as `make bench` (`e2e_tests::bench`), with a
//! few requests through the direct path, our two routers and our gateway only (CI installs neither nginx nor
//! LiteLLM), so that the benchmark cannot rot. It checks that real numbers came out and that the JSON
//! report and the Markdown tables are written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e_tests::bench::{self, Settings, DIRECT, GATEWAY, OURS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_direct_and_our_routers() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::smoke(dir.path().to_path_buf());
    let report = bench::run(&settings).await.unwrap();

    // Every phase ran on the three paths, every request was answered 200 and read to its end.
    let kinds = settings.json_concurrency.len() + settings.stream_concurrency.len();
    assert_eq!(report.runs.len(), 3 * kinds, "{:#?}", report.runs);
    for run in &report.runs {
        let o = &run.outcome;
        assert!(o.ok > 0 && o.errors == 0, "{} {} c={}: {o:?}", run.path, run.kind, run.concurrency);
        assert!(o.rps > 0.0 && o.latency.p50_us > 0.0 && o.latency.p99_us >= o.latency.p50_us, "{o:?}");
        if run.kind == "stream" {
            // The content events and [DONE] (our relay and the backend alike).
            assert_eq!(o.events_per_answer, (settings.stream_chunks + 1) as f64, "{} {o:?}", run.path);
            assert!(o.per_event.is_some_and(|p| p.n > 0), "{o:?}");
        }
        if run.path == OURS || run.path == GATEWAY {
            assert!(run.added_p50_us.is_some() && run.added_ttfc_p50_us.is_some(), "{run:?}");
            assert!(run.cpu_s.is_some_and(|c| c >= 0.0), "{run:?}");
        } else {
            assert_eq!(run.path, DIRECT);
            assert!(run.cpu_s.is_none());
        }
    }
    let ours = report.paths.iter().find(|p| p.name == OURS).unwrap();
    assert!(ours.peak_rss_kb.is_some_and(|kb| kb > 1024), "{ours:?}");

    // The memory test held every stream open through both routers.
    let idle = &report.idle_streams[0];
    assert_eq!((idle.opened, idle.failed), (settings.idle_streams[0], 0), "{idle:?}");
    assert!(idle.consumer_open_kb > 0 && idle.provider_open_kb > 0, "{idle:?}");

    // The targets are all listed; nginx's and LiteLLM's comparisons are not measured here.
    assert_eq!(report.targets.len(), 9, "{:#?}", report.targets);
    let gateway_checks: Vec<_> =
        report.targets.iter().filter(|t| t.target.starts_with("gateway lookup")).collect();
    assert_eq!(gateway_checks.len(), 2, "{:#?}", report.targets);
    assert!(
        gateway_checks.iter().all(|t| t.met.is_some() && t.measured.ends_with(" ms)")),
        "{gateway_checks:#?}"
    );
    assert!(report.targets.iter().filter(|t| t.met.is_none()).count() == 2, "{:#?}", report.targets);

    // The JSON report and the tables.
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["runs"].as_array().is_some_and(|r| r.len() == report.runs.len()));
    assert!(json["machine"]["cores"].as_u64().is_some_and(|c| c > 0));
    let md = report.markdown();
    assert!(md.contains("| **proxy-router** (2 hops) |") && md.contains("#### Targets"), "{md}");
    assert!(md.contains("| **proxy-router gateway** (API key + model, 2 hops) |"), "{md}");
    let doc = bench::splice("# Benchmarks\n", &md);
    assert!(doc.contains("<!-- bench:begin -->") && doc.ends_with("<!-- bench:end -->\n"));
}
