#!/usr/bin/env bash
#
# check-symbols.sh - enforces DESIGN.md rule 1: the portable library (lib/),
# its crypto provider and later the trusted core (core/) do no I/O and make
# no syscalls.
#
# For every object in the archives listed in ARCHIVES below it lists the
# undefined symbols (nm -u) and fails on any symbol that no pattern of the
# archive's allowlists (scripts/symbol-allowlists/*.txt) matches, printing the
# archive, the object and the symbol. Referenced cl_* symbols must moreover be
# defined in the archive itself or in a layer below it, so lib/ cannot call up
# into a provider, the core or the host.
#
# Usage: scripts/check-symbols.sh [--build-dir DIR] [--no-build]
#            configure build/ if needed, build the archives, check them
#        scripts/check-symbols.sh --self-test
#            prove the checker rejects fopen(), malloc() and layer violations
#        scripts/check-symbols.sh --check ARCHIVE ALLOWLISTS [DEFINERS]
#            check one archive; ALLOWLISTS and DEFINERS are comma-separated
#            (allowlist names without .txt; archive paths)
# Exit status: 0 clean, 1 forbidden symbols found, 2 usage or tool error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALLOW_DIR="$ROOT/scripts/symbol-allowlists"

# The archives to check, paths relative to the build directory. Fields:
#   archive | allowlists (names in symbol-allowlists/, comma-separated)
#           | archives whose cl_* definitions may satisfy its cl_* references
#           | required or optional (an optional archive that is not built is skipped)
# The trusted side: lib/, its provider, the PKI, the trusted TEE runtime code
# (sealing, SGX layouts) and the core. The core image links exactly these.
ARCHIVES=(
    "lib/libcloister_lib.a|protocol-lib|lib/libcloister_lib.a|required"
    "lib/libcloister_crypto_openssl.a|protocol-lib,crypto-openssl|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a|required"
    "core/pki/libcloister_pki.a|protocol-lib,crypto-openssl,pki-openssl|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a,core/pki/libcloister_pki.a|required"
    "tee/common/libcloister_tee_trusted.a|protocol-lib,crypto-openssl,core|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a,tee/common/libcloister_tee_trusted.a|required"
    "core/js/libcloister_duktape.a|protocol-lib,core,duktape|core/js/libcloister_duktape.a|required"
    "core/js/libcloister_js.a|protocol-lib,crypto-openssl,core,duktape|lib/libcloister_lib.a,core/js/libcloister_duktape.a,core/js/libcloister_js.a|required"
    "core/engine/libcloister_engine.a|protocol-lib,crypto-openssl,core|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a,core/js/libcloister_js.a,core/model/libcloister_model.a,core/engine/libcloister_engine.a|required"
    "core/model/libcloister_model.a|protocol-lib,crypto-openssl,core|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a,core/engine/libcloister_engine.a,core/js/libcloister_js.a,core/model/libcloister_model.a|required"
    "core/libcloister_core.a|protocol-lib,crypto-openssl,pki-openssl,core|lib/libcloister_lib.a,lib/libcloister_crypto_openssl.a,core/pki/libcloister_pki.a,tee/common/libcloister_tee_trusted.a,core/js/libcloister_js.a,core/engine/libcloister_engine.a,core/model/libcloister_model.a,core/libcloister_core.a|required"
)

die() { echo "check-symbols: $*" >&2; exit 2; }

usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
}

