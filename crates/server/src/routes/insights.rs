//! Insights (docs/contract/insights.md, "Report API"): every report, over one or several
//! projects, in every body format and as its chart.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_core::insights::{Item, Report, ReportQuery};
use parley_core::value::format_time;
use parley_core::{Caller, ProjectAccess};
use serde_json::{Map, Value as Json};

use crate::chart;
use crate::negotiate::{Format, ReportFormat};
use crate::problem::ApiError;
use crate::represent::{Body, Collection, respond};
use crate::state::AppState;

/// The columns of a report as CSV.
const CSV_COLUMNS: [&str; 4] = ["projectId", "dimension", "measure", "value"];

/// A report as JSON, XML and HAL write it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Report)]
pub struct ReportView {
    /// The report's name.
    report: String,
    /// The IANA zone the buckets are in.
    timezone: String,
    /// The start of the range (inclusive).
    #[schema(format = DateTime)]
    from: String,
    /// The end of the range (exclusive).
    #[schema(format = DateTime)]
    to: String,
    /// Every write acknowledged by this time is counted.
    #[schema(rename = "asOf", format = DateTime)]
    as_of: String,
    items: Vec<ItemView>,
}

/// One number of a report.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = ReportItem)]
pub struct ItemView {
    /// The project, under `compare=project`.
    #[schema(rename = "projectId")]
    project_id: Option<String>,
    /// A bucket start in the report's zone with its offset, a category (null for rows without
    /// one), or `total` / `all`.
    dimension: Option<String>,
    measure: String,
    /// A count, sum, average or rate; null where there is nothing to average.
    value: Option<f64>,
}

