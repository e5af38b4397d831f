//! A runtime with its bridge on a loopback port, and a small JSON client for the tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tend::bridge::Bridge;
use tend::{Config, Runtime};

use crate::helpers::PATIENCE;

/// A runtime over the demo kinds and its bridge, served on 127.0.0.1 with a free port.
pub struct Served {
    pub runtime: Runtime,
    /// The gates `gate` items wait at: the test opens them.
    pub gates: tend::demo::Gates,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), tend::bridge::BridgeError>>>,
}

impl Served {
    pub async fn start(dir: Option<&Path>, log: Option<&Path>, token: Option<&str>) -> Self {
        let gates = tend::demo::Gates::new();
        let mut builder = Runtime::builder()
            .resource(gates.clone())
            .registry(tend::demo::registry().unwrap())
            .config(Config {
                parallelism: 2,
                stop_grace: Duration::from_millis(500),
                // Whatever the machine's disk: no low-disk cleanup in the tests.
                disk_low_percent: 0.0,
                ..Config::default()
            });
        if let Some(dir) = dir {
            builder = builder.data_dir(dir);
        }
        if let Some(log) = log {
            builder = builder.resource(tend::demo::AppliedLog::open(log).unwrap());
        }
        let runtime = builder.start().await.unwrap();
        let mut bridge = Bridge::new(runtime.clone());
        if let Some(token) = token {
            bridge = bridge.with_token(token);
        }
        let bound = bridge.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", bound.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        Served {
            runtime,
            gates,
            base,
            client,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; returns the status and the JSON body (Null when not JSON).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// POSTs `body` as it is, typed `application/json` (as a client of the bridge must).
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.post_as(path, body, Some("application/json")).await
    }

    /// POSTs `body` with `content_type` (none when `None`).
    pub async fn post_as(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request).await
    }

    /// Polls `GET /executions/{id}` until its status is `status`.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        crate::helpers::eventually(&format!("execution {id} is {status}"), || async {
            let (code, view) = self.get(&format!("/executions/{id}")).await;
            assert_eq!(code, 200, "{view}");
            if view["status"] == status {
                Ok(view)
            } else {
                Err(format!("status {}", view["status"]))
            }
        })
        .await
    }

    /// Waits until the live tree shows execution `id` interrupting: an interrupt sent by
    /// someone else (a browser) has been applied.
    pub async fn wait_interrupting(&self, id: &str) {
        self.wait_tree_status(id, "interrupting").await
    }

    /// Waits until the live tree shows execution `id` with `status` (`interrupting`,
    /// `pausing`): the request is applied, and nothing new starts.
    pub async fn wait_tree_status(&self, id: &str, status: &str) {
        crate::helpers::eventually(&format!("execution {id} is {status}"), || async {
            let (_, tree) = self.get("/tree").await;
            let node = tree["children"]
                .as_array()
                .and_then(|c| c.iter().find(|n| n["name"] == id).cloned());
            match node {
                Some(n) if n["status"].as_str().is_some_and(|s| s.starts_with(status)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// Shuts the runtime down, then the server.
    pub async fn stop(mut self) {
        self.runtime.shutdown().await.unwrap();
        self.stop_server().await;
    }

    /// Stops the bridge's server (the runtime runs on) and waits until it has stopped.
    pub async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

/// Asserts the error shape and code.
pub fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
