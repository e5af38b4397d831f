//! What a stream sends, as SSE events: each with its `event:` name (the JSON's `type`),
//! its `id:` and its JSON `data:`.

use axum::response::sse::Event as SseEvent;
use tend_actors::Event;

use crate::bridge::events::log::Logged;

/// Why a stream ended, as its last event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The runtime shut down: everything its shutdown published was sent.
    RuntimeStopped,
    /// The bridge's own server stops serving.
    BridgeStopped,
    /// The application asked for a shutdown and drains its server before the runtime
    /// stops.
    ShutdownRequested,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::RuntimeStopped => "runtime_stopped",
            End::BridgeStopped => "bridge_stopped",
            End::ShutdownRequested => "shutdown_requested",
        }
    }
}

/// Why a stream is told to read the state again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    /// Its `Last-Event-ID` is not one of this bridge's (another process's, say).
    UnknownId,
    /// What came after its `Last-Event-ID` is no longer kept.
    TooOld,
    /// It fell behind while connected, and what it missed is no longer kept.
    Behind,
}

impl Reset {
    fn as_str(self) -> &'static str {
        match self {
            Reset::UnknownId => "unknown_id",
            Reset::TooOld => "too_old",
            Reset::Behind => "behind",
        }
    }
}

/// The SSE event name of `event`: its `type`.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Execution { .. } => "execution",
        Event::Item { .. } => "item",
        Event::Progress { .. } => "progress",
        Event::ExecutionStopped { .. } => "execution_stopped",
        Event::Lagged { .. } => "lagged",
        Event::Lifecycle { .. } => "lifecycle",
        _ => "event",
    }
}

/// A logged event, with its id.
pub(crate) fn logged(id: String, logged: &Logged) -> SseEvent {
    match logged.json() {
        Ok(json) => SseEvent::default()
            .event(event_name(&logged.event))
            .id(id)
            .data(json),
        Err(e) => SseEvent::default().event("error").id(id).data(e),
    }
}

/// `event` sent again to a client that connected after it happened, marked
/// `"replayed": true`; `id` is the place in the log the client is at.
pub(crate) fn replayed(id: String, event: &Event) -> SseEvent {
    let data = serde_json::to_value(event).map(|mut value| {
        if let Some(object) = value.as_object_mut() {
            object.insert("replayed".to_owned(), serde_json::Value::Bool(true));
        }
        value
    });
    match data.and_then(|data| serde_json::to_string(&data)) {
        Ok(data) => SseEvent::default()
            .event(event_name(event))
            .id(id)
            .data(data),
        Err(e) => SseEvent::default()
            .event("error")
            .id(id)
            .data(e.to_string()),
    }
}

/// `reset`: the client missed events that are no longer kept, and should read the state
/// again; the events after this one are all it has not seen.
pub(crate) fn reset(id: String, why: Reset) -> SseEvent {
    SseEvent::default()
        .event("reset")
        .id(id)
        .data(serde_json::json!({"type": "reset", "reason": why.as_str()}).to_string())
}

/// `end`: the stream is over, and why.
pub(crate) fn end(id: String, end: End) -> SseEvent {
    SseEvent::default()
        .event("end")
        .id(id)
        .data(serde_json::json!({"type": "end", "reason": end.as_str()}).to_string())
}
