-- grep: lines matching a regular expression, through a real engine (git grep in a git
-- repository, else GNU grep), never one written here.
local proc = require "codeassist.proc"
local workspace = require "codeassist.agent.workspace"
local sandbox = require "codeassist.agent.sandbox"

local MAX_OUTPUT = 60000

return {
  name = "grep",
  description = "Search the repository's files for a regular expression (extended syntax, as grep -E). "
    .. "Answers path:line:text lines.",
  input_schema = { type = "object", properties = {
    pattern = { type = "string", description = "Extended regular expression" },
    path = { type = "string", description = "File or folder to search (default: the whole repository)" },
    glob = { type = "string", description = "Only files whose names match this glob, e.g. *.lua" },
    ignore_case = { type = "boolean", description = "Match without regard to case" },
  }, required = { "pattern" } },

  run = function(input, env)
    local target, why, denied = env.ws:resolve(input.path or ".")
    if not target then return nil, why, denied end
    local rel = env.ws:relative(target)
    local argv
    if env.ws:is_git() then
      argv = { "git", "grep", "-n", "-I", "-E", "--untracked", "--no-color" }
      if input.ignore_case then argv[#argv + 1] = "-i" end
      argv[#argv + 1], argv[#argv + 2], argv[#argv + 3] = "-e", input.pattern, "--"
      -- a glob limits the file names at any depth below the path
      argv[#argv + 1] = input.glob and (":(glob)" .. (rel == "." and "" or (rel .. "/")) .. "**/" .. input.glob) or rel
    else
      argv = { "grep", "-rnIE", "--color=never" }
      if input.ignore_case then argv[#argv + 1] = "-i" end
      if input.glob then argv[#argv + 1] = "--include=" .. input.glob end
      argv[#argv + 1], argv[#argv + 2], argv[#argv + 3], argv[#argv + 4] = "-e", input.pattern, "--", rel
    end
    argv.cwd, argv.timeout, argv.max_output = env.ws.root, env.timeout or 60, 4e6
    argv.clear_env, argv.env = true, { PATH = sandbox.PATH, LC_ALL = "C.UTF-8" }
    local r, err = proc.run(argv)
    if not r then return nil, err.message end
    if r.timed_out then return nil, "the search took too long; narrow it with path or glob" end
    if r.code == 1 then return "no matches" end
    if r.code ~= 0 then return nil, ("the search failed: %s"):format((r.stderr:gsub("%s+$", ""))) end
    return workspace.cap(r.stdout, MAX_OUTPUT)
  end,
}
