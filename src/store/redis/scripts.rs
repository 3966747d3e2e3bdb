//! The Lua scripts of a browser's history, the catalog and the schedule: the steps that
//! must read and write atomically. Each touches the keys of one hash slot only. The lead
//! scripts are in `lead_scripts.rs`.

use std::sync::LazyLock;

use ::redis::{Script, ToRedisArgs};

/// A script call built before its keys are all known, for a batch (`Batch::call`), where
/// it goes as `EVALSHA` by the script's hash. Used for the writes that wait for a replica in
/// the same round trip (`RedisStore::invoke_durable`).
pub struct Call<'a> {
    pub script: &'a Script,
    pub keys: Vec<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
}

impl<'a> Call<'a> {
    pub fn new(script: &'a Script) -> Self {
        Self {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }
}

/// Sets a visitor's last sighting unless a later one is set, with an expiry: the page-view
/// writer's write-back, sent inside its pipelines. KEYS: sighting. ARGV: time, ttl in ms.
pub static SET_SIGHTING_IF_LATER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) \
    then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0",
    )
});

/// A browser's history is its meta element (`~visits`) at the head, then its page views
/// oldest first (each appended with RPUSH). These helpers are shared by the scripts below.
pub const HISTORY_LUA: &str = r#"
local function read_visits(key)
  local meta = redis.call('LINDEX', key, 0)
  if meta and string.sub(meta, 1, 1) == '~' then
    return true, tonumber(string.match(meta, '^~(%d+)')) or 0
  end
  return false, 0
end
local function trim(key, keep)
  if redis.call('LLEN', key) <= keep + 1 then return end
  local has = read_visits(key)
  if has then
    local meta = redis.call('LPOP', key)
    redis.call('LTRIM', key, -keep, -1)
    redis.call('LPUSH', key, meta)
  else
    redis.call('LTRIM', key, -keep, -1)
  end
end
"#;

/// How many visits the browser has made. KEYS: history. Returns the count. Sent in a
/// batch.
pub static READ_VISITS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
local has, visits = read_visits(KEYS[1])
return visits
"#
    ))
});

/// Counts a new visit, trims the history, refreshes its expiry and tells the visit's
/// number. KEYS: history. ARGV: ttl seconds, page views kept, anonymous ttl seconds.
/// A first visit gets the anonymous ttl unless a link to a lead gave the history a
/// longer one (a link leaves a visit count: `KEEP_HISTORY`; the provisional expiry of a
/// history its page views alone made is replaced); a returning browser gets the full
/// ttl. Sent in a batch.
pub static START_VISIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
local has, visits = read_visits(KEYS[1])
visits = visits + 1
if has then redis.call('LSET', KEYS[1], 0, '~' .. visits)
else redis.call('LPUSH', KEYS[1], '~' .. visits) end
trim(KEYS[1], tonumber(ARGV[2]))
if visits > 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
elseif not has or redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return visits
"#
    ))
});

/// A browser linked to a lead keeps its history the full retention: extends the
/// history's expiry, or starts an empty one, and gives it a visit count (0 when it has
/// none yet) so that a first visit will not shorten it. KEYS: history. ARGV: ttl
/// seconds. Sent in the submission's batch.
pub static KEEP_HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{KEEP_HISTORY_LUA}{}",
        r#"
keep_history(KEYS[1], ARGV[1])
return 1
"#
    ))
});

/// `keep_history(key, ttl)`: what [`KEEP_HISTORY`] does, for the scripts that keep a
/// browser's history among other work (the charged reservation's guard). Needs
/// [`HISTORY_LUA`] before it.
pub const KEEP_HISTORY_LUA: &str = r#"
local function keep_history(key, ttl)
  if not read_visits(key) then redis.call('LPUSH', key, '~0') end
  redis.call('EXPIRE', key, ttl)
end
"#;

/// Keeps the newest page views of a history (and its meta). KEYS: history. ARGV: kept.
pub static TRIM_HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
trim(KEYS[1], tonumber(ARGV[1]))
return 1
"#
    ))
});

/// Stores a catalog record, keeping its place in creation order and counting a change of
/// the catalog. KEYS: records, order, catalog version. ARGV: id, json.
pub static PUT_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local version = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', version, ARGV[1])
return version
"#,
    )
});

/// Deletes a catalog record. KEYS: records, order, catalog version. ARGV: id.
/// Returns 1 when it existed.
pub static DELETE_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
"#,
    )
});

/// An account's records of a kind in creation order. KEYS: records, order.
pub static LIST_RECORDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for i = 1, #ids, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #ids) do chunk[#chunk + 1] = ids[j] end
  for _, json in ipairs(redis.call('HMGET', KEYS[1], unpack(chunk))) do
    if json then out[#out + 1] = json end
  end
end
return out
"#,
    )
});

/// Claims due events of schedule shards, in the order given, up to `max` in all: each is
/// leased (its score moved to the lease end) and returned with its record. An id without
/// a record is dropped. One call takes every shard on one server; on a cluster, whose
/// shards are in slots of their own, one call per shard.
/// KEYS: the shards' schedules. ARGV: now, lease end, max, then each shard's event key
/// prefix.
pub static CLAIM_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local left = tonumber(ARGV[3])
local out = {}
for i, schedule in ipairs(KEYS) do
  if left <= 0 then break end
  local ids = redis.call('ZRANGEBYSCORE', schedule, '-inf', ARGV[1], 'LIMIT', 0, left)
  for _, id in ipairs(ids) do
    local record = redis.call('GET', ARGV[3 + i] .. id)
    if record then
      redis.call('ZADD', schedule, ARGV[2], id)
      out[#out + 1] = record
      left = left - 1
    else
      redis.call('ZREM', schedule, id)
    end
  end
end
return out
"#,
    )
});
