//! The `Conversations` and `Sessions` entity sets (docs/contract/conversations.md, "Reading";
//! docs/contract/odata.md): every query option `Analytics` supports, Power BI's paging by
//! `@odata.nextLink`, the older feed's `_id`, tenant isolation and errors. Every answer is compared
//! with what the test sent, sessions with a plain recomputation from the sent rows, on every engine.

use std::collections::{BTreeMap, BTreeSet};

use parley_core::value::format_time;
use parley_core::{MESSAGE_FIELDS, ObjectId, SESSION_FIELDS};
use reqwest::Method;
use serde_json::{Value as Json, json};
use time::Duration;
use time::macros::datetime;

use super::conversation_rows::{
    Data, MESSAGE_COLUMNS, Message, PROJECT_NAME, SESSION_COLUMNS, Session, conversation_data, send_inputs,
    send_messages,
};
use super::{enc, odata_error, spawn_unlimited};
use crate::helpers::{Engine, TestApp, TestUser, assert_csv_cell, on_both_engines, parse_csv, same_json};

on_both_engines!(
    conversations_are_searched_by_their_words,
    conversations_answer_filters_select_order_paging_counts_and_keys,
    sessions_answer_filters_select_order_paging_counts_and_keys,
    apply_groups_and_aggregates_both_sets,
    both_sets_answer_csv,
    power_bi_follows_next_links_through_both_sets,
    the_older_feed_names_the_keys_underscore_id,
    another_organisations_rows_never_appear,
    unknown_properties_and_bad_options_answer_odata_errors,
);

/// A server with two projects of this organisation and one of another organisation, each with
/// messages and records; `home` is what this organisation's admin may read, `away` the other's.
struct World {
    app: TestApp,
    organisation: String,
    project: String,
    second: String,
    home: Data,
    boss: TestUser,
    away_project: String,
    away: Data,
}

impl World {
    async fn build(engine: Engine) -> World {
        let app = spawn_unlimited(engine).await;
        let organisation = app.organisation().await;
        let project = app.create_project().await;
        let second = app.create_project().await;
        let mut home = conversation_data(&project, 14, "", Duration::ZERO);
        // The second project reuses session ids: a session is one per project and session id.
        home.extend(&conversation_data(&second, 4, "b-", Duration::seconds(13)));

        // The other organisation's project holds the very same message and session ids.
        let boss = app.other_organisation().await;
        let created: Json = app
            .with_key(Method::POST, "/new/v2.0/projects", &boss.api_key)
            .header("Accept", "application/json")
            .json(&json!({"name": PROJECT_NAME}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let away_project = created["_id"].as_str().unwrap().to_owned();
        let away = conversation_data(&away_project, 6, "", Duration::ZERO);

        // Messages before records for half of the rows, after them for the rest: the order of
        // writes must not matter.
        let (early, late) = home.messages.split_at(home.messages.len() / 2);
        send_messages(&app, &app.api_key, early).await;
        send_inputs(&app, &app.api_key, &home.inputs).await;
        send_messages(&app, &app.api_key, late).await;
        send_messages(&app, &boss.api_key, &away.messages).await;
        send_inputs(&app, &boss.api_key, &away.inputs).await;
        World { app, organisation, project, second, home, boss, away_project, away }
    }

    fn sessions(&self) -> Vec<Session> {
        self.home.sessions()
    }
}

/// The values of `name` in every row of an answer.
fn values_of(body: &Json, name: &str) -> Vec<Json> {
    body["value"].as_array().unwrap_or_else(|| panic!("no value: {body}")).iter().map(|v| v[name].clone()).collect()
}

fn message_ids(body: &Json) -> Vec<String> {
    values_of(body, "messageId").iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// `(sessionId, projectId)` of every row of an answer.
fn session_keys(body: &Json) -> Vec<(String, String)> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["sessionId"].as_str().unwrap().to_owned(), v["projectId"].as_str().unwrap().to_owned()))
        .collect()
}

/// Asserts that two JSON values are equal, numbers by value, showing both when not.
fn assert_same(actual: &Json, expected: &Json, what: &str) {
    assert!(
        same_json(actual, expected),
        "{what}:\nactual   {}\nexpected {}",
        serde_json::to_string_pretty(actual).unwrap(),
        serde_json::to_string_pretty(expected).unwrap()
    );
}

/// The words of a text as `$search` reads them: runs of letters and digits, in any case.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

