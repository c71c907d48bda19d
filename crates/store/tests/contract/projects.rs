//! Projects: who sees them, changing and deleting them.

use parley_core::{Caller, OrgRole, Project, ProjectAccess, ProjectProfile, ProjectRole, ProjectSettings};
use parley_store::{MemberChange, on_both_engines};
use serde_json::json;
use time::Duration;

use crate::TestDb;
use crate::fixtures::{BASE, bootstrap, create_project, create_user, filter_of, oid, record, sorted};

on_both_engines!(
    |engine| &crate::TestDb::open(engine).await;
    projects_are_visible_to_admins_and_members,
    updating_a_project_changes_it,
    deleting_a_project_deletes_its_records,
);

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

    let member = create_user(db, org.id, 0, vec![OrgRole::Odata]).await.caller();
    let basic = vec![ProjectRole::Basic];
    assert_eq!(db.store.set_member(&p2, member.user_id, basic).await.unwrap(), MemberChange::Added);
    let manager = vec![ProjectRole::Analytics, ProjectRole::ProjectAdmin];
    assert_eq!(db.store.set_member(&p3, member.user_id, manager).await.unwrap(), MemberChange::Added);
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

async fn updating_a_project_changes_it(db: &TestDb) {
    let org = bootstrap(db).await;
    let project = create_project(db, &org, 1).await;
    let changed = Project {
        name: "Renamed — ✓".into(),
        settings: ProjectSettings {
            collect_analytics: false,
            mask_sensitive: true,
            mask_ip: true,
            retention_days: 0,
            ..ProjectSettings::default()
        },
        profile: ProjectProfile {
            locale: Some("de-DE".into()),
            color: Some("#3f51b5".into()),
            description: None,
            handover_configuration: Some(serde_json::json!({"provider": "none", "nested": [1, {"a": null}]})),
        },
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
    let member = create_user(db, org.id, 0, vec![]).await.caller();
    let basic = vec![ProjectRole::Basic];
    assert_eq!(db.store.set_member(&doomed, member.user_id, basic).await.unwrap(), MemberChange::Added);
    let records = vec![record(&doomed, 1, json!({})), record(&doomed, 2, json!({})), record(&kept, 3, json!({}))];
    db.store.insert_records(records, BASE).await.unwrap();

    assert!(!db.store.delete_project(oid(0xa999), doomed.id).await.unwrap(), "only within its organisation");
    assert_eq!(db.store.count_records(&filter_of(&doomed)).await.unwrap(), 2);

    assert!(db.store.delete_project(org.id, doomed.id).await.unwrap());
    assert_eq!(db.store.project_for(&org.admin, doomed.id).await.unwrap(), None);
    assert_eq!(db.store.count_records(&filter_of(&doomed)).await.unwrap(), 0);
    assert_eq!(db.store.get_record(&[doomed.id], oid(1)).await.unwrap(), None);
    assert_eq!(db.store.count_records(&filter_of(&kept)).await.unwrap(), 1);
    assert!(db.store.visible_project_ids(&member).await.unwrap().is_empty());
    assert!(!db.store.delete_project(org.id, doomed.id).await.unwrap());
}
