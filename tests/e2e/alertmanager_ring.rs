//! Three `strata --target=alertmanager` processes in a ring kept by one `strata --target=meta`
//! voter (gRPC on 127.0.0.1): one notification per group; a frozen first owner is covered by the
//! next one after `peer_timeout`; a rolling restart keeps silences and sends no duplicate; a
//! partition between the replicas (cut by proxies) loses no notification and leaves no duplicate
//! once healed; scaling 1 → 3 → 1 by starting and stopping replicas keeps the state, even when
//! the old replica crashes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_meta::{KvStore, RemoteKv, RemoteKvOptions};
use strata_ring::{key_token, ring_prefix, InstanceDesc, Ring as HashRing, RingOptions};
use strata_tests::{free_port, signal_pid, FaultyProxy, Strata, TestDir, WebhookReceiver};

const PEER_TIMEOUT: Duration = Duration::from_secs(2);
const GROUP_WAIT: Duration = Duration::from_secs(1);
/// Long enough for every owner's wait (the last one waits 2 × peer_timeout) and more.
const QUIET_PERIOD: Duration = Duration::from_secs(7);
const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// Replica ids.
const IDS: [&str; 3] = ["am-1", "am-2", "am-3"];

/// The meta voter: the cluster KV the replicas keep their ring in.
struct Meta {
    _process: Strata,
    grpc: SocketAddr,
}

impl Meta {
    async fn start() -> Meta {
        let grpc: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let yml = format!(
            "server:\n  grpc_listen_address: '{grpc}'\nmeta:\n  peers: [{{id: 1, address: '{grpc}'}}]\n  bootstrap: true\n"
        );
        Meta {
            _process: Strata::start_target(TestDir::new(), "meta", "meta", &yml).await,
            grpc,
        }
    }

    /// Indices into [`IDS`] of the tenant's owners in ring order (position 0 notifies first),
    /// computed from the KV exactly as the replicas compute them.
    async fn owners(&self, tenant: &str) -> Vec<usize> {
        let kv = RemoteKv::new(vec![self.grpc.to_string()], RemoteKvOptions::default());
        let prefix = ring_prefix("ring/alertmanager");
        let entries = kv.list(&prefix).await.expect("list the alertmanager ring");
        let descs: Vec<InstanceDesc> = entries
            .iter()
            .map(|e| InstanceDesc::decode(&e.key, &e.value).expect("ring entry"))
            .collect();
        let ring = HashRing::new(descs, &RingOptions::default());
        ring.owners(key_token(tenant.as_bytes()), 3)
            .iter()
            .map(|d| IDS.iter().position(|id| *id == d.id).expect("known id"))
            .collect()
    }
}

struct Ring {
    meta: Meta,
    hook: WebhookReceiver,
    grpc_ports: Vec<u16>,
    replicas: Vec<Option<Strata>>,
    /// With `proxied`: a proxy in front of each replica's gRPC server, the address it
    /// advertises in the ring (the partition test cuts them all).
    proxies: Vec<FaultyProxy>,
}

fn am_yml(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: {}s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{hook}/hook'}}]\n",
        GROUP_WAIT.as_secs()
    )
}

/// The configuration of replica `i`: its gRPC server on `port`, advertised at `advertised`;
/// the ring in the meta voter at `meta`.
fn strata_yml(i: usize, port: u16, advertised: &str, meta: SocketAddr) -> String {
    format!(
        "meta:\n  peers: [{{id: 1, address: '{meta}'}}]\nalertmanager:\n  config_file: am.yml\n  snapshot_interval: 1s\n  ring:\n    enabled: true\n    instance_id: {id}\n    grpc_listen_address: '127.0.0.1:{port}'\n    instance_addr: '{advertised}'\n    replication_factor: 3\n    heartbeat_period: 1s\n    heartbeat_timeout: 5s\n    peer_timeout: {pt}s\n    settle_timeout: 10s\n    sync_interval: {si}s\n    rpc_timeout: 1s\n",
        id = IDS[i],
        pt = PEER_TIMEOUT.as_secs(),
        si = SYNC_INTERVAL.as_secs(),
    )
}

