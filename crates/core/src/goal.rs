//! Goals: what a project's admins define a bot to achieve, as steps from one start to a
//! completion, each with metrics (docs/contract/conversations.md, "Goals"). Every change makes a
//! new version. The REST body is validated here; the `Goals`, `GoalSteps` and `GoalStepMetrics`
//! collections show the current version of each definition.

use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use crate::ObjectId;
use crate::error::{Error, Result};
use crate::field::{Field, FieldType, Origin, SHORT, field, not_null};
use crate::name::validate_name;
use crate::value::format_time;

use Origin::Server;

/// The most steps a goal has.
pub const MAX_STEPS: usize = 20;
/// The most metrics a step has.
pub const MAX_METRICS: usize = 20;
/// The kinds of step.
pub const STEP_TYPES: [&str; 3] = ["start", "step", "completion"];
/// The kinds of metric.
pub const METRIC_TYPES: [&str; 2] = ["duration", "currency"];

const TEXT: FieldType = FieldType::LongText { max_bytes: 4096 };

/// The `Goals` collection: one row per goal, its current version.
pub static GOAL_FIELDS: &[Field] = &[
    not_null(field("goalId", "id", FieldType::Id, Server, false)),
    not_null(field("name", "name", SHORT, Server, false)),
    not_null(field("version", "version", SHORT, Server, false)),
    field("description", "description", TEXT, Server, false),
    field("referenceId", "reference_id", SHORT, Server, false),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    not_null(field("createdAt", "created_at", FieldType::DateTime, Server, false)),
    not_null(field("lastChanged", "last_changed", FieldType::DateTime, Server, false)),
    not_null(field("createdBy", "created_by", SHORT, Server, false)),
    not_null(field("lastChangedBy", "last_changed_by", SHORT, Server, false)),
];

/// The `GoalSteps` collection: one row per step of a goal's current version.
pub static GOAL_STEP_FIELDS: &[Field] = &[
    not_null(field("goalStepId", "id", SHORT, Server, false)),
    not_null(field("name", "name", SHORT, Server, false)),
    not_null(field("version", "version", SHORT, Server, false)),
    field("description", "description", TEXT, Server, false),
    not_null(field("order", "step_order", FieldType::Integer { min: i64::MIN }, Server, false)),
    field("text", "text", TEXT, Server, false),
    not_null(field("type", "step_type", SHORT, Server, false)),
    not_null(field("goalId", "goal_id", FieldType::Id, Server, false)),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
];

/// The `GoalStepMetrics` collection: one row per metric of a step of a goal's current version.
pub static GOAL_STEP_METRIC_FIELDS: &[Field] = &[
    not_null(field("goalStepMetricId", "id", SHORT, Server, false)),
    not_null(field("name", "name", SHORT, Server, false)),
    not_null(field("version", "version", SHORT, Server, false)),
    field("description", "description", TEXT, Server, false),
    not_null(field("value", "value", FieldType::Number { min: None, max: None }, Server, false)),
    not_null(field("type", "metric_type", SHORT, Server, false)),
    not_null(field("goalId", "goal_id", FieldType::Id, Server, false)),
    not_null(field("goalStepId", "goal_step_id", SHORT, Server, false)),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
];

/// A metric of a goal step.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub kind: String,
    pub value: f64,
}

/// A step of a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalStep {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub text: Option<String>,
    pub kind: String,
    pub order: i64,
    pub metrics: Vec<Metric>,
}

/// What a goal is: its name, description, reference and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub description: Option<String>,
    pub reference_id: Option<String>,
    /// By `order`, then as sent.
    pub steps: Vec<GoalStep>,
}

/// A goal as stored: its current version.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub id: ObjectId,
    pub project_id: ObjectId,
    pub organisation: ObjectId,
    pub version: String,
    pub definition: Definition,
    pub created_at: OffsetDateTime,
    pub last_changed: OffsetDateTime,
    pub created_by: ObjectId,
    pub last_changed_by: ObjectId,
}

