# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for diagkit: diag, diag-stack, diag-fds, diag-locks, diag-chain,
# diag-core, diag-sample, diag-snap, diag-record, diag-top and shmdump. Installed once and linked under each command's name.
#
# Nothing here lists an option or a column: options and what their arguments are
# come from the tool's own --help, columns from its -H, at completion time, so the
# completion says what the installed tool accepts.

# The command word as typed, ~/ expanded: the program whose --help is read.
_diagkit_command() {
        # shellcheck disable=SC2088 # the literal ~/ the user typed
        local tilde='~/'
        if [[ $1 == "$tilde"* ]]; then
                printf '%s\n' "$HOME/${1#"$tilde"}"
        else
                printf '%s\n' "$1"
        fi
}

# "OPTION ARG" for every option of the command "$@", one a line, from its --help
# (ARG is empty for an option without an argument, or with an optional one).
_diagkit_options() {
        "$@" --help 2>/dev/null | awk '
                /^ +-/ && match($0, /^ +/) && RLENGTH <= 6 {
                        sub(/^ +/, "")
                        spec = substr($0, 1, index($0 "  ", "  ") - 1)
                        n = split(spec, names, ", ")
                        arg = names[n]
                        sub(/^[^ ]+ ?/, "", arg)
                        sub(/ .*/, "", arg)
                        sub(/ .*/, "", names[n])
                        if (arg ~ /^\[/)
                                arg = ""
                        for (i = 1; i <= n; i++)
                                print names[i], arg
                }'
}

# What the command's operands are, from its Usage lines: pid, segment, file or
# nothing.
_diagkit_operand() {
        "$@" --help 2>/dev/null | awk '
                /^Usage:/ { usage = 1; next }
                usage && /^$/ { exit }
                usage && /PID/ { print "pid"; exit }
                usage && /SEGMENT/ { print "segment"; exit }
                usage && /FILE/ { print "file"; exit }'
}

# Candidates are relative to the word bash replaces: after the last ':' when ':'
# breaks words, as it does by default.
_diagkit_reply() {
        local cur=$1 strip=
        shift
        if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
                strip=${cur%"${cur##*:}"}
        fi
        COMPREPLY=()
        local c
        for c in "$@"; do
                [[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$strip"}")
        done
}

# Pids (with their command name shown while there is a choice), after prefix.
_diagkit_pids() {
        local prefix=$1 cur=$2 d comm
        local -a out=()
        for d in /proc/[0-9]*; do
                [[ ${d#/proc/} == "$cur"* ]] || continue
                comm=
                read -r comm 2>/dev/null <"$d/comm"
                out+=("$prefix${d#/proc/} $comm")
        done
        _diagkit_reply "$prefix$cur" "${out[@]}"
        if ((${#COMPREPLY[@]} == 1)); then
                COMPREPLY=("${COMPREPLY[0]%% *}")
        fi
}

# The names shmdump takes: key:KEY and id:SHMID of every System V segment, the
# files of /dev/shm, pid:PID; files for a path (a --save copy).
_diagkit_segments() {
        local cur=$1 key id rest f
        local -a out=()
        if [[ $cur == pid:* ]]; then
                _diagkit_pids pid: "${cur#pid:}"
                return
        fi
        if [[ $cur == [/.~]* && $cur != /dev/shm/* ]]; then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return
        fi
        while read -r key id rest; do
                [[ $key =~ ^-?[0-9]+$ ]] || continue
                ((key < 0)) && ((key += 4294967296))
                ((key != 0)) && out+=("$(printf 'key:%#x' "$key")")
                out+=("id:$id")
        done </proc/sysvipc/shm 2>/dev/null
        for f in /dev/shm/*; do
                [[ -f $f ]] && out+=("$f")
        done
        out+=(pid:)
        _diagkit_reply "$cur" "${out[@]}"
        [[ ${COMPREPLY[*]} == pid: ]] && compopt -o nospace 2>/dev/null
        return 0
}

# Column names of the command "${@:2}" from its -H, after the list typed so far in $1.
_diagkit_columns() {
        local cur=$1 prefix='' col
        shift
        [[ $cur == *,* ]] && prefix=${cur%,*},
        [[ -z $prefix && $cur == [+-]* ]] && prefix=${cur:0:1}
        local -a out=()
        for col in $("$@" -H 2>/dev/null | awk '{ print $1 }'); do
                out+=("$prefix$col")
        done
        _diagkit_reply "$cur" "${out[@]}"
}

# Complete the command in the first $1 words of the line (diag-stack, or diag
# stack): its options, their arguments, its operands.
_diagkit_tool() {
        local n=$1 cur prev='' opt arg kind
        local -a words cmd
        COMPREPLY=()
        # The line as typed, not bash's words: key:0x3039 and --output=LIST are one.
        if [[ -n ${COMP_LINE-} ]]; then
                read -ra words <<<"${COMP_LINE:0:COMP_POINT}"
                [[ ${COMP_LINE:0:COMP_POINT} == *[[:space:]] ]] && words+=("")
        else
                words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
        fi
        ((${#words[@]} > n)) || return 0
        cur=${words[-1]}
        ((${#words[@]} > n + 1)) && prev=${words[-2]}
        cmd=("${words[@]:0:n}")
        cmd[0]=$(_diagkit_command "${cmd[0]}")
        if [[ $cur == --*=* ]]; then
                prev=${cur%%=*}
                cur=${cur#*=}
        fi

        # the argument of an option
        if [[ $prev == -* ]]; then
                while read -r opt arg; do
                        [[ $opt == "$prev" ]] || continue
                        case $arg in
                        "") break ;;
                        "<list>")
                                _diagkit_columns "$cur" "${cmd[@]}" ;;
                        *PID*)
                                _diagkit_pids "" "$cur" ;;
                        LIST)
                                case $opt in
                                -p | --pid) _diagkit_pids "${cur%"${cur##*,}"}" "${cur##*,}" ;;
                                esac ;;
                        FILE | PREFIX | BINARY | DIR | BUNDLE)
                                compopt -o filenames 2>/dev/null
                                mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
                        *'|'*)
                                local -a alt
                                IFS='|' read -ra alt <<<"$arg"
                                _diagkit_reply "$cur" "${alt[@]}" ;;
                        esac
                        return 0
                done < <(_diagkit_options "${cmd[@]}")
        fi

        if [[ $cur != -* ]]; then
                kind=$(_diagkit_operand "${cmd[@]}")
                case $kind in
                pid) _diagkit_pids "" "$cur"; return 0 ;;
                segment) _diagkit_segments "$cur"; return 0 ;;
                file) [[ -n $cur ]] && { compopt -o filenames 2>/dev/null
                        mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0; } ;;
                esac
        fi
        local -a opts=()
        while read -r opt arg; do
                opts+=("$opt")
        done < <(_diagkit_options "${cmd[@]}")
        _diagkit_reply "$cur" "${opts[@]}"
}

# diag-stack, diag-fds, diag-locks, diag-chain, diag-core, diag-sample, diag-snap, diag-top, shmdump
_diagkit() {
        _diagkit_tool 1
}

# diag-record [show] ...: "show" as the first word, then the options of the
# recorder or of show, and the recording's directory.
_diag_record_at() {
        local n=$1 cur=${COMP_WORDS[COMP_CWORD]}
        if ((COMP_CWORD == n)) && [[ $cur != -* ]]; then
                _diagkit_reply "$cur" show
                return 0
        fi
        if [[ ${COMP_WORDS[n]-} == show ]]; then
                if ((COMP_CWORD > n)) && [[ $cur != -* && ${COMP_WORDS[COMP_CWORD - 1]} != -* ]]; then
                        compopt -o filenames 2>/dev/null
                        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
                        return 0
                fi
                _diagkit_tool $((n + 1))
                return
        fi
        _diagkit_tool "$n"
}

_diag_record() {
        _diag_record_at 1
}

# diag VERB ...: the verbs diag lists (and demo), then the verb's tool.
_diag() {
        local cur=${COMP_WORDS[COMP_CWORD]} tool
        COMPREPLY=()
        if ((COMP_CWORD > 1)); then
                [[ ${COMP_WORDS[1]} == demo ]] && return 0
                if [[ ${COMP_WORDS[1]} == record ]]; then
                        _diag_record_at 2
                        return
                fi
                _diagkit_tool 2
                return
        fi
        tool=$(_diagkit_command "${COMP_WORDS[0]}")
        local -a verbs
        mapfile -t verbs < <("$tool" --help 2>/dev/null | awk '
                /^Verbs:/ { v = 1; next }
                v && /^$/ { exit }
                v && /^ [a-z]/ { print $1 }')
        verbs+=(demo)
        [[ $cur == -* ]] && verbs=(-h --help -V --version)
        _diagkit_reply "$cur" "${verbs[@]}"
}

complete -F _diagkit diag-stack diag-fds diag-locks diag-chain diag-core diag-sample diag-snap diag-top shmdump
complete -F _diag diag
complete -F _diag_record diag-record
