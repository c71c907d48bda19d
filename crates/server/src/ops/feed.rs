//! An OData v4 feed read page by page: the reference product's, parley's own, or any other
//! producer's. It reads the entity set in the order of its key, follows `@odata.nextLink` within
//! a window of `$top` rows, and starts the next window after the last key it saw (keyset paging),
//! so that a feed that pages, one that does not, and an import resumed after its last stored key
//! all read every entity once.

use std::time::Duration;

use parley_core::field::Origin;
use parley_core::{Field, FieldType};
use reqwest::Url;
use serde_json::{Map, Value as Json};

use super::checkpoint::Position;
use super::collection::Collection;
use super::source::{Batch, SourceRow};

/// Where the feed is in its reading.
enum Next {
    /// A new window, after the entity with these key literals (none: from the first entity).
    Window(Option<Vec<String>>),
    /// The server's next page within the current window.
    Link(Url),
    Done,
}

/// A feed being read.
pub struct Feed {
    client: reqwest::Client,
    /// The entity set's address, without a query.
    set_url: Url,
    /// The query the operator gave with the address (`$filter`, `$select`, …) besides paging.
    filter: Option<String>,
    kept: Vec<(String, String)>,
    apikey: Option<String>,
    /// The key properties and their `Edm` types, read from `$metadata`.
    pub key: Vec<(String, String)>,
    page: u64,
    fields: &'static [Field],
    next: Next,
    /// Rows read in the current window.
    window_rows: u64,
    /// Rows read in all.
    rows: u64,
    /// How many entities the feed holds, when it says (`$count`).
    pub total: Option<u64>,
}

