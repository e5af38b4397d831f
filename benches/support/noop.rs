//! The item the item benches run: it does nothing and returns nothing, so what they measure
//! is tend's own cost per item.

use serde::{Deserialize, Serialize};
use tend::{Item, ItemCtx, ItemError};

/// Does nothing and returns nothing.
#[derive(Serialize, Deserialize)]
pub(crate) struct Noop;

impl Item for Noop {
    const KIND: &'static str = "noop";
    type Output = ();

    async fn apply(&self, _cx: &mut ItemCtx) -> Result<(), ItemError> {
        Ok(())
    }
}
