# shellcheck shell=bash
# tools/lib.sh - helpers shared by tools/check, tools/demo and
# tools/size-report; sourced, not run. Expects the repository root as the
# current directory.

# Options of the two build configurations.
# shellcheck disable=SC2034  # used by the scripts that source this file
OVL_DEBUG_OPTS=(--wrap-mode=nodownload)
# shellcheck disable=SC2034
OVL_RELEASE_OPTS=(--wrap-mode=nodownload --buildtype=minsize -Db_lto=true -Dstrip=true
                  -Dtests=false)
# -O3 (meson's release buildtype), tests included: compiled by tools/check
# and never run, so that gcc's warnings at the highest level (which see
# more after inlining, and -Werror makes fatal) stop the check, not a
# packager who builds for speed.
# shellcheck disable=SC2034
OVL_O3_OPTS=(--wrap-mode=nodownload --buildtype=release)

# True when every option in "$@" (--name=value or -Dname=value) already has
# that value in the configured build tree $dir.
ovl_options_match() {
    local dir=$1
    shift
    meson introspect "$dir" --buildoptions 2>/dev/null | python3 -c '
import json, sys
have = {o["name"]: o["value"] for o in json.load(sys.stdin)}
for arg in sys.argv[1:]:
    name, _, want = arg.lstrip("-").partition("=")
    if name.startswith("D"):
        name = name[1:]
    name = name.replace("-", "_")
    got = have.get(name)
    if isinstance(got, bool):
        got = "true" if got else "false"
    if str(got) != want:
        sys.exit(1)
' "$@"
}

# Configure build tree $1 with the options that follow. A missing or unusable
# tree is set up afresh; an existing one is only touched when an option
# differs (ninja regenerates by itself when meson.build files change).
# "meson configure" applies changed options because meson 1.0's
# "setup --reconfigure" silently keeps old values of b_* options.
ovl_setup() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ] && [ -f "$dir/meson-private/coredata.dat" ]; then
        if ovl_options_match "$dir" "$@"; then
            return 0
        fi
        if meson configure "$dir" "$@" && ovl_options_match "$dir" "$@"; then
            return 0
        fi
        if meson setup --reconfigure "$dir" "$@" && ovl_options_match "$dir" "$@"; then
            return 0
        fi
    fi
    rm -rf -- "$dir"
    meson setup "$dir" "$@"
}
