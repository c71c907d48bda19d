//! parley's domain: the analytics record, conversation messages, executed steps and sessions and their fields, ids, validation of what clients send,
//! projects and their settings, callers and roles, and the domain error. Nothing here knows HTTP
//! or SQL.

pub mod conversations;
pub mod error;
pub mod escalation;
pub mod field;
pub mod goal;
pub mod goal_event;
pub mod id;
pub mod identity;
pub mod insights;
pub mod message;
pub mod name;
pub mod project;
pub mod query;
pub mod record;
pub mod row;
pub mod session;
pub mod step;
pub mod suggest;
pub mod task;
pub mod update;
pub mod value;

pub use conversations::{ConversationPage, ConversationQuery, ConversationSummary};
pub use error::{Cause, Error, Result};
pub use escalation::{ESCALATION_FIELDS, Escalation, EscalationWrite, NewEscalation};
pub use field::{Field, FieldIndex, FieldType, RECORD_FIELDS, field_index};
pub use goal_event::{GOAL_CYCLE_FIELDS, GOAL_EVENT_FIELDS, GoalEvent, NewGoalEvent};
pub use id::ObjectId;
pub use identity::{Caller, OrgRole, ProjectAccess, ProjectRole};
pub use message::{MESSAGE_FIELDS, Message, NewMessage};
pub use project::{Project, ProjectProfile, ProjectSettings, RatingScale};
pub use query::{Cursor, ListParams, PageStart, RecordFilter, RecordPage, RecordQuery, SortKey};
pub use record::{NewRecord, Record};
pub use session::SESSION_FIELDS;
pub use step::{EXECUTED_STEP_FIELDS, ExecutedStep, NewStep, STEP_FIELDS};
pub use task::{Erasure, Task, TaskStatus};
pub use update::RecordUpdate;
pub use value::Value;
