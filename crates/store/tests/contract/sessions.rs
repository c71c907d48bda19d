//! Sessions are exact after every write: randomised sessions of records, messages, executed
//! steps, escalations and goal events, written in random order by several concurrent writers with
//! rating updates and goal renames racing them, then erased in part, a goal deleted, and expired
//! in part. After each step every session read back is compared, field by field, with a plain
//! recomputation from the raw rows read back; so are the parents of the executed steps, the step
//! catalogue and every goal cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use parley_core::field::idx as record_idx;
use parley_core::goal::{Change, Definition, Goal, GoalStep};
use parley_core::message::{idx as message_idx, message_field};
use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, Erasure, EscalationWrite, ExecutedStep, GOAL_CYCLE_FIELDS,
    GOAL_EVENT_FIELDS, GoalEvent, Message, NewEscalation, NewGoalEvent, NewMessage, NewRecord, NewStep, ObjectId,
    Project, ProjectSettings, Record, RecordFilter, SESSION_FIELDS, STEP_FIELDS, SortKey, Task, Value,
};
use parley_odata::{EntityType, IdName, parse_query};
use parley_store::testing::Rng;
use parley_store::{ODataRead, Store, on_both_engines};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, create_project, update};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    sessions_are_exact_after_concurrent_writes_erasure_and_expiry,
    a_deleted_transcript_keeps_its_session_without_messages,
    an_event_of_a_goal_deleted_meanwhile_refuses_its_batch,
);

const CHANNELS: [&str; 3] = ["webchat", "voice", "whatsapp"];
const LOCALES: [&str; 2] = ["en-US", "de-DE"];

/// A batch of rows one writer sends at once.
#[derive(Clone)]
enum Batch {
    Records(Vec<Record>),
    Messages(Vec<Message>),
    Steps(Vec<ExecutedStep>),
    Escalations(Vec<EscalationWrite>),
    GoalEvents(Vec<GoalEvent>),
}

/// The types of a test goal's steps, in order: a start, two steps, a completion.
const GOAL_STEP_TYPES: [&str; 4] = ["start", "step", "step", "completion"];

/// Defines two goals of the project, whose steps are `{goal}-{n}` with [`GOAL_STEP_TYPES`].
async fn define_goals(db: &TestDb, project: &Project, now: OffsetDateTime) -> Vec<Goal> {
    let mut goals = Vec::new();
    for name in ["Order", "Refund"] {
        let steps = GOAL_STEP_TYPES
            .iter()
            .enumerate()
            .map(|(n, kind)| GoalStep {
                id: format!("{project}-{name}-{n}", project = project.id),
                name: format!("{name} {n}"),
                description: None,
                text: None,
                kind: (*kind).to_owned(),
                order: n as i64,
                metrics: Vec::new(),
            })
            .collect();
        let goal = Goal {
            id: ObjectId::generate(),
            project_id: project.id,
            organisation: project.organisation,
            version: parley_core::goal::new_version(),
            definition: Definition { name: name.to_owned(), description: None, reference_id: None, steps },
            created_at: now,
            last_changed: now,
            created_by: ObjectId::generate(),
            last_changed_by: ObjectId::generate(),
        };
        db.store.create_goal(goal.clone()).await.unwrap();
        goals.push(goal);
    }
    goals
}

