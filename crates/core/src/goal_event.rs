//! Goal events: one row per goal step a session reached, as the `GoalEvents` collection keeps
//! them, the goal cycles they make up, and the goals a session completed
//! (docs/contract/conversations.md, "Goals").
//!
//! An event is recorded under the goal's definition at the time it is written: parley stamps the
//! goal's `version` (unless the client sent one) and the type of the step it names (`stepType`),
//! so that a later change of the definition changes neither the event nor its cycle's status.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::field::{Field, FieldIndex, FieldType, Origin, SHORT, field, not_null, read_object};
use crate::row::{Catalogue, Row, project_of};
use crate::value::Value;
use crate::{ObjectId, Project};

use Origin::{Optional, Required, Server};

/// Every field of a goal event, in the order representations show them.
pub static GOAL_EVENT_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    field("eventId", "event_id", SHORT, Required, false),
    not_null(field("version", "version", SHORT, Optional, false)),
    not_null(field("timestamp", "timestamp", FieldType::DateTime, Optional, false)),
    field("goalCycleId", "goal_cycle_id", SHORT, Required, false),
    field("stepId", "step_id", SHORT, Required, false),
    not_null(field("stepType", "step_type", SHORT, Server, false)),
    field("goalId", "goal_id", FieldType::Id, Required, false),
    field("sessionId", "session_id", SHORT, Required, false),
    field("contactId", "contact_id", SHORT, Optional, false),
    field("projectId", "project_id", FieldType::Id, Required, false),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
    field("localeName", "locale_name", SHORT, Optional, false),
    field("localeReferenceId", "locale_reference_id", SHORT, Optional, false),
    field("endpointName", "endpoint_name", SHORT, Optional, false),
    field("endpointType", "endpoint_type", SHORT, Optional, false),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Optional, false),
    field("channel", "channel", SHORT, Optional, false),
    field("snapshotId", "snapshot_id", SHORT, Optional, false),
    field("snapshotName", "snapshot_name", SHORT, Optional, false),
];

/// Positions of the fields the code refers to by name.
pub mod idx {
    use super::FieldIndex;
    pub const ID: FieldIndex = 0;
    pub const EVENT_ID: FieldIndex = 1;
    pub const VERSION: FieldIndex = 2;
    pub const TIMESTAMP: FieldIndex = 3;
    pub const GOAL_CYCLE_ID: FieldIndex = 4;
    pub const STEP_ID: FieldIndex = 5;
    pub const STEP_TYPE: FieldIndex = 6;
    pub const GOAL_ID: FieldIndex = 7;
    pub const SESSION_ID: FieldIndex = 8;
    pub const CONTACT_ID: FieldIndex = 9;
    pub const PROJECT_ID: FieldIndex = 10;
    pub const ORGANISATION: FieldIndex = 11;
    pub const EXPIRES_AT: FieldIndex = 12;
    pub const LOCALE_NAME: FieldIndex = 13;
    pub const LOCALE_REFERENCE_ID: FieldIndex = 14;
    pub const ENDPOINT_NAME: FieldIndex = 15;
    pub const ENDPOINT_URL_TOKEN: FieldIndex = 17;
    pub const CHANNEL: FieldIndex = 18;
    pub const SNAPSHOT_ID: FieldIndex = 19;
    pub const SNAPSHOT_NAME: FieldIndex = 20;
}

/// The goal event field with this wire name.
pub fn goal_event_field(name: &str) -> Option<FieldIndex> {
    GOAL_EVENT_FIELDS.iter().position(|f| f.name == name)
}

/// The goal events' catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum GoalEvents {}

impl Catalogue for GoalEvents {
    const FIELDS: &'static [Field] = GOAL_EVENT_FIELDS;
    const PROJECT_ID: FieldIndex = idx::PROJECT_ID;
    const SESSION_ID: FieldIndex = idx::SESSION_ID;
}

