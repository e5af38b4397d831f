//! No-op items on PostgreSQL against a batched-insert floor, and the same items on redb, in
//! one process run (issue 26, "Speed").
//!
//! For 10,000 and 100,000 independent no-op items in one execution (parallelism 256, as
//! the `items` bench), each round runs four variants, each timed from `submit` to the
//! durable outcome or, for a floor, from the first insert to the last commit's answer:
//!
//! - **tend on PostgreSQL**: a runtime on a fresh schema, its commits counted by the
//!   store's `CommitCounter` (commits, statements, round trips).
//! - **the PostgreSQL floor**: plain `tokio-postgres` on one connection inserting one row
//!   per item (`execution`, `idx`, a `bytea` record, primary key on the first two; the row
//!   about the size of tend's item row, measured) in as many transactions as tend's run
//!   just committed, so of the same mean size (items / commits): one multi-row
//!   `INSERT ... SELECT * FROM unnest(...)` per transaction, each its own transaction
//!   (one statement, one round trip, durable when it returns).
//! - **tend on redb**: a runtime on a redb file in a fresh temp dir, its commits counted
//!   from the `tend_commit_requests` histogram (one sample per group commit).
//! - **the redb floor**: the idea of the `items` bench's floor: the same rows, of the same
//!   size, made durable in as many `Durability::Immediate` redb transactions as tend on
//!   redb just committed, in a fresh file.
//!
//! Each floor follows the tend run it copies the commit count from; the PostgreSQL pair
//! and the redb pair swap places every round. One warm-up round of 10,000 items (not
//! counted) measures tend's item row for the floors' record size. Figures are medians over
//! the rounds, printed as one JSON line each on stdout
//! (`{"name","value","unit","baseline","baseline_value","ratio","target"}`); each run and
//! the paired ratios' ranges go to stderr.
//!
//! `TEND_BENCH_POSTGRES_URL=postgres://... cargo bench --features postgres --bench postgres`
//! (11 rounds of 10,000 and 7 of 100,000, about a minute on 2 cores; `-- --quick`: 3 rounds
//! of 10,000 and one of 100,000, about 10 s). Without the variable it says how to get a
//! server and exits. It creates and drops schemas named `tend_bench_<pid>_<n>` on that
//! server; give it a throwaway one, with `fsync` on (the default), or the floors and tend
//! alike measure no durability.

#[path = "support/noop.rs"]
mod noop;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString};
use noop::Noop;
use redb::{Database, Durability, TableDefinition};
use serde_json::json;
use tend::engine::Store;
use tend::engine::store::{CommitCounts, PostgresOptions, PostgresStore};
use tend::{Block, Config, ItemSpec, Plan, Registry, Runtime};
use tokio_postgres::{Client, NoTls};

const URL_VARIABLE: &str = "TEND_BENCH_POSTGRES_URL";
const PARALLELISM: usize = 256;
/// The longest one run may take before the bench gives up, saying which.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The length of an execution id (a ULID) as text: the floors' `execution` column.
const EXECUTION: &str = "01BENCHFL00RR0WS0000000000";
/// The floors' redb table: (execution, item index) -> record.
/// Keyed as tend keys item records: the execution's 26 characters, then the index in 4
/// big-endian bytes.
const RECORDS: TableDefinition<&[u8; 30], &[u8]> = TableDefinition::new("records");

/// How many rounds of which sizes.
struct Shape {
    /// (items, rounds)
    sizes: &'static [(usize, usize)],
}

const FULL: Shape = Shape {
    sizes: &[(10_000, 11), (100_000, 7)],
};
const QUICK: Shape = Shape {
    sizes: &[(10_000, 3), (100_000, 1)],
};

/// The group commits of every store in the process, from the two histograms each commit
/// records once, on both backends: `tend_commit_requests` (counted) and
/// `tend_commit_duration_seconds` (summed: how long the writer was committing, from taking
/// the batches to the answer). Every other metric is a no-op.
#[derive(Debug, Default, Clone)]
struct Commits {
    count: Arc<Count>,
    busy: Arc<Busy>,
}

#[derive(Debug, Default)]
struct Count(AtomicU64);

