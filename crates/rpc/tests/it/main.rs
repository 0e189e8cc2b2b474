//! The ingester and store-gateway services over real gRPC on loopback, against a small store.

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_model::batch::{MetricMetadata, MetricType};
use strata_model::{Labels, MatchOp, Matcher, Sample, TenantId, WriteBatch};
use strata_rpc::{
    ChannelPool, GrpcClientConfig, GrpcServerConfig, IngesterClient, IngesterService,
    StoreGatewayClient, StoreGatewayService,
};
use strata_storage::limits::check_count;
use strata_storage::{BlockQueryable, BlockSelection, BlocksAnswer};
use strata_storage::{
    ChunkedSeries, EncodedPusher, LimitExceeded, PushError, PushOutcome, Pusher, QueryError,
    Queryable, ReadLimit, ReadLimits, Rejection, RejectionKind, SelectHints, Series,
    SeriesMetadata,
};
use tokio_stream::wrappers::TcpListenerStream;
use ulid::Ulid;

/// Keeps pushed series; refuses series named `refused`; hangs on `hang`. Reads stop at their
/// limits (unless `ignore_limits`, a peer that predates them) and count the series they visit.
#[derive(Debug, Default)]
struct Store {
    series: Mutex<Vec<Series>>,
    metadata: Mutex<Vec<SeriesMetadata>>,
    visited: AtomicUsize,
    ignore_limits: AtomicBool,
    /// The limits of the last selection.
    seen: Mutex<Option<ReadLimits>>,
    /// Blocks this store holds, as a sharded store-gateway: reads of named blocks answer from
    /// every series and name the held ones among those asked.
    held: Mutex<Vec<Ulid>>,
}

impl Store {
    /// Calls `f` on each matching series with samples in the range (only those) until it fails.
    fn visit(
        &self,
        ms: &[Matcher],
        start: i64,
        end: i64,
        mut f: impl FnMut(Series) -> Result<(), LimitExceeded>,
    ) -> Result<(), QueryError> {
        let all = self.series.lock().clone();
        for s in all {
            if !ms
                .iter()
                .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            self.visited.fetch_add(1, Ordering::SeqCst);
            let samples: Vec<Sample> = s
                .samples
                .iter()
                .copied()
                .filter(|x| x.t >= start && x.t <= end)
                .collect();
            if samples.is_empty() {
                continue;
            }
            f(Series {
                labels: s.labels,
                samples,
            })?;
        }
        Ok(())
    }

    /// `limit`, or none for a peer that ignores limits.
    fn effective(&self, limit: usize) -> usize {
        if self.ignore_limits.load(Ordering::SeqCst) {
            strata_storage::NO_LIMIT
        } else {
            limit
        }
    }
}

#[async_trait]
impl Pusher for Store {
    async fn push(&self, tenant: &TenantId, b: &WriteBatch<'_>) -> Result<PushOutcome, PushError> {
        assert_eq!(tenant.as_str(), "team-a");
        let mut o = PushOutcome::default();
        for i in 0..b.series.len() {
            let labels = Labels::from_pairs(b.series_labels(i).iter().copied());
            let n = b.series_samples(i).len() as u64;
            if labels.metric_name() == Some("refused") {
                o.reject(n, || Rejection {
                    kind: RejectionKind::BadData,
                    reason: "sample-out-of-order",
                    message: format!("refused {labels:?}"),
                });
                o.rejected_series.push((i as u32, RejectionKind::BadData));
                continue;
            }
            o.samples_written += n;
            self.series.lock().push(Series {
                labels,
                samples: b.series_samples(i).to_vec(),
            });
        }
        for m in &b.metadata {
            self.metadata.lock().push(SeriesMetadata {
                family: m.family.into(),
                metric_type: m.metric_type,
                help: m.help.into(),
                unit: m.unit.into(),
            });
        }
        Ok(o)
    }
}

