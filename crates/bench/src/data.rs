//! A realistic, deterministic data set: several projects of unequal size, a few very active
//! contacts and many occasional ones, sessions of 1 to 20 inputs (mostly short), skewed intents
//! and channels, and texts that read like what people type to a support bot.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub records: usize,
    pub projects: usize,
    pub seed: u64,
    pub arrival: Arrival,
}

/// The order in which the records reach the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// In the order the inputs happened, sessions interleaved: a live feed from running bots.
    Time,
    /// Session by session, sessions at random times: a back-fill from an archive. Every index
    /// on time is then written at random places.
    Session,
}

/// One generated input. Project ids are assigned later (they are made by the server), so a
/// record names its project by index.
#[derive(Debug, Clone)]
pub struct GenRecord {
    pub project: usize,
    pub contact_id: String,
    pub session_id: String,
    pub input_id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub input_text: String,
    pub intent: Option<&'static str>,
    pub intent_score: f64,
    pub channel: &'static str,
    pub locale: &'static str,
    pub flow_name: &'static str,
    pub execution: i64,
    pub execution_time_ms: f64,
    pub ip: String,
}

/// A session: the records `first..first + len` of the data set.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub first: usize,
    pub len: usize,
}

/// The generated data set, session by session.
#[derive(Debug)]
pub struct Dataset {
    pub projects: usize,
    pub records: Vec<GenRecord>,
    pub sessions: Vec<Session>,
    /// Indexes into `records` in the order they are ingested (see [`Arrival`]).
    pub arrival: Vec<usize>,
}

/// Samples `0..n` with probability proportional to `1 / (k + 1)^s` (a Zipf law).
#[derive(Debug, Clone)]
pub struct Skewed {
    cumulative: Vec<f64>,
}

impl Skewed {
    pub fn new(n: usize, s: f64) -> Self {
        Skewed::from_weights((0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)))
    }

    pub fn from_weights(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Skewed { cumulative }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c <= u).min(self.cumulative.len() - 1)
    }
}

/// Intents in order of popularity, each with what people say for it.
const INTENTS: &[(&str, &[&str])] = &[
    ("track_order", &["where is my order {n}", "has order {n} shipped yet?", "tracking number for {n} please"]),
    ("reset_password", &["I forgot my password", "how do I reset my password", "can't log in, password not working"]),
    ("opening_hours", &["when are you open on {day}?", "opening hours {city}", "are you open today"]),
    ("cancel_order", &["cancel order {n}", "I want to cancel my order", "please stop order {n}, ordered by mistake"]),
    (
        "return_item",
        &["how do I return the shoes", "return label for order {n}", "the jacket does not fit, can I send it back"],
    ),
    ("billing_question", &["why was I charged twice", "invoice for {month} is wrong", "I need a copy of my bill"]),
    ("talk_to_agent", &["talk to a human", "agent please", "can I speak to someone real"]),
    ("change_address", &["I moved to {city}, update my address", "change delivery address for {n}"]),
    ("store_locator", &["nearest store in {city}", "is there a shop near {city}"]),
    ("delivery_time", &["how long does delivery to {city} take", "will it arrive by {day}?"]),
    ("payment_methods", &["can I pay with paypal", "do you take credit cards", "pay by invoice possible?"]),
    (
        "product_availability",
        &["is the blue one back in stock", "do you have size 42", "when will the {product} be available"],
    ),
    ("warranty", &["my {product} broke after {n2} months", "is the {product} under warranty"]),
    ("discount_code", &["my discount code does not work", "any coupons for {month}?"]),
    ("account_delete", &["delete my account", "remove all my data please"]),
    ("greeting", &["hi", "hello", "good morning", "hey there"]),
    ("goodbye", &["thanks, bye", "that's all", "thank you!"]),
    ("feedback", &["your service is great", "this bot is useless", "very helpful, thanks"]),
    ("newsletter", &["unsubscribe me from the newsletter", "stop sending me emails"]),
    ("gift_card", &["check my gift card balance", "can I use two gift cards"]),
    ("loyalty_points", &["how many points do I have", "redeem my points"]),
    ("shipping_cost", &["how much is shipping to {city}", "free shipping over what amount?"]),
    ("invoice_address", &["change the name on my invoice", "company address on the invoice"]),
    ("order_modify", &["add an item to order {n}", "change the size in order {n}"]),
    ("complaint", &["the package arrived damaged", "wrong item delivered in {n}"]),
];

