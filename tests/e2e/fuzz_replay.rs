//! The fuzz targets on stable, in CI: every file of `fuzz/corpus/<target>/` (the seeds and every
//! input that once crashed a target) plus a bounded number of deterministic mutations of them
//! go through the same target bodies the libFuzzer runs use (`strata_fuzz`). A target that
//! panics fails its test, which names the input and writes it out for `cargo fuzz run`.
//!
//! Budget: `STRATA_FUZZ_INPUTS` mutated inputs per target (default 3,000), stopped early after
//! `STRATA_FUZZ_SECONDS` (default 20) so that CI stays within its time on slow machines; the
//! mutations come from `STRATA_FUZZ_SEED` (default fixed), so a failure reproduces. The long
//! coverage-guided runs are `fuzz/run.sh` (docs/security.md, "Fuzzing").

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strata_fuzz::mutate::Mutator;
use strata_fuzz::{dict, Target};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

fn corpus_dir(target: &str) -> PathBuf {
    repo_root().join("fuzz/corpus").join(target)
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Every file of a corpus directory, sorted by name.
fn read_corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_owned();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, bytes)
        })
        .collect()
}

/// Queries of the upstream PromQL test suite (`../shared/promqltest`, present for every
/// developer and CI run): more seeds for the promql target, read where they are rather than
/// copied into the repository.
fn promqltest_queries() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("../shared/promqltest");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if let Some(q) = promqltest_query(line) {
                out.push((
                    format!(
                        "{}:{}",
                        f.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                        i + 1
                    ),
                    q.as_bytes().to_vec(),
                ));
            }
        }
    }
    out
}

/// The query of an `eval` line (`eval[_fail|...] instant at <t> <query>`,
/// `eval[...] range from <a> to <b> step <s> <query>`).
fn promqltest_query(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("eval")?;
    let rest = rest.split_once(char::is_whitespace)?.1.trim_start();
    let words = if rest.starts_with("instant") { 3 } else { 7 };
    let mut s = rest;
    for _ in 0..words {
        s = s.trim_start().split_once(char::is_whitespace)?.1;
    }
    let q = s.trim();
    (!q.is_empty()).then_some(q)
}

/// Runs `input` through `target`; on a panic writes the input out and fails with its origin.
fn run_one(target: &Target, origin: &str, input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_ok() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-replay-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}-{:016x}", target.name, fnv(input)));
    let _ = std::fs::write(&path, input);
    panic!(
        "target {} panicked on {origin} ({} bytes, written to {}); reproduce with \
         `cargo +nightly fuzz run {} {}` from fuzz/, and once fixed copy the file into \
         fuzz/corpus/{}/",
        target.name,
        input.len(),
        path.display(),
        target.name,
        path.display(),
        target.name
    );
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn replay(name: &str) {
    let target = strata_fuzz::target(name).unwrap_or_else(|| panic!("no target {name}"));
    let mut corpus = read_corpus(&corpus_dir(name));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{name}/ is empty: regenerate the seeds (docs/security.md, Fuzzing)"
    );
    let committed = corpus.len();
    if name == "promql" {
        corpus.extend(promqltest_queries());
    }
    for (file, input) in &corpus {
        run_one(target, &format!("corpus file {file}"), input);
    }
    let tokens = std::fs::read_to_string(repo_root().join(format!("fuzz/dict/{name}.dict")))
        .map(|t| dict::parse(&t))
        .unwrap_or_default();
    let inputs = env_number("STRATA_FUZZ_INPUTS", 3_000);
    let budget = Duration::from_secs(env_number("STRATA_FUZZ_SECONDS", 20));
    let seed = env_number("STRATA_FUZZ_SEED", 0x5eed_f022) ^ fnv(name.as_bytes());
    let mut m = Mutator::new(seed, target.max_len, tokens);
    let others: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.clone()).collect();
    let t0 = Instant::now();
    let mut done = 0u64;
    while done < inputs && t0.elapsed() < budget {
        let i = m.pick(corpus.len());
        let input = m.mutate(&corpus[i].1, &others);
        run_one(
            target,
            &format!("mutation #{done} of {} (seed {seed:#x})", corpus[i].0),
            &input,
        );
        done += 1;
    }
    println!(
        "{name}: {} corpus files ({committed} committed), {done} mutations in {:.1?}",
        corpus.len(),
        t0.elapsed()
    );
    assert!(done > 0, "no mutation ran");
}

