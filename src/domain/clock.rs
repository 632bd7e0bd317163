//! The broker's clock: the wall-clock time every time-based decision reads (is a token due
//! for refresh, is an elicitation or an OAuth flow still open), plus an offset that only
//! tests move, so they advance time instead of sleeping through it. Production never moves
//! it: there it is exactly [`super::now`].

use std::sync::atomic::{AtomicI64, Ordering};

use super::Timestamp;

#[derive(Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the real time; 0 unless a test advanced the clock.
    offset_ms: AtomicI64,
}

impl Clock {
    /// The real time, unshifted.
    pub fn real() -> Self {
        Self::default()
    }

    /// The current time (milliseconds, like [`super::now`]), shifted by what tests advanced.
    pub fn now(&self) -> Timestamp {
        super::now() + time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock forward by `by` (whole milliseconds). For tests: nothing in the
    /// broker calls it.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(ms))
            })
            .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_clock_reads_the_real_time() {
        let before = crate::domain::now();
        let read = Clock::real().now();
        assert!(read >= before && read <= crate::domain::now());
    }

    #[test]
    fn an_advanced_clock_reads_that_much_later() {
        let clock = Clock::real();
        clock.advance(std::time::Duration::from_secs(90));
        clock.advance(std::time::Duration::from_millis(500));
        let ahead = clock.now() - crate::domain::now();
        assert!(
            ahead > time::Duration::seconds(90) && ahead <= time::Duration::milliseconds(90_500),
            "{ahead}"
        );
    }
}
