//! The lead scripts: each is one atomic step on the keys of one account's slot. Timeline
//! entries come as JSON from Rust (typed there); a script adds only what it alone knows —
//! the stage a lead left, the lead a browser left — as the entry's last field.

use std::sync::LazyLock;

use ::redis::Script;

/// Shared by the scripts: a lead's keys from the account's lead prefix, an entry with one
/// more field, and linking a browser to a lead.
///
/// A lead's browser link is its hash field `v:<visitor>` = `linked_at|since|until`.
pub(super) const LEAD_LUA: &str = r#"
local function with_field(json, name, raw)
  return string.sub(json, 1, -2) .. ',"' .. name .. '":' .. raw .. '}'
end
local function stage_json(p, s)
  return '{"pipeline_id":' .. p .. ',"status_id":' .. s .. '}'
end
-- Links browser `v` to lead `lead` (ids as strings) at `at`; returns the lead it left or
-- false. `browser` is the browser's link key in the account's slot, kept `ttl` seconds.
local function link(prefix, browser, v, lead, at, ttl)
  local prev = redis.call('GET', browser)
  -- Linked to this lead already: the link stays as it is (its window too), kept longer.
  if prev == lead and redis.call('HEXISTS', prefix .. lead, 'v:' .. v) == 1 then
    redis.call('EXPIRE', browser, ttl)
    return false
  end
  if prev == lead or (prev and redis.call('EXISTS', prefix .. prev) == 0) then prev = false end
  local old = prev and redis.call('HGET', prefix .. prev, 'v:' .. v)
  local linked, s = string.match(old or '', '^(%d*)|(%d*)|')
  redis.call('SET', browser, lead, 'EX', ttl)
  local since = ''
  if prev then since = at end
  redis.call('HSET', prefix .. lead, 'v:' .. v, at .. '|' .. since .. '|')
  local entry = '{"type":"visitor_linked","at":' .. at .. ',"visitor":"' .. v .. '"}'
  if prev then entry = with_field(entry, 'previous_lead', prev) end
  redis.call('RPUSH', prefix .. lead .. ':t', entry)
  if prev then
    if linked then
      redis.call('HSET', prefix .. prev, 'v:' .. v, linked .. '|' .. s .. '|' .. at)
    end
    redis.call('RPUSH', prefix .. prev .. ':t', '{"type":"visitor_moved","at":' .. at ..
      ',"visitor":"' .. v .. '","to_lead":' .. lead .. '}')
  end
  return prev
end
-- Moves a lead (hash `lead`, timeline `timeline`) to p/s; `moved` is the Moved entry
-- without `from`. Returns {'moved'|'conflict', p, s} or {'not_found'}.
local function stage_of(lead)
  local cur = redis.call('HMGET', lead, 'p', 's')
  if not cur[1] or not cur[2] then return nil end
  return cur
end
local function move(lead, timeline, cur, p, s, at, moved)
  redis.call('HSET', lead, 'p', p, 's', s, 'u', at)
  if cur[1] ~= p or cur[2] ~= s then
    redis.call('RPUSH', timeline, with_field(moved, 'from', stage_json(cur[1], cur[2])))
  end
  return {'moved', cur[1], cur[2]}
end
"#;

/// A form submission: everything is read before the first write. An empty visitor links
/// no browser (a form sent without consent). KEYS: fingerprint,
/// contact index, new lead, its timeline, the account's lead index, Unsorted entries, the
/// browser's link (any key of the account's slot without a browser), the minted
/// browser's fingerprint (or the first again: `Fingerprints`). ARGV: lead prefix,
/// now, duplicate window secs, pipeline, visitor, lead id, uid, Unsorted JSON, LeadCreated
/// JSON, won status, lost status, link ttl secs, n contact keys, the contact keys, then
/// the lead's hash fields.
/// Returns {'duplicate', lead, uid or ''} or {'created', lead, previous or '', the open
/// lead of the contact or ''}. A known contact's open lead is never touched: the new
/// entry's JSON gets its id in `"duplicate_of_lead_id":null`, and the contact keys that
/// point at it keep pointing there.
pub static SUBMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEAD_LUA}{}",
        r#"
local first = redis.call('GET', KEYS[1])
if first then
  local lead, uid = string.match(first, '^(%d+)/(.*)$')
  if uid ~= '' and redis.call('HEXISTS', KEYS[6], uid) == 0 then uid = '' end
  return {'duplicate', lead, uid}
end
local prefix, at, window, pipeline, v, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local won, lost, ttl = ARGV[10], ARGV[11], ARGV[12]
local nkeys = tonumber(ARGV[13])
local dup = false
for i = 1, nkeys do
  local known = redis.call('HGET', KEYS[2], ARGV[13 + i])
  local cur = known and not dup and stage_of(prefix .. known)
  if cur and cur[1] == pipeline and cur[2] ~= won and cur[2] ~= lost then dup = known end
