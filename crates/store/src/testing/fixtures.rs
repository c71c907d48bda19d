use serde_json::{Value as Json, json};

/// A minimal valid record, as a client sends it for ingest.
pub fn record(project: &str, contact: &str, session: &str, input: &str) -> Json {
    json!({ "projectId": project, "contactId": contact, "sessionId": session, "inputId": input })
}
