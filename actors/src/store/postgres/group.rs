//! One group commit's rows: every batch the writer took, merged in order into one set of
//! rows per table, then written as one statement per table and kind of change.
//!
//! Merging keeps the batches' meaning: a later change to the same row wins (each table's
//! rows are kept by key, so a statement never touches a row twice, which `ON CONFLICT DO
//! UPDATE` refuses), and a deletion drops the rows merged before it that it deletes. The
//! statements then run deletions first and writes after, which is what running the
//! batches one after another would have left: whatever a deletion deleted was merged
//! before it (and is dropped), whatever was merged after it is written after it.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::rows::{CheckpointRow, ExecutionRow, ItemRow, Row};
use super::start_log::Folds;
use super::statements::Statements;
use crate::model::ExecutionId;

type ItemKey = (ExecutionId, u32);

/// The rows of one group commit.
#[derive(Debug, Default)]
pub(crate) struct Group {
    executions: BTreeMap<ExecutionId, ExecutionRow>,
    plans: BTreeMap<ExecutionId, String>,
    keys: BTreeMap<String, (ExecutionId, [u8; 32])>,
    starts: BTreeMap<ItemKey, (i64, i64)>,
    items: BTreeMap<ItemKey, ItemRow>,
    checkpoints: BTreeMap<ItemKey, CheckpointRow>,
    meta: BTreeMap<String, Vec<u8>>,
    artifacts: BTreeMap<[u8; 32], (Vec<u8>, i64)>,
    refs: BTreeSet<([u8; 32], ExecutionId)>,
    deleted: BTreeSet<ExecutionId>,
    cleared_starts: BTreeSet<ExecutionId>,
    cleared_checkpoints: BTreeSet<ItemKey>,
}

/// Every item key of execution `id`.
fn of(id: ExecutionId) -> std::ops::RangeInclusive<ItemKey> {
    (id, 0)..=(id, u32::MAX)
}

/// Drops the entries of `map` whose key is in `range`.
fn drop_range<V>(map: &mut BTreeMap<ItemKey, V>, range: std::ops::RangeInclusive<ItemKey>) {
    let doomed: Vec<ItemKey> = map.range(range).map(|(k, _)| *k).collect();
    for key in doomed {
        map.remove(&key);
    }
}

impl Group {
    /// Merges `rows` (one batch, in order) after those merged before.
    pub(crate) fn merge(&mut self, rows: Vec<Row>) {
        for row in rows {
            self.add(row);
        }
    }

    fn add(&mut self, row: Row) {
        match row {
            Row::Execution(id, row) => {
                self.executions.insert(id, row);
            }
            Row::Plan(id, plan) => {
                self.plans.insert(id, plan);
            }
            Row::Key {
                key,
                execution,
                digest,
            } => {
                self.keys.insert(key, (execution, digest));
            }
            Row::Started {
                execution,
                index,
                attempt,
                crashes,
            } => {
                self.starts.insert((execution, index), (attempt, crashes));
            }
            Row::Item(id, index, mut row) => {
                // Whether the row exists before this group is what its first change here
                // said.
                if let Some(earlier) = self.items.get(&(id, index)) {
                    row.first = earlier.first;
                }
                self.items.insert((id, index), row);
            }
            Row::Checkpoint(id, index, row) => {
                self.checkpoints.insert((id, index), row);
            }
            Row::ClearCheckpoint(id, index) => {
                self.checkpoints.remove(&(id, index));
                self.cleared_checkpoints.insert((id, index));
            }
            Row::ClearStarts(id) => {
                drop_range(&mut self.starts, of(id));
                self.cleared_starts.insert(id);
            }
            Row::Meta(key, value) => {
                self.meta.insert(key, value);
            }
            Row::Delete(id) => {
                self.drop_execution(id);
                self.deleted.insert(id);
            }
            Row::Artifact {
                artifact,
                bytes,
                toi_ms,
                execution,
            } => {
                self.artifacts.insert(artifact, (bytes, toi_ms));
                self.refs.insert((artifact, execution));
            }
        }
    }

