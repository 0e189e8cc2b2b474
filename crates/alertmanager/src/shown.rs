//! What Strata shows of an Alertmanager configuration (`config.original` of `/api/v2/status`,
//! Mimir's `GET /api/v1/alerts`): never a secret.
//!
//! Upstream always shows the configuration re-serialized, every secret as `<secret>`. Strata
//! shows the text exactly as written when it holds no secret (operators and `amtool config
//! show` see their own file), and the re-serialization with `<secret>` otherwise. Comments are
//! not secrets Strata can recognise: a file without secret settings is shown with its comments.

use crate::amconfig::{AmConfig, AmConfigError};
use serde_yaml::Value;
use strata_model::SECRET_PLACEHOLDER;

/// The text to show for a configuration loaded from `text`.
pub(crate) fn shown_text(text: &str, config: &AmConfig) -> Result<String, AmConfigError> {
    // Every secret field serializes as the placeholder when set (a webhook URL as
    // `scheme://host/<secret>`), and a secret field cannot hold the placeholder itself (it is
    // refused at load), so a placeholder in the serialization means a secret was set.
    if holds_placeholder(&serde_yaml::to_value(config)?) {
        Ok(serde_yaml::to_string(config)?)
    } else {
        Ok(text.to_string())
    }
}

/// The text to show for a configuration text that loaded before (a tenant's stored one).
pub(crate) fn shown_of(text: &str) -> Result<String, AmConfigError> {
    let config: AmConfig = if text.trim().is_empty() {
        AmConfig::default()
    } else {
        serde_yaml::from_str(text)?
    };
    shown_text(text, &config)
}

fn holds_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(SECRET_PLACEHOLDER),
        Value::Sequence(items) => items.iter().any(holds_placeholder),
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| holds_placeholder(k) || holds_placeholder(v)),
        Value::Tagged(t) => holds_placeholder(&t.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::amconfig::AmConfig;

    #[test]
    fn text_without_secrets_is_shown_as_written() {
        let text = "# ops\nroute: {receiver: a}\nreceivers: [{name: a}]\n";
        assert_eq!(AmConfig::load(text).unwrap().shown, text);
    }

    #[test]
    fn secrets_are_shown_as_placeholders() {
        let text = "# token: hunter2\nroute: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs: [{url: 'http://hook.example:8080/p/hunter2', http_config: {bearer_token: hunter2}}]\n";
        let c = AmConfig::load(text).unwrap();
        assert!(!c.shown.contains("hunter2"), "{}", c.shown);
        assert!(
            c.shown.contains("url: http://hook.example:8080/<secret>"),
            "{}",
            c.shown
        );
        assert!(c.shown.contains("bearer_token: <secret>"), "{}", c.shown);
        assert_eq!(c.original.expose(), text);
        // The shown text does not load: the placeholder is not a credential.
        let e = AmConfig::load(&c.shown).unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{e}");
    }
}
