//! Insights reports (docs/contract/insights.md): the report names, a request's parameters parsed
//! into typed values, the buckets of a range in a time zone, and the items of an answer. The
//! numbers come from the store; what a bucket is, and how partial numbers of several projects
//! combine, is decided here.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime as Zoned};
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::ObjectId;

/// Every report, by the name its address carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Report {
    Overview,
    Sessions,
    Contacts,
    Inputs,
    ActiveSessions,
    SessionsByChannel,
    ContactsByLocale,
    SessionsByEndpoint,
    TopIntents,
    TopSlots,
    TopGoals,
    TopMessages,
    TopExitMessages,
    SessionLength,
    ContainmentRate,
    HandoverRate,
    HandoversByHour,
    Ratings,
    ExecutionTime,
    IntentScore,
    Goals,
    LiveAgent,
    Steps,
    Understood,
}

/// How a report is drawn, on the dashboard and as an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Numbers per bucket of time: a line per measure (and per project).
    Line,
    /// Top-N and per-category numbers that are not parts of a whole: bars.
    Bars,
    /// Parts of a whole: a ring.
    Ring,
    /// Weekday × hour: a heat map.
    HeatMap,
    /// A handful of headline numbers: tiles.
    Tiles,
}

impl Report {
    pub const ALL: [Report; 24] = [
        Report::Overview,
        Report::Sessions,
        Report::Contacts,
        Report::Inputs,
        Report::ActiveSessions,
        Report::SessionsByChannel,
        Report::ContactsByLocale,
        Report::SessionsByEndpoint,
        Report::TopIntents,
        Report::TopSlots,
        Report::TopGoals,
        Report::TopMessages,
        Report::TopExitMessages,
        Report::SessionLength,
        Report::ContainmentRate,
        Report::HandoverRate,
        Report::HandoversByHour,
        Report::Ratings,
        Report::ExecutionTime,
        Report::IntentScore,
        Report::Goals,
        Report::LiveAgent,
        Report::Steps,
        Report::Understood,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Report::Overview => "overview",
            Report::Sessions => "sessions",
            Report::Contacts => "contacts",
            Report::Inputs => "inputs",
            Report::ActiveSessions => "activeSessions",
            Report::SessionsByChannel => "sessionsByChannel",
            Report::ContactsByLocale => "contactsByLocale",
            Report::SessionsByEndpoint => "sessionsByEndpoint",
            Report::TopIntents => "topIntents",
            Report::TopSlots => "topSlots",
            Report::TopGoals => "topGoals",
            Report::TopMessages => "topMessages",
            Report::TopExitMessages => "topExitMessages",
            Report::SessionLength => "sessionLength",
            Report::ContainmentRate => "containmentRate",
            Report::HandoverRate => "handoverRate",
            Report::HandoversByHour => "handoversByHour",
            Report::Ratings => "ratings",
            Report::ExecutionTime => "executionTime",
            Report::IntentScore => "intentScore",
            Report::Goals => "goals",
            Report::LiveAgent => "liveAgent",
            Report::Steps => "steps",
            Report::Understood => "understood",
        }
    }

    /// What a person calls it: the title of its chart.
    pub fn title(self) -> &'static str {
        match self {
            Report::Overview => "Overview",
            Report::Sessions => "Sessions",
            Report::Contacts => "Contacts",
            Report::Inputs => "Inputs",
            Report::ActiveSessions => "Active sessions",
            Report::SessionsByChannel => "Sessions by channel",
            Report::ContactsByLocale => "Contacts by locale",
            Report::SessionsByEndpoint => "Sessions by endpoint",
            Report::TopIntents => "Top intents",
            Report::TopSlots => "Top slots",
            Report::TopGoals => "Top goals",
            Report::TopMessages => "Top messages",
            Report::TopExitMessages => "Top exit messages",
            Report::SessionLength => "Session length (seconds)",
            Report::ContainmentRate => "Containment rate",
            Report::HandoverRate => "Handover rate",
            Report::HandoversByHour => "Handovers by weekday and hour",
            Report::Ratings => "Ratings",
            Report::ExecutionTime => "Execution time",
            Report::IntentScore => "Intent scores",
            Report::Goals => "Goal cycles",
            Report::LiveAgent => "Handovers by status and label",
            Report::Steps => "Step funnel",
            Report::Understood => "Understood inputs",
        }
    }

    /// Whether its chart draws an item of this measure. Each chart draws numbers of one kind on
    /// one axis: goals draw their cycles (times and money are in the answer, not on the bars),
    /// the live-agent report its counts by status and label (its averages are tiles).
    pub fn draws(self, measure: &str) -> bool {
        match self {
            Report::Goals => matches!(measure, "completed" | "partial" | "incomplete"),
            Report::LiveAgent => measure == "count",
            Report::IntentScore => measure == "count",
            _ => true,
        }
    }

    /// The report named `name`, exactly as written.
    pub fn parse(name: &str) -> Option<Report> {
        Report::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether its items are numbers per bucket of time.
    pub fn is_series(self) -> bool {
        matches!(
            self,
            Report::Sessions
                | Report::Contacts
                | Report::Inputs
                | Report::SessionLength
                | Report::ContainmentRate
                | Report::HandoverRate
                | Report::Ratings
                | Report::ExecutionTime
                | Report::Understood
        )
    }

    pub fn chart(self) -> Chart {
        match self {
            _ if self.is_series() => Chart::Line,
            Report::SessionsByChannel | Report::ContactsByLocale | Report::SessionsByEndpoint => Chart::Ring,
            Report::HandoversByHour => Chart::HeatMap,
            Report::Overview | Report::ActiveSessions => Chart::Tiles,
            _ => Chart::Bars,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The length of a bucket of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Hour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
    Year,
}

impl Grain {
    pub const NAMES: [&'static str; 5] = ["hour", "day", "week", "month", "year"];

    fn parse(text: &str) -> Option<Grain> {
        Some(match text {
            "hour" => Grain::Hour,
            "day" => Grain::Day,
            "week" => Grain::Week,
            "month" => Grain::Month,
            "year" => Grain::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Grain::NAMES[self as usize]
    }

    /// The grain of a range when the request names none: hours up to 2 days, days up to 92,
    /// weeks up to 366, else months.
    fn default_for(from: Timestamp, to: Timestamp) -> Grain {
        let days = (to.as_millisecond() - from.as_millisecond()) as f64 / 86_400_000.0;
        match days {
            d if d <= 2.0 => Grain::Hour,
            d if d <= 92.0 => Grain::Day,
            d if d <= 366.0 => Grain::Week,
            _ => Grain::Month,
        }
    }

    /// The start of the bucket that holds `t`.
    fn floor(self, t: &Zoned) -> Result<Zoned> {
        let tz = t.time_zone();
        let day = |date: Date| date.to_zoned_datetime(tz.clone()).map_err(fault);
        match self {
            // Local hours: every offset in use is a whole number of quarter hours, so the local
            // hour starts at a whole quarter of an hour in UTC.
            Grain::Hour => t.with().minute(0).second(0).subsec_nanosecond(0).build().map_err(fault),
            Grain::Day => day(t.date()),
            Grain::Week => day(t.date() - i64::from(t.weekday().to_monday_zero_offset()).days()),
            Grain::Month => day(t.date().first_of_month()),
            Grain::Year => day(Date::new(t.year(), 1, 1).map_err(fault)?),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    fn next(self, start: &Zoned) -> Result<Zoned> {
        let tz = start.time_zone();
        let day = |date: Date| date.to_zoned_datetime(tz.clone()).map_err(fault);
        match self {
            Grain::Hour => {
                // An hour later in absolute time, back to the local hour's start; a change of
                // offset by less than an hour can land that inside the same local hour.
                let mut later = start.checked_add(1.hour()).map_err(fault)?;
                loop {
                    let floor = self.floor(&later)?;
                    if floor.timestamp() > start.timestamp() {
                        return Ok(floor);
                    }
                    later = later.checked_add(30.minutes()).map_err(fault)?;
                }
            }
            Grain::Day => day(start.date().tomorrow().map_err(fault)?),
            Grain::Week => day(start.date() + 7.days()),
            Grain::Month => day(start.date().first_of_month() + 1.month()),
            Grain::Year => day(Date::new(start.year() + 1, 1, 1).map_err(fault)?),
        }
    }
}

fn fault(e: jiff::Error) -> Error {
    Error::internal(format!("time arithmetic: {e}"))
}

/// A field the reports can be filtered by, as each table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FilterField {
    Channel,
    EndpointUrlToken,
    LocaleName,
    SnapshotName,
    FlowName,
}

impl FilterField {
    pub const ALL: [FilterField; 5] = [
        FilterField::Channel,
        FilterField::EndpointUrlToken,
        FilterField::LocaleName,
        FilterField::SnapshotName,
        FilterField::FlowName,
    ];

    /// The parameter's name.
    pub fn name(self) -> &'static str {
        match self {
            FilterField::Channel => "channel",
            FilterField::EndpointUrlToken => "endpointUrlToken",
            FilterField::LocaleName => "localeName",
            FilterField::SnapshotName => "snapshotName",
            FilterField::FlowName => "flowName",
        }
    }

    /// The column that holds it, in every table that has it.
    pub fn column(self) -> &'static str {
        match self {
            FilterField::Channel => "channel",
            FilterField::EndpointUrlToken => "endpoint_url_token",
            FilterField::LocaleName => "locale_name",
            FilterField::SnapshotName => "snapshot_name",
            FilterField::FlowName => "flow_name",
        }
    }
}

/// One filter parameter: rows whose field is one of `include` (when any), and none of `exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: FilterField,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    /// Whether a row whose field holds `value` passes.
    pub fn admits(&self, value: Option<&str>) -> bool {
        let included = self.include.is_empty() || value.is_some_and(|v| self.include.iter().any(|i| i == v));
        let excluded = value.is_some_and(|v| self.exclude.iter().any(|e| e == v));
        included && !excluded
    }
}

/// The longest range a report covers.
pub const MAX_RANGE_DAYS: i64 = 400;
/// The default and the largest `limit` of a top-N report.
pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;
/// The default and the largest `depth` of the steps report.
pub const DEFAULT_DEPTH: u32 = 5;
pub const MAX_DEPTH: u32 = 20;
/// How far back `activeSessions` looks from `asOf`.
pub const ACTIVE_MINUTES: i64 = 15;

/// A report request, parsed: every value here is valid.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub report: Report,
    pub projects: Vec<ObjectId>,
    /// One series per project.
    pub compare: bool,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub grain: Grain,
    pub timezone: TimeZone,
    /// The zone's name as the request wrote it (`UTC` by default).
    pub timezone_name: String,
    pub limit: u32,
    pub filters: Vec<Filter>,
    /// The steps report: from this step forward, or back from `end_step`.
    pub start_step: Option<String>,
    pub end_step: Option<String>,
    pub depth: u32,
    /// The starts of the buckets, and the end of the last one.
    pub bounds: Vec<OffsetDateTime>,
    /// For `handoversByHour`, the same for the local hours of the range (else empty).
    pub hours: Vec<OffsetDateTime>,
}

/// The parameters a report request may carry, besides the credentials every request may.
pub const PARAMETERS: [&str; 15] = [
    "projectId",
    "compare",
    "from",
    "to",
    "grain",
    "timezone",
    "limit",
    "channel",
    "endpointUrlToken",
    "localeName",
    "snapshotName",
    "flowName",
    "startStep",
    "endStep",
    "depth",
];

impl ReportQuery {
    /// Parses the parameters of a request for `report` made at `now`. Every malformed parameter
    /// is refused by name; nothing here looks a project up.
    pub fn parse(report: Report, pairs: &[(String, String)], now: OffsetDateTime) -> Result<ReportQuery> {
        let mut single: BTreeMap<&str, &str> = BTreeMap::new();
        let mut projects = Vec::new();
        let mut filters: Vec<Filter> = Vec::new();
        for (key, value) in pairs {
            let name = key.strip_suffix("[]").unwrap_or(key);
            if name == "projectId" {
                let id = ObjectId::parse(value).map_err(|_| Error::invalid("projectId", "must be a project id"))?;
                if !projects.contains(&id) {
                    projects.push(id);
                }
            } else if let Some(field) = FilterField::ALL.into_iter().find(|f| f.name() == name) {
                let filter = match filters.iter_mut().find(|f| f.field == field) {
                    Some(filter) => filter,
                    None => {
                        filters.push(Filter { field, include: Vec::new(), exclude: Vec::new() });
                        filters.last_mut().expect("just pushed")
                    }
                };
                match value.strip_prefix('!') {
                    Some(excluded) => filter.exclude.push(non_empty(name, excluded)?),
                    None => filter.include.push(non_empty(name, value)?),
                }
            } else if PARAMETERS.contains(&name) && single.insert(name, value.as_str()).is_some() {
                return Err(Error::invalid(name, "must be given at most once"));
            }
        }
        filters.sort_by_key(|f| f.field);
        if projects.is_empty() {
            return Err(Error::missing("projectId"));
        }
        let compare = match single.get("compare").copied() {
            None | Some("") => false,
            Some("project") => true,
            Some(_) => return Err(Error::invalid("compare", "must be 'project'")),
        };
        let (timezone, timezone_name) = match single.get("timezone").copied() {
            None | Some("") => (TimeZone::UTC, "UTC".to_owned()),
            Some(name) => match TimeZone::get(name) {
                Ok(zone) => (zone, name.to_owned()),
                Err(_) => return Err(Error::invalid("timezone", format!("'{name}' is not an IANA time zone"))),
            },
        };
        let now = to_timestamp(now)?;
        let to = match single.get("to").copied() {
            None | Some("") => now,
            Some(text) => parse_bound("to", text, &timezone, true)?,
        };
        let from = match single.get("from").copied() {
            None | Some("") => to.checked_sub(jiff::SignedDuration::from_hours(7 * 24)).map_err(fault)?,
            Some(text) => parse_bound("from", text, &timezone, false)?,
        };
        if from >= to {
            return Err(Error::invalid("from", "must be before 'to'"));
        }
        if to.as_millisecond() - from.as_millisecond() > MAX_RANGE_DAYS * 86_400_000 {
            return Err(Error::invalid("to", format!("must be at most {MAX_RANGE_DAYS} days after 'from'")));
        }
        let grain = match single.get("grain").copied() {
            None | Some("") => Grain::default_for(from, to),
            Some(text) => Grain::parse(text)
                .ok_or_else(|| Error::invalid("grain", format!("must be one of {}", Grain::NAMES.join(", "))))?,
        };
        let limit = bounded(single.get("limit").copied(), "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
        let depth = bounded(single.get("depth").copied(), "depth", DEFAULT_DEPTH, MAX_DEPTH)?;
        let step = |name: &str| -> Result<Option<String>> {
            match single.get(name).copied() {
                None | Some("") => Ok(None),
                Some(text) => non_empty(name, text).map(Some),
            }
        };
        let (start_step, end_step) = (step("startStep")?, step("endStep")?);
        if report == Report::Steps {
            match (&start_step, &end_step) {
                (None, None) => return Err(Error::missing("startStep")),
                (Some(_), Some(_)) => {
                    return Err(Error::invalid("endStep", "cannot be given together with 'startStep'"));
                }
                _ => {}
            }
        }
        let bounds = buckets(grain, from, to, &timezone)?;
        let hours =
            if report == Report::HandoversByHour { buckets(Grain::Hour, from, to, &timezone)? } else { Vec::new() };
        let (from, to) = (to_time(from)?, to_time(to)?);
        Ok(ReportQuery {
            report,
            projects,
            compare,
            from,
            to,
            grain,
            timezone,
            timezone_name,
            limit,
            filters,
            start_step,
            end_step,
            depth,
            bounds,
            hours,
        })
    }

    /// How many buckets the range has.
    pub fn bucket_count(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The bucket holding `t`, if it is inside the range.
    pub fn bucket_of(&self, t: OffsetDateTime) -> Option<usize> {
        if t < self.from || t >= self.to {
            return None;
        }
        Some(self.bounds.partition_point(|b| *b <= t) - 1)
    }

    /// The start of bucket `i` in the report's zone, with its offset, as the answer writes it.
    pub fn bucket_label(&self, i: usize) -> String {
        local_label(self.bounds[i], &self.timezone, "%Y-%m-%dT%H:%M:%S%:z")
    }

    /// The local weekday and hour of `t`, as `handoversByHour` names a cell (`Mon 09`).
    pub fn weekday_hour(&self, t: OffsetDateTime) -> String {
        local_label(t, &self.timezone, "%a %H")
    }

    /// The filter of `field`, if the request has one.
    pub fn filter(&self, field: FilterField) -> Option<&Filter> {
        self.filters.iter().find(|f| f.field == field)
    }
}

fn local_label(t: OffsetDateTime, zone: &TimeZone, format: &str) -> String {
    match Timestamp::from_millisecond((t.unix_timestamp_nanos() / 1_000_000) as i64) {
        Ok(ts) => ts.to_zoned_datetime(zone.clone()).strftime(format).to_string(),
        Err(_) => String::new(),
    }
}

/// The 168 cells of the heat map in order, Monday 00 first.
pub fn weekday_hours() -> Vec<String> {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    days.iter().flat_map(|d| (0..24).map(move |h| format!("{d} {h:02}"))).collect()
}

fn non_empty(name: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(name, "must not be empty"));
    }
    if value.contains('\0') {
        return Err(Error::invalid(name, "must not contain U+0000"));
    }
    Ok(value.to_owned())
}

fn bounded(text: Option<&str>, name: &str, default: u32, max: u32) -> Result<u32> {
    match text {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Error::invalid(name, format!("must be a whole number from 1 to {max}"))),
        },
    }
}

