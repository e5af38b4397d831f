//! The route handlers. Each turns a request into one runtime call and the answer into its
//! wire type; every failure is a `BridgeError`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{Html, IntoResponse};
use futures::Stream;
use tend_actors::{ActorNode, ExecutionId, ExecutionStatus, Plan};

use crate::Runtime;
use crate::bridge::body::{JsonBody, OptionalJsonBody};
use crate::bridge::error::{BridgeError, ErrorBody, cut};
use crate::bridge::openapi::document;
use crate::bridge::query::QueryOf;
use crate::bridge::wire::{
    Accepted, Action, Created, DryRunView, ExecutionList, ExecutionView, Health, HealthStatus,
    InterruptBody, InterruptedAll, NoOptions, SemaphoreList, SummaryView,
};

/// What every handler reads.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) runtime: Runtime,
    /// A token is configured: the document says which operations need it.
    pub(crate) token: bool,
    /// Where `GET /metrics` renders from; `None`: metrics are not enabled.
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// When the bridge's own server begins to stop (event streams end then).
    pub(crate) closing: crate::bridge::events::Closing,
    /// The log of events every stream reads.
    pub(crate) log: crate::bridge::events::SharedLog,
}

/// An execution id as the bridge writes them (26 characters of Crockford base32, upper
/// case): other spellings that would decode to the same id are not its name.
fn parse_id(text: &str) -> Result<ExecutionId, BridgeError> {
    text.parse::<ExecutionId>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| BridgeError::NotFound {
            code: "unknown_execution",
            message: format!("unknown execution `{}`", cut(text, 64)),
        })
}

