//! Leads on Redis: a hash and a timeline list per lead, the account's lead index, Unsorted
//! entries, contact index and browser links — all in the account's slot, so that each
//! step below is one script.

use std::collections::HashMap;

use ::redis::FromRedisValue;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::codec::{lead_fields, lead_from_fields, links_from_fields, stage_of};
use super::scripts::Call;
use super::slots::Batch;
use super::{RedisStore, lead_scripts, scripts};
use crate::domain::ids::{AccountId, ContactId, LeadId, UnsortedUid};
use crate::domain::lead::{Lead, Unsorted, VisitorLink};
use crate::domain::pipeline::{LOST, Stage, WON};
use crate::domain::time::Millis;
use crate::domain::timeline::{MoveOrigin, TimelineEntry};
use crate::domain::visitor::VisitorId;
use crate::store::{
    LeadMove, Leads, MoveOutcome, NewSubmission, Reserved, Sequence, StoreResult,
    SubmissionOutcome, corrupt, from_json, to_json,
};

/// A move script's answer: `{outcome, pipeline, status}`.
fn move_outcome(reply: Vec<String>) -> StoreResult<MoveOutcome> {
    match reply.as_slice() {
        [outcome] if outcome == "not_found" => Ok(MoveOutcome::NotFound),
        [outcome, p, s] if outcome == "moved" => Ok(MoveOutcome::Moved {
            from: stage_of(p, s)?,
        }),
        [outcome, p, s] if outcome == "conflict" => Ok(MoveOutcome::Conflict {
            current: stage_of(p, s)?,
        }),
        _ => Err(corrupt(format!("move answered {reply:?}"))),
    }
}

/// The Moved entry a script completes with the stage the lead left.
fn moved_entry(to: Stage, at: Millis, by: MoveOrigin) -> StoreResult<String> {
    to_json(&TimelineEntry::Moved {
        at,
        from: None,
        to,
        by,
    })
}

fn lead_id(s: &str) -> StoreResult<LeadId> {
    s.parse().map(LeadId).map_err(corrupt)
}

fn previous(s: &str) -> StoreResult<Option<LeadId>> {
    (!s.is_empty()).then(|| lead_id(s)).transpose()
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The fields of lead hashes, one round trip for all.
    async fn lead_hashes(
        &self,
        account: AccountId,
        ids: &[LeadId],
    ) -> StoreResult<Vec<HashMap<String, String>>> {
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("HGETALL").arg(self.keys.lead(account, *id));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.guarded(pipe.query_async(&mut self.con())).await
    }
}

