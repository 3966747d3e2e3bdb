//! Contact records in memory: under the one lock, as Redis's script.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::ids::{AccountId, ContactId};
use crate::store::{ContactRecordData, ContactWrite, ContactWrites, StoreResult};

#[async_trait]
impl ContactWrites for MemoryStore {
    async fn save_contact(&self, w: &ContactWrite) -> StoreResult<()> {
        let c = &w.record.contact;
        let mut state = self.state.lock();
        for id in &w.leads {
            if let Some(lead) = state
                .leads
                .get_mut(id)
                .filter(|l| l.account_id == w.account)
            {
                for copy in lead.contacts.iter_mut().filter(|x| x.id == c.id) {
                    copy.name = c.name.clone();
                    copy.phone = c.phone.clone();
                    copy.email = c.email.clone();
                }
            }
        }
        for key in &w.old_keys {
            let index = (w.account, key.clone());
            if state
                .contacts
                .get(&index)
                .is_some_and(|l| w.leads.contains(l))
            {
                state.contacts.remove(&index);
            }
        }
        if let Some(newest) = w.leads.iter().max() {
            for key in &w.new_keys {
                state.contacts.insert((w.account, key.clone()), *newest);
            }
        }
        state
            .contact_records
            .insert((w.account, c.id), w.record.clone());
        Ok(())
    }

    async fn contact_records(&self, account: AccountId) -> StoreResult<Vec<ContactRecordData>> {
        let state = self.state.lock();
        Ok(state
            .contact_records
            .iter()
            .filter(|((a, _), _)| *a == account)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn erase_contact_records(
        &self,
        account: AccountId,
        ids: &[ContactId],
    ) -> StoreResult<u64> {
        let mut state = self.state.lock();
        Ok(ids
            .iter()
            .filter(|id| state.contact_records.remove(&(account, **id)).is_some())
            .count() as u64)
    }
}
