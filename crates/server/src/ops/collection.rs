//! The collections the data commands move, by the names an operator types, with the field
//! catalogue and the OData entity set of each.

use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, Field, GOAL_EVENT_FIELDS, MESSAGE_FIELDS, RECORD_FIELDS, SESSION_FIELDS,
};

/// A collection of rows, as `--collection` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Collection {
    /// Analytics records (`/v2.0/analytics`, OData `Analytics`).
    Records,
    /// Conversation messages (OData `Conversations`).
    Messages,
    /// Executed steps (OData `ExecutedSteps`).
    Steps,
    /// Handovers to human agents (OData `LiveAgentEscalations`).
    Escalations,
    /// Goal events (OData `GoalEvents`).
    GoalEvents,
    /// Sessions, which parley derives from the others: exported, never imported.
    Sessions,
}

impl Collection {
    /// Every collection, in the order a full export writes them.
    pub const ALL: [Collection; 6] = [
        Collection::Records,
        Collection::Messages,
        Collection::Steps,
        Collection::Escalations,
        Collection::GoalEvents,
        Collection::Sessions,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Records => "records",
            Collection::Messages => "messages",
            Collection::Steps => "steps",
            Collection::Escalations => "escalations",
            Collection::GoalEvents => "goal-events",
            Collection::Sessions => "sessions",
        }
    }

    /// The OData entity set that serves it.
    pub fn entity_set(self) -> &'static str {
        match self {
            Collection::Records => "Analytics",
            Collection::Messages => "Conversations",
            Collection::Steps => "ExecutedSteps",
            Collection::Escalations => "LiveAgentEscalations",
            Collection::GoalEvents => "GoalEvents",
            Collection::Sessions => "Sessions",
        }
    }

    /// The collection an OData entity set serves, if it is one of these.
    pub fn of_entity_set(set: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.entity_set() == set)
    }

    /// Its fields, by wire name and type; the same names in JSON, CSV and OData.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Collection::Records => RECORD_FIELDS,
            Collection::Messages => MESSAGE_FIELDS,
            Collection::Steps => EXECUTED_STEP_FIELDS,
            Collection::Escalations => ESCALATION_FIELDS,
            Collection::GoalEvents => GOAL_EVENT_FIELDS,
            Collection::Sessions => SESSION_FIELDS,
        }
    }

    /// Whether the store keeps its rows by project and time (an index), so that an export reads
    /// them in time order a page at a time. Executed steps have no such index, and go out in the
    /// order of their ids.
    pub fn kept_by_time(self) -> bool {
        self != Collection::Steps
    }

    /// Whether rows of it can be imported (sessions are derived from the rest).
    pub fn importable(self) -> bool {
        self != Collection::Sessions
    }
}
