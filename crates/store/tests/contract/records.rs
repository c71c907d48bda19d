//! Records: values read back exactly, ingest with duplicates, updates, and which projects a read
//! sees.

use std::sync::Arc;

use parley_core::field::idx;
use parley_core::{ObjectId, Project, Record, Value};
use parley_store::{IngestCounts, on_both_engines};
use serde_json::{Value as Json, json};
use time::Duration;

use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, create_project, filter_of, oid, record, update};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    values_read_back_exactly,
    masked_records_read_back,
    ingest_skips_duplicates,
    concurrent_ingests_of_one_batch_store_it_once,
    concurrent_sends_of_one_stamped_batch_store_it_once,
    updates_change_only_named_fields_of_matching_records,
    records_are_found_only_in_the_given_projects,
);

/// Records with every kind of value, one with every optional field null.
pub fn varied_records(project: &Project) -> Vec<Record> {
    let full = record(
        project,
        1,
        serde_json::from_str(
            r#"{
                "timestamp": "2024-05-01T14:30:15.123+02:00",
                "inputText": "héllo ✓ 😀 \"quoted\" \\ back",
                "inputData": {"zeta": 1, "alpha": [1, 2.5, "x", null, 1e300, 0.1, -7, 1e15, 1.5e-7],
                              "mid": {"b": null, "a": true}, "big": 12345678901234567890, "float": 1.0},
                "state": "s", "mode": "m", "userType": "u", "channel": "web", "flowLanguage": "de-DE",
                "flowName": "Main", "flowReferenceId": "f1", "entrypoint": "e", "entrypointType": "et",
                "intent": "greet", "intentFlow": "if", "intentScore": 0.875,
                "slots": "x",
                "foundSlots": "a, b", "foundSlotDetails": "{}",
                "completedGoals": ["z", "a", "é"], "trackedGoals": [],
                "understood": false, "executionTime": 12.5, "execution": 3,
                "localeName": "German", "localeReferenceId": "l1", "endpointName": "web",
                "endpointUrlToken": "tok", "endpointType": "webchat", "snapshotName": "snap",
                "rating": -1, "ratingComment": "meh", "inHandoverRequest": true, "inHandoverConversation": false,
                "handoverEscalations": 9007199254740993,
                "custom1": "1", "custom2": "2", "custom3": "3", "custom4": "4", "custom5": "5",
                "custom6": "6", "custom7": "7", "custom8": "8", "custom9": "9", "custom10": "10",
                "ip": "192.0.2.1"
            }"#,
        )
        .unwrap(),
    );
    let sparse = record(project, 2, json!({"slots": [1, {"b": 2, "a": 1}], "inputData": "just text"}));
    let empty = record(project, 3, json!({"timestamp": "1969-12-31T23:59:59.999Z"}));
    vec![full, sparse, empty]
}

async fn values_read_back_exactly(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let records = varied_records(&project);
    db.store.insert_records(records.clone(), BASE).await.unwrap();
    for original in &records {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&[project.id], id).await.unwrap().expect("the record");
        assert_eq!(&stored, original);
        // Key order of JSON objects is kept too: the text form is identical.
        assert_eq!(Json::Object(stored.to_json()).to_string(), Json::Object(original.to_json()).to_string());
    }
    let slots = parley_core::field_index("slots").unwrap();
    assert_eq!(records[0].get(slots), &Value::Json(json!("x")), "a JSON string stays a JSON value");
}

async fn masked_records_read_back(db: &TestDb) {
    let org = bootstrap(db).await;
    let mut project = create_project(db, &org, 1).await;
    project.settings.mask_sensitive = true;
    let masked = record(&project, 1, json!({"inputText": "secret", "inputData": {"card": "4111"}, "ip": "192.0.2.1"}));
    db.store.insert_records(vec![masked.clone()], BASE).await.unwrap();
    assert_eq!(db.store.get_record(&[project.id], oid(1)).await.unwrap(), Some(masked));
}

