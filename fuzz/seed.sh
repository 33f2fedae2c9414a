#!/usr/bin/env bash
# Writes a small starting corpus for each fuzz target into fuzz/corpus/<target>/
# (ignored by git): the Spot catalog, its schemas and examples, and a few inputs
# from the unit tests. Fuzzing works without it, but finds its way faster.
# Needs jq. Run from anywhere; safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spot="$here/../catalog/spot"
corpus="$here/corpus"

put() { # target name, then the bytes on stdin
  mkdir -p "$corpus/$1"
  cat >"$corpus/$1/$2"
}

n=0
for file in "$spot"/*.json; do
  n=$((n + 1))
  put catalog "spot-$n" <"$file"
  schema="$(jq -c '.schemas["1"]' "$file")"
  example="$(jq -c '.schemas["1"].examples[0]' "$file")"
  # dates: a format byte, the schema, 0xFF, the payload.
  for format in 0 1 2 3; do
    { printf "\\x$format"; printf '%s' "$schema"; printf '\xff'; printf '%s' "$example"; } |
      put dates "spot-$n-$format"
  done
  { printf '%s' "$schema"; printf '\xff'; printf '%s' "$example"; } | put schema "spot-$n"
  printf '%s' "$example" | put json_strict "spot-$n"
  jq -c --arg t "$(jq -r .name "$file")" \
    '{eventType: $t, payload: .schemas["1"].examples[0], channels: ["a"], eventId: "e1"}' \
    "$file" | put api_body "spot-$n"
  jq -r .name "$file" | tr -d '\n' | put name "spot-$n"
done

i=0
for text in '{"a": "\ud83d\ude00"}' '{"a": "\ud800"}' '{"a": 1e400}' '{"a": 1} x' \
  '[1, -2, 3.5, true, null, "x", {"k": []}]' '18446744073709551616' '-0'; do
  i=$((i + 1))
  printf '%s' "$text" | put json_strict "unit-$i"
done

i=0
for url in 'https://example.com/webhook' 'HTTPS://Example.COM:443/Path?a=b' \
  'http://[::1]:9000/' 'https://bücher.example/' '  https://example.com/a b  ' \
  'http:///hook' 'https://user:pw@example.com/' 'http://example.com:0/' \
  'https://example.com/#frag' 'http://0x7f.1/'; do
  i=$((i + 1))
  printf '%s' "$url" | put endpoint_url "unit-$i"
done

i=0
for header in '120' ' 3600 ' '99999999999999999999999999' 'Wed, 21 Oct 2015 07:30:30 GMT' \
  'Wednesday, 21-Oct-15 07:29:00 GMT' 'Wed Oct 21 07:28:10 2015' 'Thu Oct  1 07:28:10 2015' \
  'Wed, 21 Oct 2015 07:28:00 +0500' '-5'; do
  i=$((i + 1))
  printf '%s' "$header" | put retry_after "unit-$i"
done

i=0
for name in 'user.signup' 'invoice-paid_v2.1' 'naïve' "$(printf 'a%.0s' {1..257})"; do
  i=$((i + 1))
  printf '%s' "$name" | put name "unit-$i"
done

echo "seeded $(find "$corpus" -type f | wc -l) inputs under $corpus"
