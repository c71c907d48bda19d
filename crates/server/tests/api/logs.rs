//! No secret in any log line (docs/contract/operations.md, "Health and telemetry"; docs/contract/rest.md §6). The `parley`
//! binary runs as a child process with the most verbose log filter, requests carry every kind of
//! credential, and its whole log is searched for the secrets.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::Value as Json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let api_key = format!("key-{}", hex::encode(rand::random::<[u8; 16]>()));
    let password = format!("pw-{}", hex::encode(rand::random::<[u8; 12]>()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PARLEY_ADMIN_API_KEY", &api_key)
        .env("PARLEY_ADMIN_PASSWORD", &password)
        .env("PARLEY_LOG", "trace")
        .env("PARLEY_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("parley starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let address = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "parley exited before listening: {log}");
        log.push_str(&line);
        if let Ok(event) = serde_json::from_str::<Json>(&line)
            && let Some(address) = event["address"].as_str()
        {
            break address.to_owned();
        }
    };
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let mut secrets = vec![api_key.clone(), password.clone()];

    let token: Json = client
        .post(format!("{base}/auth/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "admin@localhost"),
            ("password", &password),
            ("client_id", "default"),
            ("client_secret", ""),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().expect("an access token").to_owned();
    let refresh = token["refresh_token"].as_str().expect("a refresh token").to_owned();
    let projects = format!("{base}/new/v2.0/projects");
    let answers = [
        client.get(&projects).header("X-API-Key", &api_key).send().await.unwrap(),
        client.get(format!("{projects}?api_key={api_key}")).send().await.unwrap(),
        client.get(&projects).bearer_auth(&access).send().await.unwrap(),
        client.get(&projects).bearer_auth(&api_key).send().await.unwrap(),
        client.get(&projects).header("X-API-Key", "wrong-key-that-is-secret").send().await.unwrap(),
    ];
    for answer in answers {
        assert!(answer.status().as_u16() == 200 || answer.status().as_u16() == 401);
    }
    secrets.push("wrong-key-that-is-secret".into());
    let refreshed: Json = client
        .post(format!("{base}/auth/oauth2/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", "default")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_refresh = refreshed["refresh_token"].as_str().expect("a new refresh token").to_owned();
    let created: Json = client
        .request(Method::POST, format!("{base}/new/v2.0/users/me/apikeys"))
        .header("X-API-Key", &api_key)
        .header("Accept", "application/json")
        .json(&serde_json::json!({"name": "logged?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revoked =
        client.post(format!("{base}/auth/oauth2/revoke")).form(&[("token", &new_refresh)]).send().await.unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    secrets.extend([access, refresh, new_refresh, created["apiKey"].as_str().expect("a key").to_owned()]);

    // SIGTERM: the server drains and exits, so the log is complete.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    stderr.read_to_string(&mut log).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "parley stopped with {status}");

    // One line per request: the token, five reads, the refresh, the new key and the revocation.
    let request_lines = log.lines().filter(|line| line.contains("\"traceId\"")).count();
    assert_eq!(request_lines, 9, "the log holds every request:\n{log}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log:\n{log}");
        let encoded = secret.replace('@', "%40");
        assert!(!log.contains(&encoded), "a secret is in the log:\n{log}");
    }
}
