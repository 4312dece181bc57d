-- Applies retention without appending: ARGV 1 a fresh epoch, 2 max entries, 3 max age
-- (ms), 4 trim budget. Returns how many entries it dropped.
life(ARGV[1])
return trim(tonumber(ARGV[2]), now_ms() - tonumber(ARGV[3]), tonumber(ARGV[4]))
