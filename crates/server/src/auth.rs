//! Credentials (docs/contract/rest.md §6): an `X-API-Key` header, an `api_key` query parameter, or
//! `Authorization: Bearer` holding an OAuth2 access token or an API key; and, as the OData feeds
//! send it (docs/contract/odata.md), an `apikey` header or query parameter. Every credential present must be
//! valid and all must name the same user. Secrets are hashed at once and compared by hash lookup;
//! they never reach a log.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use parley_core::{Caller, ObjectId};
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::state::AppState;
use crate::tokens::{TokenError, looks_like_jwt};

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

const BEARER: &str = "Authorization header";

fn presented<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Vec<Presented<'a>> {
    let mut found = Vec::new();
    // A header given twice is two credentials, each checked: never the first alone.
    for value in headers.get_all("x-api-key").iter().filter_map(|v| v.to_str().ok()) {
        found.push(Presented { source: "X-API-Key header", secret: value.trim() });
    }
    for value in headers.get_all("apikey").iter().filter_map(|v| v.to_str().ok()) {
        found.push(Presented { source: "apikey header", secret: value.trim() });
    }
    if let Some(query) = uri.query() {
        for (name, value) in form_pairs(query) {
            match name {
                "api_key" => found.push(Presented { source: "api_key query parameter", secret: value }),
                "apikey" => found.push(Presented { source: "apikey query parameter", secret: value }),
                _ => {}
            }
        }
    }
    for value in headers.get_all(AUTHORIZATION).iter().filter_map(|v| v.to_str().ok()) {
        found.push(Presented { source: BEARER, secret: bearer_token(value) });
    }
    found.retain(|p| !p.secret.is_empty());
    found
}

/// What the rate limiter keys a request by when it carries a credential: the SHA-256 of the first
/// one, so that the secret itself is never kept.
pub fn credential_fingerprint(headers: &HeaderMap, uri: &Uri) -> Option<[u8; 32]> {
    presented(headers, uri).first().map(|credential| {
        let mut hasher = Sha256::new();
        hasher.update(b"credential:");
        hasher.update(form_decoded(credential.secret).as_bytes());
        hasher.finalize().into()
    })
}

/// The token of an `Authorization` value: what follows the `Bearer` scheme (case-insensitive),
/// or the whole value when it names no scheme. `Bearer` alone (the trailing space is trimmed in
/// transit) is an empty token, which counts as absent.
fn bearer_token(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    }
}

/// Raw `name=value` pairs of a query string. Values are percent-decoded only when needed; the
/// borrowed form avoids copying a secret.
fn form_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credentials = presented(&parts.headers, &parts.uri);
        if credentials.is_empty() {
            return Err(ApiError::unauthorized(
                "No credentials. Send an API key in the X-API-Key or apikey header, the api_key or apikey query parameter, or a bearer token.",
            ));
        }
        let mut caller: Option<Caller> = None;
        for credential in credentials {
            let secret = form_decoded(credential.secret);
            let found = if credential.source == BEARER && looks_like_jwt(&secret) {
                access_token_caller(state, &secret).await?
            } else {
                state.store.caller_by_key_hash(hash_api_key(&secret)).await?
            };
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

/// The caller of a valid access token whose session still exists; `None` for a token that is
/// not valid. An expired token is refused with its own detail.
async fn access_token_caller(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let claims = match state.tokens.verify(token) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => {
            return Err(ApiError::unauthorized(format!(
                "The access token in the {BEARER} has expired; get a new one with the refresh token."
            )));
        }
        Err(TokenError::Invalid) => return Ok(None),
    };
    let (Ok(user), Ok(session)) = (ObjectId::parse(&claims.sub), ObjectId::parse(&claims.sid)) else {
        return Ok(None);
    };
    Ok(state.store.session_caller(session, user).await?)
}

/// `text` decoded as a query-string value: `+` is a space and `%XX` a byte; bytes that are not
/// UTF-8 become U+FFFD.
pub(crate) fn form_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_decoded_as_query_string_values() {
        for (sent, decoded) in [
            ("plain", "plain"),
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("%C3%A9t%C3%A9", "été"),
            ("100%", "100%"),
            ("%ZZ", "%ZZ"),
            ("%FF", "\u{FFFD}"),
        ] {
            assert_eq!(form_decoded(sent), decoded, "{sent}");
        }
    }

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
        assert!(presented(&parts.headers, &parts.uri).is_empty());
        assert_eq!(credential_fingerprint(&parts.headers, &parts.uri), None);
        assert_eq!(bearer_token("Bearer"), "");
        assert_eq!(bearer_token("bearer  abc "), "abc");
        assert_eq!(bearer_token("abc"), "abc");
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
        let mut secrets: Vec<&str> = presented(&parts.headers, &parts.uri).iter().map(|p| p.secret).collect();
        secrets.sort();
        assert_eq!(secrets, ["a", "b", "c", "d", "e"]);
    }
}