fn generate(
    project: &Project,
    goals: &[Goal],
    seed: u64,
    now: OffsetDateTime,
) -> (Vec<Batch>, Vec<(String, String, String)>) {
    let mut rng = Rng(seed);
    let mut records = Vec::new();
    let mut messages = Vec::new();
    let mut steps = Vec::new();
    let mut escalations = Vec::new();
    let mut events = Vec::new();
    let mut inputs = Vec::new();
    for s in 0..30 {
        let session = format!("s{s}");
        let contact = format!("c{}", s % 4);
        for n in 0..rng.below(8) {
            let input = format!("{session}-i{n}");
            let mut json = json!({
                "projectId": project.id.to_string(), "contactId": contact, "sessionId": session, "inputId": input,
                "timestamp": parley_core::value::format_time(BASE + Duration::seconds(rng.below(7200) as i64)),
            });
            if let Some(channel) = rng.maybe_pick(&CHANNELS) {
                json["channel"] = json!(channel);
            }
            if let Some(locale) = rng.maybe_pick(&LOCALES) {
                json["localeName"] = json!(locale);
            }
            if rng.below(4) == 0 {
                json["rating"] = json!(rng.below(5) + 1);
                json["ratingComment"] = json!(format!("comment {}", rng.below(100)));
            }
            if rng.below(3) == 0 {
                json["handoverEscalations"] = json!(rng.below(4));
            }
            if rng.below(2) == 0 {
                json["flowName"] = json!(format!("flow {}", rng.below(3)));
            }
            records.push(NewRecord::parse(json).unwrap().stamp(project.organisation, &project.settings, now));
            inputs.push((contact.clone(), session.clone(), input));
        }
        for n in 0..rng.below(8) {
            let output = rng.below(2) == 0;
            let mut json = json!({
                "projectId": project.id.to_string(), "contactId": contact, "sessionId": session,
                "messageId": format!("{session}-m{n}"), "type": if output { "output" } else { "input" },
                "source": if output { "bot" } else { "user" }, "inputText": format!("words {n} of {session}"),
                "timestamp": parley_core::value::format_time(BASE + Duration::seconds(rng.below(7200) as i64)),
            });
            if let Some(channel) = rng.maybe_pick(&CHANNELS) {
                json["channel"] = json!(channel);
            }
            if rng.below(3) == 0 {
                json["snapshotId"] = json!(format!("snap{}", rng.below(2)));
            }
            if rng.below(5) == 0 {
                json["rating"] = json!(rng.below(5) + 1);
            }
            messages.push(NewMessage::parse(json).unwrap().stamp(project, now));
        }
        for n in 0..rng.below(7) {
            // Few nodes, so that the catalogue sees each executed many times; some share a
            // timestamp, so that the execution id breaks the tie.
            let node = rng.below(5);
            let mut json = json!({
                "projectId": project.id.to_string(), "sessionId": session, "executionId": format!("{session}-e{n}"),
                "entityReferenceId": format!("node-{node}"), "stepLabel": format!("Node {node} v{}", rng.below(3)),
                "type": if node == 4 { "intent" } else { "node" },
                "timestamp": parley_core::value::format_time(BASE + Duration::seconds(10 * rng.below(720) as i64)),
            });
            if rng.below(3) > 0 {
                json["userId"] = json!(contact);
            }
            if let Some(locale) = rng.maybe_pick(&LOCALES) {
                json["localeName"] = json!(locale);
            }
            if rng.below(3) == 0 {
                json["snapshotId"] = json!(format!("snap{}", rng.below(2)));
            }
            if rng.below(5) == 0 {
                json["parentStep"] = json!("sent by the client");
            }
            steps.push(NewStep::parse(json).unwrap().stamp(project, now));
        }
        // Escalations, each written once per status it went through; the id says the last.
        for n in 0..rng.below(3) {
            let statuses = [
                ["opened"].as_slice(),
                &["opened", "assigned"],
                &["opened", "assigned", "resolved"],
                &["opened", "abandoned"],
            ][rng.below(4) as usize];
            let id = format!("{session}-x{n}-{}", statuses.last().unwrap());
            let mut at = BASE + Duration::seconds(rng.below(7200) as i64);
            for status in statuses {
                let mut json = json!({
                    "projectId": project.id.to_string(), "sessionId": session, "escalationId": id,
                    "status": status, "timestamp": parley_core::value::format_time(at),
                });
                if rng.below(3) > 0 {
                    json["contactId"] = json!(contact);
                }
                if let Some(channel) = rng.maybe_pick(&CHANNELS) {
                    json["channel"] = json!(channel);
                }
                if *status == "assigned" {
                    json["agentName"] = json!(format!("agent {}", rng.below(3)));
                }
                escalations.push(NewEscalation::parse(json).unwrap().stamp(project, now));
                at += Duration::seconds(rng.below(600) as i64 + 1);
            }
        }
        // Goal cycles: each reaches its start, then maybe steps, then maybe a completion (a
        // completion may come without the steps, an event twice in a cycle), at random times.
        for n in 0..rng.below(4) {
            let goal = &goals[rng.below(goals.len() as u64) as usize];
            let cycle = format!("{session}-g{n}");
            let reached: Vec<usize> = (0..GOAL_STEP_TYPES.len()).filter(|s| *s == 0 || rng.below(2) == 0).collect();
            for (e, step) in reached.iter().enumerate() {
                let mut json = json!({
                    "projectId": project.id.to_string(), "sessionId": session, "goalId": goal.id.to_string(),
                    "eventId": format!("{cycle}-e{e}"), "goalCycleId": cycle,
                    "stepId": goal.definition.steps[*step].id,
                    "timestamp": parley_core::value::format_time(BASE + Duration::seconds(rng.below(7200) as i64)),
                });
                if rng.below(3) > 0 {
                    json["contactId"] = json!(contact);
                }
                if let Some(channel) = rng.maybe_pick(&CHANNELS) {
                    json["channel"] = json!(channel);
                }
                if let Some(locale) = rng.maybe_pick(&LOCALES) {
                    json["localeName"] = json!(locale);
                }
                let mut event = NewGoalEvent::parse(json).unwrap();
                event.record_under(Some(goal)).unwrap();
                events.push(event.stamp(project, now));
            }
        }
    }
    // Random order, random batch sizes, some batches sent twice.
    let mut batches = Vec::new();
    fn take<T>(rng: &mut Rng, rows: &mut Vec<T>) -> Vec<T> {
        let size = (rng.below(12) + 1).min(rows.len() as u64);
        (0..size).map(|_| rows.swap_remove(rng.below(rows.len() as u64) as usize)).collect()
    }
    while !records.is_empty()
        || !messages.is_empty()
        || !steps.is_empty()
        || !escalations.is_empty()
        || !events.is_empty()
    {
        let batch = match rng.below(5) {
            0 if !records.is_empty() => Batch::Records(take(&mut rng, &mut records)),
            1 if !messages.is_empty() => Batch::Messages(take(&mut rng, &mut messages)),
            2 if !steps.is_empty() => Batch::Steps(take(&mut rng, &mut steps)),
            3 if !escalations.is_empty() => Batch::Escalations(take(&mut rng, &mut escalations)),
            4 if !events.is_empty() => Batch::GoalEvents(take(&mut rng, &mut events)),
            _ => continue,
        };
        if rng.below(6) == 0 {
            batches.push(batch.clone());
        }
        batches.push(batch);
    }
    (batches, inputs)
}

