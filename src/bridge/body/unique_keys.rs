//! JSON read into a `Value` with every object's keys unique, at any depth. serde_json keeps
//! the last of two equal keys, so `{"parallelism": 1, "parallelism": 1024}` would ask for
//! 1024 while a reader of the body (a person, a proxy's check) sees 1.

use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::bridge::error::cut;

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Not JSON, or not one JSON value.
    Json(serde_json::Error),
    /// An object has `key` twice; `at` says which object (`blocks[0].items[2].params`,
    /// empty for the body itself). Both are cut short.
    DuplicateKey { key: String, at: String },
}

/// Reads `bytes` as one JSON value whose objects have no repeated key.
pub(crate) fn read(bytes: &[u8]) -> Result<Value, Unreadable> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let mut path = String::new();
    let mut duplicate = None;
    let read = Unique {
        path: &mut path,
        duplicate: &mut duplicate,
    }
    .deserialize(&mut reader)
    .and_then(|value| reader.end().map(|()| value));
    match (read, duplicate) {
        (_, Some(found)) => Err(found),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(Unreadable::Json(e)),
    }
}

/// One value being read, at `path`; the first repeated key found goes to `duplicate`.
struct Unique<'a> {
    path: &'a mut String,
    duplicate: &'a mut Option<Unreadable>,
}

impl Unique<'_> {
    /// The same reader for a value inside this one.
    fn inner(&mut self) -> Unique<'_> {
        Unique {
            path: self.path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let len = self.path.len();
            let _ = write!(self.path, "[{}]", items.len());
            let next = seq.next_element_seed(self.inner());
            self.path.truncate(len);
            match next? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate = Some(Unreadable::DuplicateKey {
                    key: cut(&key, 100),
                    at: cut(self.path, 200),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            let len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(&key);
            let value = map.next_value_seed(self.inner());
            self.path.truncate(len);
            object.insert(key, value?);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::{Unreadable, read};

    fn duplicate(text: &str) -> (String, String) {
        match read(text.as_bytes()) {
            Err(Unreadable::DuplicateKey { key, at }) => (key, at),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn reads_json_as_serde_json_does() {
        for text in [
            r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"a": 1}}"#,
            "[]",
            "7",
            r#""text""#,
            r#"{"a": 1, "A": 2}"#,
        ] {
            let ours = read(text.as_bytes()).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_naming_it_and_where() {
        assert_eq!(
            duplicate(r#"{"parallelism": 1, "parallelism": 1024}"#),
            ("parallelism".into(), String::new())
        );
        assert_eq!(
            duplicate(r#"{"blocks": [{"items": [{}, {"params": {"ms": 1, "ms": 2}}]}]}"#),
            ("ms".into(), "blocks[0].items[1].params".into())
        );
        assert_eq!(
            duplicate(r#"[[{"k": {"x": 1}, "k": 2}]]"#),
            ("k".into(), "[0][0]".into())
        );
        // Keys compare after unescaping.
        assert_eq!(duplicate(r#"{"a": 1, "\u0061": 2}"#).0, "a");
    }

    #[test]
    fn malformed_json_is_still_a_json_error() {
        let deep = "[".repeat(100_000);
        for text in ["{\"a\": ", "{} {}", "", "[1,]", deep.as_str()] {
            assert!(
                matches!(read(text.as_bytes()), Err(Unreadable::Json(_))),
                "{}",
                &text[..text.len().min(20)]
            );
        }
    }
}
