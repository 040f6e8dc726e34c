#!/bin/sh
# codeassist in CI: one run per issue, which a retried job resumes instead of starting over.
# Shared by examples/ci/github-actions.yml and examples/ci/gitlab-ci.yml (copy it next to them).
#
#   codeassist-ci.sh run ISSUE [OPTION...]   in the repository's checkout. When the run folder of
#                                            an earlier attempt was restored into .codeassist/runs
#                                            and this issue's newest run there is unfinished
#                                            (killed, interrupted, stopped by a budget), it gets
#                                            the run's branch back and goes on with
#                                            `codeassist run PRESET --issue ISSUE --resume RUN_ID`;
#                                            otherwise it starts `codeassist run PRESET --issue
#                                            ISSUE`. OPTIONs go to `codeassist run` either way.
#   codeassist-ci.sh save ISSUE              after the run, however it ended (an always step):
#                                            puts in the run's folder what a resume on a fresh
#                                            checkout needs and git does not keep there: where
#                                            the run's branch is (ci-branch), the commits a clone
#                                            of origin lacks (ci-branch.bundle) and the edits not
#                                            yet committed when it stopped (ci-worktree.patch).
#
# A run that ended done is "resumed" too: codeassist only reports its pull request again and
# exits 0, so a retried job never opens a second one. After a BLOCKED run a retry starts anew.
#
# Environment: CODEASSIST (the binary; default codeassist), CODEASSIST_PRESET (a built-in
# preset's name or a preset file in the repository; default ollama_hybrid).
# Exit status: codeassist's (0 done, 1 BLOCKED, 2 usage or config, 3 internal, 130 interrupted,
# 128+N when killed by signal N); 2 for a mistake in this script's own arguments.
set -u

CODEASSIST=${CODEASSIST:-codeassist}
PRESET=${CODEASSIST_PRESET:-ollama_hybrid}
RUNS=.codeassist/runs
KEPT=refs/codeassist-ci   # where the kept commits are put back, so that git keeps them

say() { printf 'codeassist-ci: %s\n' "$*" >&2; }
usage() {
  say "$1"
  say "usage: codeassist-ci.sh run ISSUE [OPTION...] | codeassist-ci.sh save ISSUE"
  exit 2
}

# The run folder stays out of git, as codeassist itself keeps it: a folder restored into a fresh
# checkout must not show up as untracked work.
exclude_runs() {
  exclude=$(git rev-parse --git-path info/exclude) || exit 2
  grep -qx "/$RUNS/" "$exclude" 2>/dev/null && return 0
  mkdir -p "$(dirname "$exclude")" && printf '\n/%s/\n' "$RUNS" >> "$exclude"
}

# Asks codeassist's own module about the issue's newest run in $RUNS, so that the state file's
# format stays its business:
#   query newest ISSUE      "RUN_ID STATUS BRANCH HEAD BASE", or nothing: STATUS is the outcome
#                           (done, blocked, stopped, interrupted) or "unfinished"; HEAD is the
#                           commit its last step left, BASE the one its work grows from; each
#                           "-" before the run had it
#   query untracked ISSUE   the files that were untracked when the run started, one a line
query() {
  helper=$(mktemp "${TMPDIR:-/tmp}/codeassist-ci.XXXXXX") || exit 2
  cat > "$helper" <<'LUA'
local mode, issue = ...
for _, e in ipairs(require("codeassist.runs").list(".")) do
  local s = e.state
  if type(s.issue) == "table" and tostring(s.issue.number) == issue then
    if mode == "untracked" then
      for _, path in ipairs(type(s.untracked_at_start) == "table" and s.untracked_at_start or {}) do
        io.write(path, "\n")
      end
    else
      local outcome = type(s.outcome) == "table" and tostring(s.outcome.status):match("^%S+") or "unfinished"
      io.write(e.id, " ", outcome, " ", s.branch or "-", " ", s.head or "-", " ", s.base or "-", "\n")
    end
    return 0
  end
end
LUA
  "$CODEASSIST" run "$helper" "$1" "$2"
  status=$?
  rm -f "$helper"
  [ "$status" -eq 0 ] || { say "cannot read the run folders in $RUNS (codeassist exited $status)"; exit 2; }
}

current_branch() { git symbolic-ref -q --short HEAD || true; }

# Checks out the run's branch as the run left it: at the commit a save step noted, with the
# commits a fresh clone lacks from its bundle, or as it is here (a runner whose workspace
# persists); then puts back the edits the run had not committed. Returns non-zero when it cannot.
restore_branch() {
  branch=$2 dir=$RUNS/$1
  if [ -f "$dir/ci-branch" ]; then
    read -r _ tip < "$dir/ci-branch" || return 1
    if [ -f "$dir/ci-branch.bundle" ]; then
      git fetch -q "$dir/ci-branch.bundle" "+$KEPT/*:$KEPT/*" || return 1
    fi
    git cat-file -e "$tip^{commit}" 2> /dev/null || return 1
    # git will not move the checked-out branch
    [ "$(current_branch)" = "$branch" ] && { git checkout -q --detach || return 1; }
    git update-ref "refs/heads/$branch" "$tip" || return 1
  fi
  git rev-parse -q --verify "refs/heads/$branch" > /dev/null || return 1
  git checkout -q "$branch" || return 1
  patch=$dir/ci-worktree.patch
  if [ -s "$patch" ] && ! git apply --binary "$patch"; then
    # a workspace that kept the edits has them already
    git apply --binary --reverse --check "$patch" 2> /dev/null || return 1
  fi
}

