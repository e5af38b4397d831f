//! Routes about the runtime's own life: maintenance, the orphan sweep, shutting it down.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tend_actors::{
    MaintenanceOperation, MaintenanceReport, MaintenanceRequest, MaintenanceWork, ShutdownReason,
    ShutdownReport, Urgency,
};
use utoipa::ToSchema;

use crate::bridge::body::OptionalJsonBody;
use crate::bridge::error::{BridgeError, ErrorBody, cut};
use crate::bridge::routes::AppState;

/// The optional body of `POST /shutdown`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShutdownBody {
    /// The deadline, a humantime string ("30s"); default the runtime's
    /// `shutdown_timeout`.
    #[serde(default)]
    #[schema(example = "30s")]
    pub(crate) deadline: Option<String>,
}

/// Shut the runtime down within `deadline` and answer with the report, once done. Only a
/// bridge with a token offers it: without one any local process could stop the host.
/// Event streams carry the shutdown to its end (`node_shutdown_completed`, then `end`);
/// later requests are answered 503.
#[utoipa::path(
    post,
    path = "/shutdown",
    operation_id = "shutdown",
    tag = "runtime",
    request_body(content = ShutdownBody, description = "`{}` for the runtime's `shutdown_timeout`"),
    responses(
        (status = 200, body = ShutdownReport, description = "the shutdown's report, once done"),
        (status = 400, body = ErrorBody, description = "a malformed body, or a deadline that is not above 0s and at most 24h (`invalid_duration`)"),
        (status = 403, body = ErrorBody, description = "this bridge has no token, so it does not offer shutdown (`token_required`); or another origin's page, or an unknown host")
    )
)]
pub(crate) async fn shutdown(
    State(s): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<ShutdownBody>,
) -> Result<Json<ShutdownReport>, BridgeError> {
    if !s.token {
        return Err(BridgeError::Forbidden {
            code: "token_required",
            message: "POST /shutdown is only served by a bridge with a token (with_token, or TEND_BRIDGE_TOKEN)".to_owned(),
        });
    }
    let deadline = match body.deadline {
        None => s.runtime.shutdown_timeout(),
        Some(text) => parse_deadline(&text)?,
    };
    Ok(Json(
        s.runtime.shutdown_with(ShutdownReason::Rpc, deadline).await,
    ))
}

/// The optional body of `POST /maintenance`: the seed's `DataMaintenance`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceBody {
    /// `flush` (the modules write what is pending, the store commits what it holds),
    /// `cleanup` (the default: finished executions past the retention are deleted) or
    /// `both`.
    #[serde(default)]
    pub(crate) operation: Option<MaintenanceOperation>,
    /// `low`, `medium` (the default) or `high`: the modules get `lifecycle_timeout` to
    /// answer, and the report carries their answers.
    #[serde(default)]
    pub(crate) urgency: Option<Urgency>,
    /// For a cleanup (or both): delete finished executions that ended longer ago than
    /// this, a humantime string ("7d"), instead of the configured `retention`. Refused
    /// with `operation: flush`, which deletes nothing.
    #[serde(default)]
    #[schema(example = "7d")]
    pub(crate) target_age: Option<String>,
}

/// Run maintenance now (as the Janitor does on its interval, by default a cleanup of
/// medium urgency) and answer with what it did.
#[utoipa::path(
    post,
    path = "/maintenance",
    operation_id = "run_maintenance",
    tag = "runtime",
    request_body(content = MaintenanceBody, description = "`{}` for the configured `retention`"),
    responses(
        (status = 200, body = MaintenanceReport, description = "what the run did"),
        (status = 400, body = ErrorBody, description = "a malformed body, or a `target_age` that is not a duration (`invalid_duration`)")
    )
)]
pub(crate) async fn maintenance(
    State(s): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<MaintenanceBody>,
) -> Result<Json<MaintenanceReport>, BridgeError> {
    let target_age = body
        .target_age
        .as_deref()
        .map(|text| parse_duration("target_age", text))
        .transpose()?;
    let work = match (
        body.operation.unwrap_or(MaintenanceOperation::Cleanup),
        target_age,
    ) {
        (MaintenanceOperation::Flush, Some(_)) => {
            return Err(BridgeError::BadRequest {
                code: "invalid_body",
                message: "`target_age` belongs to a cleanup: with `operation: flush` nothing is deleted; use `cleanup` or `both`".to_owned(),
            });
        }
        (MaintenanceOperation::Flush, None) => MaintenanceWork::Flush,
        (MaintenanceOperation::Cleanup, target_age) => MaintenanceWork::Cleanup { target_age },
        (MaintenanceOperation::Both, target_age) => MaintenanceWork::Both { target_age },
    };
    let request = MaintenanceRequest {
        work,
        urgency: body.urgency.unwrap_or(Urgency::Medium),
    };
    Ok(Json(s.runtime.maintain_with(request).await?))
}

/// The optional body of `POST /orphans/sweep`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SweepBody {
    /// Keep unreferenced artifacts younger than this, a humantime string ("1h"; "0s"
    /// keeps none), instead of the configured `orphan_protection_time`.
    #[serde(default)]
    #[schema(example = "1h")]
    pub(crate) protection: Option<String>,
}

/// Sweep orphan artifacts now and answer with what the sweep did.
#[utoipa::path(
    post,
    path = "/orphans/sweep",
    operation_id = "sweep_orphans",
    tag = "runtime",
    request_body(content = SweepBody, description = "`{}` for the configured `orphan_protection_time`"),
    responses(
        (status = 200, body = tend_actors::janitor::SweepReport, description = "what the sweep did"),
        (status = 400, body = ErrorBody, description = "a malformed body, or a `protection` that is not a duration (`invalid_duration`)")
    )
)]
pub(crate) async fn sweep(
    State(s): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<SweepBody>,
) -> Result<Json<tend_actors::janitor::SweepReport>, BridgeError> {
    let protection = body
        .protection
        .map(|text| parse_duration("protection", &text))
        .transpose()?;
    Ok(Json(s.runtime.sweep_orphans(protection).await?))
}

fn parse_deadline(text: &str) -> Result<Duration, BridgeError> {
    let deadline = parse_duration("deadline", text)?;
    if deadline.is_zero() || deadline > crate::runtime::MAX_SHUTDOWN_DEADLINE {
        return Err(BridgeError::BadRequest {
            code: "invalid_duration",
            message: format!(
                "invalid `deadline` `{}`: must be above 0s and at most 24h",
                cut(text, 64)
            ),
        });
    }
    Ok(deadline)
}

fn parse_duration(field: &str, text: &str) -> Result<Duration, BridgeError> {
    humantime::parse_duration(text).map_err(|e| BridgeError::BadRequest {
        code: "invalid_duration",
        message: format!("invalid `{field}` `{}`: {e}", cut(text, 64)),
    })
}
