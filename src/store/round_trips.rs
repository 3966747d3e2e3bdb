//! Counts the store round trips a request makes: the Redis store notes each command,
//! pipeline or script it sends (a batch over several slots of a cluster, sent at once,
//! is one), and the HTTP layer reads the count of each request for its figures
//! (`footfall_store_round_trips_total` by route). Work spawned off the request's path is
//! not counted.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static ROUND_TRIPS: Cell<u32>;
}

/// Runs `work`, counting the round trips it makes.
pub async fn counted<F: Future>(work: F) -> (F::Output, u32) {
    ROUND_TRIPS
        .scope(Cell::new(0), async move {
            let output = work.await;
            (output, ROUND_TRIPS.with(Cell::get))
        })
        .await
}

/// Notes one round trip of the current request, if it is counted.
pub fn note() {
    let _ = ROUND_TRIPS.try_with(|n| n.set(n.get() + 1));
}
