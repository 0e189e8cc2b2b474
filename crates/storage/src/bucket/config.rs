//! Bucket configuration: a YAML/JSON section with a default for every field, unknown fields
//! rejected, and [`BucketConfig::validate`] naming the offending field.

use super::BucketError;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use strata_model::Secret;

/// Which object store backs the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// A directory on the local filesystem (the embedded default).
    #[default]
    Filesystem,
    /// Amazon S3 or an S3-compatible server (MinIO, SeaweedFS, Ceph RGW, …).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// The `bucket` configuration section. Only the sub-section of the chosen backend is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BucketConfig {
    /// Backend: `filesystem`, `s3`, `gcs` or `azure`.
    pub backend: BackendKind,
    /// Settings of the `filesystem` backend.
    pub filesystem: FilesystemConfig,
    /// Settings of the `s3` backend.
    pub s3: S3Config,
    /// Settings of the `gcs` backend.
    pub gcs: GcsConfig,
    /// Settings of the `azure` backend.
    pub azure: AzureConfig,
    /// Bound on one HTTP request (object_store's client timeout); a retry gets a fresh bound.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Bound on establishing a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How many times object_store retries a failed idempotent request (5xx, 429, I/O errors).
    pub max_retries: usize,
    /// First backoff between retries; doubles up to `max_backoff`, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Largest backoff between retries.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Bound on one bucket operation including all its retries (also applied to the local
    /// filesystem backend).
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
}

impl Default for BucketConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Filesystem,
            filesystem: FilesystemConfig::default(),
            s3: S3Config::default(),
            gcs: GcsConfig::default(),
            azure: AzureConfig::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(120),
        }
    }
}

/// Settings of the local filesystem backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Directory holding the bucket; created if missing. Strata resolves a relative path
    /// against its `data_dir`.
    pub directory: PathBuf,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            directory: PathBuf::from("bucket"),
        }
    }
}

/// Settings of the S3 backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name (required).
    pub bucket_name: String,
    /// Region; defaults to `us-east-1` when empty, which S3-compatible servers accept.
    pub region: String,
    /// Endpoint URL for S3-compatible servers, e.g. `http://127.0.0.1:9000`; empty for AWS.
    pub endpoint: String,
    /// Static access key id; empty to use the environment/instance credentials chain.
    pub access_key_id: String,
    /// Static secret access key, required with `access_key_id`. Shown as `<secret>`.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials. Shown as `<secret>`.
    pub session_token: Secret,
    /// Address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`; most
    /// S3-compatible servers need it.
    pub force_path_style: bool,
    /// Allow plain-HTTP endpoints (local test servers).
    pub allow_http: bool,
}

/// Settings of the Google Cloud Storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcsConfig {
    /// Bucket name (required).
    pub bucket_name: String,
    /// Path of a service-account JSON key file; empty for application default credentials.
    pub service_account_path: String,
    /// Service-account JSON key inline (alternative to `service_account_path`). Shown as
    /// `<secret>`.
    pub service_account_key: Secret,
}

/// Settings of the Azure Blob Storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    /// Storage account name (required unless `use_emulator`).
    pub account_name: String,
    /// Container name (required).
    pub container_name: String,
    /// Account access key; empty to use the environment's credentials chain. Shown as
    /// `<secret>`.
    pub access_key: Secret,
    /// Custom endpoint URL (sovereign clouds, Azurite).
    pub endpoint: String,
    /// Use the Azurite emulator's well-known account.
    pub use_emulator: bool,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> BucketError {
    BucketError::Config {
        field,
        reason: reason.into(),
    }
}

