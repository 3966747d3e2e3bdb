//! Erasure on Redis: one script per hash slot — the schedule shards' (event records and
//! their places in the schedule), the account's (lead, timeline, Unsorted entries, contact
//! index and contact records, fingerprint, event index, dead letters; a browser's link and its mentions on
//! leads) and each browser's (history, last sightings). The order is in `store/privacy.rs`.

use std::collections::HashMap;
use std::sync::LazyLock;

use ::redis::Script;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::RedisStore;
use super::codec::links_from_fields;
use super::contact_writes::records_key;
use super::scripts::Call;
use crate::domain::ids::{AccountId, ContactId, EventId, LeadId};
use crate::domain::privacy::{AuditRecord, Erased};
use crate::domain::timeline::TimelineEntry;
use crate::domain::visitor::VisitorId;
use crate::store::privacy::{AUDIT_KEPT, ErasedLead, ErasureScope, Privacy};
use crate::store::{StoreResult, corrupt, from_json, to_json};

/// A lead's keys in the account's slot. KEYS: lead, timeline, lead index, Unsorted
/// entries, contact index, event index, then the handlers' dead letters. ARGV: lead id,
/// then its event ids. Returns {contacts, Unsorted entries} removed, or {-1} when the lead
/// is gone.
static ERASE_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local id = ARGV[1]
-- The submission's fingerprints, while each is still this lead's (`<lead>/<uid>`):
-- once its window has passed, the same submission may have made a later lead.
for _, fingerprint in ipairs(redis.call('HMGET', KEYS[1], 'f', 'f2')) do
  if fingerprint and string.match(redis.call('GET', fingerprint) or '', '^(%d+)/') == id then
    redis.call('DEL', fingerprint)
  end
end
local contacts = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.match(field, '^c%d+i$') then contacts = contacts + 1 end
end
local unsorted = 0
local entries = redis.call('HGETALL', KEYS[4])
for i = 1, #entries, 2 do
  if tostring(cjson.decode(entries[i + 1]).lead_id) == id then
    redis.call('HDEL', KEYS[4], entries[i])
    unsorted = unsorted + 1
  end
end
local index = redis.call('HGETALL', KEYS[5])
for i = 1, #index, 2 do
  if index[i + 1] == id then redis.call('HDEL', KEYS[5], index[i]) end
end
for i = 2, #ARGV do
  for k = 6, #KEYS do redis.call('ZREM', KEYS[k], ARGV[i]) end
end
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', KEYS[1], KEYS[2])
return {contacts, unsorted}
"#,
    )
});

/// The contact records (issue 18's `{a}:contacts:records`) of a lead's contacts that no
/// other lead of the account has. KEYS: records, lead index, the lead. ARGV: lead prefix,
/// lead id. Run while the lead is there, so that a repeated erasure runs it again.
/// Returns the ids of those contacts (they go with the lead).
static ERASE_CONTACT_RECORDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local function contact_ids(key)
  local ids, n = {}, 0
  while true do
    local cid = redis.call('HGET', key, 'c' .. n .. 'i')
    if not cid then return ids end
    ids[#ids + 1] = cid
    n = n + 1
  end
end
local mine = {}
local any = false
for _, cid in ipairs(contact_ids(KEYS[3])) do mine[cid] = true any = true end
if not any then return {} end
for _, other in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if other ~= ARGV[2] then
    for _, cid in ipairs(contact_ids(ARGV[1] .. other)) do mine[cid] = nil end
  end
end
local gone = {}
for cid in pairs(mine) do
  redis.call('HDEL', KEYS[1], cid)
  gone[#gone + 1] = cid
end
return gone
"#,
    )
});

