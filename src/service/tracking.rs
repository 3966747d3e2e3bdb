//! Page views and form submissions: the public side of footfall.
//!
//! A page view inside a running visit costs one store round trip (`record_page_view`).
//! Only the first page view of a visit does more: it numbers the visit and, when the
//! visitor belongs to a lead, lets the triggers look for site-visit actions.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Error, Result, Services};
use crate::domain::action::MoveKind;
use crate::domain::form::{ContactDetails, Form, HONEYPOT_FIELD};
use crate::domain::ids::{AccountId, ContactId, FormId, LeadId, PipelineId, StatusId, UnsortedUid};
use crate::domain::lead::{Contact, Lead, Unsorted, UnsortedMetadata, VisitorLink};
use crate::domain::pipeline::Pipeline;
use crate::domain::pipeline::{LOST, WON};
use crate::domain::site::{Site, parse_web_url};
use crate::domain::time::{Millis, now_ms, to_secs};
use crate::domain::timeline::TimelineEntry;
use crate::domain::tracking::{PageUrl, PageView, Visit, host_of, starts_new_visit};
use crate::domain::visitor::VisitorId;
use crate::store::{PageViewWrite, Sequence, catalog};

/// A page view as the tracker reports it, with what the request tells about the client.
pub struct Beacon<'a> {
    /// The signed visitor id the tracker holds, if any.
    pub vid: Option<&'a str>,
    /// The signed visitor id of the server-set cookie, if any.
    pub cookie_vid: Option<&'a str>,
    pub url: &'a str,
    pub referrer: &'a str,
    pub title: &'a str,
    pub origin: Option<&'a str>,
    /// The browser asks not to be tracked (DNT or GPC).
    pub do_not_track: bool,
}

pub enum CollectOutcome {
    /// Recorded; `minted` tells the visitor was seen for the first time.
    Recorded { visitor: VisitorId, minted: bool },
    /// Not recorded: the site honours Do-Not-Track and the browser asked for it.
    NotTracked,
}

/// How long an identical submission of the same browser folds into the first.
const DUPLICATE_WINDOW_SECS: u64 = 600;

/// What a first submission's fingerprint holds until it settles.
const PENDING: &str = "pending";

/// The fingerprint of a submission: the form, the browser and the contact as sent.
fn submission_fingerprint(form: &Form, visitor: VisitorId, contact: &ContactDetails) -> String {
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
    format!("submission:{}", hex(&digest[..16]))
}

/// The keys a contact is found by: its email (lower case) and its phone (digits only).
fn contact_keys(contact: &ContactDetails) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(email) = &contact.email {
        keys.push(format!("email:{}", email.to_lowercase()));
    }
    if let Some(phone) = &contact.phone {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        keys.push(format!("phone:{digits}"));
    }
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        /// The Unsorted entry; none when the contact's open lead took the submission.
        uid: Option<UnsortedUid>,
        /// The signed id of the visitor now linked to the lead (for the cookie).
        visitor: String,
        success_url: Option<String>,
    },
    /// A bot filled the honeypot: answered as a success, nothing stored.
    Discarded { success_url: Option<String> },
}

impl Services {
    fn retention_secs(&self) -> u64 {
        self.settings.tracking.retention_days * 86_400
    }

    /// The visitor of a request: the tracker's id, else the cookie's, else a new one.
    fn visitor_of(&self, vid: Option<&str>, cookie_vid: Option<&str>) -> (VisitorId, bool) {
        vid.and_then(|v| self.signer.verify(v))
            .or_else(|| cookie_vid.and_then(|v| self.signer.verify(v)))
            .map_or_else(|| (VisitorId::mint(), true), |v| (v, false))
    }

    /// Refuses a request whose `Origin` is not one of the site's hosts.
    pub fn check_origin(site: &Site, origin: Option<&str>) -> Result<()> {
        let Some(origin) = origin else { return Ok(()) };
        match host_of(origin) {
            Some(h) if site.allows_host(h) => Ok(()),
            _ => Err(Error::Forbidden(format!(
                "origin {origin} is not among the hosts of this site"
            ))),
        }
    }

