//! Runs Prometheus's upstream PromQL test scripts (`shared/promqltest/*.test`) against
//! strata-promql, one libtest-mimic trial per file.
//!
//! * `PROMQLTEST_DIR`: where the `.test` files are (default `../../../shared/promqltest` from
//!   this crate, i.e. `shared/` beside the repository).
//! * `known_failures.txt` (beside this file): evals expected to fail, `file.test:LINE`. A trial
//!   fails on a failing eval that is not listed and on a listed eval that passes.
//! * `PROMQLTEST_UPDATE=1`: rewrite `known_failures.txt` with exactly the failing evals.
//! * `PROMQLTEST_VERBOSE=1`: print every failing eval (file:line, query, expected, got);
//!   `PROMQLTEST_VERBOSE=2` also lists every eval with its class and verdict.
//!
//! Each eval is classed `native-histogram`, `experimental` or `stable`; the per-file counts go
//! to stdout and, with totals and the stable pass rate, to `$CARGO_TARGET_DIR/promqltest-report.txt`
//! (printed at the end with `--nocapture`). Per-file counts are also kept in
//! `$CARGO_TARGET_DIR/promqltest/<file>.summary`, so the report is complete under nextest too.
//!
//! Judging follows upstream's runner (`promql/promqltest/test.go`): floats equal within relative
//! 1e-6 (NaN equals NaN), series compared as sets unless `expect ordered`, range results point by
//! point, annotations checked only when an `expect` line asks. Each instant eval is also run as
//! upstream does with every selector pinned `@` the eval time at other eval times, and as a range
//! query around the eval time whose point at that time must match. The store holds floats only:
//! native histogram points are not loaded, so evals over them are classed `native-histogram`.

mod ast;
mod exec;
mod script;
mod series;

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strata_model::{Labels, Sample, TenantId};
use strata_promql::testing::MemStore;
use strata_promql::{Engine, EngineOptions};

/// Files the upstream README names as exercising experimental or feature-flagged language.
const EXPERIMENTAL_FILES: [&str; 7] = [
    "info.test",
    "limit.test",
    "fill-modifier.test",
    "extended_vectors.test",
    "duration_expression.test",
    "start_timestamps.test",
    "type_and_unit.test",
];
const NATIVE_HISTOGRAM_FILE: &str = "native_histograms.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Stable,
    NativeHistogram,
    Experimental,
}

impl Class {
    const ALL: [Class; 3] = [Class::Stable, Class::NativeHistogram, Class::Experimental];

    fn name(self) -> &'static str {
        match self {
            Class::Stable => "stable",
            Class::NativeHistogram => "native-histogram",
            Class::Experimental => "experimental",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    pass: [usize; 3],
    total: [usize; 3],
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        for i in 0..3 {
            self.pass[i] += o.pass[i];
            self.total[i] += o.total[i];
        }
    }

    fn row(&self, file: &str) -> String {
        let s = Class::Stable.idx();
        let n = Class::NativeHistogram.idx();
        let e = Class::Experimental.idx();
        format!(
            "{file}: stable {}/{} passed, {} failed; native-histogram {}/{}; experimental {}/{}",
            self.pass[s],
            self.total[s],
            self.total[s] - self.pass[s],
            self.pass[n],
            self.total[n],
            self.pass[e],
            self.total[e]
        )
    }

    fn encode(&self) -> String {
        let v: Vec<String> = (0..3)
            .flat_map(|i| [self.pass[i], self.total[i]])
            .map(|n| n.to_string())
            .collect();
        v.join(" ")
    }

    fn decode(s: &str) -> Option<Counts> {
        let first = s.lines().next()?;
        let v: Vec<usize> = first
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if v.len() != 6 {
            return None;
        }
        let mut c = Counts::default();
        for i in 0..3 {
            c.pass[i] = v[2 * i];
            c.total[i] = v[2 * i + 1];
        }
        Some(c)
    }
}

struct Outcome {
    line: usize,
    class: Class,
    query: String,
    block: Vec<String>,
    failure: Option<exec::Failure>,
}

struct FileRun {
    counts: Counts,
    outcomes: Vec<Outcome>,
    /// Instant evals whose @-modifier variants could not be generated, with the reason.
    variant_notes: Vec<(usize, String)>,
    /// Engine calls made for the file (an instant eval makes several: @-variants, range mode).
    queries: usize,
}

