//! A cluster over mutual TLS (meta voter, ingester, store-gateway, distributor, querier as
//! separate processes, certificates made in the test): writes and reads work end to end; a gRPC
//! caller without the cluster's certificate is refused by the ingester and the meta voter; the
//! ingester's certificate is replaced on disk and new connections get the new one without a
//! restart. And the HTTP API over HTTPS with a client CA refuses a client without a
//! certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_meta::{KvStore, RemoteKv, RemoteKvOptions};
use strata_model::{Sample, TenantId, WriteBatch};
use strata_proto::prometheus::{Label, Sample as PbSample, TimeSeries, WriteRequest};
use strata_rpc::{ChannelPool, GrpcClientConfig, IngesterClient};
use strata_storage::Pusher;
use strata_tests::{
    api_time, free_port, http_client, now_ms, push_to, require_strata, ProcessGuard, Strata,
    TestDir,
};
use strata_tls::testing::{Issued, TestCa};
use strata_tls::{ClientTlsConfig, GrpcClientTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_service::Service;

/// The cluster's certificates: one CA, a certificate per process, and a foreign one.
struct Certs {
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("strata test cluster CA");
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).expect("ca");
        Certs { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Writes `<name>.crt`/`<name>.key` for 127.0.0.1; returns the certificate.
    fn issue(&self, name: &str) -> Issued {
        let c = self.ca.issue(&["127.0.0.1", "localhost"]);
        c.write(self.dir.path(), name);
        c
    }

    fn file(&self, name: &str, ext: &str) -> String {
        self.dir
            .path()
            .join(format!("{name}.{ext}"))
            .display()
            .to_string()
    }

    /// The TLS part of process `name`'s configuration.
    fn yaml(&self, name: &str) -> String {
        let (c, k, ca) = (
            self.file(name, "crt"),
            self.file(name, "key"),
            self.ca_file(),
        );
        format!(
            "  grpc_tls: {{cert_file: '{c}', key_file: '{k}', client_ca_file: '{ca}'}}\ngrpc_client:\n  tls: {{cert_file: '{c}', key_file: '{k}', ca_file: '{ca}'}}\n",
            ca = ca.display()
        )
    }

    fn client(&self, name: &str) -> ClientTlsConfig {
        ClientTlsConfig {
            cert_file: self.file(name, "crt"),
            key_file: self.file(name, "key"),
            ca_file: self.ca_file().display().to_string(),
            server_name: String::new(),
        }
    }
}

fn config(certs: &Certs, name: &str, grpc: u16, meta: u16, bucket: &Path, voter: bool) -> String {
    certs.issue(name);
    let boot = if voter { "  bootstrap: true\n" } else { "" };
    format!(
        "server:\n  grpc_listen_address: '127.0.0.1:{grpc}'\n{tls}meta:\n  peers: [{{id: 1, address: '127.0.0.1:{meta}'}}]\n{boot}bucket:\n  filesystem: {{directory: '{bucket}'}}\ningester:\n  ring: {{instance_id: ingester-1, replication_factor: 1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\ndistributor:\n  ring: {{instance_id: distributor-1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\nstore_gateway:\n  ring: {{instance_id: store-gateway-1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\n",
        tls = certs.yaml(name),
        bucket = bucket.display(),
    )
}

fn batch() -> WriteBatch<'static> {
    let mut b = WriteBatch::default();
    b.push_series(
        &[("__name__", "direct_push")],
        &[Sample::new(now_ms(), 1.0)],
    );
    b
}

