//! The session: one row per `(projectId, sessionId)` that parley derives from every row that
//! names it (docs/contract/conversations.md, "Sessions"). The rule that derives it lives here
//! once; the store feeds it the rows of the sessions a write touched and stores what it answers,
//! in the same transaction as the write.

use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use crate::escalation::idx as esc;
use crate::field::{Field, FieldIndex, FieldType, NUMBER, Origin, SHORT, field, idx as rec, not_null};
use crate::goal_event::idx as goal;
use crate::message::idx as msg;
use crate::step::idx as step;
use crate::value::Value;

use Origin::Server;

const COUNT: FieldType = FieldType::Integer { min: 0 };
const LIST: FieldType = FieldType::LongText { max_bytes: usize::MAX };

/// Every field of a session as the `Sessions` collection shows it. `userId` and `contactId` are
/// one value under the reference product's name and parley's; so are `organisation` and
/// `organisationId`.
pub static SESSION_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    not_null(field("sessionId", "session_id", SHORT, Server, false)),
    not_null(field("userId", "contact_id", SHORT, Server, false)),
    not_null(field("contactId", "contact_id", SHORT, Server, false)),
    not_null(field("organisation", "organisation", SHORT, Server, false)),
    not_null(field("organisationId", "organisation", SHORT, Server, false)),
    not_null(field("projectId", "project_id", FieldType::Id, Server, false)),
    field("projectName", "project_name", SHORT, Server, false),
    not_null(field("startedAt", "started_at", FieldType::DateTime, Server, false)),
    not_null(field("lastActivityAt", "last_activity_at", FieldType::DateTime, Server, false)),
    field("channel", "channel", SHORT, Server, false),
    field("endpointName", "endpoint_name", SHORT, Server, false),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Server, false),
    field("endpointReferenceId", "endpoint_reference_id", SHORT, Server, false),
    field("localeName", "locale_name", SHORT, Server, false),
    field("localeReferenceId", "locale_reference_id", SHORT, Server, false),
    field("snapshotId", "snapshot_id", SHORT, Server, false),
    field("snapshotName", "snapshot_name", SHORT, Server, false),
    not_null(field("stepsCount", "steps_count", COUNT, Server, false)),
    not_null(field("stepPath", "step_path", LIST, Server, false)),
    not_null(field("goals", "goals", LIST, Server, false)),
    not_null(field("handoverEscalations", "handover_escalations", COUNT, Server, false)),
    field("rating", "rating", NUMBER, Server, false),
    field("ratingComment", "rating_comment", SHORT, Server, false),
    not_null(field("inputsCount", "inputs_count", COUNT, Server, false)),
    not_null(field("messagesCount", "messages_count", COUNT, Server, false)),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
];

/// Which collection a contributing row comes from. At equal timestamps rows are taken in this
/// order, then by their id, so that "earliest" and "latest" are always one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// An analytics record (one user input).
    Record,
    /// A conversation message.
    Message,
    /// An executed step.
    Step,
    /// A handover to a human agent.
    Escalation,
    /// A goal step reached.
    GoalEvent,
}

impl Source {
    /// Every source, in order.
    pub const ALL: [Source; 5] = [Source::Record, Source::Message, Source::Step, Source::Escalation, Source::GoalEvent];
}

/// The position of a row in its session: by timestamp (milliseconds), then source, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    pub at: i64,
    pub source: Source,
    pub id: String,
}

impl RowKey {
    /// The key as stored: `[milliseconds, source, id]`.
    pub fn to_json(&self) -> Json {
        json!([self.at, self.source as u8, self.id])
    }

    pub fn from_json(json: &Json) -> Option<RowKey> {
        let source = match json.get(1)?.as_u64()? {
            0 => Source::Record,
            1 => Source::Message,
            2 => Source::Step,
            3 => Source::Escalation,
            4 => Source::GoalEvent,
            _ => return None,
        };
        Some(RowKey { at: json.get(0)?.as_i64()?, source, id: json.get(2)?.as_str()?.to_owned() })
    }
}

