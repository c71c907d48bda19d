//! `cast(value, Edm.Type)` and `isof(value, Edm.Type)`: which conversions there are and what
//! each gives. This is the one statement of the rules: the parser computes a cast of a literal
//! with [`cast`], SQLite's `odata_cast` computes rows with it, and the PostgreSQL statement
//! spells the same rules in SQL with the patterns and bounds named here.
//!
//! A value that cannot be converted (text that is not a number, a number out of the target's
//! range) becomes null, as OData has it. A conversion that is never possible (a date-time to a
//! boolean) is refused by the parser.

use std::sync::LazyLock;

use parley_core::Value;
use parley_core::value::format_time;
use regex::Regex;

/// What a value is, for a cast: the kinds of values rows and literals hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    DateTime,
    /// Whole milliseconds.
    Duration,
    /// Milliseconds since midnight.
    TimeOfDay,
}

impl Kind {
    /// The name SQLite's `odata_cast` is given.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::DateTime => "datetime",
            Kind::Duration => "duration",
            Kind::TimeOfDay => "timeofday",
        }
    }

    pub fn from_word(word: &str) -> Option<Kind> {
        [Kind::Text, Kind::Integer, Kind::Number, Kind::Boolean, Kind::DateTime, Kind::Duration, Kind::TimeOfDay]
            .into_iter()
            .find(|kind| kind.word() == word)
    }
}

/// A primitive type of OData that values may be cast to or tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// As OData names it (`Edm.Int32`).
    pub name: &'static str,
    pub kind: Kind,
    /// For whole numbers: the smallest and largest value of the type.
    pub range: Option<(i64, i64)>,
}

/// The primitive types parley's values can take or be cast to. `Edm.Single` and `Edm.Decimal`
/// are held as doubles, like `Edm.Double`.
pub const TARGETS: [Target; 13] = [
    Target { name: "Edm.String", kind: Kind::Text, range: None },
    Target { name: "Edm.Int64", kind: Kind::Integer, range: Some((i64::MIN, i64::MAX)) },
    Target { name: "Edm.Int32", kind: Kind::Integer, range: Some((i32::MIN as i64, i32::MAX as i64)) },
    Target { name: "Edm.Int16", kind: Kind::Integer, range: Some((i16::MIN as i64, i16::MAX as i64)) },
    Target { name: "Edm.SByte", kind: Kind::Integer, range: Some((i8::MIN as i64, i8::MAX as i64)) },
    Target { name: "Edm.Byte", kind: Kind::Integer, range: Some((0, u8::MAX as i64)) },
    Target { name: "Edm.Double", kind: Kind::Number, range: None },
    Target { name: "Edm.Single", kind: Kind::Number, range: None },
    Target { name: "Edm.Decimal", kind: Kind::Number, range: None },
    Target { name: "Edm.Boolean", kind: Kind::Boolean, range: None },
    Target { name: "Edm.DateTimeOffset", kind: Kind::DateTime, range: None },
    Target { name: "Edm.Duration", kind: Kind::Duration, range: None },
    Target { name: "Edm.TimeOfDay", kind: Kind::TimeOfDay, range: None },
];

/// Primitive types of OData no value of parley has: `isof` is false for them, `cast` to them is
/// not implemented.
pub const ABSENT_TYPES: [&str; 7] =
    ["Edm.Date", "Edm.Guid", "Edm.Binary", "Edm.Stream", "Edm.Untyped", "Edm.Geography", "Edm.Geometry"];

/// The target a qualified name stands for, matched without regard to case.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Text that is a whole number, as a cast reads it (PostgreSQL's `~` and Rust's `regex` agree on
/// it). Runs are bounded by the longest PostgreSQL's regular expressions allow (255).
pub const INTEGER_PATTERN: &str = "^[+-]?[0-9]{1,255}$";
/// Text that is a number, with an optional exponent of at most four digits.
pub const NUMBER_PATTERN: &str = "^[+-]?([0-9]{1,255}(\\.[0-9]{0,255})?|\\.[0-9]{1,255})([eE][+-]?[0-9]{1,4})?$";
/// The largest magnitude a cast to a number keeps, and the smallest other than zero (the least
/// normal double: PostgreSQL refuses smaller ones).
pub const NUMBER_BOUNDS: (f64, f64) = (f64::MIN_POSITIVE, f64::MAX);

/// Whether a conversion from `from` to `to` can ever succeed. Every kind converts to itself and to
/// text; numbers and text convert to numbers; text converts to booleans, date-times, durations
/// and times of day; a date-time converts to its time of day.
pub fn possible(from: Kind, to: Kind) -> bool {
    from == to
        || to == Kind::Text
        || matches!((from, to), (Kind::Integer | Kind::Number | Kind::Text, Kind::Integer | Kind::Number))
        || (from == Kind::Text && matches!(to, Kind::Boolean | Kind::DateTime | Kind::Duration | Kind::TimeOfDay))
        || (from, to) == (Kind::DateTime, Kind::TimeOfDay)
}

