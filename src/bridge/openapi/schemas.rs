//! The named schemas the derives cannot give, and the properties that take them.
//!
//! The model keeps an item's metaparams as raw JSON (the plan's compiler reads and checks
//! them), and the derive writes an interrupt strategy as one `oneOf` of inline objects. A
//! client generator needs a named, `$ref`'d schema for each shape it should turn into a
//! type, and a fuzzer needs bounds it can trust: each schema here says what the server
//! takes, as exactly as JSON Schema can (what it cannot say, such as which ids an item's
//! `after` may name, is in the description).

use serde_json::{Map, Value, json};

/// A humantime duration as the bridge reads and writes them: whole numbers, each with a
/// unit, optionally spaced (`30s`, `1h 30m`, `2days 4h`). The server also reads fractions
/// (`1.5h`); the schema leaves them out.
const DURATION_UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";

fn duration_pattern(first_digit: &str) -> String {
    let span = format!("{first_digit}[0-9]{{0,8}} ?(?:{DURATION_UNITS})");
    format!("^{span}(?: ?{span})*$")
}

/// `{"$ref": "#/components/schemas/<name>"}`.
fn to(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The named schemas, added to the components (replacing a derived one of the same name).
fn named() -> Vec<(&'static str, Value)> {
    vec![
        (
            "ExecutionId",
            json!({
                "type": "string",
                "description": "An execution's id: a ULID, 26 characters of Crockford base32 in upper case.",
                "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$",
                "examples": ["01JQ0ZJ6V5Z5D6Y3B4N2K8M1XA"]
            }),
        ),
        (
            "ItemId",
            json!({
                "type": "string",
                "description": "An item's id, unique within its plan: letters, digits and `._:-`.",
                "pattern": "^[A-Za-z0-9._:-]{1,128}$",
                "examples": ["db", "app-1"]
            }),
        ),
        (
            "Duration",
            json!({
                "type": "string",
                "description": "A duration (humantime): whole numbers, each with a unit (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w`, or their words: `min`, `hours`, `days`, `weeks`, `months`, `years`, ...), optionally spaced.",
                "pattern": duration_pattern("[0-9]"),
                "examples": ["30s", "1h 30m", "250ms"]
            }),
        ),
        (
            "Timeout",
            json!({
                "type": "string",
                "description": "How long one attempt may run, a duration longer than 0s. Past it the attempt fails (`timed out after ...`) and `retry` applies.",
                "pattern": duration_pattern("[1-9]"),
                "examples": ["30s", "5m"]
            }),
        ),
        (
            "FinishCurrent",
            json!({
                "type": "string",
                "enum": ["finish_current"],
                "description": "Running items finish; no new item starts."
            }),
        ),
        (
            "AtCancellationPoint",
            json!({
                "type": "string",
                "enum": ["at_cancellation_point"],
                "description": "Running items stop at their next cancellation point, keeping their intra-item checkpoint; no new item starts."
            }),
        ),
        (
            "PollNextN",
            json!({
                "type": "object",
                "description": "Up to `poll_next_n` more items may start; then as `finish_current`.",
                "required": ["poll_next_n"],
                "properties": {
                    "poll_next_n": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": u64::MAX,
                        "description": "How many more items may start."
                    }
                },
                "additionalProperties": false
            }),
        ),
        (
            "ImmediateGrace",
            json!({
                "type": "object",
                "description": "How long running attempts get to reach a cancellation point before they are aborted.",
                "required": ["grace"],
                "properties": { "grace": to("Duration") },
                "additionalProperties": false
            }),
        ),
        (
            "Immediate",
            json!({
                "type": "object",
                "description": "As `at_cancellation_point`, then attempts still running after `grace` are aborted.",
                "required": ["immediate"],
                "properties": { "immediate": to("ImmediateGrace") },
                "additionalProperties": false
            }),
        ),
        (
            "InterruptStrategy",
            json!({
                "description": "How running and not-yet-started items react to an interrupt: `\"finish_current\"`, `{\"poll_next_n\": 2}`, `\"at_cancellation_point\"` or `{\"immediate\": {\"grace\": \"5s\"}}`.",
                "oneOf": [
                    to("FinishCurrent"),
                    to("PollNextN"),
                    to("AtCancellationPoint"),
                    to("Immediate")
                ]
            }),
        ),
        (
            "NoOptions",
            json!({
                "type": "object",
                "description": "The body of a change that takes no options: `{}` (or no body at all, still typed `application/json`).",
                "additionalProperties": false
            }),
        ),
        (
            "Retry",
            json!({
                "type": "integer",
                "description": "How many times a failed attempt is retried: a whole number, or -1 without limit (default 0).",
                "minimum": -1,
                "maximum": u32::MAX,
                "examples": [3, -1]
            }),
        ),
        (
            "DelayBackoff",
            json!({
                "type": "object",
                "description": "Exponential backoff: `first` before the first retry, twice as long before each next one, never over `max` (not shorter than `first`; default the longer of `first` and 5 minutes), each wait moved by up to `jitter` of itself either way (default 0.1).",
                "required": ["first"],
                "properties": {
                    "first": to("Duration"),
                    "max": to("Duration"),
                    "jitter": {"type": "number", "minimum": 0, "maximum": 1}
                },
                "additionalProperties": false
            }),
        ),
        (
            "Delay",
            json!({
                "description": "The wait before the first retry, doubling for each next one: a duration (then at most 5 minutes apart, each wait moved by up to 10% either way), or a `DelayBackoff`. Needs a `retry` other than 0.",
                "oneOf": [to("Duration"), to("DelayBackoff")]
            }),
        ),
        (
            "SemaTag",
            json!({
                "type": "string",
                "description": "A semaphore tag: `id` (one permit) or `id:N` (N permits, 1 to 1000000); the whole tag names the semaphore, so `db` and `db:1` are two. `{name}` in a tag is the item's string param `name` (`tenant-{tenant}:5`), which the schema leaves out.",
                "maxLength": 256,
                "pattern": "^(?:[^{}:]+|[^{}]*:(?:[^{}:]*[^{}:0-9][^{}:]*)?|[^{}]+:0*(?:[1-9][0-9]{0,5}|1000000))$",
                "examples": ["db", "db:2"]
            }),
        ),
        (
            "Sema",
            json!({
                "description": "The semaphores an attempt takes before it starts (in sorted order; waiters are served first come, first served) and gives back when it ends: a tag or a list of at most 16.",
                "oneOf": [
                    to("SemaTag"),
                    {"type": "array", "items": to("SemaTag"), "maxItems": 16}
                ]
            }),
        ),
        (
            "Notify",
            json!({
                "description": "Which `after` edges carry a refresh: `true` for all of them, `false` for none, or a list of ids from `after`. When such a dependency changes something, this item's next attempt sees a refresh.",
                "oneOf": [
                    {"type": "boolean"},
                    {"type": "array", "items": to("ItemId")}
                ]
            }),
        ),
        (
            "Limit",
            json!({
                "type": "number",
                "description": "At most this many attempt starts of the item a second, on average (a token bucket). Needs `burst`.",
                "exclusiveMinimum": 0,
                "examples": [2.5]
            }),
        ),
        (
            "Burst",
            json!({
                "type": "integer",
                "description": "At most this many attempt starts at once. Needs `limit`.",
                "minimum": 1,
                "maximum": u32::MAX,
                "examples": [5]
            }),
        ),
    ]
}

