//! Leads in memory: each operation holds the lock throughout, so a submission, a move or
//! a decline is atomic as the Redis scripts are.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::domain::ids::{AccountId, ContactId, LeadId, UnsortedUid};
use crate::domain::lead::{Lead, Unsorted, VisitorLink};
use crate::domain::pipeline::Stage;
use crate::domain::time::Millis;
use crate::domain::timeline::{MoveOrigin, TimelineEntry};
use crate::domain::visitor::VisitorId;
use crate::store::{
    LeadMove, Leads, MoveOutcome, NewSubmission, Reserved, Sequence, StoreResult, SubmissionOutcome,
};

impl State {
    pub(super) fn lead(&self, account: AccountId, id: LeadId) -> Option<&Lead> {
        self.leads.get(&id).filter(|l| l.account_id == account)
    }

    pub(super) fn push_timeline(&mut self, lead: LeadId, entry: TimelineEntry) {
        self.timelines.entry(lead).or_default().push(entry);
    }

    /// Links a browser to a lead of its account: the lead's link (replaced per browser),
    /// its timeline, and — when the browser belonged to another lead — that lead's link
    /// closed and its timeline told. Returns the other lead.
    pub(super) fn link_browser(
        &mut self,
        account: AccountId,
        visitor: VisitorId,
        lead: LeadId,
        at: Millis,
        keep: Duration,
    ) -> Option<LeadId> {
        // Linked to this lead already: the link stays as it is (its window too), kept longer.
        let current = self.lead_visitors.get(&lead).is_some_and(|links| {
            links
                .iter()
                .any(|l| l.visitor == visitor && l.until.is_none())
        });
        if current && self.browser_lead(account, visitor) == Some(lead) {
            self.browsers
                .insert((account, visitor), (lead, Instant::now() + keep));
            return None;
        }
        let previous = self
            .browser_lead(account, visitor)
            .filter(|p| *p != lead && self.lead(account, *p).is_some());
        self.browsers
            .insert((account, visitor), (lead, Instant::now() + keep));
        let links = self.lead_visitors.entry(lead).or_default();
        links.retain(|l| l.visitor != visitor);
        links.push(VisitorLink {
            visitor,
            linked_at: at,
            since: previous.map(|_| at),
            until: None,
        });
        self.push_timeline(
            lead,
            TimelineEntry::VisitorLinked {
                at,
                visitor,
                previous_lead: previous,
            },
        );
        if let Some(previous) = previous {
            if let Some(link) = self
                .lead_visitors
                .get_mut(&previous)
                .and_then(|links| links.iter_mut().find(|l| l.visitor == visitor))
            {
                link.until = Some(at);
            }
            self.push_timeline(
                previous,
                TimelineEntry::VisitorMoved {
                    at,
                    visitor,
                    to_lead: lead,
                },
            );
        }
        previous
    }

    /// The open lead (same pipeline, not won or lost) of a known contact.
    fn open_lead_of(&self, s: &NewSubmission) -> Option<LeadId> {
        s.contact_keys.iter().find_map(|key| {
            let id = self.contacts.get(&(s.account, key.clone()))?;
            let lead = self.lead(s.account, *id)?;
            (lead.pipeline_id == s.lead.pipeline_id && lead.stage().is_open()).then_some(*id)
        })
    }

    fn move_lead(&mut self, m: &LeadMove) -> MoveOutcome {
        let Some(lead) = self
            .leads
            .get_mut(&m.lead)
            .filter(|l| l.account_id == m.account)
        else {
            return MoveOutcome::NotFound;
        };
        let from = lead.stage();
        if m.expect.is_some_and(|e| e != from) {
            return MoveOutcome::Conflict { current: from };
        }
        lead.pipeline_id = m.to.pipeline_id;
        lead.status_id = m.to.status_id;
        lead.updated_at = m.at;
        if from != m.to {
            self.push_timeline(
                m.lead,
                TimelineEntry::Moved {
                    at: m.at,
                    from: Some(from),
                    to: m.to,
                    by: m.by,
                },
            );
        }
        MoveOutcome::Moved { from }
    }

