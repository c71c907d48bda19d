//! The expression language beyond comparisons (OData 4.01 URL conventions, section 5.1.1):
//! arithmetic, durations, text, date and number functions, operators in any case, and system
//! options without their `$`. Every expression is checked on each engine against what the test
//! computes from the rows it wrote, nulls, empty text, non-ASCII text and overflow included.

use parley_core::value::format_time;
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{enc, numbered_record, odata_error, spawn_unlimited};
use crate::helpers::{Engine, TestApp, on_both_engines};

on_both_engines!(
    apply_compute_feeds_the_grouping_the_aggregates_and_the_steps,
    apply_concat_answers_each_sequence_in_turn,
    apply_steps_rank_skip_and_filter_rows,
    computed_properties_are_answered_filtered_ordered_and_paged,
    every_expression_selects_the_rows_the_test_computes,
    a_failing_computation_is_a_clear_400_and_unimplemented_odata_a_501,
    system_options_work_without_their_dollar,
);

const BASE: OffsetDateTime = datetime!(2024-05-01 00:00 UTC);
const TEXTS: [Option<&str>; 6] =
    [Some("refund please"), Some(""), Some("  padded  "), Some("Grüße"), None, Some("it's late")];

/// One record as the test wrote it.
#[derive(Debug, Clone)]
struct Row {
    n: usize,
    intent: Option<&'static str>,
    channel: &'static str,
    text: Option<&'static str>,
    score: Option<f64>,
    rating: Option<f64>,
    escalations: i64,
    timestamp: OffsetDateTime,
    goals: Option<&'static [&'static str]>,
}

fn rows() -> Vec<Row> {
    (0..36)
        .map(|n| Row {
            n,
            intent: [Some("refund"), Some("greet"), None, Some("bye")][n % 4],
            channel: ["web", "voice", "whatsapp"][n % 3],
            text: TEXTS[n % 6],
            score: if n % 5 == 4 { None } else { Some((n % 10) as f64 / 10.0) },
            rating: if n % 7 == 3 { None } else { Some((n % 5) as f64 * 0.75 - 1.5) },
            escalations: (n % 4) as i64,
            // 0 h 0 min 0.000 s, then 7 h 1 min 0.125 s later each time: crosses days and
            // fractions of a second.
            timestamp: BASE + Duration::milliseconds(n as i64 * (7 * 3_600_000 + 60_000 + 125)),
            goals: [None, Some(&[][..]), Some(&["buy"][..]), Some(&["buy", "book"][..]), Some(&["sign-up"][..])][n % 5],
        })
        .collect()
}

async fn seeded(engine: Engine) -> (TestApp, String, Vec<Row>) {
    let app = spawn_unlimited(engine).await;
    let project = app.create_project().await;
    let all = rows();
    let records: Vec<Json> = all
        .iter()
        .map(|r| {
            numbered_record(
                &project,
                r.n,
                json!({
                    "intent": r.intent,
                    "channel": r.channel,
                    "inputText": r.text,
                    "intentScore": r.score,
                    "rating": r.rating,
                    "handoverEscalations": r.escalations,
                    "understood": r.n % 2 == 0,
                    "trackedGoals": r.goals,
                    "timestamp": format_time(r.timestamp),
                }),
            )
        })
        .collect();
    app.ingest_new(&records).await;
    (app, project, all)
}

/// Every row of an answer, read two a page by following `@odata.nextLink`, and the first
/// page's `@odata.count`.
async fn two_a_page(app: &TestApp, first: String) -> (Vec<Json>, Option<u64>) {
    let (mut rows, mut count, mut next) = (Vec::new(), None, Some(first));
    // Links start with the node's public address; the path is what the test sends on.
    let base = app.url("");
    while let Some(path) = next.take() {
        let request = app.client.get(app.url(&path)).header("apikey", &app.api_key);
        let response = request.header("prefer", "odata.maxpagesize=2").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Json = response.json().await.unwrap();
        count = count.or(body["@odata.count"].as_u64());
        rows.extend(body["value"].as_array().unwrap().iter().cloned());
        next = body["@odata.nextLink"].as_str().map(|link| link.strip_prefix(&base).unwrap_or(link).to_owned());
    }
    (rows, count)
}

fn input_ids(body: &Json) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|v| v["inputId"].as_str().unwrap().to_owned()).collect()
}

/// The characters of `text` from `start` on, at most `length` of them.
fn chars(text: &str, start: usize, length: usize) -> String {
    text.chars().skip(start).take(length).collect()
}

