#!/usr/bin/env bash
# Rolls the versions the last deploy published out to the sample service's `live` aliases through the
# stage's controller, and waits for the end: the API and its order worker as one release when both changed
# (moved, judged and rolled back together), the one that changed alone otherwise. Exits 0 only when it was
# promoted (canaryctl's exit codes).
set -euo pipefail
stage="${1:?usage: rollout.sh staging|prod REQUEST_FILE}"
request="${2:?usage: rollout.sh staging|prod REQUEST_FILE}"
# Each function whose `deployed` version is not the one `live` serves, as NAME:VERSION.
changed=()
for function in "sample-service-${stage}" "sample-service-${stage}-worker"; do
  new="$(aws lambda get-alias --function-name "$function" --name deployed --query FunctionVersion --output text)"
  live="$(aws lambda get-alias --function-name "$function" --name live --query FunctionVersion --output text)"
  if [ "$new" = "$live" ]; then
    echo "${function}:live already serves version ${new}"
  else
    changed+=("--function" "${function}:${new}")
  fi
done
if [ "${#changed[@]}" -eq 0 ]; then
  echo "nothing to roll out"
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
"$canaryctl" start --input "$request" "${changed[@]}" --alias live --state-machine-arn "$state_machine" \
  --wait --output json | tee "target/rollout-${stage}.json"
