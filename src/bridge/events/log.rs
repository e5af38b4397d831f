//! The event log every stream of one bridge reads: the runtime's events numbered in the
//! order they came, the last [`CAPACITY`] of them kept so that a client that reconnects
//! gets what it missed.
//!
//! ```text
//! runtime events ──▶ the log's task ──▶ ring: seq first ..= next-1 (at most CAPACITY)
//!                                  └──▶ head (watch): next, closed
//! each stream: cursor (the next seq it sends); behind `first`, it is told to `reset`
//! ```
//!
//! An event's id is `<log>-<seq>`: the log's own random name, so that an id from another
//! process (a restart) or another bridge is never taken for one of this log's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures::FutureExt;
use tend_actors::Event;
use tokio::sync::watch;

use crate::Runtime;
use crate::bridge::error::BridgeError;
use crate::runtime::EventStream;

/// Events the log keeps for clients that reconnect.
pub(crate) const CAPACITY: usize = 1024;

/// The most events a stream takes out of the ring at once.
pub(crate) const BATCH: usize = 64;

/// One event as the log numbered it.
#[derive(Debug)]
pub(crate) struct Logged {
    pub(crate) seq: u64,
    pub(crate) event: Event,
    /// Its JSON, made once for every stream that sends it (or why it could not be).
    json: OnceLock<Result<String, String>>,
}

impl Logged {
    /// The event as JSON, or why it cannot be written.
    pub(crate) fn json(&self) -> Result<&str, &str> {
        match self
            .json
            .get_or_init(|| serde_json::to_string(&self.event).map_err(|e| e.to_string()))
        {
            Ok(json) => Ok(json),
            Err(e) => Err(e),
        }
    }
}

/// Where the log stands, as streams wait on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The seq the next event gets.
    pub(crate) next: u64,
    /// No event will come any more: the runtime has stopped.
    pub(crate) closed: bool,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Logged>>,
    /// The lowest seq a stream can still be sent (`next` when none is kept).
    first: u64,
    next: u64,
}

/// What a stream at `cursor` gets from the ring.
#[derive(Debug)]
pub(crate) enum Read {
    /// The events from `cursor` on (at most `BATCH`); empty when there are none yet.
    Events(Vec<Arc<Logged>>),
    /// Events it was to be sent are no longer kept: it should read the state again and
    /// go on from `next`.
    Behind {
        /// Where it goes on from.
        next: u64,
    },
}

/// The log of one bridge.
#[derive(Debug)]
pub(crate) struct EventLog {
    name: String,
    ring: Mutex<Ring>,
    head: watch::Sender<Head>,
}

impl EventLog {
    /// A log of `runtime`'s events from now on, filled by a task of its own that ends with
    /// the runtime's events, or once the log is dropped.
    pub(crate) async fn start(runtime: &Runtime) -> Result<Arc<EventLog>, BridgeError> {
        let events = runtime.subscribe().await?;
        let log = Arc::new(EventLog::new());
        tokio::spawn(fill(Arc::downgrade(&log), events, runtime.finished()));
        Ok(log)
    }

