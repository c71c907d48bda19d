//! The entity model: an entity type is a name, a key, properties with exact Edm types, and the
//! table it lives in. Each entity set is built from a field catalogue: Analytics from the
//! record's, Conversations from the message's, Sessions from the session's, ExecutedSteps and
//! Steps from the executed step's and the step catalogue's, LiveAgentEscalations from the
//! escalation's, the goal sets from the goal's, GoalEvents and GoalCycles from the goal event's.

use parley_core::field::{Field, FieldType};
use parley_core::goal::{GOAL_FIELDS, GOAL_STEP_FIELDS, GOAL_STEP_METRIC_FIELDS};
use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, GOAL_CYCLE_FIELDS, GOAL_EVENT_FIELDS, MESSAGE_FIELDS, RECORD_FIELDS,
    SESSION_FIELDS, STEP_FIELDS,
};

/// The Edm types parley's properties have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdmType {
    String,
    Int64,
    Double,
    Boolean,
    DateTimeOffset,
    /// `Collection(Edm.String)`.
    StringCollection,
}

impl EdmType {
    /// The type as CSDL writes it.
    pub fn name(self) -> &'static str {
        match self {
            EdmType::String => "Edm.String",
            EdmType::Int64 => "Edm.Int64",
            EdmType::Double => "Edm.Double",
            EdmType::Boolean => "Edm.Boolean",
            EdmType::DateTimeOffset => "Edm.DateTimeOffset",
            EdmType::StringCollection => "Collection(Edm.String)",
        }
    }

    /// The Edm type a stored value of this type is shown as. JSON values are shown as their
    /// JSON text, as the reference product does.
    pub fn of(ty: FieldType) -> EdmType {
        match ty {
            FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } | FieldType::Json { .. } => {
                EdmType::String
            }
            FieldType::DateTime => EdmType::DateTimeOffset,
            FieldType::TextList => EdmType::StringCollection,
            FieldType::Number { .. } => EdmType::Double,
            FieldType::Integer { .. } => EdmType::Int64,
            FieldType::Boolean => EdmType::Boolean,
        }
    }
}

/// One property of an entity type.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The name in `$metadata`, `$filter` and answers.
    pub name: String,
    /// The storage column.
    pub column: &'static str,
    /// How the value is typed in storage; the Edm type follows from it.
    pub ty: FieldType,
    /// Whether the value may be null. Collections are never null: an absent list is empty.
    pub nullable: bool,
}

impl Property {
    pub fn edm(&self) -> EdmType {
        EdmType::of(self.ty)
    }

    /// The most characters a value has, where storage bounds it.
    pub fn max_length(&self) -> Option<usize> {
        match self.ty {
            FieldType::Text { max_chars } => Some(max_chars),
            FieldType::Id => Some(24),
            _ => None,
        }
    }

    /// Whether answers may be ordered or grouped by the property: not by JSON text, not by lists.
    pub fn orderable(&self) -> bool {
        !matches!(self.ty, FieldType::Json { .. } | FieldType::TextList)
    }
}

/// An entity type and the entity set that holds its entities.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityType {
    /// The entity type's name in the schema.
    pub name: &'static str,
    /// The entity set's name: the collection's address segment.
    pub set: &'static str,
    /// The table its entities live in.
    pub table: &'static str,
    /// The column naming the project an entity belongs to; every read is restricted by it.
    pub project_column: &'static str,
    /// Position of the key property.
    pub key: usize,
    pub properties: Vec<Property>,
    /// Whether `$search` reads this set: its text has a full-text index (the messages of
    /// `Conversations`, by their `inputText`).
    pub searchable: bool,
}

/// How the record id is named: `id` in v2.4, `_id` in the older v2.3 feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdName {
    Id,
    UnderscoreId,
}

impl IdName {
    /// The renaming of properties this naming makes: `id` becomes `_id` in the older feeds.
    fn rename(self) -> impl Fn(&str) -> Option<&'static str> {
        move |name: &str| match (name, self) {
            ("id", IdName::UnderscoreId) => Some("_id"),
            _ => None,
        }
    }
}

/// The namespace of parley's schema.
pub const NAMESPACE: &str = "parley";

impl EntityType {
    /// An entity type whose properties are the fields of a catalogue, in its order. `key` names
    /// the key field; `rename` gives a field another wire name.
    pub fn from_fields(
        name: &'static str,
        set: &'static str,
        table: &'static str,
        project_column: &'static str,
        fields: &[Field],
        key: &str,
        rename: impl Fn(&str) -> Option<&'static str>,
    ) -> EntityType {
        let properties: Vec<Property> = fields
            .iter()
            .map(|field| Property {
                name: rename(field.name).unwrap_or(field.name).to_owned(),
                column: field.column,
                ty: field.ty,
                nullable: field.nullable() && field.ty != FieldType::TextList,
            })
            .collect();
        let key = fields.iter().position(|f| f.name == key).unwrap_or_default();
        EntityType { name, set, table, project_column, key, properties, searchable: false }
    }

    /// The analytics record as the `Analytics` entity set shows it.
    pub fn analytics(id: IdName) -> EntityType {
        EntityType::from_fields(
            "AnalyticsRecord",
            "Analytics",
            "records",
            "project_id",
            RECORD_FIELDS,
            "id",
            id.rename(),
        )
    }

