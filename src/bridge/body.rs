//! A JSON body extractor whose rejections are `BridgeError`s: malformed JSON, a key
//! repeated in an object, unknown fields and wrong types are 400 naming the problem, a body
//! over the limit is 413 (at once when its `Content-Length` says so), one not typed
//! `application/json` 415.

mod unique_keys;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tend_actors::Plan;

use crate::bridge::BODY_LIMIT;
use crate::bridge::error::{BridgeError, cut};
use crate::bridge::guard::is_json;
use crate::bridge::wire::InterruptBody;

/// A required JSON body.
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A JSON body that may be absent (empty); `T::default()` then.
pub(crate) struct OptionalJsonBody<T>(pub(crate) T);

/// How long a request's body may take to arrive, as the router was built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub(crate) std::time::Duration);

async fn bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BridgeError> {
    // A body announced over the limit is refused before any of it is read: waiting for it
    // would only end in a 413 too, or in a 408 if the client sends it slowly.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(BridgeError::PayloadTooLarge { limit: BODY_LIMIT });
    }
    let limit = req
        .extensions()
        .get::<BodyTimeout>()
        .map_or(crate::bridge::BridgeLimits::default().body_timeout, |t| t.0);
    let read = tokio::time::timeout(limit, Bytes::from_request(req, state))
        .await
        .map_err(|_| BridgeError::RequestTimeout { limit })?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BridgeError::PayloadTooLarge { limit: BODY_LIMIT }
        } else {
            BridgeError::BadRequest {
                code: "unreadable_body",
                message: rejection.body_text(),
            }
        }
    })
}

/// Where a body must have JSON objects: serde's derive also takes an array for a struct
/// (`["name", []]` as a plan), which the bridge refuses.
#[derive(Debug)]
pub(crate) enum Shape {
    /// An object (never an array), with these fields shaped so when present.
    Struct(&'static [(&'static str, Shape)]),
    /// An array of these (when it is an array at all).
    ArrayOf(&'static Shape),
}

/// A body type and where it must have objects.
pub(crate) trait Strict {
    const SHAPE: Shape;
}

impl Strict for Plan {
    const SHAPE: Shape = Shape::Struct(&[(
        "blocks",
        Shape::ArrayOf(&Shape::Struct(&[(
            "items",
            Shape::ArrayOf(&Shape::Struct(&[])),
        )])),
    )]);
}

impl Strict for InterruptBody {
    const SHAPE: Shape = Shape::Struct(&[(
        "strategy",
        Shape::Struct(&[("immediate", Shape::Struct(&[]))]),
    )]);
}

impl Strict for crate::bridge::lifecycle::ShutdownBody {
    const SHAPE: Shape = Shape::Struct(&[]);
}

impl Strict for crate::bridge::lifecycle::SweepBody {
    const SHAPE: Shape = Shape::Struct(&[]);
}

impl Strict for crate::bridge::lifecycle::MaintenanceBody {
    const SHAPE: Shape = Shape::Struct(&[]);
}

/// The path of the first array where `shape` wants an object.
fn array_for_object(value: &Value, shape: &Shape, path: &mut String) -> Option<String> {
    match (shape, value) {
        (Shape::Struct(_), Value::Array(_)) => Some(if path.is_empty() {
            "the body".to_owned()
        } else {
            format!("`{path}`")
        }),
        (Shape::Struct(fields), Value::Object(map)) => fields.iter().find_map(|(name, shape)| {
            let value = map.get(*name)?;
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            let found = array_for_object(value, shape, path);
            path.truncate(len);
            found
        }),
        (Shape::ArrayOf(shape), Value::Array(items)) => {
            items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = array_for_object(item, shape, path);
                path.truncate(len);
                found
            })
        }
        _ => None,
    }
}

fn parse<T: DeserializeOwned + Strict>(bytes: &[u8]) -> Result<T, BridgeError> {
    let invalid = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => BridgeError::BadRequest {
            code: "invalid_body",
            message: cut(&format!("the body does not fit: {e}"), 300),
        },
        _ => BridgeError::BadRequest {
            code: "malformed_json",
            message: cut(&format!("the body is not valid JSON: {e}"), 300),
        },
    };
    let value: Value = unique_keys::read(bytes).map_err(|e| match e {
        unique_keys::Unreadable::Json(e) => invalid(e),
        unique_keys::Unreadable::DuplicateKey { key, at } => BridgeError::BadRequest {
            code: "duplicate_key",
            message: if at.is_empty() {
                format!("the body has the key `{key}` twice; each key may appear once")
            } else {
                format!("`{at}` has the key `{key}` twice; each key may appear once")
            },
        },
    })?;
    if let Some(at) = array_for_object(&value, &T::SHAPE, &mut String::new()) {
        return Err(BridgeError::BadRequest {
            code: "invalid_body",
            message: format!("{at} must be a JSON object, not an array"),
        });
    }
    serde_json::from_value(value).map_err(invalid)
}

impl<T: DeserializeOwned + Strict, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = BridgeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(BridgeError::UnsupportedMediaType);
        }
        let bytes = bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(BridgeError::BadRequest {
                code: "malformed_json",
                message: "the body is empty; a JSON object is required".to_owned(),
            });
        }
        parse(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned + Default + Strict, S: Send + Sync> FromRequest<S>
    for OptionalJsonBody<T>
{
    type Rejection = BridgeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(BridgeError::UnsupportedMediaType);
        }
        let bytes = bytes(req, state).await?;
        // Absent: no bytes at all. Anything else is the JSON object `T` (whitespace alone
        // is not JSON, and `null` is not an object).
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse(&bytes).map(OptionalJsonBody)
    }
}
