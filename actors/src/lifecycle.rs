//! The lifecycle bus: modules subscribe to kinds of [`LifecycleEvent`], the runtime
//! publishes, and for the events that need an answer the publisher collects one from each
//! subscriber until a timeout.
//!
//! ```text
//! publish(event) ──▶ Event::Lifecycle on the event bus (GET /events)
//!                ──▶ each subscriber of its kind, without waiting:
//!                      a closure: its own task and a bounded queue, one event at a time
//!                      an actor:  a message (From<Notice>) in its mailbox
//!                ◀── Published::answers(timeout): one ModuleAnswer per subscriber;
//!                    one that has not answered by then is `timed_out`, never waited on
//! ```
//!
//! A slow subscriber delays only itself: delivery never blocks the publisher, and one
//! whose queue is full misses the event (reported `unanswered`).
//!
//! The bus keeps the last event of each kind ([`last`](LifecycleBus::last)), so that a
//! watcher who arrives later (an event-stream client) learns when the runtime started,
//! its last health check and a shutdown under way.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::model::{Answer, Event, Heard, LifecycleEvent, LifecycleKind, ModuleAnswer};

/// Events a closure subscriber may be behind before it misses one.
const QUEUE: usize = 64;

/// One event delivered to one subscriber, with the means to answer it.
///
/// An actor subscriber answers with [`acknowledge`](Self::acknowledge),
/// [`report`](Self::report) or [`fail`](Self::fail); one dropped without an answer is
/// reported `unanswered` where the publisher waits for answers.
#[derive(Debug)]
pub struct Notice {
    event: Arc<LifecycleEvent>,
    reply: oneshot::Sender<Answer>,
}

impl Notice {
    /// The event.
    pub fn event(&self) -> &LifecycleEvent {
        &self.event
    }

    /// Whether the publisher waits for the answer (see [`LifecycleEvent::needs_answer`]).
    pub fn needs_answer(&self) -> bool {
        self.event.needs_answer()
    }

    /// Answers.
    pub fn answer(self, answer: Answer) {
        // The publisher stopped waiting (its timeout passed): nobody to tell.
        let _ = self.reply.send(answer);
    }

    /// Done with what the event asked.
    pub fn acknowledge(self) {
        self.answer(Answer::Acknowledged);
    }

    /// Done, with a report.
    pub fn report(self, report: serde_json::Value) {
        self.answer(Answer::Report { report });
    }

    /// Could not do what the event asked, and why.
    pub fn fail(self, error: impl Into<String>) {
        self.answer(Answer::Failed {
            error: error.into(),
        });
    }
}

type Deliver = Box<dyn Fn(Notice) -> Result<(), &'static str> + Send + Sync>;

struct Subscriber {
    name: Arc<str>,
    kinds: Vec<LifecycleKind>,
    deliver: Deliver,
}

/// The runtime's lifecycle bus. Cheap to share behind an `Arc`.
pub struct LifecycleBus {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// `None` once closed, so the event bus can end when the runtime stops.
    events: Mutex<Option<broadcast::Sender<Event>>>,
    /// The last event of each kind published, in [`LifecycleKind::ALL`]'s order.
    last: Mutex<[Option<Arc<LifecycleEvent>>; LifecycleKind::ALL.len()]>,
}

impl std::fmt::Debug for LifecycleBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Arc<str>> = self.subscribers().iter().map(|s| s.name.clone()).collect();
        f.debug_struct("LifecycleBus")
            .field("subscribers", &names)
            .finish()
    }
}

impl LifecycleBus {
    /// A bus that also publishes every event on `events` (as [`Event::Lifecycle`]).
    pub fn new(events: broadcast::Sender<Event>) -> Self {
        LifecycleBus {
            subscribers: Mutex::new(Vec::new()),
            events: Mutex::new(Some(events)),
            last: Mutex::new(Default::default()),
        }
    }

    fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        // A panic while the lock is held cannot leave the list half-changed (each change
        // is one push or one clear), so a poisoned lock's list is still sound.
        match self.subscribers.lock() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn add(&self, subscriber: Subscriber) {
        match self.subscribers.lock() {
            Ok(mut list) => list.push(Arc::new(subscriber)),
            Err(poisoned) => poisoned.into_inner().push(Arc::new(subscriber)),
        }
    }

