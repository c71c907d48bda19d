//! The analytics record: parsed from ingested JSON, stamped and masked before it is stored, and
//! shown back field by field in catalogue order.

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use crate::error::Result;
use crate::field::{FieldIndex, RECORD_FIELDS, idx, read_object};
use crate::project::ProjectSettings;
use crate::value::Value;
use crate::{ObjectId, field_index};

/// A stored record: one value per field of [`RECORD_FIELDS`], in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    values: Vec<Value>,
}

impl Record {
    /// Builds a record from values in catalogue order; the engines use this when reading rows.
    pub fn from_values(values: Vec<Value>) -> Self {
        debug_assert_eq!(values.len(), RECORD_FIELDS.len());
        Record { values }
    }

    pub fn get(&self, index: FieldIndex) -> &Value {
        &self.values[index]
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The record's id.
    pub fn id(&self) -> &str {
        self.values[idx::ID].as_text().unwrap_or_default()
    }

    /// The project the record belongs to.
    pub fn project_id(&self) -> ObjectId {
        self.values[idx::PROJECT_ID]
            .as_text()
            .and_then(|t| ObjectId::parse(t).ok())
            .unwrap_or_else(|| unreachable!("records are only built from validated values, whose projectId is an id"))
    }

    /// The record as a JSON object, every field present, in catalogue order.
    pub fn to_json(&self) -> Map<String, Json> {
        RECORD_FIELDS.iter().zip(&self.values).map(|(field, value)| (field.name.to_owned(), value.to_json())).collect()
    }
}

/// A record as a client sent it for ingest, validated but not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    values: Vec<Value>,
}

impl NewRecord {
    /// Validates one ingested JSON object. Server-set fields (`id`, `organisation`, `expiresAt`,
    /// `updatedAt`) are ignored, so that exported records can be imported again; unknown fields
    /// are refused, so that a misspelt name is not silently lost.
    pub fn parse(json: Json) -> Result<Self> {
        let values = read_object(RECORD_FIELDS, field_index, json, "record", "the analytics record")?;
        Ok(NewRecord { values })
    }

    /// The project named by the record.
    pub fn project_id(&self) -> ObjectId {
        self.values[idx::PROJECT_ID]
            .as_text()
            .and_then(|t| ObjectId::parse(t).ok())
            .unwrap_or_else(|| unreachable!("parse() requires a valid projectId"))
    }

    /// Completes the record for storage: a fresh id, the organisation, the ingest time as default
    /// timestamp, `updatedAt`, `expiresAt` from the project's retention, and masking. After this
    /// nothing in the record is in clear text that the project's settings say must not be stored.
    pub fn stamp(mut self, organisation: ObjectId, settings: &ProjectSettings, now: OffsetDateTime) -> Record {
        self.values[idx::ID] = Value::Text(ObjectId::generate().to_string());
        self.values[idx::ORGANISATION] = Value::Text(organisation.to_string());
        if self.values[idx::TIMESTAMP] == Value::Null {
            self.values[idx::TIMESTAMP] = Value::Time(now);
        }
        self.values[idx::UPDATED_AT] = Value::Time(now);
        self.values[idx::EXPIRES_AT] = settings.expiry(now).map_or(Value::Null, Value::Time);
        if settings.mask_sensitive {
            // inputData is a JSON value: its mask is the JSON string, so that it stays one.
            let masks = [(idx::INPUT_TEXT, Value::Text(MASK.to_owned())), (idx::INPUT_DATA, Value::Json(MASK.into()))];
            for (index, mask) in masks {
                if self.values[index] != Value::Null {
                    self.values[index] = mask;
                }
            }
        }
        if (settings.mask_sensitive || settings.mask_ip) && self.values[idx::IP] != Value::Null {
            self.values[idx::IP] = Value::Text(MASK.to_owned());
        }
        Record { values: self.values }
    }
}

/// What a masked value is replaced by.
pub const MASK: &str = "*****";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    fn minimal() -> Json {
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "contactId": "c", "sessionId": "s", "inputId": "i"})
    }

    #[test]
    fn requires_identity_fields() {
        for name in ["projectId", "contactId", "sessionId", "inputId"] {
            let mut json = minimal();
            json.as_object_mut().unwrap().remove(name);
            match NewRecord::parse(json) {
                Err(Error::Missing { details, .. }) => assert_eq!(details["field"], name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_server_fields_ignored() {
        let mut json = minimal();
        json["intnet"] = json!("x");
        assert!(matches!(NewRecord::parse(json), Err(Error::Invalid { details, .. }) if details["field"] == "intnet"));
        let mut json = minimal();
        json["id"] = json!("not even an id");
        json["updatedAt"] = json!(5);
        assert!(NewRecord::parse(json).is_ok());
    }

    /// Updates cannot bring back clear text that masking keeps off the disk: none of the fields
    /// masking replaces may be changed by `PATCH /v2.0/analytics`.
    #[test]
    fn masked_fields_are_not_editable() {
        for index in [idx::INPUT_TEXT, idx::INPUT_DATA, idx::IP] {
            assert!(!RECORD_FIELDS[index].editable, "{}", RECORD_FIELDS[index].name);
        }
    }

    #[test]
    fn stamping_masks_before_storage() {
        let mut json = minimal();
        json["inputText"] = json!("my card is 4111");
        json["ip"] = json!("10.1.2.3");
        let settings = ProjectSettings { mask_sensitive: true, ..ProjectSettings::default() };
        let now = crate::value::now();
        let record = NewRecord::parse(json).unwrap().stamp(ObjectId::generate(), &settings, now);
        assert_eq!(record.get(idx::INPUT_TEXT), &Value::Text(MASK.into()));
        assert_eq!(record.get(idx::IP), &Value::Text(MASK.into()));
        assert_eq!(record.get(idx::INPUT_DATA), &Value::Null);
        assert_eq!(record.get(idx::TIMESTAMP), &Value::Time(now));
        assert_eq!(record.to_json()["inputText"], json!(MASK));

        let mut json = minimal();
        json["inputData"] = json!({"card": "4111"});
        let record = NewRecord::parse(json).unwrap().stamp(ObjectId::generate(), &settings, now);
        assert_eq!(record.get(idx::INPUT_DATA), &Value::Json(json!(MASK)), "a JSON value, as the field's type says");
        assert!(matches!(record.get(idx::EXPIRES_AT), Value::Time(t) if *t > now));
    }
}
