"""The shell text both of a sandbox's shells run: the command shell's set-up and framing, the
script that stops a command's foreground job, and the process-limit check.

Everything here is POSIX sh (bash when the image has it, else dash or busybox), and the stop
script and the check use builtins only (`read`, `kill`, globbing, arithmetic): they still run when
the sandbox is at its process limit and nothing new can be forked."""

from __future__ import annotations

from typing import Literal

from sandbox.marker_protocol import framed, shell_quote

# Where the command shell keeps its own files in the sandbox: the stdin pipe of its commands, the
# list of its background jobs, long commands, and the full output of cut ones (for the model).
SHELL_DIR = "/tmp/sidehand"
OUTPUT_DIR = f"{SHELL_DIR}/output"
# Longer commands are written to a file and read from there: the shell reads its own input one
# byte per system call (a 1 MB command took 7.8 s that way), a file in one go.
INLINE_COMMAND_BYTES = 8192

# True when the sandbox's processes nearly fill its pids limit (cgroup v2, then v1; no limit, or
# no cgroup file to read: false). Builtins only. The margin leaves room for the shells' own work.
CROWDED_FUNCTION = r"""__sidehand_crowded() {
  for __sidehand_f in /sys/fs/cgroup/pids.current /sys/fs/cgroup/pids/pids.current; do
    [ -r "$__sidehand_f" ] || continue
    read -r __sidehand_n <"$__sidehand_f" 2>/dev/null || return 1
    read -r __sidehand_m <"${__sidehand_f%current}max" 2>/dev/null || return 1
    case "$__sidehand_m" in ''|*[!0-9]*) return 1 ;; esac
    [ "$__sidehand_n" -ge $((__sidehand_m - __sidehand_m / 20 - 4)) ]
    return
  done
  return 1
}"""

# Run once when the command shell starts; its marker carries "PID STDIN" (STDIN: the fifo its
# commands read, or /dev/null when mkfifo is missing).
# - A command runs inside a function, so stopping it can abandon the rest of it: the stopper
#   signals the shell (USR2; INT reaches it too when a command substitution dies of Ctrl-C), and
#   the trap, run as soon as the current child is gone or between two builtins, returns from the
#   function. Without it `sleep 30; rm -rf build` would go on to `rm` after `sleep` was killed.
#   The `busy` flag keeps a late signal from doing anything once the command is over.
# - `set -m` (job control; bash can without a terminal, dash cannot) puts every job in its own
#   process group: a stop kills the foreground job's group and leaves the `&` jobs alone.
# - The shell's own messages (job notices between commands) go nowhere; a command's stderr is
#   redirected to its stdout by the framing.
SHELL_SETUP = (
    r"""__sidehand_run() { __sidehand_busy=1; command eval "$__sidehand_cmd"; }
trap '[ -z "${__sidehand_busy-}" ] || return 130' INT USR2
exec 2>/dev/null
set -m
__sidehand_dir=@DIR@
mkdir -p "$__sidehand_dir" && chmod 700 "$__sidehand_dir"
__sidehand_in=$__sidehand_dir/stdin-$$
__sidehand_jobs=$__sidehand_dir/jobs-$$
rm -f "$__sidehand_in" "$__sidehand_jobs"
mkfifo -m 600 "$__sidehand_in" || __sidehand_in=/dev/null
""".replace("@DIR@", shell_quote(SHELL_DIR))
    + CROWDED_FUNCTION
)
SETUP_STATUS = '"$$ $__sidehand_in"'


def framed_command(command: str, nonce: str, *, from_file: str | None = None) -> bytes:
    """A user command for the command shell (set up with SHELL_SETUP); its marker's status is the
    exit status, "N crowded" when the sandbox neared its process limit meanwhile, or "crowded"
    when it already had (the command was not run).

    `eval` of the text runs it in the current shell (so `cd` and `export` persist) and makes a
    syntax error an ordinary failure; `command eval` keeps POSIX shells (dash) from exiting on it.
    stdin is the shell's fifo, opened read-write so that opening it never waits: a command that
    reads input waits for `send_input`, and never sees the next request. `set +e` after each
    command: `set -e` lasts for the command only (else the next failing command would end the
    shell). The background jobs are listed after each command, for the stop script to spare."""
    load = (
        f"__sidehand_cmd=$(cat {shell_quote(from_file)}; printf .); __sidehand_cmd=${{__sidehand_cmd%.}}; "
        f"rm -f {shell_quote(from_file)}"
        if from_file is not None
        else f"__sidehand_cmd={shell_quote(command)}"
    )
    # One simple command per line, none inside a compound: when bash reads commands from a pipe,
    # a trap's `return` inside the function abandons the whole compound command around the call
    # (and the status with it).
    script = "\n".join(
        (
            "__sidehand_status= __sidehand_busy=",
            "__sidehand_crowded && __sidehand_status=crowded",
            load,
            '[ -z "$__sidehand_status" ] || __sidehand_cmd=:',
            '[ -p "$__sidehand_in" ] || { mkdir -p "$__sidehand_dir"; rm -f "$__sidehand_in"; '
            'mkfifo -m 600 "$__sidehand_in" || __sidehand_in=/dev/null; }',
            '__sidehand_run <>"$__sidehand_in" 2>&1',
            "__sidehand_rc=$? __sidehand_busy=",
            "set +e",
            '[ -n "$__sidehand_status" ] || __sidehand_status=$__sidehand_rc',
            '__sidehand_crowded && __sidehand_status="$__sidehand_status crowded"',
            'jobs -p >"$__sidehand_jobs"',
        )
    )
    return framed(script, nonce, '"$__sidehand_status"')