    /// An empty log, filled by no one yet.
    fn new() -> EventLog {
        EventLog {
            name: name(),
            // Seq 0 is never used: an id ending in `-0` says "nothing yet".
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(CAPACITY),
                first: 1,
                next: 1,
            }),
            head: watch::Sender::new(Head {
                next: 1,
                closed: false,
            }),
        }
    }

    /// The id of the event numbered `seq` (or, for `seq - 1`, of the place after it).
    pub(crate) fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.name)
    }

    /// The seq after the one `id` names, if it is one of this log's ids.
    pub(crate) fn after(&self, id: &str) -> Option<u64> {
        let (name, seq) = id.trim().split_once('-')?;
        if name != self.name {
            return None;
        }
        seq.parse::<u64>().ok()?.checked_add(1)
    }

    /// Where the log stands now.
    pub(crate) fn head(&self) -> watch::Receiver<Head> {
        self.head.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Each change to the ring leaves it whole (a push and a pop, or a clear), so a
        // poisoned lock's ring is still sound.
        match self.ring.lock() {
            Ok(ring) => ring,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether a stream can go on from `cursor`: every event from it on is kept (or yet
    /// to come, but no further than the next one).
    pub(crate) fn can_resume(&self, cursor: u64) -> bool {
        let ring = self.lock();
        (ring.first..=ring.next).contains(&cursor)
    }

    /// The events from `cursor` on.
    pub(crate) fn read(&self, cursor: u64) -> Read {
        let ring = self.lock();
        if cursor < ring.first {
            return Read::Behind { next: ring.next };
        }
        let skip = usize::try_from(cursor - ring.first)
            .unwrap_or(usize::MAX)
            .min(ring.events.len());
        Read::Events(ring.events.range(skip..).take(BATCH).cloned().collect())
    }

    fn push(&self, event: Event) {
        let next = {
            let mut ring = self.lock();
            let seq = ring.next;
            if ring.events.len() == CAPACITY && ring.events.pop_front().is_some() {
                ring.first += 1;
            }
            ring.events.push_back(Arc::new(Logged {
                seq,
                event,
                json: OnceLock::new(),
            }));
            ring.next += 1;
            ring.next
        };
        self.head.send_modify(|head| head.next = next);
    }

    /// The log itself fell behind the runtime and missed events: nothing before this
    /// point can be resumed from. The seq skips one, so that a stream that was up to date
    /// is behind too, and resets.
    fn gap(&self) {
        let next = {
            let mut ring = self.lock();
            ring.events.clear();
            ring.next += 1;
            ring.first = ring.next;
            ring.next
        };
        self.head.send_modify(|head| head.next = next);
    }

    fn close(&self) {
        self.head.send_modify(|head| head.closed = true);
    }
}

/// The log's task: every event of the runtime into the log, in order, until the
/// runtime's events end (its shutdown is over) or nobody holds the log any more.
async fn fill(
    log: Weak<EventLog>,
    mut events: EventStream,
    finished: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(finished);
    let mut finishing = false;
    loop {
        let next = if finishing {
            // Whatever the shutdown published before it finished is still logged.
            events.next().now_or_never().flatten()
        } else {
            tokio::select! {
                // Events first: the end is taken only when none is waiting.
                biased;
                event = events.next() => event,
                () = &mut finished => {
                    finishing = true;
                    events.next().now_or_never().flatten()
                }
            }
        };
        let Some(log) = log.upgrade() else {
            return;
        };
        match next {
            Some(Event::Lagged { missed }) => {
                tracing::warn!(
                    missed,
                    "the bridge's event log fell behind; its streams are told to reset"
                );
                log.gap();
            }
            Some(event) => log.push(event),
            None => {
                log.close();
                return;
            }
        }
    }
}

/// A name no other log (of this process or another) is likely to have: 64 bits of
/// SipHash under the process's random keys, over a counter and the clock.
fn name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(count);
    hasher.write_u128(time);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(read: Read) -> Vec<u64> {
        match read {
            Read::Events(events) => events.iter().map(|e| e.seq).collect(),
            Read::Behind { next } => panic!("behind; next {next}"),
        }
    }

    #[test]
    fn the_log_keeps_the_last_events_and_says_when_a_reader_is_behind() {
        let log = EventLog::new();
        assert_eq!(seqs(log.read(1)), Vec::<u64>::new());
        for missed in 0..(CAPACITY as u64 + 10) {
            log.push(Event::Lagged { missed });
        }
        let next = CAPACITY as u64 + 11;
        assert_eq!(log.head().borrow().next, next);
        // The first ten are gone: a reader at 1 is behind, one at 11 reads a batch.
        assert!(matches!(log.read(1), Read::Behind { next: n } if n == next));
        assert!(!log.can_resume(10));
        assert!(log.can_resume(11) && log.can_resume(next));
        assert!(!log.can_resume(next + 1));
        assert_eq!(
            seqs(log.read(11)),
            (11..11 + BATCH as u64).collect::<Vec<_>>()
        );
        assert_eq!(seqs(log.read(next - 2)), vec![next - 2, next - 1]);
        assert_eq!(seqs(log.read(next)), Vec::<u64>::new());
        // A gap: even a reader that was up to date is behind, and resumes nowhere before.
        log.gap();
        assert!(matches!(log.read(next), Read::Behind { next: n } if n == next + 1));
        assert!(!log.can_resume(next));
        log.push(Event::Lagged { missed: 0 });
        assert_eq!(seqs(log.read(next + 1)), vec![next + 1]);
    }

    #[test]
    fn only_the_logs_own_ids_are_resumed_from() {
        let log = EventLog::new();
        let other = EventLog::new();
        assert_ne!(log.id(3), other.id(3));
        assert_eq!(log.after(&log.id(3)), Some(4));
        assert_eq!(log.after(&log.id(0)), Some(1));
        assert_eq!(log.after(&other.id(3)), None);
        for garbage in [
            "",
            "-",
            "3",
            "x-3",
            "-3",
            &format!("{}-", log.id(0)),
            &format!("{}-x", log.name),
        ] {
            assert_eq!(log.after(garbage), None, "{garbage:?}");
        }
        assert_eq!(log.after(&log.id(u64::MAX)), None);
    }
}
