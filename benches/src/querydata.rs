//! The seeded synthetic data set of the range-query benchmark.
//!
//! At scale `N` (e.g. 20,000) it holds three metrics of exactly `N` series each, named after the scale so that
//! both scales can live side by side and every query selects exactly `N` series:
//!
//! - `x_<tag>_total{job="node", instance, cpu, mode}`: node_exporter-like CPU-seconds counters. Hosts have 2 to
//!   32 CPUs and the eight usual modes; values are multiples of 0.01 s. About 3% of the hosts reboot once
//!   (all their counters restart from 0), so `rate` has to handle counter resets.
//! - `y_<tag>_bucket{job="api", instance, handler, le}`: classic cumulative histograms, 5 handlers per instance,
//!   `le` = 0.005 ... 2.5 and `+Inf` (10 series per histogram), integer counts from a log-logistic latency
//!   distribution whose median wanders per scrape; ~3% of the instances restart once (reset to 0).
//! - `z_<tag>{job="node", instance, device}`: gauges, 8 devices per instance, integer random walks in bytes.
//!
//! `<tag>` is `20k` for 20,000, `100k` for 100,000 (otherwise the plain number). Samples are 15 s apart on
//! exact multiples of 15 s, the last one at `end_ms`; every value follows from the seed, the scale and the
//! position of the series only, whatever the sharding or batching of the upload.

use strata_proto::prometheus::{Label, Sample, TimeSeries};

pub const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
pub const HANDLERS: [&str; 5] = [
    "/api/v1/items",
    "/api/v1/orders",
    "/api/v1/users",
    "/healthz",
    "/login",
];
pub const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const LE_F: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
pub const DEVICES_PER_INSTANCE: usize = 8;
const REBOOT_SHARE: f64 = 0.03;

#[derive(Clone, Debug)]
pub struct Dataset {
    /// Series per metric.
    pub scale: usize,
    pub seed: u64,
    /// Samples per series.
    pub points: usize,
    pub interval_ms: i64,
    /// Timestamp of the last sample (ms since the epoch, a multiple of `interval_ms`).
    pub end_ms: i64,
}

