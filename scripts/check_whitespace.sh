#!/usr/bin/env bash
# `make lint`'s copy of the pre-commit hooks trailing-whitespace and end-of-file-fixer, over every
# tracked text file, so CI holds them without pre-commit installed. Exclusions as in
# .pre-commit-config.yaml: README.md and docs/*.md show program output verbatim (fixed-width
# minimap rows, benchmark tables) whose trailing blanks are part of it.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
if git grep -I -n -E '[[:blank:]]+$' -- . ':!README.md' ':!docs/*.md'; then
  echo "trailing whitespace on the lines above"
  status=1
fi
while IFS= read -r -d '' file; do
  [ -f "$file" ] && [ ! -L "$file" ] && [ -s "$file" ] || continue
  grep -Iq . "$file" || continue  # binary
  last=$(tail -c 2 "$file" | od -An -c | tr -d ' ')
  case "$last" in
    *'\n\n') echo "$file: blank lines at the end of the file"; status=1 ;;
    *'\n') ;;
    *) echo "$file: no newline at the end of the file"; status=1 ;;
  esac
done < <(git ls-files -z)
exit "$status"