async fn push_direct(cfg: GrpcClientConfig, addr: &str) -> Result<(), String> {
    let pool = ChannelPool::new(cfg, None).map_err(|e| e.to_string())?;
    let ch = pool.get("ingester-1", addr).map_err(|e| e.to_string())?;
    let c = IngesterClient::new("ingester-1", ch, pool.config());
    let t = TenantId::new("anonymous").expect("tenant");
    c.push(&t, &batch())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The certificate a TLS server at `addr` presents to a client with `tls`.
async fn served_cert(tls: &GrpcClientTls, addr: &str) -> Vec<u8> {
    let io = tls
        .connector(None)
        .call(format!("http://{addr}").parse().expect("uri"))
        .await
        .expect("TLS connection");
    let s = io.into_inner();
    s.get_ref().1.peer_certificates().expect("certificate")[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_mutual_tls_refuses_peers_without_the_cluster_certificate() {
    require_strata();
    let certs = Certs::new();
    let bucket = certs.dir.path().join("bucket");
    let meta_grpc = free_port();
    let meta = Strata::start_target(
        TestDir::new(),
        "meta",
        "meta",
        &config(&certs, "meta", meta_grpc, meta_grpc, &bucket, true),
    )
    .await;
    let ingester_grpc = free_port();
    let ingester = Strata::start_target(
        TestDir::new(),
        "ingester",
        "ingester",
        &config(&certs, "ingester", ingester_grpc, meta_grpc, &bucket, false),
    )
    .await;
    let sg_grpc = free_port();
    let _sg = Strata::start_target(
        TestDir::new(),
        "store-gateway",
        "store-gateway",
        &config(&certs, "store-gateway", sg_grpc, meta_grpc, &bucket, false),
    )
    .await;
    let distributor = Strata::start_target(
        TestDir::new(),
        "distributor",
        "distributor",
        &config(
            &certs,
            "distributor",
            free_port(),
            meta_grpc,
            &bucket,
            false,
        ),
    )
    .await;
    let querier = Strata::start_target(
        TestDir::new(),
        "querier",
        "querier",
        &config(&certs, "querier", free_port(), meta_grpc, &bucket, false),
    )
    .await;

    // Writes and reads cross three mutual-TLS hops (distributor → ingester, querier →
    // ingester and store-gateway), and every process reached the meta voter over TLS.
    let ts = now_ms();
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "over_tls".into(),
            }],
            samples: vec![PbSample {
                value: 42.0,
                timestamp: ts,
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = push_to(&distributor.client, &distributor.url("/api/v1/push"), &req)
            .await
            .expect("push");
        if r.status.is_success() {
            break;
        }
        // The distributor may not have seen the ingester ACTIVE yet.
        assert!(
            Instant::now() < deadline,
            "push over mTLS: {} {}\n{}",
            r.status,
            r.body,
            distributor.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let url = querier.url(&format!(
        "/api/v1/query?query=over_tls&time={}",
        api_time(ts)
    ));
    let body: serde_json::Value = querier
        .client
        .get(&url)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["data"]["result"][0]["value"][1],
        "42",
        "query over mTLS: {body}\n{}",
        querier.log_tail()
    );

    // Direct gRPC to the ingester: the cluster's certificate works; plain text, a foreign
    // certificate and no certificate are refused.
    let ingester_addr = format!("127.0.0.1:{ingester_grpc}");
    let good = GrpcClientConfig {
        tls: Some(certs.client("distributor")),
        ..GrpcClientConfig::default()
    };
    push_direct(good.clone(), &ingester_addr)
        .await
        .expect("a push with the cluster's certificate");
    let e = push_direct(GrpcClientConfig::default(), &ingester_addr)
        .await
        .expect_err("a plain-text push");
    assert!(!e.is_empty());
    let foreign = TestCa::new("foreign CA").issue(&["127.0.0.1"]);
    foreign.write(certs.dir.path(), "foreign");
    let rogue = GrpcClientConfig {
        tls: Some(certs.client("foreign")),
        ..GrpcClientConfig::default()
    };
    push_direct(rogue.clone(), &ingester_addr)
        .await
        .expect_err("a push with a foreign certificate");
    let mut anonymous = certs.client("distributor");
    anonymous.cert_file.clear();
    anonymous.key_file.clear();
    push_direct(
        GrpcClientConfig {
            tls: Some(anonymous),
            ..GrpcClientConfig::default()
        },
        &ingester_addr,
    )
    .await
    .expect_err("a push without a certificate");

    // The meta voter's Kv service: the same.
    let kv = |tls: Option<GrpcClientTls>| {
        RemoteKv::new(
            vec![format!("127.0.0.1:{meta_grpc}")],
            RemoteKvOptions {
                retry_for: Duration::from_secs(2),
                tls,
                ..RemoteKvOptions::default()
            },
        )
    };
    let ring = kv(Some(
        GrpcClientTls::new(&certs.client("distributor")).expect("tls"),
    ))
    .list("ring/")
    .await
    .expect("the ring over mTLS");
    assert!(!ring.is_empty());
    kv(None)
        .list("ring/")
        .await
        .expect_err("plain text to meta");
    kv(Some(
        GrpcClientTls::new(&certs.client("foreign")).expect("tls"),
    ))
    .list("ring/")
    .await
    .expect_err("a foreign certificate to meta");

    // Rotation: new files, and the next connection gets the new certificate.
    let probe = GrpcClientTls::new(&certs.client("querier")).expect("tls");
    let before = served_cert(&probe, &ingester_addr).await;
    let old = std::fs::read_to_string(certs.file("ingester", "crt")).expect("old cert");
    let new = certs.issue("ingester");
    assert_ne!(before, new.der);
    let after = served_cert(&probe, &ingester_addr).await;
    assert_eq!(after, new.der, "the ingester serves its new certificate");
    assert_ne!(old, new.cert_pem);
    // The cluster keeps working across the rotation (new connections verify the new one).
    push_direct(good, &ingester_addr)
        .await
        .expect("a push after the rotation");
    drop((meta, ingester));
}

/// A strata with HTTPS and a client CA; waits until `/ready` answers over TLS.
struct HttpsStrata {
    _process: ProcessGuard,
    _dir: TestDir,
    addr: SocketAddr,
}

fn rustls_client(certs: &Certs, with_cert: Option<&str>) -> Arc<rustls::ClientConfig> {
    let t = strata_tls::StaticClientTls {
        ca_pem: Some(certs.ca.pem.clone().into_bytes()),
        cert_pem: with_cert.map(|n| std::fs::read(certs.file(n, "crt")).expect("cert")),
        key_pem: with_cert.map(|n| std::fs::read(certs.file(n, "key")).expect("key")),
        server_name: None,
        insecure_skip_verify: false,
    };
    let mut c = strata_tls::static_client_config(&t, Arc::new(rustls::RootCertStore::empty()))
        .expect("client config");
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// `GET path` over TLS with `cfg`; the status line, or the error.
async fn https_get(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut s = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: strata\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1.1"))
        .map(str::to_owned)
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}

async fn start_https(certs: &Certs) -> HttpsStrata {
    let dir = TestDir::new();
    certs.issue("https");
    let yml = format!(
        "server:\n  http_tls: {{cert_file: '{}', key_file: '{}', client_ca_file: '{}'}}\n",
        certs.file("https", "crt"),
        certs.file("https", "key"),
        certs.ca_file().display()
    );
    let path = dir.root().join("strata.yml");
    std::fs::write(&path, yml).expect("config");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = std::process::Command::new(require_strata());
    cmd.arg("--config")
        .arg(path)
        .arg("--data-dir")
        .arg(dir.data_dir())
        .arg("--http-listen-address")
        .arg(addr.to_string());
    let mut process = ProcessGuard::spawn("strata-https", cmd, dir.root());
    let cfg = rustls_client(certs, Some("https"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(line) = https_get(addr, cfg.clone(), "/ready").await {
            if line.contains(" 200") {
                break;
            }
        }
        assert!(
            process.try_exit_status().is_none(),
            "strata exited: {}",
            process.log_tail()
        );
        assert!(
            Instant::now() < deadline,
            "not ready over HTTPS: {}",
            process.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    HttpsStrata {
        _process: process,
        _dir: dir,
        addr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_api_with_a_client_ca_refuses_clients_without_a_certificate() {
    require_strata();
    let certs = Certs::new();
    let s = start_https(&certs).await;
    certs.issue("client");
    let line = https_get(
        s.addr,
        rustls_client(&certs, Some("client")),
        "/api/v1/labels",
    )
    .await
    .expect("with a certificate");
    assert!(line.contains(" 200"), "{line}");
    let without = https_get(s.addr, rustls_client(&certs, None), "/api/v1/labels").await;
    assert!(
        without.is_err(),
        "a client without a certificate got {without:?}"
    );
    TestCa::new("foreign")
        .issue(&["client"])
        .write(certs.dir.path(), "foreign");
    let foreign = https_get(
        s.addr,
        rustls_client(&certs, Some("foreign")),
        "/api/v1/labels",
    )
    .await;
    assert!(foreign.is_err(), "a foreign certificate got {foreign:?}");
    // Plain HTTP gets no answer.
    let plain = http_client()
        .get(format!("http://{}/ready", s.addr))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP was served"
    );

    // The server's certificate is replaced on disk: the next connection gets it.
    let new = certs.issue("https");
    let tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(rustls_client(&certs, Some("client")))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
            tcp,
        )
        .await
        .expect("handshake");
    assert_eq!(
        tls.get_ref().1.peer_certificates().expect("cert")[0].as_ref(),
        new.der.as_slice(),
        "HTTPS serves the new certificate without a restart"
    );
}
