//! The bridge's access log: every request gets an `x-request-id` (its own, or the next of
//! this process's), is logged in a `request` span carrying it, and is answered with it.
//! Responses are logged at `info` with their status and latency; only server errors are
//! logged as errors (a 4xx is the client's mistake, not the server's). The query string
//! is left out of the log: an event stream's token may be in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, Request};
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
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
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id,
        )
    }
}

/// The layers, outermost first: set the id, log, answer with the id.
pub(crate) fn layers() -> (
    SetRequestIdLayer<NextRequestId>,
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan>,
    PropagateRequestIdLayer,
) {
    let trace = TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_failure(
            DefaultOnFailure::new()
                .level(Level::ERROR)
                .latency_unit(LatencyUnit::Micros),
        );
    (
        SetRequestIdLayer::new(REQUEST_ID, NextRequestId::default()),
        trace,
        PropagateRequestIdLayer::new(REQUEST_ID),
    )
}