StopMode = Literal["int", "kill", "shell"]

# Stops what a shell runs. $1: the shell's pid; $2: "int" (SIGINT to the foreground job, as Ctrl-C
# does), "kill" (SIGKILL to it) or "shell" (the shell and everything under it); $3: the file that
# lists the shell's background jobs. Builtins only (see the module's docstring).
#
# The foreground job is the shell's newest child that is not a background job from an earlier
# command: a shell runs one job at a time and starts nothing while it waits, so every `&` job of
# this command started before it. None while the shell itself runs builtins (state R: a loop).
# The job's process group is killed in one `kill` (race-free against forks); what descends from
# it but left the group (or all of it, without job control) is stopped, the table scanned again
# so that a process forked meanwhile cannot escape, then killed. Background jobs' groups are
# spared. The shell is signalled (USR2) after the job is chosen and before it is killed: its trap
# then abandons the rest of the command as soon as the job is gone (signalled after, the shell
# could start the next part first); a command substitution's child, which the shell stops
# waiting for at once, is killed all the same.
STOP_SCRIPT = r"""
root=$1; mode=$2; jobs=${3-}
keep=" "
if [ -n "$jobs" ] && [ -r "$jobs" ]; then
  while read -r p; do keep="$keep$p "; done <"$jobs"
fi
scan() {
  table=""
  for d in /proc/[0-9]*; do
    read -r s 2>/dev/null <"$d/stat" || continue
    s=${s##*)}
    set -- $s
    [ "$1" = Z ] || table="$table ${d#/proc/}:$2:$3:${20}:$1"
  done
}
scan
rootpg=""; rootstate=""; keepgroups=" "
for e in $table; do
  pid=${e%%:*}; r=${e#*:}; r=${r#*:}; pg=${r%%:*}
  [ "$pid" = "$root" ] && { rootpg=$pg; rootstate=${e##*:}; }
  case "$keep" in *" $pid "*) keepgroups="$keepgroups$pg " ;; esac
done
group=""; tree=" "
if [ "$mode" = shell ]; then
  tree=" $root "
elif [ "$rootstate" != R ]; then
  best=-1; bestpid=-1
  for e in $table; do
    pid=${e%%:*}; r=${e#*:}; ppid=${r%%:*}; r=${r#*:}; pg=${r%%:*}; r=${r#*:}; st=${r%%:*}
    [ "$ppid" = "$root" ] || continue
    case "$keep" in *" $pid "*) continue ;; esac
    case "$keepgroups" in *" $pg "*) continue ;; esac
    if [ "$st" -gt "$best" ] || { [ "$st" -eq "$best" ] && [ "$pid" -gt "$bestpid" ]; }; then
      tree=" $pid "; best=$st; bestpid=$pid; group=$pg
    fi
  done
  [ "$group" = "$rootpg" ] && group=""
fi
[ "$mode" = shell ] || kill -s USR2 "$root" 2>/dev/null
if [ -n "$group" ]; then
  if [ "$mode" = int ]; then kill -s INT -- "-$group" 2>/dev/null
  else kill -s KILL -- "-$group" 2>/dev/null; fi
fi
victims=" "
while [ "$tree" != " " ]; do
  grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    for e in $table; do
      pid=${e%%:*}; r=${e#*:}; ppid=${r%%:*}; r=${r#*:}; pg=${r%%:*}
      case "$tree" in *" $pid "*) continue ;; esac
      case "$keepgroups" in *" $pg "*) continue ;; esac
      case "$tree" in *" $ppid "*) tree="$tree$pid "; grew=1 ;; esac
    done
  done
  new=""
  for e in $table; do
    pid=${e%%:*}; r=${e#*:}; r=${r#*:}; pg=${r%%:*}
    case "$tree" in *" $pid "*) ;; *) continue ;; esac
    case "$victims" in *" $pid "*) continue ;; esac
    [ "$pid" = "$root" ] && [ "$mode" != shell ] && continue
    victims="$victims$pid "
    [ -n "$group" ] && [ "$pg" = "$group" ] && [ "$mode" != int ] && continue
    new="$new $pid"
  done
  [ -n "$new" ] || break
  if [ "$mode" = int ]; then kill -s INT $new 2>/dev/null; break; fi
  kill -s STOP $new 2>/dev/null
  scan
done
[ "$mode" = int ] || [ "$victims" = " " ] || kill -s KILL $victims 2>/dev/null
[ "$mode" = shell ] && kill -s KILL "$root" 2>/dev/null
exit 0
"""

# For the file channel: every request is refused ("crowded") while the sandbox is at its process
# limit, instead of failing half-way (a `cat` that cannot fork would read a file as empty).
CROWDED_GUARD = CROWDED_FUNCTION + "\nif __sidehand_crowded; then st=crowded; else\n{script}\nfi"


def guarded(script: str) -> str:
    return CROWDED_GUARD.replace("{script}", script)


def setup_request(nonce: str) -> bytes:
    return framed(SHELL_SETUP, nonce, SETUP_STATUS)
