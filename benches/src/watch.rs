//! The processes of a target (one, or several for a cluster): RSS before, after and at peak, and
//! CPU time during the run, per process and summed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::procfs::{self, Mem};

/// A `--pid` argument: `PID` or `NAME=PID`.
pub fn parse_spec(spec: &str) -> Result<(String, u32)> {
    let (name, pid) = match spec.split_once('=') {
        Some((n, p)) => (n.trim().to_string(), p.trim()),
        None => (spec.trim().to_string(), spec.trim()),
    };
    let pid: u32 = pid
        .parse()
        .with_context(|| format!("--pid {spec:?}: expected PID or NAME=PID"))?;
    Ok((name, pid))
}

/// One watched process.
#[derive(Debug)]
struct Proc {
    name: String,
    pid: u32,
    mem_before: Option<Mem>,
    cpu_before: Option<f64>,
    cpu_run_end: Mutex<Option<f64>>,
    peak_sampled: AtomicU64,
}

impl Proc {
    fn run_cpu(&self) -> Option<f64> {
        let end = *self.cpu_run_end.lock().unwrap_or_else(|e| e.into_inner());
        end.zip(self.cpu_before).map(|(b, a)| b - a)
    }
}

/// The processes whose memory and CPU make up the target (`measured`), and others of the same
/// system (`aux`, e.g. a cluster's meta voters) whose CPU belongs to the run, not to
/// disturbances, but whose memory is not the figure asked for.
#[derive(Debug)]
pub struct Watch {
    measured: Vec<Proc>,
    aux: Vec<Proc>,
    /// The highest sum of the measured RSS seen by the sampler.
    peak_sum_sampled: AtomicU64,
}

impl Watch {
    /// Reads the "before" figures; fails if a measured process cannot be read.
    pub fn start(measured: &[(String, u32)], aux: &[(String, u32)]) -> Result<Self> {
        let open = |(name, pid): &(String, u32)| Proc {
            name: name.clone(),
            pid: *pid,
            mem_before: procfs::mem(*pid),
            cpu_before: procfs::cpu_seconds(&pid.to_string()),
            cpu_run_end: Mutex::new(None),
            peak_sampled: AtomicU64::new(procfs::mem(*pid).map_or(0, |m| m.rss)),
        };
        for (name, pid) in measured {
            procfs::mem(*pid)
                .with_context(|| format!("cannot read /proc/{pid}/status ({name})"))?;
        }
        let measured: Vec<Proc> = measured.iter().map(open).collect();
        let sum = measured
            .iter()
            .map(|p| p.mem_before.map_or(0, |m| m.rss))
            .sum();
        Ok(Self {
            measured,
            aux: aux.iter().map(open).collect(),
            peak_sum_sampled: AtomicU64::new(sum),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.measured.is_empty()
    }

    /// One sample of every measured process's RSS.
    fn sample(&self) {
        let mut sum = 0;
        for p in &self.measured {
            if let Some(m) = procfs::mem(p.pid) {
                p.peak_sampled.fetch_max(m.rss, Ordering::Relaxed);
                sum += m.rss;
            }
        }
        self.peak_sum_sampled.fetch_max(sum, Ordering::Relaxed);
    }

    /// Samples every 200 ms on a thread until the returned flag is set.
    pub fn sampler(self: &Arc<Self>) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (self.clone(), stop.clone());
        let h = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                me.sample();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        (stop, h)
    }

    /// CPU seconds used since the start by the measured processes and by the auxiliary ones.
    pub fn cpu_since_start(&self) -> (Option<f64>, Option<f64>) {
        let sum = |procs: &[Proc]| {
            procs
                .iter()
                .map(|p| {
                    p.cpu_before
                        .zip(procfs::cpu_seconds(&p.pid.to_string()))
                        .map(|(a, b)| b - a)
                })
                .sum::<Option<f64>>()
        };
        (sum(&self.measured), sum(&self.aux))
    }

    /// Remembers each process's CPU time at the end of the sending (before the settle time).
    pub fn mark_run_end(&self) {
        for p in self.measured.iter().chain(&self.aux) {
            *p.cpu_run_end.lock().unwrap_or_else(|e| e.into_inner()) =
                procfs::cpu_seconds(&p.pid.to_string());
        }
    }

    /// The figures after the settle time: sums over the measured processes (`None` if one of
    /// them could not be read) and one entry per process.
    pub fn finish(&self) -> Figures {
        self.sample();
        let mut f = Figures {
            rss_before: Some(0),
            rss_after: Some(0),
            rss_peak: 0,
            rss_peak_sum_sampled: self.peak_sum_sampled.load(Ordering::Relaxed),
            per_pid: Vec::new(),
            aux: Vec::new(),
            gone: Vec::new(),
        };
        for p in &self.measured {
            let after = procfs::mem(p.pid);
            if after.is_none() {
                f.gone.push(format!("{} ({})", p.name, p.pid));
            }
            let peak = match after {
                Some(m) => m.hwm.max(p.peak_sampled.load(Ordering::Relaxed)),
                None => p.peak_sampled.load(Ordering::Relaxed),
            };
            f.rss_before = f.rss_before.zip(p.mem_before).map(|(s, m)| s + m.rss);
            f.rss_after = f.rss_after.zip(after).map(|(s, m)| s + m.rss);
            f.rss_peak += peak;
            f.per_pid.push(json!({
                "name": p.name,
                "pid": p.pid,
                "rss_before_bytes": p.mem_before.map(|m| m.rss),
                "rss_peak_bytes": peak,
                "rss_after_bytes": after.map(|m| m.rss),
                "cpu_s_run": round3(p.run_cpu()),
                "cpu_s_incl_settle": round3(
                    procfs::cpu_seconds(&p.pid.to_string())
                        .zip(p.cpu_before)
                        .map(|(b, a)| b - a)
                ),
            }));
        }
        for p in &self.aux {
            f.aux.push(json!({
                "name": p.name,
                "pid": p.pid,
                "rss_after_bytes": procfs::mem(p.pid).map(|m| m.rss),
                "cpu_s_run": round3(p.run_cpu()),
            }));
        }
        f
    }
}

fn round3(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!((x * 1000.0).round() / 1000.0))
}

