//! `GET /events`: the runtime's events as server-sent events, for as long as there is
//! something to tell, each with an `id:` a client can resume from.
//!
//! ```text
//! connect ──▶ Last-Event-ID still kept: every event after it, and on
//!         ──▶ otherwise: `reset` (if it sent one), then replayed: the last
//!             node_startup_completed, the last health_check and, while the runtime shuts
//!             down, its node_shutdown (each `"replayed": true`)
//!         ──▶ live: execution, item, progress, execution_stopped, lifecycle; `reset` if
//!             it fell so far behind that what it missed is no longer kept
//!         ──▶ end {"reason"}: the stream is over, and why
//! ```
//!
//! Every stream of a bridge reads one [`log`](log::EventLog) of the runtime's events,
//! which numbers them and keeps the last [`log::CAPACITY`]. A stream follows a shutdown
//! to its end: `node_shutdown`, each execution's stop, the flush and
//! `node_shutdown_completed`, then `end` with reason `runtime_stopped`. It ends sooner,
//! with every event logged until then, when the bridge's own server stops
//! (`bridge_stopped`), or when the application asked for a shutdown to drain its server
//! first (`shutdown_requested`; see `Runtime::request_shutdown`).

mod frames;
mod log;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use tend_actors::{Event, LifecycleKind};
use tokio::sync::{OnceCell, watch};

use crate::bridge::error::BridgeError;
use crate::bridge::routes::AppState;
use frames::{End, Reset};
use log::{EventLog, Head, Logged, Read};

/// When the bridge's own server begins to stop: a receiver whose sender sends `true`
/// then. A router mounted in an application's server gets one that never fires.
pub(crate) type Closing = watch::Receiver<bool>;

/// The log every stream of one bridge reads, started by the first stream.
pub(crate) type SharedLog = Arc<OnceCell<Arc<EventLog>>>;

/// Resolves once `closing` says so; never if its sender is gone without saying it.
async fn closed(mut closing: Closing) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One client's stream.
struct Follow {
    log: Arc<EventLog>,
    head: watch::Receiver<Head>,
    /// The seq of the next logged event it is sent.
    cursor: u64,
    /// Sent before anything else: a reset, the replayed events.
    first: VecDeque<SseEvent>,
    /// Taken out of the log, not sent yet.
    pending: VecDeque<Arc<Logged>>,
    streams_end: Signal,
    closing: Signal,
    /// Set once an end is known: the events logged before it (up to the seq) still go
    /// out, then the end.
    ending: Option<(End, u64)>,
    done: bool,
}

impl Follow {
    /// The id of the place the stream is at: after the last logged event it was sent.
    fn here(&self) -> String {
        self.log.id(self.cursor.saturating_sub(1))
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(frame) = self.first.pop_front() {
                return Some(frame);
            }
            if let Some(logged) = self.pending.pop_front() {
                return Some(frames::logged(self.log.id(logged.seq), &logged));
            }
            if self.done {
                return None;
            }
            if let Some((end, until)) = self.ending
                && self.cursor >= until
            {
                self.done = true;
                return Some(frames::end(self.here(), end));
            }
            match self.log.read(self.cursor) {
                Read::Behind { next } => {
                    self.cursor = next;
                    self.first
                        .push_back(frames::reset(self.here(), Reset::Behind));
                    continue;
                }
                Read::Events(events) => {
                    if let Some(last) = events.last() {
                        self.cursor = last.seq + 1;
                        self.pending.extend(events);
                        continue;
                    }
                }
            }
            // Up to date. Anything logged since the read is in `head`; otherwise wait.
            let head = *self.head.borrow_and_update();
            if head.next > self.cursor {
                continue;
            }
            if head.closed {
                self.ending.get_or_insert((End::RuntimeStopped, head.next));
                continue;
            }
            let end = tokio::select! {
                changed = self.head.changed() => match changed {
                    Ok(()) => continue,
                    // The log is gone: nothing will come any more.
                    Err(_) => End::RuntimeStopped,
                },
                () = &mut self.closing => End::BridgeStopped,
                () = &mut self.streams_end => End::ShutdownRequested,
            };
            let until = self.head.borrow().next;
            self.ending = Some((end, until));
        }
    }
}

/// The events of `GET /events` for one client; `last_event_id` is the id of the last
/// event it received on an earlier connection.
pub(crate) async fn follow(
    s: &AppState,
    last_event_id: Option<&str>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>>, BridgeError> {
    let phase = s.runtime.phase();
    if phase.finished || phase.streams_end {
        return Err(BridgeError::Unavailable);
    }
    let log = s
        .log
        .get_or_try_init(|| EventLog::start(&s.runtime))
        .await?
        .clone();
    let mut head = log.head();
    let now = head.borrow_and_update().next;
    let resume = last_event_id.filter(|id| !id.trim().is_empty()).map(|id| {
        log.after(id)
            .filter(|&cursor| log.can_resume(cursor))
            .ok_or(if log.after(id).is_some() {
                Reset::TooOld
            } else {
                Reset::UnknownId
            })
    });
    let mut follow = Follow {
        log,
        head,
        cursor: now,
        first: VecDeque::new(),
        pending: VecDeque::new(),
        streams_end: Box::pin(s.runtime.streams_end()),
        closing: Box::pin(closed(s.closing.clone())),
        ending: None,
        done: false,
    };
    match resume {
        Some(Ok(cursor)) => follow.cursor = cursor,
        reset => {
            if let Some(Err(why)) = reset {
                follow.first.push_back(frames::reset(follow.here(), why));
            }
            // Read after the log's place: an event logged in between is sent twice
            // (replayed and live), never missed.
            let mut kinds = vec![
                LifecycleKind::NodeStartupCompleted,
                LifecycleKind::HealthCheck,
            ];
            if s.runtime.phase().running {
                kinds.push(LifecycleKind::NodeShutdown);
            }
            let bus = s.runtime.lifecycle();
            for event in kinds.into_iter().filter_map(|kind| bus.last(kind)) {
                let frame = frames::replayed(follow.here(), &Event::Lifecycle { event });
                follow.first.push_back(frame);
            }
        }
    }
    let stream = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
