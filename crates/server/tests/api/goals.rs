//! Goal definitions over HTTP (docs/contract/conversations.md, "Goals"): create, read, list,
//! change (each change a new version), delete; the OData sets showing the current version; and
//! every refusal with the field it names.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, assert_invalid, assert_problem, call, odata_values as odata, on_both_engines, spawn_app_on,
};

on_both_engines!(goals_are_versioned_on_every_change_and_shown_over_odata, a_goal_that_breaks_a_rule_is_refused,);

fn refund() -> Json {
    json!({"name": "Refund", "description": "A refund is paid", "referenceId": "ref-1", "steps": [
        {"stepId": "asked", "name": "Asked", "type": "start", "order": 1},
        {"name": "Paid", "type": "completion", "order": 3,
         "metrics": [{"name": "Amount", "type": "currency", "value": 25.5},
                     {"name": "Time", "type": "duration", "value": 90}]},
        {"name": "Verified", "type": "step", "order": 2, "text": "Identity checked"},
    ]})
}

async fn goals_are_versioned_on_every_change_and_shown_over_odata(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let goals = format!("/new/v2.0/projects/{project}/goals");
    let (status, created) = call(&app, Method::POST, &goals, Some(&refund())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["_id"].as_str().unwrap().to_owned();
    let names: Vec<&Json> = created["steps"].as_array().unwrap().iter().map(|s| &s["name"]).collect();
    assert_eq!(names, [&json!("Asked"), &json!("Verified"), &json!("Paid")], "steps by order");
    assert_eq!(created["steps"][0]["stepId"], "asked");
    assert_eq!(
        created["steps"][2]["metrics"][0],
        json!({"metricId": created["steps"][2]["metrics"][0]["metricId"],
        "name": "Amount", "description": null, "type": "currency", "value": 25.5})
    );
    assert_eq!(
        (created["projectId"].clone(), created["createdBy"].clone()),
        (json!(project), created["lastChangedBy"].clone())
    );
    let first = created["version"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 36, "a UUID");

    let goal = format!("{goals}/{id}");
    let (status, read) = call(&app, Method::GET, &goal, None).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));
    let (status, list) = call(&app, Method::GET, &goals, None).await;
    assert_eq!((status, list["total"].clone(), list["items"][0].clone()), (StatusCode::OK, json!(1), created.clone()));

    // A change of the name alone keeps the steps and makes a new version.
    let (status, renamed) = call(&app, Method::PATCH, &goal, Some(&json!({"name": "Refunds"}))).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Refunds");
    assert_ne!(renamed["version"], json!(first));
    assert_eq!(renamed["steps"], created["steps"]);
    assert_eq!(renamed["createdAt"], created["createdAt"]);

    // OData shows the current version of the goal, its steps and their metrics.
    let rows = odata(&app, "/v2.4/Goals").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["goalId"].clone(), rows[0]["name"].clone()), (json!(id), json!("Refunds")));
    assert_eq!(rows[0]["version"], renamed["version"]);
    let steps = odata(&app, "/v2.4/GoalSteps?$orderby=order").await;
    let seen: Vec<(Json, Json, Json)> =
        steps.iter().map(|s| (s["name"].clone(), s["type"].clone(), s["version"].clone())).collect();
    let version = renamed["version"].clone();
    assert_eq!(
        seen,
        [
            (json!("Asked"), json!("start"), version.clone()),
            (json!("Verified"), json!("step"), version.clone()),
            (json!("Paid"), json!("completion"), version.clone())
        ]
    );
    assert_eq!(steps[1]["text"], "Identity checked");
    let metrics = odata(&app, "/v2.4/GoalStepMetrics?$filter=type eq 'currency'").await;
    assert_eq!(metrics.len(), 1);
    assert_eq!((metrics[0]["value"].clone(), metrics[0]["goalId"].clone()), (json!(25.5), json!(id)));
    assert_eq!(metrics[0]["goalStepId"], steps[2]["goalStepId"]);

    // Replacing the steps replaces them over OData too.
    let steps_only = json!({"steps": [{"stepId": "asked", "name": "Asked", "type": "start", "order": 1},
                                      {"name": "Paid", "type": "completion", "order": 2}]});
    let (status, restepped) = call(&app, Method::PATCH, &goal, Some(&steps_only)).await;
    assert_eq!(status, StatusCode::OK, "{restepped}");
    assert_eq!(odata(&app, "/v2.4/GoalSteps").await.len(), 2);
    assert!(odata(&app, "/v2.4/GoalStepMetrics").await.is_empty());
    assert_eq!(restepped["description"], "A refund is paid", "what the change leaves out stays");

    // Another goal cannot take a step id of this one.
    let mut copy = refund();
    copy["name"] = json!("Copy");
    let (status, problem) = call(&app, Method::POST, &goals, Some(&copy)).await;
    assert_eq!((status, problem["code"].clone()), (StatusCode::CONFLICT, json!(1004)), "{problem}");
    assert_eq!(odata(&app, "/v2.4/Goals").await.len(), 1, "nothing of it is kept");

    // Deleting takes the goal, its steps and metrics.
    let (status, _) = call(&app, Method::DELETE, &goal, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = app.request(Method::GET, &goal).send().await.unwrap();
    assert_problem(response, 404, 1002, &goal).await;
    let response = app.request(Method::DELETE, &goal).send().await.unwrap();
    assert_problem(response, 404, 1002, &goal).await;
    assert!(odata(&app, "/v2.4/Goals").await.is_empty());
    assert!(odata(&app, "/v2.4/GoalSteps").await.is_empty());
}

