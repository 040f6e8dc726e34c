# zsh -f tests/spec/zsh_complete.zsh FPATH_DIR OUT LINE...
# Types each LINE followed by TAB into an interactive zsh (in a pseudo-terminal, compinit
# loading completion functions from FPATH_DIR) and appends to OUT what completion offered:
# "<line> LINE" and then one "<hit> WORD" per match. compadd is wrapped to record its matches.
zmodload zsh/zpty || exit 2
fpath_dir=$1 out=$2
shift 2
zpty capture zsh -f -i || exit 2
zpty -w capture "PS1= PROMPT2= ; fpath=(${(q)fpath_dir} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w capture "zstyle ':completion:*' list-prompt ''; zstyle ':completion:*' menu no; unsetopt beep"
zpty -w capture 'compadd() {
  if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi
  local -a hits; builtin compadd -A hits "$@"
  (( $#hits )) && print -rl -- "<hit> "${^hits} >> '"${(q)out}"'
  builtin compadd "$@"
}'
# Keys typed ahead would cut a completion short: after each TAB, wait (at most 3 s) for its
# first matches, and a moment for the rest, before clearing the line.
lines_in() { if [[ -f $out ]]; then print $(( $(wc -l < $out) )); else print 0; fi }
# what the shell echoes is read and dropped, so that it never waits for a full terminal
drain() { local junk; while zpty -rt capture junk 2>/dev/null; do :; done }
for line in "$@"; do
  zpty -w capture "print -r -- ${(q)${:-<line> $line}} >> ${(q)out}"
  for i in {1..60}; do (( $(lines_in) > 0 )) && [[ $(tail -n 1 $out) == "<line> $line" ]] && break; drain; sleep 0.05; done
  before=$(lines_in)
  zpty -n -w capture "$line"$'\t'
  for i in {1..60}; do (( $(lines_in) > before )) && break; drain; sleep 0.05; done
  sleep 0.1
  zpty -w capture $'\C-e\C-u'
done
zpty -w capture "print '<done>' >> ${(q)out}"
for i in {1..100}; do
  [[ -f $out ]] && grep -q '^<done>' $out && break
  sleep 0.05
done
zpty -d capture
grep -q '^<done>' $out
