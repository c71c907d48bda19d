//! Typed field values, and the one place that turns JSON into them and back.

use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::field::{Field, FieldType};

/// The most items a list field holds (`completedGoals`, `trackedGoals`, `labels`): a turn
/// completes or tracks a few goals, not thousands, and every read of a page stays bounded.
pub const MAX_LIST_ITEMS: usize = 100;
/// The most bytes of text a list field holds, all items together.
pub const MAX_LIST_BYTES: usize = 16 * 1024;
/// The most characters of one item of a list field.
pub const MAX_LIST_ITEM_CHARS: usize = 1024;

/// A field's value once parsed. Times are UTC with millisecond precision.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Integer(i64),
    Number(f64),
    Bool(bool),
    Time(OffsetDateTime),
    Json(Json),
    TextList(Vec<String>),
    /// Bytes that no record field holds: the hashes of secrets, kept by the store.
    Bytes(Vec<u8>),
}

/// Why a JSON value does not fit a field; the field name is added by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem(pub String);

impl Value {
    /// Parses a JSON value for `field`, applying its type and limits. `null` gives
    /// [`Value::Null`] when the field is nullable.
    pub fn from_json(field: &Field, json: Json) -> Result<Value, FieldProblem> {
        let problem = |text: &str| Err(FieldProblem(text.to_owned()));
        if json.is_null() {
            return if field.nullable() { Ok(Value::Null) } else { problem("must not be null") };
        }
        match field.ty {
            FieldType::Id => match json {
                Json::String(text) => match crate::ObjectId::parse(&text) {
                    Ok(_) => Ok(Value::Text(text)),
                    Err(e) => Err(FieldProblem(e.to_string())),
                },
                _ => problem("must be a string of 24 lowercase hexadecimal characters"),
            },
            FieldType::Text { .. } | FieldType::LongText { .. } | FieldType::TextList if contains_nul(&json) => {
                problem("must not contain the NUL character (U+0000)")
            }
            FieldType::Text { max_chars } => match json {
                Json::String(text) if text.chars().count() <= max_chars => Ok(Value::Text(text)),
                Json::String(_) => Err(FieldProblem(format!("must be at most {max_chars} characters long"))),
                _ => problem("must be a string"),
            },
            FieldType::LongText { max_bytes } => match json {
                Json::String(text) if text.len() <= max_bytes => Ok(Value::Text(text)),
                Json::String(_) => Err(FieldProblem(format!("must be at most {max_bytes} bytes long"))),
                _ => problem("must be a string"),
            },
            FieldType::DateTime => match json {
                Json::String(text) => parse_time(&text).map(Value::Time).ok_or_else(|| {
                    FieldProblem("must be an RFC 3339 date-time such as 2024-05-01T12:00:00.000Z".into())
                }),
                _ => problem("must be an RFC 3339 date-time string"),
            },
            FieldType::Json { max_bytes } => {
                if json.to_string().len() > max_bytes {
                    Err(FieldProblem(format!("must serialise to at most {max_bytes} bytes")))
                } else {
                    Ok(Value::Json(json))
                }
            }
            FieldType::TextList => match json {
                Json::Array(items) if items.len() > MAX_LIST_ITEMS => {
                    Err(FieldProblem(format!("must hold at most {MAX_LIST_ITEMS} items")))
                }
                Json::Array(items)
                    if items.iter().map(|i| i.as_str().map_or(0, str::len)).sum::<usize>() > MAX_LIST_BYTES =>
                {
                    Err(FieldProblem(format!("must hold at most {MAX_LIST_BYTES} bytes of text")))
                }
                Json::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Json::String(text) if text.chars().count() <= MAX_LIST_ITEM_CHARS => Ok(text),
                        Json::String(_) => {
                            Err(FieldProblem(format!("items must be at most {MAX_LIST_ITEM_CHARS} characters long")))
                        }
                        _ => Err(FieldProblem("must be a list of strings".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::TextList),
                _ => problem("must be a list of strings"),
            },
            FieldType::Number { min, max } => match json.as_f64() {
                Some(n) if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) => Err(FieldProblem(format!(
                    "must be a number between {} and {}",
                    min.map_or("-∞".into(), |m| m.to_string()),
                    max.map_or("∞".into(), |m| m.to_string())
                ))),
                Some(n) => Ok(Value::Number(n)),
                None => problem("must be a number"),
            },
            FieldType::Integer { min } => match &json {
                Json::Number(n) => {
                    let whole = n
                        .as_i64()
                        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
                    match whole {
                        Some(i) if i >= min => Ok(Value::Integer(i)),
                        Some(_) => Err(FieldProblem(format!("must be a whole number of at least {min}"))),
                        None => problem("must be a whole number, not a fraction"),
                    }
                }
                _ => problem("must be a number"),
            },
            FieldType::Boolean => match json {
                Json::Bool(b) => Ok(Value::Bool(b)),
                _ => problem("must be true or false"),
            },
        }
    }

