//! Submissions a site's own backend sends through amoCRM's `POST /leads/unsorted/forms`,
//! with the `visitor_uid` t.js gave the page, and browsers linked to an existing lead by
//! `POST /leads/{id}/visitors`: the form's atomic step links each browser exactly as a
//! form does.

use std::collections::HashMap;

use super::submissions::Incoming;
use super::{Error, Result, Services};
use crate::domain::form::ContactDetails;
use crate::domain::ids::{AccountId, ContactId, FormId, LeadId, PipelineId, UnsortedUid};
use crate::domain::lead::UnsortedMetadata;
use crate::domain::pipeline::Stage;
use crate::domain::quota::OverQuota;
use crate::domain::source::current_visit_source;
use crate::domain::time::{now_ms, to_secs};
use crate::domain::tracking::{MAX_URL, cut_to_bytes};
use crate::domain::validation::FieldError;
use crate::domain::visitor::VisitorId;
use crate::store::{Charge, LinkOutcome};

/// A form submission a site's backend sends through the API (amoCRM's
/// `POST /leads/unsorted/forms`), its fields parsed at the edge.
pub struct ApiSubmission {
    pub pipeline_id: PipelineId,
    /// amoCRM's `source_uid` / `metadata.form_id` (a form of the site's own).
    pub form_id: FormId,
    pub form_name: String,
    pub form_page: String,
    pub ip: String,
    pub referer: String,
    pub form_sent_at: Option<i64>,
    /// The signed id t.js gave the page (`footfall('visitor_uid', …)`).
    pub visitor_uid: Option<String>,
    pub lead_name: Option<String>,
    /// `name`, `phone`, `email`.
    pub contact: HashMap<String, String>,
}

/// What became of one API submission.
pub struct ApiSubmitted {
    pub lead_id: LeadId,
    pub contact_id: Option<ContactId>,
    pub uid: Option<UnsortedUid>,
}

impl Services {
    /// The browser of a signed visitor id that footfall has seen in the account: a forged
    /// or unknown id is refused, naming `field`.
    pub async fn known_visitor(
        &self,
        account: AccountId,
        signed: &str,
        field: &str,
    ) -> Result<VisitorId> {
        let visitor = self.signer.verify(account, signed).ok_or_else(|| {
            Error::invalid(
                field,
                "is not a visitor id footfall gave a page (forged or damaged)",
            )
        })?;
        let state = self.store.visitor(account, visitor).await?;
        if state.visits == 0 && state.lead.is_none() {
            return Err(Error::invalid(
                field,
                "no browser with this id was seen on this account's sites",
            ));
        }
        Ok(visitor)
    }

