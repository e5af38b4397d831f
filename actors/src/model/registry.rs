//! The registry: which Rust type implements each item kind.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::PlanError;
use crate::model::params::ObjectParams;
use crate::model::{DynItem, Item};

type Decode = fn(&serde_json::Value) -> Decoded;

fn decode<T: Item>(params: &serde_json::Value) -> Decoded {
    let item: T = serde::Deserialize::deserialize(ObjectParams(params))?;
    Ok(Arc::new(item))
}

/// An item decoded from its params, or why not.
pub(crate) type Decoded = Result<Arc<dyn DynItem>, serde_json::Error>;

/// Maps each [`Item::KIND`] to its type, so plans (also plans read back from the store or
/// submitted as JSON) can be decoded into items.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<&'static str, Kind>,
}

/// A registered kind: its type, its decoder and its name shared by every item of it (a
/// compiled plan's items point at it instead of each copying the name).
#[derive(Clone)]
struct Kind {
    type_id: TypeId,
    decode: Decode,
    name: Arc<str>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `T` under `T::KIND`. Registering a second type under the same kind is an
    /// error; registering the same type twice is harmless.
    pub fn register<T: Item>(&mut self) -> Result<&mut Self, PlanError> {
        let type_id = TypeId::of::<T>();
        match self.kinds.get(T::KIND) {
            Some(existing) if existing.type_id != type_id => Err(PlanError::DuplicateKind {
                kind: T::KIND.to_owned(),
            }),
            Some(_) => Ok(self),
            None => {
                self.kinds.insert(
                    T::KIND,
                    Kind {
                        type_id,
                        decode: decode::<T>,
                        name: Arc::from(T::KIND),
                    },
                );
                Ok(self)
            }
        }
    }

    /// Builder form of [`register`](Self::register).
    pub fn with<T: Item>(mut self) -> Result<Self, PlanError> {
        self.register::<T>()?;
        Ok(self)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.kinds.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Decodes params into the kind's type (a struct from an object only, see `params`),
    /// with the kind's shared name; `None` when the kind is unknown.
    pub(crate) fn decode(
        &self,
        kind: &str,
        params: &serde_json::Value,
    ) -> Option<(Arc<str>, Decoded)> {
        self.kinds
            .get(kind)
            .map(|kind| (kind.name.clone(), (kind.decode)(params)))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}