/// `cast(value, target)`, where `value` is of kind `from` (durations are whole milliseconds, as
/// `Value::Integer`). Null when the value cannot be converted.
pub fn cast(value: &Value, from: Kind, target: Target) -> Value {
    let converted = match (value, from) {
        (Value::Null, _) => None,
        (Value::Text(text), Kind::Text) => from_text(text, target),
        (Value::Integer(i), Kind::Integer) => match target.kind {
            Kind::Text => Some(Value::Text(i.to_string())),
            Kind::Integer => in_range(*i, target),
            Kind::Number => Some(Value::Number(*i as f64)),
            _ => None,
        },
        (Value::Number(n), Kind::Number) => match target.kind {
            Kind::Text => Some(Value::Text(number_text(*n))),
            Kind::Integer => truncated(*n, target),
            Kind::Number => Some(Value::Number(*n)),
            _ => None,
        },
        (Value::Bool(b), Kind::Boolean) => match target.kind {
            Kind::Text => Some(Value::Text(b.to_string())),
            Kind::Boolean => Some(Value::Bool(*b)),
            _ => None,
        },
        (Value::Time(t), Kind::DateTime) => match target.kind {
            Kind::Text => Some(Value::Text(format_time(*t))),
            Kind::DateTime => Some(Value::Time(*t)),
            Kind::TimeOfDay => {
                let t = t.to_offset(time::UtcOffset::UTC);
                let seconds = (i64::from(t.hour()) * 60 + i64::from(t.minute())) * 60 + i64::from(t.second());
                Some(Value::Integer(seconds * 1000 + i64::from(t.millisecond())))
            }
            _ => None,
        },
        (Value::Integer(ms), Kind::TimeOfDay) => match target.kind {
            Kind::Text => Some(Value::Text(time_of_day_text(*ms))),
            Kind::TimeOfDay => Some(Value::Integer(*ms)),
            _ => None,
        },
        (Value::Integer(ms), Kind::Duration) => match target.kind {
            Kind::Text => Some(Value::Text(duration_text(*ms))),
            Kind::Duration => Some(Value::Integer(*ms)),
            _ => None,
        },
        _ => None,
    };
    converted.unwrap_or(Value::Null)
}

fn from_text(text: &str, target: Target) -> Option<Value> {
    static INTEGER: LazyLock<Regex> = LazyLock::new(|| Regex::new(INTEGER_PATTERN).expect("a valid pattern"));
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(NUMBER_PATTERN).expect("a valid pattern"));
    match target.kind {
        Kind::Text => Some(Value::Text(text.to_owned())),
        Kind::Integer if INTEGER.is_match(text) => text.parse::<i64>().ok().and_then(|i| in_range(i, target)),
        Kind::Number if NUMBER.is_match(text) => {
            let n: f64 = text.parse().ok()?;
            let (least, most) = NUMBER_BOUNDS;
            // Zero when its digits are (a tiny number also reads as 0.0, but is out of bounds).
            let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
            let zero = !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
            (zero || (least..=most).contains(&n.abs())).then_some(Value::Number(n))
        }
        Kind::Boolean if text.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        Kind::Boolean if text.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        Kind::DateTime => crate::lexer::parse_date_time(text).ok().map(Value::Time),
        Kind::Duration => crate::lexer::parse_duration(text).ok().map(Value::Integer),
        Kind::TimeOfDay => crate::lexer::parse_time_of_day(text).ok().map(Value::Integer),
        _ => None,
    }
}

fn in_range(i: i64, target: Target) -> Option<Value> {
    let (least, most) = target.range?;
    (least..=most).contains(&i).then_some(Value::Integer(i))
}

/// A number to a whole number: its whole part, when the type can hold it.
fn truncated(n: f64, target: Target) -> Option<Value> {
    let (least, most) = integer_bounds(target)?;
    let whole = n.trunc();
    (whole >= least && whole < most).then_some(Value::Integer(whole as i64))
}

/// The doubles a whole part must lie in to fit a whole-number type: at least the smallest value,
/// below the largest value plus one.
pub fn integer_bounds(target: Target) -> Option<(f64, f64)> {
    let (least, most) = target.range?;
    Some((least as f64, most as f64 + 1.0))
}

