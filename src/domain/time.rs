//! Time as the product counts it: Unix milliseconds inside, Unix seconds on the wire
//! (amoCRM's `created_at`, `time`, …).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day, for settings given in days.
pub const DAY_SECS: u64 = 86_400;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Whole seconds, as amoCRM's timestamps.
pub fn to_secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}
