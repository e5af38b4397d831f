//! The schema: its name (validated once, then spliced into every statement), its tables,
//! and the migrations that create them and move them on, under a version row.
//!
//! A start runs every migration the schema's version row does not show yet, in one
//! transaction holding a transaction-level advisory lock (so two processes starting at
//! once do not both migrate), and refuses a schema of a newer version than this build
//! knows, naming both.

use tokio_postgres::Client;

use super::failure::describe;
use super::url::Target;
use super::v1;
use crate::error::StoreError;

/// The version a marked schema claims (`PostgresStore::mark_newer_version`): one no build
/// knows yet.
const NEWER_VERSION: i32 = 99;

/// A schema's name: `[a-z_][a-z0-9_]{0,62}`, so it needs no quoting beyond the double
/// quotes every statement puts around it, and it fits PostgreSQL's 63-byte names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schema(String);

impl Schema {
    /// The schema `name`, or why it is not one.
    pub(crate) fn new(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && name.len() <= 63 {
            Ok(Schema(name.to_owned()))
        } else {
            Err(format!(
                "schema name `{}` is not valid: use a lower-case letter or `_`, then at most \
                 62 lower-case letters, digits or `_`",
                crate::model::cut(name)
            ))
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.0
    }

    /// The advisory lock key of `purpose` on this schema: the first 8 bytes of a SHA-256,
    /// so another application's keys (small integers, most often) never meet ours.
    pub(crate) fn lock_key(&self, purpose: &str) -> i64 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("tend:{purpose}:{}", self.0).as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(key)
    }
}

/// Each migration moves the schema from the version of its index to the next; the last
/// one's number is this build's version.
const MIGRATIONS: &[fn(&str) -> String] = &[version_1, version_2];

/// The version this build writes and reads.
pub(crate) const VERSION: i32 = MIGRATIONS.len() as i32;

/// The first version: every table. Ids are ULIDs in `text COLLATE "C"` (so they sort by
/// creation time whatever the database's collation); times are ms since the epoch;
/// counts are `bigint` (they are `u32` in the model); plans and attempt histories are
/// `json` (the text as written: key order kept, and `\u0000` taken, unlike `jsonb`).
fn version_1(s: &str) -> String {
    format!(
        r#"
CREATE TABLE "{s}".meta (
    key text PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE "{s}".executions (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    status text NOT NULL,
    live boolean NOT NULL,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL,
    resume_on_start boolean NOT NULL,
    reason text,
    pausing boolean NOT NULL,
    cancelling boolean NOT NULL,
    items_total bigint NOT NULL,
    items_done bigint
);
CREATE INDEX executions_live ON "{s}".executions (id) WHERE live;
CREATE TABLE "{s}".plans (
    id text COLLATE "C" PRIMARY KEY,
    plan json NOT NULL
);
CREATE TABLE "{s}".items (
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
    PRIMARY KEY (execution, idx)
);
CREATE TABLE "{s}".starts (
    execution text COLLATE "C" NOT NULL,
    idx bigint NOT NULL,
    attempt bigint NOT NULL,
    crashes bigint NOT NULL,
    PRIMARY KEY (execution, idx)
);
CREATE TABLE "{s}".checkpoints (
    execution text COLLATE "C" NOT NULL,
    idx bigint NOT NULL,
    state bytea NOT NULL,
    progress_done bigint,
    progress_total bigint,
    PRIMARY KEY (execution, idx)
);
CREATE TABLE "{s}".keys (
    key text PRIMARY KEY,
    execution text COLLATE "C" NOT NULL,
    digest bytea NOT NULL
);
CREATE INDEX keys_execution ON "{s}".keys (execution);
CREATE TABLE "{s}".artifacts (
    id bytea PRIMARY KEY,
    bytes bytea NOT NULL,
    toi_ms bigint NOT NULL
);
CREATE TABLE "{s}".artifact_refs (
    artifact bytea NOT NULL,
    execution text COLLATE "C" NOT NULL,
    PRIMARY KEY (artifact, execution)
);
CREATE INDEX artifact_refs_execution ON "{s}".artifact_refs (execution);
"#
    )
}

/// The second version, what an item costs the server cut by about half:
/// - started attempts as a log, a row per execution per group commit (its items'
///   indexes, attempts and crash counts as arrays, the later row winning), not a row per
///   item. An attempt's start is the one record every item writes before it runs; as a
///   row of its own it doubled the rows, index entries and WAL an item costs. The rows of
///   version 1 move into the log, an execution's in one row;
/// - an item's record in three columns, not thirteen: `status` and `attempts`, which the
///   statements that count done items read, and the rest as one `bytea` (see
///   `item_record`). Version 1's table is renamed `items_v1` here; its rows are moved by
///   [`v1::move_items`], which drops it.
fn version_2(s: &str) -> String {
    format!(
        r#"
ALTER TABLE "{s}".items RENAME TO items_v1;
ALTER INDEX "{s}".items_pkey RENAME TO items_v1_pkey;
CREATE TABLE "{s}".items (
    execution text COLLATE "C" NOT NULL,
    idx bigint NOT NULL,
    status text NOT NULL,
    attempts bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (execution, idx)
);
CREATE TABLE "{s}".start_log (
    execution text COLLATE "C" NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    idx bigint[] NOT NULL,
    attempt bigint[] NOT NULL,
    crashes bigint[] NOT NULL,
    PRIMARY KEY (execution, seq)
);
INSERT INTO "{s}".start_log (execution, idx, attempt, crashes)
    SELECT execution, array_agg(idx ORDER BY idx), array_agg(attempt ORDER BY idx),
           array_agg(crashes ORDER BY idx)
    FROM "{s}".starts GROUP BY execution;
DROP TABLE "{s}".starts;
"#
    )
}

/// The schema and its version table, if missing (the version table is outside the
/// migrations: it says which of them ran).
fn bootstrap(s: &str) -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL
);
"#
    )
}

