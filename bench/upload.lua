-- POST of the same 5 MB file per request (bench/files.sh).
local f = assert(io.open(os.getenv("TH_BENCH_UPLOAD_FILE"), "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/pdf"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TH_BENCH_TOKEN")