/// Writes the batches from four concurrent writers while a fifth changes ratings and channels,
/// some of its updates arriving before their record, and a sixth renames the project's goals.
async fn write_concurrently(
    store: &Arc<dyn Store>,
    project: &Project,
    goals: &[Goal],
    batches: Vec<Batch>,
    inputs: Vec<(String, String, String)>,
    seed: u64,
    now: OffsetDateTime,
) {
    let queue = Arc::new(Mutex::new(batches));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (store, queue) = (store.clone(), queue.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let Some(batch) = queue.lock().unwrap().pop() else { break };
                match batch {
                    Batch::Records(records) => drop(store.insert_records(records, now).await.unwrap()),
                    Batch::Messages(messages) => drop(store.insert_messages(messages).await.unwrap()),
                    Batch::Steps(steps) => drop(store.insert_steps(steps).await.unwrap()),
                    Batch::Escalations(writes) => drop(store.insert_escalations(writes).await.unwrap()),
                    Batch::GoalEvents(events) => drop(store.insert_goal_events(events).await.unwrap()),
                }
            }
        }));
    }
    let (renamer, goals) = (store.clone(), goals.to_vec());
    writers.push(tokio::spawn(async move {
        for round in 0..6 {
            let goal = &goals[round % goals.len()];
            let change =
                Change { name: Some(format!("{} {seed:x}-{round}", goal.definition.name)), ..Change::default() };
            let changed = renamer.change_goal(goal.project_id, goal.id, change, goal.created_by, now).await.unwrap();
            assert!(changed.is_some());
            tokio::task::yield_now().await;
        }
    }));
    let (store, project) = (store.clone(), project.clone());
    writers.push(tokio::spawn(async move {
        let mut rng = Rng(seed ^ 0x5eed);
        for _ in 0..60 {
            let (contact, session, input) = &inputs[rng.below(inputs.len() as u64) as usize];
            let properties = match rng.below(4) {
                0 => json!({"rating": rng.below(5) + 1, "ratingComment": format!("updated {}", rng.below(9))}),
                1 => json!({"rating": null}),
                2 => json!({"channel": rng.pick(&CHANNELS)}),
                _ => json!({"handoverEscalations": rng.below(6)}),
            };
            let selector = if rng.below(4) == 0 {
                json!({"contactId": contact, "sessionId": session})
            } else {
                json!({"contactId": contact, "sessionId": session, "inputId": input})
            };
            // Half may wait for their record as pending updates, applied when it is ingested.
            let defer_until = (rng.below(2) == 0).then(|| now + Duration::hours(1));
            store.update_records(update(&project, selector, properties), now, defer_until).await.unwrap();
        }
    }));
    for writer in writers {
        writer.await.unwrap();
    }
}

/// One row of a session, as the test reads it back: (timestamp, source, id) orders rows.
#[derive(Clone, Debug)]
struct Raw {
    at: OffsetDateTime,
    source: u8,
    id: String,
    session: String,
    /// Empty for a step that leaves it out.
    contact: String,
    fields: BTreeMap<&'static str, Value>,
    expires: Option<OffsetDateTime>,
    /// A step's execution id, entity, the parent the client sent and the one parley stores.
    step: Option<StepRow>,
    /// A goal event's goal, cycle, step type and event id.
    goal: Option<EventRow>,
}

#[derive(Clone, Debug)]
struct EventRow {
    goal: String,
    cycle: String,
    step_type: String,
    event: String,
}

#[derive(Clone, Debug)]
struct StepRow {
    execution: String,
    entity: String,
    label: String,
    sent_parent: bool,
    parent: Value,
}

