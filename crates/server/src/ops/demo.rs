//! `parley demo`: a realistic data set, generated and stored through the ingest rules, so that a
//! new user sees the reports, OData and the dashboard working at once. Three projects in three
//! time zones, of unequal size; a few very active contacts and many occasional ones; sessions of
//! one to eight inputs in the daily rhythm of each project's zone, with their messages (user, bot,
//! and agent after a handover), executed steps, goal events and handovers; skewed intents,
//! channels and locales; a history of `days` days ending now.

use std::collections::HashMap;

use parley_core::goal::{Change, Goal, new_version};
use parley_core::{
    NewEscalation, NewGoalEvent, NewMessage, NewRecord, NewStep, ObjectId, Project, ProjectProfile, ProjectSettings,
};
use parley_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use super::progress::Progress;
use super::{Interrupt, OpsResult};
use crate::ingest::{NewRow, store_rows};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub records: u64,
    pub days: u32,
    pub seed: u64,
}

/// What the demo stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub projects: Vec<(ObjectId, String)>,
    pub records: u64,
    pub messages: u64,
    pub steps: u64,
    pub goal_events: u64,
    pub escalations: u64,
    pub interrupted: bool,
}

/// A demo project: its name, share of the sessions, UTC offset of its day in minutes, locales.
struct Bot {
    name: &'static str,
    share: f64,
    offset_minutes: i64,
    locales: &'static [&'static str],
}

const BOTS: [Bot; 3] = [
    Bot { name: "Demo: Support bot (Berlin)", share: 0.6, offset_minutes: 60, locales: &["de-DE", "en-GB"] },
    Bot { name: "Demo: Sales assistant (New York)", share: 0.3, offset_minutes: -300, locales: &["en-US", "es-US"] },
    Bot { name: "Demo: Helpdesk (Kolkata)", share: 0.1, offset_minutes: 330, locales: &["en-IN", "hi-IN"] },
];

const CHANNELS: [&str; 5] = ["webchat3", "whatsapp", "voiceGateway2", "slack", "rest"];
const INTENTS: [&str; 12] = [
    "orderStatus",
    "refund",
    "changeAddress",
    "talkToHuman",
    "openingHours",
    "greeting",
    "thanks",
    "cancelOrder",
    "paymentProblem",
    "productQuestion",
    "deliveryTime",
    "complaint",
];
const TEXTS: [&str; 12] = [
    "where is my order?",
    "I want my money back",
    "I moved, please change my address",
    "can I talk to a person",
    "when are you open?",
    "hi",
    "thanks a lot",
    "please cancel order 4711",
    "my card was charged twice",
    "does this come in blue?",
    "when will it arrive?",
    "this is the third time I write",
];
const STEPS: [&str; 6] = ["Welcome", "Identify customer", "Look up order", "Offer options", "Handover", "Goodbye"];

/// An index below `n`, the first ones far more often.
fn skewed(rng: &mut impl Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u * u) * n as f64) as usize
}

fn iso(t: OffsetDateTime) -> String {
    parley_core::value::format_time(t)
}

/// Rows of each collection waiting to be stored.
#[derive(Default)]
struct Pending {
    records: Vec<Json>,
    messages: Vec<Json>,
    steps: Vec<Json>,
    goal_events: Vec<Json>,
    escalations: Vec<Json>,
}

/// Rows per stored batch.
const BATCH: usize = 2000;

