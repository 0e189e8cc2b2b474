//! [`Secret`]: a configuration value (password, key, token, secret URL) that is read from
//! configuration files but never written back out in clear.
//!
//! Like Prometheus's and Alertmanager's `config.Secret`, a secret deserializes from a plain
//! string and serializes as `<secret>`, so every place that shows a configuration (`/config`,
//! Alertmanager's `/api/v2/status`, logs, `{:?}`) shows the placeholder. The value is reached
//! only through [`Secret::expose`], at the one place that uses it.
//!
//! A configuration shown by Strata and loaded again must not silently turn the placeholder into
//! a credential: deserializing the literal `<secret>` is an error that names the field (and,
//! in YAML, its line), telling the operator to write the real value.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// What a [`Secret`] serializes and prints as when it is set.
pub const SECRET_PLACEHOLDER: &str = "<secret>";

/// The name [`Secret`] gives serde (`deserialize_newtype_struct`); [`crate::secret_audit`]
/// recognises secret fields by it.
pub const SECRET_TYPE_NAME: &str = "strata_model::Secret";

/// A secret string. Serializes as [`SECRET_PLACEHOLDER`] (an empty secret as the empty string,
/// so unset secrets round-trip); `Debug` and `Display` print the same.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value. Code may build any secret; only deserialization refuses the placeholder.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must use it (an HTTP header, a client
    /// builder). Never log or serialize what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What serialization, `Debug` and `Display` show: the placeholder, or nothing when unset.
    pub fn shown(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            SECRET_PLACEHOLDER
        }
    }

    /// Checks a value read from a configuration: the placeholder is refused.
    pub fn from_config(value: String) -> Result<Self, PlaceholderError> {
        if value == SECRET_PLACEHOLDER {
            return Err(PlaceholderError);
        }
        Ok(Self(value))
    }
}

/// A configuration holds the literal placeholder where a secret belongs: it was copied from a
/// redacted view (`/config`, `/api/v2/status`) instead of written with the real value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`<secret>` is the placeholder Strata shows instead of a secret, not a value: write the real secret here")]
pub struct PlaceholderError;

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Secret, D::Error> {
                // Refused inside the string's own visit, so that the format attaches the
                // field's path and line to the error.
                d.deserialize_string(self)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Secret::from_config(v.to_owned()).map_err(E::custom)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Secret::from_config(v).map_err(E::custom)
            }
        }
        // A newtype struct, so that the schema walk of `secret_audit` can tell a secret from a
        // plain string; every self-describing format forwards it to the string inside.
        d.deserialize_newtype_struct(SECRET_TYPE_NAME, V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Holder {
        #[serde(default)]
        password: Secret,
        #[serde(default)]
        other: Option<Secret>,
    }

    #[test]
    fn serializes_and_prints_the_placeholder() {
        let h: Holder = serde_yaml::from_str("password: hunter2\nother: s3cr3t\n").unwrap();
        assert_eq!(h.password.expose(), "hunter2");
        assert_eq!(h.other.as_ref().map(Secret::expose), Some("s3cr3t"));
        let text = serde_yaml::to_string(&h).unwrap();
        assert_eq!(text, "password: <secret>\nother: <secret>\n");
        let json = serde_json::to_string(&h).unwrap();
        assert!(
            !json.contains("hunter2") && !json.contains("s3cr3t"),
            "{json}"
        );
        let dbg = format!("{h:?} {} {}", h.password, h.password.clone());
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<secret>"), "{dbg}");
    }

    #[test]
    fn empty_secrets_round_trip() {
        let h = Holder {
            password: Secret::default(),
            other: None,
        };
        let text = serde_yaml::to_string(&h).unwrap();
        assert_eq!(serde_yaml::from_str::<Holder>(&text).unwrap(), h);
        assert_eq!(format!("{:?}", h.password), "\"\"");
    }

    #[test]
    fn the_placeholder_is_not_a_value() {
        let e = serde_yaml::from_str::<Holder>("other: x\npassword: <secret>\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("placeholder"), "{msg}");
        assert!(msg.contains("password"), "names the field: {msg}");
        assert!(msg.contains("line 2"), "names the line: {msg}");
        let e = serde_json::from_str::<Holder>(r#"{"other":"<secret>"}"#).unwrap_err();
        assert!(e.to_string().contains("placeholder"), "{e}");
        // Shown text loaded again fails instead of becoming a credential.
        let shown = serde_yaml::to_string(&Holder {
            password: "real".into(),
            other: None,
        })
        .unwrap();
        assert!(serde_yaml::from_str::<Holder>(&shown).is_err());
    }
}
