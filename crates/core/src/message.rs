//! A conversation message: a user's input, a bot's output or a human agent's message, as the
//! `Conversations` collection keeps it (docs/contract/conversations.md). Parsed from ingested
//! JSON, stamped and masked before it is stored, shown back field by field in catalogue order.

use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::field::{Field, FieldIndex, FieldType, JSON, NUMBER, Origin, SHORT, field, not_null, read_object};
use crate::project::ProjectSettings;
use crate::record::MASK;
use crate::row::{Catalogue, Row, project_of};
use crate::value::Value;
use crate::{ObjectId, Project};

use Origin::{Optional, Required, Server};

/// Every field of a message, in the order representations show them.
pub static MESSAGE_FIELDS: &[Field] = &[
    not_null(field("id", "id", FieldType::Id, Server, false)),
    field("messageId", "message_id", SHORT, Required, false),
    not_null(field("organisation", "organisation", SHORT, Server, false)),
    field("projectId", "project_id", FieldType::Id, Required, false),
    field("projectName", "project_name", SHORT, Server, false),
    field("sessionId", "session_id", SHORT, Required, false),
    field("contactId", "contact_id", SHORT, Required, false),
    field("inputId", "input_id", SHORT, Optional, false),
    field("outputId", "output_id", SHORT, Optional, false),
    field("type", "message_type", SHORT, Required, false),
    field("source", "source", SHORT, Required, false),
    field("inputText", "input_text", FieldType::LongText { max_bytes: 16 * 1024 }, Optional, false),
    field("inputData", "input_data", JSON, Optional, false),
    field("inputAttachments", "input_attachments", JSON, Optional, false),
    not_null(field("timestamp", "timestamp", FieldType::DateTime, Optional, false)),
    field("flowName", "flow_name", SHORT, Optional, false),
    field("flowReferenceId", "flow_reference_id", SHORT, Optional, false),
    field("channel", "channel", SHORT, Optional, false),
    field("endpointName", "endpoint_name", SHORT, Optional, false),
    field("endpointUrlToken", "endpoint_url_token", SHORT, Optional, false),
    field("localeName", "locale_name", SHORT, Optional, false),
    field("localeReferenceId", "locale_reference_id", SHORT, Optional, false),
    field("snapshotId", "snapshot_id", SHORT, Optional, false),
    field("snapshotName", "snapshot_name", SHORT, Optional, false),
    field("inHandoverRequest", "in_handover_request", FieldType::Boolean, Optional, false),
    field("inHandoverConversation", "in_handover_conversation", FieldType::Boolean, Optional, false),
    field("rating", "rating", NUMBER, Optional, false),
    field("ratingComment", "rating_comment", SHORT, Optional, false),
    field("expiresAt", "expires_at", FieldType::DateTime, Server, false),
];

/// Positions of the fields the code refers to by name.
pub mod idx {
    use super::FieldIndex;
    pub const ID: FieldIndex = 0;
    pub const MESSAGE_ID: FieldIndex = 1;
    pub const ORGANISATION: FieldIndex = 2;
    pub const PROJECT_ID: FieldIndex = 3;
    pub const PROJECT_NAME: FieldIndex = 4;
    pub const SESSION_ID: FieldIndex = 5;
    pub const CONTACT_ID: FieldIndex = 6;
    pub const INPUT_ID: FieldIndex = 7;
    pub const TYPE: FieldIndex = 9;
    pub const SOURCE: FieldIndex = 10;
    pub const INPUT_TEXT: FieldIndex = 11;
    pub const INPUT_DATA: FieldIndex = 12;
    pub const INPUT_ATTACHMENTS: FieldIndex = 13;
    pub const TIMESTAMP: FieldIndex = 14;
    pub const FLOW_NAME: FieldIndex = 15;
    pub const CHANNEL: FieldIndex = 17;
    pub const ENDPOINT_NAME: FieldIndex = 18;
    pub const ENDPOINT_URL_TOKEN: FieldIndex = 19;
    pub const LOCALE_NAME: FieldIndex = 20;
    pub const LOCALE_REFERENCE_ID: FieldIndex = 21;
    pub const SNAPSHOT_ID: FieldIndex = 22;
    pub const SNAPSHOT_NAME: FieldIndex = 23;
    pub const RATING: FieldIndex = 26;
    pub const RATING_COMMENT: FieldIndex = 27;
    pub const EXPIRES_AT: FieldIndex = 28;
}

/// The message field with this wire name.
pub fn message_field(name: &str) -> Option<FieldIndex> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, FieldIndex>> =
        std::sync::OnceLock::new();
    BY_NAME.get_or_init(|| MESSAGE_FIELDS.iter().enumerate().map(|(i, f)| (f.name, i)).collect()).get(name).copied()
}

