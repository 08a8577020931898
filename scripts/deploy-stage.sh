#!/usr/bin/env bash
# Deploys one stage's stack (controller and sample service) after `sam build`. The sample service's
# `live` aliases (its API's and its worker's) keep the versions they serve: the deploy only publishes new
# versions (alias `deployed`); the controller moves live afterwards, both as one release
# (scripts/rollout.sh). Credentials come from the environment.
set -euo pipefail
stage="${1:?usage: deploy-stage.sh staging|prod}"
# The version each of the sample service's `live` aliases (the API's and its order worker's) serves now,
# pinned by the template so that the deploy moves no traffic. Only "the alias does not exist" means a first
# deploy (the template then points live at the first version). Any other failure (expired credentials,
# another region, throttling) stops here: read as "no alias", it would send all of the stage's traffic to
# the new version with no canary.
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
live_of() {
  local function="$1" live description
  if live="$(aws lambda get-alias --function-name "$function" --name live --query FunctionVersion --output text 2>"$errors")"; then
    :
  elif grep -q ResourceNotFoundException "$errors"; then
    echo "${function}:live does not exist yet: first deploy, live starts at the first version" >&2
    live="first"
  else
    cat "$errors" >&2
    echo "deploy-stage.sh: could not read ${function}:live (above); not deploying, since a deploy that cannot" \
      "pin live would move all traffic to the new version without a canary" >&2
    return 1
  fi
  # A rollout holds live (its description carries the controller's lock): the stack update would rewrite the
  # alias under it (its routing and the lock). Wait for it to end, or abort it, first. A lock whose execution
  # has ended (its ending not handled yet) is refused too, and named as such: deploying over it would pin
  # whatever it left (a version never judged to the end) as live and wipe the lock the safety net restores by.
  if [ "$live" != "first" ]; then
    description="$(aws lambda get-alias --function-name "$function" --name live --query Description --output text)"
    case "$description" in
      "canary-rollout lock: "*)
        local holder status
        holder="${description#canary-rollout lock: }"
        holder="${holder%%$'\n'*}"
        holder="${holder%% #*}"
        status="$(aws stepfunctions describe-execution --execution-arn "$holder" --query status --output text \
          2>/dev/null || echo UNKNOWN)"
        if [ "$status" = "RUNNING" ] || [ "$status" = "UNKNOWN" ]; then
          echo "deploy-stage.sh: a rollout holds ${function}:live (${holder}); not deploying over it: wait for" \
            "it to end, or canaryctl abort it, then deploy again" >&2
        else
          echo "deploy-stage.sh: ${function}:live still carries the lock of ${holder}, which ended ${status}" \
            "without giving it back (a stale lock); not deploying over it: canaryctl abort ${holder} restores" \
            "what it moved and releases the lock (the safety net's sweep does within minutes), then deploy again" >&2
        fi
        return 1
        ;;
    esac
  fi
  echo "$live"
}
live="$(live_of "sample-service-${stage}")"
worker_live="$(live_of "sample-service-${stage}-worker")"
# samconfig.toml holds the stack's name and deploy flags; the overrides given here replace its list, so the
# stage is given again.
sam deploy --config-env "$stage" --parameter-overrides "Stage=${stage}" "LiveVersion=${live}" \
  "WorkerLiveVersion=${worker_live}"
