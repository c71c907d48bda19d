//! `GET /new/v2.0/analytics` and `GET /new/v2.0/analytics/{recordId}` (docs/contract/rest.md §3).

use std::cmp::Ordering;

use serde_json::{Value as Json, json};

use crate::helpers::{Engine, TestApp, assert_invalid, assert_problem, on_both_engines, record, spawn_app_on};

const PATH: &str = "/new/v2.0/analytics";

/// Query-string pairs.
type Query<'a> = Vec<(&'a str, &'a str)>;

/// `2024-05-01` plus `minutes`, in the canonical wire form.
fn at(minutes: u32) -> String {
    format!("2024-05-01T{:02}:{:02}:00.000Z", minutes / 60, minutes % 60)
}

fn timed(project: &str, contact: &str, session: &str, input: &str, minutes: u32) -> Json {
    let mut r = record(project, contact, session, input);
    r["timestamp"] = json!(at(minutes));
    r
}

fn input_ids(page: &Json) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["inputId"].as_str().expect("an inputId").to_owned())
        .collect()
}

fn cursor(page: &Json, name: &str) -> Option<String> {
    match &page[name] {
        Json::Null => None,
        Json::String(text) => Some(text.clone()),
        other => panic!("{name} is {other}"),
    }
}

/// `count` records `r00`, `r01`, … one minute apart, ingested in shuffled order.
async fn numbered(app: &TestApp, project: &str, count: u32) -> Vec<String> {
    let mut batch: Vec<Json> = (0..count).map(|i| timed(project, "c", "s", &format!("r{i:02}"), i)).collect();
    batch.reverse();
    batch.rotate_left(count as usize / 3);
    app.ingest_new(&batch).await;
    (0..count).map(|i| format!("r{i:02}")).collect()
}

async fn the_json_answer_has_the_list_shape(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let expected = numbered(&app, &project, 3).await;
    let page = app.list(&project, &[]).await;
    let mut keys: Vec<&str> = page.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["items", "nextCursor", "previousCursor", "total"]);
    assert_eq!(page["total"], 3);
    assert_eq!(page["nextCursor"], Json::Null);
    assert_eq!(page["previousCursor"], Json::Null);
    assert_eq!(input_ids(&page), expected, "the default order is by timestamp");
}

async fn filters_narrow_the_list(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let other = app.create_project().await;
    app.ingest_new(&[
        timed(&project, "a", "s1", "i0", 0),
        timed(&project, "a", "s2", "i1", 10),
        timed(&project, "b", "s1", "i2", 20),
        timed(&project, "b", "s3", "i3", 30),
        timed(&project, "a", "s1", "i4", 40),
        timed(&other, "a", "s1", "o0", 5),
    ])
    .await;
    let (t10, t30) = (at(10), at(30));
    let cases: Vec<(Query, Vec<&str>)> = vec![
        (vec![], vec!["i0", "i1", "i2", "i3", "i4"]),
        (vec![("contactId", "a")], vec!["i0", "i1", "i4"]),
        (vec![("sessionId", "s1")], vec!["i0", "i2", "i4"]),
        (vec![("contactId", "a"), ("sessionId", "s1")], vec!["i0", "i4"]),
        (vec![("contactId", "nobody")], vec![]),
        (vec![("from", &t10)], vec!["i1", "i2", "i3", "i4"]),
        (vec![("to", &t30)], vec!["i0", "i1", "i2"]),
        (vec![("from", &t10), ("to", &t30)], vec!["i1", "i2"]),
        (vec![("from", "2024-05-01T02:10:00+02:00")], vec!["i1", "i2", "i3", "i4"]),
        (vec![("contactId", "b"), ("from", &t10), ("to", &t30)], vec!["i2"]),
    ];
    for (query, expected) in cases {
        let page = app.list(&project, &query).await;
        assert_eq!(input_ids(&page), expected, "{query:?}");
        assert_eq!(page["total"], expected.len(), "{query:?}");
    }
}

/// The intents of the sort fixture, by inputId; `None` is a record without intent.
const INTENTS: [(&str, Option<&str>); 14] = [
    ("n00", Some("b")),
    ("n01", None),
    ("n02", Some("c")),
    ("n03", Some("a")),
    ("n04", None),
    ("n05", Some("b")),
    ("n06", Some("a")),
    ("n07", None),
    ("n08", Some("d")),
    ("n09", Some("b")),
    ("n10", None),
    ("n11", Some("c")),
    ("n12", Some("a")),
    ("n13", Some("b")),
];