/// `from` or `to`: a date-time with an offset is taken as given; one without is local to the
/// zone; a date is the start of that day (`from`) or of the next day (`to`).
fn parse_bound(name: &str, text: &str, zone: &TimeZone, is_end: bool) -> Result<Timestamp> {
    let invalid = || Error::invalid(name, "must be a date (2026-11-01) or a date-time (2026-11-01T09:00:00Z)");
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(date) = text.parse::<Date>()
        && text.len() == 10
    {
        let date = if is_end { date.tomorrow().map_err(|_| invalid())? } else { date };
        return date.to_zoned_datetime(zone.clone()).map(|z| z.timestamp()).map_err(|_| invalid());
    }
    if let Ok(local) = text.parse::<DateTime>() {
        return local.to_zoned_datetime(zone.clone()).map(|z| z.timestamp()).map_err(|_| invalid());
    }
    Err(invalid())
}

/// The bucket starts of `[from, to)` at `grain` in `zone`, and the end of the last bucket.
fn buckets(grain: Grain, from: Timestamp, to: Timestamp, zone: &TimeZone) -> Result<Vec<OffsetDateTime>> {
    let mut start = grain.floor(&from.to_zoned_datetime(zone.clone()))?;
    let mut bounds = vec![to_time(start.timestamp())?];
    while start.timestamp() < to {
        start = grain.next(&start)?;
        bounds.push(to_time(start.timestamp())?);
    }
    Ok(bounds)
}

