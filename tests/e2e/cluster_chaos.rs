//! The cluster under faults: the local cluster of `deploy/local/cluster.sh` (3 meta voters,
//! 3 ingesters, 2 distributors, a querier, a store-gateway, a compactor, 3 alertmanagers), each
//! process on its own 127.0.0.x, inside a private network namespace (`unshare -n`) so that
//! iptables rules stay inside the test.
//!
//! Writers push like Prometheus: one request per round with a sample for each of their series,
//! retried until acknowledged when the outcome is unknown (5xx, timeout, connection error).
//! Every attempt is logged. Faults, one after the other: SIGKILL of an ingester while pushes
//! run, an ingester restarted with an empty data dir, SIGSTOP/SIGCONT of an ingester, a
//! partition of one distributor-ingester pair, an isolated meta voter, 200 ms latency on one
//! distributor-ingester link (through an in-test proxy), two ingesters down at once. Checked:
//! with one ingester down every push is 2xx and every query 200; with two down no push started
//! afterwards is acknowledged and queries fail; after healing and again after a full restart
//! every acknowledged sample is returned, exactly once, and nothing is returned that was never
//! sent. No timing is asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_tests::{strata_bin, DelayProxy, LocalCluster, TestDir};

/// Set in the re-executed test process that runs inside the namespace.
const IN_NETNS: &str = "STRATA_CHAOS_IN_NETNS";
const TEST_NAME: &str =
    "cluster_chaos::cluster_survives_faults_without_losing_acknowledged_samples";
const WRITERS: usize = 4;
const SERIES: usize = 20;
/// Sample-time distance between rounds; writers push about one round per step.
const STEP_MS: i64 = 200;

#[test]
fn cluster_survives_faults_without_losing_acknowledged_samples() {
    if std::env::var_os(IN_NETNS).is_none() {
        run_in_namespace();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(scenario());
}

/// Re-runs this test inside a new network namespace (root only: `unshare -n` and iptables).
fn run_in_namespace() {
    strata_tests::require_strata();
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the chaos test needs root: it runs the cluster in a private network namespace (unshare -n) and cuts links with iptables"
    );
    for tool in ["unshare", "ip", "iptables"] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is missing (apt-get install iproute2 iptables util-linux)"
        );
    }
    let exe = std::env::current_exe().expect("current_exe");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(&exe)
        .arg(TEST_NAME)
        .arg("--exact")
        .arg("--nocapture")
        .arg("--test-threads=1")
        .env(IN_NETNS, "1")
        .env("STRATA_BIN", strata_bin())
        .status()
        .expect("run unshare");
    assert!(
        status.success(),
        "the chaos scenario failed inside its network namespace ({status}); its output is above"
    );
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a phase of the scenario promises about the pushes and queries that start in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every push 2xx, every query 200 (all up, or one ingester down).
    Available,
    /// No push acknowledged, every query fails (two ingesters down).
    Unavailable,
    /// Nothing asserted per request (processes restarting, links being rewired).
    Transition,
}

#[derive(Debug, Clone)]
struct Attempt {
    writer: usize,
    seq: u64,
    distributor: String,
    start: Instant,
    /// HTTP status; `None` for a transport error or timeout.
    status: Option<u16>,
    body: String,
}

#[derive(Debug, Clone)]
struct QueryProbe {
    start: Instant,
    status: Option<u16>,
    body: String,
}

#[derive(Default)]
struct Log {
    attempts: Vec<Attempt>,
    probes: Vec<QueryProbe>,
    phases: Vec<(String, Expect, Instant)>,
}

impl Log {
    fn phase(&mut self, name: &str, e: Expect) {
        eprintln!("chaos: phase {name} ({e:?})");
        self.phases.push((name.to_owned(), e, Instant::now()));
    }

    /// The phase a request that started at `t` belongs to.
    fn phase_at(&self, t: Instant) -> (&str, Expect) {
        self.phases
            .iter()
            .rev()
            .find(|(_, _, s)| *s <= t)
            .map(|(n, e, _)| (n.as_str(), *e))
            .unwrap_or(("start", Expect::Transition))
    }
}

fn base_ms() -> i64 {
    strata_tests::now_ms() / 1000 * 1000
}