impl Feed {
    /// Opens the entity set at `url` (or the collection's set under a service root there),
    /// after the key `from` when an earlier import stopped there.
    pub async fn open(
        url: &str,
        apikey: Option<String>,
        collection: Collection,
        page: u64,
        from: Option<&Position>,
    ) -> Result<Feed, String> {
        let mut url = Url::parse(url).map_err(|e| format!("--from-odata {url}: {e}"))?;
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        url.set_query(None);
        // The address is an entity set's or a service root's: the collection's set under it.
        let path = url.path().trim_end_matches('/').to_owned();
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", &path));
        let as_root = (path.clone(), collection.entity_set().to_owned());
        let as_set = (parent.to_owned(), last.to_owned());
        let candidates = if Collection::of_entity_set(last).is_some() { [as_set, as_root] } else { [as_root, as_set] };
        let option = |name: &str| name.trim_start_matches('$').to_ascii_lowercase();
        let filter = pairs.iter().find(|(k, _)| option(k) == "filter").map(|(_, v)| v.clone());
        let kept: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| {
                !matches!(option(k).as_str(), "filter" | "orderby" | "top" | "skip" | "skiptoken" | "apikey")
            })
            .collect();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| format!("cannot start an HTTP client: {e}"))?;
        let mut feed = Feed {
            client,
            set_url: url,
            filter,
            kept,
            apikey,
            key: Vec::new(),
            page,
            fields: collection.fields(),
            next: Next::Window(match from {
                Some(Position::Key(key)) => Some(key.clone()),
                _ => None,
            }),
            window_rows: 0,
            rows: 0,
            total: None,
        };
        let mut tried = Vec::new();
        for (root, set) in candidates {
            let mut metadata = feed.set_url.clone();
            metadata.set_path(&format!("{root}/$metadata"));
            let response = match feed.get(metadata.clone(), "application/xml").await {
                Ok(response) => response,
                Err(e) => {
                    tried.push(e);
                    continue;
                }
            };
            let text = response.text().await.unwrap_or_default();
            if let Some(key) = keys_in_metadata(&text, &set) {
                feed.key = key;
                feed.set_url.set_path(&format!("{root}/{set}"));
                feed.total = feed.count().await;
                return Ok(feed);
            }
            tried.push(format!("{metadata} (no entity set {set} with a key)"));
        }
        Err(format!(
            "--from-odata {}: not an OData v4 entity set or service root with a set of {}; read {}",
            feed.set_url,
            collection.name(),
            tried.join(", ")
        ))
    }

    /// `$count` of the set under the operator's filter; `None` when the feed does not answer it.
    async fn count(&self) -> Option<u64> {
        let mut url = self.set_url.clone();
        url.set_path(&format!("{}/$count", url.path()));
        if let Some(filter) = &self.filter {
            append(&mut url, &[("$filter", filter)]);
        }
        let text = self.get(url, "text/plain").await.ok()?.text().await.ok()?;
        text.trim().parse().ok()
    }

    /// A GET with the key, retried a few times when the feed is busy or briefly away.
    async fn get(&self, mut url: Url, accept: &str) -> Result<reqwest::Response, String> {
        if let Some(key) = &self.apikey {
            append(&mut url, &[("apikey", key)]);
        }
        let shown = shown(&url);
        let mut wait = Duration::from_millis(500);
        for attempt in 1.. {
            let sent =
                self.client.get(url.clone()).header("accept", accept).header("odata-maxversion", "4.0").send().await;
            let retry = match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status().is_server_error() || response.status().as_u16() == 429 => {
                    format!("{shown} answered {}", response.status())
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    let body: String = body.chars().take(400).collect();
                    return Err(format!("{shown} answered {status}: {body}"));
                }
                Err(e) if e.is_connect() || e.is_timeout() => format!("{shown} cannot be reached: {e}"),
                Err(e) => return Err(format!("{shown}: {e}")),
            };
            if attempt == 4 {
                return Err(retry);
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        unreachable!("the loop returns")
    }

    /// The next page of rows, or `None` when the set has been read.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, String> {
        let url = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return Ok(None),
            Next::Link(url) => url,
            Next::Window(after) => {
                self.window_rows = 0;
                self.window_url(after.as_deref())
            }
        };
        let shown = shown(&url);
        let body: Json = self
            .get(url, "application/json")
            .await?
            .json()
            .await
            .map_err(|e| format!("{shown} is not OData JSON: {e}"))?;
        let Some(values) = body.get("value").and_then(Json::as_array) else {
            return Err(format!("{shown} answered no \"value\" array; is it an OData v4 entity set?"));
        };
        let mut rows = Vec::with_capacity(values.len());
        let mut last_key = None;
        for value in values {
            self.rows += 1;
            let Some(object) = value.as_object() else {
                rows.push(SourceRow { json: Err("is not an object".into()), line: self.rows });
                continue;
            };
            let literals: Option<Vec<String>> =
                self.key.iter().map(|(name, ty)| literal(object.get(name)?, ty)).collect();
            let Some(literals) = literals else {
                let names: Vec<&str> = self.key.iter().map(|(name, _)| name.as_str()).collect();
                return Err(format!(
                    "{shown}: an entity lacks its key ({}); the feed cannot be read in order",
                    names.join(", ")
                ));
            };
            last_key = Some(literals);
            rows.push(SourceRow { json: Ok(ingestible(object, &self.key, self.fields)), line: self.rows });
        }
        self.window_rows += rows.len() as u64;
        let link = body.get("@odata.nextLink").and_then(Json::as_str);
        self.next = match (link, &last_key) {
            (Some(link), _) => {
                Next::Link(self.set_url.join(link).map_err(|e| format!("{shown}: the next link {link}: {e}"))?)
            }
            // A full window: there may be more after its last key.
            (None, Some(key)) if self.window_rows >= self.page => Next::Window(Some(key.clone())),
            _ => Next::Done,
        };
        let Some(key) = last_key else { return Ok(None) };
        Ok(Some(Batch { rows, end: Position::Key(key) }))
    }

    /// The first page of a window: the operator's query, in key order, after `after`.
    fn window_url(&self, after: Option<&[String]>) -> Url {
        let mut url = self.set_url.clone();
        let mut pairs: Vec<(&str, String)> = self.kept.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let after = after.map(|after| self::after(&self.key, after));
        let filter = match (&self.filter, after) {
            (Some(f), Some(after)) => Some(format!("({f}) and ({after})")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(after)) => Some(after),
            (None, None) => None,
        };
        if let Some(filter) = filter {
            pairs.push(("$filter", filter));
        }
        let order: Vec<String> = self.key.iter().map(|(name, _)| format!("{name} asc")).collect();
        pairs.push(("$orderby", order.join(",")));
        pairs.push(("$top", self.page.to_string()));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        append(&mut url, &pairs);
        url
    }
}

