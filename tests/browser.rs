//! The dashboard in a real headless Chromium (`support/browser.rs`: chromedriver driven
//! through fantoccini): it shows a running execution's progress change, its interrupt
//! button interrupts it, and its pause button pauses another; a page on another origin
//! cannot drive the bridge. (`dashboard.rs` covers the graph, links, filters and errors.)
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
use helpers::{PATIENCE, eventually};
use serde_json::{Value, json};
use served::Served;

/// Opens execution `id` (a click on its row in the list) and clicks the `action` button
/// of its detail once the page shows it.
async fn click_button(browser: &Browser, id: &str, action: &str) {
    let row = format!("tr[data-id='{id}'] td.mono");
    let button = format!("#action-buttons[data-key^='{id}:'] button.{action}");
    eventually(&format!("the {action} button is clicked"), || async {
        if browser.count(&button).await == 0 {
            browser.click(&row).await;
        }
        seen(Some(browser.click(&button).await), |clicked| *clicked)
    })
    .await;
}

/// What `probe` gave, or what it saw instead, for `eventually`.
fn seen<T: std::fmt::Debug>(value: Option<T>, ok: impl FnOnce(&T) -> bool) -> Result<T, String> {
    match value {
        Some(v) if ok(&v) => Ok(v),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn the_dashboard_shows_live_progress_and_interrupts_an_execution() {
    if skipped().is_some() {
        return;
    }
    let _turn = ONE_BROWSER.lock().await;
    // Every item waits at its own gate, so the execution runs exactly as long as the test
    // says and its progress moves only when the test opens a gate.
    let s = Served::start(None, None, None).await;
    let items: Vec<Value> = (0..24)
        .map(|i| json!({"id": format!("step-{i}"), "kind": "gate", "params": {"gate": format!("step-{i}")}}))
        .collect();
    let (status, created) = s
        .post(
            "/executions",
            &json!({"name": "watched", "parallelism": 2, "blocks": [{"name": "b", "items": items}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    browser.goto(&s.base).await;
    let row = format!("tr[data-id='{id}']");
    let progress = format!("{row} .progress-text");
    let status_css = format!("{row} .status");
    eventually("the execution is listed as running", || async {
        seen(browser.text(&status_css).await, |t| t == "running")
    })
    .await;
    let first = eventually("the progress shows 0 of 24 done", || async {
        seen(browser.text(&progress).await, |t| t.trim() == "0/24")
    })
    .await;
    // The page follows the event stream: once the test lets one item finish, the progress
    // text changes by itself.
    s.gates.open("step-0");
    let later = eventually("the progress changes to 1 of 24 done", || async {
        seen(browser.text(&progress).await, |t| {
            *t != first && t.trim() == "1/24"
        })
    })
    .await;
    assert_eq!(later.trim(), "1/24");

    // Opening the execution shows its items.
    assert!(browser.click(&format!("{row} td.mono")).await);
    eventually("the item table is shown", || async {
        let rows = browser.count("#items tbody tr").await;
        seen(Some(rows), |n| *n == 24)
    })
    .await;

    click_button(&browser, &id, "interrupt").await;
    // The button interrupts with `finish_current`: the two items running now (step-1 and
    // step-2, parallelism 2) finish, none starts. Opening every gate once the interrupt is
    // applied lets exactly those two finish.
    s.wait_interrupting(&id).await;
    // Until the two running items end, the list and the detail say it is interrupting.
    eventually("the page shows it interrupting", || async {
        let listed = browser.text(&status_css).await;
        let detail = browser.text("#detail-status").await;
        seen(Some((listed, detail)), |(l, d)| {
            l.as_deref() == Some("interrupting") && d.as_deref() == Some("interrupting")
        })
    })
    .await;
    for i in 0..24 {
        s.gates.open(&format!("step-{i}"));
    }
    eventually("the status becomes interrupted", || async {
        seen(browser.text(&status_css).await, |t| t == "interrupted")
    })
    .await;
    let (_, view) = s.get(&format!("/executions/{id}")).await;
    assert_eq!(view["status"], "interrupted", "{view}");
    assert_eq!(view["items_done"], 3, "{view}");
    // The resume button appears and finishes it.
    click_button(&browser, &id, "resume").await;
    s.wait_status(&id, "completed").await;
    eventually("the page shows it completed", || async {
        seen(browser.text(&status_css).await, |t| t == "completed")
    })
    .await;

    // The pause button: one item at a time, `p0` holds; once the pause is applied and `p0`
    // is let through, nothing else starts and the page shows it paused.
    let (status, created) = s
        .post(
            "/executions",
            &json!({"name": "pausable", "parallelism": 1, "blocks": [{"name": "b", "items": [
                {"id": "p0", "kind": "gate", "params": {"gate": "p0"}},
                {"id": "p1", "kind": "gate", "params": {"gate": "p1"}}
            ]}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let row = format!("tr[data-id='{id}']");
    let status_css = format!("{row} .status");
    click_button(&browser, &id, "pause").await;
    s.wait_tree_status(&id, "pausing").await;
    eventually("the page shows it pausing", || async {
        seen(browser.text(&status_css).await, |t| t == "pausing")
    })
    .await;
    s.gates.open("p0");
    s.gates.open("p1");
    eventually("the page shows it paused", || async {
        seen(browser.text(&status_css).await, |t| t == "paused")
    })
    .await;
    let (_, view) = s.get(&format!("/executions/{id}")).await;
    assert_eq!(view["blocks"][0]["items"][1]["status"], "pending", "{view}");
    click_button(&browser, &id, "resume").await;
    s.wait_status(&id, "completed").await;
    browser.quit().await;
    s.stop().await;
}

#[tokio::test]
async fn the_dashboard_works_when_the_bridge_is_mounted_under_a_prefix() {
    if skipped().is_some() {
        return;
    }
    let _turn = ONE_BROWSER.lock().await;
    let runtime = tend::Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .start()
        .await
        .unwrap();
    let id = runtime
        .submit(
            serde_json::from_value(json!({"name": "nested", "blocks": [{"name": "b", "items": [
                {"id": "a", "kind": "sum", "params": {"add": 1}}
            ]}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    runtime.wait(id).await.unwrap();
    let app: axum::Router =
        axum::Router::new().nest("/tend", tend::bridge::Bridge::new(runtime.clone()).router());
    let served = App::serve(app).await;

    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/tend", served.addr)).await;
    let row = format!("tr[data-id='{id}']");
    let status_css = format!("{row} .status");
    eventually("the execution is listed as completed", || async {
        seen(browser.text(&status_css).await, |t| t == "completed")
    })
    .await;
    eventually("the event stream is connected", || async {
        seen(browser.text("#live").await, |t| t == "live")
    })
    .await;
    browser.quit().await;
    runtime.shutdown().await.unwrap();
    served.finish().await;
}

#[tokio::test]
async fn the_dashboard_shows_a_shutdown_under_way_and_that_the_stream_ended_with_it() {
    if skipped().is_some() {
        return;
    }
    let _turn = ONE_BROWSER.lock().await;
    // A module that answers the shutdown's announcement only once the test lets it: the
    // shutdown stays under way while the test looks at the page.
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let runtime = tend::Runtime::builder()
        .config(tend::Config {
            lifecycle_timeout: PATIENCE * 2,
            disk_low_percent: 0.0,
            ..tend::Config::default()
        })
        .module("held", &[tend::LifecycleKind::NodeShutdown], move |_| {
            let held = held.clone();
            async move {
                held.notified().await;
                tend::Answer::Acknowledged
            }
        })
        .start()
        .await
        .unwrap();
    let bound = tend::bridge::Bridge::new(runtime.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", bound.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));

    let browser = Browser::start().await;
    browser.goto(&base).await;
    eventually("the event stream is connected", || async {
        seen(browser.text("#live").await, |t| t == "live")
    })
    .await;
    assert_eq!(browser.text("#banner").await.as_deref(), Some(""));
    // The page connected after startup: the replayed startup event says since when.
    eventually("the page says since when the server is up", || async {
        seen(browser.text("#up").await, |t| t.starts_with("up since "))
    })
    .await;

    let shutdown = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            runtime
                .shutdown_with(
                    tend::ShutdownReason::Rpc,
                    std::time::Duration::from_secs(90),
                )
                .await
        }
    });
    eventually("the page shows the shutdown under way", || async {
        seen(browser.text("#banner").await, |t| {
            t == "shutting down: rpc, deadline 1m 30s"
        })
    })
    .await;
    assert_eq!(browser.text("#live").await.as_deref(), Some("live"));

    release.notify_one();
    eventually("the page says the stream ended with the server", || async {
        seen(browser.text("#live").await, |t| {
            t == "ended: the server stopped"
        })
    })
    .await;
    let banner = browser.text("#banner").await.unwrap_or_default();
    assert!(
        banner.starts_with("shut down: rpc, deadline 1m 30s; took "),
        "{banner}"
    );
    assert_eq!(
        browser.attr("#live", "title").await.as_deref(),
        Some("the runtime shut down")
    );
    assert!(shutdown.await.unwrap().is_clean());
    browser.quit().await;
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// An application's axum app served on a free loopback port, stopped by `stop`.
struct App {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl App {
    async fn serve(app: axum::Router) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        App { addr, stop, server }
    }

    /// Stops it and waits (bounded) until it has.
    async fn finish(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A page on another origin that tries to drive the bridge at `bridge`: a `no-cors` fetch
/// that interrupts, one that submits a plan, a beacon, and a form posted into a frame.
fn attacker_page(bridge: &str) -> String {
    format!(
        r#"<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="post" action="{bridge}/interrupt" target="sink" enctype="text/plain">
<input name='{{"strategy": "immediate", "x": "' value='"}}'>
</form>
<script>
const plan = JSON.stringify({{"name": "planted", "blocks": [{{"name": "b", "items": [{{"id": "a", "kind": "sum"}}]}}]}});
fetch("{bridge}/interrupt", {{method: "POST", mode: "no-cors", body: '{{"strategy": "immediate"}}'}});
fetch("{bridge}/executions", {{method: "POST", mode: "no-cors", body: plan}});
navigator.sendBeacon("{bridge}/interrupt", '{{"strategy": "at_cancellation_point"}}');
document.getElementById("f").submit();
</script>
</body></html>"#
    )
}

#[tokio::test]
async fn another_origins_page_cannot_start_or_interrupt_anything() {
    if skipped().is_some() {
        return;
    }
    let _turn = ONE_BROWSER.lock().await;
    let gates = tend::demo::Gates::new();
    let runtime = tend::Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .resource(gates.clone())
        .start()
        .await
        .unwrap();
    let plan = json!({"name": "victim", "blocks": [{"name": "b", "items": [
        {"id": "held", "kind": "gate", "params": {"gate": "g"}}
    ]}]});
    let id = runtime
        .submit(serde_json::from_value(plan).unwrap())
        .await
        .unwrap();
    // The bridge, behind a layer that counts the POSTs it has answered, so the test knows
    // when every attempt of the page has arrived (not a sleep hoped to be long enough).
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    let app = tend::bridge::Bridge::new(runtime.clone())
        .router()
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    let post = req.method() == axum::http::Method::POST;
                    let response = next.run(req).await;
                    if post {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    response
                }
            },
        ));
    let bridge = App::serve(app).await;
    let page = attacker_page(&format!("http://{}", bridge.addr));
    let attacker = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let attacker = App::serve(attacker).await;

    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/", attacker.addr)).await;
    eventually("the page's four POSTs have been answered", || async {
        let n = answered.load(std::sync::atomic::Ordering::SeqCst);
        if n >= 4 {
            Ok(())
        } else {
            Err(format!("{n} answered"))
        }
    })
    .await;
    // Nothing changed: the execution still runs, not interrupting, and it is the only one.
    let list = runtime.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].status, tend::ExecutionStatus::Running);
    let tree = runtime.tree().await.unwrap();
    assert_eq!(tree.children[0].status, "running", "{tree:?}");
    gates.open("g");
    assert!(runtime.wait(id).await.unwrap().is_completed());
    browser.quit().await;
    runtime.shutdown().await.unwrap();
    bridge.finish().await;
    attacker.finish().await;
}