async fn raw_rows(store: &Arc<dyn Store>, project: &Project) -> Vec<Raw> {
    let filter = RecordFilter { project_id: project.id, contact_id: None, session_id: None, from: None, to: None };
    let sort = [SortKey { field: record_idx::ID, descending: false }];
    let records = store.fetch_records(&filter, &sort, None, 0, 100_000).await.unwrap();
    let mut rows: Vec<Raw> = records
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).clone();
            Raw {
                at: time_of(r.get(record_idx::TIMESTAMP)).unwrap(),
                source: 0,
                id: r.id().to_owned(),
                session: r.get(record_idx::SESSION_ID).as_text().unwrap().to_owned(),
                contact: r.get(record_idx::CONTACT_ID).as_text().unwrap().to_owned(),
                fields: BTreeMap::from([
                    ("channel", text(record_idx::CHANNEL)),
                    ("localeName", text(record_idx::LOCALE_NAME)),
                    ("endpointReferenceId", text(record_idx::ENTRYPOINT)),
                    ("rating", text(record_idx::RATING)),
                    ("ratingComment", text(record_idx::RATING_COMMENT)),
                    ("handoverEscalations", text(record_idx::HANDOVER_ESCALATIONS)),
                    ("snapshotId", Value::Null),
                ]),
                expires: time_of(r.get(record_idx::EXPIRES_AT)),
                step: None,
                goal: None,
            }
        })
        .collect();
    let sessions: BTreeSet<String> = (0..30).map(|s| format!("s{s}")).collect();
    for session in sessions {
        for m in store.transcript(project.id, &session).await.unwrap() {
            let text = |i: usize| m.get(i).clone();
            rows.push(Raw {
                at: time_of(m.get(message_idx::TIMESTAMP)).unwrap(),
                source: 1,
                id: m.get(message_idx::ID).as_text().unwrap().to_owned(),
                session: session.clone(),
                contact: m.get(message_idx::CONTACT_ID).as_text().unwrap().to_owned(),
                fields: BTreeMap::from([
                    ("channel", text(message_field("channel").unwrap())),
                    ("localeName", text(message_field("localeName").unwrap())),
                    ("endpointReferenceId", Value::Null),
                    ("rating", text(message_field("rating").unwrap())),
                    ("ratingComment", text(message_field("ratingComment").unwrap())),
                    ("handoverEscalations", Value::Null),
                    ("snapshotId", text(message_field("snapshotId").unwrap())),
                ]),
                expires: time_of(m.get(message_idx::EXPIRES_AT)),
                step: None,
                goal: None,
            });
        }
    }
    for step in odata_rows(store, project, &EntityType::executed_steps(IdName::Id), EXECUTED_STEP_FIELDS).await {
        let text = |name: &str| step[name].as_text().unwrap_or_default().to_owned();
        let parent = step["parentStep"].clone();
        rows.push(Raw {
            at: time_of(&step["timestamp"]).unwrap(),
            source: 2,
            id: text("id"),
            session: text("sessionId"),
            contact: text("userId"),
            fields: BTreeMap::from([
                ("channel", Value::Null),
                ("localeName", step["localeName"].clone()),
                ("endpointReferenceId", Value::Null),
                ("rating", Value::Null),
                ("ratingComment", Value::Null),
                ("handoverEscalations", Value::Null),
                ("snapshotId", step["snapshotId"].clone()),
            ]),
            expires: time_of(&step["expiresAt"]),
            step: Some(StepRow {
                execution: text("executionId"),
                entity: text("entityReferenceId"),
                label: text("stepLabel"),
                sent_parent: parent == Value::Text("sent by the client".into()),
                parent,
            }),
            goal: None,
        });
    }
    for escalation in odata_rows(store, project, &EntityType::escalations(IdName::Id), ESCALATION_FIELDS).await {
        let text = |name: &str| escalation[name].as_text().unwrap_or_default().to_owned();
        let id = text("escalationId");
        assert_eq!(&text("status"), id.rsplit('-').next().unwrap(), "the latest status of {id}");
        rows.push(Raw {
            at: time_of(&escalation["timestamp"]).unwrap(),
            source: 3,
            id: text("id"),
            session: text("sessionId"),
            contact: text("contactId"),
            fields: BTreeMap::from([
                ("channel", escalation["channel"].clone()),
                ("localeName", Value::Null),
                ("endpointReferenceId", Value::Null),
                ("rating", Value::Null),
                ("ratingComment", Value::Null),
                ("handoverEscalations", Value::Null),
                ("snapshotId", Value::Null),
            ]),
            expires: time_of(&escalation["expiresAt"]),
            step: None,
            goal: None,
        });
    }
    for event in odata_rows(store, project, &EntityType::goal_events(IdName::Id), GOAL_EVENT_FIELDS).await {
        let text = |name: &str| event[name].as_text().unwrap_or_default().to_owned();
        rows.push(Raw {
            at: time_of(&event["timestamp"]).unwrap(),
            source: 4,
            id: text("id"),
            session: text("sessionId"),
            contact: text("contactId"),
            fields: BTreeMap::from([
                ("channel", event["channel"].clone()),
                ("localeName", event["localeName"].clone()),
                ("endpointReferenceId", Value::Null),
                ("rating", Value::Null),
                ("ratingComment", Value::Null),
                ("handoverEscalations", Value::Null),
                ("snapshotId", event["snapshotId"].clone()),
            ]),
            expires: time_of(&event["expiresAt"]),
            step: None,
            goal: Some(EventRow {
                goal: text("goalId"),
                cycle: text("goalCycleId"),
                step_type: text("stepType"),
                event: text("eventId"),
            }),
        });
    }
    rows
}

