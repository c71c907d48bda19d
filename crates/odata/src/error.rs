//! Why a query option was refused, and where.

use std::fmt;

/// A malformed or unsupported query option. `position` is the byte offset of the fault in the
/// option's value (after percent-decoding); `option` names the option, e.g. `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub option: String,
    pub position: usize,
    pub message: String,
    /// True when the option is valid OData that parley does not implement (answered 501),
    /// false when it is malformed or does not fit the model (answered 400).
    pub unimplemented: bool,
}

impl ParseError {
    pub fn new(option: &str, position: usize, message: impl Into<String>) -> Self {
        ParseError { option: option.to_owned(), position, message: message.into(), unimplemented: false }
    }

    /// Valid OData that parley does not implement.
    pub fn unimplemented(option: &str, position: usize, message: impl Into<String>) -> Self {
        ParseError { unimplemented: true, ..ParseError::new(option, position, message) }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}: {}", self.option, self.position, self.message)
    }
}

impl std::error::Error for ParseError {}
