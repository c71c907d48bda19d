//! JSON text as clients send it, read strictly: a key that appears twice in one object is refused
//! instead of letting the last one win, where a second `"contactIds": null` could turn an erasure of
//! one contact into an erasure of every contact. Text holding U+0000, which neither store can
//! keep, is refused here for every body at once. One pass, building the same value serde_json
//! would.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value as Json};

/// Why JSON text was refused.
#[derive(Debug)]
pub enum JsonError {
    /// This key appears twice in one object; the path names where (`filter.contactIds`).
    DuplicateKey { path: String, error: serde_json::Error },
    /// A string or key holds U+0000; the path names where (`body` for a bare string).
    Nul { path: String },
    /// The text is not JSON.
    Syntax(serde_json::Error),
}

/// What the reader refused, beside what serde_json itself reports.
enum Refusal {
    Duplicate(String),
    Nul(String),
}

/// Parses JSON text, refusing an object that names a key twice, at any depth.
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let refused = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict { parent: None, refused: &refused }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|error| match refused.into_inner() {
        Some(Refusal::Duplicate(path)) => JsonError::DuplicateKey { path, error },
        Some(Refusal::Nul(path)) => JsonError::Nul { path },
        None => JsonError::Syntax(error),
    })
}

/// Reads one value; `parent` is the key it sits under, for naming a duplicate key.
struct Strict<'a> {
    parent: Option<&'a Segment<'a>>,
    refused: &'a RefCell<Option<Refusal>>,
}

impl Strict<'_> {
    /// Refuses `text` when it holds U+0000, naming where.
    fn check<E: de::Error>(&self, text: &str, key: Option<&str>) -> Result<(), E> {
        if !text.contains('\0') {
            return Ok(());
        }
        let path = match (key, self.parent) {
            (Some(key), parent) => path_of(parent, key),
            (None, Some(segment)) => path_of(segment.parent, segment.key),
            (None, None) => "body".to_owned(),
        };
        let error = E::custom(format!("'{path}' holds the NUL character"));
        *self.refused.borrow_mut() = Some(Refusal::Nul(path));
        Err(error)
    }
}

/// One key on the way from the top of the text to a value. The path is written out only when a
/// duplicate needs naming, so reading costs no allocation beyond the value's own.
struct Segment<'a> {
    parent: Option<&'a Segment<'a>>,
    key: &'a str,
}

/// `a.b.key` for `key` under `parent`.
fn path_of(parent: Option<&Segment<'_>>, key: &str) -> String {
    let mut keys = vec![key];
    let mut at = parent;
    while let Some(segment) = at {
        keys.push(segment.key);
        at = segment.parent;
    }
    keys.reverse();
    keys.join(".")
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        Number::from_f64(n).map(Json::Number).ok_or_else(|| E::custom("a number that JSON cannot hold"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Json, E> {
        self.check(text, None)?;
        Ok(Json::String(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Json, E> {
        self.check(&text, None)?;
        Ok(Json::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Strict { parent: self.parent, refused: self.refused })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.check(&key, Some(&key))?;
            match object.entry(key) {
                Entry::Occupied(taken) => {
                    let path = path_of(self.parent, taken.key());
                    let error = de::Error::custom(format!("the key '{path}' appears twice"));
                    *self.refused.borrow_mut() = Some(Refusal::Duplicate(path));
                    return Err(error);
                }
                Entry::Vacant(free) => {
                    let segment = Segment { parent: self.parent, key: free.key() };
                    let value = map.next_value_seed(Strict { parent: Some(&segment), refused: self.refused })?;
                    free.insert(value);
                }
            }
        }
        Ok(Json::Object(object))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_is_refused_in_any_string_or_key_and_named_by_its_path() {
        let cases = [
            (r#"{"name":"a\u0000b"}"#, "name"),
            (r#"{"filter":{"contactIds":["x","\u0000"]}}"#, "filter.contactIds"),
            (r#"{"a\u0000":1}"#, "a\u{0}"),
            (r#""\u0000""#, "body"),
        ];
        for (text, named) in cases {
            match parse(text.as_bytes()) {
                Err(JsonError::Nul { path }) => assert_eq!(path, named, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(parse(br#"{"name":"a\u0001b"}"#).is_ok(), "other control characters are text");
    }

    #[test]
    fn a_key_twice_is_refused_at_any_depth_and_named_by_its_path() {
        let cases = [
            (r#"{"contactIds":["x"],"contactIds":null}"#, "contactIds"),
            (r#"{"a":{"b":1,"b":2}}"#, "a.b"),
            (r#"[{"ok":1},{"x":[{"y":1,"y":1}]}]"#, "x.y"),
        ];
        for (text, path) in cases {
            match parse(text.as_bytes()) {
                Err(JsonError::DuplicateKey { path: found, error }) => {
                    assert_eq!(found, path, "{text}");
                    assert!(error.to_string().contains(&format!("the key '{path}' appears twice")), "{error}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn anything_else_reads_as_serde_json_reads_it() {
        let texts = [
            r#"{"a":[1,-2,3.5,1e300,"s",null,true,{"b":{}}],"c":"\u00e9\ud83d\ude00","a2":18446744073709551615}"#,
            "[]",
            "  7  ",
            r#"{"same":1,"other":{"same":2}}"#,
        ];
        for text in texts {
            let expected: Json = serde_json::from_str(text).unwrap();
            assert_eq!(parse(text.as_bytes()).unwrap(), expected, "{text}");
        }
        assert!(matches!(parse(b"{\"a\":1} x"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"{\"a\":"), Err(JsonError::Syntax(_))));
        assert_eq!(parse(br#"{"k":"v"}"#).unwrap(), json!({"k": "v"}));
    }

    pub(crate) mod arbitrary {
        use proptest::prelude::*;
        use serde_json::{Value as Json, json};

        use super::super::*;

        /// Any JSON value without repeated keys or U+0000, a few levels deep.
        pub(crate) fn value() -> impl Strategy<Value = Json> {
            let leaf = prop_oneof![
                Just(Json::Null),
                any::<bool>().prop_map(Json::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                "[^\u{0}]{0,12}".prop_map(Json::String),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                    prop::collection::btree_map("[a-z\u{80}-\u{2ff}]{0,6}", inner, 0..6)
                        .prop_map(|m| Json::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn any_json_without_repeats_or_nul_reads_as_serde_json_reads_it(value in value()) {
                let text = serde_json::to_vec(&value).unwrap();
                prop_assert_eq!(parse(&text).ok(), Some(value));
            }
        }
    }
}
