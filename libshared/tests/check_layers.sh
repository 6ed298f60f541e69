#!/bin/sh
# check_layers.sh LIBSHARED_DIR: libshared's layers have no cycle.
#
# Each header of include/ says its layer in its purpose comment ("Layer N of
# libshared"), 0 (core) to 6 (the process: pool, supervise, service). A file
# of src/ belongs to the layer of its own header (src/X.c: include/sh_X.h). A
# file may include headers of lower layers, and of its own layer only in core
# and in the top layer: router, auth, db, budget and ratelimit (2) stand side by side,
# each on its own. Besides, no .c file may declare another file's function by
# hand: a function used across files has its prototype in a header (the build's
# -Wmissing-prototypes checks the other half). Prints each violation; exits 1
# if there is one.
set -eu
dir=${1:?usage: check_layers.sh LIBSHARED_DIR}
top=6
fail=0

layer_of_header() {
    n=$(grep -o 'Layer [0-9] of libshared' "$dir/include/$1" 2>/dev/null | head -n 1 | cut -d' ' -f2)
    if [ -z "$n" ]; then
        echo "check_layers: $1 does not say its layer (\"Layer N of libshared\")" >&2
        echo 9
        return
    fi
    echo "$n"
}

check_file() { # FILE OWN_HEADER OWN_LAYER
    # any spelling of an include of ours: <sh_x.h>, "sh_x.h", "../include/sh_x.h", "# include"
    hs=$(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$1" | grep -oE 'sh_[a-z_]+\.h' || true)
    for h in $hs; do
        if [ ! -f "$dir/include/$h" ] || [ "$h" = "$2" ]; then continue; fi
        hl=$(layer_of_header "$h")
        if [ "$hl" -gt "$3" ] || { [ "$hl" -eq "$3" ] && [ "$3" -ne 0 ] && [ "$3" -ne "$top" ]; }; then
            echo "check_layers: ${1#"$dir"/} (layer $3) includes $h (layer $hl)" >&2
            fail=1
        fi
    done
}

for f in "$dir"/include/sh_*.h; do
    own=$(layer_of_header "$(basename "$f")")
    [ "$own" -le "$top" ] || fail=1
    check_file "$f" "$(basename "$f")" "$own"
done
for f in "$dir"/src/*.c; do
    h=sh_$(basename "$f" .c).h
    if [ ! -f "$dir/include/$h" ]; then
        echo "check_layers: ${f#"$dir"/} has no header $h" >&2
        fail=1
        continue
    fi
    check_file "$f" "$h" "$(layer_of_header "$h")"
done

# A prototype at file scope in a .c file, other than a static one, is a hand
# copy of a header's. Declarations are read whole (over several lines), at
# brace depth 0, without comments, strings and preprocessor lines.
prototypes() { # FILE: "LINE: declaration" for each hand-written prototype
    awk '
    function flush(   d) {
        d = buf; gsub(/[ \t\n]+/, " ", d); sub(/^ /, "", d)
        if (d ~ /^[A-Za-z_][A-Za-z0-9_ *]*[ *][a-z][a-z0-9_]*[ ]?\(.*\)[ A-Za-z0-9_(),]*;$/ &&
            d !~ /^(static|typedef|return|extern "C") /)
            print start ": " d
        buf = ""; start = 0
    }
    /^[ \t]*#/ { if (!incomment) next }
    {
        line = $0
        for (i = 1; i <= length(line); i++) {
            c = substr(line, i, 1); n = substr(line, i + 1, 1)
            if (incomment) { if (c == "*" && n == "/") { incomment = 0; i++ }; continue }
            if (instr) { if (c == "\\") { i++; continue }; if (c == instr) instr = ""; continue }
            if (c == "/" && n == "*") { incomment = 1; i++; continue }
            if (c == "/" && n == "/") break
            if (c == "\"" || c == "\047") { instr = c; if (depth == 0) buf = buf c; continue }
            if (c == "{") { depth++; buf = ""; start = 0; continue }
            if (c == "}") { depth--; continue }
            if (depth > 0) continue
            if (c ~ /[^ \t]/ && start == 0) start = NR
            buf = buf c
            if (c == ";") flush()
        }
        if (depth == 0 && buf != "") buf = buf " "
    }' "$1"
}
for f in "$dir"/src/*.c "$dir"/../services/*/*.c; do
    [ -f "$f" ] || continue
    prototypes "$f" | while IFS= read -r line; do
        echo "check_layers: ${f#"$dir"/}:$line: a prototype belongs in a header" >&2
        echo x
    done | grep -q x && fail=1
done
[ "$fail" -eq 0 ] && echo "libshared layers: no file includes a layer above its own"
exit "$fail"
