//! The middleware in front of every route when authentication is on: who calls (401 without
//! a valid credential), whether it may call this route (403: admin endpoints), and which tenant
//! it acts for (403 when it names one it may not), which it then writes into `X-Scope-OrgID`
//! so that every component resolves exactly the verified tenant.

use super::{Auth, Credential};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use strata_model::TenancyMode;

const ORG_ID: &str = "x-scope-orgid";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health checks: load balancers and orchestrators call them without credentials.
    Public,
    /// Any valid credential; the tenant is checked.
    Authenticated,
    /// Spans every tenant (`/metrics` names tenants and their volumes): an admin or a
    /// principal with `tenants: ["*"]`.
    AllTenants,
    /// Changes or reveals the whole process: an admin.
    Admin,
}

/// The ring pages whose POST forgets an instance.
const RING_PAGES: [&str; 4] = [
    "/ingester/ring",
    "/store-gateway/ring",
    "/distributor/ring",
    "/alertmanager/ring",
];

/// What `method path` needs.
pub fn access(method: &Method, path: &str) -> Access {
    match path {
        "/ready"
        | "/-/healthy"
        | "/-/ready"
        | "/alertmanager/-/healthy"
        | "/alertmanager/-/ready" => Access::Public,
        "/metrics" => Access::AllTenants,
        "/config" | "/ingester/shutdown" | "/-/reload" | "/alertmanager/-/reload" => Access::Admin,
        p if p.starts_with("/meta/members") => Access::Admin,
        p if RING_PAGES.contains(&p) && method != Method::GET && method != Method::HEAD => {
            Access::Admin
        }
        _ => Access::Authenticated,
    }
}

fn unauthorized(why: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response();
    let h = r.headers_mut();
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"strata\", charset=\"UTF-8\""),
    );
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"strata\""),
    );
    r
}

fn forbidden(why: String) -> Response {
    (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
}

/// The authentication middleware (`axum::middleware::from_fn_with_state`).
pub async fn authenticate(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let need = access(req.method(), &path);
    if need == Access::Public {
        return next.run(req).await;
    }
    let Some(presented) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return unauthorized(
            "authentication required: send basic-auth credentials or a bearer token",
        );
    };
    let Some(p) = auth.verify(&presented).await else {
        tracing::debug!(%path, "refused: invalid credentials");
        return unauthorized("invalid credentials");
    };
    match need {
        Access::Admin if !p.admin => {
            tracing::info!(%path, principal = %p.name, "refused: admin endpoint");
            return forbidden(format!(
                "{path} is an admin endpoint and {:?} is not an admin",
                p.name
            ));
        }
        Access::AllTenants if !p.admin && p.tenants != super::users::Tenants::All => {
            return forbidden(format!(
                "{path} shows every tenant: {:?} needs tenants: [\"*\"] or admin",
                p.name
            ));
        }
        _ => {}
    }
    let named = req
        .headers()
        .get(ORG_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tenant = match auth.tenancy.mode {
        TenancyMode::Single => Some(auth.tenancy.single_tenant_id.clone()),
        TenancyMode::Header | TenancyMode::BasicAuth => {
            let basic_auth = auth.tenancy.mode == TenancyMode::BasicAuth;
            match named {
                Some(t) => {
                    // A federated read names several tenants (`a|b`): each must be allowed.
                    if let Some(no) = t.split('|').find(|one| !p.may_act_for(one, basic_auth)) {
                        tracing::info!(%path, principal = %p.name, tenant = %no, "refused: tenant not allowed");
                        return forbidden(format!("{:?} may not act for tenant {no:?}", p.name));
                    }
                    Some(t)
                }
                // In basic_auth tenancy the user name is the tenant; a token names its only
                // tenant. In header tenancy the components ask for the header.
                None if basic_auth => match Credential::parse(&presented) {
                    Some(Credential::Basic { username, .. }) => Some(username),
                    _ => p.only_tenant().map(|t| t.to_string()),
                },
                None => None,
            }
        }
    };
    // Always replaced (or removed), so no second value slips past the check.
    req.headers_mut().remove(ORG_ID);
    if let Some(t) = tenant {
        match HeaderValue::from_str(&t) {
            Ok(v) => {
                req.headers_mut().insert(ORG_ID, v);
            }
            Err(_) => {
                return (StatusCode::BAD_REQUEST, "invalid tenant id\n").into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_and_public_routes() {
        let get = Method::GET;
        let post = Method::POST;
        for p in ["/ready", "/-/healthy", "/-/ready", "/alertmanager/-/ready"] {
            assert_eq!(access(&get, p), Access::Public, "{p}");
        }
        for p in RING_PAGES {
            assert_eq!(access(&get, p), Access::Authenticated, "{p}");
            assert_eq!(access(&post, p), Access::Admin, "{p}");
        }
        for p in [
            "/config",
            "/ingester/shutdown",
            "/meta/members/add-learner",
            "/meta/members/change-membership",
            "/-/reload",
            "/alertmanager/-/reload",
        ] {
            assert_eq!(access(&post, p), Access::Admin, "{p}");
        }
        assert_eq!(access(&get, "/metrics"), Access::AllTenants);
        for p in [
            "/api/v1/query",
            "/api/v1/push",
            "/api/v1/alerts",
            "/meta/status",
            "/alertmanager/api/v2/alerts",
        ] {
            assert_eq!(access(&get, p), Access::Authenticated, "{p}");
        }
    }
}
