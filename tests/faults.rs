//! Fault injection: 100 executions of 50 items in which 10% of attempts panic, 10% fail and
//! 5% hang past their timeout, with retry 5. Every execution ends completed or failed with
//! a full outcome, the supervisor answers status requests all along (each within 10 s),
//! and every item's attempts are exactly what the injected faults call for.

#[path = "support/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use helpers::PATIENCE;
use serde::{Deserialize, Serialize};
use tend::{
    Block, Config, ExecutionStatus, Item, ItemCtx, ItemError, ItemSpec, ItemStatus, Plan, Registry,
    Runtime,
};

const EXECUTIONS: usize = 100;
const ITEMS: usize = 50;
const RETRIES: u32 = 5;
/// How long one status request may take while the faults run.
const STATUS_BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Panic,
    Fail,
    Hang,
    None,
}

/// The fault of attempt `attempt` of item `seed`: fixed by its inputs, so the test knows
/// what every attempt did.
fn fault(seed: u64, attempt: u32) -> Fault {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    match (z ^ (z >> 31)) % 100 {
        0..10 => Fault::Panic,
        10..20 => Fault::Fail,
        20..25 => Fault::Hang,
        _ => Fault::None,
    }
}

/// Attempts the test expects for item `seed`, and whether it ends done.
fn expected(seed: u64) -> (u32, bool) {
    for attempt in 1..=RETRIES + 1 {
        if fault(seed, attempt) == Fault::None {
            return (attempt, true);
        }
    }
    (RETRIES + 1, false)
}

/// Does what `fault` says for each of its attempts.
#[derive(Serialize, Deserialize)]
struct Faulty {
    seed: u64,
}

/// Counts the attempts that ran.
#[derive(Debug, Default)]
struct Ran(AtomicU64);

impl Item for Faulty {
    const KIND: &'static str = "faulty";
    type Output = u64;

    async fn apply(&self, cx: &mut ItemCtx) -> Result<u64, ItemError> {
        if let Some(ran) = cx.resource::<Arc<Ran>>() {
            ran.0.fetch_add(1, Ordering::Relaxed);
        }
        match fault(self.seed, cx.attempt()) {
            Fault::Panic => panic!("injected panic in attempt {}", cx.attempt()),
            Fault::Fail => Err(ItemError::failed("injected failure")),
            Fault::Hang => {
                // Until the timeout cancels it; it never returns by itself.
                cx.interrupted().await;
                Err(ItemError::Interrupted)
            }
            Fault::None => Ok(self.seed),
        }
    }
}

fn plan(execution: usize) -> Plan {
    let mut block = Block::new("faulty");
    for i in 0..ITEMS {
        let seed = (execution * ITEMS + i) as u64;
        let spec = ItemSpec::new(format!("i{i}"), &Faulty { seed })
            .expect("a struct serializes")
            .retry(i64::from(RETRIES))
            .delay(Duration::from_millis(1))
            // Long enough that an attempt with no fault never reaches it, however loaded
            // the machine (one past its timeout fails whatever it returns), so the attempts
            // are exactly what the faults call for; a hang waits for it.
            .timeout(Duration::from_secs(2));
        block.push(spec);
    }
    Plan::new(format!("faults-{execution}")).block(block)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_panics_failures_and_hangs_end_in_full_outcomes_with_exact_attempts() {
    let ran = Arc::new(Ran::default());
    let runtime = Runtime::builder()
        .registry(Registry::new().with::<Faulty>().expect("one kind"))
        .resource(ran.clone())
        .config(Config {
            parallelism: 16,
            stop_grace: Duration::from_millis(200),
            ..Config::default()
        })
        .start()
        .await
        .expect("runtime starts");
    let mut ids = Vec::with_capacity(EXECUTIONS);
    for execution in 0..EXECUTIONS {
        ids.push(runtime.submit(plan(execution)).await.expect("valid plan"));
    }

    // Status requests keep coming while the faults run; each must be answered in time.
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (runtime, ids, done) = (runtime.clone(), ids.clone(), done.clone());
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut asked = 0usize;
            while !done.load(Ordering::Relaxed) {
                let id = ids[asked % ids.len()];
                let started = Instant::now();
                let answer = tokio::time::timeout(STATUS_BOUND, runtime.status(id))
                    .await
                    .unwrap_or_else(|_| panic!("status of {id} took over {STATUS_BOUND:?}"));
                answer.expect("status answers");
                slowest = slowest.max(started.elapsed());
                asked += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (asked, slowest)
        })
    };

    let mut total_attempts = 0u64;
    for (execution, id) in ids.iter().enumerate() {
        let outcome = tokio::time::timeout(PATIENCE * 4, runtime.wait(*id))
            .await
            .expect("every execution ends")
            .expect("an outcome");
        let report = runtime.status(*id).await.expect("status");
        let mut any_failed = false;
        for (i, item) in report.blocks[0].items.iter().enumerate() {
            let seed = (execution * ITEMS + i) as u64;
            let (attempts, ends_done) = expected(seed);
            assert_eq!(item.attempts, attempts, "{id}/{}: {item:?}", item.id);
            let status = if ends_done {
                ItemStatus::Done
            } else {
                ItemStatus::Failed
            };
            assert_eq!(item.status, status, "{id}/{}: {item:?}", item.id);
            // The last ten attempts are kept, each with how it ended.
            let kept = attempts.min(tend::ATTEMPTS_KEPT as u32);
            assert_eq!(item.history.len() as u32, kept, "{item:?}");
            assert_eq!(
                item.errors.len() as u32,
                kept - u32::from(ends_done),
                "{item:?}"
            );
            let numbers: Vec<u32> = item.history.iter().map(|a| a.attempt).collect();
            let wanted: Vec<u32> = (attempts + 1 - kept..=attempts).collect();
            assert_eq!(numbers, wanted, "{item:?}");
            assert!(
                item.history.iter().all(|a| a.started.is_some()),
                "every attempt has its start: {item:?}"
            );
            any_failed |= !ends_done;
            total_attempts += u64::from(item.attempts);
        }
        let expected_status = if any_failed {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Completed
        };
        assert_eq!(outcome.status, expected_status, "{outcome:?}");
        let counted = outcome.done() + outcome.failed();
        assert_eq!(counted, ITEMS, "a full outcome: {outcome:?}");
    }
    done.store(true, Ordering::Relaxed);
    let (asked, slowest) = poller.await.expect("the poller ends");
    assert!(asked > 0, "status was asked while the faults ran");
    eprintln!("{asked} status requests while the faults ran; the slowest took {slowest:?}");
    // Every attempt counted ran, and every one that ran is counted.
    assert_eq!(ran.0.load(Ordering::Relaxed), total_attempts);
    runtime.shutdown().await.expect("shutdown");
}
