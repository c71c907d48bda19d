//! Listing records page by page, by cursor, in every order.

use std::cmp::Ordering;

use parley_core::field::idx;
use parley_core::value::format_time;
use parley_core::{ListParams, Project, Record, RecordFilter, RecordPage, RecordQuery, SortKey, Value};
use parley_store::on_both_engines;
use serde_json::{Value as Json, json};
use time::Duration;

use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, compare_values, create_project, filter_of, ids, params, record};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    listing_pages_by_cursor_both_ways_in_every_order,
);

const PAGED: u64 = 23;

/// A record whose sortable fields have ties, nulls and text whose byte order differs from
/// dictionary order.
fn paged_record(project: &Project, n: u64) -> Record {
    let intents = ["Zebra", "apple", "éclair", "a b", "Apple"];
    let channels = ["web", "Web", "whatsapp", "ß", "voice", "ab"];
    let i = n as usize;
    record(
        project,
        n,
        json!({
            "timestamp": format_time(BASE + Duration::minutes((n % 7) as i64)),
            "intent": if n.is_multiple_of(4) { Json::Null } else { json!(intents[i % 5]) },
            "channel": channels[i % 6],
            "intentScore": if n.is_multiple_of(3) { Json::Null } else { json!((n % 4) as f64 / 4.0) },
            "understood": if n.is_multiple_of(5) { Json::Null } else { json!(n.is_multiple_of(2)) },
            "execution": if n.is_multiple_of(7) { Json::Null } else { json!(n % 4) },
        }),
    )
}

fn expected_order(records: &[Record], sort: &[SortKey]) -> Vec<String> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| {
        sort.iter()
            .map(|key| {
                let order = compare_values(a.get(key.field), b.get(key.field));
                if key.descending { order.reverse() } else { order }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    ids(&sorted)
}

pub fn page_text(page: &RecordPage) -> String {
    let items: Vec<Json> = page.items.iter().map(|r| Json::Object(r.to_json())).collect();
    json!({"items": items, "total": page.total, "next": page.next, "previous": page.previous}).to_string()
}

/// Walks every page forwards by `next`, then backwards by `previous` from the last page, checking
/// both walks against the expected order; returns the pages seen, as text.
async fn walk(db: &TestDb, base: ListParams, all: &[Record], transcript: &mut Vec<String>) {
    let first_query = RecordQuery::parse(base.clone()).unwrap();
    let expected = expected_order(
        &all.iter()
            .filter(|r| r.project_id() == first_query.filter.project_id)
            .filter(|r| {
                first_query
                    .filter
                    .contact_id
                    .as_ref()
                    .is_none_or(|c| r.get(idx::CONTACT_ID).as_text() == Some(c.as_str()))
            })
            .cloned()
            .collect::<Vec<_>>(),
        &first_query.sort,
    );
    let limit = first_query.limit as usize;

    let mut forward = Vec::new();
    let mut page = db.store.list_records(&first_query).await.unwrap();
    assert_eq!(page.previous, None, "the first page has no previous page");
    let mut pages = 1;
    loop {
        assert_eq!(page.total, expected.len() as u64);
        transcript.push(page_text(&page));
        forward.extend(ids(&page.items));
        let Some(next) = page.next.clone() else { break };
        assert_eq!(page.items.len(), limit, "only the last page is short");
        let query = RecordQuery::parse(ListParams { next: Some(next), ..base.clone() }).unwrap();
        page = db.store.list_records(&query).await.unwrap();
        pages += 1;
        assert!(pages <= expected.len() + 1, "paging does not end");
    }
    assert_eq!(forward, expected, "forward by next, sort {:?}", base.sort);
    assert_eq!(pages, expected.len().div_ceil(limit).max(1));

    let mut backward = ids(&page.items);
    while let Some(previous) = page.previous.clone() {
        let query = RecordQuery::parse(ListParams { previous: Some(previous), ..base.clone() }).unwrap();
        page = db.store.list_records(&query).await.unwrap();
        assert_eq!(page.items.len(), limit, "pages before the last are full");
        assert!(page.next.is_some(), "a page reached backwards has a next page");
        transcript.push(page_text(&page));
        let mut earlier = ids(&page.items);
        earlier.append(&mut backward);
        backward = earlier;
        assert!(backward.len() <= expected.len(), "paging backwards does not end");
    }
    assert_eq!(backward, expected, "backward by previous, sort {:?}", base.sort);

    if expected.len() > limit {
        let skipped = RecordQuery::parse(ListParams { skip: Some(limit.to_string()), ..base.clone() }).unwrap();
        let page = db.store.list_records(&skipped).await.unwrap();
        assert_eq!(ids(&page.items), expected[limit..(2 * limit).min(expected.len())].to_vec());
        assert!(page.previous.is_some());
        transcript.push(page_text(&page));
    }
}

async fn listing_pages_by_cursor_both_ways_in_every_order(db: &TestDb) {
    paging_transcript(db).await;
}

pub async fn paging_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let mut all: Vec<Record> = (1..=PAGED).map(|n| paged_record(&project, n)).collect();
    all.extend((100..110).map(|n| paged_record(&noise, n)));
    // Inserted in an order that is none of the sort orders.
    let mut shuffled = all.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    db.store.insert_records(shuffled, BASE).await.unwrap();

    let mut transcript = Vec::new();
    let sorts = [
        None,
        Some("intent:desc"),
        Some("intent:asc,timestamp:desc"),
        Some("channel:asc"),
        Some("channel:desc,intentScore:asc,id:desc"),
        Some("intentScore:asc,id:desc"),
        Some("understood:desc,execution:asc"),
        Some("execution:desc,timestamp:asc"),
    ];
    for sort in sorts {
        for limit in [5, 100] {
            walk(db, params(&project, sort, limit), &all, &mut transcript).await;
        }
    }
    let by_contact = ListParams { contact_id: Some("c1".into()), ..params(&project, Some("intent:desc"), 3) };
    walk(db, by_contact, &all, &mut transcript).await;

    let window = RecordFilter {
        from: Some(BASE + Duration::minutes(2)),
        to: Some(BASE + Duration::minutes(5)),
        session_id: Some("s2".into()),
        ..filter_of(&project)
    };
    let in_window = all
        .iter()
        .filter(|r| r.project_id() == project.id && r.get(idx::SESSION_ID) == &Value::Text("s2".into()))
        .filter(|r| matches!(r.get(idx::TIMESTAMP), Value::Time(t) if *t >= BASE + Duration::minutes(2) && *t < BASE + Duration::minutes(5)))
        .count();
    assert_eq!(db.store.count_records(&window).await.unwrap(), in_window as u64);
    transcript.push(in_window.to_string());
    transcript
}
