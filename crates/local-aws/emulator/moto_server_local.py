"""moto's server, made to behave as AWS does where the controller's correctness depends on it.

1. CloudWatch percentile and trimmed-count statistics (p99, p95.5, TC(250:), ...). moto 5.2 knows only
   Sum, Average, Minimum, Maximum and SampleCount; asked for anything else in GetMetricData, it fails the
   whole request with HTTP 500. The controller asks for p99 Duration, and for the count of calls slower
   than the latency rule's threshold (TC with absolute bounds: above the lower, at most the upper), in
   the same request as its counts, as it does in AWS, so the local stack computes them here over the raw
   values of the period: percentiles by nearest rank, which is what CloudWatch does for values published
   one by one.
2. Lambda alias revisions. In AWS every UpdateAlias gives the alias a new RevisionId, and an UpdateAlias
   naming a RevisionId that is not the current one fails with PreconditionFailedException (HTTP 412).
   moto keeps one RevisionId for ever and ignores the parameter ("not yet implemented"), so a
   compare-and-swap would always succeed locally. The controller's one-rollout-per-alias lock and its
   "never overwrite what this execution did not write" rule rest on that compare-and-swap.
3. GetExecutionHistory's reverseOrder. moto ignores it and always answers oldest first; the safety net
   and canaryctl read an execution's last rollout state newest first (a 25,000-event history is not read
   whole in AWS), and would find the oldest state instead.
4. StopExecution of an execution waiting for a task token (an approval gate). In AWS it ends ABORTED at
   once; moto marks the program stopped but leaves the waiting task asleep until its 7-day timeout, so the
   execution stays RUNNING. Stopping now also wakes the execution's waiting callbacks.
5. Provisioned concurrency configurations (PutProvisionedConcurrencyConfig, Get, Delete), which moto does not
   serve at all: kept per function and qualifier and answered as Lambda answers them (404
   ProvisionedConcurrencyConfigNotFoundException when there is none), so that Prepare's read of an alias's
   provisioned concurrency runs locally as on AWS. Nothing is provisioned: the router runs every call alike.
Started by `cargo xtask local up` with moto_server's own arguments.
"""

import json
import math
import re
import sys
import uuid
from urllib.parse import unquote

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.awslambda import urls as lambda_urls
from moto.awslambda.exceptions import PreconditionFailedException
from moto.cloudwatch import models
from moto.core.responses import ActionResult
from moto.server import main
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser.asl.eval import environment as sfn_environment

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")
_TRIMMED_COUNT = re.compile(r"TC\(([0-9.]*):([0-9.]*)\)")
_original = models.Statistics.get_statistics_for_type


def trimmed_count(values, low, high):
    """CloudWatch's TC(low:high) with absolute bounds: the values above low and at most high."""
    low = float(low) if low else -math.inf
    high = float(high) if high else math.inf
    return float(sum(1 for v in values if low < v <= high))


def get_statistics_for_type(self, stat):
    trimmed = _TRIMMED_COUNT.fullmatch(stat)
    if trimmed is not None:
        return trimmed_count(self.metric_single_values_list, trimmed.group(1), trimmed.group(2))
    match = _PERCENTILE.fullmatch(stat)
    if match is None:
        return _original(self, stat)
    values = sorted(self.metric_single_values_list)
    if not values:
        return None
    rank = math.ceil(float(match.group(1)) / 100.0 * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


models.Statistics.get_statistics_for_type = get_statistics_for_type


_original_update = lambda_models.LambdaAlias.update


def update(self, description, function_version, routing_config):
    _original_update(self, description, function_version, routing_config)
    self.revision_id = str(uuid.uuid4())


lambda_models.LambdaAlias.update = update

_original_update_alias = lambda_responses.LambdaResponse.update_alias


def update_alias(self):
    revision = json.loads(self.body or "{}").get("RevisionId")
    if revision:
        function_name = unquote(self.path.rsplit("/")[-3])
        alias_name = unquote(self.path.rsplit("/", 2)[-1])
        current = self.backend.get_alias(alias_name, function_name).revision_id
        if revision != current:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetAlias API to retrieve the latest Revision Id"
            )
    return _original_update_alias(self)


lambda_responses.LambdaResponse.update_alias = update_alias


def get_execution_history(self):
    history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
    if self._get_param("reverseOrder"):
        history = dict(history, events=list(reversed(history["events"])))
    return ActionResult(history)


sfn_responses.StepFunctionResponse.get_execution_history = get_execution_history

_original_set_stop = sfn_environment.Environment.set_stop


def set_stop(self, stop_date, cause, error):
    _original_set_stop(self, stop_date, cause, error)
    for endpoint in list(self.callback_pool_manager._pool.values()):
        endpoint.interrupt_all()


sfn_environment.Environment.set_stop = set_stop

_provisioned = {}


def provisioned_concurrency(request, full_url, headers):
    """PUT, GET and DELETE /2019-09-30/functions/NAME/provisioned-concurrency?Qualifier=Q."""
    from urllib.parse import parse_qs, urlparse

    url = urlparse(full_url)
    name = unquote(url.path.split("/functions/", 1)[1].split("/", 1)[0]).split(":function:")[-1].split(":")[0]
    qualifier = parse_qs(url.query).get("Qualifier", [""])[0]
    key = (name, qualifier)
    if request.method == "PUT":
        body = json.loads(request.data or b"{}")
        wanted = int(body["ProvisionedConcurrentExecutions"])
        _provisioned[key] = {
            "RequestedProvisionedConcurrentExecutions": wanted,
            "AvailableProvisionedConcurrentExecutions": wanted,
            "AllocatedProvisionedConcurrentExecutions": wanted,
            "Status": "READY",
            "LastModified": "2026-01-01T00:00:00.000+0000",
        }
        return 202, {"content-type": "application/json"}, json.dumps(_provisioned[key])
    if request.method == "DELETE":
        _provisioned.pop(key, None)
        return 204, {}, ""
    if key not in _provisioned:
        error = {"Type": "User", "message": f"No Provisioned Concurrency Config found for this function {name}:{qualifier}"}
        headers = {"x-amzn-ErrorType": "ProvisionedConcurrencyConfigNotFoundException", "content-type": "application/json"}
        return 404, headers, json.dumps(error)
    return 200, {"content-type": "application/json"}, json.dumps(_provisioned[key])


lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/provisioned-concurrency/?$"] = (
    provisioned_concurrency
)

if __name__ == "__main__":
    sys.exit(main())
