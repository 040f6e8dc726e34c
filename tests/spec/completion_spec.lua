-- Shell completion: `codeassist completion bash|zsh` (installed by `make install`), made from
-- the command line's own parser, tried in a real bash (the completion function called as bash
-- calls it) and a real zsh (compinit in a pseudo-terminal, TAB typed; tests/spec/zsh_complete.zsh).
local support = require "support"
local preset = require "codeassist.preset"

local function script(shell)
  local r = support.codeassist{ "completion", shell }
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

-- A folder to complete in: preset files, and a file that is not one.
local function workdir()
  local dir = support.tmpdir()
  support.write(dir .. "/presets/team.lua", "return {}\n")
  support.write(dir .. "/mine.lua", "return {}\n")
  support.write(dir .. "/notes.txt", "not a preset\n")
  support.write(dir .. "/.codeassist/runs/20261130-101010-issue-3-ab12/state.json", "{}\n")
  support.write(dir .. "/.codeassist/runs/not-a-run/notes.txt", "no state.json\n")
  support.write(dir .. "/other/.codeassist/runs/20261201-090000-issue-9-cd34/state.json", "{}\n")
  support.write(dir .. "/spaced dir/x", "\n")
  return dir
end

-- "<line> LINE" / "<hit> WORD" lines -> {LINE = {WORD, ...} (sorted)}
local function parse_hits(text)
  local offered, current = {}, nil
  for l in text:gmatch("[^\n]+") do
    local line = l:match("^<line> (.*)$")
    if line then current = line; offered[line] = {} end
    local hit = l:match("^<hit> (.*)$")
    if hit and current then
      local seen = false
      for _, h in ipairs(offered[current]) do seen = seen or h == hit end
      if not seen then table.insert(offered[current], hit) end
    end
  end
  for _, hits in pairs(offered) do table.sort(hits) end
  return offered
end