    /// The messages of the `Conversations` entity set.
    pub fn conversations(id: IdName) -> EntityType {
        let messages = EntityType::from_fields(
            "ConversationMessage",
            "Conversations",
            "messages",
            "project_id",
            MESSAGE_FIELDS,
            "id",
            id.rename(),
        );
        EntityType { searchable: true, ..messages }
    }

    /// The derived sessions of the `Sessions` entity set.
    pub fn sessions(id: IdName) -> EntityType {
        EntityType::from_fields("Session", "Sessions", "sessions", "project_id", SESSION_FIELDS, "id", id.rename())
    }

    /// The executions of steps of the `ExecutedSteps` entity set.
    pub fn executed_steps(id: IdName) -> EntityType {
        EntityType::from_fields(
            "ExecutedStep",
            "ExecutedSteps",
            "executed_steps",
            "project_id",
            EXECUTED_STEP_FIELDS,
            "id",
            id.rename(),
        )
    }

    /// The step catalogue of the `Steps` entity set.
    pub fn steps(id: IdName) -> EntityType {
        EntityType::from_fields("Step", "Steps", "steps", "project_id", STEP_FIELDS, "id", id.rename())
    }

    /// The handovers of the `LiveAgentEscalations` entity set.
    pub fn escalations(id: IdName) -> EntityType {
        EntityType::from_fields(
            "LiveAgentEscalation",
            "LiveAgentEscalations",
            "escalations",
            "project_id",
            ESCALATION_FIELDS,
            "id",
            id.rename(),
        )
    }

    /// The goal definitions of the `Goals` entity set, at their current versions.
    pub fn goals(id: IdName) -> EntityType {
        EntityType::from_fields("Goal", "Goals", "goals", "project_id", GOAL_FIELDS, "goalId", id.rename())
    }

    /// The steps of the goals, `GoalSteps`.
    pub fn goal_steps(id: IdName) -> EntityType {
        EntityType::from_fields(
            "GoalStep",
            "GoalSteps",
            "goal_steps",
            "project_id",
            GOAL_STEP_FIELDS,
            "goalStepId",
            id.rename(),
        )
    }

    /// The metrics of the goals' steps, `GoalStepMetrics`.
    pub fn goal_step_metrics(id: IdName) -> EntityType {
        EntityType::from_fields(
            "GoalStepMetric",
            "GoalStepMetrics",
            "goal_step_metrics",
            "project_id",
            GOAL_STEP_METRIC_FIELDS,
            "goalStepMetricId",
            id.rename(),
        )
    }

    /// The goal steps reached in sessions, `GoalEvents`.
    pub fn goal_events(id: IdName) -> EntityType {
        EntityType::from_fields(
            "GoalEvent",
            "GoalEvents",
            "goal_events",
            "project_id",
            GOAL_EVENT_FIELDS,
            "id",
            id.rename(),
        )
    }

    /// The attempts at goals and how far each got, `GoalCycles` (read from the goal events).
    pub fn goal_cycles(id: IdName) -> EntityType {
        EntityType::from_fields(
            "GoalCycle",
            "GoalCycles",
            "goal_cycles",
            "project_id",
            GOAL_CYCLE_FIELDS,
            "id",
            id.rename(),
        )
    }

    /// Every entity set of a service, in the order the service document lists them.
    pub fn all(id: IdName) -> Vec<EntityType> {
        vec![
            EntityType::analytics(id),
            EntityType::conversations(id),
            EntityType::sessions(id),
            EntityType::steps(id),
            EntityType::executed_steps(id),
            EntityType::escalations(id),
            EntityType::goals(id),
            EntityType::goal_steps(id),
            EntityType::goal_step_metrics(id),
            EntityType::goal_events(id),
            EntityType::goal_cycles(id),
        ]
    }

    /// The position of the property with this name.
    pub fn property(&self, name: &str) -> Option<usize> {
        self.properties.iter().position(|p| p.name == name)
    }

    /// The fully qualified type name, e.g. `parley.AnalyticsRecord`.
    pub fn qualified_name(&self) -> String {
        format!("{NAMESPACE}.{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_has_every_record_field_with_its_type() {
        let entity = EntityType::analytics(IdName::Id);
        assert_eq!(entity.properties.len(), RECORD_FIELDS.len());
        assert_eq!(entity.properties[entity.key].name, "id");
        let of = |name: &str| entity.properties[entity.property(name).unwrap()].clone();
        assert_eq!(of("timestamp").edm(), EdmType::DateTimeOffset);
        assert!(!of("timestamp").nullable);
        assert_eq!(of("inputData").edm(), EdmType::String);
        assert_eq!(of("slots").edm(), EdmType::String);
        assert_eq!(of("trackedGoals").edm(), EdmType::StringCollection);
        assert!(!of("trackedGoals").nullable);
        assert_eq!(of("intentScore").edm(), EdmType::Double);
        assert_eq!(of("execution").edm(), EdmType::Int64);
        assert_eq!(of("understood").edm(), EdmType::Boolean);
        assert!(of("understood").nullable);
    }

    #[test]
    fn the_older_feed_calls_the_key_underscore_id() {
        let entity = EntityType::analytics(IdName::UnderscoreId);
        assert_eq!(entity.properties[entity.key].name, "_id");
        assert_eq!(entity.properties[entity.key].column, "id");
        assert_eq!(entity.property("id"), None);
    }
}
