//! The debug REST bridge: an axum router over a [`Runtime`] that lets a person (curl, a
//! browser) or any HTTP client see and steer every execution.
//!
//! ```text
//! GET  /                            the dashboard page
//! GET  /health                      {"status": "ok" | "degraded", ..., "check": the last
//!                                   health check}
//! GET  /executions[?status=&limit=&cursor=]
//!                                   a page of executions, newest first, and its `next`
//! POST /executions                  a plan as JSON -> 201 {"id"}; ?dry_run=true -> 200,
//!                                   what would change (each item's check only)
//! GET  /executions/{id}             status, outcome, every item
//! DELETE /executions/{id}           a finished one (completed, failed, cancelled,
//!                                   corrupt), with its records -> 204
//! POST /executions/{id}/interrupt   {"strategy": ...} (optional) -> 202
//! POST /executions/{id}/pause       {"strategy": ...} (optional) -> 202; `paused` once
//!                                   quiesced, until resumed
//! POST /executions/{id}/cancel      {"strategy": ...} (optional) -> 202; `cancelled`, for
//!                                   good, once nothing runs
//! POST /executions/{id}/resume      -> 202 (an interrupted or paused execution)
//! POST /executions/{id}/retry       -> 202 (a failed execution's failed and skipped items)
//! POST /interrupt                   every running execution -> 202 {"ids"}
//! POST /maintenance                 {"operation": "flush" | "cleanup" | "both", "urgency":
//!                                   "low" | "medium" | "high", "target_age": "7d"} (each
//!                                   optional) -> 200, what it did
//! POST /orphans/sweep               {"protection": "1h"} (optional) -> 200, what it deleted
//! POST /shutdown                    {"deadline": "30s"} (optional) -> 200, the shutdown
//!                                   report once done; only with a token
//! GET  /events                      server-sent events, lifecycle events among them, each
//!                                   with an id to resume from (`Last-Event-ID`); they
//!                                   follow a shutdown to its end, then end
//! GET  /tree                        the live actor tree
//! GET  /semaphores                  semaphores in use: holders and waiters
//! GET  /metrics                     Prometheus text (with `Bridge::with_metrics`)
//! GET  /openapi.json                the OpenAPI document of all this
//! ```
//!
//! Errors are `{"error": {"code", "message"}}`: 400 for malformed JSON, a key repeated in
//! an object (`duplicate_key`), unknown fields and invalid plans (the code names the plan
//! error), 401 for a missing or wrong token, 403 for another origin or an unknown host, 404
//! for an unknown id, 408 for a body too slow, 409 when the execution's state forbids the
//! action, 413 over 1 MiB (at once when `Content-Length` says so), 415 for a POST not typed
//! as JSON, 503 with `Retry-After` at a connection or event stream limit.
//!
//! Every response carries an `x-request-id`: the request's own (at most 64 characters of
//! `A-Z a-z 0-9 . _ : -`), or else the next number of the bridge's. Each request is logged
//! (`tracing`, in a `request` span with that id), its response at `info` with status and
//! latency; only a 500 is also logged as an error, where it is made.
//!
//! Served by itself ([`Bridge::bind`]), the bridge bounds what each client may hold, and
//! keeps room for new clients: at the connection limit a new connection takes the place of
//! the least recently used idle one (503 with `Retry-After` when none is idle), event
//! streams have places of their own, and a connection is closed after a 401. See
//! [`BridgeLimits`].
//!
//! Security: [`Bridge::bind`] refuses a non-loopback address unless a token is set; with a
//! token, mutating routes need `Authorization: Bearer <token>` and reads need it unless
//! they come from a loopback peer. No other web page can drive the bridge through the
//! operator's browser: mutating requests need `Content-Type: application/json` (403
//! `cross_origin` when `Origin` or `Sec-Fetch-Site` say another page sent them, 415
//! without the type), and requests whose `Host` is not localhost, an IP address or a name
//! allowed with [`Bridge::allow_host`] are refused (403 `host_not_allowed`), which stops
//! DNS rebinding; so are a second `Host` header and one with anything besides
//! `name[:port]` (`127.0.0.1:80@evil.example`, `localhost:evil`). The dashboard is served
//! with a strict `Content-Security-Policy`.
//!
//! Mount it in your own axum app with [`Bridge::router`], or serve it alone:
//!
//! ```no_run
//! # async fn run(runtime: tend::Runtime) -> Result<(), Box<dyn std::error::Error>> {
//! use tend::bridge::Bridge;
//! let bridge = Bridge::new(runtime).token_from_env().bind("127.0.0.1:8080".parse()?).await?;
//! println!("listening on http://{}", bridge.local_addr());
//! bridge.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod access;
mod auth;
mod body;
mod error;
mod events;
mod guard;
mod lifecycle;
mod metrics;
mod openapi;
mod query;
mod routes;
mod serve;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;

