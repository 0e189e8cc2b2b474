//! Synthetic series shaped like what Prometheus scrapes from node_exporter on a fleet of Linux hosts.
//!
//! Every host gets `instance="<hostname>:9100"` and `job="node"`, the usual families (cpu, cpufreq, meminfo,
//! netdev/netclass, diskstats, filesystem, loadavg, stat, vmstat, netstat, sockstat, timex, hwmon, pressure,
//! uname/os info, per-collector scrape metrics, the exporter's own go_/process_/promhttp_ metrics) and the five
//! series Prometheus adds per target (`up`, `scrape_*`). Hosts differ in CPU count, disks, network interfaces
//! and mounts, so a host has from roughly 480 to 1,500 series (about 725 on average).

use crate::rng::Rng;

/// How a series' value evolves from one scrape to the next.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Monotonic counter growing by about `rate` per second (with jitter).
    Counter { rate: f64 },
    /// Random walk of up to `step` per scrape, clamped to `[min, max]`.
    Gauge { step: f64, min: f64, max: f64 },
    /// Never changes (info metrics, sizes, limits, zero error counters...).
    Constant,
}

#[derive(Clone, Debug)]
pub struct SeriesSpec {
    /// Sorted by name (so `__name__` first), names unique.
    pub labels: Vec<(String, String)>,
    pub kind: Kind,
    pub initial: f64,
    /// Emitted values are multiples of this (1 for integer counters, 0.01 for CPU seconds); 0 = not rounded.
    pub quantum: f64,
    /// Index into the host list.
    pub host: u32,
}

#[derive(Clone, Debug)]
pub struct Host {
    /// Scrape offset within the interval: Prometheus spreads targets' scrapes over the interval.
    pub offset_ms: i64,
}

/// Generates exactly `n` series from as many hosts as needed (the last host is cut short), hosts ordered by
/// their scrape offset, series ordered as a scrape of the host returns them.
pub fn generate(n: usize, seed: u64, interval_ms: i64) -> (Vec<SeriesSpec>, Vec<Host>) {
    let mut series = Vec::with_capacity(n + 2_000);
    let mut hosts = Vec::new();
    let mut rng = Rng::derived(seed, 1, 0);
    while series.len() < n {
        let host_idx = hosts.len() as u32;
        let instance = hostname(&mut rng, host_idx);
        let mut b = HostBuilder {
            host: host_idx,
            instance: format!("{instance}:9100"),
            hostname: instance,
            rng: Rng::derived(seed, 2, u64::from(host_idx)),
            out: &mut series,
        };
        b.build();
        hosts.push(Host { offset_ms: 0 });
    }
    series.truncate(n);
    // Offsets increase with the host index so that, within a round, series are already in time order.
    let nh = hosts.len() as i64;
    let slot = (interval_ms / nh.max(1)).max(1);
    for (i, h) in hosts.iter_mut().enumerate() {
        h.offset_ms = (i as i64 * interval_ms / nh.max(1) + rng.below(slot as u64) as i64)
            .min(interval_ms - 1);
    }
    (series, hosts)
}

fn hostname(rng: &mut Rng, idx: u32) -> String {
    const ROLES: &[&str] = &[
        "web", "api", "db", "cache", "worker", "kafka", "k8s-node", "k8s-node", "k8s-node",
        "ingest", "search", "lb",
    ];
    const DCS: &[&str] = &["fra1", "ams3", "iad2", "sfo2", "sgp1"];
    let role = rng.pick(ROLES);
    let dc = rng.pick(DCS);
    format!("{role}-{idx:04}.{dc}.prod.example.internal")
}

