#!/usr/bin/env bash
# The manual page renders without a troff warning, and has a section for
# each command that `embstore --help` lists, in the same order.
#   man_page_test.sh EMBSTORE PAGE
set -euo pipefail
warnings=$(MANWIDTH=80 man --warnings -l "$2" 2>&1 >/dev/null)
if [ -n "$warnings" ]; then
  echo "FAIL the page has troff warnings:"; echo "$warnings"; exit 1
fi
want=$("$1" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p')
got=$(MANWIDTH=80 man -l "$2" | sed -n 's/^   \([a-z][a-z]*\)$/\1/p')
if [ "$want" != "$got" ] || [ -z "$want" ]; then
  echo "FAIL sections $(echo $got) are not the commands $(echo $want)"; exit 1
fi
echo "man_page_test: 2 passed, 0 failed ($(echo "$want" | wc -l) commands)"
