-- wrk script: a stream of distinct browsers (one line of $VIDS per request: a signed
-- visitor id and the index of its user agent in $UAS, both written by bench-visitors),
-- read from the file as it goes so that a million of them take no memory; it starts
-- over at the end. $MODE says what each browser sends:
--   beacon      a page view, as t.js sends it (text/plain JSON), to $SITE;
--   json        a form submission as t.js sends it, with a new contact each time;
--   urlencoded  the same contact from a plain HTML form (application/x-www-form-urlencoded).
-- Every target (footfall and the baselines) gets the same requests, built the same way.
local mode = os.getenv("MODE") or "beacon"
local site = os.getenv("SITE") or ""
local run = os.getenv("RUN") or tostring(os.time())
local vids, agents = nil, {}
local n = 0

local first = { "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Charlotte",
  "James", "Mia", "Lucas", "Harper", "Mateo", "Evelyn", "Leila", "Hiroshi", "Ana", "Dmitri", "Zoë" }
local last = { "Smith", "Johnson", "Garcia", "Müller", "Rossi", "Kowalski", "Nguyen", "Tanaka",
  "O'Brien", "Silva", "Dubois", "Petrov", "Kim", "Haddad", "Jensen", "Novak" }
local companies = { "Acme Logistics", "Northwind Traders", "Blue Harbor Dental", "Kestrel & Sons",
  "Lumen Studio", "Orchard Foods GmbH", "" }
local messages = {
  "Hello, we are looking for a quote for 40 units delivered to our Lyon warehouse before the end of the quarter. Could someone call me back?",
  "Hi! Does the premium plan include onboarding for a team of 12? We would like to start next month.",
  "Please send me the catalogue and your price list for wholesale orders. Thanks.",
  "I ordered last week (order 58213) and would like to change the delivery address, if it is not too late.",
  "",
}

function init(args)
  vids = assert(io.open(os.getenv("VIDS"), "r"))
  -- Each run starts at a random line (all lines have one length), so that runs do not
  -- replay the same browsers in the same order.
  local line = vids:read("*l")
  local size = vids:seek("end")
  math.randomseed(tonumber(run) or os.time())
  vids:seek("set", math.random(0, size / (#line + 1) - 1) * (#line + 1))
  for agent in io.lines(os.getenv("UAS")) do
    agents[#agents + 1] = agent
  end
end

local function next_browser()
  local line = vids:read("*l")
  if not line then
    vids:seek("set")
    line = vids:read("*l")
  end
  local vid, ua = line:match("^([^\t]+)\t(%d+)")
  return vid, agents[tonumber(ua)] or agents[1]
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~ ]", function(c) return string.format("%%%02X", c:byte()) end):gsub(" ", "+"))
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function contact()
  local f, l = first[n % #first + 1], last[math.floor(n / #first) % #last + 1]
  local name = f .. " " .. l
  local email = string.format("%s.%s.%s.%d@%s", f:lower(), l:lower():gsub("[^%w]", ""), run, n,
    n % 3 == 0 and "gmail.com" or "example.org")
  local phone = string.format("+44 20 %04d %04d", math.floor(n / 10000) % 10000, n % 10000)
  return name, email, phone, companies[n % #companies + 1], messages[n % #messages + 1]
end

function request()
  n = n + 1
  local vid, agent = next_browser()
  local product = n % 5000
  if mode == "beacon" then
    local body = string.format(
      '{"site":"%s","vid":"%s","url":"https://shop.example/catalog/product-%d?ref=mail","referrer":"https://shop.example/catalog","title":"Product %d — Shop"}',
      site, vid, product, product)
    return wrk.format("POST", nil,
      { ["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = agent }, body)
  end
  local name, email, phone, company, message = contact()
  local page = string.format("https://shop.example/contact?from=product-%d&utm_source=newsletter", product)
  if mode == "json" then
    local body = string.format(
      '{"vid":"%s","page":%s,"fields":{"name":%s,"email":%s,"phone":%s,"company":%s,"message":%s,"consent":true}}',
      vid, json_string(page), json_string(name), json_string(email), json_string(phone),
      json_string(company), json_string(message))
    return wrk.format("POST", nil,
      { ["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = agent }, body)
  end
  local body = string.format("name=%s&email=%s&phone=%s&company=%s&message=%s&consent=on&ff_vid=%s&ff_page=%s",
    urlencode(name), urlencode(email), urlencode(phone), urlencode(company), urlencode(message),
    urlencode(vid), urlencode(page))
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["User-Agent"] = agent,
    ["Referer"] = page,
  }, body)
end