    /// Drops every row of execution `id` merged so far (its deletion comes after them).
    /// The artifacts stay: only their references are the execution's.
    fn drop_execution(&mut self, id: ExecutionId) {
        self.executions.remove(&id);
        self.plans.remove(&id);
        self.keys.retain(|_, (owner, _)| *owner != id);
        drop_range(&mut self.starts, of(id));
        drop_range(&mut self.items, of(id));
        drop_range(&mut self.checkpoints, of(id));
        self.refs.retain(|(_, execution)| *execution != id);
    }

    /// Merges `later`, a group of batches that came after this one's, as if its batches
    /// had been merged here one by one: its deletions and clears drop what this group
    /// holds of theirs, then its rows replace this group's (an item row keeps what this
    /// group's first change of it said about being first). What a group written again
    /// after the one behind it was sent on the same connection, and both failed, takes.
    pub(crate) fn absorb(&mut self, later: Group) {
        for &id in &later.deleted {
            self.drop_execution(id);
        }
        for &id in &later.cleared_starts {
            drop_range(&mut self.starts, of(id));
        }
        for key in &later.cleared_checkpoints {
            self.checkpoints.remove(key);
        }
        self.executions.extend(later.executions);
        self.plans.extend(later.plans);
        self.keys.extend(later.keys);
        self.starts.extend(later.starts);
        for (key, mut row) in later.items {
            if let Some(earlier) = self.items.get(&key) {
                row.first = earlier.first;
            }
            self.items.insert(key, row);
        }
        self.checkpoints.extend(later.checkpoints);
        self.meta.extend(later.meta);
        self.artifacts.extend(later.artifacts);
        self.refs.extend(later.refs);
        self.deleted.extend(later.deleted);
        self.cleared_starts.extend(later.cleared_starts);
        self.cleared_checkpoints.extend(later.cleared_checkpoints);
    }

