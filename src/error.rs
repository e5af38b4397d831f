//! The umbrella error of the `tend` crate, for callers that want one type.

use tend_actors::{PlanError, RuntimeError, StoreError};

use crate::config::ConfigError;

/// Any error tend returns.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the runtime's requests.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// From reading the configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        Error::Runtime(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Runtime(e.into())
    }
}