# check_archive ARCHIVE ALLOWLISTS DEFINERS -> 0 clean, 1 violations, 2 error
check_archive() {
    local archive=$1 lists=$2 definers=$3
    local tmp rc=0 l_arr d_arr
    [ -f "$archive" ] || { echo "check-symbols: no such archive: $archive" >&2; return 2; }
    tmp=$(mktemp -d)

    # Allowlist patterns: comments and blank lines dropped, surrounding blanks trimmed.
    : >"$tmp/patterns"
    local l
    IFS=, read -r -a l_arr <<<"$lists"
    for l in "${l_arr[@]}"; do
        [ -f "$ALLOW_DIR/$l.txt" ] || { echo "check-symbols: no allowlist $ALLOW_DIR/$l.txt" >&2; rm -rf "$tmp"; return 2; }
        sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^#/d' -e '/^$/d' "$ALLOW_DIR/$l.txt" >>"$tmp/patterns"
    done
    if [ ! -s "$tmp/patterns" ]; then
        echo "check-symbols: allowlists '$lists' contain no pattern" >&2; rm -rf "$tmp"; return 2
    fi

    # cl_* symbols defined by the archive and the layers below it.
    : >"$tmp/defined"
    local d
    IFS=, read -r -a d_arr <<<"$definers"
    for d in "${d_arr[@]}"; do
        [ -f "$d" ] || { echo "check-symbols: no such archive: $d" >&2; rm -rf "$tmp"; return 2; }
        nm --defined-only --extern-only --format=posix "$d" >"$tmp/nm_def" \
            || { echo "check-symbols: nm failed on $d" >&2; rm -rf "$tmp"; return 2; }
        awk 'NF >= 2 && $1 ~ /^cl_/ { print $1 }' "$tmp/nm_def" >>"$tmp/defined"
    done
    sort -u -o "$tmp/defined" "$tmp/defined"

    # "archive[member.o]: symbol U" -> "member.o symbol"
    nm -u -A --format=posix "$archive" >"$tmp/nm_undef" \
        || { echo "check-symbols: nm failed on $archive" >&2; rm -rf "$tmp"; return 2; }
    sed -n 's/^.*\[\([^]]*\)\]: \([^ ]*\) [Uw].*$/\1 \2/p' "$tmp/nm_undef" | sort -u >"$tmp/refs"

    local nobj nref
    nobj=$(ar t "$archive" | wc -l)
    nref=$(wc -l <"$tmp/refs")

    # 1. every referenced symbol must match an allowlist pattern
    awk '{ print $2 }' "$tmp/refs" | sort -u | { grep -vxEf "$tmp/patterns" || true; } >"$tmp/bad_syms"
    # 2. every referenced cl_* symbol must be defined in this layer or below
    awk '$2 ~ /^cl_/ { print $2 }' "$tmp/refs" | sort -u | comm -23 - "$tmp/defined" >"$tmp/bad_layer"

    local obj sym
    if [ -s "$tmp/bad_syms" ]; then
        rc=1
        while read -r obj sym; do
            if grep -qxF "$sym" "$tmp/bad_syms"; then
                echo "FORBIDDEN  $archive: $obj references $sym"
            fi
        done <"$tmp/refs"
    fi
    if [ -s "$tmp/bad_layer" ]; then
        rc=1
        while read -r obj sym; do
            if grep -qxF "$sym" "$tmp/bad_layer"; then
                echo "LAYERING   $archive: $obj references $sym, which is not defined in: ${definers//,/ }"
            fi
        done <"$tmp/refs"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "ok         $archive: $nobj objects, $nref undefined references, all allowed ($lists)"
    else
        echo "           allowlists used: ${lists//,/ } (scripts/symbol-allowlists/); see DESIGN.md rule 1"
    fi
    rm -rf "$tmp"
    return "$rc"
}

self_test() {
    local cc out rc fails=0 cases=0
    tmp=$(mktemp -d) # global: the EXIT trap needs it
    trap 'rm -rf "$tmp"' EXIT
    cc=${CC:-cc}
    command -v "$cc" >/dev/null || cc=cc

    cat >"$tmp/uses_fopen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void cl_selftest_bad(char *d, const char *s, size_t n);
void cl_selftest_bad(char *d, const char *s, size_t n)
{
    FILE *f = fopen(s, "rb");
    char *p = malloc(n);
    memcpy(d, s, n);
    free(p);
    if (f != NULL)
        fclose(f);
}
C
    cat >"$tmp/pure.c" <<'C'
#include <string.h>
int cl_selftest_helper(const char *s);
void cl_selftest_pure(char *d, const char *s, size_t n);
void cl_selftest_pure(char *d, const char *s, size_t n)
{
    memcpy(d, s, n);
    memset(d, cl_selftest_helper(s), n);
}
C
    cat >"$tmp/helper.c" <<'C'
#include <string.h>
int cl_selftest_helper(const char *s);
int cl_selftest_helper(const char *s) { return (int)strlen(s); }
C
    cat >"$tmp/openssl_user.c" <<'C'
/* stands in for the provider: an OpenSSL call and nothing else */
int EVP_selftest_fetch(int x);
int cl_selftest_evp(int x);
int cl_selftest_evp(int x) { return EVP_selftest_fetch(x); }
C
    cat >"$tmp/reaches_up.c" <<'C'
/* a protocol-library object calling a function of a higher layer */
int cl_selftest_provider_only(void);
int cl_selftest_up(void);
int cl_selftest_up(void) { return cl_selftest_provider_only(); }
C
    local f
    for f in uses_fopen pure helper openssl_user reaches_up; do
        "$cc" -c -O1 -fno-builtin -o "$tmp/$f.o" "$tmp/$f.c" || die "self-test: cannot compile $f.c with $cc"
    done
    ar rcs "$tmp/libbad.a" "$tmp/uses_fopen.o" "$tmp/helper.o"
    ar rcs "$tmp/libgood.a" "$tmp/pure.o" "$tmp/helper.o"
    ar rcs "$tmp/libprov.a" "$tmp/openssl_user.o"
    ar rcs "$tmp/libup.a" "$tmp/reaches_up.o"

    # expect NAME WANT_RC ARCHIVE LISTS DEFINERS [must-match-regex...]
    #   (lines of the output that must appear; with WANT_RC=1, every
    #   FORBIDDEN/LAYERING line must be one of them)
    expect() {
        local name=$1 want=$2 ar=$3 lists=$4 defs=$5
        shift 5
        cases=$((cases + 1))
        rc=0
        out=$(bash "${BASH_SOURCE[0]}" --check "$ar" "$lists" "$defs" 2>&1) || rc=$?
        local ok=1 re
        [ "$rc" -eq "$want" ] || ok=0
        for re in "$@"; do
            grep -Eq -- "$re" <<<"$out" || ok=0
        done
        if [ "$want" -eq 1 ] && [ "$#" -gt 0 ]; then
            local all
            all=$(printf '%s|' "$@")
            if grep -E '^(FORBIDDEN|LAYERING)' <<<"$out" | grep -Evq -- "(${all%|})"; then
                ok=0
            fi
        fi
        if [ "$ok" -eq 1 ]; then
            echo "self-test ok:   $name"
        else
            echo "self-test FAIL: $name (exit $rc, wanted $want); output:"
            sed 's/^/    /' <<<"$out"
            fails=$((fails + 1))
        fi
    }

    expect "fopen and malloc in the protocol library are rejected" 1 \
        "$tmp/libbad.a" protocol-lib "$tmp/libbad.a" \
        'FORBIDDEN .*uses_fopen\.o references fopen$' \
        'FORBIDDEN .*uses_fopen\.o references malloc$' \
        'FORBIDDEN .*uses_fopen\.o references free$' \
        'FORBIDDEN .*uses_fopen\.o references fclose$'
    expect "memcpy, memset, strlen and own cl_* symbols are accepted" 0 \
        "$tmp/libgood.a" protocol-lib "$tmp/libgood.a" '^ok '
    expect "OpenSSL calls are rejected in the protocol library" 1 \
        "$tmp/libprov.a" protocol-lib "$tmp/libprov.a" \
        'FORBIDDEN .*openssl_user\.o references EVP_selftest_fetch$'
    expect "OpenSSL calls are accepted in the crypto provider" 0 \
        "$tmp/libprov.a" protocol-lib,crypto-openssl "$tmp/libprov.a" '^ok '
    expect "fopen stays forbidden in the crypto provider" 1 \
        "$tmp/libbad.a" protocol-lib,crypto-openssl "$tmp/libbad.a" \
        'references fopen$' 'references malloc$' 'references free$' 'references fclose$'
    expect "a cl_* symbol of a higher layer is rejected" 1 \
        "$tmp/libup.a" protocol-lib "$tmp/libup.a" \
        'LAYERING .*reaches_up\.o references cl_selftest_provider_only'
    expect "a missing archive is an error, not a pass" 2 \
        "$tmp/nonexistent.a" protocol-lib "$tmp/nonexistent.a"

    if [ "$fails" -ne 0 ]; then
        echo "check-symbols self-test: $fails of $cases cases FAILED - the symbol check cannot be trusted"
        return 1
    fi
    echo "check-symbols self-test: all $cases cases behave"
}