async fn every_expression_selects_the_rows_the_test_computes(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let since_base = |r: &Row| (r.timestamp - BASE).whole_milliseconds() as i64;
    type Check = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        // Whole numbers: exact, `div` truncates, `mod` keeps the sign, `mul` before `add`.
        ("handoverEscalations add 1 mul 2 eq 3", Box::new(|r| r.escalations + 2 == 3)),
        ("handoverEscalations mod 2 eq 1", Box::new(|r| r.escalations % 2 == 1)),
        ("handoverEscalations div 2 eq 1", Box::new(|r| r.escalations / 2 == 1)),
        ("-handoverEscalations lt -1", Box::new(|r| -r.escalations < -1)),
        ("(handoverEscalations sub 5) mod 3 eq -2", Box::new(|r| (r.escalations - 5) % 3 == -2)),
        ("handoverEscalations divby 4 eq 0.75", Box::new(|r| r.escalations as f64 / 4.0 == 0.75)),
        // Numbers, with nulls that make the whole comparison unknown.
        ("intentScore mul 10 ge 5", Box::new(|r| r.score.is_some_and(|s| s * 10.0 >= 5.0))),
        ("intentScore divby 0.5 gt 1", Box::new(|r| r.score.is_some_and(|s| s / 0.5 > 1.0))),
        ("intentScore add rating lt 0", Box::new(|r| matches!((r.score, r.rating), (Some(s), Some(x)) if s + x < 0.0))),
        ("intentScore add 1 eq null", Box::new(|r| r.score.is_none())),
        ("round(intentScore mul 3) eq 2", Box::new(|r| r.score.is_some_and(|s| (s * 3.0).round() == 2.0))),
        ("floor(rating) eq -1", Box::new(|r| r.rating.is_some_and(|x| x.floor() == -1.0))),
        ("ceiling(rating) eq 0", Box::new(|r| r.rating.is_some_and(|x| x.ceil() == 0.0))),
        ("round(rating) eq -2", Box::new(|r| r.rating.is_some_and(|x| x.round() == -2.0))),
        ("rating mod 1 eq -0.5", Box::new(|r| r.rating.is_some_and(|x| x % 1.0 == -0.5))),
        // Text, counted in characters, empty and non-ASCII text included.
        ("length(inputText) eq 5", Box::new(|r| r.text.is_some_and(|t| t.chars().count() == 5))),
        ("length(inputText) eq 0", Box::new(|r| r.text == Some(""))),
        (
            "indexof(inputText, 'e') eq 1",
            Box::new(|r| r.text.is_some_and(|t| t.chars().position(|c| c == 'e') == Some(1))),
        ),
        ("indexof(inputText, 'zz') eq -1", Box::new(|r| r.text.is_some())),
        ("substring(inputText, 1, 3) eq 'rüß'", Box::new(|r| r.text.is_some_and(|t| chars(t, 1, 3) == "rüß"))),
        (
            "substring(inputText, 7) eq 'please'",
            Box::new(|r| r.text.is_some_and(|t| chars(t, 7, usize::MAX) == "please")),
        ),
        ("substring(inputText, -3, 2) eq 'it'", Box::new(|r| r.text.is_some_and(|t| chars(t, 0, 2) == "it"))),
        ("trim(inputText) eq 'padded'", Box::new(|r| r.text.is_some_and(|t| t.trim_matches(' ') == "padded"))),
        (
            "concat(concat(intent, '/'), channel) eq 'refund/web'",
            Box::new(|r| r.intent.is_some_and(|i| format!("{i}/{}", r.channel) == "refund/web")),
        ),
        ("concat(intent, 'x') eq null", Box::new(|r| r.intent.is_none())),
        (
            "matchesPattern(inputText, '^[a-z]+ [a-z]+$')",
            Box::new(|r| {
                r.text.is_some_and(|t| {
                    let words: Vec<&str> = t.split(' ').collect();
                    words.len() == 2 && words.iter().all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
                })
            }),
        ),
        // Date-times and durations.
        (
            "timestamp ge 2024-05-10T00:00:00Z sub duration'P2DT12H'",
            Box::new(|r| r.timestamp >= datetime!(2024-05-07 12:00 UTC)),
        ),
        (
            "timestamp add duration'PT13H' lt 2024-05-03T00:00:00Z",
            Box::new(|r| r.timestamp + Duration::hours(13) < datetime!(2024-05-03 00:00 UTC)),
        ),
        (
            "duration'-PT13H' add timestamp lt 2024-05-03T00:00:00Z",
            Box::new(|r| r.timestamp - Duration::hours(13) < datetime!(2024-05-03 00:00 UTC)),
        ),
        ("timestamp sub 2024-05-01T00:00:00Z gt duration'P3D'", Box::new(move |r| since_base(r) > 3 * 86_400_000)),
        (
            "totalseconds(timestamp sub 2024-05-01T00:00:00Z) lt 200000.5",
            Box::new(move |r| since_base(r) as f64 / 1000.0 < 200_000.5),
        ),
        (
            "(timestamp sub 2024-05-01T00:00:00Z) divby 3 gt duration'P1DT0.041S'",
            Box::new(move |r| since_base(r) / 3 > 86_400_041),
        ),
        (
            "timestamp add duration'PT20H' mul handoverEscalations lt 2024-05-04T00:00:00Z",
            Box::new(|r| r.timestamp + Duration::hours(20 * r.escalations) < datetime!(2024-05-04 00:00 UTC)),
        ),
        ("date(timestamp) eq 2024-05-02", Box::new(|r| r.timestamp.date() == datetime!(2024-05-02 00:00 UTC).date())),
        ("fractionalseconds(timestamp) ge 0.5", Box::new(|r| r.timestamp.millisecond() >= 500)),
        (
            "second(timestamp) eq 0 and minute(timestamp) lt 10",
            Box::new(|r| r.timestamp.second() == 0 && r.timestamp.minute() < 10),
        ),
        ("totaloffsetminutes(timestamp) eq 0 and handoverEscalations eq 0", Box::new(|r| r.escalations == 0)),
        (
            "timestamp ge now() sub duration'P36500D' and timestamp lt maxdatetime() and handoverEscalations eq 3",
            Box::new(|r| r.escalations == 3),
        ),
        // Times of day, in UTC.
        ("time(timestamp) ge 12:00", Box::new(|r| r.timestamp.hour() >= 12)),
        (
            "time(timestamp) lt '06:30:00.5' and time(timestamp) gt 00:00",
            Box::new(|r| {
                let ms = r.timestamp.time().as_hms_milli();
                (ms.0, ms.1, ms.2, ms.3) < (6, 30, 0, 500) && ms != (0, 0, 0, 0)
            }),
        ),
        (
            "hour(time(timestamp)) eq 7 or minute(cast(timestamp, Edm.TimeOfDay)) eq 9",
            Box::new(|r| r.timestamp.hour() == 7 || r.timestamp.minute() == 9),
        ),
        ("fractionalseconds(time(timestamp)) eq 0.375", Box::new(|r| r.timestamp.millisecond() == 375)),
        // Lambdas over a collection: "the sessions that reached goal X".
        ("trackedGoals/any(g: g eq 'buy')", Box::new(|r| r.goals.is_some_and(|g| g.contains(&"buy")))),
        (
            "trackedGoals/all(goal: startswith(goal, 'b'))",
            Box::new(|r| r.goals.is_none_or(|g| g.iter().all(|goal| goal.starts_with('b')))),
        ),
        ("trackedGoals/any()", Box::new(|r| r.goals.is_some_and(|g| !g.is_empty()))),
        ("trackedGoals/$count eq 2", Box::new(|r| r.goals.is_some_and(|g| g.len() == 2))),
        (
            "trackedGoals/any(g: length(g) gt handoverEscalations add 3)",
            Box::new(|r| r.goals.is_some_and(|g| g.iter().any(|goal| goal.len() as i64 > r.escalations + 3))),
        ),
        (
            "trackedGoals/any(a: trackedGoals/any(b: b lt a))",
            Box::new(|r| r.goals.is_some_and(|g| g.iter().any(|a| g.iter().any(|b| b < a)))),
        ),
        // Operators, functions and literals in any case (OData 4.01).
        (
            "handoverEscalations Add 1 EQ 2 Or Length(intent) eq 3",
            Box::new(|r| r.escalations == 1 || r.intent.is_some_and(|i| i.len() == 3)),
        ),
        ("NOT (understood eq TRUE) and intent ne NULL", Box::new(|r| r.n % 2 == 1 && r.intent.is_some())),
        // case: the first condition that holds chooses; none gives null.
        (
            "case(intent eq 'refund': 10, intentScore ge 0.5: intentScore, true: 0) ge 0.5",
            Box::new(|r| {
                let value = if r.intent == Some("refund") {
                    10.0
                } else if r.score.is_some_and(|s| s >= 0.5) {
                    r.score.unwrap()
                } else {
                    0.0
                };
                value >= 0.5
            }),
        ),
        ("case(understood: channel) eq null", Box::new(|r| r.n % 2 == 1)),
        // Casts: text as PostgreSQL writes it, whole numbers truncated, null out of range.
        ("cast(handoverEscalations, Edm.String) eq '2'", Box::new(|r| r.escalations == 2)),
        ("cast(rating, Edm.String) eq '-0.75'", Box::new(|r| r.rating == Some(-0.75))),
        ("cast(intentScore, Edm.String) eq '0.3'", Box::new(|r| r.score == Some(0.3))),
        ("cast(rating, Edm.Int32) eq -1", Box::new(|r| r.rating.is_some_and(|x| x.trunc() == -1.0))),
        ("cast(rating mul 100, Edm.SByte) eq null", Box::new(|r| r.rating.is_none_or(|x| (x * 100.0).abs() > 128.0))),
        ("cast(understood, Edm.String) eq 'true'", Box::new(|r| r.n % 2 == 0)),
        ("cast(timestamp, Edm.String) eq '2024-05-01T07:01:00.125Z'", Box::new(|r| r.n == 1)),
        (
            "startswith(cast(timestamp, edm.string), '2024-05-02T')",
            Box::new(|r| r.timestamp.date() == datetime!(2024-05-02 00:00 UTC).date()),
        ),
        ("cast('1.5', Edm.Double) eq rating", Box::new(|r| r.rating == Some(1.5))),
        // isof: of the type and not null; a number counts as whole when it is one in range.
        ("isof(intentScore, Edm.Byte)", Box::new(|r| r.score == Some(0.0))),
        ("isof(intent, Edm.String)", Box::new(|r| r.intent.is_some())),
        (
            "isof(handoverEscalations, Edm.Double) and not isof(rating, Edm.Int64)",
            Box::new(|r| r.rating.is_none_or(|x| x.fract() != 0.0)),
        ),
    ];
    for (filter, check) in &cases {
        let scoped = format!("projectId eq '{project}' and ({filter})");
        let path = format!("/v2.4/Analytics?$select=inputId&$orderby=inputId&$filter={}", enc(&scoped));
        let body = app.odata_json(&path).await;
        let expected: Vec<String> = all.iter().filter(|r| check(r)).map(|r| format!("i{:05}", r.n)).collect();
        assert!(!expected.is_empty() && expected.len() < all.len(), "{filter} tells nothing apart");
        assert_eq!(input_ids(&body), expected, "$filter={filter}");
    }
    app.stop().await;
}

