#!/usr/bin/env bash
# Prints one output of a stage's stack (samconfig.toml names the stack): stack-output.sh STAGE KEY.
set -euo pipefail
stage="${1:?usage: stack-output.sh staging|prod OUTPUT_KEY}"
key="${2:?usage: stack-output.sh staging|prod OUTPUT_KEY}"
sam list stack-outputs --config-env "$stage" --output json | python3 -c '
import json, sys
key = sys.argv[1]
values = [o["OutputValue"] for o in json.load(sys.stdin) if o["OutputKey"] == key]
if not values:
    sys.exit(f"the stack has no output {key}: was it deployed from this template?")
print(values[0])
' "$key"