impl HistogramFn for Count {
    fn record(&self, _requests: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Nanoseconds.
#[derive(Debug, Default)]
struct Busy(AtomicU64);

impl HistogramFn for Busy {
    fn record(&self, seconds: f64) {
        self.0.fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }
}

impl Commits {
    /// The commits so far, and the writer's time in them.
    fn now(&self) -> (u64, Duration) {
        (
            self.count.0.load(Ordering::Relaxed),
            Duration::from_nanos(self.busy.0.load(Ordering::Relaxed)),
        )
    }

    /// The commits since `before` (a [`now`](Self::now)), and the writer's time in them.
    fn since(&self, before: (u64, Duration)) -> (u64, Duration) {
        let (count, busy) = self.now();
        (count - before.0, busy.saturating_sub(before.1))
    }
}

#[derive(Debug)]
struct CommitRecorder(Commits);

impl metrics::Recorder for CommitRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match key.name() {
            tend::engine::metrics::COMMIT_REQUESTS => Histogram::from_arc(self.0.count.clone()),
            tend::engine::metrics::COMMIT_DURATION => Histogram::from_arc(self.0.busy.clone()),
            _ => Histogram::noop(),
        }
    }
}

/// A name no other call in this process returns, valid as a schema name.
fn unique_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "tend_bench_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn plan(items: usize) -> Plan {
    let mut block = Block::new("all");
    for i in 0..items {
        block.push(ItemSpec::new(format!("n{i}"), &Noop).expect("a unit struct serializes"));
    }
    Plan::new("noop").block(block)
}

fn config() -> Config {
    Config {
        parallelism: PARALLELISM,
        ..Config::default()
    }
}

fn registry() -> Registry {
    Registry::new().with::<Noop>().expect("one kind")
}

