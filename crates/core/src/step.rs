//! Executed steps: one row per step (an annotated flow node or an intent) a bot went through in a
//! session, as the `ExecutedSteps` collection keeps it, and the step catalogue (`Steps`) parley
//! keeps from them (docs/contract/conversations.md, "Steps and ExecutedSteps").

use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::field::{Field, FieldIndex, FieldType, Origin, SHORT, field, not_null, read_object};
use crate::row::{Catalogue, Row, project_of};
use crate::value::Value;
use crate::{ObjectId, Project};

use Origin::{Optional, Required, Server};

/// The longest step label, in characters.
pub const LABEL_MAX_CHARS: usize = 128;

/// Every field of an executed step, in the order representations show them.
pub static EXECUTED_STEP_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    field("executionId", "execution_id", SHORT, Required, false),
    field("projectId", "project_id", FieldType::Id, Required, false),
    field("projectName", "project_name", SHORT, Server, false),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    field("sessionId", "session_id", SHORT, Required, false),
    field("userId", "contact_id", SHORT, Optional, false),
    field("inputId", "input_id", SHORT, Optional, false),
    field("stepLabel", "step_label", FieldType::Text { max_chars: LABEL_MAX_CHARS }, Required, false),
    field("type", "step_type", SHORT, Required, false),
    field("entityReferenceId", "entity_reference_id", SHORT, Required, false),
    field("parentStep", "parent_step", SHORT, Optional, false),
    field("flowReferenceId", "flow_reference_id", SHORT, Optional, false),
    field("flowName", "flow_name", SHORT, Optional, false),
    not_null(field("timestamp", "timestamp", FieldType::DateTime, Optional, false)),
    field("localeName", "locale_name", SHORT, Optional, false),
    field("localeReferenceId", "locale_reference_id", SHORT, Optional, false),
    field("endpointName", "endpoint_name", SHORT, Optional, false),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Optional, false),
    field("snapshotId", "snapshot_id", SHORT, Optional, false),
    field("snapshotName", "snapshot_name", SHORT, Optional, false),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
];

/// Positions of the fields the code refers to by name.
pub mod idx {
    use super::FieldIndex;
    pub const ID: FieldIndex = 0;
    pub const EXECUTION_ID: FieldIndex = 1;
    pub const PROJECT_ID: FieldIndex = 2;
    pub const PROJECT_NAME: FieldIndex = 3;
    pub const ORGANISATION: FieldIndex = 4;
    pub const SESSION_ID: FieldIndex = 5;
    pub const CONTACT_ID: FieldIndex = 6;
    pub const STEP_LABEL: FieldIndex = 8;
    pub const TYPE: FieldIndex = 9;
    pub const ENTITY_REFERENCE_ID: FieldIndex = 10;
    pub const PARENT_STEP: FieldIndex = 11;
    pub const FLOW_REFERENCE_ID: FieldIndex = 12;
    pub const FLOW_NAME: FieldIndex = 13;
    pub const TIMESTAMP: FieldIndex = 14;
    pub const LOCALE_NAME: FieldIndex = 15;
    pub const LOCALE_REFERENCE_ID: FieldIndex = 16;
    pub const ENDPOINT_NAME: FieldIndex = 17;
    pub const ENDPOINT_URL_TOKEN: FieldIndex = 18;
    pub const SNAPSHOT_ID: FieldIndex = 19;
    pub const SNAPSHOT_NAME: FieldIndex = 20;
    pub const EXPIRES_AT: FieldIndex = 21;
}

/// Every field of the step catalogue, one row per `(projectId, entityReferenceId)`. `label`,
/// `type`, the flow and the snapshot are those of the step's latest execution.
pub static STEP_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    not_null(field("entityReferenceId", "entity_reference_id", SHORT, Server, false)),
    not_null(field("label", "label", FieldType::Text { max_chars: LABEL_MAX_CHARS }, Server, false)),
    not_null(field("type", "step_type", SHORT, Server, false)),
    field("flowReferenceId", "flow_reference_id", SHORT, Server, false),
    field("flowName", "flow_name", SHORT, Server, false),
    field("projectName", "project_name", SHORT, Server, false),
    field("snapshotId", "snapshot_id", SHORT, Server, false),
    field("snapshotName", "snapshot_name", SHORT, Server, false),
];