/// The axum the bridge is built on: mount [`Bridge::router`] in a router of this version
/// (`tend::bridge::axum::Router`), whatever axum the application itself depends on.
pub use axum;
pub use error::BridgeError;
/// The handle of a Prometheus recorder (see [`Bridge::with_metrics_handle`]).
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use serve::BridgeLimits;

use crate::Runtime;
use routes::AppState;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The environment variable [`Bridge::token_from_env`] reads.
pub const TOKEN_ENV: &str = "TEND_BRIDGE_TOKEN";

/// The debug bridge over one runtime.
#[derive(Clone)]
pub struct Bridge {
    runtime: Runtime,
    token: Option<Arc<str>>,
    hosts: Vec<String>,
    limits: BridgeLimits,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The log of events its streams read (shared by its clones and routers, so that an
    /// event's id means the same on each).
    log: events::SharedLog,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// A bridge over `runtime`, without a token.
    pub fn new(runtime: Runtime) -> Self {
        Bridge {
            runtime,
            token: None,
            hosts: Vec::new(),
            limits: BridgeLimits::default(),
            metrics: None,
            log: events::SharedLog::default(),
        }
    }

    /// What its server allows each client (connections, event streams, header, body and
    /// drain timeouts). They apply when the bridge serves itself ([`bind`](Self::bind)); a
    /// router mounted in an application's server gets that server's, except the body
    /// timeout, which the bridge applies itself.
    pub fn limits(mut self, limits: BridgeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves `GET /metrics`: installs a Prometheus recorder as the process's `metrics`
    /// recorder (once; every bridge of the process shares it), to which the runtime's
    /// measures go. Fails if the process already has another recorder: then give the bridge
    /// that one's handle with [`with_metrics_handle`](Self::with_metrics_handle), if it is
    /// a Prometheus one.
    pub fn with_metrics(self) -> Result<Self, BridgeError> {
        let handle = metrics::install()?;
        Ok(self.with_metrics_handle(handle))
    }

    /// Serves `GET /metrics` from a Prometheus recorder the application installed itself
    /// (as the process's recorder), describing the runtime's metrics to it.
    pub fn with_metrics_handle(mut self, handle: PrometheusHandle) -> Self {
        tend_actors::metrics::describe();
        self.metrics = Some(handle);
        self
    }

    /// Also answers requests whose `Host` is `name` (any port). Without it the bridge
    /// answers only localhost and IP addresses, so a page whose DNS name rebinds to this
    /// machine is refused; allow the names people reach it by (a reverse proxy's, a
    /// machine's).
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.hosts.push(name.into().to_ascii_lowercase());
        self
    }

    /// Requires `Authorization: Bearer <token>` (see the module docs for which routes).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// Takes the token from `TEND_BRIDGE_TOKEN` when it is set and no token is set yet.
    pub fn token_from_env(self) -> Self {
        match (&self.token, std::env::var(TOKEN_ENV)) {
            (None, Ok(token)) => self.with_token(token),
            _ => self,
        }
    }

    /// The router, to mount in an application's own axum app, at a prefix with
    /// `Router::nest_service("/tend", bridge.router())` (which, unlike `nest`, also routes
    /// `/tend/` to the page). The OpenAPI document names the prefix as its server. When it
    /// is served without connection info, every peer counts as remote for the token rule.
    pub fn router(&self) -> Router {
        // Mounted in an application's server, the bridge does not know when that server
        // stops: its event streams end with the runtime (or a request to shut down).
        let (_never, closing) = tokio::sync::watch::channel(false);
        self.router_closing(closing)
    }

    /// The router, whose event streams end when `closing` turns true.
    fn router_closing(&self, closing: events::Closing) -> Router {
        let access_log = access::layers();
        Router::new()
            .route("/", get(routes::dashboard))
            .route("/health", get(routes::health))
            .route("/executions", get(routes::list).post(routes::submit))
            .route(
                "/executions/{id}",
                get(routes::status).delete(routes::delete),
            )
            .route("/executions/{id}/interrupt", post(routes::interrupt))
            .route("/executions/{id}/pause", post(routes::pause))
            .route("/executions/{id}/cancel", post(routes::cancel))
            .route("/executions/{id}/resume", post(routes::resume))
            .route("/executions/{id}/retry", post(routes::retry))
            .route("/interrupt", post(routes::interrupt_all))
            .route("/shutdown", post(lifecycle::shutdown))
            .route("/maintenance", post(lifecycle::maintenance))
            .route("/orphans/sweep", post(lifecycle::sweep))
            .route(
                "/events",
                get(routes::events).route_layer(middleware::from_fn(serve::event_stream_place)),
            )
            .route("/tree", get(routes::tree))
            .route("/semaphores", get(routes::semaphores))
            .route("/metrics", get(metrics::metrics))
            .route("/openapi.json", get(routes::openapi))
            .route_layer(middleware::from_fn(guard::require_json_post))
            .fallback(routes::not_found)
            .method_not_allowed_fallback(routes::method_not_allowed)
            .layer(middleware::from_fn_with_state(
                self.token.clone(),
                auth::require_token,
            ))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::Extension(body::BodyTimeout(self.limits.body_timeout)))
            // A request from elsewhere is refused before anything reads it ...
            .layer(middleware::from_fn_with_state(
                guard::AllowedHosts::from(self.hosts.clone()),
                guard::guard,
            ))
            // ... and, like every other, logged with its request id.
            .layer(access_log.2)
            .layer(access_log.1)
            .layer(access_log.0)
            .layer(middleware::from_fn(access::screen_request_id))
            .with_state(AppState {
                runtime: self.runtime.clone(),
                token: self.token.is_some(),
                metrics: self.metrics.clone(),
                closing,
                log: self.log.clone(),
            })
    }