#[async_trait]
impl<C> Leads for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn reserve_submission(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
    ) -> StoreResult<Reserved> {
        let batch = self.batch();
        let (_, reserved) = self
            .reservation(batch, account, browser, Some(retention_secs))
            .await?;
        reserved
    }

    async fn create_lead_from_submission(
        &self,
        s: &NewSubmission,
    ) -> StoreResult<SubmissionOutcome> {
        let (account, lead) = (s.account, &s.lead);
        let created = to_json(&TimelineEntry::LeadCreated {
            at: s.at,
            form_id: s.unsorted.metadata.form_id.clone(),
            unsorted_uid: s.unsorted.uid.clone(),
        })?;
        let mut script = Call::new(&lead_scripts::SUBMIT);
        script
            .key(self.keys.submission(account, &s.fingerprints.looked_up))
            .key(self.keys.contacts(account))
            .key(self.keys.lead(account, lead.id))
            .key(self.keys.lead_timeline(account, lead.id))
            .key(self.keys.account_leads(account))
            .key(self.keys.unsorted(account))
            // Without a browser the script reads no link: the new lead stands in its place.
            .key(match s.browser {
                Some(v) => self.keys.browser(account, v),
                None => self.keys.lead(account, lead.id),
            })
            // The fingerprint kept beside the one looked up (itself when there is none).
            .key(
                self.keys.submission(
                    account,
                    s.fingerprints
                        .minted_browser
                        .as_ref()
                        .unwrap_or(&s.fingerprints.looked_up),
                ),
            )
            .arg(self.keys.lead_prefix(account))
            .arg(s.at)
            .arg(s.duplicate_window_secs.max(1))
            .arg(lead.pipeline_id.0)
            .arg(s.browser.map(|v| v.encode()).unwrap_or_default())
            .arg(lead.id.0)
            .arg(s.unsorted.uid.as_str())
            .arg(to_json(&s.unsorted)?)
            .arg(created)
            .arg(WON.0)
            .arg(LOST.0)
            .arg(s.link_retention_secs.max(1))
            .arg(s.contact_keys.len())
            .arg(&s.contact_keys);
        for (field, value) in lead_fields(lead) {
            script.arg(field).arg(value);
        }
        let reply: Vec<String> = self.invoke_durable(&script).await?;
        match reply.as_slice() {
            [kind, lead, uid] if kind == "duplicate" => Ok(SubmissionOutcome::Duplicate {
                lead: lead_id(lead)?,
                uid: (!uid.is_empty()).then(|| UnsortedUid(uid.clone())),
            }),
            [kind, _, prev, dup] if kind == "created" => Ok(SubmissionOutcome::Created {
                previous_lead: previous(prev)?,
                duplicate_of: previous(dup)?,
            }),
            _ => Err(corrupt(format!("submission answered {reply:?}"))),
        }
    }

    async fn get_leads(&self, account: AccountId, ids: &[LeadId]) -> StoreResult<Vec<Lead>> {
        let mut leads = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(self.lead_hashes(account, ids).await?) {
            if let Some(lead) = lead_from_fields(*id, fields)? {
                leads.push(lead);
            }
        }
        Ok(leads)
    }

    async fn lead_ids(&self, account: AccountId) -> StoreResult<Vec<LeadId>> {
        let ids: Vec<u64> = self
            .query(
                ::redis::cmd("ZRANGE")
                    .arg(self.keys.account_leads(account))
                    .arg(0)
                    .arg(-1)
                    .arg("REV"),
            )
            .await?;
        Ok(ids.into_iter().map(LeadId).collect())
    }

    async fn move_lead(&self, m: &LeadMove) -> StoreResult<MoveOutcome> {
        let (ep, es) = m
            .expect
            .map(|s| (s.pipeline_id.to_string(), s.status_id.to_string()))
            .unwrap_or_default();
        let reply: Vec<String> = self
            .invoke_durable(
                Call::new(&lead_scripts::MOVE_LEAD)
                    .key(self.keys.lead(m.account, m.lead))
                    .key(self.keys.lead_timeline(m.account, m.lead))
                    .key(self.keys.unsorted(m.account))
                    .arg(m.to.pipeline_id.0)
                    .arg(m.to.status_id.0)
                    .arg(m.at)
                    .arg(ep)
                    .arg(es)
                    .arg(moved_entry(m.to, m.at, m.by)?)
                    .arg(m.unsorted.as_ref().map_or("", |u| u.as_str())),
            )
            .await?;
        move_outcome(reply)
    }

    async fn decline(&self, entry: &Unsorted, lost: Stage, at: Millis) -> StoreResult<MoveOutcome> {
        let (account, lead) = (entry.account_id, entry.lead_id);
        let reply: Vec<String> = self
            .invoke_durable(
                Call::new(&lead_scripts::DECLINE)
                    .key(self.keys.unsorted(account))
                    .key(self.keys.lead(account, lead))
                    .key(self.keys.lead_timeline(account, lead))
                    .arg(entry.uid.as_str())
                    .arg(lost.pipeline_id.0)
                    .arg(lost.status_id.0)
                    .arg(at)
                    .arg(to_json(&TimelineEntry::Declined { at })?)
                    .arg(moved_entry(lost, at, MoveOrigin::Decline)?),
            )
            .await?;
        move_outcome(reply)
    }

    async fn rename_lead(
        &self,
        account: AccountId,
        id: LeadId,
        name: &str,
        at: Millis,
    ) -> StoreResult<bool> {
        let n: i64 = self
            .invoke(
                lead_scripts::RENAME_LEAD
                    .key(self.keys.lead(account, id))
                    .arg(name)
                    .arg(at),
            )
            .await?;
        Ok(n == 1)
    }

    async fn link_visitor(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
    ) -> StoreResult<Option<Option<LeadId>>> {
        let reply: Vec<String> = self
            .invoke_durable(
                Call::new(&lead_scripts::LINK_VISITOR)
                    .key(self.keys.lead(account, lead))
                    .key(self.keys.browser(account, visitor))
                    .arg(self.keys.lead_prefix(account))
                    .arg(visitor.encode())
                    .arg(lead.0)
                    .arg(at)
                    .arg(retention_secs.max(1)),
            )
            .await?;
        match reply.as_slice() {
            [outcome] if outcome == "not_found" => Ok(None),
            [outcome, previous] if outcome == "linked" => Ok(Some(if previous.is_empty() {
                None
            } else {
                Some(LeadId(previous.parse().map_err(|_| {
                    corrupt(format!("link_visitor: lead id {previous}"))
                })?))
            })),
            other => Err(corrupt(format!("link_visitor answered {other:?}"))),
        }
    }

    async fn append_timeline(
        &self,
        account: AccountId,
        lead: LeadId,
        entry: &TimelineEntry,
    ) -> StoreResult<()> {
        self.invoke::<()>(
            lead_scripts::APPEND_IF_LEAD
                .key(self.keys.lead(account, lead))
                .key(self.keys.lead_timeline(account, lead))
                .arg(to_json(entry)?),
        )
        .await
    }

    async fn timeline(&self, account: AccountId, lead: LeadId) -> StoreResult<Vec<TimelineEntry>> {
        let raw: Vec<String> = self
            .query(
                ::redis::cmd("LRANGE")
                    .arg(self.keys.lead_timeline(account, lead))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        raw.iter().map(|s| from_json(s)).collect()
    }

    async fn lead_visitors(
        &self,
        account: AccountId,
        lead: LeadId,
    ) -> StoreResult<Vec<VisitorLink>> {
        let fields: HashMap<String, String> = self
            .query(::redis::cmd("HGETALL").arg(self.keys.lead(account, lead)))
            .await?;
        links_from_fields(&fields)
    }

    async fn get_unsorted(
        &self,
        account: AccountId,
        uid: &UnsortedUid,
    ) -> StoreResult<Option<Unsorted>> {
        let raw: Option<String> = self
            .query(
                ::redis::cmd("HGET")
                    .arg(self.keys.unsorted(account))
                    .arg(uid.as_str()),
            )
            .await?;
        raw.map(|s| from_json(&s)).transpose()
    }

    async fn list_unsorted(&self, account: AccountId) -> StoreResult<Vec<Unsorted>> {
        let raw: Vec<String> = self
            .query(::redis::cmd("HVALS").arg(self.keys.unsorted(account)))
            .await?;
        let mut list: Vec<Unsorted> = raw
            .iter()
            .map(|s| from_json(s))
            .collect::<StoreResult<_>>()?;
        list.sort_by(|a, b| (a.created_at, &a.uid).cmp(&(b.created_at, &b.uid)));
        Ok(list)
    }
}

