//! Leads made through the API on Redis: one script on the account's slot writes the lead
//! hash, its timeline, the lead index, the contact index and the browser's link.

use std::sync::LazyLock;

use ::redis::Script;
use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::RedisStore;
use super::codec::lead_fields;
use super::lead_scripts::LEAD_LUA;
use super::scripts::Call;
use crate::domain::ids::LeadId;
use crate::domain::timeline::TimelineEntry;
use crate::store::{LeadCreated, LeadWrites, NewLead, StoreResult, corrupt, to_json};

/// A lead made through the API. KEYS: lead, its timeline, the account's lead index,
/// contact index, the browser's link (any key of the slot when there is no browser).
/// ARGV: lead prefix, now, lead id, LeadAdded JSON, visitor or "", link ttl secs, n
/// contact keys, the contact keys, then the lead's hash fields. Returns {'created',
/// previous lead or ''} or {'exists'} (the id was taken: nothing written).
static CREATE_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEAD_LUA}{}",
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local prefix, at, id, v, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local nkeys = tonumber(ARGV[7])
local fields = {}
for i = 8 + nkeys, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], id, id)
for i = 1, nkeys do redis.call('HSET', KEYS[4], ARGV[7 + i], id) end
local prev = false
if v ~= '' then prev = link(prefix, KEYS[5], v, id, at, ttl) end
return {'created', prev or ''}
"#
    ))
});

#[async_trait]
impl<C> LeadWrites for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn create_lead(&self, new: &NewLead) -> StoreResult<LeadCreated> {
        let lead = &new.lead;
        let account = lead.account_id;
        let added = to_json(&TimelineEntry::LeadAdded {
            at: new.at,
            to: lead.stage(),
        })?;
        let browser = match new.visitor {
            Some(v) => self.keys.browser(account, v),
            None => self.keys.contacts(account),
        };
        let mut script = Call::new(&CREATE_LEAD);
        script
            .key(self.keys.lead(account, lead.id))
            .key(self.keys.lead_timeline(account, lead.id))
            .key(self.keys.account_leads(account))
            .key(self.keys.contacts(account))
            .key(browser)
            .arg(self.keys.lead_prefix(account))
            .arg(new.at)
            .arg(lead.id.0)
            .arg(added)
            .arg(new.visitor.map(|v| v.encode()).unwrap_or_default())
            .arg(new.link_retention_secs.max(1))
            .arg(new.contact_keys.len())
            .arg(&new.contact_keys);
        for (field, value) in lead_fields(lead) {
            script.arg(field).arg(value);
        }
        let reply: Vec<String> = self.invoke_durable(&script).await?;
        match reply.as_slice() {
            [kind, prev] if kind == "created" => Ok(LeadCreated {
                previous_lead: (!prev.is_empty())
                    .then(|| prev.parse().map(LeadId).map_err(corrupt))
                    .transpose()?,
            }),
            _ => Err(corrupt(format!("create_lead answered {reply:?}"))),
        }
    }
}
