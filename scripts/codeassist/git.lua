-- The runtime's own git: the same guardrails as the agent's commands, and checks before a
-- push that a model cannot skip — the branch is not protected, nothing is forced, and no
-- commit on the way carries a forbidden message. The runtime's git runs no hook and no
-- fsmonitor a model may have planted, with only the variables git needs (no keys).
--
--   local git = require "codeassist.git"
--   local repo = git.open(root, cfg)                 -- cfg.git_rules: protected branches, patterns
--   repo:run{"status", "--porcelain"}               -- proc.run's result, or nil and a failure
--   repo:commit("feat: parse the config (#12)")     -- forbidden lines stripped (auto_strip) or refused
--   repo:push("origin", "feature/12-implement")     -- refused for a protected branch
local proc = require "codeassist.proc"
local errors = require "codeassist.errors"
local guardrails = require "codeassist.guardrails"

local M = {}

-- Settings that beat the repository's own config (-c comes last): nothing the agent wrote
-- into .git runs when the runtime uses git.
-- ssh never asks (no terminal is there to answer) and gives up on a dead host; a user's own
-- GIT_SSH_COMMAND still wins, as git reads it before any config.
M.SAFE_CONFIG = { "core.hooksPath=/dev/null", "core.fsmonitor=false",
                  "core.sshCommand=ssh -o BatchMode=yes -o ConnectTimeout=30",
                  "protocol.ext.allow=never", "core.pager=cat" }

-- The variables the runtime's git keeps: where to find things and who commits.
function M.environment()
  local env = { GIT_TERMINAL_PROMPT = "0", LC_ALL = "C" }
  for _, k in ipairs{ "PATH", "HOME", "USER", "LANG", "TZ", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "GIT_AUTHOR_NAME",
                      "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL" } do
    env[k] = os.getenv(k)
  end
  return env
end

local Repo = {}
Repo.__index = Repo

function M.open(root, cfg, opts)
  errors.argcheck(type(root) == "string", "git.open: give the repository's folder")
  local rules = (cfg and cfg.git_rules) or {}
  local commit_rules = rules.commit_rules or {}
  return setmetatable({
    root = root, audit = opts and opts.audit,
    auto_strip = commit_rules.auto_strip ~= false,
    guard = guardrails.new{ cwd = root, protected = rules.protected_branches or { "main", "master" },
                            forbidden = commit_rules.forbidden_patterns or {} },
  }, Repo)
end

function Repo:record(args, decision, reason)
  if self.audit then
    self.audit{ time = require("codeassist.events").timestamp(), phase = "runtime", tool = "git",
                args = { command = "git " .. table.concat(args, " ") }, decision = decision, reason = reason }
  end
end

