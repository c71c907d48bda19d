//! Projects (bots) and their settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use crate::ObjectId;
use crate::error::{Error, Result};

/// A project: records belong to exactly one.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ObjectId,
    pub organisation: ObjectId,
    pub name: String,
    pub settings: ProjectSettings,
    /// What the reference SDK says about a bot besides its name.
    pub profile: ProjectProfile,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The properties the reference SDK sends when it creates a project (`locale`, which its types
/// require, `color` and `handoverConfiguration`), and a `description`: accepted, stored, returned,
/// and changed by `PATCH` (docs/contract/rest.md §5). Each is optional; `null` clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectProfile {
    /// The bot's primary locale, such as `en-US`.
    pub locale: Option<String>,
    /// The colour the reference product shows the project in, such as `#3f51b5` or `blue`.
    pub color: Option<String>,
    pub description: Option<String>,
    /// The reference product's settings for handing a conversation to a human agent, kept as sent.
    pub handover_configuration: Option<Json>,
}

/// The longest locale tag accepted (BCP 47 tags in use are far shorter).
const MAX_LOCALE_CHARS: usize = 35;
/// The longest colour accepted.
const MAX_COLOR_CHARS: usize = 64;
/// The longest description accepted.
const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The largest handover configuration accepted, as JSON text.
const MAX_HANDOVER_BYTES: usize = 16 * 1024;

impl ProjectProfile {
    /// The names of the properties, as clients send them.
    pub const NAMES: [&'static str; 4] = ["locale", "color", "description", "handoverConfiguration"];

    /// Sets the property `name` to `value` as a client sent it; `null` clears it. A value of the
    /// wrong type or too long is refused, naming the property.
    pub fn set(&mut self, name: &str, value: Json) -> Result<()> {
        match name {
            "locale" => self.locale = text(name, value, MAX_LOCALE_CHARS)?,
            "color" => self.color = text(name, value, MAX_COLOR_CHARS)?,
            "description" => self.description = text(name, value, MAX_DESCRIPTION_CHARS)?,
            "handoverConfiguration" => {
                self.handover_configuration = match value {
                    Json::Null => None,
                    Json::Object(_) if value.to_string().len() > MAX_HANDOVER_BYTES => {
                        return Err(Error::invalid(
                            name,
                            format!("must be at most {MAX_HANDOVER_BYTES} bytes of JSON"),
                        ));
                    }
                    Json::Object(_) => Some(value),
                    _ => return Err(Error::invalid(name, "must be an object")),
                }
            }
            _ => return Err(Error::invalid(name, "is not a property of a project")),
        }
        Ok(())
    }
}

/// A text property: a string of 1 to `max` characters without U+0000, or `null`.
fn text(name: &str, value: Json, max: usize) -> Result<Option<String>> {
    match value {
        Json::Null => Ok(None),
        Json::String(text) if text.trim().is_empty() => Err(Error::invalid(name, "must not be blank")),
        Json::String(text) if text.chars().count() > max => {
            Err(Error::invalid(name, format!("must be at most {max} characters long")))
        }
        Json::String(text) if text.contains('\0') => Err(Error::invalid(name, "must not contain U+0000")),
        Json::String(text) => Ok(Some(text)),
        _ => Err(Error::invalid(name, "must be a string")),
    }
}

/// Per-project data protection settings (docs/contract/operations.md, "Data protection").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSettings {
    /// When false, ingested records are dropped and counted.
    pub collect_analytics: bool,
    /// `inputText`, `inputData` and `ip` are masked before they are stored.
    pub mask_sensitive: bool,
    /// `ip` is masked before it is stored.
    pub mask_ip: bool,
    /// Days a record is kept; 0 keeps it forever.
    pub retention_days: u32,
    /// When false, ingested conversation messages are dropped and counted.
    #[serde(default = "yes")]
    pub collect_conversations: bool,
    /// Days a message is kept, when fewer than `retention_days`; 0 keeps messages as long as
    /// records.
    #[serde(default)]
    pub transcript_retention_days: u32,
    /// How the reports read a rating.
    #[serde(default)]
    pub rating_scale: RatingScale,
}

/// How a project's ratings are read by the reports (docs/contract/insights.md, "Precise rules").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RatingScale {
    /// −1 or 1: positive above 0, negative below 0.
    #[default]
    Binary,
    /// 0 to 10: positive from 5, negative below 5.
    Ten,
}

impl RatingScale {
    pub const NAMES: [&'static str; 2] = ["binary", "ten"];

    pub fn is_positive(self, rating: f64) -> bool {
        match self {
            RatingScale::Binary => rating > 0.0,
            RatingScale::Ten => rating >= 5.0,
        }
    }

    pub fn is_negative(self, rating: f64) -> bool {
        match self {
            RatingScale::Binary => rating < 0.0,
            RatingScale::Ten => rating < 5.0,
        }
    }
}

/// The settings whose values are words, with the words each takes.
pub const WORD_SETTINGS: [(&str, &[&str]); 1] = [("ratingScale", &RatingScale::NAMES)];

fn yes() -> bool {
    true
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings {
            collect_analytics: true,
            mask_sensitive: false,
            mask_ip: false,
            retention_days: 365,
            collect_conversations: true,
            transcript_retention_days: 0,
            rating_scale: RatingScale::Binary,
        }
    }
}

/// The longest retention accepted: 100 years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

impl ProjectSettings {
    /// When a record written at `now` expires, if ever.
    pub fn expiry(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (self.retention_days > 0).then(|| now + time::Duration::days(i64::from(self.retention_days)))
    }

