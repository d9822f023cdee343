-- Pipelined GETs: every write carries `depth` requests (first script argument, default 16).
-- wrk parses each response on its own, so Requests/sec counts requests, not writes.
local depth = 16
local batch = nil

function init(args)
   depth = tonumber(args[1]) or depth
   batch = string.rep(wrk.format("GET", wrk.path), depth)
end

function request()
   return batch
end
