//! The storage contract. Every test runs on SQLite (a file of its own) and, when
//! `PARLEY_TEST_POSTGRES_URL` names a PostgreSQL server, on PostgreSQL too (a database of its own,
//! created for the test and dropped after it). When the variable is set, a server that cannot be
//! reached fails the PostgreSQL tests. Where both engines run, one test also checks that they give
//! the very same answers to the same calls.

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;

use parley_core::field::idx;
use parley_core::value::format_time;
use parley_core::{
    Caller, Erasure, ListParams, NewRecord, ObjectId, OrgRole, Project, ProjectAccess, ProjectRole, ProjectSettings,
    Record, RecordFilter, RecordPage, RecordQuery, RecordUpdate, SortKey, Task, TaskStatus, Value,
};
use parley_odata::{CompareOp, EntityType, Expr, Function, IdName, Operand, OrderKey, Query, parse_query, skiptoken};
use parley_store::testing::Proxy;
use parley_store::{
    ApiKeyInfo, Bootstrap, Constraint, GrantType, IngestCounts, Member, MemberChange, NewApiKey, NewRefreshToken,
    NewUser, OAuthClient, ODataRead, Organisation, RefreshOutcome, Store, StoreError, TokenSession, UpdateOutcome,
    User, UserDeletion, UserKind,
};
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const POSTGRES_URL: &str = "PARLEY_TEST_POSTGRES_URL";

// ---------------------------------------------------------------------------------------------
// One fresh database per test

enum Backing {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { admin_url: String, database: String, url: String },
}

