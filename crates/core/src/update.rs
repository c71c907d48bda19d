//! The update request of `PATCH /v2.0/analytics`: which records, and which editable properties
//! change to what.

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::field::{FieldIndex, RECORD_FIELDS};
use crate::value::Value;
use crate::{ObjectId, field_index};

/// A validated update: every record of `project_id` with this contact (and session and input,
/// where given) gets `changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    pub project_id: ObjectId,
    pub contact_id: String,
    pub session_id: Option<String>,
    pub input_id: Option<String>,
    /// Editable fields and their new values (`Value::Null` clears), in the order given.
    pub changes: Vec<(FieldIndex, Value)>,
}

impl RecordUpdate {
    /// Validates the JSON body of an update.
    pub fn parse(body: Json) -> Result<Self> {
        let Json::Object(mut body) = body else {
            return Err(Error::invalid("body", "must be a JSON object"));
        };
        let project_id = match take_string(&mut body, "projectId")? {
            Some(text) => ObjectId::parse(&text).map_err(|e| Error::invalid("projectId", e))?,
            None => return Err(Error::missing("projectId")),
        };
        let contact_id = take_string(&mut body, "contactId")?.ok_or_else(|| Error::missing("contactId"))?;
        let session_id = take_string(&mut body, "sessionId")?;
        let input_id = take_string(&mut body, "inputId")?;
        let properties = match body.remove("properties") {
            None | Some(Json::Null) => return Err(Error::missing("properties")),
            Some(Json::Object(properties)) => properties,
            Some(_) => return Err(Error::invalid("properties", "must be an object")),
        };
        if let Some(name) = body.keys().next() {
            return Err(Error::invalid(name, "is not an argument of this request"));
        }
        let changes = parse_properties(properties)?;
        Ok(RecordUpdate { project_id, contact_id, session_id, input_id, changes })
    }

    /// The changes as a `properties` object, the form a pending update is stored in. Reading it
    /// back with [`RecordUpdate::with_properties`] gives the same changes.
    pub fn properties(&self) -> Map<String, Json> {
        self.changes.iter().map(|(index, value)| (RECORD_FIELDS[*index].name.to_owned(), value.to_json())).collect()
    }

    /// An update from its parts, `properties` checked as in [`RecordUpdate::parse`].
    pub fn with_properties(
        project_id: ObjectId,
        contact_id: String,
        session_id: Option<String>,
        input_id: Option<String>,
        properties: Map<String, Json>,
    ) -> Result<Self> {
        let changes = parse_properties(properties)?;
        Ok(RecordUpdate { project_id, contact_id, session_id, input_id, changes })
    }
}

/// Types the `properties` of an update: at least one, each editable and of its field's type.
fn parse_properties(properties: Map<String, Json>) -> Result<Vec<(FieldIndex, Value)>> {
    if properties.is_empty() {
        return Err(Error::Missing {
            detail: "Validation failed. 'properties' must name at least one editable field.".into(),
            details: Map::from_iter([("field".to_owned(), Json::from("properties"))]),
        });
    }
    properties
        .into_iter()
        .map(|(name, json)| {
            let field_name = format!("properties.{name}");
            let index = field_index(&name)
                .filter(|&i| RECORD_FIELDS[i].editable)
                .ok_or_else(|| Error::invalid(&field_name, "is not an editable property"))?;
            let value = Value::from_json(&RECORD_FIELDS[index], json).map_err(|p| Error::invalid(&field_name, p.0))?;
            Ok((index, value))
        })
        .collect()
}

