//! The names people give things: projects, users, API keys, OAuth2 clients and organisations
//! all follow one rule.

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A name: 1 to [`MAX_NAME_CHARS`] characters, not blank. Kept exactly as given.
pub fn validate_name(name: &str) -> Result<String> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "must not be blank"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid("name", format!("must be at most {MAX_NAME_CHARS} characters long")));
    }
    Ok(name.to_owned())
}

/// A required name from a JSON body: present, a string, and valid by [`validate_name`].
pub fn name_from_json(value: Option<&Json>) -> Result<String> {
    match value {
        None | Some(Json::Null) => Err(Error::missing("name")),
        Some(Json::String(name)) => validate_name(name),
        Some(_) => Err(Error::invalid("name", "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_bounded_and_not_blank() {
        assert_eq!(validate_name(" Ada ").unwrap(), " Ada ");
        assert_eq!(validate_name(&"é".repeat(200)).unwrap().chars().count(), 200);
        assert_eq!(validate_name("  "), Err(Error::invalid("name", "must not be blank")));
        assert_eq!(validate_name(&"a".repeat(201)), Err(Error::invalid("name", "must be at most 200 characters long")));
    }

    #[test]
    fn a_name_in_json_is_required_and_a_string() {
        assert_eq!(name_from_json(None), Err(Error::missing("name")));
        assert_eq!(name_from_json(Some(&Json::Null)), Err(Error::missing("name")));
        assert_eq!(name_from_json(Some(&json!(7))), Err(Error::invalid("name", "must be a string")));
        assert_eq!(name_from_json(Some(&json!("Sales"))).unwrap(), "Sales");
    }
}