struct TestDb {
    store: Arc<dyn Store>,
    backing: Backing,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("parley.db");
        let store = open(&format!("sqlite://{}", path.display())).await;
        TestDb { store, backing: Backing::Sqlite { _dir: dir, path } }
    }

    /// A fresh database on the server `PARLEY_TEST_POSTGRES_URL` names, or `None` when it is unset
    /// outside CI. In CI (`CI` set) an unset variable is a failure, so that nothing skips there.
    async fn postgres() -> Option<TestDb> {
        let Some(admin_url) = std::env::var(POSTGRES_URL).ok().filter(|url| !url.is_empty()) else {
            assert!(std::env::var_os("CI").is_none(), "{POSTGRES_URL} must be set in CI");
            return None;
        };
        let database = format!("parley_test_{}", ObjectId::generate());
        let admin = admin_client(&admin_url).await;
        // An ICU locale whose order is not byte order, so that the tests see whether the schema
        // sorts text by bytes whatever the database's locale; plain when the server has no ICU.
        let icu = format!("CREATE DATABASE {database} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
        if admin.batch_execute(&icu).await.is_err() {
            admin.batch_execute(&format!("CREATE DATABASE {database}")).await.expect("CREATE DATABASE");
        }
        let url = url_with_database(&admin_url, &database);
        let store = open(&url).await;
        Some(TestDb { store, backing: Backing::Postgres { admin_url, database, url } })
    }

    /// Adds a user who is not an organisation admin. No storage interface creates users yet, so
    /// this writes the row itself.
    async fn add_user(&self, organisation: ObjectId, user: ObjectId, roles: &[OrgRole]) {
        let roles = serde_json::to_string(roles).unwrap();
        let email = format!("{user}@example.com");
        match &self.backing {
            Backing::Sqlite { path, .. } => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute(
                        "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) \
                         VALUES (?1, ?2, ?3, 'Member', NULL, ?4, 0)",
                        rusqlite::params![user.to_string(), organisation.to_string(), email, roles],
                    )
                    .unwrap();
            }
            Backing::Postgres { url, .. } => {
                admin_client(url)
                    .await
                    .execute(
                        "INSERT INTO users (id, organisation, email, name, password_hash, roles, created_at) \
                         VALUES ($1, $2, $3, 'Member', NULL, $4::text::jsonb, now())",
                        &[&user.to_string(), &organisation.to_string(), &email, &roles],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    /// Makes a user a member of a project with these roles.
    async fn add_member(&self, project: ObjectId, user: ObjectId, roles: &[ProjectRole]) {
        let roles = serde_json::to_string(roles).unwrap();
        match &self.backing {
            Backing::Sqlite { path, .. } => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute(
                        "INSERT INTO project_members (project_id, user_id, roles) VALUES (?1, ?2, ?3)",
                        rusqlite::params![project.to_string(), user.to_string(), roles],
                    )
                    .unwrap();
            }
            Backing::Postgres { url, .. } => {
                admin_client(url)
                    .await
                    .execute(
                        "INSERT INTO project_members (project_id, user_id, roles) VALUES ($1, $2, $3::text::jsonb)",
                        &[&project.to_string(), &user.to_string(), &roles],
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Backing::Postgres { admin_url, database, .. } = &self.backing else {
            return;
        };
        let (admin_url, database) = (admin_url.clone(), database.clone());
        // Best effort, from a thread of its own so that it also runs when a test panics.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

impl TestDb {
    /// Closes the store and opens the same database again, as a restart does.
    async fn reopen(&self) -> Arc<dyn Store> {
        self.store.close().await;
        match &self.backing {
            Backing::Sqlite { path, .. } => open(&format!("sqlite://{}", path.display())).await,
            Backing::Postgres { url, .. } => open(url).await,
        }
    }
}

async fn open(url: &str) -> Arc<dyn Store> {
    match parley_store::open(url, 4).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open the store at {url}: {e}"),
    }
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL} is set but PostgreSQL at {url} cannot be reached: {e}"));
    tokio::spawn(connection);
    client
}

/// The parts of a `postgres://` URL: scheme with `://`, user info with `@`, `host:port`, and the
/// rest (path and query).
fn url_parts(url: &str) -> (&str, &str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let at = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (&url[..start], &url[start..at], &url[at..end], &url[end..])
}

fn url_with_database(url: &str, database: &str) -> String {
    let (scheme, user, address, rest) = url_parts(url);
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{scheme}{user}{address}/{database}{query}")
}

fn url_with_address(url: &str, new_address: &str) -> String {
    let (scheme, user, _, rest) = url_parts(url);
    format!("{scheme}{user}{new_address}{rest}")
}

/// Generates the contract tests: each function runs once per engine.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

contract!(
    ready_when_migrated,
    bootstrap_runs_once,
    api_keys_are_created_listed_and_revoked,
    projects_are_visible_to_admins_and_members,
    updating_a_project_changes_it,
    deleting_a_project_deletes_its_records,
    values_read_back_exactly,
    ingest_skips_duplicates,
    concurrent_ingests_of_one_batch_store_it_once,
    updates_change_only_named_fields_of_matching_records,
    listing_pages_by_cursor_both_ways_in_every_order,
    records_are_found_only_in_the_given_projects,
    users_are_created_listed_and_deleted,
    deleting_a_user_takes_their_keys_memberships_and_sessions,
    members_are_added_replaced_and_removed,
    the_signing_key_and_the_default_client_exist_once,
    refresh_tokens_rotate_once_and_reuse_revokes_the_session,
    sessions_are_revoked_by_either_token,
    masked_records_read_back,
    an_update_that_matches_nothing_waits_for_its_record,
    pending_updates_apply_in_arrival_order_when_they_match,
    expired_pending_updates_are_never_applied,
    pending_updates_survive_a_restart,
    an_update_racing_the_ingest_of_its_record_is_never_lost,
    erasure_deletes_what_it_matches_batch_by_batch,
    a_failed_task_keeps_its_reason_and_forgets_its_request,
    retention_purges_expired_records_in_batches,
    closing_commits_accepted_writes_and_refuses_later_ones,
    odata_filters_agree_with_odata_semantics,
    odata_pages_by_keyset_in_every_order,
    odata_groups_and_aggregates,
);

// ---------------------------------------------------------------------------------------------
// Fixtures: fixed ids and times, so that both engines get identical inputs

fn oid(n: u64) -> ObjectId {
    ObjectId::parse(&format!("{n:024x}")).unwrap()
}

const BASE: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

struct Org {
    id: ObjectId,
    admin: Caller,
    key_hash: [u8; 32],
}

fn bootstrap_of(org: u64) -> Bootstrap {
    let admin_id = oid(0xb000 + org);
    Bootstrap {
        organisation_id: oid(0xa000 + org),
        organisation_name: format!("Organisation {org}"),
        admin_id,
        admin_email: "admin@example.com".into(),
        admin_password_hash: Some("$argon2id$not-a-real-hash".into()),
        admin_roles: vec![OrgRole::Admin],
        api_key: NewApiKey {
            id: oid(0xd000 + org),
            user_id: admin_id,
            name: "bootstrap".into(),
            secret_hash: [org as u8; 32],
            created_at: BASE,
        },
    }
}

async fn bootstrap(db: &TestDb) -> Org {
    let b = bootstrap_of(1);
    assert!(db.store.bootstrap(b.clone()).await.unwrap());
    Org {
        id: b.organisation_id,
        admin: Caller { user_id: b.admin_id, organisation: b.organisation_id, org_roles: vec![OrgRole::Admin] },
        key_hash: b.api_key.secret_hash,
    }
}

fn project_of(org: &Org, n: u64) -> Project {
    let created = BASE + Duration::seconds(n as i64);
    Project {
        id: oid(0xc000 + n),
        organisation: org.id,
        name: format!("Project {n}"),
        settings: ProjectSettings::default(),
        created_at: created,
        updated_at: created,
    }
}

async fn create_project(db: &TestDb, org: &Org, n: u64) -> Project {
    let project = project_of(org, n);
    db.store.create_project(project.clone()).await.unwrap();
    project
}

/// A stamped record of `project` with id `n`; `fields` add to or override the defaults.
fn record(project: &Project, n: u64, fields: Json) -> Record {
    let mut json = json!({
        "projectId": project.id.to_string(),
        "contactId": format!("c{}", n % 3),
        "sessionId": format!("s{}", n % 5),
        "inputId": format!("i{n}"),
    });
    for (name, value) in fields.as_object().unwrap() {
        json[name] = value.clone();
    }
    let stamped = NewRecord::parse(json).unwrap().stamp(project.organisation, &project.settings, BASE);
    let mut values = stamped.values().to_vec();
    values[idx::ID] = Value::Text(format!("{n:024x}"));
    Record::from_values(values)
}

fn filter_of(project: &Project) -> RecordFilter {
    RecordFilter { project_id: project.id, contact_id: None, session_id: None, from: None, to: None }
}

fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id().to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// The contract

async fn ready_when_migrated(db: &TestDb) {
    db.store.ready().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&db.store.engine()));
}

async fn bootstrap_runs_once(db: &TestDb) {
    let org = bootstrap(db).await;
    let second = bootstrap_of(2);
    assert!(!db.store.bootstrap(second.clone()).await.unwrap());
    assert_eq!(db.store.caller_by_key_hash(org.key_hash).await.unwrap(), Some(org.admin.clone()));
    assert_eq!(db.store.caller_by_key_hash(second.api_key.secret_hash).await.unwrap(), None);
}

async fn api_keys_are_created_listed_and_revoked(db: &TestDb) {
    let org = bootstrap(db).await;
    let admin = org.admin.user_id;
    assert_eq!(db.store.caller_by_key_hash([0xee; 32]).await.unwrap(), None);

    let key = NewApiKey {
        id: oid(0xd100),
        user_id: admin,
        name: "reporting".into(),
        secret_hash: [0x42; 32],
        created_at: BASE + Duration::minutes(1),
    };
    let created = db.store.create_api_key(key.clone()).await.unwrap();
    assert_eq!(created, ApiKeyInfo { id: key.id, name: "reporting".into(), created_at: key.created_at });
    assert_eq!(db.store.caller_by_key_hash([0x42; 32]).await.unwrap(), Some(org.admin.clone()));
    let listed = db.store.list_api_keys(admin).await.unwrap();
    assert_eq!(
        listed,
        vec![ApiKeyInfo { id: oid(0xd001), name: "bootstrap".into(), created_at: BASE }, created.clone()]
    );

    let same_secret = NewApiKey { id: oid(0xd101), name: "copy".into(), ..key.clone() };
    assert!(matches!(db.store.create_api_key(same_secret).await, Err(StoreError::Conflict(_))));

    let member = oid(0xb100);
    db.add_user(org.id, member, &[OrgRole::ApiKeys]).await;
    let member_key = NewApiKey { id: oid(0xd102), user_id: member, secret_hash: [0x43; 32], ..key.clone() };
    db.store.create_api_key(member_key).await.unwrap();
    assert_eq!(
        db.store.caller_by_key_hash([0x43; 32]).await.unwrap(),
        Some(Caller { user_id: member, organisation: org.id, org_roles: vec![OrgRole::ApiKeys] })
    );
    assert_eq!(ids_of_keys(db.store.list_api_keys(member).await.unwrap()), vec![oid(0xd102)]);

    assert!(!db.store.revoke_api_key(member, key.id).await.unwrap(), "a user revokes only their own keys");
    assert!(db.store.revoke_api_key(admin, key.id).await.unwrap());
    assert!(!db.store.revoke_api_key(admin, key.id).await.unwrap());
    assert_eq!(db.store.caller_by_key_hash([0x42; 32]).await.unwrap(), None);
    assert_eq!(ids_of_keys(db.store.list_api_keys(admin).await.unwrap()), vec![oid(0xd001)]);
    assert!(db.store.list_api_keys(oid(0xb999)).await.unwrap().is_empty());
}

fn ids_of_keys(keys: Vec<ApiKeyInfo>) -> Vec<ObjectId> {
    keys.into_iter().map(|k| k.id).collect()
}

async fn projects_are_visible_to_admins_and_members(db: &TestDb) {
    let org = bootstrap(db).await;
    let (p1, p2, p3) =
        (create_project(db, &org, 1).await, create_project(db, &org, 2).await, create_project(db, &org, 3).await);

    let admin = &org.admin;
    assert_eq!(db.store.project_for(admin, p1.id).await.unwrap(), Some((p1.clone(), ProjectAccess::Manage)));
    assert_eq!(db.store.project_for(admin, oid(0xc999)).await.unwrap(), None);
    assert_eq!(db.store.list_projects(admin, 0, 2).await.unwrap(), (vec![p1.clone(), p2.clone()], 3));
    assert_eq!(db.store.list_projects(admin, 2, 2).await.unwrap(), (vec![p3.clone()], 3));
    assert_eq!(db.store.list_projects(admin, 5, 2).await.unwrap(), (vec![], 3));
    assert_eq!(sorted(db.store.visible_project_ids(admin).await.unwrap()), vec![p1.id, p2.id, p3.id]);

    let member = Caller { user_id: oid(0xb100), organisation: org.id, org_roles: vec![OrgRole::Odata] };
    db.add_user(org.id, member.user_id, &member.org_roles).await;
    db.add_member(p2.id, member.user_id, &[ProjectRole::Basic]).await;
    db.add_member(p3.id, member.user_id, &[ProjectRole::Analytics, ProjectRole::ProjectAdmin]).await;
    assert_eq!(db.store.project_for(&member, p1.id).await.unwrap(), None);
    assert_eq!(db.store.project_for(&member, p2.id).await.unwrap(), Some((p2.clone(), ProjectAccess::Read)));
    assert_eq!(db.store.project_for(&member, p3.id).await.unwrap(), Some((p3.clone(), ProjectAccess::Manage)));
    assert_eq!(db.store.list_projects(&member, 0, 10).await.unwrap(), (vec![p2.clone(), p3.clone()], 2));
    assert_eq!(db.store.list_projects(&member, 1, 10).await.unwrap(), (vec![p3.clone()], 2));
    assert_eq!(sorted(db.store.visible_project_ids(&member).await.unwrap()), vec![p2.id, p3.id]);

    let stranger = Caller { user_id: oid(0xb200), organisation: org.id, org_roles: vec![] };
    assert_eq!(db.store.project_for(&stranger, p2.id).await.unwrap(), None);
    assert_eq!(db.store.list_projects(&stranger, 0, 10).await.unwrap(), (vec![], 0));
    assert!(db.store.visible_project_ids(&stranger).await.unwrap().is_empty());

    let other_admin = Caller { organisation: oid(0xa999), ..org.admin.clone() };
    assert_eq!(db.store.project_for(&other_admin, p1.id).await.unwrap(), None);
    assert_eq!(db.store.list_projects(&other_admin, 0, 10).await.unwrap(), (vec![], 0));
    assert!(db.store.visible_project_ids(&other_admin).await.unwrap().is_empty());
}

fn sorted(mut ids: Vec<ObjectId>) -> Vec<ObjectId> {
    ids.sort();
    ids
}

async fn updating_a_project_changes_it(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let changed = Project {
        name: "Renamed — ✓".into(),
        settings: ProjectSettings { collect_analytics: false, mask_sensitive: true, mask_ip: true, retention_days: 0 },
        updated_at: BASE + Duration::hours(1),
        ..project.clone()
    };
    db.store.update_project(changed.clone()).await.unwrap();
    assert_eq!(db.store.project_for(&org.admin, project.id).await.unwrap(), Some((changed, ProjectAccess::Manage)));

    let elsewhere = Project { organisation: oid(0xa999), name: "Not mine".into(), ..project.clone() };
    db.store.update_project(elsewhere).await.unwrap();
    assert_ne!(db.store.project_for(&org.admin, project.id).await.unwrap().unwrap().0.name, "Not mine");
}

async fn deleting_a_project_deletes_its_records(db: &TestDb) {
    let org = bootstrap(db).await;
    let (doomed, kept) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let member = oid(0xb100);
    db.add_user(org.id, member, &[]).await;
    db.add_member(doomed.id, member, &[ProjectRole::Basic]).await;
    let records = vec![record(&doomed, 1, json!({})), record(&doomed, 2, json!({})), record(&kept, 3, json!({}))];
    db.store.insert_records(records, BASE).await.unwrap();

    assert!(!db.store.delete_project(oid(0xa999), doomed.id).await.unwrap(), "only within its organisation");
    assert_eq!(db.store.count_records(&filter_of(&doomed)).await.unwrap(), 2);

    assert!(db.store.delete_project(org.id, doomed.id).await.unwrap());
    assert_eq!(db.store.project_for(&org.admin, doomed.id).await.unwrap(), None);
    assert_eq!(db.store.count_records(&filter_of(&doomed)).await.unwrap(), 0);
    assert_eq!(db.store.get_record(&[doomed.id], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.count_records(&filter_of(&kept)).await.unwrap(), 1);
    let member = Caller { user_id: member, organisation: org.id, org_roles: vec![] };
    assert!(db.store.visible_project_ids(&member).await.unwrap().is_empty());
    assert!(!db.store.delete_project(org.id, doomed.id).await.unwrap());
}

/// Records with every kind of value, one with every optional field null.
fn varied_records(project: &Project) -> Vec<Record> {
    let full = record(
        project,
        1,
        serde_json::from_str(
            r#"{
                "timestamp": "2024-05-01T14:30:15.123+02:00",
                "inputText": "héllo ✓ 😀 \"quoted\" \\ back",
                "inputData": {"zeta": 1, "alpha": [1, 2.5, "x", null, 1e300, 0.1, -7, 1e15, 1.5e-7],
                              "mid": {"b": null, "a": true}, "big": 12345678901234567890, "float": 1.0},
                "state": "s", "mode": "m", "userType": "u", "channel": "web", "flowLanguage": "de-DE",
                "flowName": "Main", "flowReferenceId": "f1", "entrypoint": "e", "entrypointType": "et",
                "intent": "greet", "intentFlow": "if", "intentScore": 0.875,
                "slots": "x",
                "foundSlots": "a, b", "foundSlotDetails": "{}",
                "completedGoals": ["z", "a", "é"], "trackedGoals": [],
                "understood": false, "executionTime": 12.5, "execution": 3,
                "localeName": "German", "localeReferenceId": "l1", "endpointName": "web",
                "endpointUrlToken": "tok", "endpointType": "webchat", "snapshotName": "snap",
                "rating": -1, "ratingComment": "meh", "inHandoverRequest": true, "inHandoverConversation": false,
                "handoverEscalations": 9007199254740993,
                "custom1": "1", "custom2": "2", "custom3": "3", "custom4": "4", "custom5": "5",
                "custom6": "6", "custom7": "7", "custom8": "8", "custom9": "9", "custom10": "10",
                "ip": "192.0.2.1"
            }"#,
        )
        .unwrap(),
    );
    let sparse = record(project, 2, json!({"slots": [1, {"b": 2, "a": 1}], "inputData": "just text"}));
    let empty = record(project, 3, json!({"timestamp": "1969-12-31T23:59:59.999Z"}));
    vec![full, sparse, empty]
}

async fn values_read_back_exactly(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let records = varied_records(&project);
    db.store.insert_records(records.clone(), BASE).await.unwrap();
    for original in &records {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&[project.id], id).await.unwrap().expect("the record");
        assert_eq!(&stored, original);
        // Key order of JSON objects is kept too: the text form is identical.
        assert_eq!(Json::Object(stored.to_json()).to_string(), Json::Object(original.to_json()).to_string());
    }
    let slots = parley_core::field_index("slots").unwrap();
    assert_eq!(records[0].get(slots), &Value::Json(json!("x")), "a JSON string stays a JSON value");
}

async fn masked_records_read_back(db: &TestDb) {
    let org = bootstrap(db).await;
    let mut project = create_project(db, &org, 1).await;
    project.settings.mask_sensitive = true;
    let masked = record(&project, 1, json!({"inputText": "secret", "inputData": {"card": "4111"}, "ip": "192.0.2.1"}));
    db.store.insert_records(vec![masked.clone()], BASE).await.unwrap();
    assert_eq!(db.store.get_record(&[project.id], oid(1)).await.unwrap(), Some(masked));
}

async fn ingest_skips_duplicates(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let batch = vec![
        record(&project, 1, json!({"inputId": "a"})),
        record(&project, 2, json!({"inputId": "b"})),
        record(&project, 3, json!({"inputId": "a", "intent": "second"})),
    ];
    let counts = db.store.insert_records(batch, BASE).await.unwrap();
    assert_eq!(counts, IngestCounts { inserted: 2, duplicates: 1, pending_applied: 0 });
    let kept = db.store.get_record(&[project.id], oid(1)).await.unwrap();
    assert!(kept.is_some(), "the first of two records with one inputId is kept");
    assert_eq!(db.store.get_record(&[project.id], oid(3)).await.unwrap(), None);

    let again = vec![
        record(&project, 4, json!({"inputId": "a"})),
        record(&project, 5, json!({"inputId": "b"})),
        record(&project, 6, json!({"inputId": "c"})),
    ];
    assert_eq!(
        db.store.insert_records(again, BASE).await.unwrap(),
        IngestCounts { inserted: 1, duplicates: 2, pending_applied: 0 }
    );
    let elsewhere = vec![record(&other, 7, json!({"inputId": "a"}))];
    assert_eq!(
        db.store.insert_records(elsewhere, BASE).await.unwrap(),
        IngestCounts { inserted: 1, duplicates: 0, pending_applied: 0 }
    );
    assert_eq!(db.store.insert_records(vec![], BASE).await.unwrap(), IngestCounts::default());
    assert_eq!(db.store.count_records(&filter_of(&project)).await.unwrap(), 3);
    assert_eq!(db.store.count_records(&filter_of(&other)).await.unwrap(), 1);
}

async fn concurrent_ingests_of_one_batch_store_it_once(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let sends: Vec<_> = (0..6u64)
        .map(|attempt| {
            let store = Arc::clone(&db.store);
            let batch: Vec<Record> =
                (0..10u64).map(|i| record(&project, attempt * 100 + i, json!({"inputId": format!("i{i}")}))).collect();
            tokio::spawn(async move { store.insert_records(batch, BASE).await })
        })
        .collect();
    let mut total = IngestCounts::default();
    for send in sends {
        let counts = send.await.unwrap().unwrap();
        total.inserted += counts.inserted;
        total.duplicates += counts.duplicates;
    }
    assert_eq!(total, IngestCounts { inserted: 10, duplicates: 50, pending_applied: 0 });
    assert_eq!(db.store.count_records(&filter_of(&project)).await.unwrap(), 10);
}

fn update(project: &Project, selector: Json, properties: Json) -> RecordUpdate {
    let mut body = json!({"projectId": project.id.to_string(), "properties": properties});
    for (name, value) in selector.as_object().unwrap() {
        body[name] = value.clone();
    }
    RecordUpdate::parse(body).unwrap()
}

async fn updates_change_only_named_fields_of_matching_records(db: &TestDb) {
    update_transcript(db).await;
}

/// Runs a series of updates, checks each, and returns the records' final JSON.
async fn update_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let rich = json!({"custom1": "keep?", "custom2": "kept", "intent": "old", "rating": 1, "slots": {"k": 1}});
    let with = |contact: &str, session: &str, input: &str| {
        let mut fields = rich.clone();
        fields["contactId"] = json!(contact);
        fields["sessionId"] = json!(session);
        fields["inputId"] = json!(input);
        fields
    };
    let originals = vec![
        record(&project, 1, with("c1", "s1", "i1")),
        record(&project, 2, with("c1", "s1", "i2")),
        record(&project, 3, with("c1", "s2", "i3")),
        record(&project, 4, with("c2", "s1", "i4")),
        record(&other, 5, with("c1", "s1", "i1")),
    ];
    db.store.insert_records(originals.clone(), BASE).await.unwrap();
    let everywhere = [project.id, other.id];

    let now = BASE + Duration::hours(1) + Duration::nanoseconds(123_456_789);
    let stored_now = BASE + Duration::hours(1) + Duration::milliseconds(123);
    let changes = json!({
        "intent": "new", "custom1": null, "rating": 4.5, "trackedGoals": ["g2", "g1"], "slots": "x",
        "inHandoverRequest": true, "handoverEscalations": 2
    });
    let matched = db
        .store
        .update_records(update(&project, json!({"contactId": "c1"}), changes), now, None)
        .await
        .unwrap()
        .matched;
    assert_eq!(matched, 3);
    for original in &originals {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&everywhere, id).await.unwrap().unwrap();
        let hit = original.project_id() == project.id && original.get(idx::CONTACT_ID) == &Value::Text("c1".into());
        if !hit {
            assert_eq!(&stored, original, "a record the update did not match is untouched");
            continue;
        }
        let mut expected = original.values().to_vec();
        let set = |expected: &mut Vec<Value>, name: &str, value: Value| {
            expected[parley_core::field_index(name).unwrap()] = value;
        };
        set(&mut expected, "intent", Value::Text("new".into()));
        set(&mut expected, "custom1", Value::Null);
        set(&mut expected, "rating", Value::Number(4.5));
        set(&mut expected, "trackedGoals", Value::TextList(vec!["g2".into(), "g1".into()]));
        set(&mut expected, "slots", Value::Json(json!("x")));
        set(&mut expected, "inHandoverRequest", Value::Bool(true));
        set(&mut expected, "handoverEscalations", Value::Integer(2));
        expected[idx::UPDATED_AT] = Value::Time(stored_now);
        assert_eq!(stored, Record::from_values(expected));
    }

    let narrow = |selector: Json| update(&project, selector, json!({"state": "narrowed"}));
    let later = now + Duration::minutes(1);
    let cases = [
        (json!({"contactId": "c1", "sessionId": "s1"}), 2),
        (json!({"contactId": "c1", "sessionId": "s1", "inputId": "i2"}), 1),
        (json!({"contactId": "c1", "inputId": "i3"}), 1),
        (json!({"contactId": "c1", "sessionId": "s2", "inputId": "i1"}), 0),
        (json!({"contactId": "c9"}), 0),
        (json!({"contactId": "c1"}), 3),
    ];
    for (selector, expected) in cases {
        let matched = db.store.update_records(narrow(selector.clone()), later, None).await.unwrap().matched;
        assert_eq!(matched, expected, "{selector}");
    }
    let untouched = db.store.get_record(&everywhere, oid(4)).await.unwrap().unwrap();
    assert_eq!(untouched.get(parley_core::field_index("state").unwrap()), &Value::Null);

    let mut transcript = Vec::new();
    for original in &originals {
        let id = ObjectId::parse(original.id()).unwrap();
        let stored = db.store.get_record(&everywhere, id).await.unwrap().unwrap();
        transcript.push(Json::Object(stored.to_json()).to_string());
    }
    transcript
}

