//! The access cache in front of a real SQLite store: what it remembers, and what makes it forget.
//! Rows are also changed underneath it with plain SQL, standing for another node or a tool on the
//! same database, to tell an answer from memory from one read from the database.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use parley_core::value::now;
use parley_core::{Caller, ObjectId, OrgRole, Project, ProjectAccess, ProjectProfile, ProjectRole, ProjectSettings};
use parley_store::cache::MAX_ENTRIES;
use parley_store::sqlite::SqliteStore;
use parley_store::testing::sqlite_connection;
use parley_store::{
    Bootstrap, CachedStore, IdentityStore, MemberChange, NewApiKey, NewUser, ProjectStore, Store, User, UserDeletion,
    UserKind,
};

/// Long enough that nothing expires during a test unless the test moves the clock.
const LONG: Duration = Duration::from_secs(3600);

struct Fixture {
    dir: tempfile::TempDir,
    /// The store without the cache.
    direct: Arc<dyn Store>,
    cached: CachedStore,
    admin: Caller,
    admin_hash: [u8; 32],
    /// A user without organisation roles, with the `analytics` role in `project`.
    member: Caller,
    member_key: ObjectId,
    member_hash: [u8; 32],
    project: Project,
}

async fn fixture(ttl: Duration) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let direct: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("parley.db")).expect("the store opens"));
    let (organisation, admin_id, admin_key, admin_hash) =
        (ObjectId::generate(), ObjectId::generate(), ObjectId::generate(), [7u8; 32]);
    direct
        .bootstrap(Bootstrap {
            organisation_id: organisation,
            organisation_name: "org".into(),
            admin_id,
            admin_email: "admin@localhost".into(),
            admin_password_hash: None,
            admin_roles: vec![OrgRole::Admin],
            api_key: NewApiKey {
                id: admin_key,
                user_id: admin_id,
                name: "admin".into(),
                secret_hash: admin_hash,
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
        profile: ProjectProfile::default(),
        created_at: now(),
        updated_at: now(),
    };
    direct.create_project(project.clone()).await.expect("a project");
    let member = Caller { user_id: ObjectId::generate(), organisation, org_roles: vec![] };
    let user = User {
        id: member.user_id,
        organisation,
        email: "member@example.com".into(),
        name: "Member".into(),
        roles: vec![],
        kind: UserKind::Person,
        created_at: now(),
    };
    direct.create_user(NewUser { user, password_hash: None }).await.expect("a user");
    let (member_key, member_hash) = (ObjectId::generate(), [8u8; 32]);
    direct.create_api_key(new_key(member_key, member.user_id, member_hash)).await.expect("a key");
    let added = direct.set_member(&project, member.user_id, vec![ProjectRole::Analytics]).await.expect("a member");
    assert_eq!(added, MemberChange::Added);
    let admin = Caller { user_id: admin_id, organisation, org_roles: vec![OrgRole::Admin] };
    let cached = CachedStore::new(Arc::clone(&direct), ttl);
    Fixture { dir, direct, cached, admin, admin_hash, member, member_key, member_hash, project }
}

fn new_key(id: ObjectId, user_id: ObjectId, secret_hash: [u8; 32]) -> NewApiKey {
    NewApiKey { id, user_id, name: "k".into(), secret_hash, created_at: now() }
}

impl Fixture {
    fn path(&self) -> PathBuf {
        self.dir.path().join("parley.db")
    }

    /// Runs SQL on the database file directly, past both stores.
    fn sql(&self, statements: &str) {
        sqlite_connection(&self.path()).execute_batch(statements).expect("the SQL runs");
    }

    async fn caller(&self, hash: [u8; 32]) -> Option<Caller> {
        self.cached.caller_by_key_hash(hash).await.expect("a key lookup")
    }

    async fn access(&self, caller: &Caller) -> Option<ProjectAccess> {
        self.cached.project_for(caller, self.project.id).await.expect("a project lookup").map(|(_, access)| access)
    }
}

/// Wakes the test when the lookup it polls by hand may go on.
struct Signal(mpsc::Sender<()>);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
    }
}

/// Starts `lookup`, lets its database read finish, runs `meanwhile`, and only then lets the
/// lookup go on to remember what it read: a lookup that raced with `meanwhile` and lost.
async fn race<T>(mut lookup: Pin<Box<dyn Future<Output = T> + Send + '_>>, meanwhile: impl Future<Output = ()>) -> T {
    let (sender, woken) = mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(sender)));
    let mut context = Context::from_waker(&waker);
    assert!(lookup.as_mut().poll(&mut context).is_pending(), "the lookup waits for its database read");
    // The SQLite read runs on a blocking thread and wakes the lookup once it has its answer.
    woken.recv_timeout(Duration::from_secs(60)).expect("the database read finishes");
    meanwhile.await;
    match lookup.as_mut().poll(&mut context) {
        Poll::Ready(answer) => answer,
        Poll::Pending => panic!("the lookup waited again after its read; the race was not run as intended"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_remembered_key_is_answered_without_the_database_until_it_expires() {
    let ttl = Duration::from_secs(5);
    let f = fixture(ttl).await;
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()));
    f.sql(&format!("DELETE FROM api_keys WHERE id = '{}'", f.member_key));
    assert_eq!(f.direct.caller_by_key_hash(f.member_hash).await.expect("a lookup"), None, "the row is gone");
    tokio::time::advance(ttl - Duration::from_millis(1)).await;
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()), "within the ttl the answer comes from memory");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(f.caller(f.member_hash).await, None, "once expired the answer comes from the database");
}

