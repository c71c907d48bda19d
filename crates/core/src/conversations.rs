//! The conversations index of `GET /v2.0/conversations` (docs/contract/conversations.md,
//! "Reading"): one summary per session that has messages, newest last message first, with the
//! filters the reference SDK sends and keyset cursors.

use base64::Engine as _;
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use crate::ObjectId;
use crate::error::{Error, Result};
use crate::query::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::value::{TIME_FORMS, Value, format_time, parse_time};

/// The longest search accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 512;
/// The most words a search may have.
pub const MAX_SEARCH_WORDS: usize = 16;

/// The parameters of the index that take one value.
const SINGLE_PARAMETERS: [&str; 9] =
    ["projectId", "from", "to", "channel", "search", "limit", "skip", "next", "previous"];

/// A position in the index: the last message's time and the session id of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationCursor {
    pub last_message_at: OffsetDateTime,
    pub session_id: String,
}

/// Where a page of the index starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationStart {
    Offset(u64),
    After(ConversationCursor),
    Before(ConversationCursor),
}

/// A validated query of the conversations index.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationQuery {
    pub project_id: ObjectId,
    /// Sessions of these contacts only; empty for every contact.
    pub contact_ids: Vec<String>,
    /// Sessions with a message at or after `from` and one before `to`.
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub channel: Option<String>,
    /// Words that one message of the session contains, every one of them, in any case.
    pub search: Vec<String>,
    pub start: ConversationStart,
    pub limit: u32,
}

impl ConversationQuery {
    /// Types the query string, given as its decoded pairs in order. Arrays come as repeated
    /// names, with or without `[]` (`contactIds=a&contactIds[]=b`), as the reference SDK sends
    /// them; a value is never split at commas.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self> {
        let mut contact_ids = Vec::new();
        let mut single: Map<String, Json> = Map::new();
        for (name, value) in pairs {
            if name == "contactIds" || name == "contactIds[]" {
                contact_ids.push(value.clone());
            } else if SINGLE_PARAMETERS.contains(&name.as_str())
                && single.insert(name.clone(), Json::String(value.clone())).is_some()
            {
                return Err(Error::invalid(name, "must be given once"));
            }
        }
        let text = |name: &str| single.get(name).and_then(Json::as_str).map(str::to_owned);
        let project_id = text("projectId").filter(|p| !p.is_empty()).ok_or_else(|| Error::missing("projectId"))?;
        let project_id = ObjectId::parse(&project_id).map_err(|e| Error::invalid("projectId", e))?;
        let time = |name: &str| -> Result<Option<OffsetDateTime>> {
            text(name)
                .map(|t| crate::value::parse_query_time(&t).map_err(|_| Error::invalid(name, TIME_FORMS)))
                .transpose()
        };
        let limit = match text("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
        };
        let start = match (text("skip"), text("next"), text("previous")) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::invalid("skip", "cannot be combined with a cursor"));
            }
            (_, Some(_), Some(_)) => return Err(Error::invalid("next", "cannot be combined with 'previous'")),
            (Some(skip), None, None) => ConversationStart::Offset(
                skip.parse::<u64>()
                    .ok()
                    .filter(|s| *s <= i64::MAX as u64)
                    .ok_or_else(|| Error::invalid("skip", "must be a whole number"))?,
            ),
            (None, Some(next), None) => ConversationStart::After(ConversationCursor::decode(&next, "next")?),
            (None, None, Some(previous)) => {
                ConversationStart::Before(ConversationCursor::decode(&previous, "previous")?)
            }
            (None, None, None) => ConversationStart::Offset(0),
        };
        Ok(ConversationQuery {
            project_id,
            contact_ids,
            from: time("from")?,
            to: time("to")?,
            channel: text("channel"),
            search: text("search").map(|s| search_words(&s)).transpose()?.unwrap_or_default(),
            start,
            limit,
        })
    }
}

/// The words of a search: runs of letters and digits, lower-cased, each once. A search with none
/// is refused: it could match nothing or everything, and neither is what was asked.
pub fn search_words(search: &str) -> Result<Vec<String>> {
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(Error::invalid("search", format!("must be at most {MAX_SEARCH_CHARS} characters long")));
    }
    let mut words: Vec<String> = Vec::new();
    for word in search.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.is_empty() {
        return Err(Error::invalid("search", "must contain at least one word of letters or digits"));
    }
    if words.len() > MAX_SEARCH_WORDS {
        return Err(Error::invalid("search", format!("must have at most {MAX_SEARCH_WORDS} words")));
    }
    Ok(words)
}