/// Every row of an OData entity set of the project, as field name → value.
async fn odata_rows(
    store: &Arc<dyn Store>,
    project: &Project,
    entity: &EntityType,
    fields: &[parley_core::Field],
) -> Vec<BTreeMap<String, Value>> {
    let query = parse_query(entity, &[]).unwrap();
    let read = ODataRead { entity, query: &query, projects: &[project.id], columns: &query.select, limit: 100_000 };
    let rows = store.odata_rows(read).await.unwrap();
    rows.into_iter().map(|row| fields.iter().map(|f| f.name.to_owned()).zip(row).collect()).collect()
}

fn time_of(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::Time(t) => Some(*t),
        _ => None,
    }
}

/// The sessions as the rules of docs/contract/conversations.md make them, recomputed plainly;
/// `goal_names` are the goals' current names by id.
fn recompute(rows: &[Raw], goal_names: &BTreeMap<String, String>) -> BTreeMap<String, BTreeMap<&'static str, Value>> {
    let mut by_session: BTreeMap<String, Vec<Raw>> = BTreeMap::new();
    for row in rows {
        by_session.entry(row.session.clone()).or_default().push(row.clone());
    }
    let mut sessions = BTreeMap::new();
    for (session, mut rows) in by_session {
        rows.sort_by(|a, b| (a.at, a.source, &a.id).cmp(&(b.at, b.source, &b.id)));
        let first_carrying =
            |name: &str| rows.iter().map(|r| r.fields[name].clone()).find(|v| *v != Value::Null).unwrap_or(Value::Null);
        let rated = rows.iter().rev().find(|r| r.fields["rating"] != Value::Null);
        let handovers = rows
            .iter()
            .filter_map(|r| match r.fields["handoverEscalations"] {
                Value::Integer(n) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let escalations = rows.iter().filter(|r| r.source == 3).count() as i64;
        let handovers = if escalations > 0 { escalations } else { handovers };
        let expires = if rows.iter().any(|r| r.expires.is_none()) {
            Value::Null
        } else {
            Value::Time(rows.iter().filter_map(|r| r.expires).max().unwrap())
        };
        let mut steps: Vec<&Raw> = rows.iter().filter(|r| r.source == 2).collect();
        steps.sort_by_key(|r| (r.at, r.step.as_ref().unwrap().execution.clone()));
        let path: Vec<&str> = steps.iter().map(|r| r.step.as_ref().unwrap().entity.as_str()).collect();
        let contact = rows.iter().map(|r| r.contact.clone()).find(|c| !c.is_empty()).unwrap_or_default();
        // Goals by their first completion event, by time, then event id.
        let mut completions: Vec<(OffsetDateTime, &str, &str)> = rows
            .iter()
            .filter_map(|r| r.goal.as_ref().map(|g| (r.at, g)))
            .filter(|(_, g)| g.step_type == "completion")
            .map(|(at, g)| (at, g.event.as_str(), g.goal.as_str()))
            .collect();
        completions.sort();
        let mut completed: Vec<&str> = Vec::new();
        for (_, _, goal) in completions {
            if !completed.contains(&goal) {
                completed.push(goal);
            }
        }
        let goals: Vec<&str> = completed.iter().map(|g| goal_names[*g].as_str()).collect();
        let expected = BTreeMap::from([
            ("sessionId", Value::Text(session.clone())),
            ("contactId", Value::Text(contact)),
            ("stepsCount", Value::Integer(steps.len() as i64)),
            ("stepPath", Value::Text(path.join(","))),
            ("goals", Value::Text(goals.join(", "))),
            ("startedAt", Value::Time(rows[0].at)),
            ("lastActivityAt", Value::Time(rows.last().unwrap().at)),
            ("channel", first_carrying("channel")),
            ("localeName", first_carrying("localeName")),
            ("snapshotId", first_carrying("snapshotId")),
            ("endpointReferenceId", first_carrying("endpointReferenceId")),
            ("rating", rated.map_or(Value::Null, |r| r.fields["rating"].clone())),
            ("ratingComment", rated.map_or(Value::Null, |r| r.fields["ratingComment"].clone())),
            ("handoverEscalations", Value::Integer(handovers)),
            ("inputsCount", Value::Integer(rows.iter().filter(|r| r.source == 0).count() as i64)),
            ("messagesCount", Value::Integer(rows.iter().filter(|r| r.source == 1).count() as i64)),
            ("expiresAt", expires),
        ]);
        sessions.insert(session, expected);
    }
    sessions
}

/// Every session of the project as the `Sessions` entity set reads it, by session id.
async fn stored_sessions(store: &Arc<dyn Store>, project: &Project) -> BTreeMap<String, BTreeMap<String, Value>> {
    let rows = odata_rows(store, project, &EntityType::sessions(IdName::Id), SESSION_FIELDS).await;
    rows.into_iter().map(|fields| (fields["sessionId"].as_text().unwrap().to_owned(), fields)).collect()
}

/// Each executed step's parent is the one its client sent, else the previous step of its session
/// by time, then execution id; each catalogue step shows the label of its latest execution, by
/// time, then label (while
/// none has been erased: the catalogue keeps what it saw).
fn assert_steps_exact(rows: &[Raw], catalogue: Option<&[BTreeMap<String, Value>]>, seed: u64, step: &str) {
    let mut by_session: BTreeMap<&str, Vec<&Raw>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.step.is_some()) {
        by_session.entry(&row.session).or_default().push(row);
    }
    let mut latest: BTreeMap<&str, (OffsetDateTime, &str)> = BTreeMap::new();
    for steps in by_session.values_mut() {
        steps.sort_by_key(|r| (r.at, r.step.as_ref().unwrap().execution.clone()));
        let mut previous = Value::Null;
        for row in steps.iter() {
            let s = row.step.as_ref().unwrap();
            if !s.sent_parent {
                assert_eq!(s.parent, previous, "seed {seed}, {step}: parent of {}", s.execution);
            }
            previous = Value::Text(s.entity.clone());
            let candidate = (row.at, s.label.as_str());
            let slot = latest.entry(&s.entity).or_insert(candidate);
            if candidate > *slot {
                *slot = candidate;
            }
        }
    }
    let Some(catalogue) = catalogue else { return };
    assert_eq!(catalogue.len(), latest.len(), "seed {seed}, {step}: one catalogue step per entity executed");
    let labels: BTreeMap<String, Value> =
        catalogue.iter().map(|s| (s["entityReferenceId"].as_text().unwrap().to_owned(), s["label"].clone())).collect();
    for (entity, (_, label)) in latest {
        assert_eq!(labels[entity], Value::Text(label.to_owned()), "seed {seed}, {step}: label of {entity}");
    }
}

