//! The floor for tend on a redb file, written by hand: tokio tasks send records to one
//! writer thread, which commits whatever has queued in one `Durability::Immediate`
//! transaction and then acknowledges each record; a task sends its next record once its
//! last is acknowledged. And the floor for a chain: one commit after another.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};
use tokio::sync::oneshot;

/// (sequence number) -> about the size of one item record.
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const RECORD: [u8; 64] = [0x5a; 64];

/// One record to append, and where to say it is durable.
struct Append {
    key: u64,
    ack: oneshot::Sender<()>,
}

/// A redb file with one writer thread that commits in groups.
#[derive(Debug)]
pub(crate) struct GroupCommitLog {
    sender: Option<mpsc::Sender<Append>>,
    writer: Option<JoinHandle<()>>,
    next_key: Arc<AtomicU64>,
}

impl GroupCommitLog {
    /// Creates the file and starts its writer thread.
    pub(crate) fn create(path: &Path) -> Self {
        let db = Database::create(path).expect("the floor's redb file is created");
        let (sender, queue) = mpsc::channel::<Append>();
        let writer = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    group.extend(queue.try_iter());
                    let mut tx = db.begin_write().expect("a write transaction");
                    tx.set_durability(Durability::Immediate)
                        .expect("durability is set before any write");
                    {
                        let mut table = tx.open_table(RECORDS).expect("the table opens");
                        for append in &group {
                            table.insert(append.key, RECORD.as_slice()).expect("insert");
                        }
                    }
                    tx.commit().expect("commit");
                    for append in group {
                        let _ = append.ack.send(());
                    }
                }
            })
            .expect("the writer thread starts");
        GroupCommitLog {
            sender: Some(sender),
            writer: Some(writer),
            next_key: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Appends `records` records, `in_flight` at a time, each durable before its task
    /// sends the next; the time until the last is acknowledged.
    pub(crate) async fn append(&self, records: usize, in_flight: usize) -> Duration {
        let sender = self.sender.as_ref().expect("open until dropped");
        let left = Arc::new(AtomicUsize::new(records));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let (sender, left, keys) = (sender.clone(), left.clone(), self.next_key.clone());
                tokio::spawn(async move {
                    while left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let (ack, acked) = oneshot::channel();
                        let key = keys.fetch_add(1, Ordering::Relaxed);
                        sender
                            .send(Append { key, ack })
                            .expect("the writer thread runs");
                        acked.await.expect("the writer acknowledges");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("an appending task");
        }
        t0.elapsed()
    }
}

impl Drop for GroupCommitLog {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// `records` records made durable one `Durability::Immediate` commit after another; the
/// time they took.
pub(crate) fn sequential_commits(db: &Database, first_key: u64, records: usize) -> Duration {
    let t0 = Instant::now();
    for key in first_key..first_key + records as u64 {
        let mut tx = db.begin_write().expect("a write transaction");
        tx.set_durability(Durability::Immediate)
            .expect("durability is set before any write");
        {
            let mut table = tx.open_table(RECORDS).expect("the table opens");
            table.insert(key, RECORD.as_slice()).expect("insert");
        }
        tx.commit().expect("commit");
    }
    t0.elapsed()
}
