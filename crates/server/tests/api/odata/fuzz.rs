//! No query string of any kind makes the endpoint fail with a 5xx (501, for valid OData that is
//! not implemented, is an answer, not a failure): a property test throws random and
//! mutated query strings (and `Prefer` headers) at a running server, on SQLite and, when
//! `PARLEY_TEST_POSTGRES_URL` is set, on PostgreSQL. Every refusal must be an OData error body.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value as Json, json};
use tokio::runtime::Handle;

use super::{numbered_record, spawn_unlimited};
use crate::helpers::{Engine, TestApp, on_both_engines};

/// Valid query strings, as clients write them, for mutation.
const CORPUS: &[&str] = &[
    "$filter=intent%20eq%20'greet'%20and%20(intentScore%20gt%200.5%20or%20execution%20le%203)",
    "$filter=timestamp%20ge%202024-05-01T00:00:00Z%20and%20timestamp%20lt%20'2024-06-01T00:00:00.000%2B02:00'",
    "$filter=intent%20in%20('a','b',null)%20and%20contains(inputText,'it''s')%20and%20startswith(tolower(channel),'w')",
    "$filter=year(timestamp)%20eq%202024%20and%20month(timestamp)%20ge%205%20and%20not%20understood",
    "$select=intent,timestamp&$orderby=timestamp%20desc,intent&$top=10&$skip=2&$count=true",
    "$apply=filter(channel%20eq%20'web')/groupby((intent),aggregate($count%20as%20n,rating%20with%20sum%20as%20s))&$orderby=n%20desc&$filter=n%20gt%201",
    "$apply=aggregate($count%20as%20n,timestamp%20with%20min%20as%20first)&$format=csv",
    "$filter=inputData%20eq%20'%7B%22n%22:1%7D'%20or%20endswith(toupper(flowName),'X')&apikey=nope",
    "$skiptoken=eyJvIjoiaWQgYXNjIiwidiI6WyIwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDEiXX0&$orderby=id",
    "$filter=intent%20eq%20'a%00b'%20or%20intent%20in%20('%00')",
    "filter=execution%20mul%209223372036854775807%20gt%20rating%20div%200.0%20or%20execution%20mod%200%20eq%201&top=3",
    "$filter=timestamp%20add%20duration'P99999D'%20gt%20now()%20sub%20duration'PT1S'%20and%20date(timestamp)%20eq%202024-05-01",
    "$filter=matchesPattern(inputText,'%5E%5Ba-z%5D%2B$')%20and%20substring(intent,-1,99999999999)%20eq%20concat(trim(intent),'')",
    "$filter=trackedGoals/any(g:%20g%20eq%20@p)%20and%20intent%20ne%20@q&@p='buy'&@q=concat('a',@p)",
    "$filter=round(intentScore)%20divby%20floor(rating)%20lt%20ceiling(-rating)%20and%20length(intent)%20sub%20indexof(intent,'x')%20gt%200",
];

/// Pieces for building and inserting.
const PIECES: &[&str] = &[
    "$filter=",
    "$select=",
    "$orderby=",
    "$apply=",
    "$top=",
    "$skip=",
    "$count=",
    "$format=",
    "$skiptoken=",
    "$expand=",
    "&",
    "=",
    "%20",
    "+",
    "%2B",
    "%",
    "%zz",
    "%FF",
    "%00",
    "%27",
    "'",
    "(",
    ")",
    ",",
    "/",
    "eq",
    "ne",
    "gt",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "-",
    "0",
    "9223372036854775807",
    "duration'P1D'",
    "now()",
    "filter=",
    "in",
    "and",
    "or",
    "not",
    "null",
    "true",
    "-1",
    "1e308",
    "9223372036854775808",
    "1.5",
    "2024-05-01T00:00:00Z",
    "2024-02-30",
    "intent",
    "timestamp",
    "inputData",
    "trackedGoals",
    "understood",
    "intentScore",
    "id",
    "_id",
    "$count",
    "groupby((intent))",
    "aggregate($count as n)",
    "contains(",
    "year(",
    "tolower(",
    "desc",
    "é",
    "💥",
    "\u{0}",
    "#",
    "?",
    ";",
    "apikey=",
    "api_key=",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
}

