//! Redis key names. Every multi-key step keeps its keys in one hash slot with a `{tag}`:
//! a visitor's keys share `{visitor}`, a lead's `{l<id>}`, an account's `{a<id>}`, and each
//! shard of the delivery schedule `{j<n>}` holds both its queue and its events — so each
//! atomic step runs on one node of a Redis Cluster.
//!
//! A visitor costs two keys: when it was last seen on each site, and its history — one
//! meta element at the head (`~visits|lead|linked_at`), so that a visitor needs no hash
//! of its own (per-key overhead dominates its memory), then page views oldest first:
//! appending at the tail is the cheapest write a Redis list has.

use crate::domain::ids::{AccountId, EventId, HandlerId, LeadId, SiteId};
use crate::domain::visitor::VisitorId;
use crate::store::{RecordKind, Sequence};

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    shards: u32,
}

impl Keys {
    pub fn new(prefix: &str, shards: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            shards: shards.max(1),
        }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub fn sequence(&self, seq: Sequence) -> String {
        format!("{}:seq:{}", self.prefix, seq.name())
    }

    pub fn once(&self, key: &str) -> String {
        format!("{}:once:{key}", self.prefix)
    }

    pub fn records(&self, account: AccountId, kind: RecordKind) -> String {
        format!("{}:{{a{account}}}:{}", self.prefix, kind.name())
    }

    pub fn aliases(&self, kind: RecordKind) -> String {
        format!("{}:alias:{}", self.prefix, kind.name())
    }

    pub fn lead(&self, lead: LeadId) -> String {
        format!("{}:{{l{lead}}}", self.prefix)
    }

    pub fn lead_timeline(&self, lead: LeadId) -> String {
        format!("{}:{{l{lead}}}:t", self.prefix)
    }

    pub fn account_leads(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:leads", self.prefix)
    }

    pub fn unsorted(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:unsorted", self.prefix)
    }

    pub fn account_events(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:events", self.prefix)
    }

    pub fn dead_events(&self, account: AccountId, handler: HandlerId) -> String {
        format!("{}:{{a{account}}}:dead:{handler}", self.prefix)
    }

    pub fn handler_failures(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:failing", self.prefix)
    }

    pub fn remembered(&self, key: &str) -> String {
        format!("{}:mem:{key}", self.prefix)
    }

    pub fn contacts(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:contacts", self.prefix)
    }

    /// The pub/sub channel of live updates.
    pub fn live_channel(&self) -> String {
        format!("{}:live", self.prefix)
    }

    /// When the visitor was last seen on a site (a visit ends after the idle gap).
    pub fn visitor_seen(&self, v: VisitorId, site: SiteId) -> String {
        self.visitor_key(v, ":s", &site.0.to_string())
    }

    /// The visitor's history in an account: the meta element, then page views oldest
    /// first.
    pub fn visitor_history(&self, account: AccountId, v: VisitorId) -> String {
        self.visitor_key(v, ":p", &account.0.to_string())
    }

    /// `prefix:{visitor}suffix…`, built without the formatting machinery: two of these
    /// are made for every page view.
    fn visitor_key(&self, v: VisitorId, suffix: &str, more: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 26 + suffix.len() + more.len());
        key.push_str(&self.prefix);
        key.push_str(":{");
        use std::fmt::Write;
        let _ = write!(key, "{v}");
        key.push('}');
        key.push_str(suffix);
        key.push_str(more);
        key
    }

    /// The shard of the schedule an event lives in, from a stable hash of its id.
    pub fn shard_of(&self, id: &EventId) -> u32 {
        let h = id
            .as_str()
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
        h % self.shards
    }

    /// A shard's schedule: event ids scored by the time they become due (or their lease
    /// ends).
    pub fn schedule(&self, shard: u32) -> String {
        format!("{}:{{j{shard}}}:due", self.prefix)
    }

    /// The prefix of event keys in a shard; the claim script appends the id.
    pub fn event_prefix(&self, shard: u32) -> String {
        format!("{}:{{j{shard}}}:e:", self.prefix)
    }

    pub fn event(&self, id: &EventId) -> String {
        format!("{}{}", self.event_prefix(self.shard_of(id)), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_visitor_share_a_hash_tag() {
        let keys = Keys::new("ff", 8);
        let v = VisitorId::mint();
        let tag = format!("{{{v}}}");
        for k in [
            keys.visitor_seen(v, SiteId(1)),
            keys.visitor_history(AccountId(7), v),
        ] {
            assert!(k.contains(&tag), "{k}");
        }
    }

    #[test]
    fn events_live_in_their_shards_slot() {
        let keys = Keys::new("ff", 8);
        let id = EventId::generate();
        let shard = keys.shard_of(&id);
        assert!(shard < 8);
        assert!(keys.event(&id).starts_with(&format!("ff:{{j{shard}}}:e:")));
        assert!(
            keys.schedule(shard)
                .starts_with(&format!("ff:{{j{shard}}}"))
        );
    }
}
