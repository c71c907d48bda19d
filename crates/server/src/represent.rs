//! Writing a body in the negotiated format (docs/contract/rest.md §7). Handlers build a [`Body`] (a resource or
//! a collection, as JSON values) and [`respond`] writes it as JSON, HAL, XML or CSV.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};

use crate::negotiate::Format;

/// What a handler answers with.
#[derive(Debug, Clone)]
pub enum Body {
    /// One resource; `self_href` is its address, for HAL.
    Resource { value: Map<String, Json>, self_href: String },
    /// A page of a collection (the list shape of docs/contract/rest.md §3).
    Collection(Collection),
    /// A page in the reference product's index shape, which its SDK reads: `items` at the top
    /// with `total` and `_links`, in JSON and HAL alike (docs/contract/conversations.md,
    /// "Reading"). XML and CSV write it as a collection.
    Index(Collection),
}

/// A page of a collection.
#[derive(Debug, Clone)]
pub struct Collection {
    pub items: Vec<Map<String, Json>>,
    /// CSV column names, also used when there are no items.
    pub columns: Vec<String>,
    pub total: u64,
    pub next: Option<PageRef>,
    pub previous: Option<PageRef>,
    /// The request path and query, for HAL's `self`; `next`/`previous` links replace the cursor.
    pub self_href: String,
}

/// Where the next or previous page starts: a cursor (records, conversations) or an offset
/// (the small collections paged by `skip` and `limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRef {
    Cursor(String),
    Skip(u64),
}

impl PageRef {
    /// The next and previous pages of an offset-paged collection of `total` items, read from
    /// `skip` with pages of `limit`.
    pub fn offsets(skip: u64, limit: u32, total: u64) -> (Option<PageRef>, Option<PageRef>) {
        let next = (skip + u64::from(limit) < total).then(|| PageRef::Skip(skip + u64::from(limit)));
        let previous = (skip > 0).then(|| PageRef::Skip(skip.saturating_sub(u64::from(limit))));
        (next, previous)
    }

    fn cursor(page: &Option<PageRef>) -> Option<String> {
        match page {
            Some(PageRef::Cursor(cursor)) => Some(cursor.clone()),
            _ => None,
        }
    }

    /// The address of the page from the address of this one.
    fn href(&self, self_href: &str, name: &str) -> String {
        match self {
            PageRef::Cursor(cursor) => with_cursor(self_href, name, cursor),
            PageRef::Skip(skip) => with_cursor(self_href, "skip", &skip.to_string()),
        }
    }
}

/// A page of a collection as JSON and XML write it (the list shape of docs/contract/rest.md §3); HAL puts the
/// items under `_embedded.items` and adds `_links`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    /// The cursor of the next page, if there is one (records only).
    pub next_cursor: Option<String>,
    /// The cursor of the previous page, if there is one (records only).
    pub previous_cursor: Option<String>,
}

/// A page in the reference product's index shape ([`Body::Index`]), which JSON and HAL write
/// alike: the list shape with `_links` beside the items.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Index<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
    /// `self`, and `next` and `previous` when there are such pages, each as `{href}`.
    #[serde(rename = "_links")]
    #[schema(rename = "_links", value_type = Object)]
    pub links: Json,
}