/// A browser's traces in the account's slot. KEYS: the browser's link, lead index,
/// Unsorted entries. ARGV: lead prefix, visitor. Every lead is looked at (the links a
/// browser left on earlier leads are not indexed): an erasure is rare, a lead costs one
/// HDEL. Returns 1 when the browser was known here.
static ERASE_BROWSER_LINKS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local found = redis.call('DEL', KEYS[1])
local field, quoted = 'v:' .. ARGV[2], '"' .. ARGV[2] .. '"'
for _, lead in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = ARGV[1] .. lead
  if redis.call('HDEL', key, field) == 1 then
    found = 1
    local timeline = key .. ':t'
    for _, entry in ipairs(redis.call('LRANGE', timeline, 0, -1)) do
      if string.find(entry, quoted, 1, true) then redis.call('LREM', timeline, 0, entry) end
    end
  end
end
local named = '"visitor_uid":' .. quoted
local entries = redis.call('HGETALL', KEYS[3])
for i = 1, #entries, 2 do
  local at = string.find(entries[i + 1], named, 1, true)
  if at then
    found = 1
    local json = entries[i + 1]
    redis.call('HSET', KEYS[3], entries[i],
      string.sub(json, 1, at - 1) .. '"visitor_uid":null' .. string.sub(json, at + #named))
  end
end
return found
"#,
    )
});

/// A browser's own keys. KEYS: its history in the account, then its last sighting and its
/// watched visit (conditional actions) on each of the account's sites. Returns the page views the history held, or -1 when there was
/// none.
static ERASE_HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('LLEN', KEYS[1])
local meta = redis.call('LINDEX', KEYS[1], 0)
if meta and string.sub(meta, 1, 1) == '~' then n = n - 1 end
local seen = 0
for i = 2, #KEYS do seen = seen + redis.call('DEL', KEYS[i]) end
local had = redis.call('DEL', KEYS[1])
if had == 0 and seen == 0 then return -1 end
return n
"#,
    )
});

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Removes events' records and places in the schedule (their shards' slots); returns
    /// how many there were.
    async fn erase_events(&self, ids: &[EventId]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut batch = self.batch();
        for id in ids {
            let record = self.keys.event(id);
            let mut del = ::redis::cmd("DEL");
            del.arg(&record);
            let mut zrem = ::redis::cmd("ZREM");
            zrem.arg(self.keys.schedule(self.keys.shard_of(id)))
                .arg(id.as_str());
            batch.add(&record, del).add(&record, zrem);
        }
        let replies = self.run_durable(batch).await?;
        Ok(replies
            .iter()
            .step_by(2)
            .filter(|v| matches!(v, ::redis::Value::Int(1)))
            .count() as u64)
    }
}

