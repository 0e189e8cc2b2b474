//! Where the query-frontend sends queries: the querier of its own process (`all`), or a
//! querier over HTTP (`--target=query-frontend` with `query_frontend.downstream_url`).

use crate::error::FrontendError;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A querier as the query-frontend calls it.
#[async_trait]
pub trait Downstream: Send + Sync {
    /// For errors and logs.
    fn name(&self) -> &str;
    async fn call(&self, req: Request<Bytes>) -> Result<Response<Bytes>, FrontendError>;
}

/// The querier's router in this process.
#[derive(Clone)]
pub struct RouterDownstream(pub axum::Router);

#[async_trait]
impl Downstream for RouterDownstream {
    fn name(&self) -> &str {
        "local querier"
    }

    async fn call(&self, req: Request<Bytes>) -> Result<Response<Bytes>, FrontendError> {
        let err = |source: Box<dyn std::error::Error + Send + Sync>| FrontendError::Downstream {
            target: self.name().into(),
            source,
        };
        let resp = self
            .0
            .clone()
            .oneshot(req.map(Body::from))
            .await
            .map_err(|e| err(Box::new(e)))?;
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| err(Box::new(e)))?
            .to_bytes();
        Ok(Response::from_parts(parts, bytes))
    }
}

/// A querier over HTTP.
pub struct HttpDownstream {
    base: String,
    client: reqwest::Client,
}

impl HttpDownstream {
    /// `base`: scheme and authority, e.g. `http://querier:8080` (no trailing slash needed).
    pub fn new(base: &str, timeout: std::time::Duration) -> Result<Self, FrontendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| FrontendError::Downstream {
                target: base.into(),
                source: Box::new(e),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

#[async_trait]
impl Downstream for HttpDownstream {
    fn name(&self) -> &str {
        &self.base
    }

    async fn call(&self, req: Request<Bytes>) -> Result<Response<Bytes>, FrontendError> {
        let err = |source: reqwest::Error| FrontendError::Downstream {
            target: self.base.clone(),
            source: Box::new(source),
        };
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut r = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.base));
        for (name, value) in &parts.headers {
            if name != axum::http::header::HOST {
                r = r.header(name, value);
            }
        }
        let resp = r.body(body).send().await.map_err(err)?;
        let mut out = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            out = out.header(name, value);
        }
        let bytes = resp.bytes().await.map_err(err)?;
        out.body(bytes).map_err(|e| FrontendError::Downstream {
            target: self.base.clone(),
            source: Box::new(e),
        })
    }
}