/// The fields of a view type as a JSON object, the form [`Body::Resource`] and collection items
/// take. A view that does not serialise to an object gives an empty one.
pub fn fields_of(view: &impl serde::Serialize) -> Map<String, Json> {
    match serde_json::to_value(view) {
        Ok(Json::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Writes `body` with `status` in `format`. A page of a collection also carries its total in
/// `X-Total-Count` and its neighbours in a `Link` header (RFC 8288), which is how a CSV reader,
/// whose body has no room for them, pages through everything.
pub fn respond(format: Format, status: StatusCode, body: Body) -> Response {
    let paging = match &body {
        Body::Collection(c) | Body::Index(c) => Some((c.total, page_link_header(c))),
        Body::Resource { .. } => None,
    };
    let bytes = match format {
        Format::Json => json_bytes(&to_json(body)),
        Format::Hal => json_bytes(&to_hal(body)),
        Format::Xml | Format::TextXml => to_xml_document(&to_json(body)).into_bytes(),
        Format::Csv => to_csv(body),
    };
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Some((total, link)) = paging {
        headers.insert("x-total-count", HeaderValue::from(total));
        if let Some(link) = link.and_then(|link| HeaderValue::from_str(&link).ok()) {
            headers.insert(header::LINK, link);
        }
    }
    response
}

/// The `Link` header of a page: its next and previous pages, when it has them.
fn page_link_header(c: &Collection) -> Option<String> {
    let links: Vec<String> = [("next", &c.next), ("previous", &c.previous)]
        .into_iter()
        .filter_map(|(rel, page)| {
            page.as_ref().map(|page| format!("<{}>; rel=\"{rel}\"", page.href(&c.self_href, rel)))
        })
        .collect();
    (!links.is_empty()).then(|| links.join(", "))
}

fn json_bytes(value: &Json) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn to_json(body: Body) -> Json {
    match body {
        Body::Resource { value, .. } => Json::Object(value),
        Body::Index(c) => {
            let index = Index {
                links: Json::Object(page_links(&c)),
                next_cursor: PageRef::cursor(&c.next),
                previous_cursor: PageRef::cursor(&c.previous),
                items: c.items,
                total: c.total,
            };
            serde_json::to_value(index).unwrap_or_default()
        }
        Body::Collection(c) => {
            let page = Page {
                next_cursor: PageRef::cursor(&c.next),
                previous_cursor: PageRef::cursor(&c.previous),
                items: c.items,
                total: c.total,
            };
            serde_json::to_value(page).unwrap_or_default()
        }
    }
}

fn link(href: &str) -> Json {
    serde_json::json!({ "href": href })
}

fn item_id(item: &Map<String, Json>) -> Option<&str> {
    item.get("id").or_else(|| item.get("_id")).and_then(Json::as_str)
}

/// The `self`, `next` and `previous` links of a page.
fn page_links(c: &Collection) -> Map<String, Json> {
    let mut links = Map::new();
    links.insert("self".into(), link(&without_credentials(&c.self_href, &[])));
    if let Some(next) = &c.next {
        links.insert("next".into(), link(&next.href(&c.self_href, "next")));
    }
    if let Some(previous) = &c.previous {
        links.insert("previous".into(), link(&previous.href(&c.self_href, "previous")));
    }
    links
}

fn to_hal(body: Body) -> Json {
    match body {
        index @ Body::Index(_) => to_json(index),
        Body::Resource { mut value, self_href } => {
            value.insert("_links".into(), serde_json::json!({ "self": link(&self_href) }));
            Json::Object(value)
        }
        Body::Collection(mut c) => {
            let links = page_links(&c);
            let items: Vec<Json> = std::mem::take(&mut c.items)
                .into_iter()
                .map(|mut item| {
                    if let Some(id) = item_id(&item).map(str::to_owned) {
                        let base = c.self_href.split('?').next().unwrap_or_default();
                        let href = format!("{base}/{id}");
                        item.insert("_links".into(), serde_json::json!({ "self": link(&href) }));
                    }
                    Json::Object(item)
                })
                .collect();
            serde_json::json!({
                "_embedded": { "items": items },
                "total": c.total,
                "nextCursor": PageRef::cursor(&c.next),
                "previousCursor": PageRef::cursor(&c.previous),
                "_links": links,
            })
        }
    }
}

/// `href` without credentials in its query (a link never carries a secret) and without the
/// parameters named in `dropped`.
fn without_credentials(href: &str, dropped: &[&str]) -> String {
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && !matches!(key, "api_key" | "apikey") && !dropped.contains(&key)
        })
        .collect();
    if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) }
}