/// Every goal cycle as `GoalCycles` reads it equals one recomputed from the raw events: completed
/// with a completion event, partial with a step event, incomplete otherwise.
async fn assert_cycles_exact(store: &Arc<dyn Store>, project: &Project, rows: &[Raw], seed: u64, step: &str) {
    let mut cycles: BTreeMap<String, Vec<(&Raw, &EventRow)>> = BTreeMap::new();
    for row in rows {
        if let Some(event) = &row.goal {
            cycles.entry(format!("{}:{}", event.goal, event.cycle)).or_default().push((row, event));
        }
    }
    let stored: BTreeMap<String, BTreeMap<String, Value>> =
        odata_rows(store, project, &EntityType::goal_cycles(IdName::Id), GOAL_CYCLE_FIELDS)
            .await
            .into_iter()
            .map(|c| (c["id"].as_text().unwrap().to_owned(), c))
            .collect();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        cycles.keys().collect::<Vec<_>>(),
        "seed {seed}, {step}: the goal cycles that exist"
    );
    for (id, events) in cycles {
        let has = |kind: &str| events.iter().any(|(_, e)| e.step_type == kind);
        let status = if has("completion") {
            "completed"
        } else if has("step") {
            "partial"
        } else {
            "incomplete"
        };
        let completed_at = events.iter().filter(|(_, e)| e.step_type == "completion").map(|(r, _)| r.at).min();
        let expected = [
            ("status", Value::Text(status.into())),
            ("eventsCount", Value::Integer(events.len() as i64)),
            ("startedAt", Value::Time(events.iter().map(|(r, _)| r.at).min().unwrap())),
            ("lastEventAt", Value::Time(events.iter().map(|(r, _)| r.at).max().unwrap())),
            ("completedAt", completed_at.map_or(Value::Null, Value::Time)),
            ("sessionId", Value::Text(events.iter().map(|(r, _)| r.session.clone()).min().unwrap())),
            ("goalCycleId", Value::Text(events[0].1.cycle.clone())),
        ];
        for (name, value) in expected {
            assert_eq!(stored[&id][name], value, "seed {seed}, {step}: cycle {id}.{name}");
        }
    }
}

