//! Quotas on Redis: GCRA counters (`domain::quota`) in the account's slot, charged with
//! Redis's clock (`TIME`) so that every instance agrees, all-or-nothing in one script.
//!
//! The charge rides the work it guards, in the same script and round trip: the charged
//! page views of a page-view writer's batch go through its pipeline as one `EVAL` that
//! reads each counter once, charges and records page view by page view, and writes each
//! counter once (`CHARGED_PAGE_VIEWS`); a submission's reservation
//! charges, checks the Unsorted bound and keeps the browser's history in one script. A
//! refused request writes nothing. These scripts cross slots (the account's and the
//! browser's), which one server or a Sentinel-watched primary allows; on a Redis Cluster
//! the charge is a round trip of its own before the work (a page view then takes two).

use std::collections::HashMap;

use ::redis::FromRedisValue;
use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, Value};
use async_trait::async_trait;

use super::RedisStore;
use super::keys::Keys;
use super::lead_scripts;
use super::scripts::Call;
use crate::domain::ids::{AccountId, LeadId};
use crate::domain::quota::Quota;
use crate::domain::time::Millis;
use crate::domain::visitor::VisitorId;
use crate::store::quotas::{Charge, Charged, LinkOutcome, Quotas};
use crate::store::{
    Leads, PageViewOutcome, PageViewWrite, Reserved, StoreResult, Visitors, corrupt,
};

/// `charge(n)`: KEYS[1..n] are quota counters, ARGV[1] is n, ARGV[2i], ARGV[2i+1] the
/// interval and capacity (µs) of counter i. Charges all or none; `nil` when admitted,
/// else `{i, wait_ms}` for the counter that waits longest.
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
  if worst > 0 then return {worst, math.ceil(wait / 1000)} end
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
  return nil
end
local n = tonumber(ARGV[1])
local base = 2 * n + 1
"#;

/// A charge alone. KEYS, ARGV: as `charge`. Returns `{0}` or `{i, wait_ms}`.
fn charge_only() -> String {
    format!("{CHARGE_LUA}local refused = charge(n) if refused then return refused end return {{0}}")
}

