//! SQL functions SQLite lacks and the shared statements call, registered on every connection
//! that reads: PostgreSQL has each of them built in (or the statement says what it has instead).

use parley_odata::cast::{self, Kind};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Error};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a failure of a query's own arithmetic begins, so that it is told apart from a fault of
/// the store (`StoreError::Evaluation`).
pub const EVALUATION_PREFIX: &str = "parley evaluation: ";

pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("width_bucket", 2, flags, width_bucket)?;
    conn.create_scalar_function("odata_arith", 3, flags, odata_arith)?;
    conn.create_scalar_function("regexp", 2, flags, regexp)?;
    conn.create_scalar_function("odata_floor", 1, flags, |ctx| rounded(ctx, f64::floor))?;
    conn.create_scalar_function("odata_ceiling", 1, flags, |ctx| rounded(ctx, f64::ceil))?;
    conn.create_scalar_function("odata_cast", 3, flags, odata_cast)
}

/// `width_bucket(value, thresholds)` as PostgreSQL has it, with the thresholds (ascending) as a
/// JSON array of integers: how many thresholds are at or below `value` (0 below the first), or
/// null for a null value. The reports find a row's bucket with it on both engines. The array is
/// read once per statement.
fn width_bucket(ctx: &mut Context<'_>) -> rusqlite::Result<Option<i64>> {
    let thresholds =
        ctx.get_or_create_aux(1, |v| -> Result<Vec<i64>, BoxError> { Ok(serde_json::from_str(v.as_str()?)?) })?;
    let Some(value) = ctx.get::<Option<i64>>(0)? else { return Ok(None) };
    Ok(Some(thresholds.partition_point(|t| *t <= value) as i64))
}

fn failure(reason: &str) -> Error {
    Error::UserFunctionError(format!("{EVALUATION_PREFIX}{reason}").into())
}

/// A number as SQLite holds it.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Real(f64),
}

fn num(value: ValueRef<'_>) -> rusqlite::Result<Option<Num>> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(Num::Int(i))),
        ValueRef::Real(r) => Ok(Some(Num::Real(r))),
        _ => Err(Error::UserFunctionError("odata_arith takes numbers".into())),
    }
}

/// `odata_arith(op, a, b)`: OData's arithmetic as PostgreSQL computes it. Whole numbers stay
/// whole and exact (`div` truncates, `mod` keeps the dividend's sign); `divby` and any operand
/// that is not whole give a double. Null in, null out. An overflow, a result that is not finite,
/// or a division by zero fails the statement, as PostgreSQL fails it.
fn odata_arith(ctx: &mut Context<'_>) -> rusqlite::Result<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let op = ctx.get::<String>(0)?;
    let (Some(a), Some(b)) = (num(ctx.get_raw(1))?, num(ctx.get_raw(2))?) else { return Ok(Value::Null) };
    let overflow = || failure(&format!("the result of '{op}' is out of range"));
    let by_zero = || failure("division by zero");
    if let (Num::Int(a), Num::Int(b), false) = (a, b, op == "divby") {
        let result = match op.as_str() {
            "add" => a.checked_add(b),
            "sub" => a.checked_sub(b),
            "mul" => a.checked_mul(b),
            "div" | "mod" if b == 0 => return Err(by_zero()),
            "div" => a.checked_div(b),
            "mod" => Some(a.wrapping_rem(b)),
            _ => return Err(Error::UserFunctionError(format!("unknown operator {op}").into())),
        };
        return result.map(Value::Integer).ok_or_else(overflow);
    }
    let real = |n: Num| match n {
        Num::Int(i) => i as f64,
        Num::Real(r) => r,
    };
    let (a, b) = (real(a), real(b));
    let result = match op.as_str() {
        "add" => a + b,
        "sub" => a - b,
        "mul" => a * b,
        "div" | "divby" | "mod" if b == 0.0 => return Err(by_zero()),
        "div" | "divby" => a / b,
        "mod" => a % b,
        _ => return Err(Error::UserFunctionError(format!("unknown operator {op}").into())),
    };
    if result.is_finite() { Ok(Value::Real(result)) } else { Err(overflow()) }
}

/// `regexp(pattern, text)`, which SQLite's `text REGEXP pattern` calls: whether the pattern
/// matches anywhere in the text. The pattern is compiled once per statement.
fn regexp(ctx: &mut Context<'_>) -> rusqlite::Result<Option<bool>> {
    let pattern =
        ctx.get_or_create_aux(0, |v| -> Result<regex::Regex, BoxError> { Ok(regex::Regex::new(v.as_str()?)?) })?;
    let text = match ctx.get_raw(1) {
        ValueRef::Null => return Ok(None),
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => {
            return Err(Error::UserFunctionError(format!("regexp takes text, not {:?}", other.data_type()).into()));
        }
    };
    Ok(Some(pattern.is_match(&text)))
}