#[async_trait]
impl Queryable for Store {
    async fn select(
        &self,
        _t: &TenantId,
        ms: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        if ms.iter().any(|m| m.value == "hang") {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if ms.iter().any(|m| m.value == "limit") {
            return Err(QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 7,
            }));
        }
        let mut v: Vec<Series> = Vec::new();
        self.visit(ms, start, end, |s| {
            v.push(s);
            Ok(())
        })?;
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(v)
    }

    async fn select_chunks_hinted(
        &self,
        t: &TenantId,
        ms: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        *self.seen.lock() = Some(hints.limits);
        if ms.iter().any(|m| m.value == "hang" || m.value == "limit") {
            return Ok(self
                .select(t, ms, start, end)
                .await?
                .into_iter()
                .map(ChunkedSeries::Samples)
                .collect());
        }
        let limits = if self.ignore_limits.load(Ordering::SeqCst) {
            ReadLimits::default()
        } else {
            hints.limits
        };
        let mut tally = limits.tally();
        let mut v = Vec::new();
        self.visit(ms, start, end, |s| {
            let s = ChunkedSeries::Samples(s);
            tally.add_series(&s)?;
            v.push(s);
            Ok(())
        })?;
        v.sort_by(|a, b| a.labels().cmp(b.labels()));
        Ok(v)
    }

    async fn series(
        &self,
        _t: &TenantId,
        ms: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let limit = self.effective(limit);
        let mut v = Vec::new();
        self.visit(ms, start, end, |s| {
            v.push(s.labels);
            check_count(v.len(), limit, ReadLimit::Series)
        })?;
        v.sort();
        Ok(v)
    }

    async fn label_names(
        &self,
        _t: &TenantId,
        ms: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let limit = self.effective(limit);
        let mut v = std::collections::BTreeSet::new();
        self.visit(ms, start, end, |s| {
            v.extend(s.labels.iter().map(|l| l.name.clone()));
            check_count(v.len(), limit, ReadLimit::LabelNames)
        })?;
        Ok(v.into_iter().collect())
    }

    async fn label_values(
        &self,
        _t: &TenantId,
        name: &str,
        ms: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let limit = self.effective(limit);
        let mut v = std::collections::BTreeSet::new();
        self.visit(ms, start, end, |s| {
            if let Some(x) = s.labels.get(name) {
                v.insert(x.to_owned());
            }
            check_count(v.len(), limit, ReadLimit::LabelValues)
        })?;
        Ok(v.into_iter().collect())
    }

    async fn metadata(
        &self,
        _t: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(self.metadata.lock().clone())
    }
}

impl Store {
    fn held_of(&self, sel: &BlockSelection<'_>) -> Vec<Ulid> {
        let held = self.held.lock();
        sel.blocks
            .iter()
            .filter(|b| held.contains(b))
            .copied()
            .collect()
    }
}

#[async_trait]
impl BlockQueryable for Store {
    async fn select_blocks(
        &self,
        sel: BlockSelection<'_>,
        hints: &SelectHints,
    ) -> Result<BlocksAnswer<Vec<ChunkedSeries>>, QueryError> {
        let value = self
            .select_chunks_hinted(sel.tenant, sel.matchers, sel.start, sel.end, hints)
            .await?;
        Ok(BlocksAnswer {
            value,
            queried: self.held_of(&sel),
        })
    }

    async fn series_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<Labels>>, QueryError> {
        let value = self
            .series(sel.tenant, sel.matchers, sel.start, sel.end, limit)
            .await?;
        Ok(BlocksAnswer {
            value,
            queried: self.held_of(&sel),
        })
    }

    async fn label_names_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let value = self
            .label_names(sel.tenant, sel.matchers, sel.start, sel.end, limit)
            .await?;
        Ok(BlocksAnswer {
            value,
            queried: self.held_of(&sel),
        })
    }

    async fn label_values_blocks(
        &self,
        sel: BlockSelection<'_>,
        name: &str,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let value = self
            .label_values(sel.tenant, name, sel.matchers, sel.start, sel.end, limit)
            .await?;
        Ok(BlocksAnswer {
            value,
            queried: self.held_of(&sel),
        })
    }
}

struct Server {
    addr: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(store: Arc<Store>, cfg: GrpcServerConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let ing = IngesterService::new(store.clone(), store.clone()).into_server(&cfg);
    let sg = StoreGatewayService::new(store).into_server(&cfg);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ing)
            .add_service(sg)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Server { addr, _stop: tx }
}

