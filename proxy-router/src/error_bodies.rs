//! Error bodies for both HTTP surfaces (the admin API and the OpenAI gateway): an error response that
//! a layer (body limit, timeout), axum's routing or a static handler produced without a JSON body is
//! given one in the surface's own shape, keeping its status and its other headers (e.g. `Allow`).

use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::Response;

/// `response` as it is when it is not an error or already JSON; otherwise with the body (and the
/// status, when it maps 408 to 504, say) of `error_for(status)`.
pub fn ensure_json(response: Response, error_for: impl FnOnce(StatusCode) -> Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    let (new_parts, body) = error_for(status).into_parts();
    parts.status = new_parts.status;
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, body)
}