    /// The executions it starts attempts of (one start-log row each), in order.
    pub(crate) fn started_executions(&self) -> impl Iterator<Item = ExecutionId> + '_ {
        let mut last = None;
        self.starts
            .keys()
            .map(|(id, _)| *id)
            .filter(move |id| last.replace(*id) != Some(*id))
    }

    /// Every start it appends: (execution, item, attempt, crashes).
    pub(crate) fn starts(&self) -> impl Iterator<Item = (ExecutionId, u32, i64, i64)> + '_ {
        self.starts
            .iter()
            .map(|(&(id, index), &(attempt, crashes))| (id, index, attempt, crashes))
    }

    /// Every item record it writes: (execution, item, attempts).
    pub(crate) fn recorded(&self) -> impl Iterator<Item = (ExecutionId, u32, i64)> + '_ {
        self.items
            .iter()
            .map(|(&(id, index), row)| (id, index, row.attempts))
    }

    /// The executions it submits (their plans are written only then).
    pub(crate) fn new_executions(&self) -> impl Iterator<Item = ExecutionId> + '_ {
        self.plans.keys().copied()
    }

    /// Every execution whose start log or item records it writes, clears or deletes.
    pub(crate) fn touched_executions(&self) -> impl Iterator<Item = ExecutionId> + '_ {
        self.started_executions()
            .chain(self.items.keys().map(|(id, _)| *id))
            .chain(self.new_executions())
            .chain(self.cleared_executions())
    }

    /// The executions whose start logs it clears or deletes.
    pub(crate) fn cleared_executions(&self) -> impl Iterator<Item = ExecutionId> + '_ {
        self.cleared_starts.iter().chain(&self.deleted).copied()
    }

    /// Whether it writes nothing (every batch in it was a flush).
    pub(crate) fn is_empty(&self) -> bool {
        self.executions.is_empty()
            && self.plans.is_empty()
            && self.keys.is_empty()
            && self.starts.is_empty()
            && self.items.is_empty()
            && self.checkpoints.is_empty()
            && self.meta.is_empty()
            && self.artifacts.is_empty()
            && self.refs.is_empty()
            && self.deleted.is_empty()
            && self.cleared_starts.is_empty()
            && self.cleared_checkpoints.is_empty()
    }

    /// The statements that write it, deletions first, each with its SQL (to prepare)
    /// and its parameters (one array per column). Item rows that are their item's first
    /// are inserted, the rest upserted; with `replace_all` every one is upserted (what a
    /// group written again does: its first try may have committed). The start logs of
    /// `folds` are folded into a row each before this group's starts are appended.
    pub(crate) fn statements<'a>(
        &'a self,
        sql: &'a Statements,
        replace_all: bool,
        folds: &Folds,
    ) -> Vec<Planned<'a>> {
        let mut out = Vec::new();
        if !self.deleted.is_empty() {
            out.push(Planned::new(
                &sql.delete_executions,
                vec![Box::new(ids(self.deleted.iter()))],
            ));
        }
        if !self.cleared_starts.is_empty() {
            out.push(Planned::new(
                &sql.clear_starts,
                vec![Box::new(ids(self.cleared_starts.iter()))],
            ));
        }
        if !self.cleared_checkpoints.is_empty() {
            let (executions, indexes) = keys(self.cleared_checkpoints.iter());
            out.push(Planned::new(
                &sql.clear_checkpoints,
                vec![Box::new(executions), Box::new(indexes)],
            ));
        }
        if !self.executions.is_empty() {
            out.push(self.executions_statement(sql));
        }
        if !self.plans.is_empty() {
            out.push(Planned::new(
                &sql.upsert_plans,
                vec![
                    Box::new(ids(self.plans.keys())),
                    Box::new(
                        self.plans
                            .values()
                            .map(String::as_str)
                            .collect::<Vec<&str>>(),
                    ),
                ],
            ));
        }
        if !self.keys.is_empty() {
            out.push(Planned::new(
                &sql.upsert_keys,
                vec![
                    Box::new(self.keys.keys().map(String::as_str).collect::<Vec<&str>>()),
                    Box::new(ids(self.keys.values().map(|(id, _)| id))),
                    Box::new(
                        self.keys
                            .values()
                            .map(|(_, digest)| digest.as_slice())
                            .collect::<Vec<&[u8]>>(),
                    ),
                ],
            ));
        }
        if !folds.read.is_empty() {
            out.push(Planned::new(
                &sql.fold_starts,
                vec![Box::new(ids(folds.read.iter()))],
            ));
        }
        if !folds.replaced.is_empty() {
            let mut params: Vec<Param<'a>> = vec![Box::new(ids(folds.replaced.iter()))];
            params.extend(start_runs(folds.starts.iter().copied()));
            out.push(Planned::new(&sql.replace_starts, params));
        }
        if !self.starts.is_empty() {
            out.push(Planned::new(
                &sql.insert_starts,
                start_runs(self.starts()).into(),
            ));
        }
        let (fresh, stored): (Vec<_>, Vec<_>) = self
            .items
            .iter()
            .partition(|(_, row)| row.first && !replace_all);
        if !fresh.is_empty() {
            out.push(items_statement(&sql.insert_items, fresh));
        }
        if !stored.is_empty() {
            out.push(items_statement(&sql.upsert_items, stored));
        }
        if !self.checkpoints.is_empty() {
            let (executions, indexes) = keys(self.checkpoints.keys());
            let rows: Vec<&CheckpointRow> = self.checkpoints.values().collect();
            out.push(Planned::new(
                &sql.upsert_checkpoints,
                vec![
                    Box::new(executions),
                    Box::new(indexes),
                    Box::new(rows.iter().map(|r| r.state.as_slice()).collect::<Vec<_>>()),
                    Box::new(
                        rows.iter()
                            .map(|r| r.progress.map(|p| p.0))
                            .collect::<Vec<_>>(),
                    ),
                    Box::new(
                        rows.iter()
                            .map(|r| r.progress.map(|p| p.1))
                            .collect::<Vec<_>>(),
                    ),
                ],
            ));
        }
        if !self.meta.is_empty() {
            out.push(Planned::new(
                &sql.upsert_meta,
                vec![
                    Box::new(self.meta.keys().map(String::as_str).collect::<Vec<&str>>()),
                    Box::new(
                        self.meta
                            .values()
                            .map(Vec::as_slice)
                            .collect::<Vec<&[u8]>>(),
                    ),
                ],
            ));
        }
        if !self.artifacts.is_empty() {
            out.push(Planned::new(
                &sql.upsert_artifacts,
                vec![
                    Box::new(
                        self.artifacts
                            .keys()
                            .map(|a| a.as_slice())
                            .collect::<Vec<&[u8]>>(),
                    ),
                    Box::new(
                        self.artifacts
                            .values()
                            .map(|(bytes, _)| bytes.as_slice())
                            .collect::<Vec<&[u8]>>(),
                    ),
                    Box::new(self.artifacts.values().map(|a| a.1).collect::<Vec<i64>>()),
                ],
            ));
        }
        if !self.refs.is_empty() {
            out.push(Planned::new(
                &sql.insert_refs,
                vec![
                    Box::new(self.refs.iter().map(|r| r.0.as_slice()).collect::<Vec<_>>()),
                    Box::new(ids(self.refs.iter().map(|r| &r.1))),
                ],
            ));
        }
        out
    }

    fn executions_statement<'a>(&'a self, sql: &'a Statements) -> Planned<'a> {
        let rows: Vec<&ExecutionRow> = self.executions.values().collect();
        macro_rules! column {
            ($f:expr) => {
                Box::new(rows.iter().map($f).collect::<Vec<_>>()) as Param<'a>
            };
        }
        Planned::new(
            &sql.upsert_executions,
            vec![
                Box::new(ids(self.executions.keys())),
                column!(|r| r.name.as_str()),
                column!(|r| r.status),
                column!(|r| r.live),
                column!(|r| r.created_ms),
                column!(|r| r.updated_ms),
                column!(|r| r.resume_on_start),
                column!(|r| r.reason.as_deref()),
                column!(|r| r.pausing),
                column!(|r| r.cancelling),
                column!(|r| r.items_total),
                column!(|r| r.items_done),
            ],
        )
    }
}