impl Dataset {
    pub fn tag(&self) -> String {
        scale_tag(self.scale)
    }
    pub fn x(&self) -> String {
        format!("x_{}_total", self.tag())
    }
    pub fn y(&self) -> String {
        format!("y_{}_bucket", self.tag())
    }
    pub fn z(&self) -> String {
        format!("z_{}", self.tag())
    }
    pub fn first_ms(&self) -> i64 {
        self.end_ms - (self.points as i64 - 1) * self.interval_ms
    }
    pub fn ts(&self, i: usize) -> i64 {
        self.first_ms() + i as i64 * self.interval_ms
    }
    pub fn series_total(&self) -> usize {
        3 * self.scale
    }
    pub fn samples_total(&self) -> u64 {
        (self.series_total() * self.points) as u64
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.scale > 0 && self.scale.is_multiple_of(40),
            "the scale must be a positive multiple of 40 (10 buckets x 8 devices per instance)"
        );
        anyhow::ensure!(self.points >= 2, "at least 2 points per series");
        anyhow::ensure!(
            self.interval_ms > 0 && self.end_ms % self.interval_ms == 0,
            "end must be a multiple of the interval"
        );
        Ok(())
    }

    /// All generation units (a counter, a whole histogram, a gauge), in a fixed order.
    pub fn units(&self) -> Vec<Unit> {
        let mut units = Vec::with_capacity(self.scale * 2 + self.scale / 10);
        self.counters(&mut units);
        self.histograms(&mut units);
        self.gauges(&mut units);
        units
    }

    fn reboot_at(&self, stream: u64, instance: u64) -> Option<usize> {
        let mut r = Rng::derived(self.seed, stream, instance);
        r.chance(REBOOT_SHARE)
            .then(|| r.between(1, self.points as u64 - 1) as usize)
    }

    fn counters(&self, out: &mut Vec<Unit>) {
        let name = self.x();
        let mut made = 0usize;
        let mut host = 0u64;
        while made < self.scale {
            let mut hr = Rng::derived(self.seed, 10, host);
            let cpus = *hr.pick(&[2u32, 4, 4, 8, 8, 8, 16, 32]);
            let uptime_scrapes = hr.range(240.0, 400_000.0);
            let reboot = self.reboot_at(11, host);
            let instance = format!("host-{host:05}:9100");
            'cpus: for cpu in 0..cpus {
                for (m, mode) in MODES.iter().enumerate() {
                    if made == self.scale {
                        break 'cpus;
                    }
                    let id = made as u64;
                    let mut r = Rng::derived(self.seed, 12, id);
                    // Mean increment per scrape, in hundredths of a second (15 s = 1500).
                    let share = match m {
                        0 => r.range(0.45, 0.95),
                        1 => r.range(0.0, 0.05),
                        2 => r.range(0.0, 0.01),
                        3 => {
                            if r.chance(0.7) {
                                0.0
                            } else {
                                r.range(0.0, 0.01)
                            }
                        }
                        4 => r.range(0.0, 0.02),
                        5 => {
                            if r.chance(0.6) {
                                0.0
                            } else {
                                r.range(0.0, 0.02)
                            }
                        }
                        6 => r.range(0.01, 0.12),
                        _ => r.range(0.02, 0.40),
                    };
                    let mean = 1500.0 * share;
                    out.push(Unit {
                        labels: vec![sorted_labels(&[
                            ("__name__", &name),
                            ("cpu", &cpu.to_string()),
                            ("instance", &instance),
                            ("job", "node"),
                            ("mode", mode),
                        ])],
                        reboot,
                        state: State::Counter {
                            centis: (mean * uptime_scrapes) as u64,
                            mean,
                        },
                        rng: r,
                        next: 0,
                    });
                    made += 1;
                }
            }
            host += 1;
        }
    }

    fn histograms(&self, out: &mut Vec<Unit>) {
        let name = self.y();
        let histograms = self.scale / LE.len();
        for h in 0..histograms {
            let inst = (h / HANDLERS.len()) as u64;
            let handler = HANDLERS[h % HANDLERS.len()];
            let instance = format!("api-{inst:05}:8080");
            let mut r = Rng::derived(self.seed, 20, h as u64);
            let rate = r.spread(20.0, 10.0);
            // Median latency in seconds, log-uniform 5 ms .. 400 ms, and the spread of the distribution.
            let median = r.spread(0.045, 9.0);
            let scale = r.range(0.35, 0.8);
            let uptime_scrapes = r.range(240.0, 400_000.0);
            let labels = LE
                .iter()
                .map(|le| {
                    sorted_labels(&[
                        ("__name__", &name),
                        ("handler", handler),
                        ("instance", &instance),
                        ("job", "api"),
                        ("le", le),
                    ])
                })
                .collect();
            let total = (rate * 15.0 * uptime_scrapes) as u64;
            let frac = cdf(median.ln(), scale);
            let counts = std::array::from_fn(|k| {
                if k == LE.len() - 1 {
                    total
                } else {
                    (total as f64 * frac[k]).round() as u64
                }
            });
            out.push(Unit {
                labels,
                reboot: self.reboot_at(21, inst),
                state: State::Histogram {
                    counts,
                    rate,
                    log_median: median.ln(),
                    scale,
                },
                rng: r,
                next: 0,
            });
        }
    }

    fn gauges(&self, out: &mut Vec<Unit>) {
        let name = self.z();
        for g in 0..self.scale {
            let inst = g / DEVICES_PER_INSTANCE;
            let device = format!("dev{}", g % DEVICES_PER_INSTANCE);
            let instance = format!("host-{inst:05}:9100");
            let mut r = Rng::derived(self.seed, 30, g as u64);
            let cap = r.spread(4e11, 20.0);
            let value = r.range(0.05, 0.95) * cap;
            let step = cap * r.range(1e-5, 2e-3);
            out.push(Unit {
                labels: vec![sorted_labels(&[
                    ("__name__", &name),
                    ("device", &device),
                    ("instance", &instance),
                    ("job", "node"),
                ])],
                reboot: None,
                state: State::Gauge {
                    value: value.round(),
                    step,
                    cap: cap.round(),
                },
                rng: r,
                next: 0,
            });
        }
    }
}

