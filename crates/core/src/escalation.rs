//! Handovers to human agents, as the `LiveAgentEscalations` collection keeps them
//! (docs/contract/conversations.md, "LiveAgentEscalations"). A client sends an escalation again
//! each time its status changes; parley merges the writes field by field, each field taking the
//! value of the write with the latest event time that names it, so that the order the writes
//! arrive in does not matter.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::field::{Field, FieldIndex, FieldType, Origin, SHORT, field, not_null, read_object};
use crate::row::{Catalogue, Row, project_of};
use crate::value::Value;
use crate::{ObjectId, Project};

use Origin::{Optional, Required, Server};

/// Every field of an escalation, in the order representations show them.
pub static ESCALATION_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    field("escalationId", "escalation_id", SHORT, Required, false),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    field("projectId", "project_id", FieldType::Id, Required, false),
    field("sessionId", "session_id", SHORT, Required, false),
    field("contactId", "contact_id", SHORT, Optional, false),
    not_null(field("timestamp", "timestamp", FieldType::DateTime, Optional, false)),
    field("status", "status", SHORT, Required, false),
    field("inboxId", "inbox_id", SHORT, Optional, false),
    field("inboxName", "inbox_name", SHORT, Optional, false),
    field("teamId", "team_id", SHORT, Optional, false),
    field("teamName", "team_name", SHORT, Optional, false),
    field("agentId", "agent_id", SHORT, Optional, false),
    field("agentName", "agent_name", SHORT, Optional, false),
    field("labels", "labels", FieldType::TextList, Optional, false),
    field("channel", "channel", SHORT, Optional, false),
    field("endpointName", "endpoint_name", SHORT, Optional, false),
    field("endpointType", "endpoint_type", SHORT, Optional, false),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Optional, false),
    field("localeName", "locale_name", SHORT, Optional, false),
    field("localeReferenceId", "locale_reference_id", SHORT, Optional, false),
    field("snapshotId", "snapshot_id", SHORT, Optional, false),
    field("snapshotName", "snapshot_name", SHORT, Optional, false),
    field("assignedAt", "assigned_at", FieldType::DateTime, Optional, false),
    field("firstResponseAt", "first_response_at", FieldType::DateTime, Optional, false),
    field("resolvedAt", "resolved_at", FieldType::DateTime, Optional, false),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
];

/// Positions of the fields the code refers to by name.
pub mod idx {
    use super::FieldIndex;
    pub const ID: FieldIndex = 0;
    pub const ESCALATION_ID: FieldIndex = 1;
    pub const ORGANISATION: FieldIndex = 2;
    pub const PROJECT_ID: FieldIndex = 3;
    pub const SESSION_ID: FieldIndex = 4;
    pub const CONTACT_ID: FieldIndex = 5;
    pub const TIMESTAMP: FieldIndex = 6;
    pub const STATUS: FieldIndex = 7;
    pub const LABELS: FieldIndex = 14;
    pub const CHANNEL: FieldIndex = 15;
    pub const ENDPOINT_NAME: FieldIndex = 16;
    pub const ENDPOINT_URL_TOKEN: FieldIndex = 18;
    pub const LOCALE_NAME: FieldIndex = 19;
    pub const LOCALE_REFERENCE_ID: FieldIndex = 20;
    pub const SNAPSHOT_ID: FieldIndex = 21;
    pub const SNAPSHOT_NAME: FieldIndex = 22;
    pub const EXPIRES_AT: FieldIndex = 26;
}

/// The escalation field with this wire name.
pub fn escalation_field(name: &str) -> Option<FieldIndex> {
    ESCALATION_FIELDS.iter().position(|f| f.name == name)
}

/// The values `status` takes.
pub const STATUSES: [&str; 4] = ["opened", "assigned", "resolved", "abandoned"];

/// The escalations' catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum Escalations {}

impl Catalogue for Escalations {
    const FIELDS: &'static [Field] = ESCALATION_FIELDS;
    const PROJECT_ID: FieldIndex = idx::PROJECT_ID;
    const SESSION_ID: FieldIndex = idx::SESSION_ID;
}

/// A stored escalation: one value per field of [`ESCALATION_FIELDS`], in that order.
pub type Escalation = Row<Escalations>;

/// The fields a write may name and that merge by event time: all but the identity, the
/// bookkeeping parley sets, and `timestamp`, which reads as the earliest write's.
fn merges_by_time(index: FieldIndex) -> bool {
    ESCALATION_FIELDS[index].origin != Server && ![idx::ESCALATION_ID, idx::PROJECT_ID, idx::TIMESTAMP].contains(&index)
}

/// One write of an escalation, validated: its values, and which fields it names (a field sent as
/// `null` is named; one left out is not).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEscalation {
    values: Vec<Value>,
    named: Vec<bool>,
}