async fn records_are_found_only_in_the_given_projects(db: &TestDb) {
    let org = bootstrap(db).await;
    let (mine, theirs) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let original = record(&mine, 1, json!({}));
    db.store.insert_records(vec![original.clone(), record(&theirs, 2, json!({}))], BASE).await.unwrap();
    assert_eq!(db.store.get_record(&[mine.id], oid(1)).await.unwrap(), Some(original.clone()));
    assert_eq!(db.store.get_record(&[theirs.id, mine.id], oid(1)).await.unwrap(), Some(original));
    assert_eq!(db.store.get_record(&[theirs.id], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.get_record(&[], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.get_record(&[mine.id], oid(99)).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Pending updates

const WINDOW: Duration = Duration::minutes(10);

fn by_input(project: &Project, contact: &str, input: &str, properties: Json) -> RecordUpdate {
    update(project, json!({"contactId": contact, "inputId": input}), properties)
}

fn text_of(record: &Record, name: &str) -> Value {
    record.get(parley_core::field_index(name).unwrap()).clone()
}

async fn stored(db: &TestDb, project: &Project, n: u64) -> Record {
    db.store.get_record(&[project.id], oid(n)).await.unwrap().expect("the record")
}

async fn an_update_that_matches_nothing_waits_for_its_record(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let later = BASE + Duration::minutes(1);

    let early = by_input(&project, "c1", "i1", json!({"custom1": "early", "rating": 0.1}));
    let outcome = db.store.update_records(early, BASE, Some(BASE + WINDOW)).await.unwrap();
    assert_eq!(outcome, UpdateOutcome { matched: 0, deferred: true });

    let counts = db
        .store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], later)
        .await
        .unwrap();
    assert_eq!(counts, IngestCounts { inserted: 1, duplicates: 0, pending_applied: 1 });
    let applied = stored(db, &project, 1).await;
    assert_eq!(text_of(&applied, "custom1"), Value::Text("early".into()));
    assert_eq!(text_of(&applied, "rating"), Value::Number(0.1));
    assert_eq!(applied.get(idx::UPDATED_AT), &Value::Time(later));

    // Applied once: the same input ingested again is a duplicate and nothing is left to apply.
    let again = db.store.insert_records(vec![record(&project, 2, json!({"inputId": "i1"}))], later).await.unwrap();
    assert_eq!(again, IngestCounts { inserted: 0, duplicates: 1, pending_applied: 0 });

    // After the ingest, updates match at once.
    let after = by_input(&project, "c1", "i1", json!({"custom1": "after"}));
    let outcome = db.store.update_records(after, later, Some(later + WINDOW)).await.unwrap();
    assert_eq!(outcome, UpdateOutcome { matched: 1, deferred: false });
    assert_eq!(text_of(&stored(db, &project, 1).await, "custom1"), Value::Text("after".into()));

    // Never deferred: without an input, without a window, or when the input's record exists but
    // belongs to another contact (it can never match).
    let cases = [
        (update(&project, json!({"contactId": "c9"}), json!({"custom1": "x"})), Some(BASE + WINDOW)),
        (by_input(&project, "c1", "i7", json!({"custom1": "x"})), None),
        (by_input(&project, "c2", "i1", json!({"custom1": "x"})), Some(BASE + WINDOW)),
    ];
    for (update, defer_until) in cases {
        let outcome = db.store.update_records(update.clone(), later, defer_until).await.unwrap();
        assert_eq!(outcome, UpdateOutcome { matched: 0, deferred: false }, "{update:?}");
    }
    let counts = db.store.insert_records(vec![record(&project, 7, json!({"inputId": "i7"}))], later).await.unwrap();
    assert_eq!(counts.pending_applied, 0);
    assert_eq!(text_of(&stored(db, &project, 7).await, "custom1"), Value::Null);
}

async fn pending_updates_apply_in_arrival_order_when_they_match(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let until = Some(BASE + WINDOW);
    let waiting = [
        update(&project, json!({"contactId": "c1", "inputId": "i1"}), json!({"custom1": "a", "custom2": "a"})),
        update(&project, json!({"contactId": "c1", "inputId": "i1", "sessionId": "s1"}), json!({"custom1": "b"})),
        update(
            &project,
            json!({"contactId": "c1", "inputId": "i1", "sessionId": "s9"}),
            json!({"custom4": "wrong session"}),
        ),
        update(&project, json!({"contactId": "c5", "inputId": "i1"}), json!({"custom4": "wrong contact"})),
        update(
            &project,
            json!({"contactId": "c1", "inputId": "i1"}),
            json!({"custom3": "c", "custom2": null, "trackedGoals": ["g"]}),
        ),
        update(&other, json!({"contactId": "c1", "inputId": "i1"}), json!({"custom1": "other project"})),
    ];
    for (i, pending) in waiting.into_iter().enumerate() {
        let now = BASE + Duration::seconds(i as i64);
        assert!(db.store.update_records(pending, now, until).await.unwrap().deferred);
    }
    let ingested =
        record(&project, 1, json!({"contactId": "c1", "sessionId": "s1", "inputId": "i1", "custom2": "orig"}));
    let counts = db.store.insert_records(vec![ingested], BASE + Duration::minutes(1)).await.unwrap();
    assert_eq!(counts.pending_applied, 3);
    let applied = stored(db, &project, 1).await;
    assert_eq!(text_of(&applied, "custom1"), Value::Text("b".into()), "the later update wins");
    assert_eq!(text_of(&applied, "custom2"), Value::Null, "cleared by the last update");
    assert_eq!(text_of(&applied, "custom3"), Value::Text("c".into()));
    assert_eq!(text_of(&applied, "custom4"), Value::Null, "updates for another session or contact do not apply");
    assert_eq!(text_of(&applied, "trackedGoals"), Value::TextList(vec!["g".into()]));

    // The other project's pending update is still waiting for its own record.
    let counts = db
        .store
        .insert_records(vec![record(&other, 2, json!({"contactId": "c1", "inputId": "i1"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1);
    assert_eq!(text_of(&stored(db, &other, 2).await, "custom1"), Value::Text("other project".into()));
}

async fn expired_pending_updates_are_never_applied(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let short = by_input(&project, "c1", "i1", json!({"custom1": "short"}));
    assert!(db.store.update_records(short, BASE, Some(BASE + Duration::minutes(5))).await.unwrap().deferred);
    let long = by_input(&project, "c1", "i2", json!({"custom1": "long"}));
    assert!(db.store.update_records(long, BASE, Some(BASE + WINDOW)).await.unwrap().deferred);

    // Expired, but not yet purged: still never applied.
    let at_expiry = BASE + Duration::minutes(5);
    let counts = db
        .store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], at_expiry)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0);
    assert_eq!(text_of(&stored(db, &project, 1).await, "custom1"), Value::Null);

    let third = by_input(&project, "c1", "i3", json!({"custom1": "third"}));
    assert!(db.store.update_records(third, BASE, Some(BASE + Duration::minutes(6))).await.unwrap().deferred);
    assert_eq!(
        db.store.purge_expired_pending_updates(BASE + Duration::minutes(6) - Duration::milliseconds(1)).await.unwrap(),
        0
    );
    assert_eq!(db.store.purge_expired_pending_updates(BASE + Duration::minutes(6)).await.unwrap(), 1);
    let counts = db
        .store
        .insert_records(vec![record(&project, 3, json!({"contactId": "c1", "inputId": "i3"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0, "purged");

    let counts = db
        .store
        .insert_records(vec![record(&project, 2, json!({"contactId": "c1", "inputId": "i2"}))], at_expiry)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1, "the unexpired one still applies");
}

async fn pending_updates_survive_a_restart(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let early = by_input(&project, "c1", "i1", json!({"custom1": "kept", "handoverEscalations": 3}));
    assert!(db.store.update_records(early, BASE, Some(BASE + WINDOW)).await.unwrap().deferred);
    let store = db.reopen().await;
    let counts = store
        .insert_records(vec![record(&project, 1, json!({"contactId": "c1", "inputId": "i1"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1);
    let applied = store.get_record(&[project.id], oid(1)).await.unwrap().unwrap();
    assert_eq!(text_of(&applied, "custom1"), Value::Text("kept".into()));
    assert_eq!(text_of(&applied, "handoverEscalations"), Value::Integer(3));
}

async fn an_update_racing_the_ingest_of_its_record_is_never_lost(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    const ROUNDS: u64 = 40;
    const PAIRS: u64 = 8;
    for round in 0..ROUNDS {
        let mut racers = Vec::new();
        for pair in 0..PAIRS {
            let n = round * PAIRS + pair;
            let input = format!("i{n}");
            let (store, change) =
                (Arc::clone(&db.store), by_input(&project, "c1", &input, json!({"custom1": n.to_string()})));
            racers.push(tokio::spawn(async move {
                store.update_records(change, BASE, Some(BASE + WINDOW)).await.map(drop)
            }));
            let (store, ingested) =
                (Arc::clone(&db.store), record(&project, n, json!({"contactId": "c1", "inputId": input})));
            racers.push(tokio::spawn(async move { store.insert_records(vec![ingested], BASE).await.map(drop) }));
        }
        for racer in racers {
            racer.await.unwrap().unwrap();
        }
    }
    let mut lost = Vec::new();
    for n in 0..ROUNDS * PAIRS {
        if text_of(&stored(db, &project, n).await, "custom1") != Value::Text(n.to_string()) {
            lost.push(n);
        }
    }
    assert!(lost.is_empty(), "updates lost for records {lost:?}");
}

// ---------------------------------------------------------------------------------------------
// Erasure and retention

fn erasure(contacts: Option<&[&str]>, start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Erasure {
    Erasure {
        contact_ids: contacts.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
        timestamp_start: start,
        timestamp_end: end,
    }
}

async fn ids_in(db: &TestDb, project: &Project) -> Vec<String> {
    let query = RecordQuery::parse(params(project, None, 100)).unwrap();
    let mut found = ids(&db.store.list_records(&query).await.unwrap().items);
    found.sort();
    found
}

async fn erasure_deletes_what_it_matches_batch_by_batch(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let at = |minutes: i64| format_time(BASE + Duration::minutes(minutes));
    // Records 1..=9: contact c{n % 3}, timestamp BASE + n minutes.
    let mut records: Vec<Record> = (1..=9).map(|n| record(&project, n, json!({"timestamp": at(n as i64)}))).collect();
    records.push(record(&other, 10, json!({"contactId": "c1"})));
    db.store.insert_records(records, BASE).await.unwrap();
    // Pending updates are erased by the time they were received.
    let received = BASE + Duration::minutes(3);
    let waiting = by_input(&project, "c1", "later", json!({"custom1": "x"}));
    assert!(db.store.update_records(waiting, received, Some(received + WINDOW)).await.unwrap().deferred);
    let outside = by_input(&project, "c1", "outside", json!({"custom1": "x"}));
    assert!(db.store.update_records(outside, BASE, Some(received + WINDOW)).await.unwrap().deferred);

    // c1 is records 1, 4, 7; within [minute 2, minute 7] that is 4 and 7.
    let request =
        erasure(Some(&["c1", "nobody"]), Some(BASE + Duration::minutes(2)), Some(BASE + Duration::minutes(7)));
    let task = Task::erasure(org.id, project.id, org.admin.user_id, request, BASE);
    db.store.create_task(task.clone()).await.unwrap();
    assert_eq!(db.store.get_task(org.id, task.id).await.unwrap(), Some(task.clone()));
    assert_eq!(db.store.get_task(oid(0xa999), task.id).await.unwrap(), None, "only within its organisation");
    assert_eq!(db.store.next_task().await.unwrap(), Some(task.clone()));

    let started = BASE + Duration::minutes(1);
    assert_eq!(db.store.erase_batch(&task, 1, started).await.unwrap(), 1);
    let running = db.store.get_task(org.id, task.id).await.unwrap().unwrap();
    assert_eq!((running.status, running.deleted, running.started_at), (TaskStatus::Running, 1, Some(started)));
    assert_eq!(db.store.erase_batch(&task, 1, started + Duration::minutes(1)).await.unwrap(), 1);
    assert_eq!(db.store.erase_batch(&task, 1, started + Duration::minutes(2)).await.unwrap(), 0);
    let finished = started + Duration::minutes(3);
    db.store.finish_task(&task, None, finished).await.unwrap();

    let done = db.store.get_task(org.id, task.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!((done.deleted, done.started_at, done.finished_at), (2, Some(started), Some(finished)));
    assert_eq!(done.erasure, None, "the request is forgotten once done");
    assert_eq!(db.store.next_task().await.unwrap(), None);
    let left: Vec<String> = [1, 2, 3, 5, 6, 8, 9].iter().map(|n| format!("{n:024x}")).collect();
    assert_eq!(ids_in(db, &project).await, left);
    assert_eq!(db.store.get_record(&[project.id], oid(4)).await.unwrap(), None);
    assert_eq!(ids_in(db, &other).await, vec![format!("{:024x}", 10)], "other projects are untouched");
    let counts = db
        .store
        .insert_records(vec![record(&project, 11, json!({"contactId": "c1", "inputId": "later"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 0, "the contact's pending updates are erased too");
    let counts = db
        .store
        .insert_records(vec![record(&project, 12, json!({"contactId": "c1", "inputId": "outside"}))], BASE)
        .await
        .unwrap();
    assert_eq!(counts.pending_applied, 1, "but only those received within the bounds");

    // Finishing twice changes nothing; every contact, no bounds, empties the project.
    db.store.finish_task(&task, Some("late".into()), finished + Duration::minutes(1)).await.unwrap();
    assert_eq!(db.store.get_task(org.id, task.id).await.unwrap().unwrap(), done);
    let everything = Task::erasure(org.id, project.id, org.admin.user_id, erasure(None, None, None), finished);
    db.store.create_task(everything.clone()).await.unwrap();
    assert_eq!(db.store.erase_batch(&everything, 1000, finished).await.unwrap(), 9);
    assert!(ids_in(db, &project).await.is_empty());
    assert_eq!(ids_in(db, &other).await.len(), 1);
}

async fn a_failed_task_keeps_its_reason_and_forgets_its_request(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let first = Task::erasure(org.id, project.id, org.admin.user_id, erasure(Some(&["c1"]), None, None), BASE);
    let second =
        Task::erasure(org.id, project.id, org.admin.user_id, erasure(None, None, None), BASE + Duration::seconds(1));
    db.store.create_task(second.clone()).await.unwrap();
    db.store.create_task(first.clone()).await.unwrap();
    assert_eq!(db.store.next_task().await.unwrap().map(|t| t.id), Some(first.id), "oldest first");
    db.store.finish_task(&first, Some("The deletion failed.".into()), BASE + Duration::minutes(1)).await.unwrap();
    let failed = db.store.get_task(org.id, first.id).await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::Error);
    assert_eq!(failed.error.as_deref(), Some("The deletion failed."));
    assert_eq!(failed.erasure, None);
    assert_eq!(db.store.next_task().await.unwrap().map(|t| t.id), Some(second.id));
}

async fn retention_purges_expired_records_in_batches(db: &TestDb) {
    let org = bootstrap(db).await;
    let (project, other) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let expiring = |project: &Project, n: u64, expires: Option<OffsetDateTime>| {
        let mut values = record(project, n, json!({})).values().to_vec();
        values[idx::EXPIRES_AT] = expires.map_or(Value::Null, Value::Time);
        Record::from_values(values)
    };
    let now = BASE + Duration::days(30);
    let records = vec![
        expiring(&project, 1, Some(now - Duration::days(1))),
        expiring(&project, 2, Some(now)),
        expiring(&project, 3, Some(now - Duration::milliseconds(1))),
        expiring(&project, 4, Some(now + Duration::milliseconds(1))),
        expiring(&project, 5, None),
        expiring(&other, 6, Some(now - Duration::days(1))),
    ];
    db.store.insert_records(records, BASE).await.unwrap();
    assert_eq!(sorted(db.store.all_project_ids().await.unwrap()), vec![project.id, other.id]);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 2);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 1);
    assert_eq!(db.store.purge_expired_records(project.id, now, 2).await.unwrap(), 0);
    assert_eq!(ids_in(db, &project).await, vec![format!("{:024x}", 4), format!("{:024x}", 5)]);
    assert_eq!(ids_in(db, &other).await.len(), 1, "one project at a time");
}

async fn closing_commits_accepted_writes_and_refuses_later_ones(db: &TestDb) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    type Write = Pin<Box<dyn Future<Output = Result<IngestCounts, StoreError>> + Send>>;

    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let mut writes: Vec<Write> = (0..40)
        .map(|n| {
            let (store, batch) = (Arc::clone(&db.store), vec![record(&project, n, json!({}))]);
            Box::pin(async move { store.insert_records(batch, BASE).await }) as Write
        })
        .collect();
    // Poll each write once, so that each has been handed to the store before it closes.
    let mut answers: Vec<Option<Result<IngestCounts, StoreError>>> = vec![None; writes.len()];
    std::future::poll_fn(|cx| {
        for (write, answer) in writes.iter_mut().zip(answers.iter_mut()) {
            if let Poll::Ready(result) = write.as_mut().poll(cx) {
                *answer = Some(result);
            }
        }
        Poll::Ready(())
    })
    .await;
    db.store.close().await;
    let mut acknowledged = 0;
    for (write, answer) in writes.into_iter().zip(answers) {
        let answer = match answer {
            Some(answer) => answer,
            None => write.await,
        };
        match answer {
            Ok(counts) => acknowledged += counts.inserted,
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("a write during close failed with {other:?}"),
        }
    }
    let late = db.store.insert_records(vec![record(&project, 99, json!({}))], BASE).await;
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    let store = db.reopen().await;
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), acknowledged);
    if db.store.engine() == "sqlite" {
        assert_eq!(acknowledged, 40, "the embedded engine commits every write it was handed");
    }
}

// ---------------------------------------------------------------------------------------------
// Paging

const PAGED: u64 = 23;

/// A record whose sortable fields have ties, nulls and text whose byte order differs from
/// dictionary order.
fn paged_record(project: &Project, n: u64) -> Record {
    let intents = ["Zebra", "apple", "éclair", "a b", "Apple"];
    let channels = ["web", "Web", "whatsapp", "ß", "voice", "ab"];
    let i = n as usize;
    record(
        project,
        n,
        json!({
            "timestamp": format_time(BASE + Duration::minutes((n % 7) as i64)),
            "intent": if n.is_multiple_of(4) { Json::Null } else { json!(intents[i % 5]) },
            "channel": channels[i % 6],
            "intentScore": if n.is_multiple_of(3) { Json::Null } else { json!((n % 4) as f64 / 4.0) },
            "understood": if n.is_multiple_of(5) { Json::Null } else { json!(n.is_multiple_of(2)) },
            "execution": if n.is_multiple_of(7) { Json::Null } else { json!(n % 4) },
        }),
    )
}

/// Null lowest, text by bytes, as both engines must order.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a.total_cmp(b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Time(a), Value::Time(b)) => a.cmp(b),
        _ => panic!("{a:?} and {b:?} are not comparable"),
    }
}

fn expected_order(records: &[Record], sort: &[SortKey]) -> Vec<String> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| {
        sort.iter()
            .map(|key| {
                let order = compare_values(a.get(key.field), b.get(key.field));
                if key.descending { order.reverse() } else { order }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    ids(&sorted)
}

fn params(project: &Project, sort: Option<&str>, limit: u32) -> ListParams {
    ListParams {
        project_id: Some(project.id.to_string()),
        sort: sort.map(str::to_owned),
        limit: Some(limit.to_string()),
        ..ListParams::default()
    }
}

fn page_text(page: &RecordPage) -> String {
    let items: Vec<Json> = page.items.iter().map(|r| Json::Object(r.to_json())).collect();
    json!({"items": items, "total": page.total, "next": page.next, "previous": page.previous}).to_string()
}

/// Walks every page forwards by `next`, then backwards by `previous` from the last page, checking
/// both walks against the expected order; returns the pages seen, as text.
async fn walk(db: &TestDb, base: ListParams, all: &[Record], transcript: &mut Vec<String>) {
    let first_query = RecordQuery::parse(base.clone()).unwrap();
    let expected = expected_order(
        &all.iter()
            .filter(|r| r.project_id() == first_query.filter.project_id)
            .filter(|r| {
                first_query
                    .filter
                    .contact_id
                    .as_ref()
                    .is_none_or(|c| r.get(idx::CONTACT_ID).as_text() == Some(c.as_str()))
            })
            .cloned()
            .collect::<Vec<_>>(),
        &first_query.sort,
    );
    let limit = first_query.limit as usize;

    let mut forward = Vec::new();
    let mut page = db.store.list_records(&first_query).await.unwrap();
    assert_eq!(page.previous, None, "the first page has no previous page");
    let mut pages = 1;
    loop {
        assert_eq!(page.total, expected.len() as u64);
        transcript.push(page_text(&page));
        forward.extend(ids(&page.items));
        let Some(next) = page.next.clone() else { break };
        assert_eq!(page.items.len(), limit, "only the last page is short");
        let query = RecordQuery::parse(ListParams { next: Some(next), ..base.clone() }).unwrap();
        page = db.store.list_records(&query).await.unwrap();
        pages += 1;
        assert!(pages <= expected.len() + 1, "paging does not end");
    }
    assert_eq!(forward, expected, "forward by next, sort {:?}", base.sort);
    assert_eq!(pages, expected.len().div_ceil(limit).max(1));

    let mut backward = ids(&page.items);
    while let Some(previous) = page.previous.clone() {
        let query = RecordQuery::parse(ListParams { previous: Some(previous), ..base.clone() }).unwrap();
        page = db.store.list_records(&query).await.unwrap();
        assert_eq!(page.items.len(), limit, "pages before the last are full");
        assert!(page.next.is_some(), "a page reached backwards has a next page");
        transcript.push(page_text(&page));
        let mut earlier = ids(&page.items);
        earlier.append(&mut backward);
        backward = earlier;
        assert!(backward.len() <= expected.len(), "paging backwards does not end");
    }
    assert_eq!(backward, expected, "backward by previous, sort {:?}", base.sort);

    if expected.len() > limit {
        let skipped = RecordQuery::parse(ListParams { skip: Some(limit.to_string()), ..base.clone() }).unwrap();
        let page = db.store.list_records(&skipped).await.unwrap();
        assert_eq!(ids(&page.items), expected[limit..(2 * limit).min(expected.len())].to_vec());
        assert!(page.previous.is_some());
        transcript.push(page_text(&page));
    }
}

async fn listing_pages_by_cursor_both_ways_in_every_order(db: &TestDb) {
    paging_transcript(db).await;
}

async fn paging_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let mut all: Vec<Record> = (1..=PAGED).map(|n| paged_record(&project, n)).collect();
    all.extend((100..110).map(|n| paged_record(&noise, n)));
    // Inserted in an order that is none of the sort orders.
    let mut shuffled = all.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    db.store.insert_records(shuffled, BASE).await.unwrap();

    let mut transcript = Vec::new();
    let sorts = [
        None,
        Some("intent:desc"),
        Some("intent:asc,timestamp:desc"),
        Some("channel:asc"),
        Some("channel:desc,intentScore:asc,id:desc"),
        Some("intentScore:asc,id:desc"),
        Some("understood:desc,execution:asc"),
        Some("execution:desc,timestamp:asc"),
    ];
    for sort in sorts {
        for limit in [5, 100] {
            walk(db, params(&project, sort, limit), &all, &mut transcript).await;
        }
    }
    let by_contact = ListParams { contact_id: Some("c1".into()), ..params(&project, Some("intent:desc"), 3) };
    walk(db, by_contact, &all, &mut transcript).await;

    let window = RecordFilter {
        from: Some(BASE + Duration::minutes(2)),
        to: Some(BASE + Duration::minutes(5)),
        session_id: Some("s2".into()),
        ..filter_of(&project)
    };
    let in_window = all
        .iter()
        .filter(|r| r.project_id() == project.id && r.get(idx::SESSION_ID) == &Value::Text("s2".into()))
        .filter(|r| matches!(r.get(idx::TIMESTAMP), Value::Time(t) if *t >= BASE + Duration::minutes(2) && *t < BASE + Duration::minutes(5)))
        .count();
    assert_eq!(db.store.count_records(&window).await.unwrap(), in_window as u64);
    transcript.push(in_window.to_string());
    transcript
}

// ---------------------------------------------------------------------------------------------
// Identity

fn user_of(organisation: ObjectId, n: u64, email: &str, roles: Vec<OrgRole>) -> User {
    User {
        id: oid(0xb100 + n),
        organisation,
        email: email.into(),
        name: format!("User {n}"),
        roles,
        kind: UserKind::Person,
        created_at: BASE + Duration::seconds(n as i64),
    }
}

fn key_of(user: ObjectId, n: u64) -> NewApiKey {
    NewApiKey {
        id: oid(0xd000 + n),
        user_id: user,
        name: format!("key {n}"),
        secret_hash: [n as u8; 32],
        created_at: BASE,
    }
}

/// A second organisation with its admin (user 0x200) and the admin's key (hash 0x20…).
async fn second_organisation(db: &TestDb) -> (Organisation, User) {
    let organisation = Organisation { id: oid(0xa002), name: "Second".into(), created_at: BASE + Duration::hours(1) };
    let admin = user_of(organisation.id, 0x200, "admin@example.com", vec![OrgRole::Admin]);
    let new = NewUser { user: admin.clone(), password_hash: Some("$argon2id$second".into()) };
    db.store.create_organisation(organisation.clone(), new, key_of(admin.id, 0x20)).await.unwrap();
    (organisation, admin)
}

async fn users_are_created_listed_and_deleted(db: &TestDb) {
    let org = bootstrap(db).await;
    let (second, second_admin) = second_organisation(db).await;
    let orgs = db.store.list_organisations().await.unwrap();
    assert_eq!(orgs.iter().map(|o| o.id).collect::<Vec<_>>(), vec![org.id, second.id]);
    assert_eq!(orgs[1], second);
    assert_eq!(db.store.caller_by_key_hash([0x20; 32]).await.unwrap(), Some(second_admin.caller()));

    let member = user_of(org.id, 1, "member@example.com", vec![OrgRole::Odata]);
    db.store.create_user(NewUser { user: member.clone(), password_hash: None }).await.unwrap();
    let twin = User { id: oid(0xb102), name: "Twin".into(), ..member.clone() };
    match db.store.create_user(NewUser { user: twin, password_hash: None }).await {
        Err(StoreError::Conflict(Constraint::UserEmail)) => {}
        other => panic!("an email used twice in one organisation: {other:?}"),
    }
    assert_eq!(
        parley_core::Error::from(StoreError::Conflict(Constraint::UserEmail)).to_string(),
        "A user with this email already exists in the organisation."
    );
    let elsewhere = user_of(second.id, 3, "member@example.com", vec![]);
    db.store.create_user(NewUser { user: elsewhere.clone(), password_hash: Some("$argon2id$x".into()) }).await.unwrap();
    let service = User { kind: UserKind::Service, ..user_of(second.id, 4, "member@example.com", vec![]) };
    match db.store.create_user(NewUser { user: service.clone(), password_hash: None }).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a service user with a person's email: {other:?}"),
    }
    let service = User { email: "svc@clients.invalid".into(), ..service };
    db.store.create_user(NewUser { user: service.clone(), password_hash: None }).await.unwrap();

    let people = db.store.people_by_email("member@example.com").await.unwrap();
    assert_eq!(people, vec![(member.clone(), None), (elsewhere.clone(), Some("$argon2id$x".into()))]);
    assert!(db.store.people_by_email("svc@clients.invalid").await.unwrap().is_empty(), "service users never sign in");
    assert!(db.store.people_by_email("MEMBER@example.com").await.unwrap().is_empty());

    assert_eq!(db.store.user(org.id, member.id).await.unwrap(), Some(member.clone()));
    assert_eq!(db.store.user(second.id, member.id).await.unwrap(), None, "users are per organisation");
    let (first_page, total) = db.store.list_users(org.id, 0, 1).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(first_page.iter().map(|u| u.id).collect::<Vec<_>>(), vec![org.admin.user_id]);
    assert_eq!(db.store.list_users(org.id, 1, 10).await.unwrap(), (vec![member.clone()], 2));
    assert_eq!(db.store.list_users(second.id, 0, 10).await.unwrap().1, 3);

    assert_eq!(db.store.delete_user(second.id, member.id).await.unwrap(), UserDeletion::NotFound);
    assert_eq!(db.store.delete_user(org.id, org.admin.user_id).await.unwrap(), UserDeletion::LastAdmin);
    assert_eq!(db.store.delete_user(org.id, member.id).await.unwrap(), UserDeletion::Deleted);
    assert_eq!(db.store.delete_user(org.id, member.id).await.unwrap(), UserDeletion::NotFound);
    assert_eq!(db.store.user(org.id, member.id).await.unwrap(), None);

    let deputy = user_of(org.id, 5, "deputy@example.com", vec![OrgRole::Admin]);
    db.store.create_user(NewUser { user: deputy.clone(), password_hash: None }).await.unwrap();
    assert_eq!(db.store.delete_user(org.id, org.admin.user_id).await.unwrap(), UserDeletion::Deleted);
    assert_eq!(db.store.delete_user(org.id, deputy.id).await.unwrap(), UserDeletion::LastAdmin);
}

fn session_of(user: ObjectId, n: u64, client: &str) -> TokenSession {
    TokenSession {
        id: oid(0xe000 + n),
        user_id: user,
        client_id: client.into(),
        created_at: BASE,
        expires_at: BASE + Duration::days(1),
    }
}

fn refresh_of(n: u8, expires_at: OffsetDateTime) -> NewRefreshToken {
    NewRefreshToken { hash: [n; 32], expires_at }
}

async fn deleting_a_user_takes_their_keys_memberships_and_sessions(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let member = user_of(org.id, 1, "member@example.com", vec![OrgRole::ApiKeys]);
    db.store.create_user(NewUser { user: member.clone(), password_hash: None }).await.unwrap();
    db.store.create_api_key(key_of(member.id, 0x31)).await.unwrap();
    assert_eq!(db.store.set_member(&project, member.id, vec![ProjectRole::Basic]).await.unwrap(), MemberChange::Added);
    db.store
        .start_session(session_of(member.id, 1, "default"), Some(refresh_of(0x41, BASE + Duration::days(1))))
        .await
        .unwrap();
    assert_eq!(db.store.session_caller(oid(0xe001), member.id).await.unwrap(), Some(member.caller()));

    assert_eq!(db.store.delete_user(org.id, member.id).await.unwrap(), UserDeletion::Deleted);
    assert_eq!(db.store.caller_by_key_hash([0x31; 32]).await.unwrap(), None);
    assert_eq!(db.store.session_caller(oid(0xe001), member.id).await.unwrap(), None);
    assert!(db.store.list_members(project.id).await.unwrap().is_empty());
    let outcome =
        db.store.rotate_refresh_token([0x41; 32], refresh_of(0x42, BASE + Duration::days(2)), BASE).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::Invalid);
    assert_eq!(db.store.api_key_owner(oid(0xd031)).await.unwrap(), None);
    assert_eq!(db.store.api_key_owner(oid(0xd001)).await.unwrap(), Some(org.admin.user_id));
}

async fn members_are_added_replaced_and_removed(db: &TestDb) {
    let org = bootstrap(db).await;
    let (second, foreigner) = second_organisation(db).await;
    let project = create_project(db, &org, 1).await;
    let member = user_of(org.id, 1, "member@example.com", vec![]);
    db.store.create_user(NewUser { user: member.clone(), password_hash: None }).await.unwrap();
    let caller = member.caller();

    assert_eq!(db.store.set_member(&project, member.id, vec![ProjectRole::Basic]).await.unwrap(), MemberChange::Added);
    assert_eq!(db.store.project_for(&caller, project.id).await.unwrap().map(|(_, a)| a), Some(ProjectAccess::Read));
    let roles = vec![ProjectRole::Analytics, ProjectRole::ProjectAdmin];
    assert_eq!(db.store.set_member(&project, member.id, roles.clone()).await.unwrap(), MemberChange::Replaced);
    assert_eq!(db.store.project_for(&caller, project.id).await.unwrap().map(|(_, a)| a), Some(ProjectAccess::Manage));
    assert_eq!(db.store.list_members(project.id).await.unwrap(), vec![Member { user_id: member.id, roles }]);

    assert_eq!(
        db.store.set_member(&project, foreigner.id, vec![ProjectRole::Basic]).await.unwrap(),
        MemberChange::UnknownUser
    );
    assert_eq!(
        db.store.set_member(&project, oid(0xb999), vec![ProjectRole::Basic]).await.unwrap(),
        MemberChange::UnknownUser
    );
    assert_eq!(db.store.list_members(project.id).await.unwrap().len(), 1);
    assert_eq!(second.id, foreigner.organisation);

    assert!(!db.store.remove_member(project.id, foreigner.id).await.unwrap());
    assert!(db.store.remove_member(project.id, member.id).await.unwrap());
    assert!(!db.store.remove_member(project.id, member.id).await.unwrap());
    assert_eq!(db.store.project_for(&caller, project.id).await.unwrap(), None);
    assert!(db.store.list_members(project.id).await.unwrap().is_empty());
}

async fn the_signing_key_and_the_default_client_exist_once(db: &TestDb) {
    let first = db.store.signing_key(vec![1; 32]).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(db.store.signing_key(vec![2; 32]).await.unwrap(), first, "the first key stays");

    let default = db.store.oauth_client("default").await.unwrap().expect("the default client");
    assert_eq!(default.secret_hash, None);
    assert_eq!(default.user_id, None);
    assert_eq!(default.grants, vec![GrantType::Password, GrantType::RefreshToken]);
    assert_eq!(db.store.oauth_client("nobody").await.unwrap(), None);

    let org = bootstrap(db).await;
    let service =
        User { kind: UserKind::Service, ..user_of(org.id, 7, "reporting@clients.invalid", vec![OrgRole::Odata]) };
    let client = OAuthClient {
        id: oid(0xf001).to_string(),
        name: "reporting".into(),
        secret_hash: Some([9; 32]),
        user_id: Some(service.id),
        grants: vec![GrantType::ClientCredentials],
        created_at: BASE,
    };
    db.store.create_oauth_client(client.clone(), NewUser { user: service.clone(), password_hash: None }).await.unwrap();
    assert_eq!(db.store.oauth_client(&client.id).await.unwrap(), Some(client.clone()));
    assert_eq!(db.store.user(org.id, service.id).await.unwrap(), Some(service.clone()));
    assert_eq!(db.store.delete_user(org.id, service.id).await.unwrap(), UserDeletion::Deleted);
    assert_eq!(db.store.oauth_client(&client.id).await.unwrap(), None, "the client goes with its service user");
}

async fn refresh_tokens_rotate_once_and_reuse_revokes_the_session(db: &TestDb) {
    let org = bootstrap(db).await;
    let admin = org.admin.user_id;
    let day = BASE + Duration::days(1);
    db.store.start_session(session_of(admin, 1, "default"), Some(refresh_of(1, day))).await.unwrap();

    let now = BASE + Duration::hours(1);
    match db.store.rotate_refresh_token([1; 32], refresh_of(2, now + Duration::days(1)), now).await.unwrap() {
        RefreshOutcome::Rotated { session, caller } => {
            assert_eq!(caller, org.admin);
            assert_eq!(session.id, oid(0xe001));
            assert_eq!(session.client_id, "default");
            assert_eq!(session.expires_at, now + Duration::days(1));
        }
        other => panic!("a fresh token rotates: {other:?}"),
    }
    assert_eq!(
        db.store.rotate_refresh_token([0x77; 32], refresh_of(3, day), now).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(db.store.rotate_refresh_token([1; 32], refresh_of(3, day), now).await.unwrap(), RefreshOutcome::Reused);
    assert_eq!(db.store.session_caller(oid(0xe001), admin).await.unwrap(), None, "reuse revokes the session");
    assert_eq!(db.store.rotate_refresh_token([2; 32], refresh_of(4, day), now).await.unwrap(), RefreshOutcome::Invalid);

    db.store.start_session(session_of(admin, 2, "default"), Some(refresh_of(5, day))).await.unwrap();
    assert_eq!(
        db.store.rotate_refresh_token([5; 32], refresh_of(6, day), day).await.unwrap(),
        RefreshOutcome::Invalid,
        "expired"
    );

    // Of many requests presenting one token, exactly one rotates it.
    db.store.start_session(session_of(admin, 3, "default"), Some(refresh_of(7, day))).await.unwrap();
    let attempts: Vec<_> = (0..4u8)
        .map(|i| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move { store.rotate_refresh_token([7; 32], refresh_of(8 + i, day), now).await.unwrap() })
        })
        .collect();
    let mut rotated = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), RefreshOutcome::Rotated { .. }) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);

    // Starting a session purges the expired ones.
    db.store
        .start_session(
            TokenSession {
                created_at: day + Duration::days(3),
                expires_at: day + Duration::days(4),
                ..session_of(admin, 4, "default")
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(db.store.session_caller(oid(0xe002), admin).await.unwrap(), None);
    assert_eq!(db.store.session_caller(oid(0xe004), admin).await.unwrap(), Some(org.admin.clone()));
    assert_eq!(db.store.session_caller(oid(0xe004), oid(0xb999)).await.unwrap(), None, "only for its own user");
}

async fn sessions_are_revoked_by_either_token(db: &TestDb) {
    let org = bootstrap(db).await;
    let admin = org.admin.user_id;
    let day = BASE + Duration::days(1);
    db.store.start_session(session_of(admin, 1, "default"), Some(refresh_of(1, day))).await.unwrap();
    db.store.start_session(session_of(admin, 2, "default"), Some(refresh_of(2, day))).await.unwrap();

    assert!(db.store.revoke_refresh_token([1; 32]).await.unwrap());
    assert!(!db.store.revoke_refresh_token([1; 32]).await.unwrap());
    assert_eq!(db.store.session_caller(oid(0xe001), admin).await.unwrap(), None);
    assert!(db.store.session_caller(oid(0xe002), admin).await.unwrap().is_some(), "other sessions stay");

    assert!(db.store.revoke_session(oid(0xe002)).await.unwrap());
    assert!(!db.store.revoke_session(oid(0xe002)).await.unwrap());
    assert_eq!(
        db.store.rotate_refresh_token([2; 32], refresh_of(3, day), BASE).await.unwrap(),
        RefreshOutcome::Invalid
    );
}

// ---------------------------------------------------------------------------------------------
// OData reads

const ODATA_RECORDS: u64 = 40;

/// Records for OData queries: nulls in every nullable kind, text whose byte order differs from
/// dictionary order, JSON values, and times across two months and many hours.
fn odata_record(project: &Project, n: u64) -> Record {
    let intents = ["Zebra", "apple", "éclair", "a b", "Apple", "it's"];
    let channels = ["web", "Web", "whatsapp", "ß", "voice"];
    let texts = ["I want a refund", "hello", "it's broken", "Refund now", "refund"];
    let i = n as usize;
    let input_data = match n % 3 {
        1 => json!({"a": n % 2}),
        2 => json!("text"),
        _ => Json::Null,
    };
    record(
        project,
        n,
        json!({
            "timestamp": format_time(BASE + Duration::hours(19 * n as i64) + Duration::minutes(n as i64)),
            "intent": if n.is_multiple_of(4) { Json::Null } else { json!(intents[i % 6]) },
            "channel": channels[i % 5],
            "intentScore": if n.is_multiple_of(3) { Json::Null } else { json!((n % 4) as f64 / 4.0) },
            "understood": if n.is_multiple_of(5) { Json::Null } else { json!(n.is_multiple_of(2)) },
            "execution": if n.is_multiple_of(7) { Json::Null } else { json!(n % 4) },
            "executionTime": n as f64 * 0.5,
            "inputText": if n.is_multiple_of(6) { Json::Null } else { json!(texts[i % 5]) },
            "inputData": input_data,
            "rating": if n.is_multiple_of(2) { Json::Null } else { json!(n as f64 - 20.0) },
            "handoverEscalations": n % 3,
            "contactId": format!("c{}", n % 4),
        }),
    )
}

fn odata_fixture(project: &Project, noise: &Project) -> Vec<Record> {
    let mut all: Vec<Record> = (1..=ODATA_RECORDS).map(|n| odata_record(project, n)).collect();
    all.extend((100..105).map(|n| odata_record(noise, n)));
    all
}

fn analytics() -> EntityType {
    EntityType::analytics(IdName::Id)
}

fn odata_query(text: &str) -> Query {
    let pairs: Vec<(String, String)> = text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    match parse_query(&analytics(), &pairs) {
        Ok(query) => query,
        Err(e) => panic!("{text}: {e}"),
    }
}

/// Every row the query selects among `projects`, with the values of `columns`.
async fn odata_rows(db: &TestDb, query: &Query, projects: &[ObjectId], columns: &[Operand]) -> Vec<Vec<Value>> {
    let entity = analytics();
    let read = ODataRead { entity: &entity, query, projects, columns, limit: 10_000 };
    db.store.odata_rows(read).await.unwrap_or_else(|e| panic!("{query:?}: {e}"))
}

/// The value of an operand as the reference evaluator sees it: JSON as its text.
fn field_value(record: &Record, p: usize) -> Value {
    match record.get(p) {
        Value::Json(json) => Value::Text(json.to_string()),
        other => other.clone(),
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// Orders two non-null values of comparable types.
fn order_of(a: &Value, b: &Value) -> Ordering {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => compare_values(a, b),
    }
}

/// OData's meaning of an expression for one record, independent of any SQL.
fn evaluate(expr: &Expr, record: &Record) -> Value {
    let truth = |e: &Expr| evaluate(e, record) == Value::Bool(true);
    match expr {
        Expr::Literal(value) => value.clone(),
        Expr::Column(Operand::Property(p)) => field_value(record, *p),
        Expr::Column(Operand::Aggregate(_)) => panic!("no aggregates on records"),
        Expr::Not(inner) => Value::Bool(!truth(inner)),
        Expr::And(items) => Value::Bool(items.iter().all(truth)),
        Expr::Or(items) => Value::Bool(items.iter().any(truth)),
        Expr::Compare(op, left, right) => {
            let (a, b) = (evaluate(left, record), evaluate(right, record));
            Value::Bool(match (op, &a, &b) {
                (CompareOp::Eq, Value::Null, _) | (CompareOp::Eq, _, Value::Null) => a == b,
                (CompareOp::Ne, Value::Null, _) | (CompareOp::Ne, _, Value::Null) => a != b,
                (_, Value::Null, _) | (_, _, Value::Null) => false,
                (CompareOp::Eq, _, _) => order_of(&a, &b).is_eq(),
                (CompareOp::Ne, _, _) => order_of(&a, &b).is_ne(),
                (CompareOp::Gt, _, _) => order_of(&a, &b).is_gt(),
                (CompareOp::Ge, _, _) => order_of(&a, &b).is_ge(),
                (CompareOp::Lt, _, _) => order_of(&a, &b).is_lt(),
                (CompareOp::Le, _, _) => order_of(&a, &b).is_le(),
            })
        }
        Expr::In(operand, values) => {
            let value = evaluate(operand, record);
            Value::Bool(values.iter().any(|v| match (v, &value) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                (v, value) => order_of(v, value).is_eq(),
            }))
        }
        Expr::Call(function, args) => {
            let values: Vec<Value> = args.iter().map(|a| evaluate(a, record)).collect();
            let text = |i: usize| values[i].as_text().map(str::to_owned);
            let time = |i: usize| match &values[i] {
                Value::Time(t) => Some(t.to_offset(time::UtcOffset::UTC)),
                _ => None,
            };
            let part = |f: fn(OffsetDateTime) -> i64| time(0).map_or(Value::Null, |t| Value::Integer(f(t)));
            match function {
                Function::Contains => Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.contains(&b))),
                Function::StartsWith => {
                    Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.starts_with(&b)))
                }
                Function::EndsWith => Value::Bool(matches!((text(0), text(1)), (Some(a), Some(b)) if a.ends_with(&b))),
                Function::ToLower => text(0).map_or(Value::Null, |t| Value::Text(t.to_ascii_lowercase())),
                Function::ToUpper => text(0).map_or(Value::Null, |t| Value::Text(t.to_ascii_uppercase())),
                Function::Year => part(|t| i64::from(t.year())),
                Function::Month => part(|t| i64::from(u8::from(t.month()))),
                Function::Day => part(|t| i64::from(t.day())),
                Function::Hour => part(|t| i64::from(t.hour())),
                Function::Minute => part(|t| i64::from(t.minute())),
                Function::Second => part(|t| i64::from(t.second())),
            }
        }
    }
}

/// Sorts records by OData order keys over properties: null lowest, text by bytes.
fn sorted_by(records: &[Record], order: &[OrderKey]) -> Vec<Record> {
    let mut sorted = records.to_vec();
    sorted.sort_by(|a, b| {
        order
            .iter()
            .map(|key| {
                let Operand::Property(p) = key.operand else { panic!("records have no aggregates") };
                let ordering = compare_values(a.get(p), b.get(p));
                if key.descending { ordering.reverse() } else { ordering }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    sorted
}

fn id_column() -> Vec<Operand> {
    vec![Operand::Property(idx::ID)]
}

fn texts(rows: &[Vec<Value>]) -> Vec<String> {
    rows.iter().map(|row| row.iter().map(|v| v.to_json().to_string()).collect::<Vec<_>>().join(" ")).collect()
}

async fn odata_filters_agree_with_odata_semantics(db: &TestDb) {
    odata_filter_transcript(db).await;
}

async fn odata_filter_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let all = odata_fixture(&project, &noise);
    db.store.insert_records(all.clone(), BASE).await.unwrap();
    let one = format!("{:024x}", 7);
    let filters = [
        "intent eq 'apple'".to_owned(),
        "intent ne 'apple'".into(),
        "intent eq null".into(),
        "null ne intent".into(),
        "intent gt 'a'".into(),
        "intent lt 'Z'".into(),
        "intent ge 'éclair'".into(),
        "intentScore gt 0.3".into(),
        "intentScore le 0.5".into(),
        "intentScore eq 0.25".into(),
        "execution eq 2".into(),
        "execution ge 1.5".into(),
        "execution lt 2 or execution eq null".into(),
        "understood eq true".into(),
        "understood".into(),
        "not understood".into(),
        "understood ne true".into(),
        "not (intent eq 'apple')".into(),
        "not (intentScore gt 0.3)".into(),
        "not contains(inputText, 'refund')".into(),
        "not (not (intent eq 'Zebra'))".into(),
        "intent in ('apple', 'Zebra', null)".into(),
        "channel in ('web', 'ß')".into(),
        "execution in (1, 2.0)".into(),
        "contains(inputText, 'refund')".into(),
        "contains(inputText, 'it''s')".into(),
        "startswith(intent, 'a')".into(),
        "endswith(intent, 'e')".into(),
        "endswith(intent, '')".into(),
        "endswith(intent, 'a very long suffix')".into(),
        "startswith(tolower(intent), 'a')".into(),
        "toupper(channel) eq 'WEB'".into(),
        "tolower(intent) eq 'éclair'".into(),
        "toupper(intent) eq 'ÉCLAIR'".into(),
        "year(timestamp) eq 2024".into(),
        "month(timestamp) eq 6".into(),
        "day(timestamp) ge 15".into(),
        "hour(timestamp) lt 12".into(),
        "minute(timestamp) eq 7".into(),
        "second(timestamp) eq 0".into(),
        "timestamp ge 2024-05-10T00:00:00Z".into(),
        "timestamp lt '2024-05-10T00:00:00.000+02:00'".into(),
        "timestamp ge 2024-05-10".into(),
        "timestamp gt 2024-05-09T18:00:00-04:00 and timestamp le 2024-05-20T00:00:00Z".into(),
        "contains(inputData, '\"a\":1')".into(),
        "inputData eq '\"text\"'".into(),
        "inputData eq null".into(),
        "startswith(inputData, '{')".into(),
        "handoverEscalations eq 1 and channel eq 'web' or intent eq 'Zebra'".into(),
        "(intent eq 'apple' or intent eq 'Apple') and not (execution eq null)".into(),
        "intent eq channel".into(),
        "intent eq inputText".into(),
        "intentScore ne rating".into(),
        "intentScore eq executionTime".into(),
        "execution eq intentScore".into(),
        "execution ne handoverEscalations".into(),
        "rating ge -1".into(),
        "rating lt -10.5".into(),
        "1 eq 1".into(),
        "'a' lt 'b'".into(),
        "null eq null".into(),
        "true".into(),
        "not false".into(),
        format!("id eq '{one}'"),
        format!("projectId eq '{}'", project.id),
        format!("projectId eq '{}'", noise.id),
    ];
    let mut transcript = Vec::new();
    for scope in [vec![project.id], vec![project.id, noise.id]] {
        let visible: Vec<Record> = all.iter().filter(|r| scope.contains(&r.project_id())).cloned().collect();
        for filter in &filters {
            let query = odata_query(&format!("$filter={filter}"));
            let rows = odata_rows(db, &query, &scope, &id_column()).await;
            let condition = query.filter.as_ref().unwrap();
            let expected: Vec<String> = sorted_by(&visible, &query.order)
                .iter()
                .filter(|r| evaluate(condition, r) == Value::Bool(true))
                .map(|r| Value::Text(r.id().to_owned()).to_json().to_string())
                .collect();
            assert_eq!(texts(&rows), expected, "$filter={filter} in {} projects", scope.len());
            let count = db.store.odata_count(&analytics(), &query, &scope).await.unwrap();
            assert_eq!(count, expected.len() as u64, "count of $filter={filter}");
            transcript.push(format!("{filter}: {}", expected.join(",")));
        }
    }
    assert!(odata_rows(db, &odata_query(""), &[], &id_column()).await.is_empty(), "no projects, no rows");
    assert_eq!(db.store.odata_count(&analytics(), &odata_query(""), &[]).await.unwrap(), 0);
    transcript
}

async fn odata_pages_by_keyset_in_every_order(db: &TestDb) {
    odata_paging_transcript(db).await;
}

/// Pages through every order with a small page, continuing after the order keys' values of the
/// last row as a skip token does, and compares with the order computed here.
async fn odata_paging_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let mut all = odata_fixture(&project, &noise);
    all.reverse();
    db.store.insert_records(all.clone(), BASE).await.unwrap();
    let mine: Vec<Record> = all.iter().filter(|r| r.project_id() == project.id).cloned().collect();
    let entity = analytics();
    let mut transcript = Vec::new();
    let orders = [
        "",
        "$orderby=timestamp",
        "$orderby=timestamp desc",
        "$orderby=intent desc",
        "$orderby=intent,timestamp desc",
        "$orderby=intentScore,execution desc",
        "$orderby=understood desc,channel",
        "$orderby=execution desc,id desc",
        "$orderby=rating&$filter=intent ne null",
        "$orderby=channel desc&$skip=4",
    ];
    for options in orders {
        for limit in [3u64, 7] {
            let mut query = odata_query(options);
            let expected: Vec<String> = sorted_by(&mine, &query.order)
                .iter()
                .filter(|r| query.filter.as_ref().is_none_or(|f| evaluate(f, r) == Value::Bool(true)))
                .skip(query.skip as usize)
                .map(|r| r.id().to_owned())
                .collect();
            let columns: Vec<Operand> = query.order.iter().map(|k| k.operand).collect();
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let read =
                    ODataRead { entity: &entity, query: &query, projects: &[project.id], columns: &columns, limit };
                let rows = db.store.odata_rows(read).await.unwrap();
                transcript.push(format!("{options} {limit}: {}", texts(&rows).join(";")));
                pages += 1;
                assert!(pages <= expected.len() + 2, "{options}: paging does not end");
                let Some(last) = rows.last().cloned() else { break };
                let id_at = columns.iter().position(|c| *c == Operand::Property(idx::ID)).unwrap();
                seen.extend(rows.iter().map(|row| row[id_at].as_text().unwrap().to_owned()));
                if (rows.len() as u64) < limit {
                    break;
                }
                // As a nextLink does: $skip was applied once; continue after the last row.
                query.skip = 0;
                let token = skiptoken::encode(&query, &entity, &last);
                query = odata_query(&format!("{}&$skiptoken={token}", options.replace("&$skip=4", "")));
            }
            assert_eq!(seen, expected, "{options} by pages of {limit}");
        }
    }
    transcript
}

async fn odata_groups_and_aggregates(db: &TestDb) {
    odata_aggregate_transcript(db).await;
}

async fn odata_aggregate_transcript(db: &TestDb) -> Vec<String> {
    let org = bootstrap(db).await;
    let (project, noise) = (create_project(db, &org, 1).await, create_project(db, &org, 2).await);
    let all = odata_fixture(&project, &noise);
    db.store.insert_records(all.clone(), BASE).await.unwrap();
    let mine: Vec<Record> = all.iter().filter(|r| r.project_id() == project.id).cloned().collect();
    let field = |name: &str| parley_core::field_index(name).unwrap();
    let mut transcript = Vec::new();

    let grouped = odata_query(
        "$apply=groupby((intent),aggregate($count as n,executionTime with sum as total,intentScore with average as avg,\
         execution with max as most,timestamp with min as first,contactId with countdistinct as contacts,\
         rating with sum as ratings))",
    );
    let rows = odata_rows(db, &grouped, &[project.id], &grouped.select).await;
    let mut intents: Vec<Value> = mine.iter().map(|r| r.get(field("intent")).clone()).collect();
    intents.sort_by(compare_values);
    intents.dedup();
    let mut expected = Vec::new();
    for intent in &intents {
        let group: Vec<&Record> = mine.iter().filter(|r| r.get(field("intent")) == intent).collect();
        let numbers = |name: &str| -> Vec<f64> { group.iter().filter_map(|r| as_number(r.get(field(name)))).collect() };
        let scores = numbers("intentScore");
        let ratings = numbers("rating");
        let mut contacts: Vec<&Value> = group.iter().map(|r| r.get(field("contactId"))).collect();
        contacts.sort_by(|a, b| compare_values(a, b));
        contacts.dedup();
        let most = group.iter().filter_map(|r| match r.get(field("execution")) {
            Value::Integer(i) => Some(*i),
            _ => None,
        });
        let first = group.iter().map(|r| r.get(idx::TIMESTAMP).clone()).min_by(compare_values).unwrap();
        expected.push(vec![
            intent.clone(),
            Value::Integer(group.len() as i64),
            Value::Number(numbers("executionTime").iter().sum()),
            if scores.is_empty() {
                Value::Null
            } else {
                Value::Number(scores.iter().sum::<f64>() / scores.len() as f64)
            },
            most.max().map_or(Value::Null, Value::Integer),
            first,
            Value::Integer(contacts.len() as i64),
            if ratings.is_empty() { Value::Null } else { Value::Number(ratings.iter().sum()) },
        ]);
    }
    assert_eq!(texts(&rows), texts(&expected), "groupby intent");
    assert_eq!(db.store.odata_count(&analytics(), &grouped, &[project.id]).await.unwrap(), intents.len() as u64);
    transcript.extend(texts(&rows));

    let entity = analytics();
    let mut filtered = odata_query(
        "$apply=groupby((intent),aggregate($count as n,executionTime with sum as total))&$filter=n ge 6&$orderby=n desc,total",
    );
    let everything = odata_rows(db, &filtered, &[project.id], &filtered.select).await;
    let mut expected: Vec<Vec<Value>> = expected
        .iter()
        .filter(|row| matches!(row[1], Value::Integer(n) if n >= 6))
        .map(|row| vec![row[0].clone(), row[1].clone(), row[2].clone()])
        .collect();
    expected.sort_by(|a, b| order_of(&b[1], &a[1]).then(order_of(&a[2], &b[2])).then(compare_values(&a[0], &b[0])));
    assert_eq!(texts(&everything), texts(&expected), "filtered and ordered groups");
    let count = db.store.odata_count(&entity, &filtered, &[project.id]).await.unwrap();
    assert_eq!(count, expected.len() as u64);
    let mut paged = Vec::new();
    let columns = filtered.select.clone();
    loop {
        let read =
            ODataRead { entity: &entity, query: &filtered, projects: &[project.id], columns: &columns, limit: 2 };
        let rows = db.store.odata_rows(read).await.unwrap();
        paged.extend(rows.clone());
        if rows.len() < 2 {
            break;
        }
        let last = rows.last().unwrap();
        let values: Vec<Value> = filtered
            .order
            .iter()
            .map(|k| last[columns.iter().position(|c| *c == k.operand).unwrap()].clone())
            .collect();
        filtered.after = Some(values);
    }
    assert_eq!(texts(&paged), texts(&expected), "groups by pages of 2");
    transcript.extend(texts(&paged));

    let total = odata_query("$apply=aggregate($count as n,rating with sum as s,intent with max as last)");
    let rows = odata_rows(db, &total, &[project.id, noise.id], &total.select).await;
    let ratings: f64 = all.iter().filter_map(|r| as_number(r.get(field("rating")))).sum();
    let last = all.iter().map(|r| r.get(field("intent")).clone()).max_by(compare_values).unwrap();
    assert_eq!(texts(&rows), texts(&[vec![Value::Integer(all.len() as i64), Value::Number(ratings), last]]));
    transcript.extend(texts(&rows));

    let nothing = odata_query("$apply=filter(intent eq 'none')/aggregate($count as n,rating with sum as s)");
    let rows = odata_rows(db, &nothing, &[project.id], &nothing.select).await;
    assert_eq!(texts(&rows), texts(&[vec![Value::Integer(0), Value::Null]]), "aggregates of no rows");

    let pairs = odata_query("$apply=filter(channel eq 'web')/groupby((channel,understood))&$count=true");
    let rows = odata_rows(db, &pairs, &[project.id], &pairs.select).await;
    let mut expected: Vec<Vec<Value>> = mine
        .iter()
        .filter(|r| r.get(field("channel")) == &Value::Text("web".into()))
        .map(|r| vec![r.get(field("channel")).clone(), r.get(field("understood")).clone()])
        .collect();
    expected.sort_by(|a, b| compare_values(&a[1], &b[1]));
    expected.dedup();
    assert_eq!(texts(&rows), texts(&expected), "groupby two properties after a filter");
    transcript.extend(texts(&rows));
    transcript
}

// ---------------------------------------------------------------------------------------------
// Tests that are not per engine

/// Both engines give byte-identical answers to the same calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_answer_alike() {
    let Some(postgres) = TestDb::postgres().await else { return };
    let sqlite = TestDb::sqlite().await;
    assert_eq!(paging_transcript(&sqlite).await, paging_transcript(&postgres).await);

    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await.unwrap());
    assert_eq!(update_transcript(&sqlite).await, update_transcript(&postgres).await);

    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await.unwrap());
    let mut answers = Vec::new();
    for db in [&sqlite, &postgres] {
        let org = bootstrap(db).await;
        let project = create_project(db, &org, 1).await;
        db.store.insert_records(varied_records(&project), BASE).await.unwrap();
        let query = RecordQuery::parse(params(&project, Some("timestamp:desc"), 10)).unwrap();
        answers.push(page_text(&db.store.list_records(&query).await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);

    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await.unwrap());
    assert_eq!(odata_filter_transcript(&sqlite).await, odata_filter_transcript(&postgres).await);
    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await.unwrap());
    assert_eq!(odata_paging_transcript(&sqlite).await, odata_paging_transcript(&postgres).await);
    let (sqlite, postgres) = (TestDb::sqlite().await, TestDb::postgres().await.unwrap());
    assert_eq!(odata_aggregate_transcript(&sqlite).await, odata_aggregate_transcript(&postgres).await);
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://parley@127.0.0.1:{port}/parley");
    match parley_store::open(&url, 2).await {
        Err(StoreError::Unavailable(cause)) => {
            let message = cause.to_string();
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        Err(other) => panic!("expected unavailability, got {other:?}"),
        Ok(_) => panic!("nothing listens on port {port}"),
    }
}

