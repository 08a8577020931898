#!/usr/bin/env bash
# Deploys one stage's stack (controller and sample service) after `sam build`. The sample service's
# `live` alias keeps the version it serves: the deploy only publishes a new version (alias `deployed`);
# the controller moves live afterwards (scripts/rollout.sh). Credentials come from the environment.
set -euo pipefail
stage="${1:?usage: deploy-stage.sh staging|prod}"
function="sample-service-${stage}"
# Empty on the first deploy, which then points live at the first version.
live="$(aws lambda get-alias --function-name "$function" --name live --query FunctionVersion --output text 2>/dev/null || true)"
sam deploy \
  --stack-name "lambda-canary-${stage}" \
  --resolve-s3 \
  --capabilities CAPABILITY_IAM \
  --no-confirm-changeset \
  --no-fail-on-empty-changeset \
  --parameter-overrides "Stage=${stage}" "LiveVersion=${live}"
