//! Changing leads through the API (`PATCH /leads/{id}`, `PATCH /leads`): a new name and/or
//! a move. Every change of a request is checked — the name, the target stage, the lead's
//! existence — before any is written, so a refused request changes nothing. A lead still in
//! Unsorted that is moved is accepted (its entry settled), as the accept route would; moved
//! to Lost, it is declined, as the decline route would.

use super::{Error, Result, Services};
use crate::domain::account_webhook::Change;
use crate::domain::action::MoveKind;
use crate::domain::ids::{AccountId, LeadId, PipelineId, StatusId};
use crate::domain::lead::{Lead, Unsorted};
use crate::domain::pipeline::{LOST, Stage};
use crate::domain::time::now_ms;
use crate::domain::timeline::TimelineEntry;
use crate::domain::validation::{self, FieldError};

/// A change of a lead through the API: a new name and/or a move.
pub struct LeadChange {
    pub name: Option<String>,
    pub pipeline_id: Option<PipelineId>,
    pub status_id: Option<StatusId>,
}

/// A change that passed its checks: what is left is to write it.
struct Checked {
    lead: Lead,
    name: Option<String>,
    to: Option<Stage>,
    /// The lead's Unsorted entry and that stage, when the move takes it out of Unsorted.
    entry: Option<(Unsorted, Stage)>,
}

impl Services {
    /// Renames and/or moves a lead.
    pub async fn change_lead(
        &self,
        account: AccountId,
        id: LeadId,
        change: LeadChange,
    ) -> Result<Lead> {
        let lead = self.lead(account, id).await?;
        let checked = self.check_change(account, lead, change).await?;
        self.apply_change(account, checked).await
    }

    /// amoCRM's batch update: every lead must exist and every change pass its checks
    /// before any is written (errors name the item: `[1].status_id`); then each is
    /// applied in turn.
    pub async fn change_leads(
        &self,
        account: AccountId,
        changes: Vec<(LeadId, LeadChange)>,
    ) -> Result<Vec<Lead>> {
        let ids: Vec<LeadId> = changes.iter().map(|(id, _)| *id).collect();
        let mut found = self.store.get_leads(account, &ids).await?;
        let mut errors = Vec::new();
        let mut checked = Vec::with_capacity(changes.len());
        for (i, (id, change)) in changes.into_iter().enumerate() {
            let Some(at) = found.iter().position(|l| l.id == id) else {
                errors.push(FieldError::new(
                    format!("[{i}].id"),
                    format!("lead {id} does not exist"),
                ));
                continue;
            };
            // A lead named twice is changed twice, the second time as the first left it.
            let lead = found[at].clone();
            match self.check_change(account, lead, change).await {
                Ok(c) => {
                    if let Some(to) = c.to {
                        found[at].pipeline_id = to.pipeline_id;
                        found[at].status_id = to.status_id;
                    }
                    checked.push(c);
                }
                Err(Error::Invalid(es)) => errors.extend(es.into_iter().map(|f| f.of_item(i))),
                Err(other) => return Err(other),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut changed = Vec::with_capacity(checked.len());
        for c in checked {
            changed.push(self.apply_change(account, c).await?);
        }
        Ok(changed)
    }

    /// Checks a change against the lead and the catalog, writing nothing.
    async fn check_change(
        &self,
        account: AccountId,
        lead: Lead,
        change: LeadChange,
    ) -> Result<Checked> {
        if change.status_id.is_none() && change.pipeline_id.is_some() {
            return Err(Error::invalid(
                "status_id",
                "is required when pipeline_id is given",
            ));
        }
        let name = change
            .name
            .map(|n| validation::name("name", &n))
            .transpose()
            .map_err(Error::Invalid)?;
        let (to, entry) = match change.status_id {
            None => (None, None),
            Some(status) => {
                // The lead's pipeline: where it stands, and the target unless another is named.
                let current = self.pipeline(account, lead.pipeline_id).await?;
                let to = match change.pipeline_id.filter(|p| *p != current.id) {
                    Some(other) => {
                        // A pipeline the account does not have is this change's mistake,
                        // named with its item (a batch's other items are checked too).
                        let other = match self.pipeline(account, other).await {
                            Err(Error::NotFound(message)) => {
                                return Err(Error::invalid("pipeline_id", message));
                            }
                            found => found?,
                        };
                        Self::stage_in(&other, status, MoveKind::Moved)?
                    }
                    None => Self::stage_in(&current, status, MoveKind::Moved)?,
                };
                let entry = match Self::unsorted_stage(&current) {
                    Ok(stage) if stage.status_id == lead.status_id => self
                        .unsorted_entry_of(account, lead.id)
                        .await?
                        .map(|e| (e, stage)),
                    _ => None,
                };
                (Some(to), entry)
            }
        };
        Ok(Checked {
            lead,
            name,
            to,
            entry,
        })
    }

    async fn apply_change(&self, account: AccountId, checked: Checked) -> Result<Lead> {
        let Checked {
            mut lead,
            name,
            to,
            entry,
        } = checked;
        if let Some(name) = name {
            let now = now_ms();
            self.store.rename_lead(account, lead.id, &name, now).await?;
            lead.name = name;
            lead.updated_at = now;
            self.notify_account(account, Change::LeadUpdated(lead.clone()))
                .await?;
        }
        if let Some(to) = to {
            let moved = match entry {
                // Out of Unsorted into Lost is a decline; into any other stage, an accept.
                Some((entry, _))
                    if to
                        == (Stage {
                            pipeline_id: entry.pipeline_id,
                            status_id: LOST,
                        }) =>
                {
                    self.decline_entry(account, &entry).await?
                }
                Some((entry, expect)) => self.accept_entry(account, &entry, expect, to).await?,
                None => {
                    self.move_lead(
                        account,
                        lead.id,
                        Some(to.pipeline_id),
                        to.status_id,
                        MoveKind::Moved,
                        None,
                    )
                    .await?
                }
            };
            lead = Lead {
                name: lead.name,
                ..moved
            };
        }
        Ok(lead)
    }

    /// The Unsorted entry of a lead that stands in Unsorted: the one its creation names on
    /// its timeline.
    async fn unsorted_entry_of(
        &self,
        account: AccountId,
        lead: LeadId,
    ) -> Result<Option<Unsorted>> {
        let timeline = self.store.timeline(account, lead).await?;
        let Some(uid) = timeline.into_iter().find_map(|e| match e {
            TimelineEntry::LeadCreated { unsorted_uid, .. } => Some(unsorted_uid),
            _ => None,
        }) else {
            return Ok(None);
        };
        let entry = self.store.get_unsorted(account, &uid).await?;
        Ok(entry.filter(|e| e.lead_id == lead))
    }
}
