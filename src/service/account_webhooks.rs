//! Account webhooks (`/api/v4/webhooks`): subscribing an outside server to the account's
//! changes, and telling it of each. Every change of a lead, contact, note or Unsorted
//! entry is reported through one function, [`Services::notify_account`], which makes an
//! event per subscribed webhook — body fixed at creation, amoCRM's form encoding — and
//! puts it in the schedule: the scheduler delivers it as it delivers a handler's (SSRF
//! guard, Standard Webhooks signature with the webhook's secret, retries, dead letters,
//! replay), all of an account's webhooks sharing one lane of the delivery slots.

use super::catalog_cache::Snapshot;
use super::{Error, Result, Services};
use crate::delivery::ssrf::check_url;
use crate::domain::account_webhook::{
    AccountWebhook, Change, MAX_WEBHOOKS, Notice, WebhookSetting,
};
use crate::domain::event::EventType;
use crate::domain::event_record::{DeliveryState, EventRecord};
use crate::domain::handler::Handler;
use crate::domain::ids::{AccountId, ActionId, EventId, HandlerId, LeadId};
use crate::domain::pipeline::Stage;
use crate::domain::time::now_ms;
use crate::store::{Sequence, catalog};

/// The most recent deliveries read for one webhook.
const DELIVERIES_SCANNED: usize = 1000;

/// A webhook to add, parsed at the edge.
pub struct NewWebhook {
    pub destination: String,
    pub settings: Vec<WebhookSetting>,
    pub sort: i64,
}

impl Services {
    /// The account's webhooks, by `sort` then creation.
    pub async fn webhooks(&self, account: AccountId) -> Result<Vec<AccountWebhook>> {
        let mut hooks: Vec<AccountWebhook> = catalog::list(&*self.store, account).await?;
        hooks.sort_by_key(|h| (h.sort, h.id));
        Ok(hooks)
    }

    /// Subscribes a destination (at most [`MAX_WEBHOOKS`] per account), and whether it
    /// is new (its secret is shown this once). A destination already subscribed gets the
    /// settings and sort sent, keeping its id and secret.
    pub async fn add_webhook(
        &self,
        account: AccountId,
        new: NewWebhook,
    ) -> Result<(AccountWebhook, bool)> {
        let url = check_url(
            new.destination.trim(),
            self.settings.delivery.allow_private_targets,
        )
        .await
        .map_err(|e| Error::invalid("destination", e.to_string()))?;
        let destination = url.to_string();
        let hooks = self.webhooks(account).await?;
        let count = hooks.len();
        let existing = hooks.into_iter().find(|h| h.destination == destination);
        let created = existing.is_none();
        let hook = match existing {
            Some(existing) => AccountWebhook {
                settings: new.settings,
                sort: new.sort,
                ..existing
            },
            None => {
                if count >= MAX_WEBHOOKS {
                    return Err(Error::invalid(
                        "destination",
                        format!("an account has at most {MAX_WEBHOOKS} webhooks"),
                    ));
                }
                AccountWebhook {
                    id: self.store.next_id(Sequence::Webhook).await?,
                    account_id: account,
                    destination,
                    settings: new.settings,
                    sort: new.sort,
                    secret: Handler::generate_secret(),
                    created_at: now_ms(),
                }
            }
        };
        catalog::put(&*self.store, &hook).await?;
        Ok((hook, created))
    }

    /// Unsubscribes a destination (amoCRM's `DELETE /webhooks` with `destination`).
    pub async fn delete_webhook(&self, account: AccountId, destination: &str) -> Result<()> {
        let wanted = destination_as_stored(destination);
        let hook = self
            .webhooks(account)
            .await?
            .into_iter()
            .find(|h| h.destination == wanted)
            .ok_or_else(|| Error::NotFound(format!("no webhook has destination {wanted}")))?;
        self.store
            .delete_record(
                account,
                crate::store::RecordKind::Webhook,
                &hook.id.to_string(),
            )
            .await?;
        Ok(())
    }

    /// A webhook's notices, newest first, with their attempts; NotFound for a webhook
    /// the account does not have.
    pub async fn webhook_deliveries(
        &self,
        account: AccountId,
        webhook: u64,
    ) -> Result<Vec<EventRecord>> {
        if !self
            .webhooks(account)
            .await?
            .iter()
            .any(|h| h.id == webhook)
        {
            return Err(Error::NotFound(format!("webhook {webhook} does not exist")));
        }
        let ids = self.store.event_ids(account).await?;
        let mut found = Vec::new();
        for chunk in ids.chunks(250).take(DELIVERIES_SCANNED / 250) {
            found.extend(
                self.store
                    .get_events(chunk)
                    .await?
                    .into_iter()
                    .filter(|e| e.notice.is_some_and(|n| n.webhook_id == webhook)),
            );
        }
        Ok(found)
    }

    /// Tells the account's webhooks subscribed to it of a change: the one place every
    /// change is reported from. Reads the catalog's version to know the webhooks.
    pub async fn notify_account(&self, account: AccountId, change: Change) -> Result<()> {
        let snapshot = self.snapshots.get(&*self.store, account, None).await?;
        self.notify_with(account, &snapshot, change).await
    }

    /// [`Self::notify_account`] with the caller's snapshot of the catalog (no round trip
    /// when no webhook is subscribed).
    pub(super) async fn notify_with(
        &self,
        account: AccountId,
        snapshot: &Snapshot,
        change: Change,
    ) -> Result<()> {
        let setting = change.setting();
        let mut hooks: Vec<&AccountWebhook> = snapshot
            .webhooks
            .iter()
            .filter(|h| h.settings.contains(&setting))
            .collect();
        if hooks.is_empty() {
            return Ok(());
        }
        hooks.sort_by_key(|h| (h.sort, h.id));
        let Some(subdomain) = self.accounts.get(account).map(|a| a.subdomain.clone()) else {
            return Ok(());
        };
        let body = change.form_body(account, &subdomain, &self.settings.server.public_url);
        let now = now_ms();
        let events: Vec<EventRecord> = hooks
            .into_iter()
            .map(|h| EventRecord {
                id: EventId::generate(),
                account_id: account,
                lead_id: change.lead().unwrap_or(LeadId(0)),
                action_id: ActionId(0),
                handler_id: HandlerId(0),
                event_type: EventType::AccountWebhook,
                direction: None,
                stage: change.stage().unwrap_or(Stage {
                    pipeline_id: crate::domain::ids::PipelineId(0),
                    status_id: crate::domain::ids::StatusId(0),
                }),
                visit: None,
                delayed_by: 0,
                created_at: now,
                due_at: now,
                state: DeliveryState::Scheduled,
                body: Some(body.clone()),
                attempts: Vec::new(),
                failures: 0,
                next_attempt_at: None,
                reason: None,
                notice: Some(Notice {
                    webhook_id: h.id,
                    setting,
                }),
            })
            .collect();
        self.store.add_events(&events).await?;
        metrics::counter!("footfall_account_notices_total", "setting" => setting.code())
            .increment(events.len() as u64);
        self.scheduler_wake.notify_one();
        Ok(())
    }
}

/// A destination as it is stored (the URL parser's form: `https://x.example` is
/// `https://x.example/`), for finding a webhook by what a client typed.
pub fn destination_as_stored(typed: &str) -> String {
    url::Url::parse(typed.trim()).map_or_else(|_| typed.trim().to_owned(), |u| u.to_string())
}
