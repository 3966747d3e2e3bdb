//! Notes on a lead's card: service messages a handler logs back into the lead (amoCRM's
//! note type 25) and common notes (type 4, `params.text`), kept on the lead's timeline.

use serde_json::json;

use super::live::LiveKind;
use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::time::now_ms;
use crate::domain::timeline::TimelineEntry;
use crate::domain::validation::FieldError;
use crate::store::Sequence;

/// amoCRM's note type of a service message.
pub const SERVICE_MESSAGE: u8 = 25;

/// amoCRM's note type of a common note.
pub const COMMON: u8 = 4;

/// A service message to add: its text and the service that sends it.
pub struct ServiceMessage {
    pub text: String,
    pub service: String,
}

/// A note to add.
pub enum NewNote {
    Common { text: String },
    ServiceMessage(ServiceMessage),
}

impl NewNote {
    fn entry(self, id: u64) -> TimelineEntry {
        let (note_type, params) = match self {
            Self::Common { text } => (COMMON, json!({"text": text})),
            Self::ServiceMessage(m) => (
                SERVICE_MESSAGE,
                json!({"text": m.text, "service": m.service}),
            ),
        };
        TimelineEntry::Note {
            at: now_ms(),
            id,
            note_type,
            params,
        }
    }
}

/// amoCRM's name of a note type.
pub fn note_type_name(note_type: u8) -> &'static str {
    match note_type {
        COMMON => "common",
        _ => "service_message",
    }
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
        notes: Vec<NewNote>,
    ) -> Result<Vec<TimelineEntry>> {
        let lead = self.lead(account, lead).await?;
        let mut created = Vec::with_capacity(notes.len());
        for note in notes {
            created.push(self.add_note(account, lead.id, note).await?);
        }
        Ok(created)
    }

    /// One note on a lead that exists: its timeline entry, the live stream and the
    /// account's webhooks (`note_lead`).
    async fn add_note(
        &self,
        account: AccountId,
        lead: LeadId,
        note: NewNote,
    ) -> Result<TimelineEntry> {
        let entry = note.entry(self.store.next_id(Sequence::Note).await?);
        self.store.append_timeline(account, lead, &entry).await?;
        self.live.publish(account, lead, LiveKind::Note);
        if let Some(change) = Change::note(lead, &entry) {
            self.notify_account(account, change).await?;
        }
        Ok(entry)
    }

    /// amoCRM's `POST /leads/notes`: notes on several leads, each naming its lead. Every
    /// lead must exist before any note is added (errors name the item: `[1].entity_id`).
    pub async fn add_lead_notes(
        &self,
        account: AccountId,
        notes: Vec<(LeadId, NewNote)>,
    ) -> Result<Vec<(LeadId, TimelineEntry)>> {
        let ids: Vec<LeadId> = notes.iter().map(|(id, _)| *id).collect();
        let found = self.store.get_leads(account, &ids).await?;
        let missing: Vec<FieldError> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !found.iter().any(|l| l.id == **id))
            .map(|(i, id)| {
                FieldError::new(
                    format!("[{i}].entity_id"),
                    format!("lead {id} does not exist"),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(missing));
        }
        let mut created = Vec::with_capacity(notes.len());
        for (lead, note) in notes {
            created.push((lead, self.add_note(account, lead, note).await?));
        }
        Ok(created)
    }

    /// The notes of the given leads (all the account's leads when none is given), oldest
    /// first per lead, newest leads first.
    pub async fn lead_notes(
        &self,
        account: AccountId,
        leads: &[LeadId],
    ) -> Result<Vec<(LeadId, TimelineEntry)>> {
        let ids = if leads.is_empty() {
            self.store.lead_ids(account).await?
        } else {
            self.store
                .get_leads(account, leads)
                .await?
                .into_iter()
                .map(|l| l.id)
                .collect()
        };
        let mut notes = Vec::new();
        for id in ids {
            notes.extend(
                self.store
                    .timeline(account, id)
                    .await?
                    .into_iter()
                    .filter(|e| matches!(e, TimelineEntry::Note { .. }))
                    .map(|e| (id, e)),
            );
        }
        Ok(notes)
    }
}
