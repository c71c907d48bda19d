//! The Insights reports over HTTP (docs/contract/insights.md). Every report is compared with a
//! plain recomputation from the raw rows, read back through OData, over generated data: three
//! projects, skewed contacts and intents, sessions across midnight and across the changes of
//! offset in Europe, rows written concurrently and out of order, late records, updates that change
//! intents and ratings, and an erased contact; in zones with 30- and 45-minute offsets, with
//! filters, with `compare=project`, at every grain. Then: where OData `$apply` counts the same
//! thing, the two agree; a write is in the next report; every format; every refusal.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use parley_store::testing::Rng;

use crate::helpers::{
    Engine, TestApp, assert_problem, call, erase_and_wait, header, on_both_engines, parse_csv, spawn_app_on,
};

on_both_engines!(
    every_report_matches_a_recomputation_from_the_raw_rows,
    a_write_is_in_the_next_report_and_odata_apply_agrees,
    reports_come_in_every_format,
    malformed_requests_are_refused_before_a_project_is_read,
);

const REPORT: &str = "/new/v2.0/insights";

const INTENTS: [&str; 7] = ["order", "refund", "greeting", "bye", "help", "price", "stock"];
const TEXTS: [&str; 6] = ["where is my order", "refund please", "hi", "thanks", "agent!", "how much"];
const CHANNELS: [&str; 3] = ["webchat", "voice", "whatsapp"];
const LOCALES: [&str; 2] = ["en-US", "de-DE"];
const SNAPSHOTS: [&str; 2] = ["v1", "v2"];
const FLOWS: [&str; 2] = ["Main", "Billing"];
const STEPS: [&str; 5] = ["greet", "ask", "pay", "confirm", "bye"];
const STATUSES: [&str; 4] = ["opened", "assigned", "resolved", "abandoned"];
/// The goal every project defines: its steps' ids, types and metrics.
const GOAL_STEPS: [(&str, &str); 4] =
    [("start", "start"), ("picked", "step"), ("paid", "step"), ("done", "completion")];

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Everything the test wrote, by kind, as sent.
#[derive(Default)]
struct Written {
    records: Vec<Json>,
    late_records: Vec<Json>,
    messages: Vec<Json>,
    steps: Vec<Json>,
    escalations: Vec<Json>,
    goal_events: Vec<Json>,
}

/// Sessions of each project in two weeks of 2026 around Europe's changes of offset, many of them
/// across midnight; a few active now in the first project.
fn generate(projects: &[String], goals: &[String], ten: &str, seed: u64, now: Timestamp) -> Written {
    let mut rng = Rng(seed);
    let mut w = Written::default();
    let windows = [("2026-03-26T00:00:00Z", 6), ("2026-10-22T00:00:00Z", 6)];
    let mut input = 0;
    for (p, project) in projects.iter().enumerate() {
        for s in 0..50 {
            let session = format!("s{p}-{s}");
            let contact = format!("c{}", rng.skewed(12));
            let (start, days) = windows[s % 2];
            let day: Timestamp = start.parse().unwrap();
            let offset = if rng.chance(35) {
                // Late evening in UTC: the session crosses midnight somewhere.
                rng.below(days) as i64 * 86_400 + 21 * 3600 + 1800 + rng.below(9000) as i64
            } else {
                rng.below(days * 86_400) as i64
            };
            let mut at = day + (offset * 1000).milliseconds();
            sessions_rows(
                &mut rng,
                &mut w,
                project,
                project == ten,
                &session,
                &contact,
                &mut at,
                &mut input,
                goals.get(p),
            );
        }
        if p == 0 {
            for (s, ago) in [(0, 5), (1, 9), (2, 40)] {
                let session = format!("now-{s}");
                let mut at = now - (ago * 60 * 1000).milliseconds();
                sessions_rows(&mut rng, &mut w, project, false, &session, "c-now", &mut at, &mut input, None);
            }
        }
    }
    w
}

#[allow(clippy::too_many_arguments)]
fn sessions_rows(
    rng: &mut Rng,
    w: &mut Written,
    project: &str,
    ten: bool,
    session: &str,
    contact: &str,
    at: &mut Timestamp,
    input: &mut u32,
    goal: Option<&String>,
) {
    let channel = rng.pick(&CHANNELS);
    let locale = (rng.below(4) > 0).then(|| rng.pick(&LOCALES));
    let (token, endpoint) = if rng.chance(50) { ("ep-web", "Web") } else { ("ep-phone", "Phone") };
    let snapshot = rng.pick(&SNAPSHOTS);
    let inputs = 1 + rng.below(4);
    let handover = rng.chance(25);
    let mut path: Vec<&str> = Vec::new();
    for i in 0..inputs {
        *input += 1;
        let id = format!("i{input}");
        let mut record = json!({
            "projectId": project, "contactId": contact, "sessionId": session, "inputId": id,
            "timestamp": time(*at), "channel": channel, "localeName": locale, "endpointUrlToken": token,
            "endpointName": endpoint, "snapshotName": snapshot, "flowName": rng.pick(&FLOWS),
            "inputText": rng.pick(&TEXTS),
        });
        let r = record.as_object_mut().unwrap();
        if rng.below(5) > 0 {
            r.insert("intent".into(), json!(INTENTS[rng.skewed(INTENTS.len())]));
            r.insert("intentScore".into(), json!(rng.below(1001) as f64 / 1000.0));
        }
        if rng.chance(30) {
            r.insert(
                "rating".into(),
                if ten { json!(rng.below(11)) } else { json!(if rng.chance(60) { 1 } else { -1 }) },
            );
        }
        if rng.chance(60) {
            r.insert("executionTime".into(), json!(5 + rng.below(400)));
        }
        if rng.chance(70) {
            r.insert("understood".into(), json!(rng.chance(80)));
        }
        match rng.below(5) {
            0 => drop(r.insert("slots".into(), json!({"size": "L", "colour": "red"}))),
            1 => drop(r.insert("slots".into(), json!(["date", "size"]))),
            2 => drop(r.insert("slots".into(), json!("date"))),
            _ => {}
        }
        if rng.chance(15) {
            r.insert(
                "completedGoals".into(),
                json!(if rng.chance(50) { vec!["Order"] } else { vec!["Order", "Survey"] }),
            );
        }
        if handover && i + 1 == inputs && rng.chance(50) {
            r.insert("inHandoverRequest".into(), json!(true));
        }
        if handover && rng.chance(20) {
            r.insert("handoverEscalations".into(), json!(1));
        }
        let text = record["inputText"].clone();
        let rating = record.get("rating").cloned();
        if rng.chance(10) {
            w.late_records.push(record);
        } else {
            w.records.push(record);
        }
        let mut message = json!({"projectId": project, "contactId": contact, "sessionId": session,
            "messageId": format!("m-{id}"), "inputId": id, "type": "input", "source": "user", "inputText": text,
            "timestamp": time(*at), "channel": channel, "localeName": locale, "endpointUrlToken": token,
            "snapshotName": snapshot, "flowName": "Main"});
        if rng.chance(10) {
            message["inputText"] = Json::Null;
        }
        if let Some(rating) = rating.filter(|_| rng.chance(30)) {
            message["rating"] = rating;
        }
        w.messages.push(message);
        let reply = *at + 700.milliseconds();
        w.messages.push(json!({"projectId": project, "contactId": contact, "sessionId": session,
            "messageId": format!("b-{id}"), "outputId": format!("o-{id}"), "type": "output", "source": "bot",
            "inputText": "ok", "timestamp": time(reply), "channel": channel}));
        // Steps of this input: a walk that branches.
        let from = if path.is_empty() { 0 } else { 1 + rng.below(3) as usize };
        for step in STEPS.iter().skip(from).take(1 + rng.below(2) as usize) {
            path.push(step);
            let n = w.steps.len();
            w.steps.push(json!({"projectId": project, "userId": contact, "sessionId": session,
                "executionId": format!("x{n}"), "entityReferenceId": step, "stepLabel": step, "type": "node",
                "timestamp": time(*at + (100 + path.len() as i64).milliseconds())}));
        }
        *at += (10_000 + rng.below(40 * 60_000) as i64).milliseconds();
    }
    if handover && rng.chance(70) {
        let opened = *at - 5000.milliseconds();
        let mut escalation = json!({"projectId": project, "sessionId": session, "contactId": contact,
            "escalationId": format!("e-{session}"), "status": rng.pick(&STATUSES), "timestamp": time(opened),
            "channel": channel, "localeName": locale, "endpointUrlToken": token, "snapshotName": snapshot});
        if rng.chance(60) {
            escalation["firstResponseAt"] = json!(time(opened + (1000 * (5 + rng.below(300)) as i64).milliseconds()));
        }
        if rng.chance(40) {
            escalation["resolvedAt"] = json!(time(opened + (1000 * (300 + rng.below(3000)) as i64).milliseconds()));
        }
        if rng.chance(60) {
            escalation["labels"] = json!(if rng.chance(50) { vec!["billing"] } else { vec!["billing", "vip"] });
        }
        w.escalations.push(escalation);
    }
    if let Some(goal) = goal {
        for cycle in 0..rng.below(3) {
            let reached = 1 + rng.below(GOAL_STEPS.len() as u64) as usize;
            for (k, (step, _)) in GOAL_STEPS.iter().take(reached).enumerate() {
                let n = w.goal_events.len();
                // Some cycles start before the session's first input: a week early.
                let at = *at + ((k as i64 * 1000) - if cycle == 1 { 7 * 86_400_000 } else { 0 }).milliseconds();
                w.goal_events.push(json!({"projectId": project, "goalId": goal, "eventId": format!("g{n}"),
                    "sessionId": session, "contactId": contact, "goalCycleId": format!("{session}-{cycle}"),
                    "stepId": step, "timestamp": time(at), "channel": channel, "localeName": locale,
                    "endpointUrlToken": token, "snapshotName": snapshot}));
            }
        }
    }
}

