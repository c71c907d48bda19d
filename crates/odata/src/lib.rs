//! OData v4 query options turned into a typed query tree, checked against an entity model.
//! Pure: no SQL, no HTTP. The store compiles the tree to SQL; the server reads the options from
//! the request and writes the answer.
//!
//! - [`model`]: entity types (name, key, properties with exact Edm types, table).
//! - [`parse_query`]: `$filter`, `$select`, `$orderby`, `$top`, `$skip`, `$count`, `$apply`,
//!   `$format` and `$skiptoken` into one [`Query`]; every error carries the option and the byte
//!   offset of the fault.
//! - [`csdl`]: the `$metadata` document.
//! - [`skiptoken`]: keyset continuation tokens.

pub mod cast;
pub mod csdl;
mod error;
mod lexer;
pub mod model;
mod options;
mod parser;
pub mod search;
pub mod skiptoken;
mod tree;

pub use error::ParseError;
pub use lexer::parse_date_time;
pub use model::{EdmType, EntityType, IdName, Property};
pub use options::{parse_query, system_option};
pub use parser::{FUNCTION_NAMES, MAX_DEPTH, MAX_LITERALS};
pub use tree::{
    Aggregate, Aggregation, Arith, ArithOp, Branch, CompareOp, Computed, Expr, Format, Function, Lambda, Method,
    Operand, OrderKey, Query, Step, conjoin,
};