// ---------------------------------------------------------------------------------------------
// Loading and classification

/// The series name upstream's `load_with_nhcb` gives the native histogram built from a classic
/// histogram series (`x_bucket{le=...}`, `x_count`, `x_sum` become `x` without `le`).
fn nhcb_target(l: &Labels) -> Option<Labels> {
    let name = l.metric_name()?;
    let base = if let Some(b) = name.strip_suffix("_bucket") {
        let le = l.get("le")?;
        if series::parse_number(le).map_or(true, f64::is_nan) {
            return None;
        }
        b
    } else if let Some(b) = name.strip_suffix("_count") {
        b
    } else {
        name.strip_suffix("_sum")?
    };
    Some(Labels::from_pairs(
        l.iter()
            .filter(|x| x.name != "le" && x.name != "__name__")
            .map(|x| (x.name.clone(), x.value.clone()))
            .chain([("__name__".to_string(), base.to_string())]),
    ))
}

/// Adds a load's float samples to the store (the store holds floats only) and returns the
/// series that hold native histograms (including `_with_nhcb` conversions).
fn apply_load(store: &mut MemStore, load: &script::Load) -> Vec<Labels> {
    let mut hist = Vec::new();
    for (labels, vals) in &load.series {
        let mut samples = Vec::new();
        let mut has_hist = false;
        for (i, v) in vals.iter().enumerate() {
            let t = i as i64 * load.interval_ms;
            match v {
                series::SeqValue::Float(f) => samples.push(Sample::new(t, *f)),
                series::SeqValue::Histogram(_) => has_hist = true,
                series::SeqValue::Omitted => {}
            }
        }
        if load.with_nhcb && !samples.is_empty() {
            if let Some(t) = nhcb_target(labels) {
                hist.push(t);
            }
        }
        if !samples.is_empty() {
            store.add(labels.clone(), samples);
        }
        if has_hist {
            hist.push(labels.clone());
        }
    }
    hist
}

fn classify(
    file: &str,
    ev: &script::Eval,
    expr: Option<&promql_parser::parser::Expr>,
    hist: &[Labels],
) -> Class {
    let touches_hist = match expr {
        Some(e) => ast::selectors(e)
            .iter()
            .any(|vs| hist.iter().any(|l| ast::selector_matches(vs, l))),
        // Unparseable: does the query name a loaded histogram metric?
        None => hist
            .iter()
            .filter_map(Labels::metric_name)
            .any(|n| contains_word(&ev.query, n)),
    };
    if file == NATIVE_HISTOGRAM_FILE || ev.expects_histogram() || touches_hist {
        return Class::NativeHistogram;
    }
    if EXPERIMENTAL_FILES.contains(&file) {
        return Class::Experimental;
    }
    let experimental = match expr {
        Some(e) => ast::experimental_feature(e).is_some(),
        None => unparsed_experimental(&ev.query),
    };
    if experimental {
        Class::Experimental
    } else {
        Class::Stable
    }
}

fn contains_word(hay: &str, w: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    hay.match_indices(w).any(|(i, _)| {
        let before = hay[..i].chars().next_back().is_none_or(|c| !is_word(c));
        let after = hay[i + w.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_word(c));
        before && after
    })
}

/// For a query promql-parser cannot parse: does it use experimental language that upstream
/// enables for its tests (an experimental function, `limitk`/`limit_ratio`, a `fill*`
/// modifier, an `anchored`/`smoothed` range selector)?
fn unparsed_experimental(q: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        let mut names: Vec<&str> = ast::UPSTREAM_EXPERIMENTAL_FUNCTIONS.to_vec();
        names.extend([
            "max_of",
            "min_of",
            "start_timestamp",
            "limitk",
            "limit_ratio",
            "fill",
            "fill_left",
            "fill_right",
        ]);
        regex::Regex::new(&format!(
            r"(?:^|[^\w:])(?:{})\s*\(|\]\s*(?:anchored|smoothed)\b",
            names.join("|")
        ))
        .expect("static regex")
    });
    re.is_match(q)
}

// ---------------------------------------------------------------------------------------------
// Running a file

/// Where the loaded series are queried from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// The in-memory test store.
    Memory,
    /// Blocks written by the block writer (2h ranges, so queries cross block boundaries) to a
    /// local-filesystem bucket and read back through the block reader: the storage round trip.
    Blocks,
}

