//! `GET /events`: the runtime's events as server-sent events, for as long as there is
//! something to tell.
//!
//! ```text
//! connect ──▶ replayed: the last node_startup_completed, the last health_check and, while
//!             the runtime shuts down, its node_shutdown (each `"replayed": true`)
//!         ──▶ live: execution, item, progress, execution_stopped, lifecycle, lagged
//!         ──▶ end {"reason"}: the stream is over, and why
//! ```
//!
//! A stream follows a shutdown to its end: `node_shutdown`, each execution's stop, the
//! flush and `node_shutdown_completed`, then `end` with reason `runtime_stopped`. It ends
//! sooner, with every event published until then, when the bridge's own server stops
//! (`bridge_stopped`), or when the application asked for a shutdown to drain its server
//! first (`shutdown_requested`; see `Runtime::request_shutdown`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{FutureExt, Stream};
use tend_actors::{Event, LifecycleKind};
use tokio::sync::watch;

use crate::bridge::error::BridgeError;
use crate::bridge::routes::AppState;
use crate::runtime::EventStream;

/// Why a stream ended, as its last event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
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

/// `event` as an SSE event; `replayed` marks one sent again to a client that connected
/// after it happened.
fn frame(event: &Event, replayed: bool) -> SseEvent {
    let sse = SseEvent::default().event(event_name(event));
    let data = serde_json::to_value(event).map(|mut value| {
        if let (true, Some(object)) = (replayed, value.as_object_mut()) {
            object.insert("replayed".to_owned(), serde_json::Value::Bool(true));
        }
        value
    });
    match data.and_then(|data| serde_json::to_string(&data)) {
        Ok(data) => sse.data(data),
        Err(e) => SseEvent::default().event("error").data(e.to_string()),
    }
}

fn end_frame(end: End) -> SseEvent {
    SseEvent::default()
        .event("end")
        .data(serde_json::json!({"type": "end", "reason": end.as_str()}).to_string())
}

/// When the bridge's own server begins to stop: a receiver whose sender sends `true`
/// then. A router mounted in an application's server gets one that never fires.
pub(crate) type Closing = watch::Receiver<bool>;

/// Resolves once `closing` says so; never if its sender is gone without saying it.
async fn closed(mut closing: Closing) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One client's stream: what it replays, then the runtime's events until an end.
struct Follow {
    replay: std::vec::IntoIter<Event>,
    events: EventStream,
    finished: Signal,
    streams_end: Signal,
    closing: Signal,
    /// Set once an end is known: what is still buffered goes out, then the end.
    ending: Option<End>,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some(event) = self.replay.next() {
            return Some(frame(&event, true));
        }
        if self.done {
            return None;
        }
        if self.ending.is_none() {
            // Events first: an end is taken only when none is waiting.
            let next = tokio::select! {
                biased;
                event = self.events.next() => event.ok_or(End::RuntimeStopped),
                () = &mut self.finished => Err(End::RuntimeStopped),
                () = &mut self.closing => Err(End::BridgeStopped),
                () = &mut self.streams_end => Err(End::ShutdownRequested),
            };
            match next {
                Ok(event) => return Some(frame(&event, false)),
                Err(end) => self.ending = Some(end),
            }
        }
        // Whatever was published before the end is still sent; nothing is waited for.
        if let Some(Some(event)) = self.events.next().now_or_never() {
            return Some(frame(&event, false));
        }
        self.done = true;
        self.ending.map(end_frame)
    }
}

/// The events of `GET /events` for one client.
pub(crate) async fn follow(
    s: &AppState,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>>, BridgeError> {
    let phase = s.runtime.phase();
    if phase.finished || phase.streams_end {
        return Err(BridgeError::Unavailable);
    }
    let events = s.runtime.subscribe().await?;
    // Read after subscribing: an event published in between is sent twice (replayed and
    // live), never missed.
    let mut kinds = vec![
        LifecycleKind::NodeStartupCompleted,
        LifecycleKind::HealthCheck,
    ];
    if s.runtime.phase().running {
        kinds.push(LifecycleKind::NodeShutdown);
    }
    let bus = s.runtime.lifecycle();
    let replay: Vec<Event> = kinds
        .into_iter()
        .filter_map(|kind| bus.last(kind))
        .map(|event| Event::Lifecycle { event })
        .collect();
    let follow = Follow {
        replay: replay.into_iter(),
        events,
        finished: Box::pin(s.runtime.finished()),
        streams_end: Box::pin(s.runtime.streams_end()),
        closing: Box::pin(closed(s.closing.clone())),
        ending: None,
        done: false,
    };
    let stream = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
