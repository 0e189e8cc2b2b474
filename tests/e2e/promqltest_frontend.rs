//! The upstream PromQL test files (`../shared/promqltest`) through a sharding, splitting,
//! caching query-frontend: every query of every file, asked as a range query around its
//! evaluation time, answers what the querier alone answers. The files' data and queries are
//! read with the promqltest harness's own parsers (`crates/promql/tests/promqltest`); their
//! expected values are not used here (the engine is measured against them there): this test is
//! about the frontend's cuts, cache and shard combination changing nothing.

use crate::script::{parse_script, Cmd, Load};
use crate::series::SeqValue;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{Labels, Sample, TenancyConfig};
use strata_promql::testing::MemStore;
use strata_querier::{router, Querier, QuerierConfig};
use strata_query_frontend::shard::{Combine, Grouping};
use strata_query_frontend::{in_front_of, QueryFrontend, QueryFrontendConfig, RouterDownstream};
use tower::ServiceExt;

async fn answer(app: &axum::Router, uri: &str) -> (u16, Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The float samples of a `load` (native histograms are left out: the frontend does not
/// combine them across shards, and both sides then read the same floats).
fn load_into(data: &mut Vec<(Labels, Vec<Sample>)>, load: &Load) {
    for (labels, vals) in &load.series {
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                SeqValue::Float(f) => Some(Sample::new(i as i64 * load.interval_ms, *f)),
                _ => None,
            })
            .collect();
        if !samples.is_empty() {
            data.push((labels.clone(), samples));
        }
    }
}

/// For `topk`/`bottomk`: the same values at every step in every group. Among equal values,
/// which series is picked may differ (docs/query-frontend.md), so the series themselves are not
/// compared.
fn same_values_per_step(got: &Value, want: &Value, grouping: &Grouping) -> Result<(), String> {
    let group = |metric: &Value| -> String {
        let mut kept: Vec<(String, String)> = metric
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| match grouping {
                Grouping::By(by) => by.contains(name),
                Grouping::Without(w) => *name != "__name__" && !w.contains(name),
            })
            .map(|(n, v)| (n.clone(), v.to_string()))
            .collect();
        kept.sort();
        format!("{kept:?}")
    };
    let per_step = |v: &Value| {
        let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for s in v["data"]["result"].as_array().into_iter().flatten() {
            let g = group(&s["metric"]);
            for p in s["values"].as_array().into_iter().flatten() {
                m.entry(format!("{} {g}", p[0]))
                    .or_default()
                    .push(p[1].as_str().unwrap_or_default().to_owned());
            }
        }
        m.values_mut().for_each(|v| v.sort());
        m
    };
    let (g, w) = (per_step(got), per_step(want));
    if g == w {
        return Ok(());
    }
    let t = w
        .keys()
        .chain(g.keys())
        .find(|t| g.get(*t) != w.get(*t))
        .cloned()
        .unwrap_or_default();
    Err(format!(
        "at {t}: values {:?}, want {:?}",
        g.get(&t),
        w.get(&t)
    ))
}

