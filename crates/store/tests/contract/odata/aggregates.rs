//! `$apply`: grouping and aggregates.

use parley_core::field::idx;
use parley_core::{Record, Value};
use parley_store::{ODataRead, on_both_engines};

use super::evaluate::{as_number, order_of};
use super::{analytics, odata_fixture, odata_query, odata_rows, texts};
use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, compare_values, create_project};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    odata_groups_and_aggregates,
);

async fn odata_groups_and_aggregates(db: &TestDb) {
    odata_aggregate_transcript(db).await;
}

pub async fn odata_aggregate_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let all = odata_fixture(&project, &noise);
    db.store.insert_records(all.clone(), BASE).await.unwrap();
    let mine: Vec<Record> = all.iter().filter(|r| r.project_id() == project.id).cloned().collect();
    let field = |name: &str| parley_core::field_index(name).unwrap();
    let mut transcript = Vec::new();

    let grouped = odata_query(
        "$apply=groupby((intent),aggregate($count as n,executionTime with sum as total,intentScore with average as avg,\
         execution with max as most,timestamp with min as first,contactId with countdistinct as contacts,\
         rating with sum as ratings))",
    );
    let rows = odata_rows(db, &grouped, &[project.id], &grouped.select).await;
    let mut intents: Vec<Value> = mine.iter().map(|r| r.get(field("intent")).clone()).collect();
    intents.sort_by(compare_values);
    intents.dedup();
    let mut expected = Vec::new();
    for intent in &intents {
        let group: Vec<&Record> = mine.iter().filter(|r| r.get(field("intent")) == intent).collect();
        let numbers = |name: &str| -> Vec<f64> { group.iter().filter_map(|r| as_number(r.get(field(name)))).collect() };
        let scores = numbers("intentScore");
        let ratings = numbers("rating");
        let mut contacts: Vec<&Value> = group.iter().map(|r| r.get(field("contactId"))).collect();
        contacts.sort_by(|a, b| compare_values(a, b));
        contacts.dedup();
        let most = group.iter().filter_map(|r| match r.get(field("execution")) {
            Value::Integer(i) => Some(*i),
            _ => None,
        });
        let first = group.iter().map(|r| r.get(idx::TIMESTAMP).clone()).min_by(compare_values).unwrap();
        expected.push(vec![
            intent.clone(),
            Value::Integer(group.len() as i64),
            Value::Number(numbers("executionTime").iter().sum()),
            if scores.is_empty() {
                Value::Null
            } else {
                Value::Number(scores.iter().sum::<f64>() / scores.len() as f64)
            },
            most.max().map_or(Value::Null, Value::Integer),
            first,
            Value::Integer(contacts.len() as i64),
            if ratings.is_empty() { Value::Null } else { Value::Number(ratings.iter().sum()) },
        ]);
    }
    assert_eq!(texts(&rows), texts(&expected), "groupby intent");
    assert_eq!(db.store.odata_count(&analytics(), &grouped, &[project.id]).await.unwrap(), intents.len() as u64);
    transcript.extend(texts(&rows));

    let entity = analytics();
    let mut filtered = odata_query(
        "$apply=groupby((intent),aggregate($count as n,executionTime with sum as total))&$filter=n ge 6&$orderby=n desc,total",
    );
    let everything = odata_rows(db, &filtered, &[project.id], &filtered.select).await;
    let mut expected: Vec<Vec<Value>> = expected
        .iter()
        .filter(|row| matches!(row[1], Value::Integer(n) if n >= 6))
        .map(|row| vec![row[0].clone(), row[1].clone(), row[2].clone()])
        .collect();
    expected.sort_by(|a, b| order_of(&b[1], &a[1]).then(order_of(&a[2], &b[2])).then(compare_values(&a[0], &b[0])));
    assert_eq!(texts(&everything), texts(&expected), "filtered and ordered groups");
    let count = db.store.odata_count(&entity, &filtered, &[project.id]).await.unwrap();
    assert_eq!(count, expected.len() as u64);
    let mut paged = Vec::new();
    let columns = filtered.select.clone();
    loop {
        let read =
            ODataRead { entity: &entity, query: &filtered, projects: &[project.id], columns: &columns, limit: 2 };
        let rows = db.store.odata_rows(read).await.unwrap();
        paged.extend(rows.clone());
        if rows.len() < 2 {
            break;
        }
        let last = rows.last().unwrap();
        let values: Vec<Value> = filtered
            .order
            .iter()
            .map(|k| last[columns.iter().position(|c| *c == k.operand).unwrap()].clone())
            .collect();
        filtered.after = Some(values);
    }
    assert_eq!(texts(&paged), texts(&expected), "groups by pages of 2");
    transcript.extend(texts(&paged));

    let total = odata_query("$apply=aggregate($count as n,rating with sum as s,intent with max as last)");
    let rows = odata_rows(db, &total, &[project.id, noise.id], &total.select).await;
    let ratings: f64 = all.iter().filter_map(|r| as_number(r.get(field("rating")))).sum();
    let last = all.iter().map(|r| r.get(field("intent")).clone()).max_by(compare_values).unwrap();
    assert_eq!(texts(&rows), texts(&[vec![Value::Integer(all.len() as i64), Value::Number(ratings), last]]));
    transcript.extend(texts(&rows));

    let nothing = odata_query("$apply=filter(intent eq 'none')/aggregate($count as n,rating with sum as s)");
    let rows = odata_rows(db, &nothing, &[project.id], &nothing.select).await;
    assert_eq!(texts(&rows), texts(&[vec![Value::Integer(0), Value::Null]]), "aggregates of no rows");

    let pairs = odata_query("$apply=filter(channel eq 'web')/groupby((channel,understood))&$count=true");
    let rows = odata_rows(db, &pairs, &[project.id], &pairs.select).await;
    let mut expected: Vec<Vec<Value>> = mine
        .iter()
        .filter(|r| r.get(field("channel")) == &Value::Text("web".into()))
        .map(|r| vec![r.get(field("channel")).clone(), r.get(field("understood")).clone()])
        .collect();
    expected.sort_by(|a, b| compare_values(&a[1], &b[1]));
    expected.dedup();
    assert_eq!(texts(&rows), texts(&expected), "groupby two properties after a filter");
    transcript.extend(texts(&rows));
    transcript
}