    pub async fn site_for_beacon(&self, key: &str) -> Result<std::sync::Arc<Site>> {
        self.sites
            .by_key(&*self.store, key)
            .await?
            .ok_or_else(|| Error::NotFound("no site has this key".into()))
    }

    pub async fn collect(&self, beacon: Beacon<'_>, site: &Site) -> Result<CollectOutcome> {
        let page = PageUrl::parse(beacon.url)
            .ok_or_else(|| Error::invalid("url", "must be an absolute http(s) URL"))?;
        if !site.allows_host(page.host) {
            return Err(Error::Forbidden(format!(
                "host {} is not among the hosts of this site",
                page.host
            )));
        }
        Self::check_origin(site, beacon.origin)?;
        if beacon.do_not_track && site.respect_dnt {
            metrics::counter!("footfall_beacons_total", "outcome" => "not_tracked").increment(1);
            return Ok(CollectOutcome::NotTracked);
        }
        let (visitor, minted) = self.visitor_of(beacon.vid, beacon.cookie_vid);
        let now = now_ms();
        let page_view = PageView::new(now, site.id, page, beacon.title, beacon.referrer);
        let outcome = self
            .store
            .record_page_view(PageViewWrite {
                account: site.account_id,
                visitor,
                page_view,
                visit_idle_ms: site.visit_idle_ms(self.settings.tracking.visit_idle_seconds),
            })
            .await?;
        // A history may pass its cap by a tenth: then the one page view whose push made
        // it exactly that long (each push answers a new length) trims it back. Trimming on
        // every page view past the cap would queue a trim per beacon under load.
        let cap = self.settings.tracking.max_page_views_per_visitor;
        let step = (cap / 10).max(1);
        if outcome.history_len > cap && (outcome.history_len - cap).is_multiple_of(step) {
            self.trim_history_later(site.account_id, visitor, cap);
        }
        let idle_ms = site.visit_idle_ms(self.settings.tracking.visit_idle_seconds);
        if starts_new_visit(outcome.last_seen, now, idle_ms) {
            let visit = Visit {
                number: 0,
                site_id: site.id,
                started_at: now,
                url: page.url.to_owned(),
                title: beacon.title.chars().take(300).collect(),
                referrer: beacon.referrer.chars().take(2048).collect(),
            };
            self.start_visit(site, visitor, visit).await?;
        }
        // Kept once: every page view counts here, and a labelled lookup per beacon shows.
        static RECORDED: std::sync::LazyLock<metrics::Counter> = std::sync::LazyLock::new(
            || metrics::counter!("footfall_beacons_total", "outcome" => "recorded"),
        );
        RECORDED.increment(1);
        Ok(CollectOutcome::Recorded { visitor, minted })
    }