impl Goal {
    /// The goal as REST shows it (its id as `_id`).
    pub fn to_json(&self) -> Map<String, Json> {
        let d = &self.definition;
        let steps: Vec<Json> = d
            .steps
            .iter()
            .map(|s| {
                let metrics: Vec<Json> = s
                    .metrics
                    .iter()
                    .map(|m| {
                        json!({"metricId": m.id, "name": m.name, "description": m.description, "type": m.kind,
                               "value": m.value})
                    })
                    .collect();
                json!({"stepId": s.id, "name": s.name, "description": s.description, "text": s.text, "type": s.kind,
                       "order": s.order, "metrics": metrics})
            })
            .collect();
        let value = json!({
            "_id": self.id.to_string(), "name": d.name, "description": d.description, "referenceId": d.reference_id,
            "version": self.version, "projectId": self.project_id.to_string(),
            "organisationId": self.organisation.to_string(), "steps": steps,
            "createdAt": format_time(self.created_at), "lastChanged": format_time(self.last_changed),
            "createdBy": self.created_by.to_string(), "lastChangedBy": self.last_changed_by.to_string(),
        });
        match value {
            Json::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// A new version of the goal with the changes of a `PATCH` applied.
    pub fn changed(&self, change: Change, by: ObjectId, now: OffsetDateTime) -> Goal {
        let d = &self.definition;
        Goal {
            version: new_version(),
            definition: Definition {
                name: change.name.unwrap_or_else(|| d.name.clone()),
                description: change.description.unwrap_or_else(|| d.description.clone()),
                reference_id: change.reference_id.unwrap_or_else(|| d.reference_id.clone()),
                steps: change.steps.unwrap_or_else(|| d.steps.clone()),
            },
            last_changed: now,
            last_changed_by: by,
            ..self.clone()
        }
    }
}

/// A fresh version id: a random UUID.
pub fn new_version() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The fields a `PATCH` of a goal names; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub reference_id: Option<Option<String>>,
    pub steps: Option<Vec<GoalStep>>,
}

const GOAL_KEYS: [&str; 4] = ["name", "description", "referenceId", "steps"];
const STEP_KEYS: [&str; 7] = ["stepId", "name", "description", "text", "type", "order", "metrics"];
const METRIC_KEYS: [&str; 4] = ["name", "description", "type", "value"];

impl Change {
    /// Validates the body of `POST` (`whole`: `name` and `steps` required) or `PATCH` (at least
    /// one field) of a goal.
    pub fn parse(body: Json, whole: bool) -> Result<Change> {
        let Json::Object(body) = body else { return Err(Error::invalid("body", "must be a JSON object")) };
        refuse_unknown(&body, &GOAL_KEYS, "")?;
        if !whole && body.is_empty() {
            return Err(Error::invalid("body", "must name at least one of name, description, referenceId, steps"));
        }
        let name = match body.get("name") {
            None if whole => return Err(Error::missing("name")),
            None => None,
            Some(Json::String(name)) => Some(validate_name(name)?),
            Some(Json::Null) => return Err(Error::missing("name")),
            Some(_) => return Err(Error::invalid("name", "must be a string")),
        };
        let steps = match body.get("steps") {
            None if whole => return Err(Error::missing("steps")),
            None => None,
            Some(steps) => Some(parse_steps(steps)?),
        };
        Ok(Change {
            name,
            description: body.get("description").map(|v| opt_text(v, "description", 4096)).transpose()?,
            reference_id: body.get("referenceId").map(|v| opt_text(v, "referenceId", 1024)).transpose()?,
            steps,
        })
    }

    /// The definition of a new goal from a validated `POST` body.
    pub fn into_definition(self) -> Definition {
        Definition {
            name: self.name.unwrap_or_default(),
            description: self.description.flatten(),
            reference_id: self.reference_id.flatten(),
            steps: self.steps.unwrap_or_default(),
        }
    }
}

fn refuse_unknown(object: &Map<String, Json>, known: &[&str], at: &str) -> Result<()> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(Error::invalid(&format!("{at}{key}"), format!("is not one of {}", known.join(", ")))),
        None => Ok(()),
    }
}

