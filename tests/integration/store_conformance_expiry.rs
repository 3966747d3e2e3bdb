//! One behaviour, two stores, for what expires: nothing is listed, counted or kept past
//! its expiry, and nothing is dropped before it — on a real Redis under a prefix of its
//! own and on the embedded store, whose expired entries go only with the clean-up that
//! the scheduler's polling (`claim_due`) runs, so every read must see past them.

use std::time::Duration;

use footfall::domain::event_record::DeliveryState;
use footfall::domain::ids::*;
use footfall::domain::time::now_ms;

use crate::common::stores::{Shared, conformance};
use crate::store_conformance::{ACCOUNT, event};

conformance!(
    on_redis, on_memory, retention 1;
    a_dead_letter_outlives_the_event_index_clean_up,
);

/// A dead letter is listed while its record is kept (the retention from its death), even
/// when its event was created longer than the retention ago — also after the clean-up
/// that forgets such an event in the account's index (the embedded store's runs when
/// events are claimed; Redis's when an event ends). Oldest first by creation time.
async fn a_dead_letter_outlives_the_event_index_clean_up(store: Shared) {
    let now = now_ms();
    let mut dead = Vec::new();
    for created_at in [now - 5_000, now - 8_000, now] {
        let mut e = event(created_at, 1);
        e.state = DeliveryState::Dead;
        e.failures = 3;
        store.save_event(&e).await.unwrap();
        dead.push(e);
    }
    // Nothing is due: the claim only runs the clean-up.
    assert!(
        store
            .claim_due(now, now + 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let index = store.event_ids(ACCOUNT).await.unwrap();
    assert!(
        !index.contains(&dead[0].id) && !index.contains(&dead[1].id),
        "the index forgets what was created before the retention: {index:?}"
    );
    assert_eq!(
        store.dead_event_ids(ACCOUNT, HandlerId(1)).await.unwrap(),
        [dead[1].id.clone(), dead[0].id.clone(), dead[2].id.clone()]
    );
    assert_eq!(
        store.get_event(&dead[1].id).await.unwrap(),
        Some(dead[1].clone())
    );
    // Past the retention from their death, they go.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(
        store
            .claim_due(now, now + 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .dead_event_ids(ACCOUNT, HandlerId(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_event(&dead[1].id).await.unwrap(), None);
}