/// What people say when no intent is found.
const UNMATCHED: &[&str] = &["asdf", "?", "hmm", "what", "I need help with something else", "the thing from yesterday"];

const CHANNELS: &[(&str, f64)] = &[
    ("webchat3", 0.55),
    ("whatsapp", 0.15),
    ("voiceGateway2", 0.12),
    ("facebook", 0.08),
    ("slack", 0.05),
    ("microsoftTeams", 0.03),
    ("sms", 0.02),
];

const LOCALES: &[(&str, f64)] = &[("en-US", 0.6), ("de-DE", 0.25), ("fr-FR", 0.1), ("es-ES", 0.05)];
const FLOWS: &[&str] = &["Main", "Orders", "Account", "Smalltalk", "Handover"];
const CITIES: &[&str] = &["Berlin", "Hamburg", "Munich", "Paris", "Lyon", "Madrid", "London", "Denver", "Austin"];
const DAYS: &[&str] = &["Monday", "Tuesday", "Saturday", "Sunday", "the weekend", "Friday"];
const MONTHS: &[&str] = &["January", "March", "May", "August", "October", "December"];
const PRODUCTS: &[&str] = &["kettle", "headphones", "blender", "sneakers", "backpack", "coffee machine"];

/// When the generated conversations end: 2026-03-01T00:00:00Z, fixed so that runs are equal.
const END_MS: i64 = 1_772_323_200_000;
/// How far back they go: 30 days.
const SPAN_MS: i64 = 30 * 24 * 3600 * 1000;

fn hex(rng: &mut impl Rng, chars: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..chars).map(|_| DIGITS[rng.random_range(0..16)] as char).collect()
}

fn uuid_like(rng: &mut impl Rng) -> String {
    format!("{}-{}-4{}-{}-{}", hex(rng, 8), hex(rng, 4), hex(rng, 3), hex(rng, 4), hex(rng, 12))
}

fn pick<'a>(rng: &mut impl Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn fill(template: &str, rng: &mut impl Rng) -> String {
    let mut text = template.to_owned();
    for (hole, value) in [
        ("{n}", format!("{}", rng.random_range(100_000..999_999))),
        ("{n2}", format!("{}", rng.random_range(2..30))),
        ("{city}", pick(rng, CITIES).to_owned()),
        ("{day}", pick(rng, DAYS).to_owned()),
        ("{month}", pick(rng, MONTHS).to_owned()),
        ("{product}", pick(rng, PRODUCTS).to_owned()),
    ] {
        if text.contains(hole) {
            text = text.replace(hole, &value);
        }
    }
    text
}

