//! Fixtures: fixed ids and times, so that both engines get identical inputs.

use std::cmp::Ordering;

use parley_core::field::idx;
use parley_core::{
    Caller, ListParams, NewRecord, ObjectId, OrgRole, Project, ProjectProfile, ProjectSettings, Record, RecordFilter,
    RecordUpdate, Value,
};
use parley_store::{Bootstrap, NewApiKey, NewUser, User, UserKind, testing};
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::TestDb;

pub fn oid(n: u64) -> ObjectId {
    ObjectId::parse(&format!("{n:024x}")).unwrap()
}

pub const BASE: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

pub struct Org {
    pub id: ObjectId,
    pub admin: Caller,
    pub key_hash: [u8; 32],
}

pub fn bootstrap_of(org: u64) -> Bootstrap {
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

pub async fn bootstrap(db: &TestDb) -> Org {
    let b = bootstrap_of(1);
    assert!(db.store.bootstrap(b.clone()).await.unwrap());
    Org {
        id: b.organisation_id,
        admin: Caller { user_id: b.admin_id, organisation: b.organisation_id, org_roles: vec![OrgRole::Admin] },
        key_hash: b.api_key.secret_hash,
    }
}

pub fn project_of(org: &Org, n: u64) -> Project {
    let created = BASE + Duration::seconds(n as i64);
    Project {
        id: oid(0xc000 + n),
        organisation: org.id,
        name: format!("Project {n}"),
        settings: ProjectSettings::default(),
        profile: ProjectProfile::default(),
        created_at: created,
        updated_at: created,
    }
}

pub async fn create_project(db: &TestDb, org: &Org, n: u64) -> Project {
    let project = project_of(org, n);
    db.store.create_project(project.clone()).await.unwrap();
    project
}

/// A stamped record of `project` with id `n`; `fields` add to or override the defaults.
pub fn record(project: &Project, n: u64, fields: Json) -> Record {
    let (contact, session, input) = (format!("c{}", n % 3), format!("s{}", n % 5), format!("i{n}"));
    let mut json = testing::record(&project.id.to_string(), &contact, &session, &input);
    for (name, value) in fields.as_object().unwrap() {
        json[name] = value.clone();
    }
    let stamped = NewRecord::parse(json).unwrap().stamp(project.organisation, &project.settings, BASE);
    let mut values = stamped.values().to_vec();
    values[idx::ID] = Value::Text(format!("{n:024x}"));
    Record::from_values(values)
}

pub fn filter_of(project: &Project) -> RecordFilter {
    RecordFilter { project_id: project.id, contact_id: None, session_id: None, from: None, to: None }
}

pub fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id().to_owned()).collect()
}

/// User `n` of `organisation`; ids 0xb100 and up.
pub fn user_of(organisation: ObjectId, n: u64, email: &str, roles: Vec<OrgRole>) -> User {
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

/// Creates user `n` of `organisation` with these organisation roles and no password.
pub async fn create_user(db: &TestDb, organisation: ObjectId, n: u64, roles: Vec<OrgRole>) -> User {
    let user = user_of(organisation, n, &format!("user-{n}@example.com"), roles);
    db.store.create_user(NewUser { user: user.clone(), password_hash: None }).await.unwrap();
    user
}

/// An update of `project`'s records that `selector` picks.
pub fn update(project: &Project, selector: Json, properties: Json) -> RecordUpdate {
    let mut body = json!({"projectId": project.id.to_string(), "properties": properties});
    for (name, value) in selector.as_object().unwrap() {
        body[name] = value.clone();
    }
    RecordUpdate::parse(body).unwrap()
}

/// Null lowest, text by bytes, as both engines must order.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
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

pub fn params(project: &Project, sort: Option<&str>, limit: u32) -> ListParams {
    ListParams {
        project_id: Some(project.id.to_string()),
        sort: sort.map(str::to_owned),
        limit: Some(limit.to_string()),
        ..ListParams::default()
    }
}

/// How long an update waits for its record.
pub const WINDOW: Duration = Duration::minutes(10);

/// An update of the record with this input.
pub fn by_input(project: &Project, contact: &str, input: &str, properties: Json) -> RecordUpdate {
    update(project, json!({"contactId": contact, "inputId": input}), properties)
}

pub fn sorted(mut ids: Vec<ObjectId>) -> Vec<ObjectId> {
    ids.sort();
    ids
}
