//! `parley export`: a collection's rows, for one project or all, optionally between two times, as
//! NDJSON, CSV or Parquet. Rows are read through the OData query path in pages that continue by
//! keyset, and written as they come, so memory stays flat however many there are. A file is
//! written under a temporary name and appears whole, or not at all.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parley_core::{Caller, FieldType, ObjectId, OrgRole, Value};
use parley_odata::{EntityType, IdName, Query, parse_query};
use parley_store::{ODataRead, Store};
use parquet::data_type::{BoolType, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use super::progress::Progress;
use super::{Collection, Interrupt, OpsResult};
use crate::represent::csv_cell;

/// How an export writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, as `parley import` and the ingest API read them.
    Ndjson,
    /// A header row of field names, then one row per line, as the API's CSV.
    Csv,
    /// Apache Parquet, one column per field, Snappy-compressed.
    Parquet,
}

impl ExportFormat {
    /// The format a file's name says, if it says one.
    pub fn of_path(path: &Path) -> Option<ExportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
            "csv" => Some(ExportFormat::Csv),
            "parquet" => Some(ExportFormat::Parquet),
            _ => None,
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub collection: Collection,
    /// One project; by default every project of the organisation.
    pub project: Option<ObjectId>,
    /// Rows at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Rows before this time.
    pub to: Option<OffsetDateTime>,
    pub format: ExportFormat,
    /// The file to write; `None` or `-` is standard output (not for Parquet).
    pub output: Option<PathBuf>,
}

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportSummary {
    pub rows: u64,
    pub seconds: f64,
    pub interrupted: bool,
}

/// Rows read from the store per page.
const PAGE: u64 = 5000;
/// Rows per Parquet row group.
const ROW_GROUP: usize = 16_384;

