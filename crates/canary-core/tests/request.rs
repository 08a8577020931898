//! Every refusal of the contract (docs/request.md), and both accepted forms, through one `check` helper.

use canary_core::request::{MAX_HOLD_SECONDS, NoData, Strategy, parse_request, parse_request_str};
use serde_json::{Value, json};

/// Asserts that `input` is refused naming exactly `fields`, each error saying what would be right.
#[track_caller]
fn refused(input: Value, fields: &[&str]) {
    let refusal = parse_request(&input).expect_err(&format!("{input} should be refused"));
    assert_eq!(refusal.fields(), fields, "{refusal}");
    for error in &refusal.errors {
        assert!(!error.problem.is_empty() && !error.fix.is_empty(), "{error:?}");
    }
}

fn base() -> Value {
    json!({"function": "orders-api", "alias": "live", "version": "42"})
}

fn with(mut value: Value, key: &str, field: Value) -> Value {
    value[key] = field;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

#[test]
fn minimal_request_takes_the_documented_defaults() {
    let request = parse_request(&base()).unwrap();
    assert_eq!(request.function_name(), "orders-api");
    assert_eq!(request.strategy, Strategy::Linear { percent: 10.0, interval_seconds: 60 });
    let health = &request.health;
    assert!(health.enabled);
    assert_eq!((health.max_error_rate, health.min_invocations), (Some(0.01), 10));
    assert_eq!(
        (health.compare_to_baseline, health.baseline_confidence, health.max_latency_p99_increase),
        (false, 0.99, None)
    );
    assert!(health.alarms.is_empty());
    assert_eq!(
        (health.no_data, health.metrics_delay_seconds, health.no_data_max_wait_seconds),
        (NoData::Wait, 120, 14_400)
    );
    assert_eq!((health.check_interval_seconds, health.max_shared_outage_seconds), (None, 300));
}

#[test]
fn accepted_forms() {
    let cases: &[(Value, Strategy)] = &[
        (
            json!({"linear": {"percent": 25, "interval_seconds": 30}}),
            Strategy::Linear { percent: 25.0, interval_seconds: 30 },
        ),
        (
            json!({"linear": {"percent": 100, "interval_seconds": 1}}),
            Strategy::Linear { percent: 100.0, interval_seconds: 1 },
        ),
        (
            json!({"canary": {"percent": 5.5, "bake_seconds": 600}}),
            Strategy::Canary { percent: 5.5, bake_seconds: 600 },
        ),
        (json!({"all_at_once": {}}), Strategy::AllAtOnce { bake_seconds: None }),
        (json!({"all_at_once": {"bake_seconds": 300}}), Strategy::AllAtOnce { bake_seconds: Some(300) }),
    ];
    for (strategy, expected) in cases {
        // Health checks off: all_at_once without a bake and linear 100% hold no step to judge.
        let unjudged = with(base(), "health", json!({"enabled": false}));
        let request = parse_request(&with(unjudged, "strategy", strategy.clone())).unwrap();
        assert_eq!(&request.strategy, expected, "{strategy}");
    }
    let steps = json!({"steps": [{"percent": 1, "hold_seconds": 60}, {"percent": 50, "hold_seconds": 600}]});
    let request = parse_request(&with(base(), "strategy", steps)).unwrap();
    assert!(matches!(request.strategy, Strategy::Steps(ref s) if s.len() == 2));
    // 1,000 steps fit Step Functions' history: only the step before the promotion waits for traffic.
    let finest = with(base(), "strategy", json!({"linear": {"percent": 0.1, "interval_seconds": 1}}));
    assert_eq!(parse_request(&finest).unwrap().strategy, Strategy::Linear { percent: 0.1, interval_seconds: 1 });
}

#[test]
fn requests_that_could_outgrow_the_execution_history_are_refused() {
    use canary_core::budget::{HISTORY_EVENT_LIMIT, RETRY_RESERVE, worst_case_events};
    // Each step held a minute costs 16 events; the rollout up to 5 re-checks of 9 through shared outages,
    // and 120 before the promotion while it waits for traffic (every 2 minutes for 4 hours).
    let linear =
        |percent: f64| with(base(), "strategy", json!({"linear": {"percent": percent, "interval_seconds": 60}}));
    let costs = worst_case_events(&parse_request(&linear(10.0)).unwrap());
    assert_eq!(costs.steps, 9 * (7 + 9) + 7 + 9 * (5 + 120), "9 held steps, the final move, the re-checks");
    // Looked at every minute, held ten: the largest linear rollout that fits, and the next one, refused
    // before anything moves (every request keeps room for the longest pause: 288 looks).
    let looked = |percent: f64| {
        let health = json!({"check_interval_seconds": 60});
        with(
            with(base(), "strategy", json!({"linear": {"percent": percent, "interval_seconds": 600}})),
            "health",
            health,
        )
    };
    let fits = parse_request(&looked(100.0 / 199.0)).unwrap();
    assert!(worst_case_events(&fits).total() + RETRY_RESERVE <= HISTORY_EVENT_LIMIT);
    refused(looked(100.0 / 200.0), &["strategy", "health.check_interval_seconds", "health.no_data_max_wait_seconds"]);
    // Left to the controller, the looks fit: fewer a hold for a long rollout.
    let auto =
        |percent: f64| with(base(), "strategy", json!({"linear": {"percent": percent, "interval_seconds": 3600}}));
    let long = parse_request(&auto(0.2)).unwrap();
    assert!(worst_case_events(&long).total() + RETRY_RESERVE <= HISTORY_EVENT_LIMIT);
    assert_eq!(canary_core::budget::look_interval(&long, 3600), 1200, "3 looks a hold, not 20");
    assert_eq!(canary_core::budget::look_interval(&parse_request(&auto(10.0)).unwrap(), 3600), 180);
    // Gates add theirs, and are named.
    let steps: Vec<Value> = (1..=900).map(|i| json!({"percent": i as f64 / 10.0, "hold_seconds": 1})).collect();
    let gates: Vec<f64> = (1..=900).map(|i| i as f64 / 10.0).collect();
    let gated = with(
        with(with(base(), "strategy", json!({"steps": steps})), "approval", json!({"before_percent": gates})),
        "health",
        json!({"no_data": "fail"}),
    );
    refused(gated, &["strategy", "approval.before_percent"]);
    // A gate listed twice is refused, each copy named; more gates than a rollout has steps, at once.
    let repeated = with(base(), "approval", json!({"before_percent": vec![10.0; 3]}));
    let refusal = parse_request(&repeated).unwrap_err();
    assert_eq!(refusal.fields(), ["approval.before_percent[1]", "approval.before_percent[2]"]);
    refused(with(base(), "approval", json!({"before_percent": vec![10.0; 100_000]})), &["approval.before_percent"]);
}

#[test]
fn names_and_versions() {
    let ok = |f: &str, v: Value| parse_request(&json!({"function": f, "alias": "live", "version": v})).unwrap();
    assert_eq!(
        ok("arn:aws:lambda:eu-west-1:123456789012:function:orders-api", json!("7")).function_name(),
        "orders-api"
    );
    assert_eq!(ok("orders_api-2", json!(42)).version, "42", "a version typed as a number is accepted");

    refused(with(base(), "version", json!("$LATEST")), &["version"]);
    refused(with(base(), "version", json!("abc")), &["version"]);
    refused(with(base(), "version", json!("042")), &["version"]);
    refused(with(base(), "version", json!(true)), &["version"]);
    refused(with(base(), "version", json!(-3)), &["version"]);
    refused(with(base(), "function", json!("orders api")), &["function"]);
    refused(with(base(), "function", json!("x".repeat(65))), &["function"]);
    refused(
        with(base(), "function", json!("arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live")),
        &["function"],
    );
    refused(with(base(), "function", json!("arn:aws:s3:::bucket")), &["function"]);
    // Weights finer than the product supports (0.001 percentage points) are refused: too close to tell
    // apart, too small to carry traffic, too close to 100%.
    let steps = |percents: &[f64]| {
        let list: Vec<Value> = percents.iter().map(|p| json!({"percent": p, "hold_seconds": 60})).collect();
        with(base(), "strategy", json!({"steps": list}))
    };
    refused(steps(&[10.0, 10.0000000001]), &["strategy.steps[1].percent"]);
    refused(steps(&[1e-300]), &["strategy.steps[0].percent"]);
    refused(steps(&[99.9999]), &["strategy.steps[0].percent"]);
    refused(
        with(base(), "strategy", json!({"canary": {"percent": 0.0001, "bake_seconds": 60}})),
        &["strategy.canary.percent"],
    );
    parse_request(&steps(&[0.001, 10.0, 10.001, 99.999])).unwrap();
    // Partition, region and account are checked offline, as Lambda would refuse them.
    for arn in [
        "arn::lambda:::function:orders-api",
        "arn:evil:lambda:x:y:function:orders-api",
        "arn:aws-:lambda:eu-west-1:123456789012:function:orders-api",
        "arn:aws:lambda:eu-west:123456789012:function:orders-api",
        "arn:aws:lambda:eu--1:123456789012:function:orders-api",
        "arn:aws:lambda:eu-west-x:123456789012:function:orders-api",
        "arn:aws:lambda:eu-west-1:12345678901:function:orders-api",
        "arn:aws:lambda:eu-west-1:12345678901x:function:orders-api",
    ] {
        refused(with(base(), "function", json!(arn)), &["function"]);
    }
    let long_partition = format!("arn:aws-{}:lambda:eu-west-1:123456789012:function:f", "x".repeat(40));
    refused(with(base(), "function", json!(long_partition)), &["function"]);
    parse_request(&with(base(), "function", json!("arn:aws-cn:lambda:cn-north-1:123456789012:function:f"))).unwrap();
    refused(with(base(), "alias", json!("123")), &["alias"]);
    refused(with(base(), "alias", json!("live!")), &["alias"]);
    refused(with(base(), "alias", json!("  ")), &["alias"]);
    refused(with(base(), "hooks", json!({"pre_traffic": "smoke test"})), &["hooks.pre_traffic"]);
    refused(
        with(base(), "hooks", json!({"post_traffic": "arn:aws:lambda:us-east-1:1:function:e2e:live"})),
        &["hooks.post_traffic"],
    );
    refused(with(base(), "hooks", json!({"pre_traffc": "smoke"})), &["hooks.pre_traffc"]);
    // A key that is the empty string is named as such (found by the property tests).
    refused(with(base(), "", json!(1)), &["\"\""]);
    refused(with(base(), "health", json!({"": 1})), &["health.\"\""]);
    // The function being rolled out cannot be its own hook, by name or by ARN.
    refused(with(base(), "hooks", json!({"pre_traffic": "orders-api"})), &["hooks.pre_traffic"]);
    let own_arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api";
    refused(with(base(), "hooks", json!({"post_traffic": own_arn})), &["hooks.post_traffic"]);
}

#[test]
fn missing_and_unknown_fields_are_named() {
    refused(without(base(), "function"), &["function"]);
    refused(json!({}), &["function", "alias", "version"]);
    refused(with(base(), "strategyy", json!({})), &["strategyy"]);
    refused(with(base(), "strategy", json!({"linear": {"percent": 10, "intervl": 5}})), &["strategy.linear.intervl"]);
    refused(with(base(), "strategy", json!({"linear": {"interval_seconds": 5}})), &["strategy.linear.percent"]);
    refused(with(base(), "strategy", json!({"canary": {"percent": 5}})), &["strategy.canary.bake_seconds"]);
    refused(
        with(base(), "strategy", json!({"linear": {"percent": "10", "interval_seconds": 5}})),
        &["strategy.linear.percent"],
    );
    refused(with(base(), "health", json!({"no_data": "wiat"})), &["health.no_data"]);
    refused(with(base(), "health", json!({"max_eror_rate": 0.1})), &["health.max_eror_rate"]);
    refused(json!([1, 2]), &["(input)"]);
    refused(with(base(), "version", Value::Null), &["version"]);
    assert_eq!(parse_request_str("{\"function\": ").unwrap_err().fields(), ["(input)"]);
    let text = r#"{"function": "orders-api", "alias": "live", "version": "42"}"#;
    assert_eq!(parse_request_str(text).unwrap(), parse_request(&base()).unwrap());
}

#[test]
fn out_of_range_strategies_are_refused() {
    let cases: &[(Value, &[&str])] = &[
        (json!({"linear": {"percent": 0, "interval_seconds": 60}}), &["strategy.linear.percent"]),
        (json!({"linear": {"percent": -5, "interval_seconds": 60}}), &["strategy.linear.percent"]),
        (json!({"linear": {"percent": 101, "interval_seconds": 60}}), &["strategy.linear.percent"]),
        (json!({"linear": {"percent": 0.01, "interval_seconds": 60}}), &["strategy.linear.percent"]),
        (json!({"linear": {"percent": 10, "interval_seconds": 0}}), &["strategy.linear.interval_seconds"]),
        (
            json!({"linear": {"percent": 10, "interval_seconds": MAX_HOLD_SECONDS + 1}}),
            &["strategy.linear.interval_seconds"],
        ),
        (
            json!({"linear": {"percent": 0, "interval_seconds": 0}}),
            &["strategy.linear.percent", "strategy.linear.interval_seconds"],
        ),
        (json!({"canary": {"percent": 100, "bake_seconds": 60}}), &["strategy.canary.percent"]),
        (json!({"canary": {"percent": 10, "bake_seconds": 0}}), &["strategy.canary.bake_seconds"]),
        (json!({"steps": []}), &["strategy.steps"]),
        (
            json!({"steps": [{"percent": 10, "hold_seconds": 60}, {"percent": 10, "hold_seconds": 60}]}),
            &["strategy.steps[1].percent"],
        ),
        (
            json!({"steps": [{"percent": 50, "hold_seconds": 60}, {"percent": 20, "hold_seconds": 60}]}),
            &["strategy.steps[1].percent"],
        ),
        (
            json!({"steps": [{"percent": 50, "hold_seconds": 60}, {"percent": 100, "hold_seconds": 60}]}),
            &["strategy.steps[1].percent"],
        ),
        (json!({"steps": [{"percent": 50, "hold_seconds": 0}]}), &["strategy.steps[0].hold_seconds"]),
        (json!({"steps": [{"percent": 50}]}), &["strategy.steps[0]"]),
        (json!({"steps": [{"percent": 50, "hold_seconds": 1, "x": 1}]}), &["strategy.steps[0].x"]),
        (json!({"all_at_once": {"bake_seconds": MAX_HOLD_SECONDS + 1}}), &["strategy.all_at_once.bake_seconds"]),
        (json!({}), &["strategy"]),
        (
            json!({"linear": {"percent": 10, "interval_seconds": 60}, "canary": {"percent": 10, "bake_seconds": 60}}),
            &["strategy"],
        ),
    ];
    for (strategy, fields) in cases {
        refused(with(base(), "strategy", strategy.clone()), fields);
    }
    let too_many: Vec<Value> = (1..=1000).map(|i| json!({"percent": i as f64 / 10.0, "hold_seconds": 1})).collect();
    refused(with(base(), "strategy", json!({"steps": too_many})), &["strategy.steps"]);
    // 60 steps held a week each run past the year an execution may live.
    let too_long: Vec<Value> = (1..=60).map(|i| json!({"percent": i, "hold_seconds": MAX_HOLD_SECONDS})).collect();
    refused(
        with(base(), "strategy", json!({"steps": too_long})),
        &[
            "strategy",
            "health.metrics_delay_seconds",
            "health.no_data_max_wait_seconds",
            "health.max_shared_outage_seconds",
        ],
    );
}

#[test]
fn health_fields() {
    let request = parse_request(&with(
        base(),
        "health",
        json!({"max_error_rate": 0.05, "min_invocations": 1, "no_data": "pass", "metrics_delay_seconds": 0}),
    ))
    .unwrap();
    assert_eq!(
        (request.health.max_error_rate, request.health.min_invocations, request.health.no_data),
        (Some(0.05), 1, NoData::Pass)
    );
    assert!(request.health.enabled);
    let off = parse_request(&with(base(), "health", json!({"enabled": false}))).unwrap();
    assert!(!off.health.enabled);
    let cases: &[(Value, &[&str])] = &[
        (json!({"max_error_rate": 1.5}), &["health.max_error_rate"]),
        (json!({"max_error_rate": 1.0}), &["health.max_error_rate"]),
        (json!({"min_invocations": 0}), &["health.min_invocations"]),
        (json!({"enabled": false, "no_data": "pass", "alarms": ["a"]}), &["health.no_data", "health.alarms"]),
        (json!({"no_data": "pass", "no_data_max_wait_seconds": 60}), &["health.no_data_max_wait_seconds"]),
        (json!({"alarms": ["a\tb"]}), &["health.alarms[0]"]),
        (json!({"alarms": ["a".repeat(256)]}), &["health.alarms[0]"]),
        (json!({"max_error_rate": -0.1}), &["health.max_error_rate"]),
        (json!({"metrics_delay_seconds": 3601}), &["health.metrics_delay_seconds"]),
        (json!({"no_data_max_wait_seconds": MAX_HOLD_SECONDS + 1}), &["health.no_data_max_wait_seconds"]),
        (json!({"min_invocations": -1}), &["health.min_invocations"]),
        (json!({"baseline_confidence": 0.3}), &["health.baseline_confidence"]),
        (json!({"baseline_confidence": 1.0}), &["health.baseline_confidence"]),
        (json!({"max_latency_p99_increase": 0}), &["health.max_latency_p99_increase"]),
        (json!({"max_latency_p99_increase": -0.5}), &["health.max_latency_p99_increase"]),
        (json!({"alarms": ["a", "a"]}), &["health.alarms[1]"]),
        (json!({"alarms": [""]}), &["health.alarms[0]"]),
        (
            json!({"alarms": vec!["x"; 51].iter().enumerate().map(|(i, _)| format!("a{i}")).collect::<Vec<_>>()}),
            &["health.alarms"],
        ),
    ];
    for (health, fields) in cases {
        refused(with(base(), "health", health.clone()), fields);
    }
    // 255 characters of two bytes each are a valid alarm name: CloudWatch counts characters.
    parse_request(&with(base(), "health", json!({"alarms": ["é".repeat(255)]}))).unwrap();
    // compare_to_baseline: false is what the controller does anyway, so it is accepted.
    parse_request(&with(base(), "health", json!({"compare_to_baseline": false, "alarms": []}))).unwrap();
}

/// The contract's full example (docs/request.md) is understood whole.
#[test]
fn the_full_example_is_understood() {
    let mut example = json!({
      "function": "orders-api", "alias": "live", "version": "42",
      "strategy": { "linear": { "percent": 10, "interval_seconds": 60 } },
      "health": {
        "max_error_rate": 0.01, "min_invocations": 20, "no_data": "wait", "compare_to_baseline": true,
        "max_latency_p99_increase": 0.25, "alarms": ["orders-api-5xx"], "metrics_delay_seconds": 120
      },
      "hooks": { "pre_traffic": "orders-api-smoke", "post_traffic": "orders-api-e2e" },
      "approval": { "before_percent": [50] }
    });
    let request = parse_request(&example).unwrap();
    assert_eq!(request.approval.before_percent, [50.0]);
    example["approval"] = json!({"before_percent": [50, 55]});
    refused(example.clone(), &["approval.before_percent[1]"]);
    example["approval"] = json!({"before_percnt": [50]});
    refused(example.clone(), &["approval.before_percnt"]);
    example.as_object_mut().unwrap().remove("approval");
    let request = parse_request(&example).unwrap();
    assert_eq!(request.hooks.pre_traffic.as_deref(), Some("orders-api-smoke"));
    assert_eq!(request.hooks.post_traffic.as_deref(), Some("orders-api-e2e"));
    let health = request.health;
    assert_eq!(
        (health.max_error_rate, health.compare_to_baseline, health.max_latency_p99_increase),
        (Some(0.01), true, Some(0.25))
    );
    assert_eq!(health.alarms, ["orders-api-5xx"]);
}

/// With the baseline comparison on and no explicit limit, the baseline alone judges errors; an explicit
/// limit still applies.
#[test]
fn compare_to_baseline_needs_an_absolute_limit_too() {
    // Alone, the baseline test cannot fail a version that carries all traffic (the old one then serves
    // nothing): an all_at_once rollout with a bake would promote a version failing every call.
    refused(with(base(), "health", json!({"compare_to_baseline": true})), &["health.max_error_rate"]);
    let both =
        parse_request(&with(base(), "health", json!({"compare_to_baseline": true, "max_error_rate": 0.2}))).unwrap();
    assert_eq!(both.health.max_error_rate, Some(0.2));
    // With health checks off, nothing is judged, and nothing is asked for.
    let off = json!({"enabled": false});
    assert_eq!(parse_request(&with(base(), "health", off)).unwrap().health.max_error_rate, Some(0.01));
    let ignored = json!({"compare_to_baseline": true, "enabled": false});
    refused(with(base(), "health", ignored), &["health.compare_to_baseline"]);
}

#[test]
fn the_canonical_form_round_trips() {
    for strategy in [
        json!({"linear": {"percent": 100.0 / 3.0, "interval_seconds": 5}}),
        json!({"steps": [{"percent": 1, "hold_seconds": 60}]}),
        json!({"all_at_once": {"bake_seconds": 60}}),
    ] {
        let request = parse_request(&with(base(), "strategy", strategy)).unwrap();
        let again = parse_request(&request.as_written()).unwrap();
        assert_eq!(request, again);
    }
    // `no_data` other than wait: its wait limit would be refused as ignored (`canaryctl undo` writes a
    // promoted rollout's request back this way).
    for no_data in ["fail", "pass"] {
        let request = parse_request(&with(base(), "health", json!({"no_data": no_data}))).unwrap();
        assert_eq!(parse_request(&request.as_written()).unwrap(), request, "no_data {no_data}");
    }
    // With health checks off, the other health fields are left out, or they would be refused as ignored.
    let off = with(with(base(), "health", json!({"enabled": false})), "strategy", json!({"all_at_once": {}}));
    let request = parse_request(&off).unwrap();
    assert_eq!(request.as_written()["health"], json!({"enabled": false}));
    assert_eq!(parse_request(&request.as_written()).unwrap(), request);
}

#[test]
fn the_legacy_sample_input_is_accepted_unchanged() {
    let legacy = json!({"function-name": "MyFunction", "alias-name": "MyAlias", "new-version": "2",
                        "steps": 10, "interval": 120, "type": "linear"});
    let request = parse_request(&legacy).unwrap();
    assert_eq!(
        (request.function.as_str(), request.alias.as_str(), request.version.as_str()),
        ("MyFunction", "MyAlias", "2")
    );
    assert_eq!(request.strategy, Strategy::Linear { percent: 10.0, interval_seconds: 120 });
    assert!(request.health.enabled);

    let off = parse_request(&json!({"function-name": "f", "alias-name": "a", "new-version": 3, "steps": 4,
                                    "interval": 1, "health-check": false}))
    .unwrap();
    assert!(!off.health.enabled);
    assert_eq!(off.strategy, Strategy::Linear { percent: 25.0, interval_seconds: 1 });
}

#[test]
fn legacy_refusals_name_the_legacy_fields() {
    let legacy = |steps: Value, interval: Value| json!({"function-name": "f", "alias-name": "a", "new-version": "2", "steps": steps, "interval": interval});
    refused(legacy(json!(0), json!(60)), &["steps"]);
    refused(legacy(json!(-1), json!(60)), &["steps"]);
    refused(legacy(json!(2.5), json!(60)), &["steps"]);
    refused(legacy(json!("10"), json!(60)), &["steps"]);
    refused(legacy(json!(1001), json!(60)), &["steps"]);
    refused(legacy(json!(10), json!(0)), &["interval"]);
    refused(legacy(json!(0), json!(-3)), &["steps", "interval"]);
    refused(json!({"function-name": "f", "alias-name": "a", "new-version": "2"}), &["steps", "interval"]);
    refused(
        json!({"alias-name": "a", "new-version": "$LATEST", "steps": 2, "interval": 1}),
        &["function-name", "new-version"],
    );
    refused(
        json!({"function-name": "f", "alias-name": "1", "new-version": "2", "steps": 2, "interval": 1}),
        &["alias-name"],
    );
    refused(
        json!({"function-name": "f", "alias-name": "a", "new-version": "2", "steps": 2, "interval": 1, "type": "canary"}),
        &["type"],
    );
    refused(
        json!({"function-name": "f", "alias-name": "a", "new-version": "2", "steps": 2, "interval": 1, "function": "g"}),
        &["function"],
    );
    parse_request(&legacy(json!(101), json!(1))).unwrap();
    // 1,000 legacy steps fit, with health checks or without.
    let mut thousand = legacy(json!(1000), json!(1));
    parse_request(&thousand).unwrap();
    thousand["health-check"] = json!(false);
    parse_request(&thousand).unwrap();
}

#[test]
fn a_key_given_twice_is_refused_naming_it() {
    use canary_core::request::read_request_json;
    let refused_at = |text: &str| read_request_json(text).unwrap_err().fields().join(",");
    assert_eq!(refused_at(r#"{"function":"f","alias":"live","version":"42","version":"43"}"#), "version");
    assert_eq!(refused_at(r#"{"health": {"alarms": ["a"], "alarms": []}}"#), "health.alarms");
    assert_eq!(refused_at(r#"{"strategy": {"steps": [{"percent": 1, "percent": 2}]}}"#), "strategy.steps[0].percent");
    // Every kind of value is read through; the same key in two objects is no duplicate.
    let fine = r#"{"a": true, "b": -1, "c": 18446744073709551615, "d": 0.5, "e": null, "f": "x",
                   "g": [[1], {"a": 1}], "h": {"a": 2}}"#;
    assert_eq!(read_request_json(fine).unwrap()["c"], json!(18446744073709551615u64));
    assert_eq!(refused_at("{not json"), "(input)");
    let refusal = canary_core::parse_request_str(r#"{"function": "f", "function": "g"}"#).unwrap_err();
    assert!(refusal.to_string().contains("function: is given twice"), "{refusal}");
}

#[test]
fn type_errors_speak_of_the_request_not_of_rust() {
    for (input, field, expected) in [
        (with(base(), "strategy", json!("linear")), "strategy", "expected an object"),
        (
            with(base(), "strategy", json!({"linear": {"percent": 10, "interval_seconds": "x"}})),
            "strategy.linear.interval_seconds",
            "expected a whole number",
        ),
        (
            with(base(), "strategy", json!({"linear": {"percent": "ten"}})),
            "strategy.linear.percent",
            "expected a number",
        ),
    ] {
        let refusal = parse_request(&input).unwrap_err();
        assert_eq!(refusal.fields(), [field]);
        let text = refusal.to_string();
        assert!(text.contains(expected) && text.contains("docs/request.md"), "{text}");
        assert!(!text.contains("Raw") && !text.contains("u64") && !text.contains("f64"), "{text}");
    }
}

#[test]
fn every_unknown_field_is_named_in_one_refusal() {
    let request = serde_json::json!({"function": "orders", "alias": "live", "version": "2", "stratgy": {},
        "health": {"max_eror_rate": 0.1, "min_invocations": 5, "metric_delay": 60},
        "strategy": {"steps": [{"percent": 10, "hold_seconds": 60, "hold": 60}]}});
    let refusal = canary_core::parse_request(&request).unwrap_err();
    let mut fields = refusal.fields();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["health.max_eror_rate", "health.metric_delay", "strategy.steps[0].hold", "stratgy"],
        "{refusal}"
    );
    assert!(refusal.to_string().contains("unknown field `max_eror_rate`, expected one of"), "{refusal}");
    // Unknown fields (read in key order), and the first field of a wrong type, which ends the reading.
    let typed = serde_json::json!({"function": "orders", "alias": "live", "version": "2", "a_typo": 1,
        "health": {"min_invocations": "ten"}});
    assert_eq!(canary_core::parse_request(&typed).unwrap_err().fields(), ["a_typo", "health.min_invocations"]);
    // A request pasted into the wrong place is not listed key by key forever.
    let mut many = serde_json::json!({"function": "orders", "alias": "live", "version": "2"});
    for i in 0..30 {
        many[format!("junk{i:02}")] = 1.into();
    }
    assert_eq!(canary_core::parse_request(&many).unwrap_err().fields().len(), 20);
}

#[test]
fn the_outlook_says_what_each_hold_sees_and_how_long_the_promotion_waits() {
    use canary_core::budget::outlook;
    let canary = |health: Value| {
        let strategy = json!({"canary": {"percent": 10, "bake_seconds": 300}});
        parse_request(&with(with(base(), "strategy", strategy), "health", health)).unwrap()
    };
    let request = canary(json!({}));
    // Busy: the evidence is there by the end of the hold.
    let busy = outlook(&request, 200.0);
    assert_eq!((busy.expected_wait_seconds, busy.decided_in_time), (0, true));
    assert!(busy.describe(&request).ends_with("about 100 by the end of the last hold."), "{}", busy.describe(&request));
    // Three a minute: waits, within the default 4 hours.
    let text = outlook(&request, 3.0).describe(&request);
    assert!(
        text.contains("waits about 2h58m more for the rest (health.no_data_max_wait_seconds allows 4h00m)"),
        "{text}"
    );
    // Too slow for the bound: says what decides, and what to change.
    let slow = outlook(&request, 0.1);
    assert!(!slow.decided_in_time && slow.describe(&request).contains("health.no_data (Wait) would decide"));
    assert!(outlook(&request, 0.0).describe(&request).contains("for ever"));
    // `fail` or `pass` never waits: the outlook says so as soon as the evidence is short.
    assert!(!outlook(&canary(json!({"no_data": "pass"})), 3.0).decided_in_time);
    // A limit so close to every call that no count of calls could tell a broken version: bounded.
    let max = canary_core::sequential::MAX_INVOCATIONS_TO_DETECT;
    assert_eq!(canary_core::sequential::invocations_to_detect(0.999, 1e-300), max);
    // Health off: nothing is needed.
    let off = canary(json!({"enabled": false}));
    let text = outlook(&off, 3.0).describe(&off);
    assert!(text.starts_with("At 3 requests a minute") && !text.contains("promotion"), "{text}");
}

fn release() -> Value {
    json!({"functions": [{"function": "orders-api", "alias": "live", "version": "43"},
                         {"function": "orders-worker", "alias": "live", "version": 17}]})
}

#[test]
fn a_release_names_each_function_and_shares_the_policy() {
    let request =
        parse_request(&with(release(), "strategy", json!({"canary": {"percent": 10, "bake_seconds": 60}}))).unwrap();
    assert!(request.is_release());
    assert_eq!(
        (request.function.as_str(), request.alias.as_str(), request.version.as_str()),
        ("orders-api", "live", "43")
    );
    let targets: Vec<(String, String)> = request.targets().into_iter().map(|t| (t.function, t.version)).collect();
    assert_eq!(targets, [("orders-api".to_string(), "43".to_string()), ("orders-worker".into(), "17".into())]);
    let worker = request.for_target(&request.targets()[1]);
    assert_eq!(
        (worker.function.as_str(), worker.is_release(), &worker.strategy),
        ("orders-worker", false, &request.strategy)
    );
    // Written back as a person writes it: the list, and no single-function fields.
    let written = request.as_written();
    assert!(written.get("function").is_none() && written["functions"].as_array().unwrap().len() == 2, "{written}");
    assert_eq!(parse_request(&written).unwrap(), request);
    let single = parse_request(&base()).unwrap();
    assert_eq!((single.is_release(), single.targets().len()), (false, 1));
    assert!(single.as_written().get("functions").is_none());
}

#[test]
fn a_release_is_refused_naming_the_entry_and_the_fix() {
    let entry = |f: &str, a: &str, v: &str| json!({"function": f, "alias": a, "version": v});
    refused(with(release(), "function", json!("orders-api")), &["function"]);
    refused(with(with(release(), "alias", json!("live")), "version", json!("3")), &["alias", "version"]);
    refused(json!({"functions": [entry("orders-api", "live", "2")]}), &["functions"]);
    refused(json!({"functions": []}), &["functions"]);
    let eleven: Vec<Value> = (0..11).map(|i| entry(&format!("f{i}"), "live", "2")).collect();
    refused(json!({"functions": eleven}), &["functions"]);
    let ten: Vec<Value> = (0..10).map(|i| entry(&format!("f{i}"), "live", "2")).collect();
    assert_eq!(parse_request(&json!({"functions": ten})).unwrap().targets().len(), 10);
    refused(
        json!({"functions": [entry("orders-api", "live", "2"), entry("orders-worker", "7", "$LATEST")]}),
        &["functions[1].alias", "functions[1].version"],
    );
    refused(
        json!({"functions": [entry("orders-api", "live", "2"), {"function": "w"}]}),
        &["functions[1].alias", "functions[1].version"],
    );
    // The same function and alias twice, once by name and once by ARN; another alias of it is a distinct entry.
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api";
    refused(json!({"functions": [entry("orders-api", "live", "2"), entry(arn, "live", "3")]}), &["functions[1]"]);
    assert!(parse_request(&json!({"functions": [entry("orders-api", "live", "2"), entry(arn, "beta", "3")]})).is_ok());
    refused(
        json!({"functions": [entry("orders-api", "live", "2"), {"function": "w", "alias": "l", "version": "1", "weight": 1}]}),
        &["functions[1].weight"],
    );
    // A hook cannot be one of the release's functions.
    refused(with(release(), "hooks", json!({"pre_traffic": "orders-worker"})), &["hooks.pre_traffic"]);
}

/// A function's ARN for Lambda's tag calls: an ARN as given, a name in the execution's partition, region and
/// account, none without an execution ARN.
#[test]
fn function_arns_come_from_the_execution_when_a_name_is_given() {
    use canary_core::request::function_arn;
    let execution = "arn:aws-cn:states:cn-north-1:123456789012:execution:canary-rollout:x";
    assert_eq!(function_arn("orders", execution).unwrap(), "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders");
    let given = "arn:aws:lambda:eu-west-1:1:function:orders";
    assert_eq!(function_arn(given, execution).unwrap(), given);
    assert_eq!(function_arn("orders", "direct"), None);
}