#[test]
fn remote_write_v1() {
    replay("remote_write_v1");
}

#[test]
fn remote_write_v2() {
    replay("remote_write_v2");
}

#[test]
fn snappy_body() {
    replay("snappy_body");
}

#[test]
fn promql() {
    replay("promql");
}

#[test]
fn parquet_block() {
    replay("parquet_block");
}

#[test]
fn wal_record() {
    replay("wal_record");
}

#[test]
fn alertmanager_config() {
    replay("alertmanager_config");
}

#[test]
fn every_target_has_a_test_a_corpus_and_a_cargo_fuzz_binary() {
    let this = include_str!("fuzz_replay.rs");
    let manifest = std::fs::read_to_string(repo_root().join("fuzz/Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(repo_root().join("fuzz/run.sh")).unwrap();
    for t in strata_fuzz::TARGETS {
        assert!(
            this.contains(&format!("fn {}() {{\n    replay(\"{}\");", t.name, t.name)),
            "no replay test for {}",
            t.name
        );
        assert!(corpus_dir(t.name).is_dir(), "no fuzz/corpus/{}/", t.name);
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{}.rs\"", t.name)),
            "fuzz/Cargo.toml has no target {}",
            t.name
        );
        assert!(
            script.contains(&format!("[{}]={}", t.name, t.max_len)),
            "fuzz/run.sh's MAX_LEN for {} differs from crates/fuzz ({})",
            t.name,
            t.max_len
        );
    }
}

#[test]
fn the_committed_corpus_stays_small() {
    let mut total = 0u64;
    for t in strata_fuzz::TARGETS {
        for (file, bytes) in read_corpus(&corpus_dir(t.name)) {
            assert!(
                bytes.len() <= t.max_len,
                "fuzz/corpus/{}/{file} is longer than the target's max_len {}",
                t.name,
                t.max_len
            );
            total += bytes.len() as u64;
        }
    }
    assert!(
        total < 2 << 20,
        "the corpus holds {total} bytes, over 2 MiB"
    );
}

#[test]
fn promqltest_eval_lines_yield_their_query() {
    assert_eq!(
        promqltest_query("eval instant at 50m sum(http_requests) by (job)"),
        Some("sum(http_requests) by (job)")
    );
    assert_eq!(
        promqltest_query("  eval_fail range from 0 to 10m step 1m rate(x[5m])"),
        Some("rate(x[5m])")
    );
    assert_eq!(promqltest_query("load 5m"), None);
    assert_eq!(promqltest_query("eval instant at 1m"), None);
}

/// Regenerates the generated seeds (`fuzz/corpus/*/gen-*`). Run on purpose only:
/// `STRATA_FUZZ_WRITE_SEEDS=1 cargo nextest run -p strata-tests --run-ignored only
/// fuzz_replay::write_seed_corpus`.
#[test]
#[ignore = "writes into fuzz/corpus; run on purpose"]
fn write_seed_corpus() {
    assert_eq!(
        std::env::var("STRATA_FUZZ_WRITE_SEEDS").as_deref(),
        Ok("1"),
        "set STRATA_FUZZ_WRITE_SEEDS=1 to overwrite fuzz/corpus/*/gen-*"
    );
    let scratch = tempfile::tempdir().unwrap();
    let written =
        strata_fuzz::seeds::generate(&repo_root().join("fuzz/corpus"), scratch.path()).unwrap();
    for p in &written {
        println!("{}", p.display());
    }
    assert!(written.len() > 20);
}
