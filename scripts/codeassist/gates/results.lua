-- Test results read from what test tools print or write: pure functions on text, no I/O.
--
--   results.junit(xml | {xml, ...})  JUnit XML (pytest, surefire, gradle, phpunit, jest-junit)
--   results.tap(text)                TAP 12-14 (node --test, busted, tape, prove), subtests
--   results.go_json(text)            `go test -json` (test2json), with its coverage
--   results.pytest(text)             pytest's summary line, FAILED/ERROR lines, tracebacks
--   results.cargo(text)              cargo test's "test result:" lines (one per test binary)
--   results.jest(text), results.vitest(text), results.node(text), results.mocha(text)
--   results.surefire(text)           Maven's console ("Tests run: 3, Failures: 1, ...")
--   results.gradle(text)             Gradle's console ("3 tests completed, 1 failed")
--   results.phpunit(text)            PHPUnit's console ("OK (3 tests, ...)", "Tests: 3, ...")
--   results.coverage(text)           a total coverage percent, where a tool prints one
--   results.parse(text, order)       the first parser (names from results.ORDER) that
--                                    recognises the text: tests, name, coverage
--
-- Every parser returns nil when the text is not its format, else
--   {total, passed, failed, skipped, failures = {{name, message, file, line}, ...}}
-- failed counts failures and errors; skipped counts skips, TODOs, xfails. `failures` may also
-- hold what stopped tests from running (a compile error, a package that failed to build, a
-- bail-out): those are named so, and counted in `failed` (and `total`) as one failed test each,
-- except cargo's compile errors and jest's "Test suite failed to run", which the tools
-- themselves do not count as tests (nothing ran; the command's exit code says it failed).
local cjson = require "cjson.safe"

local M = {}

M.MAX_FAILURES = 100        -- failures kept per result (failures_omitted says how many more)
M.MAX_MESSAGE = 1500        -- bytes of one failure's message

-- Text as the parsers want it: no colour escapes, no carriage returns.
function M.clean(text)
  text = text or ""
  text = text:gsub("\27%[[%d;?]*[A-Za-z]", ""):gsub("\27%][^\7]*\7", "")
  return (text:gsub("\r\n", "\n"):gsub("\r", "\n"))
end

local function trim(s)
  return (s or ""):match("^%s*(.-)%s*$")
end

local function cap(s, max)
  s = trim(s)
  max = max or M.MAX_MESSAGE
  if #s <= max then return s end
  return s:sub(1, max) .. " …"
end

local function lines(text)
  local out = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = line end
  if out[#out] == "" then out[#out] = nil end
  return out
end

local function new_tests()
  return { total = 0, passed = 0, failed = 0, skipped = 0, failures = {} }
end

local function add_failure(t, f)
  if #t.failures >= M.MAX_FAILURES then
    t.failures_omitted = (t.failures_omitted or 0) + 1
    return
  end
  t.failures[#t.failures + 1] = { name = f.name or "?", message = cap(f.message or ""),
                                  file = f.file, line = tonumber(f.line) }
end

-- Where in a stack or traceback the failure is: the first "path.ext:line" that is not the
-- runtime's own (node:internal, /rustc/, site-packages, node_modules).
local function locate(text)
  for l in (text or ""):gmatch("[^\n]+") do
    for file, line in l:gmatch("([%w_%.%-/\\@~]+%.%a[%w]*):(%d+)") do
      if not (file:find("node_modules", 1, true) or file:find("^/rustc/") or file:find("site%-packages")
              or file:find("^internal/") or file:find("^node:")) then
        return file, tonumber(line)
      end
    end
  end
end
M.locate = locate

---------------------------------------------------------------------------------------------
-- JUnit XML

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  if cp < 0x110000 then
    return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                       0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return "\239\191\189"
end

function M.unescape(s)
  return (s:gsub("&(#?)([xX]?)(%w+);", function(hash, x, body)
    if hash == "" then return ENTITIES[body] end   -- nil keeps an unknown entity as it is
    local cp = tonumber(body, x ~= "" and 16 or 10)
    return cp and utf8_char(cp)
  end))
end

-- Calls on_open(name, attrs, self_closing), on_close(name), on_text(text) for the elements of
-- an XML document: comments, processing instructions and DOCTYPE skipped, CDATA as text,
-- attributes in either quotes and in any order, a '>' inside a value allowed.
local function xml_walk(text, on_open, on_close, on_text)
  local pos, n = 1, #text
  while pos <= n do
    local lt = text:find("<", pos, true)
    if not lt then on_text(text:sub(pos)) break end
    if lt > pos then on_text(text:sub(pos, lt - 1)) end
    if text:sub(lt, lt + 3) == "<!--" then
      local e = text:find("-->", lt + 4, true)
      pos = e and e + 3 or n + 1
    elseif text:sub(lt, lt + 8) == "<![CDATA[" then
      local e = text:find("]]>", lt + 9, true)
      on_text(text:sub(lt + 9, (e or n + 1) - 1), true)
      pos = e and e + 3 or n + 1
    elseif text:sub(lt, lt + 1) == "<?" then
      local e = text:find("?>", lt + 2, true)
      pos = e and e + 2 or n + 1
    elseif text:sub(lt, lt + 1) == "<!" then
      local e = text:find(">", lt + 2, true)
      pos = e and e + 1 or n + 1
    elseif text:sub(lt, lt + 1) == "</" then
      local name, after = text:match("^</%s*([^%s>]+)%s*>()", lt)
      if name then
        on_close(name:match("([^:]+)$"))
        pos = after
      else
        pos = lt + 2
      end
    else
      local name, p = text:match("^<([%a_][^%s/>]*)()", lt)
      if not name then
        on_text("<")
        pos = lt + 1
      else
        local attrs = {}
        while true do
          local k, _, v, np = text:match("^%s*([^%s=/>]+)%s*=%s*([\"'])(.-)%2()", p)
          if not k then break end
          attrs[k:match("([^:]+)$")] = M.unescape(v)
          p = np
        end
        local slash, after = text:match("^%s*(/?)>()", p)
        if not after then                              -- broken tag: skip to its end
          local e = text:find(">", p, true)
          after, slash = e and e + 1 or n + 1, text:sub((e or 2) - 1, (e or 2) - 1) == "/" and "/" or ""
        end
        local local_name = name:match("([^:]+)$")
        on_open(local_name, attrs, slash == "/")
        if slash == "/" then on_close(local_name) end
        pos = after
      end
    end
  end
end

local function count_attr(attrs, ...)
  local sum = 0
  for _, k in ipairs{ ... } do sum = sum + (tonumber(attrs[k]) or 0) end
  return sum
end

-- A Java frame of the test's own class: "at com.x.CalcTest.add(CalcTest.java:12)".
local function java_frame(body, classname)
  if not classname or classname == "" then return end
  local esc = classname:gsub("[%p]", "%%%0")
  -- gradle writes "at app//com.x.CalcTest.add(...)"
  local file, line = body:match("at [^%s]-" .. esc .. "%.[^%s(]+%(([^:()]+):(%d+)%)")
  return file, tonumber(line)
end

-- One or several JUnit XML documents (a list: surefire's one file per class). Counts come
-- from the testcase elements; a document with none (only counts) uses the counts of its
-- innermost testsuite elements, or of the root.
function M.junit(docs)
  if type(docs) == "string" then docs = { docs } end
  local t = new_tests()
  local recognised = false
  for _, xml in ipairs(docs) do
    local cases, suites, root_counts = 0, {}, nil
    local stack, case, capture = {}, nil, nil
    local counted = new_tests()
    local doc_failures = {}
    xml_walk(xml, function(name, attrs)
      local parent = stack[#stack]
      stack[#stack + 1] = name
      if name == "testsuites" then
        recognised = true
        if not root_counts then root_counts = attrs end
      elseif name == "testsuite" then
        recognised = true
        suites[#suites + 1] = { attrs = attrs, leaf = true }
        for i = #suites - 1, 1, -1 do           -- the enclosing suite is not a leaf
          if suites[i].open then suites[i].leaf = false break end
        end
        suites[#suites].open = true
      elseif name == "testcase" then
        recognised = true
        case = { attrs = attrs, status = "passed", body = {} }
      elseif case and parent == "testcase" and (name == "failure" or name == "error") then
        case.status = "failed"
        case.kind = case.kind or name
        case.message = case.message or attrs.message
        case.type = case.type or attrs.type
        capture = case.body
      elseif case and parent == "testcase" and name == "skipped" then
        if case.status ~= "failed" then case.status = "skipped" end
      end
    end, function(name)
      if stack[#stack] == name then stack[#stack] = nil end
      if name == "testsuite" then
        for i = #suites, 1, -1 do
          if suites[i].open then suites[i].open = false break end
        end
      elseif (name == "failure" or name == "error") then
        capture = nil
      elseif name == "testcase" and case then
        cases = cases + 1
        local a = case.attrs
        counted.total = counted.total + 1
        if case.status == "failed" then
          counted.failed = counted.failed + 1
          local body = table.concat(case.body)
          local cls = a.classname or a.class or ""
          local cname = a.name or "?"
          local full = (cls ~= "" and not cname:find(cls, 1, true)) and (cls .. "." .. cname) or cname
          local msg = case.message
          local short_type = case.type and case.type:match("([%w_]+)$")
          if not msg or trim(msg) == "" then
            -- the body's first line that is not the test's own name (PHPUnit starts with it)
            for l in body:gmatch("[^\n]+") do
              if trim(l) ~= "" and not l:find(cname, 1, true) then msg = trim(l) break end
            end
            msg = msg or short_type or case.kind
          elseif short_type and not msg:find(short_type, 1, true) then
            msg = short_type .. ": " .. msg
          end
          local file, line = a.file, tonumber(a.line)
          if not file then
            file, line = java_frame(body, cls)
            if not file then
              local f2, l2 = body:match("\n([^%s:]+%.py):(%d+): ")
              if not f2 then f2, l2 = body:match("^([^%s:]+%.py):(%d+): ") end
              if f2 then file, line = f2, tonumber(l2) else file, line = locate(body) end
            end
          else
            -- the line that failed, where the body names it, rather than the test's first line
            local esc = file:gsub("[%p]", "%%%0")
            line = tonumber(body:match(esc .. ":(%d+)")) or line
          end
          doc_failures[#doc_failures + 1] = { name = full, message = msg, file = file, line = line }
        elseif case.status == "skipped" then
          counted.skipped = counted.skipped + 1
        else
          counted.passed = counted.passed + 1
        end
        case = nil
      end
    end, function(text, cdata)
      if capture then capture[#capture + 1] = cdata and text or M.unescape(text) end
    end)
    if cases > 0 then
      for _, k in ipairs{ "total", "passed", "failed", "skipped" } do t[k] = t[k] + counted[k] end
      for _, f in ipairs(doc_failures) do add_failure(t, f) end
    else
      -- no testcase elements: the counts the suites declare
      local sources = {}
      for _, s in ipairs(suites) do if s.leaf then sources[#sources + 1] = s.attrs end end
      if #sources == 0 and root_counts then sources = { root_counts } end
      for _, a in ipairs(sources) do
        local total = count_attr(a, "tests")
        local failed = count_attr(a, "failures", "errors")
        local skipped = count_attr(a, "skipped", "skips", "disabled")
        t.total = t.total + total
        t.failed = t.failed + failed
        t.skipped = t.skipped + skipped
        t.passed = t.passed + math.max(0, total - failed - skipped)
      end
    end
  end
  if not recognised then return nil end
  return t
end

---------------------------------------------------------------------------------------------
-- TAP

-- The fields of a YAML diagnostic block that say what failed and where (a flat reading:
-- scalars, quoted scalars, block scalars, and `at:` / `location:` as "file:line[:col]").
local function tap_yaml(block)
  local fields, i = {}, 1
  local base = block[1] and #block[1]:match("^(%s*)") or 0
  while i <= #block do
    local l = block[i]
    local ind, key, value = l:match("^(%s*)([%w_%-]+):%s*(.-)%s*$")
    if key and #ind == base then
      if value == "|" or value == "|-" or value == ">" or value == ">-" or value == "" then
        local parts = {}
        while block[i + 1] and (#(block[i + 1]:match("^(%s*)")) > base or block[i + 1]:match("^%s*$")) do
          i = i + 1
          parts[#parts + 1] = trim(block[i])
        end
        value = table.concat(parts, "\n")
      end
      value = value:gsub("^'(.*)'$", "%1"):gsub('^"(.*)"$', "%1")
      fields[key] = value
    end
    i = i + 1
  end
  return fields
end

function M.tap(text)
  text = M.clean(text)
  local L = lines(text)
  local t = new_tests()
  local recognised = text:find("^TAP version %d") or text:find("\nTAP version %d")
  local points = {}              -- every test point, in order: {depth, ok, directive, name, fields}
  local plans = {}               -- top-level plans
  local bail
  local i = 1
  while i <= #L do
    local l = L[i]
    local ind, rest = l:match("^(%s*)(.*)$")
    local notok = rest:match("^not ok%f[^%w]")
    if notok or rest:match("^ok%f[^%w]") then
      local after = rest:gsub(notok and "^not ok%s*" or "^ok%s*", "")
      local num, desc = after:match("^(%d*)%s*%-?%s*(.*)$")
      if num ~= "" then recognised = true end
      -- "# SKIP reason" / "# TODO reason" (any case); any other '#' belongs to the description
      local directive, name, reason = nil, desc, nil
      local before, rest_ = desc:match("^(.-)%s*#%s*[Ss][Kk][Ii][Pp]%a*(.*)$")
      if before then directive = "skip" else
        before, rest_ = desc:match("^(.-)%s*#%s*[Tt][Oo][Dd][Oo]%f[%A](.*)$")
        if before then directive = "todo" end
      end
      if directive then name, reason = before, trim(rest_) end
      name = trim(name)
      if name == "" and reason and reason ~= "" then name = reason end
      local p = { depth = #ind, ok = not notok, directive = directive, name = name ~= "" and name or ("test " .. num), fields = {} }
      points[#points + 1] = p
      -- a YAML block below it, or busted's "# file @ line" / "# Failure message:" comments
      local j = i + 1
      if L[j] and L[j]:match("^%s*%-%-%-%s*$") then
        local block = {}
        j = j + 1
        while L[j] and not L[j]:match("^%s*%.%.%.%s*$") do block[#block + 1] = L[j] j = j + 1 end
        p.fields = tap_yaml(block)
        i = j
      else
        local msg
        while L[j] and L[j]:match("^%s*#") and not L[j]:match("^%s*# Subtest") do
          local c = L[j]:match("^%s*#%s?(.*)$")
          local file, line = c:match("^(%S+) @ (%d+)$")
          if file then p.fields.file, p.fields.line = file, line
          elseif c:match("^Failure message: ") or c:match("^Error message: ") then msg = { (c:gsub("^%a+ message: ", "")) }
          elseif msg and #msg < 12 then msg[#msg + 1] = c end
          j = j + 1
        end
        if msg then p.fields.message = table.concat(msg, "\n") end
        i = j - 1
      end
    elseif rest:match("^1%.%.%d+") then
      recognised = true
      if #ind == 0 then plans[#plans + 1] = tonumber(rest:match("^1%.%.(%d+)")) end
    elseif rest:match("^Bail out!") then
      recognised = true
      bail = trim(rest:match("^Bail out!(.*)$"))
    end
    i = i + 1
  end
  if not recognised then return nil end
  -- Subtests come before their parent's line, indented: a point preceded (since the last
  -- point at its depth or above) by deeper points is a parent. Leaves are counted; a failed
  -- parent counts only when none of its children failed (a hook or the suite itself failed).
  local deeper_seen, deeper_failed = {}, {}
  local top_level = 0
  for _, p in ipairs(points) do
    local d = p.depth
    local parent, child_failed = deeper_seen[d], deeper_failed[d]
    for k in pairs(deeper_seen) do if k >= d then deeper_seen[k], deeper_failed[k] = nil, nil end end
    for k = 0, d - 1 do
      deeper_seen[k] = true
      if not p.ok and not p.directive then deeper_failed[k] = true end
    end
    if d == 0 then top_level = top_level + 1 end
    local counts = not parent or (not p.ok and not p.directive and not child_failed)
    if counts then
      t.total = t.total + 1
      if p.directive then
        t.skipped = t.skipped + 1
      elseif p.ok then
        t.passed = t.passed + 1
      else
        t.failed = t.failed + 1
        local f = p.fields
        local file, line = f.file, f.line
        local at = f.at or f.location
        if not file and at and at ~= "" then
          file, line = at:match("^(.-):(%d+)")
          if not file then file = at:match("file:%s*(%S+)") line = at:match("line:%s*(%d+)") end
        end
        add_failure(t, { name = p.name, message = f.message or f.error or f.wanted and ("wanted " .. f.wanted .. ", found " .. tostring(f.found)) or "",
                         file = file, line = line })
      end
    end
  end
  if bail then
    add_failure(t, { name = "Bail out!", message = bail })
    t.failed = t.failed + 1
    t.total = t.total + 1
  elseif #plans == 1 and plans[1] > top_level then
    add_failure(t, { name = "plan", message = ("planned %d tests but %d ran"):format(plans[1], top_level) })
    t.failed = t.failed + 1
    t.total = t.total + 1
  end
  return t
end

---------------------------------------------------------------------------------------------
-- go test -json

local function go_location(out)
  for _, l in ipairs(out) do
    local file, line, msg = l:match("^%s+([%w_%.%-/]+%.go):(%d+): (.*)$")
    if file then return file, tonumber(line), msg end
  end
end

-- Returns tests and the mean coverage of the packages that report one.
function M.go_json(text)
  text = M.clean(text)
  local tests, order = {}, {}
  local pkgs, pkg_order = {}, {}
  local builds, build_order = {}, {}
  local plain = {}
  local recognised = false
  local function pkg(name)
    if not pkgs[name] then pkgs[name] = { output = {} } pkg_order[#pkg_order + 1] = name end
    return pkgs[name]
  end
  for l in text:gmatch("[^\n]+") do
    local ev = l:match("^%s*{") and cjson.decode(l)
    if type(ev) == "table" and type(ev.Action) == "string" then
      recognised = true
      local a = ev.Action
      if type(ev.ImportPath) == "string" and (a == "build-output" or a == "build-fail") then
        local b = builds[ev.ImportPath]
        if not b then b = { output = {} } builds[ev.ImportPath] = b build_order[#build_order + 1] = ev.ImportPath end
        if a == "build-output" and type(ev.Output) == "string" then b.output[#b.output + 1] = ev.Output:gsub("\n$", "") end
        if a == "build-fail" then b.failed = true end
      elseif type(ev.Package) == "string" then
        local p = pkg(ev.Package)
        if type(ev.Test) == "string" then
          local key = ev.Package .. "\0" .. ev.Test
          local tt = tests[key]
          if not tt then
            tt = { pkg = ev.Package, name = ev.Test, output = {} }
            tests[key] = tt
            order[#order + 1] = key
          end
          if a == "output" and type(ev.Output) == "string" and #tt.output < 200 then
            tt.output[#tt.output + 1] = ev.Output:gsub("\n$", "")
          elseif a == "pass" or a == "fail" or a == "skip" then
            tt.status = a
          end
        else
          if a == "output" and type(ev.Output) == "string" then
            local o = ev.Output:gsub("\n$", "")
            if #p.output < 200 then p.output[#p.output + 1] = o end
            local cov = o:match("coverage: ([%d.]+)%% of statements")
            if cov then p.coverage = tonumber(cov) end
          elseif a == "pass" or a == "fail" or a == "skip" then
            p.status = a
          end
        end
      end
    elseif not l:match("^%s*{") then
      plain[#plain + 1] = l
    end
  end
  if not recognised then return nil end
  local t = new_tests()
  -- a test with subtests is their parent: counted only when it failed with none of them failing
  local children = {}
  for _, key in ipairs(order) do
    local tt = tests[key]
    local parent = tt.name:match("^(.*)/[^/]*$")
    while parent do
      local pk = tt.pkg .. "\0" .. parent
      children[pk] = children[pk] or { failed = false }
      if tt.status == "fail" or (not tt.status and pkgs[tt.pkg].status == "fail") then children[pk].failed = true end
      parent = parent:match("^(.*)/[^/]*$")
    end
  end
  local failed_pkgs = {}
  for _, key in ipairs(order) do
    local tt = tests[key]
    local status = tt.status
    if not status then status = pkgs[tt.pkg].status == "fail" and "fail" or nil end   -- cut short (a panic)
    local kids = children[key]
    if status and (not kids or (status == "fail" and not kids.failed)) then
      t.total = t.total + 1
      if status == "pass" then t.passed = t.passed + 1
      elseif status == "skip" then t.skipped = t.skipped + 1
      else
        t.failed = t.failed + 1
        failed_pkgs[tt.pkg] = true
        local out = {}
        for _, o in ipairs(tt.output) do
          if not (o:match("^%s*=== %u+") or o:match("^%s*%-%-%- FAIL")) then out[#out + 1] = o end
        end
        local file, line, msg = go_location(out)
        local rest = {}
        for _, o in ipairs(out) do rest[#rest + 1] = trim(o) end
        if msg then
          rest[1] = msg                                    -- "calc_test.go:9: " goes to file and line
        elseif (rest[1] or ""):match("^panic: ") then
          -- a panic: its first line, and where in a test file the stack passed
          rest = { rest[1] }
          for _, o in ipairs(out) do
            local f, ln = o:match("^%s+(%S+_test%.go):(%d+)")
            if f then file, line = f, tonumber(ln) break end
          end
        end
        add_failure(t, { name = tt.pkg .. "." .. tt.name, file = file, line = line,
                         message = table.concat(rest, "\n") })
      end
    end
  end
  -- what failed outside any test: a build, a panic in TestMain, a timeout
  for _, ip in ipairs(build_order) do
    local b = builds[ip]
    if b.failed then
      local out = {}
      for _, o in ipairs(b.output) do if not o:match("^#") then out[#out + 1] = o end end
      local file, line = (out[1] or ""):match("^([^:]+%.go):(%d+)")
      add_failure(t, { name = "build " .. ip:gsub(" %[.*%]$", ""), message = table.concat(out, "\n"), file = file, line = line })
      failed_pkgs[ip:gsub(" %[.*%]$", "")] = true
      t.total, t.failed = t.total + 1, t.failed + 1
    end
  end
  local covs = {}
  for _, name in ipairs(pkg_order) do
    local p = pkgs[name]
    if p.coverage then covs[#covs + 1] = p.coverage end
    if p.status == "fail" and not failed_pkgs[name] then
      local out = {}
      for _, o in ipairs(p.output) do
        if not (o == "FAIL" or o:match("^coverage:")) then out[#out + 1] = o end
      end
      if table.concat(out):find("%[build failed%]") then
        for _, l in ipairs(plain) do
          if l:match("%.go:%d+:%d+: ") then out[#out + 1] = l end
        end
      end
      local file, line = go_location(out)
      if not file then
        for _, l in ipairs(out) do
          local f2, l2 = l:match("^%.?/?([%w_%.%-/]+%.go):(%d+)")
          if f2 then file, line = f2, tonumber(l2) break end
        end
      end
      add_failure(t, { name = "package " .. name, message = table.concat(out, "\n"), file = file, line = line })
      t.total, t.failed = t.total + 1, t.failed + 1
    end
  end
  local coverage
  if #covs > 0 then
    local sum = 0
    for _, c in ipairs(covs) do sum = sum + c end
    coverage = sum / #covs
  end
  return t, coverage
end

---------------------------------------------------------------------------------------------
-- pytest

local PYTEST_WORDS = { passed = "passed", failed = "failed", error = "error", errors = "error",
                       skipped = "skipped", xfailed = "xfailed", xpassed = "xpassed" }

function M.pytest(text)
  text = M.clean(text)
  local L = lines(text)
  local summary
  for i = #L, 1, -1 do
    local s = trim(L[i]:gsub("^=+", ""):gsub("=+$", ""))
    if s:match("^no tests ran in [%d.]+s") or
       (s:match("^%d+ %a+[%d%a, ]* in [%d.]+s") and s:match("%d+ (%a+)") and
        (s:find("passed") or s:find("failed") or s:find("error") or s:find("skipped") or s:find("xfail")
         or s:find("xpass") or s:find("deselected") or s:find("warning"))) then
      summary = s
      break
    end
  end
  if not summary then return nil end
  local t = new_tests()
  local n = {}
  for count, word in summary:gmatch("(%d+) (%a+)") do
    local k = PYTEST_WORDS[word]
    if k then n[k] = (n[k] or 0) + tonumber(count) end
  end
  t.passed = (n.passed or 0) + (n.xpassed or 0)
  t.failed = (n.failed or 0) + (n.error or 0)
  t.skipped = (n.skipped or 0) + (n.xfailed or 0)
  t.total = t.passed + t.failed + t.skipped
  -- where each failure is: the traceback section "____ test_name ____" ends at "file.py:N: Error"
  local where, section = {}, nil
  for _, l in ipairs(L) do
    local head = not l:match("^[_ ]+$") and l:match("^_+ (.-) _+$")
    if head then
      section = head:gsub("^ERROR at %a+ of ", ""):gsub("^ERROR collecting ", "")
    elseif l:match("^=+ ") then
      section = nil
    elseif section then
      local w = where[section] or {}
      where[section] = w
      local file, line = l:match("^([^%s:]+%.py):(%d+): ")
      if file and not w.file and not (file:find("^/") and (file:find("/lib/python") or file:find("site%-packages"))) then
        w.file, w.line = file, tonumber(line)
      end
      local e = l:match("^E%s+(%S.*)$")
      if e and not w.message then w.message = e end
    end
  end
  local seen = {}
  for _, l in ipairs(L) do
    local kind, id, msg = l:match("^(FAILED) (%S+)(.*)$")
    if not kind then kind, id, msg = l:match("^(ERROR) (%S+)(.*)$") end
    if kind and not seen[id] then
      seen[id] = true
      msg = msg:gsub("^ %- ", "")
      local file = id:match("^([^:]+)")
      local short = id:match("^[^:]+::(.*)$")
      local w = short and (where[(short:gsub("::", "."))] or where[short:match("([^:]+)$")]) or where[id] or where[file]
      if msg == "" and w and w.message then msg = w.message end
      add_failure(t, { name = kind == "ERROR" and ("ERROR " .. id) or id, message = msg,
                       file = w and w.file or file, line = w and w.line })
    end
  end
  -- without a short summary (-rN), the traceback sections still name the failures
  if #t.failures == 0 and t.failed > 0 then
    for name, w in pairs(where) do
      if w.file or w.message then add_failure(t, { name = name, file = w.file, line = w.line, message = w.message or "" }) end
    end
    table.sort(t.failures, function(a, b) return a.name < b.name end)
  end
  return t
end

---------------------------------------------------------------------------------------------
-- cargo test

function M.cargo(text)
  text = M.clean(text)
  local L = lines(text)
  local t = new_tests()
  local recognised = false
  for _, l in ipairs(L) do
    local p, f, ig = l:match("^test result: %a+%. (%d+) passed; (%d+) failed; (%d+) ignored")
    if p then
      recognised = true
      t.passed, t.failed, t.skipped = t.passed + tonumber(p), t.failed + tonumber(f), t.skipped + tonumber(ig)
    end
  end
  -- panic messages by test, from the "---- name stdout ----" sections
  local detail, current = {}, nil
  for _, l in ipairs(L) do
    local name = l:match("^%-%-%-%- (.-) stdout %-%-%-%-$")
    if name then
      current = { lines = {} }
      detail[name] = current
    elseif l == "failures:" or l:match("^test result:") then
      current = nil
    elseif current then
      current.lines[#current.lines + 1] = l
    end
  end
  for _, l in ipairs(L) do
    local name = l:match("^test (.-) %.%.%. FAILED$")
    if name then
      local d = detail[name]
      local msg, file, line = "", nil, nil
      if d then
        local text_ = table.concat(d.lines, "\n")
        -- Rust >= 1.73: "panicked at src/lib.rs:14:17:\nmessage"; before: "panicked at 'message', src/lib.rs:14:17"
        local f, ln, m = text_:match("panicked at ([^\n]-):(%d+):%d+:\n(.-)\n?note:")
        if not f then f, ln, m = text_:match("panicked at ([^\n]-):(%d+):%d+:\n(.*)$") end
        if f then
          file, line, msg = f, ln, m
        else
          m, f, ln = text_:match("panicked at '(.-)', ([^\n]-):(%d+):%d+")
          if m then msg, file, line = m, f, ln else msg = text_ end
        end
        -- a doc test panics in a generated file: the test's own name says where it is
        if file and file:find("rustdoctest") then file, line = nil, nil end
      end
      if not file then
        file, line = name:match("^(%S+) %- .-%(line (%d+)%)$")
      end
      add_failure(t, { name = name, message = msg, file = file, line = line })
    end
  end
  -- compile errors: nothing ran
  if text:find("error: could not compile") or (not recognised and text:find("\nerror%[E%d+%]")) then
    recognised = true
    local seen_errors = {}
    for i, l in ipairs(L) do
      local msg = l:match("^(error%[?[%w]*%]?: .*)$")
      if msg and not msg:match("^error: could not compile") and not msg:match("^error: aborting") then
        local file, line = (L[i + 1] or ""):match("^%s*%-%-> ([^:]+):(%d+)")
        local key = msg .. "\0" .. tostring(file) .. "\0" .. tostring(line)
        if not seen_errors[key] then
          seen_errors[key] = true
          add_failure(t, { name = "compile", message = msg, file = file, line = line })
        end
      end
    end
  end
  if not recognised then return nil end
  t.total = t.passed + t.failed + t.skipped
  return t
end

---------------------------------------------------------------------------------------------
-- jest, vitest, node's spec reporter, mocha

local function counts_from(line, map)
  local n = {}
  for count, word in line:gmatch("(%d+) (%a+)") do
    local k = map[word]
    if k then n[k] = (n[k] or 0) + tonumber(count) end
  end
  return n
end

local JEST_WORDS = { failed = "failed", passed = "passed", skipped = "skipped", todo = "skipped",
                     pending = "skipped", total = "total" }

-- "Tests:       1 failed, 1 skipped, 5 passed, 7 total" and the "● Suite › test" blocks.
function M.jest(text)
  text = M.clean(text)
  local L = lines(text)
  local line
  for i = #L, 1, -1 do
    if L[i]:match("^Tests:%s+.-%d+ total") then line = L[i] break end
  end
  if not line then return nil end
  local n = counts_from(line, JEST_WORDS)
  local t = new_tests()
  t.passed, t.failed, t.skipped = n.passed or 0, n.failed or 0, n.skipped or 0
  t.total = n.total or (t.passed + t.failed + t.skipped)
  local seen, file = {}, nil
  local i = 1
  while i <= #L do
    local l = L[i]
    local f = l:match("^FAIL%s+(%S+)")
    if f then file = f end
    local name = l:match("^%s*● (.+)$")
    if name and name ~= "Console" and not name:match("^Console%s*$") then
      if name == "Test suite failed to run" then name = "Test suite failed to run: " .. (file or "?") end
      local msg, block = nil, {}
      local j = i + 1
      while L[j] and not L[j]:match("^%s*● ") and not L[j]:match("^%u%u%u%u? ") and not L[j]:match("^Test Suites:") do
        block[#block + 1] = L[j]
        if not msg and trim(L[j]) ~= "" then msg = trim(L[j]) end
        j = j + 1
      end
      if not seen[name] then
        seen[name] = true
        local lf, ll
        for _, b in ipairs(block) do
          local ff, fl = b:match("^%s+at .-%(?([^%s()]+):(%d+):%d+%)?$")
          if ff and not ff:find("node_modules") then lf, ll = ff, fl break end
        end
        -- "expect(received).toBe(expected)" is the matcher; the line after says what differed
        local detail = {}
        for _, b in ipairs(block) do
          local s = trim(b)
          if s:match("^Expected") or s:match("^Received") then detail[#detail + 1] = s end
        end
        if #detail > 0 then msg = (msg or "") .. "\n" .. table.concat(detail, "\n") end
        add_failure(t, { name = name, message = msg or "", file = lf or file, line = ll })
      end
      i = j
    else
      i = i + 1
    end
  end
  return t
end

local VITEST_WORDS = { failed = "failed", passed = "passed", skipped = "skipped", todo = "skipped" }

-- "      Tests  1 failed | 5 passed | 1 skipped (7)" and " FAIL  file > suite > test" blocks.
function M.vitest(text)
  text = M.clean(text)
  local L = lines(text)
  local line
  for i = #L, 1, -1 do
    if L[i]:match("^%s*Tests%s+.-%(%d+%)%s*$") and not L[i]:match("^%s*Test Files") then line = L[i] break end
  end
  if not line then return nil end
  local n = counts_from(line, VITEST_WORDS)
  local t = new_tests()
  t.passed, t.failed, t.skipped = n.passed or 0, n.failed or 0, n.skipped or 0
  t.total = tonumber(line:match("%((%d+)%)%s*$")) or (t.passed + t.failed + t.skipped)
  local seen = {}
  for i, l in ipairs(L) do
    local file, rest = l:match("^%s*FAIL%s+(%S+)%s+(.*)$")
    if file and rest ~= "" then
      local name = file .. " " .. rest
      if rest:match("^%[") then name = "Test file failed to run: " .. file end
      if not seen[name] then
        seen[name] = true
        local msg, lf, ll
        for j = i + 1, math.min(#L, i + 40) do
          local s = trim(L[j])
          if L[j]:match("^%s*FAIL%s") or s:match("^⎯⎯") and msg then break end
          if not msg and s ~= "" and not s:match("^⎯") then msg = s end
          local ff, fl = s:match("^❯ ([^%s]+):(%d+):%d+$")
          if ff and not ff:find("node_modules") then lf, ll = ff, fl break end
        end
        add_failure(t, { name = name:gsub(" > ", " › "), message = msg or "", file = lf or file, line = ll })
      end
    end
  end
  return t
end

-- node --test with the spec reporter (the default on a terminal, and everywhere from Node 23):
-- "ℹ tests 6", "ℹ pass 2", ... and the "✖ failing tests:" list.
function M.node(text)
  text = M.clean(text)
  local L = lines(text)
  local n = {}
  for _, l in ipairs(L) do
    local k, v = l:match("^ℹ (%a+) (%d+)$")
    if k then n[k] = tonumber(v) end
  end
  if not n.tests then return nil end
  local t = new_tests()
  t.total = n.tests
  t.passed, t.failed = n.pass or 0, (n.fail or 0) + (n.cancelled or 0)
  t.skipped = (n.skipped or 0) + (n.todo or 0)
  local start
  for i, l in ipairs(L) do if l:match("^✖ failing tests:") then start = i break end end
  if start then
    local i = start + 1
    while i <= #L do
      local file, line = L[i]:match("^test at (.-):(%d+):%d+$")
      local name = L[i + 1] and L[i + 1]:match("^✖ (.-) %([%d.]+m?s%)$")
      if file and name then
        local msg = {}
        for j = i + 2, math.min(#L, i + 30) do
          local s = trim(L[j])
          if s:match("^at ") or L[j]:match("^test at ") or L[j]:match("^✖ ") or #msg >= 10 then break end
          if s ~= "" then msg[#msg + 1] = s end
        end
        msg = table.concat(msg, "\n")
        add_failure(t, { name = name, message = msg or "", file = file, line = line })
        i = i + 2
      else
        i = i + 1
      end
    end
  end
  return t
end

-- mocha's spec reporter: "  5 passing (12ms)", "  1 pending", "  2 failing", then
-- "  1) Suite\n       test name:\n     Error: message\n      at ... (file:line:col)".
function M.mocha(text)
  text = M.clean(text)
  local L = lines(text)
  local n, fail_at = {}, nil
  for i, l in ipairs(L) do
    local c, w = l:match("^%s+(%d+) (%a+)")
    if c and (w == "passing" or w == "pending" or w == "failing") and (w ~= "passing" or l:match("passing %(")) then
      n[w] = tonumber(c)
      if w == "failing" then fail_at = i end
    end
  end
  if not n.passing and not n.failing then return nil end
  local t = new_tests()
  t.passed, t.failed, t.skipped = n.passing or 0, n.failing or 0, n.pending or 0
  t.total = t.passed + t.failed + t.skipped
  if fail_at then
    local i = fail_at + 1
    while i <= #L do
      local _, first = L[i]:match("^%s+(%d+)%) (.*)$")
      if first then
        local title = { trim(first) }
        local j = i
        while not title[#title]:match(":$") and L[j + 1] and trim(L[j + 1]) ~= "" do
          j = j + 1
          title[#title + 1] = trim(L[j])
        end
        local name = table.concat(title, " "):gsub(":$", "")
        local msg, lf, ll
        local k = j + 1
        while L[k] and not L[k]:match("^%s+%d+%) ") do
          local s = trim(L[k])
          if not msg and s ~= "" then msg = s end
          local ff, fl = s:match("^at .-%(?([^%s()]+):(%d+):%d+%)?$")
          if ff and not lf and not ff:find("node_modules") and not ff:find("^node:") then lf, ll = ff, fl end
          k = k + 1
        end
        add_failure(t, { name = name, message = msg or "", file = lf, line = ll })
        i = k
      else
        i = i + 1
      end
    end
  end
  return t
end

---------------------------------------------------------------------------------------------
-- Maven surefire's console, PHPUnit's console

function M.surefire(text)
  text = M.clean(text)
  local L = lines(text)
  local total_line, per_class = nil, {}
  for _, l in ipairs(L) do
    local r, f, e, s = l:match("Tests run: (%d+), Failures: (%d+), Errors: (%d+), Skipped: (%d+)")
    if r then
      if l:find("Time elapsed") or l:find(" %- in ") or l:find("%-%- in ") then
        per_class[#per_class + 1] = { r, f, e, s }
      else
        total_line = { r, f, e, s }
      end
    end
  end
  local sets = total_line and { total_line } or per_class
  if #sets == 0 then return nil end
  local t = new_tests()
  for _, c in ipairs(sets) do
    local r, f, e, s = tonumber(c[1]), tonumber(c[2]), tonumber(c[3]), tonumber(c[4])
    t.total = t.total + r
    t.failed = t.failed + f + e
    t.skipped = t.skipped + s
  end
  t.passed = math.max(0, t.total - t.failed - t.skipped)
  -- the "Results:" section: "[ERROR]   CalcTest.add:12 expected: <4> but was: <5>"
  local in_list = false
  for _, l in ipairs(L) do
    local body = l:gsub("^%[%u+%]", "")
    if body:match("^%s*Failures:%s*$") or body:match("^%s*Errors:%s*$") then
      in_list = true
    elseif in_list and body:match("^%s%s%s+%S") then
      local s = trim(body)
      local name, line, msg = s:match("^([%w_%.%$]+):(%d+) (.*)$")
      if not name then name, msg = s:match("^([%w_%.%$]+) (.*)$") end
      if name and not s:match("^Run %d+:") then
        local cls = name:match("^([%w_%$]+)%.") or name
        add_failure(t, { name = name, message = msg or "", file = cls:gsub("%$.*", "") .. ".java", line = line })
      end
    else
      in_list = false
    end
  end
  return t
end

-- Gradle's console when tests fail: "3 tests completed, 1 failed, 1 skipped" and
-- "CalcTest > adds() FAILED" followed by "    AssertionFailedError at CalcTest.java:12".
function M.gradle(text)
  text = M.clean(text)
  local L = lines(text)
  local t
  for _, l in ipairs(L) do
    local n, f = l:match("^(%d+) tests? completed, (%d+) failed")
    if n then
      t = t or new_tests()
      local s = tonumber(l:match(", (%d+) skipped")) or 0
      t.total, t.failed, t.skipped = t.total + tonumber(n), t.failed + tonumber(f), t.skipped + s
    end
  end
  if not t then return nil end
  t.passed = math.max(0, t.total - t.failed - t.skipped)
  for i, l in ipairs(L) do
    local cls, name = l:match("^(%S+) > (.-) FAILED$")
    if cls then
      local msg, file, line = "", nil, nil
      local nxt = L[i + 1] or ""
      if nxt:match("^%s+%S") then
        msg = trim(nxt)
        local m, f, ln = msg:match("^(.-) at ([%w_%$]+%.%a+):(%d+)$")
        if m then msg, file, line = m, f, ln end
      end
      add_failure(t, { name = cls .. "." .. name, message = msg, file = file, line = line })
    end
  end
  return t
end

function M.phpunit(text)
  text = M.clean(text)
  local L = lines(text)
  local t = new_tests()
  local found
  for i = #L, 1, -1 do
    local l = L[i]
    local ok_n = l:match("^OK %((%d+) tests?, %d+ assertions?%)")
    if ok_n then
      t.total, t.passed = tonumber(ok_n), tonumber(ok_n)
      found = true
      break
    end
    if l:match("^Tests: %d+, Assertions: %d+") then
      local n = {}
      for k, v in l:gmatch("(%a+): (%d+)") do n[k] = tonumber(v) end
      t.total = n.Tests
      t.failed = (n.Failures or 0) + (n.Errors or 0)
      t.skipped = (n.Skipped or 0) + (n.Incomplete or 0)
      t.passed = math.max(0, t.total - t.failed - t.skipped)
      found = true
      break
    end
  end
  if not found then return nil end
  -- "1) Tests\CalcTest::testAdd" then the message, then "/path/tests/CalcTest.php:12"
  local section
  local i = 1
  while i <= #L do
    local l = L[i]
    local sec = l:match("^There %a+ %d+ (.-):?$")
    if sec then section = sec end
    local name = (section == "failure" or section == "failures" or section == "error" or section == "errors")
      and l:match("^%d+%) (%S+)$")
    if name then
      local msg, file, line
      local j = i + 1
      while L[j] and not L[j]:match("^%d+%) %S+$") and not L[j]:match("^There %a+ %d+") and not L[j]:match("^FAILURES!") do
        local s = trim(L[j])
        if not msg and s ~= "" then msg = s end
        local f, ln = s:match("^(%S+%.php):(%d+)$")
        if f and not file then file, line = f, ln end
        j = j + 1
      end
      add_failure(t, { name = name, message = msg or "", file = file, line = line })
      i = j
    else
      i = i + 1
    end
  end
  return t
end

---------------------------------------------------------------------------------------------
-- Coverage

-- The total coverage percent a tool printed, or nil: coverage.py / pytest-cov's TOTAL line,
-- istanbul's "All files" row (jest, vitest, nyc, c8: the statements column), go's
-- "coverage: N% of statements" (the mean over packages), tarpaulin, PHPUnit's "Lines:".
function M.coverage(text)
  text = M.clean(text)
  local last
  for l in text:gmatch("[^\n]+") do
    local v = l:match("^TOTAL%s.-(%d+%.?%d*)%%%s*$")
    if v then last = tonumber(v) end
  end
  if last then return last end
  for l in text:gmatch("[^\n]+") do
    local v = l:match("^%s*All files%s*|%s*([%d.]+)")
    if v then last = tonumber(v) end
  end
  if last then return last end
  -- go: the package lines ("ok  pkg  0.01s  coverage: X% of statements"), one per package;
  -- without them (go test -v piped elsewhere) the bare "coverage: X%" lines
  local by_pkg, bare, sum, count = {}, {}, 0, 0
  for l in text:gmatch("[^\n]+") do
    local v = not l:match("^%s*{") and l:match("coverage: ([%d.]+)%% of statements")
    if v then
      local pkg = l:match("^ok%s+(%S+)") or l:match("^FAIL%s+(%S+)")
      if pkg then
        if not by_pkg[pkg] then by_pkg[pkg] = true sum, count = sum + tonumber(v), count + 1 end
      else
        bare[#bare + 1] = tonumber(v)
      end
    end
  end
  if count == 0 then for _, v in ipairs(bare) do sum, count = sum + v, count + 1 end end
  if count > 0 then return sum / count end
  for l in text:gmatch("[^\n]+") do
    local v = l:match("([%d.]+)%% coverage, %d+/%d+ lines covered")
    if v then last = tonumber(v) end
  end
  if last then return last end
  local in_summary = false
  for l in text:gmatch("[^\n]+") do
    if l:match("^%s*Summary:%s*$") then in_summary = true end
    local v = in_summary and l:match("^%s*Lines:%s+([%d.]+)%%")
    if v then return tonumber(v) end
  end
end

---------------------------------------------------------------------------------------------

M.ORDER = { "go-json", "cargo", "pytest", "jest", "vitest", "node", "mocha", "surefire", "gradle", "phpunit", "tap" }

M.PARSERS = { ["go-json"] = M.go_json, cargo = M.cargo, pytest = M.pytest, jest = M.jest, vitest = M.vitest,
              node = M.node, mocha = M.mocha, surefire = M.surefire, gradle = M.gradle, phpunit = M.phpunit,
              tap = M.tap }

-- The first parser in `order` (then the rest of ORDER) that recognises the text:
-- tests, the parser's name, coverage. Nothing recognised: nil.
function M.parse(text, order)
  text = M.clean(text)
  local tried = {}
  local list = {}
  for _, name in ipairs(order or {}) do list[#list + 1] = name end
  for _, name in ipairs(M.ORDER) do list[#list + 1] = name end
  for _, name in ipairs(list) do
    if not tried[name] then
      tried[name] = true
      local tests, cov = M.PARSERS[name](text)
      if tests then return tests, name, cov or M.coverage(text) end
    end
  end
  return nil, nil, M.coverage(text)
end

return M