/// A database that has versions 1 and 3 but not 2 (changes developed side by side land in any
/// order) gets version 2 when it is opened, although a higher version is already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_below_the_highest_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parley.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(parley_store::migrations::SQLITE[0].sql).unwrap();
        conn.execute_batch(parley_store::migrations::SQLITE[2].sql).unwrap();
        conn.execute_batch(
            "CREATE TABLE parley_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             INSERT INTO parley_migrations VALUES (1, 'initial', 0), (3, 'identity', 0);",
        )
        .unwrap();
    }
    let store = open(&format!("sqlite://{}", path.display())).await;
    store.ready().await.unwrap();
    assert!(store.oauth_client("default").await.unwrap().is_some());
    let versions: Vec<i64> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT version FROM parley_migrations ORDER BY version")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let every: Vec<i64> = parley_store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(versions, every, "every version, 2 included");
    let pending_table: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'pending_updates'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(pending_table, 1, "version 2's tables exist");

    let Some(admin_url) = std::env::var(POSTGRES_URL).ok().filter(|url| !url.is_empty()) else { return };
    let database = format!("parley_test_{}", ObjectId::generate());
    let admin = admin_client(&admin_url).await;
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let url = url_with_database(&admin_url, &database);
    let _drop = TestDb {
        store: Arc::clone(&store),
        backing: Backing::Postgres { admin_url: admin_url.clone(), database, url: url.clone() },
    };
    let client = admin_client(&url).await;
    client.batch_execute(parley_store::migrations::POSTGRES[0].sql).await.unwrap();
    client.batch_execute(parley_store::migrations::POSTGRES[2].sql).await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE parley_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL);
             INSERT INTO parley_migrations VALUES (1, 'initial', now()), (3, 'identity', now());",
        )
        .await
        .unwrap();
    let pg = open(&url).await;
    pg.ready().await.unwrap();
    assert!(pg.oauth_client("default").await.unwrap().is_some());
    let rows = client.query("SELECT version FROM parley_migrations ORDER BY version", &[]).await.unwrap();
    let every: Vec<i64> = parley_store::migrations::POSTGRES.iter().map(|m| m.version).collect();
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), every, "every version, 2 included");
    let pending_table = client.query_one("SELECT to_regclass('pending_updates') IS NOT NULL", &[]).await.unwrap();
    assert!(pending_table.get::<_, bool>(0), "version 2's tables exist");
    drop(pg);
}

