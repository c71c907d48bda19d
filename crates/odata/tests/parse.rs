//! The query tree for the options of docs/contract/odata.md, shown as S-expressions with names resolved, and
//! the errors for malformed options with their positions.

use parley_core::Value;
use parley_core::value::format_time;
use parley_odata::{EntityType, Expr, IdName, Operand, ParseError, Query, parse_query};

fn analytics() -> EntityType {
    EntityType::analytics(IdName::Id)
}

fn parse(query: &str) -> Result<Query, ParseError> {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    parse_query(&analytics(), &pairs)
}

fn name(query: &Query, operand: Operand) -> String {
    query.name(&analytics(), operand).to_owned()
}

fn literal(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Text(text) => format!("'{text}'"),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => format!("{n:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => format_time(*t),
        other => format!("{other:?}"),
    }
}

fn show(query: &Query, expr: &Expr) -> String {
    match expr {
        Expr::Literal(value) => literal(value),
        Expr::Column(operand) => name(query, *operand),
        Expr::Not(inner) => format!("(not {})", show(query, inner)),
        Expr::And(items) => format!("(and {})", items.iter().map(|e| show(query, e)).collect::<Vec<_>>().join(" ")),
        Expr::Or(items) => format!("(or {})", items.iter().map(|e| show(query, e)).collect::<Vec<_>>().join(" ")),
        Expr::Compare(op, left, right) => {
            format!("({} {} {})", format!("{op:?}").to_lowercase(), show(query, left), show(query, right))
        }
        Expr::In(operand, values) => {
            format!("(in {} [{}])", show(query, operand), values.iter().map(literal).collect::<Vec<_>>().join(" "))
        }
        Expr::Call(function, args) => format!(
            "({} {})",
            format!("{function:?}").to_lowercase(),
            args.iter().map(|e| show(query, e)).collect::<Vec<_>>().join(" ")
        ),
    }
}

/// The whole query in a stable, readable form.
fn render(query: &Query) -> String {
    let mut lines = Vec::new();
    if let Some(filter) = &query.filter {
        lines.push(format!("filter: {}", show(query, filter)));
    }
    if let Some(aggregation) = &query.aggregation {
        let groups: Vec<String> = aggregation.group_by.iter().map(|&p| name(query, Operand::Property(p))).collect();
        let aggregates: Vec<String> = aggregation
            .aggregates
            .iter()
            .map(|a| {
                let of = a.property.map_or("*".to_owned(), |p| name(query, Operand::Property(p)));
                format!("{}={:?}({of})", a.alias, a.method)
            })
            .collect();
        lines.push(format!("group by: [{}] aggregate: [{}]", groups.join(" "), aggregates.join(" ")));
    }
    if let Some(filter) = &query.output_filter {
        lines.push(format!("output filter: {}", show(query, filter)));
    }
    if query.selected {
        let select: Vec<String> = query.select.iter().map(|&o| name(query, o)).collect();
        lines.push(format!("select: {}", select.join(" ")));
    }
    let order: Vec<String> = query
        .order
        .iter()
        .map(|k| format!("{}{}", name(query, k.operand), if k.descending { " desc" } else { "" }))
        .collect();
    lines.push(format!("order: {}", order.join(", ")));
    lines.push(format!("top: {:?} skip: {} count: {} format: {:?}", query.top, query.skip, query.count, query.format));
    lines.join("\n")
}

fn rendered(query: &str) -> String {
    match parse(query) {
        Ok(query) => render(&query),
        Err(e) => panic!("{query}: {e}"),
    }
}

#[test]
fn comparisons_logic_and_parentheses() {
    insta::assert_snapshot!(rendered(
        "$filter=intent eq 'greet' and (intentScore gt 0.5 or execution le 3) and not (channel ne 'web')"
    ));
}

#[test]
fn literals_of_every_kind() {
    insta::assert_snapshot!(rendered(
        "$filter=inputText eq 'it''s' or execution eq -12 or intentScore ge 1.5e-1 or understood eq true \
         or rating eq null or inHandoverRequest ne false"
    ));
}

#[test]
fn date_times_bare_quoted_and_with_offsets_mean_the_same() {
    let forms = [
        "timestamp ge 2024-05-01T00:00:00Z",
        "timestamp ge '2024-05-01T00:00:00.000Z'",
        "timestamp ge 2024-05-01T02:00:00+02:00",
        "timestamp ge 2024-05-01T02:00:00 02:00",
        "timestamp ge '2024-04-30T20:00:00-04:00'",
        "timestamp ge 2024-05-01",
    ];
    for form in forms {
        assert_eq!(
            rendered(&format!("$filter={form}")).lines().next().unwrap(),
            "filter: (ge timestamp 2024-05-01T00:00:00.000Z)",
            "{form}"
        );
    }
}

