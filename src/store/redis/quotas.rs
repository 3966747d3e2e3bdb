//! Quotas on Redis: GCRA counters (`domain::quota`) in the account's slot, charged with
//! Redis's clock (`TIME`) so that every instance agrees, all-or-nothing in one script.
//!
//! A submission's charge rides the work it guards, in the same script and round trip: its
//! reservation charges, checks the Unsorted bound and keeps the browser's history in one
//! script (on a Redis Cluster, whose scripts stay in one slot, the guard is a round trip
//! of its own). Page views are charged by their writer a batch at a time
//! (`CHARGE_BATCH`): one script per account reads each counter once, charges page view
//! by page view in order — each all-or-nothing, exactly as one at a time — and writes
//! each counter once; then the admitted page views are written by the usual pipeline.
//! Two round trips per batch instead of one, but the page views stay native commands
//! (in a script each cost Redis five times as much: BENCHMARKS.md). A refused request
//! writes nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use ::redis::FromRedisValue;
use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, Script, Value};
use async_trait::async_trait;

use super::RedisStore;
use super::keys::Keys;
use super::lead_scripts;
use super::scripts::{Call, HISTORY_LUA, KEEP_HISTORY_LUA};
use super::slots::Batch;
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::quota::{Quota, QuotaKind, Scope};
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::quotas::{Charge, Charged, LinkOutcome, Quotas};
use crate::store::{
    Leads, PageViewOutcome, PageViewWrite, Reserved, StoreResult, Visitors, corrupt,
};

/// `charge(n)`: KEYS[1..n] are quota counters, ARGV[1] is n, ARGV[2i], ARGV[2i+1] the
/// interval and capacity (µs) of counter i. Charges all or none; `nil` when admitted,
/// else `{i, wait_us}` for the counter that waits longest.
const CHARGE_LUA: &str = r#"
local function charge(n)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tats, worst, wait = {}, 0, 0
  for i = 1, n do
    local interval, capacity = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    local new = tat + interval
    local over = new - now - capacity
    if over > wait then worst, wait = i, over end
    tats[i] = new
  end
  if worst > 0 then return {worst, wait} end
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
  return nil
end
local n = tonumber(ARGV[1])
local base = 2 * n + 1
"#;

/// The charges of one account's page views in a writer batch, page views with the same
/// counters in a group. KEYS: the account's distinct counters. ARGV[2i-1], ARGV[2i]: the
/// interval and capacity (µs) of counter i; then per group its number of page views c, of
/// counters m, and their indexes. A group is charged as its page views would be one after
/// another (the first k admitted, each taking one interval of every counter; the rest
/// refused, which takes nothing). Returns three numbers per group: k, and for the
/// refused, `j, wait_us` of their j-th counter, the one that waits longest (`0, 0` when
/// all are admitted).
pub static CHARGE_BATCH: LazyLock<Script> = LazyLock::new(|| Script::new(CHARGE_BATCH_LUA));
const CHARGE_BATCH_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, interval, capacity, used = {}, {}, {}, {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i], interval[i], capacity[i] = tat, tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
end
local out, a, n = {}, 2 * #KEYS + 1, #ARGV
while a <= n do
  local c, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local k = c
  for j = 1, m do
    local i = tonumber(ARGV[a + 1 + j])
    local room = math.floor((now + capacity[i] - tats[i]) / interval[i])
    if room < k then k = room end
  end
  if k < 0 then k = 0 end
  local worst, wait = 0, 0
  for j = 1, m do
    local i = tonumber(ARGV[a + 1 + j])
    if k > 0 then
      tats[i] = tats[i] + k * interval[i]
      used[i] = true
    end
    local over = tats[i] + interval[i] - now - capacity[i]
    if k < c and over > wait then worst, wait = j, over end
  end
  out[#out + 1] = k
  out[#out + 1] = worst
  out[#out + 1] = wait
  a = a + m + 2
end
for i = 1, #KEYS do
  if used[i] then
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return out
"#;

/// A charged reservation's guard. KEYS: the counters, the account's Unsorted, the
/// browser's history (not on a cluster, where the reservation keeps it). ARGV after the
/// counters': the Unsorted bound (0: none), the history's retention. The history is kept
/// by `KEEP_HISTORY`'s own Lua: with a visit count, so that a first visit will not
/// shorten it. Returns `{0}`, `{i, wait_us}`, or `{-1}` when Unsorted is full.
static CHARGED_RESERVATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{CHARGE_LUA}{HISTORY_LUA}{KEEP_HISTORY_LUA}{}",
        r#"
local most = tonumber(ARGV[base + 1])
if most > 0 and redis.call('HLEN', KEYS[n + 1]) >= most then return {-1} end
local refused = charge(n)
if refused then return refused end
if KEYS[n + 2] then keep_history(KEYS[n + 2], ARGV[base + 2]) end
return {0}
"#
    ))
});