/// The charged page views of one writer batch, in one script: the counters are read once,
/// charged page view by page view in order (each all-or-nothing, exactly as one script
/// per page view would), and written once — so their cost per beacon falls as batches
/// fill. KEYS: the n distinct counters, then per page view its sighting and history.
/// ARGV[1] is n; ARGV[2i], ARGV[2i+1] the interval and capacity (µs) of counter i; then
/// per page view: its number of counters m, their indexes, whether to set the sighting
/// (1/0), the page view's time, the sighting's PX, the encoded page view. Returns per page
/// view `{0, previous sighting, history length}` or `{j, wait_ms}` for its j-th counter.
const CHARGED_PAGE_VIEWS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local tats, used = {}, {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
end
local out = {}
local a, k = 2 * n + 2, n + 1
while a <= #ARGV do
  local m = tonumber(ARGV[a])
  local worst, wait = 0, 0
  for j = 1, m do
    local i = tonumber(ARGV[a + j])
    local over = tats[i] + tonumber(ARGV[2 * i]) - now - tonumber(ARGV[2 * i + 1])
    if over > wait then worst, wait = j, over end
  end
  local p = a + m
  if worst > 0 then
    out[#out + 1] = {worst, math.ceil(wait / 1000)}
  else
    for j = 1, m do
      local i = tonumber(ARGV[a + j])
      tats[i] = tats[i] + tonumber(ARGV[2 * i])
      used[i] = true
    end
    local previous = false
    if ARGV[p + 1] == '1' then
      previous = redis.call('SET', KEYS[k], ARGV[p + 2], 'GET', 'PX', ARGV[p + 3])
    end
    out[#out + 1] = {0, previous, redis.call('RPUSH', KEYS[k + 1], ARGV[p + 4])}
  end
  a, k = p + 5, k + 2
end
for i = 1, n do
  if used[i] then
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return out
"#;

/// A charged reservation's guard. KEYS: the counters, the account's Unsorted, the
/// browser's history (not on a cluster, where the reservation keeps it). ARGV after the counters': the Unsorted bound (0: none), the
/// history's retention. Returns `{0}`, `{i, wait_ms}`, or `{-1}` when Unsorted is full.
fn charged_reservation() -> String {
    format!(
        "{CHARGE_LUA}{}",
        r#"
local most = tonumber(ARGV[base + 1])
if most > 0 and redis.call('HLEN', KEYS[n + 1]) >= most then return {-1} end
local refused = charge(n)
if refused then return refused end
local history = KEYS[n + 2]
if history then
  if redis.call('EXISTS', history) == 0 then redis.call('RPUSH', history, '~0') end
  redis.call('EXPIRE', history, ARGV[base + 2])
end
return {0}
"#
    )
}

static CHARGE_ONLY: std::sync::LazyLock<String> = std::sync::LazyLock::new(charge_only);
static CHARGED_RESERVATION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(charged_reservation);

/// An `EVAL` of `script` with the charge's counters first, then `keys`; the counters'
/// arguments, then `args` are added by the caller.
fn eval(script: &str, keys: &Keys, charge: &Charge, more_keys: &[&str]) -> Cmd {
    let mut cmd = ::redis::cmd("EVAL");
    cmd.arg(script).arg(charge.quotas.len() + more_keys.len());
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

/// The charged page views of a writer's batch, gathered into one command
/// (`CHARGED_PAGE_VIEWS`).
#[derive(Default)]
pub struct ChargedPageViews {
    /// The distinct counters: key, interval and capacity (µs).
    counters: Vec<(String, u64, u64)>,
    index: HashMap<String, usize>,
    /// Per page view: its sighting and history.
    keys: Vec<String>,
    args: Vec<String>,
}

impl ChargedPageViews {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a page view charged against `charge`.
    pub fn add(
        &mut self,
        keys: &Keys,
        write: &PageViewWrite,
        charge: &Charge,
        set_sighting: bool,
        px: i64,
        element: String,
    ) {
        self.args.push(charge.quotas.len().to_string());
        for q in &charge.quotas {
            let key = keys.quota(charge.account, q);
            let next = self.counters.len() + 1;
            let i = *self.index.entry(key.clone()).or_insert_with(|| {
                self.counters
                    .push((key, q.limit.interval_us, q.limit.capacity_us));
                next
            });
            self.args.push(i.to_string());
        }
        self.keys
            .push(keys.visitor_seen(write.visitor, write.page_view.site_id));
        self.keys
            .push(keys.visitor_history(write.account, write.visitor));
        self.args.push(u8::from(set_sighting).to_string());
        self.args.push(write.page_view.at.to_string());
        self.args.push(px.to_string());
        self.args.push(element);
    }

    /// The one command, and a key of it (for the pipeline; these never run on a cluster).
    pub fn command(self) -> (String, Cmd) {
        let mut cmd = ::redis::cmd("EVAL");
        cmd.arg(CHARGED_PAGE_VIEWS)
            .arg(self.counters.len() + self.keys.len());
        for (key, _, _) in &self.counters {
            cmd.arg(key);
        }
        cmd.arg(&self.keys).arg(self.counters.len());
        for (_, interval, capacity) in &self.counters {
            cmd.arg(interval).arg(capacity);
        }
        cmd.arg(&self.args);
        (self.keys[0].clone(), cmd)
    }
}

/// The answers of `ChargedPageViews`'s command, one per page view in order.
pub fn page_view_replies(value: Option<Value>) -> StoreResult<std::vec::IntoIter<Value>> {
    let value = value.ok_or_else(|| corrupt("short pipeline reply"))?;
    Ok(Vec::<Value>::from_redis_value(value)
        .map_err(corrupt)?
        .into_iter())
}

/// A charged page view's answer: the previous sighting and the history's length, or the
/// refusing counter's index and wait (ms).
pub type PageViewReply = Result<(Option<i64>, u64), (usize, u64)>;

/// Reads the answer of a charged page view.
pub fn page_view_reply(value: Option<Value>) -> StoreResult<PageViewReply> {
    let value = value.ok_or_else(|| corrupt("short pipeline reply"))?;
    let mut items = Vec::<Value>::from_redis_value(value)
        .map_err(corrupt)?
        .into_iter();
    let head = i64::from_redis_value(items.next().unwrap_or(Value::Nil)).map_err(corrupt)?;
    let second = items.next().unwrap_or(Value::Nil);
    if head > 0 {
        let wait = u64::from_redis_value(second).map_err(corrupt)?;
        return Ok(Err((head as usize - 1, wait)));
    }
    let previous = Option::<i64>::from_redis_value(second).map_err(corrupt)?;
    let len = u64::from_redis_value(items.next().unwrap_or(Value::Nil)).map_err(corrupt)?;
    Ok(Ok((previous, len)))
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

fn refusal(charge: &Charge, index: Option<usize>, wait_ms: u64) -> crate::domain::quota::OverQuota {
    match index {
        Some(i) => charge.refused(i, wait_ms),
        None => crate::domain::quota::OverQuota::UNSORTED_FULL,
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A charge in a round trip of its own (a Redis Cluster, whose scripts stay in one
    /// slot).
    async fn charge_alone(&self, charge: &Charge) -> StoreResult<Charged<()>> {
        let cmd = eval(&CHARGE_ONLY, &self.keys, charge, &[]);
        let value: Value = self.query(&cmd).await?;
        Ok(verdict(value)?.map_err(|(i, wait)| refusal(charge, i, wait)))
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
        if self.by_slot {
            if let Err(refused) = self.charge_alone(&charge).await? {
                return Ok(Err(refused));
            }
            return self.record_page_view(write).await.map(Ok);
        }
        self.page_views.record_charged(write, charge).await
    }

    async fn reserve_submission_charged(
        &self,
        account: AccountId,
        visitor: VisitorId,
        retention_secs: u64,
        charge: Charge,
        max_unsorted: u64,
    ) -> StoreResult<Charged<Reserved>> {
        if charge.quotas.is_empty() && max_unsorted == 0 {
            return self
                .reserve_submission(account, visitor, retention_secs)
                .await
                .map(Ok);
        }
        let unsorted = self.keys.unsorted(account);
        let history = self.keys.visitor_history(account, visitor);
        if self.by_slot {
            let mut guard = eval(&CHARGED_RESERVATION, &self.keys, &charge, &[&unsorted]);
            // On a cluster the guard stays in the account's slot: the history is kept by
            // the reservation that follows.
            guard.arg(max_unsorted).arg(0);
            let value: Value = self.query(&guard).await?;
            if let Err((i, wait)) = verdict(value)? {
                return Ok(Err(refusal(&charge, i, wait)));
            }
            return self
                .reserve_submission(account, visitor, retention_secs)
                .await
                .map(Ok);
        }
        let mut guard = eval(
            &CHARGED_RESERVATION,
            &self.keys,
            &charge,
            &[&unsorted, &history],
        );
        guard.arg(max_unsorted).arg(retention_secs.max(1));
        let mut batch = self.batch();
        batch.add(&unsorted, guard);
        let (mut replies, reserved) = self.reservation(batch, account, visitor, None).await?;
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
