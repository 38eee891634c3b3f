-- wrk script of tools/bench's user-get-h1 and stress scenarios: each request is GET /api/v1/users/{id} with an id
-- drawn uniformly from 1..N (the users tools/seed created).
--
--   wrk -t1 -c256 -d10s -s user-get.lua http://127.0.0.1:PORT -- N SEED
--
-- SEED makes the sequence repeatable: tools/bench passes the same one to hydrant's and the reference's runs.

local max_id = 10000
local next_thread = 1

-- runs once per wrk thread in the main Lua state; gives each thread's own state a number
function setup(thread)
   thread:set("thread_no", next_thread)
   next_thread = next_thread + 1
end

function init(args)
   max_id = tonumber(args[1]) or max_id
   math.randomseed((tonumber(args[2]) or 1) * 1000 + (thread_no or 1))
end

function request()
   return wrk.format(nil, "/api/v1/users/" .. math.random(1, max_id))
end
