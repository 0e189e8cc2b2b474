//! Finds configuration fields that look like secrets but are plain strings, so that a test can
//! fail when someone adds a `password: String` instead of a [`crate::Secret`].
//!
//! The schema of a `Deserialize` type is walked through serde itself: a deserializer that
//! answers `deserialize_struct` with one chosen field at a time records every field path and,
//! at each leaf, what the field's type asked for (a string, a [`crate::Secret`], anything else).
//! No value of the type is needed, so fields that are absent from default configurations
//! (`Option`s) are found too.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess};
use serde::de::{IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// Field names that suggest a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "secret",
    "token",
    "key",
    "credential",
    "api_url",
];

/// How deep the walk goes. Recursive types (a route's child routes) are also walked only one
/// level into themselves.
const MAX_DEPTH: usize = 24;

/// What a leaf field's type asked the deserializer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// A string (or a type parsed from one: durations, paths, URLs).
    Str,
    /// A [`crate::Secret`].
    Secret,
    /// Any self-describing value (`serde_yaml::Value`): may hold a string in clear.
    Any,
    /// Numbers, booleans, enums, bytes.
    Other,
}

/// One leaf field of a configuration type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Dotted path from the root, e.g. `s3.secret_access_key` (sequences and maps are
    /// transparent: their elements share the path).
    pub path: String,
    pub kind: LeafKind,
}

/// Every leaf field of `T`, with what its type asks for.
pub fn leaves<T: DeserializeOwned>() -> Vec<Leaf> {
    let mut out = Vec::new();
    let mut pending: Vec<Vec<&'static str>> = vec![Vec::new()];
    while let Some(steps) = pending.pop() {
        match explore::<T>(&steps) {
            Outcome::Struct { name, fields, seen } => {
                if steps.len() >= MAX_DEPTH || seen.iter().filter(|n| **n == name).count() > 2 {
                    continue;
                }
                for f in fields.iter().rev() {
                    let mut next = steps.clone();
                    next.push(f);
                    pending.push(next);
                }
            }
            Outcome::Leaf(kind) => out.push(Leaf {
                path: steps.join("."),
                kind,
            }),
            Outcome::Unreached => {}
        }
    }
    out
}

/// Whether a field name suggests a secret (and is not a file path: `*_file` fields name files
/// whose content is the secret).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.ends_with("_file") && SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Paths of the fields of `T` whose name [`looks_secret`] but whose type could hold the secret
/// in clear (a string or an arbitrary value), except those whose last segment is in `allowed`
/// (names that only look like secrets, e.g. `access_key_id`).
pub fn plain_secret_fields<T: DeserializeOwned>(allowed: &[&str]) -> Vec<String> {
    leaves::<T>()
        .into_iter()
        .filter(|l| matches!(l.kind, LeafKind::Str | LeafKind::Any))
        .filter(|l| {
            let name = l.path.rsplit('.').next().unwrap_or_default();
            looks_secret(name) && !allowed.contains(&name)
        })
        .map(|l| l.path)
        .collect()
}

enum Outcome {
    Struct {
        name: &'static str,
        fields: &'static [&'static str],
        /// Struct names met on the way, this one included.
        seen: Vec<&'static str>,
    },
    Leaf(LeafKind),
    Unreached,
}

#[derive(Default)]
struct State {
    outcome: Option<Outcome>,
    seen: Vec<&'static str>,
}

/// Ends every walk: the walk is over once the step list is used up.
#[derive(Debug)]
struct Stop(String);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop(msg.to_string())
    }
}

fn explore<T: DeserializeOwned>(steps: &[&'static str]) -> Outcome {
    let state = RefCell::new(State::default());
    // Every walk ends in an error by design; what matters is what it recorded.
    let _ = T::deserialize(Walker {
        steps,
        state: &state,
    });
    let st = state.into_inner();
    match st.outcome {
        Some(Outcome::Struct { name, fields, .. }) => Outcome::Struct {
            name,
            fields,
            seen: st.seen,
        },
        Some(o) => o,
        None => Outcome::Unreached,
    }
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    steps: &'a [&'static str],
    state: &'a RefCell<State>,
}

impl<'a> Walker<'a> {
    fn leaf<V>(self, kind: LeafKind) -> Result<V, Stop> {
        // A leaf before the steps are used up: the path does not exist as asked.
        if self.steps.is_empty() {
            self.state.borrow_mut().outcome = Some(Outcome::Leaf(kind));
        }
        Err(Stop("leaf".into()))
    }
}

