-- POST /2fa/verify with Basic auth: a random number of the pool that bench/api_load.py
-- filled with live codes, and a code that is (almost always) wrong, so every request
-- does the whole work (lookup, keyed hash, constant-time compare, attempt recorded).
-- Env: SMS2FA_AUTH, SMS2FA_POOL_BASE (first number, digits after +), SMS2FA_POOL_SIZE.
local auth = os.getenv("SMS2FA_AUTH")
local base = tonumber(os.getenv("SMS2FA_POOL_BASE"))
local size = tonumber(os.getenv("SMS2FA_POOL_SIZE"))

function init(args)
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Basic " .. auth
   wrk.headers["Content-Type"] = "application/json"
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

function request()
   local number = string.format("+%d", base + math.random(0, size - 1))
   local code = string.format("%06d", math.random(0, 999999))
   local body = '{"service":"Bench","number":"' .. number .. '","code":"' .. code .. '"}'
   return wrk.format(nil, "/2fa/verify", nil, body)
end
