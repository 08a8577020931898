#!/usr/bin/env bash
# Rolls the version the last deploy published out to the sample service's `live` alias through the
# stage's controller, and waits for the end. Exits 0 only when it was promoted (canaryctl's exit codes).
set -euo pipefail
stage="${1:?usage: rollout.sh staging|prod REQUEST_FILE}"
request="${2:?usage: rollout.sh staging|prod REQUEST_FILE}"
function="sample-service-${stage}"
new="$(aws lambda get-alias --function-name "$function" --name deployed --query FunctionVersion --output text)"
live="$(aws lambda get-alias --function-name "$function" --name live --query FunctionVersion --output text)"
if [ "$new" = "$live" ]; then
  echo "live already serves version ${new}: nothing to roll out"
  exit 0
fi
state_machine="$(scripts/stack-output.sh "$stage" StateMachineArn)"
# The pipeline builds canaryctl once (Jenkinsfile-cd's Build stage) and every stage runs that binary.
canaryctl="${CANARYCTL:-target/release/canaryctl}"
if [ ! -x "$canaryctl" ]; then
  echo "rollout.sh: no canaryctl at ${canaryctl}: build it first (cargo build --release -p canaryctl) or set CANARYCTL" >&2
  exit 1
fi
mkdir -p target
"$canaryctl" start --input "$request" \
  --function "$function" --version "$new" --state-machine-arn "$state_machine" \
  --wait --output json | tee "target/rollout-${stage}.json"