/// The condition of the entities after the one with these key literals, in key order:
/// `k1 gt v1 or (k1 eq v1 and k2 gt v2) or …`.
fn after(key: &[(String, String)], literals: &[String]) -> String {
    {
        let mut alternatives = Vec::new();
        for (i, (name, _)) in key.iter().enumerate() {
            let mut terms: Vec<String> =
                key[..i].iter().zip(literals).map(|((name, _), value)| format!("{name} eq {value}")).collect();
            terms.push(format!("{name} gt {}", literals[i]));
            alternatives.push(terms.join(" and "));
        }
        if alternatives.len() == 1 {
            return alternatives.remove(0);
        }
        alternatives.iter().map(|a| format!("({a})")).collect::<Vec<_>>().join(" or ")
    }
}

/// A key value as an OData literal of its type; `None` for a value a key cannot be.
fn literal(value: &Json, edm: &str) -> Option<String> {
    match value {
        Json::String(text) if matches!(edm, "Edm.String" | "") => Some(format!("'{}'", text.replace('\'', "''"))),
        // Guids, dates and times are written bare.
        Json::String(text) => Some(text.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a query's names and values escape: everything but unreserved characters, and `$`, so
/// that a space is `%20` (some producers read `+` literally) and options keep their `$`.
const QUERY: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'$');

/// Adds pairs to an address's query.
fn append(url: &mut Url, pairs: &[(&str, &str)]) {
    let mut query = url.query().unwrap_or_default().to_owned();
    for (name, value) in pairs {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!(
            "{}={}",
            percent_encoding::utf8_percent_encode(name, QUERY),
            percent_encoding::utf8_percent_encode(value, QUERY)
        ));
    }
    url.set_query(Some(&query));
}

/// An address as messages show it: without its key.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != "apikey").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    shown.set_query(None);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !pairs.is_empty() {
        append(&mut shown, &pairs);
    }
    shown.to_string()
}

/// An entity as a row to ingest: without annotations, the fields parley sets itself (its id
/// among them: parley gives each row its own) and a key of the feed's that is not a field of the
/// collection; values that OData carries as strings (JSON values, lists, numbers in
/// `IEEE754Compatible` form) as what the field holds.
pub fn ingestible(entity: &Map<String, Json>, key: &[(String, String)], fields: &[Field]) -> Json {
    let mut row = Map::new();
    for (name, value) in entity {
        let field = fields.iter().find(|f| f.name == name);
        let own_key = key.iter().any(|(k, _)| k == name) && field.is_none();
        let server = field.is_some_and(|f| f.origin == Origin::Server);
        if name.contains('@') || own_key || server || name == "_id" {
            continue;
        }
        let value = match (field.map(|f| f.ty), value) {
            (Some(FieldType::Json { .. }), Json::String(text)) => {
                serde_json::from_str(text).unwrap_or_else(|_| value.clone())
            }
            (Some(FieldType::TextList), Json::String(text)) => {
                serde_json::from_str::<Json>(text).ok().filter(Json::is_array).unwrap_or_else(|| value.clone())
            }
            // OData has no null collection: an absent list is empty there. An empty one is read as
            // absent, the default of an ingested row, so that a row read back is the row written.
            (Some(FieldType::TextList), Json::Array(items)) if items.is_empty() => continue,
            (Some(FieldType::Number { .. } | FieldType::Integer { .. }), Json::String(text)) => {
                serde_json::from_str::<Json>(text).ok().filter(Json::is_number).unwrap_or_else(|| value.clone())
            }
            _ => value.clone(),
        };
        row.insert(name.clone(), value);
    }
    Json::Object(row)
}