-- git with args (a list), checked by the guardrails first. Returns proc.run's result (any
-- exit code), or nil and a failure (refused, or git could not run).
function Repo:run(args, opts)
  opts = opts or {}
  local ok, why = self.guard:check_git(args)
  if not ok then
    self:record(args, "deny", why)
    return nil, errors.failure("unavailable", "git " .. (args[1] or "") .. " refused by the guardrails: " .. why)
  end
  self:record(args, "allow")
  local argv = { "git" }
  for _, a in ipairs(M.SAFE_CONFIG) do argv[#argv + 1] = "-c"; argv[#argv + 1] = a end
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.cwd, argv.timeout, argv.stdin = self.root, opts.timeout or 120, opts.stdin
  argv.clear_env, argv.env = true, M.environment()
  return proc.run(argv)
end

-- Like run, but a non-zero exit is a failure too; returns stdout.
function Repo:output(args, opts)
  local r, err = self:run(args, opts)
  if not r then return nil, err end
  if r.code ~= 0 then
    local how = r.timed_out and ("timed out after %g s"):format(opts and opts.timeout or 120)
      or r.interrupted and "interrupted" or r.code and ("exit %d"):format(r.code)
      or ("ended by %s"):format(tostring(r.signal_name or r.signal))
    return nil, errors.failure("exec", ("git %s failed (%s): %s"):format(table.concat(args, " "), how,
      ((r.stderr or "") ~= "" and r.stderr or r.stdout or ""):gsub("%s+$", "")), { stderr = r.stderr })
  end
  return r.stdout
end

function Repo:current_branch()
  local out = self:output{ "rev-parse", "--abbrev-ref", "HEAD" }
  return out and out:gsub("%s+$", "") or nil
end

-- A commit message with its forbidden lines taken out (auto_strip), or nil and why.
function Repo:clean_message(msg)
  local ok, why = self.guard:check_commit_message(msg)
  if ok then return msg end
  if not self.auto_strip then return nil, why end
  local kept = {}
  for line in (msg .. "\n"):gmatch("([^\n]*)\n") do
    if self.guard:check_commit_message(line) then kept[#kept + 1] = line end
  end
  local cleaned = table.concat(kept, "\n"):gsub("%s+$", "")
  if cleaned == "" or not self.guard:check_commit_message(cleaned) then return nil, why end
  return cleaned
end

-- Commits what is staged with msg (forbidden lines stripped when auto_strip is on).
function Repo:commit(msg, opts)
  local cleaned, why = self:clean_message(msg)
  if not cleaned then return nil, errors.failure("unavailable", "commit refused: " .. why) end
  local args = { "commit", "-m", cleaned }
  if opts and opts.all then table.insert(args, 2, "-a") end
  return self:output(args)
end

-- Makes what is staged one commit on top of `onto` and moves the checked-out branch to it, in
-- one ref update (a crash leaves the branch as it was, or squashed — never half-way).
-- Returns the new commit, or (onto, "unchanged") when the staged tree is onto's already.
function Repo:squash(onto, msg)
  local cleaned, why = self:clean_message(msg)
  if not cleaned then return nil, errors.failure("unavailable", "commit refused: " .. why) end
  local tree, err = self:output{ "write-tree" }
  if not tree then return nil, err end
  tree = tree:gsub("%s+$", "")
  local onto_tree = (self:output{ "rev-parse", onto .. "^{tree}" } or ""):gsub("%s+$", "")
  local branch = self:current_branch()
  if not branch or branch == "HEAD" then return nil, errors.failure("exec", "squash: no branch is checked out") end
  local commit
  if onto_tree == tree then
    commit = onto
  else
    commit, err = self:output({ "commit-tree", tree, "-p", onto }, { stdin = cleaned .. "\n" })
    if not commit then return nil, err end
    commit = commit:gsub("%s+$", "")
  end
  local moved
  moved, err = self:output{ "update-ref", "-m", "codeassist: squash", "refs/heads/" .. branch, commit }
  if not moved then return nil, err end
  self:run{ "reset", "-q" }   -- the index as the new HEAD (the same tree)
  return commit, onto_tree == tree and "unchanged" or nil
end

-- Pushes branch to remote: refused for a protected branch, and when a commit it would push
-- has a forbidden message.
function Repo:push(remote, branch)
  errors.argcheck(type(remote) == "string" and type(branch) == "string", "repo:push(remote, branch)")
  if self.guard.protected[branch] then
    self:record({ "push", remote, branch }, "deny", "protected branch")
    return nil, errors.failure("unavailable", ("push refused: '%s' is a protected branch (git_rules.protected_branches)"):format(branch))
  end
  -- the commits the push would send: those not yet on the remote's branch (all, for a new one)
  local range = self:run{ "rev-parse", "--verify", "--quiet", "refs/remotes/" .. remote .. "/" .. branch }
  local log = self:output{ "log", "--format=%H%x00%B%x01", range and range.code == 0
    and (remote .. "/" .. branch .. ".." .. branch) or branch }
  if not log then return nil, errors.failure("exec", "cannot read the commits to push on " .. branch) end
  for hash, body in log:gmatch("(%x+)%z(.-)\1") do
    local ok, why = self.guard:check_commit_message(body)
    if not ok then
      self:record({ "push", remote, branch }, "deny", why)
      return nil, errors.failure("unavailable", ("push refused: commit %s: %s"):format(hash:sub(1, 12), why))
    end
  end
  return self:output{ "push", "--porcelain", remote, branch .. ":refs/heads/" .. branch }
end

return M
