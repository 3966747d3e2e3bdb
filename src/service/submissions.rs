//! Form submissions: a contact, a lead in the pipeline's Unsorted stage and an Unsorted
//! entry, with the browser linked to the lead (bringing its earlier anonymous page views
//! into the lead's history); a double submission folds into the first. A submission
//! naming a known contact's email or phone makes its own lead and entry too (as amoCRM
//! does), marked `duplicate_of_lead_id`: the known lead never takes a browser from a
//! form, since anyone can type someone else's email.
//!
//! A site's own backend sends the same through amoCRM's `POST /leads/unsorted/forms`
//! (`submit_api_forms`), with the `visitor_uid` t.js gave the page: the same atomic step
//! links that browser exactly as a form does.
//!
//! At most three store round trips when the form is cached: the new ids with the
//! catalog's version, one atomic step (`Leads::create_lead_from_submission`) that records it
//! all or nothing — a client that got an error may send it again safely — and, when the
//! Unsorted stage has a `lead_added` action, its events. Ids are taken before the step
//! knows whether the submission is a duplicate or a known contact's, so lead ids may skip.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::catalog_cache::Snapshot;
use super::live::LiveKind;
use super::{Error, Result, Services};
use crate::domain::action::MoveKind;
use crate::domain::form::{ContactDetails, Form, HONEYPOT_FIELD};
use crate::domain::ids::{AccountId, ContactId, FormId, LeadId, PipelineId, UnsortedUid};
use crate::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata};
use crate::domain::pipeline::{Pipeline, Status};
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{now_ms, to_secs};
use crate::domain::tracking::MAX_URL;
use crate::domain::validation::FieldError;
use crate::domain::visitor::VisitorId;
use crate::store::{NewSubmission, SubmissionOutcome};

/// How long an identical submission of the same browser folds into the first.
const DUPLICATE_WINDOW_SECS: u64 = 600;

