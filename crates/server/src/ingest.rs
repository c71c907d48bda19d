//! How new rows of a collection become stored rows: each is validated, checked against what is
//! stored, stamped and masked by its project's settings, and the batch is stored in one
//! transaction. The HTTP ingest routes, `parley import` and `parley demo` all go through here, so
//! that a row is accepted, completed and masked the same way whichever way it comes in.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use parley_core::goal::Goal;
use parley_core::{
    EscalationWrite, ExecutedStep, GoalEvent, Message, NewEscalation, NewGoalEvent, NewMessage, NewRecord, NewStep,
    ObjectId, Project, Record,
};
use parley_store::{IngestCounts, Store, StoreResult};
use serde_json::Value as Json;
use time::OffsetDateTime;

/// A row of a collection that arrives in batches.
pub trait NewRow: Sized + Send {
    /// The row as it is stored.
    type Stamped: Send;
    /// The collection's name in metrics and on the command line.
    const COLLECTION: &'static str;
    /// Whether the answer says how many existing rows the batch changed (`updated`).
    const UPDATES: bool = false;
    /// Validates one row.
    fn parse(json: Json) -> parley_core::Result<Self>;
    /// The project the row names.
    fn project_id(&self) -> ObjectId;
    /// Whether the project keeps rows of this collection (else they are dropped and counted).
    fn collected(project: &Project) -> bool;
    /// Completes the row for storage, masking what the project's settings say must not be stored.
    fn stamp(self, project: &Project, now: OffsetDateTime) -> Self::Stamped;
    /// Checks the rows against what is stored, and completes them from it, before they are
    /// stamped; a row refused answers its position in the batch and why. Most rows need nothing
    /// stored.
    fn prepare(
        _store: &dyn Store,
        _rows: &mut [Self],
    ) -> impl Future<Output = Result<(), (usize, parley_core::Error)>> + Send {
        async { Ok(()) }
    }
    /// Stores a batch of stamped rows in one transaction.
    fn insert(
        store: &dyn Store,
        rows: Vec<Self::Stamped>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<IngestCounts>> + Send;
}

/// What storing a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub counts: IngestCounts,
    /// Rows dropped because their project does not collect them.
    pub dropped: u64,
}

/// Why a batch was not stored.
#[derive(Debug)]
pub enum Refused {
    /// The row at this position of the batch, and why.
    Row(usize, parley_core::Error),
    Store(parley_store::StoreError),
}

/// Prepares, stamps and stores a batch of validated rows whose projects are all in `projects`
/// (the caller has checked that each may be written). Nothing is stored when a row is refused.
pub async fn store_rows<R: NewRow>(
    store: &dyn Store,
    projects: &HashMap<ObjectId, Project>,
    mut rows: Vec<R>,
) -> Result<Stored, Refused> {
    R::prepare(store, &mut rows).await.map_err(|(index, e)| Refused::Row(index, e))?;
    store_prepared(store, projects, rows).await.map_err(Refused::Store)
}

/// Stamps and stores rows that [`NewRow::prepare`] has passed, in one transaction.
pub async fn store_prepared<R: NewRow>(
    store: &dyn Store,
    projects: &HashMap<ObjectId, Project>,
    rows: Vec<R>,
) -> StoreResult<Stored> {
    let now = parley_core::value::now();
    let total = rows.len();
    let stamped: Vec<R::Stamped> = rows
        .into_iter()
        .filter_map(|row| {
            let project = &projects[&row.project_id()];
            R::collected(project).then(|| row.stamp(project, now))
        })
        .collect();
    let dropped = (total - stamped.len()) as u64;
    let counts = if stamped.is_empty() { IngestCounts::default() } else { R::insert(store, stamped, now).await? };
    Ok(Stored { counts, dropped })
}

impl NewRow for NewRecord {
    type Stamped = Record;
    const COLLECTION: &'static str = "records";

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewRecord::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewRecord::project_id(self)
    }

    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    fn stamp(self, project: &Project, now: OffsetDateTime) -> Record {
        NewRecord::stamp(self, project.organisation, &project.settings, now)
    }

    async fn insert(store: &dyn Store, rows: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts> {
        store.insert_records(rows, now).await
    }
}

impl NewRow for NewMessage {
    type Stamped = Message;
    const COLLECTION: &'static str = "messages";

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewMessage::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewMessage::project_id(self)
    }

    fn collected(project: &Project) -> bool {
        project.settings.collect_conversations
    }

    fn stamp(self, project: &Project, now: OffsetDateTime) -> Message {
        NewMessage::stamp(self, project, now)
    }

    async fn insert(store: &dyn Store, rows: Vec<Message>, _now: OffsetDateTime) -> StoreResult<IngestCounts> {
        store.insert_messages(rows).await
    }
}

impl NewRow for NewStep {
    type Stamped = ExecutedStep;
    const COLLECTION: &'static str = "steps";

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewStep::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewStep::project_id(self)
    }

    /// Steps are analytics: a project that collects none drops them.
    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    fn stamp(self, project: &Project, now: OffsetDateTime) -> ExecutedStep {
        NewStep::stamp(self, project, now)
    }

    async fn insert(store: &dyn Store, rows: Vec<ExecutedStep>, _now: OffsetDateTime) -> StoreResult<IngestCounts> {
        store.insert_steps(rows).await
    }
}

impl NewRow for NewEscalation {
    type Stamped = EscalationWrite;
    const COLLECTION: &'static str = "escalations";
    const UPDATES: bool = true;

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewEscalation::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewEscalation::project_id(self)
    }

    /// Escalations are analytics: a project that collects none drops them.
    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    fn stamp(self, project: &Project, now: OffsetDateTime) -> EscalationWrite {
        NewEscalation::stamp(self, project, now)
    }

    async fn insert(store: &dyn Store, rows: Vec<EscalationWrite>, _now: OffsetDateTime) -> StoreResult<IngestCounts> {
        store.insert_escalations(rows).await
    }
}

impl NewRow for NewGoalEvent {
    type Stamped = GoalEvent;
    const COLLECTION: &'static str = "goalevents";

    fn parse(json: Json) -> parley_core::Result<Self> {
        NewGoalEvent::parse(json)
    }

    fn project_id(&self) -> ObjectId {
        NewGoalEvent::project_id(self)
    }

    /// Goal events are analytics: a project that collects none drops them.
    fn collected(project: &Project) -> bool {
        project.settings.collect_analytics
    }

    /// Each event names a goal of its project and a step of that goal: it takes the step's type
    /// and, unless sent, the goal's version.
    async fn prepare(store: &dyn Store, rows: &mut [Self]) -> Result<(), (usize, parley_core::Error)> {
        let mut goals: HashMap<(ObjectId, ObjectId), Option<Goal>> = HashMap::new();
        for (index, row) in rows.iter_mut().enumerate() {
            let key = (row.project_id(), row.goal_id());
            if let Entry::Vacant(slot) = goals.entry(key) {
                slot.insert(store.goals(key.0, Some(key.1)).await.map_err(|e| (index, e.into()))?.pop());
            }
            row.record_under(goals[&key].as_ref()).map_err(|e| (index, e))?;
        }
        Ok(())
    }

    fn stamp(self, project: &Project, now: OffsetDateTime) -> GoalEvent {
        NewGoalEvent::stamp(self, project, now)
    }

    async fn insert(store: &dyn Store, rows: Vec<GoalEvent>, _now: OffsetDateTime) -> StoreResult<IngestCounts> {
        store.insert_goal_events(rows).await
    }
}
