//! Plans are validated before anything runs; requests the state forbids are clear errors.

#[path = "support/helpers.rs"]
mod helpers;

use helpers::*;
use serde_json::json;
use tend::{
    Block, ExecutionId, ExecutionStatus, InterruptStrategy, ItemSpec, Plan, PlanError, RuntimeError,
};

async fn refused(plan: Plan) -> PlanError {
    let rt = runtime(None, None, 4).await;
    let err = rt.submit(plan).await.unwrap_err();
    // Nothing was created.
    assert!(rt.list().await.unwrap().is_empty());
    rt.shutdown().await.unwrap();
    match err {
        RuntimeError::Plan(e) => e,
        other => panic!("expected a plan error, got {other:?}"),
    }
}

fn one_block(items: Vec<ItemSpec>) -> Plan {
    let mut block = Block::new("b");
    for item in items {
        block.push(item);
    }
    Plan::new("p").block(block)
}

#[tokio::test]
async fn a_cycle_names_the_items_on_it() {
    let err = refused(one_block(vec![
        sleep("root", 0, 1),
        sleep("a", 0, 1).after(["root", "c"]),
        sleep("b", 0, 1).after(["a"]),
        sleep("c", 0, 1).after(["b"]),
        sleep("leaf", 0, 1).after(["c"]),
    ]))
    .await;
    let PlanError::Cycle {
        block,
        cycle,
        length,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(block, "b");
    assert_eq!(*length, 3);
    assert_eq!(cycle.first(), cycle.last());
    let mut members = cycle[1..].to_vec();
    members.sort();
    assert_eq!(members, vec!["a", "b", "c"]);
    assert!(
        err.to_string().contains("a -> ") || err.to_string().contains("-> a"),
        "{err}"
    );
}

#[tokio::test]
async fn a_self_dependency_is_a_cycle() {
    let err = refused(one_block(vec![sleep("x", 0, 1).after(["x"])])).await;
    assert_eq!(
        err,
        PlanError::Cycle {
            block: "b".into(),
            cycle: vec!["x".into(), "x".into()],
            length: 1,
        }
    );
    assert_eq!(
        err.to_string(),
        "dependency cycle of 1 item in block `b`: x -> x"
    );
}

#[tokio::test]
async fn a_long_cycle_is_named_by_a_few_of_its_items_and_its_length() {
    // A ring of 20,000 items: each depends on the next, the last on the first.
    const RING: usize = 20_000;
    let id = |i: usize| format!("ring-item-{i:05}");
    let items = (0..RING)
        .map(|i| sleep(&id(i), 0, 1).after([id((i + 1) % RING)]))
        .collect();
    let err = refused(one_block(items)).await;
    let PlanError::Cycle {
        block,
        cycle,
        length,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((block.as_str(), *length), ("b", RING));
    assert_eq!(cycle.len(), tend::CYCLE_NAMED, "{cycle:?}");
    // Each named item depends on the next one named.
    for pair in cycle.windows(2) {
        let at = |name: &str| name["ring-item-".len()..].parse::<usize>().unwrap();
        assert_eq!((at(&pair[0]) + 1) % RING, at(&pair[1]), "{cycle:?}");
    }
    let message = err.to_string();
    assert!(
        message.len() < 400,
        "{} characters: {message}",
        message.len()
    );
    assert!(message.contains("20000 items"), "{message}");
    assert!(message.contains(&format!("{} -> ", cycle[0])), "{message}");
    assert!(message.ends_with(&format!("-> {}", cycle[0])), "{message}");
}

#[tokio::test]
async fn duplicate_ids_are_refused_across_blocks() {
    let plan = Plan::new("p")
        .block(Block::new("one").item(sleep("x", 0, 1)))
        .block(Block::new("two").item(sleep("x", 0, 1)));
    assert_eq!(
        refused(plan).await,
        PlanError::DuplicateItem {
            item: "x".into(),
            block: "two".into()
        }
    );
}

#[tokio::test]
async fn unknown_dependencies_are_refused_including_later_blocks() {
    let err = refused(one_block(vec![sleep("a", 0, 1).after(["ghost"])])).await;
    assert_eq!(
        err,
        PlanError::UnknownDependency {
            item: "a".into(),
            dependency: "ghost".into()
        }
    );
    // A dependency on a later block can never be satisfied.
    let plan = Plan::new("p")
        .block(Block::new("one").item(sleep("a", 0, 1).after(["b"])))
        .block(Block::new("two").item(sleep("b", 0, 1)));
    assert!(matches!(
        refused(plan).await,
        PlanError::UnknownDependency { .. }
    ));
}

#[tokio::test]
async fn an_earlier_block_can_be_depended_on() {
    let rt = runtime(None, None, 4).await;
    let plan = Plan::new("p")
        .block(Block::new("one").item(sum("a", 2)))
        .block(Block::new("two").item(sum("b", 3).after(["a"])));
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let report = rt.status(id).await.unwrap();
    assert_eq!(report.item("b").unwrap().output_as::<i64>(), Some(5));
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_kinds_and_bad_params_name_the_item() {
    let err = refused(one_block(vec![ItemSpec::raw("a", "teleport", json!({}))])).await;
    assert_eq!(
        err,
        PlanError::UnknownKind {
            item: "a".into(),
            kind: "teleport".into()
        }
    );
    let err = refused(one_block(vec![ItemSpec::raw(
        "slow",
        "sleep",
        json!({"ms": "long"}),
    )]))
    .await;
    let PlanError::BadParams { item, kind, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((item.as_str(), kind.as_str()), ("slow", "sleep"));
    assert!(reason.contains("invalid type"), "{reason}");
    let err = refused(one_block(vec![ItemSpec::raw(
        "x",
        "sleep",
        json!({"ms": 1, "colour": 2}),
    )]))
    .await;
    assert!(err.to_string().contains("colour"), "{err}");
    // serde's derive would read `[4000, 2]` as ms 4000 in 2 steps: a kind whose params are
    // an object takes an object.
    let err = refused(one_block(vec![ItemSpec::raw(
        "listed",
        "sleep",
        json!([4000, 2]),
    )]))
    .await;
    let PlanError::BadParams { item, kind, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((item.as_str(), kind.as_str()), ("listed", "sleep"));
    assert!(reason.contains("JSON object"), "{reason}");
}

#[tokio::test]
async fn empty_plans_are_refused() {
    assert_eq!(
        refused(Plan::new("nothing")).await,
        PlanError::Empty {
            plan: "nothing".into()
        }
    );
    let err = refused(Plan::new("hollow").block(Block::new("b"))).await;
    assert_eq!(
        err,
        PlanError::Empty {
            plan: "hollow".into()
        }
    );
}

#[tokio::test]
async fn invalid_ids_and_zero_parallelism_are_refused() {
    let err = refused(one_block(vec![sleep("has space", 0, 1)])).await;
    assert!(matches!(err, PlanError::InvalidId { item } if item == "has space"));
    let err = refused(one_block(vec![sleep("", 0, 1)])).await;
    assert!(matches!(err, PlanError::InvalidId { .. }));
    let err = refused(one_block(vec![sleep("a", 0, 1)]).with_parallelism(0)).await;
    assert_eq!(err, PlanError::ZeroParallelism { plan: "p".into() });
}

#[tokio::test]
async fn malformed_metaparams_are_refused_naming_the_item() {
    for (metaparams, metaparam, says) in [
        (json!({"retry": "3"}), "retry", "whole number"),
        (json!({"retry": -2}), "retry", "whole number"),
        (json!({"retry": 1.5}), "retry", "whole number"),
        (json!({"delay": "1s"}), "delay", "set `retry`"),
        (json!({"retry": 1, "delay": "soon"}), "delay", "soon"),
        (
            json!({"retry": 1, "delay": {"first": "1s", "cap": "1m"}}),
            "delay",
            "cap",
        ),
        (
            json!({"retry": 1, "delay": {"max": "1m"}}),
            "delay",
            "first",
        ),
        (
            json!({"retry": 1, "delay": {"first": "1m", "max": "1s"}}),
            "delay",
            "shorter",
        ),
        (
            json!({"retry": 1, "delay": {"first": "1s", "jitter": 2}}),
            "delay",
            "jitter",
        ),
        (json!({"timeout": "0s"}), "timeout", "longer than 0s"),
        (json!({"timeout": 30}), "timeout", "duration"),
        (
            json!({"notify": ["b"]}),
            "notify",
            "`b`, which is not in `after`",
        ),
        (json!({"notify": "b"}), "notify", "list of ids"),
        (json!({"notify": [3]}), "notify", "not a string"),
        (json!({"sema": ["db:0"]}), "sema", "size 0"),
        (json!({"sema": [":2"]}), "sema", "empty id"),
        (
            json!({"sema": ["t-{tenant}"]}),
            "sema",
            "`tenant`, which the item does not have",
        ),
        (
            json!({"sema": ["t-{ms}"]}),
            "sema",
            "`ms`, which is not a string",
        ),
    ] {
        let mut item = json!({"id": "flaky", "kind": "sleep", "params": {"ms": 0}});
        for (k, v) in metaparams.as_object().unwrap() {
            item[k] = v.clone();
        }
        let plan: Plan = serde_json::from_value(json!({
            "name": "p", "blocks": [{"name": "b", "items": [item]}]
        }))
        .unwrap();
        let err = refused(plan).await;
        assert!(
            matches!(&err, PlanError::BadMetaparam { item, metaparam: m, .. }
                if item == "flaky" && *m == metaparam),
            "{metaparams}: {err:?}"
        );
        assert_eq!(err.code(), "bad_metaparam");
        let text = err.to_string();
        assert!(
            text.contains("flaky") && text.contains(says),
            "{metaparams}: {text}"
        );
    }
    // What the builders write is accepted.
    let spec = sleep("ok", 0, 1)
        .retry(-1)
        .delay(std::time::Duration::from_millis(1500))
        .timeout(std::time::Duration::from_secs(30));
    assert_eq!(spec.retry, Some(json!(-1)));
    assert_eq!(spec.delay, Some(json!("1s 500ms")));
    let rt = runtime(None, None, 1).await;
    let id = rt.submit(one_block(vec![spec])).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    rt.shutdown().await.unwrap();
}

#[tokio::test]
async fn plans_arrive_as_json_and_unknown_fields_are_errors() {
    let plan: Plan = serde_json::from_value(json!({
        "name": "json",
        "blocks": [{"name": "b", "items": [
            {"id": "one", "kind": "sum", "params": {"add": 1}},
            {"id": "two", "kind": "sum", "params": {"add": 2}, "after": ["one"]}
        ]}]
    }))
    .unwrap();
    let rt = runtime(None, None, 4).await;
    let id = rt.submit(plan).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    assert_eq!(
        rt.status(id)
            .await
            .unwrap()
            .item("two")
            .unwrap()
            .output_as::<i64>(),
        Some(3)
    );
    rt.shutdown().await.unwrap();
    let err = serde_json::from_value::<Plan>(json!({"name": "x", "blocks": [], "colour": 1}))
        .unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[tokio::test]
async fn requests_on_unknown_or_finished_executions_are_clear_errors() {
    let rt = runtime(None, None, 4).await;
    let ghost = ExecutionId::generate();
    assert!(
        matches!(rt.status(ghost).await, Err(RuntimeError::UnknownExecution(id)) if id == ghost)
    );
    assert!(matches!(
        rt.resume(ghost).await,
        Err(RuntimeError::UnknownExecution(_))
    ));
    assert!(matches!(
        rt.wait(ghost).await,
        Err(RuntimeError::UnknownExecution(_))
    ));
    assert!(matches!(
        rt.interrupt(ghost, InterruptStrategy::FinishCurrent).await,
        Err(RuntimeError::UnknownExecution(_))
    ));

    let id = rt.submit(one_block(vec![sum("a", 1)])).await.unwrap();
    assert!(outcome(&rt, id).await.is_completed());
    let err = rt
        .interrupt(id, InterruptStrategy::FinishCurrent)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::InvalidState {
                action: "interrupt",
                status: ExecutionStatus::Completed,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_string()));
    let err = rt.resume(id).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::InvalidState {
                action: "resume",
                ..
            }
        ),
        "{err:?}"
    );

    // Resuming a running execution is refused too (its item waits at a gate that is never
    // opened, so it runs until interrupted).
    let slow = rt
        .submit(one_block(vec![gate("s", "closed", 20)]))
        .await
        .unwrap();
    let err = rt.resume(slow).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::InvalidState {
                status: ExecutionStatus::Running,
                ..
            }
        ),
        "{err:?}"
    );
    rt.interrupt(slow, InterruptStrategy::AtCancellationPoint)
        .await
        .unwrap();
    assert_eq!(
        outcome(&rt, slow).await.status,
        ExecutionStatus::Interrupted
    );
    rt.shutdown().await.unwrap();

    // After shutdown, requests fail instead of hanging.
    assert!(matches!(rt.list().await, Err(RuntimeError::ShuttingDown)));
}
