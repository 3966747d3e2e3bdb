//! Notes on a lead's card: service messages a handler logs back into the lead (amoCRM's
//! note type 25), kept on the lead's timeline.

use serde_json::json;

use super::live::LiveKind;
use super::{Result, Services};
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::time::now_ms;
use crate::domain::timeline::TimelineEntry;
use crate::store::Sequence;

/// amoCRM's note type of a service message.
pub const SERVICE_MESSAGE: u8 = 25;

/// A service message to add: its text and the service that sends it.
pub struct ServiceMessage {
    pub text: String,
    pub service: String,
}

impl Services {
    /// The lead's notes, oldest first.
    pub async fn notes(&self, account: AccountId, lead: LeadId) -> Result<Vec<TimelineEntry>> {
        let lead = self.lead(account, lead).await?;
        Ok(self
            .store
            .timeline(account, lead.id)
            .await?
            .into_iter()
            .filter(|e| matches!(e, TimelineEntry::Note { .. }))
            .collect())
    }

    /// Adds service messages to the lead's card; returns their entries.
    pub async fn add_notes(
        &self,
        account: AccountId,
        lead: LeadId,
        messages: Vec<ServiceMessage>,
    ) -> Result<Vec<TimelineEntry>> {
        let lead = self.lead(account, lead).await?;
        let mut created = Vec::with_capacity(messages.len());
        for message in messages {
            let entry = TimelineEntry::Note {
                at: now_ms(),
                id: self.store.next_id(Sequence::Note).await?,
                note_type: SERVICE_MESSAGE,
                params: json!({"text": message.text, "service": message.service}),
            };
            self.store.append_timeline(account, lead.id, &entry).await?;
            created.push(entry);
        }
        self.live.publish(account, lead.id, LiveKind::Note);
        Ok(created)
    }
}
