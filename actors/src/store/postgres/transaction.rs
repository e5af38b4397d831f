//! One group commit on the wire: the writer's connection, and the task that sends a
//! group's transaction on it and reads the answers.
//!
//! A transaction is `BEGIN`, the group's statements and `COMMIT`, sent together. Its task
//! owns the group while its answers come, and says when every statement before `COMMIT`
//! has been answered without an error ([`Sent::written`]): from then on the transaction
//! can only fail with its connection (or the server), not with its rows. The writer
//! sends the next transaction on the same connection then, while this one's `COMMIT` is
//! still being made durable, and the server runs it right after. Both are in one
//! session, so the server runs them in order, and if they end with the connection, what
//! landed is the first, both, or neither, never the second alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};
use tokio_postgres::Statement;

use super::failure::describe;
use super::group::{Group, Planned};
use super::lock::Session;
use super::pool::{ANSWER_TIMEOUT, Db, Doing, POOL_TIMEOUT, Work, pipelined, pipelined_then};
use super::start_log::Folds;
use super::writer::{Counters, Waiting};
use crate::error::StoreError;

/// The writer's connection (not one of the pool's), with every statement a group commit
/// may run prepared on it.
pub(crate) struct Link {
    session: Session,
    prepared: HashMap<String, Statement>,
}

impl Link {
    /// Connects to the database and prepares the writes' statements, in one round trip
    /// after the connection's.
    pub(crate) async fn connect(db: &Db, counters: &Counters) -> Result<Arc<Self>, StoreError> {
        let connected = tokio::time::timeout(POOL_TIMEOUT, Session::connect(&db.target)).await;
        let session = match connected {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                return Err(db.error(Doing::Write, format!("cannot connect: {}", describe(&e))));
            }
            Err(_) => {
                return Err(db.error(
                    Doing::Write,
                    format!("no connection made within {POOL_TIMEOUT:?}"),
                ));
            }
        };
        let writes = db.sql.writes();
        let preparing: Vec<Work<'_, Statement>> = writes
            .iter()
            .map(|sql| Box::pin(session.client.prepare(sql)) as Work<'_, Statement>)
            .collect();
        let answers = tokio::time::timeout(ANSWER_TIMEOUT, pipelined(preparing)).await;
        let Ok(answers) = answers else {
            return Err(db.error(
                Doing::Write,
                format!("no answer to preparing the writes within {ANSWER_TIMEOUT:?}"),
            ));
        };
        counters
            .statements
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        counters.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut prepared = HashMap::with_capacity(writes.len());
        for (sql, answer) in writes.iter().zip(answers) {
            let statement = answer.map_err(|e| db.failed(Doing::Write, &e))?;
            prepared.insert((*sql).to_owned(), statement);
        }
        Ok(Arc::new(Link { session, prepared }))
    }
}

/// How a transaction failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server's or the client's error.
    Db(tokio_postgres::Error),
    /// No answer within [`ANSWER_TIMEOUT`].
    Timeout,
}

/// A transaction's end: its group and folds back (to be written again if it failed), and
/// how it went.
pub(crate) struct Landed {
    pub(crate) group: Group,
    pub(crate) folds: Folds,
    pub(crate) result: Result<(), Failure>,
}

/// A transaction sent, and the batches waiting for it.
pub(crate) struct Sent {
    pub(crate) waiting: Waiting,
    /// Answered once every statement before `COMMIT` was answered without an error;
    /// dropped unanswered otherwise.
    pub(crate) written: oneshot::Receiver<()>,
    pub(crate) task: JoinHandle<Landed>,
    pub(crate) began: Instant,
}

impl Sent {
    /// Waits for the transaction's end.
    pub(crate) async fn landed(&mut self) -> Result<Landed, JoinError> {
        (&mut self.task).await
    }
}

/// Sends `group` as one transaction on `link` (every item row upserted with
/// `replace_all`), its `folds` first, from a task of the writer's runtime.
pub(crate) fn send(
    link: &Arc<Link>,
    db: &Arc<Db>,
    counters: &Arc<Counters>,
    group: Group,
    folds: Folds,
    replace_all: bool,
    waiting: Waiting,
) -> Sent {
    let (written, said) = oneshot::channel();
    let (link, db, counters) = (link.clone(), db.clone(), counters.clone());
    let task = tokio::spawn(async move {
        let result = {
            let statements = group.statements(&db.sql, replace_all, &folds);
            let answers = write(&link, &statements, &counters, written);
            match tokio::time::timeout(ANSWER_TIMEOUT, answers).await {
                Ok(result) => result.map_err(Failure::Db),
                Err(_) => Err(Failure::Timeout),
            }
        };
        Landed {
            group,
            folds,
            result,
        }
    });
    Sent {
        waiting,
        written: said,
        task,
        began: Instant::now(),
    }
}

/// `BEGIN`, the statements and `COMMIT` as one pipeline (a statement not prepared on the
/// connection is prepared first, which the connection's preparation makes rare). `written`
/// is answered once every statement before `COMMIT` was answered without an error. The
/// first error, if any, is the answer (the server rolls the transaction back, and its
/// `COMMIT` ends it).
async fn write(
    link: &Link,
    statements: &[Planned<'_>],
    counters: &Counters,
    written: oneshot::Sender<()>,
) -> Result<(), tokio_postgres::Error> {
    let client = &link.session.client;
    let mut resolved = Vec::with_capacity(statements.len());
    let mut fresh = 0;
    for planned in statements {
        match link.prepared.get(planned.sql) {
            Some(statement) => resolved.push(statement.clone()),
            None => {
                fresh += 1;
                resolved.push(client.prepare(planned.sql).await?);
            }
        }
    }
    let mut work: Vec<Work<'_, u64>> = Vec::with_capacity(statements.len() + 2);
    work.push(Box::pin(async move {
        client.batch_execute("BEGIN").await.map(|()| 0)
    }));
    for (planned, statement) in statements.iter().zip(resolved.iter()) {
        work.push(Box::pin(planned.run(client, statement)));
    }
    work.push(Box::pin(async move {
        client.batch_execute("COMMIT").await.map(|()| 0)
    }));
    let sent = work.len() as u64;
    counters
        .statements
        .fetch_add(sent + fresh, Ordering::Relaxed);
    counters
        .round_trips
        .fetch_add(1 + u64::from(fresh > 0), Ordering::Relaxed);
    crate::metrics::statements(sent + fresh);
    let mut written = Some(written);
    let results = pipelined_then(work, |results| {
        // Every answer but `COMMIT`'s is in, and none is an error.
        let before_commit = &results[..results.len() - 1];
        if before_commit.iter().all(|r| matches!(r, Some(Ok(_))))
            && let Some(written) = written.take()
        {
            let _ = written.send(());
        }
    })
    .await;
    for result in results {
        result?;
    }
    Ok(())
}
