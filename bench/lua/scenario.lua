-- One wrk script for every HTTP scenario of the benchmark.
--   wrk -s scenario.lua <url> -- <mode> <items-file-or-"-"> <run-nonce>
-- mode: hello | get | search | create. BENCH_TOKEN (env) is sent as a bearer token.
-- done() prints one JSON line: requests, duration, latency percentiles (ms), status counts.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  nonce = args[3] or "0"
  items = {}
  if args[2] and args[2] ~= "-" then
    for line in io.lines(args[2]) do items[#items + 1] = line end
  end
  statuses = {}
  math.randomseed(os.time() * 1000 + tid * 7919)
  local token = os.getenv("BENCH_TOKEN")
  headers = {}
  if token then headers["Authorization"] = "Bearer " .. token end
  json_headers = {["Content-Type"] = "application/json"}
  if token then json_headers["Authorization"] = "Bearer " .. token end
end

local function letters(width)
  local t = {}
  for i = 1, width do t[i] = string.char(97 + math.random(0, 25)) end
  return table.concat(t)
end

local GIVEN = {"Maria", "James", "Wei", "Fatima", "Jose", "Anna", "Chidi", "Yuki", "Olga", "Priya"}

local function create_body()
  counter = counter + 1
  return string.format(
    '{"name":{"family":"Bench%s","given":["%s"]},"birth_date":"%04d-%02d-%02d","sex":"female",' ..
    '"phone":"+14%09d","email":"bench.%s.%d.%d@example.org",' ..
    '"address":{"line":["%d Main St"],"city":"Springfield","state":"OR","postal_code":"97403","country":"US"},' ..
    '"identifiers":[{"system":"urn:bench:post","value":"P%s-%d-%d"}]}',
    letters(10), GIVEN[math.random(#GIVEN)], math.random(1930, 2020), math.random(1, 12), math.random(1, 28),
    math.random(0, 999999999), nonce, tid, counter, math.random(1, 9999), nonce, tid, counter)
end

function request()
  if mode == "get" then
    return wrk.format("GET", "/patients/" .. items[math.random(#items)], headers)
  elseif mode == "search" then
    return wrk.format("GET", "/patients?" .. items[math.random(#items)], headers)
  elseif mode == "create" then
    return wrk.format("POST", "/patients", json_headers, create_body())
  end
  return wrk.format("GET", "/", headers)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do counts[code] = (counts[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"p50_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"mean_ms":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, latency.mean / 1e3,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
