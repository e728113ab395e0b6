-- wrk script for Benchmarks/http-ingest.sh: POST /v1/ingest bodies of EVENTS OpenBao KV-read
-- request/response pairs (a real pair from examples/openbao-audit.log with a fresh request
-- id per event, so nothing is a duplicate). Usage:
--   wrk -t1 -c8 -d20s -s http-ingest.lua URL -- TEMPLATE EVENTS TOKEN [FORMAT]   (openbao or custos)
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  local template = f:read("*a")
  f:close()
  pieces = {}
  local start = 1
  while true do
    local i, j = string.find(template, "@ID@", start, true)
    if not i then table.insert(pieces, string.sub(template, start)); break end
    table.insert(pieces, string.sub(template, start, i - 1))
    start = j + 1
  end
  events = tonumber(args[2])
  headers = { ["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/x-ndjson" }
  path = "/v1/ingest?format=" .. (args[4] or "openbao") .. "&instance=bench"
  accepted, duplicates, failures = 0, 0, 0
end

function request()
  counter = counter + 1
  local out = {}
  for e = 1, events do
    local id = string.format("%08x-%04x-4000-8000-%012x", tid, e, counter)
    for k = 1, #pieces - 1 do
      out[#out + 1] = pieces[k]
      out[#out + 1] = id
    end
    out[#out + 1] = pieces[#pieces]
  end
  return wrk.format("POST", path, headers, table.concat(out))
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + tonumber(string.match(body, '"accepted":(%d+)') or 0)
    duplicates = duplicates + tonumber(string.match(body, '"duplicates":(%d+)') or 0)
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local a, d, f = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); d = d + t:get("duplicates"); f = f + t:get("failures")
  end
  io.write(string.format("ACCEPTED %d DUPLICATES %d FAILED_REQUESTS %d SECONDS %.3f P50_MS %.1f P99_MS %.1f\n",
    a, d, f, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
