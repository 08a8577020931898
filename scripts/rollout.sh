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
state_machine="$(aws cloudformation describe-stacks --stack-name "lambda-canary-${stage}" \
  --query "Stacks[0].Outputs[?OutputKey=='StateMachineArn'].OutputValue" --output text)"
mkdir -p target
cargo run --quiet --release -p canaryctl -- start --input "$request" \
  --function "$function" --version "$new" --state-machine-arn "$state_machine" \
  --wait --output json | tee "target/rollout-${stage}.json"
