//! The list query of `GET /v2.0/analytics`: filters, sort order and keyset cursors.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::field::{FieldIndex, FieldType, RECORD_FIELDS, idx};
use crate::record::Record;
use crate::value::{TIME_FORMS, Value};
use crate::{ObjectId, field_index};

/// The query string of the list endpoint, as text; [`RecordQuery::parse`] types it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub project_id: Option<String>,
    pub contact_id: Option<String>,
    pub session_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub skip: Option<String>,
    pub sort: Option<String>,
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// Which records: always one project, optionally narrowed. `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFilter {
    pub project_id: ObjectId,
    pub contact_id: Option<String>,
    pub session_id: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// One key of a sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub field: FieldIndex,
    pub descending: bool,
}

/// A position in a sort order: the sort key values of one record, `id` last.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub values: Vec<Value>,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
pub enum PageStart {
    /// Skip this many records from the start.
    Offset(u64),
    /// The records strictly after the cursor.
    After(Cursor),
    /// The records strictly before the cursor (read backwards, shown forwards).
    Before(Cursor),
}

/// A validated list query.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub filter: RecordFilter,
    /// The sort order; always ends with `id`, so that it is total.
    pub sort: Vec<SortKey>,
    pub start: PageStart,
    pub limit: u32,
}

/// One page of records with the cursors that reach its neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    pub items: Vec<Record>,
    pub total: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;

impl RecordQuery {
    /// Types and checks the query string. The default order is `timestamp:asc`.
    pub fn parse(params: ListParams) -> Result<Self> {
        let project_id = params.project_id.filter(|p| !p.is_empty()).ok_or_else(|| Error::missing("projectId"))?;
        let project_id = ObjectId::parse(&project_id).map_err(|e| Error::invalid("projectId", e))?;
        let time = |name: &str, text: Option<String>| -> Result<Option<OffsetDateTime>> {
            text.map(|t| crate::value::parse_query_time(&t).map_err(|_| Error::invalid(name, TIME_FORMS))).transpose()
        };
        let filter = RecordFilter {
            project_id,
            contact_id: params.contact_id,
            session_id: params.session_id,
            from: time("from", params.from)?,
            to: time("to", params.to)?,
        };
        let limit = match params.limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
        };
        let sort = parse_sort(params.sort.as_deref())?;
        let start = match (params.skip, params.next, params.previous) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::invalid("skip", "cannot be combined with a cursor"));
            }
            (_, Some(_), Some(_)) => return Err(Error::invalid("next", "cannot be combined with 'previous'")),
            (Some(skip), None, None) => PageStart::Offset(
                skip.parse::<u64>()
                    .ok()
                    .filter(|s| *s <= i64::MAX as u64)
                    .ok_or_else(|| Error::invalid("skip", "must be a whole number"))?,
            ),
            (None, Some(next), None) => PageStart::After(Cursor::decode(&next, &sort).map_err(|e| e.renamed("next"))?),
            (None, None, Some(previous)) => {
                PageStart::Before(Cursor::decode(&previous, &sort).map_err(|e| e.renamed("previous"))?)
            }
            (None, None, None) => PageStart::Offset(0),
        };
        Ok(RecordQuery { filter, sort, start, limit })
    }
}

fn parse_sort(text: Option<&str>) -> Result<Vec<SortKey>> {
    let mut keys = Vec::new();
    for part in text.unwrap_or("timestamp:asc").split(',').filter(|p| !p.is_empty()) {
        let (name, direction) = part.split_once(':').unwrap_or((part, "asc"));
        let field = field_index(name)
            .filter(|&i| !matches!(RECORD_FIELDS[i].ty, FieldType::Json { .. } | FieldType::TextList))
            .ok_or_else(|| Error::invalid("sort", format!("cannot sort by '{name}'")))?;
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            _ => return Err(Error::invalid("sort", format!("direction of '{name}' must be 'asc' or 'desc'"))),
        };
        if keys.iter().any(|k: &SortKey| k.field == field) {
            return Err(Error::invalid("sort", format!("names '{name}' twice")));
        }
        keys.push(SortKey { field, descending });
    }
    if !keys.iter().any(|k| k.field == idx::ID) {
        keys.push(SortKey { field: idx::ID, descending: false });
    }
    Ok(keys)
}