/// A stored goal event: one value per field of [`GOAL_EVENT_FIELDS`], in that order.
pub type GoalEvent = Row<GoalEvents>;

/// A goal event as a client sent it for ingest, validated but not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGoalEvent {
    values: Vec<Value>,
}

impl NewGoalEvent {
    /// Validates one ingested JSON object against the catalogue's field types. Whether its goal
    /// and step exist is for [`NewGoalEvent::record_under`] to say.
    pub fn parse(json: Json) -> Result<Self> {
        let values = read_object(GOAL_EVENT_FIELDS, goal_event_field, json, "goal event", "a goal event")?;
        Ok(NewGoalEvent { values })
    }

    /// The project named by the event.
    pub fn project_id(&self) -> ObjectId {
        project_of::<GoalEvents>(&self.values)
    }

    /// The goal named by the event (validated as an id).
    pub fn goal_id(&self) -> ObjectId {
        self.values[idx::GOAL_ID]
            .as_text()
            .and_then(|id| ObjectId::parse(id).ok())
            .unwrap_or_else(|| unreachable!("a validated goal event's goalId is an id"))
    }

    /// Records the event under the current version of its goal: the step it names must be one of
    /// the goal's; the event takes the step's type and, unless the client sent one, the goal's
    /// version. `goal` is `None` when the project has no such goal.
    pub fn record_under(&mut self, goal: Option<&crate::goal::Goal>) -> Result<()> {
        let Some(goal) = goal else {
            return Err(Error::invalid("goalId", "names no goal of the project"));
        };
        let step_id = self.values[idx::STEP_ID].as_text().unwrap_or_default();
        let Some(step) = goal.definition.steps.iter().find(|s| s.id == step_id) else {
            return Err(Error::invalid("stepId", format!("names no step of the goal '{}'", goal.definition.name)));
        };
        self.values[idx::STEP_TYPE] = Value::Text(step.kind.clone());
        if self.values[idx::VERSION] == Value::Null {
            self.values[idx::VERSION] = Value::Text(goal.version.clone());
        }
        Ok(())
    }

    /// Completes the event for storage: a fresh id, the organisation of its project, the ingest
    /// time as default timestamp, and `expiresAt` from the project's retention (events are kept
    /// as long as records).
    pub fn stamp(mut self, project: &Project, now: OffsetDateTime) -> GoalEvent {
        self.values[idx::ID] = Value::Text(ObjectId::generate().to_string());
        self.values[idx::ORGANISATION] = Value::Text(project.organisation.to_string());
        if self.values[idx::TIMESTAMP] == Value::Null {
            self.values[idx::TIMESTAMP] = Value::Time(now);
        }
        self.values[idx::EXPIRES_AT] = project.settings.expiry(now).map_or(Value::Null, Value::Time);
        GoalEvent::from_values(self.values)
    }
}

/// What became of one attempt at a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CycleStatus {
    /// It reached only the start step.
    Incomplete,
    /// It reached a step after the start, but no completion step.
    Partial,
    /// It reached a completion step.
    Completed,
}

impl CycleStatus {
    /// The status of a cycle whose events reached steps of these types.
    pub fn of<'a>(step_types: impl IntoIterator<Item = &'a str>) -> CycleStatus {
        step_types
            .into_iter()
            .map(|kind| match kind {
                "completion" => CycleStatus::Completed,
                "step" => CycleStatus::Partial,
                _ => CycleStatus::Incomplete,
            })
            .max()
            .unwrap_or(CycleStatus::Incomplete)
    }

    /// The status as the `GoalCycles` collection shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleStatus::Incomplete => "incomplete",
            CycleStatus::Partial => "partial",
            CycleStatus::Completed => "completed",
        }
    }
}

