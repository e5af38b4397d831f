//! Query strings, read by axum's `Query` (percent-decoded, one value per key) into a typed
//! struct; one that does not fit is a 400 `invalid_query` naming what is wrong.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::bridge::error::{BridgeError, cut};

/// The query string as `T`.
#[derive(Debug)]
pub(crate) struct QueryOf<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for QueryOf<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BridgeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BridgeError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryOf(value)),
            Err(rejection) => Err(BridgeError::BadRequest {
                code: "invalid_query",
                message: cut(&rejection.body_text(), 200),
            }),
        }
    }
}
