//! The two stores of the conformance tests — the Redis store on the real Redis under a
//! key prefix of its own (removed when the test ends, pass or fail), and the embedded
//! store — and `conformance!`, which runs each named test against both.

use std::sync::Arc;
use std::time::Duration;

use footfall::store::Store;
use footfall::store::memory::MemoryStore;
use footfall::store::redis::{RedisOptions, RedisStore};

pub type Shared = Arc<dyn Store>;

/// A Redis store that keeps finished events `event_retention_secs`, and its key prefix.
pub async fn redis_store(event_retention_secs: u64) -> (Shared, String) {
    let prefix = super::unique_prefix();
    (redis_store_on(&prefix, event_retention_secs).await, prefix)
}

/// The same under `prefix`: a test makes its `KeysGuard` first, so that the guard outlives
/// the store (locals drop in reverse order) and removes what its writers left too.
pub async fn redis_store_on(prefix: &str, event_retention_secs: u64) -> Shared {
    let store = RedisStore::connect(
        &super::redis_url(),
        RedisOptions {
            key_prefix: prefix.to_owned(),
            schedule_shards: 4,
            event_retention_secs,
            response_timeout: Duration::from_secs(2),
            durable_writes: None,
        },
    )
    .await
    .expect("Redis is reachable");
    Arc::new(store)
}

/// An embedded store that keeps finished events `event_retention_secs`.
pub fn memory_store(event_retention_secs: u64) -> Shared {
    Arc::new(MemoryStore::with_event_retention(Duration::from_secs(
        event_retention_secs,
    )))
}

/// Runs each named test (an `async fn(Shared)` of the calling module) against both
/// stores, in modules `$redis` and `$memory`, which keep finished events `$retention`
/// seconds.
macro_rules! conformance {
    ($redis:ident, $memory:ident, retention $retention:expr; $($name:ident),* $(,)?) => {
        mod $redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, prefix) = crate::common::stores::redis_store($retention).await;
                    let _keys = crate::common::KeysGuard::new(&crate::common::redis_url(), &prefix);
                    super::$name(store).await;
                }
            )*
        }
        mod $memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::stores::memory_store($retention)).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;
