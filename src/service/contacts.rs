//! Contacts as amoCRM lists them (`GET /api/v4/contacts`): footfall keeps each contact on
//! its lead, so the list is read from the account's leads — each contact once, with the
//! leads it belongs to — and contacts made through the API (`contact_writes.rs`) from
//! their own records.

use super::{Error, Result, Services};
use crate::domain::ids::{AccountId, ContactId, LeadId};
use crate::domain::lead::Contact;
use crate::domain::time::Millis;

/// The most leads read from the store in one round trip.
const CHUNK: usize = 250;

/// A contact with the leads it belongs to.
pub struct ContactRecord {
    pub contact: Contact,
    pub leads: Vec<LeadId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Services {
    /// The account's contacts, newest first.
    pub async fn contacts(&self, account: AccountId) -> Result<Vec<ContactRecord>> {
        let ids = self.store.lead_ids(account).await?;
        let mut records: Vec<ContactRecord> = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            for lead in self.store.get_leads(account, chunk).await? {
                for c in &lead.contacts {
                    match records.iter_mut().find(|r| r.contact.id == c.id) {
                        Some(r) => {
                            r.leads.push(lead.id);
                            r.created_at = r.created_at.min(lead.created_at);
                            r.updated_at = r.updated_at.max(lead.updated_at);
                        }
                        None => records.push(ContactRecord {
                            contact: c.clone(),
                            leads: vec![lead.id],
                            created_at: lead.created_at,
                            updated_at: lead.updated_at,
                        }),
                    }
                }
            }
        }
        // Contacts made or changed through the API have a record: its times, and a
        // contact without a lead.
        for own in self.store.contact_records(account).await? {
            match records.iter_mut().find(|r| r.contact.id == own.contact.id) {
                Some(r) => {
                    r.created_at = r.created_at.min(own.created_at);
                    r.updated_at = r.updated_at.max(own.updated_at);
                }
                None => records.push(ContactRecord {
                    contact: own.contact,
                    leads: Vec::new(),
                    created_at: own.created_at,
                    updated_at: own.updated_at,
                }),
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.contact.id.0));
        Ok(records)
    }

    /// One contact of the account, or NotFound.
    pub async fn contact(&self, account: AccountId, id: ContactId) -> Result<ContactRecord> {
        self.contacts(account)
            .await?
            .into_iter()
            .find(|r| r.contact.id == id)
            .ok_or_else(|| Error::NotFound(format!("contact {id} does not exist")))
    }
}
