#!/usr/bin/env bash
# Calls the stage's sample service through API Gateway: health, a quote, and an order. Fails on any
# unexpected status.
set -euo pipefail
stage="${1:?usage: smoke-test.sh staging|prod}"
url="$(scripts/stack-output.sh "$stage" SampleServiceUrl)"
check() {
  local expected="$1"; shift
  local status
  status="$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 "$@")"
  if [ "$status" != "$expected" ]; then
    echo "smoke test failed: $* answered ${status}, expected ${expected}" >&2
    exit 1
  fi
}
check 200 "${url}/health"
check 200 "${url}/quote?quantity=3"
check 201 -X POST -H 'content-type: application/json' -d '{"item": "widget", "quantity": 2}' "${url}/orders"
check 422 -X POST -H 'content-type: application/json' -d '{"item": "", "quantity": 2}' "${url}/orders"
echo "smoke test of ${stage} passed: ${url}"