#[tokio::test]
async fn an_unknown_database_url_is_refused() {
    assert!(matches!(parley_store::open("mysql://localhost/x", 2).await, Err(StoreError::Internal(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_unavailable_while_gone_and_recovers_by_itself() {
    let Some(db) = TestDb::postgres().await else { return };
    let Backing::Postgres { url, .. } = &db.backing else { unreachable!() };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() else {
        panic!("{POSTGRES_URL} must name a TCP host for the outage test");
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port)).await.unwrap().next().unwrap();

    let proxy = Proxy::start(0, target).await;
    let proxy_port = proxy.port;
    let store = open(&url_with_address(url, &format!("127.0.0.1:{proxy_port}"))).await;
    let org = bootstrap(&db).await;
    let project = create_project(&db, &org, 1).await;
    store.insert_records(vec![record(&project, 1, json!({}))], BASE).await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 1);

    proxy.cut().await;
    for attempt in 0..3 {
        match store.count_records(&filter_of(&project)).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("attempt {attempt} while the database is gone: {other:?}"),
        }
    }
    assert!(matches!(store.ready().await, Err(StoreError::Unavailable(_))));

    let restored = Proxy::start(proxy_port, target).await;
    store.ready().await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 1);
    store.insert_records(vec![record(&project, 2, json!({}))], BASE).await.unwrap();
    assert_eq!(store.count_records(&filter_of(&project)).await.unwrap(), 2);
    restored.cut().await;
}