/// The key properties, with their `Edm` types, of the entity type an entity set holds, read
/// from a CSDL XML document.
pub fn keys_in_metadata(metadata: &str, set: &str) -> Option<Vec<(String, String)>> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..][..tag[start..].find('"')?].to_owned())
    };
    let tags: Vec<&str> = metadata.split('<').collect();
    let set_tag = tags.iter().find(|t| t.starts_with("EntitySet ") && attribute(t, "Name").as_deref() == Some(set))?;
    let qualified = attribute(set_tag, "EntityType")?;
    let type_name = qualified.rsplit('.').next()?;
    let at =
        tags.iter().position(|t| t.starts_with("EntityType ") && attribute(t, "Name").as_deref() == Some(type_name))?;
    let body: Vec<&str> = tags[at + 1..].iter().take_while(|t| !t.starts_with("/EntityType")).copied().collect();
    let names: Vec<String> =
        body.iter().filter(|t| t.starts_with("PropertyRef ")).filter_map(|t| attribute(t, "Name")).collect();
    let typed = names
        .into_iter()
        .map(|name| {
            let ty = body
                .iter()
                .find(|t| t.starts_with("Property ") && attribute(t, "Name").as_deref() == Some(&name))
                .and_then(|t| attribute(t, "Type"))
                .unwrap_or_default();
            (name, ty)
        })
        .collect::<Vec<_>>();
    (!typed.is_empty()).then_some(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_metadata() {
        let metadata = r#"<edmx:Edmx><edmx:DataServices><Schema Namespace="N">
            <EntityType Name="Other"><Key><PropertyRef Name="x"/></Key></EntityType>
            <EntityType Name="Record"><Key><PropertyRef Name="_id"/></Key><Property Name="a" Type="Edm.Int64"/>
              <Property Name="_id" Type="Edm.String" Nullable="false"/></EntityType>
            <EntityType Name="Pair"><Key><PropertyRef Name="p"/><PropertyRef Name="ID"/></Key>
              <Property Name="p" Type="Edm.String"/><Property Name="ID" Type="Edm.Guid"/></EntityType>
            <EntityContainer Name="C"><EntitySet Name="Analytics" EntityType="N.Record"/>
              <EntitySet Name="Pairs" EntityType="N.Pair"/></EntityContainer>
            </Schema></edmx:DataServices></edmx:Edmx>"#;
        let key = |name: &str, ty: &str| (name.to_owned(), ty.to_owned());
        assert_eq!(keys_in_metadata(metadata, "Analytics"), Some(vec![key("_id", "Edm.String")]));
        assert_eq!(keys_in_metadata(metadata, "Pairs"), Some(vec![key("p", "Edm.String"), key("ID", "Edm.Guid")]));
        assert_eq!(keys_in_metadata(metadata, "Nope"), None);
    }

    #[test]
    fn entities_become_rows_to_ingest() {
        let entity = serde_json::json!({
            "@odata.etag": "W/1", "_id": "k", "ID": "u", "id": "parley's", "organisation": "o", "inputId": "i",
            "slots": "{\"a\":1}", "inputData": "plain", "completedGoals": "[\"g\"]", "trackedGoals": [], "executionTime": "12.5",
            "intentScore@odata.type": "#Double", "intentScore": 0.5
        });
        let key = [("ID".to_owned(), "Edm.Guid".to_owned())];
        let row = ingestible(entity.as_object().unwrap(), &key, parley_core::RECORD_FIELDS);
        assert_eq!(
            row,
            serde_json::json!({"inputId": "i", "slots": {"a": 1}, "inputData": "plain", "completedGoals": ["g"],
                "executionTime": 12.5, "intentScore": 0.5})
        );
    }

    #[test]
    fn a_window_starts_after_the_last_key_in_key_order() {
        let literal_of = |v: Json, ty: &str| literal(&v, ty).unwrap();
        assert_eq!(literal_of(Json::from("it's"), "Edm.String"), "'it''s'");
        assert_eq!(
            literal_of(Json::from("0f8fad5b-d9cb-469f-a165-70867728950e"), "Edm.Guid"),
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        assert_eq!(literal_of(Json::from(7), "Edm.Int64"), "7");
        assert_eq!(literal(&Json::Null, "Edm.String"), None);
        let key = |names: &[&str]| names.iter().map(|n| ((*n).to_owned(), String::new())).collect::<Vec<_>>();
        let values = ["'p'".to_owned(), "3".to_owned()];
        assert_eq!(after(&key(&["id"]), &values[..1]), "id gt 'p'");
        assert_eq!(after(&key(&["a", "b"]), &values), "(a gt 'p') or (a eq 'p' and b gt 3)");
    }
}