async fn a_goal_that_breaks_a_rule_is_refused(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let goals = format!("/new/v2.0/projects/{project}/goals");
    let with = |pointer: &str, value: Json| {
        let mut body = refund();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (with("/name", json!("  ")), 1005, "name"),
        (with("/steps", json!([])), 1005, "steps"),
        (with("/steps/0/type", json!("step")), 1005, "steps"),
        (with("/steps/1/type", json!("step")), 1005, "steps"),
        (with("/steps/1/type", json!("finish")), 1005, "steps[1].type"),
        (with("/steps/2/order", json!("second")), 1005, "steps[2].order"),
        (with("/steps/1/metrics/0/type", json!("points")), 1005, "steps[1].metrics[0].type"),
        (with("/steps/1/metrics/0/value", json!("a lot")), 1005, "steps[1].metrics[0].value"),
        (with("/steps/1/metrics/0/value", Json::Null), 1000, "steps[1].metrics[0].value"),
        (with("/steps/0/name", Json::Null), 1000, "steps[0].name"),
    ];
    for (body, code, field) in cases {
        let response = app.request(Method::POST, &goals).json(&body).send().await.unwrap();
        assert_invalid(response, code, &goals, field).await;
    }
    let mut unknown = refund();
    unknown["colour"] = json!("red");
    let response = app.request(Method::POST, &goals).json(&unknown).send().await.unwrap();
    assert_invalid(response, 1005, &goals, "colour").await;
    assert!(odata(&app, "/v2.4/Goals").await.is_empty(), "nothing refused is kept");

    let (_, created) = call(&app, Method::POST, &goals, Some(&refund())).await;
    let goal = format!("{goals}/{}", created["_id"].as_str().unwrap());
    let response = app.request(Method::PATCH, &goal).json(&json!({})).send().await.unwrap();
    assert_invalid(response, 1005, &goal, "body").await;
    let response =
        app.request(Method::PATCH, &goal).json(&json!({"steps": [{"name": "x", "type": "start", "order": 1}]}));
    assert_invalid(response.send().await.unwrap(), 1005, &goal, "steps").await;
    let (_, unchanged) = call(&app, Method::GET, &goal, None).await;
    assert_eq!(unchanged, created, "a refused change changes nothing");
    let absent = format!("{goals}/5f0c6bc4ad4f8b0011b2e0e1");
    let response = app.request(Method::PATCH, &absent).json(&json!({"name": "x"})).send().await.unwrap();
    assert_problem(response, 404, 1002, &absent).await;
    let malformed = format!("{goals}/not-an-id");
    let response = app.request(Method::GET, &malformed).send().await.unwrap();
    assert_problem(response, 404, 1002, &malformed).await;
}