/// Whether a property may also be `null` (which the server reads as absent).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Null {
    Allowed,
    Refused,
}

/// Properties of derived schemas that take a named schema: (schema, property, named
/// schema, null allowed).
const PROPERTIES: &[(&str, &str, &str, Null)] = &[
    ("ItemSpec", "id", "ItemId", Null::Refused),
    ("ItemSpec", "retry", "Retry", Null::Allowed),
    ("ItemSpec", "delay", "Delay", Null::Allowed),
    ("ItemSpec", "timeout", "Timeout", Null::Allowed),
    ("ItemSpec", "sema", "Sema", Null::Allowed),
    ("ItemSpec", "notify", "Notify", Null::Allowed),
    ("ItemSpec", "limit", "Limit", Null::Allowed),
    ("ItemSpec", "burst", "Burst", Null::Allowed),
    (
        "InterruptBody",
        "strategy",
        "InterruptStrategy",
        Null::Refused,
    ),
    ("ShutdownBody", "deadline", "Duration", Null::Allowed),
    ("MaintenanceBody", "target_age", "Duration", Null::Allowed),
    ("SweepBody", "protection", "Duration", Null::Allowed),
    ("Created", "id", "ExecutionId", Null::Refused),
    ("Accepted", "id", "ExecutionId", Null::Refused),
    ("SummaryView", "id", "ExecutionId", Null::Refused),
    ("ExecutionView", "id", "ExecutionId", Null::Refused),
    ("ExecutionList", "next", "ExecutionId", Null::Refused),
    ("Outcome", "execution", "ExecutionId", Null::Refused),
    (
        "ExecutionShutdown",
        "execution",
        "ExecutionId",
        Null::Refused,
    ),
    (
        "SemaphoreUserView",
        "execution",
        "ExecutionId",
        Null::Refused,
    ),
    ("ItemView", "duration", "Duration", Null::Allowed),
    ("AttemptView", "duration", "Duration", Null::Allowed),
    ("ShutdownReport", "deadline", "Duration", Null::Refused),
    ("ShutdownReport", "duration", "Duration", Null::Refused),
    ("SweepReport", "protection", "Duration", Null::Refused),
    ("SweepReport", "duration", "Duration", Null::Refused),
    ("MaintenanceReport", "duration", "Duration", Null::Refused),
];

