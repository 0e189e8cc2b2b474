//! Alertmanagers in one process, wired into a ring kept in one in-memory cluster KV and talking
//! gRPC on 127.0.0.1: one notification per group, silences replicated, requests for tenants a
//! replica does not own forwarded to the owners, tenants handed over when a replica joins or
//! leaves.

use crate::common::{self, Hook, Running};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_meta::{KvStore, MemoryKv};
use strata_model::TenancyConfig;

/// Twice group_interval: an owner's flush ticks drift by up to group_interval from an earlier
/// owner's, and its wait must still cover that (upstream's HA mode has the same requirement).
const PEER_TIMEOUT: &str = "2s";
/// Past group_wait plus the last owner's wait (2 × peer_timeout), with a margin.
const SETTLE_ALL: Duration = Duration::from_secs(6);

fn am_config(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{hook}/hook'}}]\n"
    )
}

/// A port that was free a moment ago (a proxy must know its target's port up front).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Replica {
    running: Running,
    registry: Arc<Registry>,
    _dir: tempfile::TempDir,
}

/// The settings of replica `am-<i>` listening on `port` (0: any) and advertising `reach` (the
/// port of a proxy in front of it; `None`: the port it listens on).
fn settings(i: usize, port: u16, reach: Option<u16>, rf: usize) -> String {
    let reach = reach
        .map(|r| format!("  instance_addr: '127.0.0.1:{r}'\n"))
        .unwrap_or_default();
    format!(
        "config_file: am.yml\nsnapshot_interval: 1s\nring:\n  enabled: true\n  instance_id: am-{i}\n  grpc_listen_address: '127.0.0.1:{port}'\n{reach}  replication_factor: {rf}\n  heartbeat_period: 200ms\n  heartbeat_timeout: 3s\n  peer_timeout: {PEER_TIMEOUT}\n  settle_timeout: 5s\n  sync_interval: 2s\n  rpc_timeout: 2s\n"
    )
}

/// Starts replica `am-<i>` (not waiting for it to settle).
async fn start_replica(
    kv: &Arc<MemoryKv>,
    settings: &str,
    tenancy: TenancyConfig,
    hook: &Hook,
) -> Replica {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("am.yml"), am_config(&hook.url)).expect("am.yml");
    let mut registry = Registry::default();
    let am = common::build_in_ring(dir.path(), settings, tenancy, &mut registry, kv.clone())
        .expect("alertmanager");
    Replica {
        running: Running::start(am).await,
        registry: Arc::new(registry),
        _dir: dir,
    }
}