    /// Trims a visitor's history off the request path.
    fn trim_history_later(&self, account: AccountId, visitor: VisitorId, keep: u64) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.trim_page_views(account, visitor, keep).await {
                tracing::warn!(error = %e, "could not trim a visitor's page views");
            }
        });
    }

    async fn start_visit(&self, site: &Site, visitor: VisitorId, visit: Visit) -> Result<()> {
        let start = self
            .store
            .start_visit(
                site.account_id,
                visitor,
                self.retention_secs(),
                self.settings.tracking.max_page_views_per_visitor,
            )
            .await?;
        metrics::counter!("footfall_visits_total").increment(1);
        if let Some(lead_id) = start.lead {
            let visit = Visit {
                number: start.visits,
                ..visit
            };
            self.live.publish(site.account_id, lead_id, "visit");
            self.fire_site_visit(site, lead_id, &visit).await?;
        }
        Ok(())
    }

    pub async fn form_for_submission(&self, id: &FormId) -> Result<Form> {
        catalog::form_by_id(&*self.store, id)
            .await?
            .ok_or_else(|| Error::NotFound("no form has this id".into()))
    }

    /// A form submission becomes a contact, a lead in the pipeline's Unsorted stage and an
    /// Unsorted entry; the visitor is linked to the lead, bringing its earlier anonymous
    /// page views into the lead's history.
    pub async fn submit_form(&self, form: Form, s: Submission<'_>) -> Result<SubmitOutcome> {
        let account = form.account_id;
        let site: Site = catalog::get(&*self.store, account, form.site_id)
            .await?
            .ok_or_else(|| Error::NotFound("the form's site no longer exists".into()))?;
        Self::check_origin(&site, s.origin)?;
        if s.fields.get(HONEYPOT_FIELD).is_some_and(|v| !v.is_empty()) {
            metrics::counter!("footfall_form_submissions_total", "outcome" => "honeypot")
                .increment(1);
            return Ok(SubmitOutcome::Discarded {
                success_url: form.success_url.clone(),
            });
        }
        let contact = form.parse_contact(&s.fields).map_err(Error::Invalid)?;
        let pipeline: Pipeline = catalog::get(&*self.store, account, form.pipeline_id)
            .await?
            .ok_or_else(|| Error::NotFound("the form's pipeline no longer exists".into()))?;
        let unsorted = pipeline
            .unsorted()
            .ok_or_else(|| Error::Conflict("the form's pipeline has no Unsorted stage".into()))?;
        let (visitor, _) = self.visitor_of(s.vid, s.cookie_vid);
        let created = |lead_id, uid| SubmitOutcome::Created {
            lead_id,
            uid,
            visitor: self.signer.sign(visitor),
            success_url: form.success_url.clone(),
        };
        let fingerprint = submission_fingerprint(&form, visitor, &contact);
        if let Some((first, first_uid)) = self.first_of_duplicates(&form, &fingerprint).await? {
            metrics::counter!("footfall_form_submissions_total", "outcome" => "duplicate")
                .increment(1);
            return Ok(created(first, first_uid));
        }
        // Settle the claim with what this submission came to, so that its duplicates
        // fold into it at once — or into nothing, when it failed.
        let outcome = self
            .take_submission(&form, &s, &site, &pipeline, unsorted.id, visitor, contact)
            .await;
        let settled = match &outcome {
            Ok((lead, uid)) => format!("{lead}/{}", uid.as_ref().map(|u| u.as_str()).unwrap_or("")),
            Err(_) => String::new(),
        };
        let _ = self.store.settle(&fingerprint, &settled).await;
        let (lead_id, uid) = outcome?;
        Ok(created(lead_id, uid))
    }

    /// Records a submission: the known contact's open lead takes it, or a new lead and
    /// Unsorted entry are made.
    #[allow(clippy::too_many_arguments)]
    async fn take_submission(
        &self,
        form: &Form,
        s: &Submission<'_>,
        site: &Site,
        pipeline: &Pipeline,
        unsorted_status: StatusId,
        visitor: VisitorId,
        contact: ContactDetails,
    ) -> Result<(LeadId, Option<UnsortedUid>)> {
        let account = form.account_id;
        let page = match parse_web_url(s.page) {
            Some(p) if site.allows_host(p.host_str().unwrap_or_default()) => p.to_string(),
            _ => String::new(),
        };
        let now = now_ms();
        if let Some(lead) = self.open_lead_of(account, pipeline.id, &contact).await? {
            self.link_visitor(visitor, &lead, now).await?;
            self.store
                .append_timeline(
                    lead.id,
                    &TimelineEntry::FormSubmitted {
                        at: now,
                        form_id: form.id.clone(),
                        visitor,
                    },
                )
                .await?;
            metrics::counter!("footfall_form_submissions_total", "outcome" => "known_contact")
                .increment(1);
            self.live.publish(account, lead.id, "created");
            return Ok((lead.id, None));
        }
        let lead_id = LeadId(self.store.next_id(Sequence::Lead).await?);
        let contact_id = ContactId(self.store.next_id(Sequence::Contact).await?);
        let uid = UnsortedUid::generate();
        let lead = Lead {
            id: lead_id,
            account_id: account,
            name: format!("{}: {}", form.name, contact.name),
            pipeline_id: pipeline.id,
            status_id: unsorted_status,
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
        let first_entry = TimelineEntry::LeadCreated {
            at: now,
            form_id: form.id.clone(),
            unsorted_uid: uid.clone(),
        };
        self.store.insert_lead(&lead, &first_entry).await?;
        self.store
            .put_unsorted(&Unsorted {
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
                    referer: s.referer.chars().take(2048).collect(),
                    visitor_uid: Some(visitor.encode()),
                    form_sent_at: to_secs(now),
                },
                lead_id,
                contact_id,
            })
            .await?;
        for key in contact_keys(&contact) {
            self.store.index_contact(account, &key, lead_id).await?;
        }
        self.link_visitor(visitor, &lead, now).await?;
        metrics::counter!("footfall_form_submissions_total", "outcome" => "created").increment(1);
        self.live.publish(account, lead_id, "created");
        self.fire_on_move(&lead, MoveKind::Created, None).await?;
        Ok((lead_id, Some(uid)))
    }

    /// A double submission — the same browser sending the same contact through the same
    /// form within `DUPLICATE_WINDOW_SECS` — answers with the first submission's lead.
    /// The first claims the fingerprint as pending and settles it when it is done; a
    /// duplicate waits (briefly) for that. A first that failed folds nothing.
    async fn first_of_duplicates(
        &self,
        form: &Form,
        fingerprint: &str,
    ) -> Result<Option<(LeadId, Option<UnsortedUid>)>> {
        let Some(mut first) = self
            .store
            .remember(fingerprint, PENDING, DUPLICATE_WINDOW_SECS)
            .await?
        else {
            return Ok(None);
        };
        for _ in 0..100 {
            if first != PENDING {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            first = self.store.recall(fingerprint).await?.unwrap_or_default();
        }
        let Some((lead, uid)) = first.split_once('/').and_then(|(l, u)| {
            let uid = (!u.is_empty()).then(|| UnsortedUid(u.to_owned()));
            Some((LeadId(l.parse().ok()?), uid))
        }) else {
            return Ok(None);
        };
        // Say the Unsorted entry only while it is still there to accept.
        let uid = match uid {
            Some(uid)
                if self
                    .store
                    .get_unsorted(form.account_id, &uid)
                    .await?
                    .is_some() =>
            {
                Some(uid)
            }
            _ => None,
        };
        Ok(Some((lead, uid)))
    }

    /// The open lead (not won or lost) of a known contact in this pipeline, if any.
    async fn open_lead_of(
        &self,
        account: AccountId,
        pipeline: PipelineId,
        contact: &ContactDetails,
    ) -> Result<Option<Lead>> {
        for key in contact_keys(contact) {
            let Some(id) = self.store.find_contact(account, &key).await? else {
                continue;
            };
            if let Some(lead) = self.store.get_leads(&[id]).await?.pop()
                && lead.account_id == account
                && lead.pipeline_id == pipeline
                && lead.status_id != WON
                && lead.status_id != LOST
            {
                return Ok(Some(lead));
            }
        }
        Ok(None)
    }

    /// Links the browser to the lead. Its page views before the form belong to the new
    /// lead when it was anonymous; when it belonged to another lead, that lead keeps the
    /// history up to now and both timelines record the move.
    async fn link_visitor(&self, visitor: VisitorId, lead: &Lead, now: Millis) -> Result<()> {
        let previous = self
            .store
            .link_visitor(
                lead.account_id,
                visitor,
                lead.id,
                now,
                self.retention_secs(),
            )
            .await?
            .filter(|p| *p != lead.id);
        self.store
            .put_lead_visitor(
                lead.id,
                &VisitorLink {
                    visitor,
                    linked_at: now,
                    since: previous.map(|_| now),
                    until: None,
                },
            )
            .await?;
        self.store
            .append_timeline(
                lead.id,
                &TimelineEntry::VisitorLinked {
                    at: now,
                    visitor,
                    previous_lead: previous,
                },
            )
            .await?;
        if let Some(previous) = previous {
            let links = self.store.lead_visitors(previous).await?;
            if let Some(mut link) = links.into_iter().find(|l| l.visitor == visitor) {
                link.until = Some(now);
                self.store.put_lead_visitor(previous, &link).await?;
            }
            self.store
                .append_timeline(
                    previous,
                    &TimelineEntry::VisitorMoved {
                        at: now,
                        visitor,
                        to_lead: lead.id,
                    },
                )
                .await?;
            self.live
                .publish(lead.account_id, previous, "visitor_moved");
        }
        Ok(())
    }
}
