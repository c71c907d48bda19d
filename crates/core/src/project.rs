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
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
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
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings { collect_analytics: true, mask_sensitive: false, mask_ip: false, retention_days: 365 }
    }
}

/// The longest retention accepted: 100 years.
const MAX_RETENTION_DAYS: u32 = 36_500;

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
        for (name, value) in patch {
            let field = format!("settings.{name}");
            let current = merged.get(&name).ok_or_else(|| Error::invalid(&field, "is not a project setting"))?;
            let fits = match current {
                Json::Bool(_) => value.is_boolean(),
                _ => value.as_u64().is_some_and(|days| days <= u64::from(MAX_RETENTION_DAYS)),
            };
            if !fits {
                let reason = match current {
                    Json::Bool(_) => "must be true or false".to_owned(),
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
    fn zero_retention_keeps_forever() {
        let settings = ProjectSettings { retention_days: 0, ..Default::default() };
        assert_eq!(settings.expiry(crate::value::now()), None);
    }
}
