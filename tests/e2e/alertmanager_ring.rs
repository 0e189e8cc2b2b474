//! Three `strata --target=alertmanager` processes in a ring (gRPC on 127.0.0.1): one
//! notification per group; a frozen first owner is covered by the next one after
//! `peer_timeout`; a rolling restart keeps silences and sends no duplicate; a partition between
//! the replicas (cut by proxies) loses no notification and leaves no duplicate once healed;
//! scaling 1 → 3 keeps the notification log even when the old replica crashes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata_tests::{free_port, signal_pid, FaultyProxy, Strata, TestDir, WebhookReceiver};

const PEER_TIMEOUT: Duration = Duration::from_secs(2);
const GROUP_WAIT: Duration = Duration::from_secs(1);
/// Long enough for every owner's wait (the last one waits 2 × peer_timeout) and more.
const QUIET_PERIOD: Duration = Duration::from_secs(7);
const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// Replica ids. The ring unit test pins the owners of tenant `anonymous` for these ids to
/// am-1, am-3, am-2, in that order: am-1 notifies first.
const IDS: [&str; 3] = ["am-1", "am-2", "am-3"];
const FIRST_OWNER: usize = 0;

struct Ring {
    hook: WebhookReceiver,
    grpc_ports: Vec<u16>,
    replicas: Vec<Option<Strata>>,
    /// `(i, j, proxy)`: replica i reaches replica j through the proxy (none: directly).
    links: Vec<(usize, usize, FaultyProxy)>,
}

fn am_yml(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: {}s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{hook}/hook'}}]\n",
        GROUP_WAIT.as_secs()
    )
}

/// The configuration of replica `i` in a ring of the replicas listed in `members`.
fn strata_yml_members(i: usize, ports: &[u16], members: &[usize]) -> String {
    let addresses: Vec<(usize, String)> = members
        .iter()
        .map(|&m| (m, format!("127.0.0.1:{}", ports[m])))
        .collect();
    strata_yml_addresses(i, ports[i], &addresses)
}

/// The configuration of replica `i`, listening on `port`, in a ring of the replicas listed in
/// `members` with the address at which replica `i` reaches each (ids are the same on every
/// replica, addresses need not be).
fn strata_yml_addresses(i: usize, port: u16, members: &[(usize, String)]) -> String {
    let members: String = members
        .iter()
        .map(|(m, address)| format!("      - {{id: {}, address: '{address}'}}\n", IDS[*m]))
        .collect();
    format!(
        "alertmanager:\n  config_file: am.yml\n  snapshot_interval: 1s\n  ring:\n    enabled: true\n    instance_id: {id}\n    grpc_listen_address: '127.0.0.1:{port}'\n    replication_factor: 3\n    peer_timeout: {pt}s\n    settle_timeout: 10s\n    sync_interval: {si}s\n    rpc_timeout: 1s\n    members:\n{members}",
        id = IDS[i],
        pt = PEER_TIMEOUT.as_secs(),
        si = SYNC_INTERVAL.as_secs(),
    )
}

impl Ring {
    /// A ring whose replicas are not started yet (the scaling tests start them one by one).
    async fn stopped() -> Ring {
        Ring {
            hook: WebhookReceiver::start().await,
            grpc_ports: IDS.iter().map(|_| free_port()).collect(),
            replicas: vec![None, None, None],
            links: Vec::new(),
        }
    }

    async fn start() -> Ring {
        Self::start_linked(false).await
    }

    /// With `proxied`, every replica reaches each peer through its own [`FaultyProxy`].
    async fn start_linked(proxied: bool) -> Ring {
        let hook = WebhookReceiver::start().await;
        let grpc_ports: Vec<u16> = IDS.iter().map(|_| free_port()).collect();
        let mut links = Vec::new();
        if proxied {
            for i in 0..IDS.len() {
                for j in (0..IDS.len()).filter(|&j| j != i) {
                    let upstream = ([127, 0, 0, 1], grpc_ports[j]).into();
                    links.push((i, j, FaultyProxy::start(upstream).await));
                }
            }
        }
        let mut ring = Ring {
            hook,
            grpc_ports,
            replicas: Vec::new(),
            links,
        };
        for i in 0..IDS.len() {
            let dir = TestDir::new();
            std::fs::write(dir.data_dir().join("am.yml"), am_yml(&ring.hook.url))
                .expect("write am.yml");
            let s = ring.launch(i, dir).await;
            ring.replicas.push(Some(s));
        }
        for i in 0..IDS.len() {
            ring.wait_settled(i).await;
        }
        ring
    }

    async fn launch(&self, i: usize, dir: TestDir) -> Strata {
        let members: Vec<(usize, String)> =
            (0..IDS.len()).map(|j| (j, self.address(i, j))).collect();
        let yml = strata_yml_addresses(i, self.grpc_ports[i], &members);
        Strata::start_target(dir, IDS[i], "alertmanager", &yml).await
    }

