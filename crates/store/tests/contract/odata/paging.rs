//! Paging OData answers by keyset, in every order.

use parley_core::field::idx;
use parley_core::{Record, Value};
use parley_odata::{Operand, skiptoken};
use parley_store::{ODataRead, on_both_engines};

use super::evaluate::{evaluate, sorted_by};
use super::{analytics, odata_fixture, odata_query, texts};
use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, create_project};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    odata_pages_by_keyset_in_every_order,
);

async fn odata_pages_by_keyset_in_every_order(db: &TestDb) {
    odata_paging_transcript(db).await;
}

/// Pages through every order with a small page, continuing after the order keys' values of the
/// last row as a skip token does, and compares with the order computed here.
pub async fn odata_paging_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let mut all = odata_fixture(&project, &noise);
    all.reverse();
    db.store.insert_records(all.clone(), BASE).await.unwrap();
    let mine: Vec<Record> = all.iter().filter(|r| r.project_id() == project.id).cloned().collect();
    let entity = analytics();
    let mut transcript = Vec::new();
    let orders = [
        "",
        "$orderby=timestamp",
        "$orderby=timestamp desc",
        "$orderby=intent desc",
        "$orderby=intent,timestamp desc",
        "$orderby=intentScore,execution desc",
        "$orderby=understood desc,channel",
        "$orderby=execution desc,id desc",
        "$orderby=rating&$filter=intent ne null",
        "$orderby=channel desc&$skip=4",
    ];
    for options in orders {
        for limit in [3u64, 7] {
            let mut query = odata_query(options);
            let expected: Vec<String> = sorted_by(&mine, &query.order)
                .iter()
                .filter(|r| query.filter.as_ref().is_none_or(|f| evaluate(f, r) == Value::Bool(true)))
                .skip(query.skip as usize)
                .map(|r| r.id().to_owned())
                .collect();
            let columns: Vec<Operand> = query.order.iter().map(|k| k.operand).collect();
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let read =
                    ODataRead { entity: &entity, query: &query, projects: &[project.id], columns: &columns, limit };
                let rows = db.store.odata_rows(read).await.unwrap();
                transcript.push(format!("{options} {limit}: {}", texts(&rows).join(";")));
                pages += 1;
                assert!(pages <= expected.len() + 2, "{options}: paging does not end");
                let Some(last) = rows.last().cloned() else { break };
                let id_at = columns.iter().position(|c| *c == Operand::Property(idx::ID)).unwrap();
                seen.extend(rows.iter().map(|row| row[id_at].as_text().unwrap().to_owned()));
                if (rows.len() as u64) < limit {
                    break;
                }
                // As a nextLink does: $skip was applied once; continue after the last row.
                query.skip = 0;
                let token = skiptoken::encode(&query, &entity, &last);
                query = odata_query(&format!("{}&$skiptoken={token}", options.replace("&$skip=4", "")));
            }
            assert_eq!(seen, expected, "{options} by pages of {limit}");
        }
    }
    transcript
}