    /// The JSON form of the value, as every representation shows it.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Text(text) => Json::String(text.clone()),
            Value::Integer(i) => Json::from(*i),
            // Whole numbers are written without a fraction (`9`, not `9.0`), as clients sent them.
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Json::from(*n as i64),
            Value::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
            Value::Bool(b) => Json::Bool(*b),
            Value::Time(t) => Json::String(format_time(*t)),
            Value::Json(json) => json.clone(),
            Value::TextList(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
            Value::Bytes(bytes) => Json::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Whether a string, or a string in a list, holds U+0000, which PostgreSQL cannot store as text.
fn contains_nul(json: &Json) -> bool {
    match json {
        Json::String(text) => text.contains('\0'),
        Json::Array(items) => items.iter().any(contains_nul),
        _ => false,
    }
}

/// Parses an RFC 3339 date-time (any offset) into UTC, truncated to milliseconds.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(truncate_to_millis(parsed.to_offset(time::UtcOffset::UTC)))
}

/// Parses a date-time as a query names one (OData literals, `from` and `to`): `YYYY-MM-DD`
/// (midnight UTC) or `YYYY-MM-DDThh:mm[:ss[.fff…]](Z|±hh:mm)`, into UTC at millisecond precision
/// (the precision parley stores). Bodies keep to RFC 3339 ([`parse_time`]).
pub fn parse_date_time(text: &str) -> Result<OffsetDateTime, String> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let invalid = || format!("'{text}' is not a date-time such as 2024-05-01T00:00:00Z");
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) { std::str::from_utf8(part).ok()?.parse().ok() } else { None }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(invalid());
    }
    let (year, month, day) =
        (num(0..4).ok_or_else(invalid)?, num(5..7).ok_or_else(invalid)?, num(8..10).ok_or_else(invalid)?);
    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(invalid)?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| invalid())?;
    if b.len() == 10 {
        return Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    if !matches!(b[10], b'T' | b't') || b.len() < 16 || b[13] != b':' {
        return Err(invalid());
    }
    let (hour, minute) = (num(11..13).ok_or_else(invalid)?, num(14..16).ok_or_else(invalid)?);
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        second = num(i + 1..i + 3).ok_or_else(invalid)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(invalid());
            }
            let millis: String = b[i + 1..i + 1 + digits].iter().take(3).map(|&c| c as char).collect();
            nanos = format!("{millis:0<3}").parse::<u32>().map_err(|_| invalid())? * 1_000_000;
            i += 1 + digits;
        }
    }
    let offset = match &b[i..] {
        [b'Z' | b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let hours = num(i + 1..i + 3).ok_or_else(invalid)? as i8;
            let minutes = num(i + 4..i + 6).ok_or_else(invalid)? as i8;
            let (hours, minutes) = if *sign == b'-' { (-hours, -minutes) } else { (hours, minutes) };
            UtcOffset::from_hms(hours, minutes, 0).map_err(|_| invalid())?
        }
        _ => return Err(invalid()),
    };
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).map_err(|_| invalid())?;
    let local = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let utc = local.checked_to_offset(UtcOffset::UTC).ok_or_else(invalid)?;
    Ok(utc)
}

/// What a date-time in a query may look like, for errors.
pub const TIME_FORMS: &str =
    "must be a date-time such as 2024-05-01T12:00:00Z, 2024-05-01T14:00+02:00 or 2024-05-01 (midnight UTC)";

/// [`parse_date_time`] of a query parameter's value, where a `+` that was not percent-encoded
/// arrived as a space: `2024-05-01T12:00:00 02:00` is `…+02:00`.
pub fn parse_query_time(text: &str) -> Result<OffsetDateTime, String> {
    match text.rsplit_once(' ') {
        Some((time, offset)) if offset.len() == 5 && offset.as_bytes()[2] == b':' => {
            parse_date_time(&format!("{time}+{offset}"))
        }
        _ => parse_date_time(text),
    }
}