/// Ingests the sort fixture and returns the expected order of `intent:desc` (nulls last, then
/// by id) and of `intent:asc` (nulls first, then by id), as inputIds.
async fn intent_fixture(app: &TestApp, project: &str) -> (Vec<String>, Vec<String>) {
    let batch: Vec<Json> = INTENTS
        .iter()
        .map(|(input, intent)| {
            let mut r = record(project, "c", "s", input);
            r["intent"] = intent.map_or(Json::Null, Json::from);
            r
        })
        .collect();
    app.ingest_new(&batch).await;
    let stored = app.records(project, None).await;
    let key = |r: &Json| (r["intent"].as_str().map(str::to_owned), r["id"].as_str().expect("an id").to_owned());
    let mut rows: Vec<(Option<String>, String, String)> = stored
        .iter()
        .map(|r| {
            let (intent, id) = key(r);
            (intent, id, r["inputId"].as_str().expect("an inputId").to_owned())
        })
        .collect();
    rows.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => y.cmp(x).then_with(|| a.1.cmp(&b.1)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    });
    let descending: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let ascending: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    (descending, ascending)
}

async fn sort_orders_by_the_named_field_with_nulls_lowest(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let (descending, ascending) = intent_fixture(&app, &project).await;
    assert_eq!(descending[0], "n08");
    assert_eq!(ascending[4..7].iter().filter(|i| ["n03", "n06", "n12"].contains(&i.as_str())).count(), 3);
    let page = app.list(&project, &[("sort", "intent:desc"), ("limit", "100")]).await;
    assert_eq!(input_ids(&page), descending);
    let intents: Vec<Json> = page["items"].as_array().expect("items").iter().map(|r| r["intent"].clone()).collect();
    assert_eq!(intents[0], "d");
    assert_eq!(intents[intents.len() - 4..], [Json::Null, Json::Null, Json::Null, Json::Null]);
    let page = app.list(&project, &[("sort", "intent:asc"), ("limit", "100")]).await;
    assert_eq!(input_ids(&page), ascending);
    let page = app.list(&project, &[("sort", "intent"), ("limit", "100")]).await;
    assert_eq!(input_ids(&page), ascending, "the direction defaults to ascending");
}

async fn sort_takes_several_keys(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    app.ingest_new(&[
        timed(&project, "b", "s", "i0", 0),
        timed(&project, "a", "s", "i1", 1),
        timed(&project, "b", "s", "i2", 2),
        timed(&project, "a", "s", "i3", 3),
    ])
    .await;
    let page = app.list(&project, &[("sort", "contactId:asc,timestamp:desc")]).await;
    assert_eq!(input_ids(&page), ["i3", "i1", "i2", "i0"]);
    let page = app.list(&project, &[("sort", "timestamp:desc")]).await;
    assert_eq!(input_ids(&page), ["i3", "i2", "i1", "i0"]);
}

async fn limit_and_skip_page_through_the_list(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let all = numbered(&app, &project, 30).await;

    let page = app.list(&project, &[]).await;
    assert_eq!(input_ids(&page), all[..25], "the default limit is 25");
    assert_eq!(page["total"], 30);

    let page = app.list(&project, &[("limit", "3")]).await;
    assert_eq!(input_ids(&page), all[..3]);
    assert!(cursor(&page, "nextCursor").is_some());
    assert_eq!(cursor(&page, "previousCursor"), None);

    let page = app.list(&project, &[("limit", "3"), ("skip", "3")]).await;
    assert_eq!(input_ids(&page), all[3..6]);
    assert_eq!(page["total"], 30);
    assert!(cursor(&page, "previousCursor").is_some());
    assert!(cursor(&page, "nextCursor").is_some());

    let page = app.list(&project, &[("limit", "5"), ("skip", "27")]).await;
    assert_eq!(input_ids(&page), all[27..]);
    assert_eq!(cursor(&page, "nextCursor"), None);

    let page = app.list(&project, &[("skip", "40")]).await;
    assert_eq!(input_ids(&page), Vec::<String>::new());
    assert_eq!(page["total"], 30);

    let page = app.list(&project, &[("limit", "100")]).await;
    assert_eq!(input_ids(&page), all);
    assert_eq!(cursor(&page, "nextCursor"), None);
}

