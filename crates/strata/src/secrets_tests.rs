//! No secret of the configuration is ever shown: `/config` and `{:?}` print `<secret>`, and
//! every field whose name looks like a secret, in every section, is of the `Secret` type.

use crate::config::Config;
use strata_model::secret_audit::{leaves, plain_secret_fields, LeafKind};

/// Field names that look like secrets and are not: an AWS access key id names the key;
/// `key_prefix` names the query-frontend's memcached keys.
const NOT_SECRETS: &[&str] = &["access_key_id", "key_prefix"];

#[test]
fn every_field_named_like_a_secret_is_a_secret() {
    let plain = plain_secret_fields::<Config>(NOT_SECRETS);
    assert!(
        plain.is_empty(),
        "configuration fields that look like secrets but are plain strings (make them \
         strata_model::Secret, or list them in NOT_SECRETS if they are not secrets): {plain:?}"
    );
    // The walk sees every section (an empty answer is not a broken walk).
    let all = leaves::<Config>();
    let kind = |p: &str| all.iter().find(|l| l.path == p).map(|l| l.kind);
    assert_eq!(kind("bucket.s3.secret_access_key"), Some(LeafKind::Secret));
    assert_eq!(
        kind("bucket.gcs.service_account_key"),
        Some(LeafKind::Secret)
    );
    assert_eq!(kind("server.http_listen_address"), Some(LeafKind::Str));
    assert!(all
        .iter()
        .any(|l| l.path.starts_with("alertmanager.receivers_firewall.")));
}

#[test]
fn the_config_page_shows_placeholders() {
    const S: &str = "S3NT1NEL";
    for (backend, section) in [
        (
            "s3",
            format!("s3: {{bucket_name: b, access_key_id: ak, secret_access_key: {S}-sk, session_token: {S}-st}}"),
        ),
        ("gcs", format!("gcs: {{bucket_name: b, service_account_key: '{S}-key'}}")),
        (
            "azure",
            format!("azure: {{container_name: c, account_name: a, access_key: {S}-ak}}"),
        ),
    ] {
        let cfg = Config::parse(&format!("bucket:\n  backend: {backend}\n  {section}\n")).unwrap();
        cfg.validate().unwrap();
        let page = cfg.shown().unwrap();
        assert!(!page.contains(S), "{page}");
        assert!(page.contains("<secret>"), "{page}");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains(S), "{debug}");
        // The page loaded back as a configuration is refused, naming the placeholder.
        let e = Config::parse(&page).unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{e}");
    }
    // Without secrets the page loads back as the same configuration.
    let page = Config::default().shown().unwrap();
    assert_eq!(Config::parse(&page).unwrap(), Config::default());
}