/// The statement `sql` (the items' insert or upsert) over `items`.
fn items_statement<'a>(sql: &'a str, items: Vec<(&'a ItemKey, &'a ItemRow)>) -> Planned<'a> {
    let (executions, indexes) = keys(items.iter().map(|(key, _)| *key));
    let rows: Vec<&ItemRow> = items.iter().map(|(_, row)| *row).collect();
    macro_rules! column {
        ($f:expr) => {
            Box::new(rows.iter().map($f).collect::<Vec<_>>()) as Param<'a>
        };
    }
    Planned::new(
        sql,
        vec![
            Box::new(executions),
            Box::new(indexes),
            column!(|r| r.status),
            column!(|r| r.attempts),
            column!(|r| r.record.as_slice()),
        ],
    )
}

/// One statement's parameter: an array of one column's values, borrowed from the group.
pub(crate) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// A statement to run: its SQL and its parameters.
pub(crate) struct Planned<'a> {
    pub(crate) sql: &'a str,
    pub(crate) params: Vec<Param<'a>>,
}

impl std::fmt::Debug for Planned<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("sql", &self.sql)
            .field("params", &self.params.len())
            .finish()
    }
}

impl<'a> Planned<'a> {
    fn new(sql: &'a str, params: Vec<Param<'a>>) -> Self {
        Planned { sql, params }
    }

    /// Its parameters as the client takes them.
    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }

    /// Runs it as `statement` (its SQL, prepared).
    pub(crate) async fn run(
        &self,
        client: &tokio_postgres::Client,
        statement: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        client.execute(statement, &self.params()).await
    }
}

