//! Rate limits seen through the runtime: an item's own `limit`/`burst`, and named limiters
//! from the config shared across executions by kind or tag. Each pacing check is a lower
//! bound on elapsed time (n starts at `limit` a second with `burst` cannot take less than
//! (n - burst) / limit), which a slow machine can only make easier to meet: no test here
//! depends on the machine being fast.

#[path = "support/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use helpers::*;
use tend::demo::{Gates, Sleep};
use tend::{
    Block, Config, ExecutionStatus, InterruptStrategy, ItemSpec, ItemStatus, LimiterConfig, Plan,
    Runtime,
};

async fn limited_runtime(limiters: Vec<LimiterConfig>, gates: Gates) -> Runtime {
    Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .resource(gates)
        .config(Config {
            parallelism: 16,
            stop_grace: Duration::from_millis(500),
            limiters,
            ..Config::default()
        })
        .start()
        .await
        .unwrap()
}

fn limiter(name: &str, limit: f64, burst: u32, kinds: &[&str], tags: &[&str]) -> LimiterConfig {
    LimiterConfig {
        name: name.to_owned(),
        limit,
        burst,
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn sleeps(n: usize) -> Block {
    let mut block = Block::new("b");
    for i in 0..n {
        block.push(sleep(&format!("s{i}"), 0, 1));
    }
    block
}

#[tokio::test]
async fn a_named_limiter_paces_items_of_its_kind_across_executions() {
    let rt = limited_runtime(
        vec![limiter("sleepers", 10.0, 2, &["sleep"], &[])],
        Gates::new(),
    )
    .await;
    let began = Instant::now();
    let a = rt.submit(Plan::new("a").block(sleeps(10))).await.unwrap();
    let b = rt.submit(Plan::new("b").block(sleeps(10))).await.unwrap();
    assert!(outcome(&rt, a).await.is_completed());
    assert!(outcome(&rt, b).await.is_completed());
    // 20 starts, 2 at once, then 10 a second: at least 1.8 s.
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(1800), "20 starts in {took:?}");
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_limiter_by_tag_and_an_items_own_limit_pace_their_attempts() {
    let rt = limited_runtime(
        vec![limiter("api", 5.0, 1, &[], &["api:1000"])],
        Gates::new(),
    )
    .await;
    // Tagged `api:1000` (a semaphore roomy enough never to make anyone wait): paced.
    let mut block = Block::new("b");
    for i in 0..6 {
        block.push(sleep(&format!("call{i}"), 0, 1).sema(["api:1000"]));
    }
    let tagged = Plan::new("tagged").block(block);
    let began = Instant::now();
    let tagged = rt.submit(tagged).await.unwrap();
    assert!(outcome(&rt, tagged).await.is_completed());
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "6 starts at 5/s in {took:?}"
    );

    // Its own limit: four attempts (three fail) at 4 a second, one at once.
    let flaky = Sleep {
        fail_times: 3,
        ..Sleep::new(0)
    };
    let spec = ItemSpec::new("flaky", &flaky)
        .unwrap()
        .retry(3)
        .rate(4.0, 1);
    let began = Instant::now();
    let id = rt
        .submit(Plan::new("own").block(Block::new("b").item(spec)))
        .await
        .unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(750),
        "4 attempts at 4/s in {took:?}"
    );
    assert_eq!(
        rt.status(id).await.unwrap().item("flaky").unwrap().attempts,
        4
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn waiting_for_a_token_ends_with_an_interrupt_a_pause_or_a_shutdown() {
    // One token, then the next in 1000 s: whatever waits for it would wait past PATIENCE.
    let gates = Gates::new();
    let rt = limited_runtime(
        vec![limiter("slow", 0.001, 1, &["gate"], &[])],
        gates.clone(),
    )
    .await;
    let plan = |name: &str| {
        Plan::new(name).with_parallelism(3).block(
            Block::new("b")
                .item(gate("first", "g", 1))
                .item(gate("second", "g", 1))
                .item(gate("third", "g", 1)),
        )
    };
    let interrupted = rt.submit(plan("interrupted")).await.unwrap();
    // The only token goes to one item; the others wait for the next.
    eventually("one item runs and two wait for a token", || async {
        let tree = rt.tree().await.map_err(|e| e.to_string())?;
        let status = tree
            .children
            .first()
            .map(|n| n.status.clone())
            .unwrap_or_default();
        if status.matches("for a rate limit").count() == 2 {
            Ok(())
        } else {
            Err(status)
        }
    })
    .await;
    rt.interrupt(interrupted, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    gates.open("g");
    let out = outcome(&rt, interrupted).await;
    assert_eq!(out.status, ExecutionStatus::Interrupted);
    let report = rt.status(interrupted).await.unwrap();
    let statuses: Vec<ItemStatus> = report.items().map(|i| i.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == ItemStatus::Done).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == ItemStatus::Pending)
            .count(),
        2,
        "{statuses:?}"
    );

    // No token left at all now: every item of the next two waits.
    let paused = rt.submit(plan("paused")).await.unwrap();
    rt.pause(paused, InterruptStrategy::FinishCurrent)
        .await
        .unwrap();
    assert_eq!(outcome(&rt, paused).await.status, ExecutionStatus::Paused);
    let _waiting = rt.submit(plan("waiting")).await.unwrap();
    // A shutdown ends the waits of the last one rather than waiting 1000 s for a token.
    tokio::time::timeout(PATIENCE, rt.shutdown())
        .await
        .expect("shutdown waits for no token")
        .unwrap();
}
