#!/usr/bin/env bash
# Smoke test of a running ghost-engine: health, OpenAPI, one job to done, its artifacts.
#   scripts/smoke-test.sh http://127.0.0.1:8000
# Environment: SMOKE_TIMEOUT (seconds to wait for the job, a positive whole number, default 60).
# Exits non-zero, with a line saying what failed, on any failure; 2, before any request, on a bad setting.
set -euo pipefail

base="${1:?usage: smoke-test.sh BASE_URL}"
base="${base%/}"
timeout_s="${SMOKE_TIMEOUT:-60}"
# Checked before a job is submitted: the wait's arithmetic would fail only after it.
if ! [[ "$timeout_s" =~ ^[1-9][0-9]*$ ]]; then
  echo "smoke: SMOKE_TIMEOUT must be a positive whole number of seconds, got '$timeout_s'" >&2
  exit 2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
# json FILE EXPR: evaluate a Python expression over the parsed JSON document `d`.
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

code=$(curl -sS -o "$tmp/health" -w '%{http_code}' "$base/healthz") || fail "no answer from $base/healthz"
if [ "$code" != 200 ] || [ "$(json "$tmp/health" 'd["ok"]')" != True ]; then
  fail "/healthz answered $code"
fi
echo "smoke: /healthz ok"

code=$(curl -sS -o "$tmp/openapi" -w '%{http_code}' "$base/openapi.json") || fail "no answer from /openapi.json"
[ "$code" = 200 ] || fail "/openapi.json answered $code"
[[ "$(json "$tmp/openapi" 'd["openapi"]')" == 3.* ]] || fail "/openapi.json is not an OpenAPI 3 document"
echo "smoke: /openapi.json ok"

code=$(curl -sS -o "$tmp/accepted" -w '%{http_code}' -X POST "$base/generate-scene" \
  -H 'Content-Type: application/json' \
  -d '{"prompt": "a spooky hallway", "seed": 123, "style": "doom"}') || fail "no answer from POST /generate-scene"
[ "$code" = 202 ] || fail "POST /generate-scene answered $code: $(cat "$tmp/accepted")"
job_id=$(json "$tmp/accepted" 'd["jobId"]')
status_url="$base$(json "$tmp/accepted" 'd["statusUrl"]')"
echo "smoke: submitted job $job_id"

deadline=$(( $(date +%s) + timeout_s ))
while :; do
  curl -sS -o "$tmp/status" "$status_url" || fail "no answer from $status_url"
  state=$(json "$tmp/status" 'd["state"]')
  case "$state" in
    done) break ;;
    failed|cancelled) fail "job $job_id ended $state: $(json "$tmp/status" 'd["error"]')" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "job $job_id still $state after ${timeout_s}s"
  sleep 0.5
done
steps=$(json "$tmp/status" 'len(d["steps"])')
echo "smoke: job done with $steps steps"

if [ "$(json "$tmp/status" '"sceneGraphUrl" in d["result"]')" = True ]; then
  curl -sSf -o "$tmp/scene.json" "$(json "$tmp/status" 'd["result"]["sceneGraphUrl"]')" || fail "sceneGraphUrl did not download"
  curl -sSf -o "$tmp/minimap.txt" "$(json "$tmp/status" 'd["result"]["asciiMinimapUrl"]')" || fail "asciiMinimapUrl did not download"
else  # demo mode: the artifacts are inlined
  json "$tmp/status" 'json.dumps(d["result"]["sceneGraph"])' > "$tmp/scene.json"
  json "$tmp/status" 'd["result"]["asciiMinimap"]' > "$tmp/minimap.txt"
fi
rooms=$(json "$tmp/scene.json" 'len(d["rooms"])') || fail "sceneGraph.json is not the scene graph"
[ "$rooms" -gt 0 ] || fail "sceneGraph.json has no rooms"
# The map is everything above the first blank line (the legend is below it).
if ! sed '/^$/q' "$tmp/minimap.txt" | grep -q '@' || ! sed '/^$/q' "$tmp/minimap.txt" | grep -q '>'; then
  fail "asciiMinimap.txt lacks the start (@) or exit (>)"
fi
# minimap.png: a presigned URL, or (demo mode) this API's own path.
png_url=$(json "$tmp/status" 'd["result"]["minimapPngUrl"]') || fail "the result has no minimapPngUrl"
[[ "$png_url" == http* ]] || png_url="$base$png_url"
curl -sSf -o "$tmp/minimap.png" "$png_url" || fail "minimapPngUrl did not download"
[ "$(head -c 4 "$tmp/minimap.png" | tail -c 3)" = PNG ] || fail "minimap.png is not a PNG"
echo "smoke: sceneGraph.json has $rooms rooms, minimap.png $(wc -c < "$tmp/minimap.png") bytes; asciiMinimap.txt:"
cat "$tmp/minimap.txt"
echo "smoke: PASS"
