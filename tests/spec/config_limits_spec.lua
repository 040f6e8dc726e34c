-- A hostile or mistaken config file — anything under the 16 MiB size cap — loads (or is
-- refused with a clear message) through the real binary in bounded memory and time: peak
-- RSS <= 64 MB and well under a second (asserted at 2 s, for a busy machine). The files
-- are generated here, in a temp folder, at their full size.
local support = require "support"
local yaml = require "codeassist.yaml"
local fs = require "codeassist.fs"
local proc = require "codeassist.proc"

local MIB = 1024 * 1024
local CAP = 16 * MIB                  -- yaml.load_file's default byte limit
local MAX_MB, MAX_SECONDS = 64, 2
-- The sanitizer build (make asan) shadows every byte and runs several times slower: there the
-- behaviour is checked, the figures only printed.
local SANITIZED = os.getenv("ASAN_OPTIONS") ~= nil

-- Runs ARGV under python3, which reports the child's exit status, wall time and peak RSS
-- (getrusage of the waited child: its VmHWM), then the tail of its output.
local MEASURE = [[
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
dt = time.monotonic() - t
kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.write("%d %.3f %d\n" % (r.returncode, dt, kb))
out = r.stdout
sys.stdout.buffer.write(out if len(out) <= 6000 else out[:3000] + b"\n...\n" + out[-3000:])
]]

