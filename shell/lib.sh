# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the scripts that source it
# lib.sh: what the waldur-usage wrappers share (report, backfill, audit, diagnose). Sourced, never
# run. It owns logging with journald priorities, option checks, finding the binaries and the
# offerings, the token's placeholder credential, and what an exit status means. It knows nothing
# of one wrapper's options or cycle.
#
# A wrapper finds it with one line: beside the script (the source tree, or a copy), else in
# ../share/waldur-usage/ (installed in PREFIX/sbin), and stops with 69 when it is missing.
# Sourcing it sets bash's strict mode and PROG, the wrapper's name for its messages.

set -euo pipefail
readonly PROG=${0##*/}

# sysexits(3) codes, the same the binaries use.
readonly EX_USAGE=64 EX_DATAERR=65 EX_UNAVAILABLE=69 EX_SOFTWARE=70 EX_CANTCREAT=73
readonly EX_TEMPFAIL=75 EX_CONFIG=78
readonly VERSION=0.1.0
readonly DEFAULT_CONFIG=/etc/waldur/waldur-site-agent-config.yaml

# Every stage but waldur-push runs through this prefix: the Waldur token from the environment
# file reaches waldur-push alone, never sacct or the other stages.
readonly -a NO_SECRETS=(env -u WALDUR_API_TOKEN)

# --- logging: to stderr, with a journald priority prefix when stderr is the journal ----------

LOG_LEVEL=2 # 0 error, 1 warning, 2 info, 3 debug

# level_number NAME: 0..3 for a log level name, or fail.
level_number() {
    case "${1,,}" in
        error | critical) echo 0 ;;
        warn | warning) echo 1 ;;
        info) echo 2 ;;
        debug | trace) echo 3 ;;
        *) return 1 ;;
    esac
}

stderr_is_journal() {
    [[ -n "${JOURNAL_STREAM:-}" ]] || return 1
    local here
    here=$(stat -L -c "%d:%i" "/proc/$$/fd/2" 2>/dev/null) || return 1
    [[ "$here" == "$JOURNAL_STREAM" ]]
}
if stderr_is_journal; then JOURNAL=1; else JOURNAL=0; fi

# log LEVEL MESSAGE...
log() {
    local level=$1 n label prio
    shift
    n=$(level_number "$level")
    ((n <= LOG_LEVEL)) || return 0
    case $n in
        0) label=error prio=3 ;;
        1) label=warning prio=4 ;;
        2) label=info prio=6 ;;
        *) label=debug prio=7 ;;
    esac
    if ((JOURNAL)); then
        printf '<%s>%s: %s\n' "$prio" "$PROG" "$*" >&2
    else
        printf '%s: %s: %s\n' "$PROG" "$label" "$*" >&2
    fi
}

# say MESSAGE...: a progress line, always shown, without a level label.
say() {
    if ((JOURNAL)); then printf '<6>%s\n' "$*" >&2; else printf '%s\n' "$*" >&2; fi
}

# die CODE MESSAGE...
die() {
    local code=$1
    shift
    log error "$*"
    exit "$code"
}

usage_error() {
    log error "$*"
    echo "Run '$PROG --help' for the options." >&2
    exit "$EX_USAGE"
}

# set_log_level FLAG_VALUE: the level from --log-level, else WALDUR_SITE_AGENT_LOG_LEVEL, else
# info. The flag is exported so that every stage logs at the same level.
set_log_level() {
    if [[ -n "$1" ]]; then
        LOG_LEVEL=$(level_number "$1") ||
            usage_error "--log-level: unknown log level '$1' (use error, warning, info or debug)"
        export WALDUR_SITE_AGENT_LOG_LEVEL=$1
    elif [[ -n "${WALDUR_SITE_AGENT_LOG_LEVEL:-}" ]]; then
        LOG_LEVEL=$(level_number "$WALDUR_SITE_AGENT_LOG_LEVEL") ||
            usage_error "WALDUR_SITE_AGENT_LOG_LEVEL: unknown log level '$WALDUR_SITE_AGENT_LOG_LEVEL' (use error, warning, info or debug)"
    fi
}

# --- option values ----------------------------------------------------------------------------

# --- the command line ----------------------------------------------------------------------

LEVEL_FLAG= # --log-level
TAKEN=0     # words the option just read used

# parse_options OWN ARGS...: read a wrapper's command line. The options every wrapper takes are
# read here, once: -c/--config (into CONFIG), --log-level (LEVEL_FLAG), -V/--version, -h/--help,
# and --offering (appended to OFFERINGS) in the wrappers that keep that list. The function OWN
# reads the wrapper's own options: given the remaining ARGS, it sets TAKEN to the number of
# words it used, or returns 1 when ARGS[0] is none of its options.
parse_options() {
    local own=$1
    shift
    while [[ $# -gt 0 ]]; do
        TAKEN=0
        case "$1" in
            -c | --config) need_value "$@"; CONFIG=$2; TAKEN=2 ;;
            --config=*) CONFIG=${1#*=}; TAKEN=1 ;;
            --log-level) need_value "$@"; LEVEL_FLAG=$2; TAKEN=2 ;;
            --log-level=*) LEVEL_FLAG=${1#*=}; TAKEN=1 ;;
            -V | --version) echo "$PROG $VERSION"; exit 0 ;;
            -h | --help) usage; exit 0 ;;
            --offering)
                if keeps_offerings; then need_value "$@"; OFFERINGS+=("$2"); TAKEN=2; fi ;;
            --offering=*)
                if keeps_offerings; then OFFERINGS+=("${1#*=}"); TAKEN=1; fi ;;
        esac
        if ((TAKEN == 0)) && { ! "$own" "$@" || ((TAKEN == 0)); }; then
            usage_error "unknown argument: $1"
        fi
        shift "$TAKEN"
    done
}

