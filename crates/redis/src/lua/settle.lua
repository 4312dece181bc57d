-- Settles an append whose reply was lost: KEYS 1 its attempt key, ARGV 1 the key's time
-- to live (ms). Returns what the key holds (the append's outcome: it ran). When the key
-- does not exist the append has not run, and this makes sure it never will: it sets the
-- key to 'cancelled', which the append script refuses to run over, and returns that.
-- Not prefixed with common.lua: it touches no key of the log.
local value = redis.call('GET', KEYS[1])
if value then
  return value
end
redis.call('SET', KEYS[1], 'cancelled', 'PX', ARGV[1])
return 'cancelled'
