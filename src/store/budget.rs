//! One time budget per request for its store work: a request that needs the store answers
//! within the store's response timeout however many round trips it makes, and however long
//! it queues behind other requests' work (a page-view writer's batch stuck on a hung
//! Redis). The HTTP layer marks when each request started (`from_now`), and again when its
//! body has all arrived (`restart`: a client's slow upload is not the store's time); the
//! Redis store gives each round trip only what is left of its response timeout since then
//! (`left`). Work outside a request (the scheduler) has no budget: each command has its
//! own timeout.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static STARTED: Cell<Instant>;
}

/// Runs `work` as one request whose budget starts now.
pub async fn from_now<F: Future>(work: F) -> F::Output {
    STARTED.scope(Cell::new(Instant::now()), work).await
}

/// Starts the current request's budget again (after its body arrived); nothing outside
/// a request.
pub fn restart() {
    let _ = STARTED.try_with(|started| started.set(Instant::now()));
}

/// What is left of a budget of `total` for the current request (`None` outside one).
pub fn left(total: Duration) -> Option<Duration> {
    STARTED
        .try_with(|started| total.saturating_sub(started.get().elapsed()))
        .ok()
}

/// `work` cut off when the current request's budget of `total` runs out.
pub async fn bounded<T, E>(
    total: Duration,
    work: impl Future<Output = Result<T, E>>,
    out_of_time: impl FnOnce() -> E,
) -> Result<T, E> {
    match left(total) {
        None => work.await,
        Some(left) => tokio::time::timeout(left, work)
            .await
            .unwrap_or_else(|_| Err(out_of_time())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_has_one_budget_for_all_its_store_work() {
        assert_eq!(left(Duration::from_secs(1)), None, "no request, no budget");
        let total = Duration::from_millis(300);
        from_now(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(left(total).unwrap() <= Duration::from_millis(200));
            let slow = bounded(
                total,
                async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, &str>(())
                },
                || "out of time",
            );
            assert_eq!(slow.await, Err("out of time"));
            assert_eq!(left(total), Some(Duration::ZERO));
            restart();
            assert!(left(total).unwrap() > Duration::from_millis(250));
        })
        .await;
    }
}