fn to_timestamp(t: OffsetDateTime) -> Result<Timestamp> {
    Timestamp::from_millisecond((t.unix_timestamp_nanos() / 1_000_000) as i64).map_err(fault)
}

fn to_time(t: Timestamp) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millisecond()) * 1_000_000)
        .map_err(|e| Error::internal(format!("a time out of range: {e}")))
}

/// One number of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The project, under `compare=project`.
    pub project: Option<ObjectId>,
    /// A bucket start, a category (`None` for rows without one), or a fixed word (`total`,
    /// `all`).
    pub dimension: Option<String>,
    pub measure: String,
    /// A count, a sum, an average or a rate; `Null` where there is nothing to average.
    pub value: Json,
}

/// Numbers of one kind gathered over rows, and combined over projects: a count, a sum, the
/// least and the greatest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Tally {
    pub fn of_count(count: u64) -> Tally {
        Tally { count, ..Tally::default() }
    }

    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
    }

    pub fn merge(&mut self, other: &Tally) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn average(&self) -> Json {
        if self.count == 0 { Json::Null } else { number(self.sum / self.count as f64) }
    }
}

/// A number as JSON: whole numbers without a fraction.
pub fn number(value: f64) -> Json {
    if value.fract() == 0.0 && value.abs() < 9e15 {
        Json::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
    }
}