async fn assert_sessions_exact(store: &Arc<dyn Store>, project: &Project, seed: u64, step: &str) {
    let rows = raw_rows(store, project).await;
    assert_cycles_exact(store, project, &rows, seed, step).await;
    let goal_names: BTreeMap<String, String> = store
        .goals(project.id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.id.to_string(), g.definition.name))
        .collect();
    let catalogue = odata_rows(store, project, &EntityType::steps(IdName::Id), STEP_FIELDS).await;
    let complete = !step.starts_with("after erasing") && !step.contains("expired");
    assert_steps_exact(&rows, complete.then_some(&catalogue[..]), seed, step);
    let expected = recompute(&rows, &goal_names);
    let stored = stored_sessions(store, project).await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "seed {seed}, {step}: the sessions that exist"
    );
    for (session, fields) in &expected {
        for (name, value) in fields {
            assert_eq!(&stored[session][*name], value, "seed {seed}, {step}: {session}.{name}");
        }
        assert_eq!(stored[session]["userId"], stored[session]["contactId"], "seed {seed}: userId is the contact");
        assert_eq!(stored[session]["projectName"], Value::Text(project.name.clone()));
    }
}

async fn sessions_are_exact_after_concurrent_writes_erasure_and_expiry(db: &TestDb) {
    let org = bootstrap(db).await;
    let mut project = create_project(db, &org, 1).await;
    // Messages expire after a day, records after a year.
    project.settings = ProjectSettings { transcript_retention_days: 1, ..ProjectSettings::default() };
    db.store.update_project(project.clone()).await.unwrap();
    let other = create_project(db, &org, 2).await;
    let now = parley_core::value::now();
    let goals = define_goals(db, &project, now).await;
    let other_goals = define_goals(db, &other, now).await;
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 0xdead_beef_cafe_f00d] {
        let (batches, inputs) = generate(&project, &goals, seed, now);
        let (decoys, _) = generate(&other, &other_goals, seed ^ 1, now);
        let mut all = batches;
        all.extend(decoys);
        write_concurrently(&db.store, &project, &goals, all, inputs, seed, now).await;
        assert_sessions_exact(&db.store, &project, seed, "after the writes").await;
        assert_sessions_exact(&db.store, &other, seed, "the other project").await;
    }
    let seed = 0;
    assert!(!stored_sessions(&db.store, &project).await.is_empty());

    // Erase one contact: its sessions go, the others stay exact.
    let erasure = Erasure { contact_ids: Some(vec!["c1".into()]), timestamp_start: None, timestamp_end: None };
    let task = Task::erasure(org.id, project.id, org.admin.user_id, erasure, now);
    db.store.create_task(task.clone()).await.unwrap();
    while db.store.erase_batch(&task, 7, now).await.unwrap() == 7 {}
    db.store.finish_task(&task, None, now).await.unwrap();
    let stored = stored_sessions(&db.store, &project).await;
    assert!(stored.values().all(|s| s["contactId"] != Value::Text("c1".into())), "the erased contact's sessions go");
    // Every session of c1 is s1, s5, …: none of their rows is left, steps that leave the contact
    // out included.
    let left: Vec<Raw> = raw_rows(&db.store, &project).await;
    assert!(left.iter().any(|r| r.source == 2 && r.contact.is_empty()), "steps without a contact stay for others");
    let of_c1: Vec<&Raw> = left.iter().filter(|r| r.session[1..].parse::<u32>().unwrap() % 4 == 1).collect();
    assert!(of_c1.is_empty(), "rows of the erased contact's sessions are left: {of_c1:?}");
    assert_sessions_exact(&db.store, &project, seed, "after erasing c1").await;

    // Deleting a goal deletes its events: the sessions that completed it no longer name it, and
    // those left without rows go.
    let before = raw_rows(&db.store, &project).await;
    let doomed = goals[1].id.to_string();
    assert!(before.iter().any(|r| r.goal.as_ref().is_some_and(|g| g.goal == doomed)));
    assert!(db.store.delete_goal(project.id, goals[1].id).await.unwrap());
    let left = raw_rows(&db.store, &project).await;
    assert!(!left.iter().any(|r| r.goal.as_ref().is_some_and(|g| g.goal == doomed)));
    assert!(left.iter().any(|r| r.goal.is_some()), "the other goal's events stay");
    assert_sessions_exact(&db.store, &project, seed, "after erasing c1 and deleting a goal").await;

    // Two days on, the messages have expired and the records not: sessions lose their messages.
    let later = now + Duration::days(2);
    while db.store.purge_expired_records(project.id, later, 10).await.unwrap() == 10 {}
    let stored = stored_sessions(&db.store, &project).await;
    assert!(stored.values().all(|s| s["messagesCount"] == Value::Integer(0)));
    assert_sessions_exact(&db.store, &project, seed, "after the messages expired").await;

    // Past a year, everything has: no session is left.
    let much_later = now + Duration::days(400);
    while db.store.purge_expired_records(project.id, much_later, 10).await.unwrap() == 10 {}
    assert!(stored_sessions(&db.store, &project).await.is_empty());
    assert_sessions_exact(&db.store, &other, seed, "the other project, untouched").await;
}

