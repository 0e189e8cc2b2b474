//! The ring page (`GET`: HTML table or JSON; `POST forget=<id>`: remove an instance).

use crate::desc::InstanceState;
use crate::lifecycler::forget;
use crate::ring::Operation;
use crate::watcher::RingWatcher;
use crate::RingError;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::sync::Arc;
use strata_meta::KvStore;

#[derive(Clone)]
struct PageState {
    path: &'static str,
    watcher: Arc<RingWatcher>,
    kv: Arc<dyn KvStore>,
    prefix: Arc<str>,
}

/// The ring page at `path` (e.g. `/ingester/ring`) for the ring under `prefix`.
pub fn ring_router(
    path: &'static str,
    watcher: Arc<RingWatcher>,
    kv: Arc<dyn KvStore>,
    prefix: &str,
) -> Router {
    Router::new()
        .route(path, get(page).post(forget_instance))
        .with_state(PageState {
            path,
            watcher,
            kv,
            prefix: prefix.into(),
        })
}

/// One row of the ring page; also its JSON form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatus {
    pub id: String,
    pub state: InstanceState,
    pub addr: String,
    pub http_addr: String,
    pub zone: String,
    pub heartbeat_ms: i64,
    pub heartbeat_age_seconds: f64,
    pub registered_ms: i64,
    pub tokens: usize,
    /// Share of the token space owned as primary, in percent.
    pub ownership_percent: f64,
    /// Heartbeat fresh (judged against the KV's freshness).
    pub healthy: bool,
}

/// The ring page's JSON body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RingStatus {
    pub now_ms: i64,
    pub replication_factor: usize,
    pub instances: Vec<InstanceStatus>,
}

fn status(s: &PageState) -> RingStatus {
    let ring = s.watcher.ring();
    let now = s.watcher.now_ms();
    RingStatus {
        now_ms: now,
        replication_factor: ring.replication_factor(),
        instances: ring
            .all()
            .iter()
            .map(|d| InstanceStatus {
                id: d.id.clone(),
                state: d.state,
                addr: d.addr.clone(),
                http_addr: d.http_addr.clone(),
                zone: d.zone.clone(),
                heartbeat_ms: d.heartbeat_ms,
                heartbeat_age_seconds: (now - d.heartbeat_ms) as f64 / 1000.0,
                registered_ms: d.registered_ms,
                tokens: d.tokens.len(),
                ownership_percent: ring.ownership(&d.id) * 100.0,
                healthy: ring.is_healthy(d, Operation::Reporting, now),
            })
            .collect(),
    }
}

async fn page(State(s): State<PageState>, headers: HeaderMap) -> Response {
    let st = status(&s);
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        Json(st).into_response()
    } else {
        Html(render(s.path, &st)).into_response()
    }
}

#[derive(Deserialize)]
struct ForgetForm {
    forget: String,
}

async fn forget_instance(State(s): State<PageState>, Form(f): Form<ForgetForm>) -> Response {
    match forget(&*s.kv, &s.prefix, &f.forget).await {
        Ok(true) => {
            tracing::info!(prefix = %s.prefix, instance = %f.forget, "instance forgotten from the ring page");
            Redirect::to(s.path).into_response()
        }
        Ok(false) | Err(RingError::UnknownInstance(_)) => (
            StatusCode::NOT_FOUND,
            format!("instance {:?} is not in the ring\n", f.forget),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(path: &str, st: &RingStatus) -> String {
    let mut h = String::new();
    let path = escape(path);
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ring {path}</title>\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
         .unhealthy{{background:#fdd}}</style></head><body>\n\
         <h1>Ring {path}</h1>\n<p>{} instances, replication factor {}</p>\n<table>\n\
         <tr><th>Instance</th><th>State</th><th>Address</th><th>HTTP</th><th>Zone</th>\
         <th>Last heartbeat</th><th>Tokens</th><th>Ownership</th><th>Health</th><th></th></tr>",
        st.instances.len(),
        st.replication_factor
    );
    for i in &st.instances {
        let http = if i.http_addr.is_empty() {
            String::new()
        } else {
            let a = escape(&i.http_addr);
            format!("<a href=\"http://{a}/\">{a}</a>")
        };
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{http}</td><td>{}</td>\
             <td>{:.1}s ago</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>\
             <form method=\"post\" action=\"{path}\"><input type=\"hidden\" name=\"forget\" \
             value=\"{}\"><button type=\"submit\">Forget</button></form></td></tr>",
            if i.healthy { "healthy" } else { "unhealthy" },
            escape(&i.id),
            i.state,
            escape(&i.addr),
            escape(&i.zone),
            i.heartbeat_age_seconds,
            i.tokens,
            i.ownership_percent,
            if i.healthy { "healthy" } else { "UNHEALTHY" },
            escape(&i.id),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn rendered_page_escapes_instance_fields() {
        let st = RingStatus {
            now_ms: 0,
            replication_factor: 3,
            instances: vec![InstanceStatus {
                id: "<script>".into(),
                state: InstanceState::Active,
                addr: "a\"b:1".into(),
                http_addr: "h:2".into(),
                zone: "z&".into(),
                heartbeat_ms: 0,
                heartbeat_age_seconds: 0.0,
                registered_ms: 0,
                tokens: 1,
                ownership_percent: 100.0,
                healthy: true,
            }],
        };
        let h = render("/ingester/ring", &st);
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert!(h.contains("a&quot;b:1"));
        assert!(h.contains("z&amp;"));
    }
}
