//! Property tests: no query string, random or a mutation of a valid one, makes the parser panic;
//! every refusal names a position inside the option's value.

use parley_odata::{EntityType, IdName, parse_query, system_option};
use proptest::prelude::*;

/// Valid queries whose mutations reach deep into the parser.
const CORPUS: &[&str] = &[
    "$filter=intent eq 'greet' and (intentScore gt 0.5 or execution le 3) and not (channel ne 'web')",
    "$filter=timestamp ge 2024-05-01T00:00:00Z and timestamp lt '2024-06-01T00:00:00.000+02:00'",
    "$filter=intent in ('a', 'b', null) and contains(inputText,'it''s') and startswith(tolower(channel),'web')",
    "$filter=year(timestamp) eq 2024 and month(timestamp) ge 5 and day(timestamp) lt 10 and hour(timestamp) eq 1",
    "$filter=understood and not inHandoverRequest or endswith(toupper(flowName),'X')",
    "$select=intent,timestamp&$orderby=timestamp desc,intent asc&$top=10&$skip=20&$count=true&$format=csv",
    "$apply=filter(channel eq 'web')/groupby((intent,channel),aggregate(intentScore with average as a,$count as n))/filter(n gt 1)&$orderby=n desc",
    "$apply=aggregate($count as n,rating with max as best,contactId with countdistinct as c)",
    "filter=execution add 2 mul -execution gt 10 div 3 and intentScore divby 2 le round(intentScore) mod 1.5&top=5",
    "$filter=timestamp ge now() sub duration'P30D' and totalseconds(timestamp sub date(timestamp)) lt 3600",
    "$filter=length(trim(inputText)) gt indexof(concat(intent,'x'),'x') and substring(intent,1,2) eq 're'",
    "$filter=intent eq @p and trackedGoals/any(g: g eq @g) or completedGoals/$count gt @n&@p='x'&@g=concat('a','b')&@n=1",
    "$filter=matchesPattern(intent,'^re.*d$') or floor(intentScore) eq ceiling(rating) or fractionalseconds(timestamp) gt 0.5",
    "$filter=time(timestamp) ge 08:00 and hour(time(timestamp)) lt 12 or time(timestamp) ne 12:00:00.5 or cast(timestamp,Edm.TimeOfDay) eq '23:59'",
    "$apply=compute(year(timestamp) as y)/concat(aggregate($count as n),groupby((y,intent),aggregate($count as n))/topcount(2,n))/filter(n gt 1)",
    "$filter=case(intent eq 'x':1,understood:intentScore,true:null) gt 0.5 and trackedGoals/any(a:completedGoals/all(b:b ne a or a eq intent))",
    "$filter=cast(intentScore,Edm.Int32) eq 1 and isof(rating,Edm.Byte) or cast('7',Edm.Double) gt execution",
];