/// Whether two answers are equal: same series and timestamps; values equal, or within 1e-9
/// relative for sums and averages (addition in another order).
fn same(got: &Value, want: &Value, sums: bool) -> Result<(), String> {
    let sorted = |v: &Value| {
        let mut r = v["data"]["result"].as_array().cloned().unwrap_or_default();
        r.sort_by_key(|s| s["metric"].to_string());
        r
    };
    let (g, w) = (sorted(got), sorted(want));
    if g.len() != w.len() {
        return Err(format!("{} series, want {}", g.len(), w.len()));
    }
    for (gs, ws) in g.iter().zip(&w) {
        if gs["metric"] != ws["metric"] {
            return Err(format!(
                "series {} where {} was",
                gs["metric"], ws["metric"]
            ));
        }
        let (gv, wv) = (gs["values"].as_array(), ws["values"].as_array());
        let (Some(gv), Some(wv)) = (gv, wv) else {
            if gs != ws {
                return Err(format!("{gs} != {ws}"));
            }
            continue;
        };
        if gv.len() != wv.len() {
            return Err(format!(
                "{}: {} points, want {}",
                ws["metric"],
                gv.len(),
                wv.len()
            ));
        }
        for (a, b) in gv.iter().zip(wv) {
            if a[0] != b[0] {
                return Err(format!(
                    "{}: time {} where {} was",
                    ws["metric"], a[0], b[0]
                ));
            }
            if a[1] == b[1] {
                continue;
            }
            let parse = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
            let close = match (parse(&a[1]), parse(&b[1])) {
                (Some(x), Some(y)) => sums && (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                _ => false,
            };
            if !close {
                return Err(format!(
                    "{} at {}: {} != {}",
                    ws["metric"], a[0], a[1], b[1]
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promqltest_files_through_a_sharding_frontend() {
    let dir = std::env::var_os("PROMQLTEST_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/promqltest"),
        Into::into,
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set PROMQLTEST_DIR)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "{}: too few test files", dir.display());
    let (mut compared, mut sharded, mut errors_both) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let Ok(cmds) = parse_script(&text) else {
            continue;
        };
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut data: Vec<(Labels, Vec<Sample>)> = Vec::new();
        let mut app: Option<(axum::Router, axum::Router)> = None;
        for (line, cmd) in cmds {
            match cmd {
                Cmd::Clear => {
                    data.clear();
                    app = None;
                }
                Cmd::Load(l) => {
                    load_into(&mut data, &l);
                    app = None;
                }
                Cmd::Eval(e) => {
                    let (querier, frontend) = app.get_or_insert_with(|| {
                        let mut store = MemStore::new();
                        for (labels, samples) in &data {
                            store.add(labels.clone(), samples.clone());
                        }
                        let querier = router(
                            Querier::new(
                                QuerierConfig::default(),
                                TenancyConfig::default(),
                                Arc::new(store),
                            )
                            .unwrap(),
                        );
                        let mut registry = prometheus_client::registry::Registry::default();
                        let f = QueryFrontend::new(
                            QueryFrontendConfig {
                                query_sharding_total_shards: 3,
                                split_queries_by_interval: Duration::from_secs(3600),
                                ..QueryFrontendConfig::default()
                            },
                            TenancyConfig::default(),
                            Arc::new(RouterDownstream(querier.clone())),
                            &mut registry,
                        )
                        .unwrap();
                        (querier.clone(), in_front_of(f, querier))
                    });
                    // A range across at least one hour boundary around the eval's time (or the
                    // eval's own range), every 5 minutes.
                    let (start, end, step) = if e.is_range {
                        (e.start, e.end.unwrap_or(e.start), e.step.max(1000))
                    } else {
                        let t = e.eval_time;
                        ((t - 3_600_000).max(0), t + 3_600_000, 300_000)
                    };
                    let uri = format!(
                        "/api/v1/query_range?query={}&start={}&end={}&step={}",
                        encode(&e.query),
                        start as f64 / 1000.0,
                        end as f64 / 1000.0,
                        step as f64 / 1000.0
                    );
                    let (ws, want) = answer(querier, &uri).await;
                    let (gs, got) = answer(frontend, &uri).await;
                    let at = format!("{name}:{line} {}", e.query);
                    if ws != 200 {
                        if gs == ws {
                            errors_both += 1;
                        } else {
                            failures.push(format!("{at}: status {gs}, the querier's {ws}"));
                        }
                        continue;
                    }
                    compared += 1;
                    let plan = strata_query_frontend::shard::plan(&e.query);
                    sharded += usize::from(plan.is_some());
                    let sums = e.query.contains("sum") || e.query.contains("avg");
                    let verdict = match plan.as_ref().map(|p| &p.how) {
                        Some(Combine::TopK { grouping, .. }) => {
                            same_values_per_step(&got, &want, grouping)
                        }
                        _ => same(&got, &want, sums),
                    };
                    if gs != 200 {
                        failures.push(format!("{at}: status {gs}: {got}"));
                    } else if let Err(why) = verdict {
                        failures.push(format!("{at}: {why}"));
                    } else if answer(frontend, &uri).await != (gs, got) {
                        // Asked again: every piece (and shard) now comes from the cache.
                        failures.push(format!("{at}: the cached answer differs"));
                    }
                }
            }
        }
    }
    println!("{compared} queries compared ({sharded} sharded), {errors_both} refused by both");
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 500, "only {compared} queries compared");
    assert!(sharded > 50, "only {sharded} sharded queries");
}
