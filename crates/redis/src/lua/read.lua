-- Reads history: ARGV 1 a fresh epoch (used only if a new life starts), 2 the epoch of
-- the position ('' for none), 3 its offset, 4 most entries to return (0 for none).
-- Returns {epoch, head offset, oldest retained offset, entries}: the entries start after
-- the position when it belongs to this life and nothing after it was trimmed, else at
-- the oldest retained one. One script, so the epoch and the entries are of one life.
local epoch = life(ARGV[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local oldest = head + 1
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if first[1] then
  oldest = offset_of(first[1][1])
end
local from = oldest - 1
local after = tonumber(ARGV[3])
if ARGV[2] == epoch and after <= head and after > from then
  from = after
end
local entries = {}
local count = tonumber(ARGV[4])
if count > 0 then
  entries = redis.call('XRANGE', KEYS[1], string.format('%d-0', from + 1), '+', 'COUNT', count)
end
return {epoch, head, oldest, entries}
