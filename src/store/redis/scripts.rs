//! The Lua scripts of the Redis store: the steps that must read and write atomically.
//! Each touches the keys of one hash slot only.

use std::sync::LazyLock;

use ::redis::Script;

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

/// Numbers a new visit and records it, trims the page-view history, refreshes expiry and
/// tells the visitor's lead.
/// KEYS: visitor hash, visits list, page-view list. ARGV: encoded visit, ttl seconds,
/// max page views (and visits) kept. Returns {number, lead or nil}.
pub static START_VISIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local keep = tonumber(ARGV[3])
redis.call('RPUSH', KEYS[2], n .. '\t' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -keep, -1)
redis.call('LTRIM', KEYS[3], 0, keep - 1)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return {n, redis.call('HGET', KEYS[1], 'l')}
"#,
    )
});

/// Links a visitor to a lead. KEYS: visitor hash. ARGV: lead, now, ttl seconds.
/// Returns the previous lead or nil.
pub static LINK_VISITOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local prev = redis.call('HGET', KEYS[1], 'l')
redis.call('HSET', KEYS[1], 'l', ARGV[1], 'lt', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return prev
"#,
    )
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