async fn conversations_are_searched_by_their_words(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let all = &world.home.messages;
    let has = |m: &Message, word: &str| m.text.is_some_and(|t| words(t).iter().any(|w| w == word));
    let phrase = |m: &Message, phrase: &[&str]| {
        m.text.is_some_and(|t| words(t).windows(phrase.len()).any(|w| w.iter().zip(phrase).all(|(a, b)| a == b)))
    };
    type Check = Box<dyn Fn(&Message) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        ("refund", Box::new(move |m| has(m, "refund"))),
        ("REFUND", Box::new(move |m| has(m, "refund"))),
        ("\"is my\"", Box::new(move |m| phrase(m, &["is", "my"]))),
        ("\"my is\"", Box::new(|_| false)),
        ("parcel OR late", Box::new(move |m| has(m, "parcel") || has(m, "late"))),
        ("help NOT refund", Box::new(move |m| has(m, "help") && !has(m, "refund"))),
        (
            "(parcel OR late) AND NOT \"it s\"",
            Box::new(move |m| (has(m, "parcel") || has(m, "late")) && !phrase(m, &["it", "s"])),
        ),
        ("NOT refund", Box::new(move |m| !has(m, "refund"))),
    ];
    for (search, check) in &cases {
        let path =
            format!("/v2.4/Conversations?$select=messageId&$orderby=messageId&$count=true&$search={}", enc(search));
        let body = app.odata_json(&path).await;
        let mut expected: Vec<String> = all.iter().filter(|m| check(m)).map(|m| m.id.clone()).collect();
        expected.sort();
        assert!(expected.len() < all.len(), "{search} tells nothing apart");
        assert_eq!(message_ids(&body), expected, "$search={search}");
        assert_eq!(body["@odata.count"], expected.len(), "$search={search}");
    }
    // With a filter, and the older feed.
    let body = app
        .odata_json(&format!(
            "/v2.3/Conversations?$select=messageId&$orderby=messageId&$search=refund&$filter={}",
            enc("sessionId ne 's00'")
        ))
        .await;
    let mut expected: Vec<String> =
        all.iter().filter(|m| has(m, "refund") && m.session != "s00").map(|m| m.id.clone()).collect();
    expected.sort();
    assert_eq!(message_ids(&body), expected);
    // After $apply's steps: the search looks at the rows they keep.
    let body = app
        .odata_json(&format!(
            "/v2.4/Conversations?$select=messageId&$search=refund OR parcel&$apply={}",
            enc("filter(sessionId ne 's00')/orderby(messageId desc)/top(12)")
        ))
        .await;
    let mut latest: Vec<&Message> = all.iter().filter(|m| m.session != "s00").collect();
    latest.sort_by(|a, b| b.id.cmp(&a.id));
    let mut expected: Vec<String> =
        latest.iter().take(12).filter(|m| has(m, "refund") || has(m, "parcel")).map(|m| m.id.clone()).collect();
    expected.sort();
    let mut answered = message_ids(&body);
    answered.sort();
    assert!(!expected.is_empty() && expected.len() < 12, "the search tells the twelve apart");
    assert_eq!(answered, expected);
    let grouped = format!("/v2.4/Conversations?$search=refund&$apply={}", enc("groupby((sessionId))"));
    let error = odata_error(app.odata_get(&grouped).await, 501).await;
    assert!(error["message"].as_str().unwrap().contains("groups have no text to search"), "{error}");
    // Refusals: a malformed search (400, located), and a set without a full-text index (501).
    let error = odata_error(app.odata_get("/v2.4/Conversations?$search=%22open").await, 400).await;
    assert_eq!((error["target"].as_str(), error["innererror"]["position"].as_u64()), (Some("$search"), Some(0)));
    let error = odata_error(app.odata_get("/v2.4/Analytics?$search=refund").await, 501).await;
    assert!(error["message"].as_str().unwrap().contains("Conversations has a full-text index"), "{error}");
    world.app.stop().await;
}

