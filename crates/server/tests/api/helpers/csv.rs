//! Reading the CSV representation, and comparing its cells with JSON.

use serde_json::Value as Json;

use super::same_json;

/// Parses an RFC 4180 document into its header row and its data rows.
pub fn parse_csv(document: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(document.as_bytes());
    let headers = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    let rows =
        reader.records().map(|row| row.expect("a well-formed row").iter().map(str::to_owned).collect()).collect();
    (headers, rows)
}

/// The CSV cell a JSON value becomes: text as is, null empty, anything else as JSON text.
pub fn assert_csv_cell(cell: &str, expected: &Json, column: &str) {
    match expected {
        Json::Null => assert_eq!(cell, "", "column {column}"),
        Json::String(text) => assert_eq!(cell, text, "column {column}"),
        other => {
            let parsed: Json =
                serde_json::from_str(cell).unwrap_or_else(|e| panic!("column {column} holds {cell:?}, not JSON: {e}"));
            assert!(same_json(&parsed, other), "column {column}: {cell} is not {other}");
        }
    }
}
