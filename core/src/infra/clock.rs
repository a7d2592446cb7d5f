//! The injected clock: production reads the system time; tests fix or advance it so that
//! expiry and timeouts are deterministic.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a fixed time in seconds that tests move.
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { fixed: None }
    }

    pub fn fixed(unix_secs: i64) -> Self {
        Self {
            fixed: Some(Arc::new(AtomicI64::new(unix_secs))),
        }
    }

    /// Seconds since the Unix epoch (UTC).
    pub fn now(&self) -> i64 {
        match &self.fixed {
            Some(t) => t.load(Ordering::SeqCst),
            // The standard library's clock: `time`'s `now_utc` also builds a calendar
            // date that only its seconds are read from (on every API request).
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }

    /// Moves a fixed clock forward; no effect on the system clock.
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.fixed {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}
