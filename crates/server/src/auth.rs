//! Credentials (rest.md §6): an `X-API-Key` header, an `api_key` query parameter, or
//! `Authorization: Bearer`; and, as the OData feeds send it (odata.md), an `apikey` header or
//! query parameter. Every credential present must be valid and all must name the same user. Secrets are hashed at once and compared by hash lookup; they never reach a log.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use parley_core::Caller;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::state::AppState;

/// A new API key secret: 32 random bytes as 64 hex characters.
pub fn generate_api_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What is stored of an API key: the SHA-256 of its secret. The secret has 256 bits of entropy
/// (or is an operator's choice), so a fast hash is enough, and a lookup by hash compares in
/// constant time with respect to the secret.
pub fn hash_api_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// One credential found on a request, with the name used in error messages.
struct Presented<'a> {
    source: &'static str,
    secret: &'a str,
}

fn presented(parts: &Parts) -> Vec<Presented<'_>> {
    let mut found = Vec::new();
    if let Some(value) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        found.push(Presented { source: "X-API-Key header", secret: value.trim() });
    }
    if let Some(value) = parts.headers.get("apikey").and_then(|v| v.to_str().ok()) {
        found.push(Presented { source: "apikey header", secret: value.trim() });
    }
    if let Some(query) = parts.uri.query() {
        for (name, value) in form_pairs(query) {
            match name {
                "api_key" => found.push(Presented { source: "api_key query parameter", secret: value }),
                "apikey" => found.push(Presented { source: "apikey query parameter", secret: value }),
                _ => {}
            }
        }
    }
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or(value);
        found.push(Presented { source: "Authorization header", secret: token.trim() });
    }
    found.retain(|p| !p.secret.is_empty());
    found
}

/// Raw `name=value` pairs of a query string. Values are percent-decoded only when needed; the
/// borrowed form avoids copying a secret.
fn form_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credentials = presented(parts);
        if credentials.is_empty() {
            return Err(ApiError::unauthorized(
                "No credentials. Send an API key in the X-API-Key or apikey header, the api_key or apikey query parameter, or a bearer token.",
            ));
        }
        let mut caller: Option<Caller> = None;
        for credential in credentials {
            let secret = percent_decoded(credential.secret);
            let found = state.store.caller_by_key_hash(hash_api_key(&secret)).await?;
            let Some(found) = found else {
                return Err(ApiError::unauthorized(format!(
                    "The {} does not hold a valid credential.",
                    credential.source
                )));
            };
            match &caller {
                Some(known) if known.user_id != found.user_id => {
                    return Err(ApiError::unauthorized(format!(
                        "The {} belongs to a different user than the other credentials of the request.",
                        credential.source
                    )));
                }
                _ => caller = Some(found),
            }
        }
        caller.ok_or_else(|| ApiError::unauthorized("No credentials."))
    }
}

fn percent_decoded(text: &str) -> String {
    if text.contains('%') || text.contains('+') {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("k={text}"))
            .ok()
            .and_then(|mut pairs| pairs.pop())
            .map_or_else(|| text.to_owned(), |(_, value)| value)
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_and_distinct() {
        let a = generate_api_key();
        assert_eq!(a.len(), 64);
        assert_ne!(a, generate_api_key());
        assert_ne!(hash_api_key(&a), hash_api_key(&generate_api_key()));
    }

    #[test]
    fn empty_credentials_count_as_absent() {
        let request = axum::http::Request::builder()
            .uri("/v2.0/analytics?api_key=&x=1")
            .header("x-api-key", "")
            .header("authorization", "Bearer ")
            .body(())
            .unwrap();
        let (parts, _) = request.into_parts();
        assert!(presented(&parts).is_empty());
    }

    #[test]
    fn every_place_a_key_may_come_from_is_read() {
        let request = axum::http::Request::builder()
            .uri("/v2.4/Analytics?apikey=a&api_key=b&$top=1")
            .header("x-api-key", "c")
            .header("apikey", "d")
            .header("authorization", "Bearer e")
            .body(())
            .unwrap();
        let (parts, _) = request.into_parts();
        let mut secrets: Vec<&str> = presented(&parts).iter().map(|p| p.secret).collect();
        secrets.sort();
        assert_eq!(secrets, ["a", "b", "c", "d", "e"]);
    }
}
