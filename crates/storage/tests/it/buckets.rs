//! Bucket conformance on the local filesystem and on a real S3-compatible server (s3s-fs,
//! in-process on 127.0.0.1 with signature-v4 authentication), plus a block round trip on S3.

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use strata_model::{Matcher, TenantId};
use strata_storage::block::{synth, BlockReader, BlockWriter, WriterOptions};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, BucketError, ConditionalPut};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const BUCKET: &str = "strata-test";
const ACCESS_KEY: &str = "AKIASTRATATEST";
const SECRET_KEY: &str = "strata-test-secret-key";

/// An s3s-fs server on 127.0.0.1; stopped by [`S3Server::stop`] (and by dropping the runtime).
struct S3Server {
    endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl S3Server {
    async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        // s3s-fs maps buckets to directories under its root.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((sock, _)) = r else { continue };
                        let conn = http
                            .serve_connection(TokioIo::new(sock), service.clone())
                            .into_owned();
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    _ = &mut rx => break,
                }
            }
        });
        Self {
            endpoint: format!("http://{addr}"),
            stop: Some(tx),
            task,
            _root: root,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }

    fn bucket(&self) -> Bucket {
        let mut cfg = BucketConfig {
            backend: BackendKind::S3,
            request_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_retries: 2,
            ..Default::default()
        };
        cfg.s3.bucket_name = BUCKET.into();
        cfg.s3.endpoint = self.endpoint.clone();
        cfg.s3.region = "us-east-1".into();
        cfg.s3.access_key_id = ACCESS_KEY.into();
        cfg.s3.secret_access_key = SECRET_KEY.into();
        cfg.s3.force_path_style = true;
        cfg.s3.allow_http = true;
        Bucket::from_config(&cfg).unwrap()
    }
}

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
}

async fn conformance(b: &Bucket) {
    // put / get / size / exists
    let data = pattern(100_000, 1);
    b.put("t/a/one.bin", data.clone()).await.unwrap();
    assert_eq!(b.get("t/a/one.bin").await.unwrap(), data);
    assert_eq!(b.size("t/a/one.bin").await.unwrap(), 100_000);
    assert!(b.exists("t/a/one.bin").await.unwrap());
    assert!(!b.exists("t/a/missing").await.unwrap());
    assert!(matches!(
        b.get("t/a/missing").await,
        Err(BucketError::NotFound { .. })
    ));
    // overwrite is atomic and complete
    let data2 = pattern(1000, 2);
    b.put("t/a/one.bin", data2.clone()).await.unwrap();
    assert_eq!(b.get("t/a/one.bin").await.unwrap(), data2);

    // range reads
    b.put("t/b/r.bin", data.clone()).await.unwrap();
    assert_eq!(
        b.get_range("t/b/r.bin", 10..20).await.unwrap(),
        data.slice(10..20)
    );
    assert_eq!(
        b.get_range("t/b/r.bin", 99_990..100_000).await.unwrap(),
        data.slice(99_990..)
    );
    let parts = b
        .get_ranges("t/b/r.bin", &[0..5, 50_000..50_100, 99_999..100_000])
        .await
        .unwrap();
    assert_eq!(parts[0], data.slice(0..5));
    assert_eq!(parts[1], data.slice(50_000..50_100));
    assert_eq!(parts[2], data.slice(99_999..));

    // multipart upload above S3's 5 MiB part minimum: 13 MiB in 1 MiB chunks, 5 MiB parts.
    let big = pattern(13 << 20, 3);
    let chunks: Vec<Bytes> = (0..13).map(|i| big.slice(i << 20..(i + 1) << 20)).collect();
    let mb = b.clone().with_part_size(5 << 20);
    mb.put_multipart("t/c/big.bin", futures::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(b.size("t/c/big.bin").await.unwrap(), 13 << 20);
    let back = b.get("t/c/big.bin").await.unwrap();
    assert!(back == big, "multipart object differs");
    assert_eq!(
        b.get_range("t/c/big.bin", (5 << 20) - 3..(5 << 20) + 3)
            .await
            .unwrap(),
        big.slice((5 << 20) - 3..(5 << 20) + 3)
    );

    // listing
    let all = b.list("t").await.unwrap();
    let paths: Vec<&str> = all.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths, vec!["t/a/one.bin", "t/b/r.bin", "t/c/big.bin"]);
    assert_eq!(all[2].size, 13 << 20);
    assert_eq!(b.list("t/b").await.unwrap().len(), 1);
    assert!(b.list("nothing-here").await.unwrap().is_empty());
    assert_eq!(b.list_dirs("t").await.unwrap(), vec!["a", "b", "c"]);

    // delete (idempotent)
    b.delete("t/a/one.bin").await.unwrap();
    b.delete("t/a/one.bin").await.unwrap();
    assert!(!b.exists("t/a/one.bin").await.unwrap());
    b.delete("t/b/r.bin").await.unwrap();
    b.delete("t/c/big.bin").await.unwrap();
    assert!(b.list("t").await.unwrap().is_empty());
}