pub fn scale_tag(scale: usize) -> String {
    if scale.is_multiple_of(1000) {
        format!("{}k", scale / 1000)
    } else {
        scale.to_string()
    }
}

fn sorted_labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    let mut v: Vec<Label> = pairs
        .iter()
        .map(|(n, v)| Label {
            name: (*n).to_string(),
            value: (*v).to_string(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Log-logistic CDF at the finite bucket bounds.
fn cdf(log_median: f64, scale: f64) -> [f64; 9] {
    std::array::from_fn(|k| 1.0 / (1.0 + (-(LE_F[k].ln() - log_median) / scale).exp()))
}

#[derive(Clone, Debug)]
pub enum State {
    Counter {
        centis: u64,
        mean: f64,
    },
    Histogram {
        counts: [u64; 10],
        rate: f64,
        log_median: f64,
        scale: f64,
    },
    Gauge {
        value: f64,
        step: f64,
        cap: f64,
    },
}

/// Series generated together (one counter, the buckets of one histogram, one gauge), with their state.
#[derive(Clone, Debug)]
pub struct Unit {
    pub labels: Vec<Vec<Label>>,
    /// Index of the sample at which the counters restart from 0.
    pub reboot: Option<usize>,
    pub state: State,
    rng: Rng,
    /// Index of the next sample to generate.
    next: usize,
}

impl Unit {
    /// Appends one `TimeSeries` per series of the unit carrying samples `next .. until` (in time order) and
    /// advances the unit; returns the number of samples.
    pub fn emit(&mut self, ds: &Dataset, until: usize, out: &mut Vec<TimeSeries>) -> usize {
        let from = self.next;
        let until = until.min(ds.points);
        if until <= from {
            return 0;
        }
        let n = until - from;
        let mut cols: Vec<Vec<Sample>> = (0..self.labels.len())
            .map(|_| Vec::with_capacity(n))
            .collect();
        for i in from..until {
            let ts = ds.ts(i);
            let reset = self.reboot == Some(i);
            match &mut self.state {
                State::Counter { centis, mean } => {
                    if reset {
                        *centis = 0;
                    }
                    *centis += (*mean * (0.5 + self.rng.f64())).round() as u64;
                    cols[0].push(Sample {
                        value: *centis as f64 / 100.0,
                        timestamp: ts,
                    });
                }
                State::Histogram {
                    counts,
                    rate,
                    log_median,
                    scale,
                } => {
                    if reset {
                        *counts = [0; 10];
                    }
                    let requests = (*rate * 15.0 * (0.6 + 0.8 * self.rng.f64())).round() as u64;
                    let drift = log_median.to_owned() + 0.6 * (self.rng.f64() - 0.5);
                    let frac = cdf(drift, *scale);
                    for (k, c) in counts.iter_mut().enumerate() {
                        *c += if k == LE.len() - 1 {
                            requests
                        } else {
                            (requests as f64 * frac[k]).round() as u64
                        };
                        cols[k].push(Sample {
                            value: *c as f64,
                            timestamp: ts,
                        });
                    }
                }
                State::Gauge { value, step, cap } => {
                    *value =
                        (*value + ((self.rng.f64() * 2.0 - 1.0) * *step).round()).clamp(0.0, *cap);
                    cols[0].push(Sample {
                        value: *value,
                        timestamp: ts,
                    });
                }
            }
        }
        self.next = until;
        for (labels, samples) in self.labels.iter().zip(cols) {
            out.push(TimeSeries {
                labels: labels.clone(),
                samples,
                ..Default::default()
            });
        }
        n * self.labels.len()
    }
}

/// SplitMix64: a small seeded generator, so the data set follows from the seed alone.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The generator of item `index` of `stream`, independent of the order the items are generated in.
    pub fn derived(seed: u64, stream: u64, index: u64) -> Self {
        let mut r = Rng {
            state: seed
                .wrapping_mul(0xd134_2543_de82_ef95)
                .wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                ^ index.wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
        };
        r.next_u64();
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.state;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Integer in [lo, hi].
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// `base` times a log-uniform factor in [1/spread, spread].
    pub fn spread(&mut self, base: f64, spread: f64) -> f64 {
        base * self.range(-spread.ln(), spread.ln()).exp()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(scale: usize) -> Dataset {
        Dataset {
            scale,
            seed: 7,
            points: 50,
            interval_ms: 15_000,
            end_ms: 1_700_000_100_000,
        }
    }

    #[test]
    fn exact_series_counts_and_unique_labels() {
        let d = ds(2_000);
        let units = d.units();
        let mut names = std::collections::HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for u in &units {
            for l in &u.labels {
                *names.entry(l[0].value.clone()).or_insert(0usize) += 1;
                assert!(seen.insert(format!("{l:?}")), "duplicate series {l:?}");
            }
        }
        assert_eq!(names[&d.x()], 2_000);
        assert_eq!(names[&d.y()], 2_000);
        assert_eq!(names[&d.z()], 2_000);
    }

    #[test]
    fn slicing_does_not_change_values() {
        let d = ds(400);
        let mut a = d.units();
        let mut b = d.units();
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        for u in &mut a {
            u.emit(&d, d.points, &mut out_a);
        }
        for until in [7, 20, 49, 50] {
            for u in &mut b {
                u.emit(&d, until, &mut out_b);
            }
        }
        let flat = |v: &[TimeSeries]| {
            let mut m = std::collections::BTreeMap::new();
            for ts in v {
                m.entry(format!("{:?}", ts.labels))
                    .or_insert_with(Vec::new)
                    .extend(ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())));
            }
            m
        };
        assert_eq!(flat(&out_a), flat(&out_b));
    }

    #[test]
    fn histograms_are_cumulative_and_counters_monotonic_between_resets() {
        let d = ds(400);
        let mut units = d.units();
        for u in &mut units {
            let mut out = Vec::new();
            u.emit(&d, d.points, &mut out);
            if out.len() == LE.len() {
                for i in 0..d.points {
                    for k in 1..LE.len() {
                        assert!(out[k].samples[i].value >= out[k - 1].samples[i].value);
                    }
                }
            }
            for ts in &out {
                for (i, w) in ts.samples.windows(2).enumerate() {
                    assert_eq!(w[1].timestamp - w[0].timestamp, 15_000);
                    if ts.labels[0].value.starts_with('x') && u.reboot != Some(i + 1) {
                        assert!(w[1].value >= w[0].value);
                    }
                }
            }
        }
    }

    /// Pins the generated data: a change of the generator changes the benchmark's data set, and the figures in
    /// docs/benchmarks.md no longer apply.
    #[test]
    fn data_set_is_stable() {
        let d = ds(400);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            h ^= x;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        for u in &mut d.units() {
            let mut out = Vec::new();
            u.emit(&d, d.points, &mut out);
            for ts in out {
                for l in &ts.labels {
                    l.name
                        .bytes()
                        .chain(l.value.bytes())
                        .for_each(|b| eat(u64::from(b)));
                }
                for s in &ts.samples {
                    eat(s.timestamp as u64);
                    eat(s.value.to_bits());
                }
            }
        }
        assert_eq!(h, 0x5c1a_898e_66f4_130a, "fingerprint {h:#x}");
    }
}