/// One field of the rows a session is derived from: where each source keeps it, `None` where the
/// source has no such field.
#[derive(Debug, Clone, Copy)]
pub struct PerSource {
    pub record: Option<FieldIndex>,
    pub message: Option<FieldIndex>,
    pub step: Option<FieldIndex>,
    pub escalation: Option<FieldIndex>,
    pub goal_event: Option<FieldIndex>,
}

/// No source has the field.
const NONE: PerSource = PerSource { record: None, message: None, step: None, escalation: None, goal_event: None };

impl PerSource {
    const fn all(
        record: FieldIndex,
        message: FieldIndex,
        step: FieldIndex,
        escalation: FieldIndex,
        goal_event: FieldIndex,
    ) -> PerSource {
        PerSource {
            record: Some(record),
            message: Some(message),
            step: Some(step),
            escalation: Some(escalation),
            goal_event: Some(goal_event),
        }
    }

    /// Where `source` keeps the field.
    pub fn of(&self, source: Source) -> Option<FieldIndex> {
        match source {
            Source::Record => self.record,
            Source::Message => self.message,
            Source::Step => self.step,
            Source::Escalation => self.escalation,
            Source::GoalEvent => self.goal_event,
        }
    }
}

/// A session field that takes its value from the earliest row carrying one, and the fields of
/// each source it is read from.
#[derive(Debug, Clone, Copy)]
pub struct Carried {
    /// The session's field (and column) name.
    pub column: &'static str,
    pub from: PerSource,
}

/// The fields each session takes from the earliest row that carries them. A record's
/// `entrypoint` is the endpoint's reference id; a record has no snapshot id; a step has no
/// channel.
pub const CARRIED: [Carried; 9] = [
    Carried {
        column: "channel",
        from: PerSource {
            record: Some(rec::CHANNEL),
            message: Some(msg::CHANNEL),
            escalation: Some(esc::CHANNEL),
            goal_event: Some(goal::CHANNEL),
            ..NONE
        },
    },
    Carried {
        column: "endpoint_name",
        from: PerSource::all(
            rec::ENDPOINT_NAME,
            msg::ENDPOINT_NAME,
            step::ENDPOINT_NAME,
            esc::ENDPOINT_NAME,
            goal::ENDPOINT_NAME,
        ),
    },
    Carried {
        column: "endpoint_url_token",
        from: PerSource::all(
            rec::ENDPOINT_URL_TOKEN,
            msg::ENDPOINT_URL_TOKEN,
            step::ENDPOINT_URL_TOKEN,
            esc::ENDPOINT_URL_TOKEN,
            goal::ENDPOINT_URL_TOKEN,
        ),
    },
    Carried { column: "endpoint_reference_id", from: PerSource { record: Some(rec::ENTRYPOINT), ..NONE } },
    Carried {
        column: "locale_name",
        from: PerSource::all(
            rec::LOCALE_NAME,
            msg::LOCALE_NAME,
            step::LOCALE_NAME,
            esc::LOCALE_NAME,
            goal::LOCALE_NAME,
        ),
    },
    Carried {
        column: "locale_reference_id",
        from: PerSource::all(
            rec::LOCALE_REFERENCE_ID,
            msg::LOCALE_REFERENCE_ID,
            step::LOCALE_REFERENCE_ID,
            esc::LOCALE_REFERENCE_ID,
            goal::LOCALE_REFERENCE_ID,
        ),
    },
    Carried {
        column: "snapshot_id",
        from: PerSource {
            message: Some(msg::SNAPSHOT_ID),
            step: Some(step::SNAPSHOT_ID),
            escalation: Some(esc::SNAPSHOT_ID),
            goal_event: Some(goal::SNAPSHOT_ID),
            ..NONE
        },
    },
    Carried {
        column: "snapshot_name",
        from: PerSource::all(
            rec::SNAPSHOT_NAME,
            msg::SNAPSHOT_NAME,
            step::SNAPSHOT_NAME,
            esc::SNAPSHOT_NAME,
            goal::SNAPSHOT_NAME,
        ),
    },
    Carried {
        column: "flow_name",
        from: PerSource {
            record: Some(rec::FLOW_NAME),
            message: Some(msg::FLOW_NAME),
            step: Some(step::FLOW_NAME),
            ..NONE
        },
    },
];

