//! The typed query tree. Every name in it is resolved to a property of the entity type or an
//! aggregate of `$apply`, and every expression is type-checked; the store compiles it to SQL.

use parley_core::Value;
use parley_core::field::FieldType;

use crate::cast::{Kind, Target};
use crate::model::EntityType;

/// Something a row has: a property of the entity type (by position), after `$apply` an
/// aggregate (by position in [`Aggregation::aggregates`]), or a property of `$compute` (by
/// position in [`Query::computed`]). After `concat(…)`, every row also has the position of the
/// sequence that made it ([`Operand::Branch`]), which orders rows but is never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    Property(usize),
    Aggregate(usize),
    Computed(usize),
    Branch,
}

/// One property of `$compute`: `expression as alias`, with the type of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    pub alias: String,
    pub expr: Expr,
    pub ty: FieldType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The functions of `$filter`, each computed by the engine on every row. Functions whose value
/// does not depend on a row (`now()`, `mindatetime()`, `maxdatetime()`) are read when the query
/// is parsed and become literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `contains(text, part)`: a predicate.
    Contains,
    StartsWith,
    EndsWith,
    /// `matchesPattern(text, pattern)`: a predicate; the pattern is a literal regular expression.
    MatchesPattern,
    /// `tolower(text)`: text. Both engines map ASCII letters only.
    ToLower,
    ToUpper,
    /// `length(text)`: the number of characters.
    Length,
    /// `indexof(text, part)`: the zero-based character position of `part`, or -1.
    IndexOf,
    /// `substring(text, start)` and `substring(text, start, length)`, zero-based; a negative
    /// start or length counts as zero.
    Substring,
    /// `trim(text)`: without leading and trailing spaces.
    Trim,
    /// `concat(a, b)`: text.
    Concat,
    /// `year(datetime)` and the others: whole numbers, in UTC.
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// `fractionalseconds(datetime)`: the part of the second after the whole seconds.
    FractionalSeconds,
    /// `totaloffsetminutes(datetime)`: 0, because every stored time is in UTC.
    TotalOffsetMinutes,
    /// `date(datetime)`: midnight UTC of the day.
    Date,
    /// `time(datetime)`: the time of day in UTC, as milliseconds since midnight.
    Time,
    /// `totalseconds(duration)`: a number.
    TotalSeconds,
    /// `round(number)`, half away from zero; `floor` and `ceiling`. Whole numbers stay as they are.
    Round,
    Floor,
    Ceiling,
}

/// The arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    /// `div`: whole-number division (truncating) for whole numbers, else division.
    Div,
    /// `divby`: division that always gives a number (OData 4.01).
    DivBy,
    /// `mod`: the remainder, with the sign of the dividend.
    Mod,
}

impl ArithOp {
    /// The operator as OData writes it.
    pub fn word(self) -> &'static str {
        match self {
            ArithOp::Add => "add",
            ArithOp::Sub => "sub",
            ArithOp::Mul => "mul",
            ArithOp::Div => "div",
            ArithOp::DivBy => "divby",
            ArithOp::Mod => "mod",
        }
    }
}

/// What an arithmetic operation works on, which says how each engine computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// Two whole numbers (or durations, which are whole milliseconds): exact; an overflow or a
    /// division by zero fails the query.
    Integer,
    /// Numbers (`Edm.Double`), at least one of them not whole; a result out of range or a
    /// division by zero fails the query.
    Number,
    /// A date-time plus or minus a duration: a date-time.
    Shift,
    /// A date-time minus a date-time: a duration.
    Between,
}

/// A type-checked expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: text, integer, number, boolean, date-time or null.
    Literal(Value),
    Column(Operand),
    Not(Box<Expr>),
    /// Conjunction of two or more predicates.
    And(Vec<Expr>),
    /// Disjunction of two or more predicates.
    Or(Vec<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    /// `operand in (literals…)`; a null in the list matches null.
    In(Box<Expr>, Vec<Value>),
    Call(Function, Vec<Expr>),
    /// `left op right`; durations are whole milliseconds.
    Arith(ArithOp, Arith, Box<Expr>, Box<Expr>),
    /// `list/any(x: condition)`: some element of a collection property fulfils the condition;
    /// `list/any()`: the collection has an element.
    Any(Operand, Option<Lambda>),
    /// `list/all(x: condition)`: every element fulfils it (true of an empty collection).
    All(Operand, Lambda),
    /// The element the variable of the lambda at this depth stands for (text): 0 is the
    /// outermost lambda's, 1 that of a lambda inside it, and so on.
    Element(usize),
    /// `list/$count`: how many elements a collection property holds (0 when absent).
    Count(Operand),
    /// `cast(value, Edm.Type)` of a value of the kind given (the rules: [`crate::cast`]).
    Cast(Box<Expr>, Kind, Target),
    /// `case(condition: value, …)`: the value of the first condition that holds, or null.
    Case(Vec<(Expr, Expr)>),
}

