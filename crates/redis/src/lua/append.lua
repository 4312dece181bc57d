-- Appends a batch: KEYS 5 the append's attempt key; ARGV 1 a fresh epoch (used only if a
-- new life starts), 2 max entries, 3 max age (ms), 4 trim budget, 5 the attempt key's
-- time to live (ms), then for each event its draft JSON and its topic.
--
-- The attempt key fences the append. The script appends only when the key is new, and
-- leaves its outcome there, 'appended:<epoch>:<first offset>:<count>:<time ms>', which it
-- also returns. When the key exists it appends nothing and returns what the key holds:
-- 'cancelled' when the node gave up on this append (see settle.lua), the outcome when
-- this very append already ran.
--
-- Nothing can fail between the first write to the log and the last, so a batch is stored
-- whole and contiguous, or not at all.
if not redis.call('SET', KEYS[5], 'pending', 'NX', 'PX', ARGV[5]) then
  return redis.call('GET', KEYS[5])
end
local epoch = life(ARGV[1])
local now = now_ms()
local n = (#ARGV - 5) / 2
local first = 0
if n > 0 then
  first = redis.call('INCRBY', KEYS[2], n) - n + 1
  local stamp = string.format('%d', now)
  for i = 0, n - 1 do
    local topic = ARGV[7 + 2 * i]
    redis.call('XADD', KEYS[1], string.format('%d-1', first + i),
      'd', ARGV[6 + 2 * i], 't', stamp, 'p', topic)
    redis.call('HINCRBY', KEYS[4], topic, 1)
  end
end
trim(tonumber(ARGV[2]), now - tonumber(ARGV[3]), tonumber(ARGV[4]) + n)
local outcome = string.format('appended:%s:%d:%d:%d', epoch, first, n, now)
redis.call('SET', KEYS[5], outcome, 'XX', 'PX', ARGV[5])
return outcome
