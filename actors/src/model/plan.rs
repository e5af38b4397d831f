//! Plans, blocks and item specs, and the checks of them that need no scheduler (ids, keys,
//! `notify` edges). Compiling a plan into what runs (decoded items, the blocks' DAGs,
//! policies, semaphore tags) is the scheduler's: `sched/compile.rs`.

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::model::Item;

/// What to run: blocks, run one after the other. Build it in Rust or read it from JSON.
///
/// ```
/// # use tend_actors::{Block, ItemSpec, Plan};
/// let plan: Plan = serde_json::from_str(r#"{
///     "name": "deploy",
///     "blocks": [{"name": "base", "items": [
///         {"id": "db", "kind": "sleep", "params": {"ms": 10}},
///         {"id": "app", "kind": "sleep", "params": {"ms": 10}, "after": ["db"]}
///     ]}]
/// }"#).unwrap();
/// assert_eq!(plan.item_count(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// A name for people.
    pub name: String,
    /// The blocks, in the order they run.
    #[serde(default)]
    pub blocks: Vec<Block>,
    /// How many items of this execution may run at once (at least 1, at most the
    /// runtime's `max_parallelism`); the runtime's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub parallelism: Option<usize>,
    /// An idempotency key: a submit whose key an execution already has answers that
    /// execution instead of starting another (the same plan), or is refused (another plan),
    /// until that execution is deleted or pruned. At most 256 bytes, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
        )
    )]
    pub key: Option<String>,
}

/// The longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Why `key` cannot be an idempotency key, if it cannot.
pub(crate) fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("it is empty")
    } else if key.len() > MAX_KEY_BYTES {
        Some("it is longer than 256 bytes")
    } else if key.chars().any(char::is_control) {
        Some("it has control characters")
    } else {
        None
    }
}

/// A DAG of items. A block starts once every item of the block before it is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// A name for people.
    pub name: String,
    /// The items.
    #[serde(default)]
    pub items: Vec<ItemSpec>,
}

fn empty_params() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// One item of a plan: its id, kind and params, the ids it runs after, and metaparams.
///
/// Metaparams:
/// - `retry`: how many times a failed attempt is retried; `-1` without limit (default 0).
/// - `delay`: the wait before the first retry, doubling for each next one: a duration
///   (`"2s"`; then at most 5 minutes apart, each wait moved by up to 10% either way) or
///   `{"first": "2s", "max": "1m", "jitter": 0.2}`. Needs `retry`.
/// - `timeout`: how long one attempt may run (`"30s"`). Past it the attempt has failed,
///   whatever it returns later (a late output is discarded), so `retry` applies; it is
///   asked to stop at its next cancellation point and aborted after the runtime's
///   `timeout_grace`.
///
/// - `notify`: which `after` edges carry a refresh: `true` for all of them, or a list of
///   ids from `after`. When such a dependency changes something (its `check` asked for
///   `apply` and `apply` succeeded), this item's next attempt sees
///   [`ItemCtx::refresh`](crate::ItemCtx::refresh). The refresh is stored with the
///   dependency's Done record and cleared when this item's attempt succeeds.
///
/// - `sema`: semaphore tags (`"db:2"`, or a list), each `id` or `id:N` (N permits, else
///   one; the whole tag names the semaphore, so `db` and `db:1` are two). `{name}` in a
///   tag is the item's string param `name` (`"tenant-{tenant}:5"` limits each tenant
///   apart). Semaphores are shared by every execution of the runtime: an attempt starts
///   once it holds all its tags (taken in sorted order, waiters served first come first
///   served) and gives them back when it ends.
/// - `limit` and `burst`: at most `limit` attempts of this item start a second on average,
///   `burst` at once (a token bucket; `limit` needs `burst` > 0). The runtime's named
///   limiters (`Config::limiters`) pace items by kind or tag across executions.
///
/// A malformed metaparam is refused with [`PlanError::BadMetaparam`], naming the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// Unique within the plan; letters, digits and `._:-`.
    pub id: String,
    /// The registered [`Item::KIND`].
    pub kind: String,
    /// The item value, decoded into the kind's type: any JSON the kind takes (default `{}`).
    #[serde(default = "empty_params")]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub params: serde_json::Value,
    /// Ids of items (of this block or an earlier one) that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Retries of a failed attempt: a whole number, `-1` without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub retry: Option<serde_json::Value>,
    /// The wait before the first retry (a duration, or `{"first", "max", "jitter"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub delay: Option<serde_json::Value>,
    /// How long one attempt may run, as a duration (`"30s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub timeout: Option<serde_json::Value>,
    /// Semaphore tags: `"id"` or `"id:N"`, or a list of them; `{param}` is a string param.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub sema: Option<serde_json::Value>,
    /// Attempt starts a second, on average (a number above 0); needs `burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub limit: Option<serde_json::Value>,
    /// Attempt starts at once, at most (a whole number above 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub burst: Option<serde_json::Value>,
    /// Which `after` edges carry a refresh: `true` for all, or a list of ids from `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub notify: Option<serde_json::Value>,
}

