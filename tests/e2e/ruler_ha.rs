//! Two rulers as their own processes (with a meta voter, an ingester, a store-gateway and a
//! distributor): every rule group is evaluated by exactly one of them; after one is SIGKILLed
//! its groups continue on the other, whose alerts come back firing with their old `activeAt`
//! (restored from `ALERTS_FOR_STATE`, not pending again); after it restarts (same tokens, from
//! its tokens file) it takes back exactly the groups it had, still with the same `activeAt`.
//! And a rule firing into three Alertmanager replicas in their ring (the ruler sends every
//! alert to each, again every second) gives exactly one webhook notification. No timing is
//! asserted: every wait has a generous deadline and checks states.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_tests::{free_port, now_ms, require_strata, Strata, TestDir, WebhookReceiver};

const GROUPS: usize = 12;

fn config(name: &str, grpc: u16, meta: u16, bucket: &Path, voter: bool) -> String {
    let boot = if voter { "  bootstrap: true\n" } else { "" };
    format!(
        "server:\n  grpc_listen_address: '127.0.0.1:{grpc}'\nmeta:\n  peers: [{{id: 1, address: '127.0.0.1:{meta}'}}]\n{boot}bucket:\n  filesystem: {{directory: '{bucket}'}}\ningester:\n  ring: {{instance_id: ingester-1, replication_factor: 1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\ndistributor:\n  ring: {{instance_id: distributor-1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\nstore_gateway:\n  ring: {{instance_id: store-gateway-1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\nruler:\n  evaluation_interval: 1s\n  poll_interval: 1s\n  for_grace_period: 1s\n  ring: {{instance_id: {name}, heartbeat_period: 1s, heartbeat_timeout: 4s, tokens_file: tokens.json}}\n",
        bucket = bucket.display(),
    )
}

fn down(instance: usize, ts: i64) -> TimeSeries {
    TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: "ha_up".into(),
            },
            Label {
                name: "instance".into(),
                value: format!("i{instance}"),
            },
        ],
        samples: vec![Sample {
            value: 0.0,
            timestamp: ts,
        }],
        ..Default::default()
    }
}