fn tenant() -> TenantId {
    TenantId::new("team-a").unwrap()
}

fn batch() -> WriteBatch<'static> {
    let mut b = WriteBatch::default();
    b.push_series(
        &[("__name__", "up"), ("job", "node")],
        &(0..250)
            .map(|i| Sample::new(i * 15_000, i as f64))
            .collect::<Vec<_>>(),
    );
    b.push_series(&[("__name__", "refused")], &[Sample::new(1, 1.0)]);
    b.push_series(
        &[("__name__", "up"), ("job", "prom")],
        &[Sample::new(5, f64::NAN)],
    );
    b.metadata.push(MetricMetadata {
        family: "up",
        metric_type: MetricType::Gauge,
        help: "1 if up",
        unit: "",
    });
    b
}

#[tokio::test]
async fn push_and_read_back_through_the_ingester_service() {
    let store = Arc::new(Store::default());
    let srv = serve(store.clone(), GrpcServerConfig::default()).await;
    let pool = ChannelPool::new(GrpcClientConfig::default(), None).unwrap();
    let c = IngesterClient::new(
        "ingester-1",
        pool.get("ingester-1", &srv.addr).unwrap(),
        pool.config(),
    );

    let o = Pusher::push(&c, &tenant(), &batch()).await.unwrap();
    assert_eq!(o.samples_written, 251);
    assert_eq!(o.samples_rejected, 1);
    assert_eq!(o.rejected_series, vec![(1, RejectionKind::BadData)]);
    assert_eq!(o.first_rejection.unwrap().reason, "sample-out-of-order");
    assert_eq!(store.series.lock().len(), 2);

    let up = [Matcher::equal("__name__", "up")];
    let got = c.select(&tenant(), &up, 0, i64::MAX).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].labels,
        Labels::from_pairs([("__name__", "up"), ("job", "node")])
    );
    assert_eq!(got[0].samples.len(), 250);
    assert_eq!(got[0].samples[249], Sample::new(249 * 15_000, 249.0));
    assert!(got[1].samples[0].v.is_nan());
    // A window inside the data.
    let got = c.select(&tenant(), &up, 15_000, 30_000).await.unwrap();
    assert_eq!(got[0].samples.len(), 2);

    let series = c.series(&tenant(), &up, 0, i64::MAX, 0).await.unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(
        c.label_names(&tenant(), &[], 0, 1, 0).await.unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(
        c.label_values(&tenant(), "job", &[], 0, 1, 0)
            .await
            .unwrap(),
        vec!["node"]
    );
    let md = c.metadata(&tenant(), None).await.unwrap();
    assert_eq!(md[0].family, "up");
    assert_eq!(md[0].metric_type, MetricType::Gauge);
    assert_eq!(c.head_stats(&tenant()).await.unwrap(), None);

    // The store-gateway service answers the same selections.
    let sg = StoreGatewayClient::new("sg-1", pool.get("sg-1", &srv.addr).unwrap(), pool.config());
    let got = sg.select(&tenant(), &up, 0, i64::MAX).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        sg.series(&tenant(), &up, 0, i64::MAX, 0)
            .await
            .unwrap()
            .len(),
        2
    );

    // Reads of named blocks: the answer names the blocks the store holds among those asked,
    // in every kind of read.
    let (a, b, c) = (
        Ulid::from_parts(1, 1),
        Ulid::from_parts(2, 2),
        Ulid::from_parts(3, 3),
    );
    *store.held.lock() = vec![a, c];
    let t = tenant();
    let asked = [a, b];
    let sel = BlockSelection {
        tenant: &t,
        blocks: &asked,
        matchers: &up,
        start: 0,
        end: i64::MAX,
    };
    let got = sg
        .select_blocks(sel, &SelectHints::default())
        .await
        .unwrap();
    assert_eq!((got.value.len(), got.queried), (2, vec![a]));
    let got = sg.series_blocks(sel, 0).await.unwrap();
    assert_eq!((got.value.len(), got.queried), (2, vec![a]));
    let got = sg.label_names_blocks(sel, 0).await.unwrap();
    assert!(got.value.contains(&"job".to_owned()), "{:?}", got.value);
    assert_eq!(got.queried, vec![a]);
    let got = sg.label_values_blocks(sel, "__name__", 0).await.unwrap();
    assert_eq!((got.value, got.queried), (vec!["up".to_owned()], vec![a]));
    let none = [b];
    let got = sg
        .select_blocks(
            BlockSelection {
                blocks: &none,
                ..sel
            },
            &SelectHints::default(),
        )
        .await
        .unwrap();
    assert!(got.queried.is_empty());

    // A block id that is not 16 bytes is refused, naming the field and its position.
    let mut raw = strata_rpc::pb::storegateway::v1::store_gateway_client::StoreGatewayClient::new(
        pool.get("sg-1", &srv.addr).unwrap(),
    );
    let e = raw
        .series_labels(strata_rpc::pb::query::v1::SelectRequest {
            tenant: "team-a".into(),
            block_ids: vec![a.to_bytes().to_vec(), vec![1, 2, 3]],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("block_ids[1]: 3 bytes"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn errors_keep_their_kind() {
    let store = Arc::new(Store::default());
    let srv = serve(store, GrpcServerConfig::default()).await;
    let pool = ChannelPool::new(GrpcClientConfig::default(), None).unwrap();
    let c = IngesterClient::new(
        "ingester-1",
        pool.get("ingester-1", &srv.addr).unwrap(),
        pool.config(),
    );
    let e = c
        .select(&tenant(), &[Matcher::equal("x", "limit")], 0, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 7
            })
        ),
        "{e}"
    );
    // A garbled push is a request error, not a retryable one.
    let e = c
        .push_encoded(&tenant(), Bytes::from_static(&[0x0a, 0xff]))
        .await
        .unwrap_err();
    assert!(matches!(e, PushError::InvalidRequest(_)), "{e}");
    // Regex matchers travel intact and still select.
    let re = Matcher::new(MatchOp::RegexMatch, "__name__", "u.|nothing").unwrap();
    assert!(c
        .series(&tenant(), &[re], 0, 1, 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_hanging_peer_fails_at_the_deadline_and_a_dead_one_names_itself() {
    let store = Arc::new(Store::default());
    let srv = serve(store, GrpcServerConfig::default()).await;
    let cfg = GrpcClientConfig {
        query_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let pool = ChannelPool::new(cfg, None).unwrap();
    let c = IngesterClient::new(
        "ingester-1",
        pool.get("ingester-1", &srv.addr).unwrap(),
        pool.config(),
    );
    let e = c
        .select(&tenant(), &[Matcher::equal("x", "hang")], 0, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::Remote { ref target, .. } if target == "ingester-1"),
        "{e}"
    );

    // Nothing listens on a port we just released.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let c = IngesterClient::new(
        "ingester-9",
        pool.get("ingester-9", &dead).unwrap(),
        pool.config(),
    );
    let e = Pusher::push(&c, &tenant(), &batch()).await.unwrap_err();
    assert!(e.to_string().contains("ingester-9"), "{e}");
    assert!(matches!(e, PushError::Remote { .. }), "{e}");
}

#[tokio::test]
async fn messages_over_the_server_limit_are_refused() {
    let store = Arc::new(Store::default());
    let srv = serve(
        store.clone(),
        GrpcServerConfig {
            max_recv_msg_size: 1 << 20,
            ..Default::default()
        },
    )
    .await;
    let pool = ChannelPool::new(GrpcClientConfig::default(), None).unwrap();
    let c = IngesterClient::new(
        "ingester-1",
        pool.get("ingester-1", &srv.addr).unwrap(),
        pool.config(),
    );
    let big = "v".repeat(2 << 20);
    let mut b = WriteBatch::default();
    b.push_series(
        &[("__name__", "x"), ("big", big.as_str())],
        &[Sample::new(1, 1.0)],
    );
    let e = Pusher::push(&c, &tenant(), &b).await.unwrap_err();
    assert!(e.to_string().contains("ingester-1"), "{e}");
    assert!(store.series.lock().is_empty());
}

/// The ingester service behind mutual TLS (`server.grpc_tls`), as a process serves it.
async fn serve_tls(store: Arc<Store>, tls: strata_tls::GrpcServerTls) -> Server {
    let cfg = GrpcServerConfig::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let ing = IngesterService::new(store.clone(), store).into_server(&cfg);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ing)
            .serve_with_incoming_shutdown(strata_tls::grpc::incoming(listener, Some(tls)), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Server { addr, _stop: tx }
}

#[tokio::test]
async fn mutual_tls_pushes_with_a_valid_certificate_only() {
    use strata_tls::testing::TestCa;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cluster CA");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (sc, sk) = ca.issue(&["127.0.0.1"]).write(dir.path(), "server");
    let server_tls = strata_tls::GrpcServerTls::new(&strata_tls::ServerTlsConfig {
        cert_file: sc.display().to_string(),
        key_file: sk.display().to_string(),
        client_ca_file: ca_file.display().to_string(),
    })
    .unwrap();
    let store = Arc::new(Store::default());
    let srv = serve_tls(store.clone(), server_tls).await;
    let client_cfg = |ca: &TestCa, stem: &str| {
        let (c, k) = ca.issue(&["client"]).write(dir.path(), stem);
        GrpcClientConfig {
            tls: Some(strata_tls::ClientTlsConfig {
                cert_file: c.display().to_string(),
                key_file: k.display().to_string(),
                ca_file: ca_file.display().to_string(),
                server_name: String::new(),
            }),
            ..GrpcClientConfig::default()
        }
    };
    let push = |cfg: GrpcClientConfig| {
        let addr = srv.addr.clone();
        async move {
            let pool = ChannelPool::new(cfg, None).unwrap();
            let c = IngesterClient::new(
                "ingester-1",
                pool.get("ingester-1", &addr).unwrap(),
                pool.config(),
            );
            Pusher::push(&c, &tenant(), &batch()).await
        }
    };
    let o = push(client_cfg(&ca, "good")).await.unwrap();
    assert_eq!(o.samples_written, 251);
    assert_eq!(store.series.lock().len(), 2);

    // Plain text, a certificate of another CA, no certificate: refused, nothing stored.
    let e = push(GrpcClientConfig::default()).await.unwrap_err();
    assert!(matches!(e, PushError::Remote { .. }), "{e}");
    let rogue = TestCa::new("rogue CA");
    let mut rogue_cfg = client_cfg(&rogue, "rogue");
    let e = push(rogue_cfg.clone()).await.unwrap_err();
    assert!(matches!(e, PushError::Remote { .. }), "{e}");
    if let Some(t) = &mut rogue_cfg.tls {
        t.cert_file.clear();
        t.key_file.clear();
    }
    rogue_cfg.tls.as_mut().unwrap().ca_file = ca_file.display().to_string();
    let e = push(rogue_cfg).await.unwrap_err();
    assert!(matches!(e, PushError::Remote { .. }), "{e}");
    assert_eq!(store.series.lock().len(), 2, "refused peers stored nothing");
}

/// Pushes `n` series `many{i="…"}` of 300 samples each (three chunks on the wire).
async fn push_many(c: &IngesterClient, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("{i:05}")).collect();
    let samples: Vec<Sample> = (0..300).map(|t| Sample::new(t * 1000, t as f64)).collect();
    let mut b = WriteBatch::default();
    for id in &ids {
        b.push_series(&[("__name__", "many"), ("i", id.as_str())], &samples);
    }
    Pusher::push(c, &tenant(), &b).await.unwrap();
}

#[tokio::test]
async fn limits_travel_to_the_peer_which_stops_reading() {
    let store = Arc::new(Store::default());
    let srv = serve(store.clone(), GrpcServerConfig::default()).await;
    let pool = ChannelPool::new(GrpcClientConfig::default(), None).unwrap();
    push_many(
        &IngesterClient::new("i", pool.get("i", &srv.addr).unwrap(), pool.config()),
        500,
    )
    .await;
    let m = [Matcher::equal("__name__", "many")];
    let clients: Vec<Box<dyn Queryable>> = vec![
        Box::new(IngesterClient::new(
            "ingester-1",
            pool.get("ingester-1", &srv.addr).unwrap(),
            pool.config(),
        )),
        Box::new(StoreGatewayClient::new(
            "sg-1",
            pool.get("sg-1", &srv.addr).unwrap(),
            pool.config(),
        )),
    ];
    let hints = |limits| SelectHints {
        limits,
        ..SelectHints::default()
    };
    for c in &clients {
        // Within the limits everything arrives.
        let all = ReadLimits {
            max_series: 500,
            max_samples: 150_000,
            max_bytes: 0,
        };
        let got = c
            .select_chunks_hinted(&tenant(), &m, 0, i64::MAX, &hints(all))
            .await
            .unwrap();
        assert_eq!(got.len(), 500);
        assert_eq!(*store.seen.lock(), Some(all), "the limits reached the peer");

        let cases = [
            (
                ReadLimits {
                    max_series: 10,
                    ..Default::default()
                },
                ReadLimit::Series,
            ),
            (
                ReadLimits {
                    max_samples: 3000,
                    ..Default::default()
                },
                ReadLimit::Samples,
            ),
            (
                ReadLimits {
                    max_bytes: 64 << 10,
                    ..Default::default()
                },
                ReadLimit::QueryMemory,
            ),
        ];
        for (limits, kind) in cases {
            store.visited.store(0, Ordering::SeqCst);
            let e = c
                .select_chunks_hinted(&tenant(), &m, 0, i64::MAX, &hints(limits))
                .await
                .unwrap_err();
            assert!(
                matches!(e, QueryError::LimitExceeded(l) if l.limit == kind),
                "{kind:?}: {e}"
            );
            let visited = store.visited.load(Ordering::SeqCst);
            assert!(
                visited < 100,
                "{kind:?}: the peer read {visited} of 500 series"
            );
        }

        store.visited.store(0, Ordering::SeqCst);
        let e = c.series(&tenant(), &m, 0, i64::MAX, 10).await.unwrap_err();
        assert!(
            matches!(
                e,
                QueryError::LimitExceeded(LimitExceeded {
                    limit: ReadLimit::Series,
                    max: 10
                })
            ),
            "{e}"
        );
        let e = c
            .label_values(&tenant(), "i", &m, 0, i64::MAX, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                QueryError::LimitExceeded(LimitExceeded {
                    limit: ReadLimit::LabelValues,
                    max: 10
                })
            ),
            "{e}"
        );
        let e = c
            .label_names(&tenant(), &m, 0, i64::MAX, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                QueryError::LimitExceeded(LimitExceeded {
                    limit: ReadLimit::LabelNames,
                    max: 1
                })
            ),
            "{e}"
        );
        assert!(store.visited.load(Ordering::SeqCst) <= 11 + 11 + 1);
        assert_eq!(
            c.label_values(&tenant(), "i", &m, 0, i64::MAX, 500)
                .await
                .unwrap()
                .len(),
            500
        );
    }
}

