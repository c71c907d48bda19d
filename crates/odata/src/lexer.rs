//! Tokens of the expression syntax shared by `$filter`, `$apply`, `$orderby` and `$select`, each
//! with the byte offset where it starts.

pub use parley_core::value::parse_date_time;
use time::OffsetDateTime;

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name: a property, a keyword, a function, or `$count`.
    Ident(String),
    /// A string literal, `''` already unescaped.
    Str(String),
    Int(i64),
    Decimal(f64),
    /// A bare date-time (or date) literal, in UTC.
    DateTime(OffsetDateTime),
    /// A `duration'…'` literal, in milliseconds.
    Duration(i64),
    /// An `Edm.TimeOfDay` literal (`08:30:00`), in milliseconds since midnight.
    TimeOfDay(i64),
    /// `-` before something other than a digit: negation.
    Minus,
    LParen,
    RParen,
    Comma,
    Slash,
    /// After a lambda's variable: `any(g: …)`.
    Colon,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

impl Tok {
    /// How the token is named in error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("'{name}'"),
            Tok::Str(text) => format!("the string '{}'", text.replace('\'', "''")),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Decimal(d) => format!("the number {d}"),
            Tok::DateTime(_) => "a date-time".into(),
            Tok::Duration(_) => "a duration".into(),
            Tok::TimeOfDay(_) => "a time of day".into(),
            Tok::Minus => "'-'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Slash => "'/'".into(),
            Tok::Colon => "':'".into(),
            Tok::End => "the end of the option".into(),
        }
    }
}

/// Splits `text` into tokens; the last one is always [`Tok::End`].
pub fn tokenize(option: &str, text: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let fail = |pos: usize, message: String| Err(ParseError::new(option, pos, message));
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' | b')' | b',' | b'/' | b':' => {
                let tok = match b {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b',' => Tok::Comma,
                    b':' => Tok::Colon,
                    _ => Tok::Slash,
                };
                tokens.push(Token { tok, pos: start });
                i += 1;
            }
            b'\'' => {
                let mut value = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < bytes.len() {
                    let run = text[j..].find('\'').map_or(bytes.len(), |k| j + k);
                    value.push_str(&text[j..run]);
                    if run >= bytes.len() {
                        j = run;
                        break;
                    }
                    if bytes.get(run + 1) == Some(&b'\'') {
                        value.push('\'');
                        j = run + 2;
                    } else {
                        j = run + 1;
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return fail(start, "the string starting here is not closed with '".into());
                }
                if let Some(nul) = text[start..j].find('\0') {
                    // Stored text never holds it (ingest refuses it), and PostgreSQL cannot bind it.
                    return fail(start + nul, "a string must not contain the NUL character (U+0000)".into());
                }
                tokens.push(Token { tok: Tok::Str(value), pos: start });
                i = j;
            }
            b'-' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                tokens.push(Token { tok: Tok::Minus, pos: start });
                i += 1;
            }
            b'0'..=b'9' | b'-' => {
                if let Some((ms, end)) = time_of_day_at(text, i) {
                    let ms = ms.map_err(|m| ParseError::new(option, start, m))?;
                    tokens.push(Token { tok: Tok::TimeOfDay(ms), pos: start });
                    i = end;
                } else if looks_like_date(&bytes[i..]) {
                    let (time, end) = date_time_at(text, i).map_err(|m| ParseError::new(option, start, m))?;
                    tokens.push(Token { tok: Tok::DateTime(time), pos: start });
                    i = end;
                } else {
                    let (tok, end) = number_at(text, i).map_err(|m| ParseError::new(option, start, m))?;
                    tokens.push(Token { tok, pos: start });
                    i = end;
                }
                if bytes.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'\'') {
                    return fail(i, format!("unexpected character '{}' after a literal", char_at(text, i)));
                }
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'$' | b'@' => {
                let mut j = i + 1;
                // Qualified names (`Edm.String`, `geo.distance`) are one name.
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || bytes[j] == b'_'
                        || (bytes[j] == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_alphabetic)))
                {
                    j += 1;
                }
                let word = &text[i..j];
                if word.eq_ignore_ascii_case("duration") && bytes.get(j) == Some(&b'\'') {
                    let close = text[j + 1..].find('\'').map(|k| j + 1 + k);
                    let Some(close) = close else {
                        return fail(j, "the duration starting here is not closed with '".into());
                    };
                    let ms = parse_duration(&text[j + 1..close]).map_err(|m| ParseError::new(option, j + 1, m))?;
                    tokens.push(Token { tok: Tok::Duration(ms), pos: start });
                    i = close + 1;
                    continue;
                }
                tokens.push(Token { tok: Tok::Ident(word.to_owned()), pos: start });
                i = j;
            }
            _ => return fail(start, format!("unexpected character '{}'", char_at(text, i))),
        }
    }
    tokens.push(Token { tok: Tok::End, pos: bytes.len() });
    Ok(tokens)
}

fn char_at(text: &str, i: usize) -> char {
    text.get(i..).and_then(|rest| rest.chars().next()).unwrap_or('?')
}

