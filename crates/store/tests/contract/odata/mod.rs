//! OData reads: the records a query selects, in the order it asks, compared with a reference
//! evaluator that knows no SQL.

pub mod aggregates;
mod evaluate;
pub mod filters;
pub mod paging;

use parley_core::field::idx;
use parley_core::value::format_time;
use parley_core::{ObjectId, Project, Record, Value};
use parley_odata::{EntityType, IdName, Operand, Query, parse_query};
use parley_store::ODataRead;
use serde_json::{Value as Json, json};
use time::Duration;

use crate::TestDb;
use crate::fixtures::{BASE, record};

const ODATA_RECORDS: u64 = 40;

/// Records for OData queries: nulls in every nullable kind, text whose byte order differs from
/// dictionary order, JSON values, and times across two months and many hours.
fn odata_record(project: &Project, n: u64) -> Record {
    let intents = ["Zebra", "apple", "éclair", "a b", "Apple", "it's"];
    let channels = ["web", "Web", "whatsapp", "ß", "voice"];
    let texts = ["I want a refund", "hello", "it's broken", "Refund now", "refund", "42", "-1.5e3", " 7", "TRUE"];
    let i = n as usize;
    let input_data = match n % 3 {
        1 => json!({"a": n % 2}),
        2 => json!("text"),
        _ => Json::Null,
    };
    let tracked = [Json::Null, json!([]), json!(["buy"]), json!(["buy", "sign-up"]), json!(["x"])][i % 5].clone();
    record(
        project,
        n,
        json!({
            "timestamp": format_time(BASE + Duration::hours(19 * n as i64) + Duration::minutes(n as i64)),
            "intent": if n.is_multiple_of(4) { Json::Null } else { json!(intents[i % 6]) },
            "channel": channels[i % 5],
            "intentScore": if n.is_multiple_of(3) { Json::Null } else { json!((n % 4) as f64 / 4.0) },
            "understood": if n.is_multiple_of(5) { Json::Null } else { json!(n.is_multiple_of(2)) },
            "execution": if n.is_multiple_of(7) { Json::Null } else { json!(n % 4) },
            "executionTime": n as f64 * 0.5,
            "inputText": if n.is_multiple_of(6) { Json::Null } else { json!(texts[i % texts.len()]) },
            "inputData": input_data,
            "rating": if n.is_multiple_of(2) { Json::Null } else { json!(n as f64 - 20.0) },
            "handoverEscalations": n % 3,
            "contactId": format!("c{}", n % 4),
            "trackedGoals": tracked,
            "completedGoals": if n.is_multiple_of(3) { json!(["buy"]) } else { Json::Null },
        }),
    )
}

fn odata_fixture(project: &Project, noise: &Project) -> Vec<Record> {
    let mut all: Vec<Record> = (1..=ODATA_RECORDS).map(|n| odata_record(project, n)).collect();
    all.extend((100..105).map(|n| odata_record(noise, n)));
    all
}

fn analytics() -> EntityType {
    EntityType::analytics(IdName::Id)
}

fn odata_query(text: &str) -> Query {
    let pairs: Vec<(String, String)> = text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    match parse_query(&analytics(), &pairs) {
        Ok(query) => query,
        Err(e) => panic!("{text}: {e}"),
    }
}

/// Every row the query selects among `projects`, with the values of `columns`.
async fn odata_rows(db: &TestDb, query: &Query, projects: &[ObjectId], columns: &[Operand]) -> Vec<Vec<Value>> {
    let entity = analytics();
    let read = ODataRead { entity: &entity, query, projects, columns, limit: 10_000 };
    db.store.odata_rows(read).await.unwrap_or_else(|e| panic!("{query:?}: {e}"))
}

fn id_column() -> Vec<Operand> {
    vec![Operand::Property(idx::ID)]
}

fn texts(rows: &[Vec<Value>]) -> Vec<String> {
    rows.iter().map(|row| row.iter().map(|v| v.to_json().to_string()).collect::<Vec<_>>().join(" ")).collect()
}