/// The condition of `any` or `all`, over the elements of a collection property. It may use its
/// variable ([`Expr::Element`] of its depth), those of the lambdas around it, and the row's
/// properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    /// How many lambdas are around this one.
    pub depth: usize,
    pub condition: Box<Expr>,
}

/// How an aggregate is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sum,
    Min,
    Max,
    Average,
    CountDistinct,
    /// `$count as alias`: the number of rows in the group.
    Count,
}

/// One aggregate of `aggregate(…)`: `operand with method as alias` or `$count as alias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub alias: String,
    pub method: Method,
    /// What is aggregated: a property, or one of `compute(…)`; `None` for `$count`.
    pub operand: Option<Operand>,
    /// The type of the aggregate's values: sums and averages are numbers, counts whole numbers,
    /// minimum and maximum have the operand's type.
    pub ty: FieldType,
}

/// `groupby` and/or `aggregate` of `$apply`: rows become one row per group (one row in all
/// when there is no grouping).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    /// The grouping properties (of the entity or of `compute(…)`); empty for a bare
    /// `aggregate(…)`.
    pub group_by: Vec<Operand>,
    pub aggregates: Vec<Aggregate>,
}

/// A transformation of `$apply` that keeps some of the rows, applied after the grouping (or to
/// the entity's rows when there is none), in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Filter(Expr),
    /// `orderby(…)`: the order the following `top` and `skip` count in.
    Order(Vec<OrderKey>),
    Top(u64),
    Skip(u64),
    /// `topcount(n, x)`, or with `bottom` `bottomcount(n, x)`: the `n` rows with the highest
    /// (lowest) values of `x`.
    TopCount {
        count: u64,
        operand: Operand,
        bottom: bool,
    },
    /// `topsum(s, x)` / `bottomsum(s, x)`: the rows with the highest (lowest) values of `x`, as
    /// many as it takes for their sum to reach `s`; with `percent`, `toppercent(p, x)` /
    /// `bottompercent(p, x)`: to reach `p` percent of the sum over all rows. Rows without a
    /// value of `x` are left out.
    TopSum {
        threshold: f64,
        operand: Operand,
        bottom: bool,
        percent: bool,
    },
    /// `compute(…)` after the grouping: the properties of [`Query::computed`] at these positions.
    Compute(Vec<usize>),
}

/// One sequence of `concat(…)`: its filters of the rows, its grouping (with aggregates of its
/// own, numbered from 0), and the steps after it, its last filters included.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub filter: Option<Expr>,
    pub aggregation: Aggregation,
    pub steps: Vec<Step>,
    /// Where each of its aggregates is among the aggregates of the whole ([`Query::aggregation`]).
    pub aggregates: Vec<usize>,
}

impl Branch {
    /// The columns of the whole that rows of this sequence have.
    pub fn columns(&self) -> Vec<Operand> {
        self.aggregation
            .group_by
            .iter()
            .copied()
            .chain(self.aggregates.iter().map(|&a| Operand::Aggregate(a)))
            .collect()
    }
}