command_run() {
  [ $# -ge 1 ] || usage "run: give the issue's number"
  issue=$1
  shift
  case $issue in '' | *[!0-9]*) usage "run: '$issue' is not an issue number" ;; esac
  exclude_runs
  found=$(query newest "$issue") || exit 2
  if [ -n "$found" ]; then
    read -r id status branch _ _ <<EOF
$found
EOF
    case $status in
      done)
        say "run $id of issue #$issue ended done: reporting it"
        "$CODEASSIST" run "$PRESET" --issue "$issue" --resume "$id" "$@"
        exit $?
        ;;
      blocked)
        say "run $id of issue #$issue ended BLOCKED: starting a new run"
        ;;
      *)
        start=$(current_branch)
        if [ "$branch" != "-" ] && restore_branch "$id" "$branch"; then
          say "resuming run $id of issue #$issue ($status) on $branch"
          "$CODEASSIST" run "$PRESET" --issue "$issue" --resume "$id" "$@"
          exit $?
        fi
        say "run $id of issue #$issue ($status) cannot be resumed here: its branch ${branch#-} could not be" \
            "restored (does 'codeassist-ci.sh save' run after every attempt?); starting a new run"
        [ -n "$start" ] && git checkout -q "$start"
        ;;
    esac
  else
    say "no earlier run of issue #$issue in $RUNS: starting one"
  fi
  "$CODEASSIST" run "$PRESET" --issue "$issue" "$@"
  exit $?
}

command_save() {
  [ $# -eq 1 ] || usage "save: give the issue's number, and only that"
  issue=$1
  case $issue in '' | *[!0-9]*) usage "save: '$issue' is not an issue number" ;; esac
  exclude_runs
  found=$(query newest "$issue") || exit 2
  [ -n "$found" ] || { say "no run of issue #$issue in $RUNS: nothing to keep"; exit 0; }
  read -r id status branch head base <<EOF
$found
EOF
  dir=$RUNS/$id
  case $status in done | blocked) say "run $id ended $status: nothing more to keep"; exit 0 ;; esac
  if [ "$branch" = "-" ] || ! git rev-parse -q --verify "refs/heads/$branch" > /dev/null; then
    say "run $id has no branch here yet: nothing more to keep"
    exit 0
  fi
  rm -f "$dir/ci-branch" "$dir/ci-branch.bundle" "$dir/ci-worktree.patch"
  tip=$(git rev-parse "refs/heads/$branch") || exit 1
  # The commits a clone of origin may lack: the branch's own (origin has the base it grows
  # from) and the commit the run's last step left, which resume compares with — after a
  # delivery squashed the work, that one is on no branch. None (the branch still at its base,
  # nothing of its own yet): no bundle.
  git update-ref "$KEPT/tip" "$tip" || exit 1
  refs="$KEPT/tip"
  if [ "$head" != "-" ] && git update-ref "$KEPT/head" "$head" 2> /dev/null; then refs="$refs $KEPT/head"; fi
  not=
  [ "$base" != "-" ] && git cat-file -e "$base^{commit}" 2> /dev/null && not="--not $base"
  # shellcheck disable=SC2086 # ref names and options, split on purpose
  if [ -z "$not" ] || [ -n "$(git rev-list $refs $not | head -n 1)" ]; then
    git bundle create -q "$dir/ci-branch.bundle" $refs $not
  fi
  bundled=$?
  git update-ref -d "$KEPT/tip"; git update-ref -d "$KEPT/head" 2> /dev/null
  [ "$bundled" -eq 0 ] || { say "cannot bundle $branch into $dir"; exit 1; }
  printf '%s %s\n' "$branch" "$tip" > "$dir/ci-branch" || exit 1
  if [ "$(current_branch)" = "$branch" ]; then
    # what the run would commit and has not yet: every change, new files too, but not .claude,
    # .codeassist or the files that were untracked when it started (as codeassist stages its
    # work), through a scratch index so that the real one stays as it is
    index=$(mktemp "${TMPDIR:-/tmp}/codeassist-ci-index.XXXXXX") || exit 1
    untracked=$(query untracked "$issue") || exit 2
    cp "$(git rev-parse --git-path index)" "$index" &&
      GIT_INDEX_FILE=$index git add -A -- . ':(exclude).claude' ':(exclude).codeassist' &&
      printf '%s\n' "$untracked" | while IFS= read -r path; do
        [ -z "$path" ] || GIT_INDEX_FILE=$index GIT_LITERAL_PATHSPECS=1 git rm -q --cached --ignore-unmatch -- "$path" || exit 1
      done &&
      GIT_INDEX_FILE=$index git diff --cached --binary HEAD > "$dir/ci-worktree.patch"
    saved=$?
    rm -f "$index"
    [ "$saved" -eq 0 ] || { say "cannot save the uncommitted edits of $branch"; exit 1; }
    if [ -s "$dir/ci-worktree.patch" ]; then saved_patch=", with the uncommitted edits"; else rm -f "$dir/ci-worktree.patch"; fi
  fi
  say "kept $branch at $tip for a resume, in $dir${saved_patch:-}"
  exit 0
}

[ $# -ge 1 ] || usage "give a command: run or save"
command=$1
shift
case $command in
  run) command_run "$@" ;;
  save) command_save "$@" ;;
  *) usage "unknown command '$command'" ;;
esac
