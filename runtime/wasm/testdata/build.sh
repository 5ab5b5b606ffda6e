#!/bin/sh
# Builds every testdata/*.wat into the .wasm beside it; run by go generate.
set -e
cd "$(dirname "$0")"
for f in *.wat; do
	wat2wasm --enable-all "$f" -o "${f%.wat}.wasm"
done
