//! Parsing and type-checking of expressions (`$filter`, `filter(…)` of `$apply`), of `$apply`,
//! `$orderby` and `$select`, over the tokens of [`crate::lexer`].

use parley_core::Value;
use parley_core::field::FieldType;
use time::OffsetDateTime;

use crate::cast::{self, Kind, Target};
use crate::error::ParseError;
use crate::lexer::{Tok, Token, parse_date_time, tokenize};
use crate::model::EntityType;
use crate::tree::{
    Aggregate, Aggregation, Arith, ArithOp, Branch, CompareOp, Computed, Expr, Function, Lambda, Method, Operand,
    OrderKey, Step, conjoin,
};

/// How deeply expressions may nest (parentheses, `not`, function arguments).
pub const MAX_DEPTH: usize = 64;
/// How many literals one option may hold; each becomes a bound parameter.
pub const MAX_LITERALS: usize = 2000;

/// What names refer to: the entity's properties, or after an aggregation, the grouping
/// properties and the aggregates.
#[derive(Debug, Clone)]
pub enum Scope<'a> {
    Entity(&'a EntityType),
    /// The entity's properties and those of `$compute` or `compute(…)` (names and types).
    Computed(&'a EntityType, Vec<(String, FieldType)>),
    /// After an aggregation: its grouping properties (among the entity's and the computed ones),
    /// its aggregates, and the properties computed after it (those from `computed_after` on).
    Output {
        entity: &'a EntityType,
        computed: Vec<(String, FieldType)>,
        aggregation: Aggregation,
        computed_after: usize,
    },
}

impl<'a> Scope<'a> {
    fn entity(&self) -> &'a EntityType {
        match self {
            Scope::Entity(entity) | Scope::Computed(entity, _) | Scope::Output { entity, .. } => entity,
        }
    }

    /// The operand a name refers to, with its type.
    fn resolve(&self, name: &str) -> std::result::Result<(Operand, FieldType), String> {
        let entity = self.entity();
        match self {
            Scope::Entity(_) => entity
                .property(name)
                .map(|p| (Operand::Property(p), entity.properties[p].ty))
                .ok_or_else(|| format!("'{name}' is not a property of {}", entity.name)),
            Scope::Computed(_, computed) => {
                if let Some(p) = entity.property(name) {
                    return Ok((Operand::Property(p), entity.properties[p].ty));
                }
                computed
                    .iter()
                    .position(|(alias, _)| alias == name)
                    .map(|c| (Operand::Computed(c), computed[c].1))
                    .ok_or_else(|| format!("'{name}' is not a property of {} nor of $compute", entity.name))
            }
            Scope::Output { computed, aggregation, computed_after, .. } => {
                let grouped = |operand: &Operand| aggregation.group_by.contains(operand);
                if let Some(p) = entity.property(name).filter(|&p| grouped(&Operand::Property(p))) {
                    return Ok((Operand::Property(p), entity.properties[p].ty));
                }
                let computed_at = computed.iter().position(|(alias, _)| alias == name);
                if let Some(c) = computed_at.filter(|&c| c >= *computed_after || grouped(&Operand::Computed(c))) {
                    return Ok((Operand::Computed(c), computed[c].1));
                }
                if let Some(a) = aggregation.aggregates.iter().position(|a| a.alias == name) {
                    return Ok((Operand::Aggregate(a), aggregation.aggregates[a].ty));
                }
                let available: Vec<&str> = aggregation
                    .group_by
                    .iter()
                    .map(|operand| match *operand {
                        Operand::Property(p) => entity.properties[p].name.as_str(),
                        Operand::Computed(c) => computed[c].0.as_str(),
                        Operand::Aggregate(_) | Operand::Branch => "",
                    })
                    .chain(aggregation.aggregates.iter().map(|a| a.alias.as_str()))
                    .chain(computed[*computed_after..].iter().map(|(alias, _)| alias.as_str()))
                    .collect();
                Err(format!(
                    "'{name}' is not in the result of $apply, which has {}",
                    if available.is_empty() { "no properties".to_owned() } else { available.join(", ") }
                ))
            }
        }
    }

    /// The rows of an aggregation, with the properties computed so far (all of them before it).
    fn output(&self, aggregation: Aggregation) -> Scope<'a> {
        let computed = self.computed();
        Scope::Output { entity: self.entity(), computed_after: computed.len(), computed, aggregation }
    }

    /// The same rows with more computed properties.
    fn with_computed(&self, more: &[Computed]) -> Scope<'a> {
        let mut computed = self.computed();
        computed.extend(more.iter().map(|c| (c.alias.clone(), c.ty)));
        match self {
            Scope::Output { entity, aggregation, computed_after, .. } => {
                Scope::Output { entity, computed, aggregation: aggregation.clone(), computed_after: *computed_after }
            }
            _ => Scope::Computed(self.entity(), computed),
        }
    }

    /// The computed properties' names and types, as this scope knows them.
    fn computed(&self) -> Vec<(String, FieldType)> {
        match self {
            Scope::Entity(_) => Vec::new(),
            Scope::Computed(_, computed) | Scope::Output { computed, .. } => computed.clone(),
        }
    }
}

/// The types of expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    /// A JSON value shown as its text: a string in expressions.
    Json,
    Int,
    Number,
    Bool,
    Time,
    /// Whole milliseconds.
    Duration,
    /// `Edm.TimeOfDay`: milliseconds since midnight.
    TimeOfDay,
    List,
    Null,
}

impl Ty {
    fn of(ty: FieldType) -> Ty {
        match ty {
            FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } => Ty::Text,
            FieldType::Json { .. } => Ty::Json,
            FieldType::TextList => Ty::List,
            FieldType::Number { .. } => Ty::Number,
            FieldType::Integer { .. } => Ty::Int,
            FieldType::Boolean => Ty::Bool,
            FieldType::DateTime => Ty::Time,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Text | Ty::Json => "Edm.String",
            Ty::Int => "Edm.Int64",
            Ty::Number => "Edm.Double",
            Ty::Bool => "Edm.Boolean",
            Ty::Time => "Edm.DateTimeOffset",
            Ty::Duration => "Edm.Duration",
            Ty::TimeOfDay => "Edm.TimeOfDay",
            Ty::List => "Collection(Edm.String)",
            Ty::Null => "null",
        }
    }

    fn textual(self) -> bool {
        matches!(self, Ty::Text | Ty::Json)
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Number)
    }
}

/// An expression with its type and where it starts.
#[derive(Debug)]
struct Typed {
    expr: Expr,
    ty: Ty,
    pos: usize,
}

/// A cursor over the tokens of one option.
pub struct Parser<'a> {
    option: &'a str,
    tokens: Vec<Token>,
    at: usize,
    scope: Scope<'a>,
    depth: usize,
    literals: usize,
    /// The value of `now()`: the moment the query was parsed.
    now: OffsetDateTime,
    /// Inside lambdas' conditions: the names of their variables, outermost first.
    lambdas: Vec<String>,
    /// The parameter aliases of the request (`@p` and its value's text).
    aliases: Vec<(String, String)>,
}

type Result<T> = std::result::Result<T, ParseError>;

const KEYWORDS: [&str; 18] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in", "has", "with", "add", "sub", "mul", "div", "divby",
    "mod",
];

/// What a parameter of a function takes.
#[derive(Debug, Clone, Copy)]
enum Param {
    Text,
    Int,
    Numeric,
    Time,
    /// A date-time or a time of day (`hour`, `minute`, `second`, `fractionalseconds`).
    Clock,
    Duration,
}

impl Param {
    fn fits(self, ty: Ty) -> bool {
        match self {
            Param::Text => ty.textual(),
            Param::Int => ty == Ty::Int,
            Param::Numeric => ty.numeric(),
            Param::Time => ty == Ty::Time,
            Param::Clock => matches!(ty, Ty::Time | Ty::TimeOfDay),
            Param::Duration => ty == Ty::Duration,
        }
    }

    /// The type a string literal in this place is read as.
    fn ty(self) -> Ty {
        match self {
            Param::Time => Ty::Time,
            _ => Ty::Text,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Param::Text => "an Edm.String",
            Param::Int => "a whole number",
            Param::Numeric => "a number",
            Param::Time => "an Edm.DateTimeOffset",
            Param::Clock => "an Edm.DateTimeOffset or an Edm.TimeOfDay",
            Param::Duration => "an Edm.Duration",
        }
    }
}

/// What a call becomes.
#[derive(Debug, Clone, Copy)]
enum Callee {
    /// A function the engine computes on each row.
    Row(Function),
    /// `now()`: the moment the query was parsed.
    Now,
    /// A fixed date-time.
    Constant(fn() -> OffsetDateTime),
    /// `cast(value, Edm.Type)`, or with `isof` `isof(value, Edm.Type)`: the second argument is a
    /// type, not a value.
    Type { isof: bool },
    /// `case(condition: value, …)`.
    Case,
}

