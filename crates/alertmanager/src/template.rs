//! Notification templates: the shared Go-template engine (`strata-template`, Alertmanager
//! dialect) with Alertmanager's data model for one notification and Strata's default templates
//! under the names upstream's notifiers look up.

use crate::alert::Alert;
use crate::labels::{fingerprint_string, regexp_quote_meta, LabelSet};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::path::Path;
pub use strata_template::{Dialect, RenderError, TemplateError, Templates, Value};

/// Strata's default templates, under the names Alertmanager's notifiers look up.
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

/// The default templates only.
pub fn defaults() -> Templates {
    let mut t = Templates::new(Dialect::Alertmanager);
    if let Err(e) = t.add("default.tmpl", DEFAULT_TEMPLATES) {
        // Covered by a unit test; a broken built-in is a build defect.
        panic!("built-in default templates do not parse: {e}");
    }
    t
}

/// The defaults plus every file matched by `patterns`, relative to `base` unless absolute,
/// in the order of the patterns and, within one, of the file names.
pub fn load(base: &Path, patterns: &[String]) -> Result<Templates, TemplateError> {
    let mut t = defaults();
    t.load_files(base, patterns)?;
    Ok(t)
}

/// Checks that a setting's template text parses (at configuration load).
pub fn check_text(text: &str) -> Result<(), TemplateError> {
    Templates::check_text(Dialect::Alertmanager, text)
}

/// Go's `time.Time.String()` form, which templates print for `.StartsAt`/`.EndsAt`.
fn go_time_string(t: &Timestamp) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{base}{frac} +0000 UTC")
}