/// Creates the demo projects and their goals in `organisation`, and fills them.
pub async fn demo(
    store: &dyn Store,
    organisation: ObjectId,
    options: DemoOptions,
    interrupt: &Interrupt,
) -> OpsResult<DemoSummary> {
    let failed = |e: parley_store::StoreError| format!("cannot store the demo: {e}");
    let now = parley_core::value::now();
    let mut projects = HashMap::new();
    let mut summary = DemoSummary::default();
    let mut goals = Vec::new();
    for bot in &BOTS {
        let project = Project {
            id: ObjectId::generate(),
            organisation,
            name: bot.name.to_owned(),
            settings: ProjectSettings { retention_days: 0, ..ProjectSettings::default() },
            profile: ProjectProfile { locale: Some(bot.locales[0].to_owned()), ..ProjectProfile::default() },
            created_at: now,
            updated_at: now,
        };
        store.create_project(project.clone()).await.map_err(failed)?;
        let change = Change::parse(
            json!({"name": "Order resolved", "description": "The customer's question about an order was answered",
            "steps": [
                {"name": "Asked about an order", "type": "start", "order": 1},
                {"name": "Order found", "type": "step", "order": 2,
                 "metrics": [{"name": "Agent time saved", "type": "duration", "value": 120}]},
                {"name": "Resolved", "type": "completion", "order": 3,
                 "metrics": [{"name": "Agent time saved", "type": "duration", "value": 240},
                             {"name": "Support cost saved", "type": "currency", "value": 4.5}]}
            ]}),
            true,
        )
        .map_err(|e| e.to_string())?;
        let goal = Goal {
            id: ObjectId::generate(),
            project_id: project.id,
            organisation,
            version: new_version(),
            definition: change.into_definition(),
            created_at: now,
            last_changed: now,
            created_by: project.id,
            last_changed_by: project.id,
        };
        store.create_goal(goal.clone()).await.map_err(failed)?;
        summary.projects.push((project.id, project.name.clone()));
        goals.push(goal);
        projects.insert(project.id, project);
    }

    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut pending = Pending::default();
    let mut progress = Progress::new("loading the demo", Some(options.records));
    let contacts = (options.records / 15).max(20) as usize;
    let span = time::Duration::days(i64::from(options.days.max(1)));
    let mut session_number = 0u64;
    while summary.records + (pending.records.len() as u64) < options.records {
        if interrupt.raised() {
            summary.interrupted = true;
            break;
        }
        session_number += 1;
        let pick: f64 = rng.random();
        let b = if pick < BOTS[0].share {
            0
        } else if pick < BOTS[0].share + BOTS[1].share {
            1
        } else {
            2
        };
        let bot = &BOTS[b];
        let goal = &goals[b];
        let project = summary.projects[b].0;
        let remaining = options.records - summary.records - pending.records.len() as u64;
        let shape = Shape { contacts, n: session_number, most_inputs: remaining.min(8) as usize };
        session(&mut rng, now, span, bot, goal, project, shape, &mut pending);
        if pending.records.len() >= BATCH {
            let before = summary.records;
            flush(store, &projects, &mut pending, &mut summary, false).await?;
            progress.advance(summary.records - before, summary.records);
        }
    }
    let before = summary.records;
    flush(store, &projects, &mut pending, &mut summary, true).await?;
    progress.advance(summary.records - before, summary.records);
    progress.finish();
    Ok(summary)
}

/// What one session may be: of how many contacts it picks one, its number, and the most inputs
/// it may have (the last session of the set fills it to the size asked).
struct Shape {
    contacts: usize,
    n: u64,
    most_inputs: usize,
}

