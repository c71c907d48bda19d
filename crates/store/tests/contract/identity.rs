//! Identity: bootstrap, users, API keys, project members, OAuth clients, sessions and refresh tokens.

use std::sync::Arc;

use parley_core::{Caller, ObjectId, OrgRole, ProjectAccess, ProjectRole};
use parley_store::{
    ApiKeyInfo, Constraint, GrantType, Member, MemberChange, NewApiKey, NewRefreshToken, NewUser, OAuthClient,
    Organisation, RefreshOutcome, StoreError, TokenSession, User, UserDeletion, UserKind, on_both_engines,
};
use time::{Duration, OffsetDateTime};

use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, bootstrap_of, create_project, create_user, oid, user_of};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    bootstrap_runs_once,
    api_keys_are_created_listed_and_revoked,
    users_are_created_listed_and_deleted,
    deleting_a_user_takes_their_keys_memberships_and_sessions,
    members_are_added_replaced_and_removed,
    the_signing_key_and_the_default_client_exist_once,
    refresh_tokens_rotate_once_and_reuse_revokes_the_session,
    sessions_are_revoked_by_either_token,
);

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

    let member = create_user(db, org.id, 0, vec![OrgRole::ApiKeys]).await.id;
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