#[utoipa::path(
    get,
    path = "/insights/{report}",
    tag = "insights",
    params(
        ("report" = String, Path, description = "overview, sessions, contacts, inputs, activeSessions, sessionsByChannel, contactsByLocale, sessionsByEndpoint, topIntents, topSlots, topGoals, topMessages, topExitMessages, sessionLength, containmentRate, handoverRate, handoversByHour, ratings, executionTime, intentScore, goals, liveAgent, steps, understood"),
        ("projectId" = Vec<String>, Query, description = "Repeatable (also projectId[]); each must be readable"),
        ("compare" = Option<String>, Query, description = "project: one series per project"),
        ("from" = Option<String>, Query, description = "Date or date-time; default 7 days before 'to'"),
        ("to" = Option<String>, Query, description = "Date (the whole day) or date-time, exclusive; default now; at most 400 days after 'from'"),
        ("grain" = Option<String>, Query, description = "hour, day, week, month or year; default from the range"),
        ("timezone" = Option<String>, Query, description = "Any IANA zone; default UTC"),
        ("limit" = Option<u32>, Query, description = "Top-N reports: 1..100, default 10"),
        ("channel" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("endpointUrlToken" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("localeName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("snapshotName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("flowName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("startStep" = Option<String>, Query, description = "steps: the funnel forward from this entityReferenceId"),
        ("endStep" = Option<String>, Query, description = "steps: the funnel back from this entityReferenceId"),
        ("depth" = Option<u32>, Query, description = "steps: 1..20, default 5"),
    ),
    responses(
        (status = 200, description = "The report, counting every write acknowledged by asOf (also in X-As-Of); as image/svg+xml or image/png, its chart", body = ReportView),
        ApiError,
    )
)]
/// `GET /insights/{report}`: one report.
pub async fn read_report(
    State(state): State<AppState>,
    caller: Caller,
    format: ReportFormat,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let report = Report::parse(&name).ok_or_else(|| ApiError::not_found("report"))?;
    let pairs = super::query_pairs(raw.as_deref())?;
    // Every write acknowledged before this instant is committed, so the reads below count it.
    let as_of = time::OffsetDateTime::now_utc();
    let query = ReportQuery::parse(report, &pairs, as_of)?;
    let mut projects = Vec::with_capacity(query.projects.len());
    for id in &query.projects {
        // A project the caller may not read is, to them, absent.
        match state.store.project_for(&caller, *id).await? {
            Some((project, access)) if access >= ProjectAccess::Read => projects.push(project),
            _ => return Err(ApiError::not_found("project")),
        }
    }
    let scales: Vec<_> = projects.iter().map(|p| (p.id, p.settings.rating_scale)).collect();
    let items = state.store.report(&query, &scales, as_of).await?;
    let as_of_text = format_time(as_of);
    let mut response = match format {
        ReportFormat::Svg | ReportFormat::Png => {
            let name_of = |item: &Item| {
                item.project
                    .and_then(|id| projects.iter().find(|p| p.id == id))
                    .map_or_else(String::new, |p| p.name.clone())
            };
            let title = format!("{} · {}", report.title(), range_title(&query));
            let svg = chart::svg(report, &title, &items, &name_of);
            if format == ReportFormat::Svg {
                ([(header::CONTENT_TYPE, ReportFormat::SVG)], svg).into_response()
            } else {
                ([(header::CONTENT_TYPE, ReportFormat::PNG)], chart::png(&svg)?).into_response()
            }
        }
        ReportFormat::Body(Format::Csv) => respond(
            Format::Csv,
            StatusCode::OK,
            Body::Collection(Collection {
                total: items.len() as u64,
                items: items.iter().map(item_json).collect(),
                columns: CSV_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
                next: None,
                previous: None,
                self_href: uri.to_string(),
            }),
        ),
        ReportFormat::Body(format) => {
            let mut value = Map::new();
            value.insert("report".into(), Json::from(report.name()));
            value.insert("timezone".into(), Json::from(query.timezone_name.clone()));
            value.insert("from".into(), Json::from(format_time(query.from)));
            value.insert("to".into(), Json::from(format_time(query.to)));
            value.insert("asOf".into(), Json::from(as_of_text.clone()));
            let items = items
                .iter()
                .map(|item| {
                    let mut json = item_json(item);
                    if report == Report::Steps {
                        json.insert(
                            "_links".into(),
                            serde_json::json!({"sessions": {"href": sessions_of(&query, item)}}),
                        );
                    }
                    Json::Object(json)
                })
                .collect();
            value.insert("items".into(), Json::Array(items));
            respond(format, StatusCode::OK, Body::Resource { value, self_href: uri.to_string() })
        }
    };
    if let Ok(value) = HeaderValue::from_str(&as_of_text) {
        response.headers_mut().insert("x-as-of", value);
    }
    Ok(response)
}

fn item_json(item: &Item) -> Map<String, Json> {
    let mut json = Map::new();
    if let Some(project) = item.project {
        json.insert("projectId".into(), Json::from(project.to_string()));
    }
    json.insert("dimension".into(), item.dimension.clone().map_or(Json::Null, Json::from));
    json.insert("measure".into(), Json::from(item.measure.clone()));
    json.insert("value".into(), item.value.clone());
    json
}

/// The range as a chart's title shows it.
fn range_title(query: &ReportQuery) -> String {
    let label = |t: time::OffsetDateTime| {
        let i = query.bounds.partition_point(|b| *b <= t).saturating_sub(1);
        query.bucket_label(i).chars().take(10).collect::<String>()
    };
    format!("{} to {} ({})", label(query.from), label(query.to - time::Duration::milliseconds(1)), query.timezone_name)
}

/// The sessions behind a node of the steps funnel, as an OData query of `Sessions`: those of the
/// node's projects, started in the range, whose step path holds the node's path.
fn sessions_of(query: &ReportQuery, item: &Item) -> String {
    let projects: Vec<String> = match item.project {
        Some(p) => vec![p.to_string()],
        None => query.projects.iter().map(ToString::to_string).collect(),
    };
    let mut steps: Vec<&str> = item.dimension.as_deref().unwrap_or_default().split(" > ").collect();
    if query.end_step.is_some() {
        steps.reverse();
    }
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let filter = format!(
        "({}) and startedAt ge {} and startedAt lt {} and contains(stepPath,{})",
        projects.iter().map(|p| format!("projectId eq {}", quoted(p))).collect::<Vec<_>>().join(" or "),
        format_time(query.from),
        format_time(query.to),
        quoted(&steps.join(","))
    );
    let encoded: String =
        percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("/v2.4/Sessions?$filter={encoded}")
}