/// A double as text, as PostgreSQL writes it: the fewest digits that read back as the same
/// number, positional from 1e-4 up to below 1e15, otherwise with an exponent of at least two
/// digits (`1e+15`, `1.5e-05`).
pub fn number_text(n: f64) -> String {
    if !n.is_finite() {
        return if n.is_nan() {
            "NaN".into()
        } else if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let scientific = format!("{n:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..15).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exponent_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize));
    }
    let whole = exponent as usize + 1;
    if digits.len() <= whole {
        format!("{sign}{digits}{}", "0".repeat(whole - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..whole], &digits[whole..])
    }
}

/// A time of day as text, to the millisecond (`08:30:00.000`).
pub fn time_of_day_text(ms: i64) -> String {
    let (seconds, millis) = (ms / 1000, ms % 1000);
    format!("{:02}:{:02}:{:02}.{millis:03}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// A duration as ISO 8601 text, largest units first (`P1DT2H0.5S`; zero is `PT0S`).
pub fn duration_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (hours, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    let mut text = format!("{sign}P");
    if days > 0 {
        text.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || rest > 0 || days == 0 {
        text.push('T');
        if hours > 0 {
            text.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            text.push_str(&format!("{minutes}M"));
        }
        if rest > 0 || (days == 0 && hours == 0 && minutes == 0) {
            if millis > 0 {
                let fraction = format!("{millis:03}");
                text.push_str(&format!("{seconds}.{}S", fraction.trim_end_matches('0')));
            } else {
                text.push_str(&format!("{seconds}S"));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_postgresql_writes_them() {
        // The expected texts are PostgreSQL 15's `CAST(x AS text)` of the same doubles.
        let cases = [
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (1.5e14, "150000000000000"),
            (-2.5, "-2.5"),
            (100.0, "100"),
        ];
        for (n, text) in cases {
            assert_eq!(number_text(n), text, "{n:e}");
        }
    }

    #[test]
    fn text_converts_when_it_is_a_literal_of_the_type() {
        let int32 = target("edm.int32").unwrap();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(cast(&text("-42"), Kind::Text, int32), Value::Integer(-42));
        assert_eq!(cast(&text("2147483648"), Kind::Text, int32), Value::Null);
        assert_eq!(cast(&text("4.5"), Kind::Text, int32), Value::Null);
        assert_eq!(cast(&text(" 4"), Kind::Text, int32), Value::Null);
        let double = target("Edm.Double").unwrap();
        assert_eq!(cast(&text("4.5e2"), Kind::Text, double), Value::Number(450.0));
        assert_eq!(cast(&text("1e400"), Kind::Text, double), Value::Null);
        assert_eq!(cast(&text("1e-400"), Kind::Text, double), Value::Null);
        assert_eq!(cast(&text("1e12345"), Kind::Text, double), Value::Null);
        assert_eq!(cast(&text("NaN"), Kind::Text, double), Value::Null);
        let boolean = target("Edm.Boolean").unwrap();
        assert_eq!(cast(&text("TRUE"), Kind::Text, boolean), Value::Bool(true));
        assert_eq!(cast(&text("yes"), Kind::Text, boolean), Value::Null);
    }

    #[test]
    fn numbers_convert_by_range_and_truncation() {
        let byte = target("Edm.Byte").unwrap();
        assert_eq!(cast(&Value::Integer(255), Kind::Integer, byte), Value::Integer(255));
        assert_eq!(cast(&Value::Integer(256), Kind::Integer, byte), Value::Null);
        assert_eq!(cast(&Value::Number(-0.5), Kind::Number, byte), Value::Integer(0));
        assert_eq!(cast(&Value::Number(-1.5), Kind::Number, byte), Value::Null);
        let int64 = target("Edm.Int64").unwrap();
        assert_eq!(cast(&Value::Number(9.3e18), Kind::Number, int64), Value::Null);
        assert_eq!(cast(&Value::Number(i64::MIN as f64), Kind::Number, int64), Value::Integer(i64::MIN));
    }

    #[test]
    fn times_and_durations_as_text() {
        let t = crate::lexer::parse_date_time("2024-03-31T01:02:03.4+02:00").unwrap();
        assert_eq!(format_time(t), "2024-03-30T23:02:03.400Z");
        assert_eq!(duration_text(0), "PT0S");
        let clock = target("Edm.TimeOfDay").unwrap();
        assert_eq!(cast(&Value::Time(t), Kind::DateTime, clock), Value::Integer(82_923_400));
        assert_eq!(time_of_day_text(82_923_400), "23:02:03.400");
        assert_eq!(cast(&Value::Text("07:05".into()), Kind::Text, clock), Value::Integer(25_500_000));
        assert_eq!(duration_text(93_784_500), "P1DT2H3M4.5S");
        assert_eq!(duration_text(-86_400_000), "-P1D");
        assert_eq!(crate::lexer::parse_duration(&duration_text(93_784_500)), Ok(93_784_500));
    }
}
