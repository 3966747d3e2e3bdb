//! Events and their schedule in memory; finished events expire after the retention, as
//! on Redis.

use std::time::Instant;

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::ids::{AccountId, EventId, HandlerId};
use crate::domain::time::{Millis, now_ms};
use crate::store::{Schedule, StoreResult};

impl MemoryStore {
    fn save(&self, state: &mut super::State, event: &EventRecord) {
        if !state.events.contains_key(&event.id) {
            state
                .account_events
                .entry(event.account_id)
                .or_default()
                .push(event.id.clone());
        }
        let expires = if event.state.is_pending() {
            let at = event.next_attempt_at.unwrap_or(event.due_at);
            state.schedule_at(&event.id, at);
            None
        } else {
            state.unschedule(&event.id);
            Some(Instant::now() + self.event_retention)
        };
        state
            .events
            .insert(event.id.clone(), (event.clone(), expires));
    }
}

#[async_trait]
impl Schedule for MemoryStore {
    async fn add_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        let mut state = self.state.lock();
        for event in events {
            self.save(&mut state, event);
            if state.lead(event.account_id, event.lead_id).is_some() {
                state.push_timeline(event.lead_id, event.fired_entry());
            }
        }
        Ok(())
    }

    async fn save_event(&self, event: &EventRecord) -> StoreResult<()> {
        let mut state = self.state.lock();
        self.save(&mut state, event);
        Ok(())
    }

    async fn update_event(&self, event: &EventRecord) -> StoreResult<()> {
        let mut state = self.state.lock();
        if state.event(&event.id, Instant::now()).is_some() {
            self.save(&mut state, event);
        }
        Ok(())
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        Ok(self.state.lock().event(id, Instant::now()).cloned())
    }

    async fn get_events(&self, ids: &[EventId]) -> StoreResult<Vec<EventRecord>> {
        let state = self.state.lock();
        let now = Instant::now();
        Ok(ids
            .iter()
            .filter_map(|id| state.event(id, now).cloned())
            .collect())
    }

    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        max: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        let mut state = self.state.lock();
        state.forget_expired(self.event_retention);
        let due: Vec<EventId> = state
            .schedule
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, id)| id.clone())
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            match state.events.get(&id).map(|(e, _)| e.clone()) {
                Some(event) => {
                    state.schedule_at(&id, lease_until);
                    claimed.push(event);
                }
                None => state.unschedule(&id),
            }
        }
        Ok(claimed)
    }

    async fn next_due(&self) -> StoreResult<Option<Millis>> {
        Ok(self.state.lock().schedule.first().map(|(at, _)| *at))
    }

    async fn event_ids(&self, account: AccountId) -> StoreResult<Vec<EventId>> {
        let mut state = self.state.lock();
        let now = Instant::now();
        let horizon = now_ms() - self.event_retention.as_millis() as Millis;
        // As on Redis: the account's index keeps what was created within the retention,
        // and finished events themselves expire.
        state
            .events
            .retain(|_, (_, expires)| expires.is_none_or(|e| e > now));
        let events = &state.events;
        let mut ids: Vec<EventId> = state
            .account_events
            .get(&account)
            .into_iter()
            .flatten()
            .filter(|id| events.get(*id).is_some_and(|(e, _)| e.created_at > horizon))
            .cloned()
            .collect();
        // Newest first by creation time, then id (as a Redis sorted set orders ties).
        ids.sort_by_cached_key(|id| (events.get(id).map_or(0, |(e, _)| e.created_at), id.clone()));
        ids.reverse();
        Ok(ids)
    }

    async fn dead_event_ids(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Vec<EventId>> {
        let state = self.state.lock();
        let now = Instant::now();
        // As Redis's dead letters, a set of their own: listed while their records are kept
        // (the retention runs from the death), whenever they were created. Not from the
        // account's index, which forgets by creation time what a retried or delayed
        // event that died lately still is.
        let mut dead: Vec<&EventRecord> = state
            .events
            .keys()
            .filter_map(|id| state.event(id, now))
            .filter(|e| {
                e.account_id == account && e.handler_id == handler && e.state == DeliveryState::Dead
            })
            .collect();
        // By creation time, then id (as a Redis sorted set orders ties).
        dead.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(dead.into_iter().map(|e| e.id.clone()).collect())
    }

    async fn note_handler_failure(
        &self,
        account: AccountId,
        handler: HandlerId,
        at: Millis,
    ) -> StoreResult<()> {
        self.state
            .lock()
            .handler_failing
            .entry((account, handler))
            .or_insert(at);
        Ok(())
    }

    async fn note_handler_success(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<()> {
        self.state
            .lock()
            .handler_failing
            .remove(&(account, handler));
        Ok(())
    }

    async fn handler_failing_since(
        &self,
        account: AccountId,
        handler: HandlerId,
    ) -> StoreResult<Option<Millis>> {
        Ok(self
            .state
            .lock()
            .handler_failing
            .get(&(account, handler))
            .copied())
    }
}