    /// Merges the settings named in `patch` into these; unknown names and wrong types are refused.
    pub fn merge(&self, patch: Json) -> Result<Self> {
        let Json::Object(patch) = patch else {
            return Err(Error::invalid("settings", "must be an object"));
        };
        let mut merged = match serde_json::to_value(self) {
            Ok(Json::Object(map)) => map,
            _ => Map::new(),
        };
        for (name, mut value) in patch {
            let field = format!("settings.{name}");
            let current = merged.get(&name).ok_or_else(|| Error::invalid(&field, "is not a project setting"))?;
            let words = WORD_SETTINGS.iter().find(|(word, _)| *word == name).map(|(_, words)| *words);
            let fits = match current {
                Json::Bool(_) => value.is_boolean(),
                Json::String(_) => value.as_str().is_some_and(|v| words.unwrap_or_default().contains(&v)),
                _ => {
                    // A whole number, also when written with a fraction of zero (`30.0`).
                    let days = value.as_u64().or_else(|| {
                        value.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=1e9).contains(f)).map(|f| f as u64)
                    });
                    value = days.map_or(value, Json::from);
                    days.is_some_and(|days| days <= u64::from(MAX_RETENTION_DAYS))
                }
            };
            if !fits {
                let reason = match current {
                    Json::Bool(_) => "must be true or false".to_owned(),
                    Json::String(_) => format!("must be one of {}", words.unwrap_or_default().join(", ")),
                    _ => format!("must be a whole number of days from 0 to {MAX_RETENTION_DAYS}"),
                };
                return Err(Error::invalid(&field, reason));
            }
            merged.insert(name, value);
        }
        serde_json::from_value(Json::Object(merged)).map_err(|e| Error::invalid("settings", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_retention_written_with_a_zero_fraction_is_a_whole_number() {
        let merged = ProjectSettings::default().merge(json!({"retentionDays": 30.0})).unwrap();
        assert_eq!(merged.retention_days, 30);
        for bad in [json!(30.5), json!(-1.0), json!(36_501.0)] {
            let error = ProjectSettings::default().merge(json!({"retentionDays": bad})).unwrap_err();
            assert!(error.to_string().contains("whole number of days from 0 to 36500"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_rating_scale_is_one_of_its_words() {
        let merged = ProjectSettings::default().merge(json!({"ratingScale": "ten"})).unwrap();
        assert_eq!(merged.rating_scale, RatingScale::Ten);
        for bad in [json!("five"), json!(10), json!(null)] {
            let error = ProjectSettings::default().merge(json!({"ratingScale": bad})).unwrap_err();
            assert!(error.to_string().contains("must be one of binary, ten"), "{bad}: {error}");
        }
    }

    #[test]
    fn merge_changes_only_what_is_named() {
        let merged = ProjectSettings::default().merge(json!({"maskIp": true})).unwrap();
        assert!(merged.mask_ip);
        assert_eq!(merged.retention_days, 365);
        assert!(merged.collect_analytics);
    }

    #[test]
    fn merge_refuses_unknown_and_mistyped() {
        assert!(ProjectSettings::default().merge(json!({"maskIP": true})).is_err());
        assert!(ProjectSettings::default().merge(json!({"maskIp": "yes"})).is_err());
        assert!(ProjectSettings::default().merge(json!({"retentionDays": -1})).is_err());
        assert!(ProjectSettings::default().merge(json!({"retentionDays": 1.5})).is_err());
        assert!(ProjectSettings::default().merge(json!([])).is_err());
    }

    #[test]
    fn a_profile_takes_what_the_sdk_sends_and_null_clears_it() {
        let mut profile = ProjectProfile::default();
        profile.set("locale", json!("en-US")).unwrap();
        profile.set("color", json!("#3f51b5")).unwrap();
        profile.set("handoverConfiguration", json!({"provider": "none"})).unwrap();
        assert_eq!(profile.locale.as_deref(), Some("en-US"));
        assert_eq!(profile.handover_configuration, Some(json!({"provider": "none"})));
        profile.set("color", Json::Null).unwrap();
        assert_eq!(profile.color, None);
    }

    #[test]
    fn a_profile_refuses_wrong_types_and_sizes_naming_the_property() {
        let mut profile = ProjectProfile::default();
        let refused = |name: &str, value: Json| ProjectProfile::default().set(name, value).unwrap_err().to_string();
        assert_eq!(refused("locale", json!(7)), "Validation failed. 'locale' must be a string.");
        assert_eq!(refused("locale", json!(" ")), "Validation failed. 'locale' must not be blank.");
        assert_eq!(
            refused("locale", json!("x".repeat(36))),
            "Validation failed. 'locale' must be at most 35 characters long."
        );
        assert_eq!(refused("color", json!("a\u{0}b")), "Validation failed. 'color' must not contain U+0000.");
        assert_eq!(
            refused("handoverConfiguration", json!([])),
            "Validation failed. 'handoverConfiguration' must be an object."
        );
        let big = json!({"x": "y".repeat(MAX_HANDOVER_BYTES)});
        assert!(refused("handoverConfiguration", big).contains("at most 16384 bytes"));
        assert!(profile.set("colour", json!("red")).is_err());
    }

    #[test]
    fn zero_retention_keeps_forever() {
        let settings = ProjectSettings { retention_days: 0, ..Default::default() };
        assert_eq!(settings.expiry(crate::value::now()), None);
    }
}
