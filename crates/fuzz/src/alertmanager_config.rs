//! `alertmanager_config`: a tenant's Alertmanager configuration upload (Mimir's
//! `POST /api/v1/alerts`: an `alertmanager.yml` text plus template files) through
//! `AmConfig::load_tenant` (strict YAML parsing, the tenant sandbox, template parsing,
//! validation with upstream's rules, the shown text), then what the dispatcher does with a
//! loaded configuration: route an alert, compute its group key, check the route's time
//! intervals, and render the uploaded templates for a notification.
//!
//! Input: the configuration text, then optionally template files, separated by NUL bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use strata_alertmanager::alert::Alert;
use strata_alertmanager::amconfig::AmConfig;
use strata_alertmanager::labels::LabelSet;
use strata_alertmanager::time::Timestamp;

/// Most template files taken from one input.
const MAX_TEMPLATE_FILES: usize = 4;

fn alert_labels() -> LabelSet {
    let mut l = LabelSet::new();
    for (n, v) in [
        ("alertname", "HighLatency"),
        ("job", "api"),
        ("severity", "page"),
        ("team", "db"),
    ] {
        l.insert(n.into(), v.into());
    }
    l
}

/// A Wednesday 10:30 UTC, inside and outside typical time intervals.
fn now() -> Timestamp {
    chrono_like(1_700_044_200)
}

fn chrono_like(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(secs, 0).unwrap_or_default()
}

/// Body of the `alertmanager_config` target.
pub fn run(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let Some(Ok(config)) = parts.next().map(std::str::from_utf8) else {
        return;
    };
    let mut files = BTreeMap::new();
    for (i, part) in parts.take(MAX_TEMPLATE_FILES).enumerate() {
        let Ok(text) = std::str::from_utf8(part) else {
            return;
        };
        files.insert(format!("t{i}.tmpl"), text.to_owned());
    }
    let Ok(loaded) = AmConfig::load_tenant(config, &files) else {
        return;
    };
    let labels = alert_labels();
    let now = now();
    let alert = Alert {
        labels: Arc::new(labels.clone()),
        annotations: Arc::new(LabelSet::new()),
        starts_at: chrono_like(1_700_040_000),
        ends_at: strata_alertmanager::time::zero_time(),
        generator_url: "http://prometheus.example/graph".into(),
        updated_at: chrono_like(1_700_044_000),
        timeout: false,
    };
    for route in loaded.route.match_labels(&labels) {
        let group = route.group_labels(&labels);
        let _ = route.group_key(&group);
        let _ = loaded.route_muted(&route.opts, now);
        let data = strata_alertmanager::template::data(
            &route.opts.receiver,
            &group,
            "http://alertmanager.example",
            std::slice::from_ref(&alert),
            now,
        );
        // A tenant's templates run at notification time: their bodies outside `define` are
        // ignored in files, so render each file's text as a notifier setting would be.
        for text in files.values() {
            let _ = loaded.templates.render_text(text, &data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "route:\n  receiver: hook\n  group_by: [alertname]\n  routes:\n    - receiver: hook\n      matchers: ['team=\"db\"']\n      mute_time_intervals: [weekends]\nreceivers:\n  - name: hook\n    webhook_configs: [{url: 'http://127.0.0.1:5001/'}]\ntime_intervals:\n  - name: weekends\n    time_intervals: [{weekdays: ['saturday', 'sunday']}]\n";

    #[test]
    fn a_valid_upload_loads_and_routes() {
        let loaded = AmConfig::load_tenant(CONFIG, &BTreeMap::new()).unwrap();
        let routes = loaded.route.match_labels(&alert_labels());
        assert_eq!(routes.len(), 1);
        assert!(!loaded.route_muted(&routes[0].opts, now()), "a Wednesday");
        let mut input = CONFIG.as_bytes().to_vec();
        input.push(0);
        input.extend_from_slice(b"{{ define \"x\" }}{{ .Status }}{{ end }}{{ template \"x\" . }}");
        run(&input);
    }

    #[test]
    fn a_file_setting_is_refused() {
        let text = CONFIG.replace("url: 'http://127.0.0.1:5001/'", "url_file: /etc/passwd");
        assert!(AmConfig::load_tenant(&text, &BTreeMap::new()).is_err());
        run(text.as_bytes());
    }
}
