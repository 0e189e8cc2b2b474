//! Per-tenant alert settings from the runtime configuration: external labels and URL, and
//! alert relabelling after the static `ruler.alert_relabel_configs`. Two tenants evaluate the
//! same group; what each sends differs as their settings say.

use crate::api::Sink;
use crate::common::{load, Store};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strata_model::relabel::{Action, RelabelConfig};
use strata_model::{Limits, Overrides, TenancyConfig, TenancyMode, TenantId};
use strata_promql::Engine;
use strata_ruler::metrics::Metrics;
use strata_ruler::notifier::Notifier;
use strata_ruler::rulefmt::RuleGroup;
use strata_ruler::store::RuleStore;
use strata_ruler::{Ruler, RulerConfig};
use strata_storage::bucket::Bucket;

const GROUP: &str = r#"
name: g
interval: 1s
rules:
  - alert: Down
    expr: relabel_up == 0
    labels:
      severity: '{{ if eq $labels.instance "b" }}info{{ else }}page{{ end }}'
    annotations:
      link: '{{ $externalURL }} {{ $externalLabels.region }}'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_get_their_external_labels_url_and_relabelling() {
    let store = Store::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    load(
        &store,
        1000,
        "relabel_up{instance=\"a\"} 0x400\nrelabel_up{instance=\"b\"} 0x400\n",
    );
    {
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
    let rules = RuleStore::new(bucket, "@rules");
    let (t1, t2) = (TenantId::new("t1").unwrap(), TenantId::new("t2").unwrap());
    let g: RuleGroup = serde_yaml::from_str(GROUP).unwrap();
    rules.put(&t1, "ns", &g).await.unwrap();
    rules.put(&t2, "ns", &g).await.unwrap();

    // t2: its own region label and URL; drops info alerts; copies `instance` to `host`.
    let mut overrides = Overrides::default();
    overrides.tenants.insert(
        "t2".into(),
        Limits {
            ruler_external_labels: BTreeMap::from([("region".into(), "eu".into())]),
            ruler_external_url: "https://t2.example".into(),
            ruler_alert_relabel_configs: vec![
                RelabelConfig {
                    source_labels: vec!["severity".into()],
                    regex: "info".into(),
                    action: Action::Drop,
                    ..Default::default()
                },
                RelabelConfig {
                    source_labels: vec!["instance".into()],
                    target_label: "host".into(),
                    ..Default::default()
                },
            ],
            ..Limits::default()
        },
    );
    overrides.validate().unwrap();
    let cfg = RulerConfig {
        external_url: "http://strata.test".into(),
        external_labels: BTreeMap::from([
            ("region".into(), "us".into()),
            ("cluster".into(), "c1".into()),
        ]),
        // Applies to every tenant: removes the `cluster` label.
        alert_relabel_configs: vec![RelabelConfig {
            regex: "cluster".into(),
            action: Action::LabelDrop,
            ..Default::default()
        }],
        ..Default::default()
    };
    let sink = Arc::new(Sink::default());
    let metrics = Metrics::default();
    let notifier = Arc::new(Notifier::new(vec![sink.clone()], 100, metrics.clone()));
    let ruler = Ruler::new(
        cfg,
        TenancyConfig {
            mode: TenancyMode::Header,
            single_tenant_id: String::new(),
        },
        Engine::default(),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        rules,
        notifier.clone(),
        metrics,
        None,
        Some(Arc::new(RwLock::new(overrides))),
    )
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(notifier.clone().run(stop_rx.clone()));
    tokio::spawn(ruler.clone().run(stop_rx));

    // Both tenants' first sends: t1 sends a and b, t2 only a.
    let sent = |tenant: &str, instance: &str| {
        sink.0
            .lock()
            .iter()
            .find(|(t, a)| {
                t == tenant && a.labels.get("instance").map(String::as_str) == Some(instance)
            })
            .map(|(_, a)| a.clone())
    };
    for _ in 0..300 {
        if sent("t1", "a").is_some() && sent("t1", "b").is_some() && sent("t2", "a").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t1a = sent("t1", "a").expect("t1 sent instance a");
    assert!(sent("t1", "b").is_some(), "t1 keeps its info alert");
    assert_eq!(t1a.labels.get("region").map(String::as_str), Some("us"));
    assert_eq!(
        t1a.labels.get("cluster"),
        None,
        "the static labeldrop applies"
    );
    assert_eq!(t1a.annotations["link"], "http://strata.test us");
    assert!(t1a.generator_url.starts_with("http://strata.test/graph?"));

    let t2a = sent("t2", "a").expect("t2 sent instance a");
    assert_eq!(t2a.labels.get("region").map(String::as_str), Some("eu"));
    assert_eq!(t2a.labels.get("host").map(String::as_str), Some("a"));
    assert_eq!(t2a.labels.get("cluster"), None);
    assert_eq!(t2a.annotations["link"], "https://t2.example eu");
    assert!(t2a.generator_url.starts_with("https://t2.example/graph?"));
    // A few more evaluations: t2 never sends the info alert.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        sent("t2", "b").is_none(),
        "t2's relabelling drops info alerts"
    );
    let _ = stop_tx.send(true);
}
