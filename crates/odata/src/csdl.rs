//! The CSDL XML metadata document (`$metadata`): every entity type with its key and the exact
//! Edm type and nullability of each property, and the entity container with its entity sets.

use std::fmt::Write as _;

use crate::model::{EdmType, EntityType, NAMESPACE};

/// The name of the entity container.
pub const CONTAINER: &str = "Container";

/// The metadata document describing `entities`.
pub fn metadata_document(entities: &[&EntityType]) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n");
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
