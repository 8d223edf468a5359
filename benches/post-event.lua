-- wrk script: POST the event in the file EVENT_FILE (environment) to `deskhook serve`'s
-- /v1/events with the bearer token TOKEN, as a helpdesk's curl would, over wrk's keep-alive
-- connections. Each request gets another of TICKETS (default 997) ticket codes, as a real
-- helpdesk's events would: deskhook delivers one ticket's events one at a time, in order, so
-- a single ticket would measure one connection's round trips. Against nginx the same
-- requests get a 204. Answers other than 2xx (a 503 when the daemon's queue is full) are
-- counted by wrk as "Non-2xx or 3xx responses".
local file = assert(io.open(os.getenv("EVENT_FILE"), "rb"))
local template = file:read("*a")
file:close()
local tickets = tonumber(os.getenv("TICKETS") or "997")
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

request = function()
    counter = counter + 1
    local body = template:gsub('"code":"E3XK"', '"code":"T' .. (counter % tickets) .. '"', 1)
    return wrk.format(nil, nil, nil, body)
end