    /// Binds `addr` and serves until the process ends (or the server fails). Use
    /// [`bind`](Self::bind) for the real port and a graceful shutdown.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), BridgeError> {
        self.bind(addr).await?.serve(std::future::pending()).await
    }

    /// Binds `addr` (port 0 picks a free port). Refuses a non-loopback address without a
    /// token, an empty token, and one with other than visible ASCII characters.
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundBridge, BridgeError> {
        match &self.token {
            _ if self.limits.max_connections == 0
                || self.limits.max_event_streams == 0
                || [
                    self.limits.header_timeout,
                    self.limits.body_timeout,
                    self.limits.write_timeout,
                ]
                .iter()
                .any(Duration::is_zero) =>
            {
                return Err(BridgeError::BadLimits);
            }
            Some(token) if token.is_empty() => return Err(BridgeError::EmptyToken),
            // A header carries visible ASCII only: any other token could never be sent.
            Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(BridgeError::BadToken);
            }
            None if !addr.ip().is_loopback() => return Err(BridgeError::InsecureBind { addr }),
            _ => {}
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| BridgeError::Bind {
                addr,
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| BridgeError::Bind {
            addr,
            reason: e.to_string(),
        })?;
        let (closing, streams_closing) = tokio::sync::watch::channel(false);
        Ok(BoundBridge {
            router: self.router_closing(streams_closing),
            listener,
            local_addr,
            limits: self.limits,
            closing,
        })
    }
}

/// A bridge bound to its address, ready to serve.
#[derive(Debug)]
pub struct BoundBridge {
    router: Router,
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: BridgeLimits,
    /// Told when the server begins to stop, so that event streams end then.
    closing: tokio::sync::watch::Sender<bool>,
}

impl BoundBridge {
    /// The address it accepts on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends the event streams
    /// (each with every event published until then, and `end`) and gives open requests
    /// the drain timeout ([`BridgeLimits`]) before it closes them. Shut the runtime down
    /// first to let the streams carry the whole shutdown.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), BridgeError> {
        let closing = self.closing;
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        serve::serve(self.listener, self.router, self.limits, shutdown).await;
        Ok(())
    }
}
