//! A JSON body extractor whose rejections are `BridgeError`s: malformed JSON, unknown
//! fields and wrong types are 400 naming the problem, a body over the limit is 413. The
//! content type is checked before, for every POST (see `guard`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::bridge::BODY_LIMIT;
use crate::bridge::error::BridgeError;

/// A required JSON body.
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A JSON body that may be absent (empty); `T::default()` then.
pub(crate) struct OptionalJsonBody<T>(pub(crate) T);

async fn bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BridgeError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
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

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BridgeError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BridgeError::BadRequest {
            code: "invalid_body",
            message: format!("the body does not fit: {e}"),
        },
        _ => BridgeError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid JSON: {e}"),
        },
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = BridgeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
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

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = BridgeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse(&bytes).map(OptionalJsonBody)
    }
}
