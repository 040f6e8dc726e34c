-- The feature branch: where it grows from (the pull request's target, fetched once), and the
-- delivery — one commit on top of what origin has, the push, the pull request, verified.
local errors = require "codeassist.errors"
local worktree = require "codeassist.loop.worktree"

local M = {}

-- Where the work starts from. With a platform: the branch a pull request targets (resolved
-- once, fetched from origin), and the feature branch grows from it — or, when it exists
-- already (here or on origin), is continued. With an issue file: the current HEAD.
-- Sets state.base (the commit the work is measured against), state.base_name, state.target
-- (the pull request's base branch), state.start (where to create the branch, if it is new)
-- and state.remote_tip (origin's copy of the feature branch, which delivery builds on).
function M.resolve_base(state)
  local repo = state.repo
  local function commit(ref)
    local out = repo:output{ "rev-parse", "--verify", "--quiet", ref .. "^{commit}" }
    return out and out:gsub("%s+$", "") or nil
  end
  local function merge_base(a, b)
    local out = repo:output{ "merge-base", a, b }
    return out and out:gsub("%s+$", "") or nil
  end
  local current = repo:current_branch()
  local feature = commit("refs/heads/" .. state.branch)
  if not state.platform then
    if current == state.branch then
      for _, name in ipairs{ "main", "master", "develop" } do
        local at = commit("refs/heads/" .. name)
        if at then return merge_base(at, "HEAD") or at, name end
      end
      errors.usage("%s is checked out and no base branch (main, master, develop) was found: check out the branch "
        .. "the work should start from, then run again", state.branch)
    end
    local head = commit("HEAD")
    if not head then errors.usage("%s has no commit yet: commit something first", state.root) end
    state.start = head
    return feature and merge_base(feature, head) or head, current ~= "HEAD" and current or head:sub(1, 12)
  end

  local forge = require "codeassist.forge"
  if not repo:output{ "remote", "get-url", "origin" } then
    errors.usage("%s has no origin remote to push to and open a pull request on: add one (git remote add origin URL), "
      .. "or work from a Markdown file with --issue-file", state.root)
  end
  local target, err = forge.target_branch(state.root, state.cfg)
  if not target then
    errors.goal("cannot tell which branch a pull request should target: %s (set git_rules.branch_flow.feature)", err.message)
  end
  state.target = target
  -- an explicit refspec: origin's branch (not a tag of the same name) into its tracking ref,
  -- whatever the remote's configured refspec says
  local fetched = repo:run({ "fetch", "-q", "origin", ("+refs/heads/%s:refs/remotes/origin/%s"):format(target, target) },
    { timeout = 300 })
  if not fetched or fetched.code ~= 0 then
    errors.goal("cannot fetch %s from origin: %s", target, fetched and (fetched.stderr or ""):gsub("%s+$", "") or "git failed")
  end
  local at = commit("refs/remotes/origin/" .. target)
  local mine = commit("refs/heads/" .. target)
  if mine and at and mine ~= at then
    local ahead = (repo:output{ "rev-list", "--count", at .. ".." .. mine } or "0"):gsub("%s+$", "")
    if ahead ~= "0" then
      state.notes[#state.notes + 1] = ("your %s has %s commit%s that origin does not: the work starts from origin's %s "
        .. "(push them first to build on them)"):format(target, ahead, ahead == "1" and "" or "s", target)
    end
  end
  -- origin's copy of the feature branch, if a run pushed it before
  local listed = repo:output({ "ls-remote", "--heads", "origin", "refs/heads/" .. state.branch }, { timeout = 120 }) or ""
  local remote_tip = listed:match("^(%x+)")
  if remote_tip then
    if not commit(remote_tip) then
      repo:run({ "fetch", "-q", "origin", ("+refs/heads/%s:refs/remotes/origin/%s"):format(state.branch, state.branch) },
        { timeout = 300 })
    end
    local ancestor = feature and repo:run{ "merge-base", "--is-ancestor", remote_tip, feature }
    if feature and not (ancestor and ancestor.code == 0) then
      errors.usage("origin's %s has commits this branch does not have: bring them in (git checkout %s && git pull) or "
        .. "delete the remote branch, then run again", state.branch, state.branch)
    end
    state.remote_tip = remote_tip
    if not feature then state.start = remote_tip end
  else
    state.start = at
  end
  local tip = feature or remote_tip
  if not tip then return at, target end
  local base = merge_base(tip, at)
  if not base then
    errors.usage("cannot find where %s and origin's %s meet%s: run git fetch --unshallow (or delete the branch), then "
      .. "run again", state.branch, target, (repo:output{ "rev-parse", "--is-shallow-repository" } or ""):find("true")
      and " (this clone is shallow)" or "")
  end
  return base, target
end

-- Finishes a successful run: one commit, the push, the PR, verified.
-- doc: the run's report (codeassist.report), whose Markdown is the pull request's body.
function M.deliver(state, doc)
  local forge = require "codeassist.forge"
  local title = ("%s: %s%s"):format(state.issue.labels and table.concat(state.issue.labels, " "):find("bug") and "fix" or "feat",
    state.issue.title or state.slug, state.issue.number and (" (#" .. state.issue.number .. ")") or "")
  -- the iterations' commits become one on top of what origin has (its copy of the branch, if a
  -- run pushed it before, else the base), so the push stays a fast-forward; one ref update, so
  -- a crash leaves the branch either as it was or squashed
  worktree.stage(state)
  local changed = state.repo:run{ "diff", "--cached", "--quiet", state.base }
  if changed and changed.code == 0 then
    return nil, ("there is nothing to deliver: %s has no change against %s"):format(state.branch, state.base_name)
  end
  local onto = state.remote_tip or state.base
  -- already one commit on top of onto with this content: a delivery that stopped after it
  local parent = (state.repo:output{ "rev-parse", "--verify", "--quiet", "HEAD^" } or ""):gsub("%s+$", "")
  local same = state.repo:run{ "diff", "--cached", "--quiet", "HEAD" }
  local subject = (state.repo:output{ "log", "-1", "--format=%s" } or ""):gsub("%s+$", "")
  if not (parent == onto and same and same.code == 0 and subject == state.repo:clean_message(title)) then
    local ok, err = state.repo:squash(onto, title .. (state.issue.number and ("\n\nCloses #" .. state.issue.number) or ""))
    if not ok then return nil, "commit: " .. err.message end
  end
  if not state.platform then
    return state.branch .. (state.replay and " (committed here; a replay gets no push and no pull request)"
      or " (committed here; an issue file gets no push and no pull request)")
  end
  local pushed, err = state.repo:push("origin", state.branch)
  if not pushed then return nil, "push: " .. err.message end
  local base = state.target
  local report = require "codeassist.report"
  local body
  if doc then
    local ready = {}
    for k, v in pairs(doc) do ready[k] = v end
    ready.outcome = { status = "ready" }
    body = report.markdown(ready)
  else
    body = (state.issue.number and ("Closes #" .. state.issue.number .. "\n") or "")
  end
  local pr, perr = forge.open_pr(state.platform, { root = state.root, head = state.branch, base = base, title = title, body = body })
  if not pr then return nil, "pull request: " .. perr.message end
  return pr.url .. (pr.existing and " (already open: updated with this run's commit)" or "")
end

return M