async fn a_deleted_transcript_keeps_its_session_without_messages(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let now = parley_core::value::now();
    let message = |id: &str, session: &str, at: i64| {
        let json = json!({
            "projectId": project.id.to_string(), "contactId": "c", "sessionId": session, "messageId": id,
            "type": "input", "source": "user", "inputText": "hello",
            "timestamp": parley_core::value::format_time(BASE + Duration::seconds(at)),
        });
        NewMessage::parse(json).unwrap().stamp(&project, now)
    };
    db.store.insert_messages(vec![message("m1", "only-messages", 0), message("m2", "only-messages", 5)]).await.unwrap();
    db.store.insert_messages(vec![message("m3", "mixed", 10)]).await.unwrap();
    let mut record = json!({"projectId": project.id.to_string(), "contactId": "c", "sessionId": "mixed",
                            "inputId": "i1", "timestamp": parley_core::value::format_time(BASE + Duration::seconds(20))});
    record["channel"] = json!("voice");
    let record = NewRecord::parse(record).unwrap().stamp(project.organisation, &project.settings, now);
    db.store.insert_records(vec![record], now).await.unwrap();

    assert_eq!(db.store.delete_transcript(project.id, "only-messages").await.unwrap(), 2);
    assert_eq!(db.store.delete_transcript(project.id, "mixed").await.unwrap(), 1);
    assert_eq!(db.store.delete_transcript(project.id, "unknown").await.unwrap(), 0);
    assert!(db.store.transcript(project.id, "only-messages").await.unwrap().is_empty());

    let stored = stored_sessions(&db.store, &project).await;
    let kept = &stored["only-messages"];
    assert_eq!(kept["messagesCount"], Value::Integer(0), "the session stays, without messages");
    assert_eq!(kept["startedAt"], Value::Time(BASE), "as it was");
    assert_eq!(kept["lastActivityAt"], Value::Time(BASE + Duration::seconds(5)));
    let mixed = &stored["mixed"];
    assert_eq!(mixed["messagesCount"], Value::Integer(0));
    assert_eq!(mixed["inputsCount"], Value::Integer(1));
    assert_eq!(mixed["startedAt"], Value::Time(BASE + Duration::seconds(20)), "derived from what remains");
    assert_eq!(mixed["channel"], Value::Text("voice".into()));
    assert!(!stored.contains_key("unknown"));

    // An erasure of the contact takes the session kept without rows too.
    let erasure = Erasure { contact_ids: Some(vec!["c".into()]), timestamp_start: None, timestamp_end: None };
    let task = Task::erasure(org.id, project.id, org.admin.user_id, erasure, now);
    db.store.create_task(task.clone()).await.unwrap();
    while db.store.erase_batch(&task, 100, now).await.unwrap() == 100 {}
    db.store.finish_task(&task, None, now).await.unwrap();
    assert!(stored_sessions(&db.store, &project).await.is_empty());
}

/// Events are checked against their goal before they are stamped; one whose goal is deleted
/// before the batch is written refuses the whole batch, and nothing of it is kept.
async fn an_event_of_a_goal_deleted_meanwhile_refuses_its_batch(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let now = parley_core::value::now();
    let goals = define_goals(db, &project, now).await;
    let event = |goal: &Goal, id: &str| {
        let json = json!({"projectId": project.id.to_string(), "sessionId": "s1", "goalId": goal.id.to_string(),
                          "eventId": id, "goalCycleId": "c1", "stepId": goal.definition.steps[0].id});
        let mut event = NewGoalEvent::parse(json).unwrap();
        event.record_under(Some(goal)).unwrap();
        event.stamp(&project, now)
    };
    let batch = vec![event(&goals[0], "kept-goal"), event(&goals[1], "deleted-goal")];
    assert!(db.store.delete_goal(project.id, goals[1].id).await.unwrap());
    let refused = db.store.insert_goal_events(batch).await.unwrap_err();
    assert!(matches!(refused, parley_store::StoreError::Stale(_)), "{refused:?}");
    let events = odata_rows(&db.store, &project, &EntityType::goal_events(IdName::Id), GOAL_EVENT_FIELDS).await;
    assert!(events.is_empty(), "nothing of the batch is kept: {events:?}");
    assert!(stored_sessions(&db.store, &project).await.is_empty());
    let counts = db.store.insert_goal_events(vec![event(&goals[0], "kept-goal")]).await.unwrap();
    assert_eq!(counts.inserted, 1, "the goal that exists takes its event");
}