    fn remove_unsorted(&mut self, account: AccountId, uid: &UnsortedUid) -> Option<Unsorted> {
        let list = self.unsorted.get_mut(&account)?;
        let i = list.iter().position(|u| &u.uid == uid)?;
        Some(list.remove(i))
    }
}

#[async_trait]
impl Leads for MemoryStore {
    async fn reserve_submission(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
    ) -> StoreResult<Reserved> {
        use crate::store::Catalog;
        let lead = LeadId(self.next_id(Sequence::Lead).await?);
        let contact = ContactId(self.next_id(Sequence::Contact).await?);
        let catalog_version = self.catalog_version(account).await?;
        // As Redis's KEEP_HISTORY: a browser about to be linked keeps the full retention.
        let mut state = self.state.lock();
        let recent = match browser {
            Some(visitor) => {
                let v = state.visitor_mut(account, visitor);
                v.expires = Some(Instant::now() + Duration::from_secs(retention_secs.max(1)));
                v.meta = true;
                let from = v
                    .page_views
                    .len()
                    .saturating_sub(crate::store::RECENT_PAGE_VIEWS);
                v.page_views[from..].to_vec()
            }
            None => Vec::new(),
        };
        Ok(Reserved {
            lead,
            contact,
            catalog_version,
            recent,
        })
    }

    async fn create_lead_from_submission(
        &self,
        s: &NewSubmission,
    ) -> StoreResult<SubmissionOutcome> {
        let now = Instant::now();
        let mut state = self.state.lock();
        state
            .submissions
            .retain(|_, (_, _, expires)| *expires > now);
        let looked_up = (s.account, s.fingerprints.looked_up.clone());
        if let Some((lead, uid, _)) = state.submissions.get(&looked_up) {
            let (lead, uid) = (*lead, uid.clone());
            let still_there = |uid: &UnsortedUid| {
                state
                    .unsorted
                    .get(&s.account)
                    .is_some_and(|l| l.iter().any(|u| &u.uid == uid))
            };
            let uid = uid.filter(still_there);
            return Ok(SubmissionOutcome::Duplicate { lead, uid });
        }
        let expires = now + Duration::from_secs(s.duplicate_window_secs.max(1));
        let keep = Duration::from_secs(s.link_retention_secs.max(1));
        // A known contact's open lead is left alone: the new entry names it.
        let duplicate_of = state.open_lead_of(s);
        let mut entry = s.unsorted.clone();
        entry.metadata.duplicate_of_lead_id = duplicate_of;
        let lead = &s.lead;
        state.leads.insert(lead.id, lead.clone());
        state
            .account_leads
            .entry(s.account)
            .or_default()
            .push(lead.id);
        state.push_timeline(
            lead.id,
            TimelineEntry::LeadCreated {
                at: s.at,
                form_id: s.unsorted.metadata.form_id.clone(),
                unsorted_uid: s.unsorted.uid.clone(),
            },
        );
        state.unsorted.entry(s.account).or_default().push(entry);
        for key in &s.contact_keys {
            let index = (s.account, key.clone());
            if duplicate_of.is_none() || state.contacts.get(&index) != duplicate_of.as_ref() {
                state.contacts.insert(index, lead.id);
            }
        }
        let previous_lead = s
            .browser
            .and_then(|v| state.link_browser(s.account, v, lead.id, s.at, keep));
        let entry = (lead.id, Some(s.unsorted.uid.clone()), expires);
        if let Some(minted) = &s.fingerprints.minted_browser {
            let kept = (s.account, minted.clone());
            state.submissions.insert(kept, entry.clone());
        }
        state.submissions.insert(looked_up, entry);
        Ok(SubmissionOutcome::Created {
            previous_lead,
            duplicate_of,
        })
    }

