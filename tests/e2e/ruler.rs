//! The ruler in `--target=all`: data pushed by remote write, a rule group uploaded through the
//! configuration API; the recording rule's series becomes queryable (written back through the
//! distributor), the alert fires, shows in `/prometheus/api/v1/alerts` and as an `ALERTS`
//! series, and reaches a webhook through the in-process Alertmanager.

use std::time::Duration;

use serde_json::Value;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_tests::{now_ms, Strata, TestDir, WebhookReceiver};

use crate::require_environment;

const GROUP: &str = r#"name: e2e
interval: 1s
rules:
  - record: job:e2e_up:sum
    expr: sum by (job) (e2e_up)
  - alert: E2EDown
    expr: e2e_up == 0
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.instance }} is down ({{ $value }})'
"#;

fn up(instance: &str, value: f64, ts: i64) -> TimeSeries {
    let mut labels = vec![
        ("__name__", "e2e_up"),
        ("instance", instance),
        ("job", "app"),
    ];
    labels.sort();
    TimeSeries {
        labels: labels
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect(),
        samples: vec![Sample {
            value,
            timestamp: ts,
        }],
        ..Default::default()
    }
}

/// Instant query result (`data.result`) of `q`.
async fn query(s: &Strata, q: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .expect("query");
    let v: Value = r.json().await.expect("query json");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

async fn eventually<T, F, Fut>(what: &str, s: &Strata, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}\n{}",
            s.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn recorded_series_and_firing_alert_reach_the_webhook() {
    require_environment();
    let hook = WebhookReceiver::start().await;
    let dir = TestDir::new();
    let am = dir.root().join("am.yml");
    std::fs::write(
        &am,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{}/hook'}}]\n",
            hook.url
        ),
    )
    .unwrap();
    let cfg = format!(
        "alertmanager:\n  config_file: '{}'\nruler:\n  evaluation_interval: 1s\n  poll_interval: 1s\n  external_url: 'http://strata.example'\n",
        am.display()
    );
    let s = Strata::start_with_config(dir, Some(&cfg)).await;
    let now = now_ms();
    s.push_ok(&WriteRequest {
        timeseries: vec![up("a", 1.0, now), up("b", 0.0, now)],
        ..Default::default()
    })
    .await;

    let client = reqwest::Client::new();
    let r = client
        .post(s.url("/prometheus/config/v1/rules/team-a"))
        .header("Content-Type", "application/yaml")
        .body(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "{}\n{}",
        r.text().await.unwrap(),
        s.log_tail()
    );
    let back = client
        .get(s.url("/prometheus/config/v1/rules/team-a/e2e"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(back.contains("alert: E2EDown"), "{back}");

    // The recorded series, written back through the distributor.
    let rec = eventually("the recorded series", &s, || async {
        let r = query(&s, "job:e2e_up:sum").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(rec[0]["metric"]["job"], "app");
    assert_eq!(rec[0]["value"][1], "1");

    // The alert, at the webhook through the in-process Alertmanager.
    let calls = hook.wait_for("E2EDown", 1, Duration::from_secs(60)).await;
    let body = &calls[0].body;
    assert_eq!(body["status"], "firing", "{body}");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "E2EDown");
    assert_eq!(alert["labels"]["instance"], "b");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "b is down (0)");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://strata.example/graph?g0.expr="),
        "{alert}"
    );

    // The ALERTS series and the Prometheus alerts API.
    let alerts_series = eventually("the ALERTS series", &s, || async {
        let r = query(&s, "ALERTS{alertname=\"E2EDown\",alertstate=\"firing\"}").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(alerts_series[0]["metric"]["instance"], "b");
    let api: Value = client
        .get(s.url("/prometheus/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["data"]["alerts"][0]["state"], "firing", "{api}");
    let rules: Value = client
        .get(s.url("/api/v1/rules?type=alert"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rules["data"]["groups"][0]["file"], "team-a", "{rules}");
    assert_eq!(
        rules["data"]["groups"][0]["rules"][0]["health"], "ok",
        "{rules}"
    );
}
