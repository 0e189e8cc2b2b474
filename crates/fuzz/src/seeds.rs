//! The generated part of the seed corpora (`fuzz/corpus/<target>/gen-*`): valid inputs made
//! by Strata's own writers and by prost, so that the fuzzers start from deep inside each format
//! instead of having to discover it. Other corpus files (bodies captured from a real
//! Prometheus, inputs that once crashed a target) are kept as they are.
//!
//! Regenerate with `STRATA_FUZZ_WRITE_SEEDS=1 cargo nextest run -p strata-tests --run-ignored
//! only fuzz_replay::write_seed_corpus` (see `docs/security.md`, "Fuzzing").

use crate::fixture::{self, END_MS, START_MS};
use crate::parquet_block::{self, BlockFile};
use crate::SeedError;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_model::{Labels, MetricMetadata, MetricType, Overrides, Sample, TenantId, WriteBatch};
use strata_proto::{prometheus as pb1, write_v2 as pb2};
use strata_storage::Pusher;

/// Named corpus files: (file name, contents).
type Files = Vec<(String, Vec<u8>)>;

/// A series with owned labels, as the seed ingester's pushes build them.
type OwnedSeries = (Vec<(String, String)>, Vec<Sample>);

/// Prefix of every generated corpus file: files without it are never touched.
pub const GENERATED_PREFIX: &str = "gen-";