/// The values `type` takes.
pub const MESSAGE_TYPES: [&str; 2] = ["input", "output"];
/// The values `source` takes.
pub const MESSAGE_SOURCES: [&str; 4] = ["user", "bot", "agent", "suggestion"];
/// The keys an attachment may have.
pub const ATTACHMENT_KEYS: [&str; 3] = ["url", "name", "type"];

/// The messages' catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum Messages {}

impl Catalogue for Messages {
    const FIELDS: &'static [Field] = MESSAGE_FIELDS;
    const PROJECT_ID: FieldIndex = idx::PROJECT_ID;
    const SESSION_ID: FieldIndex = idx::SESSION_ID;
}

/// A stored message: one value per field of [`MESSAGE_FIELDS`], in that order.
pub type Message = Row<Messages>;

/// A message as a client sent it for ingest, validated but not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    values: Vec<Value>,
}

impl NewMessage {
    /// Validates one ingested JSON object: the field types of the catalogue, `type` and `source`
    /// from their lists, and attachments as a list of `{url, name, type}` objects.
    pub fn parse(json: Json) -> Result<Self> {
        let values = read_object(MESSAGE_FIELDS, message_field, json, "message", "a message")?;
        let one_of = |index: FieldIndex, allowed: &[&str]| {
            let value = values[index].as_text().unwrap_or_default();
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(Error::invalid(MESSAGE_FIELDS[index].name, format!("must be one of {}", allowed.join(", "))))
            }
        };
        one_of(idx::TYPE, &MESSAGE_TYPES)?;
        one_of(idx::SOURCE, &MESSAGE_SOURCES)?;
        if let Value::Json(attachments) = &values[idx::INPUT_ATTACHMENTS] {
            check_attachments(attachments)?;
        }
        Ok(NewMessage { values })
    }

    /// The project named by the message.
    pub fn project_id(&self) -> ObjectId {
        project_of::<Messages>(&self.values)
    }

    /// Completes the message for storage: a fresh id, the organisation and name of its project,
    /// the ingest time as default timestamp, `expiresAt` from the transcript retention, and
    /// masking. After this nothing in the message is in clear text that the project's settings
    /// say must not be stored.
    pub fn stamp(mut self, project: &Project, now: OffsetDateTime) -> Message {
        let settings = &project.settings;
        self.values[idx::ID] = Value::Text(ObjectId::generate().to_string());
        self.values[idx::ORGANISATION] = Value::Text(project.organisation.to_string());
        self.values[idx::PROJECT_NAME] = Value::Text(project.name.clone());
        if self.values[idx::TIMESTAMP] == Value::Null {
            self.values[idx::TIMESTAMP] = Value::Time(now);
        }
        self.values[idx::EXPIRES_AT] = settings.transcript_expiry(now).map_or(Value::Null, Value::Time);
        if settings.mask_sensitive {
            let masks = [
                (idx::INPUT_TEXT, Value::Text(MASK.to_owned())),
                (idx::INPUT_DATA, Value::Json(MASK.into())),
                (idx::INPUT_ATTACHMENTS, Value::Json(serde_json::json!([{ MASK: MASK }]))),
            ];
            for (index, mask) in masks {
                if self.values[index] != Value::Null {
                    self.values[index] = mask;
                }
            }
        }
        Message::from_values(self.values)
    }
}

fn check_attachments(attachments: &Json) -> Result<()> {
    let problem =
        || Error::invalid("inputAttachments", "must be a list of objects with string 'url', 'name' and 'type'");
    let Json::Array(items) = attachments else { return Err(problem()) };
    for item in items {
        let Json::Object(object) = item else { return Err(problem()) };
        if !object.iter().all(|(key, value)| ATTACHMENT_KEYS.contains(&key.as_str()) && value.is_string()) {
            return Err(problem());
        }
    }
    Ok(())
}