/// Sends rows in batches of 20, four batches at a time, in a shuffled order.
async fn send_all(app: &TestApp, path: &str, rows: &[Json], rng: &mut Rng) {
    let mut batches: Vec<Json> = rows.chunks(20).map(|c| Json::Array(c.to_vec())).collect();
    for i in (1..batches.len()).rev() {
        batches.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for group in batches.chunks(4) {
        let sends: Vec<_> =
            group.iter().map(|batch| tokio::spawn(app.request(Method::POST, path).json(batch).send())).collect();
        for send in sends {
            let response = send.await.unwrap().unwrap();
            let status = response.status();
            assert!(status.is_success(), "{path}: {status} {}", response.text().await.unwrap());
        }
    }
}

/// Every row of an OData entity set, following `@odata.nextLink`.
async fn dump(app: &TestApp, set: &str) -> Vec<Json> {
    let mut rows = Vec::new();
    let mut path = format!("/v2.4/{set}");
    loop {
        let (status, body) = call(app, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        rows.extend(body["value"].as_array().unwrap().iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(next) => path = next.split_once("/v2.4/").map(|(_, rest)| format!("/v2.4/{rest}")).unwrap(),
            None => return rows,
        }
    }
}

/// The raw rows, as stored after every write, update and erasure.
struct Raw {
    records: Vec<Json>,
    messages: Vec<Json>,
    sessions: Vec<Json>,
    escalations: Vec<Json>,
    goal_events: Vec<Json>,
    /// Per project and goal id: the goal's name; per project and step id: the metric sums.
    goal_names: HashMap<(String, String), String>,
    metrics: HashMap<(String, String), [f64; 3]>,
    step_types: HashMap<String, &'static str>,
    scales: HashMap<String, &'static str>,
}

fn ts(value: &Json) -> Timestamp {
    value.as_str().unwrap_or_else(|| panic!("a time: {value}")).parse().unwrap()
}

fn text<'a>(row: &'a Json, field: &str) -> Option<&'a str> {
    row.get(field).and_then(Json::as_str)
}

/// A report request and the plain rules that answer it.
struct Ask {
    projects: Vec<String>,
    compare: bool,
    zone: &'static str,
    from: &'static str,
    to: &'static str,
    grain: &'static str,
    filters: Vec<(&'static str, Vec<&'static str>)>,
}

impl Ask {
    fn query(&self, report: &str) -> String {
        let mut q: Vec<String> = self.projects.iter().map(|p| format!("projectId={p}")).collect();
        if self.compare {
            q.push("compare=project".into());
        }
        q.push(format!("timezone={}", self.zone));
        q.push(format!("from={}&to={}&grain={}", self.from, self.to, self.grain));
        for (name, values) in &self.filters {
            for value in values {
                q.push(format!("{name}={value}"));
            }
        }
        format!("{REPORT}/{report}?{}", q.join("&"))
    }

    fn tz(&self) -> TimeZone {
        TimeZone::get(self.zone).unwrap()
    }

    fn range(&self) -> (Timestamp, Timestamp) {
        let start = |d: &str| {
            d.parse::<Date>().unwrap().to_zoned_datetime(self.tz()).unwrap().start_of_day().unwrap().timestamp()
        };
        let to_day = self.to.parse::<Date>().unwrap().tomorrow().unwrap();
        (start(self.from), to_day.to_zoned_datetime(self.tz()).unwrap().start_of_day().unwrap().timestamp())
    }

    fn inside(&self, t: Timestamp) -> bool {
        let (from, to) = self.range();
        from <= t && t < to
    }

