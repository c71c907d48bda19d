//! Pending updates: an update that names an input and matches nothing waits for that record.

use std::sync::Arc;

use parley_core::field::idx;
use parley_core::{Project, Record, Value};
use parley_store::{IngestCounts, UpdateOutcome, on_both_engines};
use serde_json::json;
use time::Duration;

use crate::TestDb;
use crate::fixtures::{BASE, WINDOW, bootstrap, by_input, create_project, oid, record, update};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    an_update_that_matches_nothing_waits_for_its_record,
    pending_updates_apply_in_arrival_order_when_they_match,
    expired_pending_updates_are_never_applied,
    pending_updates_survive_a_restart,
    an_update_racing_the_ingest_of_its_record_is_never_lost,
);

fn text_of(record: &Record, name: &str) -> Value {
    record.get(parley_core::field_index(name).unwrap()).clone()
}

async fn stored(db: &TestDb, project: &Project, n: u64) -> Record {
    db.store.get_record(&[project.id], oid(n)).await.unwrap().expect("the record")
}

async fn an_update_that_matches_nothing_waits_for_its_record(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let later = BASE + Duration::minutes(1);

    let early = by_input(&project, "c1", "i1", json!({"custom1": "early", "rating": 0.1}));
    let outcome = db.store.update_records(early, BASE, Some(BASE + WINDOW)).await.unwrap();
    assert_eq!(outcome, UpdateOutcome { matched: 0, deferred: true });

    let counts = db
        .store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], later)
        .await
        .unwrap();
    assert_eq!(counts, IngestCounts { inserted: 1, duplicates: 0, pending_applied: 1, updated: 0 });
    let applied = stored(db, &project, 1).await;
    assert_eq!(text_of(&applied, "custom1"), Value::Text("early".into()));
    assert_eq!(text_of(&applied, "rating"), Value::Number(0.1));
    assert_eq!(applied.get(idx::UPDATED_AT), &Value::Time(later));

    // Applied once: the same input ingested again is a duplicate and nothing is left to apply.
    let again = db.store.insert_records(vec![record(&project, 2, json!({"inputId": "i1"}))], later).await.unwrap();
    assert_eq!(again, IngestCounts { inserted: 0, duplicates: 1, pending_applied: 0, updated: 0 });

    // After the ingest, updates match at once.
    let after = by_input(&project, "c1", "i1", json!({"custom1": "after"}));
    let outcome = db.store.update_records(after, later, Some(later + WINDOW)).await.unwrap();
    assert_eq!(outcome, UpdateOutcome { matched: 1, deferred: false });
    assert_eq!(text_of(&stored(db, &project, 1).await, "custom1"), Value::Text("after".into()));

    // Never deferred: without an input, without a window, or when the input's record exists but
    // belongs to another contact (it can never match).
    let cases = [
        (update(&project, json!({"contactId": "c9"}), json!({"custom1": "x"})), Some(BASE + WINDOW)),
        (by_input(&project, "c1", "i7", json!({"custom1": "x"})), None),
        (by_input(&project, "c2", "i1", json!({"custom1": "x"})), Some(BASE + WINDOW)),
    ];
    for (update, defer_until) in cases {
        let outcome = db.store.update_records(update.clone(), later, defer_until).await.unwrap();
        assert_eq!(outcome, UpdateOutcome { matched: 0, deferred: false }, "{update:?}");
    }
    let counts = db.store.insert_records(vec![record(&project, 7, json!({"inputId": "i7"}))], later).await.unwrap();
    assert_eq!(counts.pending_applied, 0);
    assert_eq!(text_of(&stored(db, &project, 7).await, "custom1"), Value::Null);
}

