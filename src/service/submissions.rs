//! Form submissions: a contact, a lead in the pipeline's Unsorted stage and an Unsorted
//! entry, with the browser linked to the lead (bringing its earlier anonymous page views
//! into the lead's history); a double submission folds into the first. A submission
//! naming a known contact's email or phone makes its own lead and entry too (as amoCRM
//! does), marked `duplicate_of_lead_id`: the known lead never takes a browser from a
//! form, since anyone can type someone else's email.
//!
//! A site's own backend sends the same through the API (`api_submissions.rs`).
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
use crate::domain::account_webhook::Change;
use crate::domain::action::MoveKind;
use crate::domain::form::{ContactDetails, Form, HONEYPOT_FIELD};
use crate::domain::ids::{AccountId, FormId, LeadId, UnsortedUid};
use crate::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata};
use crate::domain::pipeline::{Pipeline, Stage, Status};
use crate::domain::privacy::Consent;
use crate::domain::quota::QuotaKind;
use crate::domain::site::{Site, parse_web_url};
use crate::domain::source::current_visit_source;
use crate::domain::time::{now_ms, to_secs};
use crate::domain::tracking::{MAX_URL, cut_to_bytes};
use crate::domain::visitor::VisitorId;
use crate::store::{Charge, Fingerprints, NewSubmission, Reserved, SubmissionOutcome};

/// How long an identical submission (`Fingerprints`) folds into the first.
const DUPLICATE_WINDOW_SECS: u64 = 600;

/// The fingerprints of a submission from `source` (`Fingerprints`): with its browser, or,
/// for a browser `minted` for it, without one and with it.
fn fingerprints(
    source: &[&str],
    browser: Option<VisitorId>,
    minted: bool,
    name: &str,
    keys: &[String],
) -> Fingerprints {
    let of = |browser| fingerprint(source, browser, name, keys);
    match browser.filter(|_| minted) {
        Some(minted) => Fingerprints {
            looked_up: of(None),
            minted_browser: Some(of(Some(minted))),
        },
        None => Fingerprints {
            looked_up: of(browser),
            minted_browser: None,
        },
    }
}

/// The fingerprint of a submission: the source, the browser, the contact's name and the
/// keys it is found by (`ContactDetails::keys`: an email in any case, a phone in any
/// format, as autofill writes them one time or another).
fn fingerprint(source: &[&str], browser: Option<VisitorId>, name: &str, keys: &[String]) -> String {
    let browser = browser.map(|v| v.encode()).unwrap_or_default();
    let parts = source
        .iter()
        .copied()
        .chain([browser.as_str(), name])
        .chain(keys.iter().map(String::as_str));
    let digest = Sha256::digest(parts.collect::<Vec<_>>().join("\u{1f}"));
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
    /// Whether the visitor consented, as t.js says (`nc`); none when the post did not
    /// come through t.js. Without consent the lead is recorded, but no browser is linked,
    /// minted or given a cookie.
    pub consent: Option<bool>,
    /// The browser asks not to be tracked (`DNT`, `Sec-GPC`).
    pub opted_out: bool,
    /// The client's address as quotas count it (`http::client::limit_key`).
    pub client: std::net::IpAddr,
}