#[tokio::test]
async fn a_peer_that_ignores_limits_is_cut_off_by_the_client() {
    let store = Arc::new(Store::default());
    store.ignore_limits.store(true, Ordering::SeqCst);
    let srv = serve(store.clone(), GrpcServerConfig::default()).await;
    let pool = ChannelPool::new(GrpcClientConfig::default(), None).unwrap();
    let c = IngesterClient::new(
        "ingester-1",
        pool.get("ingester-1", &srv.addr).unwrap(),
        pool.config(),
    );
    push_many(&c, 500).await;
    let m = [Matcher::equal("__name__", "many")];
    let hints = SelectHints {
        limits: ReadLimits {
            max_series: 10,
            ..Default::default()
        },
        ..SelectHints::default()
    };
    let e = c
        .select_chunks_hinted(&tenant(), &m, 0, i64::MAX, &hints)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 10
            })
        ),
        "{e}"
    );
    let e = c.series(&tenant(), &m, 0, i64::MAX, 10).await.unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 10
            })
        ),
        "{e}"
    );
    let e = c
        .label_values(&tenant(), "i", &m, 0, i64::MAX, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::LabelValues,
                max: 10
            })
        ),
        "{e}"
    );
    // The peer itself read everything: it is the client that stopped.
    assert!(store.visited.load(Ordering::SeqCst) >= 500);
}