fn opt_text(value: &Json, name: &str, max_chars: usize) -> Result<Option<String>> {
    match value {
        Json::Null => Ok(None),
        Json::String(text) if text.chars().count() > max_chars => {
            Err(Error::invalid(name, format!("must be at most {max_chars} characters long")))
        }
        Json::String(text) if text.contains('\0') => Err(Error::invalid(name, "must not contain U+0000")),
        Json::String(text) => Ok(Some(text.clone())),
        _ => Err(Error::invalid(name, "must be a string or null")),
    }
}

fn required_text(object: &Map<String, Json>, key: &str, at: &str) -> Result<String> {
    let name = format!("{at}{key}");
    match object.get(key) {
        None | Some(Json::Null) => Err(Error::missing(&name)),
        Some(value) => match opt_text(value, &name, 200)? {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(Error::invalid(&name, "must not be blank")),
        },
    }
}

fn one_of(object: &Map<String, Json>, key: &str, at: &str, allowed: &[&str]) -> Result<String> {
    let text = required_text(object, key, at)?;
    if allowed.contains(&text.as_str()) {
        Ok(text)
    } else {
        Err(Error::invalid(&format!("{at}{key}"), format!("must be one of {}", allowed.join(", "))))
    }
}

fn parse_steps(steps: &Json) -> Result<Vec<GoalStep>> {
    let Json::Array(items) = steps else { return Err(Error::invalid("steps", "must be a list of steps")) };
    if items.is_empty() || items.len() > MAX_STEPS {
        return Err(Error::invalid("steps", format!("must hold 1 to {MAX_STEPS} steps")));
    }
    let mut parsed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("steps[{i}].");
        let Json::Object(step) = item else { return Err(Error::invalid(&format!("steps[{i}]"), "must be an object")) };
        refuse_unknown(step, &STEP_KEYS, &at)?;
        let id = match step.get("stepId") {
            None | Some(Json::Null) => ObjectId::generate().to_string(),
            Some(_) => required_text(step, "stepId", &at)?,
        };
        let order = match step.get("order") {
            None | Some(Json::Null) => return Err(Error::missing(&format!("{at}order"))),
            Some(order) => {
                order.as_i64().ok_or_else(|| Error::invalid(&format!("{at}order"), "must be a whole number"))?
            }
        };
        let metrics = match step.get("metrics") {
            None | Some(Json::Null) => Vec::new(),
            Some(metrics) => parse_metrics(metrics, &at)?,
        };
        parsed.push(GoalStep {
            id,
            name: required_text(step, "name", &at)?,
            description: step
                .get("description")
                .map(|v| opt_text(v, &format!("{at}description"), 4096))
                .transpose()?
                .flatten(),
            text: step.get("text").map(|v| opt_text(v, &format!("{at}text"), 4096)).transpose()?.flatten(),
            kind: one_of(step, "type", &at, &STEP_TYPES)?,
            order,
            metrics,
        });
    }
    let count = |kind: &str| parsed.iter().filter(|s| s.kind == kind).count();
    if count("start") != 1 {
        return Err(Error::invalid("steps", "must hold exactly one step of type start"));
    }
    if count("completion") == 0 {
        return Err(Error::invalid("steps", "must hold at least one step of type completion"));
    }
    let mut ids: Vec<&str> = parsed.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(Error::invalid("steps", "must not name one stepId twice"));
    }
    parsed.sort_by_key(|s| s.order);
    Ok(parsed)
}