/// Waits until every replica is ACTIVE in the ring and merged its peers' state.
async fn wait_settled(replicas: &[&Replica]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for r in replicas {
        while !r.running.am.settled() {
            assert!(Instant::now() < deadline, "replica did not settle");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `n` replicas with ids am-0.. and the given replication factor, all notifying `hook`.
async fn start_ring(n: usize, rf: usize, hook: &Hook) -> (Arc<MemoryKv>, Vec<Replica>) {
    let kv = Arc::new(MemoryKv::new());
    let mut out = Vec::new();
    for i in 0..n {
        let s = settings(i, 0, None, rf);
        out.push(start_replica(&kv, &s, TenancyConfig::default(), hook).await);
    }
    wait_settled(&out.iter().collect::<Vec<_>>()).await;
    (kv, out)
}

/// Replicas listening on `ports` and advertising `reach` (proxies in front of them).
async fn start_ring_via(ports: &[u16], reach: &[u16], rf: usize, hook: &Hook) -> Vec<Replica> {
    let kv = Arc::new(MemoryKv::new());
    let mut out = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let s = settings(i, *port, Some(reach[i]), rf);
        out.push(start_replica(&kv, &s, TenancyConfig::default(), hook).await);
    }
    wait_settled(&out.iter().collect::<Vec<_>>()).await;
    out
}

fn metric(r: &Replica, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r.registry).expect("encode");
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_notify_once_and_share_silences() {
    let hook = Hook::start().await;
    let (_kv, ring) = start_ring(3, 3, &hook).await;

    // Alerts go to one replica; the ring forwards them to the other owners.
    common::post_ok(
        &format!("{}/api/v2/alerts", ring[1].running.base),
        None,
        &json!([common::firing(json!({"alertname": "Once"}))]),
    )
    .await;
    hook.wait_for("hook", "Once", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(SETTLE_ALL).await;
    assert_eq!(
        hook.calls_for("hook", "Once").len(),
        1,
        "exactly one notification for the group from three replicas"
    );
    for r in &ring {
        let alerts = common::get_json(&format!("{}/api/v2/alerts", r.running.base), None).await;
        assert_eq!(
            common::alertnames(&alerts),
            vec!["Once"],
            "every owner holds the alert"
        );
    }
    // Only one replica even tried: the later owners dropped their copy (or, when their first
    // flush came after the first owner's log entry reached them, never planned one).
    let attempted: f64 = ring
        .iter()
        .map(|r| metric(r, "alertmanager_notifications_total"))
        .sum();
    assert_eq!(attempted, 1.0, "notification attempts over the ring");
    assert_eq!(metric(&ring[0], "alertmanager_cluster_members"), 3.0);
    for r in &ring {
        assert_eq!(metric(r, "strata_alertmanager_ring_owned_tenants"), 1.0);
    }

    // A silence made on one replica shows up and mutes on the others.
    let created = common::post_ok(
        &format!("{}/api/v2/silences", ring[0].running.base),
        None,
        &common::silence("Muted"),
    )
    .await;
    let id = created["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    for r in &ring[1..] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = common::call(
                reqwest::Method::GET,
                &format!("{}/api/v2/silence/{id}", r.running.base),
                None,
                None,
            )
            .await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "silence {id} not replicated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    common::post_ok(
        &format!("{}/api/v2/alerts", ring[2].running.base),
        None,
        &json!([common::firing(json!({"alertname": "Muted"}))]),
    )
    .await;
    for r in &ring {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alerts = common::get_json(
                &format!(
                    "{}/api/v2/alerts?filter=alertname%3D%22Muted%22",
                    r.running.base
                ),
                None,
            )
            .await;
            if alerts[0]["status"]["silencedBy"] == json!([id]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alert not silenced on {}: {alerts}",
                r.running.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Past group_wait and every owner's wait: nothing sent.
    tokio::time::sleep(SETTLE_ALL).await;
    assert!(
        hook.calls_for("hook", "Muted").is_empty(),
        "{:?}",
        hook.calls()
    );

    // Expiring it on another replica replicates too: the alert notifies once.
    let (status, body) = common::call(
        reqwest::Method::DELETE,
        &format!("{}/api/v2/silence/{id}", ring[2].running.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    hook.wait_for("hook", "Muted", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(SETTLE_ALL).await;
    assert_eq!(hook.calls_for("hook", "Muted").len(), 1);
    for r in ring {
        r.running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_owner_forwards_writes_and_reads() {
    let hook = Hook::start().await;
    let (_kv, ring) = start_ring(3, 2, &hook).await;
    let cluster = ring[0].running.am.cluster().expect("ring").clone();
    let owners = cluster.owners("anonymous");
    assert_eq!(owners.len(), 2);
    let outsider = ring
        .iter()
        .position(|r| {
            !owners.contains(
                &r.running
                    .am
                    .cluster()
                    .expect("ring")
                    .instance_id()
                    .to_string(),
            )
        })
        .expect("one replica does not own the tenant");
    let base = ring[outsider].running.base.clone();
    for (i, r) in ring.iter().enumerate() {
        let want = if i == outsider { 0.0 } else { 1.0 };
        assert_eq!(
            metric(r, "strata_alertmanager_ring_owned_tenants"),
            want,
            "am-{i}"
        );
    }
    common::post_ok(
        &format!("{base}/api/v2/alerts"),
        None,
        &json!([common::firing(json!({"alertname": "Forwarded"}))]),
    )
    .await;
    // Answered by an owner although this replica holds nothing.
    let alerts = common::get_json(&format!("{base}/api/v2/alerts"), None).await;
    assert_eq!(common::alertnames(&alerts), vec!["Forwarded"]);
    assert!(
        ring[outsider]
            .running
            .am
            .tenants()
            .iter()
            .all(|t| t.snapshot().alerts.is_empty()),
        "the non-owner keeps no alerts of the tenant"
    );
    // A bad request is answered with the owner's error, not a generic one.
    let (status, body) = common::call(
        reqwest::Method::POST,
        &format!("{base}/api/v2/alerts"),
        None,
        Some("[{\"labels\":{}}]".into()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at least one label pair required"), "{body}");
    // An HTTP client setting the peers' forwarding marker is routed like any other request
    // (regression: the marker made the non-owner answer, and keep, the alert itself).
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .header(strata_alertmanager::cluster::FORWARDED_HEADER, "am-9")
        .json(&json!([common::firing(json!({"alertname": "Marked"}))]))
        .send()
        .await
        .expect("post");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    assert!(
        ring[outsider]
            .running
            .am
            .tenants()
            .iter()
            .all(|t| t.snapshot().alerts.is_empty()),
        "the marker from HTTP did not make the non-owner keep the alert"
    );
    let alerts = common::get_json(&format!("{base}/api/v2/alerts"), None).await;
    assert!(
        common::alertnames(&alerts).contains(&"Marked".to_string()),
        "{alerts}"
    );
    hook.wait_for("hook", "Forwarded", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(SETTLE_ALL).await;
    assert_eq!(hook.calls_for("hook", "Forwarded").len(), 1);
    for r in ring {
        r.running.shutdown().await;
    }
}

/// A TCP proxy in front of one replica's gRPC port that can drop all traffic: a partition.
struct Proxy {
    port: u16,
    blocked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let blocked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let (b, c) = (blocked.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    // Dropped at once: the caller sees a reset, like a partitioned peer.
                    continue;
                }
                c.lock().push(tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            port,
            blocked,
            conns,
            task,
        }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::heal`].
    fn block(&self) {
        self.blocked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn heal(&self) {
        self.blocked
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_never_loses_a_notification_and_heals_without_repeats() {
    let hook = Hook::start().await;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut proxies = Vec::new();
    for p in &ports {
        proxies.push(Proxy::start(*p).await);
    }
    let reach: Vec<u16> = proxies.iter().map(|p| p.port).collect();
    let ring = start_ring_via(&ports, &reach, 3, &hook).await;

    for p in &proxies {
        p.block();
    }
    // Like Prometheus, the sender gives every alert to every replica.
    for r in &ring {
        common::post_ok(
            &format!("{}/api/v2/alerts", r.running.base),
            None,
            &json!([common::firing(json!({"alertname": "Split"}))]),
        )
        .await;
    }
    // Each side of the partition notifies on its own: at least once, never zero.
    hook.wait_for("hook", "Split", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(SETTLE_ALL).await;
    let during = hook.calls_for("hook", "Split").len();
    assert!((1..=3).contains(&during), "{during} notifications");
    let failures: f64 = ring
        .iter()
        .map(|r| metric(r, "strata_alertmanager_replication_failures_total"))
        .sum();
    assert!(failures > 0.0, "the partition made pushes fail");

    for p in &proxies {
        p.heal();
    }
    // Retries and the periodic sync (every 2s) spread the notification log; after that no
    // replica repeats the group.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let healed = hook.calls_for("hook", "Split").len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hook.calls_for("hook", "Split").len(),
        healed,
        "repeat after healing"
    );
    assert!(healed <= 3, "{healed}");

    // Healed: a new group is notified once again.
    for r in &ring {
        common::post_ok(
            &format!("{}/api/v2/alerts", r.running.base),
            None,
            &json!([common::firing(json!({"alertname": "Whole"}))]),
        )
        .await;
    }
    hook.wait_for("hook", "Whole", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(SETTLE_ALL).await;
    assert_eq!(hook.calls_for("hook", "Whole").len(), 1);
    for r in ring {
        r.running.shutdown().await;
    }
}

/// Replicas cut off while a tenant's configuration is uploaded to another (the upload succeeds
/// there) take it from its full state once reachable, and a later deletion too (the deletion's
/// record wins over the older upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_that_missed_a_configuration_upload_catches_up() {
    let hook = Hook::start().await;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut proxies = Vec::new();
    for p in &ports {
        proxies.push(Proxy::start(*p).await);
    }
    let reach: Vec<u16> = proxies.iter().map(|p| p.port).collect();
    let ring = start_ring_via(&ports, &reach, 3, &hook).await;
    let config_of = |i: usize| {
        let base = ring[i].running.base.clone();
        async move {
            common::call(
                reqwest::Method::GET,
                &format!("{base}/api/v1/alerts"),
                None,
                None,
            )
            .await
        }
    };
    let wait_all = |want: u16| {
        let config_of = &config_of;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            for i in 0..3 {
                loop {
                    let (st, body) = config_of(i).await;
                    if st == want {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "am-{i} answers {st} instead of {want}: {body}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    };
    let own = "alertmanager_config: |\n  route: {receiver: own}\n  receivers: [{name: own}]\n";

    // Every link cut: only am-0, which takes the upload, has it.
    for p in &proxies {
        p.block();
    }
    let (st, body) = common::call(
        reqwest::Method::POST,
        &format!("{}/api/v1/alerts", ring[0].running.base),
        None,
        Some(own.to_string()),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(config_of(0).await.0, 200);
    assert_eq!(config_of(1).await.0, 404, "am-1 was cut off");
    assert_eq!(config_of(2).await.0, 404, "am-2 was cut off");

    // Reachable again: the periodic full-state pull (every 2s) brings the configuration.
    for p in &proxies {
        p.heal();
    }
    wait_all(200).await;
    let status = common::get_json(&format!("{}/api/v2/status", ring[2].running.base), None).await;
    assert!(
        status["config"]["original"]
            .as_str()
            .is_some_and(|c| c.contains("receiver: own")),
        "am-2 runs the tenant's configuration: {status}"
    );

    // A deletion missed the same way is caught up too, and not undone by the older upload.
    for p in &proxies {
        p.block();
    }
    let (st, body) = common::call(
        reqwest::Method::DELETE,
        &format!("{}/api/v1/alerts", ring[0].running.base),
        None,
        None,
    )
    .await;
    assert!((200..300).contains(&st), "{st}: {body}");
    assert_eq!(config_of(1).await.0, 200, "am-1 was cut off");
    for p in &proxies {
        p.heal();
    }
    wait_all(404).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..3 {
        assert_eq!(
            config_of(i).await.0,
            404,
            "am-{i} has a configuration again"
        );
    }
    for r in ring {
        r.running.shutdown().await;
    }
}

/// Silences of `tenant` a replica lists, active or pending only.
async fn live_silences(base: &str, tenant: &str) -> Vec<String> {
    let v = common::get_json(&format!("{base}/api/v2/silences"), Some(tenant)).await;
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

/// Webhook calls for the group `alertname`.
fn sent(hook: &Hook, alertname: &str) -> usize {
    hook.calls_for("hook", alertname).len()
}

/// With one owner per tenant (the hardest case: nobody else holds a tenant's state), a replica
/// that joins takes over some tenants with their silences, notification log and alerts before
/// it may notify for them, and hands them back when it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_move_with_their_state_when_a_replica_joins_and_leaves() {
    let hook = Hook::start().await;
    let kv = Arc::new(MemoryKv::new());
    let tenancy = common::multi_tenant();
    let a = start_replica(&kv, &settings(0, 0, None, 1), tenancy.clone(), &hook).await;
    wait_settled(&[&a]).await;
    let base_a = a.running.base.clone();
    let tenants: Vec<String> = (0..16).map(|i| format!("team-{i}")).collect();
    let mut silences = std::collections::BTreeMap::new();
    for t in &tenants {
        let id = common::post_ok(
            &format!("{base_a}/api/v2/silences"),
            Some(t),
            &common::silence(&format!("Quiet-{t}")),
        )
        .await["silenceID"]
            .as_str()
            .expect("silence id")
            .to_string();
        silences.insert(t.clone(), vec![id]);
        common::post_ok(
            &format!("{base_a}/api/v2/alerts"),
            Some(t),
            &json!([
                common::firing(json!({"alertname": format!("Loud-{t}")})),
                common::firing(json!({"alertname": format!("Quiet-{t}")})),
            ]),
        )
        .await;
    }
    for t in &tenants {
        hook.wait_for("hook", &format!("Loud-{t}"), 1, Duration::from_secs(10))
            .await;
    }

    // A second replica joins: it owns some tenants now, and both replicas agree which.
    let b = start_replica(&kv, &settings(1, 0, None, 1), tenancy.clone(), &hook).await;
    wait_settled(&[&b]).await;
    let (ca, cb) = (
        a.running.am.cluster().expect("ring").clone(),
        b.running.am.cluster().expect("ring").clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while tenants.iter().any(|t| ca.owners(t) != cb.owners(t)) {
        assert!(Instant::now() < deadline, "the replicas disagree on owners");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved: Vec<&String> = tenants.iter().filter(|t| cb.owns(t)).collect();
    assert!(
        !moved.is_empty() && moved.len() < tenants.len(),
        "16 tenants over two replicas' random tokens: some move ({moved:?})"
    );
    for t in &tenants {
        assert_ne!(ca.owns(t), cb.owns(t), "{t}: exactly one owner");
    }
    // a still holds the moved tenants' (now ageing) state, but copies only its own to the
    // bucket.
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let mut bucket_cfg = strata_storage::bucket::BucketConfig::default();
    bucket_cfg.filesystem.directory = bucket_dir.path().to_path_buf();
    a.running.am.attach_bucket(
        strata_storage::bucket::Bucket::from_config(&bucket_cfg).expect("filesystem bucket"),
    );
    a.running.am.persist_all().expect("snapshots");
    a.running.am.upload_state(true).await.expect("upload");
    let mut copied: Vec<String> = std::fs::read_dir(bucket_dir.path().join("@alertmanager"))
        .expect("bucket copies")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    copied.sort();
    let mut kept: Vec<String> = tenants.iter().filter(|t| ca.owns(t)).cloned().collect();
    kept.sort();
    assert_eq!(copied, kept);
    let base_b = b.running.base.clone();
    for t in &moved {
        // Answered by b itself, which owns the tenant: it took the state over.
        assert_eq!(live_silences(&base_b, t).await, silences[*t], "{t}");
        let alerts = common::get_json(&format!("{base_b}/api/v2/alerts"), Some(t)).await;
        assert_eq!(
            common::alertnames(&alerts),
            vec![format!("Loud-{t}"), format!("Quiet-{t}")],
            "{t}"
        );
    }
    // The alerts come again (as from Prometheus, to any replica): no owner repeats one, and
    // a new group of a moved tenant is notified once, by its new owner.
    for t in &tenants {
        common::post_ok(
            &format!("{base_a}/api/v2/alerts"),
            Some(t),
            &json!([
                common::firing(json!({"alertname": format!("Loud-{t}")})),
                common::firing(json!({"alertname": format!("Quiet-{t}")})),
            ]),
        )
        .await;
    }
    let newcomer = moved[0].clone();
    common::post_ok(
        &format!("{base_a}/api/v2/alerts"),
        Some(&newcomer),
        &json!([common::firing(json!({"alertname": "New"}))]),
    )
    .await;
    hook.wait_for("hook", "New", 1, Duration::from_secs(10))
        .await;
    let later = common::post_ok(
        &format!("{base_a}/api/v2/silences"),
        Some(&newcomer),
        &common::silence("Later"),
    )
    .await["silenceID"]
        .as_str()
        .expect("silence id")
        .to_string();
    tokio::time::sleep(SETTLE_ALL).await;
    for t in &tenants {
        assert_eq!(sent(&hook, &format!("Loud-{t}")), 1, "{t} after the join");
        assert_eq!(sent(&hook, &format!("Quiet-{t}")), 0, "{t}: silence lost");
    }
    assert_eq!(sent(&hook, "New"), 1);
    let attempts_b = metric(&b, "alertmanager_notifications_total");
    assert_eq!(attempts_b, 1.0, "b notified New, nothing else");

    // b leaves: a takes every tenant back, with what b added meanwhile (RF 1: only b had it).
    b.running.shutdown().await;
    assert!(
        kv.get("ring/alertmanager/am-1")
            .await
            .expect("kv")
            .is_none(),
        "b unregistered"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tenants.iter().all(|t| ca.may_notify(t)) {
        assert!(Instant::now() < deadline, "a did not take the tenants back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut want = silences[&newcomer].clone();
    want.push(later);
    want.sort();
    assert_eq!(live_silences(&base_a, &newcomer).await, want);
    common::post_ok(
        &format!("{base_a}/api/v2/alerts"),
        Some(&newcomer),
        &json!([
            common::firing(json!({"alertname": "New"})),
            common::firing(json!({"alertname": "Later"})),
        ]),
    )
    .await;
    tokio::time::sleep(SETTLE_ALL).await;
    assert_eq!(sent(&hook, "New"), 1, "b's notification log came back to a");
    assert_eq!(sent(&hook, "Later"), 0, "b's silence came back to a");
    for t in &tenants {
        assert_eq!(sent(&hook, &format!("Loud-{t}")), 1, "{t} after the leave");
    }
    a.running.shutdown().await;
}

/// `/-/ready` answers 503 until the replica is ACTIVE in the ring and settled; the ring page
/// lists the replicas; a clean shutdown unregisters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_ring_and_the_ring_page_lists_the_replicas() {
    let hook = Hook::start().await;
    let kv = Arc::new(MemoryKv::new());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("am.yml"), am_config(&hook.url)).expect("am.yml");
    let am = common::build_in_ring(
        dir.path(),
        &settings(0, 0, None, 3),
        TenancyConfig::default(),
        &mut Registry::default(),
        kv.clone(),
    )
    .expect("alertmanager");
    // Built, not running: not in the ring, not ready.
    use tower::ServiceExt;
    let ready = |am: &Arc<strata_alertmanager::Alertmanager>| {
        let app = strata_alertmanager::router(am.clone());
        async move {
            let req = axum::http::Request::get("/-/ready")
                .body(axum::body::Body::empty())
                .expect("request");
            app.oneshot(req).await.expect("response").status().as_u16()
        }
    };
    assert_eq!(ready(&am).await, 503);
    assert!(kv.list("ring/alertmanager/").await.expect("kv").is_empty());

    let a = Running::start(am.clone()).await;
    let other = start_replica(
        &kv,
        &settings(1, 0, None, 3),
        TenancyConfig::default(),
        &hook,
    )
    .await;
    wait_settled(&[&other]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(&am).await != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lifecycler = am.cluster().expect("ring").lifecycler().expect("joined");
    assert!(lifecycler.is_active());

    // The ring page, once this replica's view has both ACTIVE.
    let page = am.ring_router().expect("ring page");
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let req = axum::http::Request::get("/alertmanager/ring")
            .header("accept", "application/json")
            .body(axum::body::Body::empty())
            .expect("request");
        let resp = page.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let status: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let mut rows: Vec<(String, String, String)> = status["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap_or_default().to_string(),
                    i["state"].as_str().unwrap_or_default().to_string(),
                    i["addr"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        rows.sort();
        let states: Vec<(&str, &str)> = rows
            .iter()
            .map(|(id, st, _)| (id.as_str(), st.as_str()))
            .collect();
        if states == [("am-0", "ACTIVE"), ("am-1", "ACTIVE")] {
            break rows;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Advertised: the port the peer listener got (the settings ask for port 0).
    assert_eq!(rows[0].2, am.cluster().expect("ring").instance_addr());
    assert!(!rows[0].2.ends_with(":0"), "{}", rows[0].2);

    a.shutdown().await;
    assert!(kv
        .get("ring/alertmanager/am-0")
        .await
        .expect("kv")
        .is_none());
    other.running.shutdown().await;
}

/// The certificates of a test cluster: `server`/`client` sides from one CA, and a client
/// certificate from another.
struct ClusterTls {
    _dir: tempfile::TempDir,
    peer: strata_alertmanager::PeerTls,
    rogue: strata_tls::GrpcClientTls,
}

fn cluster_tls() -> ClusterTls {
    use strata_tls::testing::TestCa;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("cluster CA");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).expect("ca");
    let (c, k) = ca.issue(&["127.0.0.1"]).write(dir.path(), "peer");
    let client_cfg = strata_tls::ClientTlsConfig {
        cert_file: c.display().to_string(),
        key_file: k.display().to_string(),
        ca_file: ca_file.display().to_string(),
        server_name: String::new(),
    };
    let server = strata_tls::GrpcServerTls::new(&strata_tls::ServerTlsConfig {
        cert_file: c.display().to_string(),
        key_file: k.display().to_string(),
        client_ca_file: ca_file.display().to_string(),
    })
    .expect("server tls");
    let client = strata_tls::GrpcClientTls::new(&client_cfg).expect("client tls");
    let (rc, rk) = TestCa::new("rogue CA")
        .issue(&["127.0.0.1"])
        .write(dir.path(), "rogue");
    let rogue = strata_tls::GrpcClientTls::new(&strata_tls::ClientTlsConfig {
        cert_file: rc.display().to_string(),
        key_file: rk.display().to_string(),
        ..client_cfg
    })
    .expect("rogue tls");
    ClusterTls {
        _dir: dir,
        peer: strata_alertmanager::PeerTls { server, client },
        rogue,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_speak_mutual_tls_and_refuse_other_callers() {
    use strata_alertmanager::cluster::pb;
    let hook = Hook::start().await;
    let tls = cluster_tls();
    let kv = Arc::new(MemoryKv::new());
    let mut ring = Vec::new();
    for i in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("am.yml"), am_config(&hook.url)).expect("am.yml");
        let mut registry = Registry::default();
        let backend = strata_alertmanager::RingBackend {
            kv: kv.clone(),
            metrics: None,
            tls: Some(tls.peer.clone()),
        };
        let am = common::build_in_ring_with(
            dir.path(),
            &settings(i, 0, None, 2),
            TenancyConfig::default(),
            &mut registry,
            backend,
        )
        .expect("alertmanager");
        ring.push(Replica {
            running: Running::start(am).await,
            registry: Arc::new(registry),
            _dir: dir,
        });
    }
    // Settling needs each replica's full-state pull from the other: over mutual TLS.
    wait_settled(&ring.iter().collect::<Vec<_>>()).await;
    common::post_ok(
        &format!("{}/api/v2/alerts", ring[0].running.base),
        None,
        &json!([common::firing(json!({"alertname": "OverTls"}))]),
    )
    .await;
    for r in &ring {
        let alerts = common::get_json(&format!("{}/api/v2/alerts", r.running.base), None).await;
        assert_eq!(common::alertnames(&alerts), vec!["OverTls"]);
    }

    // A caller of the peer port without the cluster's certificate gets nothing.
    let cluster = ring[1].running.am.cluster().expect("ring").clone();
    let addr = cluster
        .members()
        .into_iter()
        .find(|(id, _, _)| id == "am-1")
        .map(|(_, addr, _)| addr)
        .expect("am-1 in the ring");
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    let req = || pb::FullStateRequest {
        from_instance: "intruder".into(),
        include_alerts: true,
        ..Default::default()
    };
    let plain = pb::alertmanager_peer_client::AlertmanagerPeerClient::new(endpoint.connect_lazy());
    assert!(plain.clone().full_state(req()).await.is_err());
    let rogue = pb::alertmanager_peer_client::AlertmanagerPeerClient::new(
        tls.rogue.channel(endpoint.clone(), None),
    );
    assert!(rogue.clone().full_state(req()).await.is_err());
    let good = pb::alertmanager_peer_client::AlertmanagerPeerClient::new(
        tls.peer.client.channel(endpoint, None),
    );
    let state = good
        .clone()
        .full_state(req())
        .await
        .expect("the cluster's certificate works");
    assert!(!state.into_inner().tenants.is_empty());
    for r in ring {
        r.running.shutdown().await;
    }
}
