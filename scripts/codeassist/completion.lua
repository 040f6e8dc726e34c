-- `codeassist completion bash|zsh`: completion scripts made from the command line's own
-- parser (lua-argparse's generators), so commands and options never drift from `--help`.
-- What argparse cannot know is added here, read when TAB is pressed: a preset argument (`run
-- FILE`, `doctor PRESET`, `whatif RUN_ID PRESET...`) completes the built-in presets' names,
-- presets/*.lua and the *.lua files of the current folder; a run id (`report`, `whatif`,
-- `run FILE --resume`) the repository's runs and `latest`; `run FILE --route` the gates.
--
-- This reads argparse 0.7's fields (_commands, _arguments, _options, ...): the copy compiled
-- into the binary is the one it was written against (tests/spec/completion_spec.lua).
local preset = require "codeassist.preset"

local M = {}

-- The arguments that name a preset: `run`'s FILE is a preset or a script, so both complete.
local function names_a_preset(command, argument)
  return argument._name == "preset" or argument._name == "presets"
    or (command._name == "run" and argument._name == "file")
end

-- "COMMAND OPTION" for every option that takes a value ("" for the program's own), so the
-- bash script can skip values when it counts positional arguments.
local function options_with_values(parser)
  local list = {}
  local function add(command_name, options)
    for _, option in ipairs(options) do
      if option._minargs > 0 then
        for _, alias in ipairs(option._aliases) do list[#list + 1] = ('"%s %s"'):format(command_name, alias) end
      end
    end
  end
  add("", parser._options)
  for _, command in ipairs(parser._commands) do add(command._name, command._options) end
  return list
end

-- The option names of a command (or the program), each once, in their --help order.
local function option_names(options)
  local names, seen = {}, {}
  for _, option in ipairs(options) do
    for _, alias in ipairs(option._aliases) do
      if not seen[alias] then seen[alias] = true; names[#names + 1] = alias end
    end
  end
  return table.concat(names, " ")
end

-- The options of `codeassist run PRESET` (the development loop's), from the parser
-- run_file.run_preset builds: it is caught as it is handed to cli.parse, before anything runs.
-- Empty if that ever changes (completion then offers files there; the spec says so).
local function loop_options()
  local cli, run_file = require "codeassist.cli", require "codeassist.run_file"
  local real_parse, caught = cli.parse, nil
  local stop = {}
  cli.parse = function(parser) caught = parser; error(stop, 0) end
  local ok, err = pcall(run_file.run_preset, "PRESET", {}, {})
  cli.parse = real_parse
  if ok or err ~= stop or not caught then return "" end
  return option_names(caught._options)   -- --test-provider and its hidden name --doctor included
end

local function builtin_names()
  return table.concat(preset.BUILTIN, " ")
end

local function names_a_run(argument)
  return argument._name == "run_id"
end

-- "implement= build= ...": what `--route GATE=PROVIDER[:MODEL]` starts with.
local function route_starts()
  local list = {}
  for _, name in ipairs(require("codeassist.config").ROUTABLE) do list[#list + 1] = name .. "=" end
  return table.concat(list, " ")
end

local BASH = [=[

# Added by codeassist (scripts/codeassist/completion.lua): each command's own options, the
# choices of its arguments, and preset names where it takes a preset — the built-in ones,
# presets/*.lua and *.lua here, looked up at each TAB.
# (compgen -G rather than a bare glob: safe with failglob and nullglob; one name per line, so
# a file name with spaces stays one word.)
_codeassist_presets() {
    local f
    COMPREPLY=()
    for f in %s; do [[ $f == "$1"* ]] && COMPREPLY+=("$f"); done
    while IFS= read -r f; do
        [[ -f $f && $f == "$1"* ]] && COMPREPLY+=("$f")
    done < <(compgen -G 'presets/*.lua'; compgen -G '*.lua')
    compopt -o filenames 2>/dev/null
}

# The runs of the repository (the one --repo names, else this one), and `latest`.
_codeassist_runs() {
    local repo= top d k
    for (( k = 1; k < COMP_CWORD; k++ )); do
        [[ ${COMP_WORDS[k]} == --repo ]] && repo=${COMP_WORDS[k+1]}
    done
    repo=${repo/#\~/$HOME}
    top=$(git -C "${repo:-.}" rev-parse --show-toplevel 2>/dev/null) || top=${repo:-.}
    COMPREPLY=()
    [[ latest == "$1"* ]] && COMPREPLY+=(latest)
    while IFS= read -r d; do
        d=${d%%/state.json}; d=${d##*/}
        [[ $d == "$1"* ]] && COMPREPLY+=("$d")
    done < <(compgen -G "$top/.codeassist/runs/*/state.json")
}

