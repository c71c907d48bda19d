//! The catalogue of record fields. Everything that needs to know the record's shape (ingest and
//! update validation, SQL column lists, representations, OData metadata) reads it from here, so a
//! field is described once.

/// How a field's value is typed on the wire and in storage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    /// A 24-hex id (`id`, `projectId`).
    Id,
    /// Text with a maximum length in characters.
    Text {
        max_chars: usize,
    },
    /// Text with a maximum length in UTF-8 bytes (`inputText`).
    LongText {
        max_bytes: usize,
    },
    /// A UTC instant, millisecond precision.
    DateTime,
    /// Any JSON value; its serialised form is at most `max_bytes`.
    Json {
        max_bytes: usize,
    },
    /// A list of strings.
    TextList,
    /// A finite floating-point number, optionally bounded.
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A whole number, at least `min`.
    Integer {
        min: i64,
    },
    Boolean,
}

/// Who sets a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Set by parley; ignored when a client sends it on ingest.
    Server,
    /// Must be given on ingest.
    Required,
    /// May be given on ingest; absent means null (or a default, for `timestamp`).
    Optional,
}

/// One field of the analytics record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    /// The wire name, identical in JSON, XML, CSV and OData.
    pub name: &'static str,
    /// The storage column.
    pub column: &'static str,
    pub ty: FieldType,
    pub origin: Origin,
    /// May be changed by `PATCH /v2.0/analytics`.
    pub editable: bool,
    /// May hold null. Required fields never do, nor the identity and bookkeeping fields that
    /// parley sets.
    pub null: bool,
}

impl Field {
    /// Whether the field may hold null.
    pub fn nullable(&self) -> bool {
        self.null
    }
}

/// A field that is never null, though clients need not send it (parley sets or defaults it).
pub(crate) const fn not_null(field: Field) -> Field {
    Field { null: false, ..field }
}

/// Position of a field in [`RECORD_FIELDS`]; also the position of its value in a record.
pub type FieldIndex = usize;

pub(crate) const SHORT: FieldType = FieldType::Text { max_chars: 1024 };
pub(crate) const JSON: FieldType = FieldType::Json { max_bytes: 16 * 1024 };
pub(crate) const NUMBER: FieldType = FieldType::Number { min: None, max: None };

pub(crate) const fn field(
    name: &'static str,
    column: &'static str,
    ty: FieldType,
    origin: Origin,
    editable: bool,
) -> Field {
    Field { name, column, ty, origin, editable, null: !matches!(origin, Origin::Required) }
}

use Origin::{Optional, Required, Server};

/// Every field of the analytics record, in the order representations show them.
pub static RECORD_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    not_null(field("organisation", "organisation", SHORT, Server, false)),
    field("projectId", "project_id", FieldType::Id, Required, false),
    field("contactId", "contact_id", SHORT, Required, false),
    field("sessionId", "session_id", SHORT, Required, false),
    field("inputId", "input_id", SHORT, Required, false),
    not_null(field("timestamp", "timestamp", FieldType::DateTime, Optional, false)),
    field("inputText", "input_text", FieldType::LongText { max_bytes: 16 * 1024 }, Optional, false),
    field("inputData", "input_data", JSON, Optional, false),
    field("state", "state", SHORT, Optional, true),
    field("mode", "mode", SHORT, Optional, true),
    field("userType", "user_type", SHORT, Optional, true),
    field("channel", "channel", SHORT, Optional, true),
    field("flowLanguage", "flow_language", SHORT, Optional, true),
    field("flowName", "flow_name", SHORT, Optional, true),
    field("flowReferenceId", "flow_reference_id", SHORT, Optional, false),
    field("entrypoint", "entrypoint", SHORT, Optional, false),
    field("entrypointType", "entrypoint_type", SHORT, Optional, true),
    field("intent", "intent", SHORT, Optional, true),
    field("intentFlow", "intent_flow", SHORT, Optional, true),
    field("intentScore", "intent_score", FieldType::Number { min: Some(0.0), max: Some(1.0) }, Optional, true),
    field("slots", "slots", JSON, Optional, true),
    field("foundSlots", "found_slots", SHORT, Optional, false),
    field("foundSlotDetails", "found_slot_details", SHORT, Optional, false),
    field("completedGoals", "completed_goals", FieldType::TextList, Optional, false),
    field("trackedGoals", "tracked_goals", FieldType::TextList, Optional, true),
    field("understood", "understood", FieldType::Boolean, Optional, false),
    field("executionTime", "execution_time", FieldType::Number { min: Some(0.0), max: None }, Optional, false),
    field("execution", "execution", FieldType::Integer { min: 0 }, Optional, false),
    field("localeName", "locale_name", SHORT, Optional, true),
    field("localeReferenceId", "locale_reference_id", SHORT, Optional, false),
    field("endpointName", "endpoint_name", SHORT, Optional, true),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Optional, true),
    field("endpointType", "endpoint_type", SHORT, Optional, false),
    field("snapshotName", "snapshot_name", SHORT, Optional, true),
    field("rating", "rating", NUMBER, Optional, true),
    field("ratingComment", "rating_comment", SHORT, Optional, true),
    field("inHandoverRequest", "in_handover_request", FieldType::Boolean, Optional, true),
    field("inHandoverConversation", "in_handover_conversation", FieldType::Boolean, Optional, true),
    field("handoverEscalations", "handover_escalations", FieldType::Integer { min: 0 }, Optional, true),
    field("custom1", "custom1", SHORT, Optional, true),
    field("custom2", "custom2", SHORT, Optional, true),
    field("custom3", "custom3", SHORT, Optional, true),
    field("custom4", "custom4", SHORT, Optional, true),
    field("custom5", "custom5", SHORT, Optional, true),
    field("custom6", "custom6", SHORT, Optional, true),
    field("custom7", "custom7", SHORT, Optional, true),
    field("custom8", "custom8", SHORT, Optional, true),
    field("custom9", "custom9", SHORT, Optional, true),
    field("custom10", "custom10", SHORT, Optional, true),
    field("ip", "ip", SHORT, Optional, false),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
    not_null(field("updatedAt", "updated_at", FieldType::DateTime, Server, false)),
];

