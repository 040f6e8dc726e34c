-- `make install` and the manual page: what a user gets on their system — the binary, the
-- presets, codeassist(1) (rendered by groff without a warning, naming every command and option
-- the program's --help does) and the completion scripts; `make uninstall` takes them away.
local support = require "support"
local fs = require "codeassist.fs"
local preset = require "codeassist.preset"

local MAN = support.root .. "/docs/codeassist.1"

local help_commands, help_options = support.help_commands, support.help_options

local function make(target, destdir)
  -- BUILD as the Makefile's default: the sanitizer suite (BUILD=build/asan) must not install its binary
  return support.sh(("make --no-print-directory %s DESTDIR='%s' PREFIX=/usr BUILD=build"):format(target, destdir),
    { cwd = support.root, timeout = 300 })
end

describe("make install", function()
  teardown(support.cleanup)

  it("puts the binary, the presets, the manual page and both completions in place; uninstall removes them", function()
    local dest = support.tmpdir()
    local r = make("install", dest)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local usr = dest .. "/usr"
    local installed = {
      bin = usr .. "/bin/codeassist",
      man = usr .. "/share/man/man1/codeassist.1",
      bash = usr .. "/share/bash-completion/completions/codeassist",
      zsh = usr .. "/share/zsh/site-functions/_codeassist",
    }
    for _, name in ipairs(preset.BUILTIN) do
      installed[name] = usr .. "/share/codeassist/presets/" .. name .. ".lua"
    end
    for what, path in pairs(installed) do assert.is_truthy(fs.stat(path), what .. ": " .. path) end

    local v = support.sh("'" .. installed.bin .. "' --version")
    assert.are.equal(0, v.code)
    assert.matches("^codeassist %d", v.stdout)
    assert.are.equal(fs.read(MAN), fs.read(installed.man))
    assert.are.equal(support.codeassist{ "completion", "bash" }.stdout, fs.read(installed.bash))
    assert.are.equal(support.codeassist{ "completion", "zsh" }.stdout, fs.read(installed.zsh))
    -- the installed bash script works in bash as installed
    local b = support.sh(("bash --norc --noprofile -c 'source %s && complete -p codeassist'"):format(installed.bash))
    assert.are.equal(0, b.code, b.stderr)

    r = make("uninstall", dest)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    for what, path in pairs(installed) do assert.is_falsy(fs.stat(path), what .. " is still there: " .. path) end
  end)
end)

describe("codeassist(1)", function()
  it("renders without a warning", function()
    local r = support.sh(("groff -man -Tutf8 -ww -z '%s'"):format(MAN))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("", r.stderr)
    r = support.sh(("groff -man -Tascii -P-cbou '%s'"):format(MAN))
    assert.matches("\nSYNOPSIS\n +codeassist %[%-%-debug%]", r.stdout)
    assert.matches("\nEXIT STATUS\n", r.stdout)
  end)

  it("documents every command and option the program's --help lists", function()
    local page = fs.read(MAN)
    -- the option itself, not a longer one it begins (--probe in \-\-probe\-timeout)
    local function mentions(word)
      local troff = word:gsub("%-", "\\-")
      local at = page:find(troff, 1, true)
      while at do
        local after = page:sub(at + #troff, at + #troff + 1)
        if not after:match("^[%w_]") and after ~= "\\-" then return true end
        at = page:find(troff, at + 1, true)
      end
      return false
    end
    local commands = help_commands()
    assert.is_true(#commands >= 7)
    for _, command in ipairs(commands) do
      local heading = '\n.SS "' .. command:gsub("%-", "\\-")
      assert.is_truthy(page:find(heading .. " ", 1, true) or page:find(heading .. '"', 1, true),
        command .. " has no .SS section in docs/codeassist.1")
      for _, option in ipairs(help_options{ command }) do
        assert.is_true(mentions(option), ("%s %s is not in docs/codeassist.1"):format(command, option))
      end
    end
    -- the loop's options (`run PRESET --help`), and the commands being added alongside
    for _, option in ipairs(help_options{ "run", "ollama_hybrid" }) do
      assert.is_true(mentions(option), "run PRESET " .. option .. " is not in docs/codeassist.1")
    end
    for _, word in ipairs{ '.SS "whatif', '.SS "init', "ANTHROPIC_API_KEY", "OLLAMA_HOST", "NO_COLOR",
                           ".codeassist/runs/", ".claude/autonomous.yml", "CODEASSIST_PATH" } do
      assert.is_true(page:find(word, 1, true) ~= nil, word)
    end
  end)
end)
