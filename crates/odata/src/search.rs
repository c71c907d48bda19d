//! `$search` (OData 4.01 URL conventions, 5.1.7): words and "quoted phrases", combined with
//! `NOT`, `AND` (also by a space) and `OR`, in that order of binding, with parentheses. The
//! operators are upper-case, so that `and` is a word to search for. A word is a run of letters
//! and digits, matched whole and in any case, as the full-text index reads text; a phrase is its
//! words next to each other.

use crate::error::ParseError;

/// The most words one search may hold.
pub const MAX_WORDS: usize = 32;

/// A search expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A word, or the words of a phrase in their order, lower-cased.
    Phrase(Vec<String>),
    Not(Box<Search>),
    And(Vec<Search>),
    Or(Vec<Search>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Phrase(Vec<String>),
}

/// The words of a text: runs of letters and digits, lower-cased.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut rest = text.char_indices().peekable();
    while let Some((at, c)) = rest.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push((Tok::Open, at)),
            ')' => out.push((Tok::Close, at)),
            '"' => {
                let mut phrase = String::new();
                let mut closed = false;
                while let Some((_, c)) = rest.next() {
                    match c {
                        '\\' => phrase.extend(rest.next().map(|(_, c)| c)),
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => phrase.push(c),
                    }
                }
                if !closed {
                    return Err(ParseError::new("$search", at, "the phrase starting here is not closed with \""));
                }
                let words = words(&phrase);
                if words.is_empty() {
                    return Err(ParseError::new("$search", at, "the phrase has no word of letters or digits"));
                }
                out.push((Tok::Phrase(words), at));
            }
            _ => {
                let mut word = String::from(c);
                while let Some((_, c)) = rest.peek().copied() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    word.push(c);
                    rest.next();
                }
                out.push((
                    match word.as_str() {
                        "AND" => Tok::And,
                        "OR" => Tok::Or,
                        "NOT" => Tok::Not,
                        _ => {
                            let words = words(&word);
                            if words.is_empty() {
                                return Err(ParseError::new(
                                    "$search",
                                    at,
                                    format!("'{word}' has no letters or digits to search for"),
                                ));
                            }
                            Tok::Phrase(words)
                        }
                    },
                    at,
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, at)| *at)
    }

    fn fail<T>(&self, message: &str) -> Result<T, ParseError> {
        Err(ParseError::new("$search", self.position(), message))
    }

    fn or(&mut self) -> Result<Search, ParseError> {
        self.depth += 1;
        if self.depth > crate::MAX_DEPTH {
            return self.fail("the search nests too deeply");
        }
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            items.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 { items.remove(0) } else { Search::Or(items) })
    }

    /// Terms side by side, or joined by `AND`.
    fn and(&mut self) -> Result<Search, ParseError> {
        let mut items = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::And) => self.at += 1,
                Some(Tok::Phrase(_) | Tok::Not | Tok::Open) => {}
                _ => break,
            }
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Search::And(items) })
    }

    fn unary(&mut self) -> Result<Search, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.at += 1;
                Ok(Search::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return self.fail("expected ')'");
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Tok::Phrase(words)) => {
                self.at += 1;
                Ok(Search::Phrase(words))
            }
            _ => self.fail("expected a word, a \"phrase\", NOT or '('"),
        }
    }
}

/// Parses the value of `$search`.
pub fn parse_search(text: &str) -> Result<Search, ParseError> {
    let tokens = tokens(text)?;
    let count: usize = tokens.iter().map(|(t, _)| if let Tok::Phrase(w) = t { w.len() } else { 0 }).sum();
    if count > MAX_WORDS {
        return Err(ParseError::new("$search", 0, format!("a search holds at most {MAX_WORDS} words")));
    }
    let mut parser = Parser { tokens, at: 0, end: text.len(), depth: 0 };
    let search = parser.or()?;
    if parser.at < parser.tokens.len() {
        return parser.fail("unexpected text after the search");
    }
    Ok(search)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(words: &[&str]) -> Search {
        Search::Phrase(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn words_phrases_and_operators_bind_as_odata_says() {
        assert_eq!(
            parse_search("Refund \"late order\" OR NOT Cancel").unwrap(),
            Search::Or(vec![
                Search::And(vec![phrase(&["refund"]), phrase(&["late", "order"])]),
                Search::Not(Box::new(phrase(&["cancel"])))
            ])
        );
        assert_eq!(
            parse_search("(a OR b) AND c").unwrap(),
            Search::And(vec![Search::Or(vec![phrase(&["a"]), phrase(&["b"])]), phrase(&["c"])])
        );
        assert_eq!(parse_search("Zürich's").unwrap(), phrase(&["zürich", "s"]));
        assert_eq!(parse_search("and").unwrap(), phrase(&["and"]), "only upper-case AND is the operator");
    }

    #[test]
    fn malformed_searches_are_located() {
        for (text, at, message) in [
            ("\"open", 0, "not closed"),
            ("a (b", 4, "expected ')'"),
            ("a OR", 4, "expected a word"),
            ("?!", 0, "no letters or digits"),
            ("a)", 1, "unexpected text"),
        ] {
            let e = parse_search(text).unwrap_err();
            assert_eq!(e.position, at, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }
}
