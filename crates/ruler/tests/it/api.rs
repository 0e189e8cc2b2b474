//! The ruler over HTTP on loopback: the configuration API stores groups per tenant in the
//! bucket under encoded names, the groups run, `/api/v1/rules` and `/api/v1/alerts` report
//! them in Prometheus's shapes with its filters, alerts reach the notifier's sink with the
//! tenant, and deleting a group stops it with stale markers.

use crate::common::{load, Store};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{TenancyConfig, TenancyMode, TenantId};
use strata_promql::Engine;
use strata_ruler::metrics::Metrics;
use strata_ruler::notifier::{AlertSink, Notifier, PostableAlert, SendError};
use strata_ruler::store::RuleStore;
use strata_ruler::{Ruler, RulerConfig};
use strata_storage::bucket::Bucket;

#[derive(Default)]
pub(crate) struct Sink(pub(crate) Mutex<Vec<(String, PostableAlert)>>);

#[async_trait]
impl AlertSink for Sink {
    fn name(&self) -> String {
        "test".into()
    }
    async fn send(&self, t: &TenantId, alerts: &[PostableAlert]) -> Result<(), SendError> {
        let mut v = self.0.lock();
        v.extend(alerts.iter().map(|a| (t.to_string(), a.clone())));
        Ok(())
    }
}

