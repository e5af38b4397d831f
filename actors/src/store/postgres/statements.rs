//! Every statement the backend runs, its table names qualified by the schema, written once
//! at start. Each is prepared once per connection (`prepare_cached`) and then runs by name.
//!
//! Writes take arrays, one per column (`INSERT ... SELECT * FROM unnest($1::text[], ...)`),
//! so one statement stores every row of its table that a group commit holds.

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) upsert_executions: String,
    pub(crate) upsert_plans: String,
    pub(crate) upsert_keys: String,
    pub(crate) insert_starts: String,
    pub(crate) insert_items: String,
    pub(crate) upsert_items: String,
    pub(crate) upsert_checkpoints: String,
    pub(crate) upsert_meta: String,
    pub(crate) upsert_artifacts: String,
    pub(crate) insert_refs: String,
    pub(crate) delete_executions: String,
    pub(crate) clear_starts: String,
    pub(crate) fold_starts: String,
    pub(crate) replace_starts: String,
    pub(crate) clear_checkpoints: String,
    pub(crate) load_live: String,
    pub(crate) load_execution: String,
    pub(crate) load_items: String,
    pub(crate) load_starts: String,
    pub(crate) load_checkpoints: String,
    pub(crate) page_all: String,
    pub(crate) page_live: String,
    pub(crate) after: String,
    pub(crate) summary: String,
    pub(crate) finished: String,
    pub(crate) key_owner: String,
    pub(crate) execution_count: String,
    pub(crate) meta: String,
    pub(crate) reference_artifact: String,
    pub(crate) read_artifact: String,
    pub(crate) sweep: String,
    pub(crate) leftovers: String,
    pub(crate) size: String,
}

/// The columns of a summary, `e` being the execution's row: its done count is the
/// record's when it says, else its items' (records from a `running` execution).
const SUMMARY_COLUMNS: &str = "e.id, e.name, e.status, e.items_total, e.created_ms, \
     e.updated_ms, e.reason, e.items_done";

/// The columns of an execution's record, `e` its row and `p` its plan's.
const RECORD_COLUMNS: &str = "e.id, e.status, e.created_ms, e.updated_ms, \
     e.resume_on_start, e.reason, e.pausing, e.cancelling, e.items_done, p.plan::text";

/// The columns of an item record, in the order `rows::item_state` reads them.
pub(crate) const ITEM_COLUMNS: &str = "idx, status, attempts, record";

/// A scan that visits each distinct `column` of `table` with one index probe per value
/// (PostgreSQL has no skip scan of its own): what finds the executions that have items,
/// without reading every item.
fn distinct(s: &str, table: &str, column: &str) -> String {
    format!(
        r#"(WITH RECURSIVE walk(x) AS (
              (SELECT {column} FROM "{s}".{table} ORDER BY {column} LIMIT 1)
              UNION ALL
              SELECT (SELECT {column} FROM "{s}".{table} WHERE {column} > walk.x
                      ORDER BY {column} LIMIT 1)
              FROM walk WHERE walk.x IS NOT NULL)
            SELECT x FROM walk WHERE x IS NOT NULL)"#
    )
}

/// The latest start of each item of the execution `id` (an SQL expression) that has one:
/// `idx, attempt, crashes`. The start log's rows hold arrays; of an item's entries the one
/// in the latest row wins, as a later write of one row would.
fn latest_starts(s: &str, id: &str) -> String {
    format!(
        r#"SELECT DISTINCT ON (u.idx) u.idx, u.attempt, u.crashes
           FROM "{s}".start_log st
               CROSS JOIN LATERAL unnest(st.idx, st.attempt, st.crashes) AS u(idx, attempt, crashes)
           WHERE st.execution = {id}
           ORDER BY u.idx, st.seq DESC"#
    )
}

/// The rows of starts given as parameters `$n` on: the executions (text), the flat
/// arrays of items, attempts and crash counts (int8), and each execution's run in them
/// (int8, 1-based inclusive bounds; an array subscript is an int4, and a cast that does not
/// fit fails the statement).
fn starts_from(n: usize) -> String {
    let [e, i, a, c, f, t] = [n, n + 1, n + 2, n + 3, n + 4, n + 5];
    format!(
        "SELECT r.e, (${i}::int8[])[r.f::int4 : r.t::int4], \
                (${a}::int8[])[r.f::int4 : r.t::int4], (${c}::int8[])[r.f::int4 : r.t::int4] \
         FROM unnest(${e}::text[], ${f}::int8[], ${t}::int8[]) AS r(e, f, t)"
    )
}

