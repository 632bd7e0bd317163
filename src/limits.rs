//! Rate limits: a token bucket per key (GCRA, from the `governor` crate), kept in this
//! process. Each broker instance limits on its own, so N instances admit up to N times the
//! configured rate in total; the limits are a guard against a runaway client, not an
//! accounting system.
//!
//! The key table is bounded: it never holds more than `MAX_KEYS` keys. A key already in the
//! table is checked without any lock beyond its shard's. A new key is admitted under one
//! mutex (so concurrent new keys cannot overshoot the bound): when the table is full, keys
//! whose bucket has refilled completely (their clients went quiet, so dropping them changes
//! no decision) are dropped first, at most once a second; if it is still full, the new key
//! is **refused** (`Err` with a one-second wait, answered as `429` + `Retry-After`) rather
//! than evicting a key that is still limited, since evicting would hand a flooding client a
//! fresh bucket. Keys already in the table keep being served as usual meanwhile.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{NotKeyed, StateStore};

/// The most keys one limiter holds.
const MAX_KEYS: usize = 50_000;

/// How often a full table is searched for keys that went quiet, at most; also the wait a
/// refused new key is told.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// Longest and shortest interval between two tokens, whatever the configured rate.
const SLOWEST: Duration = Duration::from_secs(86_400);
const FASTEST: Duration = Duration::from_nanos(1);
/// Longest time a whole burst may take to refill (so the limiter's nanosecond arithmetic
/// cannot overflow, whatever the configuration).
const LONGEST_REFILL: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A keyed token-bucket limiter whose key table is bounded (see the module header).
pub struct RateLimiter {
    limiter: governor::RateLimiter<String, Table, DefaultClock>,
    table: Table,
    max_keys: usize,
    /// Serialises admissions of new keys; holds when the table was last purged.
    admission: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("keys", &self.table.0.len())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `per_second` tokens a second (clamped to one a day .. one a nanosecond), `burst` at
    /// once (at least 1, and no more than refill in ten years).
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self::with_max_keys(per_second, burst, MAX_KEYS)
    }

    fn with_max_keys(per_second: f64, burst: u32, max_keys: usize) -> Self {
        let period = Duration::try_from_secs_f64(1.0 / per_second)
            .unwrap_or(SLOWEST)
            .clamp(FASTEST, SLOWEST);
        let most = u32::try_from(LONGEST_REFILL.as_nanos() / period.as_nanos()).unwrap_or(u32::MAX);
        let burst = NonZeroU32::new(burst.min(most)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let table = Table(Arc::new(DashMapStateStore::default()));
        Self {
            limiter: governor::RateLimiter::new(quota, table.clone(), DefaultClock::default()),
            table,
            max_keys,
            admission: Mutex::new(None),
        }
    }

    /// Takes one token for `key`; when there is none (or a full table refuses a new key),
    /// how long to wait before trying again (at least a second: it becomes `Retry-After`).
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if !self.table.0.contains_key(key) {
            self.admit(key)?;
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                not_until
                    .wait_time_from(self.limiter.clock().now())
                    .max(Duration::from_secs(1))
            })
    }

    /// Puts a new key in the table, or refuses it when the table stays full.
    fn admit(&self, key: &str) -> Result<(), Duration> {
        let mut last_purge = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.table.0.len() >= self.max_keys
            && last_purge.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL)
        {
            self.limiter.retain_recent();
            *last_purge = Some(Instant::now());
        }
        if self.table.0.len() >= self.max_keys {
            return Err(PURGE_INTERVAL);
        }
        self.table.0.entry(key.to_owned()).or_default();
        Ok(())
    }

    /// Keys held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.0.len()
    }
}

/// The key table, shared by the limiter and the admission above. Measuring never inserts:
/// only `admit` does, under its mutex, which is what makes the bound exact.
#[derive(Clone, Default)]
struct Table(Arc<DashMapStateStore<String>>);

