"""The Lua scripts that make each multi-key write one atomic step on the Redis server.

Every script gets the tenant's key base (``{prefix}:{tenant}``) as ``ARGV[1]`` and
builds its keys from it, so they suit a single Redis server (or a replicated one),
not Redis Cluster. Redis runs a script to its end before any other command, so no
reader sees half of one; the scripts check everything before their first write, so
one that refuses (a missing end) has written nothing.

Keys under the base: ``s:<hex>`` a substrate (hash), ``substrates`` (sorted set of
hex identities, all scored 0, read in lexicographic = numeric order), ``st:<hex>`` its
invocation totals (hash), ``invoked`` (set of hex identities with totals), ``r:<hex>``
a relationship (hash: doc, source, target, type), ``relationships`` (sorted set),
``touch:<hex>`` the relationships a substrate is an end of (sorted set), ``kinds:<hex>``
its relationship types with counts (hash), ``types`` the tenant's counts by type (hash).
"""

from __future__ import annotations

SUBSTRATE_FIELDS = ("t", "c", "m", "ca", "ua", "v")

_PRELUDE = """
local base = ARGV[1]
local function drop_count(hash, field)
  if redis.call('HINCRBY', hash, field, -1) <= 0 then redis.call('HDEL', hash, field) end
end
local function ends_of(source, target)
  if source == target then return {source} end
  return {source, target}
end
local function remove_relationship(hex)
  local key = base .. ':r:' .. hex
  local info = redis.call('HMGET', key, 'source', 'target', 'type')
  if not info[1] then return 0 end
  redis.call('DEL', key)
  redis.call('ZREM', base .. ':relationships', hex)
  drop_count(base .. ':types', info[3])
  for _, e in ipairs(ends_of(info[1], info[2])) do
    redis.call('ZREM', base .. ':touch:' .. e, hex)
    drop_count(base .. ':kinds:' .. e, info[3])
  end
  return 1
end
"""

# ARGV: base, then per substrate: hex, t, c, m, ca, ua, v. Returns per substrate:
# created (1/0) and the six stored fields.
PUT_SUBSTRATES = """
local out = {}
for i = 2, #ARGV, 7 do
  local hex = ARGV[i]
  local key = base .. ':s:' .. hex
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    redis.call('HSET', key, 't', ARGV[i + 1], 'c', ARGV[i + 2], 'm', ARGV[i + 3],
      'ca', ARGV[i + 4], 'ua', ARGV[i + 5], 'v', ARGV[i + 6])
    redis.call('ZADD', base .. ':substrates', 0, hex)
    out[#out + 1] = 1
  end
  for _, value in ipairs(redis.call('HMGET', key, 't', 'c', 'm', 'ca', 'ua', 'v')) do
    out[#out + 1] = value
  end
end
return out
"""

# ARGV: base, then per relationship: hex, source hex, target hex, type, doc. Returns
# {'missing', end, index} having written nothing, or per relationship: created (1/0)
# and the stored doc.
PUT_RELATIONSHIPS = """
local seen = {}
for i = 2, #ARGV, 5 do
  local hex = ARGV[i]
  if not seen[hex] and redis.call('EXISTS', base .. ':r:' .. hex) == 0 then
    local ends = {{'source', ARGV[i + 1]}, {'target', ARGV[i + 2]}}
    for _, e in ipairs(ends) do
      if redis.call('EXISTS', base .. ':s:' .. e[2]) == 0 then
        return {'missing', e[1], tostring((i - 2) / 5)}
      end
    end
  end
  seen[hex] = true
end
local out = {}
for i = 2, #ARGV, 5 do
  local hex, source, target, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = base .. ':r:' .. hex
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
    out[#out + 1] = redis.call('HGET', key, 'doc')
  else
    redis.call('HSET', key, 'doc', ARGV[i + 4], 'source', source, 'target', target,
      'type', kind)
    redis.call('ZADD', base .. ':relationships', 0, hex)
    redis.call('HINCRBY', base .. ':types', kind, 1)
    for _, e in ipairs(ends_of(source, target)) do
      redis.call('ZADD', base .. ':touch:' .. e, 0, hex)
      redis.call('HINCRBY', base .. ':kinds:' .. e, kind, 1)
    end
    out[#out + 1] = 1
    out[#out + 1] = ARGV[i + 4]
  end
end
return out
"""

# ARGV: base, hex. Returns 1 when it was there.
DELETE_RELATIONSHIP = "return remove_relationship(ARGV[2])"

# ARGV: base, hex. The substrate, its totals and every relationship it is an end of.
DELETE_SUBSTRATE = """
local hex = ARGV[2]
if redis.call('EXISTS', base .. ':s:' .. hex) == 0 then return 0 end
for _, relationship in ipairs(redis.call('ZRANGE', base .. ':touch:' .. hex, 0, -1)) do
  remove_relationship(relationship)
end
redis.call('DEL', base .. ':s:' .. hex, base .. ':st:' .. hex, base .. ':touch:' .. hex,
  base .. ':kinds:' .. hex)
redis.call('ZREM', base .. ':substrates', hex)
redis.call('SREM', base .. ':invoked', hex)
return 1
"""

# ARGV: base, hex, metadata, updated_at. Returns the six fields, or nil when absent.
UPDATE_METADATA = """
local key = base .. ':s:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then return false end
redis.call('HSET', key, 'm', ARGV[3], 'ua', ARGV[4])
redis.call('HINCRBY', key, 'v', 1)
return redis.call('HMGET', key, 't', 'c', 'm', 'ca', 'ua', 'v')
"""

# ARGV: base, ordered set name, item key name, lower bound ('-' or '(<hex>'), limit,
# then the item's fields. Returns per item: hex and its fields, read in one step.
PAGE = """
local items = redis.call('ZRANGEBYLEX', base .. ':' .. ARGV[2], ARGV[4], '+', 'LIMIT', 0,
  tonumber(ARGV[5]))
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {}
for _, hex in ipairs(items) do
  out[#out + 1] = hex
  for _, value in ipairs(redis.call('HMGET', base .. ':' .. ARGV[3] .. ':' .. hex,
      unpack(fields))) do
    out[#out + 1] = value
  end
end
return out
"""

SCRIPTS = {
    "put_substrates": PUT_SUBSTRATES,
    "put_relationships": PUT_RELATIONSHIPS,
    "delete_relationship": DELETE_RELATIONSHIP,
    "delete_substrate": DELETE_SUBSTRATE,
    "update_metadata": UPDATE_METADATA,
    "page": PAGE,
}


def script_text(name: str) -> str:
    """The script with the shared helpers in front."""
    return _PRELUDE + SCRIPTS[name]
