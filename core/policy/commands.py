"""How risky one simple command is, from its name, flags and arguments (table-driven where the
rules are tables). Unknown commands are treated as writes (medium); wrappers (`env`, `timeout`,
`xargs`, `nice`, `bash -c`, `find -exec`, ...) are looked through to the command they run."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import core.policy.shell as shell
from core.policy.assessment import READS, Assessment, high, medium, worst, write_target
from core.policy.git import assess_git

Words = Sequence[str | None]
MAX_DEPTH = 4  # wrappers and `bash -c` strings looked into at most this deep

# Variables a command may be given (`LANG=C sort`) without changing what it does.
SAFE_ENV = frozenset({"LANG", "LANGUAGE", "TZ", "COLUMNS", "LINES", "TERM", "NO_COLOR", "FORCE_COLOR", "CI"})
SYSTEM_BIN = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/")
READ_ONLY = frozenset(
    {
        "ls", "cat", "head", "tail", "wc", "pwd", "echo", "printf", "which", "whereis", "type", "file",
        "stat", "du", "df", "diff", "cmp", "comm", "basename", "dirname", "realpath", "readlink", "cut",
        "tr", "nl", "od", "hexdump", "strings", "column", "fold", "fmt", "rev", "tac", "paste", "join",
        "expand", "unexpand", "jq", "id", "whoami", "groups", "uname", "true", "false", "test", "[",
        "[[", ":", "cd", "pushd", "popd", "dirs", "printenv", "sleep", "seq", "less", "more",
        "md5sum", "sha1sum", "sha256sum", "sha512sum", "cksum", "b2sum", "base64", "locale", "nproc",
        "free", "uptime", "ps", "pgrep", "lsof", "getconf", "man", "help", "apropos", "whatis",
        "zcat", "zgrep", "bzcat", "xzcat", "grep", "egrep", "fgrep", "ag", "ack", "look", "wait",
        "pidof", "tty", "arch", "hash", "ldd", "nm", "objdump", "readelf", "size", "sha224sum",
        "sha384sum", "md5", "shasum", "cal", "bc", "expr", "numfmt", "factor", "iconv",
    }
)  # fmt: skip
# Commands that read unless a flag makes them write a file (the flag's value, or `True`: the
# next word). `uniq IN OUT`, `xxd IN OUT` write their second operand.
WRITING_FLAGS: dict[str, frozenset[str]] = {
    "sort": frozenset({"-o", "--output"}),
    "tree": frozenset({"-o"}),
    "date": frozenset({"-s", "--set"}),
    "rg": frozenset({"--pre"}),
    "yq": frozenset({"-i", "--inplace"}),
    "fd": frozenset({"-x", "--exec", "-X", "--exec-batch"}),
    "fdfind": frozenset({"-x", "--exec", "-X", "--exec-batch"}),
    "hostname": frozenset(),
}
SECOND_OPERAND_WRITTEN = frozenset({"uniq", "xxd"})
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "ash", "busybox"})
INTERPRETERS = SHELLS | frozenset(
    {"python", "python3", "python2", "perl", "ruby", "node", "nodejs", "php", "lua", "deno", "bun", "tclsh"}
)
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http", "https", "xh", "aria2c"})
PRIVILEGED = frozenset({"sudo", "doas", "su", "pkexec", "runuser"})
DISK_TOOLS = frozenset(
    {"mkfs", "fdisk", "sfdisk", "cfdisk", "parted", "wipefs", "mkswap", "shred", "blkdiscard", "sgdisk"}
)
POWER = frozenset({"reboot", "shutdown", "halt", "poweroff"})
REMOTE = frozenset({"ssh", "scp", "sftp", "nc", "ncat", "netcat", "socat", "telnet", "ftp", "rsh", "mosh"})
NETWORK = frozenset({"ping", "dig", "nslookup", "host", "traceroute", "whois", "ftp"})
SHELL_STATE = frozenset(
    {
        "export", "declare", "typeset", "local", "readonly", "unset", "alias", "unalias", "shopt",
        "trap", "ulimit", "umask", "set", "enable", "source", ".", "eval", "exec", "builtin",
    }
)  # fmt: skip
PACKAGE_MANAGERS: dict[str, frozenset[str]] = {
    # tool -> subcommands that install, remove or upgrade packages (they run code from a registry)
    "pip": frozenset({"install", "uninstall", "download", "wheel"}),
    "pip3": frozenset({"install", "uninstall", "download", "wheel"}),
    "uv": frozenset({"add", "remove", "sync", "tool", "lock"}),
    "npm": frozenset(
        {"install", "i", "ci", "add", "update", "up", "uninstall", "remove", "rm", "link", "exec", "x"}
    ),
    "pnpm": frozenset({"install", "i", "add", "update", "up", "remove", "rm", "dlx", "exec"}),
    "yarn": frozenset({"install", "add", "upgrade", "remove", "dlx"}),
    "bun": frozenset({"install", "i", "add", "update", "remove", "x"}),
    "apt": frozenset({"install", "remove", "purge", "upgrade", "full-upgrade", "dist-upgrade", "autoremove"}),
    "apt-get": frozenset({"install", "remove", "purge", "upgrade", "dist-upgrade", "autoremove"}),
    "aptitude": frozenset({"install", "remove", "purge", "upgrade"}),
    "dnf": frozenset({"install", "remove", "upgrade", "erase"}),
    "yum": frozenset({"install", "remove", "update", "erase"}),
    "apk": frozenset({"add", "del", "upgrade"}),
    "pacman": frozenset({"-S", "-Syu", "-R", "-U", "-Rs"}),
    "zypper": frozenset({"install", "in", "remove", "rm", "update", "up"}),
    "brew": frozenset({"install", "uninstall", "upgrade", "reinstall", "tap"}),
    "gem": frozenset({"install", "uninstall", "update"}),
    "cargo": frozenset({"install", "uninstall", "add"}),
    "go": frozenset({"install", "get"}),
    "poetry": frozenset({"add", "install", "remove", "update", "self"}),
    "pipx": frozenset({"install", "run", "inject", "upgrade"}),
    "conda": frozenset({"install", "create", "remove", "update"}),
    "mamba": frozenset({"install", "create", "remove", "update"}),
    "composer": frozenset({"install", "require", "update", "remove"}),
    "snap": frozenset({"install", "remove", "refresh"}),
    "flatpak": frozenset({"install", "uninstall", "update"}),
    "dpkg": frozenset({"-i", "--install", "-r", "--remove", "-P", "--purge"}),
}
RUNS_A_PACKAGE = frozenset({"npx", "bunx", "pnpx"})
# File-changing commands: which operands they write (a function of the operands).
LastOperand = Callable[[list[str | None]], list[str | None]]
WRITERS: dict[str, LastOperand] = {
    "cp": lambda ops: ops[-1:],
    "mv": lambda ops: ops,
    "install": lambda ops: ops[-1:],
    "ln": lambda ops: ops[-1:],
    "rsync": lambda ops: ops[-1:],
    "tee": lambda ops: ops,
    "touch": lambda ops: ops,
    "mkdir": lambda ops: ops,
    "rmdir": lambda ops: ops,
    "truncate": lambda ops: ops,
    "mkfifo": lambda ops: ops,
    "unlink": lambda ops: ops,
    "patch": lambda ops: ops[:1],
}


def assess_command(command: shell.SimpleCommand, depth: int = 0) -> Assessment:
    """The risk of one simple command, its redirections included."""
    result = assess_words(command.words, depth)
    unsafe_env = [name for name in command.assignments if name not in SAFE_ENV]
    if unsafe_env:
        result = result.worse(medium(f"sets {', '.join(unsafe_env)} for the command"))
        result = Assessment(result.risk, result.reason, read_only=False)
    for redirect in command.writes:
        target = write_target(redirect.target)
        if not target.read_only:
            result = result.worse(target)
            result = Assessment(result.risk, result.reason, read_only=False)
    return result


def assess_words(words: Words, depth: int = 0) -> Assessment:
    if not words:
        return READS  # only assignments or redirections: judged by the caller
    if depth > MAX_DEPTH:
        return medium("nests commands too deeply to check")
    name = words[0]
    if name is None:
        return medium("runs a command named at run time")
    if name.startswith(SYSTEM_BIN):
        name = name.rsplit("/", 1)[1]
    elif "/" in name:
        return medium(f"runs {name}")
    args = list(words[1:])
    flags = {a.split("=", 1)[0] for a in args if a is not None and a.startswith("-")}
    operands = [a for a in args if a is None or not a.startswith("-")]
    wrapped = _wrapper(name, args, depth)
    if wrapped is not None:
        return wrapped
    if name in PRIVILEGED:
        return high(f"runs a command as another user ({name})")
    if name in READ_ONLY:
        return READS
    if name in WRITING_FLAGS:
        if flags & WRITING_FLAGS[name] or (name == "hostname" and operands):
            return medium(
                f"{name} with {', '.join(sorted(flags & WRITING_FLAGS[name])) or 'an operand'} writes"
            )
        return READS
    if name in SECOND_OPERAND_WRITTEN:
        return (
            write_target(operands[1]).worse(medium(f"{name} writes {operands[1]}"))
            if len(operands) > 1
            else READS
        )
    if name == "git":
        return assess_git(args)
    if name == "find":
        return _find(args, depth)
    if name == "sed":
        return _sed(args, flags, operands)
    if name in ("awk", "gawk", "mawk", "nawk"):
        program = next((a for a in args if a is None or not a.startswith("-")), None)
        if "-f" in flags or program is None or re.search(r"system|getline|[>|]", program):
            return medium(f"{name} program may write files or run commands")
        return READS
    if name == "tar":
        return _tar(args, flags)
    if name in ("unzip", "zip", "gzip", "gunzip", "bzip2", "xz", "zstd", "7z"):
        if name == "unzip" and flags & {"-l", "-t", "-Z", "-v"}:
            return READS
        return medium(f"{name} writes files")
    if name == "rm":
        return _rm(flags, args, operands)
    if name in ("chmod", "chown", "chgrp"):
        return _permissions(name, flags, args, operands)
    if name == "dd":
        return _dd(args)
    if name in DISK_TOOLS or name.startswith("mkfs."):
        return high(f"formats or wipes storage ({name})")
    if name in POWER or (name == "systemctl" and operands and operands[0] in POWER | {"kexec"}):
        return high("restarts or stops the machine")
    if name in ("kill", "pkill", "killall"):
        if (name == "kill" and "-1" in args[-1:]) or any(a == "-1" for a in operands):
            return high("kills every process (kill -1)")
        return medium("stops processes")
    if name.startswith("python") and args[:2] == ["-m", "pip"]:
        return _package("pip", args[2:], [a for a in args[2:] if a is None or not a.startswith("-")])
    if name in PACKAGE_MANAGERS:
        return _package(name, args, operands)
    if name in RUNS_A_PACKAGE:
        return high(f"downloads and runs a package ({name})")
    if name in DOWNLOADERS:
        return _download(name, args, flags)
    if name in REMOTE:
        return high(f"connects to another machine ({name})")
    if name in NETWORK:
        return medium(f"uses the network ({name})")
    if name in WRITERS:
        targets = WRITERS[name](operands)
        return worst([write_target(t) for t in targets], medium(f"{name} changes files")).worse(
            medium(f"{name} changes files")
        )
    if name in SHELL_STATE:
        if not operands and flags <= {"-p"} and name not in ("source", ".", "eval", "exec", "trap"):
            return READS
        if name == "set" and _only_shell_options(args):
            return READS  # shell options (`set -euo pipefail`)
        return medium(f"changes the shell's state ({name})")
    return medium(f"runs {name}")


def _wrapper(name: str, args: list[str | None], depth: int) -> Assessment | None:
    """Commands that run another command: judged by that command (None: not a wrapper)."""
    inner: list[str | None] | None = None
    if name == "env":
        i = 0
        while i < len(args) and (a := args[i]) is not None and (a.startswith("-") or "=" in a):
            if a in ("-S", "--split-string") or a.startswith("--split-string"):
                return medium("env -S runs a command line from a string")
            i += 2 if a in ("-u", "--unset", "-C", "--chdir") else 1
        inner = args[i:]
        if not inner:
            return READS
    elif name in ("nohup", "builtin", "setsid", "unbuffer"):
        inner = args
    elif name in ("time", "command"):
        if name == "command" and any(a in ("-v", "-V") for a in args):
            return READS
        inner = [a for a in args if a not in ("-p",)]
    elif name in ("nice", "ionice", "stdbuf", "timeout", "chrt", "taskset"):
        inner = _skip_options(
            args, takes_value={"-n", "-c", "-p", "-s", "-k", "-i", "-o", "-e", "--signal", "--kill-after"}
        )
        if name in ("timeout", "chrt", "taskset") and inner:
            inner = inner[1:]  # the duration / priority / cpu mask
        if not inner:
            return READS if name in ("nice", "ionice") else medium(f"runs {name}")
    elif name == "xargs":
        inner = _skip_options(
            args, takes_value={"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter"}
        )
        inner = [*(inner or ["echo"]), None]  # xargs adds arguments read at run time
    elif name in SHELLS:
        return _shell(name, args, depth)
    elif name == "eval":
        if any(a is None for a in args):
            return medium("evaluates a command line built at run time")
        return _line(" ".join(a for a in args if a is not None), depth)
    elif name == "watch":
        words = _skip_options(args, takes_value={"-n", "--interval", "-d"})
        if any(w is None for w in words):
            return medium("watch runs a command built at run time")
        return _line(" ".join(w for w in words if w is not None), depth)
    if inner is None:
        return None
    return assess_words(inner, depth + 1)


def _only_shell_options(args: list[str | None]) -> bool:
    """`set -e`, `set -o pipefail`, `set +x`: options only, no positional parameters."""
    after_o = False
    for arg in args:
        if arg is None:
            return False
        if after_o:
            after_o = False
        elif arg[:1] in ("-", "+") and arg not in ("-", "--"):
            after_o = arg.endswith("o")
        else:
            return False
    return True


def _skip_options(args: list[str | None], takes_value: set[str]) -> list[str | None]:
    i = 0
    while i < len(args) and (a := args[i]) is not None and a.startswith("-"):
        if a == "--":
            i += 1
            break
        i += 2 if a in takes_value else 1
    return args[i:]


def _shell(name: str, args: list[str | None], depth: int) -> Assessment:
    """`bash -c STRING` is judged by STRING; a script file or stdin is unknown code."""
    for i, arg in enumerate(args):
        if arg is not None and arg.startswith("-") and "c" in arg.lstrip("-") and not arg.startswith("--"):
            script = args[i + 1] if i + 1 < len(args) else None
            if script is None:
                return medium(f"{name} -c runs a command line built at run time")
            return _line(script, depth)
    return medium(f"runs a shell script ({name})")


def _line(text: str, depth: int) -> Assessment:
    return assess_line(shell.parse(text), depth + 1)


def _find(args: list[str | None], depth: int) -> Assessment:
    result = READS
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-delete":
            return high("deletes files (find -delete)")
        if arg in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next(
                (j for j in range(i + 1, len(args)) if args[j] in (";", "+")),
                len(args),
            )
            inner = [None if a is not None and "{}" in a else a for a in args[i + 1 : end]]
            result = result.worse(assess_words(inner, depth + 1))
            i = end
        elif arg in ("-fprint", "-fprint0", "-fprintf", "-fls"):
            target = args[i + 1] if i + 1 < len(args) else None
            result = result.worse(write_target(target).worse(medium("find writes a file list")))
            result = Assessment(result.risk, result.reason, read_only=False)
        i += 1
    return result


SED_SAFE_COMMANDS = set("pdPDnNgGhHxz=lqQFrRaic")


def _sed(args: list[str | None], flags: set[str], operands: list[str | None]) -> Assessment:
    if any(a is not None and (a.startswith(("-i", "--in-place"))) for a in args):
        files = operands[1:] if "-e" not in flags and "-f" not in flags else operands
        return worst([write_target(f) for f in files], medium("edits files in place (sed -i)")).worse(
            medium("edits files in place (sed -i)")
        )
    if "-f" in flags or "--file" in flags:
        return medium("sed runs a script file")
    scripts = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-e", "--expression")]
    if not scripts and operands:
        scripts = [operands[0]]
    if all(s is not None and _sed_reads(s) for s in scripts):
        return READS
    return medium("sed script may write files or run commands")


def _sed_reads(script: str) -> bool:
    """Whether a sed script only prints (no `w`, `W`, `e` commands or flags)."""
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c in " \t\n;!{}0123456789,$+~^":
            i += 1
        elif c in "/\\":  # a regex address: /re/ or \%re%
            delim = "/" if c == "/" else (script[i + 1] if i + 1 < n else "")
            i = _past(script, i + (1 if c == "/" else 2), delim)
            if i < 0:
                return False
            while i < n and script[i] in "IM":
                i += 1
        elif c in "sy":
            if i + 1 >= n:
                return False
            delim = script[i + 1]
            i = _past(script, i + 2, delim)
            i = _past(script, i, delim) if i >= 0 else -1
            if i < 0:
                return False
            start = i
            while i < n and script[i] not in ";\n}":
                i += 1
            if c == "s" and set(script[start:i]) - set("gpiIm0123456789 "):
                return False  # w FILE, e: writes or runs
        elif c in "bt:T#":
            while i < n and script[i] not in ";\n":
                i += 1
        elif c in SED_SAFE_COMMANDS:
            if c in "aicrR":  # text or a file to read: up to the end of the line
                while i < n and script[i] != "\n":
                    i += 1
            i += 1
        else:
            return False
    return True


def _past(text: str, start: int, delim: str) -> int:
    """The index after the next unescaped `delim` from `start` (-1: none)."""
    i = start
    while 0 <= i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == delim:
            return i + 1
        i += 1
    return -1


def _tar(args: list[str | None], flags: set[str]) -> Assessment:
    first = args[0] if args else None
    mode = first if first is not None and not first.startswith("-") else ""
    if flags & {"-t", "--list"} or "t" in mode or any(a is not None and _short(a, "t") for a in args):
        return READS
    return medium("tar writes files")


def _short(word: str, letter: str) -> bool:
    return word.startswith("-") and not word.startswith("--") and letter in word[1:]


def _rm(flags: set[str], args: list[str | None], operands: list[str | None]) -> Assessment:
    recursive = bool(flags & {"-r", "-R", "--recursive"}) or any(
        a is not None and (_short(a, "r") or _short(a, "R")) for a in args
    )
    where = worst([write_target(t) for t in operands], medium("deletes files"))
    if recursive:
        return high("deletes recursively (rm -r)")
    if where.risk == "high":
        return high(f"deletes outside /workspace ({where.reason})")
    return medium("deletes files")


def _permissions(
    name: str, flags: set[str], args: list[str | None], operands: list[str | None]
) -> Assessment:
    if flags & {"-R", "--recursive"} or any(a is not None and _short(a, "R") for a in args):
        return high(f"changes permissions recursively ({name} -R)")
    if name == "chmod" and operands:
        mode = operands[0] or ""
        if re.fullmatch(r"[0-7]*[2367]", mode) or re.search(r"[ao]\+[rwx]*w|^\+[rwx]*w", mode):
            return high(f"makes files writable by everyone (chmod {mode})")
    where = worst([write_target(t) for t in operands[1:]], medium(f"changes permissions ({name})"))
    return where.worse(medium(f"changes permissions ({name})"))


def _dd(args: list[str | None]) -> Assessment:
    for arg in args:
        if arg is None:
            return medium("dd with an operand computed at run time")
        if arg.startswith("of="):
            target = arg[3:]
            if re.match(r"/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|loop)", target):
                return high(f"writes a disk device ({target})")
            return write_target(target).worse(medium("dd writes a file"))
    return READS


def _package(name: str, args: list[str | None], operands: list[str | None]) -> Assessment:
    words = operands if name not in ("pacman", "dpkg") else args
    if name == "uv" and words[:1] == ["pip"]:
        name, words = "pip", words[1:]
    if words and words[0] in PACKAGE_MANAGERS[name]:
        return high(f"installs or removes packages ({name} {words[0]})")
    if name in ("npm", "pnpm", "yarn", "bun", "cargo", "go", "uv", "poetry", "pip", "pip3"):
        return medium(f"runs {name}")
    if words and words[0] in ("list", "show", "search", "info", "freeze", "outdated", "--version", "-V"):
        return READS
    return medium(f"runs {name}")


def _download(name: str, args: list[str | None], flags: set[str]) -> Assessment:
    uploads = {"-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "-F", "--form", "-T",
               "--upload-file", "--post-file", "--post-data", "--body-file", "--body-data", "--json"}  # fmt: skip
    if flags & uploads:
        return high(f"sends data over the network ({name})")
    writes = [
        args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output", "-O", "--output-document")
    ]
    if writes:
        return worst([write_target(w) for w in writes], medium(f"downloads with {name}")).worse(
            medium(f"downloads with {name}")
        )
    return medium(f"uses the network ({name})")


# ---- a whole line ----------------------------------------------------------------------------
def assess_line(line: shell.CommandLine, depth: int = 0) -> Assessment:
    """The whole line's risk (used for command lines inside commands: `bash -c`, `eval`)."""
    return worst([assess_command(c, depth) for c in line.commands], READS).worse(line_shape(line))


