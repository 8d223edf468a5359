-- wrk script: POST the event in the file EVENT_FILE (environment) to `deskhook serve`'s
-- /v1/events with the bearer token TOKEN, as a helpdesk's curl would, over wrk's keep-alive
-- connections. Against nginx the same request gets a 204. Answers other than 2xx (a 503
-- when the daemon's queue is full) are counted by wrk as "Non-2xx or 3xx responses".
local file = assert(io.open(os.getenv("EVENT_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