struct OneField<'a> {
    key: Option<&'static str>,
    value: Walker<'a>,
}

impl<'de, 'a> MapAccess<'de> for OneField<'a> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(self.value)
    }
}

/// A map or sequence with one element whose value continues the walk.
struct OneElement<'a> {
    value: Option<Walker<'a>>,
    key_done: bool,
}

impl<'de, 'a> SeqAccess<'de> for OneElement<'a> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        match self.value.take() {
            Some(w) => seed.deserialize(w).map(Some),
            None => Ok(None),
        }
    }
}

impl<'de, 'a> MapAccess<'de> for OneElement<'a> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        if self.key_done || self.value.is_none() {
            return Ok(None);
        }
        self.key_done = true;
        seed.deserialize("k".into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        match self.value.take() {
            Some(w) => seed.deserialize(w),
            None => Err(Stop("no value".into())),
        }
    }
}

macro_rules! leaf_methods {
    ($kind:expr => $($m:ident),*) => {
        $(fn $m<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Stop> {
            self.leaf($kind)
        })*
    };
}

impl<'de, 'a> Deserializer<'de> for Walker<'a> {
    type Error = Stop;

    leaf_methods!(LeafKind::Str => deserialize_str, deserialize_string, deserialize_char);
    leaf_methods!(LeafKind::Any => deserialize_any);
    leaf_methods!(LeafKind::Other => deserialize_bool, deserialize_i8, deserialize_i16,
        deserialize_i32, deserialize_i64, deserialize_i128, deserialize_u8, deserialize_u16,
        deserialize_u32, deserialize_u64, deserialize_u128, deserialize_f32, deserialize_f64,
        deserialize_bytes, deserialize_byte_buf, deserialize_unit, deserialize_identifier,
        deserialize_ignored_any);

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _v: V,
    ) -> Result<V::Value, Stop> {
        self.leaf(LeafKind::Other)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Stop> {
        self.leaf(LeafKind::Other)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Stop> {
        if name == crate::secret::SECRET_TYPE_NAME {
            return self.leaf(LeafKind::Secret);
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        v.visit_seq(OneElement {
            value: Some(self),
            key_done: false,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Stop> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        v.visit_map(OneElement {
            value: Some(self),
            key_done: false,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        self.state.borrow_mut().seen.push(name);
        let Some((step, rest)) = self.steps.split_first() else {
            self.state.borrow_mut().outcome = Some(Outcome::Struct {
                name,
                fields,
                seen: Vec::new(),
            });
            return Err(Stop("struct".into()));
        };
        let Some(key) = fields.iter().copied().find(|f| f == step) else {
            return Err(Stop("no such field".into()));
        };
        v.visit_map(OneField {
            key: Some(key),
            value: Walker {
                steps: rest,
                state: self.state,
            },
        })
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Auth {
        username: String,
        password: Option<Secret>,
        password_file: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Node {
        name: String,
        #[serde(rename = "api_token")]
        token: String,
        auth: Vec<Auth>,
        extra: Option<serde_yaml::Value>,
        by_name: BTreeMap<String, Auth>,
        children: Option<Vec<Node>>,
        #[serde(with = "humantime_serde")]
        timeout: std::time::Duration,
        count: usize,
        access_key_id: String,
    }

    #[test]
    fn walks_every_field_of_nested_and_optional_types() {
        let leaves = leaves::<Node>();
        let get = |p: &str| {
            leaves
                .iter()
                .find(|l| l.path == p)
                .unwrap_or_else(|| panic!("{p} not found in {leaves:?}"))
                .kind
        };
        assert_eq!(get("name"), LeafKind::Str);
        assert_eq!(get("api_token"), LeafKind::Str);
        assert_eq!(get("auth.password"), LeafKind::Secret);
        assert_eq!(get("auth.password_file"), LeafKind::Str);
        assert_eq!(get("by_name.password"), LeafKind::Secret);
        assert_eq!(get("extra"), LeafKind::Any);
        assert_eq!(get("count"), LeafKind::Other);
        assert_eq!(get("children.auth.password"), LeafKind::Secret);
        assert_eq!(get("timeout"), LeafKind::Str);
    }

    #[test]
    fn plain_secrets_are_found() {
        assert_eq!(
            plain_secret_fields::<Node>(&["access_key_id"]),
            vec!["api_token".to_string(), "children.api_token".to_string()]
        );
        assert!(looks_secret("smtp_auth_password"));
        assert!(looks_secret("slack_api_url"));
        assert!(!looks_secret("password_file"));
        assert!(!looks_secret("url"));
    }
}