const GROUP: &str = r#"
name: node
interval: 1s
rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: InstanceDown
    expr: up == 0
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.instance }} is down'
"#;

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_api_evaluation_and_prometheus_api() {
    let store = Store::default();
    // Data up to well beyond the test's duration: instance b is down.
    let now = strata_ruler_now();
    {
        let mut lines = String::new();
        lines.push_str("up{job=\"node\",instance=\"a\"} 1x400\n");
        lines.push_str("up{job=\"node\",instance=\"b\"} 0x400\n");
        load(&store, 1000, &lines);
        // Shift: `load` starts at 0; add the same samples around now.
        let mut data = store.data.lock();
        for (labels, samples) in data.all_series() {
            data.add(
                labels,
                samples
                    .iter()
                    .map(|s| strata_model::Sample::new(now - 60_000 + s.t, s.v)),
            );
        }
    }
    let bucket = Bucket::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        Duration::from_secs(10),
    );
    let sink = Arc::new(Sink::default());
    let metrics = Metrics::default();
    let notifier = Arc::new(Notifier::new(vec![sink.clone()], 100, metrics.clone()));
    let cfg = RulerConfig {
        external_url: "http://strata.test".into(),
        ..Default::default()
    };
    let ruler = Ruler::new(
        cfg,
        TenancyConfig {
            mode: TenancyMode::Header,
            single_tenant_id: String::new(),
        },
        Engine::default(),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        RuleStore::new(bucket.clone(), "@rules"),
        notifier.clone(),
        metrics.clone(),
        None,
        None,
    )
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(notifier.clone().run(stop_rx.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = strata_ruler::api::router(ruler.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");

    // No tenant: refused.
    let r = http
        .get(url("/prometheus/config/v1/rules"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An invalid group: 400 naming the group and the rule.
    let r = http
        .post(url("/prometheus/config/v1/rules/team%2Fns"))
        .header("X-Scope-OrgID", "t1")
        .body("name: bad\nrules:\n  - record: a-b\n    expr: up\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"group \"bad\", rule 1, \"a-b\": invalid recording rule name"#),
        "{body}"
    );

    let r = http
        .post(url("/prometheus/config/v1/rules/team%2Fns"))
        .header("X-Scope-OrgID", "t1")
        .body(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    // Stored under encoded names: nothing user-chosen forms a path.
    let objects = bucket.list("@rules").await.unwrap();
    assert_eq!(objects.len(), 1);
    assert!(
        !objects[0].path.contains("team") && !objects[0].path.contains("node"),
        "{}",
        objects[0].path
    );

    // Read back: all, namespace, group; another tenant sees nothing.
    let all = http
        .get(url("/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed: std::collections::BTreeMap<String, Vec<strata_ruler::rulefmt::RuleGroup>> =
        serde_yaml::from_str(&all).unwrap();
    assert_eq!(parsed["team/ns"][0].name, "node");
    assert_eq!(parsed["team/ns"][0].rules.len(), 2);
    let one = http
        .get(url("/prometheus/config/v1/rules/team%2Fns/node"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert!(one.text().await.unwrap().contains("alert: InstanceDown"));
    let other = http
        .get(url("/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "t2")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // The group runs: the alert fires (for: 0) and reaches the sink with the tenant.
    wait_for("a sent alert", || !sink.0.lock().is_empty()).await;
    {
        let sent = sink.0.lock();
        let (tenant, a) = &sent[0];
        assert_eq!(tenant, "t1");
        assert_eq!(a.labels["alertname"], "InstanceDown");
        assert_eq!(a.labels["instance"], "b");
        assert_eq!(a.annotations["summary"], "b is down");
        assert!(a
            .generator_url
            .starts_with("http://strata.test/graph?g0.expr=up+%3D%3D+0"));
    }
    let get_json = |path: &'static str| {
        let http = http.clone();
        let u = url(path);
        async move {
            let r = http
                .get(u)
                .header("X-Scope-OrgID", "t1")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let rules = get_json("/api/v1/rules").await;
    assert_eq!(rules["status"], "success");
    let g = &rules["data"]["groups"][0];
    assert_eq!(g["name"], "node");
    assert_eq!(g["file"], "team/ns");
    assert_eq!(g["interval"], 1.0);
    let rec = &g["rules"][0];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["name"], "job:up:sum");
    assert_eq!(rec["health"], "ok");
    let alert = &g["rules"][1];
    assert_eq!(alert["type"], "alerting");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["duration"], 0.0);
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["alerts"][0]["state"], "firing");
    assert_eq!(alert["alerts"][0]["value"], "0e+00");
    assert_eq!(alert["alerts"][0]["annotations"]["summary"], "b is down");
    let keys: Vec<&str> = alert
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "state",
        "name",
        "query",
        "duration",
        "keepFiringFor",
        "labels",
        "annotations",
        "alerts",
        "health",
        "evaluationTime",
        "lastEvaluation",
        "type",
    ] {
        assert!(keys.contains(&k), "alerting rule lacks {k}: {keys:?}");
    }
    // Filters.
    let only_rec = get_json("/api/v1/rules?type=record").await;
    assert_eq!(
        only_rec["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        only_rec["data"]["groups"][0]["rules"][0]["type"],
        "recording"
    );
    let by_name = get_json("/prometheus/api/v1/rules?rule_name[]=InstanceDown").await;
    assert_eq!(
        by_name["data"]["groups"][0]["rules"][0]["name"],
        "InstanceDown"
    );
    let no_file = get_json("/api/v1/rules?file[]=other").await;
    assert_eq!(no_file["data"]["groups"].as_array().unwrap().len(), 0);
    let by_group = get_json("/api/v1/rules?rule_group[]=node&file[]=team/ns").await;
    assert_eq!(by_group["data"]["groups"].as_array().unwrap().len(), 1);
    let bad = http
        .get(url("/api/v1/rules?type=alerts"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let alerts = get_json("/api/v1/alerts").await;
    let list = alerts["data"]["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["labels"]["instance"], "b");

    // The recording rule wrote through the pusher.
    wait_for("a recorded sample", || {
        store
            .written
            .lock()
            .iter()
            .any(|w| w.labels.get("__name__") == Some("job:up:sum") && w.v == 1.0)
    })
    .await;

    // ALERTS is written once the group restored its `for` state (after its second
    // evaluation: it started in this ruler without state).
    wait_for("an ALERTS sample", || {
        store
            .written
            .lock()
            .iter()
            .any(|w| w.labels.get("__name__") == Some("ALERTS") && w.v == 1.0)
    })
    .await;

    // Deleting the group stops it and writes stale markers for its series.
    let r = http
        .delete(url("/prometheus/config/v1/rules/team%2Fns/node"))
        .header("X-Scope-OrgID", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(store.written.lock().iter().any(|w| {
        w.labels.get("__name__") == Some("ALERTS") && strata_model::is_stale_nan(w.v)
    }));
    let rules = get_json("/api/v1/rules").await;
    assert_eq!(rules["data"]["groups"].as_array().unwrap().len(), 0);
    assert!(bucket.list("@rules").await.unwrap().is_empty());

    let _ = stop_tx.send(true);
    server.abort();
}

fn strata_ruler_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
