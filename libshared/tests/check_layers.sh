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
    for h in $(sed -n 's/^#include "\(sh_[a-z_]*\.h\)".*/\1/p' "$1"); do
        [ -f "$dir/include/$h" ] && [ "$h" != "$2" ] || continue
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
# copy of a header's.
for f in "$dir"/src/*.c "$dir"/../services/*/*.c; do
    [ -f "$f" ] || continue
    grep -nE '^[A-Za-z_][A-Za-z0-9_ *]*[ *][a-z][a-z0-9_]*\([^;{]*\);' "$f" | grep -vE '^[0-9]+:(static|typedef|return) ' |
        while IFS= read -r line; do
            echo "check_layers: ${f#"$dir"/}:$line: a prototype belongs in a header" >&2
            echo x
        done | grep -q x && fail=1
done
[ "$fail" -eq 0 ] && echo "libshared layers: no file includes a layer above its own"
exit "$fail"