/// `odata_cast(value, kind, type)`: OData's `cast` of a value of the kind named (as
/// [`Kind::word`] names it) to the type named, by the rules of [`parley_odata::cast`]. Booleans
/// are 0 and 1 here, date-times epoch milliseconds.
fn odata_cast(ctx: &mut Context<'_>) -> rusqlite::Result<rusqlite::types::Value> {
    use parley_core::Value;
    use rusqlite::types::Value as Sql;
    let refuse = |what: &str| Error::UserFunctionError(format!("odata_cast: {what}").into());
    let kind = Kind::from_word(&ctx.get::<String>(1)?).ok_or_else(|| refuse("unknown kind"))?;
    let target = cast::target(&ctx.get::<String>(2)?).ok_or_else(|| refuse("unknown type"))?;
    let value = match (ctx.get_raw(0), kind) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Text(bytes), Kind::Text) => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        (ValueRef::Integer(i), Kind::Integer | Kind::Duration | Kind::TimeOfDay) => Value::Integer(i),
        (ValueRef::Integer(i), Kind::Number) => Value::Number(i as f64),
        (ValueRef::Real(r), Kind::Number) => Value::Number(r),
        (ValueRef::Integer(i), Kind::Boolean) => Value::Bool(i != 0),
        (ValueRef::Integer(ms), Kind::DateTime) => {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map(Value::Time)
                .map_err(|_| refuse("a date-time out of range"))?
        }
        (other, _) => return Err(refuse(&format!("a {:?} is not of the kind {}", other.data_type(), kind.word()))),
    };
    Ok(match cast::cast(&value, kind, target) {
        Value::Null => Sql::Null,
        Value::Text(text) => Sql::Text(text),
        Value::Integer(i) => Sql::Integer(i),
        Value::Number(n) => Sql::Real(n),
        Value::Bool(b) => Sql::Integer(i64::from(b)),
        Value::Time(t) => Sql::Integer(parley_core::value::unix_millis(t)),
        _ => return Err(refuse("an unexpected result")),
    })
}

/// `floor` and `ceiling` of a number, as a double; null stays null.
fn rounded(ctx: &mut Context<'_>, f: fn(f64) -> f64) -> rusqlite::Result<Option<f64>> {
    Ok(ctx.get::<Option<f64>>(0)?.map(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(sql: &str) -> rusqlite::Result<rusqlite::types::Value> {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.query_row(&format!("SELECT {sql}"), [], |row| row.get(0))
    }

    #[test]
    fn arithmetic_is_exact_and_fails_where_postgres_fails() {
        use rusqlite::types::Value;
        assert_eq!(eval("odata_arith('div', -7, 2)").unwrap(), Value::Integer(-3));
        assert_eq!(eval("odata_arith('mod', -7, 2)").unwrap(), Value::Integer(-1));
        assert_eq!(eval("odata_arith('divby', 7, 2)").unwrap(), Value::Real(3.5));
        assert_eq!(eval("odata_arith('add', 1, NULL)").unwrap(), Value::Null);
        for failing in [
            "odata_arith('add', 9223372036854775807, 1)",
            "odata_arith('div', 1, 0)",
            "odata_arith('mul', 1e300, 1e300)",
        ] {
            let error = eval(failing).unwrap_err().to_string();
            assert!(error.contains(EVALUATION_PREFIX), "{failing}: {error}");
        }
    }

    #[test]
    fn regexp_and_rounding() {
        use rusqlite::types::Value;
        assert_eq!(eval("'refund 42' REGEXP '^ref.*\\d+$'").unwrap(), Value::Integer(1));
        assert_eq!(eval("NULL REGEXP 'x'").unwrap(), Value::Null);
        assert_eq!(eval("odata_floor(-1.5)").unwrap(), Value::Real(-2.0));
        assert_eq!(eval("odata_ceiling(1.25)").unwrap(), Value::Real(2.0));
    }

    #[test]
    fn casts_follow_the_shared_rules() {
        use rusqlite::types::Value;
        assert_eq!(eval("odata_cast(2.5, 'number', 'Edm.String')").unwrap(), Value::Text("2.5".into()));
        assert_eq!(eval("odata_cast(1, 'boolean', 'Edm.String')").unwrap(), Value::Text("true".into()));
        assert_eq!(
            eval("odata_cast(0, 'datetime', 'Edm.String')").unwrap(),
            Value::Text("1970-01-01T00:00:00.000Z".into())
        );
        assert_eq!(eval("odata_cast('300', 'text', 'Edm.Byte')").unwrap(), Value::Null);
        assert_eq!(eval("odata_cast('-7', 'text', 'Edm.SByte')").unwrap(), Value::Integer(-7));
        assert_eq!(eval("odata_cast(3, 'number', 'Edm.Double')").unwrap(), Value::Real(3.0));
        assert!(eval("odata_cast('x', 'text', 'Edm.Nothing')").is_err());
        assert!(eval("odata_cast(1.5, 'text', 'Edm.Int32')").is_err());
    }
}