/// The canonical wire form: UTC with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the Unix epoch, the storage form of a time in the embedded engine.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time `millis` milliseconds after the Unix epoch, if representable.
pub fn from_unix_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

/// The current time at the precision parley stores.
pub fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{RECORD_FIELDS, field_index};
    use serde_json::json;

    fn field(name: &str) -> &'static Field {
        &RECORD_FIELDS[field_index(name).unwrap()]
    }

    #[test]
    fn times_normalise_to_utc_milliseconds() {
        let t = parse_time("2024-05-01T14:00:00.123456+02:00").unwrap();
        assert_eq!(format_time(t), "2024-05-01T12:00:00.123Z");
        assert_eq!(from_unix_millis(unix_millis(t)), Some(t));
        assert!(parse_time("2024-05-01").is_none());
    }

    #[test]
    fn integers_refuse_fractions_but_take_whole_floats() {
        let f = field("handoverEscalations");
        assert_eq!(Value::from_json(f, json!(2)), Ok(Value::Integer(2)));
        assert_eq!(Value::from_json(f, json!(2.0)), Ok(Value::Integer(2)));
        assert!(Value::from_json(f, json!(2.5)).unwrap_err().0.contains("fraction"));
        assert!(Value::from_json(f, json!(-1)).is_err());
        assert!(Value::from_json(f, json!("2")).is_err());
    }

    #[test]
    fn strings_have_limits_and_types() {
        let f = field("custom1");
        assert!(Value::from_json(f, json!("é".repeat(1024))).is_ok());
        assert!(Value::from_json(f, json!("é".repeat(1025))).unwrap_err().0.contains("1024"));
        assert!(Value::from_json(f, json!(5)).is_err());
        assert_eq!(Value::from_json(f, json!(null)), Ok(Value::Null));
        assert!(Value::from_json(field("contactId"), json!(null)).is_err());
    }

    #[test]
    fn nul_characters_are_refused_in_text() {
        assert!(Value::from_json(field("inputText"), json!("a\u{0}b")).unwrap_err().0.contains("NUL"));
        assert!(Value::from_json(field("trackedGoals"), json!(["ok", "a\u{0}"])).is_err());
        assert!(Value::from_json(field("custom2"), json!("a\u{1}b")).is_ok());
    }

    #[test]
    fn intent_score_is_bounded() {
        let f = field("intentScore");
        assert!(Value::from_json(f, json!(0)).is_ok());
        assert!(Value::from_json(f, json!(1.5)).is_err());
    }
}

#[cfg(test)]
mod query_time_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_query_takes_the_date_time_forms_odata_does() {
        let noon = datetime!(2024-05-01 12:00 UTC);
        for text in [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.000Z",
            "2024-05-01T12:00Z",
            "2024-05-01T14:00:00+02:00",
            "2024-05-01T14:00:00 02:00",
            "2024-05-01T07:00-05:00",
        ] {
            assert_eq!(parse_query_time(text), Ok(noon), "{text}");
        }
        assert_eq!(parse_query_time("2024-05-01"), Ok(datetime!(2024-05-01 0:00 UTC)));
        for text in ["yesterday", "2024-13-01", "1714564800000", "2024-05-01T12", ""] {
            assert!(parse_query_time(text).is_err(), "{text}");
        }
    }
}

#[cfg(test)]
mod list_bound_tests {
    use super::*;
    use crate::field::{RECORD_FIELDS, field_index};
    use serde_json::json;

    #[test]
    fn a_list_is_bounded_in_items_and_bytes() {
        let field = &RECORD_FIELDS[field_index("completedGoals").unwrap()];
        let items = |n: usize, each: usize| Json::Array((0..n).map(|_| json!("g".repeat(each))).collect());
        assert!(Value::from_json(field, items(MAX_LIST_ITEMS, 10)).is_ok());
        let too_many = Value::from_json(field, items(MAX_LIST_ITEMS + 1, 1)).unwrap_err();
        assert_eq!(too_many.0, "must hold at most 100 items");
        let too_big = Value::from_json(field, items(20, 1000)).unwrap_err();
        assert_eq!(too_big.0, "must hold at most 16384 bytes of text");
    }
}