/// The fields of a row a session is derived from, in the order [`Contribution::from_values`]
/// reads them; `None` where the source has no such field.
pub fn contribution_fields(source: Source) -> Vec<Option<FieldIndex>> {
    let mut fields = vec![
        PerSource::all(rec::ID, msg::ID, step::ID, esc::ID, goal::ID),
        PerSource::all(rec::TIMESTAMP, msg::TIMESTAMP, step::TIMESTAMP, esc::TIMESTAMP, goal::TIMESTAMP),
        PerSource::all(rec::CONTACT_ID, msg::CONTACT_ID, step::CONTACT_ID, esc::CONTACT_ID, goal::CONTACT_ID),
        PerSource::all(rec::ORGANISATION, msg::ORGANISATION, step::ORGANISATION, esc::ORGANISATION, goal::ORGANISATION),
    ];
    fields.extend(CARRIED.iter().map(|c| c.from));
    fields.extend([
        PerSource { record: Some(rec::RATING), message: Some(msg::RATING), ..NONE },
        PerSource { record: Some(rec::RATING_COMMENT), message: Some(msg::RATING_COMMENT), ..NONE },
        PerSource { record: Some(rec::HANDOVER_ESCALATIONS), ..NONE },
        PerSource::all(rec::EXPIRES_AT, msg::EXPIRES_AT, step::EXPIRES_AT, esc::EXPIRES_AT, goal::EXPIRES_AT),
    ]);
    fields.iter().map(|f| f.of(source)).collect()
}

/// What one row tells about its session.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub key: RowKey,
    pub timestamp: OffsetDateTime,
    /// A step may not name its contact.
    pub contact_id: Option<String>,
    pub organisation: String,
    /// The values of [`CARRIED`], in order.
    pub carried: [Option<String>; 9],
    pub rating: Option<f64>,
    pub rating_comment: Option<String>,
    pub handover_escalations: Option<i64>,
    pub expires_at: Option<OffsetDateTime>,
}

impl Contribution {
    /// A row's contribution from the values of [`contribution_fields`], in order (`Null` where
    /// the source has no such field). `None` when the values are not of their fields' types.
    pub fn from_values(source: Source, values: &[Value]) -> Option<Contribution> {
        let text = |v: &Value| v.as_text().map(str::to_owned);
        let time = |v: &Value| match v {
            Value::Time(t) => Some(*t),
            _ => None,
        };
        let [id, timestamp, contact, organisation, rest @ ..] = values else { return None };
        let (carried, rest) = rest.split_at_checked(CARRIED.len())?;
        let [rating, comment, handovers, expires] = rest else { return None };
        let timestamp = time(timestamp)?;
        Some(Contribution {
            key: RowKey { at: millis(timestamp), source, id: text(id)? },
            timestamp,
            contact_id: text(contact),
            organisation: text(organisation)?,
            carried: std::array::from_fn(|i| text(&carried[i])),
            rating: match rating {
                Value::Number(n) => Some(*n),
                Value::Integer(n) => Some(*n as f64),
                _ => None,
            },
            rating_comment: text(comment),
            handover_escalations: match handovers {
                Value::Integer(n) => Some(*n),
                _ => None,
            },
            expires_at: time(expires),
        })
    }

