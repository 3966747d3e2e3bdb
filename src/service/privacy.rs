//! A data subject's rights: erasure (of a lead, a browser, or everything of an email or a
//! phone), export of everything held about a subject, the audit of erasures, and the
//! retention sweep that erases leads untouched for `privacy.lead_retention_days`.
//!
//! Every erasure of a lead goes through [`Services::erase_one_lead`]: its browsers' share
//! of the top pages and sources and the account-webhook notices about it or its contacts
//! (`erasure_traces.rs`), the store's erasure, the live update and the account webhooks'
//! `delete_lead` notice (the lead's id and stage only: it outlives the lead as a delivery
//! record) and `delete_contact` for each contact that went with it (its id only) — so
//! that the API, the subject erasure and the sweep all do it.

use serde::Serialize;

use super::catalog_cache::Snapshot;
use super::live::LiveKind;
use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::event_record::EventRecord;
use crate::domain::handler::Handler;
use crate::domain::ids::{AccountId, ContactId, LeadId};
use crate::domain::lead::{Contact, Lead, Unsorted, VisitorLink};
use crate::domain::privacy::{AuditRecord, Erased, ErasureKind, Subject};
use crate::domain::site::Site;
use crate::domain::source::Source;
use crate::domain::time::{DAY_SECS, Millis, now_ms};
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::{PageView, Visit};
use crate::domain::visitor::VisitorId;
use crate::store::ErasureScope;

/// The most leads read from the store in one round trip while looking for a subject's.
const CHUNK: usize = 250;

/// The audit's name of the retention sweep (it has no token).
pub const RETENTION_ACTOR: &str = "retention";

/// Everything held about a subject, as `GET /api/v4/privacy/export` answers it.
#[derive(Debug, Serialize)]
pub struct SubjectExport {
    pub contacts: Vec<Contact>,
    pub leads: Vec<Lead>,
    pub unsorted: Vec<Unsorted>,
    pub browsers: Vec<BrowserExport>,
    /// Events with their delivery attempts.
    pub events: Vec<EventRecord>,
    pub notes: Vec<NoteExport>,
}

/// A browser's history in the account.
#[derive(Debug, Serialize)]
pub struct BrowserExport {
    pub visitor_uid: VisitorId,
    /// The lead it belongs to now, if any.
    pub lead_id: Option<LeadId>,
    pub visits: Vec<VisitExport>,
    pub page_views: Vec<PageView>,
}

/// A visit with where it came from (landing page, referrer, campaign), as the lead's
/// source and the statistics read it.
#[derive(Debug, Serialize)]
pub struct VisitExport {
    #[serde(flatten)]
    pub visit: Visit,
    pub source: Source,
}

#[derive(Debug, Serialize)]
pub struct NoteExport {
    pub lead_id: LeadId,
    pub note: TimelineEntry,
}

impl Services {
    /// What an erasure in the account needs of its catalog.
    async fn erasure_scope(&self, account: AccountId) -> Result<ErasureScope> {
        let sites: Vec<Site> = self.records(account).await?;
        let handlers: Vec<Handler> = self.records(account).await?;
        Ok(ErasureScope {
            account,
            sites: sites.iter().map(|s| s.id).collect(),
            handlers: handlers.iter().map(|h| h.id).collect(),
        })
    }