/// Positions of the fields the code refers to by name.
pub mod idx {
    use super::FieldIndex;
    pub const ID: FieldIndex = 0;
    pub const ORGANISATION: FieldIndex = 1;
    pub const PROJECT_ID: FieldIndex = 2;
    pub const CONTACT_ID: FieldIndex = 3;
    pub const SESSION_ID: FieldIndex = 4;
    pub const INPUT_ID: FieldIndex = 5;
    pub const TIMESTAMP: FieldIndex = 6;
    pub const INPUT_TEXT: FieldIndex = 7;
    pub const INPUT_DATA: FieldIndex = 8;
    pub const STATE: FieldIndex = 9;
    pub const CHANNEL: FieldIndex = 12;
    pub const FLOW_NAME: FieldIndex = 14;
    pub const ENTRYPOINT: FieldIndex = 16;
    pub const INTENT: FieldIndex = 18;
    pub const INTENT_SCORE: FieldIndex = 20;
    pub const SLOTS: FieldIndex = 21;
    pub const UNDERSTOOD: FieldIndex = 26;
    pub const LOCALE_NAME: FieldIndex = 29;
    pub const LOCALE_REFERENCE_ID: FieldIndex = 30;
    pub const ENDPOINT_NAME: FieldIndex = 31;
    pub const ENDPOINT_URL_TOKEN: FieldIndex = 32;
    pub const SNAPSHOT_NAME: FieldIndex = 34;
    pub const RATING: FieldIndex = 35;
    pub const RATING_COMMENT: FieldIndex = 36;
    pub const HANDOVER_ESCALATIONS: FieldIndex = 39;
    pub const IP: FieldIndex = 50;
    pub const EXPIRES_AT: FieldIndex = 51;
    pub const UPDATED_AT: FieldIndex = 52;
}

/// The field with this wire name. Ingest looks up every key of every record, so this is a
/// hash lookup rather than a walk along the catalogue.
pub fn field_index(name: &str) -> Option<FieldIndex> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, FieldIndex>> =
        std::sync::OnceLock::new();
    BY_NAME.get_or_init(|| RECORD_FIELDS.iter().enumerate().map(|(i, f)| (f.name, i)).collect()).get(name).copied()
}