    /// The bucket of `t`: its local hour, day, ISO week or month, written with its offset.
    fn bucket(&self, t: Timestamp) -> String {
        let z = t.to_zoned_datetime(self.tz());
        let start = match self.grain {
            "hour" => z.with().minute(0).second(0).subsec_nanosecond(0).build().unwrap(),
            "day" => z.start_of_day().unwrap(),
            "week" => {
                let monday = z.date() - (z.weekday().to_monday_zero_offset() as i64).days();
                monday.to_zoned_datetime(self.tz()).unwrap().start_of_day().unwrap()
            }
            "month" => z.date().first_of_month().to_zoned_datetime(self.tz()).unwrap().start_of_day().unwrap(),
            other => panic!("{other}"),
        };
        start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// Every bucket of the range, in order: those of each quarter hour in it.
    fn buckets(&self) -> Vec<String> {
        let (from, to) = self.range();
        let mut out: Vec<String> = Vec::new();
        let mut t = from;
        while t < to {
            let b = self.bucket(t);
            if out.last() != Some(&b) {
                out.push(b);
            }
            t += 15.minutes();
        }
        out
    }

    /// The series a row counts in: its project under `compare`, else one for all.
    fn series(&self, row: &Json) -> String {
        if self.compare { text(row, "projectId").unwrap().to_owned() } else { String::new() }
    }

    fn series_names(&self) -> Vec<String> {
        if self.compare { self.projects.clone() } else { vec![String::new()] }
    }

    fn admits(&self, field: &str, value: Option<&str>) -> bool {
        self.filters.iter().filter(|(name, _)| *name == field).all(|(_, values)| {
            let include: Vec<&str> = values.iter().filter(|v| !v.starts_with('!')).copied().collect();
            let exclude: Vec<&str> = values.iter().filter_map(|v| v.strip_prefix('!')).collect();
            (include.is_empty() || value.is_some_and(|v| include.contains(&v)))
                && !value.is_some_and(|v| exclude.contains(&v))
        })
    }

    fn mine(&self, row: &Json) -> bool {
        self.projects.iter().any(|p| Some(p.as_str()) == text(row, "projectId"))
    }

    /// A row that has every filtered field itself.
    fn passes_row(&self, row: &Json) -> bool {
        self.mine(row)
            && ["channel", "endpointUrlToken", "localeName", "snapshotName", "flowName"]
                .iter()
                .all(|f| self.admits(f, text(row, f)))
    }

    /// A session, escalation or goal event: `flowName` through the session's records.
    fn passes_by_session(&self, row: &Json, flows: &HashMap<(String, String), BTreeSet<String>>) -> bool {
        if !self.mine(row)
            || !["channel", "endpointUrlToken", "localeName", "snapshotName"]
                .iter()
                .all(|f| self.admits(f, text(row, f)))
        {
            return false;
        }
        let key = (text(row, "projectId").unwrap().to_owned(), text(row, "sessionId").unwrap().to_owned());
        let empty = BTreeSet::new();
        let ran = flows.get(&key).unwrap_or(&empty);
        self.filters.iter().filter(|(name, _)| *name == "flowName").all(|(_, values)| {
            let include: Vec<&str> = values.iter().filter(|v| !v.starts_with('!')).copied().collect();
            let exclude: Vec<&str> = values.iter().filter_map(|v| v.strip_prefix('!')).collect();
            (include.is_empty() || include.iter().any(|f| ran.contains(*f)))
                && !exclude.iter().any(|f| ran.contains(*f))
        })
    }
}

/// Items keyed as the answer lists them: series (project or ""), dimension, measure.
type Items = BTreeMap<(String, Option<String>, String), Json>;

fn answer_items(body: &Json) -> Items {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let key = (
                text(i, "projectId").unwrap_or_default().to_owned(),
                i["dimension"].as_str().map(str::to_owned),
                text(i, "measure").unwrap().to_owned(),
            );
            (key, i["value"].clone())
        })
        .collect()
}