impl ProjectSettings {
    /// When a message written at `now` expires, if ever: after `transcriptRetentionDays` when
    /// that is set and shorter than the project's retention, else with the project's records.
    pub fn transcript_expiry(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let days = match (self.transcript_retention_days, self.retention_days) {
            (0, records) => records,
            (transcripts, 0) => transcripts,
            (transcripts, records) => transcripts.min(records),
        };
        (days > 0).then(|| now + time::Duration::days(i64::from(days)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Json {
        json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "contactId": "c", "messageId": "m",
               "type": "input", "source": "user"})
    }

    fn project(settings: ProjectSettings) -> Project {
        let now = crate::value::now();
        Project {
            id: ObjectId::generate(),
            organisation: ObjectId::generate(),
            name: "Bot".into(),
            settings,
            profile: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn named_positions_match_the_catalogue() {
        for (index, name) in [
            (idx::ID, "id"),
            (idx::MESSAGE_ID, "messageId"),
            (idx::ORGANISATION, "organisation"),
            (idx::PROJECT_ID, "projectId"),
            (idx::PROJECT_NAME, "projectName"),
            (idx::SESSION_ID, "sessionId"),
            (idx::CONTACT_ID, "contactId"),
            (idx::INPUT_ID, "inputId"),
            (idx::TYPE, "type"),
            (idx::SOURCE, "source"),
            (idx::INPUT_TEXT, "inputText"),
            (idx::INPUT_DATA, "inputData"),
            (idx::INPUT_ATTACHMENTS, "inputAttachments"),
            (idx::TIMESTAMP, "timestamp"),
            (idx::FLOW_NAME, "flowName"),
            (idx::CHANNEL, "channel"),
            (idx::ENDPOINT_NAME, "endpointName"),
            (idx::ENDPOINT_URL_TOKEN, "endpointUrlToken"),
            (idx::LOCALE_NAME, "localeName"),
            (idx::LOCALE_REFERENCE_ID, "localeReferenceId"),
            (idx::SNAPSHOT_ID, "snapshotId"),
            (idx::SNAPSHOT_NAME, "snapshotName"),
            (idx::RATING, "rating"),
            (idx::RATING_COMMENT, "ratingComment"),
            (idx::EXPIRES_AT, "expiresAt"),
        ] {
            assert_eq!(MESSAGE_FIELDS[index].name, name);
            assert_eq!(message_field(name), Some(index));
        }
    }

    #[test]
    fn requires_the_identity_fields_and_known_types_and_sources() {
        for name in ["projectId", "sessionId", "contactId", "messageId", "type", "source"] {
            let mut json = minimal();
            json.as_object_mut().unwrap().remove(name);
            let error = NewMessage::parse(json).unwrap_err().to_string();
            assert_eq!(error, format!("Validation failed. '{name}' is required."));
        }
        let mut json = minimal();
        json["type"] = json!("question");
        assert_eq!(
            NewMessage::parse(json).unwrap_err().to_string(),
            "Validation failed. 'type' must be one of input, output."
        );
        let mut json = minimal();
        json["source"] = json!("robot");
        assert!(NewMessage::parse(json).unwrap_err().to_string().contains("user, bot, agent, suggestion"));
        let mut json = minimal();
        json["intent"] = json!("x");
        assert_eq!(
            NewMessage::parse(json).unwrap_err().to_string(),
            "Validation failed. 'intent' is not a field of a message."
        );
    }

    #[test]
    fn attachments_are_lists_of_url_name_type() {
        let mut json = minimal();
        json["inputAttachments"] = json!([{"url": "https://x/a.png", "name": "a.png", "type": "image"}]);
        assert!(NewMessage::parse(json).is_ok());
        for bad in [json!("a.png"), json!([1]), json!([{"url": 5}]), json!([{"size": "1"}])] {
            let mut json = minimal();
            json["inputAttachments"] = bad.clone();
            assert!(NewMessage::parse(json).unwrap_err().to_string().contains("'inputAttachments'"), "{bad}");
        }
    }

    #[test]
    fn stamping_masks_text_data_and_attachments() {
        let mut json = minimal();
        json["inputText"] = json!("my card is 4111");
        json["inputData"] = json!({"card": "4111"});
        json["inputAttachments"] = json!([{"url": "https://x/card.png", "name": "card.png", "type": "image"}]);
        let project = project(ProjectSettings { mask_sensitive: true, ..ProjectSettings::default() });
        let now = crate::value::now();
        let message = NewMessage::parse(json).unwrap().stamp(&project, now);
        let shown = message.to_json();
        assert_eq!(shown["inputText"], json!(MASK));
        assert_eq!(shown["inputData"], json!(MASK));
        assert_eq!(shown["inputAttachments"], json!([{"*****": "*****"}]));
        assert_eq!(shown["projectName"], json!("Bot"));
        assert_eq!(message.get(idx::TIMESTAMP), &Value::Time(now));
        assert!(!shown.values().any(|v| v.to_string().contains("4111")));
    }

    #[test]
    fn transcripts_expire_with_the_shorter_retention() {
        let now = crate::value::now();
        let days = |transcripts: u32, records: u32| {
            let settings = ProjectSettings {
                transcript_retention_days: transcripts,
                retention_days: records,
                ..ProjectSettings::default()
            };
            settings.transcript_expiry(now).map(|t| (t - now).whole_days())
        };
        assert_eq!(days(0, 365), Some(365));
        assert_eq!(days(30, 365), Some(30));
        assert_eq!(days(400, 365), Some(365));
        assert_eq!(days(30, 0), Some(30));
        assert_eq!(days(0, 0), None);
    }
}