/// Submits `plan` and waits for its outcome: the wall time, checked that every item ran.
async fn run(runtime: &Runtime, plan: Plan, items: usize, what: &str) -> Duration {
    let started = Instant::now();
    let outcome = tokio::time::timeout(RUN_TIMEOUT, async {
        let id = runtime.submit(plan).await.expect("a valid plan");
        runtime.wait(id).await.expect("an outcome")
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: no outcome of {items} items within {RUN_TIMEOUT:?}"));
    let took = started.elapsed();
    assert_eq!(
        outcome.done(),
        items,
        "{what}: not every item done: {outcome:?}"
    );
    took
}

async fn control(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn drop_schema(client: &Client, schema: &str) {
    client
        .batch_execute(&format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#))
        .await
        .unwrap_or_else(|e| panic!("cannot drop schema {schema}: {e}"));
}

/// One run of tend on PostgreSQL.
struct PostgresRun {
    took: Duration,
    /// What the store's writer sent during the run.
    counts: CommitCounts,
    /// How long the writer was committing during the run.
    busy: Duration,
    /// The mean size of an item's row, `pg_column_size` of the whole row.
    item_row_bytes: f64,
}

fn minus(after: CommitCounts, before: CommitCounts) -> CommitCounts {
    CommitCounts {
        commits: after.commits - before.commits,
        batches: after.batches - before.batches,
        statements: after.statements - before.statements,
        round_trips: after.round_trips - before.round_trips,
    }
}

async fn tend_postgres(
    url: &str,
    control: &Client,
    commits: &Commits,
    plan: &Plan,
    items: usize,
) -> PostgresRun {
    let schema = unique_schema();
    let options = PostgresOptions {
        schema: schema.clone(),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect(url, options)
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL store does not open: {e}"));
    let counter = store.commit_counter();
    let runtime = Runtime::builder()
        .registry(registry())
        .config(config())
        .store(Store::new(store))
        .start()
        .await
        .expect("runtime on PostgreSQL starts");
    let plan = plan.clone();
    let before = counter.counts();
    let observed = commits.now();
    let took = run(&runtime, plan, items, "tend on PostgreSQL").await;
    let counts = minus(counter.counts(), before);
    let (_, busy) = commits.since(observed);
    runtime.shutdown().await.expect("shutdown");
    let row = control
        .query_one(
            &format!(r#"SELECT avg(pg_column_size(i.*))::float8 FROM "{schema}".items i"#),
            &[],
        )
        .await
        .expect("item rows measured");
    let item_row_bytes: f64 = row.get(0);
    drop_schema(control, &schema).await;
    PostgresRun {
        took,
        counts,
        busy,
        item_row_bytes,
    }
}

/// The first item index of each of `commits` transactions of `items` rows (near-equal
/// sizes), and `items` last.
fn bounds(items: usize, commits: usize) -> Vec<usize> {
    let commits = commits.clamp(1, items.max(1));
    (0..=commits).map(|k| items * k / commits).collect()
}

/// The PostgreSQL floor: `items` rows of `record_bytes` in `commits` transactions.
async fn floor_postgres(
    control: &Client,
    items: usize,
    commits: usize,
    record_bytes: usize,
) -> Duration {
    let schema = unique_schema();
    control
        .batch_execute(&format!(
            r#"CREATE SCHEMA "{schema}";
               CREATE TABLE "{schema}".rows (
                   execution text COLLATE "C" NOT NULL,
                   idx bigint NOT NULL,
                   record bytea NOT NULL,
                   PRIMARY KEY (execution, idx))"#
        ))
        .await
        .expect("floor table created");
    let insert = control
        .prepare(&format!(
            r#"INSERT INTO "{schema}".rows (execution, idx, record)
               SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])"#
        ))
        .await
        .expect("floor insert prepared");
    let record = vec![0x5a_u8; record_bytes];
    let bounds = bounds(items, commits);
    let started = Instant::now();
    tokio::time::timeout(RUN_TIMEOUT, async {
        for pair in bounds.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let executions: Vec<&str> = vec![EXECUTION; to - from];
            let indexes: Vec<i64> = (from as i64..to as i64).collect();
            let records: Vec<&[u8]> = vec![record.as_slice(); to - from];
            control
                .execute(&insert, &[&executions, &indexes, &records])
                .await
                .expect("floor insert");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the PostgreSQL floor: {items} rows not in within {RUN_TIMEOUT:?}"));
    let took = started.elapsed();
    let row = control
        .query_one(&format!(r#"SELECT count(*) FROM "{schema}".rows"#), &[])
        .await
        .expect("floor rows counted");
    assert_eq!(row.get::<_, i64>(0), items as i64, "the floor's rows");
    drop_schema(control, &schema).await;
    took
}

/// The size `pg_column_size` gives a floor row with an empty record: what the record's
/// size is taken from to make the row the size of tend's.
async fn floor_row_overhead(control: &Client) -> f64 {
    let row = control
        .query_one(
            "SELECT pg_column_size(ROW($1::text, 0::int8, ''::bytea))::float8",
            &[&EXECUTION],
        )
        .await
        .expect("floor row measured");
    row.get(0)
}

/// One run of tend on a redb file in a fresh temp dir: its time, its group commits and the
/// writer's time in them.
async fn tend_redb(commits: &Commits, plan: &Plan, items: usize) -> (Duration, u64, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::builder()
        .registry(registry())
        .config(config())
        .data_dir(dir.path())
        .start()
        .await
        .expect("runtime on redb starts");
    let plan = plan.clone();
    let before = commits.now();
    let took = run(&runtime, plan, items, "tend on redb").await;
    let (committed, busy) = commits.since(before);
    runtime.shutdown().await.expect("shutdown");
    (took, committed, busy)
}

/// The redb floor: `items` records of `record_bytes` in `commits` durable transactions.
fn floor_redb(items: usize, commits: usize, record_bytes: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create(dir.path().join("floor.redb")).expect("redb file");
    let record = vec![0x5a_u8; record_bytes];
    let bounds = bounds(items, commits);
    let started = Instant::now();
    for pair in bounds.windows(2) {
        let mut tx = db.begin_write().expect("write transaction");
        tx.set_durability(Durability::Immediate)
            .expect("durability set before any write");
        {
            let mut table = tx.open_table(RECORDS).expect("table opens");
            for i in pair[0]..pair[1] {
                let mut key = [0u8; 30];
                key[..26].copy_from_slice(EXECUTION.as_bytes());
                key[26..].copy_from_slice(&(i as u32).to_be_bytes());
                table.insert(&key, record.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    started.elapsed()
}

/// The runs of one size.
#[derive(Default)]
struct Runs {
    tend_postgres: Vec<f64>,
    floor_postgres: Vec<f64>,
    tend_redb: Vec<f64>,
    floor_redb: Vec<f64>,
    round_trips: Vec<f64>,
    statements: Vec<f64>,
    /// The floor's transactions per item (= its statements and round trips per item).
    floor_commits: Vec<f64>,
    batches_per_commit: Vec<f64>,
    redb_commits: Vec<f64>,
    /// The share of each run's wall time its writer spent committing.
    postgres_busy: Vec<f64>,
    redb_busy: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The paired ratios' (min, max) over the rounds.
fn range(values: &[f64], baselines: &[f64]) -> (f64, f64) {
    values
        .iter()
        .zip(baselines)
        .map(|(v, b)| v / b)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r), hi.max(r))
        })
}

/// `x` to 4 significant digits: the figures' noise is far above that.
fn sig4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn figure(
    name: String,
    value: f64,
    unit: &str,
    baseline: &str,
    baseline_value: f64,
    target: Option<&str>,
) {
    println!(
        "{}",
        json!({
            "name": name,
            "value": sig4(value),
            "unit": unit,
            "baseline": baseline,
            "baseline_value": sig4(baseline_value),
            "ratio": sig4(value / baseline_value),
            "target": target,
        })
    );
}

struct Bench {
    url: String,
    control: Client,
    commits: Commits,
    /// The floors' record size, from the warm-up.
    record_bytes: usize,
}

impl Bench {
    /// One round of `items`: both pairs, the PostgreSQL one first when `postgres_first`.
    async fn round(&self, plan: &Plan, items: usize, postgres_first: bool, runs: &mut Runs) {
        for postgres in [postgres_first, !postgres_first] {
            if postgres {
                let tend =
                    tend_postgres(&self.url, &self.control, &self.commits, plan, items).await;
                let commits = tend.counts.commits as usize;
                let floor = floor_postgres(&self.control, items, commits, self.record_bytes).await;
                eprintln!(
                    "  {items} items, PostgreSQL: tend {:.1} ms ({} commits taking {:.1} ms, {} \
                     statements, {} round trips), floor {:.1} ms ({} transactions of about {} \
                     rows)",
                    ms(tend.took),
                    tend.counts.commits,
                    ms(tend.busy),
                    tend.counts.statements,
                    tend.counts.round_trips,
                    ms(floor),
                    commits.max(1),
                    items / commits.max(1),
                );
                let n = items as f64;
                runs.tend_postgres.push(ms(tend.took));
                runs.postgres_busy.push(ms(tend.busy) / ms(tend.took));
                runs.floor_postgres.push(ms(floor));
                runs.round_trips.push(tend.counts.round_trips as f64 / n);
                runs.statements.push(tend.counts.statements as f64 / n);
                runs.floor_commits.push(commits.max(1) as f64 / n);
                runs.batches_per_commit
                    .push(tend.counts.batches as f64 / tend.counts.commits.max(1) as f64);
            } else {
                let (tend, commits, busy) = tend_redb(&self.commits, plan, items).await;
                let record_bytes = self.record_bytes;
                let floor = tokio::task::spawn_blocking(move || {
                    floor_redb(items, commits as usize, record_bytes)
                })
                .await
                .expect("the redb floor ran");
                eprintln!(
                    "  {items} items, redb: tend {:.1} ms ({commits} commits taking {:.1} ms), \
                     floor {:.1} ms",
                    ms(tend),
                    ms(busy),
                    ms(floor),
                );
                runs.tend_redb.push(ms(tend));
                runs.redb_busy.push(ms(busy) / ms(tend));
                runs.floor_redb.push(ms(floor));
                runs.redb_commits.push(commits as f64);
            }
        }
    }
}

fn report(items: usize, runs: &Runs) {
    let rounds = runs.tend_postgres.len();
    let (pg_lo, pg_hi) = range(&runs.tend_postgres, &runs.floor_postgres);
    let (redb_lo, redb_hi) = range(&runs.tend_redb, &runs.floor_redb);
    let (cost_lo, cost_hi) = range(&runs.tend_postgres, &runs.tend_redb);
    eprintln!(
        "{items} items, {rounds} rounds: paired ratios (min-max): PostgreSQL/floor \
         {pg_lo:.2}-{pg_hi:.2}, redb/floor {redb_lo:.2}-{redb_hi:.2}, PostgreSQL/redb \
         {cost_lo:.2}-{cost_hi:.2}; PostgreSQL commits per run {:.0} (batches per commit \
         {:.1}, the writer committing {:.0}% of the run), redb commits per run {:.0} (the \
         writer committing {:.0}%)",
        median(&runs.floor_commits) * items as f64,
        median(&runs.batches_per_commit),
        median(&runs.postgres_busy) * 100.0,
        median(&runs.redb_commits),
        median(&runs.redb_busy) * 100.0,
    );
    figure(
        format!("postgres_noop_items_{items}"),
        median(&runs.tend_postgres),
        "ms",
        "plain tokio-postgres: the same rows in as many unnest-INSERT transactions as tend committed",
        median(&runs.floor_postgres),
        Some("ratio <= 1.5"),
    );
    figure(
        format!("postgres_round_trips_per_item_{items}"),
        median(&runs.round_trips),
        "round trips per item",
        "the floor: one round trip per transaction",
        median(&runs.floor_commits),
        Some("value <= 1"),
    );
    figure(
        format!("postgres_statements_per_item_{items}"),
        median(&runs.statements),
        "statements per item",
        "the floor: one statement per transaction",
        median(&runs.floor_commits),
        None,
    );
    figure(
        format!("redb_noop_items_{items}"),
        median(&runs.tend_redb),
        "ms",
        "redb: the same records in as many durable transactions as tend committed",
        median(&runs.floor_redb),
        None,
    );
    figure(
        format!("postgres_over_redb_noop_items_{items}"),
        median(&runs.tend_postgres),
        "ms",
        "tend on redb, the same items",
        median(&runs.tend_redb),
        None,
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let url = match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!(
                "postgres bench: {URL_VARIABLE} is unset, nothing measured. Give it a \
                 throwaway server (it creates and drops schemas there), for example one \
                 that scripts/postgres.sh starts and removes:\n  bash -c 'apt_install() {{ \
                 :; }}; source scripts/postgres.sh; start_postgres && \
                 {URL_VARIABLE}=$TEND_TEST_POSTGRES_URL cargo bench --features postgres \
                 --bench postgres'"
            );
            return;
        }
    };
    let commits = Commits::default();
    metrics::set_global_recorder(CommitRecorder(commits.clone()))
        .expect("no other recorder in the bench");
    let shape = if quick { QUICK } else { FULL };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    rt.block_on(async {
        let control = control(&url).await;
        let mut bench = Bench {
            url,
            control,
            commits,
            record_bytes: 1,
        };
        // Warm-up, not counted: tend's item row measured for the floors' records.
        let warm_items = 10_000;
        let warm_plan = plan(warm_items);
        let warm = tend_postgres(
            &bench.url,
            &bench.control,
            &bench.commits,
            &warm_plan,
            warm_items,
        )
        .await;
        let overhead = floor_row_overhead(&bench.control).await;
        bench.record_bytes = (warm.item_row_bytes - overhead).round().max(1.0) as usize;
        eprintln!(
            "warm-up: tend's item row {:.1} bytes; the floors' records {} bytes (a row of {:.0})",
            warm.item_row_bytes,
            bench.record_bytes,
            overhead + bench.record_bytes as f64
        );
        bench
            .round(&warm_plan, warm_items, true, &mut Runs::default())
            .await;
        for &(items, rounds) in shape.sizes {
            let plan = plan(items);
            let mut runs = Runs::default();
            for round in 0..rounds {
                bench.round(&plan, items, round % 2 == 0, &mut runs).await;
            }
            report(items, &runs);
        }
    });
    eprintln!(
        "postgres bench: {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
}