impl Ring {
    /// A meta voter and a webhook receiver; no replica started yet (the scaling tests start
    /// them one by one).
    async fn stopped(proxied: bool) -> Ring {
        let grpc_ports: Vec<u16> = IDS.iter().map(|_| free_port()).collect();
        let mut proxies = Vec::new();
        if proxied {
            for p in &grpc_ports {
                proxies.push(FaultyProxy::start(([127, 0, 0, 1], *p).into()).await);
            }
        }
        Ring {
            meta: Meta::start().await,
            hook: WebhookReceiver::start().await,
            grpc_ports,
            replicas: vec![None, None, None],
            proxies,
        }
    }

    async fn start() -> Ring {
        Self::start_linked(false).await
    }

    /// With `proxied`, the replicas reach each other through [`FaultyProxy`]s.
    async fn start_linked(proxied: bool) -> Ring {
        let mut ring = Self::stopped(proxied).await;
        for i in 0..IDS.len() {
            let dir = ring.fresh_dir();
            ring.replicas[i] = Some(ring.launch(i, dir).await);
        }
        for i in 0..IDS.len() {
            ring.wait_settled(i).await;
        }
        ring
    }

    /// A data directory with the Alertmanager configuration.
    fn fresh_dir(&self) -> TestDir {
        let dir = TestDir::new();
        std::fs::write(dir.data_dir().join("am.yml"), am_yml(&self.hook.url))
            .expect("write am.yml");
        dir
    }

    async fn launch(&self, i: usize, dir: TestDir) -> Strata {
        self.launch_with(i, dir, |y| y).await
    }

    /// [`Ring::launch`] with the configuration passed through `edit`.
    async fn launch_with(&self, i: usize, dir: TestDir, edit: impl Fn(String) -> String) -> Strata {
        let advertised = match self.proxies.get(i) {
            Some(p) => p.addr().to_string(),
            None => format!("127.0.0.1:{}", self.grpc_ports[i]),
        };
        let yml = edit(strata_yml(
            i,
            self.grpc_ports[i],
            &advertised,
            self.meta.grpc,
        ));
        Strata::start_target(dir, IDS[i], "alertmanager", &yml).await
    }

    /// Cuts (`true`) or heals every link between replicas (the meta voter stays reachable).
    fn partition(&self, cut: bool) {
        assert!(
            !self.proxies.is_empty(),
            "the ring was started without proxies"
        );
        for p in &self.proxies {
            if cut {
                p.cut();
            } else {
                p.heal();
            }
        }
    }

