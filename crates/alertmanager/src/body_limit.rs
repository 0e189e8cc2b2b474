//! The request body limit of the HTTP API (`alertmanager.max_request_body_bytes`), applied
//! before anything else reads the body (the ring's forwarding included).

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Reads the body up to `max` bytes; a larger one (declared or sent) is answered with 413.
pub(crate) async fn limit(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return ApiError::BodyTooLarge { limit: max }.into_response();
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, max).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::BodyTooLarge { limit: max }.into_response()
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}")).into_response()
            }
        }
    }
}
