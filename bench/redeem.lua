-- wrk script: POST /api/v1/invites/redeem, every request with a link no
-- request used before.  bench/redeem.sh created the links <prefix>1 ..
-- <prefix>N and hands the prefix over in the environment; thread t of T
-- sends t+1, t+1+T, t+1+2T, ...
local prefix = os.getenv("TH_BENCH_REDEEM_PREFIX")
local nthreads = tonumber(os.getenv("TH_BENCH_REDEEM_THREADS") or "")
if prefix == nil or prefix == "" or nthreads == nil then
    error("TH_BENCH_REDEEM_PREFIX and TH_BENCH_REDEEM_THREADS must be set")
end

local next_thread = 0

-- in the main state, once per thread
function setup(thread)
    thread:set("thread_id", next_thread)
    next_thread = next_thread + 1
end

local sent = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
    local n = thread_id + 1 + sent * nthreads
    sent = sent + 1
    return wrk.format("POST", nil, headers,
        '{"token":"' .. prefix .. n .. '","display_name":"Bench Guest"}')
end