async fn conversations_answer_filters_select_order_paging_counts_and_keys(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let all = &world.home.messages;

    type Check = fn(&Message) -> bool;
    let cases: &[(&str, Check)] = &[
        ("sessionId eq 's03'", |m| m.session == "s03"),
        ("channel eq 'whatsapp'", |m| m.channel == Some("whatsapp")),
        ("channel eq null", |m| m.channel.is_none()),
        ("not (channel eq 'voice')", |m| m.channel != Some("voice")),
        ("type eq 'output' and source ne 'bot'", |m| m.kind == "output" && m.source != "bot"),
        ("source in ('user', 'suggestion')", |m| matches!(m.source, "user" | "suggestion")),
        ("type eq 'input' and source eq 'suggestion'", |m| m.kind == "input" && m.source == "suggestion"),
        ("contains(inputText, 'refund')", |m| m.text.is_some_and(|t| t.contains("refund"))),
        ("inputText eq 'it''s late'", |m| m.text == Some("it's late")),
        ("inputText eq null", |m| m.text.is_none()),
        ("startswith(tolower(inputText), 'where')", |m| m.text.is_some_and(|t| t.starts_with("Where"))),
        ("rating gt 2", |m| m.rating.is_some_and(|r| r > 2.0)),
        ("timestamp ge 2024-05-01T12:00:00Z", |m| m.at >= datetime!(2024-05-01 12:00 UTC)),
        ("timestamp lt '2024-05-01T10:00:00.000+01:00'", |m| m.at < datetime!(2024-05-01 09:00 UTC)),
        ("hour(timestamp) eq 9", |m| m.at.hour() == 9),
        ("inputAttachments ne null", |m| m.attachments.is_some()),
        ("contactId eq 'c2' or sessionId eq 's00'", |m| m.contact == "c2" || m.session == "s00"),
        ("contains(messageId, 'b-')", |m| m.id.starts_with("b-")),
    ];
    for (filter, check) in cases {
        let body = app
            .odata_json(&format!("/v2.4/Conversations?$select=messageId&$orderby=messageId&$filter={}", enc(filter)))
            .await;
        let mut expected: Vec<String> = all.iter().filter(|m| check(m)).map(|m| m.id.clone()).collect();
        expected.sort();
        assert!(!expected.is_empty() && expected.len() < all.len(), "{filter} tells nothing apart");
        assert_eq!(message_ids(&body), expected, "$filter={filter}");
    }

    // $select names the properties, in its order, in the rows and the context.
    let session = |m: &&Message| m.project == world.project && m.session == "s02";
    let body = app
        .odata_json(&format!(
            "/v2.4/Conversations?$select={MESSAGE_COLUMNS}&$orderby=timestamp&$filter={}",
            enc(&format!("projectId eq '{}' and sessionId eq 's02'", world.project))
        ))
        .await;
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v2.4/$metadata#Conversations({MESSAGE_COLUMNS})")),
        "{body}"
    );
    let expected: Vec<Json> = all.iter().filter(session).map(|m| m.expected(&world.organisation)).collect();
    assert_eq!(expected.len(), 3);
    assert_same(&body["value"], &json!(expected), "s02's messages");
    for row in body["value"].as_array().unwrap() {
        let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, MESSAGE_COLUMNS.split(',').collect::<Vec<_>>(), "in the order of $select");
    }

    // Several keys, descending, nulls lowest; then $top and $skip on that order.
    let body = app
        .odata_json(&format!(
            "/v2.4/Conversations?$select=messageId&$orderby={}",
            enc("channel desc,rating,timestamp desc")
        ))
        .await;
    let mut ordered: Vec<&Message> = all.iter().collect();
    ordered
        .sort_by(|a, b| b.channel.cmp(&a.channel).then(a.rating.partial_cmp(&b.rating).unwrap()).then(b.at.cmp(&a.at)));
    let ordered: Vec<String> = ordered.iter().map(|m| m.id.clone()).collect();
    assert_eq!(message_ids(&body), ordered);
    let body = app
        .odata_json(&format!(
            "/v2.4/Conversations?$select=messageId&$orderby={}&$top=6&$skip=5",
            enc("channel desc,rating,timestamp desc")
        ))
        .await;
    assert_eq!(message_ids(&body), ordered[5..11]);
    assert!(body.get("@odata.nextLink").is_none(), "$top ends the answer");

    // $count=true counts the whole filtered set; /$count answers it as text.
    let inputs = all.iter().filter(|m| m.kind == "input").count();
    let body =
        app.odata_json(&format!("/v2.4/Conversations?$count=true&$top=2&$filter={}", enc("type eq 'input'"))).await;
    assert_eq!(body["@odata.count"], inputs);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.context", "@odata.count", "value"]);
    let response = app.odata_get(&format!("/v2.4/Conversations/$count?$filter={}", enc("type eq 'input'"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain;charset=utf-8");
    assert_eq!(response.text().await.unwrap(), inputs.to_string());
    let response = app.odata_get("/v2.4/Conversations/$count").await;
    assert_eq!(response.text().await.unwrap(), all.len().to_string(), "every message of both projects");

    // Without $select every property is there; one entity by its key is the same row.
    let chosen = all.iter().find(|m| m.attachments.is_some() && m.project == world.project).unwrap();
    let body =
        app.odata_json(&format!("/v2.4/Conversations?$filter={}", enc(&format!("messageId eq '{}'", chosen.id)))).await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Conversations"), "{body}");
    let row = body["value"][0].clone();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let names: Vec<&str> = MESSAGE_FIELDS.iter().map(|f| f.name).collect();
    assert_eq!(row.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(), names, "in catalogue order");
    let mut expected = chosen.expected(&world.organisation);
    for field in MESSAGE_FIELDS {
        if expected.get(field.name).is_none() {
            expected[field.name] = match field.name {
                "id" | "expiresAt" => row[field.name].clone(),
                _ => Json::Null,
            };
        }
    }
    assert_same(&row, &expected, "every property of a message");
    let id = row["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let entity = app.odata_json(&format!("/v2.4/Conversations('{id}')")).await;
    assert!(entity["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Conversations/$entity"));
    let mut without_context = entity.clone();
    without_context.as_object_mut().unwrap().remove("@odata.context");
    assert_same(&without_context, &row, "the entity by key");
    let entity = app.odata_json(&format!("/v2.4/Conversations('{id}')?$select=messageId,inputText")).await;
    assert_eq!(entity["messageId"], json!(chosen.id));
    assert_eq!(entity["inputText"], json!(chosen.text));
    assert_eq!(entity.as_object().unwrap().len(), 3, "{entity}");
    let error = odata_error(app.odata_get("/v2.4/Conversations('000000000000000000000000')").await, 404).await;
    assert_eq!(error["code"], "1002");
    world.app.stop().await;
}

async fn sessions_answer_filters_select_order_paging_counts_and_keys(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let all = world.sessions();
    assert_eq!(all.len(), 14 + 4);

    type Check = fn(&Session) -> bool;
    let cases: Vec<(String, Check)> = vec![
        ("sessionId eq 's03'".into(), |s| s.id == "s03"),
        ("sessionId in ('s01', 's05', 's99')".into(), |s| matches!(s.id.as_str(), "s01" | "s05")),
        ("channel eq 'web'".into(), |s| s.channel == Some("web")),
        ("channel eq 'webchat'".into(), |s| s.channel == Some("webchat")),
        ("channel eq null".into(), |s| s.channel.is_none()),
        ("not (channel eq 'voice')".into(), |s| s.channel != Some("voice")),
        ("contains(channel, 'web')".into(), |s| s.channel.is_some_and(|c| c.contains("web"))),
        ("messagesCount ge 3".into(), |s| s.messages >= 3),
        ("messagesCount eq 0".into(), |s| s.messages == 0),
        ("inputsCount gt 0 and messagesCount gt 0".into(), |s| s.inputs > 0 && s.messages > 0),
        ("inputsCount eq 0 or messagesCount le 1".into(), |s| s.inputs == 0 || s.messages <= 1),
        ("rating ge 2".into(), |s| s.rating.is_some_and(|r| r >= 2.0)),
        ("rating eq null".into(), |s| s.rating.is_none()),
        ("handoverEscalations eq 2".into(), |s| s.escalations == 2),
        ("userId eq 'c1'".into(), |s| s.contact == "c1"),
        ("contactId ne 'c1'".into(), |s| s.contact != "c1"),
        ("startedAt ge 2024-05-01T12:00:00Z".into(), |s| s.started >= datetime!(2024-05-01 12:00 UTC)),
        ("lastActivityAt lt '2024-05-01T10:00:00.000Z'".into(), |s| s.last < datetime!(2024-05-01 10:00 UTC)),
    ];
    for (filter, check) in &cases {
        let body = app
            .odata_json(&format!(
                "/v2.4/Sessions?$select=sessionId,projectId&$orderby=sessionId,projectId&$filter={}",
                enc(filter)
            ))
            .await;
        let mut expected: Vec<(String, String)> = all.iter().filter(|s| check(s)).map(Session::key).collect();
        expected.sort();
        assert!(!expected.is_empty() && expected.len() < all.len(), "{filter} tells nothing apart");
        assert_eq!(session_keys(&body), expected, "$filter={filter}");
    }
    for (project, filter) in [
        (&world.second, format!("projectId eq '{}'", world.second)),
        (&world.project, format!("projectId eq '{}' and sessionId ge 's04'", world.project)),
    ] {
        let body = app
            .odata_json(&format!(
                "/v2.4/Sessions?$select=sessionId,projectId&$orderby=sessionId&$filter={}",
                enc(&filter)
            ))
            .await;
        let mut expected: Vec<(String, String)> = all
            .iter()
            .filter(|s| &s.project == project && (project == &world.second || s.id.as_str() >= "s04"))
            .map(Session::key)
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{filter}");
        assert_eq!(session_keys(&body), expected, "$filter={filter}");
    }

    // Every property the test can know, for every session, in an order of several keys.
    let order = "messagesCount desc,startedAt";
    let body = app.odata_json(&format!("/v2.4/Sessions?$select={SESSION_COLUMNS}&$orderby={}", enc(order))).await;
    assert!(
        body["@odata.context"].as_str().unwrap().ends_with(&format!("/v2.4/$metadata#Sessions({SESSION_COLUMNS})")),
        "{body}"
    );
    let mut ordered = all.clone();
    ordered.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.started.cmp(&b.started)));
    let expected: Vec<Json> = ordered.iter().map(|s| s.expected(&world.organisation)).collect();
    assert_same(&body["value"], &json!(expected), "every session, derived");

    let body = app
        .odata_json(&format!("/v2.4/Sessions?$select=sessionId,projectId&$orderby={}&$top=4&$skip=3", enc(order)))
        .await;
    assert_eq!(session_keys(&body), ordered[3..7].iter().map(Session::key).collect::<Vec<_>>());
    assert!(body.get("@odata.nextLink").is_none());

    // Counts in both forms.
    let busy = all.iter().filter(|s| s.messages >= 2).count();
    let body =
        app.odata_json(&format!("/v2.4/Sessions?$count=true&$top=1&$filter={}", enc("messagesCount ge 2"))).await;
    assert_eq!(body["@odata.count"], busy);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let response = app.odata_get(&format!("/v2.4/Sessions/$count?$filter={}", enc("messagesCount ge 2"))).await;
    assert_eq!(response.headers()["content-type"], "text/plain;charset=utf-8");
    assert_eq!(response.text().await.unwrap(), busy.to_string());
    let response = app.odata_get("/v2.4/Sessions/$count").await;
    assert_eq!(response.text().await.unwrap(), all.len().to_string());

    // Every property without $select; the entity by key is that row.
    let chosen = all.iter().find(|s| s.project == world.project && s.id == "s05").unwrap();
    let filter = format!("projectId eq '{}' and sessionId eq 's05'", world.project);
    let body = app.odata_json(&format!("/v2.4/Sessions?$filter={}", enc(&filter))).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    let row = body["value"][0].clone();
    let names: Vec<&str> = SESSION_FIELDS.iter().map(|f| f.name).collect();
    assert_eq!(row.as_object().unwrap().keys().map(String::as_str).collect::<Vec<_>>(), names, "in catalogue order");
    let mut expected = chosen.expected(&world.organisation);
    for field in SESSION_FIELDS {
        if expected.get(field.name).is_none() {
            expected[field.name] = match field.name {
                "id" | "expiresAt" => row[field.name].clone(),
                _ => Json::Null,
            };
        }
    }
    assert_same(&row, &expected, "every property of a session");
    let id = row["id"].as_str().unwrap().to_owned();
    let entity = app.odata_json(&format!("/v2.4/Sessions('{id}')")).await;
    assert!(entity["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Sessions/$entity"));
    let mut without_context = entity.clone();
    without_context.as_object_mut().unwrap().remove("@odata.context");
    assert_same(&without_context, &row, "the session by key");
    let entity = app.odata_json(&format!("/v2.4/Sessions('{id}')?$select=sessionId,messagesCount")).await;
    assert_same(
        &entity,
        &json!({"@odata.context": entity["@odata.context"], "sessionId": "s05", "messagesCount": chosen.messages}),
        "a selection of the session by key",
    );
    // The same session id in the other project is another session with its own id.
    let twin = app
        .odata_json(&format!(
            "/v2.4/Sessions?$select=id&$filter={}",
            enc(&format!("projectId eq '{}' and sessionId eq 's01'", world.second))
        ))
        .await;
    let mine = app
        .odata_json(&format!(
            "/v2.4/Sessions?$select=id&$filter={}",
            enc(&format!("projectId eq '{}' and sessionId eq 's01'", world.project))
        ))
        .await;
    assert_eq!(values_of(&twin, "id").len(), 1);
    assert_eq!(values_of(&mine, "id").len(), 1);
    assert_ne!(values_of(&twin, "id"), values_of(&mine, "id"));
    let error = odata_error(app.odata_get("/v2.4/Sessions('000000000000000000000000')").await, 404).await;
    assert_eq!(error["code"], "1002");
    world.app.stop().await;
}

/// Groups of `rows` by `group`, with a value per group folded by `fold`, in the order of the
/// groups (nulls lowest), as `$apply` with the grouping properties as the order answers them.
fn grouped<'a, T, K: Ord, V>(
    rows: impl IntoIterator<Item = &'a T>,
    group: impl Fn(&T) -> K,
    fold: impl Fn(&mut V, &T),
) -> BTreeMap<K, V>
where
    T: 'a,
    V: Default,
{
    let mut groups: BTreeMap<K, V> = BTreeMap::new();
    for row in rows {
        fold(groups.entry(group(row)).or_default(), row);
    }
    groups
}

