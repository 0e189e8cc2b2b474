//! The tenant sandbox: what a tenant's own configuration (Mimir's `POST /api/v1/alerts`) may
//! not say, because Strata would act on it with the server's rights. Mimir's rule: every
//! setting that names a file on the server (`password_file`, `credentials_file`,
//! `bearer_token_file`, `api_url_file`, `routing_key_file`, `auth_password_file`, the TLS
//! `*_file`s, ... any key ending in `_file`) is refused with a 400 naming it, and `templates:`
//! may only name the tenant's own uploaded template files. The operator's configuration
//! (`alertmanager.config_file`) is not sandboxed.
//!
//! The check runs on the YAML document, not on the parsed configuration, so that a `*_file`
//! setting added to the schema later is refused without anyone remembering to list it.

use crate::amconfig::AmConfigError;
use serde_yaml::Value;

fn refused(field: String, message: String) -> AmConfigError {
    AmConfigError::Invalid { field, message }
}

/// Checks a tenant's `alertmanager_config` text.
pub(crate) fn check(text: &str) -> Result<(), AmConfigError> {
    let doc: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(text)?
    };
    if let Some(templates) = doc.get("templates").and_then(Value::as_sequence) {
        for (i, t) in templates.iter().enumerate() {
            let name = t.as_str().unwrap_or_default();
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('\\');
            if !plain {
                return Err(refused(
                    format!("templates[{i}]"),
                    format!(
                        "{name:?} is not allowed in a tenant's configuration: templates are the \
                         tenant's own template_files, named by file name (or a glob of them)"
                    ),
                ));
            }
        }
    }
    files(&doc, String::new())
}

/// Refuses every set `*_file` key anywhere in the document.
fn files(v: &Value, path: String) -> Result<(), AmConfigError> {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let Some(key) = k.as_str() else { continue };
                let field = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                let set = !matches!(v, Value::Null) && v.as_str() != Some("");
                if key.ends_with("_file") && set {
                    return Err(refused(
                        field,
                        format!(
                            "{key} is not allowed in a tenant's configuration: Strata would read \
                             that file on the server; put the value itself in the configuration"
                        ),
                    ));
                }
                files(v, field)?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                files(item, format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Tagged(t) => files(&t.value, path),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::amconfig::AmConfig;
    use std::collections::BTreeMap;

    fn tenant(text: &str) -> Result<(), String> {
        AmConfig::load_tenant(text, &BTreeMap::new())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    const HEAD: &str = "route: {receiver: a}\nreceivers:\n- name: a\n";

    #[test]
    fn every_file_setting_is_refused_by_name() {
        for (body, field) in [
            ("  webhook_configs: [{url: 'http://h/', http_config: {basic_auth: {username: u, password_file: /proc/self/environ}}}]", "receivers[0].webhook_configs[0].http_config.basic_auth.password_file"),
            ("  webhook_configs: [{url: 'http://h/', http_config: {authorization: {credentials_file: /etc/shadow}}}]", "receivers[0].webhook_configs[0].http_config.authorization.credentials_file"),
            ("  webhook_configs: [{url: 'http://h/', http_config: {bearer_token_file: /x}}]", "receivers[0].webhook_configs[0].http_config.bearer_token_file"),
            ("  webhook_configs: [{url: 'http://h/', http_config: {tls_config: {key_file: /x}}}]", "receivers[0].webhook_configs[0].http_config.tls_config.key_file"),
            ("  slack_configs: [{api_url_file: /x}]", "receivers[0].slack_configs[0].api_url_file"),
            ("  pagerduty_configs: [{routing_key_file: /x}]", "receivers[0].pagerduty_configs[0].routing_key_file"),
            ("  pagerduty_configs: [{service_key_file: /x}]", "receivers[0].pagerduty_configs[0].service_key_file"),
            ("  email_configs: [{to: a@b, from: a@b, smarthost: 'h:25', auth_password_file: /x}]", "receivers[0].email_configs[0].auth_password_file"),
        ] {
            let e = tenant(&format!("{HEAD}{body}\n")).unwrap_err();
            assert!(e.starts_with(&format!("{field}: ")), "{body}: {e}");
            assert!(e.contains("not allowed"), "{e}");
        }
        for global in [
            "smtp_auth_password_file: /x",
            "slack_api_url_file: /x",
            "opsgenie_api_key_file: /x",
            "victorops_api_key_file: /x",
            "http_config: {basic_auth: {username: u, password_file: /x}}",
        ] {
            let e = tenant(&format!("global: {{{global}}}\n{HEAD}")).unwrap_err();
            assert!(e.starts_with("global."), "{global}: {e}");
            assert!(e.contains("_file: "), "{global}: {e}");
        }
        // The operator's configuration may use them.
        assert!(
            AmConfig::load(&format!("{HEAD}  slack_configs: [{{api_url_file: /x}}]\n")).is_ok()
        );
    }

    #[test]
    fn templates_name_only_the_tenants_files() {
        assert!(tenant(&format!("templates: ['*.tmpl', 'a.tmpl']\n{HEAD}")).is_ok());
        for bad in ["/etc/passwd", "../x.tmpl", "sub/x.tmpl", "..", "C:\\\\x"] {
            let e = tenant(&format!("templates: ['{bad}']\n{HEAD}")).unwrap_err();
            assert!(e.starts_with("templates[0]: "), "{bad}: {e}");
        }
    }
}
