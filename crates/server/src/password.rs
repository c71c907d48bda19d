//! Passwords: hashed with Argon2id (default parameters, a random salt per password) into a PHC
//! string, the only form parley stores. Hashing is deliberately slow, so it runs on the blocking
//! pool rather than on the threads that serve requests.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A generated password: 18 random bytes as 24 URL-safe base64 characters.
pub fn generate_password() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

/// The PHC string of `password`.
pub async fn hash_password(password: String) -> Result<String, parley_core::Error> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| parley_core::Error::internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| parley_core::Error::internal(format!("password hashing task failed: {e}")))?
}

/// Whether `password` matches the stored PHC string. With no stored hash, a hash of a fixed
/// password is checked instead, so that an unknown user takes as long to refuse as a known one.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let decoy = stored.is_none();
        let stored = stored.unwrap_or_else(|| DECOY.to_owned());
        let matches = PasswordHash::new(&stored)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok());
        matches && !decoy
    })
    .await
    .unwrap_or(false)
}

/// The Argon2id hash (default parameters) of a password nobody knows.
const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cGFybGV5LWRlY295LXNhbHQ$Jo4PGcEbcAXddpT3HyjXAY+nA2L9dSsvjRWRwCbXTAM";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("correct horsE".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
        assert!(!verify_password("anything".into(), Some("not a hash".into())).await);
    }

    #[test]
    fn the_decoy_is_a_valid_argon2id_hash() {
        assert!(PasswordHash::new(DECOY).is_ok());
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }
}