/// A function as OData names it, its parameters (the last `optional` of them may be left out)
/// and its result (`None`: the type of its first argument).
struct Signature {
    name: &'static str,
    callee: Callee,
    params: &'static [Param],
    optional: usize,
    result: Option<Ty>,
}

const fn row(name: &'static str, function: Function, params: &'static [Param], result: Option<Ty>) -> Signature {
    Signature { name, callee: Callee::Row(function), params, optional: 0, result }
}

/// Every function of expressions. `$metadata` declares exactly these names
/// ([`FUNCTION_NAMES`]), so that clients fold only what is here.
const SIGNATURES: [Signature; 31] = [
    row("contains", Function::Contains, &[Param::Text, Param::Text], Some(Ty::Bool)),
    row("startswith", Function::StartsWith, &[Param::Text, Param::Text], Some(Ty::Bool)),
    row("endswith", Function::EndsWith, &[Param::Text, Param::Text], Some(Ty::Bool)),
    row("matchesPattern", Function::MatchesPattern, &[Param::Text, Param::Text], Some(Ty::Bool)),
    row("length", Function::Length, &[Param::Text], Some(Ty::Int)),
    row("indexof", Function::IndexOf, &[Param::Text, Param::Text], Some(Ty::Int)),
    Signature {
        name: "substring",
        callee: Callee::Row(Function::Substring),
        params: &[Param::Text, Param::Int, Param::Int],
        optional: 1,
        result: Some(Ty::Text),
    },
    row("tolower", Function::ToLower, &[Param::Text], Some(Ty::Text)),
    row("toupper", Function::ToUpper, &[Param::Text], Some(Ty::Text)),
    row("trim", Function::Trim, &[Param::Text], Some(Ty::Text)),
    row("concat", Function::Concat, &[Param::Text, Param::Text], Some(Ty::Text)),
    row("year", Function::Year, &[Param::Time], Some(Ty::Int)),
    row("month", Function::Month, &[Param::Time], Some(Ty::Int)),
    row("day", Function::Day, &[Param::Time], Some(Ty::Int)),
    row("hour", Function::Hour, &[Param::Clock], Some(Ty::Int)),
    row("minute", Function::Minute, &[Param::Clock], Some(Ty::Int)),
    row("second", Function::Second, &[Param::Clock], Some(Ty::Int)),
    row("fractionalseconds", Function::FractionalSeconds, &[Param::Clock], Some(Ty::Number)),
    row("totaloffsetminutes", Function::TotalOffsetMinutes, &[Param::Time], Some(Ty::Int)),
    row("date", Function::Date, &[Param::Time], Some(Ty::Time)),
    row("time", Function::Time, &[Param::Time], Some(Ty::TimeOfDay)),
    row("totalseconds", Function::TotalSeconds, &[Param::Duration], Some(Ty::Number)),
    row("round", Function::Round, &[Param::Numeric], None),
    row("floor", Function::Floor, &[Param::Numeric], None),
    row("ceiling", Function::Ceiling, &[Param::Numeric], None),
    Signature { name: "cast", callee: Callee::Type { isof: false }, params: &[], optional: 0, result: None },
    Signature { name: "isof", callee: Callee::Type { isof: true }, params: &[], optional: 0, result: Some(Ty::Bool) },
    Signature { name: "case", callee: Callee::Case, params: &[], optional: 0, result: None },
    Signature { name: "now", callee: Callee::Now, params: &[], optional: 0, result: Some(Ty::Time) },
    Signature {
        name: "mindatetime",
        callee: Callee::Constant(|| time::macros::datetime!(0001-01-01 00:00 UTC)),
        params: &[],
        optional: 0,
        result: Some(Ty::Time),
    },
    Signature {
        name: "maxdatetime",
        callee: Callee::Constant(|| time::macros::datetime!(9999-12-31 23:59:59.999 UTC)),
        params: &[],
        optional: 0,
        result: Some(Ty::Time),
    },
];

/// The names of the functions expressions may call, as OData spells them.
pub const FUNCTION_NAMES: [&str; SIGNATURES.len()] = {
    let mut names = [""; SIGNATURES.len()];
    let mut i = 0;
    while i < SIGNATURES.len() {
        names[i] = SIGNATURES[i].name;
        i += 1;
    }
    names
};

/// The transformations of `$apply` that parley implements.
pub const TRANSFORMATIONS: [&str; 15] = [
    "identity",
    "filter",
    "compute",
    "concat",
    "groupby",
    "aggregate",
    "orderby",
    "top",
    "skip",
    "topcount",
    "bottomcount",
    "topsum",
    "bottomsum",
    "toppercent",
    "bottompercent",
];

/// What `$apply` asks for, in the order it is applied.
#[derive(Debug, Default)]
pub struct Applied {
    /// The properties of `compute(…)`, computed on the entity's rows.
    pub computed: Vec<Computed>,
    /// Filters of the entity's rows, before anything else.
    pub before: Vec<Expr>,
    /// Steps on the entity's rows before the aggregation (and the filters among them).
    pub row_steps: Vec<Step>,
    pub aggregation: Option<Aggregation>,
    /// Then these steps, up to the last that is not a filter.
    pub steps: Vec<Step>,
    /// Then the filters that come last.
    pub after: Vec<Expr>,
    /// The sequences of `concat(…)`, when the aggregation is theirs.
    pub branches: Vec<Branch>,
}

/// Canonical functions of OData that parley does not implement (answered 501, not 400): the
/// geographic ones (no property is a place) and those of ordered collections.
const UNIMPLEMENTED_FUNCTIONS: [&str; 5] =
    ["geo.distance", "geo.length", "geo.intersects", "hassubset", "hassubsequence"];

fn function_list() -> String {
    FUNCTION_NAMES.join(", ")
}

/// `a op b` of two literals, as the engines compute it; an overflow or a division by zero is an
/// error.
fn fold(op: ArithOp, kind: Arith, a: &Value, b: &Value) -> std::result::Result<Value, String> {
    let overflow = || format!("{} overflows", op.word());
    let by_zero = || "division by zero".to_owned();
    let number = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    };
    match (kind, a, b) {
        (Arith::Integer, Value::Integer(a), Value::Integer(b)) => {
            let result = match op {
                ArithOp::Add => a.checked_add(*b),
                ArithOp::Sub => a.checked_sub(*b),
                ArithOp::Mul => a.checked_mul(*b),
                ArithOp::Div | ArithOp::DivBy | ArithOp::Mod if *b == 0 => return Err(by_zero()),
                ArithOp::Div | ArithOp::DivBy => a.checked_div(*b),
                // The remainder of the smallest number by -1 is 0, as both engines have it.
                ArithOp::Mod => Some(a.wrapping_rem(*b)),
            };
            result.map(Value::Integer).ok_or_else(overflow)
        }
        (Arith::Number, a, b) => {
            let (Some(a), Some(b)) = (number(a), number(b)) else { return Err(overflow()) };
            let result = match op {
                ArithOp::Add => a + b,
                ArithOp::Sub => a - b,
                ArithOp::Mul => a * b,
                _ if b == 0.0 => return Err(by_zero()),
                ArithOp::Div | ArithOp::DivBy => a / b,
                ArithOp::Mod => a % b,
            };
            if result.is_finite() { Ok(Value::Number(result)) } else { Err(overflow()) }
        }
        (Arith::Shift, Value::Time(t), Value::Integer(ms)) => {
            let ms = if op == ArithOp::Sub { ms.checked_neg().ok_or_else(overflow)? } else { *ms };
            t.checked_add(time::Duration::milliseconds(ms))
                .filter(|t| (1..=9999).contains(&t.year()))
                .map(Value::Time)
                .ok_or_else(|| "the date-time is out of range".to_owned())
        }
        (Arith::Between, Value::Time(a), Value::Time(b)) => {
            i64::try_from((*a - *b).whole_milliseconds()).map(Value::Integer).map_err(|_| overflow())
        }
        _ => Err(overflow()),
    }
}

impl<'a> Parser<'a> {
    pub fn new(option: &'a str, text: &str, scope: Scope<'a>) -> Result<Self> {
        let now = parley_core::value::now();
        Ok(Parser {
            option,
            tokens: tokenize(option, text)?,
            at: 0,
            scope,
            depth: 0,
            literals: 0,
            now,
            lambdas: Vec::new(),
            aliases: Vec::new(),
        })
    }

    /// Lets expressions name the parameter aliases of the request (`@p`, with `@p=…` among the
    /// query's parameters).
    pub fn with_aliases(mut self, aliases: &[(String, String)]) -> Self {
        self.aliases = aliases.to_vec();
        self
    }

