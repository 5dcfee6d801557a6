#!/bin/sh
# Fails when a C++ source is not formatted as .clang-format says.
set -eu
cd "$1"
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find core preload tools tests examples -name '*.cc' -o -name '*.h')
[ -n "$files" ] || { echo "no sources"; exit 0; }
clang-format --dry-run --Werror $files
echo "format ok: $(printf '%s\n' $files | wc -l) files"