/// The `GoalCycles` collection: one row per `(projectId, goalId, goalCycleId)`, read from the
/// goal events as they are, so always exact. `id` is `goalId:goalCycleId`.
pub static GOAL_CYCLE_FIELDS: &[Field] = &[
    not_null(field("id", "id", SHORT, Server, false)),
    not_null(field("goalCycleId", "goal_cycle_id", SHORT, Server, false)),
    not_null(field("goalId", "goal_id", FieldType::Id, Server, false)),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    not_null(field("sessionId", "session_id", SHORT, Server, false)),
    field("contactId", "contact_id", SHORT, Server, false),
    not_null(field("status", "status", SHORT, Server, false)),
    not_null(field("startedAt", "started_at", FieldType::DateTime, Server, false)),
    not_null(field("lastEventAt", "last_event_at", FieldType::DateTime, Server, false)),
    field("completedAt", "completed_at", FieldType::DateTime, Server, false),
    not_null(field("eventsCount", "events_count", FieldType::Integer { min: 0 }, Server, false)),
];

/// An event of a session that completed its goal's cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub goal_id: String,
    pub at: OffsetDateTime,
    pub event_id: String,
}

/// A session's `goals`: the names of the goals it completed a cycle of, in the order of their
/// first completion (by time, then event id), joined by `, `. `names` gives each goal's current
/// name; a goal without one is left out.
pub fn completed_goals(mut completions: Vec<Completion>, names: &BTreeMap<String, String>) -> String {
    completions.sort_by(|a, b| (a.at, &a.event_id).cmp(&(b.at, &b.event_id)));
    let mut seen = Vec::new();
    for completion in &completions {
        if !seen.contains(&completion.goal_id.as_str()) {
            seen.push(completion.goal_id.as_str());
        }
    }
    seen.iter().filter_map(|goal| names.get(*goal).map(String::as_str)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goal::{Definition, Goal, GoalStep};
    use serde_json::json;
    use time::macros::datetime;

    fn minimal() -> Json {
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "eventId": "e1",
               "goalId": "5f0c6bc4ad4f8b0011b2e0e2", "stepId": "start", "goalCycleId": "c1"})
    }

    fn goal() -> Goal {
        let step = |id: &str, kind: &str| GoalStep {
            id: id.into(),
            name: id.into(),
            description: None,
            text: None,
            kind: kind.into(),
            order: 0,
            metrics: Vec::new(),
        };
        let at = datetime!(2026-11-01 0:00 UTC);
        Goal {
            id: ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e2").unwrap(),
            project_id: ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e1").unwrap(),
            organisation: ObjectId::generate(),
            version: "v1".into(),
            definition: Definition {
                name: "Order".into(),
                description: None,
                reference_id: None,
                steps: vec![step("start", "start"), step("pay", "step"), step("done", "completion")],
            },
            created_at: at,
            last_changed: at,
            created_by: ObjectId::generate(),
            last_changed_by: ObjectId::generate(),
        }
    }

    #[test]
    fn named_positions_match_the_catalogue() {
        for (index, name) in [
            (idx::ID, "id"),
            (idx::EVENT_ID, "eventId"),
            (idx::VERSION, "version"),
            (idx::TIMESTAMP, "timestamp"),
            (idx::GOAL_CYCLE_ID, "goalCycleId"),
            (idx::STEP_ID, "stepId"),
            (idx::STEP_TYPE, "stepType"),
            (idx::GOAL_ID, "goalId"),
            (idx::SESSION_ID, "sessionId"),
            (idx::CONTACT_ID, "contactId"),
            (idx::PROJECT_ID, "projectId"),
            (idx::ORGANISATION, "organisationId"),
            (idx::EXPIRES_AT, "expiresAt"),
            (idx::LOCALE_NAME, "localeName"),
            (idx::LOCALE_REFERENCE_ID, "localeReferenceId"),
            (idx::ENDPOINT_NAME, "endpointName"),
            (idx::ENDPOINT_URL_TOKEN, "endpointUrlToken"),
            (idx::CHANNEL, "channel"),
            (idx::SNAPSHOT_ID, "snapshotId"),
            (idx::SNAPSHOT_NAME, "snapshotName"),
        ] {
            assert_eq!(GOAL_EVENT_FIELDS[index].name, name);
            assert_eq!(goal_event_field(name), Some(index));
        }
    }

    #[test]
    fn requires_the_identity_fields_and_ignores_server_set_ones() {
        for name in ["projectId", "sessionId", "eventId", "goalId", "stepId", "goalCycleId"] {
            let mut json = minimal();
            json.as_object_mut().unwrap().remove(name);
            assert_eq!(
                NewGoalEvent::parse(json).unwrap_err().to_string(),
                format!("Validation failed. '{name}' is required.")
            );
        }
        let mut json = minimal();
        json["goalId"] = json!("not-an-id");
        assert!(NewGoalEvent::parse(json).unwrap_err().to_string().contains("'goalId'"));
        let mut json = minimal();
        json["stepType"] = json!("completion");
        let mut event = NewGoalEvent::parse(json).unwrap();
        event.record_under(Some(&goal())).unwrap();
        assert_eq!(event.values[idx::STEP_TYPE], Value::Text("start".into()), "the step's type, not the client's");
    }

    #[test]
    fn an_event_takes_its_steps_type_and_its_goals_version_unless_sent() {
        let mut event = NewGoalEvent::parse(minimal()).unwrap();
        event.record_under(Some(&goal())).unwrap();
        assert_eq!(event.values[idx::STEP_TYPE], Value::Text("start".into()));
        assert_eq!(event.values[idx::VERSION], Value::Text("v1".into()));

        let mut json = minimal();
        json["version"] = json!("v0");
        json["stepId"] = json!("done");
        let mut event = NewGoalEvent::parse(json).unwrap();
        event.record_under(Some(&goal())).unwrap();
        assert_eq!(event.values[idx::STEP_TYPE], Value::Text("completion".into()));
        assert_eq!(event.values[idx::VERSION], Value::Text("v0".into()));

        let mut event = NewGoalEvent::parse(minimal()).unwrap();
        assert_eq!(
            event.record_under(None).unwrap_err().to_string(),
            "Validation failed. 'goalId' names no goal of the project."
        );
        let mut json = minimal();
        json["stepId"] = json!("elsewhere");
        let mut event = NewGoalEvent::parse(json).unwrap();
        assert_eq!(
            event.record_under(Some(&goal())).unwrap_err().to_string(),
            "Validation failed. 'stepId' names no step of the goal 'Order'."
        );
    }

    #[test]
    fn a_cycle_is_as_far_as_its_furthest_step() {
        assert_eq!(CycleStatus::of(["start"]), CycleStatus::Incomplete);
        assert_eq!(CycleStatus::of(["start", "step", "step"]), CycleStatus::Partial);
        assert_eq!(CycleStatus::of(["step", "completion", "start"]), CycleStatus::Completed);
        assert_eq!(CycleStatus::of(["completion"]), CycleStatus::Completed);
        assert_eq!(CycleStatus::of(Vec::<&str>::new()), CycleStatus::Incomplete);
    }

    #[test]
    fn goals_are_named_in_the_order_of_their_first_completion() {
        let at = |m: u8| datetime!(2026-11-01 10:00 UTC) + time::Duration::minutes(m.into());
        let done =
            |goal: &str, m: u8, event: &str| Completion { goal_id: goal.into(), at: at(m), event_id: event.into() };
        let names: BTreeMap<String, String> =
            [("a", "Order"), ("b", "Refund"), ("c", "Survey")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let goals = completed_goals(vec![done("b", 5, "e9"), done("a", 7, "e1"), done("b", 1, "e5")], &names);
        assert_eq!(goals, "Refund, Order");
        // At one time, the event id decides; a goal no longer defined is left out.
        let goals = completed_goals(vec![done("c", 3, "e2"), done("a", 3, "e1"), done("gone", 0, "e0")], &names);
        assert_eq!(goals, "Order, Survey");
        assert_eq!(completed_goals(Vec::new(), &names), "");
    }
}