/// Health of the runtime.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "get_health",
    tag = "runtime",
    responses((status = 200, body = Health, description = "the runtime's health"))
)]
pub(crate) async fn health(State(s): State<AppState>) -> Result<Json<Health>, BridgeError> {
    // Counted from the store's count and what the runtime holds in memory: a health
    // check never reads every stored execution.
    let counts = s.runtime.counts().await?;
    let corrupt = counts.corrupt;
    let paused = counts.paused;
    let stopped_by_store = counts.stopped_by_store;
    let mut reasons = Vec::new();
    if let Some(failure) = s.runtime.store_failure() {
        reasons.push(format!(
            "the store failed {} commit(s) in a row since {}: {}",
            failure.failed_commits,
            humantime::format_rfc3339_millis(failure.since),
            failure.reason
        ));
    }
    if stopped_by_store > 0 {
        reasons.push(format!(
            "{stopped_by_store} execution(s) stopped by a failed store write, until resumed"
        ));
    }
    if corrupt > 0 {
        reasons.push(format!(
            "{corrupt} execution(s) have records that do not decode"
        ));
    }
    // Paused on request is an operator's choice, not a fault; paused by the restart
    // intensity comes with its reason.
    let failing = counts.paused_by_runtime;
    if failing > 0 {
        reasons.push(format!(
            "{failing} execution(s) paused because their actor kept failing"
        ));
    }
    let check = s.runtime.last_health();
    if let Some(check) = &check {
        reasons.extend(check.warnings.iter().cloned());
        for module in check
            .modules
            .iter()
            .filter(|m| m.result == tend_actors::Heard::Failed)
        {
            reasons.push(format!(
                "module {} reports a failure: {}",
                module.module,
                module.error.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    Ok(Json(Health {
        check,
        status: if reasons.is_empty() {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        },
        reasons,
        executions: usize::try_from(counts.stored).unwrap_or(usize::MAX),
        running: counts.running,
        corrupt,
        paused,
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /executions`'s query: each key at most once; others (a `token`, a cache buster)
/// are left alone.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListParams {
    status: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The longest `q` a listing takes.
const MAX_SEARCH: usize = 128;

/// Executions, newest first, a page at a time: `?status=` keeps one status, `?q=` those
/// whose name or id contains the text (ignoring case), `?limit=`
/// (default 100, at most 1000) sets the page's size, `?cursor=` (a page's `next`) starts
/// after the page it came with.
#[utoipa::path(
    get,
    path = "/executions",
    operation_id = "list_executions",
    tag = "executions",
    params(
        ("status" = Option<ExecutionStatus>, Query, description = "keep only executions with this status"),
        ("q" = Option<String>, Query, max_length = 128, description = "keep only executions whose name or id contains this text, ignoring case (at most 128 characters); a filtered page may be short and still have a `next`"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "at most this many (1 to 1000; default 100)"),
        ("cursor" = Option<String>, Query, description = "the `next` of the page before")
    ),
    responses(
        (status = 200, body = ExecutionList, description = "a page of executions, newest first"),
        (status = 400, body = ErrorBody, description = "a query the listing does not take (`invalid_status`, `invalid_query`, `invalid_limit`, `invalid_cursor`)")
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    QueryOf(params): QueryOf<ListParams>,
) -> Result<Json<ExecutionList>, BridgeError> {
    let mut wanted = tend_actors::ListQuery::default();
    if let Some(value) = &params.status {
        let status: ExecutionStatus =
            serde_json::from_value(serde_json::Value::String(value.to_owned())).map_err(|_| {
                BridgeError::BadRequest {
                    code: "invalid_status",
                    message: format!(
                        "unknown status `{}`; use running, interrupted, completed, failed, cancelled, corrupt or paused",
                        cut(value, 64)
                    ),
                }
            })?;
        wanted.status = Some(status);
    }
    if let Some(value) = params.q.filter(|q| !q.is_empty()) {
        if value.chars().count() > MAX_SEARCH {
            return Err(BridgeError::BadRequest {
                code: "invalid_query",
                message: format!(
                    "`q` `{}` is too long: at most {MAX_SEARCH} characters",
                    cut(&value, 64)
                ),
            });
        }
        wanted.search = Some(value);
    }
    if let Some(value) = &params.limit {
        wanted.limit = value
            .parse()
            .ok()
            .filter(|n| (1..=tend_actors::model::MAX_PAGE).contains(n))
            .ok_or_else(|| BridgeError::BadRequest {
                code: "invalid_limit",
                message: format!(
                    "invalid `limit` `{}`: a number from 1 to 1000",
                    cut(value, 64)
                ),
            })?;
    }
    if let Some(value) = &params.cursor {
        wanted.before = Some(value.parse().map_err(|_| BridgeError::BadRequest {
            code: "invalid_cursor",
            message: format!(
                "invalid `cursor` `{}`: pass a page's `next`",
                cut(value, 64)
            ),
        })?);
    }
    let page = s.runtime.list_page(wanted).await?;
    Ok(Json(ExecutionList {
        executions: page.executions.into_iter().map(SummaryView::from).collect(),
        next: page.next.map(|id| id.to_string()),
    }))
}

/// `POST /executions`'s query: `dry_run` only.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitParams {
    dry_run: Option<String>,
}

/// Validate a plan and start it; with `?dry_run=true`, validate it and run only each
/// item's `check`, reporting what a run would change (nothing applied or written).
///
/// Submit if absent: with an idempotency key (the plan's `key`, or an `Idempotency-Key`
/// header, at most 256 bytes), a key an execution already has answers 200 with that
/// execution's id when the plan is the same, and 409 `key_conflict` when it is another;
/// 201 only for a new execution. The key stays with its execution, across restarts and
/// crashes, until the execution is deleted or pruned.
#[utoipa::path(
    post,
    path = "/executions",
    operation_id = "submit_execution",
    tag = "executions",
    request_body(content = Plan, description = "the plan to run"),
    params(
        ("dry_run" = Option<bool>, Query, description = "check every item and report what would change; start nothing"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 256, description = "submit only if no execution has this key (the plan's `key`, which it must equal if both are given); at most 256 bytes")
    ),
    responses(
        (status = 201, body = Created, description = "a new execution; `Location` names it", headers(("location" = String, description = "`/executions/{id}`"))),
        // Either body: the document names both (see `openapi::document`).
        (status = 200, body = DryRunView, description = "the execution that already has this idempotency key (same plan), a `Created`; or, with `dry_run`, a `DryRunView`"),
        (status = 409, body = ErrorBody, description = "`key_conflict`: the idempotency key belongs to an execution of another plan"),
        (status = 400, body = ErrorBody, description = "malformed JSON, unknown fields, or an invalid plan; `code` names the error kind"),
        (status = 413, body = ErrorBody, description = "the body is over 1 MiB (`payload_too_large`)")
    )
)]
pub(crate) async fn submit(
    State(s): State<AppState>,
    QueryOf(SubmitParams { dry_run }): QueryOf<SubmitParams>,
    headers: axum::http::HeaderMap,
    JsonBody(mut plan): JsonBody<Plan>,
) -> Result<axum::response::Response, BridgeError> {
    if let Some(key) = idempotency_key(&headers)? {
        match &plan.key {
            Some(own) if *own != key => {
                return Err(BridgeError::BadRequest {
                    code: "key_mismatch",
                    message: format!(
                        "the Idempotency-Key header `{}` and the plan's key `{}` differ; give one, or the same",
                        cut(&key, 64),
                        cut(own, 64)
                    ),
                });
            }
            _ => plan.key = Some(key),
        }
    }
    let dry_run = match dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(BridgeError::BadRequest {
                code: "invalid_query",
                message: format!("invalid `dry_run={}`: true or false", cut(other, 64)),
            });
        }
    };
    if dry_run {
        let report = s.runtime.dry_run(&plan).await?;
        return Ok(Json(DryRunView::from(report)).into_response());
    }
    let submitted = s.runtime.submit_if_absent(plan).await?;
    let id = submitted.id;
    let location = format!("/executions/{id}");
    let status = if submitted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(Created { id: id.to_string() }),
    )
        .into_response())
}

/// The request's `Idempotency-Key`, if it has one; refused when given twice or not text.
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, BridgeError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| BridgeError::BadRequest {
        code: "invalid_key",
        message: format!("Idempotency-Key {why}"),
    };
    if values.next().is_some() {
        return Err(bad("is given more than once"));
    }
    let key = value
        .to_str()
        .map_err(|_| bad("is not visible ASCII text"))?;
    if key.len() > tend_actors::model::MAX_KEY_BYTES {
        return Err(bad("is longer than 256 bytes"));
    }
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    Ok(Some(key.to_owned()))
}

/// One execution with every item.
#[utoipa::path(
    get,
    path = "/executions/{id}",
    operation_id = "get_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    responses(
        (status = 200, body = ExecutionView, description = "the execution with every item"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "its records do not decode (`corrupt`)")
    )
)]
pub(crate) async fn status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionView>, BridgeError> {
    let report = s.runtime.status(parse_id(&id)?).await?;
    Ok(Json(report.into()))
}

/// The `202` answer of a request about execution `id` that it has taken: what it is doing.
fn accepted(id: ExecutionId, action: Action) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: id.to_string(),
            action,
        }),
    )
}

/// Interrupt one execution (body optional; default `finish_current`).
#[utoipa::path(
    post,
    path = "/executions/{id}/interrupt",
    operation_id = "interrupt_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    request_body(content = InterruptBody, description = "`{}` for the default strategy, `finish_current`"),
    responses(
        (status = 202, body = Accepted, description = "told to stop; it is `interrupted` once it has"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it is not running (`invalid_state`), or is corrupt (`corrupt`)")
    )
)]
pub(crate) async fn interrupt(
    State(s): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<InterruptBody>,
) -> Result<impl IntoResponse, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.interrupt(id, body.strategy).await?;
    Ok(accepted(id, Action::Interrupting))
}

/// Pause one execution (body optional; default `finish_current`): nothing new starts, and
/// once running items have ended (or stopped, as the strategy says) it is `paused`,
/// durably, until resumed. 409 when it is not running (paused already, say).
#[utoipa::path(
    post,
    path = "/executions/{id}/pause",
    operation_id = "pause_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    request_body(content = InterruptBody, description = "`{}` for the default strategy, `finish_current`"),
    responses(
        (status = 202, body = Accepted, description = "told to pause; it is `paused` once quiesced"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it is not running (`invalid_state`), or is corrupt (`corrupt`)")
    )
)]
pub(crate) async fn pause(
    State(s): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<InterruptBody>,
) -> Result<impl IntoResponse, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.pause(id, body.strategy).await?;
    Ok(accepted(id, Action::Pausing))
}

/// Cancel one execution for good (body optional; default `finish_current`): a running one
/// stops as the strategy says and ends `cancelled` once nothing runs; an interrupted or
/// paused one is `cancelled` at once. Answered once the cancel is durable. 409 when it has
/// finished already.
#[utoipa::path(
    post,
    path = "/executions/{id}/cancel",
    operation_id = "cancel_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    request_body(content = InterruptBody, description = "`{}` for the default strategy, `finish_current`"),
    responses(
        (status = 202, body = Accepted, description = "cancelled once durable; a running one ends `cancelled` once nothing runs"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it has finished already (`invalid_state`), or is corrupt (`corrupt`)")
    )
)]
pub(crate) async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<InterruptBody>,
) -> Result<impl IntoResponse, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.cancel(id, body.strategy).await?;
    Ok(accepted(id, Action::Cancelling))
}

/// Resume an interrupted or paused execution.
#[utoipa::path(
    post,
    path = "/executions/{id}/resume",
    operation_id = "resume_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    request_body(content = NoOptions, description = "`{}`"),
    responses(
        (status = 202, body = Accepted, description = "running again"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it is neither interrupted nor paused (`invalid_state`), or is corrupt (`corrupt`)")
    )
)]
pub(crate) async fn resume(
    State(s): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(NoOptions {}): OptionalJsonBody<NoOptions>,
) -> Result<impl IntoResponse, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.resume(id).await?;
    Ok(accepted(id, Action::Resuming))
}

/// Delete a finished (completed, failed, cancelled or corrupt) execution with all its
/// records.
#[utoipa::path(
    delete,
    path = "/executions/{id}",
    operation_id = "delete_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    responses(
        (status = 204, description = "deleted, with all its records"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it has not finished (`invalid_state`)")
    )
)]
pub(crate) async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a failed execution's failed and skipped items again, keeping what is done.
#[utoipa::path(
    post,
    path = "/executions/{id}/retry",
    operation_id = "retry_execution",
    tag = "executions",
    params(("id" = String, Path, description = "the execution's id")),
    request_body(content = NoOptions, description = "`{}`"),
    responses(
        (status = 202, body = Accepted, description = "its failed and skipped items run again"),
        (status = 404, body = ErrorBody, description = "no such execution (`unknown_execution`)"),
        (status = 409, body = ErrorBody, description = "it has not failed (`invalid_state`), or is corrupt (`corrupt`)")
    )
)]
pub(crate) async fn retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(NoOptions {}): OptionalJsonBody<NoOptions>,
) -> Result<impl IntoResponse, BridgeError> {
    let id = parse_id(&id)?;
    s.runtime.retry_failed(id).await?;
    Ok(accepted(id, Action::Retrying))
}

/// Interrupt every running execution (body optional; default `finish_current`).
#[utoipa::path(
    post,
    path = "/interrupt",
    operation_id = "interrupt_all",
    tag = "runtime",
    request_body(content = InterruptBody, description = "`{}` for the default strategy, `finish_current`"),
    responses((status = 202, body = InterruptedAll, description = "the executions told to stop"))
)]
pub(crate) async fn interrupt_all(
    State(s): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<InterruptBody>,
) -> Result<impl IntoResponse, BridgeError> {
    let ids = s.runtime.interrupt_all(body.strategy).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(InterruptedAll {
            ids: ids.iter().map(ToString::to_string).collect(),
        }),
    ))
}

/// Server-sent events: execution and item status changes, item progress, each
/// execution's stop at a shutdown and lifecycle events, as JSON with a `type` field; the
/// SSE event name is the same type. Every event has an `id:`; a client that reconnects
/// with `Last-Event-ID` gets the events it missed while the bridge still keeps them (the
/// last 1,024), or else a `reset` event: read the state again, the events after it are
/// all that is new. A client that connects afresh (or is reset) first gets the last
/// `node_startup_completed` and `health_check` (and a `node_shutdown` under way) again,
/// marked `"replayed": true`. A shutdown's events are sent to its end; the last event,
/// `end`, says why the stream ended (`runtime_stopped`, `bridge_stopped`,
/// `shutdown_requested`).
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "events",
    tag = "runtime",
    params(("Last-Event-ID" = Option<String>, Header, description = "the `id` of the last event received on an earlier connection: the stream goes on after it, or begins with `reset`")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "events: execution, item, progress, execution_stopped, lifecycle, reset, then end; each with an `id`"),
        (status = 503, body = ErrorBody, description = "`too_many_event_streams`: every event-stream place is taken (see `Retry-After`), or the runtime is shutting down")
    )
)]
pub(crate) async fn events(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, BridgeError> {
    // An id that is not text is no id of ours: the stream begins with `reset`.
    let last_event_id = headers
        .get("last-event-id")
        .map(|id| id.to_str().unwrap_or("\u{fffd}"));
    crate::bridge::events::follow(&s, last_event_id).await
}

/// The live actor tree.
#[utoipa::path(
    get,
    path = "/tree",
    operation_id = "get_tree",
    tag = "runtime",
    responses((status = 200, body = ActorNode, description = "the live actor tree"))
)]
pub(crate) async fn tree(State(s): State<AppState>) -> Result<Json<ActorNode>, BridgeError> {
    Ok(Json(s.runtime.tree().await?))
}

/// Every semaphore held or waited for, by tag, with its holders and waiters (first in
/// line first).
#[utoipa::path(
    get,
    path = "/semaphores",
    operation_id = "get_semaphores",
    tag = "runtime",
    responses((status = 200, body = SemaphoreList, description = "every semaphore held or waited for"))
)]
pub(crate) async fn semaphores(State(s): State<AppState>) -> Json<SemaphoreList> {
    Json(SemaphoreList {
        semaphores: s.runtime.semaphores().into_iter().map(Into::into).collect(),
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "runtime",
    responses((status = 200, body = Object, content_type = "application/json", description = "this document"))
)]
pub(crate) async fn openapi(
    State(s): State<AppState>,
    OriginalUri(original): OriginalUri,
    uri: axum::http::Uri,
) -> Result<Json<serde_json::Value>, BridgeError> {
    // Mounted under a prefix (`nest_service` or `nest`), the request's path is the prefix and then
    // this route's own: the document names the prefix as its server, so the paths it
    // lists resolve where they are served.
    let prefix = original
        .path()
        .strip_suffix(uri.path())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let doc = document(s.token, prefix)
        .map_err(|e| BridgeError::Internal(format!("the OpenAPI document: {e}")))?;
    Ok(Json(doc))
}

/// The dashboard page.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard",
    tag = "runtime",
    responses((status = 200, body = String, content_type = "text/html", description = "the dashboard page"))
)]
pub(crate) async fn dashboard() -> impl IntoResponse {
    // Only the page's own script runs: it carries a fresh nonce, and the policy allows
    // nothing else (no other script, frame, form target or origin to connect to).
    let nonce = nonce();
    let page =
        include_str!("dashboard.html").replace("<script>", &format!("<script nonce=\"{nonce}\">"));
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    ([(header::CONTENT_SECURITY_POLICY, policy)], Html(page))
}

/// 128 bits no one outside the process can guess: SipHash under the process's random
/// keys (`RandomState`), over a counter and the clock.
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (0..2u64)
        .map(|half| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(half);
            hasher.write_u64(count);
            hasher.write_u128(time);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

pub(crate) async fn not_found() -> BridgeError {
    BridgeError::NotFound {
        code: "not_found",
        message: "no such route; see /openapi.json".to_owned(),
    }
}

pub(crate) async fn method_not_allowed() -> BridgeError {
    BridgeError::MethodNotAllowed
}
