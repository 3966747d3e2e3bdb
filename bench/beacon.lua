-- wrk script: POSTs the page-view beacons of known visitors (one JSON body per line of
-- $BODIES), as t.js sends them: text/plain, a browser's user agent. Requests are built
-- once, so the load generator spends its time sending.
local requests = {}
local i = 0

function init(args)
  for body in io.lines(os.getenv("BODIES")) do
    requests[#requests + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "text/plain;charset=UTF-8",
      ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    }, body)
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