    fn error<T>(&self, pos: usize, message: impl Into<String>) -> Result<T> {
        Err(ParseError::new(self.option, pos, message))
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    /// Whether the next token is the keyword `word`; keywords, like function names, are matched
    /// without regard to case (OData 4.01).
    fn peek_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(name) if name.eq_ignore_ascii_case(word))
    }

    /// The next token as a keyword in lower case, if it is a name.
    fn peek_keyword(&self) -> Option<String> {
        match &self.peek().tok {
            Tok::Ident(name) => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek_word(word);
        if found {
            self.next();
        }
        found
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<usize> {
        let token = self.next();
        if token.tok == tok {
            Ok(token.pos)
        } else {
            self.error(token.pos, format!("expected {what}, found {}", token.tok.describe()))
        }
    }

    /// Fails unless every token has been read.
    pub fn finish(&mut self) -> Result<()> {
        let token = self.next();
        match token.tok {
            Tok::End => Ok(()),
            other => self.error(token.pos, format!("unexpected {}", other.describe())),
        }
    }

    fn enter(&mut self, pos: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(pos, format!("the expression nests more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn count_literal(&mut self, pos: usize) -> Result<()> {
        self.literals += 1;
        if self.literals > MAX_LITERALS {
            return self.error(pos, format!("more than {MAX_LITERALS} literals"));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    /// A whole condition, up to the next token that cannot continue it.
    pub fn condition(&mut self) -> Result<Expr> {
        let typed = self.or()?;
        self.predicate(typed)
    }

    /// A boolean expression used as a condition; a boolean value `b` becomes `b eq true`.
    fn predicate(&self, typed: Typed) -> Result<Expr> {
        if typed.ty != Ty::Bool {
            return self.error(
                typed.pos,
                format!(
                    "expected a condition (an Edm.Boolean expression), found an expression of type {}",
                    typed.ty.name()
                ),
            );
        }
        Ok(if is_predicate(&typed.expr) {
            typed.expr
        } else {
            Expr::Compare(CompareOp::Eq, Box::new(typed.expr), Box::new(Expr::Literal(Value::Bool(true))))
        })
    }

    fn or(&mut self) -> Result<Typed> {
        let pos = self.peek().pos;
        self.enter(pos)?;
        let first = self.and()?;
        let result = if self.peek_word("or") {
            let mut items = Vec::new();
            push_flat(&mut items, self.predicate(first)?, true);
            while self.eat_word("or") {
                let next = self.and()?;
                push_flat(&mut items, self.predicate(next)?, true);
            }
            Typed { expr: Expr::Or(items), ty: Ty::Bool, pos }
        } else {
            first
        };
        self.depth -= 1;
        Ok(result)
    }

    fn and(&mut self) -> Result<Typed> {
        let pos = self.peek().pos;
        let first = self.equality()?;
        if !self.peek_word("and") {
            return Ok(first);
        }
        let mut items = Vec::new();
        push_flat(&mut items, self.predicate(first)?, false);
        while self.eat_word("and") {
            let next = self.equality()?;
            push_flat(&mut items, self.predicate(next)?, false);
        }
        Ok(Typed { expr: Expr::And(items), ty: Ty::Bool, pos })
    }

    fn equality(&mut self) -> Result<Typed> {
        let mut left = self.relational()?;
        loop {
            let op = match self.peek_keyword().as_deref() {
                Some("eq") => CompareOp::Eq,
                Some("ne") => CompareOp::Ne,
                _ => return Ok(left),
            };
            let op_pos = self.next().pos;
            let right = self.relational()?;
            left = self.compare(op, op_pos, left, right)?;
        }
    }

    fn relational(&mut self) -> Result<Typed> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek_keyword().as_deref() {
                Some("gt") => CompareOp::Gt,
                Some("ge") => CompareOp::Ge,
                Some("lt") => CompareOp::Lt,
                Some("le") => CompareOp::Le,
                Some("in") => {
                    self.next();
                    left = self.in_list(left)?;
                    continue;
                }
                Some("has") => {
                    let pos = self.peek().pos;
                    return self.error(pos, "the operator 'has' does not apply: there are no enumeration types");
                }
                _ => return Ok(left),
            };
            let op_pos = self.next().pos;
            let right = self.additive()?;
            left = self.compare(op, op_pos, left, right)?;
        }
    }

    fn additive(&mut self) -> Result<Typed> {
        self.arithmetic_level(&[("add", ArithOp::Add), ("sub", ArithOp::Sub)], Self::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Typed> {
        let operators =
            [("mul", ArithOp::Mul), ("div", ArithOp::Div), ("divby", ArithOp::DivBy), ("mod", ArithOp::Mod)];
        self.arithmetic_level(&operators, Self::unary)
    }

    /// One level of arithmetic: operands of the next tighter level joined, left to right, by
    /// any of `operators`.
    fn arithmetic_level(
        &mut self,
        operators: &[(&str, ArithOp)],
        tighter: fn(&mut Self) -> Result<Typed>,
    ) -> Result<Typed> {
        let mut left = tighter(self)?;
        loop {
            let keyword = self.peek_keyword();
            let Some(&(_, op)) = operators.iter().find(|(word, _)| keyword.as_deref() == Some(*word)) else {
                return Ok(left);
            };
            let op_pos = self.next().pos;
            let right = tighter(self)?;
            left = self.arithmetic(op, op_pos, left, right)?;
        }
    }

    fn unary(&mut self) -> Result<Typed> {
        if self.peek().tok == Tok::Minus {
            let pos = self.next().pos;
            self.enter(pos)?;
            let operand = self.unary()?;
            self.depth -= 1;
            let zero = match operand.ty {
                Ty::Number => Value::Number(0.0),
                Ty::Int | Ty::Duration => Value::Integer(0),
                Ty::Null => return Ok(Typed { pos, ..operand }),
                other => {
                    return self
                        .error(operand.pos, format!("'-' needs a number or a duration, found {}", other.name()));
                }
            };
            let ty = operand.ty;
            let negated = self.arithmetic(ArithOp::Sub, pos, Typed { expr: Expr::Literal(zero), ty, pos }, operand)?;
            return Ok(Typed { pos, ..negated });
        }
        if !self.peek_word("not") {
            return self.primary();
        }
        let pos = self.next().pos;
        self.enter(pos)?;
        let operand = self.unary()?;
        if operand.ty != Ty::Bool {
            return self.error(
                operand.pos,
                format!(
                    "'not' needs an Edm.Boolean operand, found {}; to negate a comparison write not (a eq b)",
                    operand.ty.name()
                ),
            );
        }
        let inner = self.predicate(operand)?;
        self.depth -= 1;
        Ok(Typed { expr: Expr::Not(Box::new(inner)), ty: Ty::Bool, pos })
    }

    /// Types `left op right`, and computes it at once when both sides are literals (so that
    /// `now() sub duration'P30D'` is one value, which an index can seek to).
    fn arithmetic(&self, op: ArithOp, op_pos: usize, left: Typed, right: Typed) -> Result<Typed> {
        let pos = left.pos;
        let word = op.word();
        let (kind, ty, left, right) = match (left.ty, right.ty) {
            (Ty::Null, _) | (_, Ty::Null) => {
                return Ok(Typed { expr: Expr::Literal(Value::Null), ty: Ty::Null, pos });
            }
            (Ty::Int, Ty::Int) if op == ArithOp::DivBy => (Arith::Number, Ty::Number, left, right),
            (Ty::Int, Ty::Int) => (Arith::Integer, Ty::Int, left, right),
            (a, b) if a.numeric() && b.numeric() => (Arith::Number, Ty::Number, left, right),
            (Ty::Duration, Ty::Duration) if matches!(op, ArithOp::Add | ArithOp::Sub) => {
                (Arith::Integer, Ty::Duration, left, right)
            }
            (Ty::Time, Ty::Duration) if matches!(op, ArithOp::Add | ArithOp::Sub) => {
                (Arith::Shift, Ty::Time, left, right)
            }
            (Ty::Duration, Ty::Time) if op == ArithOp::Add => (Arith::Shift, Ty::Time, right, left),
            (Ty::Time, Ty::Time) if op == ArithOp::Sub => (Arith::Between, Ty::Duration, left, right),
            (Ty::Duration, b) | (b, Ty::Duration)
                if b.numeric()
                    && (op == ArithOp::Mul
                        || (matches!(op, ArithOp::Div | ArithOp::DivBy) && left.ty == Ty::Duration)) =>
            {
                if b == Ty::Int && op != ArithOp::DivBy {
                    (Arith::Integer, Ty::Duration, left, right)
                } else {
                    return self.scaled_duration(op, op_pos, left, right);
                }
            }
            (a, b) => {
                return self.error(op_pos, format!("cannot {word} {} and {}", a.name(), b.name()));
            }
        };
        if let (Expr::Literal(a), Expr::Literal(b)) = (&left.expr, &right.expr) {
            let value = fold(op, kind, a, b).or_else(|message| self.error(op_pos, message))?;
            return Ok(Typed { expr: Expr::Literal(value), ty, pos });
        }
        Ok(Typed { expr: Expr::Arith(op, kind, Box::new(left.expr), Box::new(right.expr)), ty, pos })
    }

    /// A duration multiplied or divided by a number that is not whole (or by `divby`): computed
    /// as numbers, then truncated to whole milliseconds, as durations are counted (null when out
    /// of range).
    fn scaled_duration(&self, op: ArithOp, op_pos: usize, left: Typed, right: Typed) -> Result<Typed> {
        let as_number = |t: Typed| if t.ty == Ty::Duration { Typed { ty: Ty::Number, ..t } } else { t };
        let product = self.arithmetic(op, op_pos, as_number(left), as_number(right))?;
        let whole = cast::target("Edm.Int64").expect("Edm.Int64 is a target");
        let expr = match product.expr {
            Expr::Literal(value) => Expr::Literal(cast::cast(&value, Kind::Number, whole)),
            expr => Expr::Cast(Box::new(expr), Kind::Number, whole),
        };
        Ok(Typed { expr, ty: Ty::Duration, pos: product.pos })
    }

    fn primary(&mut self) -> Result<Typed> {
        let token = self.next();
        let pos = token.pos;
        let literal = |value: Value, ty: Ty| Typed { expr: Expr::Literal(value), ty, pos };
        match token.tok {
            Tok::LParen => {
                let inner = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(Typed { pos, ..inner })
            }
            Tok::Str(text) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Text(text), Ty::Text))
            }
            Tok::Int(i) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Integer(i), Ty::Int))
            }
            Tok::Decimal(d) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Number(d), Ty::Number))
            }
            Tok::DateTime(t) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Time(t), Ty::Time))
            }
            Tok::Duration(ms) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Integer(ms), Ty::Duration))
            }
            Tok::TimeOfDay(ms) => {
                self.count_literal(pos)?;
                Ok(literal(Value::Integer(ms), Ty::TimeOfDay))
            }
            Tok::Ident(name) => match name.to_ascii_lowercase().as_str() {
                word @ ("true" | "false") => {
                    self.count_literal(pos)?;
                    Ok(literal(Value::Bool(word == "true"), Ty::Bool))
                }
                "null" => Ok(literal(Value::Null, Ty::Null)),
                word if KEYWORDS.contains(&word) => {
                    self.error(pos, format!("expected a value, found the operator '{word}'"))
                }
                _ if name.starts_with('@') => self.alias(&name, pos),
                _ if self.peek().tok == Tok::LParen => self.call(name, pos),
                _ if self.lambdas.contains(&name) => {
                    // The innermost lambda's variable of that name.
                    let depth = self.lambdas.iter().rposition(|variable| *variable == name).unwrap_or_default();
                    Ok(Typed { expr: Expr::Element(depth), ty: Ty::Text, pos })
                }
                _ => {
                    let (operand, ty) = self.scope.resolve(&name).or_else(|message| self.error(pos, message))?;
                    if self.peek().tok == Tok::Slash {
                        let slash = self.next().pos;
                        if ty != FieldType::TextList {
                            return self
                                .error(slash, format!("'{name}' is not a collection: '/' does not apply to it"));
                        }
                        return self.collection_path(operand, pos);
                    }
                    Ok(Typed { expr: Expr::Column(operand), ty: Ty::of(ty), pos })
                }
            },
            other => self.error(pos, format!("expected a value, found {}", other.describe())),
        }
    }

    /// A parameter alias: the expression its value holds, parsed where the alias stands (as
    /// OData has it, an alias the query does not give is null).
    fn alias(&mut self, name: &str, pos: usize) -> Result<Typed> {
        let Some((_, text)) = self.aliases.iter().find(|(alias, _)| alias == name).cloned() else {
            return Ok(Typed { expr: Expr::Literal(Value::Null), ty: Ty::Null, pos });
        };
        self.enter(pos)?;
        let option = name.to_owned();
        let mut inner = Parser::new(&option, &text, self.scope.clone())?;
        inner.aliases = self.aliases.clone();
        inner.depth = self.depth;
        inner.literals = self.literals;
        inner.now = self.now;
        let value = inner.or()?;
        inner.finish()?;
        self.literals = inner.literals;
        self.depth -= 1;
        Ok(Typed { pos, ..value })
    }

    /// What follows `list/`: `$count`, `any()`, `any(x: condition)` or `all(x: condition)`.
    fn collection_path(&mut self, list: Operand, pos: usize) -> Result<Typed> {
        let token = self.next();
        let word = match &token.tok {
            Tok::Ident(word) => word.to_ascii_lowercase(),
            other => return self.error(token.pos, format!("expected any, all or $count, found {}", other.describe())),
        };
        match word.as_str() {
            "$count" => return Ok(Typed { expr: Expr::Count(list), ty: Ty::Int, pos }),
            "any" | "all" => {}
            _ => return self.error(token.pos, format!("expected any, all or $count, found '{word}'")),
        }
        self.expect(Tok::LParen, "'('")?;
        if word == "any" && self.peek().tok == Tok::RParen {
            self.next();
            return Ok(Typed { expr: Expr::Any(list, None), ty: Ty::Bool, pos });
        }
        let variable = self.next();
        let Tok::Ident(name) = variable.tok else {
            return self
                .error(variable.pos, format!("expected the lambda's variable, found {}", variable.tok.describe()));
        };
        if KEYWORDS.contains(&name.to_ascii_lowercase().as_str()) || name.starts_with('$') {
            return self.error(variable.pos, format!("'{name}' cannot name a lambda's variable"));
        }
        self.expect(Tok::Colon, "':' after the lambda's variable")?;
        self.enter(pos)?;
        let depth = self.lambdas.len();
        self.lambdas.push(name);
        let condition = self.or().and_then(|body| self.predicate(body));
        self.lambdas.pop();
        let lambda = Lambda { depth, condition: Box::new(condition?) };
        self.depth -= 1;
        self.expect(Tok::RParen, "')' closing the lambda")?;
        let expr = if word == "any" { Expr::Any(list, Some(lambda)) } else { Expr::All(list, lambda) };
        Ok(Typed { expr, ty: Ty::Bool, pos })
    }

    fn call(&mut self, name: String, pos: usize) -> Result<Typed> {
        let lower = name.to_ascii_lowercase();
        let Some(signature) = SIGNATURES.iter().find(|f| f.name.eq_ignore_ascii_case(&lower)) else {
            if UNIMPLEMENTED_FUNCTIONS.contains(&lower.as_str()) {
                return Err(ParseError::unimplemented(
                    self.option,
                    pos,
                    format!("the function '{name}' is not implemented; implemented are {}", function_list()),
                ));
            }
            return self.error(pos, format!("'{name}' is not a function; functions are {}", function_list()));
        };
        match signature.callee {
            Callee::Type { isof } => return self.type_call(isof, pos),
            Callee::Case => return self.case(pos),
            _ => {}
        }
        self.expect(Tok::LParen, "'('")?;
        self.enter(pos)?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.or()?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
        }
        let close = self.expect(Tok::RParen, "',' or ')'")?;
        self.depth -= 1;
        let most = signature.params.len();
        let least = most - signature.optional;
        if args.len() < least || args.len() > most {
            let count = if least == most { most.to_string() } else { format!("{least} or {most}") };
            let plural = if most == 1 { "argument" } else { "arguments" };
            return self.error(close, format!("'{}' takes {count} {plural}, given {}", signature.name, args.len()));
        }
        let mut args: Vec<Typed> = args
            .into_iter()
            .zip(signature.params)
            .map(|(arg, param)| self.coerce(arg, param.ty()))
            .collect::<Result<_>>()?;
        for (arg, param) in args.iter().zip(signature.params) {
            if !param.fits(arg.ty) {
                return self.error(
                    arg.pos,
                    format!("'{}' needs {} here, found {}", signature.name, param.describe(), arg.ty.name()),
                );
            }
        }
        let function = match signature.callee {
            Callee::Now => return Ok(Typed { expr: Expr::Literal(Value::Time(self.now)), ty: Ty::Time, pos }),
            Callee::Constant(time) => return Ok(Typed { expr: Expr::Literal(Value::Time(time())), ty: Ty::Time, pos }),
            Callee::Row(function) => function,
            Callee::Type { .. } | Callee::Case => unreachable!("cast, isof and case are read on their own"),
        };
        let result = signature.result.unwrap_or(args[0].ty);
        if function == Function::MatchesPattern {
            let pattern = &args[1];
            let Expr::Literal(Value::Text(text)) = &pattern.expr else {
                return self.error(pattern.pos, "the pattern of 'matchesPattern' must be a string literal");
            };
            if let Err(error) = regex::Regex::new(text) {
                let reason = error.to_string().lines().last().unwrap_or_default().trim().to_owned();
                return self.error(pattern.pos, format!("the pattern is not a regular expression: {reason}"));
            }
        }
        if args.first().is_some_and(|a| a.ty == Ty::TimeOfDay) {
            return self.clock_part(function, args.remove(0));
        }
        if matches!(function, Function::Round | Function::Floor | Function::Ceiling) && args[0].ty != Ty::Number {
            // Whole numbers are already rounded.
            return Ok(args.remove(0));
        }
        let args = args.into_iter().map(|a| a.expr).collect();
        Ok(Typed { expr: Expr::Call(function, args), ty: result, pos })
    }

    /// `case(condition: value, …)` after the name: the values share a type (whole numbers and
    /// numbers make numbers; null fits any), and no condition holding gives null.
    fn case(&mut self, pos: usize) -> Result<Typed> {
        self.expect(Tok::LParen, "'('")?;
        self.enter(pos)?;
        let mut arms: Vec<(Expr, Typed)> = Vec::new();
        loop {
            let condition = self.or()?;
            let condition = self.predicate(condition)?;
            self.expect(Tok::Colon, "':' and the value for this condition")?;
            arms.push((condition, self.or()?));
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::RParen, .. } => break,
                other => return self.error(other.pos, format!("expected ',' or ')', found {}", other.tok.describe())),
            }
        }
        self.depth -= 1;
        let mut ty = Ty::Null;
        for (_, value) in &arms {
            ty = match (ty, value.ty) {
                (Ty::Null, other) | (other, Ty::Null) => other,
                (a, b) if a == b => a,
                (a, b) if a.numeric() && b.numeric() => Ty::Number,
                (a, b) if a.textual() && b.textual() => Ty::Text,
                (a, b) => {
                    return self.error(
                        value.pos,
                        format!("the values of 'case' must share a type; found {} and {}", a.name(), b.name()),
                    );
                }
            };
        }
        if ty == Ty::List {
            return self.error(pos, "'case' cannot choose between collections");
        }
        let arms = arms.into_iter().map(|(condition, value)| (condition, value.expr)).collect();
        Ok(Typed { expr: Expr::Case(arms), ty, pos })
    }

    /// `hour`, `minute`, `second` or `fractionalseconds` of a time of day: arithmetic on its
    /// milliseconds since midnight.
    fn clock_part(&self, function: Function, clock: Typed) -> Result<Typed> {
        let pos = clock.pos;
        let number = |value: i64| Typed { expr: Expr::Literal(Value::Integer(value)), ty: Ty::Int, pos };
        let ms = Typed { ty: Ty::Int, ..clock };
        let (unit, modulus) = match function {
            Function::Hour => (3_600_000, None),
            Function::Minute => (60_000, Some(60)),
            Function::Second => (1000, Some(60)),
            _ => {
                let fraction = self.arithmetic(ArithOp::Mod, pos, ms, number(1000))?;
                return self.arithmetic(ArithOp::DivBy, pos, fraction, number(1000));
            }
        };
        let whole = self.arithmetic(ArithOp::Div, pos, ms, number(unit))?;
        match modulus {
            Some(m) => self.arithmetic(ArithOp::Mod, pos, whole, number(m)),
            None => Ok(whole),
        }
    }

    /// `cast(value, Edm.Type)` or `isof(value, Edm.Type)` after the name (the rules:
    /// [`crate::cast`]); `isof(Namespace.EntityType)` asks after the entity itself.
    fn type_call(&mut self, isof: bool, pos: usize) -> Result<Typed> {
        let word = if isof { "isof" } else { "cast" };
        self.expect(Tok::LParen, "'('")?;
        self.enter(pos)?;
        let lone_type = matches!(&self.peek().tok, Tok::Ident(name) if name.contains('.'))
            && self.tokens.get(self.at + 1).is_some_and(|t| t.tok == Tok::RParen);
        let value = if lone_type {
            None
        } else {
            let value = self.or()?;
            self.expect(Tok::Comma, &format!("',' and the type '{word}' takes second"))?;
            Some(value)
        };
        let type_token = self.next();
        let Tok::Ident(type_name) = type_token.tok else {
            return self.error(
                type_token.pos,
                format!("'{word}' takes a type such as Edm.String, found {}", type_token.tok.describe()),
            );
        };
        self.expect(Tok::RParen, "')'")?;
        self.depth -= 1;
        let type_pos = type_token.pos;
        let literal = |value: Value, ty: Ty| Ok(Typed { expr: Expr::Literal(value), ty, pos });
        let target = cast::target(&type_name);
        let absent = cast::ABSENT_TYPES
            .iter()
            .any(|t| type_name.len() >= t.len() && type_name[..t.len()].eq_ignore_ascii_case(t));
        let Some(value) = value else {
            let entity = self.scope.entity().qualified_name();
            let is_entity = type_name.eq_ignore_ascii_case(&entity);
            if !is_entity && target.is_none() && !absent {
                return self.error(type_pos, format!("'{type_name}' is not a type; the entity's type is {entity}"));
            }
            if !isof {
                return Err(ParseError::unimplemented(
                    self.option,
                    pos,
                    "cast of the entity itself is not implemented",
                ));
            }
            return literal(Value::Bool(is_entity), Ty::Bool);
        };
        let Some(target) = target else {
            if !absent {
                let names: Vec<&str> = cast::TARGETS.iter().map(|t| t.name).collect();
                return self.error(type_pos, format!("'{type_name}' is not a type; types are {}", names.join(", ")));
            }
            if isof {
                return literal(Value::Bool(false), Ty::Bool);
            }
            return Err(ParseError::unimplemented(
                self.option,
                type_pos,
                format!("cast to {type_name} is not implemented: no value of parley has that type"),
            ));
        };
        let target_ty = match target.kind {
            Kind::Text => Ty::Text,
            Kind::Integer => Ty::Int,
            Kind::Number => Ty::Number,
            Kind::Boolean => Ty::Bool,
            Kind::DateTime => Ty::Time,
            Kind::Duration => Ty::Duration,
            Kind::TimeOfDay => Ty::TimeOfDay,
        };
        let from = match value.ty {
            Ty::Text | Ty::Json => Kind::Text,
            Ty::Int => Kind::Integer,
            Ty::Number => Kind::Number,
            Ty::Bool => Kind::Boolean,
            Ty::Time => Kind::DateTime,
            Ty::Duration => Kind::Duration,
            Ty::TimeOfDay => Kind::TimeOfDay,
            Ty::Null if isof => return literal(Value::Bool(false), Ty::Bool),
            Ty::Null => return literal(Value::Null, target_ty),
            Ty::List => return self.error(value.pos, format!("'{word}' does not take a collection")),
        };
        if isof {
            return self.isof(value, from, target);
        }
        if !cast::possible(from, target.kind) {
            return self.error(type_pos, format!("cannot cast {} to {}", value.ty.name(), target.name));
        }
        if let Expr::Literal(v) = &value.expr {
            return literal(cast::cast(v, from, target), target_ty);
        }
        match (from, target.kind) {
            (Kind::DateTime, Kind::TimeOfDay) => {
                return Ok(Typed { expr: Expr::Call(Function::Time, vec![value.expr]), ty: Ty::TimeOfDay, pos });
            }
            (Kind::Text, Kind::DateTime | Kind::Duration | Kind::TimeOfDay)
            | (Kind::Duration | Kind::TimeOfDay, Kind::Text) => {
                return Err(ParseError::unimplemented(
                    self.option,
                    pos,
                    format!(
                        "cast of {} values to {} is not implemented, of literals it is",
                        value.ty.name(),
                        target.name
                    ),
                ));
            }
            (a, b) if a == b && target.range.is_none_or(|(least, most)| least == i64::MIN && most == i64::MAX) => {
                return Ok(Typed { pos, ty: target_ty, ..value });
            }
            _ => {}
        }
        Ok(Typed { expr: Expr::Cast(Box::new(value.expr), from, target), ty: target_ty, pos })
    }

    /// `isof(value, type)`: whether the value is not null and of the type, a whole number
    /// counting as a number too, and a number counting as a whole number when it is one within
    /// the type's range.
    fn isof(&self, value: Typed, from: Kind, target: Target) -> Result<Typed> {
        let pos = value.pos;
        let done = |expr: Expr| Ok(Typed { expr, ty: Ty::Bool, pos });
        let narrowing = matches!((from, target.kind), (Kind::Integer | Kind::Number, Kind::Integer));
        if let Expr::Literal(v) = &value.expr {
            let fits = match (from, target.kind) {
                _ if narrowing => match (cast::cast(v, from, target), v) {
                    (Value::Integer(i), Value::Number(n)) => i as f64 == *n,
                    (Value::Integer(_), _) => true,
                    _ => false,
                },
                (a, b) => a == b || (a, b) == (Kind::Integer, Kind::Number),
            };
            return done(Expr::Literal(Value::Bool(fits)));
        }
        let present = Expr::Compare(CompareOp::Ne, Box::new(value.expr.clone()), Box::new(Expr::Literal(Value::Null)));
        if narrowing && !(from == Kind::Integer && target.range == Some((i64::MIN, i64::MAX))) {
            let cast = Expr::Cast(Box::new(value.expr.clone()), from, target);
            let same = Expr::Compare(CompareOp::Eq, Box::new(cast), Box::new(value.expr));
            return done(Expr::And(vec![present, same]));
        }
        if from == target.kind || (from, target.kind) == (Kind::Integer, Kind::Number) {
            return done(present);
        }
        done(Expr::Literal(Value::Bool(false)))
    }

    /// Checks that `left op right` compares like with like; a string literal compared with a
    /// date-time is read as a date-time (the quoted form of the reference product's examples).
    fn compare(&self, op: CompareOp, op_pos: usize, left: Typed, right: Typed) -> Result<Typed> {
        let pos = left.pos;
        let (left_ty, right_ty) = (left.ty, right.ty);
        let (left, right) = (self.coerce(left, right_ty)?, self.coerce(right, left_ty)?);
        for side in [&left, &right] {
            if side.ty == Ty::List {
                return self.error(side.pos, "a collection cannot be compared");
            }
        }
        let fits = match (left.ty, right.ty) {
            (Ty::Null, _) | (_, Ty::Null) => {
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return self.error(op_pos, "null can only be compared with eq or ne");
                }
                true
            }
            (a, b) => (a.textual() && b.textual()) || (a.numeric() && b.numeric()) || a == b,
        };
        if !fits {
            return self.error(op_pos, format!("cannot compare {} with {}", left.ty.name(), right.ty.name()));
        }
        Ok(Typed { expr: Expr::Compare(op, Box::new(left.expr), Box::new(right.expr)), ty: Ty::Bool, pos })
    }

    /// A string literal where a date-time is expected becomes a date-time literal.
    fn coerce(&self, typed: Typed, other: Ty) -> Result<Typed> {
        match (&typed.expr, other) {
            (Expr::Literal(Value::Text(text)), Ty::Time) => {
                let time = parse_date_time(text).or_else(|message| self.error(typed.pos, message))?;
                Ok(Typed { expr: Expr::Literal(Value::Time(time)), ty: Ty::Time, pos: typed.pos })
            }
            (Expr::Literal(Value::Text(text)), Ty::TimeOfDay) => {
                let ms = crate::lexer::parse_time_of_day(text).or_else(|message| self.error(typed.pos, message))?;
                Ok(Typed { expr: Expr::Literal(Value::Integer(ms)), ty: Ty::TimeOfDay, pos: typed.pos })
            }
            _ => Ok(typed),
        }
    }

    fn in_list(&mut self, operand: Typed) -> Result<Typed> {
        if matches!(operand.ty, Ty::List | Ty::Null) {
            return self.error(operand.pos, format!("'in' cannot test {}", operand.ty.name()));
        }
        self.expect(Tok::LParen, "'(' after 'in'")?;
        let mut values = Vec::new();
        loop {
            let token = self.next();
            let value = match (token.tok, operand.ty) {
                (Tok::Ident(word), _) if word.eq_ignore_ascii_case("null") => Value::Null,
                (Tok::Str(text), Ty::Time) => {
                    Value::Time(parse_date_time(&text).or_else(|message| self.error(token.pos, message))?)
                }
                (Tok::Str(text), ty) if ty.textual() => Value::Text(text),
                (Tok::Int(i), ty) if ty.numeric() => Value::Integer(i),
                (Tok::Decimal(d), ty) if ty.numeric() => Value::Number(d),
                (Tok::DateTime(t), Ty::Time) => Value::Time(t),
                (Tok::Ident(word), Ty::Bool)
                    if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") =>
                {
                    Value::Bool(word.eq_ignore_ascii_case("true"))
                }
                (Tok::Duration(ms), Ty::Duration) | (Tok::TimeOfDay(ms), Ty::TimeOfDay) => Value::Integer(ms),
                (Tok::Str(text), Ty::TimeOfDay) => Value::Integer(
                    crate::lexer::parse_time_of_day(&text).or_else(|message| self.error(token.pos, message))?,
                ),
                (Tok::RParen, _) if values.is_empty() => {
                    return self.error(token.pos, "the list of 'in' must hold at least one value");
                }
                (other, ty) => {
                    return self.error(
                        token.pos,
                        format!("expected a {} literal in the list of 'in', found {}", ty.name(), other.describe()),
                    );
                }
            };
            self.count_literal(token.pos)?;
            values.push(value);
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::RParen, .. } => break,
                other => return self.error(other.pos, format!("expected ',' or ')', found {}", other.tok.describe())),
            }
        }
        Ok(Typed { expr: Expr::In(Box::new(operand.expr), values), ty: Ty::Bool, pos: operand.pos })
    }

    // -----------------------------------------------------------------------------------------
    // $apply

    /// Parses `$apply`: `filter(…)` steps, at most one `groupby(…)` or `aggregate(…)`, then
    /// more steps that apply to the aggregated rows (or, without an aggregation, to the rows
    /// the first filters leave): `filter`, `orderby`, `top`, `skip`, `topcount`, `bottomcount`.
    pub fn apply(&mut self) -> Result<Applied> {
        let mut applied = Applied::default();
        // Filters after the aggregation or a step, not yet followed by another step.
        let mut pending: Vec<Expr> = Vec::new();
        loop {
            let token = self.next();
            let Tok::Ident(name) = token.tok else {
                return self.error(token.pos, format!("expected a transformation, found {}", token.tok.describe()));
            };
            let word = name.to_ascii_lowercase();
            let grouped = applied.aggregation.is_some();
            if !grouped && matches!(word.as_str(), "groupby" | "aggregate" | "concat") {
                // The steps so far keep rows of the set: they apply before the grouping.
                applied.row_steps = std::mem::take(&mut applied.steps);
                applied.row_steps.extend(pending.drain(..).map(Step::Filter));
            }
            let stepped = grouped || !applied.steps.is_empty();
            let step = match word.as_str() {
                "filter" => {
                    self.expect(Tok::LParen, "'(' after 'filter'")?;
                    let condition = self.condition()?;
                    self.expect(Tok::RParen, "')'")?;
                    if stepped {
                        pending.push(condition)
                    } else {
                        applied.before.push(condition)
                    }
                    None
                }
                "groupby" | "aggregate" | "concat" if grouped => {
                    return Err(ParseError::unimplemented(
                        self.option,
                        token.pos,
                        format!("'{word}' after groupby, aggregate or concat is not implemented"),
                    ));
                }
                "groupby" => {
                    let grouped = self.groupby()?;
                    self.scope = self.scope.output(grouped.clone());
                    applied.aggregation = Some(grouped);
                    None
                }
                "aggregate" => {
                    self.expect(Tok::LParen, "'(' after 'aggregate'")?;
                    let aggregates = self.aggregates()?;
                    let grouped = Aggregation { group_by: Vec::new(), aggregates };
                    self.scope = self.scope.output(grouped.clone());
                    applied.aggregation = Some(grouped);
                    None
                }
                "orderby" => {
                    self.expect(Tok::LParen, "'(' after 'orderby'")?;
                    Some(Step::Order(self.order_until(Tok::RParen)?))
                }
                "top" | "skip" => {
                    self.expect(Tok::LParen, &format!("'(' after '{word}'"))?;
                    let count = self.count_argument(&word)?;
                    self.expect(Tok::RParen, "')'")?;
                    Some(if word == "top" { Step::Top(count) } else { Step::Skip(count) })
                }
                "topcount" | "bottomcount" => {
                    self.expect(Tok::LParen, &format!("'(' after '{word}'"))?;
                    let count = self.count_argument(&word)?;
                    let operand = self.ranked_by(&word)?;
                    Some(Step::TopCount { count, operand, bottom: word == "bottomcount" })
                }
                "topsum" | "bottomsum" | "toppercent" | "bottompercent" => {
                    self.expect(Tok::LParen, &format!("'(' after '{word}'"))?;
                    let token = self.next();
                    let threshold = match token.tok {
                        Tok::Int(n) => n as f64,
                        Tok::Decimal(d) => d,
                        other => {
                            return self.error(
                                token.pos,
                                format!("'{word}' takes a number first, found {}", other.describe()),
                            );
                        }
                    };
                    let percent = word.ends_with("percent");
                    if percent && !(0.0..=100.0).contains(&threshold) {
                        return self.error(token.pos, format!("'{word}' takes a percentage from 0 to 100"));
                    }
                    let operand = self.ranked_by(&word)?;
                    Some(Step::TopSum { threshold, operand, bottom: word.starts_with("bottom"), percent })
                }
                "compute" => {
                    // On the set's rows, where the steps keep rows whole, a property may be
                    // computed first; after a grouping it is a step of its own.
                    self.expect(Tok::LParen, "'(' after 'compute'")?;
                    let items = self.compute_until(Tok::RParen)?;
                    self.scope = self.scope.with_computed(&items);
                    let first = applied.computed.len();
                    applied.computed.extend(items);
                    grouped.then(|| Step::Compute((first..applied.computed.len()).collect()))
                }
                "concat" => {
                    self.expect(Tok::LParen, "'(' after 'concat'")?;
                    let (combined, branches) = self.concat(token.pos)?;
                    self.scope = self.scope.output(combined.clone());
                    applied.aggregation = Some(combined);
                    applied.branches = branches;
                    None
                }
                "identity" => None,
                "expand" => {
                    let entity = self.scope.entity();
                    return self.error(
                        token.pos,
                        format!("{} has no navigation properties, so there is nothing to expand", entity.name),
                    );
                }
                "search" | "nest" => {
                    return Err(ParseError::unimplemented(
                        self.option,
                        token.pos,
                        format!(
                            "the transformation '{name}' is not implemented; implemented are {}",
                            TRANSFORMATIONS.join(", ")
                        ),
                    ));
                }
                _ => {
                    return self.error(
                        token.pos,
                        format!("'{name}' is not a transformation; implemented are {}", TRANSFORMATIONS.join(", ")),
                    );
                }
            };
            if let Some(step) = step {
                applied.steps.extend(pending.drain(..).map(Step::Filter));
                applied.steps.push(step);
            }
            if self.peek().tok == Tok::Slash {
                self.next();
            } else {
                applied.after = pending;
                return Ok(applied);
            }
        }
    }

    /// The sequences of `concat(…)` after its `(`, up to and including its `)`: each applied to
    /// the rows as they are here, each grouping them (a sequence that keeps the records is not
    /// implemented). Returns the columns of all of them together, as one aggregation whose
    /// aggregates are those of each sequence (one name, one column), and the sequences.
    fn concat(&mut self, pos: usize) -> Result<(Aggregation, Vec<Branch>)> {
        let start = self.scope.clone();
        let mut combined = Aggregation { group_by: Vec::new(), aggregates: Vec::new() };
        let mut branches = Vec::new();
        loop {
            let at = self.peek().pos;
            self.scope = start.clone();
            self.enter(at)?;
            let applied = self.apply()?;
            self.depth -= 1;
            let unimplemented = |message: &str| Err(ParseError::unimplemented(self.option, at, message));
            if !applied.computed.is_empty() {
                return unimplemented("compute inside a sequence of concat is not implemented; compute before concat");
            }
            if !applied.branches.is_empty() {
                return unimplemented("concat inside concat is not implemented");
            }
            if !applied.row_steps.is_empty() {
                return unimplemented("steps before the grouping of a sequence of concat are not implemented");
            }
            let Some(aggregation) = applied.aggregation else {
                return unimplemented("a sequence of concat without groupby or aggregate is not implemented");
            };
            for operand in &aggregation.group_by {
                if !combined.group_by.contains(operand) {
                    combined.group_by.push(*operand);
                }
            }
            let mut positions = Vec::new();
            for aggregate in &aggregation.aggregates {
                match combined.aggregates.iter().position(|a| a.alias == aggregate.alias) {
                    Some(a) if combined.aggregates[a].ty == aggregate.ty => positions.push(a),
                    Some(_) => {
                        return self.error(
                            at,
                            format!("'{}' names values of different types in the sequences of concat", aggregate.alias),
                        );
                    }
                    None => {
                        positions.push(combined.aggregates.len());
                        combined.aggregates.push(aggregate.clone());
                    }
                }
            }
            let mut steps = applied.steps;
            steps.extend(applied.after.into_iter().map(Step::Filter));
            branches.push(Branch { filter: conjoin(applied.before), aggregation, steps, aggregates: positions });
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::RParen, .. } => break,
                other => return self.error(other.pos, format!("expected ',' or ')', found {}", other.tok.describe())),
            }
        }
        if branches.len() < 2 {
            return self.error(pos, "concat takes two or more sequences of transformations");
        }
        Ok((combined, branches))
    }

    /// `, x)` closing a ranking step: the number it ranks rows by.
    fn ranked_by(&mut self, word: &str) -> Result<Operand> {
        self.expect(Tok::Comma, "',' and the value to rank by")?;
        let (operand, ty, pos) = self.operand()?;
        if !matches!(ty, FieldType::Integer { .. } | FieldType::Number { .. }) {
            let name = self.name_at(pos);
            return self.error(pos, format!("'{word}' ranks by a number; '{name}' is not one"));
        }
        self.expect(Tok::RParen, "')'")?;
        Ok(operand)
    }

    /// The whole number `top`, `skip`, `topcount` and `bottomcount` take.
    fn count_argument(&mut self, word: &str) -> Result<u64> {
        let token = self.next();
        match token.tok {
            Tok::Int(n) if n >= 0 => Ok(n as u64),
            other => self.error(token.pos, format!("'{word}' takes a whole number from 0, found {}", other.describe())),
        }
    }

    /// `groupby((a,b)[,aggregate(…)])`, after the name.
    fn groupby(&mut self) -> Result<Aggregation> {
        self.expect(Tok::LParen, "'(' after 'groupby'")?;
        let open = self.peek().pos;
        if self.peek().tok != Tok::LParen {
            return self
                .error(open, "groupby takes a list of properties in parentheses, as in groupby((intent,channel))");
        }
        self.next();
        let mut group_by = Vec::new();
        loop {
            let token = self.next();
            let Tok::Ident(name) = &token.tok else {
                return self.error(token.pos, format!("expected a property, found {}", token.tok.describe()));
            };
            let (operand, ty) = self.scope.resolve(name).or_else(|message| self.error(token.pos, message))?;
            if !orderable(ty) {
                return self.error(
                    token.pos,
                    format!("cannot group by '{name}', of type {}", crate::model::EdmType::of(ty).name()),
                );
            }
            if group_by.contains(&operand) {
                return self.error(token.pos, format!("'{name}' is named twice"));
            }
            group_by.push(operand);
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::RParen, .. } => break,
                other => return self.error(other.pos, format!("expected ',' or ')', found {}", other.tok.describe())),
            }
        }
        let mut aggregates = Vec::new();
        if self.peek().tok == Tok::Comma {
            self.next();
            let token = self.next();
            if !matches!(&token.tok, Tok::Ident(word) if word.eq_ignore_ascii_case("aggregate")) {
                return self.error(token.pos, format!("expected 'aggregate', found {}", token.tok.describe()));
            }
            self.expect(Tok::LParen, "'(' after 'aggregate'")?;
            aggregates = self.aggregates()?;
        }
        self.expect(Tok::RParen, "')' closing groupby")?;
        Ok(Aggregation { group_by, aggregates })
    }

    /// The items of `aggregate(…)` up to and including its `)`.
    fn aggregates(&mut self) -> Result<Vec<Aggregate>> {
        let mut aggregates: Vec<Aggregate> = Vec::new();
        loop {
            let token = self.next();
            let Tok::Ident(name) = &token.tok else {
                return self.error(token.pos, format!("expected a property or $count, found {}", token.tok.describe()));
            };
            let (method, operand, ty) = if name.eq_ignore_ascii_case("$count") {
                (Method::Count, None, FieldType::Integer { min: 0 })
            } else {
                let (operand, of) = self.scope.resolve(name).or_else(|message| self.error(token.pos, message))?;
                if !self.eat_word("with") {
                    let at = self.peek().pos;
                    return self.error(at, format!("expected 'with' after '{name}', as in {name} with sum as total"));
                }
                let method_token = self.next();
                let method_word = match &method_token.tok {
                    Tok::Ident(m) => m.to_ascii_lowercase(),
                    _ => String::new(),
                };
                let method = match method_word.as_str() {
                    "sum" => Method::Sum,
                    "min" => Method::Min,
                    "max" => Method::Max,
                    "average" => Method::Average,
                    "countdistinct" => Method::CountDistinct,
                    _ => {
                        let other = &method_token.tok;
                        return self.error(
                            method_token.pos,
                            format!("expected sum, min, max, average or countdistinct, found {}", other.describe()),
                        );
                    }
                };
                let numeric = matches!(of, FieldType::Number { .. } | FieldType::Integer { .. });
                let (fits, ty) = match method {
                    Method::Sum | Method::Average => (numeric, FieldType::Number { min: None, max: None }),
                    Method::Min | Method::Max => (orderable(of) && of != FieldType::Boolean, of),
                    _ => (orderable(of), FieldType::Integer { min: 0 }),
                };
                if !fits {
                    let edm = crate::model::EdmType::of(of).name();
                    return self.error(
                        method_token.pos,
                        format!("cannot aggregate '{name}' (of type {edm}) with this method"),
                    );
                }
                (method, Some(operand), ty)
            };
            if !self.eat_word("as") {
                let at = self.peek().pos;
                return self.error(at, "expected 'as' and a name for the aggregate");
            }
            let alias_token = self.next();
            let alias = match &alias_token.tok {
                Tok::Ident(alias)
                    if !alias.starts_with('$') && !KEYWORDS.contains(&alias.to_ascii_lowercase().as_str()) =>
                {
                    alias.clone()
                }
                other => {
                    return self.error(
                        alias_token.pos,
                        format!("expected a name for the aggregate, found {}", other.describe()),
                    );
                }
            };
            let taken = self.scope.resolve(&alias).is_ok() || aggregates.iter().any(|a| a.alias == alias);
            if taken {
                return self.error(alias_token.pos, format!("the name '{alias}' is taken already"));
            }
            self.count_literal(alias_token.pos)?;
            aggregates.push(Aggregate { alias, method, operand, ty });
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::RParen, .. } => break,
                other => return self.error(other.pos, format!("expected ',' or ')', found {}", other.tok.describe())),
            }
        }
        Ok(aggregates)
    }

    // -----------------------------------------------------------------------------------------
    // $compute

    /// `$compute`: `expression as name`, comma-separated. Each expression may use the entity's
    /// properties; the names then serve `$filter`, `$select` and `$orderby`.
    pub fn compute(&mut self) -> Result<Vec<Computed>> {
        self.compute_until(Tok::End)
    }

    /// The items of `$compute` or `compute(…)` up to and including `closing`. Each expression
    /// may use what the scope holds (the entity's properties and those computed before); a name
    /// may be given once.
    fn compute_until(&mut self, closing: Tok) -> Result<Vec<Computed>> {
        let mut computed: Vec<Computed> = Vec::new();
        loop {
            let typed = self.or()?;
            let pos = typed.pos;
            let ty = match typed.ty {
                Ty::Text | Ty::Json => FieldType::LongText { max_bytes: usize::MAX },
                Ty::Int => FieldType::Integer { min: i64::MIN },
                Ty::Number => FieldType::Number { min: None, max: None },
                Ty::Bool => FieldType::Boolean,
                Ty::Time => FieldType::DateTime,
                Ty::List => FieldType::TextList,
                Ty::Duration | Ty::TimeOfDay => {
                    return Err(ParseError::unimplemented(
                        self.option,
                        pos,
                        format!(
                            "a computed {} is not implemented; compute its parts (totalseconds, hour, minute, …)",
                            typed.ty.name()
                        ),
                    ));
                }
                Ty::Null => return self.error(pos, "null has no type to compute"),
            };
            let expr = if typed.ty == Ty::Bool { self.predicate(typed)? } else { typed.expr };
            if !self.eat_word("as") {
                let at = self.peek().pos;
                return self.error(at, "expected 'as' and a name for the computed property");
            }
            let alias_token = self.next();
            let alias = match &alias_token.tok {
                Tok::Ident(alias)
                    if !alias.starts_with(['$', '@'])
                        && !alias.contains('.')
                        && !KEYWORDS.contains(&alias.to_ascii_lowercase().as_str()) =>
                {
                    alias.clone()
                }
                other => {
                    return self.error(
                        alias_token.pos,
                        format!("expected a name for the computed property, found {}", other.describe()),
                    );
                }
            };
            if self.scope.resolve(&alias).is_ok() || computed.iter().any(|c| c.alias == alias) {
                return self.error(alias_token.pos, format!("the name '{alias}' is taken already"));
            }
            computed.push(Computed { alias, expr, ty });
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok, .. } if tok == closing => return Ok(computed),
                other => return self.error(other.pos, format!("expected ',', found {}", other.tok.describe())),
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // $orderby and $select

    /// `$orderby`: `name [asc|desc]`, comma-separated.
    pub fn order(&mut self) -> Result<Vec<OrderKey>> {
        self.order_until(Tok::End)
    }

    /// Order keys up to and including `closing` (the end of `$orderby`, or the `)` of
    /// `orderby(…)` in `$apply`).
    fn order_until(&mut self, closing: Tok) -> Result<Vec<OrderKey>> {
        let mut keys: Vec<OrderKey> = Vec::new();
        loop {
            let (operand, ty, pos) = self.operand()?;
            if matches!(ty, FieldType::Json { .. } | FieldType::TextList) {
                let name = self.name_at(pos);
                return self
                    .error(pos, format!("cannot order by '{name}', of type {}", crate::model::EdmType::of(ty).name()));
            }
            if keys.iter().any(|k| k.operand == operand) {
                let name = self.name_at(pos);
                return self.error(pos, format!("'{name}' is named twice"));
            }
            let descending = if self.eat_word("desc") {
                true
            } else {
                self.eat_word("asc");
                false
            };
            keys.push(OrderKey { operand, descending });
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok, .. } if tok == closing => return Ok(keys),
                other => {
                    return self
                        .error(other.pos, format!("expected 'asc', 'desc' or ',', found {}", other.tok.describe()));
                }
            }
        }
    }

    /// `$select`: names, comma-separated (duplicates count once).
    pub fn select(&mut self) -> Result<Vec<Operand>> {
        let mut chosen: Vec<Operand> = Vec::new();
        loop {
            let (operand, _, _) = self.operand()?;
            if !chosen.contains(&operand) {
                chosen.push(operand);
            }
            match self.next() {
                Token { tok: Tok::Comma, .. } => continue,
                Token { tok: Tok::End, .. } => return Ok(chosen),
                other => return self.error(other.pos, format!("expected ',', found {}", other.tok.describe())),
            }
        }
    }

    fn operand(&mut self) -> Result<(Operand, FieldType, usize)> {
        let token = self.next();
        match token.tok {
            Tok::Ident(name) => {
                if self.peek().tok == Tok::Slash {
                    let slash = self.peek().pos;
                    return self.error(slash, "property paths ('/') are not supported: properties are not structured");
                }
                let (operand, ty) = self.scope.resolve(&name).or_else(|message| self.error(token.pos, message))?;
                Ok((operand, ty, token.pos))
            }
            other => self.error(token.pos, format!("expected a property, found {}", other.describe())),
        }
    }

    fn name_at(&self, pos: usize) -> String {
        self.tokens
            .iter()
            .find(|t| t.pos == pos)
            .map(|t| match &t.tok {
                Tok::Ident(name) => name.clone(),
                other => other.describe(),
            })
            .unwrap_or_default()
    }
}