/// Group name -> (alert state, `activeAt` cut to whole seconds) of the groups `ruler` runs.
async fn running(ruler: &Strata) -> BTreeMap<String, (String, String)> {
    let Ok(r) = ruler
        .client
        .get(ruler.url("/prometheus/api/v1/rules?type=alert"))
        // Its own groups only, not the whole ring's.
        .header("x-strata-ruler-local", "1")
        .send()
        .await
    else {
        return BTreeMap::new();
    };
    let v: Value = r.json().await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for g in v["data"]["groups"].as_array().into_iter().flatten() {
        let alert = &g["rules"][0]["alerts"][0];
        let active = alert["activeAt"].as_str().unwrap_or("");
        out.insert(
            g["name"].as_str().unwrap_or("").to_string(),
            (
                alert["state"].as_str().unwrap_or("none").to_string(),
                active.get(..19).unwrap_or(active).to_string(),
            ),
        );
    }
    out
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {what}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Both rulers' groups, checked to be each in exactly one ruler and all firing.
async fn placement(
    rulers: &[&Strata],
) -> Result<
    (
        Vec<BTreeMap<String, (String, String)>>,
        BTreeMap<String, String>,
    ),
    String,
> {
    let mut per = Vec::new();
    let mut active_at = BTreeMap::new();
    for r in rulers {
        let m = running(r).await;
        for (g, (state, at)) in &m {
            if state != "firing" {
                return Err(format!("{g} is {state}"));
            }
            if active_at.insert(g.clone(), at.clone()).is_some() {
                return Err(format!("{g} runs in two rulers"));
            }
        }
        per.push(m);
    }
    if active_at.len() != GROUPS {
        return Err(format!("{} of {GROUPS} groups run", active_at.len()));
    }
    Ok((per, active_at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_rulers_groups_continue_on_the_other_with_their_alerts_still_firing() {
    require_strata();
    let shared = TestDir::new();
    let bucket = shared.root().join("bucket");
    let meta_grpc = free_port();
    let start = |name: &'static str, target: &'static str, dir: TestDir, grpc: u16| {
        let cfg = config(name, grpc, meta_grpc, &bucket, target == "meta");
        async move { Strata::start_target(dir, name, target, &cfg).await }
    };
    let _meta = start("meta", "meta", TestDir::new(), meta_grpc).await;
    let _ingester = start("ingester", "ingester", TestDir::new(), free_port()).await;
    // Rules read blocks through store-gateways as well as the ingesters.
    let _sg = start(
        "store-gateway",
        "store-gateway",
        TestDir::new(),
        free_port(),
    )
    .await;
    let distributor = start("distributor", "distributor", TestDir::new(), free_port()).await;
    let r1 = start("ruler-1", "ruler", TestDir::new(), free_port()).await;
    let r2 = start("ruler-2", "ruler", TestDir::new(), free_port()).await;

    // Every instance is down, for the whole test.
    let writer = {
        let (client, url) = (distributor.client.clone(), distributor.url("/api/v1/push"));
        tokio::spawn(async move {
            loop {
                let req = WriteRequest {
                    timeseries: (0..GROUPS).map(|i| down(i, now_ms())).collect(),
                    ..Default::default()
                };
                let _ = strata_tests::push_to(&client, &url, &req).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    for i in 0..GROUPS {
        let group = format!(
            "name: g{i:02}\ninterval: 1s\nrules:\n  - alert: HaDown\n    expr: ha_up{{instance=\"i{i}\"}} == 0\n    for: 3s\n"
        );
        let r = r1
            .client
            .post(r1.url("/prometheus/config/v1/rules/ha"))
            .header("Content-Type", "application/yaml")
            .body(group)
            .send()
            .await
            .expect("post group");
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    }

    let (per, before) = eventually("every group firing in exactly one ruler", || async {
        placement(&[&r1, &r2]).await
    })
    .await;
    // Either ruler's rules and alerts APIs list the whole ring's groups and alerts.
    for r in [&r1, &r2] {
        let rules: Value = r
            .client
            .get(r.url("/prometheus/api/v1/rules"))
            .send()
            .await
            .expect("rules")
            .json()
            .await
            .expect("rules json");
        let names: Vec<&str> = rules["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        let want: Vec<String> = (0..GROUPS).map(|i| format!("g{i:02}")).collect();
        assert_eq!(names, want, "every group, sorted, from either ruler");
        let alerts: Value = r
            .client
            .get(r.url("/prometheus/api/v1/alerts"))
            .send()
            .await
            .expect("alerts")
            .json()
            .await
            .expect("alerts json");
        assert_eq!(
            alerts["data"]["alerts"].as_array().map(Vec::len),
            Some(GROUPS)
        );
    }

    // Kill the ruler that runs g00 (so that at least one group has to move).
    let (victim, survivor, victim_name, victim_groups) = if per[0].contains_key("g00") {
        (r1, r2, "ruler-1", per[0].clone())
    } else {
        (r2, r1, "ruler-2", per[1].clone())
    };
    let victim_dir = victim.kill();

    let moved = eventually("the dead ruler's groups firing on the other", || async {
        let (_, now) = placement(&[&survivor]).await?;
        for (g, at) in &now {
            if before[g] != *at {
                return Err(format!(
                    "{g} has activeAt {at}, before {} (pending again?)",
                    before[g]
                ));
            }
        }
        Ok(now)
    })
    .await;
    assert_eq!(moved.len(), GROUPS);

    // The dead ruler restarts with its tokens: it takes back exactly its groups, still firing
    // since before.
    let back = start(victim_name, "ruler", victim_dir, free_port()).await;
    eventually("the restarted ruler running its groups again", || async {
        let (per, now) = placement(&[&back, &survivor]).await?;
        if !per[0].keys().eq(victim_groups.keys()) {
            return Err(format!(
                "the restarted ruler runs {:?}, before {:?}",
                per[0].keys().collect::<Vec<_>>(),
                victim_groups.keys().collect::<Vec<_>>()
            ));
        }
        match now.iter().find(|(g, at)| before[*g] != **at) {
            Some((g, at)) => Err(format!("{g}: activeAt {at}, before {}", before[g])),
            None => Ok(()),
        }
    })
    .await;
    writer.abort();
}

/// An Alertmanager replica in a ring kept by the meta voter at `meta`.
fn alertmanager_config(id: &str, grpc: u16, meta: u16) -> String {
    format!(
        "meta:\n  peers: [{{id: 1, address: '127.0.0.1:{meta}'}}]\nalertmanager:\n  config_file: am.yml\n  ring:\n    enabled: true\n    instance_id: {id}\n    grpc_listen_address: '127.0.0.1:{grpc}'\n    replication_factor: 3\n    heartbeat_period: 1s\n    heartbeat_timeout: 5s\n    peer_timeout: 2s\n    settle_timeout: 10s\n    sync_interval: 2s\n    rpc_timeout: 1s\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_firing_into_three_alertmanagers_is_notified_once() {
    require_strata();
    let hook = WebhookReceiver::start().await;
    let shared = TestDir::new();
    let bucket = shared.root().join("bucket");
    let meta_grpc = free_port();
    let start = |name: &'static str, target: &'static str, cfg: String| async move {
        Strata::start_target(TestDir::new(), name, target, &cfg).await
    };
    let base = |name: &str, voter: bool| config(name, free_port(), meta_grpc, &bucket, voter);
    let _meta = Strata::start_target(
        TestDir::new(),
        "meta",
        "meta",
        &config("meta", meta_grpc, meta_grpc, &bucket, true),
    )
    .await;
    let _ingester = start("ingester", "ingester", base("ingester", false)).await;
    let _sg = start(
        "store-gateway",
        "store-gateway",
        base("store-gateway", false),
    )
    .await;
    let distributor = start("distributor", "distributor", base("distributor", false)).await;
    let mut ams = Vec::new();
    for id in ["am-1", "am-2", "am-3"] {
        let dir = TestDir::new();
        std::fs::write(
            dir.data_dir().join("am.yml"),
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1h\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{}/hook'}}]\n",
                hook.url
            ),
        )
        .expect("am.yml");
        let cfg = alertmanager_config(id, free_port(), meta_grpc);
        ams.push(Strata::start_target(dir, id, "alertmanager", &cfg).await);
    }
    let urls: Vec<String> = ams.iter().map(|a| format!("'{}'", a.url(""))).collect();
    let ruler_cfg = format!(
        "{}  resend_delay: 1s\n  alertmanager_urls: [{}]\n",
        base("ruler-1", false),
        urls.join(", ")
    );
    let ruler = start("ruler-1", "ruler", ruler_cfg).await;

    let writer = {
        let (client, url) = (distributor.client.clone(), distributor.url("/api/v1/push"));
        tokio::spawn(async move {
            loop {
                let req = WriteRequest {
                    timeseries: vec![down(99, now_ms())],
                    ..Default::default()
                };
                let _ = strata_tests::push_to(&client, &url, &req).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let r = ruler
        .client
        .post(ruler.url("/prometheus/config/v1/rules/once"))
        .header("Content-Type", "application/yaml")
        .body("name: once\ninterval: 1s\nrules:\n  - alert: OnceDown\n    expr: ha_up == 0\n")
        .send()
        .await
        .expect("post group");
    assert_eq!(r.status(), 202);

    eventually("a webhook notification", || async {
        if hook.calls().is_empty() {
            Err("none yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    // The ruler keeps sending the firing alert to all three replicas every second; the ring
    // must still notify once. Watch for a while (longer than every replica's wait).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let calls = hook.calls();
    let bodies: Vec<&Value> = calls.iter().map(|c| &c.body).collect();
    assert_eq!(calls.len(), 1, "notifications: {bodies:?}");
    let alerts = calls[0].body["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{}", calls[0].body);
    assert_eq!(alerts[0]["labels"]["alertname"], "OnceDown");
    assert_eq!(alerts[0]["status"], "firing");
    writer.abort();
}