impl NewEscalation {
    /// Validates one ingested JSON object: the field types of the catalogue and `status` from its
    /// list.
    pub fn parse(json: Json) -> Result<Self> {
        let named: Vec<bool> = match &json {
            Json::Object(object) => ESCALATION_FIELDS.iter().map(|f| object.contains_key(f.name)).collect(),
            _ => Vec::new(),
        };
        let values = read_object(ESCALATION_FIELDS, escalation_field, json, "escalation", "an escalation")?;
        let status = values[idx::STATUS].as_text().unwrap_or_default();
        if !STATUSES.contains(&status) {
            return Err(Error::invalid("status", format!("must be one of {}", STATUSES.join(", "))));
        }
        Ok(NewEscalation { values, named })
    }

    /// The project named by the write.
    pub fn project_id(&self) -> ObjectId {
        project_of::<Escalations>(&self.values)
    }

    /// Completes the write: the organisation of its project, the ingest time as default event
    /// time, and `expiresAt` from the project's retention (kept as long as records).
    pub fn stamp(mut self, project: &Project, now: OffsetDateTime) -> EscalationWrite {
        self.values[idx::ID] = Value::Text(ObjectId::generate().to_string());
        self.values[idx::ORGANISATION] = Value::Text(project.organisation.to_string());
        if self.values[idx::TIMESTAMP] == Value::Null {
            self.values[idx::TIMESTAMP] = Value::Time(now);
        }
        self.values[idx::EXPIRES_AT] = project.settings.expiry(now).map_or(Value::Null, Value::Time);
        EscalationWrite { row: Escalation::from_values(self.values), named: self.named }
    }
}

/// A stamped write of an escalation, ready to be merged into what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationWrite {
    pub row: Escalation,
    pub named: Vec<bool>,
}

impl EscalationWrite {
    /// The write's event time, in milliseconds.
    pub fn at(&self) -> i64 {
        millis(self.row.get(idx::TIMESTAMP))
    }

    pub fn escalation_id(&self) -> &str {
        self.row.get(idx::ESCALATION_ID).as_text().unwrap_or_default()
    }
}

/// A value's JSON text, which orders writes at the same moment.
fn json_text(value: &Value) -> String {
    value.to_json().to_string()
}

fn millis(value: &Value) -> i64 {
    match value {
        Value::Time(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
        _ => i64::MIN,
    }
}

/// A stored escalation and, for each field merged by event time, the time of the write its value
/// came from (milliseconds, by wire name).
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub row: Escalation,
    pub times: BTreeMap<String, i64>,
}

/// What a write did to its escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Inserted,
    Updated,
    /// It changed nothing: an identical re-send, or older than what every field it names holds.
    Duplicate,
}

