use crate::amconfig::AmConfigError;
use crate::silence::SilenceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use thiserror::Error;

/// Errors of the alertmanager component.
#[derive(Debug, Error)]
pub enum AlertmanagerError {
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("cannot read alertmanager configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid alertmanager configuration {path}: {source}")]
    LoadConfig {
        path: PathBuf,
        #[source]
        source: AmConfigError,
    },
    #[error("cannot build the HTTP client for notifications: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("tenancy.single_tenant_id: {0}")]
    Tenancy(#[source] strata_model::ModelError),
    #[error("cannot read alertmanager state {path}: {source}")]
    ReadState {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("cannot write alertmanager state {path}: {source}")]
    WriteState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the alertmanager state of tenant {tenant:?}: {source}")]
    EncodeState {
        tenant: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode the alertmanager configuration of tenant {tenant:?}: {source}")]
    EncodeConfig {
        tenant: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("cannot show the alertmanager configuration of tenant {tenant:?}: {source}")]
    ShowConfig {
        tenant: String,
        #[source]
        source: AmConfigError,
    },
    #[error("cannot read alertmanager state file {path} for the bucket copy: {source}")]
    ReadStateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("alertmanager state in the bucket (tenant {tenant:?}, object {object}): {source}")]
    BucketState {
        tenant: String,
        object: String,
        /// Boxed: the bucket's error is large and this one travels in every `Result`.
        #[source]
        source: Box<strata_storage::bucket::BucketError>,
    },
    #[error("cannot list tenants in the alertmanager state directory {path}: {source}")]
    ScanState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for alertmanager peers on {address} (alertmanager.ring.grpc_listen_address): {source}")]
    GrpcListen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid stored alertmanager configuration {path}: {source}")]
    StoredConfig {
        path: PathBuf,
        #[source]
        source: UserConfigError,
    },
    #[error("the alertmanager configuration of tenant {tenant:?} received from a peer is invalid: {source}")]
    PeerConfig {
        tenant: String,
        #[source]
        source: UserConfigError,
    },
    /// The ring settings, or a step of this replica's life in the ring (registering, leaving).
    #[error("alertmanager ring: {0}")]
    Ring(#[source] strata_ring::RingError),
    /// `alertmanager.ring.enabled` without the cluster KV to keep the ring in.
    #[error("alertmanager.ring.enabled: the ring lives in the cluster KV, and none was given (list the meta voters in meta.peers)")]
    NoKv,
}

/// Why a state snapshot could not be read. A missing file is not an error (a fresh start);
/// anything else is, because starting empty would silently drop silences and re-send
/// notifications.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid snapshot: {0}")]
    Decode(#[source] serde_json::Error),
    #[error(
        "snapshot format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("snapshot belongs to tenant {found:?}, not {expected:?}")]
    WrongTenant { found: String, expected: String },
}

/// A per-tenant configuration document (Mimir's `alertmanager_config` + `template_files`) that
/// is refused.
#[derive(Debug, Error)]
pub enum UserConfigError {
    #[error("not a valid configuration document (YAML with alertmanager_config and template_files): {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("configuration provided is empty; to remove the configuration use DELETE")]
    Empty,
    #[error("invalid alertmanager_config: {0}")]
    Invalid(#[source] AmConfigError),
    #[error("invalid template file name {0:?}: must be a plain file name")]
    TemplateName(String),
}

/// A request the HTTP API refuses.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    BadFilter(crate::matcher::MatcherError),
    #[error("invalid receiver regex {0:?}: {1}")]
    BadReceiverRegex(String, #[source] regex::Error),
    #[error(transparent)]
    Silence(#[from] SilenceError),
    #[error("silence not found")]
    SilenceNotFound,
    #[error("failed to reload config: {0}")]
    Reload(#[source] AlertmanagerError),
    #[error(transparent)]
    Tenant(strata_model::TenantError),
    #[error(transparent)]
    UserConfig(UserConfigError),
    #[error("no alertmanager configuration stored for this tenant")]
    ConfigNotFound,
    #[error("{0}")]
    Internal(#[source] AlertmanagerError),
    #[error("request handling aborted: {0}")]
    Aborted(#[source] tokio::task::JoinError),
    #[error("no alertmanager replica owning tenant {tenant:?} answered (last: {last})")]
    NoOwnerReachable { tenant: String, last: String },
    #[error("request body is larger than {limit} bytes (alertmanager.max_request_body_bytes)")]
    BodyTooLarge { limit: usize },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadFilter(_) | ApiError::BadReceiverRegex(..) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Silence(SilenceError::NotFound) | ApiError::SilenceNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::Silence(_) => StatusCode::BAD_REQUEST,
            ApiError::Tenant(_) => StatusCode::UNAUTHORIZED,
            ApiError::UserConfig(_) => StatusCode::BAD_REQUEST,
            ApiError::ConfigNotFound => StatusCode::NOT_FOUND,
            ApiError::Reload(_) | ApiError::Internal(_) | ApiError::Aborted(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::NoOwnerReachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl IntoResponse for ApiError {
    /// Upstream answers errors with a JSON string body.
    fn into_response(self) -> Response {
        let body = serde_json::Value::String(self.to_string()).to_string();
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A failed notification attempt. URLs in it are shown as `scheme://host:port/<secret>`: the
/// message is logged, and a URL may carry a token.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("POST {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url}: unexpected status code {status}: {body}")]
    ServerError {
        url: String,
        status: u16,
        body: String,
    },
    #[error("POST {url}: unexpected status code {status}: {body}")]
    ClientError {
        url: String,
        status: u16,
        body: String,
    },
    #[error("POST {url}: cannot read credentials: {source}")]
    Credentials {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("POST {url}: notify retry canceled: deadline exceeded")]
    DeadlineExceeded { url: String },
    #[error("{integration} notification for receiver {receiver:?}: {source}")]
    Template {
        integration: &'static str,
        receiver: String,
        #[source]
        source: crate::template::RenderError,
    },
    #[error("email: cannot put the message together: {0}")]
    Email(#[source] crate::notify::EmailError),
    #[error("email via {smarthost}: {source}")]
    Smtp {
        smarthost: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("{integration}: cannot read the URL, key or password file: {source}")]
    SecretFile {
        integration: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The receiver's `tls_config` does not make a TLS client (its files changed since the
    /// configuration was loaded). Not retried.
    #[error("POST {url}: tls_config: {source}")]
    Tls {
        url: String,
        #[source]
        source: strata_tls::TlsError,
    },
    /// A reload removed the receiver (or the integration) between the flush and its send.
    #[error("receiver {receiver:?} is not in the configuration any more")]
    ReceiverGone { receiver: String },
    /// The smarthost of a tenant's email could not be resolved (retried).
    #[error("email: cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The receivers firewall refused the destination (a tenant's configuration). Not retried.
    #[error("POST {url}: {source}")]
    Blocked {
        url: String,
        #[source]
        source: crate::firewall::Blocked,
    },
}

impl NotifyError {
    /// Transport errors and 5xx are retried; 4xx (including 429) is not, like upstream's webhook.
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Transport { .. }
            | NotifyError::ServerError { .. }
            | NotifyError::Resolve { .. } => true,
            NotifyError::Smtp { source, .. } => !source.is_permanent() && !source.is_client(),
            _ => false,
        }
    }
}