    /// The replicas' ring as replica `i`'s ring page shows it: `(id, state)`, sorted.
    async fn ring_page(&self, i: usize) -> Vec<(String, String)> {
        let s = self.replica(i);
        let v: Value = s
            .client
            .get(s.url("/alertmanager/ring"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("GET /alertmanager/ring")
            .json()
            .await
            .expect("ring page JSON");
        let mut rows: Vec<(String, String)> = v["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap_or_default().to_string(),
                    r["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    /// Waits until `alertmanager_cluster_members` is `n` on every replica.
    async fn wait_members(&self, n: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for (i, id) in IDS.iter().enumerate() {
            loop {
                let got = self.replica(i).metric("alertmanager_cluster_members").await;
                if got == n {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{id} reaches {got} member(s), not {n}, after {timeout:?}\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Replication pushes replica `i` made that peer `j` accepted.
    async fn pushes(&self, i: usize, j: usize) -> f64 {
        let text = self.replica(i).metrics_text().await;
        let series = format!(
            "strata_alertmanager_replication_pushes_total{{peer=\"{}\"}}",
            IDS[j]
        );
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn replica(&self, i: usize) -> &Strata {
        self.replicas[i].as_ref().expect("replica running")
    }

    /// `/-/ready` answers 200 once the replica merged its peers' state (or gave up waiting).
    async fn wait_settled(&self, i: usize) {
        let s = self.replica(i);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = s
                .client
                .get(s.url("/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not settle\n{}",
                IDS[i],
                s.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, i: usize, path: &str, body: &Value) -> Value {
        let s = self.replica(i);
        let r = s
            .client
            .post(s.url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} to {}: {e}", IDS[i]));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "POST {path} to {}: {status}: {text}",
            IDS[i]
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, i: usize, path: &str) -> Value {
        let s = self.replica(i);
        let r = s
            .client
            .get(s.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} from {}: {e}", IDS[i]));
        assert!(r.status().is_success(), "GET {path} from {}", IDS[i]);
        r.json().await.expect("JSON")
    }

    /// Silence ids a replica lists, active or pending only.
    async fn live_silences(&self, i: usize) -> Vec<String> {
        let v = self.get(i, "/api/v2/silences").await;
        let mut ids: Vec<String> = v
            .as_array()
            .expect("array")
            .iter()
            .filter(|s| s["status"]["state"] != "expired")
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    }

    fn logs(&self) -> String {
        self.replicas
            .iter()
            .flatten()
            .map(Strata::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn alert(name: &str) -> Value {
    json!([{"labels": {"alertname": name, "job": "e2e"}}])
}

fn silence(name: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let fmt = |s: u64| {
        // RFC 3339 in UTC from Unix seconds, without a date library.
        let days = s / 86_400;
        let (h, m, sec) = ((s % 86_400) / 3600, (s % 3600) / 60, s % 60);
        let (y, mo, d) = civil_from_days(days as i64);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{sec:02}Z")
    };
    json!({
        "matchers": [{"name": "alertname", "value": name, "isRegex": false, "isEqual": true}],
        "startsAt": fmt(now),
        "endsAt": fmt(now + 3600),
        "createdBy": "e2e",
        "comment": "ring test",
    })
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_notifies_once_and_covers_a_frozen_owner() {
    crate::require_environment();
    let ring = Ring::start().await;

    // Any replica takes the alert; the three owners hold it, one notifies.
    ring.post(1, "/api/v2/alerts", &alert("Once")).await;
    ring.hook.wait_for("Once", 1, Duration::from_secs(15)).await;
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Once").len(),
        1,
        "one notification per group from three replicas\n{}",
        ring.logs()
    );
    let members = ring.replica(0).metric("alertmanager_cluster_members").await;
    assert_eq!(members, 3.0, "{}", ring.logs());
    let active: Vec<(String, String)> = IDS
        .iter()
        .map(|id| (id.to_string(), "ACTIVE".to_string()))
        .collect();
    assert_eq!(ring.ring_page(0).await, active);

    // The owners of the single tenant in ring order, from the tokens the replicas drew.
    let owners = ring.meta.owners("anonymous").await;
    assert_eq!(owners.len(), 3, "{owners:?}");
    let (first, last) = (owners[0], owners[2]);
    // Freeze the first owner: the second sends after group_wait + peer_timeout.
    let pid = ring.replica(first).pid().expect("pid");
    signal_pid(pid, "STOP");
    let posted = Instant::now();
    ring.post(last, "/api/v2/alerts", &alert("Frozen")).await;
    let got = ring
        .hook
        .wait_for("Frozen", 1, Duration::from_secs(20))
        .await;
    let took = got[0].at.duration_since(posted);
    assert!(
        took >= GROUP_WAIT + PEER_TIMEOUT - Duration::from_millis(500),
        "sent after {took:?}: the second owner must wait peer_timeout for the first"
    );
    assert!(
        took <= GROUP_WAIT + PEER_TIMEOUT + Duration::from_secs(4),
        "sent only after {took:?}\n{}",
        ring.logs()
    );
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Frozen").len(),
        1,
        "the third owner saw the second one's notification\n{}",
        ring.logs()
    );

    // The last owner planned the send at group_wait and dropped it after its wait.
    let dropped = ring
        .replica(last)
        .metric("strata_alertmanager_notifications_deduplicated_total")
        .await;
    assert!(dropped >= 1.0, "{} deduplicated {dropped}", IDS[last]);

    // Thawed, the first owner may repeat what it missed (it cannot know in time), but once the
    // notification log has reached it nothing repeats again.
    signal_pid(pid, "CONT");
    tokio::time::sleep(QUIET_PERIOD).await;
    let after_thaw = ring.hook.calls().len();
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls().len(),
        after_thaw,
        "no further notifications once healed: {:?}\n{}",
        ring.hook
            .calls()
            .iter()
            .map(|c| c.body["groupLabels"].clone())
            .collect::<Vec<_>>(),
        ring.logs()
    );
    assert_eq!(ring.hook.calls_for("Once").len(), 1);
    assert!(!ring.hook.calls_for("Frozen").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_silences_and_sends_no_duplicate() {
    crate::require_environment();
    let mut ring = Ring::start().await;
    let quiet = ring.post(1, "/api/v2/silences", &silence("Quiet")).await["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    ring.post(
        2,
        "/api/v2/alerts",
        &json!([alert("Loud")[0], alert("Quiet")[0]]),
    )
    .await;
    ring.hook.wait_for("Loud", 1, Duration::from_secs(15)).await;
    tokio::time::sleep(QUIET_PERIOD).await;
    let mut expected = vec![quiet];
    for (i, name) in IDS.iter().enumerate() {
        let other = (i + 1) % IDS.len();
        let dir = ring.replicas[i].take().expect("running").kill();
        // A silence made while the replica is down reaches it through the start-up sync.
        let id = ring
            .post(other, "/api/v2/silences", &silence(&format!("While{i}")))
            .await["silenceID"]
            .as_str()
            .expect("silence id")
            .to_string();
        expected.push(id);
        expected.sort();
        let restarted = ring.launch(i, dir).await;
        ring.replicas[i] = Some(restarted);
        ring.wait_settled(i).await;
        assert_eq!(
            ring.live_silences(i).await,
            expected,
            "{} after restart\n{}",
            name,
            ring.logs()
        );
        // The restarted replica regroups its restored alerts at once; its notification log
        // (on disk and from the peers) keeps it from repeating them.
        tokio::time::sleep(QUIET_PERIOD).await;
        assert_eq!(
            ring.hook.calls_for("Loud").len(),
            1,
            "duplicate after restarting {}\n{}",
            name,
            ring.logs()
        );
        assert!(ring.hook.calls_for("Quiet").is_empty(), "silence lost");
    }
    // A replica replaced with an empty disk gets silences, alerts and the notification log
    // from its peers before it may notify, so it repeats nothing either.
    let replaced = 1;
    drop(ring.replicas[replaced].take().expect("running").kill());
    let fresh = ring.fresh_dir();
    ring.replicas[replaced] = Some(ring.launch(replaced, fresh).await);
    ring.wait_settled(replaced).await;
    assert_eq!(
        ring.live_silences(replaced).await,
        expected,
        "{}",
        ring.logs()
    );
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Loud").len(),
        1,
        "duplicate from the replaced replica\n{}",
        ring.logs()
    );
    for (i, name) in IDS.iter().enumerate() {
        let alerts = ring.get(i, "/api/v2/alerts").await;
        let names: Vec<&str> = alerts
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        assert!(
            names.contains(&"Loud") && names.contains(&"Quiet"),
            "{} holds {names:?}",
            name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alerting_all_replicas_gets_one_notification() {
    crate::require_environment();
    let ring = Ring::start().await;
    let work = TestDir::new();
    // `for: 8s`: Prometheus drops what fires before its alertmanager discovery first syncs
    // (up to 5s after start) and resends only after a minute.
    std::fs::write(
        work.root().join("rules.yml"),
        "groups:\n  - name: e2e\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        for: 8s\n        labels: {severity: page}\n",
    )
    .expect("write rules.yml");
    let targets: Vec<String> = (0..IDS.len())
        .map(|i| format!("'{}'", ring.replica(i).addr))
        .collect();
    // As recommended upstream for HA: every Prometheus sends to every replica.
    let config = format!(
        "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: [{}]\n",
        work.root().join("rules.yml").display(),
        targets.join(", ")
    );
    let prometheus = strata_tests::start_prometheus(work.root(), &config).await;
    let got = ring
        .hook
        .wait_for("AlwaysFiring", 1, Duration::from_secs(30))
        .await;
    assert_eq!(got[0].body["alerts"][0]["labels"]["severity"], "page");
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("AlwaysFiring").len(),
        1,
        "one notification although Prometheus sent the alert to three replicas\n{}\n{}",
        prometheus.process.log_tail(),
        ring.logs()
    );
    for (i, name) in IDS.iter().enumerate() {
        let alerts = ring.get(i, "/api/v2/alerts").await;
        assert_eq!(
            alerts[0]["labels"]["alertname"], "AlwaysFiring",
            "{name} holds the alert"
        );
    }
}

/// Scale 1 → 3 → 1 by starting and stopping replicas (no configuration changes: they register
/// in the ring themselves): a single replica's silences and notification log reach the two that
/// join, a silence made in the 3-replica ring stays when it shrinks back to one (the leaving
/// replicas hand their state over and unregister), and nothing is notified twice.
/// (Crash restarts are the rolling-restart test's subject.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_one_to_three_to_one_keeps_state_and_sends_no_duplicate() {
    crate::require_environment();
    let mut ring = Ring::stopped(false).await;
    // One replica.
    let d = ring.fresh_dir();
    ring.replicas[0] = Some(ring.launch(0, d).await);
    ring.wait_settled(0).await;
    let quiet = ring.post(0, "/api/v2/silences", &silence("Quiet")).await["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    ring.post(
        0,
        "/api/v2/alerts",
        &json!([alert("Loud")[0], alert("Quiet")[0]]),
    )
    .await;
    ring.hook.wait_for("Loud", 1, Duration::from_secs(15)).await;
    // Scale up: two more replicas, nothing else touched.
    for i in [1, 2] {
        let d = ring.fresh_dir();
        ring.replicas[i] = Some(ring.launch(i, d).await);
    }
    for i in 0..3 {
        ring.wait_settled(i).await;
    }
    // Each joiner merged the others' state before it settled.
    for (i, id) in IDS.iter().enumerate() {
        assert_eq!(
            ring.live_silences(i).await,
            vec![quiet.clone()],
            "{id} after scaling up\n{}",
            ring.logs()
        );
    }
    let louder = ring.post(2, "/api/v2/silences", &silence("Louder")).await["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Loud").len(),
        1,
        "duplicate after scaling up\n{}",
        ring.logs()
    );
    // Scale down to the first replica alone: the others leave the ring and stop.
    for i in [1, 2] {
        drop(ring.replicas[i].take().expect("running").stop());
    }
    // They unregistered; the remaining replica's view follows within moments.
    let alone = vec![(IDS[0].to_string(), "ACTIVE".to_string())];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = ring.ring_page(0).await;
        if rows == alone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped replicas are still in the ring: {rows:?}\n{}",
            ring.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut want = vec![quiet, louder];
    want.sort();
    assert_eq!(ring.live_silences(0).await, want, "{}", ring.logs());
    ring.post(
        0,
        "/api/v2/alerts",
        &json!([alert("Loud")[0], alert("Quiet")[0], alert("Louder")[0]]),
    )
    .await;
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Loud").len(),
        1,
        "duplicate after scaling down\n{}",
        ring.logs()
    );
    assert!(ring.hook.calls_for("Quiet").is_empty(), "silence lost");
    assert!(ring.hook.calls_for("Louder").is_empty(), "silence lost");
}

/// Gossip between the replicas cut (each reaches its peers through a [`FaultyProxy`], all cut
/// at once) while every replica gets every alert, as from a Prometheus configured with all of
/// them: each group is notified at least once (each isolated replica may send it: duplicates
/// are the price of a partition); once healed, the notification logs converge and nothing is
/// sent again, a new group is notified exactly once, and a silence made on one side during the
/// partition reaches the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_loses_no_notification_and_heals_without_duplicates() {
    crate::require_environment();
    let ring = Ring::start_linked(true).await;
    // Healthy through the proxies.
    ring.wait_members(3.0, Duration::from_secs(15)).await;

    ring.partition(true);
    let muted = ring.post(0, "/api/v2/silences", &silence("Muted")).await["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    let groups = ["Cut0", "Cut1", "Cut2", "Cut3"];
    let batch: Vec<Value> = groups.iter().map(|g| alert(g)[0].clone()).collect();
    // An owner stores the alert although forwarding it to the other owners fails.
    for i in 0..IDS.len() {
        ring.post(i, "/api/v2/alerts", &json!(batch)).await;
    }
    // Each replica marks its peers unreachable once its calls time out.
    ring.wait_members(1.0, Duration::from_secs(15)).await;
    // No push gets through a cut link: counted from here, one that succeeds came after healing.
    let mut pushed_before = Vec::new();
    for i in 0..IDS.len() {
        for j in (0..IDS.len()).filter(|&j| j != i) {
            pushed_before.push((i, j, ring.pushes(i, j).await));
        }
    }
    for g in groups {
        ring.hook.wait_for(g, 1, Duration::from_secs(15)).await;
    }
    // Every owner's wait is over: whatever the partition duplicates has been sent.
    tokio::time::sleep(QUIET_PERIOD).await;
    for g in groups {
        let n = ring.hook.calls_for(g).len();
        // repeat_interval is 1h: at most one notification per replica.
        assert!(
            (1..=IDS.len()).contains(&n),
            "{g} notified {n} times during the partition\n{}",
            ring.logs()
        );
    }
    for (i, id) in IDS.iter().enumerate().skip(1) {
        assert!(
            ring.live_silences(i).await.is_empty(),
            "{id} got am-1's silence through a cut link\n{}",
            ring.logs()
        );
    }

    ring.partition(false);
    ring.wait_members(3.0, Duration::from_secs(20)).await;
    // Every replica notified during the partition, so each has notification-log entries queued
    // for each peer: wait until every link carried a push again.
    let deadline = Instant::now() + Duration::from_secs(20);
    for &(i, j, before) in &pushed_before {
        while ring.pushes(i, j).await <= before {
            assert!(
                Instant::now() < deadline,
                "{} pushed nothing to {} after healing\n{}",
                IDS[i],
                IDS[j],
                ring.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Silences replicate last-writer-wins: am-1's reaches the others.
    for (i, id) in IDS.iter().enumerate().skip(1) {
        loop {
            let live = ring.live_silences(i).await;
            if live == vec![muted.clone()] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} holds silences {live:?} after healing, not am-1's {muted}\n{}",
                ring.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // And a periodic full-state pull ran on the healed links.
    tokio::time::sleep(SYNC_INTERVAL).await;
    let healed: Vec<usize> = groups
        .iter()
        .map(|g| ring.hook.calls_for(g).len())
        .collect();
    let calls = ring.hook.calls().len();
    // Several group_interval (1s) + peer_timeout windows: the merged logs repeat nothing.
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls().len(),
        calls,
        "notifications after healing: {:?}\n{}",
        ring.hook
            .calls()
            .iter()
            .skip(calls)
            .map(|c| c.body["groupLabels"].clone())
            .collect::<Vec<_>>(),
        ring.logs()
    );

    // A group that starts after healing is notified once, and the silence holds everywhere.
    let batch = json!([alert("After")[0], alert("Muted")[0]]);
    for i in 0..IDS.len() {
        ring.post(i, "/api/v2/alerts", &batch).await;
    }
    ring.hook
        .wait_for("After", 1, Duration::from_secs(15))
        .await;
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("After").len(),
        1,
        "a group that started after healing\n{}",
        ring.logs()
    );
    assert!(
        ring.hook.calls_for("Muted").is_empty(),
        "the silence made during the partition does not hold everywhere\n{}",
        ring.logs()
    );
    let now: Vec<usize> = groups
        .iter()
        .map(|g| ring.hook.calls_for(g).len())
        .collect();
    assert_eq!(now, healed, "{groups:?} notified again\n{}", ring.logs());
}

/// Scale 1 → 3 where the single old replica crashes (SIGKILL) before it wrote its notification
/// log to disk: the joiners must have taken that log from it (their start-up pull), so the
/// restarted replica gets it back and, when the alert is sent again (as Prometheus keeps sending
/// firing alerts), nobody repeats it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_then_crash_of_the_old_replica_sends_no_duplicate() {
    crate::require_environment();
    let mut ring = Ring::stopped(false).await;
    // No snapshot after the one at start: what the old replica notified is on no disk.
    let no_snapshots = |y: String| y.replace("snapshot_interval: 1s", "snapshot_interval: 1h");
    let d = ring.fresh_dir();
    ring.replicas[0] = Some(ring.launch_with(0, d, no_snapshots).await);
    ring.wait_settled(0).await;
    ring.post(0, "/api/v2/alerts", &alert("Loud")).await;
    ring.hook.wait_for("Loud", 1, Duration::from_secs(15)).await;
    for i in [1, 2] {
        let d = ring.fresh_dir();
        ring.replicas[i] = Some(ring.launch_with(i, d, no_snapshots).await);
    }
    for i in [1, 2] {
        ring.wait_settled(i).await;
    }
    // Killed, its ring entry stays ACTIVE: the restart takes it back, tokens included.
    let dir = ring.replicas[0].take().expect("running").kill();
    ring.replicas[0] = Some(ring.launch_with(0, dir, no_snapshots).await);
    for i in 0..IDS.len() {
        ring.wait_settled(i).await;
    }
    for i in 0..IDS.len() {
        ring.post(i, "/api/v2/alerts", &alert("Loud")).await;
    }
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Loud").len(),
        1,
        "duplicate after the old replica crashed\n{}",
        ring.logs()
    );
}
