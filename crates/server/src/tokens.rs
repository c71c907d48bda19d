//! OAuth2 tokens. Access tokens are JWTs signed with HS256 under a key kept in the database (so
//! that every node on it accepts every node's tokens), living [`ACCESS_TOKEN_SECONDS`]; each names
//! the user (`sub`), the organisation (`org`) and the token session (`sid`) it belongs to, and is
//! honoured only while that session exists, so revoking a session or deleting its user ends its
//! tokens at once. Refresh tokens are opaque random secrets stored as SHA-256 hashes, living
//! [`REFRESH_TOKEN_SECONDS`] and used once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parley_core::ObjectId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Lifetime of an access token: 15 minutes.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// Lifetime of a refresh token: 1 day.
pub const REFRESH_TOKEN_SECONDS: i64 = 24 * 60 * 60;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The user's organisation.
    pub org: String,
    /// The token session.
    pub sid: String,
    /// The client the token was issued to.
    pub cid: String,
    pub iat: i64,
    pub exp: i64,
    /// A unique id, so that no two tokens are alike.
    pub jti: String,
}

/// Why a bearer token was refused, for the 401 detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks access tokens with the shared key.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AccessTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        AccessTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A new access token for a user's session, issued at `now`.
    pub fn issue(
        &self,
        user: ObjectId,
        organisation: ObjectId,
        session: ObjectId,
        client: &str,
        now: OffsetDateTime,
    ) -> Result<String, parley_core::Error> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            org: organisation.to_string(),
            sid: session.to_string(),
            cid: client.to_owned(),
            iat,
            exp: iat + ACCESS_TOKEN_SECONDS,
            jti: ObjectId::generate().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| parley_core::Error::internal(format!("signing an access token failed: {e}")))
    }

    /// The claims of a valid, unexpired token signed with this key.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })
    }

    /// The claims of a token signed with this key, expired or not: revocation accepts both.
    pub fn verify_signature_only(&self, token: &str) -> Option<Claims> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

/// Whether a bearer value has the shape of a JWT (three base64url parts), as opposed to an API
/// key, which is sent as a bearer token too by clients of the published update request.
pub fn looks_like_jwt(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok()
}

/// A new refresh token: 32 random bytes as 64 hex characters.
pub fn generate_refresh_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&[7; 32])
    }

    #[test]
    fn a_token_verifies_with_its_key_only() {
        let (user, org, sid) = (ObjectId::generate(), ObjectId::generate(), ObjectId::generate());
        let token = tokens().issue(user, org, sid, "default", parley_core::value::now()).unwrap();
        assert!(looks_like_jwt(&token));
        let claims = tokens().verify(&token).unwrap();
        assert_eq!((claims.sub, claims.org, claims.sid), (user.to_string(), org.to_string(), sid.to_string()));
        assert_eq!(claims.exp - claims.iat, ACCESS_TOKEN_SECONDS);
        assert_eq!(AccessTokens::new(&[8; 32]).verify(&token), Err(TokenError::Invalid));
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(tokens().verify(&tampered), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_told_apart_but_still_revocable() {
        let issued = parley_core::value::now() - time::Duration::minutes(16);
        let token =
            tokens().issue(ObjectId::generate(), ObjectId::generate(), ObjectId::generate(), "c", issued).unwrap();
        assert_eq!(tokens().verify(&token), Err(TokenError::Expired));
        assert!(tokens().verify_signature_only(&token).is_some());
        assert!(AccessTokens::new(&[9; 32]).verify_signature_only(&token).is_none());
    }

    #[test]
    fn api_keys_do_not_look_like_tokens() {
        assert!(!looks_like_jwt(&crate::auth::generate_api_key()));
        assert!(!looks_like_jwt("a.b.c"));
        assert_ne!(generate_refresh_token(), generate_refresh_token());
    }
}
