//! A stored row of a collection described by a field catalogue (messages, executed steps): one
//! value per field, in catalogue order. The collection's own module validates and stamps it; what
//! every such row offers is written here once.

use std::fmt::Debug;
use std::marker::PhantomData;

use serde_json::{Map, Value as Json};

use crate::ObjectId;
use crate::field::{Field, FieldIndex};
use crate::value::Value;

/// A collection's catalogue and the positions every row of it has.
pub trait Catalogue: Debug + Clone + PartialEq + 'static {
    const FIELDS: &'static [Field];
    const PROJECT_ID: FieldIndex;
    const SESSION_ID: FieldIndex;
}

/// A validated, stamped row of the collection `C`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<C: Catalogue> {
    values: Vec<Value>,
    collection: PhantomData<C>,
}

impl<C: Catalogue> Row<C> {
    /// Builds a row from values in catalogue order; the engines use this when reading rows, and
    /// the collection's module when it has validated and stamped them.
    pub fn from_values(values: Vec<Value>) -> Self {
        debug_assert_eq!(values.len(), C::FIELDS.len());
        Row { values, collection: PhantomData }
    }

    pub fn get(&self, index: FieldIndex) -> &Value {
        &self.values[index]
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    pub fn project_id(&self) -> ObjectId {
        project_of::<C>(&self.values)
    }

    pub fn session_id(&self) -> &str {
        self.values[C::SESSION_ID].as_text().unwrap_or_default()
    }

    /// The row as a JSON object, every field present, in catalogue order.
    pub fn to_json(&self) -> Map<String, Json> {
        C::FIELDS.iter().zip(&self.values).map(|(field, value)| (field.name.to_owned(), value.to_json())).collect()
    }
}

/// The project of validated values of `C`.
pub(crate) fn project_of<C: Catalogue>(values: &[Value]) -> ObjectId {
    values[C::PROJECT_ID]
        .as_text()
        .and_then(|t| ObjectId::parse(t).ok())
        .unwrap_or_else(|| unreachable!("rows are only built from validated values, whose projectId is an id"))
}