/// A cursor that does not decode, or was made for another sort order.
struct CursorError;

impl CursorError {
    fn renamed(self, name: &str) -> Error {
        Error::invalid(name, "is not a cursor of this query; take it from an earlier answer with the same sort")
    }
}

impl Cursor {
    /// The cursor at `record` in `sort`.
    pub fn at(record: &Record, sort: &[SortKey]) -> Self {
        Cursor { values: sort.iter().map(|k| record.get(k.field).clone()).collect() }
    }

    /// The opaque text form handed to clients; it names the sort it belongs to.
    pub fn encode(&self, sort: &[SortKey]) -> String {
        let body = json!({"s": sort_signature(sort), "v": self.values.iter().map(Value::to_json).collect::<Vec<_>>()});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
    }

    fn decode(text: &str, sort: &[SortKey]) -> Result<Self, CursorError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| CursorError)?;
        let body: Json = serde_json::from_slice(&bytes).map_err(|_| CursorError)?;
        if body["s"].as_str() != Some(sort_signature(sort).as_str()) {
            return Err(CursorError);
        }
        let Some(values) = body["v"].as_array().filter(|v| v.len() == sort.len()) else {
            return Err(CursorError);
        };
        let values = sort
            .iter()
            .zip(values)
            .map(|(key, json)| Value::from_json(&RECORD_FIELDS[key.field], json.clone()).map_err(|_| CursorError))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cursor { values })
    }
}

fn sort_signature(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| format!("{}:{}", RECORD_FIELDS[k.field].name, if k.descending { "desc" } else { "asc" }))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let mut map = serde_json::Map::new();
        map.insert("projectId".into(), Json::from("5f0c6bc4ad4f8b0011b2e0e1"));
        for (k, v) in pairs {
            map.insert((*k).into(), Json::from(*v));
        }
        serde_json::from_value(Json::Object(map)).unwrap()
    }

    #[test]
    fn defaults_sort_by_timestamp_then_id() {
        let query = RecordQuery::parse(params(&[])).unwrap();
        assert_eq!(
            query.sort,
            vec![SortKey { field: idx::TIMESTAMP, descending: false }, SortKey { field: idx::ID, descending: false }]
        );
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.start, PageStart::Offset(0));
    }

    #[test]
    fn cursors_round_trip_and_are_tied_to_their_sort() {
        let sort = parse_sort(Some("intent:desc")).unwrap();
        let cursor = Cursor { values: vec![Value::Null, Value::Text("5f0c6bc4ad4f8b0011b2e0e1".into())] };
        let text = cursor.encode(&sort);
        let query = RecordQuery::parse(params(&[("sort", "intent:desc"), ("next", &text)])).unwrap();
        assert_eq!(query.start, PageStart::After(cursor));
        assert!(RecordQuery::parse(params(&[("next", &text)])).is_err());
        assert!(RecordQuery::parse(params(&[("next", "garbage!")])).is_err());
    }

    #[test]
    fn refuses_bad_arguments() {
        for bad in [
            vec![("limit", "0")],
            vec![("limit", "101")],
            vec![("skip", "-1")],
            vec![("sort", "inputData:asc")],
            vec![("sort", "nope")],
            vec![("sort", "intent:up")],
            vec![("from", "yesterday")],
            vec![("skip", "1"), ("next", "x")],
        ] {
            assert!(matches!(RecordQuery::parse(params(&bad)), Err(Error::Invalid { .. })), "{bad:?}");
        }
        assert!(matches!(RecordQuery::parse(ListParams::default()), Err(Error::Missing { .. })));
    }
}