/// The fingerprint of a submission: the form, the browser and the contact as sent.
fn fingerprint(form: &Form, visitor: VisitorId, contact: &ContactDetails) -> String {
    let digest = Sha256::digest(
        [
            form.id.as_str(),
            &visitor.encode(),
            &contact.name,
            contact.phone.as_deref().unwrap_or(""),
            contact.email.as_deref().unwrap_or(""),
        ]
        .join("\u{1f}"),
    );
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of an API submission: the site's form, the browser and the contact.
fn api_fingerprint(form: &FormId, visitor: VisitorId, contact: &ContactDetails) -> String {
    let digest = Sha256::digest(
        [
            "api",
            form.as_str(),
            &visitor.encode(),
            &contact.name,
            contact.phone.as_deref().unwrap_or(""),
            contact.email.as_deref().unwrap_or(""),
        ]
        .join("\u{1f}"),
    );
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A form submission.
pub struct Submission<'a> {
    pub fields: HashMap<String, String>,
    pub vid: Option<&'a str>,
    pub cookie_vid: Option<&'a str>,
    /// The page the form was on.
    pub page: &'a str,
    pub referer: &'a str,
    pub ip: &'a str,
    pub origin: Option<&'a str>,
}

pub enum SubmitOutcome {
    Created {
        lead_id: LeadId,
        /// The Unsorted entry; none when a double submission's entry was already accepted.
        uid: Option<UnsortedUid>,
        /// The signed id of the visitor now linked to the lead (for the cookie).
        visitor: String,
        success_url: Option<String>,
    },
    /// A bot filled the honeypot: answered as a success, nothing stored.
    Discarded { success_url: Option<String> },
}

impl Services {
    pub async fn form_for_submission(&self, id: &FormId) -> Result<Arc<Form>> {
        self.forms
            .by_id(&*self.store, id)
            .await?
            .ok_or_else(|| Error::NotFound("no form has this id".into()))
    }

    pub async fn submit_form(&self, form: &Form, s: Submission<'_>) -> Result<SubmitOutcome> {
        let account = form.account_id;
        // Checked against this instance's snapshot of the catalog, then again when the
        // version read with the new ids says the catalog changed since.
        // A snapshot older than the form may not know its site or pipeline yet: then the
        // current one is read.
        let mut snapshot = match self.snapshots.cached(account) {
            Some(s) if Self::form_targets(form, &s).is_ok() => s,
            _ => self.snapshots.get(&*self.store, account, None).await?,
        };
        let (site, _, _) = Self::form_targets(form, &snapshot)?;
        Self::check_origin(site, s.origin)?;
        if s.fields.get(HONEYPOT_FIELD).is_some_and(|v| !v.is_empty()) {
            metrics::counter!("footfall_form_submissions_total", "outcome" => "honeypot")
                .increment(1);
            return Ok(SubmitOutcome::Discarded {
                success_url: form.success_url.clone(),
            });
        }
        let contact = form.parse_contact(&s.fields).map_err(Error::Invalid)?;
        let (visitor, _) = self.visitor_of(account, s.vid, s.cookie_vid);
        let reserved = self
            .store
            .reserve_submission(account, visitor, self.retention_secs())
            .await?;
        let version = reserved.catalog_version;
        if version != snapshot.version {
            snapshot = self
                .snapshots
                .get(&*self.store, account, Some(version))
                .await?;
        }
        let (site, pipeline, unsorted) = Self::form_targets(form, &snapshot)?;
        Self::check_origin(site, s.origin)?;
        let (lead_id, contact_id) = (reserved.lead, reserved.contact);
        // Capped where stored, as a page view's URL is.
        let page = match parse_web_url(s.page).filter(|_| s.page.len() <= MAX_URL) {
            Some(p) if site.allows_host(p.host_str().unwrap_or_default()) => p.to_string(),
            _ => String::new(),
        };
        let now = now_ms();
        let uid = UnsortedUid::generate();
        let lead = Lead {
            id: lead_id,
            account_id: account,
            name: format!("{}: {}", form.name, contact.name),
            pipeline_id: pipeline.id,
            status_id: unsorted.id,
            created_at: now,
            updated_at: now,
            contacts: vec![Contact {
                id: contact_id,
                name: contact.name.clone(),
                phone: contact.phone.clone(),
                email: contact.email.clone(),
                is_main: true,
            }],
        };
        let submission = NewSubmission {
            account,
            fingerprint: fingerprint(form, visitor, &contact),
            duplicate_window_secs: DUPLICATE_WINDOW_SECS,
            contact_keys: contact.keys(),
            unsorted: Unsorted {
                uid: uid.clone(),
                account_id: account,
                category: "forms".into(),
                pipeline_id: pipeline.id,
                created_at: now,
                metadata: UnsortedMetadata {
                    form_id: form.id.clone(),
                    form_name: form.name.clone(),
                    form_page: page,
                    ip: s.ip.to_owned(),
                    referer: s.referer.chars().take(MAX_URL).collect(),
                    visitor_uid: Some(visitor.encode()),
                    form_sent_at: to_secs(now),
                    duplicate_of_lead_id: None,
                },
                lead_id,
                contact_id,
            },
            lead,
            visitor,
            at: now,
            link_retention_secs: self.retention_secs(),
        };
        let Stored { lead_id, uid } = self.store_submission(&submission, &snapshot).await?;
        Ok(SubmitOutcome::Created {
            lead_id,
            uid,
            visitor: self.signer.sign(account, visitor),
            success_url: form.success_url.clone(),
        })
    }

    /// The atomic step of a submission, then what it announces and fires. A known
    /// contact's submission is a lead of its own, answered the same way: the answer tells
    /// nothing about who is known.
    async fn store_submission(
        &self,
        submission: &NewSubmission,
        snapshot: &Snapshot,
    ) -> Result<Stored> {
        let account = submission.account;
        let (lead_id, uid, outcome) =
            match self.store.create_lead_from_submission(submission).await? {
                SubmissionOutcome::Duplicate { lead, uid } => (lead, uid, "duplicate"),
                SubmissionOutcome::Created {
                    previous_lead,
                    duplicate_of,
                } => {
                    self.announce_link(account, submission.lead.id, previous_lead);
                    self.fire_on_move(&submission.lead, MoveKind::Created, None, Some(snapshot))
                        .await?;
                    let outcome = if duplicate_of.is_some() {
                        "possible_duplicate"
                    } else {
                        "created"
                    };
                    (
                        submission.lead.id,
                        Some(submission.unsorted.uid.clone()),
                        outcome,
                    )
                }
            };
        metrics::counter!("footfall_form_submissions_total", "outcome" => outcome).increment(1);
        Ok(Stored { lead_id, uid })
    }

    /// The form's site, pipeline and the pipeline's Unsorted stage, as the snapshot has them.
    fn form_targets<'a>(
        form: &Form,
        snapshot: &'a Snapshot,
    ) -> Result<(&'a Site, &'a Pipeline, &'a Status)> {
        let site = snapshot
            .site(form.site_id)
            .ok_or_else(|| Error::NotFound("the form's site no longer exists".into()))?;
        let pipeline = snapshot
            .pipeline(form.pipeline_id)
            .ok_or_else(|| Error::NotFound("the form's pipeline no longer exists".into()))?;
        let unsorted = pipeline
            .unsorted()
            .ok_or_else(|| Error::Conflict("the form's pipeline has no Unsorted stage".into()))?;
        Ok((site, pipeline, unsorted))
    }

    /// Tells the consoles of a lead that took a submission, and of the lead the browser
    /// left.
    fn announce_link(
        &self,
        account: crate::domain::ids::AccountId,
        lead: LeadId,
        previous: Option<LeadId>,
    ) {
        if let Some(previous) = previous {
            self.live.publish(account, previous, LiveKind::VisitorMoved);
        }
        self.live.publish(account, lead, LiveKind::Created);
    }
}

