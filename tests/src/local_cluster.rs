//! The local cluster of `deploy/local/cluster.sh`, driven from a test: started, faulted and
//! stopped through the script, so the tests exercise exactly what people run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One process of the cluster, as `cluster.sh` prints it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub component: String,
    pub pid: Option<u32>,
    /// Base URL, e.g. `http://127.0.0.21:8080`.
    pub http: String,
    pub grpc: Option<String>,
}

/// A running local cluster. Dropping it stops every process (by pid, through the script, and
/// SIGKILL for anything left).
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    script: PathBuf,
    env: Vec<(String, String)>,
    pub instances: BTreeMap<String, Instance>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

impl LocalCluster {
    /// `cluster.sh up dir` with `env` (e.g. `STRATA_BIN`, `STRATA_HEARTBEAT`).
    pub fn up(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut c = Self {
            dir: dir.to_path_buf(),
            script: repo_root().join("deploy/local/cluster.sh"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instances: BTreeMap::new(),
        };
        c.start();
        c
    }

    /// (Re)starts every process that is not running and reloads the instance list.
    pub fn start(&mut self) {
        let out = self.run(&["up"]);
        self.instances = parse_instances(&out);
    }

    fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.script.display()));
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn instance(&self, name: &str) -> &Instance {
        self.instances
            .get(name)
            .unwrap_or_else(|| panic!("no instance {name} in the cluster"))
    }

    pub fn http(&self, name: &str) -> String {
        self.instance(name).http.clone()
    }

    /// The pid of a running instance (read from the script's state).
    pub fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(name).join("pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// SIGKILL, waiting until the process is gone.
    pub fn kill(&self, name: &str) {
        self.run(&["kill", name]);
    }

    /// Graceful stop and start again (`wipe`: with an empty data directory).
    pub fn restart(&self, name: &str, wipe: bool) {
        if wipe {
            self.run(&["restart", name, "--wipe"]);
        } else {
            self.run(&["restart", name]);
        }
    }

    /// Starts one stopped instance again with its data.
    pub fn start_one(&self, name: &str) {
        self.run(&["restart", name]);
    }

    pub fn down(&self) {
        self.run(&["down"]);
    }

    /// The tail of an instance's log.
    pub fn log_tail(&self, name: &str) -> String {
        crate::tail_of_file(&self.dir.join(name).join("log"), 4096)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in self.instances.keys() {
                eprintln!("----- {name} -----\n{}", self.log_tail(name));
            }
        }
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("down")
            .arg(&self.dir)
            .output();
        // Whatever the script could not stop.
        for name in self.instances.keys() {
            if let Some(pid) = self.pid(name) {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .output();
            }
        }
    }
}

fn parse_instances(out: &str) -> BTreeMap<String, Instance> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("cluster.sh printed no instance list:\n{out}"));
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("cluster.sh printed invalid JSON ({e}): {line}"));
    v["instances"]
        .as_array()
        .expect("instances array")
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (
                s("name"),
                Instance {
                    name: s("name"),
                    component: s("component"),
                    pid: i["pid"].as_u64().map(|p| p as u32),
                    http: s("http"),
                    grpc: i["grpc"].as_str().map(str::to_string),
                },
            )
        })
        .collect()
}