/// Starts as the start-log statements take them (a row per execution): the executions,
/// the flat arrays of items, attempts and crash counts, and each execution's run in them
/// (1-based, inclusive bounds). `starts` come ordered by execution, so each has one run.
fn start_runs<'a>(starts: impl Iterator<Item = (ExecutionId, u32, i64, i64)>) -> [Param<'a>; 6] {
    let (mut executions, mut from, mut to) = (Vec::new(), Vec::<i64>::new(), Vec::new());
    let (mut indexes, mut attempts, mut crashes) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for (id, index, attempt, crashed) in starts {
        indexes.push(i64::from(index));
        attempts.push(attempt);
        crashes.push(crashed);
        let position = indexes.len() as i64;
        if last.replace(id) == Some(id) {
            if let Some(end) = to.last_mut() {
                *end = position;
            }
        } else {
            executions.push(id.to_string());
            from.push(position);
            to.push(position);
        }
    }
    [
        Box::new(executions),
        Box::new(indexes),
        Box::new(attempts),
        Box::new(crashes),
        Box::new(from),
        Box::new(to),
    ]
}

/// Execution ids as a text array.
fn ids<'a>(ids: impl Iterator<Item = &'a ExecutionId>) -> Vec<String> {
    ids.map(ToString::to_string).collect()
}

