//! Erasure in memory: everything of a lead or a browser goes under the one lock, exactly
//! what the Redis scripts remove (`redis/privacy.rs`). What has expired is gone on Redis
//! whether or not the clean-up (`expiry.rs`) has run here: it goes too, uncounted.

use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::domain::ids::{AccountId, EventId, LeadId};
use crate::domain::privacy::{AuditRecord, Erased};
use crate::domain::timeline::TimelineEntry;
use crate::domain::visitor::VisitorId;
use crate::store::privacy::{AUDIT_KEPT, ErasedLead, ErasureScope, Privacy};
use crate::store::{StoreResult, to_json};

impl State {
    /// Removes an event (record and place in the schedule); true when it was still kept.
    fn erase_event(&mut self, id: &EventId, now: Instant) -> bool {
        let kept = self.event(id, now).is_some();
        self.unschedule(id);
        self.events.remove(id);
        kept
    }

    fn erase_lead(&mut self, scope: &ErasureScope, id: LeadId) -> StoreResult<Option<ErasedLead>> {
        let account = scope.account;
        let Some(lead) = self.lead(account, id).cloned() else {
            return Ok(None);
        };
        let mut erased = Erased {
            leads: 1,
            contacts: lead.contacts.len() as u64,
            ..Erased::default()
        };
        self.leads.remove(&id);
        if let Some(ids) = self.account_leads.get_mut(&account) {
            ids.retain(|l| *l != id);
        }
        for entry in self.timelines.remove(&id).unwrap_or_default() {
            if let TimelineEntry::EventFired { event_id, .. } = entry {
                if self.erase_event(&event_id, Instant::now()) {
                    erased.events += 1;
                }
                if let Some(ids) = self.account_events.get_mut(&account) {
                    ids.retain(|e| *e != event_id);
                }
            }
        }
        if let Some(list) = self.unsorted.get_mut(&account) {
            let before = list.len();
            list.retain(|u| u.lead_id != id);
            erased.unsorted = (before - list.len()) as u64;
        }
        self.contacts
            .retain(|(a, _), lead| !(*a == account && *lead == id));
        let mut contacts_gone = Vec::new();
        for c in &lead.contacts {
            let elsewhere = self.account_leads.get(&account).is_some_and(|ids| {
                ids.iter().any(|l| {
                    self.leads
                        .get(l)
                        .is_some_and(|other| other.contacts.iter().any(|o| o.id == c.id))
                })
            });
            if !elsewhere {
                self.contact_records.remove(&(account, c.id));
                contacts_gone.push(c.id);
            }
        }
        self.submissions
            .retain(|(a, _), (lead, _, _)| !(*a == account && *lead == id));
        for link in self.lead_visitors.remove(&id).unwrap_or_default() {
            let mut browser = self.erase_visitor(scope, link.visitor)?;
            browser.visitors = 1;
            erased.add(browser);
        }
        contacts_gone.sort();
        contacts_gone.dedup();
        Ok(Some(ErasedLead {
            erased,
            contacts_gone,
        }))
    }

    fn erase_visitor(&mut self, scope: &ErasureScope, visitor: VisitorId) -> StoreResult<Erased> {
        let account = scope.account;
        let mut erased = Erased::default();
        let now = Instant::now();
        let mut found = self
            .browsers
            .remove(&(account, visitor))
            .is_some_and(|(_, until)| until > now);
        for site in &scope.sites {
            // As on Redis, a sighting or a watched visit still kept makes the browser
            // known (its history may have expired before its sighting).
            if let Some((_, until)) = self.sightings.remove(&(visitor, *site)) {
                found |= until > now;
            }
            if let Some((_, until)) = self.watches.remove(&(visitor, *site)) {
                found |= until > now;
            }
        }
        if let Some(history) = self.visitors.remove(&(account, visitor))
            && !history.expired(now)
        {
            found = true;
            erased.page_views = history.page_views.len() as u64;
        }
        let quoted = format!("\"{}\"", visitor.encode());
        let leads = self
            .account_leads
            .get(&account)
            .cloned()
            .unwrap_or_default();
        for lead in leads {
            let Some(links) = self.lead_visitors.get_mut(&lead) else {
                continue;
            };
            let before = links.len();
            links.retain(|l| l.visitor != visitor);
            if links.len() == before {
                continue;
            }
            found = true;
            if let Some(timeline) = self.timelines.get_mut(&lead) {
                let mut kept = Vec::with_capacity(timeline.len());
                for entry in timeline.drain(..) {
                    if !to_json(&entry)?.contains(&quoted) {
                        kept.push(entry);
                    }
                }
                *timeline = kept;
            }
        }
        let uid = visitor.encode();
        for entry in self.unsorted.get_mut(&account).into_iter().flatten() {
            if entry.metadata.visitor_uid.as_deref() == Some(uid.as_str()) {
                entry.metadata.visitor_uid = None;
                found = true;
            }
        }
        erased.visitors = u64::from(found);
        Ok(erased)
    }
}

#[async_trait]
impl Privacy for MemoryStore {
    async fn erase_lead(
        &self,
        scope: &ErasureScope,
        lead: LeadId,
    ) -> StoreResult<Option<ErasedLead>> {
        self.state.lock().erase_lead(scope, lead)
    }

    async fn erase_visitor(&self, scope: &ErasureScope, visitor: VisitorId) -> StoreResult<Erased> {
        self.state.lock().erase_visitor(scope, visitor)
    }

    async fn erase_notices(&self, scope: &ErasureScope, ids: &[EventId]) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let now = Instant::now();
        let mut erased = 0;
        for id in ids {
            if state.erase_event(id, now) {
                erased += 1;
            }
        }
        if let Some(list) = state.account_events.get_mut(&scope.account) {
            list.retain(|e| !ids.contains(e));
        }
        Ok(erased)
    }

    async fn add_audit(&self, account: AccountId, record: &AuditRecord) -> StoreResult<()> {
        let mut state = self.state.lock();
        let list = state.audit.entry(account).or_default();
        list.push_front(record.clone());
        list.truncate(AUDIT_KEPT);
        Ok(())
    }

    async fn audit(&self, account: AccountId) -> StoreResult<Vec<AuditRecord>> {
        let state = self.state.lock();
        Ok(state
            .audit
            .get(&account)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default())
    }
}
