//! The registry: which Rust type implements each item kind.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::PlanError;
use crate::model::params::ObjectParams;
use crate::model::{DynItem, Item};

type Decode = fn(&serde_json::Value, &OnceLock<Arc<dyn DynItem>>) -> Decoded;

/// Decodes `params` into a `T`. A zero-sized `T` (a unit struct such as a no-op) has one
/// value, so every item of its kind shares one `Arc`, kept in `shared` from the first
/// decode: an `Arc` allocates its counts even for a zero-sized value, and that would be
/// one allocation per item for nothing. Its params are still decoded and checked each
/// time.
fn decode<T: Item>(params: &serde_json::Value, shared: &OnceLock<Arc<dyn DynItem>>) -> Decoded {
    let item: T = serde::Deserialize::deserialize(ObjectParams(params))?;
    if std::mem::size_of::<T>() == 0 {
        return Ok(shared.get_or_init(|| Arc::new(item)).clone());
    }
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

/// A registered kind: its type and its decoder.
#[derive(Clone)]
struct Kind {
    type_id: TypeId,
    decode: Decode,
    /// The one value of a zero-sized kind, once decoded (see [`decode`]).
    shared: OnceLock<Arc<dyn DynItem>>,
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
                        shared: OnceLock::new(),
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
    /// with the kind's name as registered (the type's `KIND`, which every item of the kind
    /// then points at); `None` when the kind is unknown.
    pub(crate) fn decode(
        &self,
        kind: &str,
        params: &serde_json::Value,
    ) -> Option<(&'static str, Decoded)> {
        self.kinds
            .get_key_value(kind)
            .map(|(&name, kind)| (name, (kind.decode)(params, &kind.shared)))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::error::ItemError;
    use crate::model::ItemCtx;

    #[derive(Serialize, Deserialize)]
    struct Unit;

    impl Item for Unit {
        const KIND: &'static str = "unit";
        type Output = ();
        async fn apply(&self, _cx: &mut ItemCtx) -> Result<(), ItemError> {
            Ok(())
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Sized {
        n: u32,
    }

    impl Item for Sized {
        const KIND: &'static str = "sized";
        type Output = ();
        async fn apply(&self, _cx: &mut ItemCtx) -> Result<(), ItemError> {
            Ok(())
        }
    }

    fn decoded(registry: &Registry, kind: &str, params: serde_json::Value) -> Decoded {
        let (_, decoded) = registry.decode(kind, &params).expect("a registered kind");
        decoded
    }

    #[test]
    fn items_of_a_zero_sized_kind_share_one_value_and_others_do_not() {
        let registry = Registry::new()
            .with::<Unit>()
            .and_then(Registry::with::<Sized>)
            .expect("kinds registered");
        let (a, b) = (
            decoded(&registry, "unit", serde_json::Value::Null).expect("decoded"),
            decoded(&registry, "unit", serde_json::Value::Null).expect("decoded"),
        );
        assert!(Arc::ptr_eq(&a, &b), "unit items share one Arc");
        let (c, d) = (
            decoded(&registry, "sized", serde_json::json!({"n": 1})).expect("decoded"),
            decoded(&registry, "sized", serde_json::json!({"n": 2})).expect("decoded"),
        );
        assert!(
            !Arc::ptr_eq(&c, &d),
            "items with fields each have their own"
        );
        // Shared or not, a unit item's params are still checked.
        let wrong = decoded(&registry, "unit", serde_json::json!({"extra": 1}));
        assert!(
            wrong.is_err(),
            "params that are not a unit item's are refused"
        );
    }
}
