//! Account webhooks, as amoCRM has them (`/api/v4/webhooks`): an outside server told of
//! the account's changes — each webhook subscribed to chosen ones (`settings`) — with a
//! body in amoCRM's form: `application/x-www-form-urlencoded`, PHP's bracket notation
//! (`leads[status][0][id]=…`), and the account (`account[id]`, `account[subdomain]`).
//! Each notice is delivered as an event is (retries, dead letters, replay, Standard
//! Webhooks signatures with the webhook's own secret).

use serde::{Deserialize, Serialize};

use super::ids::{AccountId, ContactId, LeadId, PipelineId, UnsortedUid};
use super::lead::{Contact, Lead};
use super::pipeline::Stage;
use super::time::{Millis, to_secs};

/// amoCRM's cap on an account's webhooks.
pub const MAX_WEBHOOKS: usize = 100;

/// The changes a webhook can subscribe to, by amoCRM's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookSetting {
    AddLead,
    UpdateLead,
    StatusLead,
    DeleteLead,
    NoteLead,
    AddContact,
    UpdateContact,
    DeleteContact,
    AddUnsorted,
    DeleteUnsorted,
}

impl WebhookSetting {
    pub const ALL: [Self; 10] = [
        Self::AddLead,
        Self::UpdateLead,
        Self::StatusLead,
        Self::DeleteLead,
        Self::NoteLead,
        Self::AddContact,
        Self::UpdateContact,
        Self::DeleteContact,
        Self::AddUnsorted,
        Self::DeleteUnsorted,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::AddLead => "add_lead",
            Self::UpdateLead => "update_lead",
            Self::StatusLead => "status_lead",
            Self::DeleteLead => "delete_lead",
            Self::NoteLead => "note_lead",
            Self::AddContact => "add_contact",
            Self::UpdateContact => "update_contact",
            Self::DeleteContact => "delete_contact",
            Self::AddUnsorted => "add_unsorted",
            Self::DeleteUnsorted => "delete_unsorted",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// An account webhook. Its secret is shown once, when it is created.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountWebhook {
    pub id: u64,
    pub account_id: AccountId,
    pub destination: String,
    pub settings: Vec<WebhookSetting>,
    pub sort: i64,
    /// Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes).
    pub secret: String,
    pub created_at: Millis,
}

/// Without the secret and the destination (which may carry a token).
impl std::fmt::Debug for AccountWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountWebhook")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What an event record that is an account webhook's notice names: the webhook (its
/// destination and secret are read at each attempt) and the change's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub webhook_id: u64,
    pub setting: WebhookSetting,
}

/// A change of the account that webhooks are told of.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    LeadAdded(Lead),
    /// Renamed (or otherwise changed without a move).
    LeadUpdated(Lead),
    LeadStatusChanged {
        lead: Lead,
        from: Stage,
    },
    /// Erased (`DELETE /leads/{id}`, a subject's erasure, retention): the body carries
    /// its id and stage only.
    LeadDeleted(Lead),
    NoteAdded {
        lead: LeadId,
        note_id: u64,
        note_type: u8,
        text: String,
        at: Millis,
    },
    ContactAdded {
        contact: Contact,
        at: Millis,
    },
    ContactUpdated {
        contact: Contact,
        at: Millis,
    },
    ContactDeleted(ContactId),
    UnsortedAdded {
        uid: UnsortedUid,
        pipeline_id: PipelineId,
        lead: LeadId,
        source: String,
        at: Millis,
    },
    /// Accepted (`accept`) or declined (`decline`).
    UnsortedDeleted {
        uid: UnsortedUid,
        pipeline_id: PipelineId,
        lead: LeadId,
        action: &'static str,
    },
}

impl Change {
    /// What a form submission's new lead reports: the lead, its new contact and its
    /// Unsorted entry.
    pub fn submitted(s: &crate::store::NewSubmission) -> Vec<Self> {
        let contacts = s.lead.contacts.iter().map(|c| Self::ContactAdded {
            contact: c.clone(),
            at: s.at,
        });
        let mut changes = vec![Self::LeadAdded(s.lead.clone())];
        changes.extend(contacts);
        changes.push(Self::UnsortedAdded {
            uid: s.unsorted.uid.clone(),
            pipeline_id: s.unsorted.pipeline_id,
            lead: s.lead.id,
            source: s.unsorted.metadata.form_name.clone(),
            at: s.at,
        });
        changes
    }

    /// A note added to a lead's timeline.
    pub fn note(lead: LeadId, entry: &super::timeline::TimelineEntry) -> Option<Self> {
        match entry {
            super::timeline::TimelineEntry::Note {
                at,
                id,
                note_type,
                params,
            } => Some(Self::NoteAdded {
                lead,
                note_id: *id,
                note_type: *note_type,
                text: params["text"].as_str().unwrap_or_default().to_owned(),
                at: *at,
            }),
            _ => None,
        }
    }

