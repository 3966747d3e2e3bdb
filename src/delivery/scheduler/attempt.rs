//! One attempt of a claimed event: where it goes, its body, the send, and the record of
//! how it went — through a short store outage too, while the lease leaves room.

use std::time::Duration;

use super::{LEASE_MARGIN_MS, Scheduler};
use crate::delivery::body::prepare;
use crate::delivery::sender::{FORM, JSON};
use crate::domain::account_webhook::AccountWebhook;
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::handler::Handler;
use crate::domain::ids::HandlerId;
use crate::domain::time::now_ms;
use crate::domain::timeline::TimelineEntry;
use crate::service::live::LiveKind;
use crate::store::{StoreError, StoreResult, catalog};

/// The first pause before saving a delivered event's record again (doubling each time).
const RECORD_RETRY_MS: i64 = 50;

/// The longest pause between two tries of a record.
const RECORD_RETRY_MAX_MS: i64 = 1000;

/// Where one event is sent.
struct Target {
    url: String,
    secret: String,
    content_type: &'static str,
    /// For the logs: the handler's code, or the webhook.
    name: String,
    /// The handler whose health the attempt tells.
    handler: Option<HandlerId>,
}

impl Scheduler {
    /// Delivers one event in its handler's turn and records the attempt.
    pub(super) async fn deliver(
        &self,
        mut event: EventRecord,
        lease_until: i64,
    ) -> StoreResult<()> {
        let store = &*self.services.store;
        let Some(target) = self.target(&event).await? else {
            let what = if event.notice.is_some() {
                "the webhook was deleted"
            } else {
                "the handler was deleted"
            };
            return self.finish(event, DeliveryState::Dead, what).await;
        };
        let now = now_ms();
        if event.attempts.is_empty() {
            let lateness = (now - event.due_at).max(0) as f64 / 1000.0;
            metrics::histogram!("footfall_scheduler_lateness_seconds").record(lateness);
        }
        let body = match event.body.clone() {
            // A retry, whose record an erasure of its lead may have taken since the claim
            // (it waited in its handler's lane): not sent then.
            Some(body) => {
                if store.get_event(&event.id).await?.is_none() {
                    return Ok(());
                }
                body
            }
            None => match prepare(&self.services, &mut event).await? {
                Ok(body) => {
                    event.body = Some(body.clone());
                    body
                }
                Err(reason) => return self.finish(event, DeliveryState::Cancelled, &reason).await,
            },
        };
        let sent = self
            .sender
            .send_as(
                &target.url,
                &target.secret,
                event.id.as_str(),
                &body,
                target.content_type,
            )
            .await;
        let ok = sent.attempt.succeeded();
        metrics::counter!("footfall_webhook_attempts_total", "outcome" => if ok { "delivered" } else { "failed" })
            .increment(1);
        metrics::histogram!("footfall_webhook_latency_seconds")
            .record(sent.attempt.latency_ms as f64 / 1000.0);
        tracing::info!(event = %event.id, handler = %target.name, status = ?sent.attempt.status,
            latency_ms = sent.attempt.latency_ms, error = ?sent.attempt.error, "delivery attempt");
        event.attempts.push(sent.attempt);
        if ok {
            event.state = DeliveryState::Delivered;
            event.next_attempt_at = None;
            event.reason = None;
        } else {
            event.failures += 1;
            let wait = (!sent.gone)
                .then(|| self.policy.next_wait(event.failures, sent.retry_after))
                .flatten();
            match wait {
                Some(wait) => {
                    event.state = DeliveryState::Retrying;
                    event.next_attempt_at = Some(now_ms() + wait.as_millis() as i64);
                }
                None => {
                    event.state = DeliveryState::Dead;
                    event.next_attempt_at = None;
                    event.reason = Some(if sent.gone {
                        "the handler answered 410 Gone".into()
                    } else {
                        format!("{} attempts failed", event.failures)
                    });
                    metrics::counter!("footfall_events_dead_total").increment(1);
                }
            }
        }
        // The handler's health, for the console, before the record that tells the event's
        // state; a note lost to an outage is not worth holding the slot for.
        if let Some(handler) = target.handler.filter(|_| event.notice.is_none()) {
            let noted = if ok {
                store.note_handler_success(event.account_id, handler).await
            } else {
                store
                    .note_handler_failure(event.account_id, handler, now)
                    .await
            };
            if let Err(e) = noted {
                tracing::warn!(event = %event.id, error = %e, "the handler's health could not be noted");
            }
        }
        if let Err(e) = self.record(&event, lease_until).await {
            tracing::warn!(event = %event.id, error = %e, "a sent webhook could not be recorded; its lease will send it again");
            return Ok(());
        }
        self.services
            .live
            .publish(event.account_id, event.lead_id, LiveKind::Delivery);
        Ok(())
    }

