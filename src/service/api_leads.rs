//! Leads a site's own backend or an integration adds through the API, as amoCRM's
//! `POST /leads` and `POST /leads/complex`: straight into a stage (the pipeline's first
//! working stage unless one is named), with contacts by id or new ones, and — with the
//! `visitor_uid` t.js gave the page — the browser linked exactly as a form links it: its
//! earlier anonymous page views join the lead's history, its later visits fire the
//! stage's site-visit actions. Everything is checked (pipelines, stages, contacts, visitor
//! ids) before anything is stored; each lead is then one atomic step
//! (`LeadWrites::create_lead`) and fires the stage's `lead_added` actions as a form's lead.

use std::collections::HashMap;

use super::catalog_cache::Snapshot;
use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::action::MoveKind;
use crate::domain::form::ContactDetails;
use crate::domain::ids::{AccountId, ContactId, LeadId, PipelineId, StatusId};
use crate::domain::lead::{Contact, Lead};
use crate::domain::pipeline::{Stage, StatusType};
use crate::domain::time::now_ms;
use crate::domain::validation::FieldError;
use crate::domain::visitor::VisitorId;
use crate::store::{NewLead, Sequence};

/// A contact of a new lead: one the account has, or a new one (`name`, `phone`, `email`).
pub enum LeadContact {
    Existing(ContactId),
    New(HashMap<String, String>),
}

/// A lead to add, parsed at the edge.
pub struct ApiLead {
    pub name: Option<String>,
    pub pipeline_id: Option<PipelineId>,
    pub status_id: Option<StatusId>,
    pub contacts: Vec<LeadContact>,
    /// The signed id t.js gave the page (`footfall('visitor_uid', …)`).
    pub visitor_uid: Option<String>,
}

/// A lead added: its id and its contacts' ids, in the order sent.
pub struct ApiLeadAdded {
    pub lead_id: LeadId,
    pub contact_ids: Vec<ContactId>,
}

/// A lead checked against the catalog, the contacts and the browsers.
struct Checked {
    name: Option<String>,
    stage: Stage,
    contacts: Vec<CheckedContact>,
    visitor: Option<VisitorId>,
}

enum CheckedContact {
    Existing(Contact),
    New(ContactDetails),
}

