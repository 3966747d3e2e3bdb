//! Redis key names. Every multi-key step keeps its keys in one hash slot with a `{tag}`:
//! an account's catalog, leads, timelines, Unsorted entries, contact index and browser
//! links share `{a<id>}` (so a submission, a move or an accept is one script on one node
//! of a Redis Cluster); a browser's keys share `{visitor}`; each shard of the delivery
//! schedule `{j<n>}` holds both its queue and its events.
//!
//! A visitor costs two keys: when it was last seen on each site, and its history — one
//! meta element at the head (`~visits`), so that a visitor needs no hash of its own
//! (per-key overhead dominates its memory), then page views oldest first: appending at
//! the tail is the cheapest write a Redis list has. The lead a browser belongs to is a
//! key of its own in its account's slot, expiring with the history.

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

    /// The account's records of a kind by creation (scored by the catalog version).
    pub fn record_order(&self, account: AccountId, kind: RecordKind) -> String {
        format!("{}:{{a{account}}}:{}:order", self.prefix, kind.name())
    }

    /// Counts changes of the account's catalog.
    pub fn catalog_version(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:catalog", self.prefix)
    }

    pub fn aliases(&self, kind: RecordKind) -> String {
        format!("{}:alias:{}", self.prefix, kind.name())
    }

    /// The prefix of the account's lead keys; the lead scripts append ids to it.
    pub fn lead_prefix(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:l:", self.prefix)
    }

    pub fn lead(&self, account: AccountId, lead: LeadId) -> String {
        format!("{}{lead}", self.lead_prefix(account))
    }

    pub fn lead_timeline(&self, account: AccountId, lead: LeadId) -> String {
        format!("{}{lead}:t", self.lead_prefix(account))
    }

    /// The lead a browser of the account belongs to (expires with the retention).
    pub fn browser(&self, account: AccountId, visitor: VisitorId) -> String {
        format!("{}:{{a{account}}}:b:{visitor}", self.prefix)
    }

    /// A submission's fingerprint, kept for the duplicate window.
    pub fn submission(&self, account: AccountId, fingerprint: &str) -> String {
        format!("{}:{{a{account}}}:sub:{fingerprint}", self.prefix)
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

    /// A quota's counter (`domain::quota`), in its account's slot.
    pub fn quota(&self, account: AccountId, quota: &crate::domain::quota::Quota) -> String {
        format!("{}:{{a{account}}}:{}", self.prefix, quota.key_suffix())
    }

    pub fn contacts(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:contacts", self.prefix)
    }

    /// The account's erasure audit: a list of JSON records, newest first.
    pub fn privacy_audit(&self, account: AccountId) -> String {
        format!("{}:{{a{account}}}:audit", self.prefix)
    }

    /// The pub/sub channel of live updates.
    pub fn live_channel(&self) -> String {
        format!("{}:live", self.prefix)
    }

    /// When the visitor was last seen on a site (a visit ends after the idle gap).
    pub fn visitor_seen(&self, v: VisitorId, site: SiteId) -> String {
        self.visitor_key(v, ":s", &site.0.to_string())
    }

    /// One of a site's statistics keys of a day (`stats.rs`), in the site's own slot.
    pub fn site_stats(&self, site: SiteId, day: u32, kind: &str) -> String {
        format!("{}:{{s{site}}}:st:{kind}:{day}", self.prefix)
    }

    /// The visit of the visitor on a site watched for conditional actions
    /// (`watches.rs`).
    pub fn visitor_watch(&self, v: VisitorId, site: SiteId) -> String {
        self.visitor_key(v, ":w", &site.0.to_string())
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
