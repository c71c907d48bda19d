//! What the tests of the `Conversations` and `Sessions` sets send, typed, and what the feed must
//! answer for it: messages and records of a few sessions per project, the message as the feed
//! shows it, and every session recomputed from the rows by the rules of the contract
//! (docs/contract/conversations.md, "Sessions").

use std::collections::BTreeMap;

use parley_core::value::format_time;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::helpers::{TestApp, record};

const BASE: OffsetDateTime = datetime!(2024-05-01 08:00 UTC);
pub(super) const PROJECT_NAME: &str = "Test bot";
const TEXTS: [&str; 3] = ["I want a refund", "Where is my parcel, please?", "it's late"];
const ANSWER: &str = "How can I \"help\"?";

/// One message the test sends, typed, so that expectations are computed from it.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) project: String,
    pub(super) id: String,
    pub(super) session: String,
    pub(super) contact: String,
    pub(super) input_id: String,
    pub(super) kind: &'static str,
    pub(super) source: &'static str,
    pub(super) text: Option<&'static str>,
    pub(super) channel: Option<&'static str>,
    pub(super) at: OffsetDateTime,
    pub(super) rating: Option<f64>,
    pub(super) data: Option<Json>,
    pub(super) attachments: Option<Json>,
}

/// One analytics record the test sends: it shapes its session too.
#[derive(Debug, Clone)]
pub(super) struct Input {
    pub(super) project: String,
    pub(super) id: String,
    pub(super) session: String,
    pub(super) contact: String,
    pub(super) channel: Option<&'static str>,
    pub(super) at: OffsetDateTime,
    pub(super) rating: Option<f64>,
    pub(super) escalations: i64,
}

/// A session as the contract derives it from its rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Session {
    pub(super) project: String,
    pub(super) id: String,
    pub(super) contact: String,
    pub(super) started: OffsetDateTime,
    pub(super) last: OffsetDateTime,
    pub(super) channel: Option<&'static str>,
    pub(super) rating: Option<f64>,
    pub(super) escalations: i64,
    pub(super) inputs: usize,
    pub(super) messages: usize,
}

/// Messages and records, of one project or several.
#[derive(Debug, Clone, Default)]
pub(super) struct Data {
    pub(super) messages: Vec<Message>,
    pub(super) inputs: Vec<Input>,
}

/// What one project holds: messages and records of `sessions` sessions, with every kind and
/// source of message, texts, ratings, JSON data and attachments, and channels that a session
/// takes from a later row when its first names none. Session `n` starts 47 minutes after
/// session `n - 1`, `offset` later in every project, so that no two rows the tests compare share
/// a time; its records come 30 seconds before its messages; `tag` starts every message id.
pub(super) fn conversation_data(project: &str, sessions: usize, tag: &str, offset: Duration) -> Data {
    let mut data = Data::default();
    for n in 0..sessions {
        let session = format!("s{n:02}");
        let contact = format!("c{}", n % 4);
        let start = BASE + Duration::minutes(47 * n as i64) + offset;
        let channel = [Some("web"), Some("whatsapp"), Some("voice"), None][n % 4];
        let messages = if n % 5 == 4 { 0 } else { 1 + n % 4 };
        for m in 0..messages {
            let input = m % 2 == 0;
            data.messages.push(Message {
                project: project.to_owned(),
                id: format!("{tag}{session}-{m}"),
                session: session.clone(),
                contact: contact.clone(),
                input_id: format!("{tag}{session}-i{}", m / 2),
                kind: if input { "input" } else { "output" },
                source: match (input, m) {
                    (true, _) if n % 6 == 5 => "suggestion",
                    (true, _) => "user",
                    (false, 3) => "agent",
                    (false, _) => "bot",
                },
                text: match (input, n % 7 == 3 && m == 1) {
                    (_, true) => None,
                    (true, false) => Some(TEXTS[(n + m) % 3]),
                    (false, false) => Some(ANSWER),
                },
                // The first message of some sessions names no channel: a later row's counts.
                channel: if m == 0 && n % 3 == 1 { None } else { channel },
                at: start + Duration::seconds(60 * m as i64),
                rating: (!input && (n + m) % 3 == 0).then_some(((n + m) % 5) as f64 + 1.0),
                data: input.then(|| json!({"n": n, "m": m, "note": "a \"quoted\" value"})),
                attachments: (m == 0 && n % 4 == 1).then(|| {
                    let url = format!("https://files.example/{session}.png");
                    json!([{"url": url, "name": "photo.png", "type": "image"}])
                }),
            });
        }
        // A session without messages still has a record.
        let inputs = if messages == 0 { 1 + n % 2 } else { n % 3 };
        for r in 0..inputs {
            data.inputs.push(Input {
                project: project.to_owned(),
                id: format!("{tag}{session}-i{r}"),
                session: session.clone(),
                contact: contact.clone(),
                channel: if n % 2 == 0 { Some("webchat") } else { None },
                at: start + Duration::seconds(60 * r as i64 - 30),
                rating: (r == 1).then_some((n % 5) as f64 - 1.0),
                escalations: ((n + r) % 3) as i64,
            });
        }
    }
    data
}