/// `href` with its paging parameters replaced by `name=cursor`, credentials dropped.
fn with_cursor(href: &str, name: &str, cursor: &str) -> String {
    let base = without_credentials(href, &["next", "previous", "skip"]);
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{name}={cursor}")
}

/// An XML 1.0 document with root `response`: one element per field, lists as repeated `item`
/// elements, null as an empty element marked `xsi:nil`.
pub fn to_xml_document(value: &Json) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<response xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">");
    match value {
        Json::Object(map) => write_fields(&mut out, map),
        other => write_content(&mut out, other),
    }
    out.push_str("</response>");
    out
}

fn write_fields(out: &mut String, map: &Map<String, Json>) {
    for (name, value) in map {
        write_element(out, name, value);
    }
}

fn write_element(out: &mut String, name: &str, value: &Json) {
    if value.is_null() {
        out.push('<');
        out.push_str(name);
        out.push_str(" xsi:nil=\"true\"/>");
        return;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    write_content(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_content(out: &mut String, value: &Json) {
    match value {
        Json::Null => {}
        Json::String(text) => escape_text(out, text),
        Json::Bool(_) | Json::Number(_) => out.push_str(&value.to_string()),
        Json::Array(items) => {
            for item in items {
                write_element(out, "item", item);
            }
        }
        // Objects from clients (inputData, slots) may have keys that are not XML names; those
        // are written as JSON text so that nothing is lost and the document stays valid.
        Json::Object(map) if map.keys().all(|k| is_xml_name(k)) => write_fields(out, map),
        Json::Object(_) => escape_text(out, &value.to_string()),
    }
}

/// Whether `name` is safe as an XML element name (a conservative subset of the XML 1.0 rule).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}

/// Escapes text content; characters XML 1.0 cannot hold at all become U+FFFD.
fn escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\t' | '\n' => out.push(c),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// A value as a CSV cell: null is empty, text is itself, anything else its JSON.
pub fn csv_cell(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// RFC 4180 CSV: a header row, one row per item; a single resource is a one-row table.
fn to_csv(body: Body) -> Vec<u8> {
    let (columns, rows): (Vec<String>, Vec<Map<String, Json>>) = match body {
        Body::Resource { value, .. } => (value.keys().cloned().collect(), vec![value]),
        Body::Collection(c) | Body::Index(c) => (c.columns, c.items),
    };
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let _ = writer.write_record(&columns);
    for row in &rows {
        let cells = columns.iter().map(|column| row.get(column).map(csv_cell).unwrap_or_default());
        let _ = writer.write_record(cells);
    }
    writer.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_is_valid_whatever_the_data() {
        let doc = to_xml_document(&json!({"a": "x<&>\u{1}y", "list": ["p", null], "obj": {"bad key": 1}, "n": null}));
        assert!(doc.contains("<a>x&lt;&amp;&gt;\u{fffd}y</a>"));
        assert!(doc.contains("<list><item>p</item><item xsi:nil=\"true\"/></list>"));
        assert!(doc.contains("<obj>{&quot;bad key&quot;:1}</obj>") || doc.contains("<obj>{\"bad key\":1}</obj>"));
        assert!(doc.contains("<n xsi:nil=\"true\"/>"));
    }

    #[test]
    fn cursor_links_drop_credentials_and_old_cursors() {
        let href = with_cursor("/v2.0/analytics?projectId=p&api_key=secret&next=old&limit=5", "next", "new");
        assert_eq!(href, "/v2.0/analytics?projectId=p&limit=5&next=new");
        assert_eq!(without_credentials("/v2.0/projects?api_key=s", &[]), "/v2.0/projects");
        assert_eq!(with_cursor("/v2.0/analytics?skip=5", "previous", "c"), "/v2.0/analytics?previous=c");
    }
}