impl StateStore for Table {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        match self.0.get(key) {
            // The shard's read guard is held while measuring, so a purge cannot drop the
            // key under it.
            Some(state) => state.measure_and_replace(&NotKeyed::NonKey, f),
            // Purged between admission and measurement: purging only drops buckets that are
            // full, so the key is measured as a fresh one (and not re-inserted).
            None => f(None).map(|(outcome, _)| outcome),
        }
    }
}

impl ShrinkableKeyedStateStore<String> for Table {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.retain_recent(drop_below);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("keys", &self.0.len())
            .finish()
    }
}

/// The broker's limiters.
#[derive(Debug)]
pub struct Limits {
    /// Per service, on the `/v1` API.
    pub api: RateLimiter,
    /// Per client address, on browser form posts (sign-in, consent).
    pub browser_posts: RateLimiter,
    /// Per client address, on `/v1` requests whose service token is missing or wrong.
    pub failed_auth: RateLimiter,
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
            failed_auth: RateLimiter::new(
                config.failed_auth_per_minute / 60.0,
                config.failed_auth_burst,
            ),
            client_ip_header: config
                .client_ip_header
                .as_deref()
                .and_then(|h| axum::http::HeaderName::try_from(h).ok()),
        }
    }
}

impl Limits {
    /// The client's address: the rightmost entry of the trusted proxy's header when one is
    /// configured, else the connection's peer.
    pub fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> String {
        if let Some(header) = &self.client_ip_header
            && let Some(value) = headers.get(header).and_then(|v| v.to_str().ok())
            && let Some(last) = value.rsplit(',').next()
        {
            return last.trim().to_owned();
        }
        extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
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
        assert!(wait <= Duration::from_secs(2), "one token comes every 2 s");
        assert!(limiter.check("other").is_ok(), "keys are independent");
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::new(1.0, 2);
        for key in ["a", "b", "c"] {
            assert!(limiter.check(key).is_ok());
            assert!(limiter.check(key).is_ok());
            assert!(limiter.check(key).is_err(), "{key} used its burst");
        }
        assert!(
            limiter.check("d").is_ok(),
            "a fresh key has its whole burst"
        );
    }

    #[test]
    fn the_table_never_exceeds_its_bound_and_refuses_new_keys_when_full() {
        // A slow rate: every bucket that was used stays limited, so nothing can be purged.
        let limiter = RateLimiter::with_max_keys(0.001, 1, 8);
        for i in 0..8 {
            assert!(limiter.check(&format!("k{i}")).is_ok());
        }
        assert_eq!(limiter.len(), 8);
        for i in 8..100 {
            let wait = limiter.check(&format!("k{i}")).unwrap_err();
            assert_eq!(
                wait, PURGE_INTERVAL,
                "a new key is refused while the table is full"
            );
            assert_eq!(limiter.len(), 8);
        }
        // A key already in the table is still limited by its own bucket, not by the bound.
        assert!(limiter.check("k0").unwrap_err() > Duration::from_secs(100));
        assert_eq!(limiter.len(), 8);
    }

    #[test]
    fn a_full_table_drops_quiet_keys_to_admit_new_ones() {
        // A fast rate: each bucket refills within a millisecond, so its key goes quiet.
        let limiter = RateLimiter::with_max_keys(10_000.0, 1, 4);
        for i in 0..4 {
            assert!(limiter.check(&format!("k{i}")).is_ok());
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.check("new").is_ok(), "quiet keys make room");
        assert!(limiter.len() <= 4);
    }

    #[test]
    fn concurrent_new_keys_never_overshoot_the_bound() {
        let limiter = Arc::new(RateLimiter::with_max_keys(0.001, 1, 64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let limiter = Arc::clone(&limiter);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let _ = limiter.check(&format!("t{t}-{i}"));
                        assert!(limiter.len() <= 64);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(limiter.len(), 64);
    }

    #[test]
    fn any_configured_rate_builds_a_limiter() {
        for rate in [f64::INFINITY, 1e-300, 1e12, f64::MIN_POSITIVE, 1e-5] {
            for burst in [0, 1, u32::MAX] {
                let limiter = RateLimiter::new(rate, burst);
                assert!(limiter.check("k").is_ok(), "a fresh key has a token");
                let _ = limiter.check("k");
            }
        }
    }
}