/// An `Edm.Duration` in ISO 8601 (`[-]P[nD][T[nH][nM][n[.f]S]]`), in whole milliseconds. Years
/// and months have no fixed length and are refused, as the type refuses them.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("'{text}' is not a duration; write it as in duration'P1DT2H30M' or duration'PT0.5S'");
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let rest = rest.strip_prefix(['P', 'p']).ok_or_else(invalid)?;
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut seen = String::new();
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' | '.' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit @ ('D' | 'H' | 'M' | 'S') => {
                if unit == 'M' && !in_time {
                    return Err(format!("'{text}' has months, which have no fixed length; use days"));
                }
                if number.is_empty() || (unit == 'D') == in_time || seen.contains(unit) {
                    return Err(invalid());
                }
                let scale: i128 = match unit {
                    'D' => 86_400_000,
                    'H' => 3_600_000,
                    'M' => 60_000,
                    _ => 1000,
                };
                let (whole, fraction) = number.split_once('.').unwrap_or((&number, ""));
                if whole.is_empty() || (unit != 'S' && !fraction.is_empty()) || fraction.contains('.') {
                    return Err(invalid());
                }
                let whole: i128 = whole.parse().map_err(|_| invalid())?;
                let millis: i128 = format!("{:0<3}", &fraction[..fraction.len().min(3)]).parse().unwrap_or(0);
                total = total.saturating_add(whole.saturating_mul(scale)).saturating_add(millis);
                seen.push(unit);
                number.clear();
            }
            'Y' | 'W' => return Err(format!("'{text}' has years or weeks; an Edm.Duration counts days at most")),
            _ => return Err(invalid()),
        }
    }
    if !number.is_empty() || seen.is_empty() || (in_time && !seen.contains(['H', 'M', 'S'])) {
        return Err(invalid());
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| format!("the duration '{text}' is out of range"))
}