/// Alertmanager's template data for one notification.
pub fn data(
    receiver: &str,
    group_labels: &LabelSet,
    external_url: &str,
    alerts: &[Alert],
    now: Timestamp,
) -> Value {
    let mut list = Vec::with_capacity(alerts.len());
    for a in alerts {
        let resolved = a.resolved_at(now);
        list.push(Value::Struct(BTreeMap::from([
            (
                "Status",
                Value::Str(if resolved { "resolved" } else { "firing" }.into()),
            ),
            ("Labels", Value::Kv(a.labels.to_map())),
            ("Annotations", Value::Kv(a.annotations.to_map())),
            ("StartsAt", Value::Str(go_time_string(&a.starts_at))),
            (
                "EndsAt",
                Value::Str(go_time_string(&if resolved {
                    a.ends_at
                } else {
                    crate::time::zero_time()
                })),
            ),
            ("GeneratorURL", Value::Str(a.generator_url.clone())),
            (
                "Fingerprint",
                Value::Str(fingerprint_string(a.fingerprint())),
            ),
        ])));
    }
    let all_resolved = alerts.iter().all(|a| a.resolved_at(now));
    let (mut common_labels, mut common_annotations) = match alerts.first() {
        Some(a) => (LabelSet::clone(&a.labels), LabelSet::clone(&a.annotations)),
        None => (LabelSet::new(), LabelSet::new()),
    };
    for a in alerts.iter().skip(1) {
        common_labels.retain(|k, v| a.labels.get(k) == Some(v));
        common_annotations.retain(|k, v| a.annotations.get(k) == Some(v));
    }
    Value::Struct(BTreeMap::from([
        // Upstream quotes the receiver name as a regular expression in the data model.
        ("Receiver", Value::Str(regexp_quote_meta(receiver))),
        (
            "Status",
            Value::Str(if all_resolved { "resolved" } else { "firing" }.into()),
        ),
        ("Alerts", Value::Alerts(list)),
        ("GroupLabels", Value::Kv(group_labels.to_map())),
        ("CommonLabels", Value::Kv(common_labels.to_map())),
        ("CommonAnnotations", Value::Kv(common_annotations.to_map())),
        ("ExternalURL", Value::Str(external_url.to_string())),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, zero_time};
    use std::sync::Arc;

    fn alert(labels: &[(&str, &str)], ends: Option<&str>) -> Alert {
        Alert {
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<LabelSet>()
                .into(),
            annotations: Arc::new(LabelSet::from([(
                "summary".to_string(),
                "disk full".to_string(),
            )])),
            starts_at: parse_rfc3339("2026-11-24T23:30:45.5Z").unwrap(),
            ends_at: ends.map_or_else(zero_time, |e| parse_rfc3339(e).unwrap()),
            generator_url: "http://prom/graph".into(),
            updated_at: zero_time(),
            timeout: false,
        }
    }

    fn sample() -> Value {
        let now = parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        data(
            "team.db",
            &[("alertname".to_string(), "DiskFull".to_string())].into(),
            "http://am:9093",
            &[
                alert(&[("alertname", "DiskFull"), ("instance", "a")], None),
                alert(
                    &[("alertname", "DiskFull"), ("instance", "b")],
                    Some("2026-11-24T23:50:00Z"),
                ),
            ],
            now,
        )
    }

    fn render(text: &str) -> String {
        defaults()
            .render_text(text, &sample())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn data_model_fields_and_methods() {
        assert_eq!(render("{{ .Receiver }} {{ .Status }}"), r"team\.db firing");
        assert_eq!(
            render("{{ len .Alerts }}/{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}"),
            "2/1/1"
        );
        assert_eq!(
            render("{{ range .Alerts.Resolved }}{{ .Labels.instance }} {{ .EndsAt }}{{ end }}"),
            "b 2026-11-24 23:50:00 +0000 UTC"
        );
        assert_eq!(
            render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
            "alertname=DiskFull;"
        );
        assert_eq!(
            render("{{ (index .Alerts 0).Labels.SortedPairs.Names | join \",\" }}"),
            "alertname,instance"
        );
        assert_eq!(
            render("{{ ((index .Alerts 0).Labels.Remove .GroupLabels.Names).Values }}"),
            "[a]"
        );
        // Maps range in key order, with key and value variables.
        assert_eq!(
            render("{{ range $k, $v := (index .Alerts 1).Labels }}{{ $k }}:{{ $v }},{{ end }}"),
            "alertname:DiskFull,instance:b,"
        );
        assert_eq!(
            render("{{ .CommonAnnotations.summary }}|{{ .GroupLabels.nope }}|"),
            "disk full||"
        );
        assert_eq!(render("{{ .ExternalURL }}"), "http://am:9093");
    }

    #[test]
    fn functions() {
        assert_eq!(
            render(r#"{{ "abc" | toUpper }} {{ toLower "AbC" }}"#),
            "ABC abc"
        );
        assert_eq!(render(r#"{{ title "disk full-now" }}"#), "Disk Full-Now");
        assert_eq!(render(r#"{{ stringSlice "a" "b" | join "+" }}"#), "a+b");
        assert_eq!(
            render(r#"{{ reReplaceAll "(\\w+)-(\\d+)" "$2x$1" "host-42" }}"#),
            "42xhost"
        );
        assert_eq!(
            render(r#"{{ if match "^Disk" .CommonLabels.alertname }}y{{ end }}"#),
            "y"
        );
        assert_eq!(
            render(r#"{{ safeHtml "<b>" }} {{ html "<b>" }}"#),
            "<b> &lt;b&gt;"
        );
        assert_eq!(render(r#"{{ printf "%s=%d %q" "x" 3 "y" }}"#), "x=3 \"y\"");
        assert_eq!(
            render(r#"{{ if and (eq .Status "firing") (gt (len .Alerts) 1) }}ok{{ end }}"#),
            "ok"
        );
        assert_eq!(
            render(r#"{{ if eq .Status "resolved" "firing" }}any{{ end }}"#),
            "any"
        );
        assert_eq!(
            render(r#"{{ if not .Alerts.Resolved }}none{{ else }}some{{ end }}"#),
            "some"
        );
    }

    #[test]
    fn control_flow_trim_and_variables() {
        assert_eq!(
            render("{{- $n := len .Alerts -}}\n  {{ if gt $n 5 }}many{{ else if gt $n 1 }}few{{ else }}one{{ end }}  \n{{- /* note */ -}}!"),
            "few!"
        );
        assert_eq!(
            render("{{ with .GroupLabels.nope }}x{{ else }}empty{{ end }}"),
            "empty"
        );
        assert_eq!(
            render("{{ range .Alerts.Firing }}{{ $.Receiver }}{{ end }}"),
            r"team\.db"
        );
        assert_eq!(
            render("{{ range $i, $a := .Alerts }}{{ $i }}{{ end }}"),
            "01"
        );
        assert_eq!(
            render("{{ range .Alerts.Firing }}{{ else }}none{{ end }}x"),
            "x"
        );
        assert_eq!(
            render(r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" .Status }}"#),
            "[firing]"
        );
    }

    #[test]
    fn parse_and_exec_errors_are_clear() {
        for (text, want) in [
            ("{{ if .Status }}x", "unexpected EOF in if"),
            ("{{ end }}", "unexpected {{end}}"),
            ("a\n{{ .Status", "line 2: unclosed action"),
            (r#"{{ "abc }}"#, "unclosed action"),
        ] {
            let e = check_text(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let t = defaults();
        let e = t
            .render_text("{{ .Nope }}", &sample())
            .unwrap_err()
            .to_string();
        assert!(e.contains("can't evaluate field Nope"), "{e}");
        let e = t
            .render_text("{{ template \"missing\" . }}", &sample())
            .unwrap_err();
        assert!(
            matches!(e, RenderError::Undefined(ref n) if n == "missing"),
            "{e}"
        );
        let e = t
            .render_text("{{ nofunc 1 }}", &sample())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: function \"nofunc\" not defined"), "{e}");
        let mut rec = defaults();
        rec.add(
            "r",
            r#"{{ define "loop" }}{{ template "loop" . }}{{ end }}"#,
        )
        .unwrap();
        assert!(matches!(
            rec.render("loop", &sample()),
            Err(RenderError::TooDeep(_))
        ));
    }

    #[test]
    fn defaults_render_for_every_notifier_name() {
        let t = defaults();
        for name in [
            "__subject",
            "__description",
            "slack.default.title",
            "slack.default.username",
            "slack.default.fallback",
            "slack.default.text",
            "slack.default.titlelink",
            "pagerduty.default.description",
            "pagerduty.default.client",
            "pagerduty.default.clientURL",
            "email.default.subject",
            "email.default.html",
        ] {
            assert!(t.has(name), "{name} not defined");
            t.render(name, &sample())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let subject = t.render("__subject", &sample()).unwrap();
        assert_eq!(subject, "[FIRING:1] DiskFull");
        // The alert list takes a list of alerts, as the notifier defaults pass it.
        let Value::Struct(fields) = sample() else {
            panic!("data is a struct")
        };
        let list = t.render("__text_alert_list", &fields["Alerts"]).unwrap();
        assert!(
            list.contains("instance = b") && list.contains("summary = disk full"),
            "{list}"
        );
        let html = t.render("email.default.html", &sample()).unwrap();
        assert!(
            html.contains("disk full") && html.contains("http://am:9093"),
            "{html}"
        );
    }

    #[test]
    fn files_load_by_glob_relative_to_base_and_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(
            dir.path().join("t/a.tmpl"),
            r#"{{ define "__subject" }}custom {{ .Status }}{{ end }}{{ define "mine" }}{{ template "__subject" . }}!{{ end }}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("t/skip.txt"), "{{ broken").unwrap();
        let t = load(dir.path(), &["t/*.tmpl".to_string()]).unwrap();
        assert_eq!(t.render("mine", &sample()).unwrap(), "custom firing!");
        std::fs::write(dir.path().join("t/b.tmpl"), "{{ define \"x\" }}{{ if }}").unwrap();
        let e = load(dir.path(), &["t/*.tmpl".to_string()]).unwrap_err();
        assert!(e.to_string().contains("b.tmpl"), "{e}");
        // A pattern matching nothing is not an error (upstream's glob semantics).
        assert!(load(dir.path(), &["none/*.tmpl".to_string()]).is_ok());
    }
}