# keeps_offerings: the wrapper takes --offering (it has an OFFERINGS list).
keeps_offerings() {
    declare -p OFFERINGS >/dev/null 2>&1
}

# no_own_options: for parse_options, in a wrapper with only the common options.
# shellcheck disable=SC2317 # called by parse_options
no_own_options() {
    return 1
}

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || usage_error "option $1 needs a value"
}

is_count() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

is_positive() {
    [[ "$1" =~ ^[0-9]+$ ]] && ((10#$1 > 0))
}

# --- the binaries and the offerings -------------------------------------------------------------

# find_tool NAME: the path of a binary, from WALDUR_USAGE_BIN_DIR or PATH; exits 69 without it.
find_tool() {
    local name=$1 path
    if [[ -n "${WALDUR_USAGE_BIN_DIR:-}" ]]; then
        path=$WALDUR_USAGE_BIN_DIR/$name
        [[ -x "$path" ]] || die "$EX_UNAVAILABLE" "$path is missing or not executable (WALDUR_USAGE_BIN_DIR=$WALDUR_USAGE_BIN_DIR)"
    else
        path=$(command -v "$name") ||
            die "$EX_UNAVAILABLE" "$name not found on PATH; install waldur-usage or set WALDUR_USAGE_BIN_DIR"
    fi
    printf '%s\n' "$path"
}

# find_pipeline_tools: sets MONTH_SPLIT, SLURM_USAGE, USAGE_CONVERT and WALDUR_PUSH.
find_pipeline_tools() {
    MONTH_SPLIT=$(find_tool month-split)
    SLURM_USAGE=$(find_tool slurm-usage)
    USAGE_CONVERT=$(find_tool usage-convert)
    WALDUR_PUSH=$(find_tool waldur-push)
}

# config_offerings WALDUR_PUSH CONFIG: the offering UUIDs of the config, one per line, as
# waldur-push reads the config (--list-offerings prints one JSON object per offering). Empty
# when the config cannot be read; the tools then say what is wrong with it.
config_offerings() {
    "$1" -c "$2" --list-offerings --log-level error 2>/dev/null |
        sed -n -E 's/.*"uuid":"([^"]*)".*/\1/p'
}

# drop_placeholder_credential: the unit's SetCredential= default is the placeholder "none" (or
# an empty file): no token file was installed, so waldur-push looks at WALDUR_API_TOKEN or the
# config instead.
drop_placeholder_credential() {
    [[ -n "${CREDENTIALS_DIRECTORY:-}" && -f "$CREDENTIALS_DIRECTORY/waldur-api-token" ]] || return 0
    local cred
    cred=$(tr -d '[:space:]' <"$CREDENTIALS_DIRECTORY/waldur-api-token" | head -c 8)
    if [[ -z "$cred" || "$cred" == none ]]; then
        log debug "no waldur-api-token credential was installed; waldur-push will use WALDUR_API_TOKEN or the config"
        unset CREDENTIALS_DIRECTORY
    fi
}

# --- outcomes -----------------------------------------------------------------------------------

# explain_status CODE: what a stage's exit status means, for a summary line.
explain_status() {
    case $1 in
        0) echo "ok" ;;
        1) echo "differences found" ;;
        3) echo "held back or skipped, see the warnings" ;;
        64) echo "usage error" ;;
        65) echo "bad input data" ;;
        66) echo "input missing" ;;
        69) echo "service unavailable" ;;
        70) echo "internal error" ;;
        74) echo "I/O error" ;;
        75) echo "temporary failure" ;;
        76) echo "refused by Waldur, or a value read back is not what was sent" ;;
        77) echo "permission denied (token)" ;;
        78) echo "configuration error" ;;
        124) echo "timed out" ;;
        137) echo "killed: timed out, or out of memory" ;;
        141) echo "broken pipe" ;;
        *) if (($1 > 128)); then echo "killed by signal $(($1 - 128))"; else echo "failed"; fi ;;
    esac
}

# failure_cause STATUS...: the index of the stage whose failure explains the others, or -1.
# Normally the first failing stage (later stages only saw its stream cut short), unless that
# stage only hit a closed pipe (SIGPIPE 141, or I/O error 74) because a later stage died.
failure_cause() {
    local -a st=("$@")
    local i
    for ((i = 0; i < ${#st[@]}; i++)); do
        ((st[i] != 0)) || continue
        ! closed_by_later "$i" "${st[@]}" || continue
        echo "$i"
        return
    done
    echo -1
}

# closed_by_later INDEX STATUS...: true when stage INDEX hit a closed pipe (141, or 74) and a
# later stage failed, which is why its pipe closed.
closed_by_later() {
    local i=$1 j
    shift
    local -a st=("$@")
    ((st[i] == 141 || st[i] == 74)) || return 1
    for ((j = i + 1; j < ${#st[@]}; j++)); do
        ((st[j] == 0)) || return 0
    done
    return 1
}

# count_status FILE STATUS: the number of result records with that status.
count_status() {
    grep -c "\"status\":\"$2\"" "$1" || true
}

# periods_in FILE: the billing months named in a file of records, "2024-02, 2024-03".
periods_in() {
    sed -n -E 's/.*"period":"([0-9]{4}-[0-9]{2})".*/\1/p' "$1" | sort -u | paste -sd, - | sed 's/,/, /g'
}
