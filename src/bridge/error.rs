//! `BridgeError`: why the bridge could not start, or why a request was refused. As a
//! response it is `{"error": {"code", "message"}}` with the matching status; internal
//! failures are logged and answered without their details.

use std::net::SocketAddr;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tend_actors::RuntimeError;

/// A bridge failure: at start (bind) or for one request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the bridge on non-loopback address {addr} without a token: set --token or TEND_BRIDGE_TOKEN, or bind 127.0.0.1"
    )]
    InsecureBind {
        /// The address.
        addr: SocketAddr,
    },
    /// The token is empty.
    #[error("the bridge token is empty")]
    EmptyToken,
    /// A limit of [`BridgeLimits`](crate::bridge::BridgeLimits) is zero.
    #[error(
        "bridge limits must be above zero: max_connections, max_event_streams, header_timeout, body_timeout and write_timeout (a zero drain_timeout is allowed)"
    )]
    BadLimits,
    /// The token has characters an `Authorization` header cannot carry.
    #[error(
        "the bridge token must be visible ASCII characters only (no spaces, no other characters), so that a header can carry it"
    )]
    BadToken,
    /// The address could not be bound.
    #[error("cannot bind the bridge to {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server stopped with an error.
    #[error("the bridge server failed: {0}")]
    Serve(String),
    /// The Prometheus recorder could not be installed (the process has another recorder).
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Metrics(String),
    /// The request is malformed or names something invalid.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable kind, e.g. `malformed_json`, `cycle`.
        code: &'static str,
        /// What is wrong, naming the culprit.
        message: String,
    },
    /// A token is configured and the request does not carry it.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No such execution or route.
    #[error("{message}")]
    NotFound {
        /// Machine-readable kind.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// The request comes from somewhere the bridge does not answer: a host name it does
    /// not know, or another origin's page.
    #[error("{message}")]
    Forbidden {
        /// Machine-readable kind: `host_not_allowed`, `cross_origin`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// A POST without `Content-Type: application/json`.
    #[error(
        "a POST needs `Content-Type: application/json` (with a body or without), so that no other web page can send it"
    )]
    UnsupportedMediaType,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The execution's state forbids the action.
    #[error("{message}")]
    Conflict {
        /// Machine-readable kind.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The body is larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's body did not arrive in time.
    #[error("the request body did not arrive within {}", humantime::format_duration(*limit))]
    RequestTimeout {
        /// The body timeout.
        limit: std::time::Duration,
    },
    /// The runtime is shutting down.
    #[error("the runtime is shutting down")]
    Unavailable,
    /// The bridge is at one of its limits (see
    /// [`BridgeLimits`](crate::bridge::BridgeLimits)); the answer says `Retry-After`.
    #[error("{message}")]
    Busy {
        /// Machine-readable kind: `too_many_event_streams`.
        code: &'static str,
        /// Which limit, and when to try again.
        message: String,
    },
    /// Something failed inside; details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BridgeError {
    /// The HTTP status of this error as a response.
    pub fn status(&self) -> StatusCode {
        match self {
            BridgeError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            BridgeError::Unauthorized => StatusCode::UNAUTHORIZED,
            BridgeError::NotFound { .. } => StatusCode::NOT_FOUND,
            BridgeError::Forbidden { .. } => StatusCode::FORBIDDEN,
            BridgeError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BridgeError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            BridgeError::Conflict { .. } => StatusCode::CONFLICT,
            BridgeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BridgeError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            BridgeError::Unavailable | BridgeError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of this error as a response.
    pub fn code(&self) -> &'static str {
        match self {
            BridgeError::BadRequest { code, .. }
            | BridgeError::NotFound { code, .. }
            | BridgeError::Conflict { code, .. }
            | BridgeError::Forbidden { code, .. }
            | BridgeError::Busy { code, .. } => code,
            BridgeError::UnsupportedMediaType => "unsupported_media_type",
            BridgeError::Unauthorized => "unauthorized",
            BridgeError::MethodNotAllowed => "method_not_allowed",
            BridgeError::PayloadTooLarge { .. } => "payload_too_large",
            BridgeError::RequestTimeout { .. } => "request_timeout",
            BridgeError::Unavailable => "shutting_down",
            _ => "internal",
        }
    }
}

/// Text from a request quoted in an error message, cut to `max` characters.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}...", text.chars().take(max).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// The error body on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The error's code and message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Machine-readable kind, e.g. `cycle`, `unknown_execution`.
    pub(crate) code: String,
    /// What went wrong, naming the culprit.
    pub(crate) message: String,
}

impl IntoResponse for BridgeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "bridge request failed");
            "internal error; see the server's log".to_owned()
        } else {
            // The client's mistake (or a refusal by design): not an error of the server's.
            tracing::debug!(code = self.code(), error = %self, "request refused");
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
            },
        };
        let retry = matches!(self, BridgeError::Busy { .. });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if retry {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::bridge::serve::RETRY_AFTER_SECS),
            );
        }
        response
    }
}

impl From<RuntimeError> for BridgeError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Plan(plan) => BridgeError::BadRequest {
                code: plan.code(),
                message: plan.to_string(),
            },
            RuntimeError::UnknownExecution(_) => BridgeError::NotFound {
                code: "unknown_execution",
                message: e.to_string(),
            },
            RuntimeError::InvalidState { .. } => BridgeError::Conflict {
                code: "invalid_state",
                message: e.to_string(),
            },
            RuntimeError::Corrupt { .. } => BridgeError::Conflict {
                code: "corrupt",
                message: e.to_string(),
            },
            RuntimeError::KeyConflict { .. } => BridgeError::Conflict {
                code: "key_conflict",
                message: e.to_string(),
            },
            RuntimeError::ShuttingDown => BridgeError::Unavailable,
            other => BridgeError::Internal(other.to_string()),
        }
    }
}
