//! `promtool query instant|range` (Debian's promtool 2.42, a client of the query API built on
//! client_golang) prints the same text for strata as for Prometheus.
//!
//! promtool prints results with client_golang's `String()` methods: `{labels} => value @[t]` per
//! vector element, `{labels} =>` followed by `value @[t]` lines per matrix series, `scalar: v
//! @[t]`. Values are printed with Go's shortest round-trip formatting, so the comparison is
//! byte-exact in the values (after whitespace normalization only): queries are chosen whose
//! results do not depend on float summation order (Kahan in Prometheus 3, plain in 2.42: a `sum`
//! of non-integers or an `avg_over_time` differs in the last digit, e.g. 8191.969999999999 vs
//! 8191.97; `rate` and `histogram_quantile` were bit-identical in all of several hundred points
//! checked), and whose output order is defined (selectors and functions of them keep Prometheus's label order,
//! `sort`/`sort_desc` of distinct values, single-series results, range queries). The evaluation
//! times avoid the 2.42/3.x window-boundary and extrapolation differences exactly as
//! `promql_side_by_side` explains. promtool cannot print string results, so none are queried.

use std::process::Command;
use std::time::Duration;

use strata_tests::query_api::{
    first_scrape_of_every_target, ms_residues, pick_ms_offset, wait_for_identical_raw_data,
};
use strata_tests::{
    api_time, check_executable, http_client, now_ms, promtool_bin, run_bounded, truncate,
    ScrapeSetup,
};

use crate::require_environment;

/// Scraping time after the first scrapes before the comparison: 10 s windows at the earliest
/// evaluation time of a 10 s range that ends [`RECENT_EXCLUDED`] before now, plus margins.
const RUN_FOR: i64 = RECENT_EXCLUDED + 1_000 + SPAN + RATE_WINDOW + 3_000;
const RECENT_EXCLUDED: i64 = 12_000;
const RATE_WINDOW: i64 = 10_000;
const SPAN: i64 = 10_000;
const PROMTOOL_TIMEOUT: Duration = Duration::from_secs(30);
const CATCH_UP: Duration = Duration::from_secs(30);

const INSTANT: &[&str] = &[
    "up",
    "scrape_samples_scraped",
    "sort_desc(scrape_samples_scraped)",
    "sort(process_resident_memory_bytes)",
    "scalar(sum(up))",
    "count(node_cpu_seconds_total)",
    r#"rate(node_cpu_seconds_total{mode="idle"}[10s])"#,
    r#"histogram_quantile(0.9, rate(prometheus_http_request_duration_seconds_bucket{handler="/metrics"}[10s]))"#,
    "up[3s]",
];

const RANGE: &[&str] = &[
    "sum by (job) (up)",
    r#"rate(node_cpu_seconds_total{mode="idle"}[10s])"#,
    "node_load1",
    "scrape_samples_scraped",
];

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn promtool(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(promtool_bin());
        cmd.args(&args)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        let out = run_bounded(cmd, PROMTOOL_TIMEOUT);
        (out.status.success(), out.stdout, out.stderr)
    })
    .await
    .expect("promtool task panicked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_query_matches() {
    require_environment();
    if let Err(e) = check_executable(
        "promtool",
        &promtool_bin(),
        "install it with `apt-get install prometheus` or set PROMTOOL_BIN",
    ) {
        panic!("{e}");
    }
    let setup = ScrapeSetup::start().await;
    let client = http_client();
    // As in promql_side_by_side: nothing reaches Prometheus's API before the span is over.
    let first_scrapes = setup.wait_for_first_scrapes(Duration::from_secs(30)).await;
    let wait = u64::try_from(first_scrapes + RUN_FOR - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let read_end = now_ms() - RECENT_EXCLUDED + 2_000;
    let (raw, _) = wait_for_identical_raw_data(
        &client,
        &setup.prometheus.url("/api/v1/read"),
        &setup.strata.url("/api/v1/read"),
        setup.ready_ms - 60_000,
        read_end,
        CATCH_UP,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", setup.strata.log_tail()));
    let data_start =
        first_scrape_of_every_target(&raw).unwrap_or_else(|| panic!("no `up` samples"));
    let mut avoid = ms_residues(&raw);
    avoid.insert(0);
    let (ms_offset, distance) = pick_ms_offset(&avoid);
    assert!(
        distance >= 1,
        "every millisecond-of-second is taken by some sample"
    );
    let mut last = (read_end - 2_000).div_euclid(1000) * 1000 + ms_offset;
    if last > read_end - 2_000 {
        last -= 1000;
    }
    let first = last - SPAN;
    assert!(
        first - RATE_WINDOW >= data_start + 2_000,
        "the first window starts at {} but the targets were first scraped at {}",
        api_time(first - RATE_WINDOW),
        api_time(data_start)
    );

    let prom = setup.prometheus.url("");
    let strata = setup.strata.url("");
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    for expr in INSTANT {
        for t in [last - 7_000, last] {
            cases.push((
                format!("instant {expr} --time={}", api_time(t)),
                vec![
                    "query".into(),
                    "instant".into(),
                    "$URL".into(),
                    (*expr).into(),
                    format!("--time={}", api_time(t)),
                ],
            ));
        }
    }
    for expr in RANGE {
        cases.push((
            format!(
                "range {expr} --start={} --end={} --step=5s",
                api_time(first),
                api_time(last)
            ),
            vec![
                "query".into(),
                "range".into(),
                "$URL".into(),
                (*expr).into(),
                format!("--start={}", api_time(first)),
                format!("--end={}", api_time(last)),
                "--step=5s".into(),
            ],
        ));
    }

    let mut diffs = Vec::new();
    for (name, args) in &cases {
        let with = |base: &str| {
            args.iter()
                .map(|a| {
                    if a == "$URL" {
                        base.to_string()
                    } else {
                        a.clone()
                    }
                })
                .collect::<Vec<_>>()
        };
        let (p_ok, p_out, p_err) = promtool(with(&prom)).await;
        assert!(
            p_ok && !p_out.trim().is_empty(),
            "promtool against Prometheus failed or printed nothing for {name}: {p_err}"
        );
        let (s_ok, s_out, s_err) = promtool(with(&strata)).await;
        let (want, got) = (normalize(&p_out), normalize(&s_out));
        if !s_ok {
            diffs.push(format!(
                "{name}\n      promtool failed against strata: {}",
                s_err.trim()
            ));
        } else if want != got {
            let at = want
                .bytes()
                .zip(got.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            let from = at.saturating_sub(40);
            diffs.push(format!(
                "{name}\n      first difference at byte {at}:\n      Prometheus: …{}\n      strata:     …{}",
                truncate(want.get(from..).unwrap_or(""), 240),
                truncate(got.get(from..).unwrap_or(""), 240)
            ));
        }
    }
    eprintln!(
        "promtool_query_matches: {} promtool invocations per server, {} differ",
        cases.len(),
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "{} of {} promtool outputs differ between strata and Prometheus:\n  {}",
        diffs.len(),
        cases.len(),
        diffs.join("\n  ")
    );
}
