//! `parley import`: rows of a collection from files, standard input or an OData feed, through the
//! same validation, stamping and masking as the HTTP ingest ([`crate::ingest`]), in batches that
//! are each stored whole. A refused row is reported with its line and reason, and the rest go in
//! (`--strict` stops at the first instead). After every stored batch a checkpoint says how far the
//! source was read, so that the same command, run again after an interruption, goes on from there.

use std::collections::HashMap;
use std::path::PathBuf;

use parley_core::{
    Caller, NewEscalation, NewGoalEvent, NewMessage, NewRecord, NewStep, ObjectId, OrgRole, Project, ProjectAccess,
};
use parley_store::{IngestCounts, Store};
use serde_json::Value as Json;

use super::checkpoint::{Checkpoints, Position};
use super::feed::Feed;
use super::progress::Progress;
use super::source::{Batch, FileSource, Format, SourceRow};
use super::{Collection, Interrupt, OpsResult};
use crate::ingest::{NewRow, Stored, store_prepared};

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub collection: Collection,
    /// Files to read in turn; `-` (or none, without a feed) is standard input.
    pub files: Vec<PathBuf>,
    /// How the files hold rows; by default from each file's extension, NDJSON on standard input.
    pub format: Option<Format>,
    /// An OData service root or entity set to read instead of files.
    pub from_odata: Option<String>,
    pub apikey: Option<String>,
    /// Every row goes to this project, whatever it names.
    pub project: Option<ObjectId>,
    /// Stop at the first refused row.
    pub strict: bool,
    /// Rows per stored batch (and per page of a feed).
    pub batch: usize,
    /// Start over, forgetting where an earlier run stopped.
    pub restart: bool,
    /// Where checkpoints are kept.
    pub state_dir: PathBuf,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportSummary {
    pub read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub updated: u64,
    pub dropped: u64,
    pub refused: u64,
    /// Stopped by Ctrl-C (or SIGTERM) between two batches.
    pub interrupted: bool,
    pub seconds: f64,
}

impl ImportSummary {
    fn add(&mut self, stored: Stored) {
        let IngestCounts { inserted, duplicates, updated, .. } = stored.counts;
        self.inserted += inserted;
        self.duplicates += duplicates;
        self.updated += updated;
        self.dropped += stored.dropped;
    }
}

/// The refused rows printed at most; the rest are counted.
const SHOWN_REFUSALS: u64 = 1000;

/// Where rows come from, read a batch ahead of the one being stored (a file on a thread of its
/// own, a feed in a task), so that reading and parsing the next batch overlaps storing this one.
struct Reader {
    batches: tokio::sync::mpsc::Receiver<OpsResult<Batch>>,
    /// What progress is measured against: a file's bytes, or the entities a feed counts.
    total: Option<u64>,
    /// A file's progress is its bytes; a feed's, its rows.
    by_bytes: bool,
    /// The byte the last batch received ends at.
    byte: u64,
}

/// Batches read ahead of the one being stored: one is enough to keep the store busy, and each
/// holds its rows parsed.
const READ_AHEAD: usize = 1;

impl Reader {
    fn file(mut source: FileSource, batch: usize) -> Reader {
        let total = source.total_bytes;
        let (sender, batches) = tokio::sync::mpsc::channel(READ_AHEAD);
        std::thread::spawn(move || {
            // Until the end, a failure, or the receiver gone (the import stopped).
            while let Some(next) = source.next_batch(batch).transpose() {
                let failed = next.is_err();
                if sender.blocking_send(next).is_err() || failed {
                    return;
                }
            }
        });
        Reader { batches, total, by_bytes: total.is_some(), byte: 0 }
    }