fn write_request(writer: usize, seq: u64, base: i64) -> Vec<u8> {
    let ts = base + seq as i64 * STEP_MS;
    let req = WriteRequest {
        timeseries: (0..SERIES)
            .map(|s| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "chaos_total".into(),
                    },
                    Label {
                        name: "s".into(),
                        value: s.to_string(),
                    },
                    Label {
                        name: "writer".into(),
                        value: writer.to_string(),
                    },
                ],
                samples: vec![Sample {
                    value: seq as f64,
                    timestamp: ts,
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy")
}

/// One writer: a round at a time, retried on unknown outcomes, alternating distributors.
async fn writer(
    id: usize,
    distributors: Vec<String>,
    base: i64,
    log: Arc<Mutex<Log>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client");
    let mut k = id;
    let mut seq = 0u64;
    while !*stop.borrow() {
        let round = tokio::time::Instant::now();
        let body = write_request(id, seq, base);
        loop {
            let d = distributors[k % distributors.len()].clone();
            k += 1;
            let start = Instant::now();
            let r = client
                .post(format!("{d}/api/v1/push"))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body.clone())
                .send()
                .await;
            let (status, text) = match r {
                Ok(r) => {
                    let s = r.status().as_u16();
                    (Some(s), r.text().await.unwrap_or_default())
                }
                Err(e) => (None, strata_tests::error_chain(&e)),
            };
            log.lock().attempts.push(Attempt {
                writer: id,
                seq,
                distributor: d,
                start,
                status,
                body: strata_tests::truncate(&text, 300),
            });
            match status {
                Some(s) if (200..300).contains(&s) => break,
                // A refusal is final for the sender (and must not happen here: checked later).
                Some(s) if (400..500).contains(&s) && s != 429 => break,
                _ => {
                    if *stop.borrow() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        seq += 1;
        tokio::time::sleep_until(round + Duration::from_millis(STEP_MS as u64)).await;
    }
}

/// Queries the querier every second and logs the outcome.
async fn prober(querier: String, log: Arc<Mutex<Log>>, stop: tokio::sync::watch::Receiver<bool>) {
    let client = strata_tests::http_client();
    while !*stop.borrow() {
        let start = Instant::now();
        let r = client
            .get(format!("{querier}/api/v1/query"))
            .query(&[("query", "count(count_over_time(chaos_total[2h]))")])
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        let (status, body) = match r {
            Ok(r) => (
                Some(r.status().as_u16()),
                r.text().await.unwrap_or_default(),
            ),
            Err(e) => (None, strata_tests::error_chain(&e)),
        };
        log.lock().probes.push(QueryProbe {
            start,
            status,
            body: strata_tests::truncate(&body, 300),
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until the querier sees all three ingesters ACTIVE and healthy.
async fn wait_ring_healthy(querier: &str) {
    let client = strata_tests::http_client();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("{querier}/ingester/ring"))
            .header("Accept", "application/json")
            .send()
            .await
        {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            let inst = v["instances"].as_array().cloned().unwrap_or_default();
            let ok = inst.len() == 3
                && inst
                    .iter()
                    .all(|i| i["state"] == "ACTIVE" && i["healthy"] == true);
            if ok {
                return;
            }
            last = v.to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the ingester ring did not become healthy: {last}");
}

async fn sleep_s(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

/// Every acknowledged sample of every writer is returned exactly once; nothing returned was
/// never sent.
async fn verify(querier: &str, base: i64, log: &Log, when: &str) {
    let mut acked: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); WRITERS];
    let mut sent: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); WRITERS];
    for a in &log.attempts {
        sent[a.writer].insert(a.seq);
        if a.status.is_some_and(|s| (200..300).contains(&s)) {
            acked[a.writer].insert(a.seq);
        }
    }
    let client = strata_tests::http_client();
    for w in 0..WRITERS {
        let r = client
            .get(format!("{querier}/api/v1/query"))
            .query(&[("query", format!("chaos_total{{writer=\"{w}\"}}[2h]"))])
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{when}: query of writer {w}: {e}"));
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(status, 200, "{when}: query of writer {w}: {body}");
        let result = body["data"]["result"].as_array().expect("matrix");
        assert_eq!(result.len(), SERIES, "{when}: writer {w} series");
        for series in result {
            let s = series["metric"]["s"].as_str().unwrap_or("?").to_owned();
            let mut seen = BTreeMap::new();
            for v in series["values"].as_array().expect("values") {
                let ts = (v[0].as_f64().expect("ts") * 1000.0).round() as i64;
                let value: f64 = v[1].as_str().expect("value").parse().expect("number");
                let off = ts - base;
                assert!(
                    off >= 0 && off % STEP_MS == 0,
                    "{when}: writer {w} series {s}: unexplained timestamp {ts}"
                );
                let seq = (off / STEP_MS) as u64;
                assert_eq!(
                    value, seq as f64,
                    "{when}: writer {w} series {s}: sample at seq {seq} has value {value}"
                );
                assert!(
                    sent[w].contains(&seq),
                    "{when}: writer {w} series {s}: seq {seq} was never sent"
                );
                assert!(
                    seen.insert(seq, value).is_none(),
                    "{when}: writer {w} series {s}: seq {seq} returned twice"
                );
            }
            let missing: Vec<&u64> = acked[w].iter().filter(|q| !seen.contains_key(q)).collect();
            assert!(
                missing.is_empty(),
                "{when}: writer {w} series {s}: {} acknowledged samples lost, e.g. seqs {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
    }
    let n: usize = acked.iter().map(BTreeSet::len).sum();
    eprintln!(
        "chaos: {when}: all {} acknowledged samples returned exactly once",
        n * SERIES
    );
}

/// Per-phase assertions on every logged push and query.
fn check_phases(log: &Log) {
    let mut per_phase: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for a in &log.attempts {
        let (name, e) = log.phase_at(a.start);
        let ok = a.status.is_some_and(|s| (200..300).contains(&s));
        let entry = per_phase.entry(name.to_owned()).or_default();
        entry.0 += 1;
        if ok {
            entry.1 += 1;
        }
        if let Some(s) = a.status {
            assert!(
                !(400..500).contains(&s),
                "push of writer {} seq {} was refused with {s} in phase {name}: {}",
                a.writer,
                a.seq,
                a.body
            );
        }
        match e {
            Expect::Available => assert!(
                ok,
                "phase {name}: push of writer {} seq {} via {} was not acknowledged ({:?}): {}",
                a.writer, a.seq, a.distributor, a.status, a.body
            ),
            Expect::Unavailable => assert!(
                !ok,
                "phase {name}: push of writer {} seq {} was acknowledged with two ingesters down",
                a.writer, a.seq
            ),
            Expect::Transition => {}
        }
    }
    for p in &log.probes {
        let (name, e) = log.phase_at(p.start);
        per_phase.entry(name.to_owned()).or_default().2 += 1;
        match e {
            Expect::Available => assert_eq!(
                p.status,
                Some(200),
                "phase {name}: query failed: {}",
                p.body
            ),
            Expect::Unavailable => assert_ne!(
                p.status,
                Some(200),
                "phase {name}: query answered with two ingesters down: {}",
                p.body
            ),
            Expect::Transition => {}
        }
    }
    for (name, (n, ok, q)) in &per_phase {
        eprintln!("chaos: phase {name}: {n} pushes, {ok} acknowledged; {q} queries");
    }
    for (name, e, _) in &log.phases {
        if *e == Expect::Unavailable {
            continue;
        }
        let (n, ok, _) = per_phase.get(name).copied().unwrap_or_default();
        assert!(
            n == 0 || ok > 0 || *e == Expect::Transition,
            "phase {name}: no push acknowledged"
        );
    }
}

async fn scenario() {
    sh("ip", &["link", "set", "lo", "up"]);
    let dir = TestDir::new();
    let bin = std::env::var("STRATA_BIN").expect("STRATA_BIN");
    let mut cluster = LocalCluster::up(
        dir.root(),
        &[
            ("STRATA_BIN", bin.as_str()),
            ("STRATA_HEARTBEAT", "1s"),
            ("STRATA_HEARTBEAT_TIMEOUT", "5s"),
        ],
    );
    let querier = cluster.http("querier-1");
    let distributors = vec![cluster.http("distributor-1"), cluster.http("distributor-2")];
    wait_ring_healthy(&querier).await;

    let base = base_ms();
    let log = Arc::new(Mutex::new(Log::default()));
    log.lock().phase("warm-up", Expect::Available);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        tasks.push(tokio::spawn(writer(
            w,
            distributors.clone(),
            base,
            log.clone(),
            stop_rx.clone(),
        )));
    }
    let probe = tokio::spawn(prober(querier.clone(), log.clone(), stop_rx.clone()));
    sleep_s(8).await;

    // (a) An ingester killed while pushes run, then restarted with its data.
    log.lock().phase("ingester-2 killed", Expect::Available);
    cluster.kill("ingester-2");
    sleep_s(10).await;
    log.lock()
        .phase("ingester-2 restarting", Expect::Transition);
    cluster.start_one("ingester-2");
    wait_ring_healthy(&querier).await;

    // (b) An ingester replaced by one with an empty data dir.
    log.lock()
        .phase("ingester-3 restarted empty", Expect::Available);
    cluster.restart("ingester-3", true);
    wait_ring_healthy(&querier).await;
    sleep_s(5).await;

    // (c) A gray failure: the process is frozen, its connections stay open.
    let pid = cluster.pid("ingester-1").expect("ingester-1 pid");
    log.lock().phase("ingester-1 stopped", Expect::Available);
    strata_tests::signal_pid(pid, "STOP");
    sleep_s(12).await;
    strata_tests::signal_pid(pid, "CONT");
    log.lock().phase("ingester-1 resumed", Expect::Transition);
    wait_ring_healthy(&querier).await;

    // (d) distributor-1 and ingester-3 cannot reach each other; everything else can.
    log.lock()
        .phase("distributor-1/ingester-3 partitioned", Expect::Available);
    for (s, d) in [("127.0.0.31", "127.0.0.23"), ("127.0.0.23", "127.0.0.31")] {
        sh(
            "iptables",
            &["-A", "OUTPUT", "-s", s, "-d", d, "-j", "DROP"],
        );
    }
    sleep_s(12).await;
    sh("iptables", &["-F", "OUTPUT"]);
    log.lock().phase("partition healed", Expect::Transition);
    wait_ring_healthy(&querier).await;

    // (e) One meta voter isolated from everything.
    log.lock().phase("meta-1 isolated", Expect::Available);
    sh(
        "iptables",
        &["-A", "OUTPUT", "-s", "127.0.0.11", "-j", "DROP"],
    );
    sh(
        "iptables",
        &["-A", "OUTPUT", "-d", "127.0.0.11", "-j", "DROP"],
    );
    sleep_s(12).await;
    sh("iptables", &["-F", "OUTPUT"]);
    log.lock().phase("meta-1 back", Expect::Transition);
    wait_ring_healthy(&querier).await;

    // (g) 200 ms each way on distributor-2 -> ingester-1, through a proxy that new connections
    // of distributor-2 to ingester-1 are redirected to (restarted so it reconnects).
    let proxy_addr: SocketAddr = "127.0.0.99:19095".parse().expect("addr");
    let proxy = DelayProxy::start(
        proxy_addr,
        "127.0.0.21:9095".parse().expect("addr"),
        Duration::from_millis(200),
    )
    .await;
    let dnat = [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "-s",
        "127.0.0.32",
        "-d",
        "127.0.0.21",
        "--dport",
        "9095",
        "-j",
        "DNAT",
        "--to-destination",
        "127.0.0.99:19095",
    ];
    log.lock().phase(
        "distributor-2 restarting behind a slow link",
        Expect::Transition,
    );
    sh("iptables", &dnat);
    cluster.restart("distributor-2", false);
    log.lock()
        .phase("slow link distributor-2 -> ingester-1", Expect::Available);
    sleep_s(12).await;
    log.lock().phase("slow link removed", Expect::Transition);
    sh("iptables", &["-t", "nat", "-F", "OUTPUT"]);
    cluster.restart("distributor-2", false);
    drop(proxy);
    wait_ring_healthy(&querier).await;

    // (f) Two ingesters down at once: no write may be acknowledged, reads must fail.
    log.lock()
        .phase("killing two ingesters", Expect::Transition);
    cluster.kill("ingester-1");
    cluster.kill("ingester-2");
    log.lock().phase("two ingesters down", Expect::Unavailable);
    sleep_s(10).await;
    log.lock()
        .phase("two ingesters restarting", Expect::Transition);
    cluster.start_one("ingester-1");
    cluster.start_one("ingester-2");
    wait_ring_healthy(&querier).await;
    // The writers' retries go through again.
    sleep_s(5).await;
    log.lock().phase("healed", Expect::Available);
    sleep_s(5).await;

    let _ = stop_tx.send(true);
    for t in tasks {
        t.await.expect("writer");
    }
    probe.await.expect("prober");
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("every task ended")
        .into_inner();
    check_phases(&log);
    verify(&querier, base, &log, "after healing").await;

    // A full restart: every process stops cleanly and starts again from its disk.
    cluster.down();
    cluster.start();
    let querier = cluster.http("querier-1");
    wait_ring_healthy(&querier).await;
    verify(&querier, base, &log, "after a full restart").await;
}
