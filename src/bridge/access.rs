//! The bridge's access log: every request gets an `x-request-id` (its own, if it is at most
//! 64 characters of `A-Z a-z 0-9 . _ : -`; else the next number of this bridge's), is
//! logged in a `request` span carrying it, and is answered with it. Responses are logged
//! at `info` with their status and latency, whatever the status: a 4xx is the client's
//! mistake, and a 503 a refusal while shutting down, not errors of the server's (a 500 is
//! logged as an error where it is made, in `BridgeError`). The query string is left out of
//! the log (an event stream's token may be in it), and the path is cut to 256 bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, Request};
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The header that carries the request id.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Numbers requests in the order they come: `1`, `2`, ... within this bridge.
#[derive(Debug, Clone, Default)]
pub(crate) struct NextRequestId(Arc<AtomicU64>);

impl MakeRequestId for NextRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        axum::http::HeaderValue::from_str(&n.to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// A request id a client may choose: short, and nothing a log line could be confused by.
pub(crate) fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Drops a client's request id that is not [`acceptable`], so the bridge numbers the
/// request itself.
pub(crate) async fn screen_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|id| !acceptable(id.as_bytes()))
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// A span per request: method, path and request id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> tower_http::trace::MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let path = request.uri().path();
        let mut end = path.len().min(256);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %&path[..end],
            request_id = %id,
        )
    }
}

/// The log layer: a span per request, each response at info, nothing else.
type AccessTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    (),
    (),
    (),
>;

/// The layers, outermost first: set the id, log, answer with the id.
pub(crate) fn layers() -> (
    SetRequestIdLayer<NextRequestId>,
    AccessTrace,
    PropagateRequestIdLayer,
) {
    let trace = TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_body_chunk(())
        .on_eos(())
        // Every response is logged above, at info; a 500 also where it is made.
        .on_failure(());
    (
        SetRequestIdLayer::new(REQUEST_ID, NextRequestId::default()),
        trace,
        PropagateRequestIdLayer::new(REQUEST_ID),
    )
}
