//! The `$metadata` document of the Analytics entity set, as clients read it.

use parley_odata::csdl::metadata_document;
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