async fn a_failing_computation_is_a_clear_400_and_unimplemented_odata_a_501(engine: Engine) {
    let (mut app, project, all) = seeded(engine.clone()).await;
    // Computed on stored values: no 500, and the store is untouched.
    for (filter, says) in [
        ("handoverEscalations div (handoverEscalations sub handoverEscalations) eq 1", "division by zero"),
        ("rating divby (intentScore sub intentScore) gt 1", "division by zero"),
        ("handoverEscalations mul 4611686018427387904 gt 0", "out of range"),
    ] {
        let scoped = format!("projectId eq '{project}' and ({filter})");
        let response = app.odata_get(&format!("/v2.4/Analytics?$filter={}", enc(&scoped))).await;
        let error = odata_error(response, 400).await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("cannot be computed on the stored values") && message.contains(says),
            "{filter}: {error}"
        );
    }
    // Computed when parsed: located in the option.
    let response = app.odata_get(&format!("/v2.4/Analytics?$filter={}", enc("handoverEscalations eq 1 mod 0"))).await;
    let error = odata_error(response, 400).await;
    assert_eq!(error["target"], "$filter");
    assert!(error["message"].as_str().unwrap().contains("at position 25: division by zero"), "{error}");
    // Valid OData that parley does not implement.
    for query in [
        "$search=refund",
        "$filter=cast(intent,Edm.Guid) eq null",
        "$filter=cast(inputText,Edm.DateTimeOffset) eq null",
        "$filter=cast(parley.AnalyticsRecord) eq null",
        "$filter=geo.distance(intent,intent) lt 1",
        "$compute=time(timestamp) as t",
        "$apply=nest(x)",
        "compute=timestamp sub timestamp as d",
    ] {
        let response = app.odata_get(&format!("/v2.4/Analytics?{query}")).await;
        let error = odata_error(response, 501).await;
        assert!(error["message"].as_str().unwrap().contains("not implemented"), "{query}: {error}");
    }
    // Casts that can never succeed, and what is not a type.
    for (filter, says) in [
        ("cast(timestamp, Edm.Boolean)", "at position 16: cannot cast Edm.DateTimeOffset to Edm.Boolean"),
        ("cast(intent, Edm.Text) eq 'x'", "at position 13: 'Edm.Text' is not a type; types are Edm.String,"),
        ("cast(trackedGoals, Edm.String) eq 'x'", "at position 5: 'cast' does not take a collection"),
        ("isof(intent) eq true", "at position 11: expected ',' and the type 'isof' takes second"),
        ("cast(intent, 'Edm.String') eq 'x'", "'cast' takes a type such as Edm.String, found the string"),
        ("time(timestamp) ge 24:00", "at position 19: '24:00' is not a time of day"),
    ] {
        let error = odata_error(app.odata_get(&format!("/v2.4/Analytics?$filter={}", enc(filter))).await, 400).await;
        assert!(error["message"].as_str().unwrap().contains(says), "{filter}: {error}");
    }
    // A lambda inside a lambda over two projects' rows: Citus cannot plan it when the projects'
    // rows are on different shards, and the answer says so (501); the other engines answer it.
    let other = match engine {
        Engine::Citus { .. } => project_on_another_shard(&app, &project).await,
        _ => app.create_project().await,
    };
    let nested = format!(
        "/v2.4/Analytics/$count?$filter={}",
        enc(&format!("projectId in ('{project}', '{other}') and trackedGoals/any(a: trackedGoals/any(b: b lt a))"))
    );
    let response = app.odata_get(&nested).await;
    if matches!(engine, Engine::Citus { .. }) {
        let error = odata_error(response, 501).await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("The database engine cannot run this query"), "{error}");
    } else {
        assert_eq!(response.status(), 200);
        let two_goals = all.iter().filter(|r| r.goals.is_some_and(|g| g.len() == 2)).count();
        assert_eq!(response.text().await.unwrap(), two_goals.to_string(), "the rows with two different goals");
    }
    let count = app.odata_get("/v2.4/Analytics/$count").await.text().await.unwrap();
    assert_eq!(count, "36");
    app.stop().await;
}

