-- wrk script: POST a JSON-typed body of BODY_SIZE bytes (environment, default 1024), the
-- same size as `deskhook bench --body-size`, over wrk's keep-alive connections.
local size = tonumber(os.getenv("BODY_SIZE") or "1024")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.rep("x", size)
