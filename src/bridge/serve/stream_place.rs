//! The hook the `/events` route wears: when the bridge serves itself, an event stream
//! holds one of `max_event_streams` places instead of its connection's place among
//! `max_connections`, so open streams never crowd out requests. When none is free the
//! answer is 503 `too_many_event_streams` with `Retry-After`. The connection closes when
//! its stream ends. Mounted in an application's own server (no pool), the hook does
//! nothing: that server's limits apply.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::RETRY_AFTER_SECS;
use super::pool::Member;
use crate::bridge::error::BridgeError;

/// Middleware for the event stream route (see the module docs).
pub(crate) async fn event_stream_place(req: Request, next: Next) -> Response {
    let Some(member) = req.extensions().get::<Arc<Member>>().cloned() else {
        return next.run(req).await;
    };
    let Some(stream_place) = member.stream_place() else {
        return BridgeError::Busy {
            code: "too_many_event_streams",
            message: format!(
                "the bridge carries as many event streams as it allows (BridgeLimits::max_event_streams); retry in {RETRY_AFTER_SECS} s"
            ),
        }
        .into_response();
    };
    let mut response = next.run(req).await;
    if response.status().is_success() {
        member.carry_stream(stream_place);
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