async fn pending_updates_apply_in_arrival_order_when_they_match(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let until = Some(BASE + WINDOW);
    let waiting = [
        update(&project, json!({"contactId": "c1", "inputId": "i1"}), json!({"custom1": "a", "custom2": "a"})),
        update(&project, json!({"contactId": "c1", "inputId": "i1", "sessionId": "s1"}), json!({"custom1": "b"})),
        update(
            &project,
            json!({"contactId": "c1", "inputId": "i1", "sessionId": "s9"}),
            json!({"custom4": "wrong session"}),
        ),
        update(&project, json!({"contactId": "c5", "inputId": "i1"}), json!({"custom4": "wrong contact"})),
        update(
            &project,
            json!({"contactId": "c1", "inputId": "i1"}),
            json!({"custom3": "c", "custom2": null, "trackedGoals": ["g"]}),
        ),
        update(&other, json!({"contactId": "c1", "inputId": "i1"}), json!({"custom1": "other project"})),
    ];
    for (i, pending) in waiting.into_iter().enumerate() {
        let now = BASE + Duration::seconds(i as i64);
        assert!(db.store.update_records(pending, now, until).await.unwrap().deferred);
    }
    let ingested =
        record(&project, 1, json!({"contactId": "c1", "sessionId": "s1", "inputId": "i1", "custom2": "orig"}));
    let counts = db.store.insert_records(vec![ingested], BASE + Duration::minutes(1)).await.unwrap();
    assert_eq!(counts.pending_applied, 3);
    let applied = stored(db, &project, 1).await;
    assert_eq!(text_of(&applied, "custom1"), Value::Text("b".into()), "the later update wins");
    assert_eq!(text_of(&applied, "custom2"), Value::Null, "cleared by the last update");
    assert_eq!(text_of(&applied, "custom3"), Value::Text("c".into()));
    assert_eq!(text_of(&applied, "custom4"), Value::Null, "updates for another session or contact do not apply");
    assert_eq!(text_of(&applied, "trackedGoals"), Value::TextList(vec!["g".into()]));

    // The other project's pending update is still waiting for its own record.
    let counts = db
        .store
        .insert_records(vec![record(&other, 2, json!({"contactId": "c1", "inputId": "i1"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1);
    assert_eq!(text_of(&stored(db, &other, 2).await, "custom1"), Value::Text("other project".into()));
}

async fn expired_pending_updates_are_never_applied(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let short = by_input(&project, "c1", "i1", json!({"custom1": "short"}));
    assert!(db.store.update_records(short, BASE, Some(BASE + Duration::minutes(5))).await.unwrap().deferred);
    let long = by_input(&project, "c1", "i2", json!({"custom1": "long"}));
    assert!(db.store.update_records(long, BASE, Some(BASE + WINDOW)).await.unwrap().deferred);

    // Expired, but not yet purged: still never applied.
    let at_expiry = BASE + Duration::minutes(5);
    let counts = db
        .store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], at_expiry)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0);
    assert_eq!(text_of(&stored(db, &project, 1).await, "custom1"), Value::Null);

    let third = by_input(&project, "c1", "i3", json!({"custom1": "third"}));
    assert!(db.store.update_records(third, BASE, Some(BASE + Duration::minutes(6))).await.unwrap().deferred);
    assert_eq!(
        db.store.purge_expired_pending_updates(BASE + Duration::minutes(6) - Duration::milliseconds(1)).await.unwrap(),
        0
    );
    assert_eq!(db.store.purge_expired_pending_updates(BASE + Duration::minutes(6)).await.unwrap(), 1);
    let counts = db
        .store
        .insert_records(vec![record(&project, 3, json!({"contactId": "c1", "inputId": "i3"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0, "purged");

    let counts = db
        .store
        .insert_records(vec![record(&project, 2, json!({"contactId": "c1", "inputId": "i2"}))], at_expiry)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1, "the unexpired one still applies");
}

async fn pending_updates_survive_a_restart(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let early = by_input(&project, "c1", "i1", json!({"custom1": "kept", "handoverEscalations": 3}));
    assert!(db.store.update_records(early, BASE, Some(BASE + WINDOW)).await.unwrap().deferred);
    let store = db.reopen().await;
    let counts = store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1);
    let applied = store.get_record(&[project.id], oid(1)).await.unwrap().unwrap();
    assert_eq!(text_of(&applied, "custom1"), Value::Text("kept".into()));
    assert_eq!(text_of(&applied, "handoverEscalations"), Value::Integer(3));
}

async fn an_update_racing_the_ingest_of_its_record_is_never_lost(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    const ROUNDS: u64 = 40;
    const PAIRS: u64 = 8;
    for round in 0..ROUNDS {
        let mut racers = Vec::new();
        for pair in 0..PAIRS {
            let n = round * PAIRS + pair;
            let input = format!("i{n}");
            let (store, change) =
                (Arc::clone(&db.store), by_input(&project, "c1", &input, json!({"custom1": n.to_string()})));
            racers.push(tokio::spawn(async move {
                store.update_records(change, BASE, Some(BASE + WINDOW)).await.map(drop)
            }));
            let (store, ingested) =
                (Arc::clone(&db.store), record(&project, n, json!({"contactId": "c1", "inputId": input})));
            racers.push(tokio::spawn(async move { store.insert_records(vec![ingested], BASE).await.map(drop) }));
        }
        for racer in racers {
            racer.await.unwrap().unwrap();
        }
    }
    let mut lost = Vec::new();
    for n in 0..ROUNDS * PAIRS {
        if text_of(&stored(db, &project, n).await, "custom1") != Value::Text(n.to_string()) {
            lost.push(n);
        }
    }
    assert!(lost.is_empty(), "updates lost for records {lost:?}");
}
