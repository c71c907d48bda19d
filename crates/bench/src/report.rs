//! The figures of a run, as JSON (to compare runs) and as a table (to read).

use serde::Serialize;

use crate::load::{LoadFigures, QueryFigures};
use crate::process::Machine;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub command: String,
    pub machine: Machine,
    pub dataset: DatasetFigures,
    pub raw: Option<RawFigures>,
    pub empty_handler: Option<Phase<LoadFigures>>,
    pub parley: Option<ParleyFigures>,
    pub peer: Result<PeerFigures, String>,
    pub ratios: Ratios,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetFigures {
    pub records: usize,
    pub projects: usize,
    pub sessions: usize,
    pub contacts: usize,
    pub seed: u64,
    pub arrival: crate::data::Arrival,
    pub ndjson_bytes: usize,
}

/// A measured phase with the machine's load when it began and the server's peak memory.
#[derive(Debug, Clone, Serialize)]
pub struct Phase<T> {
    pub load_average: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_peak_mb: Option<f64>,
    #[serde(flatten)]
    pub figures: T,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestFigures {
    pub records: usize,
    pub requests: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub errors: u64,
}

/// The engine without HTTP: the same durable writes, called in-process.
#[derive(Debug, Clone, Serialize)]
pub struct RawFigures {
    pub ingest: Phase<IngestFigures>,
    pub update_by_input: Phase<LoadFigures>,
    pub update_by_session: Phase<LoadFigures>,
    /// Writes per commit (one fsync each) over the update loads.
    pub writes_per_group: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParleyFigures {
    pub ingest: Phase<IngestFigures>,
    pub update_by_input: Phase<LoadFigures>,
    pub update_by_session: Phase<LoadFigures>,
    pub list_queries: Vec<QueryFigures>,
    /// OData queries on `/v2.4/Analytics`, or why there are none.
    pub odata_queries: Result<Vec<QueryFigures>, String>,
    /// Conversation messages, when the run asked for them (`--messages-per-input`).
    pub conversations: Option<ConversationFigures>,
}

/// Message ingest and the reads of the conversations index.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationFigures {
    /// The ingest of messages; `records` counts messages here.
    pub ingest: Phase<IngestFigures>,
    pub queries: Vec<QueryFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerFigures {
    pub version: String,
    pub load_seconds: f64,
    pub update_by_key: Phase<LoadFigures>,
    pub odata_queries: Vec<QueryFigures>,
}

/// Throughput ratios of parley's update by input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    /// parley / empty HTTP handler.
    pub parley_to_http_ceiling: Option<f64>,
    /// parley / raw engine.
    pub parley_to_raw_engine: Option<f64>,
    /// parley / SAP CAP.
    pub parley_to_peer: Option<f64>,
    /// parley ingest / raw engine ingest.
    pub ingest_to_raw_engine: Option<f64>,
}

fn load_row(name: &str, phase: &Phase<LoadFigures>) -> String {
    let f = &phase.figures;
    let errors: u64 = f.errors.values().sum();
    format!(
        "| {name} | {:.0}/s | {:.2} | {:.2} | {:.2} | {errors} | {} | {:.2} |",
        f.per_second,
        f.latency_ms.p50,
        f.latency_ms.p99,
        f.latency_ms.p999,
        phase.rss_peak_mb.map_or_else(|| "–".to_owned(), |mb| format!("{mb:.0} MB")),
        phase.load_average
    )
}

fn query_rows(out: &mut String, target: &str, queries: &[QueryFigures]) {
    for q in queries {
        out.push_str(&format!(
            "| {target} | {} | {:.2} | {:.2} | {:.2} | {} |\n",
            q.name, q.latency_ms.p50, q.latency_ms.p99, q.latency_ms.mean, q.errors
        ));
    }
}

impl Results {
    /// The figures as Markdown tables.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        out.push_str(&format!(
            "Machine: {} CPUs ({}), {} MB, Linux {}; 8 KiB write + fsync {}. Data: {} records, {} projects, {} sessions, {} contacts, ingested {}.\n\n",
            m.cpus,
            m.cpu_model,
            m.memory_mb,
            m.kernel,
            m.fsync_ms
                .as_ref()
                .map_or_else(|| "not measured".to_owned(), |f| format!("p50 {:.2} ms, p99 {:.2} ms", f.p50, f.p99)),
            self.dataset.records,
            self.dataset.projects,
            self.dataset.sessions,
            self.dataset.contacts,
            match self.dataset.arrival {
                crate::data::Arrival::Time => "in time order",
                crate::data::Arrival::Session => "session by session",
            }
        ));
        out.push_str("| ingest (NDJSON) | records/s | requests | seconds | errors | server RSS peak | load avg |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        let ingest_row = |name: &str, p: &Phase<IngestFigures>| {
            format!(
                "| {name} | {:.0} | {} × {} | {:.2} | {} | {} | {:.2} |\n",
                p.figures.per_second,
                p.figures.requests,
                p.figures.batch,
                p.figures.seconds,
                p.figures.errors,
                p.rss_peak_mb.map_or_else(|| "–".to_owned(), |mb| format!("{mb:.0} MB")),
                p.load_average
            )
        };
        if let Some(parley) = &self.parley {
            out.push_str(&ingest_row("parley over HTTP", &parley.ingest));
        }
        if let Some(conversations) = self.parley.as_ref().and_then(|p| p.conversations.as_ref()) {
            out.push_str(&ingest_row("parley messages over HTTP (messages/s)", &conversations.ingest));
        }
        if let Some(raw) = &self.raw {
            out.push_str(&ingest_row("raw engine (no HTTP)", &raw.ingest));
        }
        out.push_str("\n| updates | throughput | p50 ms | p99 ms | p99.9 ms | errors | server RSS peak | load avg |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        if let Some(parley) = &self.parley {
            out.push_str(&load_row("parley PATCH by inputId", &parley.update_by_input));
            out.push('\n');
            out.push_str(&load_row("parley PATCH by session", &parley.update_by_session));
            out.push('\n');
        }
        if let Some(raw) = &self.raw {
            out.push_str(&load_row("raw engine, by inputId", &raw.update_by_input));
            out.push('\n');
            out.push_str(&load_row("raw engine, by session", &raw.update_by_session));
            out.push('\n');
        }
        if let Some(empty) = &self.empty_handler {
            out.push_str(&load_row("empty HTTP handler (204)", empty));
            out.push('\n');
        }
        if let Ok(peer) = &self.peer {
            out.push_str(&load_row("SAP CAP PATCH by key", &peer.update_by_key));
            out.push('\n');
        }
        if let Some(raw) = &self.raw {
            out.push_str(&format!("\nRaw engine: {:.1} writes per commit (one fsync each).\n", raw.writes_per_group));
        }
        out.push_str(
            "\n| reads | query | p50 ms | p99 ms | mean ms | errors |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        if let Some(parley) = &self.parley {
            query_rows(&mut out, "parley list", &parley.list_queries);
            match &parley.odata_queries {
                Ok(queries) => query_rows(&mut out, "parley OData", queries),
                Err(note) => out.push_str(&format!("| parley OData | skipped: {note} | | | | |\n")),
            }
            if let Some(conversations) = &parley.conversations {
                query_rows(&mut out, "parley conversations", &conversations.queries);
            }
        }
        match &self.peer {
            Ok(peer) => query_rows(&mut out, "SAP CAP OData", &peer.odata_queries),
            Err(note) => out.push_str(&format!("\nPeer skipped: {note}\n")),
        }
        let r = &self.ratios;
        let ratio = |x: Option<f64>, unit: &str| x.map_or_else(|| "–".to_owned(), |x| format!("{x:.2}{unit}"));
        out.push_str(&format!(
            "\nRatios (PATCH by inputId throughput): parley/HTTP ceiling {}, parley/raw engine {}, parley/peer {}; ingest parley/raw engine {}.\n",
            ratio(r.parley_to_http_ceiling, ""),
            ratio(r.parley_to_raw_engine, ""),
            ratio(r.parley_to_peer, "×"),
            ratio(r.ingest_to_raw_engine, ""),
        ));
        out
    }
}