/// One session's rows.
#[allow(clippy::too_many_arguments)]
fn session(
    rng: &mut StdRng,
    now: OffsetDateTime,
    span: time::Duration,
    bot: &Bot,
    goal: &Goal,
    project: ObjectId,
    Shape { contacts, n, most_inputs }: Shape,
    pending: &mut Pending,
) {
    // A day in the range, then an hour in the zone's working day (more in the afternoon).
    let days_back = rng.random_range(0..span.whole_days().max(1));
    let local_hour = 7.0 + 14.0 * (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
    let day_start = (now - time::Duration::days(days_back)).replace_time(time::Time::MIDNIGHT);
    let mut at = day_start + time::Duration::minutes((local_hour * 60.0) as i64 - bot.offset_minutes);
    if at > now {
        at -= time::Duration::days(1);
    }
    let contact = format!("contact-{:05}", skewed(rng, contacts));
    let session = format!("demo-{n}");
    let channel = CHANNELS[skewed(rng, CHANNELS.len())];
    let locale = bot.locales[skewed(rng, bot.locales.len())];
    let inputs = (1 + skewed(rng, 8)).min(most_inputs);
    let escalated = rng.random_bool(0.06);
    let with_goal = rng.random_bool(0.35);
    // A release a third of the way back replaced the one before; one session in four runs the
    // billing flow.
    let snapshot = if days_back * 3 > span.whole_days() { "Release 41" } else { "Release 42" };
    let flow = if rng.random_bool(0.25) { "Billing" } else { "Main" };
    let steps = &goal.definition.steps;
    for i in 0..inputs {
        let input = format!("{session}-{i}");
        let k = skewed(rng, INTENTS.len());
        let understood = rng.random_bool(0.85);
        let reached = with_goal && i < steps.len() && (i == 0 || rng.random_bool(0.75));
        let mut record = json!({
            "projectId": project.to_string(), "contactId": contact, "sessionId": session, "inputId": input,
            "timestamp": iso(at), "inputText": TEXTS[k], "channel": channel, "localeName": locale,
            "flowName": flow, "snapshotName": snapshot, "endpointName": format!("{channel} endpoint"),
            "endpointUrlToken": format!("ep-{channel}"),
            "mode": "TextOnly", "userType": "external", "state": "default", "understood": understood,
            "intent": if understood { Json::from(INTENTS[k]) } else { Json::Null },
            "intentScore": if understood { 0.55 + 0.45 * rng.random::<f64>() } else { 0.2 * rng.random::<f64>() },
            "executionTime": rng.random_range(20..900), "execution": i + 1,
            "inHandoverRequest": escalated && i + 1 == inputs,
        });
        if reached && i + 1 == steps.len() {
            record["completedGoals"] = json!([goal.definition.name]);
        }
        if i + 1 == inputs && rng.random_bool(0.12) {
            record["rating"] = json!(if rng.random_bool(0.7) { 1 } else { -1 });
            record["ratingComment"] = json!(if record["rating"] == 1 { "quick and helpful" } else { "did not help" });
        }
        pending.records.push(record);
        pending.messages.push(json!({
            "projectId": project.to_string(), "contactId": contact, "sessionId": session, "messageId": format!("u-{input}"),
            "inputId": input, "type": "input", "source": "user", "inputText": TEXTS[k], "timestamp": iso(at),
            "channel": channel, "localeName": locale, "flowName": flow, "snapshotName": snapshot,
            "endpointName": format!("{channel} endpoint"), "endpointUrlToken": format!("ep-{channel}"),
        }));
        pending.messages.push(json!({
            "projectId": project.to_string(), "contactId": contact, "sessionId": session, "messageId": format!("b-{input}"),
            "outputId": format!("o-{input}"), "type": "output", "source": "bot",
            "inputText": if understood { "Happy to help with that." } else { "Sorry, I did not get that." },
            "timestamp": iso(at + time::Duration::milliseconds(700)), "channel": channel,
        }));
        let step = if i == 0 { STEPS[0] } else { STEPS[1 + skewed(rng, STEPS.len() - 1)] };
        pending.steps.push(json!({
            "projectId": project.to_string(), "userId": contact, "sessionId": session, "executionId": format!("{input}-x"),
            "entityReferenceId": step.to_lowercase().replace(' ', "-"), "stepLabel": step, "type": "node",
            "timestamp": iso(at + time::Duration::milliseconds(100)),
        }));
        if reached {
            pending.goal_events.push(json!({
                "projectId": project.to_string(), "contactId": contact, "sessionId": session,
                "eventId": format!("g-{input}"), "goalCycleId": format!("cycle-{session}"), "goalId": goal.id.to_string(),
                "stepId": steps[i].id, "timestamp": iso(at + time::Duration::milliseconds(200)), "channel": channel,
                "localeName": locale,
            }));
        }
        at += time::Duration::seconds(rng.random_range(5..180));
    }
    if escalated {
        let assigned = at + time::Duration::seconds(rng.random_range(10..300));
        let resolved = assigned + time::Duration::seconds(rng.random_range(60..1800));
        let team = ["Tier 1", "Billing"][skewed(rng, 2)];
        let mut escalation = json!({
            "projectId": project.to_string(), "sessionId": session, "contactId": contact,
            "escalationId": format!("e-{session}"), "timestamp": iso(at), "channel": channel, "localeName": locale,
            "inboxName": "Support", "teamName": team, "labels": ["demo"],
        });
        let now = parley_core::value::now();
        handed_over(&mut escalation, assigned, resolved, now);
        if resolved < now {
            pending.messages.push(json!({
                "projectId": project.to_string(), "contactId": contact, "sessionId": session,
                "messageId": format!("a-{session}"), "type": "output", "source": "agent",
                "inputText": "Hi, this is Sam from support. Let me look into it.",
                "timestamp": iso(assigned + time::Duration::seconds(20)), "channel": channel,
            }));
        }
        pending.escalations.push(escalation);
    }
}

/// A handover as it stands at `now`: waiting for an agent until `assigned`, with one until
/// `resolved`, then resolved.
fn handed_over(escalation: &mut Json, assigned: OffsetDateTime, resolved: OffsetDateTime, now: OffsetDateTime) {
    let status = if resolved < now {
        escalation["firstResponseAt"] = json!(iso(assigned + time::Duration::seconds(20)));
        escalation["resolvedAt"] = json!(iso(resolved));
        "resolved"
    } else if assigned < now {
        "assigned"
    } else {
        "opened"
    };
    if assigned < now {
        escalation["assignedAt"] = json!(iso(assigned));
    }
    escalation["status"] = json!(status);
}

/// Stores what is pending of each collection (all of it when `all`, else full batches).
async fn flush(
    store: &dyn Store,
    projects: &HashMap<ObjectId, Project>,
    pending: &mut Pending,
    summary: &mut DemoSummary,
    all: bool,
) -> OpsResult<()> {
    summary.records += put::<NewRecord>(store, projects, &mut pending.records, all).await?;
    summary.messages += put::<NewMessage>(store, projects, &mut pending.messages, all).await?;
    summary.steps += put::<NewStep>(store, projects, &mut pending.steps, all).await?;
    summary.goal_events += put::<NewGoalEvent>(store, projects, &mut pending.goal_events, all).await?;
    summary.escalations += put::<NewEscalation>(store, projects, &mut pending.escalations, all).await?;
    Ok(())
}

/// Validates and stores rows of one collection, as the ingest API would.
async fn put<R: NewRow>(
    store: &dyn Store,
    projects: &HashMap<ObjectId, Project>,
    rows: &mut Vec<Json>,
    all: bool,
) -> OpsResult<u64> {
    if rows.is_empty() || (!all && rows.len() < BATCH) {
        return Ok(0);
    }
    let parsed = rows
        .drain(..)
        .map(R::parse)
        .collect::<Result<Vec<R>, _>>()
        .map_err(|e| format!("a generated {} row is not valid: {e}", R::COLLECTION))?;
    let stored = store_rows(store, projects, parsed).await.map_err(|e| format!("cannot store the demo: {e:?}"))?;
    Ok(stored.counts.inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row the generator makes passes the ingest validation, recent sessions (whose
    /// handovers are still open) among them.
    #[test]
    fn every_generated_row_is_valid() {
        let now = parley_core::value::now();
        let project = ObjectId::generate();
        let change = Change::parse(
            json!({"name": "g", "steps": [{"name": "a", "type": "start", "order": 1}, {"name": "b", "type": "step", "order": 2},
                {"name": "c", "type": "completion", "order": 3}]}),
            true,
        )
        .unwrap();
        let goal = Goal {
            id: ObjectId::generate(),
            project_id: project,
            organisation: project,
            version: new_version(),
            definition: change.into_definition(),
            created_at: now,
            last_changed: now,
            created_by: project,
            last_changed_by: project,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut pending = Pending::default();
        for n in 0..3000 {
            let shape = Shape { contacts: 50, n, most_inputs: 8 };
            session(
                &mut rng,
                now,
                time::Duration::days(1),
                &BOTS[(n % 3) as usize],
                &goal,
                project,
                shape,
                &mut pending,
            );
        }
        fn all<R: NewRow>(rows: &[Json]) {
            for row in rows {
                if let Err(e) = R::parse(row.clone()) {
                    panic!("{}: {e}: {row}", R::COLLECTION);
                }
            }
        }
        all::<NewRecord>(&pending.records);
        all::<NewMessage>(&pending.messages);
        all::<NewStep>(&pending.steps);
        all::<NewGoalEvent>(&pending.goal_events);
        all::<NewEscalation>(&pending.escalations);
        assert!(!pending.escalations.is_empty());
        // A handover in each of its states is valid.
        let (assigned, resolved) = (now, now + time::Duration::minutes(10));
        for (at, status) in [
            (now - time::Duration::minutes(1), "opened"),
            (now + time::Duration::minutes(1), "assigned"),
            (now + time::Duration::hours(1), "resolved"),
        ] {
            let mut escalation = pending.escalations[0].clone();
            handed_over(&mut escalation, assigned, resolved, at);
            assert_eq!(escalation["status"], status);
            all::<NewEscalation>(&[escalation]);
        }
    }
}