# The value of option $1 being typed ($2), where we know better than argparse's files;
# false for the others (and for --resume's optional value when an option is typed instead).
_codeassist_value() {
    case $1 in
        --resume) [[ $2 == -* ]] && return 1; _codeassist_runs "$2" ;;
        --route) COMPREPLY=($(compgen -W "%s" -- "$2")); compopt -o nospace 2>/dev/null ;;
        --record|--replay|--repo|--lua-path)
            mapfile -t COMPREPLY < <(compgen -d -- "$2"); compopt -o filenames 2>/dev/null ;;
        *) return 1 ;;
    esac
}

# Whether OPTION of COMMAND ("" for codeassist's own) takes a value.
_codeassist_takes_value() {
    case "$1 $2" in
        %s) return 0 ;;
    esac
    return 1
}

# The options of COMMAND ("" for codeassist's own) after N positional arguments.
_codeassist_options() {
    case "$1" in
%s
    esac
}

# What COMMAND's positional argument number N may be: words, or @preset.
_codeassist_positional() {
    case "$1" in
%s
    esac
}

_codeassist() {
    COMPREPLY=()
    _codeassist_argparse "$@"   # argparse's: the commands, and files for an option's value
    local cur=${COMP_WORDS[COMP_CWORD]} word cmd= n=0 i=1 words
    # the command, and how many positional arguments it has before the cursor
    while (( i < COMP_CWORD )); do
        word=${COMP_WORDS[i]}
        if _codeassist_takes_value "$cmd" "$word"; then
            (( i++ ))
        elif [[ $word != -* ]]; then
            if [[ -z $cmd ]]; then cmd=$word; else (( n++ )); fi
        fi
        (( i++ ))
    done
    if (( i > COMP_CWORD )); then   # the cursor is on an option's value
        _codeassist_value "${COMP_WORDS[COMP_CWORD-1]}" "$cur"
        return 0
    fi
    # after `run FILE` every word is the file's, the loop's options and their values too
    if [[ $cmd == run ]] && (( n >= 1 )) && _codeassist_value "${COMP_WORDS[COMP_CWORD-1]}" "$cur"; then
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_codeassist_options "$cmd" "$n")" -- "$cur"))
    elif [[ -n $cmd ]]; then
        words=$(_codeassist_positional "$cmd" $(( n + 1 )))
        if [[ $words == @preset ]]; then
            _codeassist_presets "$cur"
        elif [[ $words == @run ]]; then
            _codeassist_runs "$cur"
        elif [[ -n $words ]]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
        fi
    fi
    return 0
}

complete -F _codeassist -o bashdefault -o default codeassist
]=]