async fn apply_groups_and_aggregates_both_sets(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let messages = &world.home.messages;
    let sessions = world.sessions();

    let body = app
        .odata_json(&format!("/v2.4/Conversations?$apply={}", enc("groupby((channel),aggregate($count as n))")))
        .await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Conversations(channel,n)"), "{body}");
    let expected: Vec<Json> = grouped(messages, |m| m.channel, |n: &mut usize, _| *n += 1)
        .into_iter()
        .map(|(channel, n)| json!({"channel": channel, "n": n}))
        .collect();
    assert!(expected.len() >= 4, "several channels and none");
    assert_same(&body["value"], &json!(expected), "messages by channel");

    let apply = "groupby((type,source),aggregate($count as n,rating with max as best,rating with sum as total))";
    let body = app.odata_json(&format!("/v2.4/Conversations?$apply={}", enc(apply))).await;
    let expected: Vec<Json> = grouped(
        messages,
        |m| (m.kind, m.source),
        |acc: &mut (usize, Option<f64>, f64), m| {
            acc.0 += 1;
            acc.1 = match (acc.1, m.rating) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            acc.2 += m.rating.unwrap_or(0.0);
        },
    )
    .into_iter()
    .map(|((kind, source), (n, best, total))| {
        // A sum over no values is null, as SQL has it.
        let rated = messages.iter().any(|m| m.kind == kind && m.source == source && m.rating.is_some());
        let total = if rated { json!(total) } else { Json::Null };
        json!({"type": kind, "source": source, "n": n, "best": best, "total": total})
    })
    .collect();
    assert_same(&body["value"], &json!(expected), "messages by type and source");

    let apply =
        "groupby((channel),aggregate(messagesCount with sum as messages,inputsCount with sum as inputs,$count as n))";
    let body = app.odata_json(&format!("/v2.4/Sessions?$apply={}", enc(apply))).await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Sessions(channel,messages,inputs,n)"));
    let expected: Vec<Json> = grouped(
        &sessions,
        |s| s.channel,
        |acc: &mut (usize, usize, usize), s| {
            acc.0 += s.messages;
            acc.1 += s.inputs;
            acc.2 += 1;
        },
    )
    .into_iter()
    .map(|(channel, (messages, inputs, n))| json!({"channel": channel, "messages": messages, "inputs": inputs, "n": n}))
    .collect();
    assert_same(&body["value"], &json!(expected), "sessions by channel");

    // A filter before the grouping, one on its output, an order on an aggregate, and a count.
    let apply = format!(
        "filter(projectId eq '{}' and messagesCount gt 0)/groupby((userId),aggregate($count as n))",
        world.project
    );
    let body = app
        .odata_json(&format!(
            "/v2.4/Sessions?$apply={}&$filter={}&$orderby={}&$count=true",
            enc(&apply),
            enc("n ge 2"),
            enc("n desc")
        ))
        .await;
    let mut expected: Vec<(String, usize)> = grouped(
        sessions.iter().filter(|s| s.project == world.project && s.messages > 0),
        |s| s.contact.clone(),
        |n: &mut usize, _| *n += 1,
    )
    .into_iter()
    .filter(|(_, n)| *n >= 2)
    .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let expected: Vec<Json> = expected.iter().map(|(user, n)| json!({"userId": user, "n": n})).collect();
    assert!(expected.len() >= 2, "{expected:?}");
    assert_same(&body["value"], &json!(expected), "sessions with messages by user");
    assert_eq!(body["@odata.count"], expected.len());

    // One row over everything.
    let apply = "aggregate(messagesCount with sum as total,startedAt with min as first,lastActivityAt with max as last,\
                 handoverEscalations with max as most,sessionId with countdistinct as ids)";
    let body = app.odata_json(&format!("/v2.4/Sessions?$apply={}", enc(apply))).await;
    let ids: BTreeSet<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let expected = json!([{
        "total": sessions.iter().map(|s| s.messages).sum::<usize>(),
        "first": format_time(sessions.iter().map(|s| s.started).min().unwrap()),
        "last": format_time(sessions.iter().map(|s| s.last).max().unwrap()),
        "most": sessions.iter().map(|s| s.escalations).max().unwrap(),
        "ids": ids.len(),
    }]);
    assert_same(&body["value"], &expected, "one aggregate row");

    // `userId` and `contactId` are one value under two names; grouping by both works.
    let body = app
        .odata_json(&format!(
            "/v2.4/Sessions?$apply={}&$filter={}",
            enc("groupby((userId,contactId),aggregate($count as n))"),
            enc("contactId ne 'c0'")
        ))
        .await;
    let expected: Vec<Json> = grouped(&sessions, |s| s.contact.clone(), |n: &mut usize, _| *n += 1)
        .into_iter()
        .filter(|(contact, _)| contact != "c0")
        .map(|(contact, n)| json!({"userId": contact, "contactId": contact, "n": n}))
        .collect();
    assert_same(&body["value"], &json!(expected), "sessions by user and contact");
    world.app.stop().await;
}

