/**
 * One catalogue update merged into its record atomically, inside Redis: jobs finishing
 * at the same time for one digest (a scan and a sign) each add what they know without a
 * read-modify-write race between workers.
 *
 * KEYS[1] the record hash, KEYS[2] the tenant's index. ARGV[1] JSON:
 *   nx     [[field, value]]        set once (facts of a content-addressed digest)
 *   newer  [[field, at, value]]    set when `at` is not older than `<field>@`
 *   seen   [[prefix, member, cap]] `<prefix><member>` = "first|last"; a new member past
 *                                  `cap` evicts the least recently seen one of its prefix
 *   at, score, member, ttl_ms, cutoff_ms
 * ISO 8601 times of one format (toISOString) compare as strings.
 */
export const MERGE_SCRIPT = `
local rec, idx = KEYS[1], KEYS[2]
local u = cjson.decode(ARGV[1])
local at = u.at
for _, p in ipairs(u.nx) do redis.call('HSETNX', rec, p[1], p[2]) end
for _, p in ipairs(u.newer) do
  local guard = redis.call('HGET', rec, p[1] .. '@')
  if (not guard) or guard <= p[2] then redis.call('HSET', rec, p[1], p[3], p[1] .. '@', p[2]) end
end
for _, s in ipairs(u.seen) do
  local prefix, cap = s[1], tonumber(s[3])
  local field = prefix .. s[2]
  local cur = redis.call('HGET', rec, field)
  if cur then
    local first, last = string.match(cur, '^([^|]*)|(.*)$')
    if first and last < at then redis.call('HSET', rec, field, first .. '|' .. at) end
    if first and first > at then redis.call('HSET', rec, field, at .. '|' .. (last > at and last or at)) end
  else
    local count = redis.call('HINCRBY', rec, '#' .. prefix, 1)
    if count > cap then
      local all = redis.call('HGETALL', rec)
      local victim, oldest = nil, nil
      for i = 1, #all, 2 do
        if string.sub(all[i], 1, #prefix) == prefix then
          local l = string.match(all[i + 1], '|(.*)$') or ''
          if (not oldest) or l < oldest then victim, oldest = all[i], l end
        end
      end
      if victim then
        redis.call('HDEL', rec, victim)
        redis.call('HINCRBY', rec, '#' .. prefix, -1)
      end
    end
    redis.call('HSET', rec, field, at .. '|' .. at)
  end
end
local last = redis.call('HGET', rec, 'last_seen')
if (not last) or last < at then redis.call('HSET', rec, 'last_seen', at) end
local first = redis.call('HGET', rec, 'first_seen')
if (not first) or first > at then redis.call('HSET', rec, 'first_seen', at) end
local ttl = tonumber(u.ttl_ms)
if redis.call('PTTL', rec) < ttl then redis.call('PEXPIRE', rec, ttl) end
redis.call('ZADD', idx, 'GT', u.score, u.member)
redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. u.cutoff_ms)
return 1
`;

/**
 * The last build of each tag of a build update (catalogue-store.ts `lastBuild`): KEYS are
 * the tags' keys; ARGV[1] JSON {at, digest, build_job, ttl_ms}. A late write of an older
 * build does not replace a newer one (same `at` comparison as the record's fields).
 */
export const TAG_BUILD_SCRIPT = `
local u = cjson.decode(ARGV[1])
for _, key in ipairs(KEYS) do
  local cur = redis.call('HGET', key, 'at')
  if (not cur) or cur <= u.at then
    redis.call('HSET', key, 'digest', u.digest, 'build_job', u.build_job, 'at', u.at)
    redis.call('PEXPIRE', key, tonumber(u.ttl_ms))
  end
end
return 1
`;
