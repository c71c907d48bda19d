//! The requests of the benchmark, made from the generated data: ingest batches, updates by input
//! and by session, and the read queries, for parley and for the peer.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parley_core::{FieldIndex, ObjectId, RecordUpdate, Value, field_index};
use rand::Rng;

use crate::data::{Dataset, iso_time};

/// The data set with the ids of the projects it was loaded into.
pub struct Workload {
    pub data: Arc<Dataset>,
    pub project_ids: Vec<String>,
}

/// What the bot answers, in turn.
const ANSWERS: &[&str] = &[
    "Your delivery is planned for tomorrow.",
    "I have passed your request to a colleague.",
    "The refund has been issued to your card.",
    "You can change the address in your account.",
    "Our opening hours are 9 to 17, Monday to Friday.",
    "The delivery was handed to the courier today.",
];

/// A reference number that about one message in 200 000 shares: `r` and up to six digits.
fn reference(i: usize, k: usize) -> u64 {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (k as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    (x >> 20) % 1_000_000
}

const COMMENTS: &[&str] = &["resolved by agent", "customer converted", "no answer", "survey: very happy", "callback"];

/// The properties every update sets: what a CRM or a survey writes back.
fn properties(rng: &mut impl Rng) -> (i64, &'static str, u32) {
    (rng.random_range(1..=10), COMMENTS[rng.random_range(0..COMMENTS.len())], rng.random_range(0..100_000))
}

impl Workload {
    /// NDJSON bodies of `batch` records each, in arrival order.
    pub fn ingest_bodies(&self, batch: usize) -> Vec<Bytes> {
        self.data
            .arrival
            .chunks(batch.max(1))
            .map(|chunk| {
                let mut body = Vec::with_capacity(chunk.len() * 700);
                for record in chunk.iter().map(|&i| &self.data.records[i]) {
                    serde_json::to_writer(&mut body, &record.to_json(&self.project_ids[record.project]))
                        .unwrap_or_else(|_| unreachable!("a JSON value always serialises"));
                    body.push(b'\n');
                }
                Bytes::from(body)
            })
            .collect()
    }

    /// NDJSON bodies of `batch` conversation messages each, in arrival order: per record, the
    /// user's message and `per_input - 1` bot answers, each answer carrying a reference number
    /// that few other messages share (what a search for one conversation looks for).
    pub fn message_bodies(&self, batch: usize, per_input: usize) -> Vec<Bytes> {
        let messages = self.data.arrival.iter().flat_map(|&i| (0..per_input).map(move |k| (i, k)));
        let all: Vec<(usize, usize)> = messages.collect();
        all.chunks(batch.max(1))
            .map(|chunk| {
                let mut body = Vec::with_capacity(chunk.len() * 400);
                for &(i, k) in chunk {
                    serde_json::to_writer(&mut body, &self.message(i, k))
                        .unwrap_or_else(|_| unreachable!("a JSON value always serialises"));
                    body.push(b'\n');
                }
                Bytes::from(body)
            })
            .collect()
    }

    /// Message `k` of record `i`: the user's input when `k` is 0, else a bot answer.
    fn message(&self, i: usize, k: usize) -> serde_json::Value {
        let r = &self.data.records[i];
        let (kind, source, text) = if k == 0 {
            ("input", "user", r.input_text.clone())
        } else {
            let answer = ANSWERS[(i + k) % ANSWERS.len()];
            ("output", "bot", format!("{answer} Reference r{}.", reference(i, k)))
        };
        serde_json::json!({
            "projectId": self.project_ids[r.project],
            "contactId": r.contact_id,
            "sessionId": r.session_id,
            "messageId": format!("{}-{k}", r.input_id),
            "inputId": r.input_id,
            "type": kind,
            "source": source,
            "inputText": text,
            "timestamp": iso_time(r.timestamp_ms + k as i64),
            "channel": r.channel,
            "localeName": r.locale,
            "flowName": r.flow_name,
        })
    }

    /// The reads of the conversations index: (name, path).
    pub fn conversation_queries(&self) -> Vec<(&'static str, String)> {
        let (p, c, _) = self.read_targets();
        let base = format!("/new/v2.0/conversations?projectId={p}");
        let first = self.data.arrival.iter().copied().find(|&i| self.data.records[i].project == 0).unwrap_or(0);
        vec![
            ("index, first page (25)", format!("{base}&limit=25")),
            ("index, one contact", format!("{base}&contactIds={c}")),
            ("search, one rare word", format!("{base}&search=r{}", reference(first, 1))),
            ("search, one common word", format!("{base}&search=delivery")),
            ("search, two words", format!("{base}&search=delivery%20tomorrow")),
        ]
    }

    /// `PATCH /analytics` naming one input (all four ids, as in the published example).
    pub fn update_by_input(&self, rng: &mut impl Rng) -> Bytes {
        let r = &self.data.records[rng.random_range(0..self.data.records.len())];
        let (rating, comment, n) = properties(rng);
        Bytes::from(format!(
            r#"{{"projectId":"{}","contactId":"{}","sessionId":"{}","inputId":"{}","properties":{{"rating":{rating},"ratingComment":"{comment}","custom1":"crm-{n}"}}}}"#,
            self.project_ids[r.project], r.contact_id, r.session_id, r.input_id
        ))
    }

    /// `PATCH /analytics` naming a session: every input of it changes.
    pub fn update_by_session(&self, rng: &mut impl Rng) -> Bytes {
        let s = self.data.sessions[rng.random_range(0..self.data.sessions.len())];
        let r = &self.data.records[s.first];
        let (rating, comment, n) = properties(rng);
        Bytes::from(format!(
            r#"{{"projectId":"{}","contactId":"{}","sessionId":"{}","properties":{{"rating":{rating},"ratingComment":"{comment}","custom1":"crm-{n}"}}}}"#,
            self.project_ids[r.project], r.contact_id, r.session_id
        ))
    }

    /// The same update by input as a typed value, for the raw engine.
    pub fn raw_update(&self, rng: &mut impl Rng, by_session: bool) -> RecordUpdate {
        let r = if by_session {
            &self.data.records[self.data.sessions[rng.random_range(0..self.data.sessions.len())].first]
        } else {
            &self.data.records[rng.random_range(0..self.data.records.len())]
        };
        let (rating, comment, n) = properties(rng);
        let index = |name: &str| -> FieldIndex { field_index(name).unwrap_or_else(|| unreachable!("{name} exists")) };
        RecordUpdate {
            project_id: ObjectId::parse(&self.project_ids[r.project]).unwrap_or_else(|_| unreachable!("made as an id")),
            contact_id: r.contact_id.clone(),
            session_id: Some(r.session_id.clone()),
            input_id: (!by_session).then(|| r.input_id.clone()),
            changes: vec![
                (index("rating"), Value::Number(rating as f64)),
                (index("ratingComment"), Value::Text(comment.to_owned())),
                (index("custom1"), Value::Text(format!("crm-{n}"))),
            ],
        }
    }

    /// The peer's `PATCH` of the same update: the record by its key, the properties as body.
    pub fn peer_update(&self, rng: &mut impl Rng) -> (String, Bytes) {
        let r = &self.data.records[rng.random_range(0..self.data.records.len())];
        let (rating, comment, n) = properties(rng);
        (
            format!(
                "/odata/v4/analytics/Records(projectId='{}',inputId='{}')",
                self.project_ids[r.project], r.input_id
            ),
            Bytes::from(format!(r#"{{"rating":{rating},"ratingComment":"{comment}","custom1":"crm-{n}"}}"#)),
        )
    }

    /// The targets of the read queries: the largest project, its most active contact, and that
    /// contact's longest session.
    pub fn read_targets(&self) -> (String, String, String) {
        let mut per_contact: HashMap<&str, usize> = HashMap::new();
        for r in self.data.records.iter().filter(|r| r.project == 0) {
            *per_contact.entry(&r.contact_id).or_default() += 1;
        }
        let contact = per_contact.into_iter().max_by_key(|(c, n)| (*n, *c)).map_or("", |(c, _)| c);
        let session = self
            .data
            .sessions
            .iter()
            .filter(|s| self.data.records[s.first].contact_id == contact)
            .max_by_key(|s| s.len)
            .map_or_else(String::new, |s| self.data.records[s.first].session_id.clone());
        (self.project_ids[0].clone(), contact.to_owned(), session)
    }

    /// The fixed read queries on parley's list endpoint: (name, path, accept).
    pub fn list_queries(&self) -> Vec<(&'static str, String, &'static str)> {
        let (p, c, s) = self.read_targets();
        let base = format!("/new/v2.0/analytics?projectId={p}");
        let (from, to) = (iso_time(1_771_545_600_000), iso_time(1_771_632_000_000));
        vec![
            ("first page (25)", format!("{base}&limit=25"), "application/json"),
            ("one contact (100)", format!("{base}&contactId={c}&limit=100"), "application/json"),
            ("one session", format!("{base}&contactId={c}&sessionId={s}&limit=25"), "application/json"),
            (
                "one day, newest first (50)",
                format!("{base}&from={from}&to={to}&sort=timestamp:desc&limit=50"),
                "application/json",
            ),
            (
                "by intent, then newest (25)",
                format!("{base}&sort=intent:asc,timestamp:desc&limit=25"),
                "application/json",
            ),
            ("cursor paging (25 per page)", format!("{base}&limit=25"), "application/json"),
            ("skip 5000 (25)", format!("{base}&skip=5000&limit=25"), "application/json"),
            ("CSV page (100)", format!("{base}&limit=100"), "text/csv"),
        ]
    }

    /// The same reads in OData on the entity set at `root`, with `$count` as parley's `total`.
    pub fn odata_queries(&self, root: &str) -> Vec<(&'static str, String)> {
        let (p, c, s) = self.read_targets();
        let (from, to) = (iso_time(1_771_545_600_000), iso_time(1_771_632_000_000));
        let q = |filter: String, rest: &str| -> String {
            format!("{root}?$filter={}&$count=true{rest}", filter.replace(' ', "%20")).replace(' ', "%20")
        };
        vec![
            ("first page (25)", q(format!("projectId eq '{p}'"), "&$orderby=timestamp&$top=25")),
            (
                "one contact (100)",
                q(format!("projectId eq '{p}' and contactId eq '{c}'"), "&$orderby=timestamp&$top=100"),
            ),
            (
                "one session",
                q(
                    format!("projectId eq '{p}' and contactId eq '{c}' and sessionId eq '{s}'"),
                    "&$orderby=timestamp&$top=25",
                ),
            ),
            (
                "one day, newest first (50)",
                q(
                    format!("projectId eq '{p}' and timestamp ge {from} and timestamp lt {to}"),
                    "&$orderby=timestamp desc&$top=50",
                ),
            ),
            (
                "by intent, then newest (25)",
                q(format!("projectId eq '{p}'"), "&$orderby=intent,timestamp desc&$top=25"),
            ),
            ("skip 5000 (25)", q(format!("projectId eq '{p}'"), "&$orderby=timestamp&$skip=5000&$top=25")),
        ]
    }
}
