-- POST /2fa/send with Basic auth; a different `to` per request (cooldowns never apply).
-- Env: SMS2FA_AUTH (base64 of SID:token), SMS2FA_PREFIX (a digit, changes per run);
-- SMS2FA_AUTHS (several base64 credentials, space-separated): rotate over accounts.
local auth = os.getenv("SMS2FA_AUTH")
local auths = {}
for a in string.gmatch(os.getenv("SMS2FA_AUTHS") or "", "%S+") do
   table.insert(auths, "Basic " .. a)
end
local prefix = os.getenv("SMS2FA_PREFIX") or "7"
local counter = 0
thread_id = 0  -- set per thread by setup()
local threads = {}

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

function init(args)
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Basic " .. auth
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local to = string.format("+1%s%d%08d", prefix, thread_id, counter)
   local body = '{"service":"Bench","from":"+15550000000","to":"' .. to ..
      '","body":"Your verification code is: {code}"}'
   if #auths > 0 then
      local headers = {["Content-Type"] = "application/json",
                       ["Authorization"] = auths[(counter + thread_id) % #auths + 1]}
      return wrk.format(nil, "/2fa/send", headers, body)
   end
   return wrk.format(nil, "/2fa/send", nil, body)
end
