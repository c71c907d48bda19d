//! Work that runs in the background and that clients follow by id: the erasure of a project's
//! records (`DELETE /v2.0/analytics/{projectId}`, docs/contract/rest.md §4).

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use crate::ObjectId;
use crate::error::{Error, Result};
use crate::value::{format_time, parse_time};

/// What an erasure deletes: the project's records of these contacts (every contact when
/// `contact_ids` is `None`) whose timestamp lies between the bounds, both inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    pub contact_ids: Option<Vec<String>>,
    pub timestamp_start: Option<OffsetDateTime>,
    pub timestamp_end: Option<OffsetDateTime>,
}

const ARGUMENTS: [&str; 3] = ["contactIds", "timestampStart", "timestampEnd"];

impl Erasure {
    /// Validates the body of an erasure request. `contactIds` must be present: `null` names every
    /// contact, so that a forgotten or misspelt argument never empties a project by accident.
    pub fn parse(body: Json) -> Result<Self> {
        let Json::Object(mut body) = body else {
            return Err(Error::invalid("body", "must be a JSON object"));
        };
        if let Some(name) = body.keys().find(|k| !ARGUMENTS.contains(&k.as_str())) {
            return Err(Error::invalid(name, "is not an argument of this request"));
        }
        let contact_ids = match body.remove("contactIds") {
            None => {
                return Err(Error::Missing {
                    detail: "Validation failed. 'contactIds' is required: a list of contact ids, or null for every \
                             contact."
                        .into(),
                    details: Map::from_iter([("field".to_owned(), Json::from("contactIds"))]),
                });
            }
            Some(Json::Null) => None,
            Some(Json::Array(items)) => Some(contact_list(items)?),
            Some(_) => return Err(Error::invalid("contactIds", "must be a list of strings, or null")),
        };
        let timestamp_start = take_time(&mut body, "timestampStart")?;
        let timestamp_end = take_time(&mut body, "timestampEnd")?;
        if let (Some(start), Some(end)) = (timestamp_start, timestamp_end)
            && start > end
        {
            return Err(Error::invalid("timestampStart", "must not be after 'timestampEnd'"));
        }
        Ok(Erasure { contact_ids, timestamp_start, timestamp_end })
    }

    /// The request as JSON, in the shape [`Erasure::parse`] reads.
    pub fn to_json(&self) -> Json {
        let time = |t: Option<OffsetDateTime>| t.map_or(Json::Null, |t| Json::String(format_time(t)));
        let mut map = Map::new();
        map.insert(
            "contactIds".into(),
            self.contact_ids
                .as_ref()
                .map_or(Json::Null, |ids| Json::Array(ids.iter().cloned().map(Json::from).collect())),
        );
        map.insert("timestampStart".into(), time(self.timestamp_start));
        map.insert("timestampEnd".into(), time(self.timestamp_end));
        Json::Object(map)
    }
}

/// The contact ids of a request: strings as record fields take them, at least one, each once.
fn contact_list(items: Vec<Json>) -> Result<Vec<String>> {
    if items.is_empty() {
        return Err(Error::invalid("contactIds", "must name at least one contact, or be null for every contact"));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Json::String(id) if id.is_empty() => return Err(Error::invalid("contactIds", "must not hold empty ids")),
            Json::String(id) if id.chars().count() > 1024 => {
                return Err(Error::invalid("contactIds", "must hold ids of at most 1024 characters"));
            }
            Json::String(id) if id.contains('\0') => {
                return Err(Error::invalid("contactIds", "must not contain the NUL character (U+0000)"));
            }
            Json::String(id) => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => return Err(Error::invalid("contactIds", "must be a list of strings, or null")),
        }
    }
    Ok(ids)
}

fn take_time(body: &mut Map<String, Json>, name: &str) -> Result<Option<OffsetDateTime>> {
    match body.remove(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| Error::invalid(name, "must be an RFC 3339 date-time such as 2024-05-01T12:00:00.000Z")),
        Some(_) => Err(Error::invalid(name, "must be an RFC 3339 date-time string, or null")),
    }
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Accepted, not started.
    Queued,
    /// Deleting, batch by batch.
    Running,
    /// Finished; `deleted` is final.
    Done,
    /// Stopped by a failure; what was deleted before it stays deleted.
    Error,
}