async fn both_sets_answer_csv(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let columns = "messageId,type,source,inputText,inputData,rating,timestamp,channel";
    let filter = format!("projectId eq '{}' and sessionId in ('s01', 's03', 's05')", world.project);
    let response = app
        .odata_get(&format!(
            "/v2.4/Conversations?$format=csv&$select={columns}&$orderby=timestamp&$filter={}",
            enc(&filter)
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("\r\n"), "{text:?}");
    let (headers, rows) = parse_csv(&text);
    assert_eq!(headers, columns.split(',').collect::<Vec<_>>());
    let expected: Vec<Json> = world
        .home
        .messages
        .iter()
        .filter(|m| m.project == world.project && matches!(m.session.as_str(), "s01" | "s03" | "s05"))
        .map(|m| m.expected(&world.organisation))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{text}");
    assert!(rows.iter().any(|r| r[3].contains('"') || r[3].contains(',')), "quoting is exercised: {text}");
    for (row, message) in rows.iter().zip(&expected) {
        for (cell, column) in row.iter().zip(&headers) {
            assert_csv_cell(cell, &message[column], column);
        }
    }

    // Asked for by Accept alone, with the sessions' own columns.
    let columns = "sessionId,channel,messagesCount,inputsCount,rating,startedAt";
    let response = app
        .odata_get_as_accepting(
            &format!(
                "/v2.4/Sessions?$select={columns}&$orderby=startedAt&$filter={}",
                enc(&format!("projectId eq '{}'", world.project))
            ),
            "text/csv",
        )
        .await;
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let (headers, rows) = parse_csv(&response.text().await.unwrap());
    assert_eq!(headers, columns.split(',').collect::<Vec<_>>());
    let mut expected: Vec<Session> = world.sessions().into_iter().filter(|s| s.project == world.project).collect();
    expected.sort_by_key(|s| s.started);
    assert_eq!(rows.len(), expected.len());
    for (row, session) in rows.iter().zip(&expected) {
        let session = session.expected(&world.organisation);
        for (cell, column) in row.iter().zip(&headers) {
            assert_csv_cell(cell, &session[column], column);
        }
    }
    world.app.stop().await;
}

impl TestApp {
    /// A GET as the admin accepting only `accept`.
    async fn odata_get_as_accepting(&self, path: &str, accept: &str) -> reqwest::Response {
        let request = self.client.get(self.url(path)).header("apikey", &self.api_key).header("accept", accept);
        request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Follows `@odata.nextLink` verbatim from `first` as Power BI does (the key in the address, its
/// `Accept`, a preferred page size); returns every row and the pages' sizes.
async fn follow(app: &TestApp, first: &str, page_size: usize) -> (Vec<Json>, Vec<usize>) {
    let separator = if first.contains('?') { '&' } else { '?' };
    let mut url = app.url(&format!("{first}{separator}apikey={}", app.api_key));
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let response = app
            .client
            .get(&url)
            .header("accept", "application/json;odata.metadata=minimal")
            .header("prefer", format!("odata.maxpagesize={page_size}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["preference-applied"], format!("odata.maxpagesize={page_size}").as_str());
        let body: Json = response.json().await.unwrap();
        let page = body["value"].as_array().unwrap();
        sizes.push(page.len());
        rows.extend(page.iter().cloned());
        assert!(sizes.len() <= 100, "paging does not end");
        match body.get("@odata.nextLink").and_then(Json::as_str) {
            Some(next) => {
                assert!(next.starts_with(&app.url(&first[..first.find('?').unwrap_or(first.len())])), "{next}");
                assert!(next.contains("$skiptoken="), "by keyset: {next}");
                assert!(!next.contains("$skip="), "never by offset: {next}");
                url = next.to_owned();
            }
            None => return (rows, sizes),
        }
    }
}

/// The page sizes of `total` rows in pages of `page`.
fn pages(total: usize, page: usize) -> Vec<usize> {
    let mut sizes = vec![page; total / page];
    if !total.is_multiple_of(page) || total == 0 {
        sizes.push(total % page);
    }
    sizes
}

async fn power_bi_follows_next_links_through_both_sets(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let messages = &world.home.messages;
    let sessions = world.sessions();

    // The default order, by key: every message once.
    let (rows, sizes) = follow(app, "/v2.4/Conversations?$select=id,messageId", 4).await;
    assert_eq!(sizes, pages(messages.len(), 4));
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in the order of the key");
    let mut seen: Vec<String> = rows.iter().map(|r| r["messageId"].as_str().unwrap().to_owned()).collect();
    seen.sort();
    let mut sent: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    sent.sort();
    assert_eq!(seen, sent, "every message once, no gaps, no repeats");

    // An order on nullable keys, both directions, with a filter and a count: page boundaries fall
    // inside runs of equal values and of nulls.
    let order = enc("channel desc,rating,timestamp desc");
    let filter = enc("type eq 'input' or rating ne null");
    let (rows, sizes) =
        follow(app, &format!("/v2.4/Conversations?$select=messageId&$orderby={order}&$filter={filter}&$count=true"), 3)
            .await;
    let mut expected: Vec<&Message> = messages.iter().filter(|m| m.kind == "input" || m.rating.is_some()).collect();
    expected
        .sort_by(|a, b| b.channel.cmp(&a.channel).then(a.rating.partial_cmp(&b.rating).unwrap()).then(b.at.cmp(&a.at)));
    let expected: Vec<Json> = expected.iter().map(|m| json!({"messageId": m.id})).collect();
    assert_eq!(sizes, pages(expected.len(), 3));
    assert_eq!(rows, expected);

    // $top carries over into the links.
    let (rows, sizes) =
        follow(app, &format!("/v2.4/Conversations?$select=messageId&$orderby={order}&$filter={filter}&$top=7"), 3)
            .await;
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(rows, expected[..7]);

    // Sessions: by key, then by derived values.
    let (rows, sizes) = follow(app, "/v2.4/Sessions?$select=id,sessionId,projectId", 5).await;
    assert_eq!(sizes, pages(sessions.len(), 5));
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["sessionId"].as_str().unwrap().to_owned(), r["projectId"].as_str().unwrap().to_owned()))
        .collect();
    keys.sort();
    let mut all: Vec<(String, String)> = sessions.iter().map(Session::key).collect();
    all.sort();
    assert_eq!(keys, all);
    let distinct: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), sessions.len());

    let order = enc("rating desc,channel,lastActivityAt desc");
    let (rows, sizes) =
        follow(app, &format!("/v2.4/Sessions?$select=sessionId,projectId,rating,channel&$orderby={order}&$skip=2"), 4)
            .await;
    let mut ordered = sessions.clone();
    ordered.sort_by(|a, b| {
        b.rating.partial_cmp(&a.rating).unwrap().then(a.channel.cmp(&b.channel)).then(b.last.cmp(&a.last))
    });
    let expected: Vec<Json> = ordered[2..]
        .iter()
        .map(|s| json!({"sessionId": s.id, "projectId": s.project, "rating": s.rating, "channel": s.channel}))
        .collect();
    assert_eq!(sizes, pages(expected.len(), 4));
    assert_same(&json!(rows), &json!(expected), "sessions by rating, channel and activity, after 2");
    world.app.stop().await;
}

async fn the_older_feed_names_the_keys_underscore_id(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let sessions = world.sessions();
    let order = enc("startedAt,projectId");
    let current = app.odata_json(&format!("/v2.4/Sessions?$select=id,sessionId,messagesCount&$orderby={order}")).await;
    let older = app.odata_json(&format!("/v2.3/Sessions?$select=_id,sessionId,messagesCount&$orderby={order}")).await;
    assert!(
        older["@odata.context"].as_str().unwrap().ends_with("/v2.3/$metadata#Sessions(_id,sessionId,messagesCount)")
    );
    let renamed: Vec<Json> = current["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| json!({"_id": row["id"], "sessionId": row["sessionId"], "messagesCount": row["messagesCount"]}))
        .collect();
    assert_eq!(renamed.len(), sessions.len());
    assert_same(&older["value"], &json!(renamed), "the same sessions under _id");
    let mut by_start = sessions.clone();
    by_start.sort_by_key(|s| s.started);
    assert_eq!(
        values_of(&older, "sessionId"),
        by_start.iter().map(|s| json!(s.id)).collect::<Vec<_>>(),
        "ordered by startedAt"
    );

    // Without $select every row has `_id` and no `id`.
    let full = app.odata_json("/v2.3/Sessions?$top=1").await;
    let row = full["value"][0].as_object().unwrap();
    assert!(row.contains_key("_id") && !row.contains_key("id"), "{full}");
    assert_eq!(row.len(), SESSION_FIELDS.len());

    let id = renamed[3]["_id"].as_str().unwrap().to_owned();
    let body = app
        .odata_json(&format!("/v2.3/Sessions?$select=_id,sessionId&$filter={}", enc(&format!("_id eq '{id}'"))))
        .await;
    assert_eq!(body["value"], json!([{"_id": id, "sessionId": renamed[3]["sessionId"]}]));
    let entity = app.odata_json(&format!("/v2.3/Sessions('{id}')?$select=_id,messagesCount")).await;
    assert!(entity["@odata.context"].as_str().unwrap().ends_with("/v2.3/$metadata#Sessions/$entity"));
    assert_eq!(entity["_id"], json!(id));
    assert_eq!(entity["messagesCount"], renamed[3]["messagesCount"]);
    let error = odata_error(app.odata_get("/v2.3/Sessions?$select=id").await, 400).await;
    assert_eq!(error["target"], "$select");
    let error =
        odata_error(app.odata_get(&format!("/v2.3/Sessions?$filter={}", enc(&format!("id eq '{id}'")))).await, 400)
            .await;
    assert_eq!(error["target"], "$filter");

    // Paging under the older name: its links stay in the older feed.
    let (rows, sizes) = follow(app, "/v2.3/Sessions?$select=_id", 7).await;
    assert_eq!(sizes, pages(sessions.len(), 7));
    let mut ids: Vec<Json> = rows.iter().map(|r| r["_id"].clone()).collect();
    let mut expected: Vec<Json> = renamed.iter().map(|r| r["_id"].clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    expected.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(ids, expected);

    // Conversations too.
    let message = world.home.messages.iter().find(|m| m.id == "s06-2" && m.project == world.project).unwrap();
    let current = app
        .odata_json(&format!(
            "/v2.4/Conversations?$select=id&$filter={}",
            enc(&format!("projectId eq '{}' and messageId eq 's06-2'", world.project))
        ))
        .await;
    let id = current["value"][0]["id"].as_str().unwrap().to_owned();
    let older = app.odata_json(&format!("/v2.3/Conversations('{id}')?$select=_id,messageId,inputText,channel")).await;
    assert_same(
        &older,
        &json!({"@odata.context": older["@odata.context"], "_id": id, "messageId": message.id,
                "inputText": message.text, "channel": message.channel}),
        "a message under _id",
    );
    world.app.stop().await;
}

async fn another_organisations_rows_never_appear(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    let away = &world.away_project;

    // This organisation's admin: exactly the rows of its own two projects.
    let body = app.odata_json("/v2.4/Conversations?$select=projectId,messageId&$orderby=projectId,messageId").await;
    let mut expected: Vec<Json> =
        world.home.messages.iter().map(|m| json!({"projectId": m.project, "messageId": m.id})).collect();
    expected
        .sort_by_key(|v| (v["projectId"].as_str().unwrap().to_owned(), v["messageId"].as_str().unwrap().to_owned()));
    assert_eq!(body["value"], json!(expected));
    let body = app.odata_json("/v2.4/Sessions?$select=projectId,sessionId&$orderby=projectId,sessionId").await;
    let mut expected: Vec<Json> =
        world.sessions().iter().map(|s| json!({"projectId": s.project, "sessionId": s.id})).collect();
    expected
        .sort_by_key(|v| (v["projectId"].as_str().unwrap().to_owned(), v["sessionId"].as_str().unwrap().to_owned()));
    assert_eq!(body["value"], json!(expected));
    for set in ["Conversations", "Sessions"] {
        let theirs = enc(&format!("projectId eq '{away}'"));
        let body = app.odata_json(&format!("/v2.4/{set}?$filter={theirs}&$count=true")).await;
        assert_eq!((body["value"].clone(), body["@odata.count"].clone()), (json!([]), json!(0)), "{set}");
        let response = app.odata_get(&format!("/v2.4/{set}/$count?$filter={theirs}")).await;
        assert_eq!(response.text().await.unwrap(), "0", "{set}");
        let body =
            app.odata_json(&format!("/v2.4/{set}?$apply={}", enc("groupby((projectId),aggregate($count as n))"))).await;
        let projects: Vec<Json> = values_of(&body, "projectId");
        let mut mine = vec![json!(world.project), json!(world.second)];
        mine.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        assert_eq!(projects, mine, "{set}: {body}");
    }

    // The other organisation's admin: exactly theirs, though the ids are the same.
    let their = |path: String| {
        let key = world.boss.api_key.clone();
        async move {
            let response = app.odata_get_as(&key, &path).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Json>().await.unwrap()
        }
    };
    let body = their("/v2.4/Conversations?$select=id,projectId,messageId,inputText&$orderby=messageId".into()).await;
    let mut expected: Vec<&Message> = world.away.messages.iter().collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_same(
        &json!(values_of(&body, "messageId")),
        &json!(expected.iter().map(|m| m.id.clone()).collect::<Vec<_>>()),
        "their messages",
    );
    assert!(values_of(&body, "projectId").iter().all(|p| p == &json!(away)), "{body}");
    let their_message = body["value"][0]["id"].as_str().unwrap().to_owned();
    let body = their(format!("/v2.4/Sessions?$select={SESSION_COLUMNS}&$orderby=sessionId")).await;
    let boss_organisation = world.boss.organisation.clone();
    let expected: Vec<Json> = world.away.sessions().iter().map(|s| s.expected(&boss_organisation)).collect();
    assert_same(&body["value"], &json!(expected), "their sessions");
    let their_session =
        their("/v2.4/Sessions?$select=id&$top=1".into()).await["value"][0]["id"].as_str().unwrap().to_owned();

    // Their entities by key are absent for this organisation, exactly like ids that never were.
    for path in [
        format!("/v2.4/Conversations('{their_message}')"),
        format!("/v2.4/Sessions('{their_session}')"),
        format!("/v2.3/Sessions('{their_session}')"),
    ] {
        let error = odata_error(app.odata_get(&path).await, 404).await;
        assert_eq!(error["code"], "1002", "{path}");
    }
    let filter = enc(&format!("id eq '{their_session}'"));
    assert_eq!(app.odata_json(&format!("/v2.4/Sessions?$filter={filter}")).await["value"], json!([]));

    // A reader of one project sees that project's rows only; a reader of none sees nothing.
    let organisation = ObjectId::parse(&world.organisation).unwrap();
    let reader = app.user_in(organisation, "odata").await;
    app.add_member(&world.second, &reader.id, &["basic"]).await;
    let body: Json = app
        .odata_get_as(&reader.api_key, "/v2.4/Sessions?$select=projectId,sessionId&$count=true")
        .await
        .json()
        .await
        .unwrap();
    let second_sessions = world.sessions().iter().filter(|s| s.project == world.second).count();
    assert_eq!(body["@odata.count"], second_sessions);
    assert!(values_of(&body, "projectId").iter().all(|p| p == &json!(world.second)), "{body}");
    let response = app.odata_get_as(&reader.api_key, "/v2.4/Conversations/$count").await;
    let second_messages = world.home.messages.iter().filter(|m| m.project == world.second).count();
    assert_eq!(response.text().await.unwrap(), second_messages.to_string());
    let outsider = app.user_in(organisation, "odata").await;
    for path in ["/v2.4/Conversations/$count", "/v2.4/Sessions/$count"] {
        assert_eq!(app.odata_get_as(&outsider.api_key, path).await.text().await.unwrap(), "0", "{path}");
    }
    world.app.stop().await;
}

async fn unknown_properties_and_bad_options_answer_odata_errors(engine: Engine) {
    let mut world = World::build(engine).await;
    let app = &world.app;
    // (set, option, its value, where in it the fault is, part of the message)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("Sessions", "$filter", "nope eq 1", "nope", "'nope' is not a property of Session"),
        ("Sessions", "$filter", "sessionId eq 's01' and nope gt 1", "nope", "'nope' is not a property"),
        // A property of the other sets is not one of Sessions.
        ("Sessions", "$filter", "intent eq 'x'", "intent", "'intent' is not a property"),
        ("Sessions", "$filter", "inputText eq 'x'", "inputText", "'inputText' is not a property"),
        ("Sessions", "$select", "sessionId,timestamp", "timestamp", "'timestamp' is not a property"),
        ("Sessions", "$orderby", "messagesCount desc,nope", "nope", "'nope' is not a property"),
        ("Sessions", "$apply", "groupby((nope))", "nope", "'nope' is not a property"),
        ("Sessions", "$filter", "messagesCount eq 'many'", "eq", "cannot compare"),
        ("Conversations", "$filter", "messagesCount gt 1", "messagesCount", "'messagesCount' is not a property"),
        ("Conversations", "$orderby", "inputData", "inputData", "cannot order by"),
    ];
    for (set, option, value, fault, message) in cases {
        let position = value.find(fault).unwrap();
        let path = format!("/v2.4/{set}?{option}={}", enc(value));
        let error = odata_error(app.odata_get(&path).await, 400).await;
        assert_eq!(error["code"], "1005", "{option}={value}: {error}");
        assert_eq!(error["target"], *option, "{option}={value}: {error}");
        assert_eq!(error["innererror"]["position"], position, "{option}={value}: {error}");
        let text = error["message"].as_str().unwrap();
        assert!(text.contains(message) && text.contains(&format!("position {position}")), "{option}={value}: {text}");
    }
    for path in ["/v2.4/Sessions/$count?$filter=nope%20eq%201", "/v2.3/Sessions?$filter=nope%20eq%201"] {
        let error = odata_error(app.odata_get(path).await, 400).await;
        assert_eq!((error["code"].clone(), error["target"].clone()), (json!("1005"), json!("$filter")), "{path}");
    }
    for path in ["/v2.4/sessions", "/v2.4/Session", "/v2.4/Sessions/nope", "/v2.4/Conversations(x"] {
        let error = odata_error(app.odata_get(path).await, 404).await;
        assert_eq!(error["code"], "1002", "{path}");
    }
    let response =
        app.anonymous(Method::POST, "/v2.4/Sessions").header("apikey", &app.api_key).body("{}").send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(odata_error(response, 405).await["code"], "1013");
    let error = odata_error(app.anonymous(Method::GET, "/v2.4/Sessions").send().await.unwrap(), 401).await;
    assert_eq!(error["code"], "401");
    world.app.stop().await;
}