    /// The one road of a lead's erasure (API, subject erasure, retention): everything of
    /// the lead goes from the store, and consoles are told. `None` when there was no lead.
    pub async fn erase_one_lead(
        &self,
        scope: &ErasureScope,
        lead: LeadId,
    ) -> Result<Option<Erased>> {
        // Read first: the account's webhooks are told the deleted lead's id and stage.
        let before = self.store.get_leads(scope.account, &[lead]).await?.pop();
        // What lies outside the lead's keys goes before them: while the lead is there, a
        // cut erasure is found and finished by repeating it.
        let mut notices = 0;
        if let Some(before) = &before {
            for link in self.store.lead_visitors(scope.account, lead).await? {
                self.remove_browser_tops(scope.account, link.visitor)
                    .await?;
            }
            let ids = self.lead_notices(scope.account, before).await?;
            notices = self.store.erase_notices(scope, &ids).await?;
        }
        let Some(gone) = self.store.erase_lead(scope, lead).await? else {
            return Ok(None);
        };
        self.live.publish(scope.account, lead, LiveKind::Erased);
        // The lead, and its contacts that went with it, are deleted to the webhooks: one
        // read of the catalog for all the notices.
        if before.is_some() || !gone.contacts_gone.is_empty() {
            let snapshot = self
                .snapshots
                .get(&*self.store, scope.account, None)
                .await?;
            if let Some(before) = before {
                self.notify_with(scope.account, &snapshot, Change::LeadDeleted(before))
                    .await?;
            }
            self.notify_contacts_deleted(scope.account, &snapshot, &gone.contacts_gone)
                .await?;
        }
        Ok(Some(Erased {
            events: gone.erased.events + notices,
            ..gone.erased
        }))
    }

    /// Tells the account's webhooks of each contact an erasure removed (`delete_contact`).
    async fn notify_contacts_deleted(
        &self,
        account: AccountId,
        snapshot: &Snapshot,
        ids: &[ContactId],
    ) -> Result<()> {
        for id in ids {
            self.notify_with(account, snapshot, Change::ContactDeleted(*id))
                .await?;
        }
        Ok(())
    }

    async fn audit_erasure(
        &self,
        account: AccountId,
        by: &str,
        kind: ErasureKind,
        erased: Erased,
    ) -> Result<()> {
        let record = AuditRecord {
            at: now_ms(),
            token: by.to_owned(),
            kind,
            erased,
        };
        Ok(self.store.add_audit(account, &record).await?)
    }

    /// `DELETE /leads/{id}`: the lead and everything of it; audited as done by `by`.
    pub async fn erase_lead(&self, account: AccountId, lead: LeadId, by: &str) -> Result<Erased> {
        let scope = self.erasure_scope(account).await?;
        let erased = self
            .erase_one_lead(&scope, lead)
            .await?
            .ok_or_else(|| Error::NotFound(format!("lead {lead} does not exist")))?;
        self.audit_erasure(account, by, ErasureKind::Lead, erased)
            .await?;
        Ok(erased)
    }

    /// `DELETE /visitors/{visitor_uid}`: one browser's history and links. NotFound when
    /// the account holds nothing of it.
    pub async fn erase_visitor(
        &self,
        account: AccountId,
        visitor: VisitorId,
        by: &str,
    ) -> Result<Erased> {
        let scope = self.erasure_scope(account).await?;
        let lead = self.store.visitor(account, visitor).await?.lead;
        self.remove_browser_tops(account, visitor).await?;
        let erased = self.store.erase_visitor(&scope, visitor).await?;
        if erased.visitors == 0 {
            return Err(Error::NotFound(format!(
                "no browser {visitor} in this account"
            )));
        }
        if let Some(lead) = lead {
            self.live.publish(account, lead, LiveKind::Erased);
        }
        self.audit_erasure(account, by, ErasureKind::Visitor, erased)
            .await?;
        Ok(erased)
    }

    /// `POST /privacy/erase`: every lead of an email or a phone, with everything of each.
    pub async fn erase_subject(
        &self,
        account: AccountId,
        subject: &Subject,
        by: &str,
    ) -> Result<Erased> {
        let scope = self.erasure_scope(account).await?;
        let mut erased = Erased::default();
        for lead in self.subject_leads(account, subject).await? {
            if let Some(one) = self.erase_one_lead(&scope, lead.id).await? {
                erased.add(one);
            }
        }
        // Contacts the API made without a lead, and the notices that name them.
        let lone: Vec<ContactId> = self
            .subject_records(account, subject)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        if !lone.is_empty() {
            let notices = self.notices_about(account, None, &lone).await?;
            erased.events += self.store.erase_notices(&scope, &notices).await?;
            erased.contacts += self.store.erase_contact_records(account, &lone).await?;
            let snapshot = self.snapshots.get(&*self.store, account, None).await?;
            self.notify_contacts_deleted(account, &snapshot, &lone)
                .await?;
        }
        self.audit_erasure(account, by, subject.kind(), erased)
            .await?;
        Ok(erased)
    }