fn close(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

fn n(count: usize) -> Json {
    json!(count)
}

fn average(values: &[f64]) -> Json {
    if values.is_empty() { Json::Null } else { json!(values.iter().sum::<f64>() / values.len() as f64) }
}

fn fraction(part: usize, whole: usize) -> Json {
    if whole == 0 { Json::Null } else { json!(part as f64 / whole as f64) }
}

/// Counts per series and name, as top-N: greatest first, then by name, `limit` per series.
fn top_items(counts: BTreeMap<(String, String), usize>, limit: usize) -> Items {
    let mut per: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for ((series, name), count) in counts {
        per.entry(series).or_default().push((name, count));
    }
    let mut items = Items::new();
    for (series, mut names) in per {
        names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (name, count) in names.into_iter().take(limit) {
            items.insert((series.clone(), Some(name), "count".into()), n(count));
        }
    }
    items
}

/// A measure and how a bucket's cell gives it.
type Reading<'a, T> = (&'a str, &'a dyn Fn(&T) -> Json);

/// Contacts, as `(projectId, contactId)`, per series and category.
type ContactSets = BTreeMap<(String, Option<String>), BTreeSet<(String, String)>>;

/// Values per series and bucket, every bucket listed, each bucket's values read by `measures`.
fn bucket_items<T: Default + Clone>(
    ask: &Ask,
    cells: &BTreeMap<(String, String), T>,
    measures: &[Reading<'_, T>],
) -> Items {
    let mut items = Items::new();
    for series in ask.series_names() {
        for bucket in ask.buckets() {
            let cell = cells.get(&(series.clone(), bucket.clone())).cloned().unwrap_or_default();
            for (measure, read) in measures {
                items.insert((series.clone(), Some(bucket.clone()), (*measure).to_owned()), read(&cell));
            }
        }
    }
    items
}

impl Raw {
    fn session_flows(&self) -> HashMap<(String, String), BTreeSet<String>> {
        let mut flows: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
        for r in &self.records {
            let key = (text(r, "projectId").unwrap().to_owned(), text(r, "sessionId").unwrap().to_owned());
            let entry = flows.entry(key).or_default();
            if let Some(flow) = text(r, "flowName") {
                entry.insert(flow.to_owned());
            }
        }
        flows
    }

    fn records<'a>(&'a self, ask: &'a Ask) -> impl Iterator<Item = &'a Json> {
        self.records.iter().filter(|r| ask.passes_row(r) && ask.inside(ts(&r["timestamp"])))
    }

    fn sessions<'a>(
        &'a self,
        ask: &'a Ask,
        flows: &'a HashMap<(String, String), BTreeSet<String>>,
    ) -> impl Iterator<Item = &'a Json> {
        self.sessions.iter().filter(|s| ask.passes_by_session(s, flows) && ask.inside(ts(&s["startedAt"])))
    }

    fn handed_over(&self, session: &Json) -> bool {
        session["handoverEscalations"].as_i64().unwrap_or(0) > 0
            || self.records.iter().any(|r| {
                r["projectId"] == session["projectId"]
                    && r["sessionId"] == session["sessionId"]
                    && r["inHandoverRequest"] == json!(true)
            })
    }

    fn is_positive(&self, project: &str, rating: f64) -> bool {
        if self.scales[project] == "ten" { rating >= 5.0 } else { rating > 0.0 }
    }

    fn is_negative(&self, project: &str, rating: f64) -> bool {
        if self.scales[project] == "ten" { rating < 5.0 } else { rating < 0.0 }
    }

    /// The answer a report should give, from the raw rows alone.
    fn expect(&self, report: &str, ask: &Ask, as_of: Timestamp) -> Items {
        let flows = self.session_flows();
        let count_by_bucket = |rows: &mut dyn Iterator<Item = (&Json, Timestamp)>| {
            let mut cells: BTreeMap<(String, String), usize> = BTreeMap::new();
            for (row, t) in rows {
                *cells.entry((ask.series(row), ask.bucket(t))).or_default() += 1;
            }
            cells
        };
        match report {
            "inputs" => {
                let cells = count_by_bucket(&mut self.records(ask).map(|r| (r, ts(&r["timestamp"]))));
                bucket_items(ask, &cells, &[("inputs", &|c: &usize| n(*c))])
            }
            "sessions" => {
                let cells = count_by_bucket(&mut self.sessions(ask, &flows).map(|s| (s, ts(&s["startedAt"]))));
                bucket_items(ask, &cells, &[("sessions", &|c: &usize| n(*c))])
            }
            "contacts" => {
                let mut sets: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
                for r in self.records(ask) {
                    sets.entry((ask.series(r), ask.bucket(ts(&r["timestamp"]))))
                        .or_default()
                        .insert((text(r, "projectId").unwrap().into(), text(r, "contactId").unwrap().into()));
                }
                let cells: BTreeMap<_, usize> = sets.into_iter().map(|(k, v)| (k, v.len())).collect();
                bucket_items(ask, &cells, &[("contacts", &|c: &usize| n(*c))])
            }
            "sessionsByChannel" | "sessionsByEndpoint" => {
                let field = if report == "sessionsByChannel" { "channel" } else { "endpointName" };
                let mut items = Items::new();
                for s in self.sessions(ask, &flows) {
                    let key = (ask.series(s), text(s, field).map(str::to_owned), "sessions".to_owned());
                    let entry = items.entry(key).or_insert(json!(0));
                    *entry = json!(entry.as_u64().unwrap() + 1);
                }
                items
            }
            "contactsByLocale" => {
                let mut sets = ContactSets::new();
                for r in self.records(ask) {
                    sets.entry((ask.series(r), text(r, "localeName").map(str::to_owned)))
                        .or_default()
                        .insert((text(r, "projectId").unwrap().into(), text(r, "contactId").unwrap().into()));
                }
                sets.into_iter().map(|((s, l), set)| ((s, l, "contacts".to_owned()), n(set.len()))).collect()
            }
            "topIntents" | "topSlots" | "topGoals" => {
                let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
                for r in self.records(ask) {
                    let names: BTreeSet<String> = match report {
                        "topIntents" => text(r, "intent").map(str::to_owned).into_iter().collect(),
                        // OData writes a JSON value as its text.
                        "topSlots" => match &r["slots"]
                            .as_str()
                            .map_or(r["slots"].clone(), |t| serde_json::from_str(t).unwrap())
                        {
                            Json::Object(map) => map.keys().cloned().collect(),
                            Json::Array(list) => list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                            Json::String(name) => [name.clone()].into(),
                            _ => BTreeSet::new(),
                        },
                        _ => r["completedGoals"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                    };
                    for name in names {
                        *counts.entry((ask.series(r), name)).or_default() += 1;
                    }
                }
                top_items(counts, 10)
            }
            "topMessages" => {
                let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
                for m in &self.messages {
                    if ask.passes_row(m)
                        && ask.inside(ts(&m["timestamp"]))
                        && text(m, "source") == Some("user")
                        && let Some(t) = text(m, "inputText")
                    {
                        *counts.entry((ask.series(m), t.to_owned())).or_default() += 1;
                    }
                }
                top_items(counts, 10)
            }
            "topExitMessages" => {
                let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
                for s in self.sessions(ask, &flows) {
                    let last = self
                        .messages
                        .iter()
                        .filter(|m| {
                            m["projectId"] == s["projectId"]
                                && m["sessionId"] == s["sessionId"]
                                && text(m, "source") == Some("user")
                        })
                        .max_by_key(|m| ts(&m["timestamp"]));
                    if let Some(t) = last.and_then(|m| text(m, "inputText")) {
                        *counts.entry((ask.series(s), t.to_owned())).or_default() += 1;
                    }
                }
                top_items(counts, 10)
            }
            "sessionLength" => {
                let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
                for s in self.sessions(ask, &flows) {
                    let times: Vec<Timestamp> = self
                        .records
                        .iter()
                        .filter(|r| r["projectId"] == s["projectId"] && r["sessionId"] == s["sessionId"])
                        .map(|r| ts(&r["timestamp"]))
                        .collect();
                    if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
                        let seconds = (last.as_millisecond() - first.as_millisecond()) as f64 / 1000.0;
                        cells.entry((ask.series(s), ask.bucket(ts(&s["startedAt"])))).or_default().push(seconds);
                    }
                }
                tally_items(ask, &cells)
            }
            "executionTime" => {
                let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
                for r in self.records(ask) {
                    if let Some(e) = r["executionTime"].as_f64() {
                        cells.entry((ask.series(r), ask.bucket(ts(&r["timestamp"])))).or_default().push(e);
                    }
                }
                tally_items(ask, &cells)
            }
            "containmentRate" | "handoverRate" => {
                let mut cells: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
                for s in self.sessions(ask, &flows) {
                    let cell = cells.entry((ask.series(s), ask.bucket(ts(&s["startedAt"])))).or_default();
                    cell.0 += 1;
                    cell.1 += usize::from(self.handed_over(s));
                }
                if report == "handoverRate" {
                    bucket_items(ask, &cells, &[("handoverRate", &|c: &(usize, usize)| fraction(c.1, c.0))])
                } else {
                    bucket_items(ask, &cells, &[("containmentRate", &|c: &(usize, usize)| fraction(c.0 - c.1, c.0))])
                }
            }
            "handoversByHour" => {
                let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
                let label = |t: Timestamp| t.to_zoned_datetime(ask.tz()).strftime("%a %H").to_string();
                for e in &self.escalations {
                    if ask.passes_by_session(e, &flows) && ask.inside(ts(&e["timestamp"])) {
                        *counts.entry((ask.series(e), label(ts(&e["timestamp"])))).or_default() += 1;
                    }
                }
                let escalated: HashSet<(&Json, &Json)> =
                    self.escalations.iter().map(|e| (&e["projectId"], &e["sessionId"])).collect();
                for r in self.records(ask) {
                    let says =
                        r["handoverEscalations"].as_i64().unwrap_or(0) > 0 || r["inHandoverRequest"] == json!(true);
                    if says && !escalated.contains(&(&r["projectId"], &r["sessionId"])) {
                        *counts.entry((ask.series(r), label(ts(&r["timestamp"])))).or_default() += 1;
                    }
                }
                let mut items = Items::new();
                for series in ask.series_names() {
                    for day in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] {
                        for hour in 0..24 {
                            let cell = format!("{day} {hour:02}");
                            let count = counts.get(&(series.clone(), cell.clone())).copied().unwrap_or(0);
                            items.insert((series.clone(), Some(cell), "handovers".into()), n(count));
                        }
                    }
                }
                items
            }
            "ratings" => {
                let mut cells: BTreeMap<(String, String), (usize, usize, Vec<f64>)> = BTreeMap::new();
                let messages = self.messages.iter().filter(|m| ask.passes_row(m) && ask.inside(ts(&m["timestamp"])));
                for row in self.records(ask).chain(messages) {
                    if let Some(rating) = row["rating"].as_f64() {
                        let project = text(row, "projectId").unwrap();
                        let cell = cells.entry((ask.series(row), ask.bucket(ts(&row["timestamp"])))).or_default();
                        cell.0 += usize::from(self.is_positive(project, rating));
                        cell.1 += usize::from(self.is_negative(project, rating));
                        cell.2.push(rating);
                    }
                }
                type Cell = (usize, usize, Vec<f64>);
                bucket_items(
                    ask,
                    &cells,
                    &[
                        ("positive", &|c: &Cell| n(c.0)),
                        ("negative", &|c: &Cell| n(c.1)),
                        ("average", &|c: &Cell| average(&c.2)),
                    ],
                )
            }
            "understood" => {
                let mut cells: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
                for r in self.records(ask) {
                    let cell = cells.entry((ask.series(r), ask.bucket(ts(&r["timestamp"])))).or_default();
                    cell.0 += usize::from(r["understood"] == json!(true));
                    cell.1 += usize::from(r["understood"] == json!(false));
                }
                bucket_items(
                    ask,
                    &cells,
                    &[("understood", &|c: &(usize, usize)| n(c.0)), ("notUnderstood", &|c: &(usize, usize)| n(c.1))],
                )
            }
            "intentScore" => {
                let mut items = Items::new();
                for series in ask.series_names() {
                    let scores: Vec<f64> = self
                        .records(ask)
                        .filter(|r| ask.series(r) == series)
                        .filter_map(|r| r["intentScore"].as_f64())
                        .collect();
                    for tenth in 0..10 {
                        let count = scores.iter().filter(|s| ((**s * 10.0).floor() as usize).min(9) == tenth).count();
                        let name = format!("{:.1}-{:.1}", tenth as f64 / 10.0, (tenth + 1) as f64 / 10.0);
                        items.insert((series.clone(), Some(name), "count".into()), n(count));
                    }
                    items.insert((series.clone(), Some("all".into()), "average".into()), average(&scores));
                    let max = scores.iter().copied().fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
                    items.insert(
                        (series.clone(), Some("all".into()), "maximum".into()),
                        max.map_or(Json::Null, |m| json!(m)),
                    );
                }
                items
            }
            "goals" => {
                // Cycles of the events that pass the filters, placed by their first such event.
                let mut cycles: BTreeMap<(String, String, String), (Timestamp, BTreeSet<String>)> = BTreeMap::new();
                for g in &self.goal_events {
                    if !ask.passes_by_session(g, &flows) {
                        continue;
                    }
                    let key = (
                        text(g, "projectId").unwrap().into(),
                        text(g, "goalId").unwrap().into(),
                        text(g, "goalCycleId").unwrap().into(),
                    );
                    let at = ts(&g["timestamp"]);
                    let cycle = cycles.entry(key).or_insert((at, BTreeSet::new()));
                    cycle.0 = cycle.0.min(at);
                    cycle.1.insert(text(g, "stepId").unwrap().into());
                }
                let mut sums: BTreeMap<(String, String), [f64; 6]> = BTreeMap::new();
                for ((project, goal, _), (first, steps)) in cycles {
                    if !ask.inside(first) {
                        continue;
                    }
                    let series = if ask.compare { project.clone() } else { String::new() };
                    let name = self.goal_names[&(project.clone(), goal)].clone();
                    let types: Vec<&str> = steps.iter().map(|s| self.step_types[s]).collect();
                    let status = if types.contains(&"completion") {
                        0
                    } else if types.contains(&"step") {
                        1
                    } else {
                        2
                    };
                    let cell = sums.entry((series, name)).or_default();
                    cell[status] += 1.0;
                    for step in &steps {
                        let m = self.metrics.get(&(project.clone(), step.clone())).copied().unwrap_or_default();
                        for i in 0..3 {
                            cell[3 + i] += m[i];
                        }
                    }
                }
                let mut items = Items::new();
                for ((series, name), cell) in sums {
                    for (i, measure) in
                        ["completed", "partial", "incomplete", "timeSaved", "costSaved", "revenue"].iter().enumerate()
                    {
                        items.insert((series.clone(), Some(name.clone()), (*measure).into()), json!(cell[i]));
                    }
                }
                items
            }
            "liveAgent" => {
                let mut items = Items::new();
                for series in ask.series_names() {
                    let mine = |row: &Json| ask.series(row) == series;
                    let opened: Vec<&Json> = self
                        .escalations
                        .iter()
                        .filter(|e| ask.passes_by_session(e, &flows) && ask.inside(ts(&e["timestamp"])) && mine(e))
                        .collect();
                    let span = |e: &Json, field: &str| {
                        e.get(field)
                            .filter(|v| !v.is_null())
                            .map(|v| (ts(v).as_millisecond() - ts(&e["timestamp"]).as_millisecond()) as f64 / 1000.0)
                    };
                    let sessions: Vec<&Json> = self.sessions(ask, &flows).filter(|s| mine(s)).collect();
                    let handed = sessions.iter().filter(|s| self.handed_over(s)).count();
                    let all = Some("all".to_owned());
                    items.insert((series.clone(), all.clone(), "handovers".into()), n(opened.len()));
                    items
                        .insert((series.clone(), all.clone(), "handoverRate".into()), fraction(handed, sessions.len()));
                    let first: Vec<f64> = opened.iter().filter_map(|e| span(e, "firstResponseAt")).collect();
                    let resolved: Vec<f64> = opened.iter().filter_map(|e| span(e, "resolvedAt")).collect();
                    items.insert((series.clone(), all.clone(), "averageFirstResponse".into()), average(&first));
                    items.insert((series.clone(), all, "averageResolution".into()), average(&resolved));
                    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                    for e in &opened {
                        *counts.entry(text(e, "status").unwrap().into()).or_default() += 1;
                        let labels: BTreeSet<&str> =
                            e["labels"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
                        for label in labels {
                            *counts.entry(format!("label:{label}")).or_default() += 1;
                        }
                    }
                    for (category, count) in counts {
                        items.insert((series.clone(), Some(category), "count".into()), n(count));
                    }
                }
                items
            }
            "activeSessions" | "overview" => {
                let since = as_of - 15.minutes();
                let mut items = Items::new();
                for series in ask.series_names() {
                    let mine = |row: &Json| ask.series(row) == series;
                    let active = self
                        .sessions
                        .iter()
                        .filter(|s| ask.passes_by_session(s, &flows) && mine(s))
                        .filter(|s| {
                            self.records.iter().chain(&self.messages).any(|row| {
                                row["projectId"] == s["projectId"] && row["sessionId"] == s["sessionId"] && {
                                    let t = ts(&row["timestamp"]);
                                    since <= t && t <= as_of
                                }
                            })
                        })
                        .count();
                    let total = Some("total".to_owned());
                    items.insert((series.clone(), total.clone(), "activeSessions".into()), n(active));
                    if report == "overview" {
                        let records: Vec<&Json> = self.records(ask).filter(|r| mine(r)).collect();
                        let contacts: BTreeSet<(&str, &str)> = records
                            .iter()
                            .map(|r| (text(r, "projectId").unwrap(), text(r, "contactId").unwrap()))
                            .collect();
                        let messages = self
                            .messages
                            .iter()
                            .filter(|m| ask.passes_row(m) && ask.inside(ts(&m["timestamp"])) && mine(m));
                        let ratings: Vec<(&str, f64)> = records
                            .iter()
                            .copied()
                            .chain(messages)
                            .filter_map(|row| row["rating"].as_f64().map(|r| (text(row, "projectId").unwrap(), r)))
                            .collect();
                        let sessions = self.sessions(ask, &flows).filter(|s| mine(s)).count();
                        items.insert((series.clone(), total.clone(), "sessions".into()), n(sessions));
                        items.insert((series.clone(), total.clone(), "contacts".into()), n(contacts.len()));
                        items.insert((series.clone(), total.clone(), "inputs".into()), n(records.len()));
                        let positive = ratings.iter().filter(|(p, r)| self.is_positive(p, *r)).count();
                        let negative = ratings.iter().filter(|(p, r)| self.is_negative(p, *r)).count();
                        items.insert((series.clone(), total.clone(), "positiveRatings".into()), n(positive));
                        items.insert((series.clone(), total, "negativeRatings".into()), n(negative));
                    }
                }
                items
            }
            other => panic!("no recomputation of {other}"),
        }
    }
}