async fn ingest_skips_duplicates(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let batch = vec![
        record(&project, 1, json!({"inputId": "a"})),
        record(&project, 2, json!({"inputId": "b"})),
        record(&project, 3, json!({"inputId": "a", "intent": "second"})),
    ];
    let counts = db.store.insert_records(batch, BASE).await.unwrap();
    assert_eq!(counts, IngestCounts { inserted: 2, duplicates: 1, pending_applied: 0, updated: 0 });
    let kept = db.store.get_record(&[project.id], oid(1)).await.unwrap();
    assert!(kept.is_some(), "the first of two records with one inputId is kept");
    assert_eq!(db.store.get_record(&[project.id], oid(3)).await.unwrap(), None);

    let again = vec![
        record(&project, 4, json!({"inputId": "a"})),
        record(&project, 5, json!({"inputId": "b"})),
        record(&project, 6, json!({"inputId": "c"})),
    ];
    assert_eq!(
        db.store.insert_records(again, BASE).await.unwrap(),
        IngestCounts { inserted: 1, duplicates: 2, pending_applied: 0, updated: 0 }
    );
    let elsewhere = vec![record(&other, 7, json!({"inputId": "a"}))];
    assert_eq!(
        db.store.insert_records(elsewhere, BASE).await.unwrap(),
        IngestCounts { inserted: 1, duplicates: 0, pending_applied: 0, updated: 0 }
    );
    assert_eq!(db.store.insert_records(vec![], BASE).await.unwrap(), IngestCounts::default());
    assert_eq!(db.store.count_records(&filter_of(&project)).await.unwrap(), 3);
    assert_eq!(db.store.count_records(&filter_of(&other)).await.unwrap(), 1);
}

async fn concurrent_ingests_of_one_batch_store_it_once(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let sends: Vec<_> = (0..6u64)
        .map(|attempt| {
            let store = Arc::clone(&db.store);
            let batch: Vec<Record> =
                (0..10u64).map(|i| record(&project, attempt * 100 + i, json!({"inputId": format!("i{i}")}))).collect();
            tokio::spawn(async move { store.insert_records(batch, BASE).await })
        })
        .collect();
    let mut total = IngestCounts::default();
    for send in sends {
        let counts = send.await.unwrap().unwrap();
        total.inserted += counts.inserted;
        total.duplicates += counts.duplicates;
    }
    assert_eq!(total, IngestCounts { inserted: 10, duplicates: 50, pending_applied: 0, updated: 0 });
    assert_eq!(db.store.count_records(&filter_of(&project)).await.unwrap(), 10);
}

/// The same stamped batch, ids included, sent by several writers at once (a sender trying again
/// while its first attempt still runs) is stored once, and every writer is answered: each row
/// clashes with the other writers' on its id as well as on its key. Two writers seldom reach one
/// row at the same moment, so the test sends a hundred batches, each by as many writers as the
/// pool has connections.
async fn concurrent_sends_of_one_stamped_batch_store_it_once(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    for round in 0..100u64 {
        let batch: Vec<Record> = (0..10u64).map(|i| record(&project, round * 100 + i, json!({}))).collect();
        let sends: Vec<_> = (0..4)
            .map(|_| {
                let (store, batch) = (Arc::clone(&db.store), batch.clone());
                tokio::spawn(async move { store.insert_records(batch, BASE).await })
            })
            .collect();
        let mut total = IngestCounts::default();
        for send in sends {
            let counts = send.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            total.inserted += counts.inserted;
            total.duplicates += counts.duplicates;
        }
        assert_eq!(total, IngestCounts { inserted: 10, duplicates: 30, pending_applied: 0, updated: 0 }, "{round}");
    }
    assert_eq!(db.store.count_records(&filter_of(&project)).await.unwrap(), 1000);
}

async fn updates_change_only_named_fields_of_matching_records(db: &TestDb) {
    update_transcript(db).await;
}