end
local entry = ARGV[8]
if dup then
  entry = string.gsub(entry, '"duplicate_of_lead_id":null', '"duplicate_of_lead_id":' .. dup, 1)
end
local fields = {}
for i = 14 + nkeys, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(fields))
-- The fingerprints' keys, so that an erasure of the lead finds them.
redis.call('HSET', KEYS[3], 'f', KEYS[1])
if KEYS[8] ~= KEYS[1] then redis.call('HSET', KEYS[3], 'f2', KEYS[8]) end
redis.call('RPUSH', KEYS[4], ARGV[9])
redis.call('ZADD', KEYS[5], id, id)
redis.call('HSET', KEYS[6], ARGV[7], entry)
for i = 1, nkeys do
  if not dup or redis.call('HGET', KEYS[2], ARGV[13 + i]) ~= dup then
    redis.call('HSET', KEYS[2], ARGV[13 + i], id)
  end
end
local prev = false
if v ~= '' then prev = link(prefix, KEYS[7], v, id, at, ttl) end
redis.call('SET', KEYS[1], id .. '/' .. ARGV[7], 'EX', window)
if KEYS[8] ~= KEYS[1] then redis.call('SET', KEYS[8], id .. '/' .. ARGV[7], 'EX', window) end
return {'created', id, prev or '', dup or ''}
"#
    ))
});

/// Moves a lead, conditionally, with its timeline entry; settles an Unsorted entry when
/// given. KEYS: lead, timeline, Unsorted entries. ARGV: to pipeline, to status, now,
/// expected pipeline or "", expected status or "", Moved JSON (without `from`), uid or "".
pub static MOVE_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEAD_LUA}{}",
        r#"
local cur = stage_of(KEYS[1])
if not cur then return {'not_found'} end
if ARGV[4] ~= '' and (cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5]) then
  return {'conflict', cur[1], cur[2]}
end
if ARGV[7] ~= '' and redis.call('HDEL', KEYS[3], ARGV[7]) == 0 then return {'not_found'} end
return move(KEYS[1], KEYS[2], cur, ARGV[1], ARGV[2], ARGV[3], ARGV[6])
"#
    ))
});

/// Declines an Unsorted entry: removes it, records `Declined`, moves its lead to lost.
/// KEYS: Unsorted entries, lead, timeline. ARGV: uid, lost pipeline, lost status, now,
/// Declined JSON, Moved JSON (without `from`). Returns {'not_found'} when the entry or its
/// lead is gone (nothing written), else the move's outcome.
pub static DECLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEAD_LUA}{}",
        r#"
local cur = stage_of(KEYS[2])
if not cur then return {'not_found'} end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {'not_found'} end
redis.call('RPUSH', KEYS[3], ARGV[5])
return move(KEYS[2], KEYS[3], cur, ARGV[2], ARGV[3], ARGV[4], ARGV[6])
"#
    ))
});

/// Links a browser to an existing lead, as a submission does. KEYS: lead, browsers. ARGV:
/// lead prefix, visitor, lead id, now, link ttl, and optionally the most browsers a lead
/// may hold (0: no bound). Returns {'not_found'}, {'full'} (the lead holds that many
/// browsers besides this one) or {'linked', previous or ''}.
pub static LINK_VISITOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LEAD_LUA}{}",
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local most = tonumber(ARGV[6] or '0')
if most > 0 and redis.call('GET', KEYS[2]) ~= ARGV[3] then
  local fields, n = redis.call('HGETALL', KEYS[1]), 0
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'v:' and string.sub(fields[i + 1], -1) == '|' then n = n + 1 end
  end
  if n >= most then return {'full'} end
end
local prev = link(ARGV[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return {'linked', prev or ''}
"#
    ))
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

/// The lead of a browser with the account's catalog version, the link kept for another
/// `ttl`: sent in the batch that starts a visit. KEYS: the browser's link,
/// catalog version. ARGV: lead prefix, ttl secs. Returns {version, lead id or "", the lead
/// hash's fields and values…}.
pub static LEAD_OF_BROWSER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local version = redis.call('GET', KEYS[2]) or '0'
local lead = redis.call('GET', KEYS[1])
if not lead then return {version, ''} end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local out = {version, lead}
for _, item in ipairs(redis.call('HGETALL', ARGV[1] .. lead)) do out[#out + 1] = item end
return out
"#,
    )
});

/// Appends a timeline entry when the lead exists (an entry never outlives its lead, nor
/// lands on another account's). KEYS: lead, timeline. ARGV: entry JSON. Sent alone or in
/// a batch.
pub static APPEND_IF_LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 1 then \
    redis.call('RPUSH', KEYS[2], ARGV[1]) end return 0",
    )
});