/// Reads one ingested JSON object into one value per field of `fields`, in their order.
/// Server-set fields are ignored, so that exported rows can be imported again; unknown names are
/// refused, so that a misspelt name is not silently lost; a required field missing (or null) is
/// `Missing` (code 1000), as docs/contract/rest.md §2 has it.
/// `noun` names a row in errors ("record"), `whole` the thing whose fields these are ("the
/// analytics record").
pub fn read_object(
    fields: &[Field],
    position: impl Fn(&str) -> Option<FieldIndex>,
    json: serde_json::Value,
    noun: &str,
    whole: &str,
) -> crate::Result<Vec<crate::Value>> {
    use crate::error::Error;
    let serde_json::Value::Object(object) = json else {
        return Err(Error::Invalid {
            detail: format!("Validation failed. Each {noun} must be a JSON object."),
            details: serde_json::Map::new(),
        });
    };
    let mut values = vec![crate::Value::Null; fields.len()];
    for (name, json) in object {
        let index = position(&name).ok_or_else(|| {
            let text = crate::suggest::with_suggestion(
                format!("is not a field of {whole}"),
                &name,
                fields.iter().filter(|f| f.origin != Origin::Server).map(|f| f.name),
            );
            Error::invalid(&name, text)
        })?;
        let field = &fields[index];
        if field.origin == Origin::Server {
            continue;
        }
        values[index] = crate::Value::from_json(field, json).map_err(|p| Error::invalid(&name, p.0))?;
    }
    for (field, value) in fields.iter().zip(&values) {
        if field.origin == Origin::Required && *value == crate::Value::Null {
            return Err(Error::missing(field.name));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_identity_and_bookkeeping_fields_are_never_null() {
        let never: Vec<_> = RECORD_FIELDS.iter().filter(|f| !f.nullable()).map(|f| f.name).collect();
        assert_eq!(
            never,
            ["id", "organisation", "projectId", "contactId", "sessionId", "inputId", "timestamp", "updatedAt"]
        );
    }

    #[test]
    fn named_positions_match_the_catalogue() {
        let pairs = [
            (idx::ID, "id"),
            (idx::ORGANISATION, "organisation"),
            (idx::PROJECT_ID, "projectId"),
            (idx::CONTACT_ID, "contactId"),
            (idx::SESSION_ID, "sessionId"),
            (idx::INPUT_ID, "inputId"),
            (idx::TIMESTAMP, "timestamp"),
            (idx::INPUT_TEXT, "inputText"),
            (idx::INPUT_DATA, "inputData"),
            (idx::STATE, "state"),
            (idx::CHANNEL, "channel"),
            (idx::INTENT, "intent"),
            (idx::INTENT_SCORE, "intentScore"),
            (idx::SLOTS, "slots"),
            (idx::UNDERSTOOD, "understood"),
            (idx::FLOW_NAME, "flowName"),
            (idx::ENTRYPOINT, "entrypoint"),
            (idx::LOCALE_NAME, "localeName"),
            (idx::LOCALE_REFERENCE_ID, "localeReferenceId"),
            (idx::ENDPOINT_NAME, "endpointName"),
            (idx::ENDPOINT_URL_TOKEN, "endpointUrlToken"),
            (idx::SNAPSHOT_NAME, "snapshotName"),
            (idx::RATING, "rating"),
            (idx::RATING_COMMENT, "ratingComment"),
            (idx::HANDOVER_ESCALATIONS, "handoverEscalations"),
            (idx::IP, "ip"),
            (idx::EXPIRES_AT, "expiresAt"),
            (idx::UPDATED_AT, "updatedAt"),
        ];
        for (index, name) in pairs {
            assert_eq!(RECORD_FIELDS[index].name, name);
        }
    }

    #[test]
    fn every_field_is_found_by_its_name_and_nothing_else() {
        for (i, field) in RECORD_FIELDS.iter().enumerate() {
            assert_eq!(field_index(field.name), Some(i));
        }
        assert_eq!(field_index("intnet"), None);
        assert_eq!(field_index(""), None);
        assert_eq!(field_index("Intent"), None);
    }

    #[test]
    fn names_and_columns_are_unique() {
        let mut names: Vec<_> = RECORD_FIELDS.iter().map(|f| f.name).collect();
        let mut columns: Vec<_> = RECORD_FIELDS.iter().map(|f| f.column).collect();
        names.sort();
        names.dedup();
        columns.sort();
        columns.dedup();
        assert_eq!(names.len(), RECORD_FIELDS.len());
        assert_eq!(columns.len(), RECORD_FIELDS.len());
    }

    #[test]
    fn editable_fields_are_exactly_those_of_the_contract() {
        let editable: Vec<_> = RECORD_FIELDS.iter().filter(|f| f.editable).map(|f| f.name).collect();
        let mut expected = vec![
            "state",
            "mode",
            "userType",
            "channel",
            "flowLanguage",
            "intent",
            "intentFlow",
            "flowName",
            "localeName",
            "ratingComment",
            "entrypointType",
            "endpointName",
            "endpointUrlToken",
            "snapshotName",
            "intentScore",
            "rating",
            "handoverEscalations",
            "inHandoverRequest",
            "inHandoverConversation",
            "trackedGoals",
            "slots",
        ];
        let customs: Vec<String> = (1..=10).map(|i| format!("custom{i}")).collect();
        expected.extend(customs.iter().map(String::as_str));
        let mut sorted = editable.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected);
    }
}