    /// The contribution of a row whose values are in its catalogue's order.
    pub fn of_row(source: Source, row: &[Value]) -> Option<Contribution> {
        let values: Vec<Value> =
            contribution_fields(source).into_iter().map(|f| f.map_or(Value::Null, |i| row[i].clone())).collect();
        Contribution::from_values(source, &values)
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The value of a carried field and the row it came from.
pub type CarriedValue = Option<(RowKey, String)>;

/// A session as derived from some of its rows. Deriving from all of a session's rows gives the
/// session; [`Derived::merge`] of two derivations over disjoint rows gives the derivation over
/// both, so that an ingest only derives its new rows and merges them into what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The earliest row, whose organisation the session shows.
    pub first: RowKey,
    pub organisation: String,
    /// The contact, from the earliest row that names one.
    pub contact: CarriedValue,
    pub started_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    /// The values of [`CARRIED`], in order, each from the earliest row that carries one.
    pub carried: [CarriedValue; 9],
    /// The latest row with a rating: its rating and comment.
    pub rated: Option<(RowKey, f64, Option<String>)>,
    /// The largest `handoverEscalations` of its records.
    pub record_handovers: i64,
    /// How many escalations it has.
    pub escalations_count: i64,
    /// How many goal events it has.
    pub goal_events_count: i64,
    pub inputs_count: i64,
    pub messages_count: i64,
    pub steps_count: i64,
    pub first_message_at: Option<OffsetDateTime>,
    pub last_message_at: Option<OffsetDateTime>,
    /// The latest expiry of its rows; `None` when one of them never expires.
    pub expires_at: Option<OffsetDateTime>,
}

impl Derived {
    /// The derivation over one row.
    pub fn of(row: &Contribution) -> Derived {
        let message = row.key.source == Source::Message;
        Derived {
            first: row.key.clone(),
            organisation: row.organisation.clone(),
            contact: row.contact_id.clone().map(|c| (row.key.clone(), c)),
            started_at: row.timestamp,
            last_activity_at: row.timestamp,
            carried: std::array::from_fn(|i| row.carried[i].clone().map(|v| (row.key.clone(), v))),
            rated: row.rating.map(|r| (row.key.clone(), r, row.rating_comment.clone())),
            record_handovers: row.handover_escalations.unwrap_or(0),
            escalations_count: i64::from(row.key.source == Source::Escalation),
            goal_events_count: i64::from(row.key.source == Source::GoalEvent),
            inputs_count: i64::from(row.key.source == Source::Record),
            messages_count: i64::from(message),
            steps_count: i64::from(row.key.source == Source::Step),
            first_message_at: message.then_some(row.timestamp),
            last_message_at: message.then_some(row.timestamp),
            expires_at: row.expires_at,
        }
    }

    /// The derivation over the rows of both, which must not share a row.
    pub fn merge(self, other: Derived) -> Derived {
        let (earlier, later) = if self.first <= other.first { (self, other) } else { (other, self) };
        let min = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let earliest = |slot: &mut CarriedValue, candidate: CarriedValue| {
            if let Some(candidate) = candidate
                && slot.as_ref().is_none_or(|(key, _)| candidate.0 < *key)
            {
                *slot = Some(candidate);
            }
        };
        let [mut mine, theirs] = [earlier.carried, later.carried];
        for (slot, candidate) in mine.iter_mut().zip(theirs) {
            earliest(slot, candidate);
        }
        let mut contact = earlier.contact;
        earliest(&mut contact, later.contact);
        let rated = match (earlier.rated, later.rated) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        Derived {
            first: earlier.first,
            organisation: earlier.organisation,
            contact,
            started_at: earlier.started_at.min(later.started_at),
            last_activity_at: earlier.last_activity_at.max(later.last_activity_at),
            carried: mine,
            rated,
            record_handovers: earlier.record_handovers.max(later.record_handovers),
            escalations_count: earlier.escalations_count + later.escalations_count,
            goal_events_count: earlier.goal_events_count + later.goal_events_count,
            inputs_count: earlier.inputs_count + later.inputs_count,
            messages_count: earlier.messages_count + later.messages_count,
            steps_count: earlier.steps_count + later.steps_count,
            first_message_at: min(earlier.first_message_at, later.first_message_at),
            last_message_at: earlier.last_message_at.max(later.last_message_at),
            expires_at: earlier.expires_at.zip(later.expires_at).map(|(a, b)| a.max(b)),
        }
    }

    /// `handoverEscalations`: how many escalations it has, or when none, the largest count its
    /// records name.
    pub fn handover_escalations(&self) -> i64 {
        if self.escalations_count > 0 { self.escalations_count } else { self.record_handovers }
    }

    /// The contact the session shows: that of the earliest row naming one, empty while none does
    /// (a session known only from steps that leave it out).
    pub fn contact_id(&self) -> &str {
        self.contact.as_ref().map_or("", |(_, c)| c)
    }

