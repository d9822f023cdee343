-- One POST per request with a body of `size` bytes (first script argument, default 1 MiB).
-- wrk builds the request once, after init(), from wrk.method / wrk.body / wrk.headers.
function init(args)
   local size = tonumber(args[1]) or 1048576
   wrk.method = "POST"
   wrk.body = string.rep("z", size)
   wrk.headers["Content-Type"] = "application/octet-stream"
end
