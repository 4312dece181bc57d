-- Shared by the scripts that touch the log (prepended to each; not to settle.lua).
-- KEYS: 1 the stream, 2 the offset counter, 3 the epoch, 4 retained entries per topic
-- (the append script takes a fifth, its attempt key).
-- Entries have the id `<offset>-1` and the fields d (draft JSON), t (append time, Redis
-- clock, ms) and p (topic, so trimming can keep the per-topic counts without JSON).

-- The epoch of this life of the log. Starts a new life (the fresh epoch, no history) when
-- there is none (a new prefix, or a Redis that restarted empty or was flushed), or when
-- the counter is gone while entries remain, where offsets would repeat.
local function life(fresh)
  local epoch = redis.call('GET', KEYS[3])
  if epoch and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 0) then
    return epoch
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  redis.call('SET', KEYS[3], fresh)
  return fresh
end

local function offset_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      return fields[i + 1]
    end
  end
  return nil
end

-- Redis's clock, the one clock every node shares.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drops the oldest entries while more than max_len remain or they were appended before
-- cutoff (ms), at most budget of them, keeping the per-topic counts in step. Returns how
-- many it dropped.
local function trim(max_len, cutoff, budget)
  local len = redis.call('XLEN', KEYS[1])
  local dropped, last, start, step = 0, nil, '-', 1
  while dropped < budget and len > 0 do
    -- What the length surely needs, else a few to check their age: growing, so a
    -- steady append costs one look at the oldest entry.
    local want = math.min(math.max(len - max_len, step), budget - dropped, 128)
    step = step * 2
    local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', want)
    local done = #entries < want
    for _, entry in ipairs(entries) do
      local t = tonumber(field(entry[2], 't')) or 0
      if len <= max_len and t >= cutoff then
        done = true
        break
      end
      local topic = field(entry[2], 'p')
      if topic and redis.call('HINCRBY', KEYS[4], topic, -1) <= 0 then
        redis.call('HDEL', KEYS[4], topic)
      end
      last, len, dropped = entry[1], len - 1, dropped + 1
    end
    if done or not last then
      break
    end
    start = string.format('%d-0', offset_of(last) + 1)
  end
  if last then
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', offset_of(last) + 1))
  end
  return dropped
end
