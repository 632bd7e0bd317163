//! Rate limits: a token bucket per key, kept in this process. Each broker instance limits
//! on its own, so N instances admit up to N times the configured rate in total; the
//! limits are a guard against a runaway client, not an accounting system.
//!
//! The bucket table is bounded: when it grows past `MAX_KEYS`, buckets that have refilled
//! completely (their clients went quiet) are dropped first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 50_000;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; when there is none, how long until there will be.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned table only means a panic elsewhere; fail open rather than lock
            // every client out (the limiter is a guard, not an authorisation check).
            return Ok(());
        };
        let now = Instant::now();
        if buckets.len() >= MAX_KEYS {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - *tokens) / self.per_second).max(1.0),
            ))
        }
    }
}

/// The broker's limiters.
#[derive(Debug)]
pub struct Limits {
    /// Per service, on the `/v1` API.
    pub api: RateLimiter,
    /// Per client address, on browser form posts (sign-in, consent).
    pub browser_posts: RateLimiter,
    /// Header holding the client address when a trusted proxy sets it (rightmost entry).
    pub client_ip_header: Option<axum::http::HeaderName>,
}

impl Limits {
    pub fn new(config: &crate::config::LimitsConfig) -> Self {
        Self {
            api: RateLimiter::new(config.api_per_second, config.api_burst),
            browser_posts: RateLimiter::new(
                config.browser_posts_per_minute / 60.0,
                config.browser_posts_burst,
            ),
            client_ip_header: config
                .client_ip_header
                .as_deref()
                .and_then(|h| axum::http::HeaderName::try_from(h).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(0.5, 3);
        for _ in 0..3 {
            assert!(limiter.check("svc").is_ok());
        }
        let wait = limiter.check("svc").unwrap_err();
        assert!(wait >= Duration::from_secs(1));
        assert!(limiter.check("other").is_ok(), "keys are independent");
    }
}