impl Dataset {
    /// Generates `spec.records` records; the same spec always gives the same data.
    pub fn generate(spec: Spec) -> Dataset {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let projects = spec.projects.max(1);
        let project_pick = Skewed::new(projects, 1.0);
        // About one contact per 12 records, spread over the projects; a few are very active.
        let contacts_per_project = (spec.records / 12 / projects).max(1);
        let contact_ids: Vec<Vec<String>> =
            (0..projects).map(|_| (0..contacts_per_project).map(|_| hex(&mut rng, 32)).collect()).collect();
        let contact_pick = Skewed::new(contacts_per_project, 1.1);
        // Sessions of 1 to 20 inputs, short ones far more common.
        let length_pick = Skewed::from_weights((1..=20).map(|k| 0.82f64.powi(k - 1)));
        let intent_pick = Skewed::new(INTENTS.len(), 1.2);
        let channel_pick = Skewed::from_weights(CHANNELS.iter().map(|c| c.1));
        let locale_pick = Skewed::from_weights(LOCALES.iter().map(|l| l.1));

        let mut records = Vec::with_capacity(spec.records);
        let mut sessions = Vec::new();
        while records.len() < spec.records {
            let project = project_pick.sample(&mut rng);
            let contact_id = contact_ids[project][contact_pick.sample(&mut rng)].clone();
            let session_id = uuid_like(&mut rng);
            let len = (length_pick.sample(&mut rng) + 1).min(spec.records - records.len());
            let channel = CHANNELS[channel_pick.sample(&mut rng)].0;
            let locale = LOCALES[locale_pick.sample(&mut rng)].0;
            let ip =
                format!("10.{}.{}.{}", rng.random_range(0..256), rng.random_range(0..256), rng.random_range(1..255));
            let mut at = END_MS - rng.random_range(0..SPAN_MS);
            sessions.push(Session { first: records.len(), len });
            for execution in 1..=len {
                let (intent, input_text, intent_score) = if rng.random_bool(0.15) {
                    (None, pick(&mut rng, UNMATCHED).to_owned(), 0.0)
                } else {
                    let (name, says) = INTENTS[intent_pick.sample(&mut rng)];
                    (Some(name), fill(pick(&mut rng, says), &mut rng), rng.random_range(0.55..1.0))
                };
                records.push(GenRecord {
                    project,
                    contact_id: contact_id.clone(),
                    session_id: session_id.clone(),
                    input_id: uuid_like(&mut rng),
                    timestamp_ms: at,
                    input_text,
                    intent,
                    intent_score,
                    channel,
                    locale,
                    flow_name: pick(&mut rng, FLOWS),
                    execution: execution as i64,
                    execution_time_ms: f64::from(rng.random_range(3..400u32)),
                    ip: ip.clone(),
                });
                at += rng.random_range(4_000..90_000);
            }
        }
        let mut arrival: Vec<usize> = (0..records.len()).collect();
        if spec.arrival == Arrival::Time {
            arrival.sort_by_key(|&i| records[i].timestamp_ms);
        }
        Dataset { projects, records, sessions, arrival }
    }

    /// The records in the order they are ingested.
    pub fn arriving(&self) -> impl Iterator<Item = &GenRecord> {
        self.arrival.iter().map(|&i| &self.records[i])
    }
}

/// The RFC 3339 form of epoch milliseconds, as parley writes times.
pub fn iso_time(ms: i64) -> String {
    parley_core::value::format_time(parley_core::value::from_unix_millis(ms).unwrap_or_else(parley_core::value::now))
}

