//! A circuit breaker for Redis: after a command fails because Redis cannot be reached,
//! requests answer "unavailable" at once instead of each waiting out the response timeout,
//! and one request every `PROBE_MS` is let through to find out whether Redis is back.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use ::redis::{RedisError, RedisResult};

use crate::domain::time::now_ms;
use crate::store::{StoreError, StoreResult};

/// How often a request is let through to probe a Redis that was unreachable.
const PROBE_MS: i64 = 200;

#[derive(Default)]
pub struct Breaker {
    open: AtomicBool,
    next_probe: AtomicI64,
}

/// Whether an error says Redis cannot be reached (rather than that a command was wrong).
fn is_outage(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

impl Breaker {
    /// Lets a command through, or refuses it at once while Redis is known to be down.
    pub fn admit(&self) -> StoreResult<()> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = now_ms();
        let next = self.next_probe.load(Ordering::Acquire);
        let probe = now >= next
            && self
                .next_probe
                .compare_exchange(next, now + PROBE_MS, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if probe {
            Ok(())
        } else {
            Err(StoreError::Unavailable("Redis is unreachable".into()))
        }
    }

    /// Refuses at once while Redis is known to be down and no probe is due, without taking
    /// the probe: for a page view about to queue, whose writer's batch takes it (`admit`)
    /// when it goes to Redis.
    pub fn check(&self) -> StoreResult<()> {
        if self.open.load(Ordering::Acquire) && now_ms() < self.next_probe.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("Redis is unreachable".into()));
        }
        Ok(())
    }

    /// Notes how a command went: an outage opens the breaker (the first timeout is
    /// enough), any answer closes it. A failed probe puts the next one `PROBE_MS` later,
    /// so that commands queued behind it are refused at once instead of probing in turn.
    pub fn record<T>(&self, result: &RedisResult<T>) {
        match result {
            Err(e) if is_outage(e) => {
                self.next_probe
                    .fetch_max(now_ms() + PROBE_MS, Ordering::AcqRel);
                if !self.open.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "Redis is unreachable; answering 503 until it is back");
                }
            }
            _ => {
                if self.open.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis answers again");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> RedisResult<()> {
        Err(RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
    }

    #[test]
    fn an_outage_refuses_at_once_but_lets_a_probe_through_then_closes() {
        let breaker = Breaker::default();
        assert!(breaker.admit().is_ok());
        breaker.record(&refused());
        assert!(breaker.admit().is_err(), "refused at once after an outage");
        // Once the probe interval has passed, exactly one request probes.
        breaker.next_probe.store(now_ms() - 1, Ordering::Release);
        assert!(breaker.admit().is_ok());
        assert!(breaker.admit().is_err());
        breaker.record(&Ok(()));
        assert!(breaker.admit().is_ok(), "closed when Redis answers");
    }

    #[test]
    fn a_wrong_command_is_not_an_outage() {
        let breaker = Breaker::default();
        let wrong: RedisResult<()> =
            Err(RedisError::from((::redis::ErrorKind::Client, "wrong type")));
        breaker.record(&wrong);
        assert!(breaker.admit().is_ok());
    }
}