#[tokio::test(start_paused = true)]
async fn a_remembered_project_is_answered_without_the_database_until_it_expires() {
    let ttl = Duration::from_secs(5);
    let f = fixture(ttl).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    f.sql(&format!("UPDATE project_members SET roles = '[\"basic\"]' WHERE user_id = '{}'", f.member.user_id));
    tokio::time::advance(ttl - Duration::from_millis(1)).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write), "within the ttl the answer comes from memory");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Read), "once expired the answer comes from the database");
}

#[tokio::test]
async fn a_write_through_the_cache_makes_it_read_the_database_again() {
    let f = fixture(LONG).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    assert!(f.caller(f.member_hash).await.is_some());
    f.sql(&format!(
        "UPDATE project_members SET roles = '[\"basic\"]' WHERE user_id = '{user}'; \
         DELETE FROM api_keys WHERE id = '{key}'",
        user = f.member.user_id,
        key = f.member_key,
    ));
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write), "answered from memory");
    assert!(f.caller(f.member_hash).await.is_some(), "answered from memory");
    f.cached.update_project(f.project.clone()).await.expect("an update");
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Read));
    assert_eq!(f.caller(f.member_hash).await, None);
}

#[tokio::test]
async fn a_key_revoked_through_the_cache_is_refused_at_once() {
    let f = fixture(LONG).await;
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()));
    assert!(f.cached.revoke_api_key(f.member.user_id, f.member_key).await.expect("a revocation"));
    assert_eq!(f.caller(f.member_hash).await, None);
    assert_eq!(f.caller(f.admin_hash).await, Some(f.admin.clone()), "other keys still work");
}

#[tokio::test]
async fn a_revocation_whose_caller_stops_waiting_still_makes_the_cache_forget() {
    let f = fixture(LONG).await;
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()));
    // Polled once, the revocation is handed to the writer; then the request is dropped, as when
    // its client goes away, while the write goes on to commit.
    let mut revocation = Box::pin(f.cached.revoke_api_key(f.member.user_id, f.member_key));
    let waker = Waker::noop();
    assert!(revocation.as_mut().poll(&mut Context::from_waker(waker)).is_pending(), "the write is under way");
    drop(revocation);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.direct.caller_by_key_hash(f.member_hash).await.expect("a key lookup").is_some() {
        assert!(std::time::Instant::now() < deadline, "the abandoned revocation never committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(f.caller(f.member_hash).await, None, "the cache still answered for a revoked key");
}

#[tokio::test]
async fn a_member_removed_through_the_cache_loses_the_project_at_once() {
    let f = fixture(LONG).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    assert!(f.cached.remove_member(f.project.id, f.member.user_id).await.expect("a removal"));
    assert_eq!(f.access(&f.member).await, None);
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()), "the key itself still works");
}

#[tokio::test]
async fn roles_set_through_the_cache_apply_at_once() {
    let f = fixture(LONG).await;
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    let lowered = f.cached.set_member(&f.project, f.member.user_id, vec![ProjectRole::Basic]).await.expect("roles");
    assert_eq!(lowered, MemberChange::Replaced);
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Read));
    f.cached.set_member(&f.project, f.member.user_id, vec![ProjectRole::ProjectAdmin]).await.expect("roles");
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Manage));
}

#[tokio::test]
async fn a_user_deleted_through_the_cache_is_refused_at_once() {
    let f = fixture(LONG).await;
    assert_eq!(f.caller(f.member_hash).await, Some(f.member.clone()));
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    let deleted = f.cached.delete_user(f.member.organisation, f.member.user_id).await.expect("a deletion");
    assert_eq!(deleted, UserDeletion::Deleted);
    assert_eq!(f.caller(f.member_hash).await, None);
    // A caller resolved just before the deletion (a request in flight) no longer sees the project.
    assert_eq!(f.access(&f.member).await, None);
}

