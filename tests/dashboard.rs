//! What the dashboard shows, in a real headless Chromium (`support/browser.rs`): an
//! execution's item graph, live; a deep link that survives a reload; the status filter and
//! the search; only the actions the status allows; an interrupt with the strategy picked on
//! the page; an error from a click that stays until dismissed; every attempt of a failed
//! item with its error. It also saves the screenshots the README shows (`target/screenshots/`, copied to `docs/`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` and `scripts/test.sh`
//! install them).

#[path = "support/browser.rs"]
mod browser;
#[path = "support/helpers.rs"]
mod helpers;
#[path = "support/bridge.rs"]
mod served;

use browser::{Browser, ONE_BROWSER, skipped};
use helpers::eventually;
use serde_json::{Value, json};
use served::Served;

/// What `probe` gave, or what it saw instead, for `eventually`.
fn seen<T: std::fmt::Debug>(value: Option<T>, ok: impl FnOnce(&T) -> bool) -> Result<T, String> {
    match value {
        Some(v) if ok(&v) => Ok(v),
        other => Err(format!("{other:?}")),
    }
}

/// Waits until the graph's node for `item` has class `status`.
async fn node_is(browser: &Browser, item: &str, status: &str) {
    let css = format!("#graph g.node[data-node='{item}']");
    eventually(&format!("the graph shows {item} {status}"), || async {
        seen(browser.attr(&css, "class").await, |class| {
            class.split(' ').any(|c| c == status)
        })
    })
    .await;
}

/// Waits until the page shows execution `id` in its detail, with status `status`.
async fn detail_is(browser: &Browser, id: &str, status: &str) {
    eventually(&format!("the detail shows {id} {status}"), || async {
        let shown = browser.text("#detail-id").await;
        let now = browser.text("#detail-status").await;
        seen(Some((shown, now)), |(shown, now)| {
            shown.as_deref() == Some(id) && now.as_deref() == Some(status)
        })
    })
    .await;
}

/// Waits until the list holds exactly the executions `ids`.
async fn listed(browser: &Browser, ids: &[&str]) {
    eventually(&format!("the list holds {ids:?}"), || async {
        let rows = browser.count("#executions tbody tr").await;
        let mut there = 0;
        for id in ids {
            there += browser.count(&format!("tr[data-id='{id}']")).await;
        }
        seen(Some((rows, there)), |&(rows, there)| {
            rows == ids.len() && there == ids.len()
        })
    })
    .await;
}

/// Clicks the element matching `css` once the page shows it.
async fn click(browser: &Browser, css: &str) {
    eventually(&format!("{css} is clicked"), || async {
        seen(Some(browser.click(css).await), |clicked| *clicked)
    })
    .await;
}