/// Array properties whose items take a named schema: (schema, property, named schema).
const ITEMS: &[(&str, &str, &str)] = &[
    ("ItemSpec", "after", "ItemId"),
    ("InterruptedAll", "ids", "ExecutionId"),
];

/// Parameters that take a named schema: (name, named schema).
const PARAMETERS: &[(&str, &str)] = &[("id", "ExecutionId"), ("cursor", "ExecutionId")];

/// The `Idempotency-Key` header's schema, inline (schemathesis reads a header's schema
/// only when it is inline).
fn idempotency_key() -> Value {
    json!({
        "type": "string",
        "description": "1 to 256 visible ASCII characters and spaces, not at either end (what a header carries).",
        "minLength": 1,
        "maxLength": 256,
        "pattern": "^[!-~](?:[ -~]*[!-~])?$",
        "examples": ["deploy-2026-12-01"]
    })
}

/// Adds the named schemas to `doc` and points the properties and parameters above at them.
pub(super) fn install(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for (name, schema) in named() {
        schemas[name] = schema;
    }
    for &(schema, property, name, null) in PROPERTIES {
        let Some(slot) = schemas
            .get_mut(schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(property))
        else {
            continue;
        };
        let mut named = Map::new();
        if let Some(description) = slot.get("description") {
            named.insert("description".to_owned(), description.clone());
        }
        match null {
            Null::Refused => {
                named.insert("$ref".to_owned(), to(name)["$ref"].clone());
            }
            Null::Allowed => {
                named.insert("oneOf".to_owned(), json!([to(name), {"type": "null"}]));
            }
        }
        *slot = Value::Object(named);
    }
    for &(schema, property, name) in ITEMS {
        if let Some(items) = schemas
            .get_mut(schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(property))
            .and_then(|p| p.get_mut("items"))
        {
            *items = to(name);
        }
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters {
            if let Some((_, name)) = PARAMETERS.iter().find(|(p, _)| parameter["name"] == *p) {
                parameter["schema"] = to(name);
            }
            if parameter["name"] == "Idempotency-Key" {
                parameter["schema"] = idempotency_key();
            }
            // A parameter is absent or has a value: never `null` (the derive writes an
            // optional one as `[type, "null"]`, which validators of parameters refuse).
            let Some(schema) = parameter.get_mut("schema") else {
                continue;
            };
            if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    schema["type"] = only.clone();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{ITEMS, PROPERTIES};

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_named_schema_is_used_and_every_reference_resolves() {
        let doc = crate::bridge::openapi::document(true, "/").unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for target in &all {
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
        for (name, _) in super::named() {
            let target = format!("#/components/schemas/{name}");
            assert!(all.contains(&target.as_str()), "{name} is never used");
        }
        for (schema, property, ..) in PROPERTIES
            .iter()
            .map(|p| (p.0, p.1))
            .chain(ITEMS.iter().map(|i| (i.0, i.1)))
        {
            let slot = &doc["components"]["schemas"][schema]["properties"][property];
            let mut found = Vec::new();
            refs(slot, &mut found);
            assert!(
                !found.is_empty(),
                "{schema}.{property} names no schema: {slot}"
            );
        }
    }

    /// Whether any schema in `value` has a `type` that is `null` (not the string `"null"`).
    fn null_type(value: &Value) -> bool {
        match value {
            Value::Object(map) => {
                map.get("type").is_some_and(Value::is_null) || map.values().any(null_type)
            }
            Value::Array(items) => items.iter().any(null_type),
            _ => false,
        }
    }

    #[test]
    fn no_schema_is_left_with_a_null_type() {
        for token in [false, true] {
            let doc = crate::bridge::openapi::document(token, "/").unwrap();
            assert!(!null_type(&doc));
        }
    }

    #[test]
    fn every_strategy_the_schema_names_is_one_the_server_reads() {
        for strategy in [
            serde_json::json!("finish_current"),
            serde_json::json!({"poll_next_n": 3}),
            serde_json::json!("at_cancellation_point"),
            serde_json::json!({"immediate": {"grace": "1h 30m"}}),
        ] {
            serde_json::from_value::<tend_actors::InterruptStrategy>(strategy.clone())
                .unwrap_or_else(|e| panic!("{strategy}: {e}"));
        }
    }
}
