//! The runtime lock: a session-level advisory lock on the schema, held by a connection of
//! its own for the store's life, so that one runtime at a time works on a database and
//! schema (until several nodes are built, no execution may run in two processes).
//!
//! PostgreSQL releases a session's advisory locks when the session ends: when the store
//! closes (at once: it unlocks first), when the process dies, or when the connection is
//! lost. The writer asks [`RuntimeLock::ensure`] before each commit, which takes the lock
//! again on a new connection if its connection is gone, and fails the commit, saying so,
//! if another runtime took it meanwhile.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::failure::describe;
use super::schema::Schema;
use super::url::Target;
use crate::error::StoreError;

/// How long a start waits for the lock before it is refused: a process that was just
/// killed still holds it until the server sees its connection close (a few milliseconds,
/// most often), and a restart right after it should not be refused for that.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// A connection of our own (outside the pool), its driving task ended when dropped.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: Client,
    task: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The socket closes now, not when the runtime next polls the task: the server
        // ends the session, and releases its locks, as soon as it sees that.
        self.task.abort();
    }
}

impl Session {
    /// Connects to `target`.
    pub(crate) async fn connect(target: &Target) -> Result<Self, tokio_postgres::Error> {
        let (client, connection) = target.config.connect(NoTls).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a store connection ended");
            }
        });
        Ok(Session { client, task })
    }
}

/// The runtime lock on one schema (see the module docs).
#[derive(Debug)]
pub(crate) struct RuntimeLock {
    target: Target,
    schema: Schema,
    key: i64,
    session: Option<Session>,
}

/// Why the lock is not held.
enum Refusal {
    /// Another session holds it.
    Held,
    /// The database could not be reached or asked.
    Failed(tokio_postgres::Error),
}

impl RuntimeLock {
    /// Takes the lock on `schema`, at start: refused, with an error that says so, when
    /// another runtime holds it for longer than [`LOCK_PATIENCE`].
    pub(crate) async fn take(target: &Target, schema: &Schema) -> Result<Self, StoreError> {
        let mut lock = RuntimeLock {
            target: target.clone(),
            schema: schema.clone(),
            key: schema.lock_key("runtime"),
            session: None,
        };
        match lock.try_take().await {
            Ok(()) => Ok(lock),
            Err(Refusal::Held) => Err(target.open_error(lock.held_elsewhere())),
            Err(Refusal::Failed(e)) => Err(target.open_error(describe(&e))),
        }
    }

    fn held_elsewhere(&self) -> String {
        format!(
            "another runtime holds schema `{}` on this database (its PostgreSQL advisory lock \
             {}): one runtime per database and schema; stop that one, or give this one \
             another schema",
            self.schema.name(),
            self.key
        )
    }

    /// Takes the lock on a new connection, waiting at most [`LOCK_PATIENCE`] for it.
    async fn try_take(&mut self) -> Result<(), Refusal> {
        let session = Session::connect(&self.target)
            .await
            .map_err(Refusal::Failed)?;
        let client = &session.client;
        client
            .batch_execute(&format!("SET lock_timeout = {}", LOCK_PATIENCE.as_millis()))
            .await
            .map_err(Refusal::Failed)?;
        match client
            .execute("SELECT pg_advisory_lock($1)", &[&self.key])
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                return Err(Refusal::Held);
            }
            Err(e) => return Err(Refusal::Failed(e)),
        }
        client
            .batch_execute("RESET lock_timeout")
            .await
            .map_err(Refusal::Failed)?;
        self.session = Some(session);
        Ok(())
    }

    /// The lock's connection, while it is open (for the migrations at start).
    pub(crate) fn client(&mut self) -> Option<&mut Client> {
        self.session
            .as_mut()
            .map(|s| &mut s.client)
            .filter(|c| !c.is_closed())
    }

    /// Before a commit: the lock is held (its connection is open), or is taken again on a
    /// new connection (then another runtime may have held it in between, and written).
    /// Fails, saying why, when another runtime holds it now or the database cannot be
    /// reached.
    pub(crate) async fn ensure(&mut self) -> Result<Retaken, StoreError> {
        if self.session.as_ref().is_some_and(|s| !s.client.is_closed()) {
            return Ok(Retaken::No);
        }
        self.session = None;
        match self.try_take().await {
            Ok(()) => {
                tracing::warn!(
                    schema = self.schema.name(),
                    "the store's lock connection was lost; the lock is taken again"
                );
                Ok(Retaken::Yes)
            }
            Err(Refusal::Held) => Err(StoreError::Commit(format!(
                "the store at {} lost its connection, and with it its lock: {}",
                self.target.url,
                self.held_elsewhere()
            ))),
            Err(Refusal::Failed(e)) => Err(StoreError::Commit(format!(
                "the store at {} lost its lock's connection and cannot take the lock again: {}",
                self.target.url,
                self.target.scrub(&describe(&e))
            ))),
        }
    }

    /// Gives the lock up, at once, and closes its connection.
    pub(crate) async fn release(&mut self) {
        if let Some(session) = self.session.take()
            && !session.client.is_closed()
            && let Err(e) = session
                .client
                .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
                .await
        {
            tracing::warn!(error = %e, "the store's lock could not be released; it goes with its connection");
        }
    }
}

/// Whether [`RuntimeLock::ensure`] had to take the lock again: the lock was let go
/// meanwhile, so what the runtime knows of the database may be out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retaken {
    No,
    Yes,
}