    /// An Unsorted entry accepted or declined (`action`).
    pub fn unsorted_settled(entry: &super::lead::Unsorted, action: &'static str) -> Self {
        Self::UnsortedDeleted {
            uid: entry.uid.clone(),
            pipeline_id: entry.pipeline_id,
            lead: entry.lead_id,
            action,
        }
    }

    pub fn setting(&self) -> WebhookSetting {
        match self {
            Self::LeadAdded(_) => WebhookSetting::AddLead,
            Self::LeadUpdated(_) => WebhookSetting::UpdateLead,
            Self::LeadStatusChanged { .. } => WebhookSetting::StatusLead,
            Self::LeadDeleted(_) => WebhookSetting::DeleteLead,
            Self::NoteAdded { .. } => WebhookSetting::NoteLead,
            Self::ContactAdded { .. } => WebhookSetting::AddContact,
            Self::ContactUpdated { .. } => WebhookSetting::UpdateContact,
            Self::ContactDeleted(_) => WebhookSetting::DeleteContact,
            Self::UnsortedAdded { .. } => WebhookSetting::AddUnsorted,
            Self::UnsortedDeleted { .. } => WebhookSetting::DeleteUnsorted,
        }
    }

    /// The lead the change is about, if any.
    pub fn lead(&self) -> Option<LeadId> {
        match self {
            Self::LeadAdded(l) | Self::LeadUpdated(l) | Self::LeadDeleted(l) => Some(l.id),
            Self::LeadStatusChanged { lead, .. } => Some(lead.id),
            Self::NoteAdded { lead, .. }
            | Self::UnsortedAdded { lead, .. }
            | Self::UnsortedDeleted { lead, .. } => Some(*lead),
            Self::ContactAdded { .. } | Self::ContactUpdated { .. } | Self::ContactDeleted(_) => {
                None
            }
        }
    }