/// Four digits and a dash: the start of a date.
/// A time of day at `start` (`hh:mm`, `hh:mm:ss` or `hh:mm:ss.fff`), if the text has its shape
/// there: its milliseconds since midnight (or why they are out of range) and where it ends.
fn time_of_day_at(text: &str, start: usize) -> Option<(Result<i64, String>, usize)> {
    let bytes = &text.as_bytes()[start..];
    let two = |at: usize| -> Option<i64> {
        let pair = bytes.get(at..at + 2)?;
        pair.iter().all(u8::is_ascii_digit).then(|| i64::from(pair[0] - b'0') * 10 + i64::from(pair[1] - b'0'))
    };
    let (hours, minutes) = (two(0)?, if bytes.get(2) == Some(&b':') { two(3)? } else { return None });
    let (mut seconds, mut millis, mut end) = (0, 0, 5);
    if bytes.get(5) == Some(&b':') {
        seconds = two(6)?;
        end = 8;
        if bytes.get(8) == Some(&b'.') {
            let digits = bytes[9..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let fraction = &text[start + 9..start + 9 + digits.min(3)];
            millis = format!("{fraction:0<3}").parse().unwrap_or(0);
            end = 9 + digits;
        }
    }
    let value = if hours > 23 || minutes > 59 || seconds > 59 {
        Err(format!("'{}' is not a time of day: hours go to 23, minutes and seconds to 59", &text[start..start + end]))
    } else {
        Ok(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
    };
    Some((value, start + end))
}

/// An `Edm.TimeOfDay` written as text (`'08:30:00'`), in milliseconds since midnight.
pub fn parse_time_of_day(text: &str) -> Result<i64, String> {
    match time_of_day_at(text, 0) {
        Some((ms, end)) if end == text.len() => ms,
        _ => Err(format!("'{text}' is not a time of day; write it as in 08:30:00 or 23:59:59.999")),
    }
}

fn looks_like_date(bytes: &[u8]) -> bool {
    bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// A number: `-?digits(.digits)?([eE][+-]?digits)?`. Whole numbers that fit are integers.
fn number_at(text: &str, start: usize) -> Result<(Tok, usize), String> {
    let bytes = text.as_bytes();
    let mut j = start;
    if bytes[j] == b'-' {
        j += 1;
    }
    let digits = |mut k: usize| {
        while k < bytes.len() && bytes[k].is_ascii_digit() {
            k += 1;
        }
        k
    };
    j = digits(j);
    let mut whole = true;
    if bytes.get(j) == Some(&b'.') {
        let after = digits(j + 1);
        if after == j + 1 {
            return Err("a decimal point must be followed by digits".into());
        }
        j = after;
        whole = false;
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(bytes.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let after = digits(k);
        if after == k {
            return Err("an exponent must have digits".into());
        }
        j = after;
        whole = false;
    }
    let literal = &text[start..j];
    if whole && let Ok(i) = literal.parse::<i64>() {
        return Ok((Tok::Int(i), j));
    }
    match literal.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok((Tok::Decimal(d), j)),
        _ => Err(format!("the number {literal} is out of range")),
    }
}

/// A bare date-time literal starting at `start`: the longest run of characters a date-time is
/// made of. A space before an offset counts as `+`, because a `+` that was not percent-encoded
/// arrives as a space.
fn date_time_at(text: &str, start: usize) -> Result<(OffsetDateTime, usize), String> {
    let bytes = text.as_bytes();
    let mut end = start;
    while end < bytes.len() && matches!(bytes[end], b'0'..=b'9' | b'-' | b':' | b'.' | b'T' | b't' | b'Z' | b'z' | b'+')
    {
        end += 1;
    }
    let mut literal = text[start..end].to_owned();
    let has_time = literal.contains(['T', 't']);
    let has_zone = literal.ends_with(['Z', 'z']) || literal[literal.len().min(11)..].contains(['+', '-']);
    if has_time && !has_zone && bytes.get(end) == Some(&b' ') {
        let offset = &bytes[end + 1..];
        if offset.len() >= 5
            && offset[..2].iter().all(u8::is_ascii_digit)
            && offset[2] == b':'
            && offset[3..5].iter().all(u8::is_ascii_digit)
            && !offset.get(5).is_some_and(u8::is_ascii_alphanumeric)
        {
            literal.push('+');
            literal.push_str(&text[end + 1..end + 6]);
            end += 6;
        }
    }
    parse_date_time(&literal).map(|t| (t, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize("$filter", text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_unescape_doubled_quotes() {
        assert_eq!(toks("'it''s' ''"), vec![Tok::Str("it's".into()), Tok::Str(String::new()), Tok::End]);
        assert_eq!(toks("'é'"), vec![Tok::Str("é".into()), Tok::End]);
        let error = tokenize("$filter", "a eq 'open").unwrap_err();
        assert_eq!(error.position, 5);
        let error = tokenize("$filter", "a eq 'x\0y'").unwrap_err();
        assert_eq!((error.position, error.message.contains("NUL")), (7, true));
    }

    #[test]
    fn numbers_are_integers_when_whole() {
        assert_eq!(
            toks("12 -3 1.5 2e3 9223372036854775808"),
            vec![
                Tok::Int(12),
                Tok::Int(-3),
                Tok::Decimal(1.5),
                Tok::Decimal(2000.0),
                Tok::Decimal(9223372036854775808.0),
                Tok::End
            ]
        );
        assert!(tokenize("$filter", "1e999").is_err());
        assert!(tokenize("$filter", "1.").is_err());
        assert_eq!(tokenize("$filter", "12abc").unwrap_err().position, 2);
    }

    #[test]
    fn bare_date_times_take_offsets_and_a_space_for_plus() {
        let utc = parse_date_time("2024-05-01T12:00:00Z").unwrap();
        for text in ["2024-05-01T14:00:00+02:00", "2024-05-01T14:00:00 02:00", "2024-05-01T08:00:00-04:00"] {
            assert_eq!(toks(text), vec![Tok::DateTime(utc), Tok::End], "{text}");
        }
        assert_eq!(toks("2024-05-01T12:00Z"), vec![Tok::DateTime(utc), Tok::End]);
        assert_eq!(
            toks("2024-05-01"),
            vec![Tok::DateTime(parse_date_time("2024-05-01T00:00:00.000Z").unwrap()), Tok::End]
        );
        assert!(tokenize("$filter", "2024-13-01T00:00:00Z").is_err());
        assert!(tokenize("$filter", "2024-05-01T25:00:00Z").is_err());
        assert!(tokenize("$filter", "2024-05-01T00:00:00").is_err(), "a time needs its offset");
    }

    #[test]
    fn fractions_are_cut_to_milliseconds() {
        let t = parse_date_time("2024-05-01T12:00:00.1239Z").unwrap();
        assert_eq!(t.millisecond(), 123);
        assert_eq!(t.nanosecond(), 123_000_000);
        assert_eq!(parse_date_time("2024-05-01T12:00:00.5Z").unwrap().millisecond(), 500);
    }

    #[test]
    fn durations_are_milliseconds() {
        assert_eq!(toks("duration'P30D'"), vec![Tok::Duration(30 * 86_400_000), Tok::End]);
        assert_eq!(toks("08:30"), vec![Tok::TimeOfDay(30_600_000), Tok::End]);
        assert_eq!(toks("23:59:59.9999"), vec![Tok::TimeOfDay(86_399_999), Tok::End]);
        assert!(tokenize("$filter", "24:00:00").unwrap_err().message.contains("not a time of day"));
        assert_eq!(toks("DURATION'-PT1H30M0.25S'"), vec![Tok::Duration(-(5_400_000 + 250)), Tok::End]);
        assert_eq!(parse_duration("P1DT2H"), Ok(93_600_000));
        for bad in ["P", "PT", "P1DT", "P1M", "P1Y", "1D", "PT1D", "P1H", "P1.5D", "PT1S2S", "P99999999999999999D"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(tokenize("$filter", "duration'P1D").unwrap_err().position, 8);
        assert_eq!(toks("- a"), vec![Tok::Minus, Tok::Ident("a".into()), Tok::End]);
    }

    #[test]
    fn unexpected_characters_are_located() {
        let error = tokenize("$filter", "a eq ä").unwrap_err();
        assert_eq!(error.position, 5);
        assert!(error.message.contains('ä'));
    }
}