/// Merges one write into the stored escalation (`None`: not stored yet). Each field the write
/// names takes its value when the write is at least as late as the write that field's value came
/// from; at the same event time the greater value (by its JSON text) wins, so that the result is
/// the same in any order of arrival. `timestamp` becomes the earliest of all writes, and `id` and
/// `expiresAt` stay the first write's.
pub fn merge(stored: Option<Merged>, write: &EscalationWrite) -> (Merged, Outcome) {
    let at = write.at();
    let Some(mut merged) = stored else {
        let times = (0..ESCALATION_FIELDS.len())
            .filter(|&i| merges_by_time(i) && write.named[i])
            .map(|i| (ESCALATION_FIELDS[i].name.to_owned(), at))
            .collect();
        return (Merged { row: write.row.clone(), times }, Outcome::Inserted);
    };
    let mut values = merged.row.values().to_vec();
    for (i, field) in ESCALATION_FIELDS.iter().enumerate() {
        if !merges_by_time(i) || !write.named[i] {
            continue;
        }
        let new = write.row.get(i);
        let wins = match merged.times.get(field.name) {
            None => true,
            Some(&held) if at != held => at > held,
            Some(_) => json_text(new) > json_text(&values[i]),
        };
        if wins {
            values[i] = new.clone();
            merged.times.insert(field.name.to_owned(), at);
        }
    }
    if at < millis(&values[idx::TIMESTAMP]) {
        values[idx::TIMESTAMP] = write.row.get(idx::TIMESTAMP).clone();
    }
    let row = Escalation::from_values(values);
    let outcome = if row == merged.row { Outcome::Duplicate } else { Outcome::Updated };
    (Merged { row, times: merged.times }, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project() -> Project {
        let now = crate::value::now();
        Project {
            id: ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e1").unwrap(),
            organisation: ObjectId::parse("5f0c6bc4ad4f8b0011b2e0e2").unwrap(),
            name: "Bot".into(),
            settings: Default::default(),
            profile: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    fn write(extra: Json) -> EscalationWrite {
        let mut json = json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "escalationId": "x"});
        for (key, value) in extra.as_object().unwrap() {
            json[key] = value.clone();
        }
        NewEscalation::parse(json).unwrap().stamp(&project(), crate::value::now())
    }

    fn fold(writes: &[EscalationWrite]) -> Merged {
        writes.iter().fold(None, |stored, w| Some(merge(stored, w).0)).unwrap()
    }

    #[test]
    fn requires_the_identity_fields_and_a_known_status() {
        for name in ["projectId", "sessionId", "escalationId", "status"] {
            let mut json = json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "escalationId": "x",
                                  "status": "opened"});
            json.as_object_mut().unwrap().remove(name);
            let error = NewEscalation::parse(json).unwrap_err().to_string();
            assert_eq!(error, format!("Validation failed. '{name}' is required."));
        }
        let json = json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "escalationId": "x",
                          "status": "closed"});
        assert_eq!(
            NewEscalation::parse(json).unwrap_err().to_string(),
            "Validation failed. 'status' must be one of opened, assigned, resolved, abandoned."
        );
        for name in ESCALATION_FIELDS.iter().map(|f| f.name) {
            assert_eq!(escalation_field(name).map(|i| ESCALATION_FIELDS[i].name), Some(name));
        }
        assert_eq!(ESCALATION_FIELDS[idx::LABELS].name, "labels");
        assert_eq!(ESCALATION_FIELDS[idx::SNAPSHOT_NAME].name, "snapshotName");
        assert_eq!(ESCALATION_FIELDS[idx::EXPIRES_AT].name, "expiresAt");
    }

    #[test]
    fn the_latest_event_wins_field_by_field_in_any_order() {
        let opened = write(json!({"status": "opened", "timestamp": "2024-05-01T12:00:00Z", "inboxName": "Support"}));
        let assigned = write(json!({"status": "assigned", "timestamp": "2024-05-01T12:01:00Z", "agentName": "Ann",
                                    "assignedAt": "2024-05-01T12:01:00Z"}));
        let resolved = write(json!({"status": "resolved", "timestamp": "2024-05-01T12:09:00Z",
                                    "resolvedAt": "2024-05-01T12:09:00Z"}));
        let writes = [opened, assigned, resolved];
        let orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]];
        let results: Vec<Merged> = orders.iter().map(|o| fold(&o.map(|i| writes[i].clone()))).collect();
        for (order, result) in orders.iter().zip(&results) {
            let row = &result.row;
            assert_eq!(row.get(idx::STATUS), &Value::Text("resolved".into()), "{order:?}");
            assert_eq!(row.get(escalation_field("agentName").unwrap()), &Value::Text("Ann".into()));
            assert_eq!(row.get(escalation_field("inboxName").unwrap()), &Value::Text("Support".into()));
            let opened_at = writes[0].row.get(idx::TIMESTAMP);
            assert_eq!(row.get(idx::TIMESTAMP), opened_at, "the row reads as opened: {order:?}");
            assert_eq!(
                (result.row.values()[1..idx::EXPIRES_AT].to_vec(), &result.times),
                (results[0].row.values()[1..idx::EXPIRES_AT].to_vec(), &results[0].times),
                "the same in any order (but the id, the first write's, and expiresAt)"
            );
        }
        // A late, older write never undoes a newer status; re-sending changes nothing.
        let stale = write(json!({"status": "opened", "timestamp": "2024-05-01T12:00:30Z"}));
        assert_eq!(merge(Some(results[0].clone()), &stale).1, Outcome::Duplicate);
        assert_eq!(merge(Some(results[0].clone()), &writes[2]).1, Outcome::Duplicate);
        // A newer write may reopen it, and a field sent as null clears it.
        let reopened = write(json!({"status": "opened", "timestamp": "2024-05-01T13:00:00Z", "agentName": null}));
        let (merged, outcome) = merge(Some(results[0].clone()), &reopened);
        assert_eq!(outcome, Outcome::Updated);
        assert_eq!(merged.row.get(idx::STATUS), &Value::Text("opened".into()));
        assert_eq!(merged.row.get(escalation_field("agentName").unwrap()), &Value::Null);
        assert_eq!(merged.row.get(escalation_field("resolvedAt").unwrap()), writes[2].row.get(25), "not named: kept");
    }

    #[test]
    fn writes_at_the_same_moment_agree_whatever_their_order() {
        let a = write(json!({"status": "assigned", "timestamp": "2024-05-01T12:00:00Z"}));
        let b = write(json!({"status": "resolved", "timestamp": "2024-05-01T12:00:00Z"}));
        let ab = fold(&[a.clone(), b.clone()]);
        let ba = fold(&[b, a]);
        assert_eq!(ab.row.get(idx::STATUS), ba.row.get(idx::STATUS));
        assert_eq!(ab.row.get(idx::STATUS), &Value::Text("resolved".into()));
    }
}