    /// The row keys a stored session keeps so that later rows can be merged into it:
    /// `{"first": key, "contact": key or null, "carried": [key or null, …], "rated": key or null}`.
    pub fn keys_json(&self) -> Json {
        json!({
            "first": self.first.to_json(),
            "contact": self.contact.as_ref().map_or(Json::Null, |(k, _)| k.to_json()),
            "carried": self.carried.iter().map(|c| c.as_ref().map_or(Json::Null, |(k, _)| k.to_json())).collect::<Vec<_>>(),
            "rated": self.rated.as_ref().map_or(Json::Null, |(k, _, _)| k.to_json()),
            "recordHandovers": self.record_handovers,
            "escalations": self.escalations_count,
            "goalEvents": self.goal_events_count,
        })
    }
}

/// Which parts of a session an update of records may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touched {
    /// The fields of [`CARRIED`], in order.
    pub carried: [bool; 9],
    /// `rating` or `ratingComment`.
    pub rating: bool,
    pub handover: bool,
}

impl Touched {
    /// What an update of these record fields may change.
    pub fn by_record_fields(fields: impl IntoIterator<Item = FieldIndex>) -> Touched {
        let mut touched = Touched::default();
        for field in fields {
            for (i, carried) in CARRIED.iter().enumerate() {
                touched.carried[i] |= carried.from.record == Some(field);
            }
            touched.rating |= field == rec::RATING || field == rec::RATING_COMMENT;
            touched.handover |= field == rec::HANDOVER_ESCALATIONS;
        }
        touched
    }

    /// Whether the update may change sessions at all.
    pub fn any(&self) -> bool {
        self.rating || self.handover || self.carried.iter().any(|c| *c)
    }
}

impl Derived {
    /// Applies the new values of one of the session's rows that an update changed (its key,
    /// contact and times stay). False when what is stored cannot tell the answer (the row a
    /// value came from lost it, or held the largest count and lowered it): then the session must
    /// be derived again from all of its rows.
    pub fn apply_update(&mut self, row: &Contribution, touched: &Touched) -> bool {
        for (i, slot) in self.carried.iter_mut().enumerate() {
            if !touched.carried[i] {
                continue;
            }
            let holder = slot.as_ref().is_some_and(|(key, _)| *key == row.key);
            match (&row.carried[i], holder) {
                (Some(value), true) => *slot = Some((row.key.clone(), value.clone())),
                (None, true) => return false,
                (Some(value), false) if slot.as_ref().is_none_or(|(key, _)| row.key < *key) => {
                    *slot = Some((row.key.clone(), value.clone()));
                }
                _ => {}
            }
        }
        if touched.rating {
            let holder = self.rated.as_ref().is_some_and(|(key, _, _)| *key == row.key);
            match (row.rating, holder) {
                (Some(rating), true) => self.rated = Some((row.key.clone(), rating, row.rating_comment.clone())),
                (None, true) => return false,
                (Some(rating), false) if self.rated.as_ref().is_none_or(|(key, _, _)| row.key > *key) => {
                    self.rated = Some((row.key.clone(), rating, row.rating_comment.clone()));
                }
                _ => {}
            }
        }
        if touched.handover {
            let count = row.handover_escalations.unwrap_or(0);
            if count < self.record_handovers {
                return false;
            }
            self.record_handovers = count;
        }
        true
    }
}