impl Message {
    /// The message as a client sends it.
    pub(super) fn to_json(&self) -> Json {
        let mut body = json!({
            "projectId": self.project, "sessionId": self.session, "contactId": self.contact,
            "messageId": self.id, "inputId": self.input_id, "type": self.kind, "source": self.source,
            "timestamp": format_time(self.at),
        });
        for (name, value) in [
            ("inputText", self.text.map(Json::from)),
            ("channel", self.channel.map(Json::from)),
            ("rating", self.rating.map(Json::from)),
            ("inputData", self.data.clone()),
            ("inputAttachments", self.attachments.clone()),
        ] {
            if let Some(value) = value {
                body[name] = value;
            }
        }
        body
    }

    /// The message as the feed shows it, in the columns of [`MESSAGE_COLUMNS`]: JSON values as
    /// their JSON text.
    pub(super) fn expected(&self, organisation: &str) -> Json {
        json!({
            "messageId": self.id, "organisation": organisation, "projectId": self.project,
            "projectName": PROJECT_NAME, "sessionId": self.session, "contactId": self.contact,
            "inputId": self.input_id, "type": self.kind, "source": self.source, "inputText": self.text,
            "inputData": self.data.as_ref().map(Json::to_string),
            "inputAttachments": self.attachments.as_ref().map(Json::to_string),
            "timestamp": format_time(self.at), "channel": self.channel, "rating": self.rating,
        })
    }
}

/// The message properties the tests know the values of: everything but the server's `id` and
/// `expiresAt`.
pub(super) const MESSAGE_COLUMNS: &str = "messageId,organisation,projectId,projectName,sessionId,contactId,inputId,type,source,inputText,inputData,\
     inputAttachments,timestamp,channel,rating";

impl Input {
    /// The record as a client sends it.
    pub(super) fn to_json(&self) -> Json {
        let mut body = record(&self.project, &self.contact, &self.session, &self.id);
        body["timestamp"] = json!(format_time(self.at));
        body["handoverEscalations"] = json!(self.escalations);
        if let Some(channel) = self.channel {
            body["channel"] = json!(channel);
        }
        if let Some(rating) = self.rating {
            body["rating"] = json!(rating);
        }
        body
    }
}

/// One row of a session, from either collection, as the derivation reads it.
struct Trace {
    at: OffsetDateTime,
    contact: String,
    channel: Option<&'static str>,
    rating: Option<f64>,
    escalations: Option<i64>,
    message: bool,
}

impl Data {
    /// Adds the rows of `other`.
    pub(super) fn extend(&mut self, other: &Data) {
        self.messages.extend(other.messages.iter().cloned());
        self.inputs.extend(other.inputs.iter().cloned());
    }

