//! A write the primary applied that no replica confirmed in time (`store.durable_writes`).
//! Outside a request (the scheduler) it fails as an unavailable store does. Inside one it
//! stands and the request goes on — its events and account notices are written too, so
//! that nothing is lost that a retry could not redo (a retried accept finds its entry
//! gone, a retried form folds into the first) — without waiting for a replica again, and
//! the request answers 503 at its end (`http::observe`): the client learns that what it
//! did is not safe on a replica yet, and which retries find it done (a lead, contact or
//! note created through the API, but for `/leads/unsorted/forms`, has no fold: it would
//! be made again).

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static UNCONFIRMED: Cell<bool>;
}

/// Runs a request's work; tells whether a write of it went unconfirmed.
pub async fn tracked<F: Future>(work: F) -> (F::Output, bool) {
    UNCONFIRMED
        .scope(Cell::new(false), async move {
            let output = work.await;
            (output, UNCONFIRMED.with(Cell::get))
        })
        .await
}

/// Notes that a write of the current request went unconfirmed; false outside a request
/// (the write then fails).
pub fn note() -> bool {
    UNCONFIRMED.try_with(|u| u.set(true)).is_ok()
}

/// Whether a write of the current request went unconfirmed already: its later writes do
/// not wait for a replica again.
pub fn noted() -> bool {
    UNCONFIRMED.try_with(Cell::get).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_learns_of_its_unconfirmed_writes() {
        assert!(!note(), "outside a request a write fails instead");
        let ((), unconfirmed) = tracked(async {
            assert!(!noted());
            assert!(note());
            assert!(noted());
        })
        .await;
        assert!(unconfirmed);
        let ((), unconfirmed) = tracked(async {}).await;
        assert!(!unconfirmed);
    }
}