fn apply(text: &str, edit: &Edit) -> String {
    let at = |i: usize| {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match *edit {
        Edit::Delete(a, n) => {
            let start = at(a);
            let end = at(start + n % 6).max(start);
            format!("{}{}", &text[..start], &text[end..])
        }
        Edit::Insert(a, piece) => format!("{}{piece}{}", &text[..at(a)], &text[at(a)..]),
        Edit::Duplicate(a, n) => {
            let start = at(a);
            let end = at(start + n % 12).max(start);
            format!("{}{}{}", &text[..end], &text[start..end], &text[end..])
        }
    }
}

fn query_strings() -> impl Strategy<Value = String> {
    let edit = prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), prop::sample::select(PIECES)).prop_map(|(a, p)| Edit::Insert(a, p)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ];
    prop_oneof![
        any::<String>(),
        "[ -~]{0,120}",
        prop::collection::vec(prop::sample::select(PIECES), 0..30).prop_map(|p| p.concat()),
        (prop::sample::select(CORPUS), prop::collection::vec(edit, 1..6))
            .prop_map(|(base, edits)| edits.iter().fold(base.to_owned(), |text, e| apply(&text, e))),
    ]
}

fn prefer() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), "odata\\.maxpagesize=[0-9]{1,25}".prop_map(Some), "[ -~]{0,40}".prop_map(Some),]
}

/// Throws `cases` generated requests at `app`, failing on the first 5xx (but 501) or non-OData
/// error.
fn throw_queries(runtime: &Handle, app: &TestApp, cases: u32) {
    for query in CORPUS {
        if let Err(failure) = send(runtime, app, query, &None) {
            panic!("{failure}");
        }
    }
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    runner
        .run(&(query_strings(), prefer()), |(query, prefer)| {
            send(runtime, app, &query, &prefer).map_err(TestCaseError::fail)
        })
        .unwrap();
}

/// Sends the query to every kind of resource; fails on a 5xx other than 501, or an error that is
/// not OData's.
fn send(runtime: &Handle, app: &TestApp, query: &str, prefer: &Option<String>) -> Result<(), String> {
    for path in ["/v2.4/Analytics", "/v2.4/Analytics/$count", "/v2.3/Analytics", "/v2.4/Analytics('x')"] {
        let url = app.url(&format!("{path}?{query}"));
        let mut request = app.client.get(&url).header("apikey", &app.api_key);
        if let Some(prefer) = prefer {
            request = request.header("prefer", prefer);
        }
        let Ok(request) = request.build() else { continue }; // not a URL any client could send
        let response = runtime.block_on(app.client.execute(request)).map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        // 501 is the answer for valid OData that parley does not implement; any other 5xx is a fault.
        let unimplemented = status == reqwest::StatusCode::NOT_IMPLEMENTED;
        if status.is_server_error() && !unimplemented {
            return Err(format!("{status} for {url}"));
        }
        if status.is_client_error() || unimplemented {
            let body: Json = runtime.block_on(response.json()).map_err(|e| format!("{url}: {e}"))?;
            if !(body["error"]["code"].is_string() && body["error"]["message"].is_string()) {
                return Err(format!("{url}: not an OData error: {body}"));
            }
        }
    }
    Ok(())
}

async fn seed(app: &TestApp) {
    let project = app.create_project().await;
    let records: Vec<Json> = (0..20)
        .map(|n| {
            let intent = [json!("greet"), json!("bye"), Json::Null][n % 3].clone();
            numbered_record(
                &project,
                n,
                json!({
                    "intent": intent,
                    "inputData": {"n": n},
                    "intentScore": (n % 10) as f64 / 10.0,
                    "understood": n % 2 == 0,
                    "trackedGoals": ["g"],
                    "rating": n as f64 - 10.0,
                }),
            )
        })
        .collect();
    app.ingest_new(&records).await;
}

on_both_engines!(no_query_string_gets_a_server_error);

async fn no_query_string_gets_a_server_error(engine: Engine) {
    let cases = match engine {
        Engine::Sqlite => 500,
        Engine::Postgres { .. } | Engine::Citus { .. } => 300,
    };
    let app = spawn_unlimited(engine).await;
    seed(&app).await;
    // The property runner is synchronous: it runs on a blocking thread and waits for each
    // request there.
    let runtime = Handle::current();
    let thrown = tokio::task::spawn_blocking(move || {
        throw_queries(&runtime, &app, cases);
        app
    });
    let mut app = thrown.await.unwrap_or_else(|failure| std::panic::resume_unwind(failure.into_panic()));
    app.stop().await;
}
