#!/bin/sh
for i in 1 2 3; do
for p in /proc/[0-9]*; do echo "$(basename $p) $(cat $p/stat 2>/dev/null | cut -d' ' -f2-5) :: $(tr '\0' ' ' < $p/cmdline 2>/dev/null | cut -c1-150)"; done
echo ---; sleep 1; done