/// Removes a string argument; `null` counts as absent; any other type is invalid.
fn take_string(body: &mut Map<String, Json>, name: &str) -> Result<Option<String>> {
    match body.remove(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) if text.chars().count() > 1024 => {
            Err(Error::invalid(name, "must be at most 1024 characters long"))
        }
        Some(Json::String(text)) if text.contains('\0') => {
            Err(Error::invalid(name, "must not contain the NUL character (U+0000)"))
        }
        Some(Json::String(text)) => Ok(Some(text)),
        Some(_) => Err(Error::invalid(name, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(properties: Json) -> Json {
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "contactId": "c", "properties": properties})
    }

    fn field_of(error: Error) -> String {
        match error {
            Error::Missing { details, .. } | Error::Invalid { details, .. } => {
                details["field"].as_str().unwrap().to_owned()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn takes_editable_properties_with_null() {
        let update = RecordUpdate::parse(body(json!({"rating": 9, "custom1": null, "slots": "x"}))).unwrap();
        assert_eq!(update.changes.len(), 3);
        assert_eq!(update.changes[1].1, Value::Null);
        assert_eq!(update.session_id, None);
    }

    #[test]
    fn refuses_non_editable_and_unknown_properties() {
        for name in ["inputText", "timestamp", "id", "ratting"] {
            let error = RecordUpdate::parse(body(json!({ name: "x" }))).unwrap_err();
            assert!(matches!(error, Error::Invalid { .. }));
            assert_eq!(field_of(error), format!("properties.{name}"));
        }
    }

    #[test]
    fn names_missing_arguments() {
        assert_eq!(
            field_of(RecordUpdate::parse(json!({"contactId": "c", "properties": {"rating": 1}})).unwrap_err()),
            "projectId"
        );
        assert_eq!(
            field_of(
                RecordUpdate::parse(json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "properties": {"rating": 1}}))
                    .unwrap_err()
            ),
            "contactId"
        );
        assert_eq!(
            field_of(
                RecordUpdate::parse(json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "contactId": "c"})).unwrap_err()
            ),
            "properties"
        );
        assert!(matches!(RecordUpdate::parse(body(json!({}))), Err(Error::Missing { .. })));
    }

    #[test]
    fn properties_read_back_as_the_same_changes() {
        let update = RecordUpdate::parse(body(json!({
            "rating": 0.1, "intentScore": 0.30000000000000004, "handoverEscalations": 9007199254740993u64,
            "custom1": null, "slots": {"z": [1, "x"], "a": null}, "trackedGoals": ["b", "a"], "inHandoverRequest": true
        })))
        .unwrap();
        let again = RecordUpdate::with_properties(
            update.project_id,
            update.contact_id.clone(),
            None,
            Some("i".into()),
            serde_json::from_str(&Json::Object(update.properties()).to_string()).unwrap(),
        )
        .unwrap();
        assert_eq!(again.changes, update.changes);
    }

    proptest::proptest! {
        /// A pending update is stored as JSON text and read back: every number must come back
        /// as the very same double (serde_json's `float_roundtrip`).
        #[test]
        fn numbers_survive_the_stored_form(bits in proptest::num::u64::ANY) {
            let rating = f64::from_bits(bits);
            proptest::prop_assume!(rating.is_finite());
            let update = RecordUpdate::parse(body(json!({ "rating": rating }))).unwrap();
            let text = Json::Object(update.properties()).to_string();
            let again = RecordUpdate::with_properties(
                update.project_id, update.contact_id.clone(), None, None, serde_json::from_str(&text).unwrap(),
            ).unwrap();
            proptest::prop_assert_eq!(&again.changes, &update.changes);
        }
    }

    #[test]
    fn refuses_malformed_ids_and_wrong_types() {
        let mut bad = body(json!({"rating": 1}));
        bad["projectId"] = json!("xyz");
        assert_eq!(field_of(RecordUpdate::parse(bad).unwrap_err()), "projectId");
        assert_eq!(field_of(RecordUpdate::parse(body(json!({"rating": "high"}))).unwrap_err()), "properties.rating");
        assert_eq!(
            field_of(RecordUpdate::parse(body(json!({"handoverEscalations": 1.5}))).unwrap_err()),
            "properties.handoverEscalations"
        );
        assert!(RecordUpdate::parse(json!([1])).is_err());
    }
}
