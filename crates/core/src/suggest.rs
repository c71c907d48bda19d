//! "Did you mean …?": the known name closest to one a client misspelt, so that an error about an
//! unknown field, property or parameter can point at the right one.

/// The name of `known` closest to `unknown`: the same but for case, or else at most two edits
/// away (one for names of four characters or fewer), the closest first; `None` when none is.
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lowered = unknown.to_lowercase();
    let limit = if unknown.chars().count() <= 4 { 1 } else { 2 };
    known
        .into_iter()
        .filter(|name| *name != unknown)
        .map(|name| (if name.to_lowercase() == lowered { 0 } else { edits(&lowered, &name.to_lowercase()) }, name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// `text` followed by "; did you mean 'x'?" when [`closest`] finds one.
pub fn with_suggestion<'a>(text: String, unknown: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match closest(unknown, known) {
        Some(name) => format!("{text}; did you mean '{name}'?"),
        None => text,
    }
}

/// The Levenshtein distance between two strings, by characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [&str; 5] = ["rating", "ratingComment", "contactId", "channel", "intent"];

    #[test]
    fn a_misspelt_name_finds_the_one_meant() {
        assert_eq!(closest("ratng", FIELDS), Some("rating"));
        assert_eq!(closest("Rating", FIELDS), Some("rating"), "case alone");
        assert_eq!(closest("contactid", FIELDS), Some("contactId"));
        assert_eq!(closest("contact", FIELDS), Some("contactId"), "two edits for a longer name");
        assert_eq!(closest("chnl", FIELDS), None, "one edit for a short one");
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        assert_eq!(closest("weather", FIELDS), None);
        assert_eq!(closest("ab", ["cd"]), None);
        assert_eq!(closest("intnt", FIELDS), Some("intent"));
        assert_eq!(with_suggestion("x".into(), "chanel", FIELDS), "x; did you mean 'channel'?");
        assert_eq!(with_suggestion("x".into(), "zzz", FIELDS), "x");
    }
}