#[test]
fn in_lists_and_functions() {
    insta::assert_snapshot!(rendered(
        "$filter=intent in ('a', 'b', null) and contains(inputText,'refund') and startswith(tolower(channel),'web') \
         and endswith(toupper(flowName), 'MAIN') and year(timestamp) eq 2024 and month(timestamp) ge 5 \
         and day(timestamp) lt 10 and hour(timestamp) eq 12 and contains(inputData, '\"a\":1')"
    ));
}

#[test]
fn boolean_properties_are_conditions() {
    insta::assert_snapshot!(rendered("$filter=understood and not inHandoverRequest"));
}

#[test]
fn select_orderby_top_skip_count_format() {
    insta::assert_snapshot!(rendered(
        "$select=intent,timestamp,intent&$orderby=timestamp desc,intent asc&$top=10&$skip=20&$count=true&$format=csv"
    ));
}

#[test]
fn order_always_ends_with_the_key() {
    assert_eq!(rendered("").lines().next().unwrap(), "order: id");
    assert_eq!(rendered("$orderby=id desc,timestamp").lines().next().unwrap(), "order: id desc, timestamp");
}

#[test]
fn apply_groupby_aggregate_filter() {
    insta::assert_snapshot!(rendered(
        "$apply=filter(channel eq 'web')/groupby((intent,channel),aggregate(intentScore with average as avgScore,\
         executionTime with sum as total,contactId with countdistinct as contacts,$count as n))/filter(n gt 1)\
         &$filter=total ge 0&$orderby=n desc&$count=true"
    ));
}

#[test]
fn apply_aggregate_without_grouping() {
    insta::assert_snapshot!(rendered(
        "$apply=aggregate($count as n,rating with max as best,timestamp with min as first)"
    ));
}

#[test]
fn custom_options_are_left_alone() {
    assert!(parse("apikey=secret&api_key=x&$top=1").is_ok());
}

#[test]
fn option_names_ignore_case() {
    assert_eq!(parse("$TOP=3").unwrap().top, Some(3));
}