local function bash(parser)
  local generated = parser:get_bash_complete()
  -- argparse's function becomes a helper of ours; its `complete` line is replaced by ours
  generated = generated:gsub("^_codeassist%(%)", "_codeassist_argparse()")
    :gsub("\ncomplete %-F _codeassist [^\n]*\n?$", "\n")
  local options = { ('        "") echo "%s" ;;'):format(option_names(parser._options)) }
  local positional = {}
  for _, command in ipairs(parser._commands) do
    local pattern = table.concat(command._aliases, "|")
    -- `run`'s options go before FILE: after it, everything belongs to the file
    options[#options + 1] = ('        %s) %secho "%s" ;;'):format(pattern,
      command._name == "run" and ('(( $2 == 0 )) || { echo "%s"; return; }; '):format(loop_options()) or "",
      option_names(command._options))
    local position, tests = 1, {}
    for _, argument in ipairs(command._arguments) do
      local count = argument._maxargs
      local last = count == math.huge and 999 or position + count - 1
      local words = names_a_preset(command, argument) and "@preset" or names_a_run(argument) and "@run"
        or argument._choices and table.concat(argument._choices, " ")
      if words then
        tests[#tests + 1] = ('(( $2 >= %d && $2 <= %d )) && echo "%s"'):format(position, last, words)
      end
      if count == math.huge then break end
      position = position + count
    end
    if #tests > 0 then positional[#positional + 1] = ("        %s) %s ;;"):format(pattern, table.concat(tests, "; ")) end
  end
  return generated .. BASH:format(builtin_names(), route_starts(), table.concat(options_with_values(parser), "|"),
    table.concat(options, "\n"), table.concat(positional, "\n"))
end

local ZSH_PRESETS = [=[

# Added by codeassist (scripts/codeassist/completion.lua): a preset argument completes the
# built-in presets, presets/*.lua, and Lua files (and folders) here.
_codeassist_presets() {
  local -a builtin_presets local_presets
  builtin_presets=(%s)
  local_presets=(presets/*.lua(N-.))
  _alternative \
    'builtin:built-in preset:compadd -a builtin_presets' \
    'local:preset in presets/:compadd -a local_presets' \
    'files:Lua file:_path_files -g "*.lua(-.) *(-/)"'
}

# A run id: the runs of the repository (the one --repo names, else this one), and `latest`.
_codeassist_runs() {
  local repo=${(Q)opt_args[--repo]} top
  local -a run_ids
  repo=${~repo}
  top=$(git -C "${repo:-.}" rev-parse --show-toplevel 2>/dev/null) || top=${repo:-.}
  run_ids=(latest $top/.codeassist/runs/*/state.json(N-.:h:t))
  compadd -a run_ids
}

# --route's value starts with a gate's name.
_codeassist_routes() {
  local -a route_starts
  route_starts=(%s)
  compadd -S '' -a route_starts
}

# After `run FILE`: the development loop's options (the file gets every word), a run id after
# --resume, a gate after --route, else files.
_codeassist_run_args() {
  if [[ $words[CURRENT-1] == --resume ]]; then
    _codeassist_runs
  elif [[ $words[CURRENT-1] == --route ]]; then
    _codeassist_routes
  elif [[ $words[CURRENT-1] == (--record|--replay|--repo) ]]; then
    _files -/
  elif [[ $PREFIX == -* ]]; then
    local -a loop_options
    loop_options=(%s)
    compadd -a loop_options
  else
    _files
  fi
}
]=]

-- Loaded from $fpath (compinit), it completes; sourced, it registers itself.
local ZSH_TAIL = [=[

if [[ $funcstack[1] == _codeassist ]]; then
  _codeassist "$@"
else
  compdef _codeassist codeassist
fi
]=]

local MARK, RUN_ARGS_MARK, RUN_ID_MARK = "__codeassist_presets__", "__codeassist_run_args__", "__codeassist_runs__"

local function zsh(parser)
  -- a preset or run argument is marked as one with a single choice, then that choice becomes
  -- our function; commands with only a summary get it as their description
  for _, command in ipairs(parser._commands) do
    for _, argument in ipairs(command._arguments) do
      if names_a_preset(command, argument) then argument._choices = { MARK }
      elseif names_a_run(argument) then argument._choices = { RUN_ID_MARK }
      elseif command._name == "run" and argument._name == "args" then argument._choices = { RUN_ARGS_MARK } end
    end
    command._description = command._description or command._summary
  end
  local generated = parser:get_zsh_complete()
  generated = generated:gsub(":%(" .. MARK .. "%)", ":_codeassist_presets")
    :gsub(":%(" .. RUN_ARGS_MARK .. "%)", ":_codeassist_run_args")
    :gsub(":%(" .. RUN_ID_MARK .. "%)", ":_codeassist_runs")
  generated = generated:gsub("\n_codeassist\n$", "\n")
  -- option values argparse can only offer files for: --route's gates, --repo's folders
  generated = generated:gsub("[^\n]+", function(line)
    if line:find('"%*?%-%-route%[') then return (line:gsub(': :_files"$', ': :_codeassist_routes"')) end
    if line:find('"%-%-repo%[') then return (line:gsub(': :_files"$', ': :_files -/"')) end
  end)
  return generated .. ZSH_PRESETS:format(builtin_names(), route_starts(), loop_options()) .. ZSH_TAIL
end

-- The script for shell ("bash" or "zsh"; the CLI's choices), made from parser.
function M.script(parser, shell)
  if shell == "zsh" then return zsh(parser) end
  return bash(parser)
end

return M
