//! Contacts written through the API (`POST/PATCH /contacts`). A contact lives on each of
//! its leads (read with the lead in one round trip); a contact made or changed through the
//! API also has a record of its own, so that one without a lead exists and keeps its
//! times. A change reaches the record, every lead the contact is on and the contact
//! index (the email/phone lookups duplicate detection uses) in one atomic step.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::ids::{AccountId, ContactId, LeadId};
use crate::domain::lead::Contact;
use crate::domain::time::Millis;

/// A contact's own record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRecordData {
    pub contact: Contact,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A contact to store: its record, the leads it is on (their copies change with it),
/// and its index keys before and after (`email:…`, `phone:…`).
#[derive(Debug, Clone)]
pub struct ContactWrite {
    pub account: AccountId,
    pub record: ContactRecordData,
    pub leads: Vec<LeadId>,
    /// Keys the contact was found by: dropped when they point at one of its leads.
    pub old_keys: Vec<String>,
    /// Keys it is found by now: they point at its newest lead (none without a lead).
    pub new_keys: Vec<String>,
}

#[async_trait]
pub trait ContactWrites: Send + Sync {
    /// Stores a contact's record, its copy on each of `leads` and its index keys, all or
    /// nothing.
    async fn save_contact(&self, write: &ContactWrite) -> StoreResult<()>;
    /// The account's contact records, in no particular order.
    async fn contact_records(&self, account: AccountId) -> StoreResult<Vec<ContactRecordData>>;
    /// Erases contact records (of contacts on no lead); how many there were.
    async fn erase_contact_records(
        &self,
        account: AccountId,
        ids: &[ContactId],
    ) -> StoreResult<u64>;
}