impl Services {
    /// Adds leads (amoCRM's `POST /leads`); errors name the item (`[1].status_id`) and
    /// nothing is stored unless every item is valid.
    pub async fn add_leads(
        &self,
        account: AccountId,
        leads: Vec<ApiLead>,
    ) -> Result<Vec<ApiLeadAdded>> {
        let snapshot = self.snapshots.get(&*self.store, account, None).await?;
        let mut errors = Vec::new();
        let mut checked = Vec::with_capacity(leads.len());
        for (i, lead) in leads.into_iter().enumerate() {
            match self.check_api_lead(account, &snapshot, lead).await {
                Ok(c) => checked.push(c),
                Err(Error::Invalid(es)) => errors.extend(es.into_iter().map(|f| f.of_item(i))),
                Err(other) => return Err(other),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut added = Vec::with_capacity(checked.len());
        for c in checked {
            added.push(self.create_api_lead(account, &snapshot, c).await?);
        }
        Ok(added)
    }

    /// One lead's stage, contacts and browser, each error naming its field.
    async fn check_api_lead(
        &self,
        account: AccountId,
        snapshot: &Snapshot,
        lead: ApiLead,
    ) -> Result<Checked> {
        let mut errors = Vec::new();
        let stage = stage_for(snapshot, lead.pipeline_id, lead.status_id)
            .map_err(|e| errors.push(e))
            .ok();
        let known = if lead
            .contacts
            .iter()
            .any(|c| matches!(c, LeadContact::Existing(_)))
        {
            self.contacts(account).await?
        } else {
            Vec::new()
        };
        let mut contacts = Vec::with_capacity(lead.contacts.len());
        for (j, c) in lead.contacts.into_iter().enumerate() {
            match c {
                LeadContact::Existing(id) => match known.iter().find(|r| r.contact.id == id) {
                    Some(r) => contacts.push(CheckedContact::Existing(r.contact.clone())),
                    None => errors.push(FieldError::new(
                        format!("_embedded.contacts[{j}].id"),
                        format!("contact {id} does not exist"),
                    )),
                },
                LeadContact::New(fields) => match ContactDetails::parse(&fields, &[]) {
                    Ok(d) => contacts.push(CheckedContact::New(d)),
                    Err(es) => errors.extend(es.into_iter().map(|f| {
                        FieldError::new(format!("_embedded.contacts[{j}].{}", f.field), f.message)
                    })),
                },
            }
        }
        let visitor = match &lead.visitor_uid {
            None => None,
            Some(signed) => match self.known_visitor(account, signed, "visitor_uid").await {
                Ok(v) => Some(v),
                Err(Error::Invalid(es)) => {
                    errors.extend(es);
                    None
                }
                Err(other) => return Err(other),
            },
        };
        match stage {
            Some(stage) if errors.is_empty() => Ok(Checked {
                name: lead.name,
                stage,
                contacts,
                visitor,
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }

    /// The atomic step of one checked lead, then what it announces and fires.
    async fn create_api_lead(
        &self,
        account: AccountId,
        snapshot: &Snapshot,
        c: Checked,
    ) -> Result<ApiLeadAdded> {
        let new_contacts = c
            .contacts
            .iter()
            .filter(|c| matches!(c, CheckedContact::New(_)))
            .count();
        // A browser's history is kept for the link's retention before the link exists.
        let (lead_id, mut fresh) = match c.visitor {
            Some(visitor) => {
                let r = self
                    .store
                    .reserve_submission(account, Some(visitor), self.retention_secs())
                    .await?;
                (r.lead, vec![r.contact])
            }
            None => {
                let (ids, _) = self.store.next_ids(account, &[Sequence::Lead]).await?;
                let id = ids.first().copied().unwrap_or_default();
                (LeadId(Sequence::Lead.base() + id), Vec::new())
            }
        };
        if new_contacts > fresh.len() {
            let seqs = vec![Sequence::Contact; new_contacts - fresh.len()];
            let (ids, _) = self.store.next_ids(account, &seqs).await?;
            fresh.extend(
                ids.into_iter()
                    .map(|id| ContactId(Sequence::Contact.base() + id)),
            );
        }
        let fresh_ids = fresh.clone();
        let mut fresh = fresh.into_iter();
        let mut contact_keys = Vec::new();
        let mut contacts = Vec::with_capacity(c.contacts.len());
        for (j, contact) in c.contacts.into_iter().enumerate() {
            let mut contact = match contact {
                CheckedContact::Existing(known) => known,
                CheckedContact::New(details) => Contact {
                    id: fresh.next().ok_or_else(|| {
                        Error::Store(crate::store::corrupt("too few contact ids"))
                    })?,
                    name: details.name,
                    phone: details.phone,
                    email: details.email,
                    is_main: false,
                },
            };
            contact.is_main = j == 0;
            // Every contact of the lead is found by its email and phone at its newest lead,
            // as a form's contact is.
            contact_keys.extend(
                ContactDetails {
                    name: contact.name.clone(),
                    phone: contact.phone.clone(),
                    email: contact.email.clone(),
                }
                .keys(),
            );
            contacts.push(contact);
        }
        let now = now_ms();
        let lead = Lead {
            id: lead_id,
            account_id: account,
            name: c.name.unwrap_or_else(|| format!("Lead #{lead_id}")),
            pipeline_id: c.stage.pipeline_id,
            status_id: c.stage.status_id,
            created_at: now,
            updated_at: now,
            contacts,
        };
        let created = self
            .store
            .create_lead(&NewLead {
                lead: lead.clone(),
                contact_keys,
                visitor: c.visitor,
                at: now,
                link_retention_secs: self.retention_secs(),
            })
            .await?;
        self.announce_link(account, lead.id, created.previous_lead);
        self.fire_on_move(&lead, MoveKind::Created, None, Some(snapshot))
            .await?;
        for contact in lead.contacts.iter().filter(|c| fresh_ids.contains(&c.id)) {
            let added = Change::ContactAdded {
                contact: contact.clone(),
                at: now,
            };
            self.notify_with(account, snapshot, added).await?;
        }
        self.notify_with(account, snapshot, Change::LeadAdded(lead.clone()))
            .await?;
        Ok(ApiLeadAdded {
            lead_id,
            contact_ids: lead.contacts.iter().map(|c| c.id).collect(),
        })
    }
}

/// The stage a new lead goes to: `status_id` of `pipeline_id`, of the pipeline that has
/// it, or the first working stage of the pipeline (the account's first when none is
/// named). Unsorted is for incoming leads (`/leads/unsorted/forms`).
fn stage_for(
    snapshot: &Snapshot,
    pipeline_id: Option<PipelineId>,
    status_id: Option<StatusId>,
) -> Result<Stage, FieldError> {
    let pipeline = match (pipeline_id, status_id) {
        (Some(p), _) => snapshot.pipeline(p).ok_or_else(|| {
            FieldError::new("pipeline_id", format!("pipeline {p} does not exist"))
        })?,
        (None, Some(s)) => snapshot
            .pipelines
            .iter()
            .find(|p| p.status(s).is_some())
            .ok_or_else(|| FieldError::new("status_id", format!("no pipeline has status {s}")))?,
        (None, None) => snapshot
            .pipelines
            .first()
            .ok_or_else(|| FieldError::new("pipeline_id", "the account has no pipeline"))?,
    };
    let status = match status_id {
        Some(s) => pipeline.status(s).ok_or_else(|| {
            FieldError::new(
                "status_id",
                format!("pipeline {} has no status {s}", pipeline.id),
            )
        })?,
        None => pipeline
            .first_working_stage()
            .and_then(|s| pipeline.status(s))
            .ok_or_else(|| FieldError::new("status_id", "the pipeline has no working stage"))?,
    };
    if status.status_type == StatusType::Unsorted {
        return Err(FieldError::new(
            "status_id",
            "a lead is added to Unsorted through /leads/unsorted/forms",
        ));
    }
    Ok(Stage {
        pipeline_id: pipeline.id,
        status_id: status.id,
    })
}
