//! Contacts added and changed through the API (`POST /contacts`, `PATCH /contacts`,
//! `PATCH /contacts/{id}`). A change reaches every lead the contact is on and the contact
//! index in one atomic step (`ContactWrites::save_contact`), so that duplicate detection
//! finds the contact by its new email or phone, and no longer by the old ones.

use std::collections::HashMap;

use super::contacts::ContactRecord;
use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::form::ContactDetails;
use crate::domain::ids::{AccountId, ContactId};
use crate::domain::lead::Contact;
use crate::domain::time::now_ms;
use crate::domain::validation::FieldError;
use crate::store::{ContactRecordData, ContactWrite, Sequence};

/// A change to a contact: each given field replaces the old one; an empty phone or email
/// removes it.
#[derive(Debug, Default)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl Services {
    /// Adds contacts, each `name`, `phone`, `email` as a form's (errors name the item).
    pub async fn add_contacts(
        &self,
        account: AccountId,
        contacts: Vec<HashMap<String, String>>,
    ) -> Result<Vec<ContactRecord>> {
        let mut errors = Vec::new();
        let mut parsed = Vec::with_capacity(contacts.len());
        for (i, fields) in contacts.iter().enumerate() {
            match ContactDetails::parse(fields, &[]) {
                Ok(d) => parsed.push(d),
                Err(es) => errors.extend(es.into_iter().map(|f| f.of_item(i))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let (ids, _) = self
            .store
            .next_ids(account, &vec![Sequence::Contact; parsed.len()])
            .await?;
        let now = now_ms();
        let mut added = Vec::with_capacity(parsed.len());
        for (details, id) in parsed.into_iter().zip(ids) {
            let contact = Contact {
                id: ContactId(Sequence::Contact.base() + id),
                name: details.name,
                phone: details.phone,
                email: details.email,
                is_main: false,
            };
            let record = ContactRecordData {
                contact,
                created_at: now,
                updated_at: now,
            };
            self.store
                .save_contact(&ContactWrite {
                    account,
                    record: record.clone(),
                    leads: Vec::new(),
                    old_keys: Vec::new(),
                    new_keys: Vec::new(),
                })
                .await?;
            let change = Change::ContactAdded {
                contact: record.contact.clone(),
                at: now,
            };
            self.notify_account(account, change).await?;
            added.push(ContactRecord {
                contact: record.contact,
                leads: Vec::new(),
                created_at: now,
                updated_at: now,
            });
        }
        Ok(added)
    }

    /// Changes contacts (amoCRM's batch `PATCH /contacts`): every contact must exist and
    /// every change be valid before any is stored; errors name the item (`[1].email`).
    pub async fn update_contacts(
        &self,
        account: AccountId,
        changes: Vec<(ContactId, ContactPatch)>,
    ) -> Result<Vec<ContactRecord>> {
        let known = self.contacts(account).await?;
        let mut errors = Vec::new();
        let mut writes = Vec::with_capacity(changes.len());
        let mut named = std::collections::HashSet::new();
        for (i, (id, patch)) in changes.into_iter().enumerate() {
            // Each item is checked against the contact as stored: a contact named twice
            // would have its second change undo the first.
            if !named.insert(id) {
                errors.push(FieldError::new(
                    format!("[{i}].id"),
                    format!("contact {id} is named by an earlier item: change it in one item"),
                ));
                continue;
            }
            let Some(current) = known.iter().find(|r| r.contact.id == id) else {
                errors.push(FieldError::new(
                    format!("[{i}].id"),
                    format!("contact {id} does not exist"),
                ));
                continue;
            };
            let old = &current.contact;
            let mut fields = HashMap::new();
            let pick = |new: Option<String>, old: &Option<String>| new.or_else(|| old.clone());
            fields.insert("name".to_owned(), patch.name.unwrap_or(old.name.clone()));
            if let Some(p) = pick(patch.phone, &old.phone) {
                fields.insert("phone".to_owned(), p);
            }
            if let Some(e) = pick(patch.email, &old.email) {
                fields.insert("email".to_owned(), e);
            }
            match ContactDetails::parse(&fields, &[]) {
                Ok(details) => writes.push((current, details)),
                Err(es) => errors.extend(es.into_iter().map(|f| f.of_item(i))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let now = now_ms();
        let mut changed = Vec::with_capacity(writes.len());
        for (current, details) in writes {
            let old = &current.contact;
            let old_keys = ContactDetails {
                name: old.name.clone(),
                phone: old.phone.clone(),
                email: old.email.clone(),
            }
            .keys();
            let new_keys = details.keys();
            let contact = Contact {
                id: old.id,
                name: details.name,
                phone: details.phone,
                email: details.email,
                is_main: false,
            };
            let record = ContactRecordData {
                contact: contact.clone(),
                created_at: current.created_at,
                updated_at: now,
            };
            self.store
                .save_contact(&ContactWrite {
                    account,
                    record,
                    leads: current.leads.clone(),
                    old_keys,
                    new_keys,
                })
                .await?;
            let change = Change::ContactUpdated {
                contact: contact.clone(),
                at: now,
            };
            self.notify_account(account, change).await?;
            changed.push(ContactRecord {
                contact,
                leads: current.leads.clone(),
                created_at: current.created_at,
                updated_at: now,
            });
        }
        Ok(changed)
    }
}