/// Runs a series of updates, checks each, and returns the records' final JSON.
pub async fn update_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let rich = json!({"custom1": "keep?", "custom2": "kept", "intent": "old", "rating": 1, "slots": {"k": 1}});
    let with = |contact: &str, session: &str, input: &str| {
        let mut fields = rich.clone();
        fields["contactId"] = json!(contact);
        fields["sessionId"] = json!(session);
        fields["inputId"] = json!(input);
        fields
    };
    let originals = vec![
        record(&project, 1, with("c1", "s1", "i1")),
        record(&project, 2, with("c1", "s1", "i2")),
        record(&project, 3, with("c1", "s2", "i3")),
        record(&project, 4, with("c2", "s1", "i4")),
        record(&other, 5, with("c1", "s1", "i1")),
    ];
    db.store.insert_records(originals.clone(), BASE).await.unwrap();
    let everywhere = [project.id, other.id];

    let now = BASE + Duration::hours(1) + Duration::nanoseconds(123_456_789);
    let stored_now = BASE + Duration::hours(1) + Duration::milliseconds(123);
    let changes = json!({
        "intent": "new", "custom1": null, "rating": 4.5, "trackedGoals": ["g2", "g1"], "slots": "x",
        "inHandoverRequest": true, "handoverEscalations": 2
    });
    let matched = db
        .store
        .update_records(update(&project, json!({"contactId": "c1"}), changes), now, None)
        .await
        .unwrap()
        .matched;
    assert_eq!(matched, 3);
    for original in &originals {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&everywhere, id).await.unwrap().unwrap();
        let hit = original.project_id() == project.id && original.get(idx::CONTACT_ID) == &Value::Text("c1".into());
        if !hit {
            assert_eq!(&stored, original, "a record the update did not match is untouched");
            continue;
        }
        let mut expected = original.values().to_vec();
        let set = |expected: &mut Vec<Value>, name: &str, value: Value| {
            expected[parley_core::field_index(name).unwrap()] = value;
        };
        set(&mut expected, "intent", Value::Text("new".into()));
        set(&mut expected, "custom1", Value::Null);
        set(&mut expected, "rating", Value::Number(4.5));
        set(&mut expected, "trackedGoals", Value::TextList(vec!["g2".into(), "g1".into()]));
        set(&mut expected, "slots", Value::Json(json!("x")));
        set(&mut expected, "inHandoverRequest", Value::Bool(true));
        set(&mut expected, "handoverEscalations", Value::Integer(2));
        expected[idx::UPDATED_AT] = Value::Time(stored_now);
        assert_eq!(stored, Record::from_values(expected));
    }

    let narrow = |selector: Json| update(&project, selector, json!({"state": "narrowed"}));
    let later = now + Duration::minutes(1);
    let cases = [
        (json!({"contactId": "c1", "sessionId": "s1"}), 2),
        (json!({"contactId": "c1", "sessionId": "s1", "inputId": "i2"}), 1),
        (json!({"contactId": "c1", "inputId": "i3"}), 1),
        (json!({"contactId": "c1", "sessionId": "s2", "inputId": "i1"}), 0),
        (json!({"contactId": "c9"}), 0),
        (json!({"contactId": "c1"}), 3),
    ];
    for (selector, expected) in cases {
        let matched = db.store.update_records(narrow(selector.clone()), later, None).await.unwrap().matched;
        assert_eq!(matched, expected, "{selector}");
    }
    let untouched = db.store.get_record(&everywhere, oid(4)).await.unwrap().unwrap();
    assert_eq!(untouched.get(parley_core::field_index("state").unwrap()), &Value::Null);

    let mut transcript = Vec::new();
    for original in &originals {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&everywhere, id).await.unwrap().unwrap();
        transcript.push(Json::Object(stored.to_json()).to_string());
    }
    transcript
}

async fn records_are_found_only_in_the_given_projects(db: &TestDb) {
    let org = bootstrap(db).await;
    let (mine, theirs) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let original = record(&mine, 1, json!({}));
    db.store.insert_records(vec![original.clone(), record(&theirs, 2, json!({}))], BASE).await.unwrap();
    assert_eq!(db.store.get_record(&[mine.id], oid(1)).await.unwrap(), Some(original.clone()));
    assert_eq!(db.store.get_record(&[theirs.id, mine.id], oid(1)).await.unwrap(), Some(original));
    assert_eq!(db.store.get_record(&[theirs.id], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.get_record(&[], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.get_record(&[mine.id], oid(99)).await.unwrap(), None);
}