/// Whether values of a type can be ordered, grouped and compared by size.
fn orderable(ty: FieldType) -> bool {
    !matches!(ty, FieldType::Json { .. } | FieldType::TextList)
}

/// Whether an expression is a condition by itself (rather than a boolean value).
fn is_predicate(expr: &Expr) -> bool {
    match expr {
        Expr::Not(_)
        | Expr::And(_)
        | Expr::Or(_)
        | Expr::Compare(..)
        | Expr::In(..)
        | Expr::Any(..)
        | Expr::All(..) => true,
        Expr::Call(function, _) => matches!(
            function,
            Function::Contains | Function::StartsWith | Function::EndsWith | Function::MatchesPattern
        ),
        Expr::Literal(_)
        | Expr::Column(_)
        | Expr::Arith(..)
        | Expr::Element(_)
        | Expr::Count(_)
        | Expr::Cast(..)
        | Expr::Case(_) => false,
    }
}

/// Adds a predicate to an `and` (or `or`) list, splicing in nested lists of the same kind.
fn push_flat(items: &mut Vec<Expr>, expr: Expr, or: bool) {
    match expr {
        Expr::Or(inner) if or => items.extend(inner),
        Expr::And(inner) if !or => items.extend(inner),
        other => items.push(other),
    }
}