impl ConversationCursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let body = json!({"c": "conversations", "v": [format_time(self.last_message_at), self.session_id]});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
    }

    fn decode(text: &str, name: &str) -> Result<Self> {
        let invalid =
            || Error::invalid(name, "is not a cursor of the conversations index; take it from an earlier answer");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let body: Json = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if body["c"] != "conversations" {
            return Err(invalid());
        }
        let last_message_at = body["v"][0].as_str().and_then(parse_time).ok_or_else(invalid)?;
        let session_id = body["v"][1].as_str().ok_or_else(invalid)?.to_owned();
        Ok(ConversationCursor { last_message_at, session_id })
    }
}

/// One session of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub id: String,
    pub session_id: String,
    pub contact_id: String,
    pub project_id: String,
    pub project_name: Option<String>,
    pub channel: Option<String>,
    pub flow_name: Option<String>,
    pub endpoint_name: Option<String>,
    pub messages: i64,
    pub start_time: OffsetDateTime,
    pub end_time: OffsetDateTime,
    /// The non-null ratings of its records and messages, in time order.
    pub ratings: Vec<f64>,
    pub rating_comments: Vec<String>,
}

impl ConversationSummary {
    /// The position of this summary in the index.
    pub fn cursor(&self) -> ConversationCursor {
        ConversationCursor { last_message_at: self.end_time, session_id: self.session_id.clone() }
    }

    /// The summary as the reference SDK reads it.
    pub fn to_json(&self) -> Map<String, Json> {
        let text = |v: &Option<String>| v.clone().map_or(Json::Null, Json::String);
        let mut object = Map::new();
        object.insert("_id".into(), Json::String(self.id.clone()));
        object.insert("sessionId".into(), Json::String(self.session_id.clone()));
        object.insert("contactId".into(), Json::String(self.contact_id.clone()));
        object.insert("projectId".into(), Json::String(self.project_id.clone()));
        object.insert("projectName".into(), text(&self.project_name));
        object.insert("channel".into(), text(&self.channel));
        object.insert("flowName".into(), text(&self.flow_name));
        object.insert("endpointName".into(), text(&self.endpoint_name));
        object.insert("messages".into(), Json::from(self.messages));
        object.insert("startTime".into(), Json::String(format_time(self.start_time)));
        object.insert("endTime".into(), Json::String(format_time(self.end_time)));
        object.insert("ratings".into(), self.ratings.iter().map(|r| Value::Number(*r).to_json()).collect());
        object.insert("ratingComments".into(), self.rating_comments.iter().cloned().map(Json::String).collect());
        object
    }
}

/// The names of a summary's fields, in order, for CSV.
pub const SUMMARY_COLUMNS: [&str; 13] = [
    "_id",
    "sessionId",
    "contactId",
    "projectId",
    "projectName",
    "channel",
    "flowName",
    "endpointName",
    "messages",
    "startTime",
    "endTime",
    "ratings",
    "ratingComments",
];

/// One page of the index with the cursors of its neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationPage {
    pub items: Vec<ConversationSummary>,
    pub total: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = vec![("projectId".to_owned(), "5f0c6bc4ad4f8b0011b2e0e1".to_owned())];
        all.extend(list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        all
    }

    #[test]
    fn contacts_come_repeated_with_or_without_brackets_and_are_never_split() {
        let query =
            ConversationQuery::parse(&pairs(&[("contactIds", "a,b"), ("contactIds[]", "c"), ("contactIds", "d")]))
                .unwrap();
        assert_eq!(query.contact_ids, ["a,b", "c", "d"]);
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.start, ConversationStart::Offset(0));
    }

    #[test]
    fn search_is_words_lower_cased_once() {
        assert_eq!(search_words("Refund, REFUND   my order!").unwrap(), ["refund", "my", "order"]);
        assert_eq!(search_words("Zürich 2024").unwrap(), ["zürich", "2024"]);
        assert!(search_words(" ?! ").is_err());
        let many: String = (0..17).map(|i| format!("w{i} ")).collect();
        assert!(search_words(&many).unwrap_err().to_string().contains("at most 16 words"));
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let cursor = ConversationCursor {
            last_message_at: time::macros::datetime!(2024-05-01 12:00:00.123 UTC),
            session_id: "s-1".into(),
        };
        let query = ConversationQuery::parse(&pairs(&[("next", &cursor.encode())])).unwrap();
        assert_eq!(query.start, ConversationStart::After(cursor));
        for bad in [
            vec![("next", "garbage!")],
            vec![("previous", "eyJ4IjoxfQ")],
            vec![("skip", "1"), ("next", "x")],
            vec![("limit", "0")],
            vec![("limit", "101")],
            vec![("from", "yesterday")],
            vec![("search", "...")],
            vec![("channel", "a"), ("channel", "b")],
        ] {
            assert!(matches!(ConversationQuery::parse(&pairs(&bad)), Err(Error::Invalid { .. })), "{bad:?}");
        }
        assert!(matches!(ConversationQuery::parse(&[]), Err(Error::Missing { .. })));
    }
}
