//! The system query options of a request, parsed together into one [`Query`].

use crate::error::ParseError;
use crate::model::EntityType;
use crate::parser::{Applied, Parser, Scope};
use crate::skiptoken;
use crate::tree::{Computed, Format, Operand, OrderKey, Query, Step, computed_by, conjoin};
use parley_core::field::FieldType;

/// The options parley implements.
const SUPPORTED: [&str; 12] = [
    "$filter",
    "$select",
    "$orderby",
    "$top",
    "$skip",
    "$count",
    "$apply",
    "$format",
    "$skiptoken",
    "$expand",
    "$compute",
    "$search",
];
/// The other system query options of OData: valid, not implemented (answered 501).
const UNIMPLEMENTED: [&str; 5] = ["$index", "$levels", "$deltatoken", "$schemaversion", "$id"];

/// The system query option a query parameter is, by its canonical name: option names are matched
/// without regard to case and, as OData 4.01 allows, with or without their `$` (`filter=` is
/// `$filter=`). Any other name without `$` is a custom option (such as `apikey`): `None`.
pub fn system_option(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix('$').unwrap_or(&lower);
    SUPPORTED.iter().chain(&UNIMPLEMENTED).copied().find(|option| option[1..] == *bare)
}

/// Parses the query options of a request for `entity`. `pairs` are the decoded name/value pairs
/// of the query string; custom options (such as `apikey`) are left alone. Each system option may
/// be given once, in whichever spelling.
pub fn parse_query(entity: &EntityType, pairs: &[(String, String)]) -> Result<Query, ParseError> {
    let mut given: Vec<(&'static str, &str)> = Vec::new();
    let aliases: Vec<(String, String)> =
        pairs.iter().filter(|(name, _)| name.starts_with('@')).map(|(n, v)| (n.clone(), v.clone())).collect();
    for (name, value) in pairs {
        let Some(option) = system_option(name) else {
            if name.starts_with('$') {
                let message = format!("{name} is not a query option; implemented are {}", SUPPORTED.join(", "));
                return Err(ParseError::new(name, 0, message));
            }
            continue;
        };
        if UNIMPLEMENTED.contains(&option) {
            return Err(ParseError::unimplemented(name, 0, format!("the query option {option} is not implemented")));
        }
        if given.iter().any(|(o, _)| *o == option) {
            return Err(ParseError::new(name, 0, format!("{option} is given more than once")));
        }
        given.push((option, value.as_str()));
    }
    if let Some(expand) = given.iter().find(|(o, _)| *o == "$expand").map(|(_, v)| v.trim())
        && expand != "*"
    {
        return Err(ParseError::new(
            "$expand",
            0,
            format!(
                "'{expand}' is not a navigation property of {}, which has none; $expand=* expands nothing",
                entity.name
            ),
        ));
    }
    let value_of = |option: &str| given.iter().find(|(o, _)| *o == option).map(|(_, v)| *v);

    let Applied { computed: applied, before, row_steps, aggregation, mut steps, after, branches } =
        match value_of("$apply") {
            Some(text) => {
                let mut parser = Parser::new("$apply", text, Scope::Entity(entity))?.with_aliases(&aliases);
                let applied = parser.apply()?;
                parser.finish()?;
                applied
            }
            None => Applied::default(),
        };
    let names = |computed: &[Computed]| -> Vec<(String, FieldType)> {
        computed.iter().map(|c| (c.alias.clone(), c.ty)).collect()
    };
    // `$compute` adds to what `compute(…)` of `$apply` computed: on the aggregated rows after a
    // grouping, otherwise on the set's (the steps keep rows whole).
    let computed = match value_of("$compute") {
        Some(text) => {
            let names = names(&applied);
            let scope = match &aggregation {
                Some(aggregation) => Scope::Output {
                    entity,
                    computed_after: applied.len() - computed_by(&steps).len(),
                    computed: names,
                    aggregation: aggregation.clone(),
                },
                None if applied.is_empty() => Scope::Entity(entity),
                None => Scope::Computed(entity, names),
            };
            let mut computed = applied;
            let first = computed.len();
            computed.extend(Parser::new("$compute", text, scope)?.with_aliases(&aliases).compute()?);
            if aggregation.is_some() {
                steps.push(Step::Compute((first..computed.len()).collect()));
            }
            computed
        }
        None => applied,
    };
    let names = names(&computed);
    let output = aggregation.clone();
    let computed_after = computed.len() - computed_by(&steps).len();
    let scope = || match &output {
        Some(aggregation) => {
            Scope::Output { entity, computed: names.clone(), aggregation: aggregation.clone(), computed_after }
        }
        None if names.is_empty() => Scope::Entity(entity),
        None => Scope::Computed(entity, names.clone()),
    };
    let filter = match value_of("$filter") {
        Some(text) => {
            let mut parser = Parser::new("$filter", text, scope())?.with_aliases(&aliases);
            let condition = parser.condition()?;
            parser.finish()?;
            Some(condition)
        }
        None => None,
    };
    let (filter, output_filter) = match (&aggregation, filter) {
        (None, filter) if steps.is_empty() => (conjoin(before.into_iter().chain(after).chain(filter).collect()), None),
        (_, filter) => (conjoin(before), conjoin(after.into_iter().chain(filter).collect())),
    };

    let search = match value_of("$search") {
        None => None,
        Some(_) if !entity.searchable => {
            return Err(ParseError::unimplemented(
                "$search",
                0,
                format!(
                    "$search is not implemented for {}: of the sets, Conversations has a full-text index",
                    entity.set
                ),
            ));
        }
        // $search applies to what $apply answers: rows of the set, or groups without text.
        Some(_) if aggregation.is_some() => {
            return Err(ParseError::unimplemented(
                "$search",
                0,
                "$search after groupby, aggregate or concat is not implemented: groups have no text to search",
            ));
        }
        Some(text) => Some(crate::search::parse_search(text)?),
    };
    let mut query = Query {
        computed,
        search,
        filter,
        aggregation,
        branches,
        row_steps,
        steps,
        output_filter,
        select: Vec::new(),
        selected: false,
        order: Vec::new(),
        top: None,
        skip: 0,
        count: false,
        format: Format::Json,
        after: None,
    };
    query.select = match value_of("$select").map(str::trim) {
        None | Some("*") => query.columns(entity),
        Some(text) => {
            query.selected = true;
            let mut parser = Parser::new("$select", text, scope())?;
            parser.select()?
        }
    };
    let mut order = match value_of("$orderby") {
        Some(text) => Parser::new("$orderby", text, scope())?.order()?,
        None => Vec::new(),
    };
    // After concat, rows keep the order of their sequences.
    let sequence = if query.branches.is_empty() { None } else { Some(Operand::Branch) };
    let tiebreakers: Vec<Operand> = match &query.aggregation {
        None => vec![Operand::Property(entity.key)],
        Some(aggregation) => sequence.into_iter().chain(aggregation.group_by.iter().copied()).collect(),
    };
    for operand in tiebreakers {
        if !order.iter().any(|k| k.operand == operand) {
            order.push(OrderKey { operand, descending: false });
        }
    }
    query.order = order;
    query.top = value_of("$top").map(|text| whole_number("$top", text)).transpose()?;
    query.skip = value_of("$skip").map(|text| whole_number("$skip", text)).transpose()?.unwrap_or(0);
    query.count = match value_of("$count") {
        None => false,
        Some(text) => match text.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(ParseError::new("$count", 0, "must be true or false")),
        },
    };
    query.format = match value_of("$format") {
        None => Format::Json,
        Some(text) => format_of(text).ok_or_else(|| {
            ParseError::new("$format", 0, format!("'{text}' is not a format parley offers; use json or csv"))
        })?,
    };
    if let Some(token) = value_of("$skiptoken") {
        query.after = Some(skiptoken::decode(&query, entity, token).ok_or_else(|| {
            ParseError::new(
                "$skiptoken",
                0,
                "is not a skip token of this query; take it unchanged from an @odata.nextLink of the same query",
            )
        })?);
    }
    Ok(query)
}

fn whole_number(option: &str, text: &str) -> Result<u64, ParseError> {
    let trimmed = text.trim();
    let offset = text.len() - text.trim_start().len();
    if let Some(bad) = trimmed.bytes().position(|b| !b.is_ascii_digit()) {
        return Err(ParseError::new(option, offset + bad, "must be a whole number of at least 0"));
    }
    trimmed
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| ParseError::new(option, offset, format!("must be a whole number from 0 to {}", i64::MAX)))
}

fn format_of(text: &str) -> Option<Format> {
    let media = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "json" | "application/json" => Some(Format::Json),
        "csv" | "text/csv" => Some(Format::Csv),
        _ => None,
    }
}
