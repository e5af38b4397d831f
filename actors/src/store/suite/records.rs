//! Checks of commits and what reads back: durability, atomicity, the recovery rule,
//! attempt numbers, metadata and keys, and the format refusal.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{CheckResult, Subject, crash_and_reopen, ensure, failed, item_changes, plan, stored};
use crate::model::{
    AttemptOutcome, Change, Checkpoint, ExecutionId, ExecutionStatus, ItemState, ItemStatus,
    KeyOwner, PastAttempt, Progress, Started, merge_started,
};
use crate::store::Store;

fn done(attempts: u32) -> ItemState {
    ItemState {
        status: ItemStatus::Done,
        attempts,
        output: Some(Arc::from(&b"out"[..])),
        message: Some(Arc::from("fine")),
        progress: Some(Progress { done: 3, total: 3 }),
        history: smallvec::smallvec![PastAttempt {
            attempt: attempts,
            started_ms: Some(10),
            ended_ms: 20,
            outcome: AttemptOutcome::Done,
            error: None,
        }],
        ..ItemState::default()
    }
}

/// The parts of an item's state a store keeps (not when the attempt in flight began).
fn kept(state: &ItemState) -> ItemState {
    ItemState {
        started_ms: None,
        ..state.clone()
    }
}

pub(super) async fn acknowledged_is_durable<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let execution = stored(&store, "durable", 2, ExecutionStatus::Running).await?;
    let id = execution.id;
    let checkpoint = Checkpoint {
        state: vec![7, 7],
        progress: Some(Progress { done: 1, total: 4 }),
    };
    let mut changes = item_changes(id, &[done(1)]);
    changes.push(Change::Checkpoint {
        id,
        index: 1,
        checkpoint: checkpoint.clone(),
    });
    changes.push(Change::Meta {
        key: "suite".to_owned(),
        value: b"kept".to_vec(),
    });
    store
        .commit(changes)
        .await
        .map_err(failed("committing item records"))?;
    let store = crash_and_reopen(subject, store).await?;
    let back = store
        .load_execution(id)
        .await
        .map_err(failed("reading the execution back after a crash"))?;
    ensure(back.record == execution, || {
        format!(
            "the execution record read back differs: {:?} vs {execution:?}",
            back.record
        )
    })?;
    ensure(
        back.items[0].as_ref().map(kept) == Some(kept(&done(1))),
        || format!("item 0 read back as {:?}", back.items[0]),
    )?;
    ensure(back.checkpoints[1] == Some(checkpoint), || {
        format!("the checkpoint read back as {:?}", back.checkpoints[1])
    })?;
    let meta = store.meta("suite").await.map_err(failed("reading meta"))?;
    ensure(meta.as_deref() == Some(&b"kept"[..]), || {
        format!("meta read back as {meta:?}")
    })?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn commit_is_all_or_nothing<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let execution = stored(&store, "batches", 40, ExecutionStatus::Running).await?;
    let id = execution.id;
    // 40 commits in flight at once, each an item record and a metadata value that say
    // its number; then a crash.
    let mut acks = Vec::new();
    for n in 0..40u32 {
        let (tx, rx) = oneshot::channel();
        let changes = vec![
            Change::Item {
                id,
                index: n,
                state: done(n + 1),
                first: true,
            },
            Change::Meta {
                key: format!("batch-{n:02}"),
                value: n.to_be_bytes().to_vec(),
            },
        ];
        store.send(
            changes,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        acks.push(rx);
    }
    // The first half acknowledged; the rest in flight.
    let mut acked = 0;
    for ack in acks.drain(..20) {
        match ack.await {
            Ok(Ok(())) => acked += 1,
            Ok(Err(e)) => return Err(format!("commit {acked} failed: {e}")),
            Err(_) => return Err(format!("commit {acked} was never acknowledged")),
        }
    }
    let store = if subject.persistent() {
        drop(acks);
        crash_and_reopen(subject, store).await?
    } else {
        // Nothing crashes here, so the commits in flight go on landing while the checks
        // below read, one read at a time: a commit could land between the read of its
        // item record and that of its metadata. They are waited for first (each then
        // wholly there, all acknowledged).
        for ack in acks {
            match ack.await {
                Ok(Ok(())) => acked += 1,
                Ok(Err(e)) => return Err(format!("commit {acked} failed: {e}")),
                Err(_) => return Err(format!("commit {acked} was never acknowledged")),
            }
        }
        store
    };
    let back = store
        .load_execution(id)
        .await
        .map_err(failed("reading back"))?;
    let mut present = Vec::new();
    for n in 0..40u32 {
        let item = back.items[n as usize].is_some();
        let meta = store
            .meta(&format!("batch-{n:02}"))
            .await
            .map_err(failed("reading meta"))?
            .is_some();
        ensure(item == meta, || {
            format!("commit {n} is half there: item record {item}, metadata {meta}")
        })?;
        present.push(item);
    }
    ensure(present[..acked].iter().all(|p| *p), || {
        format!("an acknowledged commit is missing: {present:?}")
    })?;
    // Commits land in the order they were handed over: what is there is a prefix.
    let count = present.iter().filter(|p| **p).count();
    ensure(present[..count].iter().all(|p| *p), || {
        format!("commits landed out of order: {present:?}")
    })?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn recovery_follows_the_merge_rule<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let execution = stored(&store, "merge", 4, ExecutionStatus::Running).await?;
    let id = execution.id;
    let started = |attempt, crashes| Started { attempt, crashes };
    // Item 0: done at attempt 1, then attempt 2 started (the process stopped under it).
    // Item 1: attempt 1 started, no record. Item 2: a record of attempt 3, and an older
    // start. Item 3: never started.
    let records = [Some(done(1)), None, Some(done(3)), None];
    let starts = [
        Some(started(2, 1)),
        Some(started(1, 0)),
        Some(started(2, 0)),
        None,
    ];
    let mut changes = Vec::new();
    for (index, state) in records.iter().enumerate() {
        if let Some(state) = state {
            changes.push(Change::Item {
                id,
                index: index as u32,
                state: state.clone(),
                first: true,
            });
        }
    }
    store.commit(changes).await.map_err(failed("committing"))?;
    // The same commit starts attempts of another execution, before and after these
    // (a store may lay a commit's starts out by execution).
    let other = stored(&store, "merge-other", 2, ExecutionStatus::Running)
        .await?
        .id;
    let other_starts = [Some(started(2, 1)), Some(started(4, 0))];
    let mut changes = vec![Change::Started {
        id: other,
        index: 1,
        started: started(4, 0),
    }];
    for (index, start) in starts.iter().enumerate() {
        if let Some(started) = start {
            changes.push(Change::Started {
                id,
                index: index as u32,
                started: *started,
            });
        }
    }
    changes.push(Change::Started {
        id: other,
        index: 0,
        started: started(2, 1),
    });
    store.commit(changes).await.map_err(failed("committing"))?;
    let expect = |records: &[Option<ItemState>], starts: &[Option<Started>]| {
        records
            .iter()
            .zip(starts)
            .map(|(record, start)| merge_started(record.clone(), *start).map(|s| kept(&s)))
            .collect::<Vec<Option<ItemState>>>()
    };
    let expected = [
        (id, expect(&records, &starts)),
        (other, expect(&[None, None], &other_starts)),
    ];
    let compare = async |store: &Store, when: &str| -> CheckResult {
        for (execution, expected) in &expected {
            let back = store
                .load_execution(*execution)
                .await
                .map_err(failed("reading"))?;
            let got: Vec<Option<ItemState>> =
                back.items.iter().map(|i| i.as_ref().map(kept)).collect();
            ensure(got == *expected, || {
                format!(
                    "{when}: items of {execution} read back as {got:?}, the rule says {expected:?}"
                )
            })?;
        }
        Ok(())
    };
    compare(&store, "before a reopen").await?;
    let store = if subject.persistent() {
        let store = crash_and_reopen(subject, store).await?;
        compare(&store, "after a crash").await?;
        store
    } else {
        store
    };
    // An item record that shows the started attempt ends the start's effect; forgetting the
    // starts leaves the records alone.
    store
        .commit(vec![
            Change::Item {
                id,
                index: 0,
                state: done(2),
                first: false,
            },
            Change::ClearStarts { id },
        ])
        .await
        .map_err(failed("committing"))?;
    let back = store.load_execution(id).await.map_err(failed("reading"))?;
    ensure(
        back.items[0].as_ref().map(kept) == Some(kept(&done(2))),
        || format!("item 0 after its record: {:?}", back.items[0]),
    )?;
    ensure(back.items[1].is_none(), || {
        format!("item 1 after its start was forgotten: {:?}", back.items[1])
    })?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn first_records_and_replacements<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let execution = stored(&store, "first", 3, ExecutionStatus::Running).await?;
    let id = execution.id;
    let item = |index: u32, state: ItemState, first: bool| Change::Item {
        id,
        index,
        state,
        first,
    };
    let failed_once = ItemState {
        status: ItemStatus::Retrying,
        attempts: 1,
        failures: 1,
        error: Some("once".to_owned()),
        ..ItemState::default()
    };
    // Item 0: a first record, replaced in a later commit. Item 1: a first record and its
    // replacement in one commit. Item 2: a first record, alone.
    store
        .commit(vec![item(0, failed_once.clone(), true)])
        .await
        .map_err(failed("committing item 0's first record"))?;
    store
        .commit(vec![
            item(0, done(2), false),
            item(1, failed_once.clone(), true),
            item(1, done(2), false),
            item(2, done(1), true),
        ])
        .await
        .map_err(failed("committing the replacements"))?;
    let expected = [Some(done(2)), Some(done(2)), Some(done(1))];
    let compare = |items: &[Option<ItemState>], when: &str| {
        let got: Vec<Option<ItemState>> = items.iter().map(|i| i.as_ref().map(kept)).collect();
        ensure(got == expected, || {
            format!("{when}, the items read back as {got:?}, not {expected:?}")
        })
    };
    let back = store.load_execution(id).await.map_err(failed("reading"))?;
    compare(&back.items, "before a crash")?;
    let store = if subject.persistent() {
        let store = crash_and_reopen(subject, store).await?;
        let back = store.load_execution(id).await.map_err(failed("reading"))?;
        compare(&back.items, "after a crash")?;
        store
    } else {
        store
    };
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn attempt_numbers_never_repeat<S: Subject>(subject: &mut S) -> CheckResult {
    let mut store = subject.open().await.map_err(failed("opening"))?;
    let execution = stored(&store, "attempts", 1, ExecutionStatus::Running).await?;
    let id = execution.id;
    // Each round: the item's next attempt is the one after what the store reads back; it
    // starts (acknowledged), and the process stops under it before its record is written.
    let mut last = 0;
    for round in 0..4 {
        let back = store.load_execution(id).await.map_err(failed("reading"))?;
        let read = back.items[0].as_ref().map_or(0, |i| i.attempts);
        ensure(read >= last, || {
            format!("round {round}: attempt {last} started, but the item reads {read} attempts")
        })?;
        let next = read + 1;
        store
            .commit(vec![Change::Started {
                id,
                index: 0,
                started: Started {
                    attempt: next,
                    crashes: round,
                },
            }])
            .await
            .map_err(failed("starting an attempt"))?;
        last = next;
        if round == 2 {
            // Once, the attempt's record lands (failed) before the crash.
            store
                .commit(vec![Change::Item {
                    id,
                    index: 0,
                    state: ItemState {
                        status: ItemStatus::Failed,
                        attempts: next,
                        failures: 1,
                        error: Some("boom".to_owned()),
                        ..ItemState::default()
                    },
                    // Only its starts are stored before.
                    first: true,
                }])
                .await
                .map_err(failed("recording an attempt"))?;
        }
        store = crash_and_reopen(subject, store).await?;
    }
    let back = store.load_execution(id).await.map_err(failed("reading"))?;
    let item = back.items[0].clone().unwrap_or_default();
    ensure(
        item.attempts == last && item.status == ItemStatus::Running,
        || format!("after the last crash the item reads {item:?}, not attempt {last} running"),
    )?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn metadata_and_keys<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    let execution = super::record(
        ExecutionId::generate(),
        plan("keyed", 1),
        ExecutionStatus::Running,
    );
    let owner = KeyOwner {
        id: execution.id,
        digest: [9; 32],
    };
    store
        .commit(vec![
            execution.change(true),
            Change::Key {
                key: "order-17".to_owned(),
                owner,
            },
            Change::Meta {
                key: "a".to_owned(),
                value: vec![1],
            },
        ])
        .await
        .map_err(failed("committing"))?;
    store
        .put_meta("a", &[2])
        .await
        .map_err(failed("replacing meta"))?;
    let a = store.meta("a").await.map_err(failed("reading meta"))?;
    ensure(a == Some(vec![2]), || format!("meta `a` reads {a:?}"))?;
    let none = store.meta("b").await.map_err(failed("reading meta"))?;
    ensure(none.is_none(), || format!("meta `b` reads {none:?}"))?;
    let found = store
        .key_owner("order-17")
        .await
        .map_err(failed("reading a key"))?;
    ensure(found == Some(owner), || {
        format!("the key's owner reads {found:?}")
    })?;
    let other = store
        .key_owner("order-18")
        .await
        .map_err(failed("reading a key"))?;
    ensure(other.is_none(), || {
        format!("an unknown key reads {other:?}")
    })?;
    let count = store.execution_count().await.map_err(failed("counting"))?;
    ensure(count == 1, || {
        format!("{count} executions counted, 1 stored")
    })?;
    // A flush is acknowledged after what came before it.
    store.flush().await.map_err(failed("flushing"))?;
    store.close().await.map_err(failed("closing"))
}

pub(super) async fn a_newer_format_is_refused<S: Subject>(subject: &mut S) -> CheckResult {
    let store = subject.open().await.map_err(failed("opening"))?;
    stored(&store, "old", 1, ExecutionStatus::Completed).await?;
    store.close().await.map_err(failed("closing"))?;
    drop(store);
    subject
        .mark_newer_format()
        .await
        .map_err(failed("marking the store as a newer build's"))?;
    match subject.open().await {
        Ok(_) => Err("a store of a newer format was opened".to_owned()),
        Err(e) => {
            let message = e.to_string();
            ensure(message.contains("format"), || {
                format!("the refusal does not say it is the format: {message}")
            })
        }
    }
}