impl BucketConfig {
    /// Checks the fields the chosen backend needs; errors name the field.
    pub fn validate(&self) -> Result<(), BucketError> {
        if self.request_timeout.is_zero() {
            return Err(invalid("bucket.request_timeout", "must be positive"));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid("bucket.connect_timeout", "must be positive"));
        }
        if self.operation_timeout < self.request_timeout {
            return Err(invalid(
                "bucket.operation_timeout",
                "must be at least bucket.request_timeout",
            ));
        }
        if self.initial_backoff.is_zero() {
            return Err(invalid("bucket.initial_backoff", "must be positive"));
        }
        if self.max_backoff < self.initial_backoff {
            return Err(invalid(
                "bucket.max_backoff",
                "must be at least bucket.initial_backoff",
            ));
        }
        match self.backend {
            BackendKind::Filesystem => {
                if self.filesystem.directory.as_os_str().is_empty() {
                    return Err(invalid("bucket.filesystem.directory", "must not be empty"));
                }
            }
            BackendKind::S3 => {
                let s = &self.s3;
                if s.bucket_name.is_empty() {
                    return Err(invalid("bucket.s3.bucket_name", "required"));
                }
                if s.access_key_id.is_empty() != s.secret_access_key.is_empty() {
                    return Err(invalid(
                        "bucket.s3.secret_access_key",
                        "access_key_id and secret_access_key must be set together",
                    ));
                }
                if !s.session_token.is_empty() && s.access_key_id.is_empty() {
                    return Err(invalid(
                        "bucket.s3.session_token",
                        "requires access_key_id and secret_access_key",
                    ));
                }
                let scheme_ok =
                    s.endpoint.starts_with("http://") || s.endpoint.starts_with("https://");
                if !s.endpoint.is_empty() && !scheme_ok {
                    return Err(invalid(
                        "bucket.s3.endpoint",
                        "must start with http:// or https://",
                    ));
                }
                if s.endpoint.starts_with("http://") && !s.allow_http {
                    return Err(invalid(
                        "bucket.s3.allow_http",
                        "must be true for an http:// endpoint",
                    ));
                }
            }
            BackendKind::Gcs => {
                let g = &self.gcs;
                if g.bucket_name.is_empty() {
                    return Err(invalid("bucket.gcs.bucket_name", "required"));
                }
                if !g.service_account_path.is_empty() && !g.service_account_key.is_empty() {
                    return Err(invalid(
                        "bucket.gcs.service_account_key",
                        "set either service_account_path or service_account_key, not both",
                    ));
                }
            }
            BackendKind::Azure => {
                let a = &self.azure;
                if a.container_name.is_empty() {
                    return Err(invalid("bucket.azure.container_name", "required"));
                }
                if a.account_name.is_empty() && !a.use_emulator {
                    return Err(invalid("bucket.azure.account_name", "required"));
                }
            }
        }
        Ok(())
    }

    /// Bound on one bucket operation including retries.
    pub(super) fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    fn client_options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
            .with_allow_http(self.backend == BackendKind::S3 && self.s3.allow_http)
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            // object_store stops retrying once this much time has passed since the first try;
            // keep it inside the operation bound so the typed error, not the timeout, surfaces.
            retry_timeout: self.operation_timeout,
        }
    }
}