/// Writes the store's series as 2h blocks into a fresh bucket and opens them.
fn blocks_from(
    store: &MemStore,
    tenant: &TenantId,
    rt: &tokio::runtime::Runtime,
) -> Result<(strata_storage::block_set::StaticBlocks, tempfile::TempDir), String> {
    use strata_storage::block::{BlockReader, BlockWriter, WriterOptions};
    use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};
    const RANGE: i64 = 2 * 3600 * 1000;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let bucket = Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.path().to_owned(),
        },
        ..BucketConfig::default()
    })
    .map_err(|e| format!("bucket: {e}"))?;
    let all = store.all_series();
    let mut ranges = BTreeSet::new();
    for (_, samples) in &all {
        for s in samples {
            ranges.insert(s.t.div_euclid(RANGE));
        }
    }
    let mut set = strata_storage::block_set::StaticBlocks::new();
    for r in ranges {
        let (min_t, max_t) = (r * RANGE, (r + 1) * RANGE - 1);
        let mut w = BlockWriter::new(tenant.clone(), min_t, max_t, WriterOptions::default())
            .map_err(|e| format!("block writer: {e}"))?;
        for (labels, samples) in &all {
            let part: Vec<_> = samples
                .iter()
                .copied()
                .filter(|s| s.t >= min_t && s.t <= max_t)
                .collect();
            w.add_series(labels.clone(), part)
                .map_err(|e| format!("block writer: {e}"))?;
        }
        let files = w.finish().map_err(|e| format!("encode block: {e}"))?;
        let ulid = files.meta.ulid;
        rt.block_on(files.upload(&bucket))
            .map_err(|e| format!("upload block: {e}"))?;
        let reader = rt
            .block_on(BlockReader::open(&bucket, tenant, ulid))
            .map_err(|e| format!("open block: {e}"))?;
        set.add(tenant.clone(), reader);
    }
    Ok((set, dir))
}

fn run_file(path: &Path, backend: Backend) -> Result<FileRun, String> {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cmds =
        script::parse_script(&text).map_err(|e| format!("{file}: malformed test script: {e}"))?;
    let engine = Engine::new(EngineOptions {
        enable_experimental: true,
        ..Default::default()
    });
    let tenant = TenantId::new("test").map_err(|e| format!("tenant: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut store = MemStore::new();
    // In block mode, the blocks of the current load (rebuilt after each load or clear).
    let mut blocks: Option<(strata_storage::block_set::StaticBlocks, tempfile::TempDir)> = None;
    let mut hist: Vec<Labels> = Vec::new();
    let mut run = FileRun {
        counts: Counts::default(),
        outcomes: Vec::new(),
        variant_notes: Vec::new(),
        queries: 0,
    };
    let queries = std::cell::Cell::new(0usize);
    for (_, cmd) in cmds {
        match cmd {
            script::Cmd::Clear => {
                store.clear();
                hist.clear();
                blocks = None;
            }
            script::Cmd::Load(l) => {
                hist.extend(apply_load(&mut store, &l));
                blocks = None;
            }
            script::Cmd::Eval(ev) => {
                if backend == Backend::Blocks && blocks.is_none() {
                    blocks = Some(blocks_from(&store, &tenant, &rt)?);
                }
                let source: &dyn strata_storage::Queryable = match &blocks {
                    Some((b, _)) => b,
                    None => &store,
                };
                let parsed = ast::parse_query(&ev.query);
                let class = classify(&file, &ev, parsed.as_ref().ok(), &hist);
                let result = match &parsed {
                    Err(e) => Err(exec::Failure {
                        reason: format!("promql-parser cannot parse the query: {}", e.trim()),
                        got: "(not run)".into(),
                    }),
                    Ok(expr) => {
                        let ctx = exec::Ctx {
                            engine: &engine,
                            store: source,
                            tenant: &tenant,
                            queries: &queries,
                        };
                        let fut = exec::run_eval(&ctx, &ev, expr);
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(fut)))
                            .unwrap_or_else(|p| {
                                let msg = p
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                Err(exec::Failure {
                                    reason: format!("the engine panicked: {msg}"),
                                    got: "(panic)".into(),
                                })
                            })
                    }
                };
                let failure = match result {
                    Ok(note) => {
                        if let Some(n) = note {
                            run.variant_notes.push((ev.line, n));
                        }
                        None
                    }
                    Err(f) => Some(f),
                };
                run.counts.total[class.idx()] += 1;
                if failure.is_none() {
                    run.counts.pass[class.idx()] += 1;
                }
                run.outcomes.push(Outcome {
                    line: ev.line,
                    class,
                    query: ev.query.clone(),
                    block: ev.block.clone(),
                    failure,
                });
            }
        }
    }
    run.queries = queries.get();
    Ok(run)
}

