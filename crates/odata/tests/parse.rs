//! The query tree for the options of docs/contract/odata.md, shown as S-expressions with names resolved, and
//! the errors for malformed options with their positions.

use parley_core::Value;
use parley_core::value::format_time;
use parley_odata::{EntityType, Expr, IdName, Operand, ParseError, Query, Step, parse_query};

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
        Expr::Arith(op, kind, left, right) => format!(
            "({}:{} {} {})",
            format!("{op:?}").to_lowercase(),
            format!("{kind:?}").to_lowercase(),
            show(query, left),
            show(query, right)
        ),
        Expr::Any(list, None) => format!("(any {})", name(query, *list)),
        Expr::Any(list, Some(lambda)) => format!("(any {} {})", name(query, *list), show(query, &lambda.condition)),
        Expr::All(list, lambda) => format!("(all {} {})", name(query, *list), show(query, &lambda.condition)),
        Expr::Element(0) => "$element".into(),
        Expr::Element(depth) => format!("$element{depth}"),
        Expr::Count(list) => format!("(count {})", name(query, *list)),
        Expr::Cast(value, from, target) => format!("(cast {} {} {})", show(query, value), from.word(), target.name),
        Expr::Case(arms) => format!(
            "(case {})",
            arms.iter().map(|(c, v)| format!("{}: {}", show(query, c), show(query, v))).collect::<Vec<_>>().join(", ")
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
        let groups: Vec<String> = aggregation.group_by.iter().map(|&operand| name(query, operand)).collect();
        let aggregates: Vec<String> = aggregation
            .aggregates
            .iter()
            .map(|a| {
                let of = a.operand.map_or("*".to_owned(), |operand| name(query, operand));
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

/// The rendered filter alone.
fn filtered(query: &str) -> String {
    rendered(query).lines().next().unwrap_or_default().to_owned()
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
fn option_names_ignore_case_and_may_leave_out_the_dollar() {
    assert_eq!(parse("$TOP=3").unwrap().top, Some(3));
    let query = parse("filter=intent eq 'x'&Top=2&orderby=timestamp desc&select=intent&count=true").unwrap();
    assert_eq!(query.top, Some(2));
    assert!(query.count && query.selected && query.filter.is_some());
    assert_eq!(
        render(&query),
        render(&parse("$filter=intent eq 'x'&$top=2&$orderby=timestamp desc&$select=intent&$count=true").unwrap())
    );
    assert!(parse("$expand=*").is_ok(), "nothing to expand");
}

#[test]
fn operators_functions_and_literals_ignore_case() {
    assert_eq!(
        rendered("$filter=intent EQ 'x' AND Contains(inputText, 'y') Or understood eq TRUE"),
        rendered("$filter=intent eq 'x' and contains(inputText, 'y') or understood eq true")
    );
}

#[test]
fn arithmetic_binds_tighter_than_comparison_and_mul_tighter_than_add() {
    assert_eq!(
        filtered("$filter=execution add 2 mul 3 gt 10"),
        "filter: (gt (add:integer execution (mul:integer 2 3)) 10)".replace("(mul:integer 2 3)", "6")
    );
    assert_eq!(
        filtered("$filter=(execution add 2) mul execution gt 10"),
        "filter: (gt (mul:integer (add:integer execution 2) execution) 10)"
    );
    assert_eq!(filtered("$filter=execution divby 2 gt 1"), "filter: (gt (divby:number execution 2) 1)");
    assert_eq!(filtered("$filter=intentScore mod 2 eq 1"), "filter: (eq (mod:number intentScore 2) 1)");
    assert_eq!(filtered("$filter=-intentScore lt 0"), "filter: (lt (sub:number 0.0 intentScore) 0)");
    assert_eq!(filtered("$filter=execution sub -3 eq 5"), "filter: (eq (sub:integer execution -3) 5)");
}

#[test]
fn date_times_shift_by_durations_and_literals_are_computed_once() {
    assert_eq!(
        filtered("$filter=timestamp ge 2024-05-31T00:00:00Z sub duration'P30D'"),
        "filter: (ge timestamp 2024-05-01T00:00:00.000Z)"
    );
    assert_eq!(
        filtered("$filter=timestamp add duration'PT1H' lt 2024-05-01T00:00:00Z"),
        "filter: (lt (add:shift timestamp 3600000) 2024-05-01T00:00:00.000Z)"
    );
    assert_eq!(
        filtered("$filter=totalseconds(timestamp sub 2024-05-01T00:00:00Z) gt 60"),
        "filter: (gt (totalseconds (sub:between timestamp 2024-05-01T00:00:00.000Z)) 60)"
    );
    assert_eq!(
        filtered("$filter=timestamp sub 2024-05-01T00:00:00Z le duration'P1D'"),
        "filter: (le (sub:between timestamp 2024-05-01T00:00:00.000Z) 86400000)"
    );
    // now() is read once, when the query is parsed.
    let before = parley_core::value::now() - time::Duration::days(30);
    let query = parse("$filter=timestamp ge now() sub duration'P30D'").unwrap();
    let Some(Expr::Compare(_, _, right)) = &query.filter else { panic!("{query:?}") };
    let Expr::Literal(Value::Time(since)) = **right else { panic!("{right:?}") };
    assert!(since >= before && since <= parley_core::value::now() - time::Duration::days(30));
    assert_eq!(
        filtered("$filter=timestamp gt mindatetime() and timestamp lt maxdatetime()"),
        "filter: (and (gt timestamp 0001-01-01T00:00:00.000Z) (lt timestamp 9999-12-31T23:59:59.999Z))"
    );
}

#[test]
fn text_and_number_functions_are_typed() {
    assert_eq!(
        filtered("$filter=length(trim(inputText)) gt indexof(concat(intent, 'x'), 'x')"),
        "filter: (gt (length (trim inputText)) (indexof (concat intent 'x') 'x'))"
    );
    assert_eq!(filtered("$filter=substring(intent, 1) eq 'x'"), "filter: (eq (substring intent 1) 'x')");
    assert_eq!(filtered("$filter=round(intentScore) eq 1"), "filter: (eq (round intentScore) 1)");
    assert_eq!(filtered("$filter=floor(execution) eq 1"), "filter: (eq execution 1)", "whole numbers are rounded");
    assert_eq!(filtered("$filter=matchesPattern(intent, '^re.*d$')"), "filter: (matchespattern intent '^re.*d$')");
}

#[test]
fn casts_of_literals_are_computed_and_isof_is_decided_by_the_types_where_it_can() {
    let cases = [
        ("cast('12', Edm.Int16) eq execution", "(eq 12 execution)"),
        ("cast('x', Edm.Int16) eq execution", "(eq null execution)"),
        ("cast(duration'P1DT0.5S', Edm.String) eq intent", "(eq 'P1DT0.5S' intent)"),
        (
            "cast('2024-05-01T02:00:00+02:00', Edm.DateTimeOffset) eq timestamp",
            "(eq 2024-05-01T00:00:00.000Z timestamp)",
        ),
        ("cast(intent, Edm.String) eq 'x'", "(eq intent 'x')"),
        ("cast(execution, Edm.Int64) eq 1", "(eq execution 1)"),
        ("cast(execution, Edm.Int32) eq 1", "(eq (cast execution integer Edm.Int32) 1)"),
        ("cast(intentScore, Edm.String) eq '1'", "(eq (cast intentScore number Edm.String) '1')"),
        ("cast(null, Edm.Int32) eq 1", "(eq null 1)"),
        ("isof(intent, Edm.Int32)", "(eq false true)"),
        ("isof(1.5, Edm.Int32) or isof(2.0, edm.byte)", "(or (eq false true) (eq true true))"),
        ("isof(intent, Edm.String)", "(ne intent null)"),
        ("isof(execution, Edm.Double)", "(ne execution null)"),
        (
            "isof(intentScore, Edm.Int16)",
            "(and (ne intentScore null) (eq (cast intentScore number Edm.Int16) intentScore))",
        ),
        ("isof(intent, Edm.Guid)", "(eq false true)"),
        ("isof(parley.AnalyticsRecord) and not isof(Edm.String)", "(and (eq true true) (not (eq false true)))"),
    ];
    for (filter, expected) in cases {
        assert_eq!(filtered(&format!("$filter={filter}")), format!("filter: {expected}"), "{filter}");
    }
}

#[test]
fn durations_scale_by_numbers_to_whole_milliseconds() {
    let cases = [
        ("duration'PT1S' mul 3 eq duration'PT3S'", "(eq 3000 3000)"),
        ("duration'PT1S' div 3 eq duration'PT0.333S'", "(eq 333 333)"),
        ("duration'PT1S' divby 8 eq duration'PT0.125S'", "(eq 125 125)"),
        ("1.5 mul duration'PT1S' eq duration'PT1.5S'", "(eq 1500 1500)"),
        (
            "(timestamp sub 2024-05-01T00:00:00Z) mul 2 gt duration'P1D'",
            "(gt (mul:integer (sub:between timestamp 2024-05-01T00:00:00.000Z) 2) 86400000)",
        ),
        (
            "(timestamp sub 2024-05-01T00:00:00Z) divby 2 gt duration'P1D'",
            "(gt (cast (divby:number (sub:between timestamp 2024-05-01T00:00:00.000Z) 2) number Edm.Int64) 86400000)",
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(filtered(&format!("$filter={filter}")), format!("filter: {expected}"), "{filter}");
    }
    for (filter, says) in [
        ("2 div duration'PT1S' eq 1", "cannot div Edm.Int64 and Edm.Duration"),
        ("duration'PT1S' mod 2 eq duration'PT0S'", "cannot mod Edm.Duration and Edm.Int64"),
        ("duration'PT1S' div 0 eq duration'PT0S'", "division by zero"),
    ] {
        let e = error(&format!("$filter={filter}"));
        assert!(!e.unimplemented && e.message.contains(says), "{filter}: {e}");
    }
}

#[test]
fn concat_joins_the_columns_of_its_sequences() {
    let query = parse(
        "$apply=filter(intent ne null)/concat(aggregate($count as n),\
         groupby((intent,channel),aggregate($count as n,intentScore with max as top))/filter(n gt 1))/filter(n gt 2)",
    )
    .unwrap();
    assert_eq!(
        render(&query),
        rendered("$apply=filter(intent ne null)/groupby((intent,channel),aggregate($count as n,intentScore with max as top))/filter(n gt 2)")
            .replace("order: intent, channel", "order: $branch, intent, channel"),
        "one aggregation of all the columns, in the order of the sequences"
    );
    assert_eq!(query.branches.len(), 2);
    assert_eq!(query.branches[0].aggregates, [0]);
    assert_eq!(query.branches[1].aggregates, [0, 1]);
    assert_eq!(query.branches[1].steps.len(), 1, "the last filter of a sequence is its step");
}

#[test]
fn compute_after_a_grouping_is_a_step_on_its_rows() {
    let query = parse(
        "$apply=compute(length(intent) as len)/groupby((len),aggregate($count as n))/compute(n mul 2 as twice)\
         &$compute=twice add len as more&$filter=more gt 3&$orderby=twice desc",
    )
    .unwrap();
    assert_eq!(query.computed.iter().map(|c| c.alias.as_str()).collect::<Vec<_>>(), ["len", "twice", "more"]);
    assert_eq!(query.steps, [Step::Compute(vec![1]), Step::Compute(vec![2])]);
    assert_eq!(query.computed_after(), [1, 2]);
    let columns: Vec<String> =
        query.columns(&analytics()).iter().map(|&c| query.name(&analytics(), c).to_owned()).collect();
    assert_eq!(columns, ["len", "n", "twice", "more"]);
    let e = error("$apply=groupby((intent),aggregate($count as n))/compute(len add 1 as x)");
    assert!(e.message.contains("'len' is not in the result of $apply, which has intent, n"), "{e}");
}

#[test]
fn case_chooses_the_value_of_the_first_condition_that_holds() {
    assert_eq!(
        filtered("$filter=case(intent eq 'x': 1, understood: 2.5, true: null) gt 1"),
        "filter: (gt (case (eq intent 'x'): 1, (eq understood true): 2.5, (eq true true): null) 1)"
    );
    for (filter, says) in [
        (
            "case(intent eq 'x': 1, true: 'a') eq 1",
            "the values of 'case' must share a type; found Edm.Int64 and Edm.String",
        ),
        ("case(intent: 1) eq 1", "expected a condition (an Edm.Boolean expression)"),
        ("case(true 1) eq 1", "expected ':' and the value for this condition"),
        ("case(true: trackedGoals) eq null", "'case' cannot choose between collections"),
    ] {
        let e = error(&format!("$filter={filter}"));
        assert!(!e.unimplemented && e.message.contains(says), "{filter}: {e}");
    }
}

#[test]
fn times_of_day_compare_and_their_parts_are_arithmetic() {
    let cases = [
        ("time(timestamp) ge 08:30", "(ge (time timestamp) 30600000)"),
        ("time(timestamp) lt '23:59:59.999'", "(lt (time timestamp) 86399999)"),
        ("cast(timestamp, Edm.TimeOfDay) in (00:00, 12:00:01)", "(in (time timestamp) [0 43201000])"),
        ("hour(time(timestamp)) eq 8", "(eq (div:integer (time timestamp) 3600000) 8)"),
        ("minute(time(timestamp)) eq 8", "(eq (mod:integer (div:integer (time timestamp) 60000) 60) 8)"),
        ("fractionalseconds(12:00:00.25) eq 0.25", "(eq 0.25 0.25)"),
        ("cast(07:05, Edm.String) eq intent", "(eq '07:05:00.000' intent)"),
    ];
    for (filter, expected) in cases {
        assert_eq!(filtered(&format!("$filter={filter}")), format!("filter: {expected}"), "{filter}");
    }
    for (filter, says) in [
        ("time(timestamp) eq 24:00", "'24:00' is not a time of day"),
        ("time(timestamp) eq '8 am'", "'8 am' is not a time of day"),
        ("time(timestamp) eq timestamp", "cannot compare Edm.TimeOfDay with Edm.DateTimeOffset"),
        ("hour(intent) eq 1", "'hour' needs an Edm.DateTimeOffset or an Edm.TimeOfDay here"),
        ("time(timestamp) add duration'PT1H' eq 09:00", "cannot add Edm.TimeOfDay and Edm.Duration"),
    ] {
        let e = error(&format!("$filter={filter}"));
        assert!(!e.unimplemented && e.message.contains(says), "{filter}: {e}");
    }
}

#[test]
fn parameter_aliases_stand_for_their_values() {
    assert_eq!(filtered("$filter=intent eq @p&@p='refund'"), filtered("$filter=intent eq 'refund'"));
    assert_eq!(filtered("$apply=filter(@c)&@c=execution add @n gt 2&@n=1"), filtered("$filter=execution add 1 gt 2"));
    assert_eq!(filtered("$filter=intent eq @absent"), filtered("$filter=intent eq null"));
    let e = error("$filter=intent eq @p&@p='open");
    assert_eq!((e.option.as_str(), e.position), ("@p", 0), "{e}");
    let e = error("$filter=intent eq @p&@p=@p");
    assert!(e.message.contains("nests more than"), "{e}");
}

#[test]
fn apply_steps_after_the_grouping() {
    let query =
        parse("$apply=groupby((intent),aggregate($count as n))/filter(n gt 1)/orderby(n desc)/top(3)/filter(n lt 9)")
            .unwrap();
    assert_eq!(query.steps.len(), 3, "{:?}", query.steps);
    assert!(matches!(query.steps[0], parley_odata::Step::Filter(_)));
    assert!(matches!(&query.steps[1], parley_odata::Step::Order(keys) if keys[0].descending));
    assert_eq!(query.steps[2], parley_odata::Step::Top(3));
    assert!(query.output_filter.is_some(), "the last filter applies after the steps");
    let query = parse("$apply=filter(execution gt 1)/topcount(2, intentScore)/skip(1)").unwrap();
    assert!(query.filter.is_some());
    assert!(matches!(query.steps[0], parley_odata::Step::TopCount { count: 2, bottom: false, .. }));
    assert_eq!(query.steps[1], parley_odata::Step::Skip(1));
    // identity changes nothing.
    assert_eq!(rendered("$apply=identity"), rendered(""));
    assert_eq!(rendered("$apply=identity/filter(intent eq 'x')/identity"), rendered("$filter=intent eq 'x'"));
    let e = error("$apply=expand(intent)");
    assert!(!e.unimplemented && e.message.contains("no navigation properties"), "{e}");
    // Steps before a grouping keep rows of the set: they come first, with the filters among them.
    let query = parse("$apply=filter(execution gt 1)/top(5)/filter(intent ne null)/groupby((intent))/top(2)").unwrap();
    assert!(query.filter.is_some());
    assert_eq!(query.row_steps.len(), 2);
    assert_eq!(query.row_steps[0], parley_odata::Step::Top(5));
    assert!(matches!(query.row_steps[1], parley_odata::Step::Filter(_)));
    assert_eq!(query.steps, [parley_odata::Step::Top(2)]);
    for (text, message) in [
        ("$apply=topcount(2, intent)", "ranks by a number"),
        ("$apply=toppercent(101, rating)", "a percentage from 0 to 100"),
        ("$apply=topsum('x', rating)", "takes a number first"),
        ("$apply=bottomsum(1, intent)", "ranks by a number"),
        ("$apply=top(-1)", "takes a whole number from 0"),
        ("$apply=concat(top(2)/groupby((intent)),aggregate($count as n))", "are not implemented"),
        ("$apply=orderby(nope)", "'nope' is not a property"),
        ("$apply=groupby((intent))/orderby(execution)", "not in the result of $apply"),
    ] {
        assert!(error(text).message.contains(message), "{text}: {}", error(text));
    }
}

#[test]
fn computed_properties_serve_filter_select_and_orderby() {
    let query = parse("$compute=execution mul 2 as twice, concat(intent, '!') as loud, intent eq 'x' as isX&$filter=twice gt 2 and isX&$select=inputId,twice,loud&$orderby=twice desc").unwrap();
    assert_eq!(query.computed.iter().map(|c| c.alias.as_str()).collect::<Vec<_>>(), ["twice", "loud", "isX"]);
    assert_eq!(render(&query).lines().next().unwrap(), "filter: (and (gt twice 2) (eq isX true))");
    assert_eq!(query.select.len(), 3);
    assert_eq!(query.order[0].operand, Operand::Computed(0));
    let all = parse("$compute=execution mul 2 as twice").unwrap();
    assert_eq!(all.select.last(), Some(&Operand::Computed(0)), "computed properties are in the answer by default");
    for (query, message) in [
        ("$compute=execution mul 2", "expected 'as'"),
        ("$compute=execution as intent", "the name 'intent' is taken"),
        ("$compute=1 as a, 2 as a", "the name 'a' is taken"),
        ("$compute=null as n", "null has no type"),
        ("$compute=1 as a&$filter=b eq 1", "'b' is not a property of AnalyticsRecord nor of $compute"),
    ] {
        assert!(error(query).message.contains(message), "{query}: {}", error(query));
    }
}

#[test]
fn search_reads_only_the_sets_with_a_text_index_and_not_groups() {
    let conversations = EntityType::conversations(IdName::Id);
    let pairs = |text: &str| -> Vec<(String, String)> {
        text.split('&').map(|p| p.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())).unwrap()).collect()
    };
    assert!(parse_query(&conversations, &pairs("$search=refund")).unwrap().search.is_some());
    let e = parse_query(&conversations, &pairs("$search=refund&$apply=groupby((channel))")).unwrap_err();
    assert!(e.unimplemented && e.message.contains("groups have no text to search"), "{e}");
    let stepped = parse_query(&conversations, &pairs("$search=refund&$apply=top(3)")).unwrap();
    assert!(stepped.search.is_some() && stepped.steps.len() == 1, "{stepped:?}");
    let e = error("$search=refund");
    assert!(e.unimplemented && e.message.contains("not implemented for Analytics"), "{e}");
}

#[test]
fn lambdas_and_counts_over_collections() {
    assert_eq!(
        filtered("$filter=completedGoals/any(g: g eq 'buy' or startswith(g, 'sign')) and trackedGoals/any()"),
        "filter: (and (any completedGoals (or (eq $element 'buy') (startswith $element 'sign'))) (any trackedGoals))"
    );
    assert_eq!(filtered("$filter=trackedGoals/ALL(x: x ne 'y')"), "filter: (all trackedGoals (ne $element 'y'))");
    assert_eq!(filtered("$filter=trackedGoals/$count ge 2"), "filter: (ge (count trackedGoals) 2)");
    // The row's properties, and lambdas inside lambdas, each variable by its depth (the
    // innermost of a name wins).
    assert_eq!(
        filtered(
            "$filter=trackedGoals/any(g: g eq intent or completedGoals/all(c: c ne g and trackedGoals/any(g: g eq c)))"
        ),
        "filter: (any trackedGoals (or (eq $element intent) (all completedGoals (and (ne $element1 $element) \
         (any trackedGoals (eq $element2 $element1))))))"
    );
}

#[test]
fn valid_odata_that_is_not_implemented_is_told_apart() {
    for query in [
        "$search=refund",
        "$compute=timestamp sub timestamp as d",
        "$apply=groupby((intent),aggregate($count as n))/compute(n as m)/groupby((m))",
        "$apply=nest(x)",
        "$filter=cast(intent, Edm.Guid) eq null",
        "$filter=cast(inputText, Edm.DateTimeOffset) eq null",
        "$filter=cast(timestamp sub timestamp, Edm.String) eq 'PT0S'",
        "$filter=geo.distance(intent, intent) lt 1",
        "$apply=aggregate($count as n)/groupby((intent))",
        "$apply=concat(aggregate($count as n),filter(intent eq 'x'))",
        "$compute=time(timestamp) as t",
        "$filter=cast(time(timestamp), Edm.String) eq '08:00:00.000'",
    ] {
        let e = error(query);
        assert!(e.unimplemented, "{query}: {e}");
    }
    for query in ["$filter=frobnicate(intent) eq 1", "$frobnicate=1", "$filter=intent eq"] {
        assert!(!error(query).unimplemented, "{query}");
    }
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
        ("$filter=frobnicate(intent) eq 1", "$filter", 0, "'frobnicate' is not a function; functions are contains"),
        ("$filter=substring(intent) eq 'x'", "$filter", 16, "'substring' takes 2 or 3 arguments, given 1"),
        ("$filter=matchesPattern(intent, '(') ", "$filter", 23, "the pattern is not a regular expression"),
        ("$filter=matchesPattern(intent, intent)", "$filter", 23, "must be a string literal"),
        ("$filter=execution eq 1 div 0", "$filter", 15, "division by zero"),
        ("$filter=execution eq 9223372036854775807 add 1", "$filter", 33, "add overflows"),
        ("$filter=execution eq -intent", "$filter", 14, "'-' needs a number or a duration"),
        ("$filter=timestamp add 1 eq timestamp", "$filter", 10, "cannot add Edm.DateTimeOffset and Edm.Int64"),
        ("$filter=timestamp gt timestamp add duration'P1M'", "$filter", 36, "months, which have no fixed length"),
        ("$filter=contains(intent)", "$filter", 15, "'contains' takes 2 arguments, given 1"),
        ("$filter=year(intent) eq 1", "$filter", 5, "'year' needs an Edm.DateTimeOffset here, found Edm.String"),
        ("$filter=trackedGoals eq 'x'", "$filter", 0, "a collection cannot be compared"),
        ("$filter=intent in ()", "$filter", 11, "at least one value"),
        ("$filter=intent in (1)", "$filter", 11, "expected a Edm.String literal"),
        ("$filter=intent eq 'x' add 1", "$filter", 14, "cannot add Edm.String and Edm.Int64"),
        ("$filter=intent/x eq 1", "$filter", 6, "'intent' is not a collection"),
        ("$filter=trackedGoals/first eq 'x'", "$filter", 13, "expected any, all or $count, found 'first'"),
        ("$filter=trackedGoals/any(g g eq 'x')", "$filter", 19, "expected ':' after the lambda's variable"),
        ("$filter=trackedGoals/any(g: g eq 1)", "$filter", 22, "cannot compare Edm.String with Edm.Int64"),
        ("$filter=trackedGoals/all(g: g)", "$filter", 20, "expected a condition"),
        ("$filter=trackedGoals/any(eq: true)", "$filter", 17, "'eq' cannot name a lambda's variable"),
        ("$filter=trackedGoals/any(1: true)", "$filter", 17, "expected the lambda's variable"),
        ("$filter=timestamp gt maxdatetime() add duration'P1D'", "$filter", 27, "the date-time is out of range"),
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
        ("$expand=x", "$expand", 0, "'x' is not a navigation property of AnalyticsRecord, which has none"),
        ("$top=1&top=2", "top", 0, "$top is given more than once"),
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
        (
            "$apply=concat(filter(true))",
            "$apply",
            7,
            "a sequence of concat without groupby or aggregate is not implemented",
        ),
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
