-- wrk script of tools/bench's user-create scenario: each request is POST /api/v1/users with a JSON body whose email
-- is unique, PREFIX-<thread>-<n>@bench.example.com. tools/bench passes a PREFIX that differs per wrk run (target,
-- warm-up or measured run, and a random token), so no request of any run gets 409 for a duplicate email.
--
--   wrk -t1 -c64 -d10s -s user-create.lua http://127.0.0.1:PORT -- PREFIX

local prefix = "bench"
local n = 0
local headers = {["Content-Type"] = "application/json"} -- wrk.format adds Host and Content-Length to it
local next_thread = 1

function setup(thread)
   thread:set("thread_no", next_thread)
   next_thread = next_thread + 1
end

function init(args)
   prefix = (args[1] or prefix) .. "-" .. (thread_no or 1)
end

function request()
   n = n + 1
   local body = string.format('{"name":"Bench User %d","email":"%s-%d@bench.example.com"}', n, prefix, n)
   return wrk.format("POST", "/api/v1/users", headers, body)
end
