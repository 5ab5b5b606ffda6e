#!/bin/sh
# Builds every testdata/*.wat into the .wasm beside it; run by go generate.
set -e
cd "$(dirname "$0")"
for f in *.wat; do
	case "$f" in
	nocheck_*) flags=--no-check ;; # hostile: indices no validator would pass
	*) flags= ;;
	esac
	wat2wasm --enable-all $flags "$f" -o "${f%.wat}.wasm"
done
