"""moto's server, with one gap of its CloudWatch filled: percentile statistics (p99, p95.5, ...).

moto 5.2 knows only Sum, Average, Minimum, Maximum and SampleCount; asked for a percentile in
GetMetricData, it fails the whole request with HTTP 500. The controller asks for p99 Duration in the same
request as its counts, as it does in AWS, so the local stack computes percentiles here: nearest-rank over
the raw values of the period, which is what CloudWatch does for values published one by one.

Started by `cargo xtask local up` with moto_server's own arguments.
"""

import math
import re
import sys

from moto.cloudwatch import models
from moto.server import main

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")
_original = models.Statistics.get_statistics_for_type


def get_statistics_for_type(self, stat):
    match = _PERCENTILE.fullmatch(stat)
    if match is None:
        return _original(self, stat)
    values = sorted(self.metric_single_values_list)
    if not values:
        return None
    rank = math.ceil(float(match.group(1)) / 100.0 * len(values))
    return values[min(max(rank, 1), len(values)) - 1]


models.Statistics.get_statistics_for_type = get_statistics_for_type

if __name__ == "__main__":
    sys.exit(main())