    /// Every session, derived from its rows by the rules of the contract: times are the least
    /// and greatest, the channel the earliest row's that names one, the rating the latest
    /// row's that has one, escalations the largest of its records', and the two counts. (The
    /// test's rows never share a time, so "earliest" and "latest" need no tie-breaking.)
    pub(super) fn sessions(&self) -> Vec<Session> {
        let mut traces: BTreeMap<(String, String), Vec<Trace>> = BTreeMap::new();
        for m in &self.messages {
            traces.entry((m.project.clone(), m.session.clone())).or_default().push(Trace {
                at: m.at,
                contact: m.contact.clone(),
                channel: m.channel,
                rating: m.rating,
                escalations: None,
                message: true,
            });
        }
        for i in &self.inputs {
            traces.entry((i.project.clone(), i.session.clone())).or_default().push(Trace {
                at: i.at,
                contact: i.contact.clone(),
                channel: i.channel,
                rating: i.rating,
                escalations: Some(i.escalations),
                message: false,
            });
        }
        traces
            .into_iter()
            .map(|((project, id), mut rows)| {
                rows.sort_by_key(|t| t.at);
                Session {
                    project,
                    id,
                    contact: rows[0].contact.clone(),
                    started: rows[0].at,
                    last: rows[rows.len() - 1].at,
                    channel: rows.iter().find_map(|t| t.channel),
                    rating: rows.iter().rev().find_map(|t| t.rating),
                    escalations: rows.iter().filter_map(|t| t.escalations).max().unwrap_or(0),
                    inputs: rows.iter().filter(|t| !t.message).count(),
                    messages: rows.iter().filter(|t| t.message).count(),
                }
            })
            .collect()
    }
}

impl Session {
    /// The session as the feed shows it, in the columns of [`SESSION_COLUMNS`].
    pub(super) fn expected(&self, organisation: &str) -> Json {
        json!({
            "sessionId": self.id, "userId": self.contact, "contactId": self.contact,
            "organisation": organisation, "organisationId": organisation, "projectId": self.project,
            "projectName": PROJECT_NAME, "startedAt": format_time(self.started),
            "lastActivityAt": format_time(self.last), "channel": self.channel, "stepsCount": 0,
            "stepPath": "", "goals": "", "handoverEscalations": self.escalations, "rating": self.rating,
            "ratingComment": null, "inputsCount": self.inputs, "messagesCount": self.messages,
        })
    }

    /// `(sessionId, projectId)`, which names a session.
    pub(super) fn key(&self) -> (String, String) {
        (self.id.clone(), self.project.clone())
    }
}

/// The session properties the tests know the values of: everything but the server's `id` and
/// `expiresAt`, and the endpoint, locale and snapshot fields no test row carries.
pub(super) const SESSION_COLUMNS: &str = "sessionId,userId,contactId,organisation,organisationId,projectId,projectName,startedAt,lastActivityAt,channel,\
     stepsCount,stepPath,goals,handoverEscalations,rating,ratingComment,inputsCount,messagesCount";

/// Sends messages with `key`; every one of them must be new.
pub(super) async fn send_messages(app: &TestApp, key: &str, messages: &[Message]) {
    let body: Vec<Json> = messages.iter().map(Message::to_json).collect();
    let response = app
        .with_key(Method::POST, "/new/v2.0/conversations/messages", key)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Json = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"inserted": messages.len(), "duplicates": 0, "dropped": 0}));
}

/// Sends records with `key`; every one of them must be new.
pub(super) async fn send_inputs(app: &TestApp, key: &str, inputs: &[Input]) {
    let body: Vec<Json> = inputs.iter().map(Input::to_json).collect();
    let response = app
        .with_key(Method::POST, "/new/v2.0/analytics/records", key)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Json = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"inserted": inputs.len(), "duplicates": 0, "dropped": 0}));
}
