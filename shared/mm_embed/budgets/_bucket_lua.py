"""The bucket arithmetic of :mod:`mm_embed.budgets._bucket`, as one Redis Lua script.

Line for line the same steps as the Python functions (refill, take, join, due_in,
adjust, refused), in the same order of floating-point operations, so a Redis bucket and an
in-process one given the same calls at the same times give the same waits. The
constants come from :mod:`~mm_embed.budgets._bucket` as arguments (one home).

``KEYS[1]``: the bucket's hash. ``ARGV``: operation (``take``, ``join``, ``due_in``,
``adjust``, ``refused``, ``state``), its argument (amount, ticket or delta; ``0`` when
unused),
rate, capacity, ``now`` (empty: the server's ``TIME``, so every host shares one clock),
key lifetime in ms, then ``RECOVERY_PER_S``, ``DECREASE``, ``MIN_FACTOR``,
``COOLDOWN_S``, ``DUE_EPSILON``. Numbers travel as ``%.17g`` strings (exact round
trip); "never cut" is an absent ``last_cut`` field (``-inf`` in Python); a ``join``
that may not join answers an empty string (``None``).
"""

from __future__ import annotations

__all__ = ["SCRIPT"]

SCRIPT = r"""
local key = KEYS[1]
local op = ARGV[1]
local arg = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[5])
end
local ttl_ms = tonumber(ARGV[6])
local RECOVERY_PER_S = tonumber(ARGV[7])
local DECREASE = tonumber(ARGV[8])
local MIN_FACTOR = tonumber(ARGV[9])
local COOLDOWN_S = tonumber(ARGV[10])
local DUE_EPSILON = tonumber(ARGV[11])

local function fmt(x) return string.format('%.17g', x) end

local h = redis.call('HMGET', key, 'balance', 'updated', 'reserved', 'factor', 'last_cut', 'consumed')
local balance, updated, reserved, factor, last_cut, consumed
if h[1] then
  balance = tonumber(h[1]); updated = tonumber(h[2]); reserved = tonumber(h[3])
  factor = tonumber(h[4]); consumed = tonumber(h[6])
  if h[5] then last_cut = tonumber(h[5]) else last_cut = -math.huge end
else
  -- new_state: a bucket that starts full
  balance = capacity; updated = now; reserved = 0.0; factor = 1.0
  last_cut = -math.huge; consumed = 0.0
end

-- _refill
local elapsed = math.max(0.0, now - updated)
local old = factor
factor = math.min(1.0, old + RECOVERY_PER_S * elapsed)
balance = math.min(capacity, balance + elapsed * rate * (old + factor) / 2)
updated = math.max(updated, now)

local result = '0'
if op == 'join' and -balance >= capacity then
  result = ''
elseif op == 'take' or op == 'join' then
  local ticket = reserved + math.min(arg, capacity)
  balance = balance - arg
  reserved = reserved + arg
  consumed = consumed + arg
  result = fmt(ticket)
elseif op == 'due_in' then
  local short = arg - (balance + reserved)
  if short > DUE_EPSILON then result = fmt(short / (rate * factor)) else result = '0' end
elseif op == 'adjust' then
  balance = math.min(capacity, balance - arg)
  consumed = consumed + arg
elseif op == 'refused' then
  if now - last_cut < COOLDOWN_S then
    result = '0'
  else
    factor = math.max(MIN_FACTOR, factor * DECREASE)
    last_cut = now
    balance = math.min(balance, 0.0)
    result = '1'
  end
elseif op ~= 'state' then
  return redis.error_reply('unknown budget operation ' .. tostring(op))
end

redis.call('HSET', key, 'balance', fmt(balance), 'updated', fmt(updated),
  'reserved', fmt(reserved), 'factor', fmt(factor), 'consumed', fmt(consumed))
if last_cut > -math.huge then redis.call('HSET', key, 'last_cut', fmt(last_cut)) end
redis.call('PEXPIRE', key, ttl_ms)

if op == 'state' then
  local shown = ''
  if last_cut > -math.huge then shown = fmt(last_cut) end
  return {fmt(balance), fmt(updated), fmt(reserved), fmt(factor), shown, fmt(consumed)}
end
return result
"""