    /// Saves the outcome of an attempt that was sent. A delivery's record is tried again
    /// while the store is unavailable, pausing longer each time, as long as the lease
    /// leaves room for a try (each cut at the lease's margin). Only a delivery's: that it
    /// was delivered stays true whoever holds the event by then, while a failed attempt's
    /// record is worth no more than the retry its lease brings anyway.
    async fn record(&self, event: &EventRecord, lease_until: i64) -> StoreResult<()> {
        let store = &*self.services.store;
        let mut result = store.update_event(event).await;
        let deadline = lease_until - LEASE_MARGIN_MS;
        let mut pause = RECORD_RETRY_MS;
        while matches!(result, Err(StoreError::Unavailable(_)))
            && event.state == DeliveryState::Delivered
            && now_ms() + pause + self.store_timeout_ms <= deadline
        {
            tracing::debug!(event = %event.id, pause_ms = pause, "saving a delivered event's record again");
            tokio::time::sleep(Duration::from_millis(pause as u64)).await;
            pause = (pause * 2).min(RECORD_RETRY_MAX_MS);
            let left = Duration::from_millis((deadline - now_ms()).max(0) as u64);
            result = tokio::time::timeout(left, store.update_event(event))
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(
                        "the lease ran out before the record was saved".into(),
                    ))
                });
        }
        result
    }

    /// Where an event goes: its handler's URL and secret, or its account webhook's
    /// destination and secret (a form body); none when that was deleted.
    async fn target(&self, event: &EventRecord) -> StoreResult<Option<Target>> {
        let store = &*self.services.store;
        if let Some(notice) = event.notice {
            let hook: Option<AccountWebhook> =
                catalog::get(store, event.account_id, notice.webhook_id).await?;
            return Ok(hook.map(|h| Target {
                url: h.destination,
                secret: h.secret,
                content_type: FORM,
                name: format!("webhook {}", h.id),
                handler: None,
            }));
        }
        let handler: Option<Handler> =
            catalog::get(store, event.account_id, event.handler_id).await?;
        Ok(handler.map(|h| Target {
            url: h.webhook_url,
            secret: h.secret,
            content_type: JSON,
            name: h.code,
            handler: Some(h.id),
        }))
    }

    /// Ends an event undelivered (dead, or cancelled with a timeline entry saying why).
    pub(super) async fn finish(
        &self,
        mut event: EventRecord,
        state: DeliveryState,
        reason: &str,
    ) -> StoreResult<()> {
        let store = &*self.services.store;
        event.state = state;
        event.next_attempt_at = None;
        event.reason = Some(reason.to_owned());
        store.update_event(&event).await?;
        if state == DeliveryState::Cancelled {
            store
                .append_timeline(
                    event.account_id,
                    event.lead_id,
                    &TimelineEntry::EventCancelled {
                        at: now_ms(),
                        event_id: event.id.clone(),
                        reason: reason.to_owned(),
                    },
                )
                .await?;
            metrics::counter!("footfall_events_cancelled_total").increment(1);
        }
        tracing::info!(event = %event.id, state = ?state, reason, "event not delivered");
        self.services
            .live
            .publish(event.account_id, event.lead_id, LiveKind::Delivery);
        Ok(())
    }
}
