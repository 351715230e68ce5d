#!/bin/sh
# run-fuzz.sh FUZZER CORPUS_DIR [libFuzzer args...]
# Runs a libFuzzer target briefly over its committed seed corpus (new inputs
# go to a temporary directory, the corpus is left as it is) and prints TAP.
fuzzer=$1
corpus=$2
shift 2
name=$(basename "$fuzzer")
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "1..1"
if "$fuzzer" "$@" "$tmp" "$corpus" >"$tmp/log" 2>&1; then
	runs=$(grep -o 'Done [0-9]* runs' "$tmp/log" | tail -n 1)
	echo "ok 1 - $name: ${runs:-done}, no crash"
else
	echo "not ok 1 - $name crashed or failed"
	sed 's/^/# /' "$tmp/log" | tail -n 60
	exit 1
fi
