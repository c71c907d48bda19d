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