pub enum SubmitOutcome {
    Created {
        lead_id: LeadId,
        /// The Unsorted entry; none when a double submission's entry was already accepted.
        uid: Option<UnsortedUid>,
        /// The signed id of the visitor now linked to the lead (for the cookie); none for a
        /// form sent without consent.
        visitor: Option<String>,
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

    /// Whether a page at `origin` may read the form's answers: the origin is one of the
    /// form's site's hosts (false for an unknown form or site, or no origin). Without
    /// `may_read_store` (a request refused before its form was looked up: a flood must
    /// not cost the store anything) only what this instance has cached counts.
    pub async fn form_allows_origin(
        &self,
        id: &FormId,
        origin: Option<&str>,
        may_read_store: bool,
    ) -> bool {
        let Some(origin) = origin else { return false };
        let form = if may_read_store {
            match self.form_for_submission(id).await {
                Ok(form) => form,
                Err(_) => return false,
            }
        } else {
            match self.forms.cached(id.as_str()) {
                Some(form) => form,
                None => return false,
            }
        };
        let snapshot = match self.snapshots.cached(form.account_id) {
            Some(s) => s,
            None if may_read_store => match self
                .snapshots
                .get(&*self.store, form.account_id, None)
                .await
            {
                Ok(s) => s,
                Err(_) => return false,
            },
            None => return false,
        };
        Self::form_targets(&form, &snapshot)
            .is_ok_and(|(site, _, _)| Self::check_origin(site, Some(origin)).is_ok())
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
        // Without consent the submission has no browser: none is linked, kept, stored in
        // the entry nor answered. Consent is the page's to give, and t.js says whether it
        // was; a site that asks for consent takes a post t.js did not send (scripts off,
        // t.js not loaded yet) as sent without it, and so does a site that honours the
        // browser's opt-out.
        let consented = |site: &Site| {
            s.consent.unwrap_or(site.consent != Consent::Required)
                && !(site.respect_opt_out && s.opted_out)
        };
        let visitor = consented(site).then(|| self.visitor_of(account, s.vid, s.cookie_vid));
        let mut browser = visitor.map(|(v, _)| v);
        // A browser minted for this post is new at each post (`Fingerprints`).
        let minted = visitor.is_some_and(|(_, minted)| minted);
        let charge = self.charge(QuotaKind::FormPosts, account, form.site_id, s.client);
        let most = self.settings.limits.max_unsorted_per_account;
        let reserved = self.reserve(browser, charge, most).await?;
        let version = reserved.catalog_version;
        if version != snapshot.version {
            snapshot = self
                .snapshots
                .get(&*self.store, account, Some(version))
                .await?;
        }
        let (site, pipeline, unsorted) = Self::form_targets(form, &snapshot)?;
        Self::check_origin(site, s.origin)?;
        if !consented(site) {
            browser = None;
        }
        // Capped where stored, as a page view's URL is: normalised (percent-encoding can
        // triple it), as it is stored.
        let page = match parse_web_url(s.page).filter(|p| p.as_str().len() <= MAX_URL) {
            Some(p) if site.allows_host(p.host_str().unwrap_or_default()) => p.to_string(),
            _ => String::new(),
        };
        let now = now_ms();
        let idle_ms = site.visit_idle_ms(self.settings.tracking.visit_idle_seconds);
        let utm = current_visit_source(&reserved.recent, site.id, idle_ms)
            .map(|s| s.utm)
            .filter(|u| !u.is_empty() && browser.is_some());
        let submission = self.new_submission(
            reserved,
            Incoming {
                account,
                name: format!("{}: {}", form.name, contact.name),
                stage: Stage {
                    pipeline_id: pipeline.id,
                    status_id: unsorted.id,
                },
                source: &[form.id.as_str()],
                contact: &contact,
                browser,
                minted,
                at: now,
            },
            UnsortedMetadata {
                form_id: form.id.clone(),
                form_name: form.name.clone(),
                form_page: page,
                ip: self.settings.privacy.ip_mode.apply_text(s.ip),
                referer: cut_to_bytes(s.referer, MAX_URL).to_owned(),
                visitor_uid: browser.map(|v| v.encode()),
                form_sent_at: to_secs(now),
                duplicate_of_lead_id: None,
                utm,
            },
        );
        let Stored { lead_id, uid, new } = self.store_submission(&submission, &snapshot).await?;
        // A repeat folded into the lead it made already is not a submission of its own.
        if new {
            self.count_submission(site.id, now).await;
        }
        // A repeat that folded links nothing: a browser minted for it is handed out to no
        // one (the first post's answer gave its own).
        let handed_out = browser.filter(|_| new || !minted);
        Ok(SubmitOutcome::Created {
            lead_id,
            uid,
            visitor: handed_out.map(|v| self.signer.sign(account, v)),
            success_url: form.success_url.clone(),
        })
    }

    /// A submission's reservation (for its `browser`, if it has one), if `charge`'s quotas admit it and the
    /// account's Unsorted holds fewer than `most` entries (0: no bound); else 429.
    pub(super) async fn reserve(
        &self,
        browser: Option<VisitorId>,
        charge: Charge,
        most: u64,
    ) -> Result<Reserved> {
        let account = charge.account;
        let retention = self.retention_secs();
        self.charged(charge, |charge| {
            self.store
                .reserve_submission_charged(account, browser, retention, charge, most)
        })
        .await
    }

    /// The atomic step of a submission, then what it announces and fires. A known
    /// contact's submission is a lead of its own, answered the same way: the answer tells
    /// nothing about who is known.
    pub(super) async fn store_submission(
        &self,
        submission: &NewSubmission,
        snapshot: &Snapshot,
    ) -> Result<Stored> {
        let account = submission.account;
        let (stored, outcome) = match self.store.create_lead_from_submission(submission).await? {
            SubmissionOutcome::Duplicate { lead, uid } => {
                let stored = Stored {
                    lead_id: lead,
                    uid,
                    new: false,
                };
                (stored, "duplicate")
            }
            SubmissionOutcome::Created {
                previous_lead,
                duplicate_of,
            } => {
                self.announce_link(account, submission.lead.id, previous_lead);
                self.fire_on_move(&submission.lead, MoveKind::Created, None, Some(snapshot))
                    .await?;
                for change in Change::submitted(submission) {
                    self.notify_with(account, snapshot, change).await?;
                }
                let outcome = if duplicate_of.is_some() {
                    "possible_duplicate"
                } else {
                    "created"
                };
                let stored = Stored {
                    lead_id: submission.lead.id,
                    uid: Some(submission.unsorted.uid.clone()),
                    new: true,
                };
                (stored, outcome)
            }
        };
        metrics::counter!("footfall_form_submissions_total", "outcome" => outcome).increment(1);
        Ok(stored)
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
    pub(super) fn announce_link(
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
pub(super) struct Stored {
    pub(super) lead_id: LeadId,
    pub(super) uid: Option<UnsortedUid>,
    /// A new lead; false for a repeat folded into the lead it made already.
    pub(super) new: bool,
}

/// What every submission brings, from a form or from the API.
pub(super) struct Incoming<'a> {
    pub(super) account: AccountId,
    /// The new lead's name.
    pub(super) name: String,
    /// The pipeline's Unsorted stage.
    pub(super) stage: Stage,
    /// What the submission came through (`fingerprint`): the form, or the API's form.
    pub(super) source: &'a [&'a str],
    pub(super) contact: &'a ContactDetails,
    /// The submitting browser, linked to the lead; none without consent, or from the API
    /// without a visitor id.
    pub(super) browser: Option<VisitorId>,
    /// Whether the browser was minted for this post (`Fingerprints`).
    pub(super) minted: bool,
    pub(super) at: crate::domain::time::Millis,
}

impl Services {
    /// The lead (in Unsorted, its contact main) and Unsorted entry a submission makes,
    /// with the ids reserved for it.
    pub(super) fn new_submission(
        &self,
        reserved: Reserved,
        i: Incoming<'_>,
        metadata: UnsortedMetadata,
    ) -> NewSubmission {
        let (lead_id, contact_id) = (reserved.lead, reserved.contact);
        let c = i.contact;
        let contact_keys = c.keys();
        NewSubmission {
            account: i.account,
            fingerprints: fingerprints(i.source, i.browser, i.minted, &c.name, &contact_keys),
            duplicate_window_secs: DUPLICATE_WINDOW_SECS,
            contact_keys,
            unsorted: Unsorted {
                uid: UnsortedUid::generate(),
                account_id: i.account,
                category: "forms".into(),
                pipeline_id: i.stage.pipeline_id,
                created_at: i.at,
                metadata,
                lead_id,
                contact_id,
            },
            lead: Lead {
                id: lead_id,
                account_id: i.account,
                name: i.name,
                pipeline_id: i.stage.pipeline_id,
                status_id: i.stage.status_id,
                created_at: i.at,
                updated_at: i.at,
                contacts: vec![Contact {
                    id: contact_id,
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    email: c.email.clone(),
                    is_main: true,
                }],
            },
            browser: i.browser,
            at: i.at,
            link_retention_secs: self.retention_secs(),
        }
    }
}
