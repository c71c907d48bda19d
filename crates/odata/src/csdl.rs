//! The CSDL XML metadata document (`$metadata`): every entity type with its key and the exact
//! Edm type and nullability of each property, and the entity container with its entity sets.

use std::fmt::Write as _;

use crate::model::{EdmType, EntityType, NAMESPACE};
use crate::parser::{FUNCTION_NAMES, TRANSFORMATIONS};

/// The name of the entity container.
pub const CONTAINER: &str = "Container";

/// The metadata document describing `entities`.
pub fn metadata_document(entities: &[&EntityType]) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n");
    for (vocabulary, alias) in VOCABULARIES {
        let _ = writeln!(
            out,
            "  <edmx:Reference Uri=\"https://oasis-tcs.github.io/odata-vocabularies/vocabularies/{vocabulary}.xml\">\n    \
             <edmx:Include Namespace=\"{vocabulary}\" Alias=\"{alias}\"/>\n  </edmx:Reference>"
        );
    }
    out.push_str("  <edmx:DataServices>\n");
    let _ = writeln!(out, "    <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"{NAMESPACE}\">");
    for entity in entities {
        let _ = writeln!(out, "      <EntityType Name=\"{}\">", escape(entity.name));
        let _ = writeln!(
            out,
            "        <Key>\n          <PropertyRef Name=\"{}\"/>\n        </Key>",
            escape(&entity.properties[entity.key].name)
        );
        for property in &entity.properties {
            let _ = write!(
                out,
                "        <Property Name=\"{}\" Type=\"{}\" Nullable=\"{}\"",
                escape(&property.name),
                property.edm().name(),
                property.nullable
            );
            if let Some(max) = property.max_length() {
                let _ = write!(out, " MaxLength=\"{max}\"");
            }
            if property.edm() == EdmType::DateTimeOffset {
                out.push_str(" Precision=\"3\"");
            }
            out.push_str("/>\n");
        }
        out.push_str("      </EntityType>\n");
    }
    let _ = writeln!(out, "      <EntityContainer Name=\"{CONTAINER}\">");
    capabilities(&mut out);
    for entity in entities {
        let _ = writeln!(
            out,
            "        <EntitySet Name=\"{}\" EntityType=\"{}\"/>",
            escape(entity.set),
            escape(&entity.qualified_name())
        );
    }
    out.push_str("      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n");
    out
}

/// The same description as CSDL JSON (OData CSDL JSON 4.01), for `$metadata?$format=json`.
pub fn metadata_json(entities: &[&EntityType]) -> serde_json::Value {
    use serde_json::{Map, Value as Json, json};
    let mut schema = Map::new();
    for entity in entities {
        let mut ty = Map::new();
        ty.insert("$Kind".into(), json!("EntityType"));
        ty.insert("$Key".into(), json!([entity.properties[entity.key].name]));
        for property in &entity.properties {
            let mut described = Map::new();
            match property.edm() {
                EdmType::String => {}
                EdmType::StringCollection => {
                    described.insert("$Collection".into(), json!(true));
                }
                other => {
                    described.insert("$Type".into(), json!(other.name()));
                }
            }
            if property.nullable {
                described.insert("$Nullable".into(), json!(true));
            }
            if let Some(max) = property.max_length() {
                described.insert("$MaxLength".into(), json!(max));
            }
            if property.edm() == EdmType::DateTimeOffset {
                described.insert("$Precision".into(), json!(3));
            }
            ty.insert(property.name.clone(), Json::Object(described));
        }
        schema.insert(entity.name.to_owned(), Json::Object(ty));
    }
    let mut container = Map::new();
    container.insert("$Kind".into(), json!("EntityContainer"));
    for entity in entities {
        container.insert(entity.set.to_owned(), json!({"$Collection": true, "$Type": entity.qualified_name()}));
    }
    container.insert("@Capabilities.FilterFunctions".into(), json!(FUNCTION_NAMES));
    container
        .insert("@Aggregation.ApplySupported".into(), json!({"Transformations": TRANSFORMATIONS, "Rollup": "None"}));
    schema.insert(CONTAINER.into(), Json::Object(container));
    let references: Map<String, Json> = VOCABULARIES
        .iter()
        .map(|(vocabulary, alias)| {
            (
                format!("https://oasis-tcs.github.io/odata-vocabularies/vocabularies/{vocabulary}.json"),
                json!({"$Include": [{"$Namespace": vocabulary, "$Alias": alias}]}),
            )
        })
        .collect();
    json!({
        "$Version": "4.01",
        "$EntityContainer": format!("{NAMESPACE}.{CONTAINER}"),
        "$Reference": references,
        NAMESPACE: schema,
    })
}

/// The vocabularies the annotations use, with their aliases.
const VOCABULARIES: [(&str, &str); 2] =
    [("Org.OData.Capabilities.V1", "Capabilities"), ("Org.OData.Aggregation.V1", "Aggregation")];

/// What the service implements, for every set of the container, taken from the parser's own
/// tables: the functions of `$filter` and the transformations of `$apply`. Clients such as Power
/// Query fold a step into the request only when the service declares it.
fn capabilities(out: &mut String) {
    let strings = |names: &[&str]| names.iter().map(|n| format!("<String>{}</String>", escape(n))).collect::<String>();
    let _ = writeln!(
        out,
        "        <Annotation Term=\"Capabilities.FilterFunctions\">\n          <Collection>{}</Collection>\n        \
         </Annotation>",
        strings(&FUNCTION_NAMES)
    );
    let _ = writeln!(
        out,
        "        <Annotation Term=\"Aggregation.ApplySupported\">\n          <Record>\n            \
         <PropertyValue Property=\"Transformations\">\n              <Collection>{}</Collection>\n            \
         </PropertyValue>\n            <PropertyValue Property=\"Rollup\" EnumMember=\"Aggregation.RollupType/None\"/>\n          \
         </Record>\n        </Annotation>",
        strings(&TRANSFORMATIONS)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
