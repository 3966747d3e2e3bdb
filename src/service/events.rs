//! Events and their deliveries as the API shows them, and replays: a dead-lettered (or
//! delivered) event goes back into the schedule, due now, with a fresh run of the retry
//! schedule; its id — and so its `webhook-id` — stays the same, so receivers can tell a
//! replay from a new event.

use super::{Error, Result, Services};
use crate::domain::event_record::{DeliveryState, EventFilter, EventRecord};
use crate::domain::ids::{AccountId, EventId, HandlerId, is_token_like};
use crate::domain::time::now_ms;

/// The most events read from the store in one round trip while searching.
const SEARCH_CHUNK: usize = 250;

impl Services {
    /// The account's events that match, newest first: at least `wanted` of them when
    /// there are that many.
    pub async fn search_events(
        &self,
        account: AccountId,
        filter: &EventFilter,
        wanted: usize,
    ) -> Result<Vec<EventRecord>> {
        let ids = self.store.event_ids(account).await?;
        let mut matched = Vec::new();
        for chunk in ids.chunks(SEARCH_CHUNK) {
            let events = self.store.get_events(chunk).await?;
            matched.extend(events.into_iter().filter(|e| filter.matches(e)));
            if matched.len() >= wanted {
                break;
            }
        }
        Ok(matched)
    }

    /// One event of the account.
    pub async fn event(&self, account: AccountId, raw: &str) -> Result<EventRecord> {
        let missing = || Error::NotFound(format!("event {raw} does not exist"));
        if !is_token_like(raw) {
            return Err(missing());
        }
        self.store
            .get_event(&EventId(raw.to_owned()))
            .await?
            .filter(|e| e.account_id == account)
            .ok_or_else(missing)
    }

    /// Replays one event of the account.
    pub async fn replay_event(&self, account: AccountId, raw: &str) -> Result<EventRecord> {
        let event = self.event(account, raw).await?;
        self.replay(event).await
    }

    /// Replays every dead-lettered event of a handler.
    pub async fn replay_dead(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> Result<Vec<EventRecord>> {
        let ids = self.store.dead_event_ids(account, handler).await?;
        let mut replayed = Vec::new();
        for event in self.store.get_events(&ids).await? {
            replayed.push(self.replay(event).await?);
        }
        Ok(replayed)
    }

    /// Since when a handler has been failing, and whether that is long enough
    /// (`delivery.failing_after_seconds`) to call it failing.
    pub async fn handler_health(
        &self,
        handler: &crate::domain::handler::Handler,
    ) -> Result<(Option<crate::domain::time::Millis>, bool)> {
        let since = self
            .store
            .handler_failing_since(handler.account_id, handler.id)
            .await?;
        let stretch = self.settings.delivery.failing_after_seconds as i64 * 1000;
        Ok((since, since.is_some_and(|s| now_ms() - s >= stretch)))
    }

    /// Whether the store answers: its description, or why not.
    pub async fn readiness(
        &self,
        within: std::time::Duration,
    ) -> std::result::Result<String, String> {
        match tokio::time::timeout(within, self.store.ping()).await {
            Ok(Ok(())) => Ok(self.store.describe()),
            Ok(Err(e)) => Err(format!("the store is unreachable: {e}")),
            Err(_) => Err(format!(
                "the store did not answer within {} s",
                within.as_secs()
            )),
        }
    }

    async fn replay(&self, mut event: EventRecord) -> Result<EventRecord> {
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
        self.store.update_event(&event).await?;
        self.scheduler_wake.notify_one();
        tracing::info!(event = %event.id, "event replayed");
        Ok(event)
    }
}

impl Services {
    /// The account's event log (amoCRM's `GET /events`), newest first: what happened to
    /// its leads, read from their timelines.
    pub async fn account_events(
        &self,
        account: AccountId,
    ) -> Result<Vec<crate::domain::account_event::AccountEvent>> {
        use crate::domain::account_event::AccountEvent;
        let mut events = Vec::new();
        for lead in self.store.lead_ids(account).await? {
            let timeline = self.store.timeline(account, lead).await?;
            events.extend(
                timeline
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| AccountEvent::of(lead, i, e)),
            );
        }
        events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        Ok(events)
    }
}