fn screenshots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_dashboard_shows_the_graph_deep_links_filters_interrupts_and_keeps_errors() {
    if skipped().is_some() {
        return;
    }
    let _turn = ONE_BROWSER.lock().await;
    let s = Served::start(None, None, None).await;

    // A failed execution: `total` sums an output that is not a number, on both of its
    // attempts (retry 1).
    let (status, failed) = s
        .post(
            "/executions",
            &json!({"name": "nightly-report", "blocks": [{"name": "report", "items": [
                {"id": "source", "kind": "gate", "params": {"gate": "source", "output": "n/a"}},
                {"id": "total", "kind": "sum", "after": ["source"], "retry": 1, "params": {"add": 1}}
            ]}]}),
        )
        .await;
    assert_eq!(status, 201, "{failed}");
    let failed = failed["id"].as_str().unwrap().to_owned();
    s.gates.open("source");
    s.wait_status(&failed, "failed").await;

    // A running one: a DAG of four items in `build`, one in `ship`, two at a time, each
    // held at its gate until the test opens it.
    let gate = |id: &str, after: &[&str], steps: u32| json!({"id": id, "kind": "gate", "after": after, "params": {"gate": id, "steps": steps}});
    let plan = json!({"name": "deploy-web", "parallelism": 2, "blocks": [
        {"name": "build", "items": [
            gate("fetch", &[], 1),
            gate("compile", &["fetch"], 1),
            gate("lint", &["fetch"], 4),
            gate("package", &["compile", "lint"], 1),
        ]},
        {"name": "ship", "items": [gate("upload", &[], 1)]}
    ]});
    let (status, running) = s.post("/executions", &plan).await;
    assert_eq!(status, 201, "{running}");
    let running = running["id"].as_str().unwrap().to_owned();

    // A deep link opens the detail with no click, and draws the graph.
    let browser = Browser::start().await;
    browser
        .goto(&format!("{}#/executions/{running}", s.base))
        .await;
    browser.viewport(1400, 900).await;
    detail_is(&browser, &running, "running").await;
    eventually("the graph has a node per item", || async {
        seen(Some(browser.count("#graph g.node").await), |n| *n == 5)
    })
    .await;
    assert_eq!(browser.count("#graph path.edge").await, 4);
    node_is(&browser, "fetch", "running").await;
    node_is(&browser, "package", "pending").await;

    // The graph is live: once `fetch` is through, `compile` and `lint` run.
    s.gates.open("fetch");
    node_is(&browser, "fetch", "done").await;
    node_is(&browser, "compile", "running").await;
    node_is(&browser, "lint", "running").await;
    // One of lint's four steps: its progress counts in the execution's bar.
    s.gates.release("lint", 1);
    eventually("the bar counts lint's quarter", || async {
        seen(browser.text("#detail-progress").await, |t| {
            t.starts_with("1/5 done · 2 running · 25%")
        })
    })
    .await;
    // The list's bar counts it too (1 done and a quarter of lint: 1.25 of 5).
    eventually("the list's bar counts lint's quarter", || async {
        let css = format!("#executions tr[data-id='{running}'] progress");
        seen(browser.attr(&css, "value").await, |v| v == "1.25")
    })
    .await;
    click(&browser, "#graph g.node[data-node='lint'] rect").await;
    // The item has a link of its own, which survives a reload.
    eventually("the item's link is in the address", || async {
        seen(
            browser
                .client()
                .current_url()
                .await
                .ok()
                .map(|u| u.to_string()),
            |u| u.ends_with(&format!("#/executions/{running}/items/lint")),
        )
    })
    .await;
    browser.client().refresh().await.unwrap();
    detail_is(&browser, &running, "running").await;
    eventually("lint's detail is shown", || async {
        seen(browser.text("#item-id").await, |t| t == "lint")
    })
    .await;
    assert_eq!(
        browser
            .text("#item-params")
            .await
            .as_deref()
            .map(|t| t.split_whitespace().collect::<String>()),
        Some(r#"{"gate":"lint","steps":4}"#.to_owned())
    );
    browser
        .screenshot(&screenshots().join("dashboard-running.png"))
        .await;

    // The status filter and the search.
    assert!(browser.select("#filter-status", "failed").await);
    listed(&browser, &[&failed]).await;
    assert!(browser.select("#filter-status", "").await);
    listed(&browser, &[&running, &failed]).await;
    assert!(browser.type_into("#search", "DEPLOY").await);
    listed(&browser, &[&running]).await;
    assert!(browser.type_into("#search", &failed[20..]).await);
    listed(&browser, &[&failed]).await;
    assert!(browser.type_into("#search", "").await);
    listed(&browser, &[&running, &failed]).await;

    // Only what the status allows: a running execution can be stopped, not deleted.
    let mut buttons = Vec::new();
    for class in ["interrupt", "pause", "cancel", "resume", "retry", "delete"] {
        if browser
            .count(&format!("#action-buttons button.{class}"))
            .await
            == 1
        {
            buttons.push(class);
        }
    }
    assert_eq!(buttons, ["interrupt", "pause", "cancel"]);

    // A refused request: the bridge says why, and the page keeps saying it while the
    // execution moves on, until the error is dismissed.
    assert!(browser.select("#strategy", "immediate").await);
    assert!(browser.type_into("#strategy-grace", "soon").await);
    click(&browser, "#action-buttons button.interrupt").await;
    let error = eventually("the refusal is shown", || async {
        seen(browser.text("#errors .error span").await, |t| {
            t.contains("400") && t.contains("soon")
        })
    })
    .await;
    s.gates.open("compile");
    node_is(&browser, "compile", "done").await;
    assert_eq!(browser.text("#errors .error span").await, Some(error));
    click(&browser, "#errors .error button.dismiss").await;
    assert_eq!(browser.count("#errors .error").await, 0);

    // Interrupt at cancellation points: `lint`, waiting at its gate, stops at once (under
    // the default `finish_current` it would wait for its gate, which stays shut).
    assert!(browser.select("#strategy", "at_cancellation_point").await);
    click(&browser, "#action-buttons button.interrupt").await;
    detail_is(&browser, &running, "interrupted").await;
    let (_, view) = s.get(&format!("/executions/{running}")).await;
    let items = &view["blocks"][0]["items"];
    assert_eq!(items[2]["status"], "interrupted", "{view}");
    assert_eq!(
        items[2]["progress"],
        json!({"done": 1, "total": 4}),
        "{view}"
    );
    assert_eq!(items[3]["status"], "pending", "{view}");
    node_is(&browser, "lint", "interrupted").await;

    // The failed execution, by its link: every attempt of `total` with its error; the
    // link survives a reload.
    browser
        .goto(&format!("{}#/executions/{failed}", s.base))
        .await;
    detail_is(&browser, &failed, "failed").await;
    browser.client().refresh().await.unwrap();
    detail_is(&browser, &failed, "failed").await;
    node_is(&browser, "total", "failed").await;
    click(&browser, "#graph g.node[data-node='total'] rect").await;
    let attempts = eventually("both attempts are listed", || async {
        seen(browser.text("#attempts tbody").await, |t| {
            t.lines().count() == 2
        })
    })
    .await;
    for line in attempts.lines() {
        assert!(line.contains("failed"), "{attempts}");
        assert!(line.contains("is not an integer"), "{attempts}");
    }
    // What it took counts both attempts, and says so.
    let row = browser.text("#items tr[data-item='total']").await;
    assert!(
        row.as_deref().is_some_and(|r| r.contains("(2 attempts)")),
        "{row:?}"
    );
    browser
        .screenshot(&screenshots().join("dashboard-failed.png"))
        .await;

    let (_, view) = s.get(&format!("/executions/{failed}")).await;
    let total: &Value = &view["blocks"][0]["items"][1];
    assert_eq!(total["history"].as_array().map(Vec::len), Some(2), "{view}");
    browser.quit().await;
    s.gates.open("lint");
    s.stop().await;
}