    /// The account's erasures, newest first.
    pub async fn privacy_audit(&self, account: AccountId) -> Result<Vec<AuditRecord>> {
        Ok(self.store.audit(account).await?)
    }

    /// The leads of an email or phone subject (the lead of a lead subject), newest first.
    async fn subject_leads(&self, account: AccountId, subject: &Subject) -> Result<Vec<Lead>> {
        if let Subject::Lead(id) = subject {
            return Ok(self.store.get_leads(account, &[*id]).await?);
        }
        if let Subject::Visitor(_) = subject {
            return Ok(Vec::new());
        }
        let ids = self.store.lead_ids(account).await?;
        let mut leads = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            leads.extend(
                self.store
                    .get_leads(account, chunk)
                    .await?
                    .into_iter()
                    .filter(|l| l.contacts.iter().any(|c| subject.names(c))),
            );
        }
        Ok(leads)
    }

    /// The contact records of an email or phone subject (none for a lead or a browser):
    /// the API's contacts, with or without a lead.
    async fn subject_records(&self, account: AccountId, subject: &Subject) -> Result<Vec<Contact>> {
        if matches!(subject, Subject::Lead(_) | Subject::Visitor(_)) {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .contact_records(account)
            .await?
            .into_iter()
            .map(|r| r.contact)
            .filter(|c| subject.names(c))
            .collect())
    }

    /// Everything held about a subject. A lead subject that does not exist is NotFound;
    /// an email, phone or browser the account does not know answers an empty document.
    pub async fn export_subject(
        &self,
        account: AccountId,
        subject: &Subject,
    ) -> Result<SubjectExport> {
        let leads = self.subject_leads(account, subject).await?;
        if let (Subject::Lead(id), true) = (subject, leads.is_empty()) {
            return Err(Error::NotFound(format!("lead {id} does not exist")));
        }
        let mut export = SubjectExport {
            contacts: Vec::new(),
            leads: Vec::new(),
            unsorted: Vec::new(),
            browsers: Vec::new(),
            events: Vec::new(),
            notes: Vec::new(),
        };
        // Each browser with the subject's links to it: a lead's part of a browser is what
        // its link covers (the browser may have moved to another person's lead since); a
        // browser asked for by its id is the subject's whole (no links).
        let mut visitors: Vec<(VisitorId, Vec<VisitorLink>)> = match subject {
            Subject::Visitor(v) => vec![(*v, Vec::new())],
            _ => Vec::new(),
        };
        let unsorted = self.store.list_unsorted(account).await?;
        for lead in &leads {
            for c in &lead.contacts {
                if !export.contacts.iter().any(|k| k.id == c.id) {
                    export.contacts.push(c.clone());
                }
            }
            let mut events = Vec::new();
            for entry in self.store.timeline(account, lead.id).await? {
                match entry {
                    TimelineEntry::EventFired { event_id, .. } => events.push(event_id),
                    note @ TimelineEntry::Note { .. } => export.notes.push(NoteExport {
                        lead_id: lead.id,
                        note,
                    }),
                    _ => {}
                }
            }
            export.events.extend(self.store.get_events(&events).await?);
            for link in self.store.lead_visitors(account, lead.id).await? {
                match visitors.iter_mut().find(|(v, _)| *v == link.visitor) {
                    Some((_, links)) => links.push(link),
                    None => visitors.push((link.visitor, vec![link])),
                }
            }
        }
        // The API's contacts too, with the account webhooks' notices that name them.
        let records = self.subject_records(account, subject).await?;
        if !records.is_empty() {
            let ids: Vec<ContactId> = records.iter().map(|c| c.id).collect();
            let notices = self.notices_about(account, None, &ids).await?;
            for event in self.store.get_events(&notices).await? {
                if !export.events.iter().any(|e| e.id == event.id) {
                    export.events.push(event);
                }
            }
        }
        for contact in records {
            if !export.contacts.iter().any(|k| k.id == contact.id) {
                export.contacts.push(contact);
            }
        }
        export.unsorted = unsorted
            .into_iter()
            .filter(|u| {
                leads.iter().any(|l| l.id == u.lead_id)
                    || visitors
                        .iter()
                        .filter(|(_, links)| links.is_empty())
                        .any(|(v, _)| {
                            u.metadata.visitor_uid.as_deref() == Some(v.encode().as_str())
                        })
            })
            .collect();
        for (visitor, links) in visitors {
            let covered = |at: Millis| links.is_empty() || links.iter().any(|l| l.covers(at));
            let state = self.store.visitor(account, visitor).await?;
            let (page_views, visits) = self.browsing(account, visitor).await?;
            let page_views: Vec<PageView> =
                page_views.into_iter().filter(|pv| covered(pv.at)).collect();
            let visits: Vec<Visit> = visits
                .into_iter()
                .filter(|v| covered(v.started_at))
                .collect();
            let lead_id = state
                .lead
                .filter(|lead| links.is_empty() || leads.iter().any(|l| l.id == *lead));
            if page_views.is_empty() && visits.is_empty() && lead_id.is_none() {
                continue;
            }
            export.browsers.push(BrowserExport {
                visitor_uid: visitor,
                lead_id,
                visits: visits
                    .into_iter()
                    .map(|visit| VisitExport {
                        source: Source::of_visit(&visit),
                        visit,
                    })
                    .collect(),
                page_views,
            });
        }
        export.leads = leads;
        Ok(export)
    }

    /// Erases every lead of every account untouched since `now` minus
    /// `privacy.lead_retention_days` (none when it is 0); audits each account's sweep that
    /// erased something. Returns how many leads went.
    pub async fn sweep_retention(&self, now: Millis) -> Result<u64> {
        let days = self.settings.privacy.lead_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let horizon = now - (days.saturating_mul(DAY_SECS) as i64).saturating_mul(1000);
        let mut total = 0;
        let accounts: Vec<AccountId> = self.accounts.all().map(|a| a.id).collect();
        for account in accounts {
            let scope = self.erasure_scope(account).await?;
            let mut erased = Erased::default();
            let ids = self.store.lead_ids(account).await?;
            for chunk in ids.chunks(CHUNK) {
                for lead in self.store.get_leads(account, chunk).await? {
                    if lead.updated_at >= horizon {
                        continue;
                    }
                    if let Some(one) = self.erase_one_lead(&scope, lead.id).await? {
                        erased.add(one);
                    }
                }
            }
            if erased.leads > 0 {
                total += erased.leads;
                self.audit_erasure(account, RETENTION_ACTOR, ErasureKind::Retention, erased)
                    .await?;
            }
        }
        Ok(total)
    }

    /// Runs the retention sweep every `privacy.retention_sweep_seconds` until shutdown
    /// (nothing when `privacy.lead_retention_days` is 0).
    pub async fn run_retention(self: std::sync::Arc<Self>) {
        if self.settings.privacy.lead_retention_days == 0 {
            return;
        }
        let every =
            std::time::Duration::from_secs(self.settings.privacy.retention_sweep_seconds.max(1));
        loop {
            match self.sweep_retention(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(leads = n, "retention erased untouched leads"),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; trying again later"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }
}

impl Services {
    /// A browser named by the API: the 22-character id the API shows (a lead's visitors,
    /// an Unsorted entry's metadata) or the signed id t.js gave the page.
    pub fn named_visitor(&self, account: AccountId, raw: &str) -> Result<VisitorId> {
        VisitorId::parse(raw)
            .or_else(|| self.signer.verify(account, raw))
            .ok_or_else(|| {
                Error::invalid(
                    "visitor_uid",
                    "is not a browser id footfall gave (forged or damaged)",
                )
            })
    }
}
