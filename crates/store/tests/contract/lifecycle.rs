//! Erasure, retention and closing: what leaves the store, and what a close keeps.

use std::sync::Arc;

use parley_core::field::idx;
use parley_core::value::format_time;
use parley_core::{Erasure, Project, Record, RecordQuery, Task, TaskStatus, Value};
use parley_store::{IngestCounts, StoreError, on_both_engines};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::TestDb;
use crate::fixtures::{BASE, WINDOW, bootstrap, by_input, create_project, filter_of, ids, oid, params, record, sorted};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    erasure_deletes_what_it_matches_batch_by_batch,
    a_failed_task_keeps_its_reason_and_forgets_its_request,
    retention_purges_expired_records_in_batches,
    closing_commits_accepted_writes_and_refuses_later_ones,
);

fn erasure(contacts: Option<&[&str]>, start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Erasure {
    Erasure {
        contact_ids: contacts.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
        timestamp_start: start,
        timestamp_end: end,
    }
}

async fn ids_in(db: &TestDb, project: &Project) -> Vec<String> {
    let query = RecordQuery::parse(params(project, None, 100)).unwrap();
    let mut found = ids(&db.store.list_records(&query).await.unwrap().items);
    found.sort();
    found
}

async fn erasure_deletes_what_it_matches_batch_by_batch(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let at = |minutes: i64| format_time(BASE + Duration::minutes(minutes));
    // Records 1..=9: contact c{n % 3}, timestamp BASE + n minutes.
    let mut records: Vec<Record> = (1..=9).map(|n| record(&project, n, json!({"timestamp": at(n as i64)}))).collect();
    records.push(record(&other, 10, json!({"contactId": "c1"})));
    db.store.insert_records(records, BASE).await.unwrap();
    // Pending updates are erased by the time they were received.
    let received = BASE + Duration::minutes(3);
    let waiting = by_input(&project, "c1", "later", json!({"custom1": "x"}));
    assert!(db.store.update_records(waiting, received, Some(received + WINDOW)).await.unwrap().deferred);
    let outside = by_input(&project, "c1", "outside", json!({"custom1": "x"}));
    assert!(db.store.update_records(outside, BASE, Some(received + WINDOW)).await.unwrap().deferred);

    // c1 is records 1, 4, 7; within [minute 2, minute 7] that is 4 and 7.
    let request =
        erasure(Some(&["c1", "nobody"]), Some(BASE + Duration::minutes(2)), Some(BASE + Duration::minutes(7)));
    let task = Task::erasure(org.id, project.id, org.admin.user_id, request, BASE);
    db.store.create_task(task.clone()).await.unwrap();
    assert_eq!(db.store.get_task(org.id, task.id).await.unwrap(), Some(task.clone()));
    assert_eq!(db.store.get_task(oid(0xa999), task.id).await.unwrap(), None, "only within its organisation");
    assert_eq!(db.store.next_task().await.unwrap(), Some(task.clone()));

    let started = BASE + Duration::minutes(1);
    assert_eq!(db.store.erase_batch(&task, 1, started).await.unwrap(), 1);
    let running = db.store.get_task(org.id, task.id).await.unwrap().unwrap();
    assert_eq!((running.status, running.deleted, running.started_at), (TaskStatus::Running, 1, Some(started)));
    assert_eq!(db.store.erase_batch(&task, 1, started + Duration::minutes(1)).await.unwrap(), 1);
    assert_eq!(db.store.erase_batch(&task, 1, started + Duration::minutes(2)).await.unwrap(), 0);
    let finished = started + Duration::minutes(3);
    db.store.finish_task(&task, None, finished).await.unwrap();

    let done = db.store.get_task(org.id, task.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!((done.deleted, done.started_at, done.finished_at), (2, Some(started), Some(finished)));
    assert_eq!(done.erasure, None, "the request is forgotten once done");
    assert_eq!(db.store.next_task().await.unwrap(), None);
    let left: Vec<String> = [1, 2, 3, 5, 6, 8, 9].iter().map(|n| format!("{n:024x}")).collect();
    assert_eq!(ids_in(db, &project).await, left);
    assert_eq!(db.store.get_record(&[project.id], oid(4)).await.unwrap(), None);
    assert_eq!(ids_in(db, &other).await, vec![format!("{:024x}", 10)], "other projects are untouched");
    let counts = db
        .store
        .insert_records(vec![record(&project, 11, json!({"contactId": "c1", "inputId": "later"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0, "the contact's pending updates are erased too");
    let counts = db
        .store
        .insert_records(vec![record(&project, 12, json!({"contactId": "c1", "inputId": "outside"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1, "but only those received within the bounds");

    // Finishing twice changes nothing; every contact, no bounds, empties the project.
    db.store.finish_task(&task, Some("late".into()), finished + Duration::minutes(1)).await.unwrap();
    assert_eq!(db.store.get_task(org.id, task.id).await.unwrap().unwrap(), done);
    let everything = Task::erasure(org.id, project.id, org.admin.user_id, erasure(None, None, None), finished);
    db.store.create_task(everything.clone()).await.unwrap();
    assert_eq!(db.store.erase_batch(&everything, 1000, finished).await.unwrap(), 9);
    assert!(ids_in(db, &project).await.is_empty());
    assert_eq!(ids_in(db, &other).await.len(), 1);
}

async fn a_failed_task_keeps_its_reason_and_forgets_its_request(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let first = Task::erasure(org.id, project.id, org.admin.user_id, erasure(Some(&["c1"]), None, None), BASE);
    let second =
        Task::erasure(org.id, project.id, org.admin.user_id, erasure(None, None, None), BASE + Duration::seconds(1));
    db.store.create_task(second.clone()).await.unwrap();
    db.store.create_task(first.clone()).await.unwrap();
    assert_eq!(db.store.next_task().await.unwrap().map(|t| t.id), Some(first.id), "oldest first");
    db.store.finish_task(&first, Some("The deletion failed.".into()), BASE + Duration::minutes(1)).await.unwrap();
    let failed = db.store.get_task(org.id, first.id).await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::Error);
    assert_eq!(failed.error.as_deref(), Some("The deletion failed."));
    assert_eq!(failed.erasure, None);
    assert_eq!(db.store.next_task().await.unwrap().map(|t| t.id), Some(second.id));
}

async fn retention_purges_expired_records_in_batches(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let expiring = |project: &Project, n: u64, expires: Option<OffsetDateTime>| {
        let mut values = record(project, n, json!({})).values().to_vec();
        values[idx::EXPIRES_AT] = expires.map_or(Value::Null, Value::Time);
        Record::from_values(values)
    };
    let now = BASE + Duration::days(30);
    let records = vec![
        expiring(&project, 1, Some(now - Duration::days(1))),
        expiring(&project, 2, Some(now)),
        expiring(&project, 3, Some(now - Duration::milliseconds(1))),
        expiring(&project, 4, Some(now + Duration::milliseconds(1))),
        expiring(&project, 5, None),
        expiring(&other, 6, Some(now - Duration::days(1))),
    ];
    db.store.insert_records(records, BASE).await.unwrap();
    assert_eq!(sorted(db.store.all_project_ids().await.unwrap()), vec![project.id, other.id]);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 2);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 1);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 0);
    assert_eq!(ids_in(db, &project).await, vec![format!("{:024x}", 4), format!("{:024x}", 5)]);
    assert_eq!(ids_in(db, &other).await.len(), 1, "one project at a time");
}

async fn closing_commits_accepted_writes_and_refuses_later_ones(db: &TestDb) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    type Write = Pin<Box<dyn Future<Output = Result<IngestCounts, StoreError>> + Send>>;

    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let mut writes: Vec<Write> = (0..40)
        .map(|n| {
            let (store, batch) = (Arc::clone(&db.store), vec![record(&project, n, json!({}))]);
            Box::pin(async move { store.insert_records(batch, BASE).await }) as Write
        })
        .collect();
    // Poll each write once, so that each has been handed to the store before it closes.
    let mut answers: Vec<Option<Result<IngestCounts, StoreError>>> = vec![None; writes.len()];
    std::future::poll_fn(|cx| {
        for (write, answer) in writes.iter_mut().zip(answers.iter_mut()) {
            if let Poll::Ready(result) = write.as_mut().poll(cx) {
                *answer = Some(result);
            }
        }
        Poll::Ready(())
    })
    .await;
    db.store.close().await;
    let mut acknowledged = 0;
    for (write, answer) in writes.into_iter().zip(answers) {
        let answer = match answer {
            Some(answer) => answer,
            None => write.await,
        };
        match answer {
            Ok(counts) => acknowledged += counts.inserted,
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("a write during close failed with {other:?}"),
        }
    }
    let late = db.store.insert_records(vec![record(&project, 99, json!({}))], BASE).await;
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    let store = db.reopen().await;
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), acknowledged);
    if db.store.engine() == "sqlite" {
        assert_eq!(acknowledged, 40, "the embedded engine commits every write it was handed");
    }
}