/// The executed step's fields a catalogue step takes from its latest execution, as
/// (catalogue column, executed step field).
pub const CATALOGUED: [(&str, FieldIndex); 6] = [
    ("label", idx::STEP_LABEL),
    ("step_type", idx::TYPE),
    ("flow_reference_id", idx::FLOW_REFERENCE_ID),
    ("flow_name", idx::FLOW_NAME),
    ("snapshot_id", idx::SNAPSHOT_ID),
    ("snapshot_name", idx::SNAPSHOT_NAME),
];

/// The executed step field with this wire name.
pub fn executed_step_field(name: &str) -> Option<FieldIndex> {
    EXECUTED_STEP_FIELDS.iter().position(|f| f.name == name)
}

/// The values `type` takes.
pub const STEP_TYPES: [&str; 2] = ["node", "intent"];

/// The executed steps' catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutedSteps {}

impl Catalogue for ExecutedSteps {
    const FIELDS: &'static [Field] = EXECUTED_STEP_FIELDS;
    const PROJECT_ID: FieldIndex = idx::PROJECT_ID;
    const SESSION_ID: FieldIndex = idx::SESSION_ID;
}

/// A stored executed step: one value per field of [`EXECUTED_STEP_FIELDS`], in that order.
pub type ExecutedStep = Row<ExecutedSteps>;

/// An executed step as a client sent it for ingest, validated but not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    values: Vec<Value>,
}

impl NewStep {
    /// Validates one ingested JSON object: the field types of the catalogue and `type` from its
    /// list.
    pub fn parse(json: Json) -> Result<Self> {
        let values = read_object(EXECUTED_STEP_FIELDS, executed_step_field, json, "step", "an executed step")?;
        let kind = values[idx::TYPE].as_text().unwrap_or_default();
        if !STEP_TYPES.contains(&kind) {
            return Err(Error::invalid("type", format!("must be one of {}", STEP_TYPES.join(", "))));
        }
        Ok(NewStep { values })
    }

    /// The project named by the step.
    pub fn project_id(&self) -> ObjectId {
        project_of::<ExecutedSteps>(&self.values)
    }

    /// Completes the step for storage: a fresh id, the organisation and name of its project, the
    /// ingest time as default timestamp, and `expiresAt` from the project's retention (steps are
    /// kept as long as records).
    pub fn stamp(mut self, project: &Project, now: OffsetDateTime) -> ExecutedStep {
        self.values[idx::ID] = Value::Text(ObjectId::generate().to_string());
        self.values[idx::ORGANISATION] = Value::Text(project.organisation.to_string());
        self.values[idx::PROJECT_NAME] = Value::Text(project.name.clone());
        if self.values[idx::TIMESTAMP] == Value::Null {
            self.values[idx::TIMESTAMP] = Value::Time(now);
        }
        self.values[idx::EXPIRES_AT] = project.settings.expiry(now).map_or(Value::Null, Value::Time);
        ExecutedStep::from_values(self.values)
    }
}

/// The executed steps of one session, in execution order: by timestamp, then execution id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub execution_id: String,
    pub at: OffsetDateTime,
    pub entity_reference_id: String,
    /// The `parentStep` the client sent, if it did.
    pub sent_parent: Option<String>,
}