fn error(query: &str) -> ParseError {
    match parse(query) {
        Ok(parsed) => panic!("{query} was accepted: {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_the_option_and_the_position() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("$filter=intnet eq 'x'", "$filter", 0, "'intnet' is not a property of AnalyticsRecord"),
        ("$filter=intent eq", "$filter", 9, "expected a value"),
        ("$filter=intent eq 'x' and", "$filter", 17, "expected a value"),
        ("$filter=intent eq 'x", "$filter", 10, "not closed"),
        ("$filter=(intent eq 'x'", "$filter", 14, "expected ')'"),
        ("$filter=intent eq 'x')", "$filter", 13, "unexpected ')'"),
        ("$filter=intent eq 1", "$filter", 7, "cannot compare Edm.String with Edm.Int64"),
        ("$filter=timestamp ge 'yesterday'", "$filter", 13, "is not a date-time"),
        ("$filter=timestamp ge 2024-02-30T00:00:00Z", "$filter", 13, "is not a date-time"),
        ("$filter=intent gt null", "$filter", 7, "null can only be compared with eq or ne"),
        ("$filter=intent", "$filter", 0, "expected a condition"),
        ("$filter=not intent eq 'x'", "$filter", 4, "'not' needs an Edm.Boolean operand"),
        ("$filter=intent eq 'x' AND channel eq 'y'", "$filter", 14, "operators are written in lower case"),
        ("$filter=length(intent) eq 1", "$filter", 0, "'length' is not a supported function"),
        ("$filter=contains(intent)", "$filter", 15, "'contains' takes 2 arguments, given 1"),
        ("$filter=year(intent) eq 1", "$filter", 5, "needs Edm.DateTimeOffset arguments"),
        ("$filter=trackedGoals eq 'x'", "$filter", 0, "a collection cannot be compared"),
        ("$filter=intent in ()", "$filter", 11, "at least one value"),
        ("$filter=intent in (1)", "$filter", 11, "expected a Edm.String literal"),
        ("$filter=intent eq 'x' add 1", "$filter", 14, "'add' is not supported"),
        ("$filter=a/b eq 1", "$filter", 1, "property paths"),
        ("$filter=intent eq #", "$filter", 10, "unexpected character '#'"),
        ("$select=intent,nope", "$select", 7, "'nope' is not a property"),
        ("$select=", "$select", 0, "expected a property"),
        ("$orderby=inputData", "$orderby", 0, "cannot order by 'inputData'"),
        ("$orderby=timestamp up", "$orderby", 10, "expected 'asc', 'desc' or ','"),
        ("$orderby=timestamp,timestamp desc", "$orderby", 10, "named twice"),
        ("$top=-1", "$top", 0, "whole number"),
        ("$top=ten", "$top", 0, "whole number"),
        ("$skip=99999999999999999999", "$skip", 0, "whole number from 0"),
        ("$count=yes", "$count", 0, "true or false"),
        ("$format=xml", "$format", 0, "use json or csv"),
        ("$expand=x", "$expand", 0, "not supported"),
        ("$frobnicate=1", "$frobnicate", 0, "is not a query option"),
        ("$top=1&$top=2", "$top", 0, "more than once"),
        ("$skiptoken=garbage", "$skiptoken", 0, "is not a skip token of this query"),
        ("$apply=groupby(intent)", "$apply", 8, "groupby takes a list of properties in parentheses"),
        ("$apply=groupby((intent),aggregate(rating with median as m))", "$apply", 39, "expected sum, min, max"),
        ("$apply=groupby((inputData))", "$apply", 9, "cannot group by 'inputData'"),
        ("$apply=aggregate(intent with sum as s)", "$apply", 22, "cannot aggregate 'intent'"),
        ("$apply=aggregate(understood with max as s)", "$apply", 26, "cannot aggregate 'understood'"),
        ("$apply=aggregate($count as intent)", "$apply", 20, "the name 'intent' is taken"),
        ("$apply=aggregate($count as n, rating with sum as n)", "$apply", 42, "the name 'n' is taken"),
        ("$apply=aggregate($count as n)/groupby((intent))", "$apply", 23, "only one groupby or aggregate"),
        ("$apply=topcount(5,rating)", "$apply", 0, "'topcount' is not supported"),
        ("$apply=groupby((intent))&$filter=channel eq 'x'", "$filter", 0, "not in the result of $apply"),
        ("$apply=groupby((intent))&$orderby=timestamp", "$orderby", 0, "not in the result of $apply"),
        ("$apply=groupby((intent)) extra", "$apply", 18, "unexpected 'extra'"),
    ];
    let mut wrong = Vec::new();
    for (query, option, position, message) in cases {
        let e = error(query);
        if (&e.option[..], e.position) != (*option, *position) || !e.message.contains(message) {
            wrong.push(format!("{query}\n    expected {option} at {position}: …{message}…\n    got      {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nesting_and_literal_counts_are_bounded() {
    let deep = format!("$filter={}intent eq 'x'{}", "(".repeat(200), ")".repeat(200));
    assert!(error(&deep).message.contains("nests more than"));
    let nots = format!("$filter={}understood", "not ".repeat(200));
    assert!(error(&nots).message.contains("nests more than"));
    let many = format!("$filter=intent in ({})", vec!["'a'"; 3000].join(","));
    assert!(error(&many).message.contains("more than 2000 literals"));
}

#[test]
fn skip_tokens_round_trip_for_their_order_only() {
    let entity = analytics();
    let query = parse("$orderby=intent desc,timestamp").unwrap();
    let values = vec![
        Value::Null,
        Value::Time(parley_odata::parse_date_time("2024-05-01T00:00:00.123Z").unwrap()),
        Value::Text("5f0c6bc4ad4f8b0011b2e0e1".into()),
    ];
    let token = parley_odata::skiptoken::encode(&query, &entity, &values);
    let again = parse(&format!("$orderby=intent desc,timestamp&$skiptoken={token}")).unwrap();
    assert_eq!(again.after, Some(values));
    let other = error(&format!("$orderby=intent,timestamp&$skiptoken={token}"));
    assert_eq!(other.option, "$skiptoken");
}

#[test]
fn the_older_feed_filters_by_underscore_id() {
    let entity = EntityType::analytics(IdName::UnderscoreId);
    let pairs = vec![("$filter".to_owned(), "_id eq '5f0c6bc4ad4f8b0011b2e0e1'".to_owned())];
    assert!(parse_query(&entity, &pairs).is_ok());
    let pairs = vec![("$filter".to_owned(), "id eq '5f0c6bc4ad4f8b0011b2e0e1'".to_owned())];
    assert!(parse_query(&entity, &pairs).is_err());
}