    /// Links the browsers of signed visitor ids to an existing lead, each exactly as a form
    /// links it (`POST /leads/{id}/visitors`). Every id is checked first (errors name the
    /// item: `[1].visitor_uid`); then each link is one atomic step. Returns the lead's
    /// browsers.
    pub async fn link_visitors(
        &self,
        account: AccountId,
        lead: LeadId,
        signed: Vec<String>,
    ) -> Result<Vec<crate::domain::lead::VisitorLink>> {
        self.lead(account, lead).await?;
        let mut visitors = Vec::with_capacity(signed.len());
        let mut errors = Vec::new();
        for (i, s) in signed.iter().enumerate() {
            match self
                .known_visitor(account, s, &format!("[{i}].visitor_uid"))
                .await
            {
                Ok(v) => visitors.push(v),
                Err(Error::Invalid(es)) => errors.extend(es),
                Err(other) => return Err(other),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        // All or none: a request whose browsers would pass the bound links none of them
        // (a link made meanwhile by another request is still refused by the store).
        let most = self.settings.tracking.max_browsers_per_lead;
        let linked = self.store.lead_visitors(account, lead).await?;
        let current: Vec<VisitorId> = linked
            .iter()
            .filter(|l| l.until.is_none())
            .map(|l| l.visitor)
            .collect();
        let mut new: Vec<VisitorId> = Vec::new();
        for v in &visitors {
            if !current.contains(v) && !new.contains(v) {
                new.push(*v);
            }
        }
        if most > 0 && (current.len() + new.len()) as u64 > most {
            return Err(Self::lead_full(lead, most));
        }
        for visitor in visitors {
            let outcome = self
                .store
                .link_visitor_bounded(
                    account,
                    lead,
                    visitor,
                    now_ms(),
                    self.retention_secs(),
                    most,
                )
                .await?;
            let previous = match outcome {
                LinkOutcome::Linked { previous } => previous,
                LinkOutcome::NotFound => {
                    return Err(Error::NotFound(format!("lead {lead} does not exist")));
                }
                LinkOutcome::Full => return Err(Self::lead_full(lead, most)),
            };
            self.announce_link(account, lead, previous);
        }
        Ok(self.store.lead_visitors(account, lead).await?)
    }

    fn lead_full(lead: LeadId, most: u64) -> Error {
        Error::Conflict(format!(
            "lead {lead} would have more than {most} browsers (tracking.max_browsers_per_lead)"
        ))
    }

    /// amoCRM's `POST /leads/unsorted/forms`: each entry a contact, a lead in Unsorted
    /// and its entry, through the form submission's atomic step — the browser of
    /// `visitor_uid` linked to the lead as a form links it. Every entry is checked
    /// (pipelines, contacts, visitor ids) before any is stored; errors name the item.
    pub async fn submit_api_forms(
        &self,
        account: AccountId,
        entries: Vec<ApiSubmission>,
    ) -> Result<Vec<ApiSubmitted>> {
        let snapshot = self.snapshots.get(&*self.store, account, None).await?;
        let mut errors = Vec::new();
        let mut checked = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let mut item_errors = Vec::new();
            let unsorted = match snapshot.pipeline(e.pipeline_id) {
                None => {
                    item_errors.push(FieldError::new(
                        "pipeline_id",
                        format!("pipeline {} does not exist", e.pipeline_id),
                    ));
                    None
                }
                Some(p) => match p.unsorted() {
                    None => {
                        item_errors.push(FieldError::new(
                            "pipeline_id",
                            "the pipeline has no Unsorted stage",
                        ));
                        None
                    }
                    Some(s) => Some(s.id),
                },
            };
            let contact = ContactDetails::parse(&e.contact, &[])
                .map_err(|es| {
                    item_errors.extend(es.into_iter().map(|f| {
                        FieldError::new(format!("_embedded.contacts[0].{}", f.field), f.message)
                    }))
                })
                .ok();
            // No visitor id: a lead from the backend alone, linked to no browser.
            let mut browser = None;
            if let Some(signed) = &e.visitor_uid {
                match self
                    .known_visitor(account, signed, "metadata.visitor_uid")
                    .await
                {
                    Ok(v) => browser = Some(v),
                    Err(Error::Invalid(es)) => item_errors.extend(es),
                    Err(other) => return Err(other),
                }
            }
            match (unsorted, contact) {
                (Some(status), Some(contact)) if item_errors.is_empty() => {
                    checked.push((e, status, contact, browser));
                }
                _ => errors.extend(item_errors.into_iter().map(|f| f.of_item(i))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        // Unsorted is bounded as for the site's forms: a request that would overfill it
        // is refused before its first entry, and each entry leaves room for the rest.
        let most = self.settings.limits.max_unsorted_per_account;
        let count = checked.len() as u64;
        if most > 0 && count > most {
            return Err(Self::refused(OverQuota::UNSORTED_FULL));
        }
        let mut done = Vec::with_capacity(checked.len());
        for (i, (e, status, contact, browser)) in checked.into_iter().enumerate() {
            let bound = match most {
                0 => 0,
                most => most - (count - 1 - i as u64),
            };
            // The site's quotas do not apply to the account's own backend.
            let no_quotas = Charge {
                account,
                quotas: Vec::new(),
            };
            let reserved = self.reserve(browser, no_quotas, bound).await?;
            let contact_id = reserved.contact;
            let now = now_ms();
            // The campaign of the browser's latest visit, on whichever site it was.
            let default_idle = self.settings.tracking.visit_idle_seconds;
            let utm = reserved
                .recent
                .last()
                .and_then(|pv| {
                    let idle_ms = snapshot
                        .site(pv.site_id)
                        .map_or(default_idle as i64 * 1000, |s| {
                            s.visit_idle_ms(default_idle)
                        });
                    current_visit_source(&reserved.recent, pv.site_id, idle_ms)
                })
                .map(|s| s.utm)
                .filter(|u| !u.is_empty());
            let submission = self.new_submission(
                reserved,
                Incoming {
                    account,
                    name: e
                        .lead_name
                        .clone()
                        .unwrap_or_else(|| format!("{}: {}", e.form_name, contact.name)),
                    stage: Stage {
                        pipeline_id: e.pipeline_id,
                        status_id: status,
                    },
                    source: &["api", e.form_id.as_str()],
                    contact: &contact,
                    browser,
                    minted: false,
                    at: now,
                },
                UnsortedMetadata {
                    form_id: e.form_id.clone(),
                    form_name: e.form_name.clone(),
                    form_page: cut_to_bytes(&e.form_page, MAX_URL).to_owned(),
                    ip: self.settings.privacy.ip_mode.apply_text(&e.ip),
                    referer: cut_to_bytes(&e.referer, MAX_URL).to_owned(),
                    visitor_uid: browser.map(|v| v.encode()),
                    form_sent_at: e.form_sent_at.unwrap_or_else(|| to_secs(now)),
                    duplicate_of_lead_id: None,
                    utm,
                },
            );
            let stored = self.store_submission(&submission, &snapshot).await?;
            // A repeat folded into the lead it made answers that lead's contact, as the
            // first answer did (a lead erased meanwhile has none).
            let contact_id = if stored.new {
                Some(contact_id)
            } else {
                self.store
                    .get_leads(account, &[stored.lead_id])
                    .await?
                    .first()
                    .and_then(|lead| lead.main_contact())
                    .map(|c| c.id)
            };
            done.push(ApiSubmitted {
                lead_id: stored.lead_id,
                contact_id,
                uid: stored.uid,
            });
        }
        Ok(done)
    }
}
