//! The bridge mounted under a prefix (`nest_service`) in an application's own axum
//! server, with the axum that tend re-exports: the page answers at the prefix with and
//! without a trailing slash, and the OpenAPI document names the prefix as its server, so
//! a client generated from it calls the mounted routes.

#[path = "support/helpers.rs"]
mod helpers;

use serde_json::Value;
use tend::Runtime;
use tend::bridge::{Bridge, axum};

struct Mounted {
    runtime: Runtime,
    origin: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The bridge nested at `prefix` ("" for the root) beside one route of the application's.
async fn mounted(prefix: &str) -> Mounted {
    let runtime = Runtime::builder()
        .registry(tend::demo::registry().unwrap())
        .start()
        .await
        .unwrap();
    let bridge = Bridge::new(runtime.clone());
    let app = axum::Router::new().route("/app", axum::routing::get(|| async { "the app" }));
    let app = if prefix.is_empty() {
        app.merge(bridge.router())
    } else {
        app.nest_service(prefix, bridge.router())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Mounted {
        runtime,
        origin,
        client: reqwest::Client::new(),
        stop,
        server,
    }
}

impl Mounted {
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.origin))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn finish(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.runtime.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn under_a_prefix_the_page_answers_with_and_without_the_trailing_slash() {
    let m = mounted("/tend").await;
    for path in ["/tend", "/tend/"] {
        let (status, page) = m.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("<title>"), "{path}: {page:.200}");
    }
    let (status, app) = m.get("/app").await;
    assert_eq!((status, app.as_str()), (200, "the app"));
    assert_eq!(m.get("/tend/health").await.0, 200);
    assert_eq!(
        m.get("/health").await.0,
        404,
        "nothing of the bridge's at the root"
    );
    m.finish().await;
}

#[tokio::test]
async fn the_openapi_document_names_the_mount_prefix_as_its_server() {
    let m = mounted("/ops/tend").await;
    let (status, doc) = m.get("/ops/tend/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        doc["servers"][0]["url"], "/ops/tend",
        "{:?}",
        doc["servers"]
    );
    // A client that joins the server and a documented path reaches the route.
    let server = doc["servers"][0]["url"].as_str().unwrap();
    assert!(doc["paths"]["/health"].is_object());
    assert_eq!(m.get(&format!("{server}/health")).await.0, 200);
    m.finish().await;

    let m = mounted("").await;
    let (_, doc) = m.get("/openapi.json").await;
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["servers"][0]["url"], "/", "{:?}", doc["servers"]);
    m.finish().await;
}
