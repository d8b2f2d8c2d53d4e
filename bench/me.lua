-- wrk script: GET /api/v1/me with the benchmark user's access token,
-- handed over in the environment by bench/run.sh.
local token = os.getenv("TH_BENCH_TOKEN")
if token == nil or token == "" then
    error("TH_BENCH_TOKEN is not set")
end
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. token
