//! The session: one row per `(projectId, sessionId)` that parley derives from every row that
//! names it (docs/contract/conversations.md, "Sessions"). The rule that derives it lives here
//! once; the store feeds it the rows of the sessions a write touched and stores what it answers,
//! in the same transaction as the write.

use time::OffsetDateTime;

use crate::field::{Field, FieldType, NUMBER, Origin, SHORT, field, not_null};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// An analytics record (one user input).
    Record,
    /// A conversation message.
    Message,
}

/// What one row of a session tells about it: the values the derivation reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contribution {
    pub source: Option<Source>,
    /// The row's id, the last tie-breaker.
    pub id: String,
    pub timestamp: Option<OffsetDateTime>,
    pub contact_id: String,
    pub organisation: String,
    pub channel: Option<String>,
    pub endpoint_name: Option<String>,
    pub endpoint_url_token: Option<String>,
    pub endpoint_reference_id: Option<String>,
    pub locale_name: Option<String>,
    pub locale_reference_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_name: Option<String>,
    pub flow_name: Option<String>,
    pub rating: Option<f64>,
    pub rating_comment: Option<String>,
    pub handover_escalations: Option<i64>,
    pub expires_at: Option<OffsetDateTime>,
}

/// A session as derived from its rows. Besides the fields of [`SESSION_FIELDS`] it keeps what
/// the conversations index shows: the times of the first and last message and the first flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub contact_id: String,
    pub organisation: String,
    pub started_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub channel: Option<String>,
    pub endpoint_name: Option<String>,
    pub endpoint_url_token: Option<String>,
    pub endpoint_reference_id: Option<String>,
    pub locale_name: Option<String>,
    pub locale_reference_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_name: Option<String>,
    pub flow_name: Option<String>,
    pub handover_escalations: i64,
    pub rating: Option<f64>,
    pub rating_comment: Option<String>,
    pub inputs_count: i64,
    pub messages_count: i64,
    pub first_message_at: Option<OffsetDateTime>,
    pub last_message_at: Option<OffsetDateTime>,
    /// The latest expiry of its rows; `None` when one of them never expires.
    pub expires_at: Option<OffsetDateTime>,
}

/// Derives a session from all of its rows, in any order; `None` when there are none.
///
/// - `startedAt` and `lastActivityAt`: the least and greatest timestamp;
/// - `contactId`, `channel`, `locale*`, `endpoint*`, `snapshot*` and the flow: each from the
///   earliest row that carries a value for it;
/// - `rating` and `ratingComment`: both from the latest row with a rating;
/// - `handoverEscalations`: the largest of its records' (until escalations are kept);
/// - counts of records (inputs) and messages, and the first and last message's times.
pub fn derive(rows: &mut [Contribution]) -> Option<Derived> {
    rows.sort_by(|a, b| (a.timestamp, a.source, &a.id).cmp(&(b.timestamp, b.source, &b.id)));
    let first = rows.first()?;
    let last = rows.last()?;
    let earliest = |value: fn(&Contribution) -> &Option<String>| rows.iter().find_map(|row| value(row).clone());
    let rated = rows.iter().rev().find(|row| row.rating.is_some());
    let messages: Vec<&Contribution> = rows.iter().filter(|row| row.source == Some(Source::Message)).collect();
    let never_expires = rows.iter().any(|row| row.expires_at.is_none());
    Some(Derived {
        contact_id: first.contact_id.clone(),
        organisation: first.organisation.clone(),
        started_at: first.timestamp?,
        last_activity_at: last.timestamp?,
        channel: earliest(|r| &r.channel),
        endpoint_name: earliest(|r| &r.endpoint_name),
        endpoint_url_token: earliest(|r| &r.endpoint_url_token),
        endpoint_reference_id: earliest(|r| &r.endpoint_reference_id),
        locale_name: earliest(|r| &r.locale_name),
        locale_reference_id: earliest(|r| &r.locale_reference_id),
        snapshot_id: earliest(|r| &r.snapshot_id),
        snapshot_name: earliest(|r| &r.snapshot_name),
        flow_name: earliest(|r| &r.flow_name),
        handover_escalations: rows.iter().filter_map(|r| r.handover_escalations).max().unwrap_or(0),
        rating: rated.and_then(|r| r.rating),
        rating_comment: rated.and_then(|r| r.rating_comment.clone()),
        inputs_count: rows.iter().filter(|r| r.source == Some(Source::Record)).count() as i64,
        messages_count: messages.len() as i64,
        first_message_at: messages.first().and_then(|m| m.timestamp),
        last_message_at: messages.last().and_then(|m| m.timestamp),
        expires_at: if never_expires { None } else { rows.iter().filter_map(|r| r.expires_at).max() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn row(source: Source, id: &str, at: OffsetDateTime) -> Contribution {
        Contribution {
            source: Some(source),
            id: id.into(),
            timestamp: Some(at),
            contact_id: "c".into(),
            organisation: "o".into(),
            expires_at: Some(at + time::Duration::days(1)),
            ..Contribution::default()
        }
    }

    #[test]
    fn no_rows_is_no_session() {
        assert_eq!(derive(&mut []), None);
    }

    #[test]
    fn earliest_carrier_and_latest_rating_whatever_the_order() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut late_rating = row(Source::Record, "r2", t + time::Duration::minutes(5));
        late_rating.rating = Some(1.0);
        late_rating.rating_comment = None;
        let mut early_rating = row(Source::Message, "m1", t);
        early_rating.rating = Some(5.0);
        early_rating.rating_comment = Some("great".into());
        early_rating.channel = Some("web".into());
        let mut later_channel = row(Source::Message, "m2", t + time::Duration::minutes(1));
        later_channel.channel = Some("voice".into());
        later_channel.handover_escalations = Some(2);
        let mut rows = vec![late_rating, later_channel, early_rating];
        let derived = derive(&mut rows).unwrap();
        assert_eq!(derived.channel.as_deref(), Some("web"));
        assert_eq!((derived.rating, derived.rating_comment), (Some(1.0), None), "both from the latest rated row");
        assert_eq!((derived.inputs_count, derived.messages_count), (1, 2));
        assert_eq!(derived.started_at, t);
        assert_eq!(derived.last_activity_at, t + time::Duration::minutes(5));
        assert_eq!(derived.last_message_at, Some(t + time::Duration::minutes(1)));
        assert_eq!(derived.handover_escalations, 2);
        assert_eq!(derived.expires_at, Some(t + time::Duration::minutes(5) + time::Duration::days(1)));
    }

    #[test]
    fn ties_go_to_records_then_ids_and_one_row_that_never_expires_keeps_the_session() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut message = row(Source::Message, "a", t);
        message.channel = Some("message".into());
        message.expires_at = None;
        let mut record = row(Source::Record, "z", t);
        record.channel = Some("record".into());
        let derived = derive(&mut [message, record]).unwrap();
        assert_eq!(derived.channel.as_deref(), Some("record"));
        assert_eq!(derived.expires_at, None);
    }
}
