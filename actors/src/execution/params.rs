//! Items' params as submitted, kept packed while the execution runs.
//!
//! Once an item's params are decoded into the item (at compile) and the plan is durable
//! (its first record), only a report reads them again. As `serde_json::Value`s they are
//! most of a small execution's plan in memory (a one-key object is a B-tree node of about
//! 600 bytes); packed, they are their MessagePack in one buffer, each decoded again when a
//! report asks. MessagePack, as the redb store writes plans: numbers read back exactly
//! (JSON text would not promise it for floats), and what reads back from the store reads
//! back from here.

use std::sync::Arc;

use serde_json::Value;

use crate::model::Plan;

/// Params of at most this many bytes packed are read back without a check: they cannot
/// nest deeper than a reader goes.
const SHALLOW: usize = 64;

/// Every item's params, in plan order, as MessagePack in one buffer.
#[derive(Debug)]
pub(crate) struct PackedParams {
    text: Box<[u8]>,
    /// Where each item's bytes end in `text` (they start where the one before's end).
    ends: Box<[u32]>,
}

impl PackedParams {
    /// Packs the params of `plan`'s items and leaves `Value::Null` in their place, if
    /// nothing else holds the plan (else the plan is left whole and nothing is packed:
    /// its params are in memory anyway).
    pub(crate) fn take(plan: &mut Arc<Plan>) -> Option<PackedParams> {
        let plan = Arc::get_mut(plan)?;
        let mut text = Vec::new();
        let mut ends = Vec::with_capacity(plan.item_count());
        for spec in plan.blocks.iter().flat_map(|b| b.items.iter()) {
            let start = text.len();
            // Writing a `Value` to a `Vec` cannot fail; if it ever did, or if what it wrote
            // did not read back as it was (nested deeper than a reader goes), the params
            // stay as they are.
            rmp_serde::encode::write(&mut text, &spec.params).ok()?;
            if text.len() - start > SHALLOW
                && rmp_serde::from_slice::<Value>(&text[start..]).ok()? != spec.params
            {
                return None;
            }
            ends.push(u32::try_from(text.len()).ok()?);
        }
        for spec in plan.blocks.iter_mut().flat_map(|b| b.items.iter_mut()) {
            spec.params = Value::Null;
        }
        Some(PackedParams {
            text: text.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
        })
    }

    /// The params of the item at `index` (in plan order).
    pub(crate) fn get(&self, index: usize) -> Value {
        let start = match index {
            0 => 0,
            _ => self.ends.get(index - 1).copied().unwrap_or(0),
        };
        let end = self.ends.get(index).copied().unwrap_or(start);
        self.text
            .get(start as usize..end as usize)
            // Written by `take` from a `Value`, so it reads back; `Null` if it ever did not.
            .and_then(|text| rmp_serde::from_slice(text).ok())
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Block, ItemSpec};
    use serde_json::json;

    #[test]
    fn params_read_back_as_submitted_and_leave_the_plan() {
        let params = [
            json!({"n": 1}),
            json!({}),
            json!({"a": [1, "two"], "b": null}),
        ];
        let mut plan = Arc::new(
            Plan::new("p")
                .block(Block::new("one").item(ItemSpec::raw("x", "k", params[0].clone())))
                .block(
                    Block::new("two")
                        .item(ItemSpec::raw("y", "k", params[1].clone()))
                        .item(ItemSpec::raw("z", "k", params[2].clone())),
                ),
        );
        let packed = PackedParams::take(&mut plan).expect("nothing else holds the plan");
        for (index, expected) in params.iter().enumerate() {
            assert_eq!(&packed.get(index), expected);
        }
        assert_eq!(packed.get(3), Value::Null);
        assert!(
            plan.blocks
                .iter()
                .flat_map(|b| b.items.iter())
                .all(|spec| spec.params.is_null())
        );
        // Params nested deeper than a reader goes (1,024 levels) are left in the plan. (On a
        // thread of its own: a debug build recurses through 1,100 levels on a deep stack.)
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let mut deep = json!(1);
                for _ in 0..1_100 {
                    deep = json!([deep]);
                }
                let mut nested =
                    Arc::new(Plan::new("p").block(Block::new("one").item(ItemSpec::raw(
                        "x",
                        "k",
                        deep.clone(),
                    ))));
                assert!(PackedParams::take(&mut nested).is_none());
                assert_eq!(nested.blocks[0].items[0].params, deep);
            })
            .and_then(|thread| thread.join().map_err(|_| std::io::Error::other("panicked")))
            .expect("the deep params check passes");
        // A plan held elsewhere is left whole.
        let held = plan.clone();
        assert!(PackedParams::take(&mut plan).is_none());
        drop(held);
    }
}