/// What the atomic step of a submission stored: the lead, and its Unsorted entry.
struct Stored {
    lead_id: LeadId,
    uid: Option<UnsortedUid>,
}

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
        for visitor in visitors {
            let previous = self
                .store
                .link_visitor(account, lead, visitor, now_ms(), self.retention_secs())
                .await?
                .ok_or_else(|| Error::NotFound(format!("lead {lead} does not exist")))?;
            self.announce_link(account, lead, previous);
        }
        Ok(self.store.lead_visitors(account, lead).await?)
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
            let visitor = match &e.visitor_uid {
                None => Some(VisitorId::mint()),
                Some(signed) => {
                    match self
                        .known_visitor(account, signed, "metadata.visitor_uid")
                        .await
                    {
                        Ok(v) => Some(v),
                        Err(Error::Invalid(es)) => {
                            item_errors.extend(es);
                            None
                        }
                        Err(other) => return Err(other),
                    }
                }
            };
            match (unsorted, contact, visitor) {
                (Some(status), Some(contact), Some(visitor)) if item_errors.is_empty() => {
                    checked.push((e, status, contact, visitor));
                }
                _ => errors.extend(
                    item_errors
                        .into_iter()
                        .map(|f| FieldError::new(format!("[{i}].{}", f.field), f.message)),
                ),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut done = Vec::with_capacity(checked.len());
        for (e, status, contact, visitor) in checked {
            let reserved = self
                .store
                .reserve_submission(account, visitor, self.retention_secs())
                .await?;
            let (lead_id, contact_id) = (reserved.lead, reserved.contact);
            let now = now_ms();
            let uid = UnsortedUid::generate();
            let lead = Lead {
                id: lead_id,
                account_id: account,
                name: e
                    .lead_name
                    .clone()
                    .unwrap_or_else(|| format!("{}: {}", e.form_name, contact.name)),
                pipeline_id: e.pipeline_id,
                status_id: status,
                created_at: now,
                updated_at: now,
                contacts: vec![Contact {
                    id: contact_id,
                    name: contact.name.clone(),
                    phone: contact.phone.clone(),
                    email: contact.email.clone(),
                    is_main: true,
                }],
            };
            let submission = NewSubmission {
                account,
                fingerprint: api_fingerprint(&e.form_id, visitor, &contact),
                duplicate_window_secs: DUPLICATE_WINDOW_SECS,
                contact_keys: contact.keys(),
                unsorted: Unsorted {
                    uid: uid.clone(),
                    account_id: account,
                    category: "forms".into(),
                    pipeline_id: e.pipeline_id,
                    created_at: now,
                    metadata: UnsortedMetadata {
                        form_id: e.form_id.clone(),
                        form_name: e.form_name.clone(),
                        form_page: e.form_page.chars().take(MAX_URL).collect(),
                        ip: e.ip.clone(),
                        referer: e.referer.chars().take(MAX_URL).collect(),
                        visitor_uid: Some(visitor.encode()),
                        form_sent_at: e.form_sent_at.unwrap_or_else(|| to_secs(now)),
                        duplicate_of_lead_id: None,
                    },
                    lead_id,
                    contact_id,
                },
                lead,
                visitor,
                at: now,
                link_retention_secs: self.retention_secs(),
            };
            let stored = self.store_submission(&submission, &snapshot).await?;
            done.push(ApiSubmitted {
                lead_id: stored.lead_id,
                contact_id: (stored.lead_id == lead_id).then_some(contact_id),
                uid: stored.uid,
            });
        }
        Ok(done)
    }
}
