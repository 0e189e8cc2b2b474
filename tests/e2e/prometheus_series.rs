//! A real Prometheus scrapes node_exporter and itself and remote-writes to strata; for a window
//! in the past, both must list exactly the same series.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use strata_tests::{
    fmt_labels, http_client, now_ms, series_from, start_node_exporter, start_prometheus, LabelSet,
    Strata, TestDir,
};

use crate::require_environment;

/// How long Prometheus scrapes and remote-writes before the comparison.
const RUN_FOR: Duration = Duration::from_secs(30);
/// How long strata gets to catch up with remote write before the comparison fails.
const CATCH_UP: Duration = Duration::from_secs(30);
const ALL_SERIES: &str = r#"{__name__=~".+"}"#;
const DIFF_EXAMPLES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_series_match() {
    require_environment();
    let strata = Strata::start().await;
    let work = TestDir::new();
    let node_exporter = start_node_exporter(work.root()).await;
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{node}']
  - job_name: prometheus
    static_configs:
      - targets: ['$PROMETHEUS_ADDR']
remote_write:
  - url: http://{strata}/api/v1/push
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#,
        node = node_exporter.addr,
        strata = strata.addr,
    );
    let prometheus = start_prometheus(work.root(), &config).await;
    let ready_ms = now_ms();
    let client = http_client();

    tokio::time::sleep(RUN_FOR).await;

    // The window is fixed before this test's first query to Prometheus's API (the readiness
    // probes above hit /-/ready before `ready_ms` and so before `start`). Why no set difference
    // can come from the test itself or from timing:
    // - Series that our queries create in Prometheus (e.g. its http handler metrics for
    //   /api/v1/series) are first scraped after `end`, so neither side has a sample in the window.
    // - `end` is 3 s in the past and we wait 2 s more before asking: with 1 s scrapes and a 1 s
    //   scrape timeout, every scrape with a timestamp <= `end` has been committed to Prometheus's
    //   head by then, so Prometheus's answer is final; strata is polled until it catches up.
    // - Prometheus answers at chunk granularity (a series is listed if a head chunk overlaps the
    //   window), strata at sample granularity. With samples every second and a window of ~20 s
    //   inside one ~30 s run, a series has a chunk overlapping the window iff it has a sample in
    //   it (a gap spanning the whole window would be needed for the two to differ). Staleness
    //   markers are samples on both sides.
    // - `start` is 5 s after Prometheus became ready, so the first scrapes are complete.
    let end = now_ms() - 3_000;
    let start = ready_ms + 5_000;
    assert!(end - start >= 10_000, "window too short: [{start}, {end}]");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let want: BTreeSet<LabelSet> =
        series_from(&client, &prometheus.url(""), &[ALL_SERIES], start, end)
            .await
            .unwrap_or_else(|e| panic!("Prometheus series query failed: {e}"))
            .into_iter()
            .collect();
    // Sanity: Prometheus itself saw both targets, so the comparison is not vacuous.
    for job in ["node", "prometheus"] {
        let up = want.iter().any(|ls| {
            ls.get("__name__").map(String::as_str) == Some("up")
                && ls.get("job").map(String::as_str) == Some(job)
        });
        assert!(
            up,
            "Prometheus has no `up` series for job {job:?} in [{start}, {end}]; {} series",
            want.len()
        );
    }
    assert!(
        want.len() > 200,
        "Prometheus lists only {} series; expected hundreds from node_exporter and itself",
        want.len()
    );

    let deadline = Instant::now() + CATCH_UP;
    let mut attempts = 0;
    let got = loop {
        attempts += 1;
        let got: BTreeSet<LabelSet> = strata
            .series(&[ALL_SERIES], start, end)
            .await
            .into_iter()
            .collect();
        if got == want || Instant::now() >= deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    if got != want {
        let only_prom: Vec<String> = want.difference(&got).map(fmt_labels).collect();
        let only_strata: Vec<String> = got.difference(&want).map(fmt_labels).collect();
        let remote_storage_metrics =
            remote_write_diagnostics(&client, &prometheus.url("/metrics")).await;
        panic!(
            "series in [{start}, {end}] differ after {attempts} polls over {CATCH_UP:?}: Prometheus has {} series, strata {}; \
             {} only in Prometheus, {} only in strata.\n\
             only in Prometheus (first {DIFF_EXAMPLES}):\n  {}\n\
             only in strata (first {DIFF_EXAMPLES}):\n  {}\n\
             Prometheus remote-write counters:\n  {}",
            want.len(),
            got.len(),
            only_prom.len(),
            only_strata.len(),
            only_prom.iter().take(DIFF_EXAMPLES).cloned().collect::<Vec<_>>().join("\n  "),
            only_strata.iter().take(DIFF_EXAMPLES).cloned().collect::<Vec<_>>().join("\n  "),
            remote_storage_metrics,
        );
    }
    eprintln!(
        "prometheus_series_match: {} series equal after {attempts} polls",
        want.len()
    );
}

/// Prometheus's own counters of failed, retried and dropped remote-write data, to tell a strata
/// rejection from a slow catch-up in a failure message.
async fn remote_write_diagnostics(client: &reqwest::Client, url: &str) -> String {
    match client.get(url).send().await {
        Ok(r) => match r.text().await {
            Ok(text) => text
                .lines()
                .filter(|l| {
                    l.starts_with("prometheus_remote_storage_")
                        && (l.contains("failed")
                            || l.contains("retried")
                            || l.contains("dropped")
                            || l.contains("_total"))
                })
                .take(60)
                .collect::<Vec<_>>()
                .join("\n  "),
            Err(e) => format!("<reading {url}: {e}>"),
        },
        Err(e) => format!("<GET {url}: {e}>"),
    }
}