fn tally_items(ask: &Ask, cells: &BTreeMap<(String, String), Vec<f64>>) -> Items {
    let min = |v: &Vec<f64>| v.iter().copied().reduce(f64::min).map_or(Json::Null, |m| json!(m));
    let max = |v: &Vec<f64>| v.iter().copied().reduce(f64::max).map_or(Json::Null, |m| json!(m));
    bucket_items(ask, cells, &[("average", &|v: &Vec<f64>| average(v)), ("minimum", &min), ("maximum", &max)])
}

/// The reports a recomputation checks (all but `steps`, checked by its own paths below).
const REPORTS: [&str; 23] = [
    "overview",
    "sessions",
    "contacts",
    "inputs",
    "activeSessions",
    "sessionsByChannel",
    "contactsByLocale",
    "sessionsByEndpoint",
    "topIntents",
    "topSlots",
    "topGoals",
    "topMessages",
    "topExitMessages",
    "sessionLength",
    "containmentRate",
    "handoverRate",
    "handoversByHour",
    "ratings",
    "executionTime",
    "intentScore",
    "goals",
    "liveAgent",
    "understood",
];

async fn report(app: &TestApp, path: &str) -> Json {
    let (status, body) = call(app, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Defines the goal of the test in a project, with metrics on its steps, and answers its id.
async fn define_goal(app: &TestApp, project: &str) -> String {
    let steps: Vec<Json> = GOAL_STEPS
        .iter()
        .enumerate()
        .map(|(order, (id, kind))| {
            let metrics = match *id {
                "picked" => json!([{"name": "Minutes saved", "type": "duration", "value": 60}]),
                "done" => json!([{"name": "Revenue", "type": "currency", "value": 25.5}, {"name": "Agent cost", "type": "currency", "value": 4}]),
                _ => json!([]),
            };
            json!({"stepId": id, "name": id, "type": kind, "order": order, "metrics": metrics})
        })
        .collect();
    let path = format!("/new/v2.0/projects/{project}/goals");
    let (status, goal) = call(app, Method::POST, &path, Some(&json!({"name": "Order", "steps": steps}))).await;
    assert_eq!(status, StatusCode::CREATED, "{goal}");
    goal["_id"].as_str().unwrap().to_owned()
}

/// Three projects (the second reads ratings on the 0–10 scale), their data written as described
/// at the top, then updated and partly erased. Answers the projects and the raw rows read back.
async fn populate(app: &TestApp, seed: u64) -> (Vec<String>, Raw) {
    let mut projects = Vec::new();
    for p in 0..3 {
        let settings = if p == 1 { json!({"ratingScale": "ten"}) } else { json!({}) };
        projects.push(app.create_project_with_settings(settings).await);
    }
    let ten = projects[1].clone();
    let mut goals = Vec::new();
    for p in &projects[..2] {
        goals.push(define_goal(app, p).await);
    }
    let now = Timestamp::now();
    let written = generate(&projects, &goals, &ten, seed, now);
    let mut rng = Rng(seed ^ 0x5eed);
    send_all(app, "/new/v2.0/analytics/records", &written.records, &mut rng).await;
    send_all(app, "/new/v2.0/conversations/messages", &written.messages, &mut rng).await;
    send_all(app, "/new/v2.0/analytics/steps", &written.steps, &mut rng).await;
    send_all(app, "/new/v2.0/analytics/escalations", &written.escalations, &mut rng).await;
    send_all(app, "/new/v2.0/analytics/goalevents", &written.goal_events, &mut rng).await;
    // Late records, with the times of their inputs.
    send_all(app, "/new/v2.0/analytics/records", &written.late_records, &mut rng).await;
    // Updates that change intents and ratings.
    for record in written.records.iter().step_by(9) {
        let rating = if record["projectId"] == json!(ten) { json!(2) } else { json!(-1) };
        let body = json!({"projectId": record["projectId"], "contactId": record["contactId"], "inputId": record["inputId"],
                          "properties": {"intent": "changed", "rating": rating}});
        let response = app.patch(&body).await;
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }
    // The busiest contact of the first project asks to be forgotten.
    let erased = erase_and_wait(app, &projects[0], json!({"contactIds": ["c0"]})).await;
    assert_eq!(erased["status"], "done", "{erased}");

    let records = dump(app, "Analytics").await;
    assert!(records.iter().all(|r| !(r["projectId"] == json!(projects[0]) && r["contactId"] == "c0")));
    let mut goal_names = HashMap::new();
    for g in dump(app, "Goals").await {
        goal_names.insert(
            (text(&g, "projectId").unwrap().into(), text(&g, "goalId").unwrap().into()),
            text(&g, "name").unwrap().into(),
        );
    }
    let mut metrics: HashMap<(String, String), [f64; 3]> = HashMap::new();
    for m in dump(app, "GoalStepMetrics").await {
        let key = (text(&m, "projectId").unwrap().to_owned(), text(&m, "goalStepId").unwrap().to_owned());
        let at = match (text(&m, "type"), text(&m, "name")) {
            (Some("duration"), _) => 0,
            (_, Some(name)) if name.to_lowercase().contains("revenue") => 2,
            _ => 1,
        };
        metrics.entry(key).or_default()[at] += m["value"].as_f64().unwrap();
    }
    let raw = Raw {
        records,
        messages: dump(app, "Conversations").await,
        sessions: dump(app, "Sessions").await,
        escalations: dump(app, "LiveAgentEscalations").await,
        goal_events: dump(app, "GoalEvents").await,
        goal_names,
        metrics,
        step_types: GOAL_STEPS.iter().map(|(id, kind)| ((*id).to_owned(), *kind)).collect(),
        scales: projects.iter().map(|p| (p.clone(), if *p == ten { "ten" } else { "binary" })).collect(),
    };
    (projects, raw)
}

async fn every_report_matches_a_recomputation_from_the_raw_rows(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let seed =
        std::env::var("PARLEY_INSIGHTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>) | 1;
    println!("insights seed {seed} (PARLEY_INSIGHTS_SEED replays it)");
    let (p, raw) = populate(&app, seed).await;
    assert!(
        raw.sessions.len() > 100 && raw.escalations.len() > 5 && raw.goal_events.len() > 20,
        "enough data to check"
    );
    let asks = [
        Ask {
            projects: vec![p[0].clone(), p[1].clone()],
            compare: false,
            zone: "UTC",
            from: "2026-03-26",
            to: "2026-03-31",
            grain: "day",
            filters: vec![],
        },
        Ask {
            projects: vec![p[0].clone(), p[1].clone()],
            compare: true,
            zone: "Europe/Berlin",
            from: "2026-03-28",
            to: "2026-03-29",
            grain: "hour",
            filters: vec![],
        },
        Ask {
            projects: vec![p[0].clone()],
            compare: false,
            zone: "Asia/Kolkata",
            from: "2026-03-26",
            to: "2026-03-31",
            grain: "day",
            filters: vec![("channel", vec!["webchat", "whatsapp"]), ("localeName", vec!["!de-DE"])],
        },
        Ask {
            projects: p.clone(),
            compare: false,
            zone: "Asia/Kathmandu",
            from: "2026-03-27",
            to: "2026-03-28",
            grain: "hour",
            filters: vec![],
        },
        Ask {
            projects: vec![p[1].clone(), p[2].clone()],
            compare: true,
            zone: "America/St_Johns",
            from: "2026-03-01",
            to: "2026-10-31",
            grain: "week",
            filters: vec![("flowName", vec!["Billing"])],
        },
        Ask {
            projects: vec![p[0].clone(), p[2].clone()],
            compare: true,
            zone: "Europe/Berlin",
            from: "2026-10-24",
            to: "2026-10-26",
            grain: "hour",
            filters: vec![
                ("snapshotName", vec!["!v2"]),
                ("endpointUrlToken", vec!["ep-web"]),
                ("flowName", vec!["!Main"]),
            ],
        },
        Ask {
            projects: p.clone(),
            compare: false,
            zone: "Europe/Berlin",
            from: "2026-03-01",
            to: "2026-11-30",
            grain: "month",
            filters: vec![],
        },
    ];
    for ask in &asks {
        for name in REPORTS {
            let path = ask.query(name);
            let body = report(&app, &path).await;
            let as_of = ts(&body["asOf"]);
            let got = answer_items(&body);
            let want = raw.expect(name, ask, as_of);
            let differing: Vec<String> = want
                .keys()
                .chain(got.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| !matches!((want.get(*k), got.get(*k)), (Some(a), Some(b)) if close(a, b)))
                .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
                .collect();
            assert!(differing.is_empty(), "{path} (seed {seed}):\n{}", differing.join("\n"));
            // The answer lists buckets in time order, each bucket's measures together.
            if ["sessions", "inputs", "ratings"].contains(&name) {
                let dims: Vec<&str> =
                    body["items"].as_array().unwrap().iter().filter_map(|i| i["dimension"].as_str()).collect();
                let buckets = ask.buckets();
                let mut order = dims.clone();
                order.dedup();
                assert_eq!(
                    order,
                    buckets.iter().map(String::as_str).cycle().take(order.len()).collect::<Vec<_>>(),
                    "{path}"
                );
            }
        }
    }
    // The changes of offset show as 23- and 25-hour days, in their buckets' offsets.
    let berlin_spring = asks[1].buckets();
    assert_eq!(berlin_spring.len(), 47, "{berlin_spring:?}");
    assert!(
        berlin_spring.contains(&"2026-03-29T01:00:00+01:00".into())
            && berlin_spring.contains(&"2026-03-29T03:00:00+02:00".into())
    );
    assert_eq!(asks[5].buckets().len(), 73, "three days, one of 25 hours");
    assert!(asks[3].buckets()[0].ends_with("+05:45"));

    // The steps funnel, forward and back, against the sessions' paths.
    for (param, backwards) in [("startStep=ask", false), ("endStep=pay", true)] {
        let ask = &asks[0];
        let body = report(&app, &format!("{}&{param}&depth=3", ask.query("steps"))).await;
        let step = param.split_once('=').unwrap().1;
        let flows = raw.session_flows();
        let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
        for s in raw.sessions(ask, &flows) {
            let path: Vec<&str> =
                text(s, "stepPath").unwrap_or_default().split(',').filter(|x| !x.is_empty()).collect();
            let walk: Vec<&str> = if backwards {
                match path.iter().rposition(|x| *x == step) {
                    Some(at) => path[..=at].iter().rev().copied().collect(),
                    None => continue,
                }
            } else {
                match path.iter().position(|x| *x == step) {
                    Some(at) => path[at..].to_vec(),
                    None => continue,
                }
            };
            for len in 1..=walk.len().min(3) {
                let node = walk[..len].join(" > ");
                *want.entry((node.clone(), "sessions".into())).or_default() += 1;
                want.entry((node.clone(), "dropOff".into())).or_default();
                if len == walk.len() {
                    *want.entry((node, "dropOff".into())).or_default() += 1;
                }
            }
        }
        let got: BTreeMap<(String, String), u64> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    (text(i, "dimension").unwrap().to_owned(), text(i, "measure").unwrap().to_owned()),
                    i["value"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "steps {param}");
        // Each node links to its sessions, which OData lists.
        let first = &body["items"][0];
        let link = first["_links"]["sessions"]["href"].as_str().unwrap();
        let listed = crate::helpers::odata_values(&app, link).await;
        assert!(listed.len() as u64 >= first["value"].as_u64().unwrap(), "{link}");
    }
}

async fn a_write_is_in_the_next_report_and_odata_apply_agrees(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let inputs = format!("{REPORT}/inputs?projectId={project}&from=2026-05-01&to=2026-05-01&timezone=Asia/Kathmandu");
    let total =
        |body: &Json| body["items"].as_array().unwrap().iter().map(|i| i["value"].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total(&report(&app, &inputs).await), 0);
    let mut count = 0;
    for (i, at) in
        ["2026-04-30T18:14:59.999Z", "2026-04-30T18:15:00.000Z", "2026-05-01T18:14:59.000Z", "2026-05-01T18:15:00.000Z"]
            .iter()
            .enumerate()
    {
        let record = json!({"projectId": project, "contactId": "c", "sessionId": format!("s{i}"), "inputId": format!("i{i}"),
                            "timestamp": at, "intent": if i % 2 == 0 { "a" } else { "b" }});
        app.ingest_new(&[record]).await;
        let body = report(&app, &inputs).await;
        // Local midnight in Kathmandu is 18:15 UTC: only the middle two are inside the day.
        if (1..=2).contains(&i) {
            count += 1;
        }
        assert_eq!(total(&body), count, "after writing {at}: {body}");
        assert!(ts(&body["asOf"]) >= Timestamp::now() - 60.seconds());
    }
    // OData `$apply` counts the same inputs and intents.
    let apply = format!(
        "/v2.4/Analytics?$apply=filter(projectId eq '{project}' and timestamp ge 2026-04-30T18:15:00.000Z and timestamp lt 2026-05-01T18:15:00.000Z)/groupby((intent),aggregate($count as n))"
    );
    let grouped = crate::helpers::odata_values(&app, &apply).await;
    let top = report(
        &app,
        &format!("{REPORT}/topIntents?projectId={project}&from=2026-05-01&to=2026-05-01&timezone=Asia/Kathmandu"),
    )
    .await;
    let from_apply: BTreeMap<String, u64> =
        grouped.iter().map(|g| (g["intent"].as_str().unwrap().to_owned(), g["n"].as_u64().unwrap())).collect();
    let from_report: BTreeMap<String, u64> = top["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["dimension"].as_str().unwrap().to_owned(), i["value"].as_u64().unwrap()))
        .collect();
    assert_eq!(from_report, from_apply);
    assert_eq!(from_report.values().sum::<u64>(), 2);
    // An update moves an input to another intent at once.
    let response = app
        .patch(&json!({"projectId": project, "contactId": "c", "inputId": "i2", "properties": {"intent": "b"}}))
        .await;
    assert!(response.status().is_success());
    let top = report(
        &app,
        &format!("{REPORT}/topIntents?projectId={project}&from=2026-05-01&to=2026-05-01&timezone=Asia/Kathmandu"),
    )
    .await;
    assert_eq!(top["items"], json!([{"dimension": "b", "measure": "count", "value": 2}]));
}

async fn reports_come_in_every_format(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let records: Vec<Json> = (0..6)
        .map(|i| {
            let (intent, channel) = [("a & b", "web"), ("<c>", "sms")][i % 2];
            json!({"projectId": project, "contactId": format!("c{i}"), "sessionId": format!("s{i}"), "inputId": format!("i{i}"),
                   "timestamp": format!("2026-06-0{}T10:00:00.000Z", 1 + i % 3), "intent": intent, "channel": channel})
        })
        .collect();
    app.ingest_new(&records).await;
    let path = format!("{REPORT}/inputs?projectId={project}&from=2026-06-01&to=2026-06-03");
    let json_body = report(&app, &path).await;
    assert_eq!(json_body["report"], "inputs");
    assert_eq!(json_body["timezone"], "UTC");
    assert_eq!(
        (json_body["from"].clone(), json_body["to"].clone()),
        (json!("2026-06-01T00:00:00.000Z"), json!("2026-06-04T00:00:00.000Z"))
    );
    let values: Vec<(Json, Json)> =
        json_body["items"].as_array().unwrap().iter().map(|i| (i["dimension"].clone(), i["value"].clone())).collect();
    assert_eq!(
        values,
        [
            (json!("2026-06-01T00:00:00+00:00"), json!(2)),
            (json!("2026-06-02T00:00:00+00:00"), json!(2)),
            (json!("2026-06-03T00:00:00+00:00"), json!(2))
        ]
    );

    // HAL: the same with a link to itself; the default.
    let hal: Json = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(hal["items"], json_body["items"]);
    assert!(hal["_links"]["self"]["href"].as_str().unwrap().contains("/insights/inputs"));

    // CSV: one line per item, and the time counted to in a header.
    let response = app.get_accepting(&path, "text/csv").await;
    let as_of = header(&response, "x-as-of").expect("X-As-Of");
    assert!(as_of.parse::<Timestamp>().is_ok(), "{as_of}");
    let (columns, rows) = parse_csv(&response.text().await.unwrap());
    assert_eq!(columns, ["projectId", "dimension", "measure", "value"]);
    assert_eq!(
        rows.iter().map(|r| (r[1].clone(), r[3].clone())).collect::<Vec<_>>(),
        values.iter().map(|(d, v)| (d.as_str().unwrap().to_owned(), v.to_string())).collect::<Vec<_>>()
    );

    // XML mirrors the JSON.
    let response = app.get_accepting(&path, "application/xml").await;
    let xml = response.text().await.unwrap();
    assert!(
        xml.contains("<report>inputs</report>") && xml.contains("<dimension>2026-06-02T00:00:00+00:00</dimension>"),
        "{xml}"
    );

    // The chart: SVG with the categories' names escaped, and PNG.
    let top = format!("{REPORT}/topIntents?projectId={project}&from=2026-06-01&to=2026-06-03");
    let response = app.get_accepting(&top, "image/svg+xml").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("image/svg+xml"));
    let svg = response.text().await.unwrap();
    assert!(svg.contains("a &amp; b") && svg.contains("&lt;c&gt;") && svg.contains("Top intents"), "{svg}");
    let mut reader = quick_xml::Reader::from_str(&svg);
    while reader.read_event().expect("well-formed SVG") != quick_xml::events::Event::Eof {}
    for report_name in ["inputs", "sessionsByChannel", "handoversByHour", "overview", "topIntents"] {
        let response = app.get_accepting(&format!("{REPORT}/{report_name}?projectId={project}"), "image/png").await;
        assert_eq!(response.status(), StatusCode::OK, "{report_name}");
        let png = response.bytes().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{report_name}");
        // Width and height of the image header: the chart drawn at twice its size.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(width, 1600, "{report_name}");
    }
    // What a browser's <img> asks for is a picture: SVG, when both are as welcome.
    let response = app.get_accepting(&top, "image/avif,image/webp,image/png,image/svg+xml,image/*,*/*;q=0.8").await;
    assert_eq!(header(&response, "content-type").as_deref(), Some("image/svg+xml"));
    let response = app.get_accepting(&top, "image/gif").await;
    assert_problem(response, 406, 406, &format!("{REPORT}/topIntents")).await;
}

async fn malformed_requests_are_refused_before_a_project_is_read(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let absent = "0123456789abcdef01234567";
    let stranger = app.other_organisation().await;
    let theirs = {
        let path = "/new/v2.0/projects";
        let response =
            app.with_key(Method::POST, path, &stranger.api_key).json(&json!({"name": "theirs"})).send().await.unwrap();
        let body: Json = response.json().await.unwrap();
        body["_id"].as_str().unwrap().to_owned()
    };
    let cases: [(&str, u16, &str); 14] = [
        ("from=2026-02-01&to=2026-01-01", 400, "from"),
        ("from=2025-01-01&to=2026-03-01", 400, "to"),
        ("from=yesterday", 400, "from"),
        ("timezone=Mars/Olympus", 400, "timezone"),
        ("grain=minute", 400, "grain"),
        ("limit=0", 400, "limit"),
        ("limit=101", 400, "limit"),
        ("depth=21", 400, "depth"),
        ("compare=channel", 400, "compare"),
        ("channel=!", 400, "channel"),
        ("grain=day&grain=hour", 400, "grain"),
        ("colour=red", 400, "colour"),
        ("projectId=nope", 400, "projectId"),
        ("", 0, ""),
    ];
    for (query, status, field) in cases {
        if status == 0 {
            continue;
        }
        // The project named is absent: the parameters are refused first.
        let path = format!("{REPORT}/sessions?projectId={absent}&{query}");
        let response = app.get(&path).header("Accept", "application/json").send().await.unwrap();
        let body = assert_problem(response, status, 1005, &format!("{REPORT}/sessions")).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let path = format!("{REPORT}/sessions");
    let body = assert_problem(app.get(&path).send().await.unwrap(), 400, 1000, &path).await;
    let instance = |path: &str| path.split('?').next().unwrap().to_owned();
    assert_eq!(body["details"]["field"], "projectId", "{body}");
    let path = format!("{REPORT}/steps?projectId={project}");
    let body = assert_problem(app.get(&path).send().await.unwrap(), 400, 1000, &instance(&path)).await;
    assert_eq!(body["details"]["field"], "startStep", "{body}");
    let path = format!("{REPORT}/steps?projectId={project}&startStep=a&endStep=b");
    assert_problem(app.get(&path).send().await.unwrap(), 400, 1005, &instance(&path)).await;
    // An unknown report, an absent project and another organisation's are all absent.
    let path = format!("{REPORT}/sessionz?projectId={project}");
    assert_problem(app.get(&path).send().await.unwrap(), 404, 1002, &instance(&path)).await;
    for other in [absent, theirs.as_str()] {
        let path = format!("{REPORT}/sessions?projectId={project}&projectId={other}");
        assert_problem(app.get(&path).send().await.unwrap(), 404, 1002, &instance(&path)).await;
    }
    // And for their owner, ours is absent.
    let path = format!("{REPORT}/sessions?projectId={theirs}&projectId={project}");
    let response = app.with_key(Method::GET, &path, &stranger.api_key).send().await.unwrap();
    assert_problem(response, 404, 1002, &instance(&path)).await;
}
