//! The Lua scripts of the Redis store: the steps that must read and write atomically.
//! Each touches the keys of one hash slot only.

use std::sync::LazyLock;

use ::redis::Script;

/// Sets a visitor's last sighting unless a later one is set, with an expiry: the page-view
/// writer's write-back, sent with EVAL inside its pipelines. KEYS: sighting. ARGV: time,
/// ttl in ms.
pub const SET_SIGHTING_IF_LATER: &str = "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) \
    then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0";

/// Moves a lead when it stands where the caller expects (or unconditionally).
/// KEYS: lead hash. ARGV: to pipeline, to status, now, expected pipeline or "", expected
/// status or "". Returns {"moved"|"conflict", pipeline, status} or nil when absent.
pub static MOVE_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('HMGET', KEYS[1], 'p', 's')
if not cur[1] then return false end
if ARGV[4] ~= '' and (cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5]) then
  return {'conflict', cur[1], cur[2]}
end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 's', ARGV[2], 'u', ARGV[3])
return {'moved', cur[1], cur[2]}
"#,
    )
});

/// Renames a lead if it exists. KEYS: lead hash. ARGV: name, now. Returns 1 or 0.
pub static RENAME_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'u', ARGV[2])
return 1
"#,
    )
});

/// A visitor's history is its page views, oldest first (each appended with RPUSH), behind
/// a meta element at the head (`~visits|lead|linked_at`). Histories written by earlier
/// builds hold the page views newest first and the meta (if any) at the tail, and page
/// views appended to them since follow it: the first script to read the meta of such a
/// history finds the head is no meta and puts the history in order (by page-view time)
/// once. These helpers are shared by the scripts below.
const HISTORY_LUA: &str = r#"
local function is_meta(item)
  return item and string.sub(item, 1, 1) == '~'
end
local function in_order(key)
  local items = redis.call('LRANGE', key, 0, -1)
  local meta, views, sorted = nil, {}, true
  for i, item in ipairs(items) do
    if is_meta(item) then
      meta = item
      if i > 1 then sorted = false end
    else
      local at = tonumber(string.match(item, '^(%d+)')) or 0
      if #views > 0 and at < views[#views][1] then sorted = false end
      views[#views + 1] = {at, i, item}
    end
  end
  if sorted then return end
  table.sort(views, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local ttl = redis.call('PTTL', key)
  redis.call('DEL', key)
  if meta then redis.call('RPUSH', key, meta) end
  for i = 1, #views, 1000 do
    local chunk = {}
    for j = i, math.min(i + 999, #views) do chunk[#chunk + 1] = views[j][3] end
    redis.call('RPUSH', key, unpack(chunk))
  end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local function read_meta(key)
  local meta = redis.call('LINDEX', key, 0)
  if not is_meta(meta) and redis.call('EXISTS', key) == 1 then
    in_order(key)
    meta = redis.call('LINDEX', key, 0)
  end
  if is_meta(meta) then
    local visits, lead, linked = string.match(meta, '^~(%d+)|(%d*)|(%d*)$')
    return true, tonumber(visits) or 0, lead or '', linked or ''
  end
  return false, 0, '', ''
end
local function write_meta(key, has, visits, lead, linked)
  local meta = '~' .. visits .. '|' .. lead .. '|' .. linked
  if has then redis.call('LSET', key, 0, meta) else redis.call('LPUSH', key, meta) end
end
local function trim(key, keep)
  if redis.call('LLEN', key) <= keep + 1 then return end
  local has = read_meta(key)
  if has then
    local meta = redis.call('LPOP', key)
    redis.call('LTRIM', key, -keep, -1)
    redis.call('LPUSH', key, meta)
  else
    redis.call('LTRIM', key, -keep, -1)
  end
end
"#;

/// The visitor's meta, its history put in order first when need be. KEYS: history.
/// Returns {visits, lead} ({0, ""} for no history).
pub static READ_VISITOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
local has, visits, lead = read_meta(KEYS[1])
return {visits, lead}
"#
    ))
});

/// Counts a new visit, trims the history, refreshes its expiry, tells the visit's number
/// and the lead. KEYS: history. ARGV: ttl seconds, page views kept. Returns {visits, lead}.
pub static START_VISIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
local has, visits, lead, linked = read_meta(KEYS[1])
visits = visits + 1
write_meta(KEYS[1], has, visits, lead, linked)
trim(KEYS[1], tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {visits, lead}
"#
    ))
});

/// Links a visitor to a lead. KEYS: history. ARGV: lead, now, ttl seconds.
/// Returns the previous lead or "".
pub static LINK_VISITOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HISTORY_LUA}{}",
        r#"
local has, visits, lead, linked = read_meta(KEYS[1])
write_meta(KEYS[1], has, visits, ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return lead
"#
    ))
});

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

/// Claims due events of one schedule shard: each is leased (its score moved to the lease
/// end) and returned with its record. An id without a record is dropped.
/// KEYS: schedule. ARGV: now, lease end, max, event key prefix.
pub static CLAIM_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local record = redis.call('GET', ARGV[4] .. id)
  if record then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = record
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"#,
    )
});