#[tokio::test]
async fn a_project_changed_or_deleted_through_the_cache_is_seen_at_once() {
    let f = fixture(LONG).await;
    let (project, access) = f.cached.project_for(&f.admin, f.project.id).await.expect("a lookup").expect("visible");
    assert_eq!(access, ProjectAccess::Manage);
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    let masked = Project { settings: ProjectSettings { mask_ip: true, ..project.settings.clone() }, ..project };
    f.cached.update_project(masked).await.expect("an update");
    let (project, _) = f.cached.project_for(&f.member, f.project.id).await.expect("a lookup").expect("visible");
    assert!(project.settings.mask_ip, "the cache kept the old settings");
    assert!(f.cached.delete_project(f.project.organisation, f.project.id).await.expect("a deletion"));
    assert_eq!(f.access(&f.admin).await, None);
    assert_eq!(f.access(&f.member).await, None);
}

#[tokio::test]
async fn a_key_lookup_that_raced_with_a_revocation_does_not_remember_its_answer() {
    let f = fixture(LONG).await;
    let lookup = f.cached.caller_by_key_hash(f.member_hash);
    let revoke = async {
        assert!(f.cached.revoke_api_key(f.member.user_id, f.member_key).await.expect("a revocation"));
    };
    let raced = race(lookup, revoke).await.expect("a lookup");
    assert_eq!(raced, Some(f.member.clone()), "the racing lookup read the key before its revocation");
    assert_eq!(f.caller(f.member_hash).await, None);
}

#[tokio::test]
async fn a_project_lookup_that_raced_with_a_member_removal_does_not_remember_its_answer() {
    let f = fixture(LONG).await;
    let lookup = f.cached.project_for(&f.member, f.project.id);
    let remove = async {
        assert!(f.cached.remove_member(f.project.id, f.member.user_id).await.expect("a removal"));
    };
    let raced = race(lookup, remove).await.expect("a lookup");
    assert_eq!(raced.map(|(_, access)| access), Some(ProjectAccess::Write), "it read the membership first");
    assert_eq!(f.access(&f.member).await, None);
}

#[tokio::test]
async fn a_zero_ttl_remembers_nothing() {
    let f = fixture(Duration::ZERO).await;
    assert!(f.caller(f.member_hash).await.is_some());
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Write));
    f.sql(&format!(
        "UPDATE project_members SET roles = '[\"basic\"]' WHERE user_id = '{user}'; \
         DELETE FROM api_keys WHERE id = '{key}'",
        user = f.member.user_id,
        key = f.member_key,
    ));
    assert_eq!(f.caller(f.member_hash).await, None);
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Read));
}

#[tokio::test]
async fn absent_answers_are_never_remembered() {
    let f = fixture(LONG).await;
    let (key, hash) = (ObjectId::generate(), [9u8; 32]);
    assert_eq!(f.caller(hash).await, None);
    f.direct.create_api_key(new_key(key, f.member.user_id, hash)).await.expect("a key");
    assert_eq!(f.caller(hash).await, Some(f.member.clone()), "a new key works at once");

    f.sql(&format!("DELETE FROM project_members WHERE user_id = '{}'", f.member.user_id));
    assert_eq!(f.access(&f.member).await, None);
    f.direct.set_member(&f.project, f.member.user_id, vec![ProjectRole::Basic]).await.expect("a member");
    assert_eq!(f.access(&f.member).await, Some(ProjectAccess::Read), "a new membership works at once");
}

#[tokio::test]
async fn a_project_answer_is_not_given_to_a_caller_with_other_roles() {
    let f = fixture(LONG).await;
    assert_eq!(f.access(&f.admin).await, Some(ProjectAccess::Manage));
    // The same user without the admin role (as after a role change made elsewhere) is a member
    // of nothing, so the project is invisible to them, whatever the cache holds for the admin.
    let demoted = Caller { org_roles: vec![], ..f.admin.clone() };
    assert_eq!(f.access(&demoted).await, None);
}

#[tokio::test]
async fn a_full_cache_starts_again_empty() {
    let f = fixture(LONG).await;
    let hash = |i: usize| -> [u8; 32] {
        let mut hash = [0xAB; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        hash
    };
    // All at once, so that the store's writer commits them in a few transactions.
    let created: Vec<_> = (0..=MAX_ENTRIES)
        .map(|i| {
            let (direct, key) = (Arc::clone(&f.direct), new_key(ObjectId::generate(), f.admin.user_id, hash(i)));
            tokio::spawn(async move { direct.create_api_key(key).await })
        })
        .collect();
    for key in created {
        key.await.expect("the task runs").expect("a key");
    }
    for i in 0..MAX_ENTRIES {
        assert!(f.caller(hash(i)).await.is_some());
    }
    f.sql(&format!("DELETE FROM api_keys WHERE secret_hash = x'{}'", hex(&hash(0))));
    assert!(f.caller(hash(0)).await.is_some(), "a full cache still holds its first entry");
    assert!(f.caller(hash(MAX_ENTRIES)).await.is_some());
    assert_eq!(f.caller(hash(0)).await, None, "one more entry than the bound empties the cache");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
