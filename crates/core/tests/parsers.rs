//! Every parser of what a client sends, fed arbitrary input: it answers a value or an error,
//! never panics, and what it accepts it reads back the same.

use parley_core::value::{format_time, parse_date_time, parse_query_time, parse_time};
use parley_core::{ConversationQuery, ListParams, NewRecord, RecordQuery};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Text that looks like what clients send, with the awkward characters in reach.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F:.TZ+\\- ]{0,40}",
        "[a-z0-9]{0,24}(:(asc|desc|up))?(,[a-zA-Z]{0,12}:asc)?",
        Just("5f0c6bc4ad4f8b0011b2e0e1".to_owned()),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(text(), inner, 0..6).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_listing_query_never_panics(
        project in proptest::option::of(text()),
        from in proptest::option::of(text()),
        to in proptest::option::of(text()),
        limit in proptest::option::of(text()),
        skip in proptest::option::of(text()),
        sort in proptest::option::of(text()),
        next in proptest::option::of(text()),
        previous in proptest::option::of(text()),
    ) {
        let params = ListParams {
            project_id: project, contact_id: None, session_id: None, from, to, limit, skip, sort, next, previous,
        };
        let _ = RecordQuery::parse(params);
    }

    #[test]
    fn a_conversations_query_never_panics(pairs in prop::collection::vec((text(), text()), 0..8)) {
        let _ = ConversationQuery::parse(&pairs);
    }

    #[test]
    fn date_times_never_panic_and_the_wire_form_reads_back(
        text in text(),
        millis in -62_000_000_000_000i64..250_000_000_000_000,
    ) {
        let _ = (parse_date_time(&text), parse_query_time(&text), parse_time(&text));
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap();
        let wire = format_time(t);
        prop_assert_eq!(parse_time(&wire), Some(t));
        prop_assert_eq!(parse_query_time(&wire), Ok(t));
    }

    #[test]
    fn a_record_of_any_shape_is_read_or_refused(fields in prop::collection::btree_map(
        prop_oneof![
            text(),
            Just("projectId".to_owned()),
            Just("rating".to_owned()),
            Just("completedGoals".to_owned()),
            Just("timestamp".to_owned()),
            Just("inputData".to_owned()),
        ],
        json_value(),
        0..8,
    )) {
        let object: serde_json::Map<String, Json> = fields.into_iter().collect();
        if let Ok(record) = NewRecord::parse(Json::Object(object.clone())) {
            // What it accepts it reads the same a second time.
            prop_assert_eq!(NewRecord::parse(Json::Object(object)).ok(), Some(record));
        }
    }
}

/// A value of the kind an order key holds: a text, a time, or nothing.
fn key_value() -> impl Strategy<Value = parley_core::Value> {
    use parley_core::Value;
    prop_oneof![
        Just(Value::Null),
        "[^\u{0}]{0,40}".prop_map(Value::Text),
        (-2_208_988_800_000i64..7_258_118_400_000).prop_map(|ms| {
            Value::Time(time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap())
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A listing cursor reads back as the position it was made at, only with the sort it was
    /// made for; and a cursor changed anywhere is read or refused as 'next', never a panic.
    #[test]
    fn cursors_round_trip_and_survive_any_change(
        intent in key_value().prop_filter("a text or null", |v| !matches!(v, parley_core::Value::Time(_))),
        at in key_value().prop_filter("a time", |v| matches!(v, parley_core::Value::Time(_))),
        id in "[0-9a-f]{24}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
    ) {
        use parley_core::{Cursor, PageStart};
        let params = |pairs: &[(&str, &str)]| {
            let mut map = serde_json::Map::new();
            map.insert("projectId".into(), json!("5f0c6bc4ad4f8b0011b2e0e1"));
            for (k, v) in pairs {
                map.insert((*k).into(), json!(v));
            }
            serde_json::from_value::<ListParams>(Json::Object(map)).unwrap()
        };
        let sort = "intent:asc,timestamp:desc";
        let query = RecordQuery::parse(params(&[("sort", sort)])).unwrap();
        let cursor = Cursor { values: vec![intent, at, parley_core::Value::Text(id)] };
        let text = cursor.encode(&query.sort);
        let next = RecordQuery::parse(params(&[("sort", sort), ("next", &text)])).unwrap();
        prop_assert_eq!(next.start, PageStart::After(cursor));
        prop_assert!(RecordQuery::parse(params(&[("next", &text)])).is_err(), "another sort refuses it");
        let mut changed: Vec<char> = text.chars().collect();
        for (at, c) in edits {
            let i = at.index(changed.len().max(1));
            if i < changed.len() { changed[i] = c } else { changed.push(c) }
        }
        let changed: String = changed.into_iter().collect();
        match RecordQuery::parse(params(&[("sort", sort), ("previous", &changed)])) {
            Ok(_) => {}
            Err(parley_core::Error::Invalid { details, .. }) => prop_assert_eq!(&details["field"], "previous"),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
