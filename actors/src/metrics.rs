//! What the runtime measures, through the `metrics` facade: recorded where it happens
//! (an attempt's task, the Execution, the store's writer thread), and sent to whatever
//! recorder the process installed (none: each costs an atomic load). The names below are
//! the documented ones; [`describe`] gives each its help text and unit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

/// Executions that ended, by `status` (completed, failed, interrupted, paused).
pub const EXECUTIONS_ENDED: &str = "tend_executions_ended_total";
/// Executions not finished, by `status` (running, interrupted, paused, and corrupt ones
/// come across), as the last scrape counted them.
pub const EXECUTIONS: &str = "tend_executions";
/// Executions stored, finished or not, as the last scrape counted them.
pub const EXECUTIONS_STORED: &str = "tend_executions_stored";
/// Attempts that ended, by how they `ended` (done, failed, interrupted, store_failed).
pub const ATTEMPTS: &str = "tend_attempts_total";
/// How long attempts ran, from their start to their end.
pub const ATTEMPT_DURATION: &str = "tend_attempt_duration_seconds";
/// How long an attempt waited to start once the scheduler chose it: until its attempt
/// number was durable (the commit it shares with the records of its step).
pub const ATTEMPT_START_WAIT: &str = "tend_attempt_start_wait_seconds";
/// Requests a group commit took together (each an execution's step, a checkpoint, ...).
pub const COMMIT_REQUESTS: &str = "tend_commit_requests";
/// How long each group commit took, fsync included.
pub const COMMIT_DURATION: &str = "tend_commit_duration_seconds";
/// Statements one group commit of the PostgreSQL backend sent, `BEGIN` and `COMMIT`
/// included (they go out together, in one round trip). Not in [`NAMES`]: only that
/// backend records it.
pub const COMMIT_STATEMENTS: &str = "tend_commit_statements";
/// The store file's size.
pub const STORE_BYTES: &str = "tend_store_bytes";
/// Actors alive in the process's runtimes (Supervisor, Janitor, Executions; an
/// attempt is a task, not an actor).
pub const LIVE_ACTORS: &str = "tend_live_actors";

/// Every documented metric: its name.
pub const NAMES: &[&str] = &[
    EXECUTIONS_ENDED,
    EXECUTIONS,
    EXECUTIONS_STORED,
    ATTEMPTS,
    ATTEMPT_DURATION,
    ATTEMPT_START_WAIT,
    COMMIT_REQUESTS,
    COMMIT_DURATION,
    STORE_BYTES,
    LIVE_ACTORS,
];

/// Gives every metric its help text and unit in the installed recorder (call once it is
/// installed; the Prometheus exporter prints them as `# HELP`).
pub fn describe() {
    describe_counter!(EXECUTIONS_ENDED, "Executions that ended, by status");
    describe_gauge!(EXECUTIONS, "Executions not finished, by status");
    describe_gauge!(EXECUTIONS_STORED, "Executions stored, finished or not");
    describe_counter!(ATTEMPTS, "Attempts that ended, by how they ended");
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "How long attempts ran, from start to end"
    );
    describe_histogram!(
        ATTEMPT_START_WAIT,
        Unit::Seconds,
        "How long an attempt waited to start once chosen: its attempt number made durable, and a task"
    );
    describe_histogram!(
        COMMIT_REQUESTS,
        Unit::Count,
        "Requests one group commit of the store took together"
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "How long each group commit of the store took, fsync included"
    );
    describe_histogram!(
        COMMIT_STATEMENTS,
        Unit::Count,
        "Statements one group commit of the PostgreSQL store sent, BEGIN and COMMIT included"
    );
    describe_gauge!(STORE_BYTES, Unit::Bytes, "The store file's size");
    describe_gauge!(LIVE_ACTORS, "Actors alive in the process's runtimes");
}

// The label values are spelled out so that each key is static: a key built from a value
// would allocate on every call, recorder or not.

pub(crate) fn execution_ended(status: crate::model::ExecutionStatus) {
    use crate::model::ExecutionStatus as S;
    let counter = match status {
        S::Running => counter!(EXECUTIONS_ENDED, "status" => "running"),
        S::Interrupted => counter!(EXECUTIONS_ENDED, "status" => "interrupted"),
        S::Completed => counter!(EXECUTIONS_ENDED, "status" => "completed"),
        S::Failed => counter!(EXECUTIONS_ENDED, "status" => "failed"),
        S::Corrupt => counter!(EXECUTIONS_ENDED, "status" => "corrupt"),
        S::Paused => counter!(EXECUTIONS_ENDED, "status" => "paused"),
        S::Cancelled => counter!(EXECUTIONS_ENDED, "status" => "cancelled"),
    };
    counter.increment(1);
}

pub(crate) fn attempt_ended(ending: &crate::sched::run::Ending, ran: Duration) {
    use crate::sched::run::Ending;
    let counter = match ending {
        Ending::Done { .. } => counter!(ATTEMPTS, "ended" => "done"),
        Ending::Failed { .. } => counter!(ATTEMPTS, "ended" => "failed"),
        Ending::Interrupted { .. } => counter!(ATTEMPTS, "ended" => "interrupted"),
        Ending::StoreFailed { .. } => counter!(ATTEMPTS, "ended" => "store_failed"),
    };
    counter.increment(1);
    histogram!(ATTEMPT_DURATION).record(ran.as_secs_f64());
}

/// `starts` attempts, decided in one step, waited `waited` for their commit.
pub(crate) fn attempts_started(starts: u32, waited: Duration) {
    let histogram = histogram!(ATTEMPT_START_WAIT);
    for _ in 0..starts {
        histogram.record(waited.as_secs_f64());
    }
}

pub(crate) fn committed(requests: usize, took: Duration) {
    // As f64: a histogram's samples (group commits hold far fewer than 2^53 requests).
    histogram!(COMMIT_REQUESTS).record(requests as f64);
    histogram!(COMMIT_DURATION).record(took.as_secs_f64());
}

/// A group commit of the PostgreSQL backend sent `statements` statements.
#[cfg(feature = "postgres")]
pub(crate) fn statements(statements: u64) {
    histogram!(COMMIT_STATEMENTS).record(statements as f64);
}

/// Actors alive now, in every runtime of the process.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Held in an actor's state: the actor counts as alive until its state is dropped, however
/// it ends (stopped, failed or killed).
#[derive(Debug)]
pub(crate) struct LiveActor(());

impl LiveActor {
    pub(crate) fn new() -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        LiveActor(())
    }
}

impl Drop for LiveActor {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Actors alive now, in every runtime of the process (read for `tend_live_actors`).
pub fn live_actors() -> usize {
    LIVE.load(Ordering::Relaxed)
}