/// Derives a session from all of its rows, in any order; `None` when there are none.
pub fn derive(rows: &[Contribution]) -> Option<Derived> {
    rows.iter().map(Derived::of).reduce(Derived::merge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn row(source: Source, id: &str, at: OffsetDateTime) -> Contribution {
        Contribution {
            key: RowKey { at: millis(at), source, id: id.into() },
            timestamp: at,
            contact_id: Some("c".into()),
            organisation: "o".into(),
            carried: Default::default(),
            rating: None,
            rating_comment: None,
            handover_escalations: None,
            expires_at: Some(at + time::Duration::days(1)),
        }
    }

    #[test]
    fn no_rows_is_no_session() {
        assert_eq!(derive(&[]), None);
    }

    #[test]
    fn earliest_carrier_and_latest_rating_whatever_the_order() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut late_rating = row(Source::Record, "r2", t + time::Duration::minutes(5));
        late_rating.rating = Some(1.0);
        let mut early_rating = row(Source::Message, "m1", t);
        early_rating.rating = Some(5.0);
        early_rating.rating_comment = Some("great".into());
        early_rating.carried[0] = Some("web".into());
        let mut later_channel = row(Source::Message, "m2", t + time::Duration::minutes(1));
        later_channel.carried[0] = Some("voice".into());
        later_channel.handover_escalations = Some(2);
        let rows = [late_rating, later_channel, early_rating];
        let derived = derive(&rows).unwrap();
        assert_eq!(derived.carried[0].as_ref().map(|(_, v)| v.as_str()), Some("web"));
        let rated = derived.rated.as_ref().map(|(_, r, c)| (*r, c.clone()));
        assert_eq!(rated, Some((1.0, None)), "both from the latest rated row");
        assert_eq!((derived.inputs_count, derived.messages_count), (1, 2));
        assert_eq!(derived.started_at, t);
        assert_eq!(derived.last_activity_at, t + time::Duration::minutes(5));
        assert_eq!(derived.last_message_at, Some(t + time::Duration::minutes(1)));
        assert_eq!(derived.handover_escalations(), 2);
        assert_eq!(derived.expires_at, Some(t + time::Duration::minutes(5) + time::Duration::days(1)));
        // Any split of the rows, merged, gives the same.
        for split in 0..=rows.len() {
            let (a, b) = rows.split_at(split);
            let merged = match (derive(a), derive(b)) {
                (Some(a), Some(b)) => a.merge(b),
                (a, b) => a.or(b).unwrap(),
            };
            assert_eq!(merged, derived, "split at {split}");
        }
    }

    #[test]
    fn ties_go_to_records_then_ids_and_one_row_that_never_expires_keeps_the_session() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut message = row(Source::Message, "a", t);
        message.carried[0] = Some("message".into());
        message.expires_at = None;
        let mut record = row(Source::Record, "z", t);
        record.carried[0] = Some("record".into());
        let derived = derive(&[message, record]).unwrap();
        assert_eq!(derived.carried[0].as_ref().map(|(_, v)| v.as_str()), Some("record"));
        assert_eq!(derived.expires_at, None);
        let keys = derived.keys_json();
        assert_eq!(RowKey::from_json(&keys["first"]), Some(derived.first.clone()));
    }

    #[test]
    fn an_update_applied_to_the_stored_session_equals_deriving_it_again() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let rows: Vec<Contribution> = (0..4)
            .map(|n| {
                let mut r = row(Source::Record, &format!("r{n}"), t + time::Duration::minutes(n));
                r.rating = (n % 2 == 0).then_some(n as f64);
                r.carried[0] = (n > 0).then(|| format!("channel {n}"));
                r.handover_escalations = Some(n);
                r
            })
            .collect();
        let stored = derive(&rows).unwrap();
        let touched = Touched::by_record_fields([rec::RATING, rec::CHANNEL, rec::HANDOVER_ESCALATIONS]);
        assert!(touched.any() && touched.rating && touched.handover && touched.carried[0]);
        // Each change of one row: applied incrementally, or refused, never wrong.
        // (row, its new rating, channel and handover count)
        type Change = (usize, Option<f64>, Option<&'static str>, Option<i64>);
        let changes: [Change; 6] = [
            (1, Some(7.0), Some("early"), Some(3)),
            (3, Some(1.0), None, Some(5)),
            (2, None, Some("x"), Some(3)),
            (0, None, Some("first"), Some(0)),
            (1, None, None, Some(3)),
            (3, None, Some("last"), Some(1)),
        ];
        let mut incremental = 0;
        for (n, rating, channel, handovers) in changes {
            let mut changed = rows.clone();
            changed[n].rating = rating;
            changed[n].carried[0] = channel.map(str::to_owned);
            changed[n].handover_escalations = handovers;
            let mut applied = stored.clone();
            if applied.apply_update(&changed[n], &touched) {
                assert_eq!(applied, derive(&changed).unwrap(), "row {n}");
                incremental += 1;
            }
        }
        assert!(incremental >= 2, "changes apply without reading the rows again: {incremental}");
        let mut applied = stored.clone();
        let mut lowered = rows[3].clone();
        lowered.handover_escalations = Some(1);
        assert!(!applied.apply_update(&lowered, &touched), "the largest count lowered cannot be told");
        let mut unrated = rows[2].clone();
        unrated.rating = None;
        assert!(!stored.clone().apply_update(&unrated, &touched), "the rated row losing its rating cannot be told");
    }

    #[test]
    fn contributions_read_the_catalogue_fields_of_each_source() {
        for source in Source::ALL {
            let fields = contribution_fields(source);
            assert_eq!(fields.len(), 4 + CARRIED.len() + 4);
        }
        let catalogue = |source| match source {
            Source::Record => crate::RECORD_FIELDS,
            Source::Message => crate::MESSAGE_FIELDS,
            Source::Step => crate::step::EXECUTED_STEP_FIELDS,
            Source::Escalation => crate::escalation::ESCALATION_FIELDS,
            Source::GoalEvent => crate::goal_event::GOAL_EVENT_FIELDS,
        };
        let names = |source| -> Vec<&str> {
            contribution_fields(source).iter().map(|f| f.map_or("-", |i| catalogue(source)[i].name)).collect()
        };
        assert_eq!(
            names(Source::Record)[4..13],
            [
                "channel",
                "endpointName",
                "endpointUrlToken",
                "entrypoint",
                "localeName",
                "localeReferenceId",
                "-",
                "snapshotName",
                "flowName"
            ]
        );
        assert_eq!(
            names(Source::Message)[4..13],
            [
                "channel",
                "endpointName",
                "endpointUrlToken",
                "-",
                "localeName",
                "localeReferenceId",
                "snapshotId",
                "snapshotName",
                "flowName"
            ]
        );
        assert_eq!(names(Source::Step)[..4], ["id", "timestamp", "userId", "organisationId"]);
        assert_eq!(names(Source::Step)[13..], ["-", "-", "-", "expiresAt"]);
        assert_eq!(names(Source::Escalation)[2..5], ["contactId", "organisationId", "channel"]);
        assert_eq!(names(Source::Escalation)[12..], ["-", "-", "-", "-", "expiresAt"]);
        assert_eq!(
            names(Source::GoalEvent)[2..13],
            [
                "contactId",
                "organisationId",
                "channel",
                "endpointName",
                "endpointUrlToken",
                "-",
                "localeName",
                "localeReferenceId",
                "snapshotId",
                "snapshotName",
                "-"
            ]
        );
        assert_eq!(names(Source::GoalEvent)[13..], ["-", "-", "-", "expiresAt"]);
    }

    #[test]
    fn goal_events_keep_their_session_and_count_in_its_keys() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let only_events = derive(&[row(Source::GoalEvent, "g1", t), row(Source::GoalEvent, "g2", t)]).unwrap();
        assert_eq!((only_events.goal_events_count, only_events.inputs_count, only_events.steps_count), (2, 0, 0));
        let key = RowKey { at: 5, source: Source::GoalEvent, id: "g1".into() };
        assert_eq!(RowKey::from_json(&key.to_json()), Some(key));
        assert_eq!(only_events.keys_json()["goalEvents"].as_i64(), Some(2));
    }

    #[test]
    fn escalations_count_once_there_are_any_else_the_records_say() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut record = row(Source::Record, "r1", t);
        record.handover_escalations = Some(3);
        let records_only = derive(std::slice::from_ref(&record)).unwrap();
        assert_eq!(records_only.handover_escalations(), 3);
        let escalated = records_only.merge(Derived::of(&row(Source::Escalation, "x1", t)));
        assert_eq!((escalated.handover_escalations(), escalated.record_handovers), (1, 3));
        let keys = escalated.keys_json();
        assert_eq!((keys["recordHandovers"].as_i64(), keys["escalations"].as_i64()), (Some(3), Some(1)));
    }

    #[test]
    fn the_contact_comes_from_the_earliest_row_that_names_one() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut anonymous = row(Source::Step, "e1", t);
        anonymous.contact_id = None;
        let mut named = row(Source::Message, "m1", t + time::Duration::minutes(1));
        named.contact_id = Some("later".into());
        let only_steps = derive(std::slice::from_ref(&anonymous)).unwrap();
        assert_eq!(only_steps.contact_id(), "");
        assert_eq!((only_steps.steps_count, only_steps.inputs_count, only_steps.messages_count), (1, 0, 0));
        let both = only_steps.merge(Derived::of(&named));
        assert_eq!(both.contact_id(), "later");
        assert_eq!(both.first, anonymous.key, "the session still starts with the step");
    }
}