fn describe_failure(file: &str, o: &Outcome) -> String {
    let mut s = String::new();
    let f = o.failure.as_ref();
    let _ = writeln!(s, "--- {file}:{} [{}]", o.line, o.class.name());
    let _ = writeln!(s, "query:    {}", o.query);
    if let Some(f) = f {
        let _ = writeln!(s, "reason:   {}", f.reason);
    }
    let _ = writeln!(s, "expected:");
    if o.block.is_empty() {
        let _ = writeln!(s, "    (nothing: empty result)");
    }
    for l in &o.block {
        let _ = writeln!(s, "    {l}");
    }
    if let Some(f) = f {
        let _ = writeln!(s, "got:");
        for l in f.got.lines() {
            let _ = writeln!(s, "    {l}");
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Known failures

fn known_failures_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest/known_failures.txt")
}

type Known = BTreeMap<String, BTreeSet<usize>>;

fn parse_known(text: &str) -> Result<Known, String> {
    let mut k = Known::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "known_failures.txt line {}: expected `file.test:LINE`, got {raw:?}",
                i + 1
            )
        };
        let (f, n) = l.rsplit_once(':').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if !f.ends_with(".test") || f.contains(char::is_whitespace) {
            return Err(bad());
        }
        k.entry(f.to_string()).or_default().insert(n);
    }
    Ok(k)
}

const KNOWN_HEADER: &str = "\
# Evals of the upstream PromQL test suite (shared/promqltest) that strata-promql fails today,
# one `file.test:LINE` per line (LINE = line of the `eval` statement); `#` starts a comment and
# the trailing comment names the eval's class (stable, native-histogram, experimental).
# The promqltest runner fails on a failing eval that is not listed (a regression) and on a
# listed eval that passes (remove it), so this list only shrinks. Regenerate it with
#   PROMQLTEST_UPDATE=1 cargo test -p strata-promql --test promqltest
";

fn write_known(entries: &BTreeMap<String, BTreeMap<usize, Option<Class>>>) -> Result<(), String> {
    let mut s = String::from(KNOWN_HEADER);
    for (f, lines) in entries {
        for (l, c) in lines {
            match c {
                Some(c) => {
                    let _ = writeln!(s, "{f}:{l}  # {}", c.name());
                }
                None => {
                    let _ = writeln!(s, "{f}:{l}");
                }
            }
        }
    }
    let p = known_failures_path();
    std::fs::write(&p, s).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------------
// Report

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let p = PathBuf::from(d);
        return if p.is_absolute() {
            p
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
        };
    }
    // <target>/debug/deps/promqltest-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn summaries_dir() -> PathBuf {
    target_dir().join("promqltest")
}

fn write_atomic(p: &Path, s: &str) -> std::io::Result<()> {
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, s)?;
    std::fs::rename(&tmp, p)
}

/// Builds the full table from the per-file summaries on disk (written by this run, or by
/// earlier processes when a runner such as nextest runs each file in its own process).
fn build_report(files: &[String]) -> String {
    let mut out = String::from(
        "PromQL upstream test suite (Prometheus v3.14 promqltest) against strata-promql\n",
    );
    let mut total = Counts::default();
    let mut missing = 0;
    for f in files {
        let p = summaries_dir().join(format!("{f}.summary"));
        match std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| Counts::decode(&s))
        {
            Some(c) => {
                total.add(&c);
                let _ = writeln!(out, "{}", c.row(f));
            }
            None => {
                missing += 1;
                let _ = writeln!(out, "{f}: not run");
            }
        }
    }
    for c in Class::ALL {
        let i = c.idx();
        let _ = writeln!(
            out,
            "total {}: {}/{} passed, {} failed",
            c.name(),
            total.pass[i],
            total.total[i],
            total.total[i] - total.pass[i]
        );
    }
    let s = Class::Stable.idx();
    let rate = if total.total[s] == 0 {
        0.0
    } else {
        100.0 * total.pass[s] as f64 / total.total[s] as f64
    };
    let _ = writeln!(out, "stable pass rate: {rate:.2}%");
    if missing > 0 {
        let _ = writeln!(out, "({missing} file(s) not run: totals are partial)");
    }
    out
}

