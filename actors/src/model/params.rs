//! Item params as a kind's type reads them: a struct takes a JSON object, never an array.
//!
//! serde's derive also reads a struct from a sequence, field by field in order, so
//! `"params": [4000, 2]` would run a `sleep` of 4000 ms in 2 steps: a plan written by hand
//! that happens to run. [`ObjectParams`] reads params as `serde_json` does, except that a
//! struct (the params themselves, and structs reached through their fields and options)
//! refuses an array.

use serde::Deserializer;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Unexpected, Visitor};
use serde_json::Value;

/// Params to decode, strict about structs (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectParams<'a>(pub(crate) &'a Value);

/// Methods read exactly as `serde_json` reads a `Value`.
macro_rules! as_json {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for ObjectParams<'de> {
    type Error = serde_json::Error;

    as_json! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(
                Unexpected::Other("an array (params take a JSON object)"),
                &visitor,
            )),
            Value::Object(map) => {
                let mut fields = Fields {
                    entries: map.iter(),
                    value: None,
                };
                let read = visitor.visit_map(&mut fields)?;
                match fields.entries.len() {
                    0 => Ok(read),
                    left => Err(de::Error::invalid_length(
                        map.len() - left,
                        &"every field of the object read",
                    )),
                }
            }
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

/// A JSON object's entries read as a struct's fields, each value strict in turn.
struct Fields<'de> {
    entries: serde_json::map::Iter<'de>,
    /// The value of the key read last.
    value: Option<&'de Value>,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ObjectParams(value)),
            None => Err(de::Error::custom("a field's value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::ObjectParams;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        ms: u64,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<u32>,
        #[serde(default)]
        keyed: HashMap<u32, String>,
        #[serde(default)]
        any: serde_json::Value,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        steps: u32,
    }

    fn read<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, String> {
        T::deserialize(ObjectParams(&value)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_struct_takes_an_object_not_an_array() {
        let err = read::<Outer>(json!([4000])).unwrap_err();
        assert!(err.contains("an array"), "{err}");
        assert!(err.contains("struct Outer"), "{err}");
        let err = read::<Outer>(json!({"ms": 1, "inner": [2]})).unwrap_err();
        assert!(err.contains("struct Inner"), "{err}");
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        let value = json!({
            "ms": 5,
            "inner": {"steps": 2},
            "list": [1, 2],
            "keyed": {"7": "seven"},
            "any": [1, {"a": null}],
        });
        let outer = read::<Outer>(value.clone()).unwrap();
        assert_eq!(outer, serde_json::from_value::<Outer>(value).unwrap());
        assert_eq!(outer.inner, Some(Inner { steps: 2 }));
        assert_eq!(outer.keyed[&7], "seven");
        let err = read::<Outer>(json!({"ms": 1, "colour": 2})).unwrap_err();
        assert!(err.contains("colour"), "{err}");
        let err = read::<Outer>(json!({"ms": "long"})).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        assert_eq!(read::<Vec<u32>>(json!([1, 2])).unwrap(), vec![1, 2]);
        assert_eq!(read::<(u8, bool)>(json!([1, true])).unwrap(), (1, true));
    }
}