impl GenRecord {
    /// The record as ingested by `POST /analytics/records`.
    pub fn to_json(&self, project_id: &str) -> Json {
        json!({
            "projectId": project_id,
            "contactId": self.contact_id,
            "sessionId": self.session_id,
            "inputId": self.input_id,
            "timestamp": iso_time(self.timestamp_ms),
            "inputText": self.input_text,
            "state": "default",
            "mode": "TextOnly",
            "userType": "external",
            "channel": self.channel,
            "flowLanguage": self.locale,
            "flowName": self.flow_name,
            "intent": self.intent,
            "intentFlow": self.intent.map(|_| self.flow_name),
            "intentScore": self.intent_score,
            "understood": self.intent.is_some(),
            "execution": self.execution,
            "executionTime": self.execution_time_ms,
            "localeName": self.locale,
            "endpointType": self.channel,
            "endpointName": format!("{} endpoint", self.channel),
            "snapshotName": "release-2026-02",
            "completedGoals": [],
            "ip": self.ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn small() -> Dataset {
        Dataset::generate(Spec { records: 20_000, projects: 5, seed: 7, arrival: Arrival::Time })
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let (a, b) = (small(), small());
        assert_eq!(a.records.len(), 20_000);
        for (x, y) in a.records.iter().zip(&b.records) {
            assert_eq!((&x.input_id, &x.input_text, x.timestamp_ms), (&y.input_id, &y.input_text, y.timestamp_ms));
        }
        let other = Dataset::generate(Spec { records: 100, projects: 5, seed: 8, arrival: Arrival::Time });
        assert_ne!(other.records[0].input_id, a.records[0].input_id);
    }

    #[test]
    fn sessions_hold_1_to_20_inputs_of_one_contact() {
        let data = small();
        assert_eq!(data.sessions.iter().map(|s| s.len).sum::<usize>(), data.records.len());
        for session in &data.sessions {
            assert!((1..=20).contains(&session.len), "{}", session.len);
            let records = &data.records[session.first..session.first + session.len];
            assert!(records.iter().all(|r| r.session_id == records[0].session_id
                && r.contact_id == records[0].contact_id
                && r.project == records[0].project));
        }
        let short = data.sessions.iter().filter(|s| s.len <= 5).count();
        let long = data.sessions.iter().filter(|s| s.len > 15).count();
        assert!(short > 5 * long, "short {short}, long {long}");
        assert!(long > 0);
    }

    #[test]
    fn records_arrive_in_time_order_or_session_by_session() {
        let data = small();
        let mut seen = data.arrival.clone();
        seen.sort_unstable();
        assert!(seen.iter().copied().eq(0..data.records.len()), "every record arrives once");
        let times: Vec<i64> = data.arriving().map(|r| r.timestamp_ms).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(data.records.windows(2).any(|w| w[0].timestamp_ms > w[1].timestamp_ms), "generated out of order");

        let backfill = Dataset::generate(Spec { records: 20_000, projects: 5, seed: 7, arrival: Arrival::Session });
        let ids: Vec<&str> = backfill.arriving().map(|r| r.input_id.as_str()).collect();
        assert!(ids.iter().copied().eq(backfill.records.iter().map(|r| r.input_id.as_str())));
    }

    #[test]
    fn input_ids_are_unique() {
        let data = small();
        let ids: HashSet<_> = data.records.iter().map(|r| &r.input_id).collect();
        assert_eq!(ids.len(), data.records.len());
    }

    #[test]
    fn projects_contacts_intents_and_channels_are_skewed() {
        let data = small();
        let mut per_project = vec![0usize; data.projects];
        let mut per_contact: HashMap<&str, usize> = HashMap::new();
        let mut per_intent: HashMap<&str, usize> = HashMap::new();
        let mut per_channel: HashMap<&str, usize> = HashMap::new();
        for r in &data.records {
            per_project[r.project] += 1;
            *per_contact.entry(&r.contact_id).or_default() += 1;
            *per_intent.entry(r.intent.unwrap_or("none")).or_default() += 1;
            *per_channel.entry(r.channel).or_default() += 1;
        }
        assert!(per_project.iter().all(|&n| n > 0));
        assert!(per_project[0] > 2 * per_project[4], "{per_project:?}");
        let mut contacts: Vec<usize> = per_contact.into_values().collect();
        contacts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(contacts[0] > 20 * contacts[contacts.len() / 2], "{:?}", &contacts[..5]);
        assert!(per_intent["track_order"] > 5 * per_intent["complaint"]);
        assert!(per_channel["webchat3"] > 10 * per_channel["sms"]);
    }

    #[test]
    fn records_pass_parley_validation() {
        let data = Dataset::generate(Spec { records: 500, projects: 2, seed: 1, arrival: Arrival::Session });
        for r in &data.records {
            parley_core::NewRecord::parse(r.to_json("5f0c6bc4ad4f8b0011b2e0e1")).expect("a valid record");
        }
    }
}