/// Writes every generated seed under `root/<target>/`, replacing the previous generated files,
/// and returns the files written. `scratch` is an empty directory for the seed ingester.
pub fn generate(root: &Path, scratch: &Path) -> Result<Vec<PathBuf>, SeedError> {
    let mut all: Vec<(&str, Files)> = vec![
        ("remote_write_v1", remote_write_v1()),
        ("remote_write_v2", remote_write_v2()),
        ("snappy_body", snappy_body()),
        ("promql", promql()),
        ("parquet_block", parquet_block()),
        ("wal_record", wal_record(scratch)?),
        ("alertmanager_config", alertmanager_config()),
    ];
    let mut written = Vec::new();
    for (target, files) in all.drain(..) {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| SeedError::io(&dir, e))?;
        let old = std::fs::read_dir(&dir).map_err(|e| SeedError::io(&dir, e))?;
        for entry in old {
            let path = entry.map_err(|e| SeedError::io(&dir, e))?.path();
            let generated = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(GENERATED_PREFIX));
            if generated {
                std::fs::remove_file(&path).map_err(|e| SeedError::io(&path, e))?;
            }
        }
        for (name, bytes) in files {
            let path = dir.join(format!("{GENERATED_PREFIX}{name}"));
            std::fs::write(&path, bytes).map_err(|e| SeedError::io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn label(name: &str, value: &str) -> pb1::Label {
    pb1::Label {
        name: name.into(),
        value: value.into(),
    }
}

fn v1_series(labels: &Labels, samples: &[Sample]) -> pb1::TimeSeries {
    pb1::TimeSeries {
        labels: labels.iter().map(|l| label(&l.name, &l.value)).collect(),
        samples: samples
            .iter()
            .map(|s| pb1::Sample {
                value: s.v,
                timestamp: s.t,
            })
            .collect(),
        ..Default::default()
    }
}

/// A scrape's worth of the fixture: every series with a few samples, with metadata.
fn v1_scrape() -> pb1::WriteRequest {
    pb1::WriteRequest {
        timeseries: fixture::series()
            .iter()
            .map(|(l, s)| v1_series(l, &s[..4]))
            .collect(),
        metadata: vec![
            pb1::MetricMetadata {
                r#type: 1,
                metric_family_name: "http_requests_total".into(),
                help: "Requests served, by status code.".into(),
                unit: String::new(),
            },
            pb1::MetricMetadata {
                r#type: 3,
                metric_family_name: "request_duration_seconds".into(),
                help: "Request latency.".into(),
                unit: "seconds".into(),
            },
        ],
    }
}

fn remote_write_v1() -> Files {
    let special = pb1::WriteRequest {
        timeseries: vec![
            pb1::TimeSeries {
                labels: vec![
                    label("__name__", "weird_values"),
                    label("empty", ""),
                    label("ünï", "☃ \" \\ \n"),
                ],
                samples: [
                    f64::NAN,
                    f64::from_bits(0x7ff0_0000_0000_0002),
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    f64::MIN_POSITIVE,
                    f64::MAX,
                ]
                .iter()
                .enumerate()
                .map(|(i, &v)| pb1::Sample {
                    value: v,
                    timestamp: i as i64 * 1000 - 3000,
                })
                .collect(),
                exemplars: vec![pb1::Exemplar {
                    labels: vec![label("trace_id", "abc123")],
                    value: 0.25,
                    timestamp: 1000,
                }],
                histograms: vec![pb1::Histogram {
                    sum: 10.5,
                    schema: 3,
                    zero_threshold: 1e-128,
                    positive_spans: vec![pb1::BucketSpan {
                        offset: -2,
                        length: 2,
                    }],
                    positive_deltas: vec![1, -1],
                    timestamp: 2000,
                    ..Default::default()
                }],
            },
            // No samples at all, and a series without a metric name.
            pb1::TimeSeries {
                labels: vec![label("__name__", "no_samples")],
                ..Default::default()
            },
            pb1::TimeSeries {
                labels: vec![label("job", "nameless")],
                samples: vec![pb1::Sample {
                    value: 1.0,
                    timestamp: i64::MAX,
                }],
                ..Default::default()
            },
        ],
        metadata: vec![pb1::MetricMetadata {
            r#type: 7,
            metric_family_name: "weird_values".into(),
            help: String::new(),
            unit: "bytes".into(),
        }],
    };
    let many = pb1::WriteRequest {
        timeseries: (0..60)
            .map(|i| pb1::TimeSeries {
                labels: vec![
                    label("__name__", "node_cpu_seconds_total"),
                    label("cpu", &(i / 8).to_string()),
                    label("instance", "host-1:9100"),
                    label("job", "node"),
                    label(
                        "mode",
                        [
                            "idle", "user", "system", "iowait", "irq", "nice", "steal", "softirq",
                        ][i % 8],
                    ),
                ],
                samples: vec![pb1::Sample {
                    value: 1000.0 + i as f64 * 0.37,
                    timestamp: 1_700_000_000_000,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    vec![
        ("scrape.bin".into(), v1_scrape().encode_to_vec()),
        ("special.bin".into(), special.encode_to_vec()),
        ("node-cpu.bin".into(), many.encode_to_vec()),
    ]
}

/// A remote write 2.0 request of `series` with their own symbol table.
fn v2_request(series: &[(Labels, Vec<Sample>)], with_metadata: bool) -> pb2::Request {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut sym = |s: &str| -> u32 {
        match symbols.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                symbols.push(s.to_owned());
                (symbols.len() - 1) as u32
            }
        }
    };
    let mut timeseries = Vec::new();
    for (labels, samples) in series {
        let labels_refs = labels
            .iter()
            .flat_map(|l| [sym(&l.name), sym(&l.value)])
            .collect();
        let metadata = with_metadata.then(|| pb2::Metadata {
            r#type: if labels.metric_name().is_some_and(|n| n.ends_with("_total")) {
                1
            } else {
                2
            },
            help_ref: sym("Help text."),
            unit_ref: 0,
        });
        timeseries.push(pb2::TimeSeries {
            labels_refs,
            samples: samples
                .iter()
                .map(|s| pb2::Sample {
                    value: s.v,
                    timestamp: s.t,
                    start_timestamp: 0,
                })
                .collect(),
            metadata,
            ..Default::default()
        });
    }
    pb2::Request {
        symbols,
        timeseries,
    }
}

fn remote_write_v2() -> Files {
    let series: Vec<(Labels, Vec<Sample>)> = fixture::series()
        .into_iter()
        .map(|(l, s)| (l, s[..3].to_vec()))
        .collect();
    let mut special = v2_request(&series[..2], false);
    special.timeseries[0].exemplars = vec![pb2::Exemplar {
        labels_refs: vec![1, 2],
        value: 3.5,
        timestamp: 1234,
    }];
    special.timeseries[0].histograms = vec![pb2::Histogram {
        sum: 1.0,
        schema: -4,
        custom_values: vec![0.1, 0.5],
        ..Default::default()
    }];
    special.timeseries[1].created_timestamp = -1;
    vec![
        (
            "scrape.bin".into(),
            v2_request(&series, true).encode_to_vec(),
        ),
        ("special.bin".into(), special.encode_to_vec()),
    ]
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(b)
        .unwrap_or_else(|e| panic!("snappy compresses anything: {e}"))
}

fn with_selector(sel: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(sel);
    v.extend_from_slice(body);
    v
}

fn matcher(ty: i32, name: &str, value: &str) -> pb1::LabelMatcher {
    pb1::LabelMatcher {
        r#type: ty,
        name: name.into(),
        value: value.into(),
    }
}

fn snappy_body() -> Files {
    let series: Vec<(Labels, Vec<Sample>)> = fixture::series()
        .into_iter()
        .map(|(l, s)| (l, s[..2].to_vec()))
        .collect();
    let read = pb1::ReadRequest {
        queries: vec![
            pb1::Query {
                start_timestamp_ms: START_MS,
                end_timestamp_ms: END_MS,
                matchers: vec![
                    matcher(0, "__name__", "http_requests_total"),
                    matcher(3, "code", "5.."),
                ],
                hints: Some(pb1::ReadHints {
                    step_ms: 15_000,
                    func: "rate".into(),
                    start_ms: START_MS,
                    end_ms: END_MS,
                    ..Default::default()
                }),
            },
            pb1::Query {
                start_timestamp_ms: END_MS - 600_000,
                end_timestamp_ms: END_MS,
                matchers: vec![matcher(2, "__name__", "temp.*|up"), matcher(1, "job", "x")],
                hints: None,
            },
        ],
        accepted_response_types: vec![0],
    };
    let everything = pb1::ReadRequest {
        queries: vec![pb1::Query {
            start_timestamp_ms: i64::MIN,
            end_timestamp_ms: i64::MAX,
            matchers: vec![matcher(2, "__name__", ".+")],
            hints: None,
        }],
        accepted_response_types: vec![1, 0],
    };
    vec![
        (
            "push-v1.bin".into(),
            with_selector(0, &snappy(&v1_scrape().encode_to_vec())),
        ),
        (
            "push-v2.bin".into(),
            with_selector(1, &snappy(&v2_request(&series, true).encode_to_vec())),
        ),
        (
            "read.bin".into(),
            with_selector(2, &snappy(&read.encode_to_vec())),
        ),
        (
            "read-everything.bin".into(),
            with_selector(2, &snappy(&everything.encode_to_vec())),
        ),
    ]
}

/// Queries written for the seed corpus: every syntax element and most functions, against the
/// fixture's metric names. (The upstream test suite's queries, in `../shared/promqltest`, are
/// added by the replay test and by `fuzz/run.sh` at run time rather than copied here.)
pub const PROMQL_QUERIES: &[&str] = &[
    "up",
    "up{job=\"api\"}",
    "up{job=~\"a.*\", instance!=\"b:9100\", job!~\"x|y\"}",
    "{__name__=~\"http_.+\", code=\"200\"}",
    "{\"up\", job=\"api\"}",
    "http_requests_total offset 5m",
    "http_requests_total @ 1800",
    "http_requests_total @ start() offset -1m",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[1m] offset 30s)",
    "increase(http_requests_total{code=\"500\"}[10m])",
    "sum by (code) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m])) / on(job) group_left sum by (job) (rate(http_requests_total[5m]))",
    "avg(temperature_celsius) by (room)",
    "max_over_time(temperature_celsius[10m])",
    "min_over_time(temperature_celsius[10m]) < bool 21",
    "quantile_over_time(0.9, temperature_celsius[15m])",
    "stddev_over_time(temperature_celsius[30m])",
    "changes(up[1h]) > 0",
    "resets(http_requests_total[1h])",
    "deriv(temperature_celsius[10m])",
    "predict_linear(temperature_celsius[10m], 3600)",
    "delta(temperature_celsius[5m])",
    "idelta(temperature_celsius[5m])",
    "absent(nonexistent{job=\"api\"})",
    "absent_over_time(up[5m])",
    "present_over_time(up[5m])",
    "last_over_time(temperature_celsius[10m])",
    "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    "topk(2, http_requests_total)",
    "bottomk(1, up) or vector(0)",
    "quantile(0.5, http_requests_total)",
    "count_values(\"value\", up)",
    "stddev(temperature_celsius)",
    "group by (job) (up)",
    "count(up) == bool 2",
    "http_requests_total and on(instance) up == 1",
    "http_requests_total unless ignoring(code) up",
    "up * on(instance, job) group_right(version) build_info",
    "-temperature_celsius ^ 2 % 7",
    "2 ^ 3 ^ 2 - 1 / 0 + -Inf * NaN",
    "0x1F + 1e3 + .5 + 5. + 1_000 + Inf",
    "abs(ceil(floor(round(temperature_celsius, 0.5))))",
    "clamp(temperature_celsius, 0, 30) + clamp_min(up, 1) - clamp_max(up, 0)",
    "exp(ln(log2(log10(sqrt(up + 1)))))",
    "sgn(temperature_celsius) * sin(cos(tan(asin(acos(atan(0.5))))))",
    "sinh(cosh(tanh(asinh(acosh(atanh(0.5) + 2)))))",
    "deg(rad(pi()))",
    "scalar(sum(up)) * vector(2)",
    "time() - timestamp(up)",
    "day_of_month() + day_of_week(vector(1e9)) + days_in_month() + hour() + minute() + month() + year() + day_of_year()",
    "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "label_join(up, \"both\", \",\", \"job\", \"instance\")",
    "sort(http_requests_total)",
    "sort_desc(rate(http_requests_total[5m]))",
    "max_over_time(rate(http_requests_total[1m])[10m:30s])",
    "avg_over_time(deriv(temperature_celsius[5m])[20m:])",
    "sum_over_time(up[1h:5m] offset 10m)",
    "count_over_time({job=\"api\"}[5m])",
    "holt_winters(temperature_celsius[10m], 0.5, 0.5)",
    "double_exponential_smoothing(temperature_celsius[10m], 0.5, 0.5)",
    "queue_depth * 2 > 1e308",
    "\"a string\"",
    "'single' ",
    "`raw\\string`",
    "1 > bool 2",
    "(((up)))",
    "# a comment\nup # another",
    "up[5m]",
    "up[5m:1m]",
    "sum(up) by (job) offset 1h",
    "limitk(1, up)",
    "limit_ratio(0.5, up)",
    "sort_by_label(up, \"instance\")",
    "info(build_info)",
    "mad_over_time(temperature_celsius[10m])",
    "histogram_count(rate(request_duration_seconds_bucket[5m]))",
    "vector(1) + on() group_left vector(2)",
    "atan2(up, 2) atan2 3",
    "up @ end() offset 1d",
    "ts_of_max_over_time(up[10m])",
];

fn promql() -> Files {
    PROMQL_QUERIES
        .iter()
        .enumerate()
        .map(|(i, q)| (format!("q{i:03}.txt"), q.as_bytes().to_vec()))
        .collect()
}

fn parquet_block() -> Files {
    let mut out = Vec::new();
    for base in 0..parquet_block::base_count() {
        for (f, name) in [
            (BlockFile::Series, "series"),
            (BlockFile::Samples, "samples"),
            (BlockFile::Meta, "meta"),
        ] {
            out.push((
                format!("base{base}-{name}.bin"),
                with_selector(f.selector(base), &parquet_block::base_file(base, f)),
            ));
        }
    }
    out
}

/// A real ingester's WAL: two tenants' pushes, a checkpoint, more pushes; the segment after
/// the checkpoint and both checkpoints are kept.
fn wal_record(scratch: &Path) -> Result<Files, SeedError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SeedError::io(scratch, e))?;
    rt.block_on(async {
        let cfg = strata_ingester::IngesterConfig::default();
        let wal_dir = scratch.join(&cfg.wal.dir);
        let ingester = strata_ingester::Ingester::open(
            cfg,
            scratch,
            Arc::new(parking_lot::RwLock::new(Overrides::default())),
            &mut prometheus_client::registry::Registry::default(),
        )?;
        let series = fixture::series();
        let tenants = [TenantId::new("team-a")?, TenantId::new("b")?];
        let push = |range: std::ops::Range<usize>, tenant: TenantId| {
            let ingester = ingester.clone();
            let owned: Vec<OwnedSeries> = series
                .iter()
                .map(|(l, s)| {
                    (
                        l.iter()
                            .map(|x| (x.name.clone(), x.value.clone()))
                            .collect(),
                        s[range.clone()].to_vec(),
                    )
                })
                .collect();
            async move {
                let pairs: Vec<Vec<(&str, &str)>> = owned
                    .iter()
                    .map(|(l, _)| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
                    .collect();
                let mut batch = WriteBatch::default();
                for ((_, samples), labels) in owned.iter().zip(&pairs) {
                    batch.push_series(labels, samples);
                }
                batch.metadata.push(MetricMetadata {
                    family: "up",
                    metric_type: MetricType::Gauge,
                    help: "Whether the target is up.",
                    unit: "",
                });
                ingester.push(&tenant, &batch).await
            }
        };
        push(0..30, tenants[0].clone()).await?;
        push(0..5, tenants[1].clone()).await?;
        ingester.checkpoint().await?;
        push(30..60, tenants[0].clone()).await?;
        let mut out = Vec::new();
        let mut read_all = |prefix: &str| -> Result<(), SeedError> {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&wal_dir)
                .map_err(|e| SeedError::io(&wal_dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            names.sort();
            for p in names {
                let bytes = std::fs::read(&p).map_err(|e| SeedError::io(&p, e))?;
                let stem = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("file")
                    .to_owned();
                if !bytes.is_empty() {
                    out.push((format!("{prefix}{stem}.bin"), bytes));
                }
            }
            Ok(())
        };
        read_all("running-")?;
        ingester.shutdown().await;
        read_all("stopped-")?;
        // Duplicates (the same file read twice) are kept once.
        let mut seen = std::collections::HashSet::new();
        out.retain(|(_, b)| seen.insert(b.clone()));
        Ok(out)
    })
}

const AM_BASIC: &str = r#"route:
  receiver: team
  group_by: [alertname, job]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: team
    webhook_configs:
      - url: 'http://127.0.0.1:5001/hook'
        send_resolved: true
        max_alerts: 10
"#;

const AM_ROUTES: &str = r#"global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: ['...']
  routes:
    - receiver: db
      matchers: ['team="db"', 'severity=~"page|critical"']
      continue: true
      mute_time_intervals: [weekends]
    - receiver: default
      match: {job: api}
      match_re: {instance: '.*:9100'}
      active_time_intervals: [office]
      routes:
        - receiver: db
          matchers: ['alertname!~"Watchdog|InfoInhibitor"']
          group_by: [cluster]
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="ticket"]
    equal: [alertname, job]
  - source_match: {alertname: Down}
    target_match_re: {alertname: '.+'}
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday', 'sunday']
  - name: office
    time_intervals:
      - times: [{start_time: '09:00', end_time: '17:30'}]
        weekdays: ['monday:friday']
        days_of_month: ['1:5', '-3:-1']
        months: ['january:march', 'december']
        years: ['2023:2030']
        location: 'Europe/Berlin'
receivers:
  - name: default
  - name: db
    webhook_configs:
      - url: 'https://hooks.example.com/db?token=abc'
        http_config:
          basic_auth: {username: u, password: p}
          follow_redirects: false
"#;

const AM_INTEGRATIONS: &str = r#"global:
  slack_api_url: 'https://hooks.slack.com/services/T/B/X'
  smtp_smarthost: 'smtp.example.com:587'
  smtp_from: 'am@example.com'
  smtp_require_tls: true
templates: ['t0.tmpl']
route:
  receiver: all
receivers:
  - name: all
    slack_configs:
      - channel: '#alerts'
        title: '{{ template "custom.title" . }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }} {{ end }}'
        send_resolved: true
    pagerduty_configs:
      - routing_key: 'r0ut1ngk3y'
        description: '{{ .CommonLabels.alertname }}'
        severity: '{{ if eq .Status "firing" }}critical{{ else }}info{{ end }}'
    email_configs:
      - to: 'oncall@example.com'
        headers: {Subject: '{{ .GroupLabels.alertname }}'}
        html: '{{ template "email.default.html" . }}'
"#;

const AM_TEMPLATE: &str = r#"{{ define "custom.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}{{ end }}
{{ define "custom.list" }}{{ range $i, $a := .Alerts }}{{ $i }}: {{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}{{ end }}{{ end }}
{{ template "custom.title" . }} {{ template "custom.list" . }} {{ printf "%q %d" .Receiver 3 }} {{ reReplaceAll "a(.)" "$1" "banana" }} {{ .ExternalURL | title }} {{ with .CommonAnnotations }}{{ .summary }}{{ end }}
"#;

fn alertmanager_config() -> Files {
    let mut with_template = AM_INTEGRATIONS.as_bytes().to_vec();
    with_template.push(0);
    with_template.extend_from_slice(AM_TEMPLATE.as_bytes());
    vec![
        ("basic.yml".into(), AM_BASIC.as_bytes().to_vec()),
        ("routes.yml".into(), AM_ROUTES.as_bytes().to_vec()),
        ("integrations.yml".into(), with_template),
        (
            "minimal.yml".into(),
            b"route: {receiver: x}\nreceivers: [{name: x}]\n".to_vec(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_alertmanager::amconfig::AmConfig;

    #[test]
    fn generated_seeds_are_valid_inputs() {
        for (_, body) in remote_write_v1() {
            let mut b = WriteBatch::default();
            strata_proto::decode::decode_write_request_v1(&body, &mut b).unwrap();
            assert!(!b.series.is_empty());
        }
        for (_, body) in remote_write_v2() {
            let mut b = WriteBatch::default();
            strata_proto::decode::decode_write_request_v2(&body, &mut b).unwrap();
            assert!(!b.series.is_empty());
        }
        let parsed = PROMQL_QUERIES
            .iter()
            .filter(|q| strata_promql::parse_checked(q, 1 << 20, 128).is_ok())
            .count();
        assert!(
            parsed * 10 >= PROMQL_QUERIES.len() * 9,
            "only {parsed} of {} seed queries parse",
            PROMQL_QUERIES.len()
        );
        for (name, input) in alertmanager_config() {
            let mut parts = input.split(|&b| b == 0);
            let config = std::str::from_utf8(parts.next().unwrap()).unwrap();
            let files = parts
                .enumerate()
                .map(|(i, p)| (format!("t{i}.tmpl"), String::from_utf8(p.to_vec()).unwrap()))
                .collect();
            if let Err(e) = AmConfig::load_tenant(config, &files) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn the_seed_wal_replays() {
        let dir = tempfile::tempdir().unwrap();
        let files = wal_record(dir.path()).unwrap();
        assert!(
            files.len() >= 3,
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        let mut records = 0;
        for (name, bytes) in &files {
            assert!(bytes.len() < 64 << 10, "{name}: {} bytes", bytes.len());
            let mut pos = 0;
            while pos < bytes.len() {
                let (_, n) = strata_ingester::wal::record::read_frame(&bytes[pos..])
                    .unwrap_or_else(|e| panic!("{name} at {pos}: {e:?}"));
                pos += n;
                records += 1;
            }
        }
        assert!(records > 20);
    }
}