/// A lead from the answer of `LEAD_OF_BROWSER` past its first two items.
pub(super) fn lead_from_reply(id: &str, rest: Vec<::redis::Value>) -> StoreResult<Option<Lead>> {
    if id.is_empty() {
        return Ok(None);
    }
    let mut fields = HashMap::with_capacity(rest.len() / 2);
    let mut items = rest.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        fields.insert(
            String::from_redis_value(k).map_err(corrupt)?,
            String::from_redis_value(v).map_err(corrupt)?,
        );
    }
    lead_from_fields(lead_id(id)?, fields)
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Runs `batch` followed by a submission's reservation (the catalog version, the ids,
    /// and for a browser its recent page views, with `keep` its history kept that long):
    /// the batch's own replies, and the reservation.
    pub(super) async fn reservation(
        &self,
        mut batch: Batch,
        account: AccountId,
        browser: Option<VisitorId>,
        keep: Option<u64>,
    ) -> StoreResult<(Vec<::redis::Value>, StoreResult<Reserved>)> {
        let version = self.keys.catalog_version(account);
        let mut get = ::redis::cmd("GET");
        get.arg(&version);
        batch.add(&version, get);
        for seq in [Sequence::Lead, Sequence::Contact] {
            let key = self.keys.sequence(seq);
            let mut incr = ::redis::cmd("INCR");
            incr.arg(&key);
            batch.add(&key, incr);
        }
        let mut ours = 3;
        if let Some(visitor) = browser {
            let history = self.keys.visitor_history(account, visitor);
            if let Some(retention_secs) = keep {
                batch
                    .script(&history, &scripts::KEEP_HISTORY, 1)
                    .arg(&history)
                    .arg(retention_secs.max(1));
                ours += 1;
            }
            let mut recent = ::redis::cmd("LRANGE");
            recent
                .arg(&history)
                .arg(-(crate::store::RECENT_PAGE_VIEWS as i64))
                .arg(-1);
            batch.add(&history, recent);
            ours += 1;
        }
        let mut replies = self.run(batch).await?;
        if replies.len() < ours {
            return Err(corrupt("short reply to a submission's reservation"));
        }
        let mine = replies.split_off(replies.len() - ours);
        let mut mine = mine.into_iter();
        let (Some(version), Some(lead), Some(contact)) = (mine.next(), mine.next(), mine.next())
        else {
            return Err(corrupt("short reply to a submission's reservation"));
        };
        // For a browser: with `keep`, KEEP_HISTORY's reply; then its recent page views.
        let recent = browser.and(mine.last());
        let reserved = self.reserved(account, version, lead, contact, recent).await;
        Ok((replies, reserved))
    }

    /// A reservation from its replies; the recent page views (none without a browser)
    /// decoded with their sites' origins.
    async fn reserved(
        &self,
        account: AccountId,
        version: ::redis::Value,
        lead: ::redis::Value,
        contact: ::redis::Value,
        recent: Option<::redis::Value>,
    ) -> StoreResult<Reserved> {
        let number = |v: ::redis::Value| u64::from_redis_value(v).map_err(corrupt);
        let recent = match recent {
            Some(raw) => {
                let raw = Vec::<String>::from_redis_value(raw)
                    .map_err(corrupt)?
                    .into_iter()
                    .filter(|s| !s.starts_with('~'));
                self.decode_page_views(account, raw).await?
            }
            None => Vec::new(),
        };
        Ok(Reserved {
            catalog_version: Option::<u64>::from_redis_value(version)
                .map_err(corrupt)?
                .unwrap_or(0),
            lead: LeadId(Sequence::Lead.base() + number(lead)?),
            contact: ContactId(Sequence::Contact.base() + number(contact)?),
            recent,
        })
    }
}