/// A session's step path: its executed steps' `entityReferenceId`s in execution order, joined
/// by `,`, and the `parentStep` of each step whose client left it out (the previous step's
/// `entityReferenceId`, null for the first), by execution id.
pub fn step_path(mut steps: Vec<Executed>) -> (String, Vec<(String, Option<String>)>) {
    steps.sort_by(|a, b| (a.at, &a.execution_id).cmp(&(b.at, &b.execution_id)));
    let path: Vec<&str> = steps.iter().map(|s| s.entity_reference_id.as_str()).collect();
    let parents = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.sent_parent.is_none())
        .map(|(i, s)| (s.execution_id.clone(), i.checked_sub(1).map(|p| steps[p].entity_reference_id.clone())))
        .collect();
    (path.join(","), parents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn minimal() -> Json {
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "executionId": "e1",
               "entityReferenceId": "node-1", "stepLabel": "Greeting", "type": "node"})
    }

    #[test]
    fn named_positions_match_the_catalogue() {
        for (index, name) in [
            (idx::ID, "id"),
            (idx::EXECUTION_ID, "executionId"),
            (idx::PROJECT_ID, "projectId"),
            (idx::PROJECT_NAME, "projectName"),
            (idx::ORGANISATION, "organisationId"),
            (idx::SESSION_ID, "sessionId"),
            (idx::CONTACT_ID, "userId"),
            (idx::STEP_LABEL, "stepLabel"),
            (idx::TYPE, "type"),
            (idx::ENTITY_REFERENCE_ID, "entityReferenceId"),
            (idx::PARENT_STEP, "parentStep"),
            (idx::FLOW_REFERENCE_ID, "flowReferenceId"),
            (idx::FLOW_NAME, "flowName"),
            (idx::TIMESTAMP, "timestamp"),
            (idx::LOCALE_NAME, "localeName"),
            (idx::LOCALE_REFERENCE_ID, "localeReferenceId"),
            (idx::ENDPOINT_NAME, "endpointName"),
            (idx::ENDPOINT_URL_TOKEN, "endpointUrlToken"),
            (idx::SNAPSHOT_ID, "snapshotId"),
            (idx::SNAPSHOT_NAME, "snapshotName"),
            (idx::EXPIRES_AT, "expiresAt"),
        ] {
            assert_eq!(EXECUTED_STEP_FIELDS[index].name, name);
            assert_eq!(executed_step_field(name), Some(index));
        }
        for (column, index) in CATALOGUED {
            let catalogue = STEP_FIELDS.iter().find(|f| f.column == column).unwrap();
            assert_eq!(catalogue.ty, EXECUTED_STEP_FIELDS[index].ty, "{column}");
        }
    }

    #[test]
    fn requires_the_identity_fields_a_known_type_and_a_short_label() {
        for name in ["projectId", "sessionId", "executionId", "entityReferenceId", "stepLabel", "type"] {
            let mut json = minimal();
            json.as_object_mut().unwrap().remove(name);
            assert_eq!(
                NewStep::parse(json).unwrap_err().to_string(),
                format!("Validation failed. '{name}' is required.")
            );
        }
        let mut json = minimal();
        json["type"] = json!("flow");
        assert_eq!(
            NewStep::parse(json).unwrap_err().to_string(),
            "Validation failed. 'type' must be one of node, intent."
        );
        let mut json = minimal();
        json["stepLabel"] = json!("x".repeat(LABEL_MAX_CHARS + 1));
        assert!(NewStep::parse(json).unwrap_err().to_string().starts_with("Validation failed. 'stepLabel'"));
        let mut json = minimal();
        json["stepLabel"] = json!("é".repeat(LABEL_MAX_CHARS));
        assert!(NewStep::parse(json).is_ok(), "128 characters, whatever their bytes");
        let mut json = minimal();
        json["contactId"] = json!("c");
        assert_eq!(
            NewStep::parse(json).unwrap_err().to_string(),
            "Validation failed. 'contactId' is not a field of an executed step."
        );
    }

    #[test]
    fn the_path_is_in_execution_order_and_parents_follow_it() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let step = |id: &str, seconds: i64, entity: &str, sent: Option<&str>| Executed {
            execution_id: id.into(),
            at: t + time::Duration::seconds(seconds),
            entity_reference_id: entity.into(),
            sent_parent: sent.map(str::to_owned),
        };
        let (path, parents) = step_path(vec![
            step("e3", 20, "c", None),
            step("e2", 10, "b", Some("client's")),
            step("e1b", 0, "a2", None),
            step("e1a", 0, "a1", None),
        ]);
        assert_eq!(path, "a1,a2,b,c", "by time, then execution id");
        assert_eq!(
            parents,
            [("e1a".into(), None), ("e1b".into(), Some("a1".into())), ("e3".into(), Some("b".into()))],
            "a step the client gave a parent keeps it and is still the next one's parent"
        );
        assert_eq!(step_path(Vec::new()), (String::new(), Vec::new()));
    }
}
