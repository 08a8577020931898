//! CloudWatch: [`CloudWatchMetrics`] reads one window's figures of both versions in one `GetMetricData`
//! request, and the watched alarms' states (`DescribeAlarms`).

use crate::error::classify;
use crate::lazy::OnFirstUse;
use crate::{AwsError, Metrics, TrafficBefore, WindowQuery};
use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat};
use aws_smithy_types::DateTime as SmithyTime;
use canary_core::sequential::Counts;
use canary_core::{AlarmState, AlarmValue, HealthFigures, VersionFigures};
use std::collections::{BTreeMap, HashMap};

/// [`Metrics`] on CloudWatch's `AWS/Lambda` namespace, as Lambda publishes it for invocations through an
/// alias: dimensions `FunctionName`, `Resource` (`function:alias`) and `ExecutedVersion`.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: OnFirstUse<Client>,
}

impl CloudWatchMetrics {
    pub fn new(client: Client) -> Self {
        Self { client: OnFirstUse::built(client) }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self { client: OnFirstUse::from_config(config, Client::new) }
    }
}

/// The metrics read for each version: (query id suffix, metric name, statistic).
const SERIES: &[(&str, &str, &str)] = &[
    ("invocations", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("p99", "Duration", "p99"),
];

/// The period that covers the whole window in one data point: a multiple of 60 s, as CloudWatch requires
/// for standard-resolution metrics.
pub(crate) fn period_seconds(query: &WindowQuery) -> i32 {
    let seconds = (query.end - query.start).num_seconds().max(1);
    ((seconds + 59) / 60 * 60).min(i32::MAX as i64 / 60 * 60) as i32
}

/// The statistic that counts a window's invocations slower than `ms`: CloudWatch's trimmed count with
/// an exclusive lower bound, `TC(ms:)`.
pub(crate) fn slow_stat(ms: f64) -> String {
    format!("TC({ms:.3}:)")
}

/// One query of `metric`'s `stat` for `version` through the alias.
fn query_of(query: &WindowQuery, version: &str, id: String, metric: &str, stat: &str, period: i32) -> MetricDataQuery {
    let resource = format!("{}:{}", query.function_name, query.alias);
    let dimensions =
        [("FunctionName", query.function_name.as_str()), ("Resource", &resource), ("ExecutedVersion", version)]
            .map(|(name, value)| Dimension::builder().name(name).value(value).build());
    let metric =
        Metric::builder().namespace("AWS/Lambda").metric_name(metric).set_dimensions(Some(dimensions.to_vec())).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .return_data(true)
        .build()
}

fn queries(query: &WindowQuery) -> Vec<MetricDataQuery> {
    let period = period_seconds(query);
    let slow = query.slow_above_ms.map(slow_stat);
    [("new", &query.new_version), ("base", &query.baseline_version)]
        .into_iter()
        .flat_map(|(prefix, version)| {
            let series = SERIES.iter().map(|(id, metric, stat)| (*id, *metric, stat.to_string()));
            let slow = slow.clone().map(|stat| ("slow", "Duration", stat));
            series
                .chain(slow)
                .map(|(id, metric, stat)| query_of(query, version, format!("{prefix}_{id}"), metric, &stat, period))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn figures_of(values: &HashMap<String, Vec<f64>>, prefix: &str) -> VersionFigures {
    let sum = |id: &str| values.get(&format!("{prefix}_{id}")).map_or(0.0, |v| v.iter().sum::<f64>()).round() as u64;
    VersionFigures {
        invocations: sum("invocations"),
        errors: sum("errors"),
        throttles: sum("throttles"),
        // Over several data points the worst p99 stands for the window: it never hides a slow minute.
        p99_duration_ms: values.get(&format!("{prefix}_p99")).and_then(|v| v.iter().copied().reduce(f64::max)),
        slow: values.get(&format!("{prefix}_slow")).map(|v| v.iter().sum::<f64>().round() as u64),
    }
}

/// The queries of the old version's minutes before a rollout: invocations and errors a minute, p99 over all.
fn before_queries(query: &WindowQuery) -> Vec<MetricDataQuery> {
    let version = &query.baseline_version;
    vec![
        query_of(query, version, "invocations".into(), "Invocations", "Sum", 60),
        query_of(query, version, "errors".into(), "Errors", "Sum", 60),
        query_of(query, version, "p99".into(), "Duration", "p99", period_seconds(query)),
    ]
}

impl CloudWatchMetrics {
    /// Every result of one GetMetricData over the query's window, all pages read.
    async fn metric_data(
        &self,
        queries: Vec<MetricDataQuery>,
        window: &WindowQuery,
    ) -> Result<Vec<MetricDataResult>, AwsError> {
        let mut pages = self
            .client
            .get()
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(SmithyTime::from_secs(window.start.timestamp()))
            .end_time(SmithyTime::from_secs(window.end.timestamp().max(window.start.timestamp() + 1)))
            .into_paginator()
            .send();
        let mut results = Vec::new();
        while let Some(page) = pages.next().await {
            results.extend(page.map_err(classify)?.metric_data_results().iter().cloned());
        }
        Ok(results)
    }
}

#[async_trait]
impl Metrics for CloudWatchMetrics {
    async fn figures(&self, query: &WindowQuery) -> Result<HealthFigures, AwsError> {
        let mut values: HashMap<String, Vec<f64>> = HashMap::new();
        for result in self.metric_data(queries(query), query).await? {
            let id = result.id().unwrap_or_default().to_string();
            values.entry(id).or_default().extend_from_slice(result.values());
        }
        Ok(HealthFigures { new: figures_of(&values, "new"), baseline: figures_of(&values, "base"), alarms: Vec::new() })
    }

    async fn traffic_before(&self, query: &WindowQuery) -> Result<TrafficBefore, AwsError> {
        let mut minutes: BTreeMap<i64, Counts> = BTreeMap::new();
        let mut p99 = None;
        for result in self.metric_data(before_queries(query), query).await? {
            let points = result.timestamps().iter().map(|t| t.secs()).zip(result.values().iter().copied());
            match result.id().unwrap_or_default() {
                "invocations" => {
                    points.for_each(|(t, v)| minutes.entry(t).or_default().invocations += v.round() as u64)
                }
                "errors" => points.for_each(|(t, v)| minutes.entry(t).or_default().errors += v.round() as u64),
                _ => p99 = result.values().iter().copied().reduce(f64::max).or(p99),
            }
        }
        // A minute whose errors arrived without its invocations is not a minute of evidence.
        let minutes = minutes
            .into_values()
            .filter(|c| c.invocations > 0)
            .map(|c| Counts { errors: c.errors.min(c.invocations), ..c })
            .collect();
        Ok(TrafficBefore { minutes, p99_duration_ms: p99 })
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AwsError> {
        let mut states = Vec::new();
        if names.is_empty() {
            return Ok(states);
        }
        // Without AlarmTypes, DescribeAlarms answers metric alarms only: a composite alarm would read as missing.
        let types = vec![AlarmType::MetricAlarm, AlarmType::CompositeAlarm];
        let request = self.client.get().describe_alarms().set_alarm_names(Some(names.to_vec()));
        let mut pages = request.set_alarm_types(Some(types)).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(classify)?;
            let metric =
                page.metric_alarms().iter().map(|a| (a.alarm_name(), a.state_value(), a.state_updated_timestamp()));
            let composite =
                page.composite_alarms().iter().map(|a| (a.alarm_name(), a.state_value(), a.state_updated_timestamp()));
            for (name, state, updated) in metric.chain(composite) {
                states.push(AlarmState {
                    name: name.unwrap_or_default().to_string(),
                    state: state.map_or(AlarmValue::InsufficientData, |s| AlarmValue::parse(s.as_str())),
                    // Sub-second precision: an alarm that fires in the second the rollout started must still
                    // count as after it.
                    updated_at: updated.map(crate::time_of).unwrap_or_default(),
                });
            }
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_mocks::{mock, mock_client};
    use chrono::{Duration, TimeZone, Utc};

    fn query(seconds: i64) -> WindowQuery {
        let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        WindowQuery {
            function_name: "orders".into(),
            alias: "live".into(),
            new_version: "2".into(),
            baseline_version: "1".into(),
            start,
            end: start + Duration::seconds(seconds),
            slow_above_ms: None,
        }
    }

    fn result(id: &str, values: &[f64]) -> MetricDataResult {
        MetricDataResult::builder().id(id).set_values(Some(values.to_vec())).build()
    }

    #[test]
    fn periods_cover_the_window_in_minutes() {
        for (seconds, period) in [(0, 60), (1, 60), (60, 60), (61, 120), (600, 600)] {
            assert_eq!(period_seconds(&query(seconds)), period, "{seconds}");
        }
    }

    #[tokio::test]
    async fn one_request_reads_both_versions_over_the_whole_window() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let queries = r.metric_data_queries();
                let stat = queries[1].metric_stat().unwrap();
                let dims: Vec<(&str, &str)> = stat
                    .metric()
                    .unwrap()
                    .dimensions()
                    .iter()
                    .map(|d| (d.name().unwrap(), d.value().unwrap()))
                    .collect();
                queries.len() == 8
                    && queries[1].id() == Some("new_errors")
                    && stat.period() == Some(180)
                    && dims == [("FunctionName", "orders"), ("Resource", "orders:live"), ("ExecutedVersion", "2")]
                    && r.start_time().map(|t| t.secs()) == Some(query(0).start.timestamp())
            })
            .sequence()
            .output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("new_invocations", &[60.0, 40.0]))
                    .metric_data_results(result("new_errors", &[3.0]))
                    .metric_data_results(result("new_p99", &[120.0, 250.5]))
                    .next_token("page-2")
                    .build()
            })
            .output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("base_invocations", &[900.0]))
                    .metric_data_results(result("base_errors", &[1.0]))
                    .metric_data_results(result("base_throttles", &[2.0]))
                    .build()
            })
            .build();
        let metrics = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
        let figures = metrics.figures(&query(150)).await.unwrap();
        assert_eq!(
            figures.new,
            VersionFigures { invocations: 100, errors: 3, throttles: 0, p99_duration_ms: Some(250.5), slow: None }
        );
        assert!(figures.alarms.is_empty());
        assert_eq!(
            figures.baseline,
            VersionFigures { invocations: 900, errors: 1, throttles: 2, p99_duration_ms: None, slow: None }
        );
        assert_eq!(rule.num_calls(), 2, "the second page was read");
    }

    #[tokio::test]
    async fn slow_calls_are_counted_above_the_threshold_when_latency_is_judged() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let queries = r.metric_data_queries();
                let stats: Vec<&str> = queries.iter().filter_map(|q| q.metric_stat()?.stat()).collect();
                queries.len() == 10 && queries[4].id() == Some("new_slow") && stats[4] == "TC(375.250:)"
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("new_invocations", &[100.0]))
                    .metric_data_results(result("new_slow", &[7.0]))
                    .metric_data_results(result("base_invocations", &[900.0]))
                    .build()
            });
        let metrics = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
        let figures = metrics.figures(&WindowQuery { slow_above_ms: Some(375.25), ..query(60) }).await.unwrap();
        assert_eq!((figures.new.slow, figures.baseline.slow), (Some(7), None));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_hour_before_is_read_minute_by_minute_for_the_old_version() {
        let at = |minute: i64| SmithyTime::from_secs(query(0).start.timestamp() + 60 * minute);
        let series = move |id: &str, points: &[(i64, f64)]| {
            MetricDataResult::builder()
                .id(id)
                .set_timestamps(Some(points.iter().map(|(m, _)| at(*m)).collect()))
                .set_values(Some(points.iter().map(|(_, v)| *v).collect()))
                .build()
        };
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let queries = r.metric_data_queries();
                let stat = queries[0].metric_stat().unwrap();
                let version = stat.metric().unwrap().dimensions()[2].value();
                queries.len() == 3
                    && stat.period() == Some(60)
                    && version == Some("1")
                    && queries[2].metric_stat().unwrap().period() == Some(3600)
            })
            .then_output(move || {
                GetMetricDataOutput::builder()
                    .metric_data_results(series("invocations", &[(0, 100.0), (1, 90.0), (2, 5.0)]))
                    .metric_data_results(series("errors", &[(1, 2.0), (2, 9.0), (3, 1.0)]))
                    .metric_data_results(series("p99", &[(0, 212.0)]))
                    .build()
            });
        let metrics = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
        let before = metrics.traffic_before(&query(3600)).await.unwrap();
        let counts = |invocations, errors| Counts { invocations, errors, slow: 0 };
        // Minute 3's error has no invocations: left out; minute 2's errors are capped at its invocations.
        assert_eq!(
            before,
            TrafficBefore { minutes: vec![counts(100, 0), counts(90, 2), counts(5, 5)], p99_duration_ms: Some(212.0) }
        );
    }

    #[tokio::test]
    async fn alarm_states_read_metric_and_composite_alarms() {
        use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
        use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, StateValue};
        let rule = mock!(Client::describe_alarms)
            .match_requests(|r| {
                use aws_sdk_cloudwatch::types::AlarmType;
                r.alarm_names() == ["orders-5xx", "orders-all", "gone"]
                    && r.alarm_types().contains(&AlarmType::CompositeAlarm)
                    && r.alarm_types().contains(&AlarmType::MetricAlarm)
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("orders-5xx")
                            .state_value(StateValue::Alarm)
                            .state_updated_timestamp(SmithyTime::from_secs_and_nanos(1_800_000_000, 500_000_000))
                            .build(),
                    )
                    .composite_alarms(
                        CompositeAlarm::builder().alarm_name("orders-all").state_value(StateValue::Ok).build(),
                    )
                    .build()
            });
        let metrics = CloudWatchMetrics::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
        let names = ["orders-5xx", "orders-all", "gone"].map(String::from);
        let states = metrics.alarm_states(&names).await.unwrap();
        let summary: Vec<(&str, &str, i64)> =
            states.iter().map(|a| (a.name.as_str(), a.state.as_str(), a.updated_at.timestamp_millis())).collect();
        assert_eq!(summary, [("orders-5xx", "ALARM", 1_800_000_000_500), ("orders-all", "OK", 0)]);
        assert!(metrics.alarm_states(&[]).await.unwrap().is_empty(), "no names, no call");
    }

    #[tokio::test]
    async fn throttling_is_transient() {
        let rule = mock!(Client::get_metric_data).sequence().http_status(429, None).build();
        let metrics = CloudWatchMetrics::new(mock_client!(
            aws_sdk_cloudwatch,
            aws_smithy_mocks::RuleMode::Sequential,
            [&rule],
            |c| c.retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
        ));
        assert!(matches!(metrics.figures(&query(60)).await, Err(AwsError::Transient(_))));
    }
}