/// Follows `nextCursor` from the first page to the last, then `previousCursor` back to the
/// first, and checks both walks against `expected`.
async fn walk(app: &TestApp, project: &str, sort: &str, limit: usize, expected: &[String]) {
    let limit_text = limit.to_string();
    let mut forward: Vec<Vec<String>> = Vec::new();
    let mut page = app.list(project, &[("sort", sort), ("limit", &limit_text)]).await;
    assert_eq!(cursor(&page, "previousCursor"), None, "the first page has nothing before it");
    loop {
        assert_eq!(page["total"], expected.len());
        forward.push(input_ids(&page));
        match cursor(&page, "nextCursor") {
            Some(next) => page = app.list(project, &[("sort", sort), ("limit", &limit_text), ("next", &next)]).await,
            None => break,
        }
        assert!(forward.len() <= expected.len(), "the walk does not end");
    }
    let pages = expected.len().div_ceil(limit);
    assert_eq!(forward.len(), pages, "pages of {sort}: {forward:?}");
    assert!(forward[..pages - 1].iter().all(|p| p.len() == limit), "{forward:?}");
    assert_eq!(forward.concat(), expected, "every record exactly once, in order ({sort})");

    let mut backward: Vec<Vec<String>> = vec![input_ids(&page)];
    while let Some(previous) = cursor(&page, "previousCursor") {
        page = app.list(project, &[("sort", sort), ("limit", &limit_text), ("previous", &previous)]).await;
        backward.push(input_ids(&page));
        assert!(backward.len() <= expected.len(), "the walk back does not end");
    }
    backward.reverse();
    assert_eq!(backward.concat(), expected, "walking back ({sort})");
    assert_eq!(backward, forward, "walking back gives the same pages ({sort})");
}

async fn cursors_page_forward_and_back_over_every_record(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let all = numbered(&app, &project, 60).await;
    walk(&app, &project, "timestamp:asc", 25, &all).await;
    let reversed: Vec<String> = all.iter().rev().cloned().collect();
    walk(&app, &project, "timestamp:desc", 25, &reversed).await;
}

async fn cursors_page_over_null_sort_values(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let (descending, ascending) = intent_fixture(&app, &project).await;
    for limit in [1, 3, 4, 5] {
        walk(&app, &project, "intent:desc", limit, &descending).await;
        walk(&app, &project, "intent:asc", limit, &ascending).await;
    }
}

async fn cursors_keep_the_filters(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut batch = Vec::new();
    for i in 0..12 {
        batch.push(timed(&project, if i % 3 == 0 { "a" } else { "b" }, "s", &format!("i{i:02}"), i));
    }
    app.ingest_new(&batch).await;
    let first = app.list(&project, &[("contactId", "b"), ("limit", "5")]).await;
    assert_eq!(input_ids(&first), ["i01", "i02", "i04", "i05", "i07"]);
    assert_eq!(first["total"], 8);
    let next = cursor(&first, "nextCursor").expect("a next cursor");
    let second = app.list(&project, &[("contactId", "b"), ("limit", "5"), ("next", &next)]).await;
    assert_eq!(input_ids(&second), ["i08", "i10", "i11"]);
    assert_eq!(cursor(&second, "nextCursor"), None);
}

async fn bad_arguments_are_refused(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    numbered(&app, &project, 5).await;
    let first = app.list(&project, &[("limit", "2")]).await;
    let next = cursor(&first, "nextCursor").expect("a next cursor");
    let cases: Vec<(Query, &str)> = vec![
        (vec![("skip", "2"), ("next", &next)], "skip"),
        (vec![("skip", "2"), ("previous", &next)], "skip"),
        (vec![("next", &next), ("previous", &next)], "next"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("limit", "ten")], "limit"),
        (vec![("limit", "-1")], "limit"),
        (vec![("skip", "-1")], "skip"),
        (vec![("sort", "nonsense:asc")], "sort"),
        (vec![("sort", "intent:up")], "sort"),
        (vec![("from", "yesterday")], "from"),
        (vec![("to", "2024-05-01T25:00Z")], "to"),
        (vec![("to", "1714564800000")], "to"),
        (vec![("next", "not a cursor")], "next"),
        (vec![("sort", "intent:desc"), ("next", &next)], "next"),
        (vec![("previous", "bm90IGEgY3Vyc29y")], "previous"),
    ];
    for (query, field) in cases {
        let mut pairs = vec![("projectId", project.as_str())];
        pairs.extend_from_slice(&query);
        let response = app.get(PATH).query(&pairs).send().await.expect("the request is answered");
        assert_invalid(response, 1005, PATH, field).await;
    }

    let response = app.get(PATH).send().await.expect("the request is answered");
    assert_invalid(response, 1000, PATH, "projectId").await;
    let response = app.get(PATH).query(&[("contactId", "c")]).send().await.expect("the request is answered");
    assert_invalid(response, 1000, PATH, "projectId").await;
    let response = app.get(PATH).query(&[("projectId", "nope")]).send().await.expect("the request is answered");
    assert_invalid(response, 1005, PATH, "projectId").await;
}

