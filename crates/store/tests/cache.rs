//! The access cache in front of a real store: what it remembers, and what makes it forget.

use std::sync::Arc;
use std::time::Duration;

use parley_core::value::now;
use parley_core::{Caller, ObjectId, OrgRole, Project, ProjectAccess, ProjectSettings};
use parley_store::sqlite::SqliteStore;
use parley_store::{Bootstrap, CachedStore, IdentityStore, NewApiKey, ProjectStore, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    /// The store without the cache, standing for another node or a tool on the same database.
    direct: Arc<dyn Store>,
    cached: CachedStore,
    caller: Caller,
    key_id: ObjectId,
    key_hash: [u8; 32],
    project: Project,
}

async fn fixture(ttl: Duration) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let direct: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("parley.db")).expect("the store opens"));
    let (organisation, admin, key_id, key_hash) =
        (ObjectId::generate(), ObjectId::generate(), ObjectId::generate(), [7u8; 32]);
    direct
        .bootstrap(Bootstrap {
            organisation_id: organisation,
            organisation_name: "org".into(),
            admin_id: admin,
            admin_email: "admin@localhost".into(),
            admin_password_hash: None,
            admin_roles: vec![OrgRole::Admin],
            api_key: NewApiKey {
                id: key_id,
                user_id: admin,
                name: "k".into(),
                secret_hash: key_hash,
                created_at: now(),
            },
        })
        .await
        .expect("bootstrap");
    let project = Project {
        id: ObjectId::generate(),
        organisation,
        name: "bot".into(),
        settings: ProjectSettings::default(),
        created_at: now(),
        updated_at: now(),
    };
    direct.create_project(project.clone()).await.expect("a project");
    let caller = Caller { user_id: admin, organisation, org_roles: vec![OrgRole::Admin] };
    let cached = CachedStore::new(Arc::clone(&direct), ttl);
    Fixture { _dir: dir, direct, cached, caller, key_id, key_hash, project }
}

#[tokio::test]
async fn a_key_revoked_through_the_cache_stops_working_at_once() {
    let f = fixture(Duration::from_secs(3600)).await;
    assert_eq!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup"), Some(f.caller.clone()));
    assert!(f.cached.revoke_api_key(f.caller.user_id, f.key_id).await.expect("revoke"));
    assert_eq!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup"), None);
}

#[tokio::test]
async fn a_change_made_elsewhere_is_seen_when_the_entry_expires() {
    let f = fixture(Duration::from_millis(300)).await;
    assert!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup").is_some());
    assert!(f.direct.revoke_api_key(f.caller.user_id, f.key_id).await.expect("revoke"));
    // Within the time to live the node still answers from memory: the documented bound.
    assert!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup").is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup"), None);
}

#[tokio::test]
async fn a_zero_time_to_live_caches_nothing() {
    let f = fixture(Duration::ZERO).await;
    assert!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup").is_some());
    assert!(f.cached.project_for(&f.caller, f.project.id).await.expect("lookup").is_some());
    assert!(f.direct.revoke_api_key(f.caller.user_id, f.key_id).await.expect("revoke"));
    assert!(f.direct.delete_project(f.project.organisation, f.project.id).await.expect("delete"));
    assert_eq!(f.cached.caller_by_key_hash(f.key_hash).await.expect("lookup"), None);
    assert_eq!(f.cached.project_for(&f.caller, f.project.id).await.expect("lookup"), None);
}

#[tokio::test]
async fn project_changes_through_the_cache_take_effect_at_once() {
    let f = fixture(Duration::from_secs(3600)).await;
    let (project, access) = f.cached.project_for(&f.caller, f.project.id).await.expect("lookup").expect("visible");
    assert_eq!(access, ProjectAccess::Manage);
    let masked = Project { settings: ProjectSettings { mask_ip: true, ..project.settings.clone() }, ..project };
    f.cached.update_project(masked).await.expect("update");
    let (project, _) = f.cached.project_for(&f.caller, f.project.id).await.expect("lookup").expect("visible");
    assert!(project.settings.mask_ip, "the cache kept the old settings");
    assert!(f.cached.delete_project(f.project.organisation, f.project.id).await.expect("delete"));
    assert_eq!(f.cached.project_for(&f.caller, f.project.id).await.expect("lookup"), None);
}

#[tokio::test]
async fn a_cached_project_is_not_shared_with_a_caller_of_other_roles() {
    let f = fixture(Duration::from_secs(3600)).await;
    assert!(f.cached.project_for(&f.caller, f.project.id).await.expect("lookup").is_some());
    // The same user without the admin role (as after a role change made elsewhere) is a member
    // of nothing, so the project is invisible, whatever the cache holds for the admin.
    let demoted = Caller { org_roles: vec![], ..f.caller.clone() };
    assert_eq!(f.cached.project_for(&demoted, f.project.id).await.expect("lookup"), None);
}

#[tokio::test]
async fn unknown_keys_and_projects_are_not_remembered() {
    let f = fixture(Duration::from_secs(3600)).await;
    let other = [9u8; 32];
    assert_eq!(f.cached.caller_by_key_hash(other).await.expect("lookup"), None);
    f.direct
        .create_api_key(NewApiKey {
            id: ObjectId::generate(),
            user_id: f.caller.user_id,
            name: "new".into(),
            secret_hash: other,
            created_at: now(),
        })
        .await
        .expect("a key");
    assert!(f.cached.caller_by_key_hash(other).await.expect("lookup").is_some(), "a new key must work at once");
}