    /// The lead's stage, if the change has a lead at hand.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Self::LeadAdded(l) | Self::LeadUpdated(l) | Self::LeadDeleted(l) => Some(l.stage()),
            Self::LeadStatusChanged { lead, .. } => Some(lead.stage()),
            _ => None,
        }
    }

    /// The body's fields, in order, amoCRM's bracket names.
    fn fields(&self, account: AccountId) -> Vec<(String, String)> {
        let mut f = Fields::default();
        match self {
            Self::LeadAdded(l) => f.lead("leads[add][0]", l, account),
            Self::LeadUpdated(l) => f.lead("leads[update][0]", l, account),
            Self::LeadStatusChanged { lead, from } => {
                f.lead("leads[status][0]", lead, account);
                f.put("leads[status][0][old_status_id]", from.status_id);
                f.put("leads[status][0][old_pipeline_id]", from.pipeline_id);
            }
            Self::LeadDeleted(l) => {
                f.put("leads[delete][0][id]", l.id);
                f.put("leads[delete][0][status_id]", l.status_id);
                f.put("leads[delete][0][pipeline_id]", l.pipeline_id);
            }
            Self::NoteAdded {
                lead,
                note_id,
                note_type,
                text,
                at,
            } => {
                let p = "leads[note][0][note]";
                f.put(&format!("{p}[id]"), note_id);
                f.put(&format!("{p}[element_id]"), lead);
                f.put(&format!("{p}[element_type]"), 2);
                f.put(&format!("{p}[note_type]"), note_type);
                f.put(&format!("{p}[text]"), text);
                f.put(&format!("{p}[created_at]"), to_secs(*at));
                f.put(&format!("{p}[account_id]"), account);
            }
            Self::ContactAdded { contact, at } => f.contact("contacts[add][0]", contact, *at),
            Self::ContactUpdated { contact, at } => f.contact("contacts[update][0]", contact, *at),
            Self::ContactDeleted(id) => {
                f.put("contacts[delete][0][id]", id);
                f.put("contacts[delete][0][type]", "contact");
            }
            Self::UnsortedAdded {
                uid,
                pipeline_id,
                lead,
                source,
                at,
            } => {
                f.put("unsorted[add][0][uid]", uid);
                f.put("unsorted[add][0][category]", "forms");
                f.put("unsorted[add][0][source]", source);
                f.put("unsorted[add][0][pipeline_id]", pipeline_id);
                f.put("unsorted[add][0][lead_id]", lead);
                f.put("unsorted[add][0][created_at]", to_secs(*at));
            }
            Self::UnsortedDeleted {
                uid,
                pipeline_id,
                lead,
                action,
            } => {
                f.put("unsorted[delete][0][uid]", uid);
                f.put("unsorted[delete][0][category]", "forms");
                f.put("unsorted[delete][0][pipeline_id]", pipeline_id);
                f.put("unsorted[delete][0][lead_id]", lead);
                f.put("unsorted[delete][0][action]", action);
            }
        }
        f.0
    }

    /// The body amoCRM sends for this change: form-encoded, PHP bracket names.
    pub fn form_body(&self, account: AccountId, subdomain: &str, public_url: &str) -> String {
        let mut fields = self.fields(account);
        fields.push(("account[id]".into(), account.to_string()));
        fields.push(("account[subdomain]".into(), subdomain.to_owned()));
        fields.push((
            "account[_links][self]".into(),
            public_url.trim_end_matches('/').to_owned(),
        ));
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn put(&mut self, name: &str, value: impl std::fmt::Display) {
        self.0.push((name.to_owned(), value.to_string()));
    }

    fn lead(&mut self, p: &str, l: &Lead, account: AccountId) {
        self.put(&format!("{p}[id]"), l.id);
        self.put(&format!("{p}[name]"), &l.name);
        self.put(&format!("{p}[status_id]"), l.status_id);
        self.put(&format!("{p}[pipeline_id]"), l.pipeline_id);
        self.put(&format!("{p}[price]"), 0);
        self.put(&format!("{p}[created_at]"), to_secs(l.created_at));
        self.put(&format!("{p}[updated_at]"), to_secs(l.updated_at));
        self.put(&format!("{p}[account_id]"), account);
        if let Some(main) = l.main_contact() {
            self.put(&format!("{p}[main_contact_id]"), main.id);
        }
    }

    fn contact(&mut self, p: &str, c: &Contact, at: Millis) {
        self.put(&format!("{p}[id]"), c.id);
        self.put(&format!("{p}[name]"), &c.name);
        self.put(&format!("{p}[type]"), "contact");
        self.put(&format!("{p}[updated_at]"), to_secs(at));
        let mut n = 0;
        for (code, value) in [("PHONE", &c.phone), ("EMAIL", &c.email)] {
            if let Some(v) = value {
                let cf = format!("{p}[custom_fields][{n}]");
                self.put(&format!("{cf}[code]"), code);
                self.put(&format!("{cf}[values][0][value]"), v);
                self.put(&format!("{cf}[values][0][enum]"), "WORK");
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::StatusId;

    fn lead() -> Lead {
        Lead {
            id: LeadId(7),
            account_id: AccountId(1),
            name: "Order & co".into(),
            pipeline_id: PipelineId(1),
            status_id: StatusId(1003),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_001_000,
            contacts: Vec::new(),
        }
    }

    #[test]
    fn a_status_change_names_both_stages_in_brackets() {
        let change = Change::LeadStatusChanged {
            lead: lead(),
            from: Stage {
                pipeline_id: PipelineId(1),
                status_id: StatusId(1002),
            },
        };
        let body = change.form_body(AccountId(1), "shop", "https://ff.example/");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("leads[status][0][id]"), Some("7"));
        assert_eq!(get("leads[status][0][name]"), Some("Order & co"));
        assert_eq!(get("leads[status][0][status_id]"), Some("1003"));
        assert_eq!(get("leads[status][0][old_status_id]"), Some("1002"));
        assert_eq!(get("leads[status][0][old_pipeline_id]"), Some("1"));
        assert_eq!(get("account[subdomain]"), Some("shop"));
        assert_eq!(change.setting().code(), "status_lead");
    }

    fn pairs(change: &Change) -> Vec<(String, String)> {
        let body = change.form_body(AccountId(1), "shop", "https://ff.example");
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn a_deleted_lead_and_a_note_have_amocrms_keys() {
        let deleted = pairs(&Change::LeadDeleted(lead()));
        assert_eq!(
            deleted[..3],
            [
                ("leads[delete][0][id]".to_owned(), "7".to_owned()),
                ("leads[delete][0][status_id]".to_owned(), "1003".to_owned()),
                ("leads[delete][0][pipeline_id]".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(Change::LeadDeleted(lead()).setting().code(), "delete_lead");
        let note = pairs(&Change::NoteAdded {
            lead: LeadId(7),
            note_id: 3,
            note_type: 4,
            text: "Called back".into(),
            at: 1_700_000_000_000,
        });
        assert!(note.contains(&(
            "leads[note][0][note][element_id]".to_owned(),
            "7".to_owned()
        )));
        assert!(note.contains(&(
            "leads[note][0][note][text]".to_owned(),
            "Called back".to_owned()
        )));
        assert_eq!(
            note.last(),
            Some(&(
                "account[_links][self]".to_owned(),
                "https://ff.example".to_owned()
            ))
        );
    }

    #[test]
    fn settings_read_amocrms_codes() {
        for s in WebhookSetting::ALL {
            assert_eq!(WebhookSetting::parse(s.code()), Some(s));
        }
        assert_eq!(WebhookSetting::parse("add_company"), None);
    }
}
