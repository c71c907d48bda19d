//! Rows read from files or standard input, as NDJSON, a JSON array or CSV, each with the line it
//! came from, in batches that end at a position an import can go on from.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use parley_core::{Field, FieldType};
use serde_json::{Map, Value as Json};

use super::checkpoint::Position;

/// How a file holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (also `.jsonl`).
    Ndjson,
    /// One JSON array of objects, read whole.
    Json,
    /// A header row of field names, then one row per line (RFC 4180).
    Csv,
}

impl Format {
    /// The format a file's name says, if it says one.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// One row as read: its JSON object, or why it is not one, and where it was.
#[derive(Debug)]
pub struct SourceRow {
    pub json: Result<Json, String>,
    /// The line it starts on (from 1); in a JSON array, its position in the array (from 1).
    pub line: u64,
}

/// Rows read, and where the source stands after them.
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<SourceRow>,
    pub end: Position,
}

/// A file or standard input, read row by row.
pub struct FileSource {
    reader: Reader,
    /// Bytes read so far (from the start of the file, a resumed one included).
    byte: u64,
    /// Lines (or array rows) read so far.
    line: u64,
    /// The file's size, for a progress bar.
    pub total_bytes: Option<u64>,
}

enum Reader {
    Lines(Box<dyn BufRead + Send>),
    Array(std::vec::IntoIter<Json>),
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        headers: Vec<String>,
        fields: &'static [Field],
        /// Where the reader started: the byte, and the line its first line is.
        base_byte: u64,
        base_line: u64,
    },
}

impl FileSource {
    /// Opens a file at a position an earlier import reached (or the start).
    pub fn open(
        path: &Path,
        format: Format,
        fields: &'static [Field],
        from: Option<&Position>,
    ) -> Result<Self, String> {
        let failed = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let mut file = File::open(path).map_err(failed)?;
        let total_bytes = file.metadata().ok().map(|m| m.len());
        let (byte, line) = match from {
            Some(Position::Offset { byte, line }) => (*byte, *line),
            _ => (0, 0),
        };
        let reader = match format {
            Format::Ndjson => {
                file.seek(SeekFrom::Start(byte)).map_err(failed)?;
                Reader::Lines(Box::new(BufReader::with_capacity(1 << 20, file)))
            }
            Format::Json => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(failed)?;
                let mut rows = array(&bytes)?.into_iter();
                // In an array, the position is the row.
                for _ in 0..line {
                    rows.next();
                }
                Reader::Array(rows)
            }
            Format::Csv => {
                // A fresh start reads the header row first; a resumed one reads it aside, then
                // starts where it stopped (its next line is line + 1).
                let headers = match byte {
                    0 => None,
                    _ => Some(header_row(&mut csv_reader(Box::new(File::open(path).map_err(failed)?)))?),
                };
                file.seek(SeekFrom::Start(byte)).map_err(failed)?;
                let input = Box::new(BufReader::with_capacity(1 << 20, file));
                let reader = csv_source(input, fields, headers, byte, line + 1)?;
                return Ok(FileSource::at_csv_start(reader, total_bytes));
            }
        };
        Ok(FileSource { reader, byte, line, total_bytes })
    }

    /// Reads standard input.
    pub fn stdin(format: Format, fields: &'static [Field]) -> Result<Self, String> {
        let input: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()));
        let reader = match format {
            Format::Ndjson => Reader::Lines(input),
            Format::Json => {
                let mut bytes = Vec::new();
                let mut input = input;
                input.read_to_end(&mut bytes).map_err(|e| format!("cannot read standard input: {e}"))?;
                Reader::Array(array(&bytes)?.into_iter())
            }
            Format::Csv => return Ok(FileSource::at_csv_start(csv_source(input, fields, None, 0, 1)?, None)),
        };
        Ok(FileSource { reader, byte: 0, line: 0, total_bytes: None })
    }

    /// A CSV source where its reader stands: past the header row, or where a resumed import went on.
    fn at_csv_start(reader: Reader, total_bytes: Option<u64>) -> FileSource {
        let Reader::Csv { reader: csv, base_byte, base_line, .. } = &reader else {
            unreachable!("only CSV readers are placed by their position")
        };
        let next = csv.position();
        let (byte, line) = (base_byte + next.byte(), base_line + next.line() - 2);
        FileSource { reader, byte, line, total_bytes }
    }

    /// Up to `max` rows, or `None` at the end.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch>, String> {
        let mut rows = Vec::new();
        while rows.len() < max {
            match &mut self.reader {
                Reader::Lines(input) => {
                    let mut text = String::new();
                    let read =
                        input.read_line(&mut text).map_err(|e| format!("cannot read line {}: {e}", self.line + 1))?;
                    if read == 0 {
                        break;
                    }
                    self.byte += read as u64;
                    self.line += 1;
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let json = serde_json::from_str::<Json>(text).map_err(|e| format!("is not JSON: {e}"));
                    rows.push(SourceRow { json, line: self.line });
                }
                Reader::Array(items) => {
                    let Some(json) = items.next() else { break };
                    self.line += 1;
                    rows.push(SourceRow { json: Ok(json), line: self.line });
                }
                Reader::Csv { reader, headers, fields, base_byte, base_line } => {
                    let mut record = csv::StringRecord::new();
                    let read = reader.read_record(&mut record);
                    // After a row, the reader is at the start of the next one.
                    let next = reader.position();
                    self.byte = *base_byte + next.byte();
                    self.line = *base_line + next.line() - 2;
                    match read {
                        Ok(false) => break,
                        Ok(true) => {
                            let line = *base_line + record.position().map_or(next.line() - 1, |p| p.line()) - 1;
                            rows.push(SourceRow { json: Ok(csv_row(headers, &record, fields)), line });
                        }
                        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                            return Err(format!("cannot read line {}: {e}", self.line + 1));
                        }
                        // A malformed row is refused; the reader goes on after it.
                        Err(e) => {
                            let line = *base_line + e.position().map_or(next.line() - 1, |p| p.line()) - 1;
                            rows.push(SourceRow { json: Err(format!("is not a CSV row: {e}")), line });
                        }
                    }
                }
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { rows, end: Position::Offset { byte: self.byte, line: self.line } }))
    }
}