impl Plan {
    /// An empty plan.
    pub fn new(name: impl Into<String>) -> Self {
        Plan {
            name: name.into(),
            blocks: Vec::new(),
            parallelism: None,
            key: None,
        }
    }

    /// Sets the idempotency key (see [`Plan::key`]).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Appends a block.
    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// Sets how many items may run at once.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = Some(n);
        self
    }

    /// Number of items in all blocks.
    pub fn item_count(&self) -> usize {
        self.blocks.iter().map(|b| b.items.len()).sum()
    }
}

impl Block {
    /// An empty block.
    pub fn new(name: impl Into<String>) -> Self {
        Block {
            name: name.into(),
            items: Vec::new(),
        }
    }

    /// Appends an item.
    pub fn item(mut self, spec: ItemSpec) -> Self {
        self.items.push(spec);
        self
    }

    /// Appends an item.
    pub fn push(&mut self, spec: ItemSpec) {
        self.items.push(spec);
    }
}

impl ItemSpec {
    /// The spec of `item` under `id`.
    pub fn new<T: Item>(id: impl Into<String>, item: &T) -> Result<Self, PlanError> {
        let id = id.into();
        let params = serde_json::to_value(item).map_err(|e| PlanError::BadParams {
            item: id.clone(),
            kind: T::KIND.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self::raw(id, T::KIND, params))
    }

    /// A spec from its parts, as it would arrive in JSON.
    pub fn raw(id: impl Into<String>, kind: impl Into<String>, params: serde_json::Value) -> Self {
        ItemSpec {
            id: id.into(),
            kind: kind.into(),
            params,
            after: Vec::new(),
            retry: None,
            delay: None,
            timeout: None,
            sema: None,
            limit: None,
            burst: None,
            notify: None,
        }
    }

    /// Adds dependencies.
    pub fn after<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.after.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Retries a failed attempt up to `n` times; `-1` without limit.
    pub fn retry(mut self, n: i64) -> Self {
        self.retry = Some(n.into());
        self
    }

    /// Waits `first` before the first retry, twice as long before each next one (at most
    /// 5 minutes, each wait moved by up to 10% either way).
    pub fn delay(mut self, first: std::time::Duration) -> Self {
        self.delay = Some(humantime::format_duration(first).to_string().into());
        self
    }

    /// Bounds one attempt to `timeout`; past it the attempt counts as failed.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(humantime::format_duration(timeout).to_string().into());
        self
    }

    /// At most `limit` attempts a second on average, `burst` at once.
    pub fn rate(mut self, limit: f64, burst: u32) -> Self {
        self.limit = Some(limit.into());
        self.burst = Some(burst.into());
        self
    }

    /// Takes the semaphore `tags` (`"db:2"`, `"tenant-{tenant}:5"`) before each attempt.
    pub fn sema<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<serde_json::Value> = tags.into_iter().map(|s| s.into().into()).collect();
        self.sema = Some(serde_json::Value::Array(tags));
        self
    }

    /// Marks the edges to `ids` (which must be in `after`) as `notify`: when one of them
    /// changes something, this item gets a refresh.
    pub fn notify<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<serde_json::Value> = ids.into_iter().map(|s| s.into().into()).collect();
        self.notify = Some(serde_json::Value::Array(ids));
        self
    }

    /// The dependencies whose edges are marked `notify`, or an error naming the item.
    pub(crate) fn notify_edges(&self) -> Result<Vec<&str>, PlanError> {
        let bad = |reason: String| PlanError::BadMetaparam {
            item: self.id.clone(),
            metaparam: "notify",
            reason,
        };
        match &self.notify {
            None | Some(serde_json::Value::Bool(false)) => Ok(Vec::new()),
            Some(serde_json::Value::Bool(true)) => {
                Ok(self.after.iter().map(String::as_str).collect())
            }
            Some(serde_json::Value::Array(ids)) => ids
                .iter()
                .map(|id| match id.as_str() {
                    Some(id) if self.after.iter().any(|a| a == id) => Ok(id),
                    Some(id) => Err(bad(format!(
                        "names `{}`, which is not in `after`",
                        id.chars().take(128).collect::<String>()
                    ))),
                    None => Err(bad("lists item ids; one is not a string".to_owned())),
                })
                .collect(),
            Some(_) => Err(bad(
                "must be true (every `after` edge) or a list of ids from `after`".to_owned(),
            )),
        }
    }
}

/// Whether `id` can be an item id: 1 to 128 letters, digits and `._:-`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}