/// Item keys as two arrays: the executions (text) and the indexes (bigint).
fn keys<'a>(keys: impl Iterator<Item = &'a ItemKey>) -> (Vec<String>, Vec<i64>) {
    keys.map(|(id, index)| (id.to_string(), i64::from(*index)))
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replayable stream of rows over three executions and four items each.
    struct Rows {
        state: u64,
        ids: [ExecutionId; 3],
    }

    impl Rows {
        fn next(&mut self, bound: u64) -> u64 {
            // xorshift64
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state % bound
        }

        fn row(&mut self) -> Row {
            let id = self.ids[self.next(3) as usize];
            let index = self.next(4) as u32;
            let n = self.next(1000) as i64;
            match self.next(12) {
                0 => Row::Delete(id),
                1 => Row::ClearStarts(id),
                2 => Row::ClearCheckpoint(id, index),
                3 => Row::Checkpoint(
                    id,
                    index,
                    CheckpointRow {
                        state: vec![n as u8],
                        progress: Some((n, 1000)),
                    },
                ),
                4 => Row::Plan(id, format!("plan {n}")),
                5 => Row::Key {
                    key: format!("key {}", n % 3),
                    execution: id,
                    digest: [n as u8; 32],
                },
                6 => Row::Meta(format!("meta {}", n % 2), vec![n as u8]),
                7 => Row::Artifact {
                    artifact: [(n % 3) as u8; 32],
                    bytes: vec![n as u8],
                    toi_ms: n,
                    execution: id,
                },
                8 | 9 => Row::Started {
                    execution: id,
                    index,
                    attempt: n,
                    crashes: 0,
                },
                _ => Row::Item(
                    id,
                    index,
                    ItemRow {
                        status: "done",
                        attempts: n,
                        record: vec![n as u8],
                        first: n % 2 == 0,
                    },
                ),
            }
        }

        fn batch(&mut self) -> Vec<Row> {
            let len = self.next(6) as usize;
            (0..len).map(|_| self.row()).collect()
        }
    }

    #[test]
    fn a_group_absorbing_a_later_one_holds_what_merging_their_batches_in_order_does() {
        let ids = [
            ExecutionId::generate(),
            ExecutionId::generate(),
            ExecutionId::generate(),
        ];
        for seed in 1..=500u64 {
            let mut rows = Rows {
                state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ids,
            };
            let earlier: Vec<Vec<Row>> = (0..rows.next(4)).map(|_| rows.batch()).collect();
            let later: Vec<Vec<Row>> = (0..rows.next(4)).map(|_| rows.batch()).collect();
            let mut in_order = Group::default();
            for batch in earlier.iter().chain(&later) {
                in_order.merge(batch.clone());
            }
            let mut absorbed = Group::default();
            for batch in earlier {
                absorbed.merge(batch);
            }
            let mut behind = Group::default();
            for batch in later {
                behind.merge(batch);
            }
            absorbed.absorb(behind);
            assert_eq!(
                format!("{absorbed:?}"),
                format!("{in_order:?}"),
                "seed {seed}"
            );
        }
    }

    fn item(attempts: i64) -> ItemRow {
        ItemRow {
            status: "done",
            attempts,
            record: Vec::new(),
            first: false,
        }
    }

    #[test]
    fn a_later_change_to_a_row_wins_and_a_deletion_drops_what_came_before_it() {
        let (a, b) = (ExecutionId::generate(), ExecutionId::generate());
        let mut group = Group::default();
        group.merge(vec![Row::Item(a, 0, item(1)), Row::Item(b, 0, item(1))]);
        group.merge(vec![Row::Item(a, 0, item(2))]);
        assert_eq!(group.items.len(), 2);
        assert_eq!(group.items[&(a, 0)].attempts, 2);
        // `b` deleted, then written again: only the write after the deletion is kept, and
        // the deletion still runs (before it).
        group.merge(vec![
            Row::Delete(b),
            Row::Item(b, 3, item(1)),
            Row::Artifact {
                artifact: [1; 32],
                bytes: vec![1],
                toi_ms: 5,
                execution: b,
            },
        ]);
        assert!(!group.items.contains_key(&(b, 0)));
        assert!(group.items.contains_key(&(b, 3)));
        assert!(group.deleted.contains(&b));
        assert!(group.refs.contains(&([1; 32], b)));
        // A checkpoint cleared after it was written is not written; one written after it
        // was cleared is.
        group.merge(vec![
            Row::Checkpoint(
                a,
                1,
                CheckpointRow {
                    state: vec![1],
                    progress: None,
                },
            ),
            Row::ClearCheckpoint(a, 1),
            Row::ClearCheckpoint(a, 2),
            Row::Checkpoint(
                a,
                2,
                CheckpointRow {
                    state: vec![2],
                    progress: None,
                },
            ),
        ]);
        assert!(!group.checkpoints.contains_key(&(a, 1)));
        assert!(group.checkpoints.contains_key(&(a, 2)));
        let sql = Statements::new("tend");
        let statements = group.statements(&sql, false, &Folds::default());
        // Deletions first: the execution's, then the cleared checkpoints; then the writes.
        assert_eq!(statements[0].sql, sql.delete_executions);
        assert_eq!(statements[1].sql, sql.clear_checkpoints);
        let sqls: Vec<&str> = statements.iter().map(|s| s.sql).collect();
        for expected in [
            &sql.upsert_items,
            &sql.upsert_checkpoints,
            &sql.upsert_artifacts,
            &sql.insert_refs,
        ] {
            assert!(sqls.contains(&expected.as_str()));
        }
        assert_eq!(statements.len(), 6);
    }

    #[test]
    fn first_records_are_inserted_unless_every_row_is_replaced() {
        let (a, b) = (ExecutionId::generate(), ExecutionId::generate());
        let first = |attempts| ItemRow {
            first: true,
            ..item(attempts)
        };
        let mut group = Group::default();
        // `a/0`: first here, replaced later in the same group (still no row before it).
        // `b/0`: a replacement, then a change that claims to be first (the row still
        // exists before the group).
        group.merge(vec![Row::Item(a, 0, first(1)), Row::Item(b, 0, item(1))]);
        group.merge(vec![Row::Item(a, 0, item(2)), Row::Item(b, 0, first(2))]);
        assert!(group.items[&(a, 0)].first);
        assert!(!group.items[&(b, 0)].first);
        let sql = Statements::new("tend");
        let statements = group.statements(&sql, false, &Folds::default());
        let sqls: Vec<&str> = statements.iter().map(|s| s.sql).collect();
        assert_eq!(sqls, [sql.insert_items.as_str(), sql.upsert_items.as_str()]);
        let statements = group.statements(&sql, true, &Folds::default());
        let sqls: Vec<&str> = statements.iter().map(|s| s.sql).collect();
        assert_eq!(sqls, [sql.upsert_items.as_str()]);
    }

    #[test]
    fn a_flush_writes_nothing() {
        let mut group = Group::default();
        group.merge(Vec::new());
        assert!(group.is_empty());
        assert!(
            group
                .statements(&Statements::new("tend"), false, &Folds::default())
                .is_empty()
        );
    }
}
