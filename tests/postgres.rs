//! The PostgreSQL backend against a real server (`TEND_TEST_POSTGRES_URL`): one runtime per
//! database and schema, a newer schema refused, no password in any error, connection loss
//! survived (two group commits in flight on the writer's connection too), and a step's
//! records in one round trip. The behaviour suite runs on it in
//! `tests/store_suite.rs`.

#[path = "support/postgres.rs"]
mod postgres;

use std::future::Future;
use std::time::Duration;

use tend::engine::error::StoreError;
use tend::engine::model::{
    AttemptOutcome, Block, Change, ExecutionId, ExecutionRecord, ExecutionStatus, ItemSpec,
    ItemState, ItemStatus, PastAttempt, Plan, Progress, Started,
};
use tend::engine::store::{Backend, PostgresOptions, PostgresStore, Store};

/// Every test gives up after this long, saying what it was doing, instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

async fn bounded<T>(doing: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, work)
        .await
        .unwrap_or_else(|_| panic!("{doing} took longer than {PATIENCE:?}"))
}

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        schema: schema.to_owned(),
        pool_size: 2,
    }
}

async fn connect(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
    bounded("connecting", PostgresStore::connect(url, options(schema))).await
}

/// Commits `changes` on `backend` itself (not through a `Store`, which would own it).
async fn commit_on(backend: &PostgresStore, changes: Vec<Change>) -> Result<(), StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    backend.commit(
        changes,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    bounded("committing", rx)
        .await
        .unwrap_or(Err(StoreError::Closed))
}

fn meta(key: &str, value: u8) -> Change {
    Change::Meta {
        key: key.to_owned(),
        value: vec![value],
    }
}

/// A running execution of `items` items.
fn execution(items: usize) -> ExecutionRecord {
    let mut block = Block::new("b");
    for i in 0..items {
        block.push(ItemSpec::raw(
            format!("i{i}"),
            "noop",
            serde_json::json!({}),
        ));
    }
    ExecutionRecord {
        id: ExecutionId::generate(),
        plan: std::sync::Arc::new(Plan::new("pg").block(block)),
        status: ExecutionStatus::Running,
        created_ms: 1,
        updated_ms: 1,
        resume_on_start: false,
        reason: None,
        pausing: false,
        cancelling: false,
        items_done: None,
    }
}

#[tokio::test]
async fn a_second_runtime_on_a_schema_is_refused_and_another_schema_is_not() {
    let Some(url) = postgres::url() else { return };
    let (first, second) = (postgres::unique("lock"), postgres::unique("lock"));
    let held = connect(&url, &first)
        .await
        .expect("the first runtime starts");
    let refused = connect(&url, &first)
        .await
        .expect_err("a second runtime on the same schema was let in");
    let message = refused.to_string();
    assert!(
        message.contains("another runtime holds schema") && message.contains(&first),
        "{message}"
    );
    let other = connect(&url, &second)
        .await
        .expect("a runtime on another schema starts");
    // A close gives the lock up at once: the next runtime starts without waiting.
    let store = Store::new(held);
    bounded("closing", store.close()).await.unwrap();
    let next = connect(&url, &first)
        .await
        .expect("a runtime starts once the first closed");
    bounded("closing", Store::new(next).close()).await.unwrap();
    bounded("closing", Store::new(other).close()).await.unwrap();
    postgres::drop_schemas(&url, &[first, second]).await;
}

