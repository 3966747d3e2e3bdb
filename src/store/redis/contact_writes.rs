//! Contact records on Redis: a hash of records in the account's slot; a change is one
//! script over the record, the contact's copy on each of its leads and the contact index.

use std::sync::LazyLock;

use ::redis::Script;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::RedisStore;
use super::scripts::Call;
use crate::domain::ids::{AccountId, ContactId};
use crate::store::{
    ContactRecordData, ContactWrite, ContactWrites, StoreResult, from_json, to_json,
};

/// Saves a contact. KEYS: contact records, contact index. ARGV: lead prefix, contact id,
/// record JSON, name, phone or "", email or "", n old keys, the old keys, n new keys, the
/// new keys, then the lead ids (newest last). On each lead the contact's `c<i>` fields
/// are rewritten; an old key is dropped when it points at one of the leads; the new keys
/// point at the newest lead.
static SAVE_CONTACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local prefix, id = ARGV[1], ARGV[2]
local name, phone, email = ARGV[4], ARGV[5], ARGV[6]
local nold = tonumber(ARGV[7])
local nnew = tonumber(ARGV[8 + nold])
local first_lead = 9 + nold + nnew
local leads = {}
for i = first_lead, #ARGV do leads[ARGV[i]] = true end
for i = first_lead, #ARGV do
  local lead = prefix .. ARGV[i]
  local n = 0
  while true do
    local cid = redis.call('HGET', lead, 'c' .. n .. 'i')
    if not cid then break end
    if cid == id then
      redis.call('HSET', lead, 'c' .. n .. 'n', name)
      if phone == '' then redis.call('HDEL', lead, 'c' .. n .. 'p')
      else redis.call('HSET', lead, 'c' .. n .. 'p', phone) end
      if email == '' then redis.call('HDEL', lead, 'c' .. n .. 'e')
      else redis.call('HSET', lead, 'c' .. n .. 'e', email) end
    end
    n = n + 1
  end
end
for i = 8, 7 + nold do
  local at = redis.call('HGET', KEYS[2], ARGV[i])
  if at and leads[at] then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
if #ARGV >= first_lead then
  for i = 9 + nold, 8 + nold + nnew do redis.call('HSET', KEYS[2], ARGV[i], ARGV[#ARGV]) end
end
redis.call('HSET', KEYS[1], id, ARGV[3])
return 1
"#,
    )
});

#[async_trait]
impl<C> ContactWrites for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn save_contact(&self, w: &ContactWrite) -> StoreResult<()> {
        let c = &w.record.contact;
        let mut leads = w.leads.clone();
        leads.sort_unstable();
        let mut script = Call::new(&SAVE_CONTACT);
        script
            .key(records_key(&self.keys.contacts(w.account)))
            .key(self.keys.contacts(w.account))
            .arg(self.keys.lead_prefix(w.account))
            .arg(c.id.0)
            .arg(to_json(&w.record)?)
            .arg(&c.name)
            .arg(c.phone.as_deref().unwrap_or(""))
            .arg(c.email.as_deref().unwrap_or(""))
            .arg(w.old_keys.len())
            .arg(&w.old_keys)
            .arg(w.new_keys.len())
            .arg(&w.new_keys)
            .arg(leads.iter().map(|l| l.0).collect::<Vec<_>>());
        let _: i64 = self.invoke_durable(&script).await?;
        Ok(())
    }

    async fn contact_records(&self, account: AccountId) -> StoreResult<Vec<ContactRecordData>> {
        let raw: Vec<String> = self
            .query(::redis::cmd("HVALS").arg(records_key(&self.keys.contacts(account))))
            .await?;
        raw.iter().map(|s| from_json(s)).collect()
    }

    async fn erase_contact_records(
        &self,
        account: AccountId,
        ids: &[ContactId],
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let records = records_key(&self.keys.contacts(account));
        let mut batch = self.batch();
        let mut hdel = ::redis::cmd("HDEL");
        hdel.arg(&records)
            .arg(ids.iter().map(|c| c.0).collect::<Vec<_>>());
        batch.add(&records, hdel);
        let reply = self.run_durable(batch).await?.pop();
        Ok(match reply {
            Some(::redis::Value::Int(n)) => n.max(0) as u64,
            _ => 0,
        })
    }
}

/// The records hash, beside the contact index in the account's slot.
pub(super) fn records_key(index: &str) -> String {
    format!("{index}:records")
}