/// A block written to the bucket is read back through range requests.
async fn block_round_trip(b: &Bucket) {
    let tenant = TenantId::new("tenant-s3").unwrap();
    let input = synth::node_exporter_like(2, 0, 3_600_000, 3);
    let mut w = BlockWriter::new(tenant.clone(), 0, 3_600_000, WriterOptions::default()).unwrap();
    for (l, s) in &input {
        w.add_series(l.clone(), s.clone()).unwrap();
    }
    let files = w.finish().unwrap();
    files.upload(b).await.unwrap();
    assert_eq!(
        b.list_dirs("tenant-s3").await.unwrap(),
        vec![files.meta.ulid.to_string()]
    );
    let r = BlockReader::open(b, &tenant, files.meta.ulid)
        .await
        .unwrap();
    let got = r
        .select(&[Matcher::equal("__name__", "node_load5")], 0, 3_600_000)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    for s in &got {
        let want = &input.iter().find(|(l, _)| l == &s.labels).unwrap().1;
        assert_eq!(want.len(), s.samples.len());
        assert!(want.iter().zip(&s.samples).all(|(a, b)| a.bit_eq(b)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_filesystem_bucket_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BucketConfig::default();
    cfg.filesystem.directory = dir.path().join("bucket");
    let b = Bucket::from_config(&cfg).unwrap();
    tokio::time::timeout(Duration::from_secs(120), async {
        conformance(&b).await;
        block_round_trip(&b).await;
    })
    .await
    .expect("local conformance within 120 s");
}

#[tokio::test]
async fn local_filesystem_conditional_puts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BucketConfig::default();
    cfg.filesystem.directory = dir.path().join("bucket");
    let b = Bucket::from_config(&cfg).unwrap();
    let first = b
        .put_if_absent("t/lock", Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert!(matches!(first, ConditionalPut::Written(_)), "{first:?}");
    // A second create must not replace the first writer's object: that is what makes it a lock.
    let second = b
        .put_if_absent("t/lock", Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(second, ConditionalPut::Conflict);
    let (data, version) = b.get_versioned("t/lock").await.unwrap();
    assert_eq!(data, Bytes::from_static(b"one"));
    // object_store has no compare-and-swap update on the local filesystem.
    let upd = b
        .put_if_version("t/lock", Bytes::from_static(b"three"), &version)
        .await
        .unwrap();
    assert_eq!(upd, ConditionalPut::Unsupported);
    assert_eq!(b.get("t/lock").await.unwrap(), Bytes::from_static(b"one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bucket_conformance() {
    let server = S3Server::start().await;
    let b = server.bucket();
    let r = tokio::time::timeout(Duration::from_secs(120), async {
        conformance(&b).await;
        block_round_trip(&b).await;
    })
    .await;
    server.stop().await;
    r.expect("S3 conformance within 120 s");
}

#[tokio::test]
async fn s3_wrong_credentials_fail_with_a_typed_error() {
    let server = S3Server::start().await;
    let mut cfg = BucketConfig {
        backend: BackendKind::S3,
        request_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(20),
        max_retries: 1,
        ..Default::default()
    };
    cfg.s3.bucket_name = BUCKET.into();
    cfg.s3.endpoint = server.endpoint.clone();
    cfg.s3.access_key_id = ACCESS_KEY.into();
    cfg.s3.secret_access_key = "wrong".into();
    cfg.s3.force_path_style = true;
    cfg.s3.allow_http = true;
    let b = Bucket::from_config(&cfg).unwrap();
    let r = b.put("x", Bytes::from_static(b"x")).await;
    server.stop().await;
    assert!(matches!(r, Err(BucketError::Backend { .. })), "{r:?}");
}

#[tokio::test]
async fn operations_are_bounded_by_the_timeout() {
    // A server that accepts connections and never answers: the request timeout and then the
    // operation bound must end the call.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let mut cfg = BucketConfig {
        backend: BackendKind::S3,
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(2),
        max_retries: 1,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    cfg.s3.bucket_name = BUCKET.into();
    cfg.s3.endpoint = format!("http://{addr}");
    cfg.s3.access_key_id = ACCESS_KEY.into();
    cfg.s3.secret_access_key = SECRET_KEY.into();
    cfg.s3.force_path_style = true;
    cfg.s3.allow_http = true;
    let b = Bucket::from_config(&cfg).unwrap();
    let t0 = std::time::Instant::now();
    let r = b.get("x").await;
    hold.abort();
    assert!(r.is_err(), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
