//! parley's domain: the analytics record and its fields, ids, validation of what clients send,
//! projects and their settings, callers and roles, and the domain error. Nothing here knows HTTP
//! or SQL.

pub mod error;
pub mod field;
pub mod id;
pub mod identity;
pub mod name;
pub mod project;
pub mod query;
pub mod record;
pub mod task;
pub mod update;
pub mod value;

pub use error::{Cause, Error, Result};
pub use field::{Field, FieldIndex, FieldType, RECORD_FIELDS, field_index};
pub use id::ObjectId;
pub use identity::{Caller, OrgRole, ProjectAccess, ProjectRole};
pub use project::{Project, ProjectProfile, ProjectSettings};
pub use query::{Cursor, ListParams, PageStart, RecordFilter, RecordPage, RecordQuery, SortKey};
pub use record::{NewRecord, Record};
pub use task::{Erasure, Task, TaskStatus};
pub use update::RecordUpdate;
pub use value::Value;