struct HostBuilder<'a> {
    host: u32,
    instance: String,
    hostname: String,
    rng: Rng,
    out: &'a mut Vec<SeriesSpec>,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl HostBuilder<'_> {
    fn push(&mut self, name: &str, extra: &[(&str, &str)], kind: Kind, initial: f64, quantum: f64) {
        let mut labels = Vec::with_capacity(extra.len() + 3);
        labels.push(("__name__".to_string(), name.to_string()));
        labels.push(("instance".to_string(), self.instance.clone()));
        labels.push(("job".to_string(), "node".to_string()));
        for (k, v) in extra {
            labels.push(((*k).to_string(), (*v).to_string()));
        }
        labels.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        debug_assert!(
            labels.windows(2).all(|w| w[0].0 != w[1].0),
            "duplicate label in {name}"
        );
        self.out.push(SeriesSpec {
            labels,
            kind,
            initial,
            quantum,
            host: self.host,
        });
    }

    /// A counter growing by about `rate`/s (randomised per series), started at `rate × uptime`.
    fn counter(
        &mut self,
        name: &str,
        extra: &[(&str, &str)],
        rate: f64,
        quantum: f64,
        uptime_s: f64,
    ) {
        let rate = if rate > 0.0 {
            self.rng.spread(rate, 3.0)
        } else {
            0.0
        };
        let initial = rate * uptime_s * self.rng.range(0.8, 1.2);
        let initial = if quantum > 0.0 {
            (initial / quantum).floor() * quantum
        } else {
            initial
        };
        let kind = if rate > 0.0 {
            Kind::Counter { rate }
        } else {
            Kind::Constant
        };
        self.push(name, extra, kind, initial, quantum);
    }

    /// A gauge starting near `value`, moving up to `step_frac × value` per scrape, within `[min, max]`.
    #[allow(clippy::too_many_arguments)]
    fn gauge(
        &mut self,
        name: &str,
        extra: &[(&str, &str)],
        value: f64,
        step_frac: f64,
        min: f64,
        max: f64,
        quantum: f64,
    ) {
        let value = value.clamp(min, max);
        let step = (value.abs() * step_frac).max(quantum);
        self.push(name, extra, Kind::Gauge { step, min, max }, value, quantum);
    }

    fn constant(&mut self, name: &str, extra: &[(&str, &str)], value: f64) {
        self.push(name, extra, Kind::Constant, value, 0.0);
    }

    fn build(&mut self) {
        let r = &mut self.rng;
        let ncpu = *r.pick(&[2u32, 4, 4, 8, 8, 8, 16, 16, 32]);
        let mem_total = f64::from(ncpu) * *r.pick(&[2.0, 4.0, 8.0]) * GIB;
        let uptime_s = r.range(3_600.0, 200.0 * 86_400.0);
        let boot_time = 1.7e9 - uptime_s;
        let nvme = r.chance(0.6);
        let ndisks = r.between(1, 3) as usize;
        let k8s = self.hostname.starts_with("k8s-node");
        let docker = k8s || r.chance(0.3);
        let nveth = if k8s { r.between(3, 12) as usize } else { 0 };
        let primary_if = *r.pick(&["eth0", "ens5", "eno1", "enp3s0"]);
        let data_mount = r.chance(0.5);

        self.cpu(ncpu, uptime_s);
        self.memory(mem_total);
        self.load_and_stat(ncpu, uptime_s, boot_time);

        let mut ifaces: Vec<String> = vec![primary_if.to_string(), "lo".to_string()];
        if docker {
            ifaces.push("docker0".to_string());
        }
        for _ in 0..nveth {
            let id = self.rng.next_u64();
            ifaces.push(format!("veth{:07x}", id & 0xfff_ffff));
        }
        for (i, dev) in ifaces.iter().enumerate() {
            let speed = if dev == "lo" || dev.starts_with("veth") || dev == "docker0" {
                0.0
            } else {
                1.25e9
            };
            self.network(dev, i, speed, uptime_s);
        }

        let mut disks = Vec::new();
        for i in 0..ndisks {
            disks.push(if nvme {
                format!("nvme{i}n1")
            } else {
                format!("sd{}", (b'a' + i as u8) as char)
            });
        }
        if self.rng.chance(0.3) {
            disks.push("dm-0".to_string());
        }
        for (i, d) in disks.iter().enumerate() {
            self.disk(d, i, uptime_s);
        }

        let root_dev = if nvme { "/dev/nvme0n1p2" } else { "/dev/sda2" };
        let boot_dev = if nvme { "/dev/nvme0n1p1" } else { "/dev/sda1" };
        let mut mounts: Vec<(&str, &str, &str, f64)> = vec![
            (root_dev, "ext4", "/", self.rng.range(30.0, 500.0) * GIB),
            (boot_dev, "vfat", "/boot/efi", 0.5 * GIB),
            ("tmpfs", "tmpfs", "/run", mem_total / 10.0),
            ("tmpfs", "tmpfs", "/run/lock", 5.0 * 1024.0 * 1024.0),
            ("tmpfs", "tmpfs", "/run/user/1000", mem_total / 10.0),
        ];
        if docker {
            mounts.push((
                "overlay",
                "overlay",
                "/var/lib/docker/overlay2",
                self.rng.range(50.0, 200.0) * GIB,
            ));
        }
        if data_mount {
            let dev = if nvme { "/dev/nvme1n1" } else { "/dev/sdb1" };
            mounts.push((dev, "xfs", "/data", self.rng.range(500.0, 4_000.0) * GIB));
        }
        for (dev, fstype, mnt, size) in mounts {
            self.filesystem(dev, fstype, mnt, size);
        }

        self.kernel_misc(uptime_s, boot_time, &ifaces);
        self.exporter_self(uptime_s);
        self.scrape_meta();
    }

    fn cpu(&mut self, ncpu: u32, up: f64) {
        // Share of busy time per mode; idle takes the rest, so a CPU's modes add up to 1 s/s.
        const BUSY: &[(&str, f64)] = &[
            ("iowait", 0.04),
            ("irq", 0.0),
            ("nice", 0.005),
            ("softirq", 0.03),
            ("steal", 0.02),
            ("system", 0.205),
            ("user", 0.70),
        ];
        let util = self.rng.range(0.03, 0.7);
        let max_hz = *self.rng.pick(&[2.6e9, 3.0e9, 3.5e9]);
        for c in 0..ncpu {
            let cpu = c.to_string();
            let cpu_util = (util * self.rng.range(0.7, 1.3)).min(0.98);
            let idle = 1.0 - cpu_util;
            let jitter = self.rng.range(0.97, 1.0);
            self.push(
                "node_cpu_seconds_total",
                &[("cpu", &cpu), ("mode", "idle")],
                Kind::Counter { rate: idle },
                (idle * up * jitter * 100.0).floor() / 100.0,
                0.01,
            );
            for (mode, share) in BUSY {
                let rate = cpu_util * share;
                let kind = if rate > 0.0 {
                    Kind::Counter { rate }
                } else {
                    Kind::Constant
                };
                self.push(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu), ("mode", mode)],
                    kind,
                    (rate * up * jitter * 100.0).floor() / 100.0,
                    0.01,
                );
            }
            for mode in ["nice", "user"] {
                self.counter(
                    "node_cpu_guest_seconds_total",
                    &[("cpu", &cpu), ("mode", mode)],
                    0.0,
                    0.01,
                    up,
                );
            }
            self.gauge(
                "node_cpu_scaling_frequency_hertz",
                &[("cpu", &cpu)],
                max_hz * 0.7,
                0.2,
                8e8,
                max_hz,
                1000.0,
            );
            self.constant(
                "node_cpu_scaling_frequency_max_hertz",
                &[("cpu", &cpu)],
                max_hz,
            );
            self.constant(
                "node_cpu_scaling_frequency_min_hertz",
                &[("cpu", &cpu)],
                8e8,
            );
            self.counter(
                "node_softnet_processed_total",
                &[("cpu", &cpu)],
                300.0,
                1.0,
                up,
            );
            self.counter("node_softnet_dropped_total", &[("cpu", &cpu)], 0.0, 1.0, up);
            self.counter(
                "node_softnet_times_squeezed_total",
                &[("cpu", &cpu)],
                0.01,
                1.0,
                up,
            );
            self.counter(
                "node_schedstat_running_seconds_total",
                &[("cpu", &cpu)],
                0.2,
                0.0,
                up,
            );
            self.counter(
                "node_schedstat_timeslices_total",
                &[("cpu", &cpu)],
                500.0,
                1.0,
                up,
            );
            self.counter(
                "node_schedstat_waiting_seconds_total",
                &[("cpu", &cpu)],
                0.02,
                0.0,
                up,
            );
        }
    }

    fn memory(&mut self, total: f64) {
        self.constant("node_memory_MemTotal_bytes", &[], total);
        self.constant("node_memory_SwapTotal_bytes", &[], 0.0);
        self.constant("node_memory_SwapFree_bytes", &[], 0.0);
        self.constant("node_memory_SwapCached_bytes", &[], 0.0);
        self.constant("node_memory_CommitLimit_bytes", &[], total / 2.0);
        self.constant("node_memory_VmallocTotal_bytes", &[], 35_184_372_087_808.0);
        self.constant("node_memory_Hugepagesize_bytes", &[], 2_097_152.0);
        self.constant(
            "node_memory_DirectMap1G_bytes",
            &[],
            (total / GIB).floor() * GIB * 0.75,
        );
        self.constant("node_memory_DirectMap2M_bytes", &[], total * 0.2);
        self.constant("node_memory_DirectMap4k_bytes", &[], 300_000_000.0);
        for zero in [
            "Bounce",
            "HardwareCorrupted",
            "NFS_Unstable",
            "WritebackTmp",
            "ShmemHugePages",
            "ShmemPmdMapped",
            "FileHugePages",
            "FilePmdMapped",
        ] {
            self.constant(&format!("node_memory_{zero}_bytes"), &[], 0.0);
        }
        for hp in [
            "HugePages_Free",
            "HugePages_Rsvd",
            "HugePages_Surp",
            "HugePages_Total",
        ] {
            self.constant(&format!("node_memory_{hp}"), &[], 0.0);
        }
        let used = self.rng.range(0.2, 0.8);
        for (name, frac, step) in [
            ("MemFree", 1.0 - used - 0.15, 0.02),
            ("MemAvailable", 1.0 - used, 0.01),
            ("Cached", 0.15, 0.005),
            ("Buffers", 0.01, 0.005),
            ("Active", used * 0.6, 0.01),
            ("Active_anon", used * 0.5, 0.01),
            ("Active_file", used * 0.1, 0.01),
            ("Inactive", used * 0.3, 0.01),
            ("Inactive_anon", used * 0.1, 0.01),
            ("Inactive_file", used * 0.2, 0.01),
            ("AnonPages", used * 0.6, 0.01),
            ("AnonHugePages", used * 0.05, 0.02),
            ("Mapped", 0.02, 0.01),
            ("Shmem", 0.005, 0.01),
            ("Slab", 0.03, 0.005),
            ("SReclaimable", 0.02, 0.005),
            ("SUnreclaim", 0.01, 0.005),
            ("KReclaimable", 0.02, 0.005),
            ("KernelStack", 0.001, 0.01),
            ("PageTables", 0.003, 0.01),
            ("Percpu", 0.0005, 0.0),
            ("Committed_AS", used * 1.2, 0.01),
            ("Dirty", 0.0001, 0.5),
            ("Writeback", 0.0, 1.0),
            ("Mlocked", 0.0, 0.0),
            ("Unevictable", 0.0002, 0.0),
            ("VmallocUsed", 0.001, 0.001),
            ("VmallocChunk", 0.0, 0.0),
        ] {
            let v = (total * frac / 4096.0).floor() * 4096.0;
            if step == 0.0 {
                self.constant(&format!("node_memory_{name}_bytes"), &[], v);
            } else {
                self.gauge(
                    &format!("node_memory_{name}_bytes"),
                    &[],
                    v,
                    step,
                    0.0,
                    total,
                    4096.0,
                );
            }
        }
    }

    fn load_and_stat(&mut self, ncpu: u32, up: f64, boot_time: f64) {
        let load = f64::from(ncpu) * self.rng.range(0.05, 0.7);
        let max = f64::from(ncpu) * 4.0;
        self.gauge("node_load1", &[], load, 0.15, 0.0, max, 0.01);
        self.gauge("node_load5", &[], load, 0.05, 0.0, max, 0.01);
        self.gauge("node_load15", &[], load, 0.02, 0.0, max, 0.01);
        self.constant("node_boot_time_seconds", &[], boot_time.floor());
        self.push(
            "node_time_seconds",
            &[],
            Kind::Counter { rate: 1.0 },
            1.7e9,
            0.0,
        );
        let n = f64::from(ncpu);
        self.counter("node_context_switches_total", &[], 2_000.0 * n, 1.0, up);
        self.counter("node_intr_total", &[], 1_500.0 * n, 1.0, up);
        self.counter("node_forks_total", &[], 20.0, 1.0, up);
        self.gauge(
            "node_procs_running",
            &[],
            n * 0.3 + 1.0,
            0.5,
            1.0,
            n * 4.0,
            1.0,
        );
        self.gauge("node_procs_blocked", &[], 0.0, 0.0, 0.0, 5.0, 1.0);
    }

    fn network(&mut self, dev: &str, idx: usize, speed: f64, up: f64) {
        let d = &[("device", dev)];
        let busy = if dev == "lo" {
            2e5
        } else if dev.starts_with("veth") {
            5e4
        } else {
            3e6
        };
        for (name, rate) in [
            ("receive_bytes", busy),
            ("receive_packets", busy / 800.0),
            ("receive_errs", 0.0),
            ("receive_drop", 0.001),
            ("receive_fifo", 0.0),
            ("receive_frame", 0.0),
            ("receive_compressed", 0.0),
            ("receive_multicast", 0.05),
            ("transmit_bytes", busy * 0.8),
            ("transmit_packets", busy / 900.0),
            ("transmit_errs", 0.0),
            ("transmit_drop", 0.0),
            ("transmit_fifo", 0.0),
            ("transmit_colls", 0.0),
            ("transmit_carrier", 0.0),
            ("transmit_compressed", 0.0),
        ] {
            self.counter(&format!("node_network_{name}_total"), d, rate, 1.0, up);
        }
        let ifindex = (idx + 1) as f64;
        for (name, v) in [
            ("up", if dev == "lo" { 0.0 } else { 1.0 }),
            ("mtu_bytes", if dev == "lo" { 65_536.0 } else { 1_500.0 }),
            ("carrier", 1.0),
            ("transmit_queue_length", 1_000.0),
            ("iface_id", ifindex),
            ("iface_link", ifindex),
            ("iface_link_mode", 0.0),
            ("flags", 4_099.0),
            ("address_assign_type", 0.0),
            ("device_id", 0.0),
            ("dormant", 0.0),
            ("net_dev_group", 0.0),
            ("protocol_type", if dev == "lo" { 772.0 } else { 1.0 }),
            ("carrier_changes_total", 2.0),
        ] {
            self.constant(&format!("node_network_{name}"), d, v);
        }
        if speed > 0.0 {
            self.constant("node_network_speed_bytes", d, speed);
        }
        let mac = format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256)
        );
        let (address, broadcast) = if dev == "lo" {
            ("00:00:00:00:00:00".to_string(), "00:00:00:00:00:00")
        } else {
            (mac, "ff:ff:ff:ff:ff:ff")
        };
        self.constant(
            "node_network_info",
            &[
                ("address", &address),
                ("adminstate", "up"),
                ("broadcast", broadcast),
                ("device", dev),
                ("duplex", if speed > 0.0 { "full" } else { "" }),
                ("ifalias", ""),
                ("operstate", if dev == "lo" { "unknown" } else { "up" }),
            ],
            1.0,
        );
    }

    fn disk(&mut self, dev: &str, idx: usize, up: f64) {
        let d = &[("device", dev)];
        let iops = self.rng.spread(50.0, 5.0);
        for (name, rate, q) in [
            ("reads_completed_total", iops * 0.3, 1.0),
            ("reads_merged_total", iops * 0.01, 1.0),
            ("read_bytes_total", iops * 0.3 * 16_384.0, 512.0),
            ("read_time_seconds_total", iops * 0.3 * 0.0005, 0.001),
            ("writes_completed_total", iops * 0.7, 1.0),
            ("writes_merged_total", iops * 0.2, 1.0),
            ("written_bytes_total", iops * 0.7 * 8_192.0, 512.0),
            ("write_time_seconds_total", iops * 0.7 * 0.001, 0.001),
            ("io_time_seconds_total", 0.05, 0.001),
            ("io_time_weighted_seconds_total", 0.08, 0.001),
            ("discards_completed_total", 0.01, 1.0),
            ("discards_merged_total", 0.0, 1.0),
            ("discarded_sectors_total", 20.0, 1.0),
            ("discard_time_seconds_total", 0.0001, 0.001),
            ("flush_requests_total", iops * 0.05, 1.0),
            ("flush_requests_time_seconds_total", 0.001, 0.001),
        ] {
            self.counter(&format!("node_disk_{name}"), d, rate, q, up);
        }
        self.gauge("node_disk_io_now", d, 0.0, 0.0, 0.0, 8.0, 1.0);
        let major = if dev.starts_with("nvme") {
            "259"
        } else if dev.starts_with("dm") {
            "253"
        } else {
            "8"
        };
        let minor = (idx * 16).to_string();
        self.constant(
            "node_disk_info",
            &[
                ("device", dev),
                ("major", major),
                ("minor", &minor),
                ("path", ""),
                ("revision", ""),
                ("serial", ""),
            ],
            1.0,
        );
    }

    fn filesystem(&mut self, dev: &str, fstype: &str, mnt: &str, size: f64) {
        let l = &[("device", dev), ("fstype", fstype), ("mountpoint", mnt)];
        let size = (size / 4096.0).floor() * 4096.0;
        let free = size * self.rng.range(0.1, 0.9);
        self.constant("node_filesystem_size_bytes", l, size);
        self.gauge(
            "node_filesystem_free_bytes",
            l,
            free,
            0.0005,
            0.0,
            size,
            4096.0,
        );
        self.gauge(
            "node_filesystem_avail_bytes",
            l,
            free * 0.95,
            0.0005,
            0.0,
            size,
            4096.0,
        );
        let files = (size / 16_384.0).floor();
        self.constant("node_filesystem_files", l, files);
        self.gauge(
            "node_filesystem_files_free",
            l,
            files * 0.9,
            0.00001,
            0.0,
            files,
            1.0,
        );
        self.constant("node_filesystem_readonly", l, 0.0);
        self.constant("node_filesystem_device_error", l, 0.0);
    }

    fn kernel_misc(&mut self, up: f64, boot_time: f64, ifaces: &[String]) {
        let hn = self.hostname.clone();
        let short = hn.split('.').next().unwrap_or(&hn).to_string();
        self.constant(
            "node_uname_info",
            &[
                ("domainname", "(none)"),
                ("machine", "x86_64"),
                ("nodename", &short),
                ("release", "6.1.0-18-amd64"),
                ("sysname", "Linux"),
                (
                    "version",
                    "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
                ),
            ],
            1.0,
        );
        self.constant(
            "node_os_info",
            &[
                ("build_id", ""),
                ("id", "debian"),
                ("id_like", ""),
                ("image_id", ""),
                ("image_version", ""),
                ("name", "Debian GNU/Linux"),
                ("pretty_name", "Debian GNU/Linux 12 (bookworm)"),
                ("variant", ""),
                ("variant_id", ""),
                ("version", "12 (bookworm)"),
                ("version_codename", "bookworm"),
                ("version_id", "12"),
            ],
            1.0,
        );
        self.constant(
            "node_os_version",
            &[
                ("id", "debian"),
                ("id_like", ""),
                ("name", "Debian GNU/Linux"),
            ],
            12.0,
        );
        self.constant(
            "node_exporter_build_info",
            &[
                ("branch", "debian/sid"),
                ("goarch", "amd64"),
                ("goos", "linux"),
                ("goversion", "go1.19.8"),
                ("revision", "1.5.0-1+b6"),
                ("tags", "netgo osusergo static_build"),
                ("version", "1.5.0"),
            ],
            1.0,
        );
        self.gauge(
            "node_entropy_available_bits",
            &[],
            256.0,
            0.0,
            256.0,
            256.0,
            1.0,
        );
        self.constant("node_entropy_pool_size_bits", &[], 256.0);
        let v0 = self.rng.range(1_000.0, 20_000.0);
        self.gauge("node_filefd_allocated", &[], v0, 0.01, 0.0, 1e7, 1.0);
        self.constant("node_filefd_maximum", &[], 9_223_372_036_854_775_807.0);
        let v0 = self.rng.range(100.0, 50_000.0);
        self.gauge(
            "node_nf_conntrack_entries",
            &[],
            v0,
            0.02,
            0.0,
            262_144.0,
            1.0,
        );
        self.constant("node_nf_conntrack_entries_limit", &[], 262_144.0);
        self.constant("node_textfile_scrape_error", &[], 0.0);
        self.constant("node_selinux_enabled", &[], 0.0);
        for dev in ifaces.iter().take(1) {
            self.gauge(
                "node_arp_entries",
                &[("device", dev)],
                12.0,
                0.1,
                1.0,
                200.0,
                1.0,
            );
        }
        for (name, rate) in [
            ("pgfault", 3_000.0),
            ("pgmajfault", 0.5),
            ("pgpgin", 200.0),
            ("pgpgout", 800.0),
        ] {
            self.counter(&format!("node_vmstat_{name}"), &[], rate, 1.0, up);
        }
        for name in ["pswpin", "pswpout", "oom_kill"] {
            self.counter(&format!("node_vmstat_{name}"), &[], 0.0, 1.0, up);
        }
        for (name, rate) in [
            ("Icmp_InErrors", 0.0),
            ("Icmp_InMsgs", 0.5),
            ("Icmp_OutMsgs", 0.5),
            ("Icmp6_InErrors", 0.0),
            ("Icmp6_InMsgs", 0.2),
            ("Icmp6_OutMsgs", 0.2),
            ("Ip6_InOctets", 100.0),
            ("Ip6_OutOctets", 100.0),
            ("IpExt_InOctets", 3e6),
            ("IpExt_OutOctets", 2.5e6),
            ("Tcp_ActiveOpens", 20.0),
            ("Tcp_InErrs", 0.0),
            ("Tcp_InSegs", 3_000.0),
            ("Tcp_OutRsts", 1.0),
            ("Tcp_OutSegs", 3_000.0),
            ("Tcp_PassiveOpens", 15.0),
            ("Tcp_RetransSegs", 2.0),
            ("TcpExt_ListenDrops", 0.0),
            ("TcpExt_ListenOverflows", 0.0),
            ("TcpExt_SyncookiesFailed", 0.0),
            ("TcpExt_SyncookiesRecv", 0.0),
            ("TcpExt_SyncookiesSent", 0.0),
            ("TcpExt_TCPSynRetrans", 0.1),
            ("TcpExt_TCPTimeouts", 0.5),
            ("Udp_InDatagrams", 50.0),
            ("Udp_InErrors", 0.0),
            ("Udp_NoPorts", 0.1),
            ("Udp_OutDatagrams", 50.0),
            ("Udp_RcvbufErrors", 0.0),
            ("Udp_SndbufErrors", 0.0),
            ("Udp6_InDatagrams", 1.0),
            ("Udp6_InErrors", 0.0),
            ("Udp6_NoPorts", 0.0),
            ("Udp6_OutDatagrams", 1.0),
            ("Udp6_RcvbufErrors", 0.0),
            ("Udp6_SndbufErrors", 0.0),
            ("UdpLite_InErrors", 0.0),
            ("UdpLite6_InErrors", 0.0),
        ] {
            self.counter(&format!("node_netstat_{name}"), &[], rate, 1.0, up);
        }
        let v0 = self.rng.range(10.0, 2_000.0);
        self.gauge("node_netstat_Tcp_CurrEstab", &[], v0, 0.05, 0.0, 1e6, 1.0);
        for (name, v) in [
            ("sockets_used", 800.0),
            ("TCP_alloc", 300.0),
            ("TCP_inuse", 200.0),
            ("TCP_mem", 50.0),
            ("TCP_mem_bytes", 204_800.0),
            ("TCP_orphan", 0.0),
            ("TCP_tw", 40.0),
            ("UDP_inuse", 5.0),
            ("UDP_mem", 2.0),
            ("UDP_mem_bytes", 8_192.0),
            ("TCP6_inuse", 10.0),
            ("UDP6_inuse", 2.0),
        ] {
            self.gauge(
                &format!("node_sockstat_{name}"),
                &[],
                v,
                0.05,
                0.0,
                1e9,
                1.0,
            );
        }
        for name in [
            "FRAG_inuse",
            "FRAG_memory",
            "RAW_inuse",
            "UDPLITE_inuse",
            "FRAG6_inuse",
            "FRAG6_memory",
            "RAW6_inuse",
            "UDPLITE6_inuse",
        ] {
            self.constant(&format!("node_sockstat_{name}"), &[], 0.0);
        }
        for (name, v) in [
            ("estimated_error_seconds", 0.0),
            ("frequency_adjustment_ratio", 1.000_012),
            ("loop_time_constant", 7.0),
            ("maxerror_seconds", 0.3),
            ("offset_seconds", 0.0),
            ("pps_calibration_total", 0.0),
            ("pps_error_total", 0.0),
            ("pps_frequency_hertz", 0.0),
            ("pps_jitter_seconds", 0.0),
            ("pps_jitter_total", 0.0),
            ("pps_shift_seconds", 0.0),
            ("pps_stability_exceeded_total", 0.0),
            ("pps_stability_hertz", 0.0),
            ("status", 8_193.0),
            ("sync_status", 1.0),
            ("tai_offset_seconds", 0.0),
            ("tick_seconds", 0.01),
        ] {
            self.constant(&format!("node_timex_{name}"), &[], v);
        }
        for (name, rate) in [
            ("cpu_waiting", 0.01),
            ("io_stalled", 0.001),
            ("io_waiting", 0.002),
            ("memory_stalled", 0.0),
            ("memory_waiting", 0.0001),
        ] {
            self.counter(
                &format!("node_pressure_{name}_seconds_total"),
                &[],
                rate,
                0.0,
                up,
            );
        }
        let chip = "platform_coretemp_0";
        self.constant(
            "node_hwmon_chip_names",
            &[("chip", chip), ("chip_name", "coretemp")],
            1.0,
        );
        let sensors = self.rng.between(1, 5);
        for s in 1..=sensors {
            let sensor = format!("temp{s}");
            let l = &[("chip", chip), ("sensor", sensor.as_str())];
            let v0 = self.rng.range(35.0, 60.0);
            self.gauge("node_hwmon_temp_celsius", l, v0, 0.03, 20.0, 100.0, 1.0);
            self.constant("node_hwmon_temp_crit_celsius", l, 100.0);
            self.constant("node_hwmon_temp_max_celsius", l, 84.0);
        }
        let _ = boot_time;
    }

    fn exporter_self(&mut self, up: f64) {
        const COLLECTORS: &[&str] = &[
            "arp",
            "bcache",
            "bonding",
            "btrfs",
            "conntrack",
            "cpu",
            "cpufreq",
            "diskstats",
            "dmi",
            "edac",
            "entropy",
            "fibrechannel",
            "filefd",
            "filesystem",
            "hwmon",
            "infiniband",
            "ipvs",
            "loadavg",
            "mdadm",
            "meminfo",
            "netclass",
            "netdev",
            "netstat",
            "nfs",
            "nfsd",
            "nvme",
            "os",
            "powersupplyclass",
            "pressure",
            "rapl",
            "schedstat",
            "selinux",
            "sockstat",
            "softnet",
            "stat",
            "tapestats",
            "textfile",
            "thermal_zone",
            "time",
            "timex",
            "udp_queues",
            "uname",
            "vmstat",
            "xfs",
            "zfs",
        ];
        for c in COLLECTORS {
            let l = &[("collector", *c)];
            let d = self.rng.spread(0.002, 5.0);
            self.gauge(
                "node_scrape_collector_duration_seconds",
                l,
                d,
                0.3,
                1e-5,
                1.0,
                0.0,
            );
            self.constant(
                "node_scrape_collector_success",
                l,
                if *c == "rapl" { 0.0 } else { 1.0 },
            );
        }
        for q in ["0", "0.25", "0.5", "0.75", "1"] {
            let v = 2e-5 * (1.0 + q.parse::<f64>().unwrap_or(0.0) * 10.0);
            self.gauge(
                "go_gc_duration_seconds",
                &[("quantile", q)],
                v,
                0.2,
                1e-6,
                0.1,
                0.0,
            );
        }
        self.counter("go_gc_duration_seconds_sum", &[], 0.0005, 0.0, up);
        self.counter("go_gc_duration_seconds_count", &[], 0.02, 1.0, up);
        self.gauge("go_goroutines", &[], 8.0, 0.1, 5.0, 50.0, 1.0);
        self.constant("go_info", &[("version", "go1.19.8")], 1.0);
        self.gauge("go_threads", &[], 9.0, 0.0, 9.0, 9.0, 1.0);
        for (name, v) in [
            ("alloc_bytes", 3e6),
            ("heap_alloc_bytes", 3e6),
            ("heap_idle_bytes", 5e6),
            ("heap_inuse_bytes", 4.5e6),
            ("heap_objects", 25_000.0),
            ("heap_released_bytes", 3e6),
            ("heap_sys_bytes", 1.2e7),
            ("mcache_inuse_bytes", 4_800.0),
            ("mspan_inuse_bytes", 80_000.0),
            ("mspan_sys_bytes", 130_000.0),
            ("next_gc_bytes", 5.5e6),
            ("other_sys_bytes", 1e6),
            ("stack_inuse_bytes", 600_000.0),
            ("stack_sys_bytes", 600_000.0),
            ("sys_bytes", 2e7),
        ] {
            self.gauge(&format!("go_memstats_{name}"), &[], v, 0.05, 0.0, 1e9, 1.0);
        }
        for (name, v) in [
            ("buck_hash_sys_bytes", 1.5e6),
            ("gc_sys_bytes", 8e6),
            ("mcache_sys_bytes", 15_600.0),
        ] {
            self.constant(&format!("go_memstats_{name}"), &[], v);
        }
        for (name, rate) in [
            ("alloc_bytes_total", 1e5),
            ("frees_total", 900.0),
            ("mallocs_total", 920.0),
            ("lookups_total", 0.0),
        ] {
            self.counter(&format!("go_memstats_{name}"), &[], rate, 1.0, up);
        }
        self.gauge(
            "go_memstats_last_gc_time_seconds",
            &[],
            1.7e9,
            0.0,
            0.0,
            2e9,
            0.0,
        );
        self.counter("process_cpu_seconds_total", &[], 0.002, 0.01, up);
        self.constant("process_max_fds", &[], 1_048_576.0);
        self.gauge("process_open_fds", &[], 10.0, 0.1, 8.0, 30.0, 1.0);
        self.gauge(
            "process_resident_memory_bytes",
            &[],
            2.4e7,
            0.02,
            1e7,
            1e8,
            4096.0,
        );
        self.constant(
            "process_start_time_seconds",
            &[],
            (1.7e9 - up * 0.9).floor(),
        );
        self.gauge(
            "process_virtual_memory_bytes",
            &[],
            7.3e8,
            0.001,
            1e8,
            2e9,
            4096.0,
        );
        self.constant(
            "process_virtual_memory_max_bytes",
            &[],
            1.844_674_407_370_955_2e19,
        );
        self.constant(
            "promhttp_metric_handler_errors_total",
            &[("cause", "encoding")],
            0.0,
        );
        self.constant(
            "promhttp_metric_handler_errors_total",
            &[("cause", "gathering")],
            0.0,
        );
        self.constant("promhttp_metric_handler_requests_in_flight", &[], 1.0);
        self.push(
            "promhttp_metric_handler_requests_total",
            &[("code", "200")],
            Kind::Counter { rate: 1.0 / 15.0 },
            1e5,
            1.0,
        );
        self.constant(
            "promhttp_metric_handler_requests_total",
            &[("code", "500")],
            0.0,
        );
        self.constant(
            "promhttp_metric_handler_requests_total",
            &[("code", "503")],
            0.0,
        );
    }

    /// The series Prometheus itself adds for every scraped target.
    fn scrape_meta(&mut self) {
        let samples = (self
            .out
            .iter()
            .rev()
            .take_while(|s| s.host == self.host)
            .count()) as f64;
        self.constant("up", &[], 1.0);
        let v0 = self.rng.range(0.01, 0.08);
        self.gauge("scrape_duration_seconds", &[], v0, 0.2, 0.002, 1.0, 0.0);
        self.constant("scrape_samples_scraped", &[], samples);
        self.constant("scrape_samples_post_metric_relabeling", &[], samples);
        self.constant("scrape_series_added", &[], 0.0);
    }
}