// ---------------------------------------------------------------------------------------------

struct Shared {
    /// Failing evals per file of this run (for PROMQLTEST_UPDATE).
    failing: Mutex<BTreeMap<String, BTreeMap<usize, Option<Class>>>>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs a file over blocks; fails on any eval that fails and is not a known failure.
fn blocks_trial(path: &Path, file: &str, known: &BTreeSet<usize>) -> Result<(), Failed> {
    let run = run_file(path, Backend::Blocks)?;
    let regressions: Vec<&Outcome> = run
        .outcomes
        .iter()
        .filter(|o| o.failure.is_some() && !known.contains(&o.line))
        .collect();
    if regressions.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} eval(s) fail over blocks that pass in memory (or are not known failures):\n",
        regressions.len()
    );
    for o in regressions.iter().take(20) {
        msg.push_str(&describe_failure(file, o));
    }
    Err(msg.into())
}

fn file_trial(
    path: PathBuf,
    file: String,
    known: BTreeSet<usize>,
    shared: Arc<Shared>,
) -> Result<(), Failed> {
    let update = env_flag("PROMQLTEST_UPDATE");
    let verbose = env_flag("PROMQLTEST_VERBOSE");
    let run = run_file(&path, Backend::Memory)?;
    let row = run.counts.row(&file);
    println!("{row}");
    let dir = summaries_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = write_atomic(
            &dir.join(format!("{file}.summary")),
            &format!("{}\n{row}\n", run.counts.encode()),
        );
    }
    if std::env::var("PROMQLTEST_VERBOSE").as_deref() == Ok("2") {
        let mut s = String::new();
        for o in &run.outcomes {
            let verdict = if o.failure.is_some() { "FAIL" } else { "ok" };
            let _ = writeln!(
                s,
                "{file}:{} {} {verdict} {}",
                o.line,
                o.class.name(),
                o.query
            );
        }
        let _ = writeln!(s, "{file}: {} engine queries", run.queries);
        print!("{s}");
    }
    if verbose {
        let mut s = String::new();
        for o in run.outcomes.iter().filter(|o| o.failure.is_some()) {
            s.push_str(&describe_failure(&file, o));
        }
        for (l, n) in &run.variant_notes {
            let _ = writeln!(s, "--- {file}:{l}: @-modifier variants not run: {n}");
        }
        print!("{s}");
    }
    let failing: BTreeMap<usize, Option<Class>> = run
        .outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| (o.line, Some(o.class)))
        .collect();
    if update {
        shared
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(file, failing);
        return Ok(());
    }
    let eval_lines: BTreeSet<usize> = run.outcomes.iter().map(|o| o.line).collect();
    let regressions: Vec<&Outcome> = run
        .outcomes
        .iter()
        .filter(|o| o.failure.is_some() && !known.contains(&o.line))
        .collect();
    let now_pass: Vec<&Outcome> = run
        .outcomes
        .iter()
        .filter(|o| o.failure.is_none() && known.contains(&o.line))
        .collect();
    let stale: Vec<usize> = known
        .iter()
        .copied()
        .filter(|l| !eval_lines.contains(l))
        .collect();
    if regressions.is_empty() && now_pass.is_empty() && stale.is_empty() {
        return Ok(());
    }
    const DETAIL: usize = 30;
    let mut msg = String::new();
    if !regressions.is_empty() {
        let _ = writeln!(
            msg,
            "{} eval(s) fail that are not in known_failures.txt (regressions):",
            regressions.len()
        );
        for o in regressions.iter().take(DETAIL) {
            msg.push_str(&describe_failure(&file, o));
        }
        if regressions.len() > DETAIL {
            let rest: Vec<String> = regressions[DETAIL..]
                .iter()
                .map(|o| format!("{file}:{}", o.line))
                .collect();
            let _ = writeln!(
                msg,
                "... and {} more: {} (PROMQLTEST_VERBOSE=1 shows all)",
                rest.len(),
                rest.join(" ")
            );
        }
    }
    if !now_pass.is_empty() {
        let _ = writeln!(
            msg,
            "{} eval(s) in known_failures.txt now pass: remove them from known_failures.txt",
            now_pass.len()
        );
        for o in &now_pass {
            let _ = writeln!(
                msg,
                "now passes: remove it from known_failures.txt: {file}:{} [{}] {}",
                o.line,
                o.class.name(),
                o.query
            );
        }
    }
    if !stale.is_empty() {
        for l in &stale {
            let _ = writeln!(
                msg,
                "known_failures.txt lists {file}:{l}, which is not an eval line: remove it"
            );
        }
    }
    Err(msg.into())
}