/// A new project whose records Citus keeps on another shard than those of `project`. With Citus's
/// default of 32 shards, one project in 32 hashes to the shard of `project`, and a query over the
/// two is then planned on that shard alone, as a query over one project is.
async fn project_on_another_shard(app: &TestApp, project: &str) -> String {
    let database = parley_store::testing::postgres_client(app.database_url()).await;
    let statement = "SELECT get_shard_id_for_distribution_column('records', $1::text)";
    let shard = database.query_one(statement, &[&project]).await.unwrap().get::<_, i64>(0);
    loop {
        let other = app.create_project().await;
        if database.query_one(statement, &[&other]).await.unwrap().get::<_, i64>(0) != shard {
            return other;
        }
    }
}

async fn system_options_work_without_their_dollar(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let filter = enc(&format!("projectId eq '{project}' and handoverEscalations ge 2"));
    let bare = app
        .odata_json(&format!("/v2.4/Analytics?filter={filter}&select=inputId&orderby=inputId%20desc&top=5&count=true"))
        .await;
    let dollar = app
        .odata_json(&format!(
            "/v2.4/Analytics?$filter={filter}&$select=inputId&$orderby=inputId%20desc&$top=5&$count=true"
        ))
        .await;
    assert_eq!(bare, dollar);
    let mut expected: Vec<String> = all.iter().filter(|r| r.escalations >= 2).map(|r| format!("i{:05}", r.n)).collect();
    assert_eq!(bare["@odata.count"], expected.len());
    expected.reverse();
    expected.truncate(5);
    assert_eq!(input_ids(&bare), expected);
    assert_eq!(bare["value"][0].as_object().unwrap().len(), 1, "select applies: {bare}");
    // The same option twice, once with and once without `$`, is refused.
    let response = app.odata_get("/v2.4/Analytics?$top=1&top=2").await;
    let error = odata_error(response, 400).await;
    assert!(error["message"].as_str().unwrap().contains("$top is given more than once"), "{error}");
    // `$expand=*` expands nothing, as there is nothing to expand.
    let expanded =
        app.odata_json(&format!("/v2.4/Analytics?$filter={filter}&$select=inputId&$orderby=inputId&expand=*")).await;
    assert_eq!(input_ids(&expanded).len(), all.iter().filter(|r| r.escalations >= 2).count());
    app.stop().await;
}