    /// Where replica `i` reaches replica `j`: its proxy for that link, if any.
    fn address(&self, i: usize, j: usize) -> String {
        self.links
            .iter()
            .find(|(from, to, _)| (*from, *to) == (i, j))
            .map(|(_, _, p)| p.addr().to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.grpc_ports[j]))
    }

    /// Cuts (`true`) or heals every link between replicas.
    fn partition(&self, cut: bool) {
        assert!(
            !self.links.is_empty(),
            "the ring was started without proxies"
        );
        for (_, _, p) in &self.links {
            if cut {
                p.cut();
            } else {
                p.heal();
            }
        }
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

    // Freeze the first owner: the second sends after group_wait + peer_timeout.
    let pid = ring.replica(FIRST_OWNER).pid().expect("pid");
    signal_pid(pid, "STOP");
    let posted = Instant::now();
    ring.post(2, "/api/v2/alerts", &alert("Frozen")).await;
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

    // am-2, the last owner, planned the send at group_wait and dropped it after its wait.
    let dropped = ring
        .replica(1)
        .metric("strata_alertmanager_notifications_deduplicated_total")
        .await;
    assert!(dropped >= 1.0, "am-2 deduplicated {dropped}");

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
    let fresh = TestDir::new();
    std::fs::write(fresh.data_dir().join("am.yml"), am_yml(&ring.hook.url)).expect("am.yml");
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

/// Scale 1 → 3 → 1 as an operator does it (graceful restarts with the new member list): a
/// single replica's silences and notification log reach the two that join, a silence made in
/// the 3-replica ring stays when it shrinks back to one, and nothing is notified twice.
/// (Crash restarts are the rolling-restart test's subject.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_one_to_three_to_one_keeps_state_and_sends_no_duplicate() {
    crate::require_environment();
    let mut ring = Ring::stopped().await;
    let start = |ring: &Ring, i: usize, dir: TestDir, members: &'static [usize]| {
        let yml = strata_yml_members(i, &ring.grpc_ports, members);
        async move { Strata::start_target(dir, IDS[i], "alertmanager", &yml).await }
    };
    let fresh = |ring: &Ring| {
        let dir = TestDir::new();
        std::fs::write(dir.data_dir().join("am.yml"), am_yml(&ring.hook.url)).expect("am.yml");
        dir
    };
    // One replica.
    let d = fresh(&ring);
    ring.replicas[0] = Some(start(&ring, 0, d, &[0]).await);
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
    // Scale up: two new replicas, and the first restarted with the three-member list.
    for i in [1, 2] {
        let d = fresh(&ring);
        ring.replicas[i] = Some(start(&ring, i, d, &[0, 1, 2]).await);
    }
    let dir = ring.replicas[0].take().expect("running").stop();
    ring.replicas[0] = Some(start(&ring, 0, dir, &[0, 1, 2]).await);
    for i in 0..3 {
        ring.wait_settled(i).await;
    }
    // The joiners may have settled before the first replica was back: their periodic sync
    // (every 2 s) brings its state.
    tokio::time::sleep(Duration::from_secs(4)).await;
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
    // Scale down to the first replica alone.
    for i in [1, 2] {
        drop(ring.replicas[i].take().expect("running").stop());
    }
    let dir = ring.replicas[0].take().expect("running").stop();
    ring.replicas[0] = Some(start(&ring, 0, dir, &[0]).await);
    ring.wait_settled(0).await;
    let mut want = vec![quiet, louder];
    want.sort();
    assert_eq!(ring.live_silences(0).await, want, "{}", ring.logs());
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(
        ring.hook.calls_for("Loud").len(),
        1,
        "duplicate after scaling down\n{}",
        ring.logs()
    );
    assert!(ring.hook.calls_for("Quiet").is_empty(), "silence lost");
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
/// log to disk: the joiners must have taken that log from it (their start-up pull, although the
/// old replica's member list does not name them yet), so the restarted replica gets it back and,
/// when the alert is sent again (as Prometheus keeps sending firing alerts), nobody repeats it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_then_crash_of_the_old_replica_sends_no_duplicate() {
    crate::require_environment();
    let mut ring = Ring::stopped().await;
    // No snapshot after the one at start: what the old replica notified is on no disk.
    let start = |ring: &Ring, i: usize, dir: TestDir, members: &'static [usize]| {
        let yml = strata_yml_members(i, &ring.grpc_ports, members)
            .replace("snapshot_interval: 1s", "snapshot_interval: 1h");
        async move { Strata::start_target(dir, IDS[i], "alertmanager", &yml).await }
    };
    let fresh = |ring: &Ring| {
        let dir = TestDir::new();
        std::fs::write(dir.data_dir().join("am.yml"), am_yml(&ring.hook.url)).expect("am.yml");
        dir
    };
    let d = fresh(&ring);
    ring.replicas[0] = Some(start(&ring, 0, d, &[0]).await);
    ring.wait_settled(0).await;
    ring.post(0, "/api/v2/alerts", &alert("Loud")).await;
    ring.hook.wait_for("Loud", 1, Duration::from_secs(15)).await;
    for i in [1, 2] {
        let d = fresh(&ring);
        ring.replicas[i] = Some(start(&ring, i, d, &[0, 1, 2]).await);
    }
    for i in [1, 2] {
        ring.wait_settled(i).await;
    }
    let dir = ring.replicas[0].take().expect("running").kill();
    ring.replicas[0] = Some(start(&ring, 0, dir, &[0, 1, 2]).await);
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
