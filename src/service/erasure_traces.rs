//! What an erasure must find before the store forgets where to look: a browser's share of
//! its sites' top pages and sources (counted per site and day, away from the browser's
//! keys), and the account-webhook notices whose bodies name the erased lead or its
//! contacts (event records outside the lead's timeline).

use super::{Result, Services};
use crate::domain::event_record::EventRecord;
use crate::domain::ids::{AccountId, ContactId, EventId, LeadId};
use crate::domain::lead::Lead;
use crate::domain::stats::StatsDelta;
use crate::domain::visitor::VisitorId;

/// The most event records read in one round trip while looking for a lead's notices.
const CHUNK: usize = 250;

impl Services {
    /// Takes the browser's page views and visits out of the top pages and sources: a path
    /// or a source only it had goes, a shared one keeps the others' counts. Run before the
    /// browser's history goes (it is what says what to take out).
    pub(super) async fn remove_browser_tops(
        &self,
        account: AccountId,
        visitor: VisitorId,
    ) -> Result<()> {
        let (page_views, visits) = self.browsing(account, visitor).await?;
        let delta = StatsDelta::tops_of(&page_views, &visits);
        if delta.is_empty() {
            return Ok(());
        }
        Ok(self.store.remove_tops(delta).await?)
    }

    /// The account's webhook notices about the lead (its changes, notes, Unsorted
    /// entries) or about one of its contacts, scheduled or delivered.
    pub(super) async fn lead_notices(
        &self,
        account: AccountId,
        lead: &Lead,
    ) -> Result<Vec<EventId>> {
        let contacts: Vec<ContactId> = lead.contacts.iter().map(|c| c.id).collect();
        self.notices_about(account, Some(lead.id), &contacts).await
    }

    /// The account's webhook notices about `lead` or one of `contacts`.
    pub(super) async fn notices_about(
        &self,
        account: AccountId,
        lead: Option<LeadId>,
        contacts: &[ContactId],
    ) -> Result<Vec<EventId>> {
        let about = |e: &EventRecord| {
            e.notice.is_some()
                && (Some(e.lead_id) == lead
                    || e.body
                        .as_deref()
                        .is_some_and(|body| names_contact(body, contacts)))
        };
        let ids = self.store.event_ids(account).await?;
        let mut found = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            found.extend(
                self.store
                    .get_events(chunk)
                    .await?
                    .into_iter()
                    .filter(about)
                    .map(|e| e.id),
            );
        }
        Ok(found)
    }
}

/// Whether a notice's form body is about one of the contacts: its
/// `contacts[<change>][0][id]` is one of theirs.
fn names_contact(body: &str, contacts: &[ContactId]) -> bool {
    url::form_urlencoded::parse(body.as_bytes()).any(|(name, value)| {
        name.starts_with("contacts[")
            && name.ends_with("][0][id]")
            && contacts.iter().any(|c| c.to_string() == value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_notice_names_its_contact_only() {
        let body = "contacts%5Badd%5D%5B0%5D%5Bid%5D=42&contacts%5Badd%5D%5B0%5D%5Bname%5D=Zed";
        assert!(names_contact(body, &[ContactId(7), ContactId(42)]));
        assert!(!names_contact(body, &[ContactId(4)]));
        assert!(!names_contact(
            "leads%5Bdelete%5D%5B0%5D%5Bid%5D=42",
            &[ContactId(42)]
        ));
    }
}