-- Calls bash's completion function for each line as bash would on TAB at its end.
local BASH_DRIVER = [=[
shopt -s failglob   # as some users have it: a glob that matches nothing is an error
source "$1"; shift
complete -p codeassist
for line in "$@"; do
    read -ra COMP_WORDS <<< "$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )) COMP_LINE=$line COMP_POINT=${#line}
    COMPREPLY=()
    _codeassist codeassist "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '<line> %s\n' "$line"
    if (( ${#COMPREPLY[@]} )); then printf '<hit> %s\n' "${COMPREPLY[@]}"; fi
done
]=]

local function bash_complete(dir, lines)
  support.write(dir .. "/completion.bash", script("bash"))
  support.write(dir .. "/driver.bash", BASH_DRIVER)
  local argv = { "bash", "--norc", "--noprofile", dir .. "/driver.bash", dir .. "/completion.bash", cwd = dir, timeout = 30 }
  for _, l in ipairs(lines) do argv[#argv + 1] = l end
  local r = assert(require("codeassist.proc").run(argv))
  assert.are.equal(0, r.code, r.stderr)
  assert.are.equal("", r.stderr)
  return parse_hits(r.stdout), r.stdout
end

local function zsh_complete(dir, lines)
  local fpath = dir .. "/zfunctions"
  support.write(fpath .. "/_codeassist", script("zsh"))
  local argv = { "zsh", "-f", support.root .. "/tests/spec/zsh_complete.zsh", fpath, dir .. "/offered", cwd = dir, timeout = 60 }
  for _, l in ipairs(lines) do argv[#argv + 1] = l end
  local r = assert(require("codeassist.proc").run(argv))
  assert.are.equal(0, r.code, r.stdout .. r.stderr)
  return parse_hits(require("codeassist.fs").read(dir .. "/offered"))
end

local help_commands, help_options = support.help_commands, support.help_options

local function includes(list, word)
  for _, w in ipairs(list) do if w == word then return true end end
  return false
end

describe("bash completion", function()
  local offered, raw
  setup(function()
    offered, raw = bash_complete(workdir(), {
      "codeassist d", "codeassist ", "codeassist run ol", "codeassist run ", "codeassist test-provider pres",
      "codeassist doctor --", "codeassist doctor --config x ol", "codeassist doctor ollama_only ",
      "codeassist run mine.lua --", "codeassist run mine.lua --is", "codeassist run --", "codeassist completion ",
      "codeassist --lua-path lib run es",
      "codeassist report ", "codeassist whatif ", "codeassist whatif latest ol", "codeassist run mine.lua --resume ",
      "codeassist run mine.lua --route bu", "codeassist run mine.lua --route ",
      "codeassist doctor --route ar", "codeassist report --repo other ", "codeassist run mine.lua --resume --js",
      "codeassist run mine.lua --record sp", "codeassist whatif --repo other 2026",
    })
  end)
  teardown(support.cleanup)

  it("registers _codeassist for codeassist", function()
    assert.matches("complete [^\n]*%-F _codeassist[^\n]* codeassist\n", raw)
  end)

  it("completes the commands --help lists", function()
    assert.are.same({ "doctor" }, offered["codeassist d"])
    local commands = help_commands()
    assert.is_true(includes(commands, "completion") and includes(commands, "doctor"))
    assert.are.same(commands, offered["codeassist "])
  end)

  it("completes preset names: built-in, presets/*.lua and *.lua here", function()
    assert.are.same({ "ollama_hybrid", "ollama_only" }, offered["codeassist run ol"])
    local all = offered["codeassist run "]
    for _, name in ipairs(preset.BUILTIN) do assert.is_true(includes(all, name), name) end
    assert.is_true(includes(all, "presets/team.lua") and includes(all, "mine.lua"))
    assert.is_false(includes(all, "notes.txt"))
    assert.are.same({ "presets/team.lua" }, offered["codeassist test-provider pres"])
    -- an option's value is not the preset: the one after it is
    assert.are.same({ "ollama_hybrid", "ollama_only" }, offered["codeassist doctor --config x ol"])
    assert.are.same({ "escalate" }, offered["codeassist --lua-path lib run es"])
    assert.are.same({}, offered["codeassist doctor ollama_only "])   -- one preset only
  end)

  it("completes each command's own options, as its --help lists them", function()
    local doctor = offered["codeassist doctor --"]
    assert.is_true(includes(doctor, "--probe"))
    for _, option in ipairs(help_options{ "doctor" }) do assert.is_true(includes(doctor, option), option) end
    assert.is_false(includes(doctor, "--version"))   -- the program's, not doctor's
    -- after `run FILE`, the development loop's options
    local loop = offered["codeassist run mine.lua --"]
    for _, option in ipairs(help_options{ "run", "ollama_hybrid" }) do assert.is_true(includes(loop, option), option) end
    assert.is_true(includes(loop, "--test-provider"))
    assert.are.same({ "--issue", "--issue-file" }, offered["codeassist run mine.lua --is"])
    assert.is_false(includes(offered["codeassist run --"], "--issue"))   -- before FILE: run's own
    assert.are.same({ "bash", "zsh" }, offered["codeassist completion "])
  end)

  it("completes run ids (the runs with a state, and latest) and --route's gates", function()
    local runs = { "20261130-101010-issue-3-ab12", "latest" }
    assert.are.same(runs, offered["codeassist report "])
    assert.are.same(runs, offered["codeassist whatif "])
    assert.are.same(runs, offered["codeassist run mine.lua --resume "])
    assert.are.same({ "ollama_hybrid", "ollama_only" }, offered["codeassist whatif latest ol"])
    assert.are.same({ "build=" }, offered["codeassist run mine.lua --route bu"])
    assert.are.equal(9, #offered["codeassist run mine.lua --route "])   -- implement and the eight gates
    assert.are.same({ "architect=" }, offered["codeassist doctor --route ar"])
    -- --repo names the repository whose runs are meant
    assert.are.same({ "20261201-090000-issue-9-cd34", "latest" }, offered["codeassist report --repo other "])
    assert.are.same({ "20261201-090000-issue-9-cd34" }, offered["codeassist whatif --repo other 2026"])
    -- --resume's run id is optional: an option may follow it
    assert.are.same({ "--json" }, offered["codeassist run mine.lua --resume --js"])
    -- a folder with a space is one word
    assert.are.same({ "spaced dir" }, offered["codeassist run mine.lua --record sp"])
  end)
end)

describe("zsh completion", function()
  teardown(support.cleanup)

  it("is valid zsh, and registers itself when sourced after compinit", function()
    local dir = support.tmpdir()
    local file = support.write(dir .. "/_codeassist", script("zsh"))
    assert.matches("^#compdef codeassist\n", script("zsh"))
    local r = support.sh(("zsh -n '%s'"):format(file))
    assert.are.equal(0, r.code, r.stderr)
    r = support.sh(("zsh -f -c 'autoload -U compinit; compinit -u -D; source %s; print -r -- $_comps[codeassist]'"):format(file))
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("_codeassist\n", r.stdout)
  end)

  it("completes commands, preset names and options when TAB is typed", function()
    local offered = zsh_complete(workdir(), { "codeassist d", "codeassist run ol", "codeassist doctor pres",
      "codeassist doctor --pr", "codeassist run mine.lua --is", "codeassist completion ", "codeassist report ",
      "codeassist run mine.lua --resume ", "codeassist run mine.lua --route bu", "codeassist doctor --route ar",
      "codeassist report --repo other " })
    assert.are.same({ "doctor" }, offered["codeassist d"])
    assert.are.same({ "ollama_hybrid", "ollama_only" }, offered["codeassist run ol"])
    assert.is_true(includes(offered["codeassist doctor pres"], "presets/team.lua"))
    assert.are.same({ "--probe", "--probe-timeout" }, offered["codeassist doctor --pr"])
    assert.are.same({ "--issue", "--issue-file" }, offered["codeassist run mine.lua --is"])
    assert.are.same({ "bash", "zsh" }, offered["codeassist completion "])
    assert.are.same({ "20261130-101010-issue-3-ab12", "latest" }, offered["codeassist report "])
    assert.are.same({ "20261130-101010-issue-3-ab12", "latest" }, offered["codeassist run mine.lua --resume "])
    assert.are.same({ "build=" }, offered["codeassist run mine.lua --route bu"])
    assert.are.same({ "architect=" }, offered["codeassist doctor --route ar"])
    assert.are.same({ "20261201-090000-issue-9-cd34", "latest" }, offered["codeassist report --repo other "])
  end)
end)
