//! Leads made through the API in memory: under the one lock, as Redis's script.

use std::time::Duration;

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::timeline::TimelineEntry;
use crate::store::{LeadCreated, LeadWrites, NewLead, StoreResult, corrupt};

#[async_trait]
impl LeadWrites for MemoryStore {
    async fn create_lead(&self, new: &NewLead) -> StoreResult<LeadCreated> {
        let lead = &new.lead;
        let account = lead.account_id;
        let mut state = self.state.lock();
        if state.leads.contains_key(&lead.id) {
            return Err(corrupt(format!("create_lead: lead {} exists", lead.id)));
        }
        state.leads.insert(lead.id, lead.clone());
        state
            .account_leads
            .entry(account)
            .or_default()
            .push(lead.id);
        state.push_timeline(
            lead.id,
            TimelineEntry::LeadAdded {
                at: new.at,
                to: lead.stage(),
            },
        );
        for key in &new.contact_keys {
            state.contacts.insert((account, key.clone()), lead.id);
        }
        let previous_lead = new.visitor.and_then(|v| {
            let keep = Duration::from_secs(new.link_retention_secs.max(1));
            state.link_browser(account, v, lead.id, new.at, keep)
        });
        Ok(LeadCreated { previous_lead })
    }
}
