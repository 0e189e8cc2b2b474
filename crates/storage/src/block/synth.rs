//! Deterministic node_exporter-like series for tests and encoding measurements (not a
//! benchmark of real data: see `docs/block-format.md` for what it does and does not model).
//!
//! Per host: CPU-seconds counters with 10 ms resolution, integer byte/packet counters,
//! page-multiple memory gauges, constant filesystem sizes, 2-decimal load averages, histogram
//! bucket counters, `up`; 15 s scrapes with a few ms of per-scrape timestamp jitter (as real
//! Prometheus scrapes have); some series end early with a stale marker.

use strata_model::{Labels, Sample, STALE_NAN};

/// splitmix64: tiny, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Series of `hosts` hosts, scraped every 15 s over `[start, start + duration_ms)`, with up to
/// 5 ms of timestamp jitter per scrape.
pub fn node_exporter_like(
    hosts: usize,
    start: i64,
    duration_ms: i64,
    seed: u64,
) -> Vec<(Labels, Vec<Sample>)> {
    node_exporter_like_with_jitter(hosts, start, duration_ms, seed, 5)
}

/// Like [`node_exporter_like`] with timestamp jitter uniform in `[0, jitter_ms]` per scrape
/// (0: perfectly regular, as Prometheus's timestamp alignment tolerance often makes them).
pub fn node_exporter_like_with_jitter(
    hosts: usize,
    start: i64,
    duration_ms: i64,
    seed: u64,
    jitter_ms: u64,
) -> Vec<(Labels, Vec<Sample>)> {
    let mut rng = Rng::new(seed);
    let steps = (duration_ms / 15_000) as usize;
    let mut out = Vec::new();
    for h in 0..hosts {
        let instance = format!("host-{h:04}:9100");
        // One jitter per scrape, shared by every series of the host, as in Prometheus.
        let times: Vec<i64> = (0..steps)
            .map(|i| start + i as i64 * 15_000 + rng.below(jitter_ms + 1) as i64)
            .collect();
        let mut add = |name: &str, extra: &[(&str, String)], values: Vec<f64>| {
            let mut pairs: Vec<(String, String)> = vec![
                ("__name__".into(), name.into()),
                ("instance".into(), instance.clone()),
                ("job".into(), "node".into()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            let samples = times.iter().zip(values).map(|(&t, v)| Sample::new(t, v));
            out.push((Labels::from_pairs(pairs), samples.collect()));
        };
        add("up", &[], vec![1.0; steps]);
        for cpu in 0..4 {
            for mode in [
                "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
            ] {
                let share = match mode {
                    "idle" => 0.8,
                    "user" => 0.12,
                    "system" => 0.05,
                    "steal" | "nice" => 0.0,
                    _ => 0.01,
                };
                let mut v = (rng.below(10_000_000) as f64) / 100.0;
                let vals = (0..steps)
                    .map(|_| {
                        v += ((15.0 * share * (0.5 + rng.unit())) * 100.0).round() / 100.0;
                        (v * 100.0).round() / 100.0
                    })
                    .collect();
                add(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu.to_string()), ("mode", mode.into())],
                    vals,
                );
            }
        }
        for dev in ["eth0", "eth1", "lo"] {
            for (metric, rate) in [
                ("node_network_receive_bytes_total", 200_000u64),
                ("node_network_transmit_bytes_total", 80_000),
                ("node_network_receive_packets_total", 300),
                ("node_network_transmit_packets_total", 200),
                ("node_network_receive_errs_total", 0),
            ] {
                let mut v = rng.below(1 << 40) as f64;
                let vals = (0..steps)
                    .map(|_| {
                        v += rng.below(rate * 2 + 1) as f64;
                        v
                    })
                    .collect();
                add(metric, &[("device", dev.into())], vals);
            }
        }
        for metric in [
            "node_memory_MemFree_bytes",
            "node_memory_Cached_bytes",
            "node_memory_Buffers_bytes",
            "node_memory_Active_bytes",
            "node_memory_Dirty_bytes",
        ] {
            let mut pages = 100_000 + rng.below(1_000_000) as i64;
            let vals = (0..steps)
                .map(|_| {
                    pages = (pages + rng.below(201) as i64 - 100).max(0);
                    (pages * 4096) as f64
                })
                .collect();
            add(metric, &[], vals);
        }
        add(
            "node_memory_MemTotal_bytes",
            &[],
            vec![16.0 * 1073741824.0; steps],
        );
        for mp in ["/", "/boot", "/var", "/home"] {
            let size = (rng.below(1 << 20) * 4096) as f64;
            add(
                "node_filesystem_size_bytes",
                &[("mountpoint", mp.into()), ("fstype", "ext4".into())],
                vec![size; steps],
            );
            let mut free = size * 0.5;
            let vals = (0..steps)
                .map(|_| {
                    free -= (rng.below(3) * 4096) as f64;
                    free
                })
                .collect();
            add(
                "node_filesystem_avail_bytes",
                &[("mountpoint", mp.into()), ("fstype", "ext4".into())],
                vals,
            );
        }
        for m in ["node_load1", "node_load5", "node_load15"] {
            let mut v: f64 = 1.0;
            let vals = (0..steps)
                .map(|_| {
                    v = (v + (rng.unit() - 0.5) * 0.2).max(0.0);
                    (v * 100.0).round() / 100.0
                })
                .collect();
            add(m, &[], vals);
        }
        let les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1", "+Inf"];
        let mut counts = vec![0f64; les.len()];
        let mut series: Vec<Vec<f64>> = vec![Vec::with_capacity(steps); les.len()];
        for _ in 0..steps {
            let mut c = 0.0;
            for (i, s) in series.iter_mut().enumerate() {
                c += rng.below(3) as f64;
                counts[i] += c;
                s.push(counts[i]);
            }
        }
        for (le, vals) in les.iter().zip(series) {
            add(
                "prometheus_http_request_duration_seconds_bucket",
                &[("le", (*le).into()), ("handler", "/metrics".into())],
                vals,
            );
        }
        // A short-lived series that disappears with a stale marker halfway.
        let half = steps / 2;
        let mut vals: Vec<f64> = (0..half).map(|i| i as f64).collect();
        if half > 0 {
            vals[half - 1] = STALE_NAN;
        }
        let mut pairs = vec![
            (
                "__name__".to_owned(),
                "node_scrape_collector_success".to_owned(),
            ),
            ("instance".into(), instance.clone()),
            ("job".into(), "node".into()),
            ("collector".into(), "textfile".into()),
        ];
        pairs.sort();
        out.push((
            Labels::from_pairs(pairs),
            times[..half]
                .iter()
                .zip(vals)
                .map(|(&t, v)| Sample::new(t, v))
                .collect(),
        ));
    }
    out
}
