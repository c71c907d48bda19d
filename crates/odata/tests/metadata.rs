//! The `$metadata` document of the Analytics entity set, as clients read it.

use parley_odata::csdl::{metadata_document, metadata_json};
use parley_odata::{EntityType, IdName};

#[test]
fn analytics_metadata() {
    insta::assert_snapshot!(metadata_document(&[&EntityType::analytics(IdName::Id)]));
}

#[test]
fn the_older_feed_keys_by_underscore_id() {
    let document = metadata_document(&[&EntityType::analytics(IdName::UnderscoreId)]);
    assert!(document.contains("<PropertyRef Name=\"_id\"/>"), "{document}");
    assert!(document.contains("<Property Name=\"_id\" Type=\"Edm.String\" Nullable=\"false\" MaxLength=\"24\"/>"));
    assert!(!document.contains("Name=\"id\""));
}

#[test]
fn the_json_document_says_what_the_xml_says() {
    let entity = EntityType::analytics(IdName::Id);
    let document = metadata_json(&[&entity]);
    assert_eq!(document["$EntityContainer"], "parley.Container");
    let ty = &document["parley"]["AnalyticsRecord"];
    assert_eq!(ty["$Key"], serde_json::json!(["id"]));
    assert_eq!(ty["id"], serde_json::json!({"$MaxLength": 24}));
    assert_eq!(ty["timestamp"], serde_json::json!({"$Type": "Edm.DateTimeOffset", "$Precision": 3}));
    assert_eq!(ty["trackedGoals"], serde_json::json!({"$Collection": true}), "collections are never null");
    assert_eq!(ty["intent"]["$Nullable"], true);
    assert_eq!(ty["execution"]["$Type"], "Edm.Int64");
    // Every property of the XML document, and no other.
    let xml = metadata_document(&[&entity]);
    let properties = ty.as_object().unwrap().keys().filter(|k| !k.starts_with('$')).count();
    assert_eq!(properties, xml.matches("<Property ").count());
    let container = &document["parley"]["Container"];
    assert_eq!(container["Analytics"]["$Type"], "parley.AnalyticsRecord");
    let functions = container["@Capabilities.FilterFunctions"].as_array().unwrap();
    let transformations = container["@Aggregation.ApplySupported"]["Transformations"].as_array().unwrap();
    assert_eq!(functions.len() + transformations.len(), xml.matches("<String>").count(), "the same names in both");
    assert!(transformations.contains(&serde_json::json!("topcount")));
}