fn main() {
    let args = Arguments::from_args();
    let dir = std::env::var_os("PROMQLTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/promqltest")
        });

    let mut files: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".test"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    if files.is_empty() {
        let msg = format!(
            "no upstream PromQL test files (*.test) in {}: set PROMQLTEST_DIR to the folder holding them \
             (by default shared/promqltest beside the repository)",
            dir.display()
        );
        let t = Trial::test("promqltest_dir", move || Err(msg.clone().into()));
        libtest_mimic::run(&args, vec![t]).exit();
    }
    if let Err(e) = series::selftest() {
        let t = Trial::test("promqltest_selftest", move || Err(e.clone().into()));
        libtest_mimic::run(&args, vec![t]).exit();
    }

    let update = env_flag("PROMQLTEST_UPDATE");
    let known_text = std::fs::read_to_string(known_failures_path()).unwrap_or_default();
    let mut trials = Vec::new();
    let known = match parse_known(&known_text) {
        Ok(k) => k,
        Err(e) if !update => {
            trials.push(Trial::test("known_failures", move || Err(e.clone().into())));
            Known::new()
        }
        Err(_) => Known::new(),
    };
    let unknown_files: Vec<&String> = known.keys().filter(|f| !files.contains(f)).collect();
    if !unknown_files.is_empty() && !update {
        let msg = format!(
            "known_failures.txt names files that are not in {}: {unknown_files:?}",
            dir.display()
        );
        trials.push(Trial::test("known_failures", move || {
            Err(msg.clone().into())
        }));
    }

    let shared = Arc::new(Shared {
        failing: Mutex::new(BTreeMap::new()),
    });
    for f in &files {
        let stem = f.trim_end_matches(".test").to_string();
        let path = dir.join(f);
        let file = f.clone();
        let k = known.get(f).cloned().unwrap_or_default();
        let sh = shared.clone();
        trials.push(Trial::test(stem, move || {
            file_trial(path.clone(), file.clone(), k.clone(), sh.clone())
        }));
    }

    // The same files over blocks: every eval that passes from memory must pass when the data
    // went through the block writer, a bucket and the block reader.
    for f in &files {
        let stem = f.trim_end_matches(".test").to_string();
        let path = dir.join(f);
        let file = f.clone();
        let k = known.get(f).cloned().unwrap_or_default();
        trials.push(Trial::test(format!("blocks/{stem}"), move || {
            blocks_trial(&path, &file, &k)
        }));
    }

    let conclusion = libtest_mimic::run(&args, trials);

    if !args.list {
        let report = build_report(&files);
        let _ = write_atomic(&target_dir().join("promqltest-report.txt"), &report);
        if args.nocapture {
            println!("\n{report}");
        }
        if update {
            // Files run now get their current failing set; other files keep their entries.
            let ran = shared
                .failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut all: BTreeMap<String, BTreeMap<usize, Option<Class>>> = BTreeMap::new();
            for raw in known_text.lines() {
                let (entry, comment) = raw.split_once('#').unwrap_or((raw, ""));
                if let Ok(k) = parse_known(entry) {
                    let class = Class::ALL.into_iter().find(|c| c.name() == comment.trim());
                    for (f, ls) in k.into_iter().filter(|(f, _)| files.contains(f)) {
                        all.entry(f)
                            .or_default()
                            .extend(ls.into_iter().map(|l| (l, class)));
                    }
                }
            }
            for (f, ls) in ran {
                all.insert(f, ls);
            }
            all.retain(|_, ls| !ls.is_empty());
            match write_known(&all) {
                Ok(()) => {
                    let n: usize = all.values().map(BTreeMap::len).sum();
                    eprintln!(
                        "promqltest: wrote {n} known failures to {}",
                        known_failures_path().display()
                    );
                }
                Err(e) => {
                    eprintln!("promqltest: {e}");
                    std::process::exit(101);
                }
            }
        }
    }
    conclusion.exit();
}