/// `part / whole`, or `null` when there is no whole.
pub fn rate(part: u64, whole: u64) -> Json {
    if whole == 0 { Json::Null } else { number(part as f64 / whole as f64) }
}

/// One node of the steps funnel: a path of `entityReferenceId`s, the sessions that followed it,
/// and those that went no further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelNode {
    pub path: Vec<String>,
    pub sessions: u64,
    pub drop_off: u64,
}

/// The funnel of the steps report from sessions' step paths (in execution order): from the first
/// execution of `step` forward (or, `backwards`, from its last execution back), up to `depth`
/// steps. Each node counts the sessions whose path starts with the node's path; its drop-off is
/// those that end there.
pub fn funnel<'a>(
    paths: impl Iterator<Item = &'a [String]>,
    step: &str,
    backwards: bool,
    depth: u32,
) -> Vec<FunnelNode> {
    let mut nodes: BTreeMap<Vec<String>, (u64, u64)> = BTreeMap::new();
    for path in paths {
        let walk: Vec<&String> = if backwards {
            match path.iter().rposition(|s| s == step) {
                Some(at) => path[..=at].iter().rev().collect(),
                None => continue,
            }
        } else {
            match path.iter().position(|s| s == step) {
                Some(at) => path[at..].iter().collect(),
                None => continue,
            }
        };
        // A path longer than `depth` is cut there: it did not stop at its last node shown.
        let shown = walk.len().min(depth as usize);
        for len in 1..=shown {
            let node = nodes.entry(walk[..len].iter().map(|s| (*s).clone()).collect()).or_default();
            node.0 += 1;
            if len == walk.len() {
                node.1 += 1;
            }
        }
    }
    nodes.into_iter().map(|(path, (sessions, drop_off))| FunnelNode { path, sessions, drop_off }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(params: &[(&str, &str)]) -> Result<ReportQuery> {
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        pairs.push(("projectId".into(), "5f0c9f1a2b3c4d5e6f708192".into()));
        ReportQuery::parse(Report::Sessions, &pairs, OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000))
    }

    fn labels(q: &ReportQuery) -> Vec<String> {
        (0..q.bucket_count()).map(|i| q.bucket_label(i)).collect()
    }

    #[test]
    fn days_follow_local_midnight_across_a_change_of_offset() {
        let q = query(&[("from", "2026-03-28"), ("to", "2026-03-30"), ("timezone", "Europe/Berlin"), ("grain", "day")])
            .unwrap();
        assert_eq!(labels(&q), ["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]);
        // The day of the change has 23 hours.
        assert_eq!((q.bounds[2] - q.bounds[1]).whole_hours(), 23);
    }

    #[test]
    fn hours_of_a_day_that_repeats_one_are_25() {
        let q =
            query(&[("from", "2026-10-25"), ("to", "2026-10-25"), ("timezone", "Europe/Berlin"), ("grain", "hour")])
                .unwrap();
        let labels = labels(&q);
        assert_eq!(labels.len(), 25);
        assert_eq!(labels[2], "2026-10-25T02:00:00+02:00");
        assert_eq!(labels[3], "2026-10-25T02:00:00+01:00");
    }

    #[test]
    fn hours_start_at_local_hours_in_zones_with_odd_offsets() {
        let q =
            query(&[("from", "2026-06-01T00:00:00Z"), ("to", "2026-06-01T03:00:00Z"), ("timezone", "Asia/Kathmandu")])
                .unwrap();
        assert_eq!(
            labels(&q),
            [
                "2026-06-01T05:00:00+05:45",
                "2026-06-01T06:00:00+05:45",
                "2026-06-01T07:00:00+05:45",
                "2026-06-01T08:00:00+05:45"
            ]
        );
        assert_eq!(q.bounds[1].minute(), 15);
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let q = query(&[("from", "2026-11-04"), ("to", "2026-11-20"), ("grain", "week")]).unwrap();
        assert_eq!(labels(&q)[0], "2026-11-02T00:00:00+00:00");
        let q = query(&[
            ("from", "2026-01-15"),
            ("to", "2026-03-02"),
            ("grain", "month"),
            ("timezone", "America/St_Johns"),
        ])
        .unwrap();
        assert_eq!(labels(&q), ["2026-01-01T00:00:00-03:30", "2026-02-01T00:00:00-03:30", "2026-03-01T00:00:00-03:30"]);
    }

    #[test]
    fn a_date_as_to_covers_that_whole_day() {
        let q = query(&[("from", "2026-11-01"), ("to", "2026-11-30"), ("timezone", "Asia/Kolkata")]).unwrap();
        assert_eq!(q.grain, Grain::Day);
        assert_eq!(q.bucket_count(), 30);
        assert_eq!(q.to.unix_timestamp(), 1_796_063_400); // 2026-12-01T00:00+05:30
    }

    #[test]
    fn default_grains_follow_the_length_of_the_range() {
        let grain = |from, to| query(&[("from", from), ("to", to)]).unwrap().grain;
        assert_eq!(grain("2026-01-01", "2026-01-02"), Grain::Hour);
        assert_eq!(grain("2026-01-01", "2026-03-01"), Grain::Day);
        assert_eq!(grain("2026-01-01", "2026-10-01"), Grain::Week);
        assert_eq!(grain("2026-01-01", "2027-01-15"), Grain::Month);
    }

    #[test]
    fn malformed_parameters_are_refused_by_name() {
        let field = |params: &[(&str, &str)]| match query(params).unwrap_err() {
            Error::Invalid { details, .. } | Error::Missing { details, .. } => details["field"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&[("from", "2026-02-01"), ("to", "2026-01-01")]), "from");
        assert_eq!(field(&[("from", "2025-01-01"), ("to", "2026-03-01")]), "to");
        assert_eq!(field(&[("from", "yesterday")]), "from");
        assert_eq!(field(&[("timezone", "Mars/Olympus")]), "timezone");
        assert_eq!(field(&[("grain", "minute")]), "grain");
        assert_eq!(field(&[("limit", "0")]), "limit");
        assert_eq!(field(&[("limit", "101")]), "limit");
        assert_eq!(field(&[("compare", "channel")]), "compare");
        assert_eq!(field(&[("channel", "!")]), "channel");
        assert_eq!(field(&[("grain", "day"), ("grain", "hour")]), "grain");
        let pairs = vec![("projectId".to_owned(), "nope".to_owned())];
        assert!(ReportQuery::parse(Report::Sessions, &pairs, OffsetDateTime::now_utc()).is_err());
        assert!(matches!(
            ReportQuery::parse(Report::Sessions, &[], OffsetDateTime::now_utc()),
            Err(Error::Missing { .. })
        ));
    }

    #[test]
    fn filters_admit_alternatives_and_exclude_each_negated_value() {
        let q = query(&[("channel", "web"), ("channel[]", "sms"), ("channel", "!voice")]).unwrap();
        let f = q.filter(FilterField::Channel).unwrap();
        assert!(f.admits(Some("web")) && f.admits(Some("sms")) && !f.admits(Some("voice")) && !f.admits(None));
        let q = query(&[("localeName", "!de")]).unwrap();
        let f = q.filter(FilterField::LocaleName).unwrap();
        assert!(f.admits(None) && f.admits(Some("en")) && !f.admits(Some("de")));
    }

    #[test]
    fn the_funnel_counts_sessions_per_path_and_where_they_stop() {
        let paths: Vec<Vec<String>> = [vec!["a", "b", "c"], vec!["x", "a", "b"], vec!["a", "d"], vec!["b"]]
            .into_iter()
            .map(|p| p.into_iter().map(String::from).collect())
            .collect();
        let nodes = funnel(paths.iter().map(Vec::as_slice), "a", false, 5);
        let find = |p: &[&str]| nodes.iter().find(|n| n.path == p).map(|n| (n.sessions, n.drop_off));
        assert_eq!(find(&["a"]), Some((3, 0)));
        assert_eq!(find(&["a", "b"]), Some((2, 1)));
        assert_eq!(find(&["a", "b", "c"]), Some((1, 1)));
        assert_eq!(find(&["a", "d"]), Some((1, 1)));
        let back = funnel(paths.iter().map(Vec::as_slice), "b", true, 2);
        let find = |p: &[&str]| back.iter().find(|n| n.path == p).map(|n| (n.sessions, n.drop_off));
        assert_eq!(find(&["b"]), Some((3, 1)));
        assert_eq!(find(&["b", "a"]), Some((2, 1)), "one path goes on past the depth");
    }
}
