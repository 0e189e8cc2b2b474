//! Memory and CPU figures of a process from /proc.

use std::fs;

#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    /// VmRSS, bytes.
    pub rss: u64,
    /// VmHWM (peak RSS since the process started), bytes.
    pub hwm: u64,
}

pub fn mem(pid: u32) -> Option<Mem> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = Mem::default();
    let mut seen = 0;
    for line in status.lines() {
        let field = if line.starts_with("VmRSS:") {
            &mut m.rss
        } else if line.starts_with("VmHWM:") {
            &mut m.hwm
        } else {
            continue;
        };
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        *field = kb * 1024;
        seen += 1;
    }
    (seen == 2).then_some(m)
}

/// User + system CPU seconds used so far by `pid` ("self" for this process), all threads.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are separated by single spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((utime + stime) / 100.0)
}

/// CPU seconds the whole machine has spent so far (all CPUs) in processes (user + nice + system) and in
/// interrupts (irq + softirq). Interrupt time is charged to no process: over loopback it is mostly the network
/// stack receiving the requests, so it belongs to the run and is kept apart from "other processes".
pub fn machine_cpu_seconds() -> Option<(f64, f64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let tasks = v.first()? + v.get(1)? + v.get(2)?;
    let irq = v.get(5)? + v.get(6)?;
    Some((tasks / 100.0, irq / 100.0))
}

/// Busy CPU seconds of the whole machine so far (all CPUs; user, nice, system, irq, softirq, steal).
/// (Used by query-bench; ingest-bench uses [`machine_cpu_seconds`], which keeps interrupt time apart.)
#[allow(dead_code)]
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy =
        v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0.0);
    Some(busy / 100.0)
}

/// CPU seconds the hypervisor has stolen from this machine so far (all CPUs).
pub fn machine_steal_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let steal: f64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(steal / 100.0)
}