/// Adds a call of the reservation's guard to `batch`, with the charge's counters first,
/// then `more_keys` (the first of them, the account's Unsorted, decides the slot); the
/// counters' arguments are added, the rest by the caller.
fn add_guard<'b>(
    batch: &'b mut Batch,
    keys: &Keys,
    charge: &Charge,
    more_keys: &[&str],
) -> &'b mut Cmd {
    let cmd = batch.script(
        more_keys[0],
        &CHARGED_RESERVATION,
        charge.quotas.len() + more_keys.len(),
    );
    for q in &charge.quotas {
        cmd.arg(keys.quota(charge.account, q));
    }
    for k in more_keys {
        cmd.arg(*k);
    }
    cmd.arg(charge.quotas.len());
    for q in &charge.quotas {
        cmd.arg(q.limit.interval_us).arg(q.limit.capacity_us);
    }
    cmd
}

/// One account's charges of the page views in a writer's batch, gathered into one command
/// (`CHARGE_BATCH`).
pub struct ChargeBatch {
    account: AccountId,
    /// The distinct counters: key, interval and capacity (µs).
    counters: Vec<(String, u64, u64)>,
    index: HashMap<(QuotaKind, Scope), usize>,
    /// Page views with the same counters: the counters' indexes (from 1), and the page
    /// views' places in the writer's batch.
    groups: Vec<(Vec<usize>, Vec<usize>)>,
    group_of: HashMap<Vec<usize>, usize>,
}

/// A page view's verdict: admitted, or refused by the counter at that index of its
/// charge, for that long (µs).
pub type Verdict = Result<(), (usize, u64)>;

impl ChargeBatch {
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            counters: Vec::new(),
            index: HashMap::new(),
            groups: Vec::new(),
            group_of: HashMap::new(),
        }
    }

    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Adds the charge of the page view at `place` in the batch (of this account).
    pub fn add(&mut self, keys: &Keys, charge: &Charge, place: usize) {
        let mut counters = Vec::with_capacity(charge.quotas.len());
        for q in &charge.quotas {
            let next = self.counters.len() + 1;
            let i = *self.index.entry((q.kind, q.scope)).or_insert_with(|| {
                let key = keys.quota(self.account, q);
                self.counters
                    .push((key, q.limit.interval_us, q.limit.capacity_us));
                next
            });
            counters.push(i);
        }
        let group = match self.group_of.get(&counters) {
            Some(&g) => g,
            None => {
                self.group_of.insert(counters.clone(), self.groups.len());
                self.groups.push((counters, Vec::new()));
                self.groups.len() - 1
            }
        };
        self.groups[group].1.push(place);
    }

    /// Adds the one command to `commands`, in the account's slot.
    pub fn add_to(&self, commands: &mut Batch) {
        let key = self.counters.first().map_or("", |(k, _, _)| k.as_str());
        let cmd = commands.script(key, &CHARGE_BATCH, self.counters.len());
        for (key, _, _) in &self.counters {
            cmd.arg(key);
        }
        for (_, interval, capacity) in &self.counters {
            cmd.arg(interval).arg(capacity);
        }
        for (counters, places) in &self.groups {
            cmd.arg(places.len()).arg(counters.len()).arg(counters);
        }
    }

    /// The verdict on each page view, by its place in the batch, from the command's
    /// answer.
    pub fn verdicts(&self, value: Value) -> StoreResult<Vec<(usize, Verdict)>> {
        let flat = Vec::<i64>::from_redis_value(value).map_err(corrupt)?;
        if flat.len() != 3 * self.groups.len() {
            return Err(corrupt("quota batch reply"));
        }
        let mut out = Vec::new();
        for ((_, places), answer) in self.groups.iter().zip(flat.chunks_exact(3)) {
            let admitted = answer[0].max(0) as usize;
            let refused = (answer[1].max(1) as usize - 1, answer[2].max(0) as u64);
            for (n, &place) in places.iter().enumerate() {
                out.push((place, if n < admitted { Ok(()) } else { Err(refused) }));
            }
        }
        Ok(out)
    }
}

/// `{0}` / `{i, wait}` / `{-1}` of a charge: admitted, refused by counter i, or Unsorted
/// full (`None` for the index).
fn verdict(value: Value) -> StoreResult<Result<(), (Option<usize>, u64)>> {
    let items = Vec::<i64>::from_redis_value(value).map_err(corrupt)?;
    match items.as_slice() {
        [0, ..] => Ok(Ok(())),
        [-1, ..] => Ok(Err((None, 0))),
        [i, wait] if *i > 0 => Ok(Err((Some(*i as usize - 1), (*wait).max(0) as u64))),
        _ => Err(corrupt("quota reply")),
    }
}

