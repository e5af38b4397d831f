//! An item's `sema` metaparam: the semaphore tags it takes before each attempt, with
//! `{param}` references resolved from its string params.

use std::sync::Arc;

use serde_json::Value;

use crate::error::PlanError;
use crate::model::{ItemSpec, cut};
use crate::sched::sema::size_of;

/// The most tags one item may carry.
const MAX_TAGS: usize = 16;
/// The longest tag, once resolved.
const MAX_TAG_LEN: usize = 256;

/// The tags of `spec`, resolved, sorted and without repeats (the order every attempt
/// takes them in); empty without `sema`. An error names the item and the tag.
pub(crate) fn tags_of(spec: &ItemSpec) -> Result<Arc<[Arc<str>]>, PlanError> {
    let bad = |reason: String| PlanError::BadMetaparam {
        item: spec.id.clone(),
        metaparam: "sema",
        reason,
    };
    let list: Vec<&str> = match &spec.sema {
        None => return Ok(Arc::from([])),
        Some(Value::String(tag)) => vec![tag.as_str()],
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|t| {
                t.as_str()
                    .ok_or_else(|| bad("lists tags; one is not a string".to_owned()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad("must be a tag (\"db:2\") or a list of tags".to_owned()));
        }
    };
    if list.len() > MAX_TAGS {
        return Err(bad(format!("has {} tags; at most {MAX_TAGS}", list.len())));
    }
    let mut tags = Vec::with_capacity(list.len());
    for template in list {
        let tag = resolve(template, &spec.params)
            .map_err(|why| bad(format!("tag `{}` {why}", cut(template))))?;
        if tag.len() > MAX_TAG_LEN {
            return Err(bad(format!(
                "tag `{}` is longer than {MAX_TAG_LEN} bytes",
                cut(&tag)
            )));
        }
        size_of(&tag).map_err(|why| bad(format!("tag `{}` {why}", cut(&tag))))?;
        tags.push(Arc::<str>::from(tag));
    }
    tags.sort();
    tags.dedup();
    Ok(tags.into())
}

/// `template` with each `{name}` replaced by the string param `name`.
fn resolve(template: &str, params: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("has a `}` with no `{` before it".to_owned());
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("has a `{` that is not closed".to_owned());
        };
        let name = &after[..close];
        match params.get(name) {
            Some(Value::String(value)) => out.push_str(value),
            Some(_) => {
                return Err(format!(
                    "names param `{}`, which is not a string",
                    cut(name)
                ));
            }
            None => {
                return Err(format!(
                    "names param `{}`, which the item does not have",
                    cut(name)
                ));
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(sema: Value, params: Value) -> ItemSpec {
        ItemSpec {
            sema: Some(sema),
            ..ItemSpec::raw("job", "k", params)
        }
    }

    #[test]
    fn tags_resolve_params_and_come_sorted_without_repeats() {
        let tags = tags_of(&spec(
            json!(["tenant-{tenant}:5", "db:2", "db:2"]),
            json!({"tenant": "acme"}),
        ))
        .unwrap();
        let tags: Vec<&str> = tags.iter().map(|t| t.as_ref()).collect();
        assert_eq!(tags, ["db:2", "tenant-acme:5"]);
        assert_eq!(tags_of(&spec(json!("db"), json!({}))).unwrap().len(), 1);
    }

    #[test]
    fn malformed_tags_name_the_item_and_the_tag() {
        for (sema, params, says) in [
            (json!([""]), json!({}), "empty id"),
            (json!([":3"]), json!({}), "empty id"),
            (json!(["db:0"]), json!({}), "size 0"),
            (json!(["t-{tenant}"]), json!({}), "does not have"),
            (json!(["t-{n}"]), json!({"n": 3}), "not a string"),
            (json!(["t-{n"]), json!({"n": "x"}), "not closed"),
            (json!(["t-}"]), json!({}), "no `{`"),
            (json!([3]), json!({}), "not a string"),
            (json!({"db": 2}), json!({}), "list of tags"),
        ] {
            let err = tags_of(&spec(sema.clone(), params)).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(
                    err,
                    PlanError::BadMetaparam {
                        metaparam: "sema",
                        ..
                    }
                ),
                "{sema}"
            );
            assert!(
                text.contains("job") && text.contains(says),
                "{sema}: {text}"
            );
        }
    }
}
