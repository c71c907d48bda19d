//! A CDS model of a collection of parley's, for SAP CAP to serve: one element per field of the
//! catalogue, with the CDS type that holds it, the key elements first. Shared by the benchmark's
//! peer and by the test that imports from CAP (each includes this file).

use parley_core::{Field, FieldType};

/// The CDS type that holds a field's values.
pub fn cds_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id => "String(24)",
        FieldType::Text { .. } => "String(1024)",
        FieldType::LongText { .. } | FieldType::Json { .. } | FieldType::TextList => "LargeString",
        FieldType::DateTime => "Timestamp",
        FieldType::Number { .. } => "Double",
        FieldType::Integer { .. } => "Integer64",
        FieldType::Boolean => "Boolean",
    }
}

/// `namespace NS; entity ENTITY { key …; … }` over `fields`, keyed by `keys` (fields' names).
pub fn model(namespace: &str, entity: &str, fields: &[Field], keys: &[&str]) -> String {
    let mut cds = format!("namespace {namespace};\n\nentity {entity} {{\n");
    for key in keys {
        let field = fields.iter().find(|f| f.name == *key).unwrap_or_else(|| panic!("{key} is a field"));
        cds.push_str(&format!("  key {} : {};\n", field.name, cds_type(field.ty)));
    }
    for field in fields.iter().filter(|f| !keys.contains(&f.name)) {
        cds.push_str(&format!("  {} : {};\n", field.name, cds_type(field.ty)));
    }
    cds.push_str("}\n");
    cds
}