#[tokio::test]
async fn a_schema_of_a_newer_version_is_refused_naming_it() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("newer");
    let store = Store::new(connect(&url, &schema).await.unwrap());
    bounded("committing", store.commit(vec![meta("kept", 1)]))
        .await
        .unwrap();
    bounded("closing", store.close()).await.unwrap();
    bounded("marking", PostgresStore::mark_newer_version(&url, &schema))
        .await
        .unwrap();
    let message = connect(&url, &schema)
        .await
        .expect_err("a newer schema was opened")
        .to_string();
    assert!(
        message.contains("format version 99") && message.contains("version 2"),
        "{message}"
    );
    // Nothing was changed by the refusal: its version row still says 99.
    let version: i32 = postgres::control(&url)
        .await
        .query_one(&format!(r#"SELECT version FROM "{schema}".version"#), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 99);
    postgres::drop_schemas(&url, &[schema]).await;
}

/// The start of attempt `attempt` of item `index`, after `crashes` crashes.
fn started(id: ExecutionId, index: u32, attempt: u32, crashes: u32) -> Change {
    Change::Started {
        id,
        index,
        started: Started { attempt, crashes },
    }
}

#[tokio::test]
async fn a_version_1_schema_is_migrated_keeping_its_records() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("migrate");
    let record = execution(3);
    let id = record.id;
    let backend = connect(&url, &schema).await.unwrap();
    commit_on(&backend, vec![record.change(true)])
        .await
        .unwrap();
    bounded("closing", Store::new(backend).close())
        .await
        .unwrap();
    // Back to version 1 as a build of it left things: an item record a column per field,
    // and a row per started attempt in the table `starts`. Item 0 is done; item 1 crashed
    // once and its second attempt started; item 2's first did.
    let control = postgres::control(&url).await;
    control
        .batch_execute(&format!(
            r#"DROP TABLE "{schema}".start_log;
               DROP TABLE "{schema}".items;
               CREATE TABLE "{schema}".items (
                   execution text COLLATE "C" NOT NULL,
                   idx bigint NOT NULL,
                   status text NOT NULL,
                   attempts bigint NOT NULL,
                   failures bigint NOT NULL,
                   crashes bigint NOT NULL,
                   progress_done bigint,
                   progress_total bigint,
                   message text,
                   output bytea,
                   error text,
                   history json NOT NULL,
                   unchanged boolean NOT NULL,
                   maybe_changed boolean NOT NULL,
                   refresh boolean NOT NULL,
                   PRIMARY KEY (execution, idx));
               INSERT INTO "{schema}".items VALUES
                   ('{id}', 0, 'done', 1, 0, 0, 3, 3, 'fine', '\x6f7574', NULL,
                    '[[1,10,20,"done",null]]', false, true, false);
               CREATE TABLE "{schema}".starts (
                   execution text COLLATE "C" NOT NULL,
                   idx bigint NOT NULL,
                   attempt bigint NOT NULL,
                   crashes bigint NOT NULL,
                   PRIMARY KEY (execution, idx));
               INSERT INTO "{schema}".starts VALUES ('{id}', 1, 2, 1), ('{id}', 2, 1, 0);
               UPDATE "{schema}".version SET version = 1;"#
        ))
        .await
        .unwrap();
    let backend = connect(&url, &schema).await.unwrap();
    let version: i32 = control
        .query_one(&format!(r#"SELECT version FROM "{schema}".version"#), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 2);
    let old_table: Option<String> = control
        .query_one(
            &format!("SELECT to_regclass('\"{schema}\".starts')::text"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old_table, None, "version 1's table `starts` is left");
    let old_table: Option<String> = control
        .query_one(
            &format!("SELECT to_regclass('\"{schema}\".items_v1')::text"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old_table, None, "version 1's item records are left");
    let store = Store::new(backend);
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    assert_eq!(
        back.items[0],
        Some(ItemState {
            status: ItemStatus::Done,
            attempts: 1,
            progress: Some(Progress { done: 3, total: 3 }),
            message: Some("fine".into()),
            output: Some(b"out".as_slice().into()),
            history: [PastAttempt {
                attempt: 1,
                started_ms: Some(10),
                ended_ms: 20,
                outcome: AttemptOutcome::Done,
                error: None,
            }]
            .into(),
            maybe_changed: true,
            ..ItemState::default()
        }),
        "item 0's record after the move"
    );
    let items = |back: tend::engine::store::StoredExecution| -> Vec<(ItemStatus, u32, u32)> {
        back.items
            .iter()
            .map(|i| {
                let i = i.clone().unwrap_or_default();
                (i.status, i.attempts, i.crashes)
            })
            .collect()
    };
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    assert_eq!(
        items(back),
        vec![
            (ItemStatus::Done, 1, 0),
            (ItemStatus::Running, 2, 1),
            (ItemStatus::Running, 1, 0),
        ]
    );
    // The log goes on from the migrated row: a later start of item 1 wins over it, and one
    // no newer than item 0's record changes nothing.
    bounded(
        "committing",
        store.commit(vec![started(id, 1, 3, 2), started(id, 0, 1, 0)]),
    )
    .await
    .unwrap();
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    assert_eq!(
        items(back),
        vec![
            (ItemStatus::Done, 1, 0),
            (ItemStatus::Running, 3, 2),
            (ItemStatus::Running, 1, 0),
        ]
    );
    bounded("closing", store.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}

#[tokio::test]
async fn a_first_record_that_meets_a_stored_row_replaces_it() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("first");
    let backend = connect(&url, &schema).await.unwrap();
    let record = execution(2);
    let id = record.id;
    let state = |attempts| ItemState {
        status: ItemStatus::Done,
        attempts,
        ..ItemState::default()
    };
    commit_on(
        &backend,
        vec![
            record.change(true),
            Change::Item {
                id,
                index: 0,
                state: state(1),
                first: true,
            },
        ],
    )
    .await
    .unwrap();
    // Wrongly said to be first: its insert meets the row, and the group is written again
    // with replacements, the other item's first record with it.
    let counter = backend.commit_counter();
    let before = counter.counts();
    commit_on(
        &backend,
        vec![
            Change::Item {
                id,
                index: 0,
                state: state(2),
                first: true,
            },
            Change::Item {
                id,
                index: 1,
                state: state(1),
                first: true,
            },
        ],
    )
    .await
    .expect("a first record that meets a row still commits");
    let after = counter.counts();
    // Two tries: BEGIN, the statement, COMMIT each (and any preparation).
    assert!(
        after.statements - before.statements >= 6,
        "not written again: {before:?} -> {after:?}"
    );
    let store = Store::new(backend);
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    let attempts: Vec<Option<u32>> = back
        .items
        .iter()
        .map(|i| i.as_ref().map(|i| i.attempts))
        .collect();
    assert_eq!(attempts, [Some(2), Some(1)]);
    bounded("closing", store.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}

/// The start-log rows of `id` in `schema`, and the items of its oldest row (the fold),
/// sorted.
async fn start_log(url: &str, schema: &str, id: ExecutionId) -> (i64, Vec<i64>) {
    let control = postgres::control(url).await;
    let rows: i64 = control
        .query_one(
            &format!(r#"SELECT count(*) FROM "{schema}".start_log WHERE execution = $1"#),
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    let mut folded: Vec<i64> = control
        .query_one(
            &format!(
                r#"SELECT idx FROM "{schema}".start_log WHERE execution = $1
                   ORDER BY seq LIMIT 1"#
            ),
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    folded.sort_unstable();
    (rows, folded)
}

/// Each item of `id` as read back: status, attempts, crashes.
async fn read_items(store: &Store, id: ExecutionId) -> Vec<(ItemStatus, u32, u32)> {
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    back.items
        .iter()
        .map(|i| {
            let i = i.clone().unwrap_or_default();
            (i.status, i.attempts, i.crashes)
        })
        .collect()
}

/// Starts item 0 of `id` once per commit for each of `attempts`, then checks that the
/// log stayed bounded (at 256 rows it is folded: the bound is that and the fold's row) and
/// that its fold holds the starts of `folded`; returns the store, to read with.
async fn start_often(
    url: &str,
    schema: &str,
    backend: PostgresStore,
    id: ExecutionId,
    attempts: std::ops::RangeInclusive<u32>,
    folded: &[i64],
) -> Store {
    for attempt in attempts {
        commit_on(&backend, vec![started(id, 0, attempt, attempt - 1)])
            .await
            .unwrap();
    }
    let (rows, fold) = start_log(url, schema, id).await;
    assert!((2..=257).contains(&rows), "{rows} start-log rows");
    assert_eq!(fold, folded);
    Store::new(backend)
}

#[tokio::test]
async fn an_executions_start_log_stays_bounded_however_long_it_runs() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("startlog");
    let backend = connect(&url, &schema).await.unwrap();
    let record = execution(3);
    let id = record.id;
    // Item 1 starts and is still running; item 2 starts and its record shows the
    // attempt (done), which supersedes its start.
    commit_on(
        &backend,
        vec![
            record.change(true),
            started(id, 1, 1, 0),
            started(id, 2, 1, 0),
        ],
    )
    .await
    .unwrap();
    let done = |index| Change::Item {
        id,
        index,
        state: ItemState {
            status: ItemStatus::Done,
            attempts: 1,
            ..ItemState::default()
        },
        first: true,
    };
    commit_on(&backend, vec![done(2)]).await.unwrap();
    // Item 0 started 600 times, a commit each: a row each in the log, until the store
    // folds it. The store has seen the whole log (the execution was submitted to it): its
    // folds write what it knows the log holds, which leaves out item 2's start (its
    // record shows it).
    let store = start_often(&url, &schema, backend, id, 1..=600, &[0, 1]).await;
    // Folding kept the latest start of each item still running, and the record of the
    // item that is done.
    assert_eq!(
        read_items(&store, id).await,
        [
            (ItemStatus::Running, 600, 599),
            (ItemStatus::Running, 1, 0),
            (ItemStatus::Done, 1, 0)
        ]
    );
    bounded("closing", store.close()).await.unwrap();
    // Opened again, the store has not seen the log: its folds read it. Item 1 is done,
    // item 0 starts 300 times more.
    let backend = connect(&url, &schema).await.unwrap();
    commit_on(&backend, vec![done(1)]).await.unwrap();
    let store = start_often(&url, &schema, backend, id, 601..=900, &[0]).await;
    assert_eq!(
        read_items(&store, id).await,
        [
            (ItemStatus::Running, 900, 899),
            (ItemStatus::Done, 1, 0),
            (ItemStatus::Done, 1, 0)
        ]
    );
    bounded("closing", store.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}

#[tokio::test]
async fn no_error_shows_the_password() {
    let Some(url) = postgres::url() else { return };
    const PASSWORD: &str = "s3cret-Pa55word";
    let with_password = postgres::with_password(&url, PASSWORD);
    let schema = postgres::unique("secret");
    let mut errors = Vec::new();
    // A database that does not exist.
    let missing = postgres::with_database(&with_password, "no_such_database_for_tend");
    errors.push(connect(&missing, &schema).await.unwrap_err());
    // TLS asked for.
    let tls = postgres::with_parameter(&with_password, "sslmode=require");
    errors.push(connect(&tls, &schema).await.unwrap_err());
    // A schema name that is not one.
    errors.push(connect(&with_password, "Not-A-Schema").await.unwrap_err());
    // Another runtime holds the schema. (The test server trusts every connection, so the
    // password itself is never checked.)
    let held = connect(&with_password, &schema).await.unwrap();
    errors.push(connect(&with_password, &schema).await.unwrap_err());
    bounded("closing", Store::new(held).close()).await.unwrap();
    // A newer version.
    bounded(
        "marking",
        PostgresStore::mark_newer_version(&with_password, &schema),
    )
    .await
    .unwrap();
    errors.push(connect(&with_password, &schema).await.unwrap_err());
    // Nothing listens there.
    let nowhere = "postgres://tend:s3cret-Pa55word@127.0.0.1:1/db";
    errors.push(connect(nowhere, &schema).await.unwrap_err());
    for error in &errors {
        let message = error.to_string();
        assert!(!message.contains(PASSWORD), "{message}");
        assert!(message.contains(":***@"), "{message}");
    }
    postgres::drop_schemas(&url, &[schema]).await;
}

/// Waits (bounded) until no session of `database` is left.
async fn sessions_gone(control: &tokio_postgres::Client, database: &str) {
    for _ in 0..1_000 {
        let left: i64 = control
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&database],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the sessions of {database} were not terminated");
}

#[tokio::test]
async fn commits_fail_while_the_database_is_gone_and_succeed_once_it_is_back() {
    let Some(url) = postgres::url() else { return };
    let control = postgres::control(&url).await;
    let database = postgres::unique("tend_loss");
    control
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let store_url = postgres::with_database(&url, &database);
    let backend = connect(&store_url, "tend").await.unwrap();
    let store = Store::new(backend);
    bounded("committing", store.commit(vec![meta("before", 1)]))
        .await
        .expect("a commit before the loss");

    // The database goes away: every session ended, and no new one let in.
    control
        .batch_execute(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}';"
        ))
        .await
        .unwrap();
    sessions_gone(&control, &database).await;
    let failed = bounded("committing", store.commit(vec![meta("during", 2)])).await;
    assert!(
        matches!(failed, Err(StoreError::Commit(_))),
        "a commit with the database gone: {failed:?}"
    );
    let failure = store.failure().expect("the failure is reported");
    assert!(failure.failed_commits >= 1, "{failure:?}");
    assert!(failure.reason.contains(&database), "{failure:?}");

    // Back: the next commit reconnects, takes the lock again, and succeeds.
    control
        .batch_execute(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    bounded("committing", store.commit(vec![meta("after", 3)]))
        .await
        .expect("a commit once the database is back");
    assert!(store.failure().is_none(), "{:?}", store.failure());
    for (key, expected) in [
        ("before", Some(vec![1])),
        ("during", None),
        ("after", Some(vec![3])),
    ] {
        let value = bounded("reading", store.meta(key)).await.unwrap();
        assert_eq!(value, expected, "{key}");
    }
    // The lock is held again: another runtime is refused.
    let refused = connect(&store_url, "tend").await;
    assert!(
        refused.is_err(),
        "a second runtime was let in after the loss"
    );

    bounded("closing", store.close()).await.unwrap();
    drop(store);
    control
        .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn terminated_sessions_are_replaced_and_the_lock_is_taken_again() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("terminated");
    // Its sessions carry a name of their own, so only they are terminated.
    let application = postgres::unique("tend_terminated");
    let store_url = postgres::with_parameter(&url, &format!("application_name={application}"));
    let store = Store::new(connect(&store_url, &schema).await.unwrap());
    let record = execution(2);
    bounded("committing", store.commit(vec![record.change(true)]))
        .await
        .unwrap();

    let control = postgres::control(&url).await;
    let pids: Vec<i32> = control
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        pids.len() >= 2,
        "{pids:?}: the lock's session and the pool's"
    );
    control
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS t(pid)",
            &[&pids],
        )
        .await
        .unwrap();
    // Gone, and their locks with them.
    for _ in 0..1_000 {
        let left: i64 = control
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The next commit is written again on a new connection, or fails and says so.
    let next = bounded(
        "committing",
        store.commit(vec![Change::Started {
            id: record.id,
            index: 0,
            started: Started {
                attempt: 1,
                crashes: 0,
            },
        }]),
    )
    .await;
    if let Err(e) = &next {
        let failure = store.failure().expect("a failed commit is reported");
        assert!(failure.reason.contains("127.0.0.1"), "{e}: {failure:?}");
    }
    // Either way, commits succeed again, and what they wrote reads back.
    bounded(
        "committing",
        store.commit(vec![Change::Item {
            id: record.id,
            index: 1,
            state: ItemState {
                status: ItemStatus::Done,
                attempts: 1,
                ..ItemState::default()
            },
            first: true,
        }]),
    )
    .await
    .expect("a commit after the sessions were replaced");
    assert!(store.failure().is_none(), "{:?}", store.failure());
    let back = bounded("reading", store.load_execution(record.id))
        .await
        .unwrap();
    assert_eq!(
        back.items[1].as_ref().map(|i| i.status),
        Some(ItemStatus::Done)
    );
    if next.is_ok() {
        assert_eq!(back.items[0].as_ref().map(|i| i.attempts), Some(1));
    }
    // The lock was taken again: another runtime is refused.
    let refused = connect(&url, &schema).await;
    assert!(
        refused.is_err(),
        "a second runtime was let in after the loss"
    );
    bounded("closing", store.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}

/// Hands `changes` to the writer at once; the receiver gets the result.
fn hand(
    backend: &PostgresStore,
    changes: Vec<Change>,
) -> tokio::sync::oneshot::Receiver<Result<(), StoreError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    backend.commit(
        changes,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx
}

/// Makes the first `COMMIT` that writes a `meta` row of `schema` wait for the advisory
/// lock `key` (which the test holds), then do `then` (PL/pgSQL). Later ones pass.
async fn hold_the_first_meta_commit(
    control: &tokio_postgres::Client,
    schema: &str,
    key: i64,
    then: &str,
) {
    control
        .batch_execute(&format!(
            r#"CREATE SEQUENCE "{schema}".held;
               CREATE FUNCTION "{schema}".hold() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF nextval('"{schema}".held') = 1 THEN
                   PERFORM pg_advisory_xact_lock({key});
                   {then};
                 END IF;
                 RETURN NULL;
               END $$;
               CREATE CONSTRAINT TRIGGER hold AFTER INSERT OR UPDATE ON "{schema}".meta
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{schema}".hold();"#
        ))
        .await
        .unwrap();
}

/// Waits until a session waits for the advisory lock `key` (a `COMMIT` held).
async fn held(control: &tokio_postgres::Client, key: i64) {
    for _ in 0..6_000 {
        let waiting: i64 = control
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND classid = 0 AND objid = $1::int8::oid",
                &[&key],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no commit waited for the advisory lock {key}");
}

/// Two groups on the writer's connection at once, the first held in its `COMMIT` (by a
/// trigger the test adds) until the second was sent behind it; then the first ends as
/// `then` says. Returns both results and the meta values read back: `a` (first),
/// `b` (second) and `shared` (1 from the first, 2 from the second).
async fn two_groups_in_flight(
    then: &str,
    key: i64,
) -> ([Result<(), StoreError>; 2], [Option<Vec<u8>>; 3]) {
    let url = postgres::url().expect("checked by the caller");
    let schema = postgres::unique("in_flight");
    let backend = connect(&url, &schema).await.unwrap();
    let control = postgres::control(&url).await;
    hold_the_first_meta_commit(&control, &schema, key, then).await;
    control
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let first = hand(&backend, vec![meta("a", 1), meta("shared", 1)]);
    held(&control, key).await;
    // The first's statements are answered and its COMMIT waits: the second goes behind it.
    let second = hand(&backend, vec![meta("b", 2), meta("shared", 2)]);
    control
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    let results = [
        bounded("the first commit", first)
            .await
            .unwrap_or(Err(StoreError::Closed)),
        bounded("the second commit", second)
            .await
            .unwrap_or(Err(StoreError::Closed)),
    ];
    let mut values = [None, None, None];
    for (value, key) in values.iter_mut().zip(["a", "b", "shared"]) {
        *value = bounded("reading", backend.meta(key.to_owned()))
            .await
            .unwrap();
    }
    bounded("closing", backend.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
    (results, values)
}

#[tokio::test]
async fn two_groups_on_a_connection_that_is_lost_are_written_again_in_order() {
    if postgres::url().is_none() {
        return;
    }
    // The first's session ends in its COMMIT, and the second, behind it, goes with it.
    let ([first, second], [a, b, shared]) =
        two_groups_in_flight("PERFORM pg_terminate_backend(pg_backend_pid())", 7_301).await;
    first.expect("the first group, written again");
    second.expect("the second group, written again");
    assert_eq!((a, b), (Some(vec![1]), Some(vec![2])));
    assert_eq!(
        shared,
        Some(vec![2]),
        "the second group's write of a row wins"
    );
}

#[tokio::test]
async fn a_group_that_fails_in_its_commit_is_not_written_again_over_the_one_behind_it() {
    if postgres::url().is_none() {
        return;
    }
    // A conflict, which a group alone would be written again for; the second landed.
    let ([first, second], [a, b, shared]) = two_groups_in_flight(
        "RAISE EXCEPTION 'held and refused by the test' USING ERRCODE = '40001'",
        7_302,
    )
    .await;
    let e = first.expect_err("the first group fails");
    assert!(
        e.to_string().contains("held and refused by the test"),
        "{e}"
    );
    second.expect("the second group lands");
    assert_eq!((a, b), (None, Some(vec![2])));
    assert_eq!(
        shared,
        Some(vec![2]),
        "the failed first group did not overwrite the second's row"
    );
}

#[tokio::test]
async fn a_step_of_a_hundred_items_is_one_round_trip_of_four_statements() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("trips");
    let backend = connect(&url, &schema).await.unwrap();
    let record = execution(200);
    let id = record.id;
    let step = |first: u32| {
        let mut changes = Vec::new();
        for index in first..first + 100 {
            changes.push(Change::Started {
                id,
                index,
                started: Started {
                    attempt: 1,
                    crashes: 0,
                },
            });
            changes.push(Change::Item {
                id,
                index,
                state: ItemState {
                    status: ItemStatus::Running,
                    attempts: 1,
                    ..ItemState::default()
                },
                first: true,
            });
        }
        changes
    };
    commit_on(&backend, vec![record.change(true)])
        .await
        .unwrap();
    // The first step of this shape prepares its statements on the connection.
    commit_on(&backend, step(0)).await.unwrap();
    let counter = backend.commit_counter();
    let before = counter.counts();
    commit_on(&backend, step(100)).await.unwrap();
    let after = backend.commit_counts();
    assert_eq!(counter.counts(), after);
    assert_eq!(after.commits - before.commits, 1, "{before:?} -> {after:?}");
    // BEGIN, the starts, the items, COMMIT; sent together.
    assert_eq!(
        after.statements - before.statements,
        4,
        "{before:?} -> {after:?}"
    );
    assert_eq!(
        after.round_trips - before.round_trips,
        1,
        "{before:?} -> {after:?}"
    );
    let store = Store::new(backend);
    let back = bounded("reading", store.load_execution(id)).await.unwrap();
    assert!(back.items.iter().all(|i| {
        i.as_ref()
            .is_some_and(|i| i.status == ItemStatus::Running && i.attempts == 1)
    }));
    bounded("closing", store.close()).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}

#[tokio::test]
async fn a_sweep_that_meets_a_reference_in_flight_does_not_delete_the_artifact() {
    let Some(url) = postgres::url() else { return };
    let schema = postgres::unique("race");
    let application = postgres::unique("tend_race");
    let store_url = postgres::with_parameter(&url, &format!("application_name={application}"));
    let backend = std::sync::Arc::new(connect(&store_url, &schema).await.unwrap());
    let (gone, holder) = (ExecutionId::generate(), ExecutionId::generate());
    let bytes = b"contended".to_vec();
    let artifact = tend::ArtifactId::of(&bytes);
    // Stored, then unreferenced: its execution deleted.
    commit_on(
        &backend,
        vec![
            Change::PutArtifact {
                id: gone,
                artifact: *artifact.as_bytes(),
                bytes,
                now_ms: 1,
            },
            Change::Delete { id: gone },
        ],
    )
    .await
    .unwrap();

    // Another transaction references it (as a referencing runtime does: the artifact's
    // row written, the reference inserted), and has not committed yet.
    let other = postgres::control(&url).await;
    other.batch_execute("BEGIN").await.unwrap();
    other
        .execute(
            &format!(r#"UPDATE "{schema}".artifacts SET toi_ms = 1 WHERE id = $1"#),
            &[&artifact.as_bytes().as_slice()],
        )
        .await
        .unwrap();
    other
        .execute(
            &format!(
                r#"INSERT INTO "{schema}".artifact_refs (artifact, execution) VALUES ($1, $2)"#
            ),
            &[&artifact.as_bytes().as_slice(), &holder.to_string()],
        )
        .await
        .unwrap();

    // A sweep with no protection starts, and waits for that row.
    let sweeping = tokio::spawn({
        let backend = backend.clone();
        async move { Backend::sweep_artifacts(&*backend, None, 10, u64::MAX).await }
    });
    let control = postgres::control(&url).await;
    let mut waited = false;
    for _ in 0..1_000 {
        let waiting: i64 = control
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&application],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        waited,
        "the sweep never waited for the referencing transaction"
    );
    other.batch_execute("COMMIT").await.unwrap();

    let batch = bounded("sweeping", sweeping).await.unwrap().unwrap();
    assert_eq!(batch.deleted, 0, "{batch:?}");
    let read = bounded("reading", Backend::read_artifact(&*backend, artifact, 2))
        .await
        .unwrap();
    assert_eq!(read.as_deref(), Some(&b"contended"[..]));
    bounded("closing", Backend::close(&*backend)).await.unwrap();
    postgres::drop_schemas(&url, &[schema]).await;
}