#[async_trait]
impl<C> Privacy for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn erase_lead(
        &self,
        scope: &ErasureScope,
        lead: LeadId,
    ) -> StoreResult<Option<ErasedLead>> {
        let account = scope.account;
        let fields: HashMap<String, String> = self
            .query(::redis::cmd("HGETALL").arg(self.keys.lead(account, lead)))
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let links = links_from_fields(&fields)?;
        let raw: Vec<String> = self
            .query(
                ::redis::cmd("LRANGE")
                    .arg(self.keys.lead_timeline(account, lead))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let mut events = Vec::new();
        for entry in &raw {
            if let TimelineEntry::EventFired { event_id, .. } = from_json(entry)? {
                events.push(event_id);
            }
        }
        let mut erased = Erased {
            leads: 1,
            events: self.erase_events(&events).await?,
            ..Erased::default()
        };
        for link in links {
            let mut browser = self.erase_visitor(scope, link.visitor).await?;
            browser.visitors = 1;
            erased.add(browser);
        }
        let contacts_gone: Vec<u64> = self
            .invoke_durable(
                Call::new(&ERASE_CONTACT_RECORDS)
                    .key(records_key(&self.keys.contacts(account)))
                    .key(self.keys.account_leads(account))
                    .key(self.keys.lead(account, lead))
                    .arg(self.keys.lead_prefix(account))
                    .arg(lead.0),
            )
            .await?;
        let mut script = Call::new(&ERASE_LEAD);
        script
            .key(self.keys.lead(account, lead))
            .key(self.keys.lead_timeline(account, lead))
            .key(self.keys.account_leads(account))
            .key(self.keys.unsorted(account))
            .key(self.keys.contacts(account))
            .key(self.keys.account_events(account));
        for handler in &scope.handlers {
            script.key(self.keys.dead_events(account, *handler));
        }
        script.arg(lead.0);
        for id in &events {
            script.arg(id.as_str());
        }
        let reply: Vec<i64> = self.invoke_durable(&script).await?;
        match reply.as_slice() {
            [-1] => return Ok(None),
            [contacts, unsorted] => {
                erased.contacts = *contacts as u64;
                erased.unsorted = *unsorted as u64;
            }
            other => return Err(corrupt(format!("lead erasure answered {other:?}"))),
        }
        let mut contacts_gone: Vec<ContactId> = contacts_gone.into_iter().map(ContactId).collect();
        contacts_gone.sort();
        Ok(Some(ErasedLead {
            erased,
            contacts_gone,
        }))
    }

    async fn erase_visitor(&self, scope: &ErasureScope, visitor: VisitorId) -> StoreResult<Erased> {
        let account = scope.account;
        // The history first: a lead's erasure finds its browsers by their links, so the
        // links go last, and an erasure cut short between the two is finished by its
        // repeat.
        let mut history = Call::new(&ERASE_HISTORY);
        history.key(self.keys.visitor_history(account, visitor));
        for site in &scope.sites {
            history
                .key(self.keys.visitor_seen(visitor, *site))
                .key(self.keys.visitor_watch(visitor, *site));
        }
        let page_views: i64 = self.invoke_durable(&history).await?;
        let linked: i64 = self
            .invoke_durable(
                Call::new(&ERASE_BROWSER_LINKS)
                    .key(self.keys.browser(account, visitor))
                    .key(self.keys.account_leads(account))
                    .key(self.keys.unsorted(account))
                    .arg(self.keys.lead_prefix(account))
                    .arg(visitor.encode()),
            )
            .await?;
        let known = linked == 1 || page_views >= 0;
        Ok(Erased {
            visitors: u64::from(known),
            page_views: page_views.max(0) as u64,
            ..Erased::default()
        })
    }

    async fn erase_notices(&self, scope: &ErasureScope, ids: &[EventId]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        // The records first: an index entry left by a cut erasure points at nothing (read
        // as absent), while a record left without its index entry would be found no more.
        let erased = self.erase_events(ids).await?;
        let mut batch = self.batch();
        let index = std::iter::once(self.keys.account_events(scope.account)).chain(
            scope
                .handlers
                .iter()
                .map(|h| self.keys.dead_events(scope.account, *h)),
        );
        for key in index {
            let mut zrem = ::redis::cmd("ZREM");
            zrem.arg(&key);
            for id in ids {
                zrem.arg(id.as_str());
            }
            batch.add(&key, zrem);
        }
        self.run_durable(batch).await?;
        Ok(erased)
    }

    async fn add_audit(&self, account: AccountId, record: &AuditRecord) -> StoreResult<()> {
        let key = self.keys.privacy_audit(account);
        let mut pipe = ::redis::pipe();
        pipe.cmd("LPUSH")
            .arg(&key)
            .arg(to_json(record)?)
            .ignore()
            .cmd("LTRIM")
            .arg(&key)
            .arg(0)
            .arg(AUDIT_KEPT - 1)
            .ignore();
        self.guarded(pipe.query_async::<()>(&mut self.con())).await
    }

    async fn audit(&self, account: AccountId) -> StoreResult<Vec<AuditRecord>> {
        let raw: Vec<String> = self
            .query(
                ::redis::cmd("LRANGE")
                    .arg(self.keys.privacy_audit(account))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        raw.iter().map(|s| from_json(s)).collect()
    }
}