fn csv_reader(input: Box<dyn Read + Send>) -> csv::Reader<Box<dyn Read + Send>> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input)
}

/// A CSV reader over `input`, which starts at byte `base_byte` and line `base_line` of its source,
/// with the field names of `headers` (or, when they are not known yet, of the row it starts with).
fn csv_source(
    input: Box<dyn Read + Send>,
    fields: &'static [Field],
    headers: Option<Vec<String>>,
    base_byte: u64,
    base_line: u64,
) -> Result<Reader, String> {
    let mut reader = csv_reader(input);
    let headers = match headers {
        Some(headers) => headers,
        None => header_row(&mut reader)?,
    };
    Ok(Reader::Csv { reader, headers, fields, base_byte, base_line })
}

/// The field names of a CSV source's first row (none in an empty one).
fn header_row(reader: &mut csv::Reader<Box<dyn Read + Send>>) -> Result<Vec<String>, String> {
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(_) => Ok(record.iter().map(str::to_owned).collect()),
        Err(e) => Err(format!("the header row: {e}")),
    }
}

/// A JSON array of rows.
fn array(bytes: &[u8]) -> Result<Vec<Json>, String> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Array(rows)) => Ok(rows),
        Ok(_) => Err("a JSON file must hold one array of rows; use NDJSON for one row per line".to_owned()),
        Err(e) => Err(format!("is not JSON: {e}")),
    }
}

/// A CSV row as the JSON object it stands for: each cell read as its field's type says, an empty
/// cell left out (null).
fn csv_row(headers: &[String], record: &csv::StringRecord, fields: &[Field]) -> Json {
    let mut object = Map::new();
    for (name, cell) in headers.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        let ty = fields.iter().find(|f| f.name == name).map(|f| f.ty);
        object.insert(name.clone(), typed(ty, cell));
    }
    Json::Object(object)
}

/// A text cell as the JSON value its field's type reads; a cell that does not read as that type
/// stays text, so that validation refuses it with the field's own message.
fn typed(ty: Option<FieldType>, text: &str) -> Json {
    let parsed = || serde_json::from_str::<Json>(text).ok();
    let value = match ty {
        Some(FieldType::Number { .. } | FieldType::Integer { .. }) => parsed().filter(Json::is_number),
        Some(FieldType::Boolean) => match text.to_ascii_lowercase().as_str() {
            "true" => Some(Json::Bool(true)),
            "false" => Some(Json::Bool(false)),
            _ => None,
        },
        Some(FieldType::TextList) => parsed().filter(Json::is_array),
        Some(FieldType::Json { .. }) => parsed(),
        _ => None,
    };
    value.unwrap_or_else(|| Json::String(text.to_owned()))
}