    fn feed(mut feed: Feed) -> Reader {
        let total = feed.total;
        let (sender, batches) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            while let Some(next) = feed.next_batch().await.transpose() {
                let failed = next.is_err();
                if sender.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        Reader { batches, total, by_bytes: false, byte: 0 }
    }

    async fn next_batch(&mut self) -> OpsResult<Option<Batch>> {
        let batch = self.batches.recv().await.transpose()?;
        if let Some(Batch { end: Position::Offset { byte, .. }, .. }) = &batch {
            self.byte = *byte;
        }
        Ok(batch)
    }

    /// How far the reading is, in the units of [`Reader::total`].
    fn done(&self, rows: u64) -> u64 {
        if self.by_bytes { self.byte } else { rows }
    }
}

/// Imports every source in turn into `organisation`'s projects.
pub async fn import(
    store: &dyn Store,
    organisation: ObjectId,
    options: &ImportOptions,
    interrupt: &Interrupt,
) -> OpsResult<ImportSummary> {
    let collection = options.collection;
    if !collection.importable() {
        return Err(format!(
            "{} are derived from the other collections; import those and parley makes them",
            collection.name()
        ));
    }
    let mut importer = Importer::new(store, organisation, options).await?;
    let mut summary = ImportSummary::default();
    let started = std::time::Instant::now();
    let sources: Vec<Option<PathBuf>> = match (&options.from_odata, options.files.as_slice()) {
        (Some(_), []) => vec![None],
        (Some(_), _) => return Err("give files or --from-odata, not both".into()),
        (None, []) => vec![Some(PathBuf::from("-"))],
        (None, files) => files.iter().cloned().map(Some).collect(),
    };
    for source in sources {
        let stop = importer.source(source, &mut summary, interrupt).await?;
        if stop {
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The state of one import: the projects it has looked up, and what it reports.
struct Importer<'a> {
    store: &'a dyn Store,
    options: &'a ImportOptions,
    /// The organisation's admin, as whom projects are looked up.
    caller: Caller,
    projects: HashMap<ObjectId, Option<Project>>,
}

impl<'a> Importer<'a> {
    async fn new(store: &'a dyn Store, organisation: ObjectId, options: &'a ImportOptions) -> OpsResult<Self> {
        let caller = Caller { user_id: ObjectId::generate(), organisation, org_roles: vec![OrgRole::Admin] };
        let mut importer = Importer { store, options, caller, projects: HashMap::new() };
        if let Some(id) = options.project
            && importer.project(id).await?.is_none()
        {
            return Err(format!("--project {id}: there is no such project in organisation {organisation}"));
        }
        Ok(importer)
    }

    async fn project(&mut self, id: ObjectId) -> OpsResult<Option<&Project>> {
        if !self.projects.contains_key(&id) {
            let found = self
                .store
                .project_for(&self.caller, id)
                .await
                .map_err(|e| format!("cannot read project {id}: {e}"))?
                .filter(|(_, access)| *access >= ProjectAccess::Write)
                .map(|(project, _)| project);
            self.projects.insert(id, found);
        }
        Ok(self.projects[&id].as_ref())
    }

    /// Imports one source (`None`: the feed); answers whether the import stops here.
    async fn source(
        &mut self,
        path: Option<PathBuf>,
        summary: &mut ImportSummary,
        interrupt: &Interrupt,
    ) -> OpsResult<bool> {
        let options = self.options;
        let collection = options.collection;
        let stdin = path.as_deref().is_some_and(|p| p.as_os_str() == "-");
        let label = match (&path, &options.from_odata) {
            (Some(_), _) if stdin => "standard input".to_owned(),
            (Some(path), _) => path.display().to_string(),
            (None, Some(url)) => url.split('?').next().unwrap_or_default().to_owned(),
            (None, None) => unreachable!("a source is a file or a feed"),
        };
        // How a refused row is named: `file:line`, or the feed's entity by its number.
        let at = if path.is_some() { format!("{label}:") } else { format!("{label}, entity ") };
        // A checkpoint is kept per source and collection; standard input cannot be read twice.
        let checkpoints = match &path {
            Some(_) if stdin => None,
            Some(path) => {
                let absolute =
                    std::fs::canonicalize(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let identity = format!("{} from {}", collection.name(), absolute.display());
                Some(Checkpoints::new(&options.state_dir, identity))
            }
            None => Some(Checkpoints::new(&options.state_dir, format!("{} from {label}", collection.name()))),
        };
        if let Some(checkpoints) = &checkpoints
            && options.restart
        {
            checkpoints.clear()?;
        }
        let resumed = match &checkpoints {
            Some(checkpoints) => checkpoints.load()?,
            None => None,
        };
        if let Some(resumed) = &resumed {
            eprintln!(
                "{label}: going on where an earlier import stopped, after {} rows (--restart starts over)",
                resumed.rows
            );
        }
        let from = resumed.as_ref().map(|c| &c.position);
        let mut reader = match &path {
            Some(_) if stdin => Reader::file(
                FileSource::stdin(options.format.unwrap_or(Format::Ndjson), collection.fields())?,
                options.batch,
            ),
            Some(path) => {
                let format = options.format.or_else(|| Format::of_path(path)).ok_or_else(|| {
                    format!("{}: name the format with --format (ndjson, json or csv)", path.display())
                })?;
                Reader::file(FileSource::open(path, format, collection.fields(), from)?, options.batch)
            }
            None => Reader::feed(
                Feed::open(
                    options.from_odata.as_deref().unwrap_or_default(),
                    options.apikey.clone(),
                    collection,
                    options.batch as u64,
                    from,
                )
                .await?,
            ),
        };
        let mut read = resumed.as_ref().map_or(0, |c| c.rows);
        let mut progress = Progress::new(format!("importing {label}"), reader.total);
        loop {
            if interrupt.raised() {
                progress.finish();
                summary.interrupted = true;
                return Ok(true);
            }
            let Some(batch) = reader.next_batch().await? else { break };
            let rows = batch.rows.len() as u64;
            let outcome = self.store_batch(batch.rows, (&label, &at), summary, &progress).await;
            let stop = match outcome {
                Ok(stop) => stop,
                Err(e) => {
                    progress.finish();
                    return Err(e);
                }
            };
            if stop {
                progress.finish();
                return Err(format!(
                    "{label}: stopped at the first refused row (--strict); the batches before it are stored, and \
                     the same command goes on from the batch that holds it"
                ));
            }
            read += rows;
            summary.read += rows;
            if let Some(checkpoints) = &checkpoints {
                checkpoints.save(&batch.end, read)?;
            }
            progress.advance(rows, reader.done(read));
        }
        progress.finish();
        if let Some(checkpoints) = &checkpoints {
            checkpoints.clear()?;
        }
        Ok(false)
    }

    /// Validates and stores one batch; answers whether a refused row stops the import.
    async fn store_batch(
        &mut self,
        rows: Vec<SourceRow>,
        label: (&str, &str),
        summary: &mut ImportSummary,
        progress: &Progress,
    ) -> OpsResult<bool> {
        match self.options.collection {
            Collection::Records => self.store_typed::<NewRecord>(rows, label, summary, progress).await,
            Collection::Messages => self.store_typed::<NewMessage>(rows, label, summary, progress).await,
            Collection::Steps => self.store_typed::<NewStep>(rows, label, summary, progress).await,
            Collection::Escalations => self.store_typed::<NewEscalation>(rows, label, summary, progress).await,
            Collection::GoalEvents => self.store_typed::<NewGoalEvent>(rows, label, summary, progress).await,
            Collection::Sessions => unreachable!("sessions are refused before reading"),
        }
    }

    async fn store_typed<R: NewRow>(
        &mut self,
        rows: Vec<SourceRow>,
        (label, at): (&str, &str),
        summary: &mut ImportSummary,
        progress: &Progress,
    ) -> OpsResult<bool> {
        let strict = self.options.strict;
        let refuse = |summary: &mut ImportSummary, line: u64, reason: &str| {
            summary.refused += 1;
            if summary.refused <= SHOWN_REFUSALS {
                let reason = reason.strip_prefix("Validation failed. ").unwrap_or(reason);
                progress.println(&format!("{at}{line}: refused: {reason}"));
            } else if summary.refused == SHOWN_REFUSALS + 1 {
                progress.println("more rows refused; the summary counts them");
            }
        };
        let mut valid: Vec<(u64, R)> = Vec::with_capacity(rows.len());
        let mut projects: HashMap<ObjectId, Project> = HashMap::new();
        for SourceRow { json, line } in rows {
            let json = match (json, self.options.project) {
                (Ok(Json::Object(mut object)), Some(project)) => {
                    object.insert("projectId".into(), Json::String(project.to_string()));
                    Ok(Json::Object(object))
                }
                (json, _) => json,
            };
            // Valid, and of a project of the organisation, or refused with the reason.
            let checked = match json.and_then(|json| R::parse(json).map_err(|e| e.to_string())) {
                Ok(row) => match self.project(row.project_id()).await? {
                    Some(project) => {
                        projects.entry(project.id).or_insert_with(|| project.clone());
                        Ok(row)
                    }
                    None => Err(format!("'projectId' {} is not a project of this organisation", row.project_id())),
                },
                Err(reason) => Err(reason),
            };
            match checked {
                Ok(row) => valid.push((line, row)),
                Err(reason) => {
                    refuse(summary, line, &reason);
                    if strict {
                        return Ok(true);
                    }
                }
            }
        }
        // A row that what is stored refuses (a goal event naming no goal) is reported and left
        // out, and the rest of the batch stored.
        let (mut lines, mut batch): (Vec<u64>, Vec<R>) = valid.into_iter().unzip();
        while let Err((index, e)) = R::prepare(self.store, &mut batch).await {
            refuse(summary, lines[index], &e.to_string());
            if strict {
                return Ok(true);
            }
            lines.remove(index);
            batch.remove(index);
        }
        if !batch.is_empty() {
            let stored = store_prepared(self.store, &projects, batch)
                .await
                .map_err(|e| format!("{label}: cannot store rows: {e}"))?;
            summary.add(stored);
        }
        Ok(false)
    }
}
