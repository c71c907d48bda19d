//! Rate limits (docs/contract/rest.md §9): at most `rate_limit_per_minute` requests a minute for each credential,
//! and for each client address among requests without one; beyond that, 429 with `Retry-After`.
//! A credential is counted by the SHA-256 of its secret, never by the secret. The buckets live in
//! the node's memory, so with several nodes each allows the limit on its own. Health probes are
//! not counted.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::auth::credential_fingerprint;
use crate::problem::{ApiError, ErrorCode};

/// Forgotten buckets are dropped after this many requests.
const SWEEP_EVERY: u64 = 4096;

/// The buckets of one node.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<[u8; 32]>,
    clock: DefaultClock,
    requests: AtomicU64,
}

impl RateLimit {
    /// A limiter allowing `per_minute` requests a minute per key, in bursts of up to as many;
    /// `None` when the limit is 0 (off).
    pub fn new(per_minute: u32) -> Option<Arc<RateLimit>> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Arc::new(RateLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            requests: AtomicU64::new(0),
        }))
    }

    /// `Ok` when the key may make a request now; otherwise the seconds to wait (at least 1).
    fn check(&self, key: &[u8; 32]) -> Result<(), u64> {
        if self.requests.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }
}

fn address_key(request: &Request) -> [u8; 32] {
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
    let mut hasher = Sha256::new();
    hasher.update(b"address:");
    hasher.update(address.unwrap_or_default().as_bytes());
    hasher.finalize().into()
}

/// The middleware.
pub async fn limit(State(limit): State<Arc<RateLimit>>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/health/") {
        return next.run(request).await;
    }
    let key = credential_fingerprint(request.headers(), request.uri()).unwrap_or_else(|| address_key(&request));
    match limit.check(&key) {
        Ok(()) => next.run(request).await,
        Err(seconds) => {
            let mut error = ApiError::new(
                ErrorCode::TooManyRequests,
                format!("Too many requests for this credential; try again in {seconds} s."),
            );
            error.headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_beyond_its_burst_and_others_are_not() {
        let limit = RateLimit::new(2).unwrap();
        assert_eq!(limit.check(&[1; 32]), Ok(()));
        assert_eq!(limit.check(&[1; 32]), Ok(()));
        let wait = limit.check(&[1; 32]).unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
        assert_eq!(limit.check(&[2; 32]), Ok(()));
        assert!(RateLimit::new(0).is_none());
    }
}