/// Memory figures of a run (bytes) and the per-process entries of the result line.
#[derive(Debug)]
pub struct Figures {
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    /// Sum of each process's own peak (VmHWM or the highest sample): an upper bound of the
    /// peak of the sum.
    pub rss_peak: u64,
    /// The highest sum of the measured processes' RSS seen by the 200 ms sampler.
    pub rss_peak_sum_sampled: u64,
    pub per_pid: Vec<Value>,
    pub aux: Vec<Value>,
    /// Measured processes that were gone at the end.
    pub gone: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_specs() {
        assert_eq!(parse_spec("123").unwrap(), ("123".to_string(), 123));
        assert_eq!(
            parse_spec("ingester-1=456").unwrap(),
            ("ingester-1".to_string(), 456)
        );
        assert!(parse_spec("ingester-1").is_err());
        assert!(parse_spec("a=b").is_err());
    }

    #[test]
    fn watching_this_process_sums_and_lists_it() {
        let me = std::process::id();
        let w = Watch::start(
            &[("a".to_string(), me), ("b".to_string(), me)],
            &[("aux".to_string(), me)],
        )
        .unwrap();
        w.sample();
        w.mark_run_end();
        let f = w.finish();
        assert_eq!(f.per_pid.len(), 2);
        assert_eq!(f.aux.len(), 1);
        assert!(f.gone.is_empty());
        let one = f.per_pid[0]["rss_after_bytes"].as_u64().unwrap();
        assert!(one > 0);
        // Twice the same process: the sums are about twice one reading (RSS moves a little).
        let after = f.rss_after.unwrap();
        assert!(after >= one && after <= 3 * one, "{after} vs {one}");
        // Each process's own peak covers its share of the highest sum.
        assert!(f.rss_peak >= f.rss_peak_sum_sampled);
        assert_eq!(f.per_pid[1]["name"], "b");
    }

    #[test]
    fn a_missing_process_is_refused() {
        // Pid 0 never has a /proc entry.
        assert!(Watch::start(&[("x".to_string(), 0)], &[]).is_err());
    }
}
