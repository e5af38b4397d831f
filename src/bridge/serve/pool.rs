//! The connections the bridge serves, and the places they hold:
//!
//! ```text
//! Pool
//! ├── places         max_connections: a connection holds one from accept on
//! ├── stream places  max_event_streams: a connection carrying an event stream holds one
//! │                  of these instead (it gives its place back)
//! └── members        every open connection: requests in flight, when it was last used
//! ```
//!
//! A new connection that finds every place taken makes room: the least recently used
//! idle member (no request in flight: between requests, or silent since it connected, or
//! part-way through a request's headers) is told to close, and its place goes to the new
//! one. When every member is in the middle of a request, the new one is refused (503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::BridgeLimits;

/// The bridge's connections and their places (see the module docs).
#[derive(Debug)]
pub(crate) struct Pool {
    places: Arc<Semaphore>,
    stream_places: Arc<Semaphore>,
    members: Mutex<HashMap<u64, Arc<Member>>>,
    /// Counts uses: a member's `last_used` is this count at its last use.
    clock: AtomicU64,
    next_id: AtomicU64,
}

/// What a new connection gets.
#[derive(Debug)]
pub(crate) enum Admission {
    /// A free place.
    Admitted(OwnedSemaphorePermit),
    /// Every place was taken; the least recently used idle connection was told to close,
    /// and its place will be free soon (see [`Pool::freed_place`]).
    Evicting,
    /// Every place is taken by a connection in the middle of a request.
    Full,
}

impl Pool {
    pub(crate) fn new(limits: &BridgeLimits) -> Arc<Self> {
        // (Limits past what a semaphore counts, about 2^61, are as good as unbounded.)
        let places =
            |limit: usize| Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS)));
        Arc::new(Pool {
            places: places(limits.max_connections),
            stream_places: places(limits.max_event_streams),
            members: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    /// The members, whatever a panicking holder left (each entry is whole at any time).
    fn members(&self) -> MutexGuard<'_, HashMap<u64, Arc<Member>>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// A place for a new connection: a free one, or one made by evicting.
    pub(crate) fn admit(&self) -> Admission {
        if let Ok(place) = self.places.clone().try_acquire_owned() {
            return Admission::Admitted(place);
        }
        let members = self.members();
        let victim = members
            .values()
            .filter(|m| m.is_idle() && !m.evicted.load(Ordering::SeqCst))
            .min_by_key(|m| m.last_used.load(Ordering::SeqCst));
        match victim {
            Some(victim) => {
                victim.evicted.store(true, Ordering::SeqCst);
                victim.evict.notify_one();
                tracing::debug!(
                    connection = victim.id,
                    "bridge connection limit reached; closing the least recently used idle connection"
                );
                Admission::Evicting
            }
            None => Admission::Full,
        }
    }

    /// The next place given back, if one is within `wait` (places go to waiters in turn).
    pub(crate) async fn freed_place(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers a connection that holds `place`, until the returned membership drops.
    pub(crate) fn join(self: &Arc<Self>, place: OwnedSemaphorePermit) -> Membership {
        let member = Arc::new(Member {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            pool: self.clone(),
            in_flight: AtomicUsize::new(0),
            last_used: AtomicU64::new(self.tick()),
            place: Mutex::new(Some(place)),
            stream_place: Mutex::new(None),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        self.members().insert(member.id, member.clone());
        Membership(member)
    }
}

/// One open connection's standing in the pool.
#[derive(Debug)]
pub(crate) struct Member {
    id: u64,
    pool: Arc<Pool>,
    /// Requests whose response is not yet fully handed to the connection.
    in_flight: AtomicUsize,
    /// The pool's clock at its last use (accept, a request, a response's end).
    last_used: AtomicU64,
    /// Its place among `max_connections`, until it carries an event stream.
    place: Mutex<Option<OwnedSemaphorePermit>>,
    /// Its place among `max_event_streams`, while it carries one.
    stream_place: Mutex<Option<OwnedSemaphorePermit>>,
    evicted: AtomicBool,
    evict: Notify,
}

impl Member {
    /// No request in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// A request arrived: the member is busy until the returned guard drops (when its
    /// response has been handed over, or abandoned).
    pub(crate) fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.last_used.store(self.pool.tick(), Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Resolves once the pool tells this connection to close, to make room.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Takes one of the pool's event stream places, if one is free.
    pub(crate) fn stream_place(&self) -> Option<OwnedSemaphorePermit> {
        self.pool.stream_places.clone().try_acquire_owned().ok()
    }

    /// The connection now carries an event stream: it holds `stream_place` instead of its
    /// place among connections, which goes back to the pool for other clients.
    pub(crate) fn carry_stream(&self, stream_place: OwnedSemaphorePermit) {
        *self
            .stream_place
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(stream_place);
        let place = self
            .place
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(place);
    }
}

/// A connection's membership: it leaves the pool, giving back its places, when dropped.
#[derive(Debug)]
pub(crate) struct Membership(Arc<Member>);

impl Membership {
    pub(crate) fn member(&self) -> &Arc<Member> {
        &self.0
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.0.pool.members().remove(&self.0.id);
        // Its places go back now, even while requests' guards still refer to it.
        let place = self
            .0
            .place
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let stream_place = self
            .0
            .stream_place
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop((place, stream_place));
    }
}

/// A request in flight on a member; dropped when its response is done.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Member>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_used.store(self.0.pool.tick(), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_connections: usize) -> Arc<Pool> {
        Pool::new(&BridgeLimits {
            max_connections,
            max_event_streams: 1,
            ..BridgeLimits::default()
        })
    }

    fn admitted(pool: &Arc<Pool>) -> Membership {
        match pool.admit() {
            Admission::Admitted(place) => pool.join(place),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn at_the_limit_the_least_recently_used_idle_member_makes_room() {
        let pool = pool(3);
        let (a, b, c) = (admitted(&pool), admitted(&pool), admitted(&pool));
        // `a` was used after `b` and `c` were admitted; `c` is busy.
        drop(a.member().begin_request());
        let busy = c.member().begin_request();
        assert!(matches!(pool.admit(), Admission::Evicting));
        assert!(b.member().evicted.load(Ordering::SeqCst), "b is the one");
        b.member().evicted().await;
        // The next goes to `a`; then nothing idle is left that is not already leaving.
        assert!(matches!(pool.admit(), Admission::Evicting));
        assert!(a.member().evicted.load(Ordering::SeqCst));
        assert!(matches!(pool.admit(), Admission::Full));
        // A member leaving gives its place to the one waiting for it.
        drop(b);
        assert!(pool.freed_place(Duration::from_secs(5)).await.is_some());
        drop(busy);
        drop(c);
    }

    #[tokio::test]
    async fn limits_past_what_a_semaphore_counts_are_taken_as_unbounded() {
        let pool = Pool::new(&BridgeLimits {
            max_connections: usize::MAX,
            max_event_streams: usize::MAX,
            ..BridgeLimits::default()
        });
        let member = admitted(&pool);
        assert!(member.member().stream_place().is_some());
    }

    #[tokio::test]
    async fn a_stream_gives_its_connection_place_back() {
        let pool = pool(1);
        let streaming = admitted(&pool);
        let _request = streaming.member().begin_request();
        let stream_place = streaming.member().stream_place().expect("a stream place");
        assert!(
            streaming.member().stream_place().is_none(),
            "one stream place"
        );
        streaming.member().carry_stream(stream_place);
        let other = admitted(&pool);
        drop(streaming);
        assert!(
            other.member().stream_place().is_some(),
            "the stream place came back with the connection"
        );
    }
}