    /// Subscribes `handle`, called with each event of `kinds`, one at a time, on a task of
    /// its own; what it returns is its answer (a panic is answered as a failure). Must be
    /// called inside a tokio runtime.
    pub fn subscribe<F, Fut>(&self, name: &str, kinds: &[LifecycleKind], handle: F)
    where
        F: Fn(Arc<LifecycleEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        let module: Arc<str> = Arc::from(name);
        tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                let answer = AssertUnwindSafe(handle(notice.event.clone()))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        tracing::error!(module = %module, "lifecycle subscriber panicked");
                        Answer::Failed {
                            error: "panicked while handling the event".to_owned(),
                        }
                    });
                notice.answer(answer);
            }
        });
        self.add(Subscriber {
            name: Arc::from(name),
            kinds: kinds.to_vec(),
            deliver: Box::new(move |notice| {
                tx.try_send(notice).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => "its queue of events is full",
                    mpsc::error::TrySendError::Closed(_) => "it has stopped",
                })
            }),
        });
    }

    /// Subscribes an actor: each event of `kinds` arrives in its mailbox as `M::from(notice)`,
    /// and it answers through the [`Notice`].
    pub fn subscribe_actor<M>(
        &self,
        name: &str,
        kinds: &[LifecycleKind],
        actor: ractor::ActorRef<M>,
    ) where
        M: ractor::Message + From<Notice>,
    {
        self.add(Subscriber {
            name: Arc::from(name),
            kinds: kinds.to_vec(),
            deliver: Box::new(move |notice| {
                actor
                    .send_message(M::from(notice))
                    .map_err(|_| "its actor has stopped")
            }),
        });
    }

    /// The last event of `kind` published, if any.
    pub fn last(&self, kind: LifecycleKind) -> Option<Arc<LifecycleEvent>> {
        // Each change is one slot's store: a poisoned lock's slots are still sound.
        let last = match self.last.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        last.get(kind.index()).cloned().flatten()
    }

    /// Every event sent on the event bus from now on (lifecycle and execution events
    /// alike); `None` once the bus is closed (the runtime has stopped).
    pub fn subscribe_events(&self) -> Option<broadcast::Receiver<Event>> {
        let events = match self.events.lock() {
            Ok(events) => events,
            Err(poisoned) => poisoned.into_inner(),
        };
        events.as_ref().map(broadcast::Sender::subscribe)
    }

    /// Sends `event` on the event bus only (no lifecycle subscriber sees it), unless the
    /// bus is closed. The runtime tells event-stream watchers this way what a shutdown did
    /// to each execution.
    pub fn publish_event(&self, event: Event) {
        let events = match self.events.lock() {
            Ok(events) => events.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(events) = events {
            let _ = events.send(event);
        }
    }

    /// Delivers `event` to every subscriber of its kind and to the event bus, without
    /// waiting for anyone. The answers arrive through the result.
    pub fn publish(&self, event: LifecycleEvent) -> Published {
        let kind = event.kind();
        // A health check comes every `health_interval` and says nothing new when all is
        // well (its warnings are events of their own): at debug, so the log stays readable.
        if kind == crate::model::LifecycleKind::HealthCheck {
            tracing::debug!(event = %kind, "lifecycle event");
        } else {
            tracing::info!(event = %kind, "lifecycle event");
        }
        let event = Arc::new(event);
        {
            let mut last = match self.last.lock() {
                Ok(last) => last,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(slot) = last.get_mut(kind.index()) {
                *slot = Some(event.clone());
            }
        }
        // Kept before it is sent: whoever hears of it can read it as the last.
        self.publish_event(Event::Lifecycle {
            event: event.clone(),
        });
        let waits = self
            .subscribers()
            .into_iter()
            .filter(|s| s.kinds.contains(&kind))
            .map(|subscriber| {
                let (reply, answer) = oneshot::channel();
                let notice = Notice {
                    event: event.clone(),
                    reply,
                };
                let delivered = (subscriber.deliver)(notice).map(|()| answer);
                if let Err(why) = delivered {
                    tracing::warn!(module = %subscriber.name, event = %kind, why, "lifecycle event not delivered");
                }
                (subscriber.name.clone(), delivered)
            })
            .collect();
        Published { kind, waits }
    }

    /// Drops every subscriber (closure tasks end once their queue is empty) and lets go of
    /// the event bus; later events reach no one.
    pub fn close(&self) {
        match self.subscribers.lock() {
            Ok(mut list) => list.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
        match self.events.lock() {
            Ok(mut events) => *events = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }
}

/// An event on its way to its subscribers.
#[derive(Debug)]
pub struct Published {
    kind: LifecycleKind,
    waits: Vec<(Arc<str>, Delivery)>,
}

/// Where a subscriber's answer will come from, or why it never will.
type Delivery = Result<oneshot::Receiver<Answer>, &'static str>;

impl Published {
    /// Each subscriber's answer, waiting at most `timeout` for all of them together.
    pub async fn answers(self, timeout: Duration) -> Vec<ModuleAnswer> {
        let now = tokio::time::Instant::now();
        // A timeout too long to add is as good as none: a day is waited at most.
        let until = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(24 * 3600));
        let kind = self.kind;
        let waits = self.waits.into_iter().map(|(name, wait)| async move {
            let heard = match wait {
                Err(why) => Err((Heard::Unanswered, why)),
                Ok(answer) => match tokio::time::timeout_at(until, answer).await {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(_)) => Err((Heard::Unanswered, "it dropped the event without answering")),
                    Err(_) => Err((Heard::TimedOut, "it did not answer in time")),
                },
            };
            let mut answer = ModuleAnswer::new(&name, kind, heard.clone().map_err(|(h, _)| h));
            if let Err((heard, why)) = heard {
                tracing::warn!(module = %name, event = %kind, ?heard, why, "lifecycle subscriber did not answer");
                answer.error = Some(why.to_owned());
            }
            answer
        });
        futures::future::join_all(waits).await
    }
}