    async fn get_leads(&self, account: AccountId, ids: &[LeadId]) -> StoreResult<Vec<Lead>> {
        let state = self.state.lock();
        Ok(ids
            .iter()
            .filter_map(|id| state.lead(account, *id).cloned())
            .collect())
    }

    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>> {
        let state = self.state.lock();
        let mut ids = state
            .account_leads
            .get(&account)
            .cloned()
            .unwrap_or_default();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    async fn move_lead(&self, m: &LeadMove) -> StoreResult<MoveOutcome> {
        let mut state = self.state.lock();
        let Some(lead) = state.lead(m.account, m.lead) else {
            return Ok(MoveOutcome::NotFound);
        };
        let current = lead.stage();
        if m.expect.is_some_and(|e| e != current) {
            return Ok(MoveOutcome::Conflict { current });
        }
        if let Some(uid) = &m.unsorted
            && state.remove_unsorted(m.account, uid).is_none()
        {
            return Ok(MoveOutcome::NotFound);
        }
        Ok(state.move_lead(m))
    }

    async fn decline(&self, entry: &Unsorted, lost: Stage, at: Millis) -> StoreResult<MoveOutcome> {
        let mut state = self.state.lock();
        let account = entry.account_id;
        if state.lead(account, entry.lead_id).is_none()
            || state.remove_unsorted(account, &entry.uid).is_none()
        {
            return Ok(MoveOutcome::NotFound);
        }
        state.push_timeline(entry.lead_id, TimelineEntry::Declined { at });
        Ok(state.move_lead(&LeadMove {
            account,
            lead: entry.lead_id,
            to: lost,
            at,
            expect: None,
            by: MoveOrigin::Decline,
            unsorted: None,
        }))
    }

    async fn rename_lead(
        &self,
        account: AccountId,
        id: LeadId,
        name: &str,
        at: Millis,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock();
        Ok(
            match state.leads.get_mut(&id).filter(|l| l.account_id == account) {
                Some(lead) => {
                    lead.name = name.to_owned();
                    lead.updated_at = at;
                    true
                }
                None => false,
            },
        )
    }

    async fn link_visitor(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
    ) -> StoreResult<Option<Option<LeadId>>> {
        let mut state = self.state.lock();
        if state.lead(account, lead).is_none() {
            return Ok(None);
        }
        let keep = Duration::from_secs(retention_secs.max(1));
        Ok(Some(state.link_browser(account, visitor, lead, at, keep)))
    }

    async fn append_timeline(
        &self,
        account: AccountId,
        lead: LeadId,
        entry: &TimelineEntry,
    ) -> StoreResult<()> {
        let mut state = self.state.lock();
        if state.lead(account, lead).is_some() {
            state.push_timeline(lead, entry.clone());
        }
        Ok(())
    }

    async fn timeline(&self, account: AccountId, lead: LeadId) -> StoreResult<Vec<TimelineEntry>> {
        let state = self.state.lock();
        Ok(state
            .lead(account, lead)
            .and_then(|_| state.timelines.get(&lead).cloned())
            .unwrap_or_default())
    }

    async fn lead_visitors(
        &self,
        account: AccountId,
        lead: LeadId,
    ) -> StoreResult<Vec<VisitorLink>> {
        let state = self.state.lock();
        let mut links = state
            .lead(account, lead)
            .and_then(|_| state.lead_visitors.get(&lead).cloned())
            .unwrap_or_default();
        links.sort_by_key(|l| (l.linked_at, l.visitor));
        Ok(links)
    }

    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>> {
        let state = self.state.lock();
        Ok(state
            .unsorted
            .get(&account)
            .and_then(|l| l.iter().find(|u| &u.uid == uid))
            .cloned())
    }

    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>> {
        let mut list = self
            .state
            .lock()
            .unsorted
            .get(&account)
            .cloned()
            .unwrap_or_default();
        list.sort_by(|a, b| (a.created_at, &a.uid).cmp(&(b.created_at, &b.uid)));
        Ok(list)
    }
}
