//! Deterministic timelines of rule evaluation, in fixture files
//! (`testdata/timelines/*.test`, in the spirit of Prometheus's promqltest):
//!
//! ```text
//! load 1m                       # series and their values at 0, 1m, 2m, ...
//!     up{job="a"} 0 0 1 _ 0
//! group                         # a rule group in YAML (indented)
//!     interval: 1m
//!     rules: [...]
//! eval 2m                       # the group is evaluated at every interval up to here
//!     alert A{job="a"} firing   # exactly these alerts are active (all rules)
//!     written ALERTS{...} 1 @2m # exactly these samples (value, time) this evaluation wrote
//!     sent A{job="a"} ends=6m   # exactly these alerts were sent (ends= or resolved=)
//! ```
//!
//! Lines absent from an `eval` block are not checked; an `alert`, `written` or `sent` line
//! makes that list exact, and `alerts none`, `written none`, `sent none` assert emptiness.

use crate::common::{load, parse_series, Store};
use std::collections::BTreeMap;
use strata_model::TenantId;
use strata_promql::Engine;
use strata_ruler::group::{EvalEnv, Group};
use strata_ruler::metrics::Metrics;
use strata_ruler::rules::AlertContext;

#[derive(Default)]
struct Expect {
    at_ms: i64,
    alerts: Option<Vec<String>>,
    written: Option<Vec<String>>,
    sent: Option<Vec<String>>,
    line: usize,
}

fn dur_ms(s: &str) -> i64 {
    strata_ruler::duration::PromDuration::parse(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .as_millis()
}

fn fmt_value(v: f64) -> String {
    if strata_model::is_stale_nan(v) {
        "stale".into()
    } else {
        format!("{v}")
    }
}

/// Canonical text of a label set, for comparison with the fixture's.
fn canon(l: &strata_model::Labels) -> String {
    l.to_string()
}

async fn run_file(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.display().to_string();
    let store = Store::default();
    let mut group_yaml = String::new();
    let mut expects: Vec<Expect> = Vec::new();
    let mut section = "";
    let mut load_step = 0i64;
    let mut load_lines = String::new();
    for (no, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("");
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !raw.starts_with(' ') {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("load") => {
                    section = "load";
                    load_step = dur_ms(words.next().expect("load step"));
                }
                Some("group") => section = "group",
                Some("eval") => {
                    section = "eval";
                    expects.push(Expect {
                        at_ms: dur_ms(words.next().expect("eval time")),
                        line: no + 1,
                        ..Default::default()
                    });
                }
                other => panic!("{name}:{}: unknown directive {other:?}", no + 1),
            }
            continue;
        }
        match section {
            "load" => {
                load_lines.push_str(line);
                load_lines.push('\n');
            }
            // YAML keeps the line as written (indentation matters), minus 4 spaces.
            "group" => {
                group_yaml.push_str(raw.get(4..).unwrap_or(""));
                group_yaml.push('\n');
            }
            "eval" => {
                let e = expects.last_mut().unwrap();
                let l = line.trim();
                let (kind, rest) = l.split_once(' ').unwrap_or((l, ""));
                let list = match kind {
                    "alert" | "alerts" => &mut e.alerts,
                    "written" => &mut e.written,
                    "sent" => &mut e.sent,
                    other => panic!("{name}:{}: unknown expectation {other}", no + 1),
                };
                let list = list.get_or_insert_with(Vec::new);
                if rest.trim() != "none" {
                    let (series, tail) = rest.rsplit_once('}').map_or((rest, ""), |(a, b)| (a, b));
                    let series = if series.contains('{') {
                        format!("{series}}}")
                    } else {
                        series.to_string()
                    };
                    list.push(format!("{} {}", canon(&parse_series(&series)), tail.trim()));
                }
            }
            _ => panic!("{name}:{}: indented line outside a section", no + 1),
        }
        let _ = load_step;
    }
    load(&store, load_step, &load_lines);
    let rg: strata_ruler::rulefmt::RuleGroup =
        serde_yaml::from_str(&group_yaml).unwrap_or_else(|e| panic!("{name}: group: {e}"));
    let mut group = Group::new("fixture", &rg, 60_000, 0);
    let engine = Engine::default();
    let tenant = TenantId::new("t").unwrap();
    let metrics = Metrics::default();
    let alert_ctx = AlertContext {
        external_labels: BTreeMap::new(),
        external_url: "http://strata".into(),
    };
    let env = EvalEnv {
        engine: &engine,
        queryable: &store,
        pusher: &store,
        tenant: &tenant,
        alert_ctx: &alert_ctx,
        metrics: &metrics,
        resend_delay_ms: 60_000,
    };
    let mut ts = 0;
    for e in &expects {
        let mut outcome = None;
        while ts <= e.at_ms {
            store.take_written();
            outcome = Some(group.eval(env, ts).await);
            ts += group.interval_ms;
        }
        let outcome =
            outcome.unwrap_or_else(|| panic!("{name}:{}: eval times must increase", e.line));
        let at = format!("{name}:{} (eval at {}ms)", e.line, e.at_ms);
        if let Some(want) = &e.alerts {
            let mut got: Vec<String> = group
                .alerting_rules()
                .flat_map(|r| r.alerts())
                .map(|a| {
                    let mut l = a.labels.clone().into_vec();
                    let name = l
                        .iter()
                        .find(|x| x.name == "alertname")
                        .map(|x| x.value.clone())
                        .unwrap_or_default();
                    l.retain(|x| x.name != "alertname");
                    l.push(strata_model::Label::new("__name__", name));
                    format!(
                        "{} {}",
                        canon(&strata_model::Labels::from_pairs(
                            l.into_iter().map(|x| (x.name, x.value))
                        )),
                        a.state.as_str()
                    )
                })
                .collect();
            got.sort();
            let mut want = want.clone();
            want.sort();
            assert_eq!(got, want, "{at}: active alerts");
        }
        let written = store.take_written();
        if let Some(want) = &e.written {
            let mut got: Vec<String> = written
                .iter()
                .map(|w| format!("{} {} @{}", canon(&w.labels), fmt_value(w.v), fmt_ms(w.t)))
                .collect();
            got.sort();
            let mut want = want.clone();
            want.sort();
            assert_eq!(got, want, "{at}: written samples");
        }
        if let Some(want) = &e.sent {
            let mut got: Vec<String> = outcome
                .to_send
                .iter()
                .flat_map(|t| &t.alerts)
                .map(|a| {
                    let mut l = a.labels.clone().into_vec();
                    let name = l
                        .iter()
                        .find(|x| x.name == "alertname")
                        .map(|x| x.value.clone())
                        .unwrap_or_default();
                    l.retain(|x| x.name != "alertname");
                    l.push(strata_model::Label::new("__name__", name));
                    let end = match a.resolved_at {
                        Some(r) => format!("resolved={}", fmt_ms(r)),
                        None => format!("ends={}", fmt_ms(a.valid_until)),
                    };
                    format!(
                        "{} {end}",
                        canon(&strata_model::Labels::from_pairs(
                            l.into_iter().map(|x| (x.name, x.value))
                        ))
                    )
                })
                .collect();
            got.sort();
            let mut want = want.clone();
            want.sort();
            assert_eq!(got, want, "{at}: sent alerts");
        }
    }
}

fn fmt_ms(ms: i64) -> String {
    strata_ruler::duration::PromDuration(std::time::Duration::from_millis(ms as u64)).to_string()
}

// Multi-threaded: templates that query block their worker while the query runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/timelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "fixtures missing in {}", dir.display());
    for f in files {
        run_file(&f).await;
    }
}
