//! Replaying events: a dead-lettered (or delivered) event goes back into the schedule,
//! due now, with a fresh run of the retry schedule; its id — and so its `webhook-id` —
//! stays the same, so receivers can tell a replay from a new event.

use super::{Error, Result, Services};
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::time::now_ms;

impl Services {
    pub async fn replay(&self, mut event: EventRecord) -> Result<EventRecord> {
        match event.state {
            DeliveryState::Dead | DeliveryState::Delivered => {}
            DeliveryState::Scheduled | DeliveryState::Retrying => {
                return Err(Error::Conflict(format!(
                    "event {} is still waiting to be delivered",
                    event.id
                )));
            }
            DeliveryState::Cancelled => {
                return Err(Error::Conflict(format!(
                    "event {} was cancelled and has no body to send",
                    event.id
                )));
            }
        }
        if event.body.is_none() {
            return Err(Error::Conflict(format!(
                "event {} was never sent",
                event.id
            )));
        }
        event.state = DeliveryState::Retrying;
        event.failures = 0;
        event.next_attempt_at = Some(now_ms());
        event.reason = None;
        self.store.save_event(&event).await?;
        self.scheduler_wake.notify_one();
        tracing::info!(event = %event.id, "event replayed");
        Ok(event)
    }
}
