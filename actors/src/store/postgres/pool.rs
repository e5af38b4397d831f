//! Connections: the pool that reads and the artifacts' single statements (a reference,
//! a read that marks interest, a sweep batch) take theirs from (the group-commit writer
//! has its own, see `transaction`), how a failure is told apart (a lost connection, a conflict with a
//! concurrent transaction, anything else), and how work is retried and bounded in time.
//!
//! A connection that failed is closed, never handed back to the pool. A lost one also
//! empties the pool of its idle connections (a server that restarted, or that terminated
//! our sessions, left them all dead, and one would otherwise be found dead per retry);
//! the pool connects again on demand, which is how the store recovers by itself once
//! the database is back.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::NoTls;

use super::failure::{Trouble, describe, trouble};
use super::schema::Schema;
use super::statements::Statements;
use super::url::Target;
use crate::error::StoreError;

/// What one piece of work on a connection returns.
pub(crate) type Work<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// How many times work is tried when its connection is lost or it conflicts with another
/// transaction (a serialization failure, a deadlock), before its error is returned.
pub(crate) const TRIES: usize = 4;

/// How long a piece of work (a read, a group commit) may wait for the database's answers
/// before it fails (its connection is then closed: the server rolls back what it left
/// open).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request waits for a free connection of the pool, or for a new one (the
/// writer's own too).
pub(crate) const POOL_TIMEOUT: Duration = Duration::from_secs(15);

/// Reads or writes: which error a failure becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doing {
    Read,
    Write,
}

/// The database: its pool, its statements, and what names it in a message.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) pool: Pool,
    pub(crate) target: Target,
    pub(crate) schema: Schema,
    pub(crate) sql: Statements,
}

impl Db {
    /// The pool of at most `pool_size` connections to `target` (none made yet).
    pub(crate) fn new(
        target: Target,
        schema: Schema,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            target.config.clone(),
            NoTls,
            ManagerConfig {
                // Whether the connection is closed, and no query: a commit costs no round
                // trip more. A connection found dead by its statement is retried above.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| target.open_error(format!("building the connection pool: {e}")))?;
        let sql = Statements::new(schema.name());
        Ok(Db {
            pool,
            target,
            schema,
            sql,
        })
    }

    /// `e` as the error of a read or a commit, naming the database without its password.
    pub(crate) fn error(&self, doing: Doing, e: impl std::fmt::Display) -> StoreError {
        self.say(doing, &e.to_string())
    }

    /// The error of a read or a commit that failed with `e`.
    pub(crate) fn failed(&self, doing: Doing, e: &tokio_postgres::Error) -> StoreError {
        self.say(doing, &describe(e))
    }

    fn say(&self, doing: Doing, e: &str) -> StoreError {
        let message = self.target.scrub(&format!("{}: {e}", self.target.url));
        match doing {
            Doing::Read => StoreError::Read(message),
            Doing::Write => StoreError::Commit(message),
        }
    }

    /// A connection of the pool.
    pub(crate) async fn client(&self, doing: Doing) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Closed => StoreError::Closed,
            PoolError::Backend(e) => self.error(doing, format!("cannot connect: {}", describe(&e))),
            PoolError::Timeout(_) => self.error(
                doing,
                format!("no connection free or made within {POOL_TIMEOUT:?}"),
            ),
            other => self.error(doing, other),
        })
    }

    /// A connection was lost: the idle ones are let go too (see the module docs).
    pub(crate) fn lost(&self) {
        let dropped = self.pool.retain(|_, _| false).removed.len();
        tracing::warn!(
            url = %self.target.url,
            dropped,
            "a store connection was lost; idle connections are closed and made anew"
        );
    }

    /// Runs `work` on a connection of the pool (with the statements to prepare on it),
    /// bounded by [`ANSWER_TIMEOUT`], and again
    /// on another one (at most [`TRIES`] times in all) while it fails with a lost
    /// connection or a conflict. `work` must be safe to run again: a read, or one
    /// statement whose effect is the same run twice.
    pub(crate) async fn run<T, F>(&self, doing: Doing, work: F) -> Result<T, StoreError>
    where
        F: for<'a> Fn(&'a Object, &'a Statements) -> Work<'a, T> + Send + Sync,
        T: Send,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let client = self.client(doing).await?;
            let e = match tokio::time::timeout(ANSWER_TIMEOUT, work(&client, &self.sql)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => {
                    drop(Object::take(client));
                    return Err(self.error(
                        doing,
                        format!("no answer within {ANSWER_TIMEOUT:?}; the connection is closed"),
                    ));
                }
            };
            // Never back into the pool: it may be dead, or inside a transaction.
            drop(Object::take(client));
            match trouble(&e) {
                Trouble::Lost if tries < TRIES => self.lost(),
                Trouble::Conflict if tries < TRIES => {}
                _ => return Err(self.failed(doing, &e)),
            }
            tracing::debug!(error = %self.target.scrub(&describe(&e)), tries, "store work tried again");
        }
    }
}

/// Runs `futures` (each a request on one connection) as a pipeline: each is first polled
/// in order, which sends its request, before any answer is awaited, so they reach the
/// server in order and cost one round trip together. Each must send its request when
/// first polled (a statement already prepared: one still to prepare would wait for its
/// preparation and send later). Returns their results, in order.
pub(crate) async fn pipelined<'a, T>(
    futures: Vec<Work<'a, T>>,
) -> Vec<Result<T, tokio_postgres::Error>> {
    pipelined_then(futures, |_| {}).await
}

/// [`pipelined`], calling `progress` with the results so far (in order, `None` for those
/// still to come) each time answers come in.
pub(crate) async fn pipelined_then<'a, T>(
    futures: Vec<Work<'a, T>>,
    mut progress: impl FnMut(&[Option<Result<T, tokio_postgres::Error>>]),
) -> Vec<Result<T, tokio_postgres::Error>> {
    let mut pending: Vec<Option<Work<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<Result<T, tokio_postgres::Error>>> =
        pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        let mut came = false;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                        came = true;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if came {
            progress(&results);
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    results
        .into_iter()
        // The loop above ends only once every future is done and its result kept.
        .map(|result| result.expect("every pipelined future has its result"))
        .collect()
}
