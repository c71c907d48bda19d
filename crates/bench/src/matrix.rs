//! `parley-bench odata-matrix`: the same OData v4.01 requests sent to parley and to the peer (SAP
//! CAP) over the same generated records, and what each answers: a success, a refusal (4xx), not
//! implemented (501), or a server error (5xx); and, where both answer, whether the answers agree.
//! Without an oracle the matrix cannot say who is right where they differ; it lists those
//! requests so that a reader can look.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde::Serialize;
use serde_json::Value as Json;

use crate::Result;
use crate::data::{Arrival, Dataset, Spec};
use crate::load::Connection;
use crate::run::{create_projects, header, parley_binary, start_parley, target_dir};

/// What the matrix runs on.
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixOptions {
    /// Records in the generated data set (one project).
    #[arg(long, default_value_t = 2500)]
    pub records: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The `parley` binary; by default the release build.
    #[arg(long)]
    pub parley_bin: Option<PathBuf>,
    /// Leave out the peer: only parley's answers are classified.
    #[arg(long)]
    pub no_peer: bool,
    /// Where to write the JSON; by default target/bench/matrix-latest.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The requests: what each exercises, and the part after the entity set's address (written
/// plainly; spaces and quotes are encoded when sent).
const REQUESTS: &[(&str, &str)] = &[
    // Paging, order, selection, counting.
    ("top and orderby", "?$select=inputId,intent&$orderby=inputId&$top=5"),
    ("skip", "?$select=inputId&$orderby=inputId&$skip=10&$top=5"),
    ("orderby two keys", "?$select=inputId,intent&$orderby=intent desc,inputId&$top=10"),
    ("count=true", "?$select=inputId&$count=true&$orderby=inputId&$top=3"),
    ("/$count", "/$count"),
    ("/$count with a filter", "/$count?$filter=channel eq 'webchat3'"),
    ("select many", "?$select=inputId,channel,intent,intentScore,understood,timestamp&$orderby=inputId&$top=5"),
    ("format=json", "?$select=inputId&$orderby=inputId&$top=3&$format=json"),
    // Comparisons and logic.
    ("eq", "?$select=inputId&$filter=channel eq 'webchat3'&$orderby=inputId&$top=20"),
    ("ne", "?$select=inputId&$filter=channel ne 'webchat3'&$orderby=inputId&$top=20"),
    ("gt number", "?$select=inputId&$filter=intentScore gt 0.8&$orderby=inputId&$top=20"),
    ("ge le", "?$select=inputId&$filter=execution ge 3 and execution le 5&$orderby=inputId&$top=20"),
    ("lt", "?$select=inputId&$filter=executionTime lt 100&$orderby=inputId&$top=20"),
    ("or", "?$select=inputId&$filter=channel eq 'webchat3' or channel eq 'voiceGateway2'&$orderby=inputId&$top=20"),
    ("not", "?$select=inputId&$filter=not (channel eq 'webchat3')&$orderby=inputId&$top=20"),
    (
        "parentheses",
        "?$select=inputId&$filter=(channel eq 'webchat3' or intentScore gt 0.9) and understood eq true&$orderby=inputId&$top=20",
    ),
    ("in", "?$select=inputId&$filter=channel in ('webchat3','voiceGateway2')&$orderby=inputId&$top=20"),
    ("eq null", "?$select=inputId&$filter=intent eq null&$orderby=inputId&$top=20"),
    ("ne null", "?$select=inputId&$filter=intent ne null&$orderby=inputId&$top=20"),
    ("boolean property", "?$select=inputId&$filter=understood&$orderby=inputId&$top=20"),
    ("property eq property", "?$select=inputId&$filter=localeName eq flowLanguage&$orderby=inputId&$top=20"),
    ("datetime literal", "?$select=inputId&$filter=timestamp ge 2026-02-20T00:00:00Z&$orderby=inputId&$top=20"),
    (
        "datetime with offset",
        "?$select=inputId&$filter=timestamp lt 2026-02-20T12:00:00+02:00&$orderby=inputId&$top=20",
    ),
    ("date literal", "?$select=inputId&$filter=date(timestamp) eq 2026-02-20&$orderby=inputId&$top=20"),
    // Text functions.
    ("contains", "?$select=inputId&$filter=contains(inputText,'order')&$orderby=inputId&$top=20"),
    ("startswith", "?$select=inputId&$filter=startswith(intent,'re')&$orderby=inputId&$top=20"),
    ("endswith", "?$select=inputId&$filter=endswith(intent,'s')&$orderby=inputId&$top=20"),
    ("tolower", "?$select=inputId&$filter=tolower(channel) eq 'webchat3'&$orderby=inputId&$top=20"),
    ("toupper", "?$select=inputId&$filter=toupper(channel) eq 'WEBCHAT3'&$orderby=inputId&$top=20"),
    ("length", "?$select=inputId&$filter=length(inputText) gt 30&$orderby=inputId&$top=20"),
    ("indexof", "?$select=inputId&$filter=indexof(inputText,'order') ge 7&$orderby=inputId&$top=20"),
    ("substring 2", "?$select=inputId&$filter=substring(channel,1) eq 'ebchat3'&$orderby=inputId&$top=20"),
    ("substring 3", "?$select=inputId&$filter=substring(intent,0,2) eq 're'&$orderby=inputId&$top=20"),
    ("trim", "?$select=inputId&$filter=trim(channel) eq channel&$orderby=inputId&$top=20"),
    ("concat", "?$select=inputId&$filter=concat(channel,'-x') eq 'webchat3-x'&$orderby=inputId&$top=20"),
    ("matchesPattern", "?$select=inputId&$filter=matchesPattern(intent,'^re.*[dm]$')&$orderby=inputId&$top=20"),
    ("string ordering", "?$select=inputId&$filter=intent gt 'm'&$orderby=inputId&$top=20"),
    ("escaped quote", "?$select=inputId&$filter=inputText ne 'it''s'&$orderby=inputId&$top=5"),
    // Date and time functions.
    ("year", "?$select=inputId&$filter=year(timestamp) eq 2026&$orderby=inputId&$top=20"),
    ("month", "?$select=inputId&$filter=month(timestamp) eq 2&$orderby=inputId&$top=20"),
    ("day", "?$select=inputId&$filter=day(timestamp) eq 20&$orderby=inputId&$top=20"),
    ("hour", "?$select=inputId&$filter=hour(timestamp) eq 9&$orderby=inputId&$top=20"),
    ("minute", "?$select=inputId&$filter=minute(timestamp) lt 10&$orderby=inputId&$top=20"),
    ("second", "?$select=inputId&$filter=second(timestamp) lt 10&$orderby=inputId&$top=20"),
    ("fractionalseconds", "?$select=inputId&$filter=fractionalseconds(timestamp) lt 0.5&$orderby=inputId&$top=20"),
    ("date()", "?$select=inputId&$filter=date(timestamp) ge 2026-02-21&$orderby=inputId&$top=20"),
    ("time()", "?$select=inputId&$filter=time(timestamp) lt 08:00:00&$orderby=inputId&$top=20"),
    ("totaloffsetminutes", "?$select=inputId&$filter=totaloffsetminutes(timestamp) eq 0&$orderby=inputId&$top=5"),
    ("now()", "?$select=inputId&$filter=timestamp lt now()&$orderby=inputId&$top=5"),
    ("mindatetime", "?$select=inputId&$filter=timestamp gt mindatetime()&$orderby=inputId&$top=5"),
    ("maxdatetime", "?$select=inputId&$filter=timestamp lt maxdatetime()&$orderby=inputId&$top=5"),
    ("now() sub duration", "?$select=inputId&$filter=timestamp ge now() sub duration'P36500D'&$orderby=inputId&$top=5"),
    (
        "datetime add duration",
        "?$select=inputId&$filter=timestamp add duration'PT12H' lt 2026-02-21T00:00:00Z&$orderby=inputId&$top=20",
    ),
    (
        "datetime sub datetime",
        "?$select=inputId&$filter=timestamp sub 2026-02-20T00:00:00Z gt duration'P1D'&$orderby=inputId&$top=20",
    ),
    ("totalseconds", "?$select=inputId&$filter=totalseconds(duration'PT1M') eq 60&$orderby=inputId&$top=5"),
    // Arithmetic and numbers.
    ("add", "?$select=inputId&$filter=execution add 1 eq 4&$orderby=inputId&$top=20"),
    ("sub", "?$select=inputId&$filter=execution sub 1 eq 2&$orderby=inputId&$top=20"),
    ("mul", "?$select=inputId&$filter=intentScore mul 10 gt 9&$orderby=inputId&$top=20"),
    ("div", "?$select=inputId&$filter=executionTime div 100 eq 1&$orderby=inputId&$top=20"),
    ("divby", "?$select=inputId&$filter=execution divby 2 eq 1.5&$orderby=inputId&$top=20"),
    ("mod", "?$select=inputId&$filter=execution mod 2 eq 1&$orderby=inputId&$top=20"),
    ("negation", "?$select=inputId&$filter=-execution lt -4&$orderby=inputId&$top=20"),
    ("precedence", "?$select=inputId&$filter=execution add 2 mul 3 eq 9&$orderby=inputId&$top=20"),
    ("round", "?$select=inputId&$filter=round(intentScore) eq 1&$orderby=inputId&$top=20"),
    ("floor", "?$select=inputId&$filter=floor(intentScore mul 10) eq 9&$orderby=inputId&$top=20"),
    ("ceiling", "?$select=inputId&$filter=ceiling(intentScore) eq 1&$orderby=inputId&$top=20"),
    ("decimal literal", "?$select=inputId&$filter=intentScore ge 0.75&$orderby=inputId&$top=20"),
    ("exponent literal", "?$select=inputId&$filter=executionTime lt 1.5e2&$orderby=inputId&$top=20"),
    // Types.
    ("cast to string", "?$select=inputId&$filter=cast(execution,Edm.String) eq '3'&$orderby=inputId&$top=20"),
    ("cast to int", "?$select=inputId&$filter=cast(intentScore mul 10,Edm.Int32) eq 9&$orderby=inputId&$top=20"),
    ("isof", "?$select=inputId&$filter=isof(intent,Edm.String)&$orderby=inputId&$top=20"),
    ("case", "?$select=inputId&$filter=case(channel eq 'webchat3':1,true:0) eq 1&$orderby=inputId&$top=20"),
    // OData 4.01 leniency.
    (
        "operators in upper case",
        "?$select=inputId&$filter=channel EQ 'webchat3' AND execution GT 2&$orderby=inputId&$top=20",
    ),
    ("functions in mixed case", "?$select=inputId&$filter=StartsWith(intent,'re')&$orderby=inputId&$top=20"),
    ("options without $", "?select=inputId&filter=channel eq 'webchat3'&orderby=inputId&top=20"),
    ("options in upper case", "?$SELECT=inputId&$FILTER=channel eq 'webchat3'&$ORDERBY=inputId&$TOP=20"),
    ("parameter alias", "?$select=inputId&$filter=channel eq @c&@c='webchat3'&$orderby=inputId&$top=20"),
    ("in with one value", "?$select=inputId&$filter=channel in ('webchat3')&$orderby=inputId&$top=20"),
    // Collections.
    ("any()", "?$select=inputId&$filter=completedGoals/any()&$orderby=inputId&$top=5"),
    ("any(x: …)", "?$select=inputId&$filter=completedGoals/any(g:g eq 'buy')&$orderby=inputId&$top=5"),
    ("all(x: …)", "?$select=inputId&$filter=completedGoals/all(g:g eq 'buy')&$orderby=inputId&$top=5"),
    ("/$count of a collection", "?$select=inputId&$filter=completedGoals/$count eq 0&$orderby=inputId&$top=5"),
    // $compute.
    ("compute", "?$select=inputId,twice&$compute=execution mul 2 as twice&$orderby=inputId&$top=5"),
    (
        "compute filtered",
        "?$select=inputId&$compute=execution mul 2 as twice&$filter=twice gt 8&$orderby=inputId&$top=20",
    ),
    ("compute ordered", "?$select=inputId,len&$compute=length(inputText) as len&$orderby=len desc,inputId&$top=5"),
    // $apply.
    ("aggregate $count", "?$apply=aggregate($count as n)"),
    ("aggregate sum", "?$apply=aggregate(executionTime with sum as total)"),
    ("aggregate average", "?$apply=aggregate(intentScore with average as mean)"),
    ("aggregate min max", "?$apply=aggregate(executionTime with min as least,executionTime with max as most)"),
    ("countdistinct", "?$apply=aggregate(contactId with countdistinct as contacts)"),
    ("groupby", "?$apply=groupby((channel))&$orderby=channel"),
    ("groupby aggregate", "?$apply=groupby((channel),aggregate($count as n))&$orderby=channel"),
    ("groupby two", "?$apply=groupby((channel,understood),aggregate($count as n))&$orderby=channel,understood"),
    (
        "filter then groupby",
        "?$apply=filter(execution gt 2)/groupby((channel),aggregate($count as n))&$orderby=channel",
    ),
    ("groupby then filter", "?$apply=groupby((intent),aggregate($count as n))/filter(n gt 100)&$orderby=intent"),
    ("$filter on aggregates", "?$apply=groupby((channel),aggregate($count as n))&$filter=n gt 100&$orderby=channel"),
    ("$orderby an aggregate", "?$apply=groupby((channel),aggregate($count as n))&$orderby=n desc,channel"),
    ("$count of groups", "?$apply=groupby((intent))&$count=true&$orderby=intent&$top=3"),
    (
        "orderby top",
        "?$apply=groupby((intent),aggregate($count as n))/orderby(n desc,intent)/top(3)&$orderby=n desc,intent",
    ),
    ("skip", "?$apply=groupby((channel),aggregate($count as n))/orderby(channel)/skip(1)&$orderby=channel"),
    ("topcount", "?$apply=groupby((intent),aggregate($count as n))/topcount(2,n)&$orderby=n desc"),
    ("bottomcount", "?$apply=groupby((intent),aggregate($count as n))/bottomcount(2,n)&$orderby=n"),
    ("topsum", "?$apply=groupby((channel),aggregate(executionTime with sum as t))/topsum(1000,t)&$orderby=channel"),
    (
        "toppercent",
        "?$apply=groupby((channel),aggregate(executionTime with sum as t))/toppercent(50,t)&$orderby=channel",
    ),
    (
        "compute in apply",
        "?$apply=compute(execution mul 2 as twice)/groupby((twice),aggregate($count as n))&$orderby=twice",
    ),
    (
        "compute after groupby",
        "?$apply=groupby((channel),aggregate($count as n))/compute(n mul 2 as twice)&$orderby=channel",
    ),
    ("concat", "?$apply=concat(aggregate($count as n),groupby((channel),aggregate($count as n)))"),
    ("identity", "?$apply=identity&$select=inputId&$orderby=inputId&$top=3"),
    (
        "top before groupby",
        "?$apply=orderby(inputId)/top(100)/groupby((channel),aggregate($count as n))&$orderby=channel",
    ),
    ("search", "?$search=order&$select=inputId&$orderby=inputId&$top=5"),
    // Control information.
    ("metadata=none", "?$select=inputId&$orderby=inputId&$top=3&$format=application/json;odata.metadata=none"),
    ("metadata=full", "?$select=inputId&$orderby=inputId&$top=3&$format=application/json;odata.metadata=full"),
];

/// One request's answers.
#[derive(Debug, Serialize)]
struct Row {
    feature: &'static str,
    request: &'static str,
    parley: Answer,
    peer: Option<Answer>,
    /// Both answered with a success and the same data.
    agree: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Answer {
    status: u16,
    /// A failure's body has the OData error format.
    error_format: Option<bool>,
    #[serde(serialize_with = "as_text")]
    body: Bytes,
}

fn as_text<S: serde::Serializer>(body: &Bytes, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(body))
}

impl Answer {
    fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub async fn matrix(o: MatrixOptions) -> Result<()> {
    let target = target_dir()?;
    let parley_bin = parley_binary(o.parley_bin.as_deref(), &target)?;
    let scratch = tempfile::Builder::new().prefix("matrix-").tempdir_in(target.join("bench")).or_else(|_| {
        std::fs::create_dir_all(target.join("bench"))?;
        tempfile::Builder::new().prefix("matrix-").tempdir_in(target.join("bench"))
    })?;
    let data =
        Arc::new(Dataset::generate(Spec { records: o.records, projects: 1, seed: o.seed, arrival: Arrival::Time }));

    let (server, key) = start_parley(&parley_bin, &scratch.path().join("parley-data"), None)?;
    let auth = ("x-api-key", header(&key));
    let mut connection = Connection::new(server.addr);
    let workload = Arc::new(create_projects(&mut connection, &data, &auth).await?);
    let ingest = [auth.clone(), ("content-type", header("application/x-ndjson"))];
    for body in workload.ingest_bodies(1000) {
        let (status, answer) = connection
            .send(Method::POST, "/new/v2.0/analytics/records", &ingest, body)
            .await
            .map_err(|e| format!("ingest: {e}"))?;
        if !status.is_success() {
            return Err(format!("ingest answered {status}: {}", String::from_utf8_lossy(&answer)).into());
        }
    }
    let reads = [auth.clone(), ("accept", header("application/json"))];
    let mut parley_answers = Vec::new();
    for (_, request) in REQUESTS {
        parley_answers.push(get(&mut connection, &format!("/v2.4/Analytics{}", encode(request)), &reads).await);
    }
    server.stop();

    let peer_answers = if o.no_peer {
        None
    } else {
        let dir = crate::peer::directory(&target);
        crate::peer::setup(&dir)?;
        crate::peer::prepare(&dir, &workload)?;
        let mut peer = crate::peer::start(&dir)?;
        let mut connection = Connection::new(peer.addr);
        let headers = [("accept", header("application/json"))];
        let mut answers = Vec::new();
        for (_, request) in REQUESTS {
            let answer =
                get(&mut connection, &format!("/odata/v4/analytics/Records{}", encode(request)), &headers).await;
            if answer.status == 0 {
                // It went down: start it again for the next request.
                peer.stop();
                peer = crate::peer::start(&dir)?;
                connection = Connection::new(peer.addr);
            }
            answers.push(answer);
        }
        peer.stop();
        let _ = std::fs::remove_file(dir.join("db/data/parley.bench-Records.csv"));
        Some(answers)
    };

    let mut peer_answers = peer_answers.map(Vec::into_iter);
    let rows: Vec<Row> = REQUESTS
        .iter()
        .zip(parley_answers)
        .map(|(&(feature, request), parley)| {
            let peer = peer_answers.as_mut().and_then(Iterator::next);
            let agree = peer.as_ref().filter(|p| p.success() && parley.success()).map(|p| same(&parley.body, &p.body));
            Row { feature, request, parley, peer, agree }
        })
        .collect();
    let report = report(&rows, o.no_peer);
    println!("{report}");
    let out = o.out.clone().unwrap_or_else(|| target.join("bench/matrix-latest.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&rows)?)?;
    println!("Answers written to {}", out.display());
    Ok(())
}

/// One GET. A connection the server closes without an answer (it crashed or gave up) counts as
/// status 0, a server error, and the next request opens a new connection.
async fn get(connection: &mut Connection, path: &str, headers: &[(&'static str, http::HeaderValue)]) -> Answer {
    match connection.send(Method::GET, path, headers, Bytes::new()).await {
        Ok((status, body)) => {
            let error_format = (!status.is_success()).then(|| {
                serde_json::from_slice::<Json>(&body)
                    .is_ok_and(|json| json["error"]["code"].is_string() && json["error"]["message"].is_string())
            });
            Answer { status: status.as_u16(), error_format, body }
        }
        Err(e) => {
            eprintln!("matrix: GET {path}: {e}");
            *connection = Connection::new(connection.addr());
            Answer { status: 0, error_format: Some(false), body: Bytes::new() }
        }
    }
}

/// The request as sent: spaces, quotes and other characters a URL cannot hold encoded.
fn encode(request: &str) -> String {
    let mut out = String::new();
    for byte in request.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'?'
            | b'&'
            | b'='
            | b'/'
            | b'$'
            | b'('
            | b')'
            | b','
            | b'\''
            | b':'
            | b'@'
            | b'*' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Whether two successful answers hold the same data: the `value` rows in order (or the count,
/// or the text), each property compared by meaning (numbers by value, times by instant), the
/// control information left aside.
fn same(a: &Bytes, b: &Bytes) -> bool {
    match (serde_json::from_slice::<Json>(a), serde_json::from_slice::<Json>(b)) {
        (Ok(a), Ok(b)) => {
            let count = |j: &Json| j.get("@odata.count").and_then(number);
            equal(&a["value"], &b["value"]) && (count(&a).is_none() || count(&b).is_none() || count(&a) == count(&b))
        }
        _ => String::from_utf8_lossy(a).trim() == String::from_utf8_lossy(b).trim(),
    }
}

fn number(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y)),
        // The properties both have (a server may add the key to what $select names, as CAP
        // does), at least one.
        (Json::Object(a), Json::Object(b)) => {
            let common: Vec<&String> = a.keys().filter(|k| !k.contains('@') && b.contains_key(*k)).collect();
            !common.is_empty() && common.iter().all(|k| equal(&a[*k], &b[*k]))
        }
        (Json::String(x), Json::String(y)) if x != y => {
            match (parley_core::value::parse_date_time(x), parley_core::value::parse_date_time(y)) {
                (Ok(s), Ok(t)) => s == t,
                _ => false,
            }
        }
        (x, y) if x == y => true,
        (x, y) => match (number(x), number(y)) {
            (Some(s), Some(t)) => s == t || (s - t).abs() <= 1e-9 * s.abs().max(t.abs()),
            _ => false,
        },
    }
}

fn classify(answer: &Answer) -> &'static str {
    match answer.status {
        200..=299 => "answered",
        501 => "501",
        0 | 500..=599 => "5xx",
        _ => "refused",
    }
}

/// The table of every request and the totals, as Markdown.
fn report(rows: &[Row], no_peer: bool) -> String {
    let mut out = String::from("| feature | parley | SAP CAP | agree |\n| --- | --- | --- | --- |\n");
    for row in rows {
        let peer = row.peer.as_ref().map_or("—".to_owned(), |p| format!("{} ({})", p.status, classify(p)));
        let agree = match row.agree {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} ({}) | {peer} | {agree} |\n",
            row.feature,
            row.parley.status,
            classify(&row.parley)
        ));
    }
    let tally = |answers: Vec<&Answer>| -> String {
        let of = |kind: &str| answers.iter().filter(|a| classify(a) == kind).count();
        let format = answers.iter().filter(|a| a.error_format == Some(false)).count();
        format!(
            "{} answered, {} refused, {} not implemented (501), {} server errors; {} failures not in the OData error format",
            of("answered"),
            of("refused"),
            of("501"),
            of("5xx"),
            format
        )
    };
    out.push_str(&format!("\n{} requests. parley: {}.\n", rows.len(), tally(rows.iter().map(|r| &r.parley).collect())));
    if !no_peer {
        out.push_str(&format!("SAP CAP: {}.\n", tally(rows.iter().filter_map(|r| r.peer.as_ref()).collect())));
        let both = rows.iter().filter(|r| r.agree.is_some()).count();
        let agree = rows.iter().filter(|r| r.agree == Some(true)).count();
        out.push_str(&format!("Both answered {both}; the answers agree on {agree}.\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_agree_by_meaning() {
        let a = Bytes::from(r#"{"@odata.context":"x","value":[{"n":3,"t":"2026-02-20T00:00:00.000Z","s":0.1}]}"#);
        let b = Bytes::from(
            r#"{"value":[{"k":1,"n":"3","t":"2026-02-20T00:00:00Z","s":0.1000000000001,"@odata.id":"y"}]}"#,
        );
        assert!(same(&a, &b));
        let c = Bytes::from(r#"{"value":[{"n":4,"t":"2026-02-20T00:00:00Z","s":0.1}]}"#);
        assert!(!same(&a, &c));
        assert!(same(&Bytes::from("2500"), &Bytes::from("2500\n")));
        assert_eq!(encode("?$filter=a eq 'b c'&x=\"y\""), "?$filter=a%20eq%20'b%20c'&x=%22y%22");
    }
}