pub(super) fn build_store(cfg: &BucketConfig) -> Result<Arc<dyn ObjectStore>, BucketError> {
    let backend_err = |source| BucketError::Backend {
        op: "configure",
        path: String::new(),
        source,
    };
    Ok(match cfg.backend {
        BackendKind::Filesystem => {
            let dir = &cfg.filesystem.directory;
            std::fs::create_dir_all(dir).map_err(|source| BucketError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(backend_err)?
                    // Empty block directories left by deletes would otherwise show up forever
                    // as (empty) prefixes in listings.
                    .with_automatic_cleanup(true),
            )
        }
        BackendKind::S3 => {
            let s = &cfg.s3;
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s.bucket_name)
                .with_region(if s.region.is_empty() {
                    "us-east-1"
                } else {
                    &s.region
                })
                .with_virtual_hosted_style_request(!s.force_path_style)
                .with_allow_http(s.allow_http)
                .with_client_options(cfg.client_options())
                .with_retry(cfg.retry());
            if !s.endpoint.is_empty() {
                b = b.with_endpoint(&s.endpoint);
            }
            if !s.access_key_id.is_empty() {
                b = b
                    .with_access_key_id(&s.access_key_id)
                    .with_secret_access_key(s.secret_access_key.expose());
            }
            if !s.session_token.is_empty() {
                b = b.with_token(s.session_token.expose());
            }
            Arc::new(b.build().map_err(backend_err)?)
        }
        BackendKind::Gcs => {
            let g = &cfg.gcs;
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(&g.bucket_name)
                .with_client_options(cfg.client_options())
                .with_retry(cfg.retry());
            if !g.service_account_path.is_empty() {
                b = b.with_service_account_path(&g.service_account_path);
            }
            if !g.service_account_key.is_empty() {
                b = b.with_service_account_key(g.service_account_key.expose());
            }
            Arc::new(b.build().map_err(backend_err)?)
        }
        BackendKind::Azure => {
            let a = &cfg.azure;
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_container_name(&a.container_name)
                .with_use_emulator(a.use_emulator)
                .with_client_options(cfg.client_options())
                .with_retry(cfg.retry());
            if !a.account_name.is_empty() {
                b = b.with_account(&a.account_name);
            }
            if !a.access_key.is_empty() {
                b = b.with_access_key(a.access_key.expose());
            }
            if !a.endpoint.is_empty() {
                b = b.with_endpoint(a.endpoint.clone());
            }
            Arc::new(b.build().map_err(backend_err)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_filesystem() {
        let c: BucketConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, BucketConfig::default());
        assert_eq!(c.backend, BackendKind::Filesystem);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_str::<BucketConfig>(r#"{"s3": {"bukket": "x"}}"#).unwrap_err();
        assert!(e.to_string().contains("bukket"), "{e}");
        assert!(serde_json::from_str::<BucketConfig>(r#"{"backend": "ftp"}"#).is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = BucketConfig {
            backend: BackendKind::S3,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bucket.s3.bucket_name"), "{e}");
        c.s3.bucket_name = "b".into();
        c.s3.access_key_id = "ak".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bucket.s3.secret_access_key"), "{e}");
        c.s3.secret_access_key = "sk".into();
        c.s3.endpoint = "http://127.0.0.1:9000".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bucket.s3.allow_http"), "{e}");
        c.s3.allow_http = true;
        c.validate().unwrap();

        let c = BucketConfig {
            backend: BackendKind::Azure,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bucket.azure.container_name"), "{e}");
        let c = BucketConfig {
            backend: BackendKind::Gcs,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bucket.gcs.bucket_name"));
        let c = BucketConfig {
            request_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bucket.request_timeout"));
    }

    #[test]
    fn secrets_are_never_shown() {
        const SENTINEL: &str = "S3NT1NEL";
        let docs = [
            r#"{"backend": "s3", "s3": {"bucket_name": "b", "access_key_id": "ak", "secret_access_key": "S3NT1NEL-sk", "session_token": "S3NT1NEL-st"}}"#,
            r#"{"backend": "gcs", "gcs": {"bucket_name": "b", "service_account_key": "{\"k\": \"S3NT1NEL\"}"}}"#,
            r#"{"backend": "azure", "azure": {"container_name": "c", "account_name": "a", "access_key": "S3NT1NEL"}}"#,
        ];
        for doc in docs {
            let c: BucketConfig = serde_json::from_str(doc).unwrap();
            c.validate().unwrap();
            let shown = format!("{}\n{c:?}", serde_json::to_string(&c).unwrap());
            assert!(!shown.contains(SENTINEL), "{shown}");
            assert!(shown.contains("<secret>"), "{shown}");
            // The shown form does not load back as if `<secret>` were the key.
            let e = serde_json::from_str::<BucketConfig>(&serde_json::to_string(&c).unwrap())
                .unwrap_err();
            assert!(e.to_string().contains("placeholder"), "{e}");
        }
        assert_eq!(
            serde_json::from_str::<BucketConfig>(r#"{"s3": {"secret_access_key": "x"}}"#)
                .unwrap()
                .s3
                .secret_access_key
                .expose(),
            "x"
        );
    }

    #[test]
    fn every_field_named_like_a_secret_is_a_secret() {
        // `access_key_id` names the key, it is not the key (AWS does not treat it as secret).
        let plain =
            strata_model::secret_audit::plain_secret_fields::<BucketConfig>(&["access_key_id"]);
        assert!(plain.is_empty(), "plain-string secrets: {plain:?}");
        // The walk does see the fields (an empty answer is not a broken walk).
        let leaves = strata_model::secret_audit::leaves::<BucketConfig>();
        let kind = |p: &str| leaves.iter().find(|l| l.path == p).map(|l| l.kind);
        use strata_model::secret_audit::LeafKind;
        assert_eq!(kind("s3.secret_access_key"), Some(LeafKind::Secret));
        assert_eq!(kind("azure.access_key"), Some(LeafKind::Secret));
        assert_eq!(kind("s3.access_key_id"), Some(LeafKind::Str));
    }

    #[test]
    fn builds_each_cloud_backend_offline() {
        // Building a client does no I/O; this catches option wiring errors.
        let mut c = BucketConfig {
            backend: BackendKind::S3,
            ..Default::default()
        };
        c.s3.bucket_name = "b".into();
        c.s3.access_key_id = "ak".into();
        c.s3.secret_access_key = "sk".into();
        build_store(&c).unwrap();
        let mut c = BucketConfig {
            backend: BackendKind::Azure,
            ..Default::default()
        };
        c.azure.container_name = "c".into();
        c.azure.use_emulator = true;
        build_store(&c).unwrap();
    }
}