/// Exports a collection of `organisation`.
pub async fn export(
    store: &dyn Store,
    organisation: ObjectId,
    options: &ExportOptions,
    interrupt: &Interrupt,
) -> OpsResult<ExportSummary> {
    let caller = Caller { user_id: ObjectId::generate(), organisation, org_roles: vec![OrgRole::Admin] };
    let projects = match options.project {
        Some(id) => {
            let found = store.project_for(&caller, id).await.map_err(|e| format!("cannot read project {id}: {e}"))?;
            if found.is_none() {
                return Err(format!("--project {id}: there is no such project in organisation {organisation}"));
            }
            vec![id]
        }
        None => store.visible_project_ids(&caller).await.map_err(|e| format!("cannot list the projects: {e}"))?,
    };
    let entities = EntityType::all(IdName::Id);
    let set = options.collection.entity_set();
    let entity = entities.iter().find(|e| e.set == set).ok_or_else(|| format!("no entity set {set}"))?;
    // The columns are those of every project's query.
    let first = query(entity, options, ObjectId::generate())?;
    let mut columns = first.select.clone();
    let shown = columns.len();
    for key in &first.order {
        if !columns.contains(&key.operand) {
            columns.push(key.operand);
        }
    }
    let names: Vec<&str> = columns[..shown].iter().map(|&c| first.name(entity, c)).collect();
    let types: Vec<FieldType> = columns[..shown].iter().map(|&c| first.ty(entity, c)).collect();

    let stdout = options.output.as_deref().is_none_or(|p| p.as_os_str() == "-");
    if stdout && options.format == ExportFormat::Parquet {
        return Err("Parquet is written to a file: name one with --output".into());
    }
    let target = Target::open(options.output.as_deref().filter(|_| !stdout))?;
    let mut writer = RowWriter::new(options.format, target.writer()?, &names, &types)?;
    let mut progress = Progress::new(format!("exporting {}", options.collection.name()), None);
    let started = std::time::Instant::now();
    let mut summary = ExportSummary::default();
    // Project by project: each read then follows one project's index, page after page.
    for project in projects {
        let mut query = query(entity, options, project)?;
        loop {
            if interrupt.raised() {
                progress.finish();
                target.abandon();
                summary.interrupted = true;
                return Ok(summary);
            }
            let read = ODataRead { entity, query: &query, projects: &[project], columns: &columns, limit: PAGE };
            let rows = store.odata_rows(read).await.map_err(|e| format!("cannot read {set}: {e}"))?;
            for row in &rows {
                writer.row(&row[..shown])?;
            }
            summary.rows += rows.len() as u64;
            progress.advance(rows.len() as u64, summary.rows);
            let Some(last) = rows.last().filter(|_| rows.len() as u64 == PAGE) else { break };
            let after = query
                .order
                .iter()
                .map(|key| last[columns.iter().position(|c| *c == key.operand).unwrap_or_default()].clone())
                .collect();
            query.after = Some(after);
        }
    }
    writer.finish()?;
    progress.finish();
    target.keep()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The query of one project's part of an export: the project and the time range as a filter;
/// in time order where the store keeps the collection by time, else in key order.
fn query(entity: &EntityType, options: &ExportOptions, project: ObjectId) -> OpsResult<Query> {
    let time = ["timestamp", "startedAt"].into_iter().find(|name| entity.property(name).is_some());
    let mut conditions = vec![format!("projectId eq '{project}'")];
    for (bound, operator) in [(options.from, "ge"), (options.to, "lt")] {
        if let Some(bound) = bound {
            let time = time.ok_or_else(|| format!("{} have no time to bound", options.collection.name()))?;
            conditions.push(format!("{time} {operator} {}", parley_core::value::format_time(bound)));
        }
    }
    let mut pairs = vec![("$filter".to_owned(), conditions.join(" and "))];
    if let Some(time) = time.filter(|_| options.collection.kept_by_time()) {
        pairs.push(("$orderby".to_owned(), format!("{time} asc")));
    }
    parse_query(entity, &pairs).map_err(|e| format!("cannot build the export's query: {e}"))
}

/// Where an export goes: standard output, or a file that appears only when it is whole.
struct Target {
    file: Option<(PathBuf, PathBuf)>,
}

impl Target {
    fn open(path: Option<&Path>) -> OpsResult<Target> {
        Ok(Target {
            file: path.map(|path| {
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                (path.to_owned(), PathBuf::from(partial))
            }),
        })
    }

    fn writer(&self) -> OpsResult<Box<dyn Write + Send>> {
        match &self.file {
            None => Ok(Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))),
            Some((path, partial)) => {
                let file = File::create(partial).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
            }
        }
    }

    /// The export is whole: the file takes its name.
    fn keep(&self) -> OpsResult<()> {
        if let Some((path, partial)) = &self.file {
            std::fs::rename(partial, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The export stopped: nothing of it is left.
    fn abandon(&self) {
        if let Some((_, partial)) = &self.file {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// Writes rows in one format.
enum RowWriter {
    Ndjson { out: Box<dyn Write + Send>, names: Vec<String> },
    Csv { out: csv::Writer<Box<dyn Write + Send>> },
    Parquet { file: SerializedFileWriter<Box<dyn Write + Send>>, types: Vec<FieldType>, buffered: Vec<Vec<Value>> },
}

impl RowWriter {
    fn new(format: ExportFormat, out: Box<dyn Write + Send>, names: &[&str], types: &[FieldType]) -> OpsResult<Self> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot write the export: {e}");
        Ok(match format {
            ExportFormat::Ndjson => RowWriter::Ndjson { out, names: names.iter().map(|n| (*n).to_owned()).collect() },
            ExportFormat::Csv => {
                let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
                out.write_record(names).map_err(|e| failed(&e))?;
                RowWriter::Csv { out }
            }
            ExportFormat::Parquet => {
                let schema = parquet::schema::parser::parse_message_type(&parquet_schema(names, types))
                    .map_err(|e| failed(&e))?;
                let properties =
                    WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
                let file =
                    SerializedFileWriter::new(out, Arc::new(schema), Arc::new(properties)).map_err(|e| failed(&e))?;
                RowWriter::Parquet { file, types: types.to_vec(), buffered: vec![Vec::new(); types.len()] }
            }
        })
    }

    fn row(&mut self, values: &[Value]) -> OpsResult<()> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot write the export: {e}");
        match self {
            RowWriter::Ndjson { out, names } => {
                let object: Map<String, Json> =
                    names.iter().zip(values).map(|(name, value)| (name.clone(), value.to_json())).collect();
                serde_json::to_writer(&mut *out, &object).map_err(|e| failed(&e))?;
                out.write_all(b"\n").map_err(|e| failed(&e))
            }
            RowWriter::Csv { out } => {
                out.write_record(values.iter().map(|v| csv_cell(&v.to_json()))).map_err(|e| failed(&e))
            }
            RowWriter::Parquet { buffered, .. } => {
                for (column, value) in buffered.iter_mut().zip(values) {
                    column.push(value.clone());
                }
                if buffered[0].len() >= ROW_GROUP {
                    self.flush_group()?;
                }
                Ok(())
            }
        }
    }

    /// Writes the buffered rows as one Parquet row group.
    fn flush_group(&mut self) -> OpsResult<()> {
        let RowWriter::Parquet { file, types, buffered } = self else { return Ok(()) };
        if buffered.first().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let failed = |e: parquet::errors::ParquetError| format!("cannot write the export: {e}");
        let mut group = file.next_row_group().map_err(failed)?;
        for (ty, values) in types.iter().zip(buffered.iter_mut()) {
            let Some(mut column) = group.next_column().map_err(failed)? else { break };
            let levels: Vec<i16> = values.iter().map(|v| i16::from(*v != Value::Null)).collect();
            let present = values.iter().filter(|v| **v != Value::Null);
            match parquet_type(*ty) {
                Physical::Text => {
                    write::<ByteArrayType>(&mut column, present, &levels, |v| text_of(v).into_bytes().into())
                }
                Physical::Millis => write::<Int64Type>(&mut column, present, &levels, |v| match v {
                    Value::Time(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
                    _ => 0,
                }),
                Physical::Integer => write::<Int64Type>(&mut column, present, &levels, |v| match v {
                    Value::Integer(i) => *i,
                    Value::Number(n) => *n as i64,
                    _ => 0,
                }),
                Physical::Double => write::<DoubleType>(&mut column, present, &levels, |v| match v {
                    Value::Number(n) => *n,
                    Value::Integer(i) => *i as f64,
                    _ => 0.0,
                }),
                Physical::Boolean => {
                    write::<BoolType>(&mut column, present, &levels, |v| matches!(v, Value::Bool(true)))
                }
            }
            .map_err(failed)?;
            column.close().map_err(failed)?;
            values.clear();
        }
        group.close().map_err(failed)?;
        Ok(())
    }

    fn finish(mut self) -> OpsResult<()> {
        self.flush_group()?;
        let failed = |e: &dyn std::fmt::Display| format!("cannot write the export: {e}");
        match self {
            RowWriter::Ndjson { mut out, .. } => out.flush().map_err(|e| failed(&e)),
            RowWriter::Csv { mut out } => out.flush().map_err(|e| failed(&e)),
            RowWriter::Parquet { file, .. } => {
                let mut out = file.into_inner().map_err(|e| failed(&e))?;
                out.flush().map_err(|e| failed(&e))
            }
        }
    }
}

/// Writes a column's present values, converted, with the definition levels that place its nulls.
fn write<'a, T: parquet::data_type::DataType>(
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    present: impl Iterator<Item = &'a Value>,
    levels: &[i16],
    convert: impl Fn(&Value) -> T::T,
) -> Result<(), parquet::errors::ParquetError> {
    let data: Vec<T::T> = present.map(convert).collect();
    column.typed::<T>().write_batch(&data, Some(levels), None).map(|_| ())
}

/// How a field's values are held in Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Physical {
    /// UTF-8 text; JSON values and lists as their JSON.
    Text,
    /// A UTC instant in milliseconds.
    Millis,
    Integer,
    Double,
    Boolean,
}

fn parquet_type(ty: FieldType) -> Physical {
    match ty {
        FieldType::DateTime => Physical::Millis,
        FieldType::Integer { .. } => Physical::Integer,
        FieldType::Number { .. } => Physical::Double,
        FieldType::Boolean => Physical::Boolean,
        FieldType::Id
        | FieldType::Text { .. }
        | FieldType::LongText { .. }
        | FieldType::Json { .. }
        | FieldType::TextList => Physical::Text,
    }
}

/// A value as Parquet text: text itself, anything else its JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        other => other.to_json().to_string(),
    }
}

/// The Parquet schema of the columns, every one optional (null where the row has none).
fn parquet_schema(names: &[&str], types: &[FieldType]) -> String {
    let columns: Vec<String> = names
        .iter()
        .zip(types)
        .map(|(name, ty)| {
            let (ty, annotation) = match parquet_type(*ty) {
                Physical::Text => ("BYTE_ARRAY", " (STRING)"),
                Physical::Millis => ("INT64", " (TIMESTAMP(MILLIS,true))"),
                Physical::Integer => ("INT64", ""),
                Physical::Double => ("DOUBLE", ""),
                Physical::Boolean => ("BOOLEAN", ""),
            };
            format!("OPTIONAL {ty} {name}{annotation};")
        })
        .collect();
    format!("message {} {{ {} }}", "row", columns.join(" "))
}