fn refusal(charge: &Charge, index: Option<usize>, wait_us: u64) -> crate::domain::quota::OverQuota {
    match index {
        Some(i) => charge.refused(i, wait_us),
        None => crate::domain::quota::OverQuota::UNSORTED_FULL,
    }
}

#[async_trait]
impl<C> Quotas for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn record_page_view_charged(
        &self,
        write: PageViewWrite,
        charge: Charge,
    ) -> StoreResult<Charged<PageViewOutcome>> {
        if charge.quotas.is_empty() {
            return self.record_page_view(write).await.map(Ok);
        }
        self.page_views.record_charged(write, charge).await
    }

    async fn reserve_submission_charged(
        &self,
        account: AccountId,
        browser: Option<VisitorId>,
        retention_secs: u64,
        charge: Charge,
        max_unsorted: u64,
    ) -> StoreResult<Charged<Reserved>> {
        if charge.quotas.is_empty() && max_unsorted == 0 {
            return self
                .reserve_submission(account, browser, retention_secs)
                .await
                .map(Ok);
        }
        let unsorted = self.keys.unsorted(account);
        if self.by_slot {
            // On a cluster the guard stays in the account's slot: the history is kept by
            // the reservation that follows.
            let mut batch = self.batch();
            add_guard(&mut batch, &self.keys, &charge, &[&unsorted])
                .arg(max_unsorted)
                .arg(0);
            let value = self.run(batch).await?.pop().unwrap_or(Value::Nil);
            if let Err((i, wait)) = verdict(value)? {
                return Ok(Err(refusal(&charge, i, wait)));
            }
            return self
                .reserve_submission(account, browser, retention_secs)
                .await
                .map(Ok);
        }
        // One round trip: the guard keeps the browser's history once it admits.
        let history = browser.map(|v| self.keys.visitor_history(account, v));
        let mut keys = vec![unsorted.as_str()];
        keys.extend(history.as_deref());
        let mut batch = self.batch();
        add_guard(&mut batch, &self.keys, &charge, &keys)
            .arg(max_unsorted)
            .arg(retention_secs.max(1));
        let (mut replies, reserved) = self.reservation(batch, account, browser, None).await?;
        let verdict = verdict(replies.remove(0))?;
        match verdict {
            Err((i, wait)) => Ok(Err(refusal(&charge, i, wait))),
            Ok(()) => reserved.map(Ok),
        }
    }

    async fn link_visitor_bounded(
        &self,
        account: AccountId,
        lead: LeadId,
        visitor: VisitorId,
        at: Millis,
        retention_secs: u64,
        most: u64,
    ) -> StoreResult<LinkOutcome> {
        let reply: Vec<String> = self
            .invoke_durable(
                Call::new(&lead_scripts::LINK_VISITOR)
                    .key(self.keys.lead(account, lead))
                    .key(self.keys.browser(account, visitor))
                    .arg(self.keys.lead_prefix(account))
                    .arg(visitor.encode())
                    .arg(lead.0)
                    .arg(at)
                    .arg(retention_secs.max(1))
                    .arg(most),
            )
            .await?;
        match reply.as_slice() {
            [outcome] if outcome == "not_found" => Ok(LinkOutcome::NotFound),
            [outcome] if outcome == "full" => Ok(LinkOutcome::Full),
            [outcome, previous] if outcome == "linked" => Ok(LinkOutcome::Linked {
                previous: if previous.is_empty() {
                    None
                } else {
                    Some(LeadId(previous.parse().map_err(corrupt)?))
                },
            }),
            other => Err(corrupt(format!("link_visitor answered {other:?}"))),
        }
    }

    async fn quota_levels(
        &self,
        account: AccountId,
        quotas: &[Quota],
    ) -> StoreResult<(Vec<i64>, i64)> {
        let mut batch = self.batch();
        let time_key = self.keys.catalog_version(account);
        batch.add(&time_key, ::redis::cmd("TIME"));
        for q in quotas {
            let key = self.keys.quota(account, q);
            let mut get = ::redis::cmd("GET");
            get.arg(&key);
            batch.add(&key, get);
        }
        let mut replies = self.run(batch).await?.into_iter();
        let time =
            Vec::<i64>::from_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(corrupt)?;
        let now =
            time.first().copied().unwrap_or(0) * 1_000_000 + time.get(1).copied().unwrap_or(0);
        let tats = replies
            .map(|v| {
                Option::<String>::from_redis_value(v)
                    .map_err(corrupt)
                    .map(|s| s.and_then(|s| s.parse().ok()).unwrap_or(0))
            })
            .collect::<StoreResult<Vec<i64>>>()?;
        Ok((tats, now))
    }
}