/// Pieces of the syntax, for building and inserting.
const VOCABULARY: &[&str] = &[
    "intent",
    "timestamp",
    "inputData",
    "trackedGoals",
    "understood",
    "execution",
    "intentScore",
    "id",
    "n",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "and",
    "or",
    "not",
    "in",
    "(",
    ")",
    ",",
    "/",
    "'",
    "''",
    "'x'",
    "null",
    "true",
    "false",
    "1",
    "-1",
    "1.5",
    "1e400",
    "2024-05-01T00:00:00Z",
    "2024-05-01",
    "contains",
    "tolower",
    "add",
    "sub",
    "mul",
    "div",
    "divby",
    "mod",
    "duration'P1D'",
    "duration'",
    "now()",
    "substring",
    "matchesPattern",
    "'['",
    "totalseconds",
    "cast",
    "case",
    "time",
    "08:30",
    "23:59:59.999",
    "99:99",
    "isof",
    "Edm.String",
    "Edm.Int16",
    "parley.AnalyticsRecord",
    "9223372036854775807",
    "0",
    "filter=",
    "EQ",
    "@p",
    "&@p=",
    "$search=",
    "\"",
    "NOT ",
    " OR ",
    " AND ",
    "/any(g:",
    "/all(x: x eq ",
    "/$count",
    ":",
    "year",
    "$count",
    "groupby",
    "concat",
    "compute",
    "aggregate",
    "filter",
    "with",
    "sum",
    "as",
    "asc",
    "desc",
    " ",
    "&",
    "=",
    "$filter",
    "$apply",
    "$orderby",
    "$select",
    "$top",
    "$skiptoken",
    "é",
    "\u{0}",
    "+",
    "%",
    "*",
    ":",
    ".",
    "-",
    "T",
];

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Parses and checks what holds for every answer.
fn check(query: &str) {
    for entity in [EntityType::analytics(IdName::Id), EntityType::analytics(IdName::UnderscoreId)] {
        let pairs = pairs(query);
        match parse_query(&entity, &pairs) {
            Ok(parsed) => {
                assert!(parsed.aggregation.is_some() || !parsed.order.is_empty(), "{query}");
                assert!(!parsed.select.is_empty() || parsed.aggregation.is_some(), "{query}");
            }
            Err(e) => {
                let named = |name: &str| {
                    name.eq_ignore_ascii_case(&e.option)
                        || system_option(name).is_some_and(|option| Some(option) == system_option(&e.option))
                };
                let value = pairs.iter().find(|(name, _)| named(name)).map(|(_, v)| v);
                let length = value.map_or(0, String::len);
                assert!(e.position <= length, "{query}: position {} beyond the value: {e}", e.position);
                assert!(!e.message.is_empty());
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutate(text: &str, mutation: &Mutation) -> String {
    let boundary = |i: usize| {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match *mutation {
        Mutation::Delete(a, n) => {
            let start = boundary(a);
            let end = boundary(start + n % 8);
            format!("{}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::Insert(a, piece) => {
            let at = boundary(a);
            format!("{}{piece}{}", &text[..at], &text[at..])
        }
        Mutation::Duplicate(a, n) => {
            let start = boundary(a);
            let end = boundary(start + n % 16).max(start);
            format!("{}{}{}", &text[..end], &text[start..end], &text[end..])
        }
        Mutation::Truncate(a) => text[..boundary(a)].to_owned(),
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), prop::sample::select(VOCABULARY)).prop_map(|(a, p)| Mutation::Insert(a, p)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_in_any_option_never_panics(
        option in prop::sample::select(&["$filter", "$apply", "$orderby", "$select", "$top", "$skiptoken", "$format"][..]),
        text in any::<String>(),
    ) {
        check(&format!("{option}={text}"));
    }

    /// `$search` (read on `Conversations` only): any text is a search or a refusal located in it.
    #[test]
    fn any_search_is_read_or_refused_within_it(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(prop::sample::select(&["a", "\"b c\"", "NOT", "AND", "OR", "(", ")", "\"", " ", "é", "?"][..]), 0..12)
                .prop_map(|pieces| pieces.concat()),
        ],
    ) {
        if let Err(e) = parley_odata::search::parse_search(&text) {
            prop_assert!(e.position <= text.len(), "{text:?}: {e}");
            prop_assert_eq!(e.option, "$search");
        }
    }

    #[test]
    fn token_soup_never_panics(
        option in prop::sample::select(&["$filter", "$apply", "$orderby", "$select"][..]),
        words in prop::collection::vec(prop::sample::select(VOCABULARY), 0..40),
    ) {
        check(&format!("{option}={}", words.join(" ")));
    }

    #[test]
    fn mutated_valid_queries_never_panic(
        base in prop::sample::select(CORPUS),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut text = base.to_owned();
        for m in &mutations {
            text = mutate(&text, m);
        }
        check(&text);
    }
}

#[test]
fn the_corpus_is_valid() {
    let entity = EntityType::analytics(IdName::Id);
    for query in CORPUS {
        if let Err(e) = parse_query(&entity, &pairs(query)) {
            panic!("{query}: {e}");
        }
    }
}

/// A text, a time or nothing: the kinds of value an order key holds.
fn key_value() -> impl Strategy<Value = parley_core::Value> {
    use parley_core::Value;
    prop_oneof![
        Just(Value::Null),
        any::<String>().prop_map(Value::Text),
        // Milliseconds from 1900 to 2200: the precision parley keeps.
        (-2_208_988_800_000i64..7_258_118_400_000).prop_map(|ms| {
            Value::Time(time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap())
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A skip token reads back as the order keys' values it was made from, only for the order it
    /// was made for; and a token changed anywhere is read or refused, never a panic.
    #[test]
    fn skip_tokens_round_trip_and_survive_any_change(
        intent in key_value().prop_filter("a text or null", |v| !matches!(v, parley_core::Value::Time(_))),
        at in key_value().prop_filter("a time", |v| matches!(v, parley_core::Value::Time(_))),
        id in "[0-9a-f]{24}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
    ) {
        use parley_odata::skiptoken::{decode, encode};
        let entity = EntityType::analytics(IdName::Id);
        let ordered = parse_query(&entity, &pairs("$orderby=intent,timestamp desc")).unwrap();
        let values = vec![intent, at, parley_core::Value::Text(id)];
        let token = encode(&ordered, &entity, &values);
        prop_assert_eq!(decode(&ordered, &entity, &token), Some(values));
        let other = parse_query(&entity, &pairs("$orderby=timestamp")).unwrap();
        prop_assert_eq!(decode(&other, &entity, &token), None);
        let mut changed: Vec<char> = token.chars().collect();
        for (at, c) in edits {
            let i = at.index(changed.len().max(1));
            if i < changed.len() { changed[i] = c } else { changed.push(c) }
        }
        let _ = decode(&ordered, &entity, &changed.into_iter().collect::<String>());
    }
}