impl TaskStatus {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [TaskStatus::Queued, TaskStatus::Running, TaskStatus::Done, TaskStatus::Error]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether the task has ended, one way or the other.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Error)
    }
}

/// An erasure task of one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: ObjectId,
    pub organisation: ObjectId,
    pub project_id: ObjectId,
    /// The user who asked for it.
    pub created_by: ObjectId,
    pub status: TaskStatus,
    /// What it deletes. Cleared when the task finishes, so that the contact ids of an erasure
    /// request are not kept once they have been acted on.
    pub erasure: Option<Erasure>,
    /// Records deleted so far.
    pub deleted: u64,
    /// Why it failed, in words fit for the client.
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

impl Task {
    /// A new, queued erasure of `project`'s records.
    pub fn erasure(
        organisation: ObjectId,
        project_id: ObjectId,
        created_by: ObjectId,
        erasure: Erasure,
        now: OffsetDateTime,
    ) -> Task {
        Task {
            id: ObjectId::generate(),
            organisation,
            project_id,
            created_by,
            status: TaskStatus::Queued,
            erasure: Some(erasure),
            deleted: 0,
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(error: Error) -> String {
        match error {
            Error::Missing { details, .. } | Error::Invalid { details, .. } => {
                details["field"].as_str().unwrap().to_owned()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn takes_contacts_and_bounds() {
        let erasure = Erasure::parse(json!({
            "contactIds": ["a", "b", "a"], "timestampStart": "2024-05-01T14:00:00+02:00", "timestampEnd": null
        }))
        .unwrap();
        assert_eq!(erasure.contact_ids, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(erasure.timestamp_start.map(format_time).as_deref(), Some("2024-05-01T12:00:00.000Z"));
        assert_eq!(erasure.timestamp_end, None);
        assert_eq!(Erasure::parse(erasure.to_json()).unwrap(), erasure);
        let everyone = Erasure::parse(json!({"contactIds": null})).unwrap();
        assert_eq!(everyone.contact_ids, None);
    }

    #[test]
    fn a_missing_contact_list_is_refused_rather_than_read_as_everyone() {
        let error = Erasure::parse(json!({"timestampEnd": "2024-05-01T12:00:00Z"})).unwrap_err();
        assert!(matches!(error, Error::Missing { .. }));
        assert_eq!(field_of(error), "contactIds");
    }

    #[test]
    fn refuses_bad_arguments_by_name() {
        let cases = [
            (json!([]), "body"),
            (json!({"contactIds": "a"}), "contactIds"),
            (json!({"contactIds": []}), "contactIds"),
            (json!({"contactIds": [1]}), "contactIds"),
            (json!({"contactIds": [""]}), "contactIds"),
            (json!({"contactIds": ["a\u{0}"]}), "contactIds"),
            (json!({"contactIds": ["x".repeat(1025)]}), "contactIds"),
            (json!({"contactIds": null, "timestampStart": "yesterday"}), "timestampStart"),
            (json!({"contactIds": null, "timestampEnd": 5}), "timestampEnd"),
            (json!({"contactIds": null, "contactId": "a"}), "contactId"),
            (
                json!({"contactIds": null, "timestampStart": "2024-05-02T00:00:00Z", "timestampEnd": "2024-05-01T00:00:00Z"}),
                "timestampStart",
            ),
        ];
        for (body, field) in cases {
            let error = Erasure::parse(body.clone()).unwrap_err();
            assert!(matches!(error, Error::Invalid { .. }), "{body}");
            assert_eq!(field_of(error), field, "{body}");
        }
        let same_instant = json!({"contactIds": null, "timestampStart": "2024-05-01T00:00:00Z", "timestampEnd": "2024-05-01T00:00:00Z"});
        assert!(Erasure::parse(same_instant).is_ok());
    }

    #[test]
    fn statuses_round_trip() {
        for status in [TaskStatus::Queued, TaskStatus::Running, TaskStatus::Done, TaskStatus::Error] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("finished"), None);
        assert!(TaskStatus::Error.is_finished() && !TaskStatus::Running.is_finished());
    }
}