async fn computed_properties_are_answered_filtered_ordered_and_paged(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let compute = "handoverEscalations mul 10 add 1 as score, concat(channel, '!') as loud, \
                   intent eq 'refund' as refund, timestamp add duration'PT1H' as later";
    let filter = format!("projectId eq '{project}' and score gt 10");
    let first = format!(
        "/v2.4/Analytics?$compute={}&$filter={}&$select=inputId,score,loud,refund,later&$orderby=score desc,inputId&$count=true",
        enc(compute),
        enc(&filter)
    );
    // Two rows a page: the skip token continues after a computed order key.
    let (rows, count) = two_a_page(&app, first).await;
    let mut expected: Vec<&Row> = all.iter().filter(|r| r.escalations * 10 + 1 > 10).collect();
    expected.sort_by(|a, b| (b.escalations, a.n).cmp(&(a.escalations, b.n)));
    assert_eq!(count, Some(expected.len() as u64));
    assert_eq!(rows.len(), expected.len());
    for (row, r) in rows.iter().zip(&expected) {
        assert_eq!(row["inputId"], format!("i{:05}", r.n));
        assert_eq!(row["score"], r.escalations * 10 + 1, "{row}");
        assert_eq!(row["loud"], format!("{}!", r.channel));
        assert_eq!(
            row["refund"],
            if r.intent.is_none() { Json::Null } else { json!(r.intent == Some("refund")) },
            "{row}"
        );
        assert_eq!(row["later"], format_time(r.timestamp + Duration::hours(1)));
    }
    // Without $select, the computed properties come after the entity's own.
    let body = app
        .odata_json(&format!(
            "/v2.4/Analytics?$compute={}&$top=1&$orderby=inputId",
            enc("handoverEscalations add 1 as next")
        ))
        .await;
    let keys: Vec<&String> = body["value"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys.last().map(|k| k.as_str()), Some("next"));
    assert!(body["@odata.context"].as_str().unwrap().ends_with("$metadata#Analytics"), "{body}");
    // The count of a computed filter, and a computed duration refused as not implemented.
    let counted = app
        .odata_get(&format!(
            "/v2.4/Analytics/$count?$compute={}&$filter={}",
            enc("handoverEscalations mul 2 as twice"),
            enc("twice ge 4")
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(counted, all.iter().filter(|r| r.escalations * 2 >= 4).count().to_string());
    odata_error(app.odata_get(&format!("/v2.4/Analytics?$compute={}", enc("timestamp sub timestamp as d"))).await, 501)
        .await;
    app.stop().await;
}

async fn apply_compute_feeds_the_grouping_the_aggregates_and_the_steps(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let scoped = |apply: &str| format!("/v2.4/Analytics?$apply=filter(projectId eq '{project}')/{}", enc(apply));
    // Grouped by a property and a computed one, aggregating another computed one.
    let apply = "compute(handoverEscalations mul 2 as twice, intentScore mul 10 as tenfold)/filter(twice ge 2)\
                 /groupby((channel, twice), aggregate($count as n, tenfold with sum as total, tenfold with max as most))";
    let body = app.odata_json(&format!("{}&$orderby=channel,twice desc", scoped(apply))).await;
    let mut groups: Vec<(&str, i64)> = Vec::new();
    for r in all.iter().filter(|r| r.escalations * 2 >= 2) {
        if !groups.contains(&(r.channel, r.escalations * 2)) {
            groups.push((r.channel, r.escalations * 2));
        }
    }
    groups.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    let answered = body["value"].as_array().unwrap();
    assert_eq!(answered.len(), groups.len(), "{body}");
    for (row, (channel, twice)) in answered.iter().zip(&groups) {
        let members: Vec<&Row> = all.iter().filter(|r| r.channel == *channel && r.escalations * 2 == *twice).collect();
        let scores: Vec<f64> = members.iter().filter_map(|r| r.score).map(|s| s * 10.0).collect();
        assert_eq!((row["channel"].as_str(), row["twice"].as_i64()), (Some(*channel), Some(*twice)), "{row}");
        assert_eq!(row["n"], members.len(), "{row}");
        assert!((row["total"].as_f64().unwrap() - scores.iter().sum::<f64>()).abs() < 1e-9, "{row}");
        assert_eq!(row["most"].as_f64(), scores.iter().copied().reduce(f64::max), "{row}");
    }
    // On the records: a computed rank key, with $compute adding to compute(…) and paging by keyset.
    let first = format!(
        "{}&$compute={}&$filter=later gt 2&$select=inputId,len,later&$orderby=inputId",
        scoped("compute(length(inputText) as len)/topcount(7, len)"),
        enc("len add 1 as later")
    );
    let mut ranked: Vec<&Row> = all.iter().filter(|r| r.text.is_some()).collect();
    ranked.sort_by_key(|r| (std::cmp::Reverse(r.text.unwrap().chars().count()), r.n));
    let mut expected: Vec<(String, i64)> = ranked
        .iter()
        .take(7)
        .map(|r| (format!("i{:05}", r.n), r.text.unwrap().chars().count() as i64))
        .filter(|(_, len)| len + 1 > 2)
        .collect();
    expected.sort();
    let (rows, _) = two_a_page(&app, first).await;
    let answered: Vec<(String, i64)> = rows
        .iter()
        .map(|v| {
            assert_eq!(v["later"].as_i64(), v["len"].as_i64().map(|l| l + 1), "{v}");
            (v["inputId"].as_str().unwrap().to_owned(), v["len"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(answered, expected);
    // After the grouping: shares and means of the groups, with $compute building on them.
    let first = format!(
        "{}&$compute={}&$orderby=mean desc&$count=true",
        scoped(
            "groupby((channel), aggregate($count as n, intentScore with sum as s))\
             /compute(s divby n as mean, n mul 100 div 36 as share)/filter(share ge 30)"
        ),
        enc("mean mul 2 as twice")
    );
    let (rows, count) = two_a_page(&app, first).await;
    let mut groups: Vec<(&str, usize, f64)> = ["voice", "web", "whatsapp"]
        .iter()
        .map(|c| {
            let members: Vec<&Row> = all.iter().filter(|r| r.channel == *c).collect();
            (*c, members.len(), members.iter().filter_map(|r| r.score).sum::<f64>())
        })
        .filter(|(_, n, _)| n * 100 / 36 >= 30)
        .collect();
    groups.sort_by(|a, b| (b.2 / b.1 as f64).total_cmp(&(a.2 / a.1 as f64)).then(a.0.cmp(b.0)));
    assert_eq!(count, Some(groups.len() as u64));
    assert_eq!(rows.len(), groups.len());
    for (row, (channel, n, sum)) in rows.iter().zip(&groups) {
        let mean = sum / *n as f64;
        assert_eq!(row["channel"], *channel, "{row}");
        assert_eq!(row["share"], (n * 100 / 36) as i64, "{row}");
        assert!((row["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{row}");
        assert!((row["twice"].as_f64().unwrap() - 2.0 * mean).abs() < 1e-9, "{row}");
    }
    // After concat: every row gets the computed property beside its own.
    let body = app
        .odata_json(&scoped(
            "concat(aggregate($count as n), groupby((intent), aggregate($count as n)))/compute(n mul 2 as twice)",
        ))
        .await;
    let answered: Vec<String> = body["value"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    assert_eq!(
        answered,
        [
            r#"{"n":36,"twice":72}"#,
            r#"{"intent":null,"n":9,"twice":18}"#,
            r#"{"intent":"bye","n":9,"twice":18}"#,
            r#"{"intent":"greet","n":9,"twice":18}"#,
            r#"{"intent":"refund","n":9,"twice":18}"#
        ]
    );
    // What compute(…) refuses, and what it does not do yet.
    let refusals = [
        ("compute(intent as intent)", 400, "the name 'intent' is taken already"),
        ("compute(1 add 1)", 400, "expected 'as' and a name for the computed property"),
        (
            "compute(trackedGoals as goals)/groupby((goals))",
            400,
            "cannot group by 'goals', of type Collection(Edm.String)",
        ),
        ("compute(intent as i)/aggregate(i with sum as s)", 400, "cannot aggregate 'i' (of type Edm.String)"),
        (
            "groupby((intent),aggregate($count as n))/compute(channel as c)",
            400,
            "'channel' is not in the result of $apply, which has intent, n",
        ),
        ("concat(compute(1 as one)/aggregate($count as n), aggregate($count as n))", 501, "compute before concat"),
    ];
    for (apply, status, says) in refusals {
        let error = odata_error(app.odata_get(&scoped(apply)).await, status).await;
        assert!(error["message"].as_str().unwrap().contains(says), "{apply}: {error}");
    }
    app.stop().await;
}

async fn apply_concat_answers_each_sequence_in_turn(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let scoped = |apply: &str| format!("/v2.4/Analytics?$apply=filter(projectId eq '{project}')/{}", enc(apply));
    // A total, then a breakdown: each row has its own sequence's properties only.
    let body = app
        .odata_json(&scoped(
            "filter(handoverEscalations ge 1)/concat(aggregate($count as n), \
             groupby((intent), aggregate($count as n, intentScore with sum as total)))",
        ))
        .await;
    let kept: Vec<&Row> = all.iter().filter(|r| r.escalations >= 1).collect();
    let mut expected = vec![json!({"n": kept.len()})];
    for intent in [None, Some("bye"), Some("greet"), Some("refund")] {
        let members: Vec<&&Row> = kept.iter().filter(|r| r.intent == intent).collect();
        if members.is_empty() {
            continue;
        }
        let total: f64 = members.iter().filter_map(|r| r.score).sum();
        expected.push(json!({"intent": intent, "n": members.len(), "total": total}));
    }
    let answered = body["value"].as_array().unwrap();
    assert_eq!(answered.len(), expected.len(), "{body}");
    for (row, want) in answered.iter().zip(&expected) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        let wanted: Vec<&String> = want.as_object().unwrap().keys().collect();
        assert_eq!(keys, wanted, "{row}");
        assert_eq!(row["n"], want["n"], "{row}");
        assert_eq!(row["intent"], want["intent"], "{row}");
        if let Some(total) = want["total"].as_f64() {
            assert!((row["total"].as_f64().unwrap() - total).abs() < 1e-9, "{row}");
        }
    }
    // Steps inside a sequence, a filter after concat, and $orderby, $count and paging over all.
    let apply = "concat(groupby((channel), aggregate($count as n))/topcount(2, n), \
                 groupby((intent), aggregate($count as n))/filter(intent ne 'bye'))/filter(n ge 9)";
    let first = format!("{}&$orderby=n desc&$count=true", scoped(apply));
    let (rows, count) = two_a_page(&app, first).await;
    let per = |key: &dyn Fn(&Row) -> String| {
        let mut groups: Vec<(String, usize)> = Vec::new();
        for r in &all {
            match groups.iter_mut().find(|(k, _)| *k == key(r)) {
                Some((_, n)) => *n += 1,
                None => groups.push((key(r), 1)),
            }
        }
        groups.sort();
        groups
    };
    let mut channels = per(&|r: &Row| r.channel.to_owned());
    channels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // (n, sequence, group) in the answer's order: n descending, then the sequence, then the group.
    let mut expected: Vec<(usize, usize, String)> =
        channels.iter().take(2).filter(|(_, n)| *n >= 9).map(|(c, n)| (*n, 0, c.clone())).collect();
    let intents = per(&|r: &Row| r.intent.unwrap_or("").to_owned());
    expected.extend(intents.iter().filter(|(i, n)| i != "bye" && *n >= 9).map(|(i, n)| (*n, 1, i.clone())));
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let answered: Vec<(usize, usize, String)> = rows
        .iter()
        .map(|v| match (v.get("channel"), v.get("intent")) {
            (Some(channel), None) => (v["n"].as_u64().unwrap() as usize, 0, channel.as_str().unwrap().to_owned()),
            (None, Some(intent)) => (v["n"].as_u64().unwrap() as usize, 1, intent.as_str().unwrap_or("").to_owned()),
            _ => panic!("a row of one sequence only: {v}"),
        })
        .collect();
    assert_eq!(answered, expected);
    assert_eq!(count, Some(expected.len() as u64));
    // What concat refuses, and what it does not do yet.
    let refusals = [
        ("concat(aggregate($count as n))", 400, "concat takes two or more sequences"),
        (
            "concat(aggregate($count as n), aggregate(intentScore with sum as n))",
            400,
            "'n' names values of different types",
        ),
        ("concat(aggregate($count as n), filter(intent eq 'x'))", 501, "without groupby or aggregate"),
        ("concat(compute(1 as one)/aggregate($count as n), aggregate($count as n))", 501, "compute before concat"),
        ("groupby((intent))/concat(aggregate($count as n), aggregate($count as m))", 501, "after groupby"),
        (
            "concat(aggregate($count as n), aggregate($count as m))/groupby((n))",
            501,
            "after groupby, aggregate or concat",
        ),
    ];
    for (apply, status, says) in refusals {
        let error = odata_error(app.odata_get(&scoped(apply)).await, status).await;
        assert!(error["message"].as_str().unwrap().contains(says), "{apply}: {error}");
    }
    app.stop().await;
}

async fn apply_steps_rank_skip_and_filter_rows(engine: Engine) {
    let (mut app, project, all) = seeded(engine).await;
    let scoped = |apply: &str| format!("/v2.4/Analytics?$apply=filter(projectId eq '{project}')/{}", enc(apply));
    // Sums of scores per channel, as the test computes them; ranks break ties by the grouping.
    let mut per_channel: Vec<(&str, f64)> = ["voice", "web", "whatsapp"]
        .iter()
        .map(|c| (*c, all.iter().filter(|r| r.channel == *c).filter_map(|r| r.score).sum()))
        .collect();
    let channels = |body: &Json| -> Vec<String> {
        body["value"].as_array().unwrap().iter().map(|v| v["channel"].as_str().unwrap().to_owned()).collect()
    };
    per_channel.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let mut top: Vec<String> = per_channel[..2].iter().map(|(c, _)| c.to_string()).collect();
    top.sort();
    let body = app.odata_json(&scoped("groupby((channel),aggregate(intentScore with sum as s))/topcount(2,s)")).await;
    assert_eq!(channels(&body), top, "topcount keeps the two largest, answered in the grouping's order");
    per_channel.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let body =
        app.odata_json(&scoped("groupby((channel),aggregate(intentScore with sum as s))/bottomcount(1,s)")).await;
    assert_eq!(channels(&body), [per_channel[0].0]);
    assert!((body["value"][0]["s"].as_f64().unwrap() - per_channel[0].1).abs() < 1e-9);
    // topsum and toppercent: the largest sums, as many as it takes to reach the threshold.
    per_channel.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let total: f64 = per_channel.iter().map(|(_, s)| s).sum();
    let reaching = |threshold: f64| -> Vec<String> {
        let (mut kept, mut before) = (Vec::new(), 0.0);
        for (channel, sum) in &per_channel {
            if before < threshold {
                kept.push(channel.to_string());
            }
            before += sum;
        }
        kept.sort();
        kept
    };
    for (step, threshold) in [
        (format!("topsum({},s)", per_channel[0].1 + 0.5), per_channel[0].1 + 0.5),
        ("topsum(0.1,s)".to_owned(), 0.1),
        ("toppercent(50,s)".to_owned(), total * 0.5),
        ("toppercent(100,s)".to_owned(), total),
    ] {
        let body =
            app.odata_json(&scoped(&format!("groupby((channel),aggregate(intentScore with sum as s))/{step}"))).await;
        assert_eq!(channels(&body), reaching(threshold), "{step}");
    }
    let body =
        app.odata_json(&scoped("groupby((channel),aggregate(intentScore with sum as s))/bottomsum(0.1,s)")).await;
    assert_eq!(channels(&body), [per_channel.last().unwrap().0], "bottomsum keeps the smallest first");

    // orderby, skip, top, then a filter of what is left; $count counts it.
    let mut per_intent: Vec<(Option<&str>, f64)> = [None, Some("bye"), Some("greet"), Some("refund")]
        .iter()
        .map(|i| (*i, all.iter().filter(|r| r.intent == *i).filter_map(|r| r.score).sum::<f64>()))
        .collect();
    per_intent.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let kept: Vec<(Option<&str>, f64)> = per_intent.iter().skip(1).take(2).filter(|(_, s)| *s > 0.0).copied().collect();
    let body = app
        .odata_json(&format!(
            "{}&$count=true&$orderby=s",
            scoped(
                "groupby((intent),aggregate(intentScore with sum as s))/orderby(s desc)/skip(1)/top(2)/filter(s gt 0)"
            )
        ))
        .await;
    let mut expected = kept.clone();
    expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let answered: Vec<(Option<String>, f64)> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["intent"].as_str().map(str::to_owned), v["s"].as_f64().unwrap()))
        .collect();
    let expected: Vec<(Option<String>, f64)> = expected.iter().map(|(i, s)| (i.map(str::to_owned), *s)).collect();
    assert_eq!(answered.len(), expected.len());
    for ((ai, asum), (ei, esum)) in answered.iter().zip(&expected) {
        assert_eq!(ai, ei);
        assert!((asum - esum).abs() < 1e-9, "{asum} vs {esum}");
    }
    assert_eq!(body["@odata.count"], expected.len());

    // Steps before the grouping: the channels of the ten latest records, and before concat.
    let mut latest: Vec<&Row> = all.iter().collect();
    latest.sort_by_key(|r| (std::cmp::Reverse(r.timestamp), r.n));
    let ten: Vec<&Row> = latest.into_iter().take(10).collect();
    let count_of = |channel: &str| ten.iter().filter(|r| r.channel == channel).count();
    let body = app
        .odata_json(&scoped(
            "orderby(timestamp desc)/top(10)/filter(intent ne null)/groupby((channel),aggregate($count as n))",
        ))
        .await;
    let answered: Vec<(String, u64)> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["channel"].as_str().unwrap().to_owned(), v["n"].as_u64().unwrap()))
        .collect();
    let mut expected: Vec<(String, u64)> = Vec::new();
    for channel in ["voice", "web", "whatsapp"] {
        let n = ten.iter().filter(|r| r.channel == channel && r.intent.is_some()).count() as u64;
        if n > 0 {
            expected.push((channel.to_owned(), n));
        }
    }
    assert_eq!(answered, expected);
    let body = app
        .odata_json(&scoped(
            "orderby(timestamp desc)/top(10)/concat(filter(channel eq 'web')/aggregate($count as n), \
             groupby((channel),aggregate($count as n)))",
        ))
        .await;
    let answered: Vec<u64> = body["value"].as_array().unwrap().iter().map(|v| v["n"].as_u64().unwrap()).collect();
    let mut expected = vec![count_of("web") as u64];
    expected.extend(["voice", "web", "whatsapp"].iter().map(|c| count_of(c) as u64).filter(|n| *n > 0));
    assert_eq!(answered, expected);
    let error =
        odata_error(app.odata_get(&scoped("concat(top(2)/aggregate($count as n), aggregate($count as n))")).await, 501)
            .await;
    assert!(error["message"].as_str().unwrap().contains("steps before the grouping of a sequence"), "{error}");

    // On the records themselves: the five latest with an escalation, then those with an intent,
    // paged two at a time.
    let mut latest: Vec<&Row> = all.iter().filter(|r| r.escalations >= 1).collect();
    latest.sort_by_key(|r| std::cmp::Reverse(r.timestamp));
    let mut expected: Vec<String> =
        latest.iter().take(5).filter(|r| r.intent.is_some()).map(|r| format!("i{:05}", r.n)).collect();
    expected.sort();
    let first = format!(
        "{}&$select=inputId&$orderby=inputId",
        scoped("filter(handoverEscalations ge 1)/orderby(timestamp desc)/top(5)/filter(intent ne null)")
    );
    let answered: Vec<String> =
        two_a_page(&app, first).await.0.iter().map(|v| v["inputId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(answered, expected);
    app.stop().await;
}