/// The most leftover executions one call finds; the next sweep finds the rest.
pub(crate) const LEFTOVERS_MAX: i64 = 10_000;

impl Statements {
    /// Every statement a group commit may run (what the writer prepares on its
    /// connection).
    pub(crate) fn writes(&self) -> [&str; 15] {
        [
            &self.upsert_executions,
            &self.upsert_plans,
            &self.upsert_keys,
            &self.insert_starts,
            &self.insert_items,
            &self.upsert_items,
            &self.upsert_checkpoints,
            &self.upsert_meta,
            &self.upsert_artifacts,
            &self.insert_refs,
            &self.delete_executions,
            &self.clear_starts,
            &self.fold_starts,
            &self.replace_starts,
            &self.clear_checkpoints,
        ]
    }

    /// The statements of schema `s` (a validated name).
    pub(crate) fn new(s: &str) -> Self {
        let live_done = format!(
            r#"(SELECT count(*) FROM "{s}".items i
                LEFT JOIN ({latest}) l ON l.idx = i.idx
                WHERE i.execution = e.id AND i.status = 'done'
                  AND (l.attempt IS NULL OR l.attempt <= i.attempts))"#,
            latest = latest_starts(s, "e.id"),
        );
        let listed_done = format!(
            r#"(SELECT count(*) FROM "{s}".items i
                WHERE i.execution = e.id AND i.status = 'done')"#
        );
        let summary = |filter: &str, order: &str| {
            format!(
                r#"SELECT {SUMMARY_COLUMNS},
                          CASE WHEN e.items_done IS NULL THEN {listed_done} END
                   FROM "{s}".executions e {filter} {order}"#
            )
        };
        let insert_items = format!(
            r#"INSERT INTO "{s}".items (execution, idx, status, attempts, record)
               SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[],
                   $5::bytea[])"#
        );
        Statements {
            upsert_executions: format!(
                r#"INSERT INTO "{s}".executions (id, name, status, live, created_ms, updated_ms,
                       resume_on_start, reason, pausing, cancelling, items_total, items_done)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[],
                       $5::int8[], $6::int8[], $7::bool[], $8::text[], $9::bool[], $10::bool[],
                       $11::int8[], $12::int8[])
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                       status = excluded.status, live = excluded.live,
                       created_ms = excluded.created_ms, updated_ms = excluded.updated_ms,
                       resume_on_start = excluded.resume_on_start, reason = excluded.reason,
                       pausing = excluded.pausing, cancelling = excluded.cancelling,
                       items_total = excluded.items_total, items_done = excluded.items_done"#
            ),
            upsert_plans: format!(
                r#"INSERT INTO "{s}".plans (id, plan)
                   SELECT id, plan::json FROM unnest($1::text[], $2::text[]) AS t(id, plan)
                   ON CONFLICT (id) DO UPDATE SET plan = excluded.plan"#
            ),
            upsert_keys: format!(
                r#"INSERT INTO "{s}".keys (key, execution, digest)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
                   ON CONFLICT (key) DO UPDATE SET execution = excluded.execution,
                       digest = excluded.digest"#
            ),
            // A row per execution: its starts, its run of the three flat arrays (sliced:
            // nothing is unnested and aggregated again). No row is ever updated; a later
            // row wins (`latest_starts`).
            insert_starts: format!(
                r#"INSERT INTO "{s}".start_log (execution, idx, attempt, crashes)
                   {starts_from}"#,
                starts_from = starts_from(1),
            ),
            // Items' first records: a plain insert, about half the server's work of an
            // upsert (no speculative insertion). A row that is there after all fails the
            // commit with a unique violation, and the group is written again with upserts.
            upsert_items: format!(
                r#"{insert_items}
                   ON CONFLICT (execution, idx) DO UPDATE SET status = excluded.status,
                       attempts = excluded.attempts, record = excluded.record"#
            ),
            insert_items,
            upsert_checkpoints: format!(
                r#"INSERT INTO "{s}".checkpoints (execution, idx, state, progress_done,
                       progress_total)
                   SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[], $4::int8[],
                       $5::int8[])
                   ON CONFLICT (execution, idx) DO UPDATE SET state = excluded.state,
                       progress_done = excluded.progress_done,
                       progress_total = excluded.progress_total"#
            ),
            upsert_meta: format!(
                r#"INSERT INTO "{s}".meta (key, value)
                   SELECT * FROM unnest($1::text[], $2::bytea[])
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value"#
            ),
            // An artifact stored again keeps its bytes (the same, by its id) and takes the
            // new timestamp of interest. Its row is written either way: a sweep that read
            // it before then fails to delete it (see `artifacts`).
            upsert_artifacts: format!(
                r#"INSERT INTO "{s}".artifacts (id, bytes, toi_ms)
                   SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int8[])
                   ON CONFLICT (id) DO UPDATE SET toi_ms = excluded.toi_ms"#
            ),
            insert_refs: format!(
                r#"INSERT INTO "{s}".artifact_refs (artifact, execution)
                   SELECT * FROM unnest($1::bytea[], $2::text[])
                   ON CONFLICT DO NOTHING"#
            ),
            // Every record of the executions, in one statement.
            delete_executions: format!(
                r#"WITH e AS (DELETE FROM "{s}".executions WHERE id = ANY($1::text[])),
                        p AS (DELETE FROM "{s}".plans WHERE id = ANY($1::text[])),
                        i AS (DELETE FROM "{s}".items WHERE execution = ANY($1::text[])),
                        st AS (DELETE FROM "{s}".start_log WHERE execution = ANY($1::text[])),
                        c AS (DELETE FROM "{s}".checkpoints WHERE execution = ANY($1::text[])),
                        k AS (DELETE FROM "{s}".keys WHERE execution = ANY($1::text[])),
                        r AS (DELETE FROM "{s}".artifact_refs
                              WHERE execution = ANY($1::text[]))
                   SELECT 1"#
            ),
            clear_starts: format!(
                r#"DELETE FROM "{s}".start_log WHERE execution = ANY($1::text[])"#
            ),
            // Each execution's log in one row: the latest start of each item (read in the
            // statement's snapshot, so the row it inserts is not among those it deletes),
            // less the starts an item record already shows (at least that many attempts),
            // which the recovery rule ignores: the row holds only the attempts still
            // running or lost in a crash, so folding costs what the log gained since the
            // last fold, not what the execution ever started. (The redb backend drops
            // superseded entries the same way.)
            fold_starts: format!(
                r#"WITH latest AS (
                       SELECT DISTINCT ON (st.execution, u.idx) st.execution, u.idx,
                              u.attempt, u.crashes
                       FROM "{s}".start_log st
                           CROSS JOIN LATERAL unnest(st.idx, st.attempt, st.crashes)
                               AS u(idx, attempt, crashes)
                       WHERE st.execution = ANY($1::text[])
                       ORDER BY st.execution, u.idx, st.seq DESC),
                   gone AS (DELETE FROM "{s}".start_log WHERE execution = ANY($1::text[]))
                   INSERT INTO "{s}".start_log (execution, idx, attempt, crashes)
                   SELECT l.execution, array_agg(l.idx), array_agg(l.attempt),
                          array_agg(l.crashes)
                   FROM latest l
                   WHERE NOT EXISTS (SELECT 1 FROM "{s}".items i
                                     WHERE i.execution = l.execution AND i.idx = l.idx
                                       AND i.attempts >= l.attempt)
                   GROUP BY l.execution"#
            ),
            // Each execution's log replaced by what the writer knows it amounts to (see
            // `start_log`): its rows deleted (as the statement began), a row of the starts
            // given inserted (none for an execution given none).
            replace_starts: format!(
                r#"WITH gone AS (DELETE FROM "{s}".start_log WHERE execution = ANY($1::text[]))
                   INSERT INTO "{s}".start_log (execution, idx, attempt, crashes)
                   {replaced_from}"#,
                replaced_from = starts_from(2),
            ),
            clear_checkpoints: format!(
                r#"DELETE FROM "{s}".checkpoints c
                   USING unnest($1::text[], $2::int8[]) AS d(execution, idx)
                   WHERE c.execution = d.execution AND c.idx = d.idx"#
            ),
            // A record not `running` that says how many items are done is taken at its
            // word; else the items are counted as the recovery rule reads them (a done
            // item whose later attempt started is running).
            load_live: format!(
                r#"SELECT {RECORD_COLUMNS},
                          CASE WHEN e.items_done IS NULL OR e.status = 'running'
                               THEN {live_done} END
                   FROM "{s}".executions e LEFT JOIN "{s}".plans p ON p.id = e.id
                   WHERE e.live ORDER BY e.id"#
            ),
            load_execution: format!(
                r#"SELECT {RECORD_COLUMNS}
                   FROM "{s}".executions e LEFT JOIN "{s}".plans p ON p.id = e.id
                   WHERE e.id = $1"#
            ),
            load_items: format!(
                r#"SELECT {ITEM_COLUMNS} FROM "{s}".items WHERE execution = $1 ORDER BY idx"#
            ),
            load_starts: format!(
                "SELECT idx, attempt, crashes FROM ({latest}) l ORDER BY idx",
                latest = latest_starts(s, "$1"),
            ),
            load_checkpoints: format!(
                r#"SELECT idx, state, progress_done, progress_total FROM "{s}".checkpoints
                   WHERE execution = $1 ORDER BY idx"#
            ),
            page_all: summary(
                "WHERE ($1::text IS NULL OR e.id < $1)",
                "ORDER BY e.id DESC LIMIT $2",
            ),
            page_live: summary(
                "WHERE e.live AND ($1::text IS NULL OR e.id < $1)",
                "ORDER BY e.id DESC LIMIT $2",
            ),
            after: summary(
                "WHERE ($1::text IS NULL OR e.id > $1)",
                "ORDER BY e.id LIMIT $2",
            ),
            summary: summary("WHERE e.id = $1", ""),
            finished: format!(
                r#"SELECT id, status, updated_ms FROM "{s}".executions
                   WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"#
            ),
            key_owner: format!(r#"SELECT execution, digest FROM "{s}".keys WHERE key = $1"#),
            execution_count: format!(r#"SELECT count(*) FROM "{s}".executions"#),
            meta: format!(r#"SELECT value FROM "{s}".meta WHERE key = $1"#),
            // The check and the reference in one statement: the update locks the
            // artifact's row (a sweep deleting it waits, then fails, or went first and
            // nothing is updated), and touches its timestamp of interest.
            reference_artifact: format!(
                r#"WITH touched AS (UPDATE "{s}".artifacts SET toi_ms = $2 WHERE id = $1
                                    RETURNING id),
                        referenced AS (INSERT INTO "{s}".artifact_refs (artifact, execution)
                                       SELECT id, $3 FROM touched ON CONFLICT DO NOTHING)
                   SELECT count(*) FROM touched"#
            ),
            read_artifact: format!(
                r#"UPDATE "{s}".artifacts SET toi_ms = $2 WHERE id = $1 RETURNING bytes"#
            ),
            // One batch: the window of `$2` artifacts from `$1` on, of those deleted the
            // unreferenced ones older than `$3`, and where the next window starts.
            sweep: format!(
                r#"WITH seen AS (SELECT id FROM "{s}".artifacts WHERE id >= $1::bytea
                                 ORDER BY id LIMIT $2::int8 + 1),
                        doomed AS (DELETE FROM "{s}".artifacts a
                                   WHERE a.id IN (SELECT id FROM seen ORDER BY id
                                                  LIMIT $2::int8)
                                     AND a.toi_ms < $3::int8
                                     AND NOT EXISTS (SELECT 1 FROM "{s}".artifact_refs r
                                                     WHERE r.artifact = a.id)
                                   RETURNING octet_length(a.bytes) AS bytes)
                   SELECT (SELECT count(*) FROM seen),
                          (SELECT count(*) FROM doomed),
                          (SELECT coalesce(sum(bytes), 0)::int8 FROM doomed),
                          (SELECT id FROM seen ORDER BY id OFFSET $2::int8 LIMIT 1)"#
            ),
            leftovers: format!(
                r#"SELECT x FROM (
                       SELECT id AS x FROM "{s}".plans
                       UNION SELECT x FROM {items} AS i
                       UNION SELECT x FROM {starts} AS st
                       UNION SELECT x FROM {checkpoints} AS c
                       UNION SELECT x FROM {refs} AS r
                       UNION SELECT execution FROM "{s}".keys) found
                   WHERE NOT EXISTS (SELECT 1 FROM "{s}".executions e WHERE e.id = found.x)
                   ORDER BY x LIMIT {LEFTOVERS_MAX}"#,
                items = distinct(s, "items", "execution"),
                starts = distinct(s, "start_log", "execution"),
                checkpoints = distinct(s, "checkpoints", "execution"),
                refs = distinct(s, "artifact_refs", "execution"),
            ),
            size: r#"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relkind = 'r'"#
                .to_owned(),
        }
    }
}