fn parse_metrics(metrics: &Json, at: &str) -> Result<Vec<Metric>> {
    let Json::Array(items) = metrics else {
        return Err(Error::invalid(&format!("{at}metrics"), "must be a list of metrics"));
    };
    if items.len() > MAX_METRICS {
        return Err(Error::invalid(&format!("{at}metrics"), format!("must hold at most {MAX_METRICS} metrics")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{at}metrics[{i}].");
            let Json::Object(metric) = item else {
                return Err(Error::invalid(at.trim_end_matches('.'), "must be an object"));
            };
            refuse_unknown(metric, &METRIC_KEYS, &at)?;
            let value = match metric.get("value") {
                None | Some(Json::Null) => return Err(Error::missing(&format!("{at}value"))),
                Some(value) => value
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| Error::invalid(&format!("{at}value"), "must be a number"))?,
            };
            Ok(Metric {
                id: ObjectId::generate().to_string(),
                name: required_text(metric, "name", &at)?,
                description: metric
                    .get("description")
                    .map(|v| opt_text(v, &format!("{at}description"), 4096))
                    .transpose()?
                    .flatten(),
                kind: one_of(metric, "type", &at, &METRIC_TYPES)?,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Json {
        json!({"name": "Refund", "steps": [
            {"name": "Asked", "type": "start", "order": 1},
            {"stepId": "done", "name": "Refunded", "type": "completion", "order": 3,
             "metrics": [{"name": "Saved", "type": "currency", "value": 12.5}]},
            {"name": "Verified", "type": "step", "order": 2},
        ]})
    }

    #[test]
    fn a_goal_has_one_start_a_completion_and_steps_in_order() {
        let definition = Change::parse(body(), true).unwrap().into_definition();
        let names: Vec<&str> = definition.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Asked", "Verified", "Refunded"]);
        assert_eq!(definition.steps[2].id, "done", "a stepId the client sent is kept");
        assert_eq!(definition.steps[0].id.len(), 24, "one it left out is made");
        assert_eq!(definition.steps[2].metrics[0].value, 12.5);
        let mut no_start = body();
        no_start["steps"][0]["type"] = json!("step");
        assert!(Change::parse(no_start, true).unwrap_err().to_string().contains("exactly one step of type start"));
        let mut no_completion = body();
        no_completion["steps"][1]["type"] = json!("step");
        assert!(
            Change::parse(no_completion, true)
                .unwrap_err()
                .to_string()
                .contains("at least one step of type completion")
        );
        let too_many: Vec<Json> = (0..21).map(|n| json!({"name": "s", "type": "step", "order": n})).collect();
        assert!(
            Change::parse(json!({"name": "x", "steps": too_many}), true).unwrap_err().to_string().contains("1 to 20")
        );
    }

    #[test]
    fn every_error_names_the_field() {
        let cases = [
            (json!({"steps": body()["steps"]}), "Validation failed. 'name' is required."),
            (json!({"name": "x"}), "Validation failed. 'steps' is required."),
            (
                json!({"name": "x", "steps": [], "colour": 1}),
                "Validation failed. 'colour' is not one of name, description, referenceId, steps.",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(Change::parse(json, true).unwrap_err().to_string(), expected);
        }
        let mut bad = body();
        bad["steps"][1]["metrics"][0]["type"] = json!("points");
        assert_eq!(
            Change::parse(bad, true).unwrap_err().to_string(),
            "Validation failed. 'steps[1].metrics[0].type' must be one of duration, currency."
        );
        let mut bad = body();
        bad["steps"][0].as_object_mut().unwrap().remove("order");
        assert_eq!(
            Change::parse(bad, true).unwrap_err().to_string(),
            "Validation failed. 'steps[0].order' is required."
        );
        assert!(Change::parse(json!({}), false).is_err(), "a PATCH names something");
        let patch = Change::parse(json!({"description": null}), false).unwrap();
        assert_eq!(patch.description, Some(None), "null clears the description");
    }

    #[test]
    fn every_change_is_a_new_version() {
        let now = crate::value::now();
        let by = ObjectId::generate();
        let goal = Goal {
            id: ObjectId::generate(),
            project_id: ObjectId::generate(),
            organisation: ObjectId::generate(),
            version: new_version(),
            definition: Change::parse(body(), true).unwrap().into_definition(),
            created_at: now,
            last_changed: now,
            created_by: by,
            last_changed_by: by,
        };
        let other = ObjectId::generate();
        let renamed = goal.changed(Change::parse(json!({"name": "Refunds"}), false).unwrap(), other, now);
        assert_ne!(renamed.version, goal.version);
        assert_eq!((renamed.definition.name.as_str(), renamed.last_changed_by), ("Refunds", other));
        assert_eq!(renamed.definition.steps, goal.definition.steps);
        assert_eq!(renamed.to_json()["_id"], json!(goal.id.to_string()));
    }
}
