#!/usr/bin/env bash
# Last-resort cleanup for a test control plane (see processes.ts).
# Usage: reaper.sh <owner-pid> <run-dir> [keep|delete]
# Waits until <owner-pid> is gone (it may have been SIGKILLed, so it could not clean up), then
# kills every process group listed in <run-dir>/pgids and deletes <run-dir> (unless "keep").
# A normal teardown kills this script first, so it only acts when the owner died abruptly.
set -u
owner=$1 dir=$2 mode=${3:-delete}
while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
[[ -d "$dir" ]] || exit 0
groups=$(cat "$dir/pgids" 2>/dev/null)
for g in $groups; do kill -TERM -- "-$g" 2>/dev/null; done
for _ in 1 2 3 4 5 6; do
  alive=0
  for g in $groups; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
  [[ $alive == 0 ]] && break
  sleep 0.5
done
for g in $groups; do kill -KILL -- "-$g" 2>/dev/null; done
[[ $mode == keep ]] || rm -rf -- "$dir"