build_dir="$ROOT/build"
do_build=1
case "${1:-}" in
    --self-test)
        [ "$#" -eq 1 ] || die "--self-test takes no arguments"
        self_test
        exit $?
        ;;
    --check)
        if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
            die "usage: --check ARCHIVE ALLOWLISTS [DEFINERS]"
        fi
        rc=0
        check_archive "$2" "$3" "${4:-$2}" || rc=$?
        exit "$rc"
        ;;
    -h|--help) usage; exit 0 ;;
esac
while [ "$#" -gt 0 ]; do
    case "$1" in
        --build-dir) [ "$#" -ge 2 ] || die "--build-dir needs a value"; build_dir=$2; shift 2 ;;
        --no-build) do_build=0; shift ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac

if [ "$do_build" -eq 1 ]; then
    if [ ! -f "$build_dir/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    targets=()
    for entry in "${ARCHIVES[@]}"; do
        IFS='|' read -r archive _ _ need <<<"$entry"
        target=$(basename "$archive" .a)
        target=${target#lib}
        if [ "$need" = required ] || [ -d "$build_dir/$(dirname "$archive")/CMakeFiles/$target.dir" ]; then
            targets+=("$target")
        fi
    done
    cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"
fi

status=0
for entry in "${ARCHIVES[@]}"; do
    IFS='|' read -r archive lists definers need <<<"$entry"
    if [ ! -f "$build_dir/$archive" ]; then
        if [ "$need" = optional ]; then
            echo "skipped    $archive: not built (optional)"
            continue
        fi
        echo "check-symbols: required archive $build_dir/$archive not found" >&2
        status=2
        continue
    fi
    defs=()
    IFS=, read -r -a d_arr <<<"$definers"
    for d in "${d_arr[@]}"; do
        [ -f "$build_dir/$d" ] && defs+=("$build_dir/$d")
    done
    rc=0
    (cd "$build_dir" && check_archive "$archive" "$lists" "$(IFS=,; echo "${defs[*]}")") || rc=$?
    if [ "$rc" -gt "$status" ]; then status=$rc; fi
done
if [ "$status" -eq 0 ]; then
    echo "check-symbols: PASS (no I/O or syscall symbols in the checked archives)"
else
    echo "check-symbols: FAIL"
fi
exit "$status"
