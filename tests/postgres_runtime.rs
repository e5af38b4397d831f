//! A whole runtime on PostgreSQL, against a real server: one runtime per database and
//! schema (a second is refused at start, another schema works), and a database that goes
//! away stops executions as a full disk does, says why, and the runtime recovers by itself
//! once it is back.
#![cfg(feature = "postgres")]

#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/postgres.rs"]
mod postgres;

use helpers::*;
use serde_json::json;
use tend::demo::{Gate, Gates};
use tend::engine::store::PostgresOptions;
use tend::{Block, Config, ExecutionStatus, ItemSpec, ItemStatus, Plan, Runtime};

fn builder(url: &str, schema: &str, gates: &Gates) -> tend::RuntimeBuilder {
    Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .resource(gates.clone())
        .config(Config {
            disk_low_percent: 0.0,
            ..Config::default()
        })
        .postgres_with(
            url,
            PostgresOptions {
                schema: schema.to_owned(),
                ..PostgresOptions::default()
            },
        )
}

#[tokio::test]
async fn a_second_runtime_on_the_same_schema_is_refused_and_another_schema_works() {
    let Some(url) = postgres::url() else { return };
    let (schema, other) = (postgres::unique("rt"), postgres::unique("rt"));
    let gates = Gates::new();
    let first = builder(&url, &schema, &gates).start().await.unwrap();
    let secret = postgres::with_password(&url, "s3cret-pw");
    let refused = builder(&secret, &schema, &gates).start().await;
    let message = match refused {
        Ok(_) => panic!("a second runtime started on schema {schema}"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("another runtime"), "{message}");
    assert!(
        !message.contains("s3cret-pw"),
        "the password shows: {message}"
    );
    // Another schema of the same database is another store.
    let beside = builder(&url, &other, &gates).start().await.unwrap();
    let id = beside
        .submit(Plan::new("beside").block(Block::new("b").item(sum("one", 1))))
        .await
        .unwrap();
    assert!(outcome(&beside, id).await.is_completed());
    assert!(first.list().await.unwrap().is_empty());
    beside.shutdown().await.unwrap();
    // Once the first stops, its schema can be taken.
    first.shutdown().await.unwrap();
    drop(first);
    let again = builder(&url, &schema, &gates).start().await.unwrap();
    again.shutdown().await.unwrap();
    postgres::drop_schemas(&url, &[schema, other]).await;
}

#[tokio::test]
async fn a_lost_database_stops_executions_says_why_and_the_runtime_recovers_once_it_is_back() {
    let Some(url) = postgres::url() else { return };
    // A database of its own, so closing it to connections touches no other test.
    let database = postgres::unique("lost");
    let control = postgres::control(&url).await;
    control
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let db_url = postgres::with_database(&url, &database);
    let gates = Gates::new();
    let rt = builder(&db_url, "tend", &gates).start().await.unwrap();

    let held = ItemSpec::new("held", &Gate::new("g").output(json!(1))).unwrap();
    let plan = Plan::new("held").block(
        Block::new("b")
            .item(held)
            .item(sum("after", 1).after(["held"])),
    );
    let id = rt.submit(plan).await.unwrap();
    eventually("`held` waiting at its gate", || async {
        match gates.waiting("g") {
            1 => Ok(()),
            n => Err(format!("{n} waiting")),
        }
    })
    .await;

    // The database goes away: closed to new connections, every session ended.
    control
        .batch_execute(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .await
        .unwrap();
    gates.open("g");

    // The Done record could not be written: the execution stops, and nothing claims the
    // item is done.
    let outcome = outcome(&rt, id).await;
    assert_eq!(outcome.status, ExecutionStatus::Interrupted, "{outcome:?}");
    let failure = rt.store_failure().expect("the store says it failed");
    assert!(!failure.reason.is_empty());
    let health = rt.health_check().await.unwrap();
    assert!(!health.node_healthy, "{health:?}");

    // The database is back: without a restart the store works again, and the execution
    // runs to its end from what was durable.
    control
        .batch_execute(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    eventually("the execution resumed", || async {
        rt.resume(id).await.map_err(|e| e.to_string())
    })
    .await;
    let outcome = helpers::outcome(&rt, id).await;
    assert!(outcome.is_completed(), "{outcome:?}");
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("held").unwrap().status, ItemStatus::Done);
    assert!(rt.store_failure().is_none());
    assert!(rt.health_check().await.unwrap().node_healthy);
    rt.shutdown().await.unwrap();
    drop(rt);
    control
        .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .await
        .unwrap();
}