async fn unknown_projects_and_records_are_not_found(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    numbered(&app, &project, 1).await;
    let response = app
        .get(PATH)
        .query(&[("projectId", "5f0c6bc4ad4f8b0011b2e0e1")])
        .send()
        .await
        .expect("the request is answered");
    assert_problem(response, 404, 1002, PATH).await;
    for id in ["5f0c6bc4ad4f8b0011b2e0e1", "not-an-id"] {
        let path = format!("{PATH}/{id}");
        assert_problem(app.get(&path).send().await.expect("the request is answered"), 404, 1002, &path).await;
    }
}

on_both_engines!(
    the_json_answer_has_the_list_shape,
    filters_narrow_the_list,
    sort_orders_by_the_named_field_with_nulls_lowest,
    sort_takes_several_keys,
    limit_and_skip_page_through_the_list,
    cursors_page_forward_and_back_over_every_record,
    cursors_page_over_null_sort_values,
    cursors_keep_the_filters,
    bad_arguments_are_refused,
    unknown_projects_and_records_are_not_found,
    csv_pages_through_everything_by_its_link_header,
);

/// The next or previous address in a `Link` header.
fn linked(link: Option<&str>, rel: &str) -> Option<String> {
    link?.split(", ").find(|part| part.ends_with(&format!("; rel=\"{rel}\""))).map(|part| {
        let href = part.split(';').next().unwrap();
        href.trim_start_matches('<').trim_end_matches('>').to_owned()
    })
}

async fn csv_pages_through_everything_by_its_link_header(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut expected = numbered(&app, &project, 11).await;
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some(format!("/new/v2.0/analytics?projectId={project}&sort=inputId:asc&limit=4"));
    let mut last_page = String::new();
    let mut pages = 0;
    while let Some(path) = next {
        let response = app.get_accepting(&path, "text/csv").await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(crate::helpers::header(&response, "x-total-count").as_deref(), Some("11"));
        let link = crate::helpers::header(&response, "link");
        assert!(link.as_deref().is_none_or(|l| !l.contains(&app.api_key)), "no link carries a secret");
        next = linked(link.as_deref(), "next");
        let csv = response.text().await.unwrap();
        let mut rows = csv.lines();
        let columns: Vec<&str> = rows.next().unwrap().split(',').collect();
        let input = columns.iter().position(|c| *c == "inputId").unwrap();
        seen.extend(rows.map(|row| row.split(',').nth(input).unwrap().to_owned()));
        last_page = path;
        pages += 1;
    }
    assert_eq!((pages, &seen), (3, &expected), "every record once, in order, over three pages");
    // Back from the last page.
    let response = app.get_accepting(&last_page, "text/csv").await;
    let link = crate::helpers::header(&response, "link");
    let previous = linked(link.as_deref(), "previous").expect("the last page has a previous one");
    let csv = app.get_accepting(&previous, "text/csv").await.text().await.unwrap();
    expected.truncate(8);
    assert!(csv.contains(&expected[7]) && !csv.contains(&expected[3]), "{csv}");

    // The small collections page by offset, with the same links.
    app.create_project().await;
    let response = app.get_accepting("/new/v2.0/projects?limit=1", "text/csv").await;
    let link = crate::helpers::header(&response, "link");
    assert_eq!(linked(link.as_deref(), "next").as_deref(), Some("/new/v2.0/projects?limit=1&skip=1"));
    assert_eq!(linked(link.as_deref(), "previous"), None);
    let response = app.get_accepting("/new/v2.0/projects?limit=1&skip=1", "text/csv").await;
    let link = crate::helpers::header(&response, "link");
    assert_eq!(linked(link.as_deref(), "previous").as_deref(), Some("/new/v2.0/projects?limit=1&skip=0"));
    assert_eq!(crate::helpers::header(&response, "x-total-count").as_deref(), Some("2"));
}
