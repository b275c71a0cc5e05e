-- updates.lua -- the wrk script of `make bench`: POSTs Telegram updates to
-- /webhook/telegram as Telegram does (a private chat's text message, the
-- X-Telegram-Bot-Api-Secret-Token header), every update_id and message_id
-- unique, chats taken round-robin from BENCH_CHATS distinct ones, texts
-- from a file of customer messages (one JSON string per line).
--
-- Configured by the environment (wrk runs the script once per thread and
-- once more for setup/done; every state sees the same environment):
--   EFB_TEXTS     file of JSON-encoded texts, one per line (required)
--   EFB_SECRET    the secret token header's value (required)
--   EFB_THREADS   wrk's -t (the threads share the sequence of updates)
--   EFB_BASE      first update_id / message_id of this run (default 1)
--   EFB_STRIDE,   several wrk processes (one per gateway) share one sequence:
--   EFB_SLOT      process k of n sends updates base + (j * n + k) (default 1, 0)
--   EFB_CHATS     distinct chats (default 10000); update j goes to chat
--                 EFB_CHAT_BASE + j % EFB_CHATS, so each chat gets several
--                 messages, far apart in time, in order
--   EFB_BOTS      several bots: "path secret,path secret,..." (webhook path of
--                 each integration and its secret token); update j goes to
--                 bot j % n (with EFB_CHATS a multiple of n, a chat stays
--                 with one bot); unset: /webhook/telegram with EFB_SECRET
--   EFB_RATE      > 0: a steady rate for this wrk process, updates/s (delay()
--                 releases requests on a fixed schedule per thread, open
--                 loop while a connection is free); 0 or unset: as fast as
--                 the connections go
--
-- done() prints one line `EFB_RESULT {json}`: requests sent, answers by
-- status class, wrk's socket errors, the latency percentiles (µs) and the
-- duration; scripts/bench.sh's tests/bench/bench.py reads it.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } efb_timespec;
int clock_gettime(int clk, efb_timespec *ts);
]])

local function env_num(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return tonumber(v)
end

local RATE = env_num("EFB_RATE", 0)

-- ---- setup / done: the main state ---------------------------------------

local threads = {}
local n_threads = 0

function setup(thread)
    thread:set("tid", n_threads)
    n_threads = n_threads + 1
    table.insert(threads, thread)
end

function done(summary, latency, requests)
    local sum = {sent = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0}
    for _, t in ipairs(threads) do
        for k, _ in pairs(sum) do
            sum[k] = sum[k] + (t:get(k) or 0)
        end
    end
    local e = summary.errors
    local parts = {}
    local function put(k, v)
        table.insert(parts, string.format("%q:%s", k, string.format("%.0f", v)))
    end
    for k, v in pairs(sum) do
        put(k, v)
    end
    put("responses", summary.requests)
    put("duration_us", summary.duration)
    put("err_connect", e.connect)
    put("err_read", e.read)
    put("err_write", e.write)
    put("err_timeout", e.timeout)
    put("err_status", e.status)
    put("lat_mean_us", latency.mean)
    put("lat_max_us", latency.max)
    for _, p in ipairs({50, 90, 99, 99.9}) do
        put("lat_p" .. tostring(p) .. "_us", latency:percentile(p))
    end
    io.write("EFB_RESULT {" .. table.concat(parts, ",") .. "}\n")
end

-- ---- per thread ------------------------------------------------------------

local texts = {}
local headers
local bots = {} -- {path, headers} per bot of EFB_BOTS
local chats, chat_base, base, stride, slot, step
local seq = 0
local date

function init(args)
    local path = os.getenv("EFB_TEXTS")
    local f = assert(io.open(path or "", "r"), "EFB_TEXTS: cannot open " .. tostring(path))
    for line in f:lines() do
        if line ~= "" then
            table.insert(texts, line)
        end
    end
    f:close()
    assert(#texts > 0, "EFB_TEXTS: no texts")
    headers = {
        ["Content-Type"] = "application/json",
        ["X-Telegram-Bot-Api-Secret-Token"] = assert(os.getenv("EFB_SECRET"), "EFB_SECRET"),
    }
    for path, secret in string.gmatch(os.getenv("EFB_BOTS") or "", "([^ ,]+) ([^ ,]+)") do
        table.insert(bots, {path, {
            ["Content-Type"] = "application/json",
            ["X-Telegram-Bot-Api-Secret-Token"] = secret,
        }})
    end
    chats = env_num("EFB_CHATS", 10000)
    chat_base = env_num("EFB_CHAT_BASE", 7100000000)
    base = env_num("EFB_BASE", 1)
    stride = env_num("EFB_STRIDE", 1)
    slot = env_num("EFB_SLOT", 0)
    step = env_num("EFB_THREADS", 1)
    date = os.time()
    -- counters read by done() through thread:get
    sent, s2xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0
end

function request()
    -- j: this update's place in the sequence shared by every thread and
    -- every wrk process of the run.
    local j = (seq * step + tid) * stride + slot
    seq = seq + 1
    local id = base + j
    local chat = chat_base + j % chats
    -- A multiplicative step through the texts: a chat's messages differ.
    local text = texts[(j * 7919) % #texts + 1]
    local body = '{"update_id":' .. id .. ',"message":{"message_id":' .. id ..
                     ',"date":' .. date .. ',"from":{"id":' .. chat ..
                     ',"is_bot":false,"first_name":"Клиент","language_code":"ru"},' ..
                     '"chat":{"id":' .. chat .. ',"first_name":"Клиент","type":"private"},' ..
                     '"text":' .. text .. '}}'
    sent = sent + 1
    if #bots > 0 then
        local b = bots[j % #bots + 1]
        return wrk.format("POST", b[1], b[2], body)
    end
    return wrk.format("POST", "/webhook/telegram", headers, body)
end

function response(status, hdrs, body)
    if status >= 200 and status < 300 then
        s2xx = s2xx + 1
    elseif status >= 400 and status < 500 then
        s4xx = s4xx + 1
    elseif status >= 500 and status < 600 then
        s5xx = s5xx + 1
    else
        sother = sother + 1
    end
end

-- ---- a steady rate -------------------------------------------------------

if RATE > 0 then
    local ts = ffi.new("efb_timespec")
    local function now_ms()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
    local next_at
    -- Each call books the thread's next slot (threads split the rate): a
    -- connection that comes free late sends at once, so the rate holds
    -- while free connections remain.
    function delay()
        local interval = env_num("EFB_THREADS", 1) * 1000 / RATE
        local now = now_ms()
        if next_at == nil then
            next_at = now
        end
        local at = next_at
        next_at = next_at + interval
        if at <= now then
            return 0
        end
        return at - now
    end
end