/// The positions in [`Query::computed`] that the `compute(…)` steps among `steps` compute.
pub(crate) fn computed_by(steps: &[Step]) -> Vec<usize> {
    steps
        .iter()
        .filter_map(|step| match step {
            Step::Compute(positions) => Some(positions.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The conjunction of conditions (nested conjunctions spliced in); none when there are none.
pub fn conjoin(conditions: Vec<Expr>) -> Option<Expr> {
    let mut flat = Vec::new();
    for condition in conditions {
        match condition {
            Expr::And(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(Expr::And(flat)),
    }
}

/// One key of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderKey {
    pub operand: Operand,
    pub descending: bool,
}

/// The representation asked for with `$format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// Every query option of a request, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The properties of `compute(…)` and `$compute`, which the other options may name. Those
    /// a [`Step::Compute`] names are computed on the aggregated rows, the others on the set's.
    pub computed: Vec<Computed>,
    /// `$search`: which rows' text holds what (with the filter, on the entity's rows).
    pub search: Option<crate::search::Search>,
    /// On the entity's rows: `$filter` and `$apply`'s `filter(…)` steps (those before the
    /// aggregation, when there is one).
    pub filter: Option<Expr>,
    /// The aggregation; after `concat(…)`, the columns of all its sequences together (the
    /// grouping properties of each, and their aggregates).
    pub aggregation: Option<Aggregation>,
    /// The sequences of `concat(…)`, whose rows follow each other; empty without it.
    pub branches: Vec<Branch>,
    /// Steps of `$apply` on the set's rows before the aggregation (`top(100)/groupby(…)`);
    /// without an aggregation every step is in [`Query::steps`].
    pub row_steps: Vec<Step>,
    /// The steps of `$apply` after the aggregation up to the last that is not a filter.
    pub steps: Vec<Step>,
    /// On the aggregated rows (after the steps): `$filter` and the `filter(…)` steps that come
    /// last.
    pub output_filter: Option<Expr>,
    /// The columns of the answer, in order.
    pub select: Vec<Operand>,
    /// Whether `$select` chose them (the context URL then names them).
    pub selected: bool,
    /// The order of the answer. It is total: after the keys of `$orderby` come the key property
    /// or, after a grouping, the grouping properties.
    pub order: Vec<OrderKey>,
    pub top: Option<u64>,
    pub skip: u64,
    pub count: bool,
    pub format: Format,
    /// Where a continuation (`$skiptoken`) starts: the order keys' values of the last row sent.
    pub after: Option<Vec<Value>>,
}

impl Query {
    /// The name an operand has in answers.
    pub fn name<'a>(&'a self, entity: &'a EntityType, operand: Operand) -> &'a str {
        match operand {
            Operand::Property(p) => &entity.properties[p].name,
            Operand::Aggregate(a) => self.aggregation.as_ref().map_or("", |g| &g.aggregates[a].alias),
            Operand::Computed(c) => &self.computed[c].alias,
            Operand::Branch => "$branch",
        }
    }

    /// The type of an operand's values.
    pub fn ty(&self, entity: &EntityType, operand: Operand) -> FieldType {
        match operand {
            Operand::Property(p) => entity.properties[p].ty,
            Operand::Aggregate(a) => self.aggregation.as_ref().map_or(FieldType::Boolean, |g| g.aggregates[a].ty),
            Operand::Computed(c) => self.computed[c].ty,
            Operand::Branch => FieldType::Integer { min: 0 },
        }
    }

    /// The positions in [`Query::computed`] of the properties computed after the grouping.
    pub fn computed_after(&self) -> Vec<usize> {
        computed_by(&self.steps)
    }

    /// The properties computed on the set's rows: those before the ones computed after the
    /// grouping, which always come last.
    pub fn computed_on_rows(&self) -> &[Computed] {
        &self.computed[..self.computed.len() - self.computed_after().len()]
    }

    /// Whether a row of the `sequence`-th sequence of `concat(…)` has `operand`: the grouping
    /// properties and aggregates of the other sequences are not its own (what is computed after
    /// `concat` is every row's).
    pub fn sequence_has(&self, sequence: usize, operand: Operand) -> bool {
        let (Some(whole), Some(branch)) = (&self.aggregation, self.branches.get(sequence)) else { return true };
        let of_the_whole = whole.group_by.contains(&operand) || matches!(operand, Operand::Aggregate(_));
        !of_the_whole || branch.columns().contains(&operand)
    }

    /// The columns of every row of the answer, before `$select`: the properties of the entity
    /// type, or the grouping properties and the aggregates.
    pub fn columns(&self, entity: &EntityType) -> Vec<Operand> {
        match &self.aggregation {
            None => (0..entity.properties.len())
                .map(Operand::Property)
                .chain((0..self.computed.len()).map(Operand::Computed))
                .collect(),
            Some(aggregation) => aggregation
                .group_by
                .iter()
                .copied()
                .chain((0..aggregation.aggregates.len()).map(Operand::Aggregate))
                .chain(self.computed_after().into_iter().map(Operand::Computed))
                .collect(),
        }
    }
}
