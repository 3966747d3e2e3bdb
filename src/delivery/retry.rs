//! The retry policy: the configured schedule of waits, each varied by a random jitter so
//! that a handler coming back is not hit by every retry at once; a receiver's
//! `Retry-After` is honoured when it asks for a longer wait.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub jitter_ratio: f64,
}

impl RetryPolicy {
    /// The wait before the next attempt after `failures` failed attempts, or `None` when
    /// the schedule is used up (dead-letter).
    pub fn next_wait(&self, failures: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.schedule.get(failures.checked_sub(1)? as usize)?;
        let jitter = if self.jitter_ratio > 0.0 {
            rand::rng().random_range(-self.jitter_ratio..self.jitter_ratio)
        } else {
            0.0
        };
        let wait = base.mul_f64(1.0 + jitter);
        Some(retry_after.map_or(wait, |r| r.max(wait)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter_ratio: f64) -> RetryPolicy {
        RetryPolicy {
            schedule: [5, 30, 120].map(Duration::from_secs).to_vec(),
            jitter_ratio,
        }
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = policy(0.0);
        assert_eq!(p.next_wait(1, None), Some(Duration::from_secs(5)));
        assert_eq!(p.next_wait(3, None), Some(Duration::from_secs(120)));
        assert_eq!(p.next_wait(4, None), None);
        assert_eq!(p.next_wait(0, None), None);
    }

    #[test]
    fn jitter_stays_within_its_ratio() {
        let p = policy(0.2);
        for _ in 0..1000 {
            let w = p.next_wait(2, None).unwrap().as_secs_f64();
            assert!((24.0..=36.0).contains(&w), "{w}");
        }
    }

    #[test]
    fn retry_after_can_only_lengthen_the_wait() {
        let p = policy(0.0);
        assert_eq!(
            p.next_wait(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_wait(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5))
        );
    }
}