/// Per-series value state while generating rounds.
#[derive(Clone, Debug)]
pub struct ValueState {
    value: f64,
    kind: Kind,
    quantum: f64,
    rng: Rng,
}

impl ValueState {
    pub fn new(spec: &SeriesSpec, seed: u64, index: u64) -> Self {
        ValueState {
            value: spec.initial,
            kind: spec.kind,
            quantum: spec.quantum,
            rng: Rng::derived(seed, 3, index),
        }
    }

    /// The value for the next scrape, `dt_s` seconds after the previous one (the first call returns the initial
    /// value).
    pub fn next(&mut self, dt_s: f64, first: bool) -> f64 {
        if !first {
            match self.kind {
                Kind::Constant => {}
                Kind::Counter { rate } => {
                    // Bursty: mostly around the rate, sometimes idle.
                    let f = if self.rng.chance(0.1) {
                        0.0
                    } else {
                        self.rng.range(0.3, 1.7)
                    };
                    self.value += rate * dt_s * f;
                }
                Kind::Gauge { step, min, max } => {
                    if self.rng.chance(0.8) {
                        self.value =
                            (self.value + step * self.rng.range(-1.0, 1.0)).clamp(min, max);
                    }
                }
            }
        }
        if self.quantum > 0.0 {
            match self.kind {
                Kind::Counter { .. } => (self.value / self.quantum).floor() * self.quantum,
                _ => (self.value / self.quantum).round() * self.quantum,
            }
        } else {
            self.value
        }
    }
}