local function measure(dir, args)
  local argv = { "python3", "-c", MEASURE, support.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = { NO_COLOR = "1", OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = false,
                ANTHROPIC_AUTH_TOKEN = false, ANTHROPIC_BASE_URL = support.closed_port_url() }
  argv.cwd, argv.env, argv.timeout = dir, env, 150
  local r = assert(proc.run(argv))
  local code, seconds, kb, output = r.stdout:match("^(%-?%d+) ([%d.]+) (%d+)\n(.*)$")
  assert(code, "the measuring wrapper failed: " .. r.stdout .. r.stderr)
  return { code = tonumber(code), seconds = tonumber(seconds), mb = tonumber(kb) / 1024, output = output }
end

-- Checks the figures of one run and prints them in the suite's log.
local function within_limits(name, bytes, r)
  print(("# %-44s %5.1f MB file: peak RSS %5.1f MB, %.2f s, exit %d"):format(name, bytes / MIB, r.mb, r.seconds, r.code))
  assert.are_not.equal(3, r.code, r.output)
  assert.not_matches("internal error", r.output)
  if not SANITIZED then
    assert.is_true(r.mb <= MAX_MB, ("%s: peak RSS %.1f MB, more than %d MB"):format(name, r.mb, MAX_MB))
    assert.is_true(r.seconds <= MAX_SECONDS, ("%s: took %.2f s, more than %d s"):format(name, r.seconds, MAX_SECONDS))
  end
end

-- n copies of f(i) joined, as one string.
local function lines(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return table.concat(t)
end

local N = yaml.MAX_VALUES   -- every key, scalar, list, mapping and alias counts one

-- name -> the file's text; over = refused for having too many values (exit 2).
local SHAPES = {
  { name = "a list of 4M items (16 MB)", over = ":49999:3:",
    text = function() return "junk:\n" .. ("- 1\n"):rep((CAP - 6) / 4) end },
  { name = "2.8M strings under safety.forbidden", over = ":49998:5:",
    text = function() return "safety:\n  forbidden:\n" .. ("  - a\n"):rep(math.floor((CAP - 22) / 6)) end },
  { name = "8M items in one flow list", over = ":1:100002:",
    text = function() return "junk: [" .. ("1,"):rep((CAP - 10) / 2) .. "1]\n" end },
  { name = "50k distinct 330-byte strings in a list", loads = true,
    text = function()
      local width = math.floor((CAP - 100) / (N - 5)) - 5
      return "safety:\n  forbidden:\n" .. lines(N - 5, function(i)
        local s = "s" .. i .. "-"
        return "  - " .. s .. ("x"):rep(width - #s) .. "\n"
      end)
    end },
  { name = "one 16 MB string", loads = true,
    text = function() return "safety:\n  forbidden:\n  - " .. ("x"):rep(CAP - 40) .. "\n" end },
  { name = "50k empty mappings", loads = true,
    text = function() return "junk: [" .. ("{},"):rep(N - 4) .. "{}]\n" end },
  { name = "12k nested mappings", loads = true,
    text = function() return "junk: [" .. ("{a: {b: {c: {}}}},"):rep(math.floor((N - 3) / 7) - 1) .. "{}]\n" end },
  { name = "25k unknown gates (warnings)", loads = true,
    text = function() return "gates:\n" .. lines(math.floor((N - 3) / 2), function(i) return "  g" .. i .. ": {}\n" end) end },
  { name = "25k unknown top-level keys (warnings)", loads = true,
    text = function() return lines(math.floor((N - 1) / 2), function(i) return "k" .. i .. ": 1\n" end) end },
  { name = "50k wrong items in safety.forbidden (errors)", errors = N - 5,
    text = function() return "safety:\n  forbidden: [" .. ("1,"):rep(N - 6) .. "1]\n" end },
  -- one value as big as the file: messages quote a value cut short, and a value that cannot
  -- be a server address, model name or key is refused before anything uses it
  { name = "a 16 MB value where a provider name goes",
    refused = "c%.yml:2:3: providers%.default: 'o+… %(16777176 characters%)' is not one of claude, anthropic, ollama",
    text = function() return "providers:\n  default: " .. ("o"):rep(CAP - 40) .. "\n" end },
  { name = "a 16 MB server address",
    refused = "c%.yml:3:5: providers%.ollama%.base_url: the address is 16777156 characters long; a server address is at most 2048",
    text = function() return "providers:\n  ollama:\n    base_url: " .. ("h"):rep(CAP - 60) .. "\n" end },
  { name = "a 16 MB model name for an enabled Ollama",
    refused = "c%.yml:6:5: providers%.ollama%.model: is 16777016 characters long; a model name or key is at most 1024",
    text = function()
      return "providers:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: http://127.0.0.1:1\n    model: "
        .. ("m"):rep(CAP - 200) .. "\n"
    end },
  { name = "a 16 MB key (explicit, so YAML allows its length)", loads = true, warns = "c%.yml:1:3: k+… %(16777196 characters%): unknown key %(ignored%)",
    text = function() return "? " .. ("k"):rep(CAP - 20) .. "\n: 1\n" end },
  { name = "a pool of 24k Ollama servers",
    refused = "c%.yml:6:5: providers%.ollama%.base_url: has 24000 items; at most 64",
    text = function()
      return "providers:\n  default: ollama\n  ollama:\n    enabled: true\n    model: qwen3\n    base_url:\n"
        .. lines(24000, function(i) return "    - http://127.0.0.1:1/p" .. i .. "\n" end)
    end },
  { name = "an alias bomb: 9 gates x 9^10 leaves", loads = true,
    text = function()
      local t = { "junk:\n  l0: &l0 {" .. lines(9, function(i) return ("k%d: lol, "):format(i) end) .. "}\n" }
      for l = 1, 9 do
        t[#t + 1] = ("  l%d: &l%d {%s}\n"):format(l, l, lines(9, function(i) return ("k%d: *l%d, "):format(i, l - 1) end))
      end
      t[#t + 1] = "gates:\n" .. lines(9, function(i) return ("  g%d: *l9\n"):format(i) end)
      return table.concat(t)
    end },
}

describe("a config file under the size cap", function()
  local dir
  setup(function()
    dir = support.tmpdir()
    support.sh("git init -q && printf '# Make it so\\n' > issue.md", { cwd = dir })
  end)
  teardown(support.cleanup)

  for _, shape in ipairs(SHAPES) do
    it(("loads or is refused within %d MB and %d s: %s"):format(MAX_MB, MAX_SECONDS, shape.name), function()
      local text = shape.text()
      assert.is_true(#text <= CAP, shape.name .. " is " .. #text .. " bytes")
      local path = support.write(dir .. "/c.yml", text)
      text = nil   -- the spec's own copy can go
      collectgarbage()
      local r = measure(dir, { "doctor", "--config", path })
      within_limits("doctor: " .. shape.name, fs.stat(path).size, r)
      if shape.over then
        assert.are.equal(2, r.code, r.output)
        assert.matches("c%.yml" .. shape.over:gsub("%p", "%%%0") .. " more than " .. N .. " values %(keys, list items and scalars%) in one document; a codeassist file needs a few hundred at most — is this the right file%?", r.output)
      elseif shape.refused then
        assert.are.equal(2, r.code, r.output)
        assert.matches(shape.refused, r.output)
        assert.is_true(#r.output < 1000, "the message quotes the whole value")
      elseif shape.errors then
        assert.are.equal(2, r.code, r.output)
        assert.matches("c%.yml has " .. shape.errors .. " problems:\n  .-c%.yml:2:14: safety%.forbidden%[1%]: expected a string, found a number %(1%)", r.output)
        assert.matches("safety%.forbidden%[50%]: expected a string", r.output)
        assert.not_matches("safety%.forbidden%[51%]", r.output)
        assert.matches("c%.yml: … and " .. (shape.errors - 50) .. " more errors not listed", r.output)
      else
        assert.are.equal(1, r.code, r.output)   -- loaded; the doctor then finds no API key
        assert.matches("ANTHROPIC_API_KEY is not set", r.output)
        if shape.warns then assert.matches(shape.warns, r.output) end
      end
    end)
  end

  it("lists the first 50 warnings in file order and counts the rest", function()
    local path = support.write(dir .. "/w.yml", "gates:\n" .. lines(200, function(i) return ("  g%03d: {}\n"):format(i) end))
    local r = measure(dir, { "doctor", "--config", path })
    assert.are.equal(1, r.code, r.output)
    assert.matches("w%.yml:2:3: gates%.g001: unknown gate 'g001'", r.output)
    assert.matches("w%.yml:51:3: gates%.g050: unknown gate", r.output)
    assert.not_matches("gates%.g051", r.output)
    assert.matches("codeassist: warning: .-w%.yml: … and 150 more warnings not listed", r.output)
  end)

  it("counts values exactly: yaml.MAX_VALUES loads, one more is refused with its position", function()
    -- a mapping, its key, a list: 3 values, then the items
    local ok = support.write(dir .. "/ok.yml", "junk:\n" .. ("- 1\n"):rep(N - 3))
    local r = measure(dir, { "doctor", "--config", ok })
    assert.are.equal(1, r.code, r.output)
    local over = support.write(dir .. "/over.yml", "junk:\n" .. ("- 1\n"):rep(N - 2))
    r = measure(dir, { "doctor", "--config", over })
    assert.are.equal(2, r.code, r.output)
    assert.matches("over%.yml:" .. (N - 1) .. ":3: more than " .. N .. " values", r.output)
    local v, e = yaml.load("[" .. ("1,"):rep(N) .. "1]", { name = "x.yml" })
    assert.is_nil(v)
    assert.are.equal("parse", e.kind)
    assert.are.same({ "x.yml", 1, 2 * N }, { e.file, e.line, e.col })   -- item N: the root list is value 1
  end)

  it("holds through `run PRESET` too (config load, validation, the dry run's doctor)", function()
    for _, shape in ipairs{ SHAPES[2], SHAPES[4], SHAPES[5] } do
      local path = support.write(dir .. "/c.yml", shape.text())
      collectgarbage()
      local r = measure(dir, { "run", "claude", "--config", path, "--issue-file", "issue.md", "--dry-run" })
      within_limits("run --dry-run: " .. shape.name, fs.stat(path).size, r)
      if shape.over then
        assert.are.equal(2, r.code, r.output)
        assert.matches("more than " .. N .. " values", r.output)
      else
        assert.are.equal(1, r.code, r.output)   -- loaded; no API key, so the routes fail
        assert.matches("a required route cannot be served", r.output)
      end
    end
  end)

  it("streams the file: a file that grows past the cap while read is too_large, not a parse error", function()
    local v, e = yaml.load_file("/dev/zero", { max_bytes = 1000 })
    assert.is_nil(v)
    assert.are.equal("too_large", e.kind)
    assert.are.equal("cannot read '/dev/zero': it is more than the limit of 1000 bytes", e.message)
    assert.are.equal("/dev/zero", e.path)
    -- an encoding error deep in a streamed file still says where
    local path = support.write(dir .. "/enc.yml", lines(5000, function(i) return "a" .. i .. ": 1\n" end) .. "b: \255\n")
    v, e = yaml.load_file(path)
    assert.is_nil(v)
    assert.matches("enc%.yml:5001:4: .*UTF%-8", e.message)
  end)
end)
