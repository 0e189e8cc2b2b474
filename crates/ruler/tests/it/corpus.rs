//! The rule-file corpus (`testdata/rules`): `good/` files load, `bad/` files are refused with
//! an error naming the file and what is wrong, `newer/` files use fields added after
//! Prometheus 2.42 and load here. When `promtool` (2.42, Debian package `prometheus`) is
//! installed, its verdicts on `good/` and `bad/` must equal ours.

use std::path::{Path, PathBuf};
use strata_ruler::rulefmt::{duplicate_rules, parse_and_validate};

fn files(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rules")
        .join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    v
}

/// Our verdict as `promtool check rules` gives it (its exit status): the file loads. Duplicate
/// rules are a lint, reported without failing.
fn verdict(path: &Path) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    parse_and_validate(&name, &text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How many duplicate rules our lint finds in a file that loads.
fn duplicates(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    parse_and_validate("f", &text).map_or(0, |g| duplicate_rules(&g).len())
}

#[test]
fn good_files_load() {
    let good = files("good");
    assert!(good.len() >= 10);
    let dups: Vec<_> = good.iter().filter(|f| duplicates(f) > 0).collect();
    assert_eq!(
        dups.len(),
        1,
        "exactly the lint file has duplicates: {dups:?}"
    );
    for f in good.iter().chain(files("newer").iter()) {
        if let Err(e) = verdict(f) {
            panic!("{} refused: {e}", f.display());
        }
    }
}

#[test]
fn bad_files_are_refused_with_a_precise_error() {
    // What each refusal must say (besides the file name).
    let want: &[(&str, &str)] = &[
        (
            "annotation-name.yml",
            r#"group "g", rule 1, "A": invalid annotation name: bad-name"#,
        ),
        (
            "bad-duration.yml",
            r#"not a valid duration string: "5 minutes""#,
        ),
        ("bad-interval.yml", r#"not a valid duration string: "1.5m""#),
        (
            "both.yml",
            r#"group "g", rule 1, "A": only one of 'record' and 'alert' must be set"#,
        ),
        (
            "duration-order.yml",
            r#"not a valid duration string: "5m1h""#,
        ),
        (
            "expr-syntax.yml",
            r#"group "g", rule 1, "A": could not parse expression"#,
        ),
        (
            "group-duplicate.yml",
            r#"groupname: "g" is repeated in the same file"#,
        ),
        ("group-name-empty.yml", "Groupname must not be empty"),
        ("group-name-missing.yml", "Groupname must not be empty"),
        (
            "label-metric-name.yml",
            r#"group "g", rule 1, "a": invalid label name: __name__"#,
        ),
        (
            "label-name.yml",
            r#"group "g", rule 1, "A": invalid label name: 0bad"#,
        ),
        (
            "label-template-syntax.yml",
            r#"group "g", rule 1, "A": label "sev": "#,
        ),
        (
            "metric-name-twice.yml",
            r#"group "g", rule 1, "A": could not parse expression"#,
        ),
        ("negative-for.yml", r#"not a valid duration string: "-5m""#),
        (
            "neither.yml",
            r#"group "g", rule 1, "": one of 'record' or 'alert' must be set"#,
        ),
        (
            "no-expr.yml",
            r#"group "g", rule 1, "a": field 'expr' must be set in rule"#,
        ),
        ("not-a-list.yml", "expected a sequence"),
        (
            "record-annotations.yml",
            r#"group "g", rule 1, "a": invalid field 'annotations' in recording rule"#,
        ),
        (
            "record-for.yml",
            r#"group "g", rule 1, "a": invalid field 'for' in recording rule"#,
        ),
        (
            "record-keep-firing.yml",
            r#"group "g", rule 1, "a": invalid field 'keep_firing_for' in recording rule"#,
        ),
        (
            "record-name-braces.yml",
            r#"invalid recording rule name: up{job="a"}"#,
        ),
        (
            "record-name.yml",
            r#"group "g", rule 1, "job-up": invalid recording rule name: job-up"#,
        ),
        (
            "scalar-compare.yml",
            r#"group "g", rule 1, "a": could not parse expression"#,
        ),
        (
            "template-syntax.yml",
            r#"group "g", rule 1, "A": annotation "summary": "#,
        ),
        (
            "template-undefined-variable.yml",
            r#"undefined variable "$foo""#,
        ),
        ("template-unknown-function.yml", r#"label "y": "#),
        ("unknown-rule-field.yml", "unknown field `expression`"),
        ("unknown-top-field.yml", "unknown field `rule_files`"),
        ("yaml-syntax.yml", "yaml-syntax.yml"),
    ];
    let bad = files("bad");
    assert_eq!(bad.len(), want.len(), "every bad file has an expectation");
    for f in bad {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let e = verdict(&f).expect_err(&name);
        assert!(
            e.starts_with(&format!("{name}: ")),
            "{name}: error does not name the file: {e}"
        );
        let (_, expect) = want
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        assert!(
            e.contains(expect),
            "{name}: {e}\n  does not contain: {expect}"
        );
    }
}

#[test]
fn promtool_agrees() {
    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        eprintln!("promtool not installed (Debian package `prometheus`); comparison skipped");
        return;
    }
    let mut compared = 0;
    for f in files("good").into_iter().chain(files("bad")) {
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&f)
            .output()
            .unwrap();
        let theirs = out.status.success();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            text.contains("duplicate rule(s) found"),
            duplicates(&f) > 0,
            "{}: duplicate-rule lint differs: {text}",
            f.display()
        );
        let ours = verdict(&f);
        assert_eq!(
            theirs,
            ours.is_ok(),
            "{}: promtool {} ({}), Strata {:?}",
            f.display(),
            if theirs { "accepts" } else { "refuses" },
            String::from_utf8_lossy(&out.stderr).trim(),
            ours
        );
        compared += 1;
    }
    assert!(compared >= 40);
}
