//! `strata rules test` on the unit-test corpus (`testdata/unittest`): files named `pass_*`
//! pass and `fail_*` fail, with the failures named; when `promtool` (2.42, Debian package
//! `prometheus`) is installed its verdict on every file must equal ours.

use std::path::{Path, PathBuf};
use std::process::Command;
use strata_ruler::unittest::{run_file, run_files};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/unittest");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("pass_") || n.starts_with("fail_")
        })
        .collect();
    v.sort();
    assert!(v.len() >= 8, "the corpus is there: {v:?}");
    v
}

fn promtool() -> Option<PathBuf> {
    let p = std::env::var_os("PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    p.exists().then_some(p)
}

// Multi-threaded, as `strata rules test` runs: templates that query block their worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_passes_and_fails_as_named_and_as_promtool_says() {
    let promtool = promtool();
    for f in corpus() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let errors = run_file(&f).await.unwrap_or_else(|e| vec![e]);
        let passed = errors.is_empty();
        assert_eq!(
            passed,
            name.starts_with("pass_"),
            "{name}: our failures: {errors:#?}"
        );
        if let Some(p) = &promtool {
            let out = Command::new(p)
                .args(["test", "rules"])
                .arg(&f)
                .output()
                .expect("run promtool");
            assert_eq!(
                out.status.success(),
                passed,
                "{name}: promtool and strata disagree; promtool said:\n{}{}\nwe said: {errors:#?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[tokio::test]
async fn failures_say_what_differs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/unittest");
    let errors = run_file(&dir.join("fail_labels.yml")).await.unwrap();
    let text = errors.join("\n");
    assert!(text.contains("alertname: InstanceDown, time: 6m"), "{text}");
    assert!(
        text.contains(r#"severity="ticket""#) && text.contains(r#"severity="page""#),
        "{text}"
    );
    let errors = run_file(&dir.join("fail_value.yml")).await.unwrap();
    let text = errors.join("\n");
    assert!(text.contains(r#"expr: "up", time: 2m"#), "{text}");

    let mut out = Vec::new();
    let ok = run_files(
        &[dir.join("pass_basic.yml"), dir.join("fail_value.yml")],
        &mut out,
    )
    .await;
    let out = String::from_utf8(out).unwrap();
    assert!(!ok);
    assert!(out.contains("pass_basic.yml\n  SUCCESS"), "{out}");
    assert!(out.contains("fail_value.yml\n  FAILED:"), "{out}");
}