/// The encodings whose text this backend reads back as written (SQL_ASCII stores bytes as
/// given).
const ENCODINGS: &[&str] = &["UTF8", "SQL_ASCII"];

/// Creates or migrates `schema` on `client`'s database to this build's version, under a
/// transaction-level advisory lock; refuses a newer version, and a database whose
/// encoding would not keep text as written.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: &Schema,
    target: &Target,
) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| target.open_error(format!("migrating: {}", describe(&e)));
    let encoding: String = client
        .query_one("SELECT current_setting('server_encoding')", &[])
        .await
        .map_err(fail)?
        .try_get(0)
        .map_err(fail)?;
    if !ENCODINGS.contains(&encoding.as_str()) {
        return Err(target.open_error(format!(
            "the database's encoding is {}; tend needs UTF8 (create the database with \
             ENCODING 'UTF8')",
            crate::model::cut(&encoding)
        )));
    }
    let s = schema.name();
    let txn = client.transaction().await.map_err(fail)?;
    txn.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&schema.lock_key("migrate")],
    )
    .await
    .map_err(fail)?;
    txn.batch_execute(&bootstrap(s)).await.map_err(fail)?;
    let found: Option<i32> = txn
        .query_opt(&format!(r#"SELECT version FROM "{s}".version"#), &[])
        .await
        .map_err(fail)?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(fail)?;
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(target.open_error(format!(
            "schema `{s}` holds tend's store format version {found}, newer than this build's \
             version {VERSION}: run a newer build of tend, or use another schema"
        )));
    }
    if found < 0 {
        return Err(target.open_error(format!(
            "schema `{s}` says store format version {found}, which no build writes"
        )));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tracing::info!(
            schema = s,
            from,
            to = from + 1,
            "migrating the store's schema"
        );
        txn.batch_execute(&migration(s)).await.map_err(fail)?;
        if from == 1 {
            let moved = v1::move_items(&txn, s).await.map_err(|e| {
                target.open_error(format!("migrating version 1's item records: {e}"))
            })?;
            tracing::info!(schema = s, moved, "item records moved to version 2's shape");
        }
    }
    if found < VERSION {
        set_version(&txn, s, VERSION).await.map_err(fail)?;
    }
    txn.commit().await.map_err(fail)
}

async fn set_version(
    txn: &tokio_postgres::Transaction<'_>,
    s: &str,
    version: i32,
) -> Result<(), tokio_postgres::Error> {
    txn.execute(
        &format!(
            r#"INSERT INTO "{s}".version (singleton, version) VALUES (true, $1)
               ON CONFLICT (singleton) DO UPDATE SET version = excluded.version"#
        ),
        &[&version],
    )
    .await
    .map(|_| ())
}

/// Marks `schema` as a newer build's (version [`NEWER_VERSION`]), creating its version
/// row if need be.
pub(crate) async fn mark_newer(
    client: &mut Client,
    schema: &Schema,
    target: &Target,
) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| {
        target.open_error(format!("marking the schema: {}", describe(&e)))
    };
    let s = schema.name();
    let txn = client.transaction().await.map_err(fail)?;
    txn.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&schema.lock_key("migrate")],
    )
    .await
    .map_err(fail)?;
    txn.batch_execute(&bootstrap(s)).await.map_err(fail)?;
    set_version(&txn, s, NEWER_VERSION).await.map_err(fail)?;
    txn.commit().await.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for good in ["tend", "_x", "suite_123_4", &"a".repeat(63)] {
            assert!(Schema::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Tend",
            "1tend",
            "te-nd",
            "te\"nd",
            "tend; DROP TABLE x",
            &"a".repeat(64),
            "tènd",
        ] {
            let error = Schema::new(bad).unwrap_err();
            assert!(error.contains("not valid"), "{error}");
        }
    }

    #[test]
    fn lock_keys_differ_by_purpose_and_schema() {
        let a = Schema::new("a").unwrap();
        let b = Schema::new("b").unwrap();
        assert_ne!(a.lock_key("runtime"), a.lock_key("migrate"));
        assert_ne!(a.lock_key("runtime"), b.lock_key("runtime"));
        assert_eq!(a.lock_key("runtime"), a.lock_key("runtime"));
    }
}