def line_shape(line: shell.CommandLine) -> Assessment:
    """What the line as a whole does beyond its commands one by one."""
    found: list[Assessment] = []
    if not line.parsed:
        found.append(medium("the command line could not be parsed (treated as unknown)"))
    if line.fork_bomb:
        found.append(high("defines a function that runs itself without end (fork bomb)"))
    elif line.functions:
        found.append(medium(f"defines shell functions ({', '.join(line.functions)})"))
    if line.assigns:
        found.append(medium(f"sets shell variables ({', '.join(dict.fromkeys(line.assigns))})"))
    names = [base_name(c.name) for c in line.commands]
    if any(n in DOWNLOADERS for n in names) and any(
        base_name(c.name) in INTERPRETERS and _reads_code_from_stdin_or_run_time(c) for c in line.commands
    ):
        found.append(high("runs downloaded code (a download piped into an interpreter)"))
    return worst(found, READS)


def base_name(name: str | None) -> str | None:
    return name.rsplit("/", 1)[1] if name is not None and name.startswith(SYSTEM_BIN) else name


def _reads_code_from_stdin_or_run_time(command: shell.SimpleCommand) -> bool:
    args = command.words[1:]
    if any(a is None for a in args):
        return True  # `bash -c "$(curl …)"`, `python <(curl …)`
    operands = [a for a in args if a is not None and not a.startswith("-")]
    return not operands or operands[0] == "-"
