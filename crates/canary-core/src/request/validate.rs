//! Checking a request read from JSON: every field in range, every relation between fields, the whole rollout
//! inside Step Functions' limits; every problem collected so that one refusal names them all.

use super::arn::{check_function, function_name_of, is_name};
use super::json::{RawRequest, RawTarget};
use super::policy::check_health;
use super::strategy::check_strategy;
use super::{
    Approval, HealthPolicy, Hooks, MAX_RELEASE_FUNCTIONS, MAX_ROLLOUT_SECONDS, NoData, RolloutRequest, Strategy, Target,
};
use crate::budget::{self, duration_text};
use crate::refusal::{Problems, Refusal};
use crate::schedule::{MAX_STEPS, Schedule};

pub(super) fn validate(raw: RawRequest, mut problems: Problems) -> Result<RolloutRequest, Refusal> {
    let (target, functions) = match raw.functions {
        Some(entries) => {
            for (field, given) in [("function", &raw.function), ("alias", &raw.alias), ("version", &raw.version)] {
                if given.is_some() {
                    problems.add(
                        field,
                        "is given beside functions",
                        format!(
                            "give each function's {field} in its entry of functions, or one function without functions"
                        ),
                    );
                }
            }
            let functions = check_release(&mut problems, entries);
            (functions.first().cloned(), functions)
        }
        None => (check_target(&mut problems, "", raw.function, raw.alias, raw.version), Vec::new()),
    };
    let named = if functions.is_empty() { target.iter().cloned().collect() } else { functions.clone() };
    let functions_named: Vec<String> = named.into_iter().map(|t| t.function).collect();
    let strategy = check_strategy(&mut problems, raw.strategy);
    let health = check_health(&mut problems, raw.health.unwrap_or_default());
    let hooks =
        raw.hooks.map_or_else(Hooks::default, |h| Hooks { pre_traffic: h.pre_traffic, post_traffic: h.post_traffic });
    check_hooks(&mut problems, &hooks, &functions_named);
    let approval = Approval { before_percent: raw.approval.and_then(|a| a.before_percent).unwrap_or_default() };
    check_approval(&mut problems, &approval, strategy.as_ref());
    if let (Some(strategy), Some(health)) = (&strategy, &health) {
        check_something_is_judged(&mut problems, strategy, health);
    }
    problems.into_result(())?;
    // Every part that is None added a problem above, so past this point all are present.
    let target = target.unwrap_or_default();
    let request = RolloutRequest {
        function: target.function,
        alias: target.alias,
        version: target.version,
        functions,
        strategy: strategy.unwrap_or_default(),
        health: health.unwrap_or_default(),
        hooks,
        approval,
    };
    check_history_budget(&request)?;
    check_time_budget(&request)?;
    Ok(request)
}

/// Each hook is a function, and not one being rolled out.
fn check_hooks(problems: &mut Problems, hooks: &Hooks, functions: &[String]) {
    for (name, value) in [("hooks.pre_traffic", &hooks.pre_traffic), ("hooks.post_traffic", &hooks.post_traffic)] {
        let Some(value) = value else { continue };
        check_function(problems, name, value);
        // A hook tests the rollout from outside; the function being rolled out cannot vouch for itself.
        if functions.iter().any(|f| function_name_of(f) == function_name_of(value)) {
            problems.add(
                name,
                format!("\"{value}\" is the function being rolled out"),
                "give a separate hook function (for example one that calls the new version's health route)",
            );
        }
    }
}

/// Each gate stands before a step of the schedule, once. Without a valid strategy only the count is checked.
fn check_approval(problems: &mut Problems, approval: &Approval, strategy: Option<&Strategy>) {
    if approval.before_percent.len() > MAX_STEPS {
        problems.add(
            "approval.before_percent",
            format!("{} gates, more than a rollout has steps ({MAX_STEPS} at most)", approval.before_percent.len()),
            "gate each step at most once",
        );
        return;
    }
    let Some(strategy) = strategy else { return };
    let steps = Schedule::from_strategy(strategy).steps;
    let mut seen = std::collections::HashSet::new();
    for (i, percent) in approval.before_percent.iter().enumerate() {
        if !seen.insert(percent.to_bits()) {
            problems.add(
                format!("approval.before_percent[{i}]"),
                format!("{percent} is listed twice"),
                "list each gated step once",
            );
        } else if !steps.iter().any(|s| crate::schedule::same_percent(s.percent, *percent)) {
            let shown: Vec<String> = steps.iter().take(10).map(|s| format!("{}", s.percent)).collect();
            problems.add(
                format!("approval.before_percent[{i}]"),
                format!("{percent} is not a step of this rollout's schedule"),
                format!("use one of its steps: {}{}", shown.join(", "), if steps.len() > 10 { ", ..." } else { "" }),
            );
        }
    }
}

/// With health checks on, at least one step is held, and so judged: otherwise the policy could never fail a
/// version, even one failing every call (`all_at_once` without a bake, or `linear` 100%).
fn check_something_is_judged(problems: &mut Problems, strategy: &Strategy, health: &HealthPolicy) {
    if health.enabled && Schedule::from_strategy(strategy).steps.iter().all(|s| s.hold_seconds == 0) {
        problems.add(
            "strategy",
            "holds no step, so the health checks would never run and a version failing every call would be promoted",
            "hold the new version: all_at_once with bake_seconds, or a canary, linear (below 100%) or steps \
             strategy; or turn the checks off on purpose with health.enabled: false",
        );
    }
}

/// Refuses a request whose execution could, in the worst case it allows, run past Step Functions' limit of a
/// year (then the execution times out part-way), naming each field that adds to it.
fn check_time_budget(request: &RolloutRequest) -> Result<(), Refusal> {
    let time = budget::durations(request);
    if time.worst() <= MAX_ROLLOUT_SECONDS {
        return Ok(());
    }
    let mut problems = Problems::default();
    let what = format!(
        "at worst this rollout runs {}, longer than the {} a Step Functions execution may run (a year, less a day \
         kept for retries and the rollback)",
        duration_text(time.worst()),
        duration_text(MAX_ROLLOUT_SECONDS)
    );
    let steps = request.schedule().len();
    problems.add(
        "strategy",
        format!("{what}; its {steps} steps hold traffic {} in all", duration_text(time.holds)),
        "use fewer steps or shorter holds",
    );
    let health = &request.health;
    if time.metrics_delays > 0 {
        problems.add(
            "health.metrics_delay_seconds",
            format!(
                "each held step waits {} s more for complete metrics: {} in all",
                health.metrics_delay_seconds,
                duration_text(time.metrics_delays)
            ),
            "lower it (Lambda's metrics typically arrive about 120 s late)",
        );
    }
    if time.no_data_waits > 0 {
        problems.add(
            "health.no_data_max_wait_seconds",
            format!("the step before the promotion may wait {} more for traffic", duration_text(time.no_data_waits)),
            "lower it, or set health.no_data to \"fail\"",
        );
    }
    if time.outage_waits > 0 {
        problems.add(
            "health.max_shared_outage_seconds",
            format!("steps may be held {} more through outages both versions share", duration_text(time.outage_waits)),
            "lower it",
        );
    }
    if time.gates > 0 {
        problems.add(
            "approval.before_percent",
            format!(
                "each of its {} approval gates may wait {} for an answer: {} in all",
                request.approval.before_percent.len(),
                duration_text(budget::GATE_TIMEOUT_SECONDS),
                duration_text(time.gates)
            ),
            "gate fewer steps",
        );
    }
    problems.into_result(())
}

/// Refuses a request whose execution could, in the worst case it allows, outgrow Step Functions' history
/// limit, naming each field that adds to it.
fn check_history_budget(request: &RolloutRequest) -> Result<(), Refusal> {
    let costs = budget::worst_case_events(request);
    if costs.fits() {
        return Ok(());
    }
    let mut problems = Problems::default();
    let usable = budget::HISTORY_EVENT_LIMIT - budget::RETRY_RESERVE;
    let what = format!(
        "in the worst case this rollout writes {} Step Functions history events, more than the {usable} it may \
         use (an execution stops at {}; {} are kept for retries)",
        costs.total(),
        budget::HISTORY_EVENT_LIMIT,
        budget::RETRY_RESERVE
    );
    let steps = request.schedule().len();
    problems.add(
        "strategy",
        format!("{what}; its {steps} steps cost up to {}", costs.steps),
        "use fewer steps (a larger percent per step, or fewer listed steps)",
    );
    let health = &request.health;
    if let Some(interval) = health.check_interval_seconds.filter(|_| health.enabled) {
        problems.add(
            "health.check_interval_seconds",
            format!("each held step is looked at every {interval} s (9 events a look)"),
            "look less often, e.g. every 60 s (CloudWatch's resolution)",
        );
    }
    if health.enabled && health.no_data == NoData::Wait {
        problems.add(
            "health.no_data_max_wait_seconds",
            format!(
                "while it waits for traffic before the promotion, the last held step may be checked again up to {} \
                 times (9 events each)",
                budget::MAX_RECHECKS
            ),
            "lower it to 0, or set health.no_data to \"fail\"",
        );
    }
    if costs.gates > 0 {
        problems.add(
            "approval.before_percent",
            format!("its {} approval gates cost {} events", request.approval.before_percent.len(), costs.gates),
            "gate fewer steps",
        );
    }
    problems.into_result(())
}

pub(super) fn required(problems: &mut Problems, field: &str, value: Option<String>, example: &str) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v),
        Some(_) => {
            problems.add(field, "is empty", format!("give {example}"));
            None
        }
        None => {
            problems.add(field, "is missing", format!("give {example}"));
            None
        }
    }
}

/// One function's name, alias and version, its fields named after `prefix` (`functions[1].` in a release).
fn check_target(
    problems: &mut Problems,
    prefix: &str,
    function: Option<String>,
    alias: Option<String>,
    version: Option<String>,
) -> Option<Target> {
    let field = |name: &str| format!("{prefix}{name}");
    let function = required(problems, &field("function"), function, "the function's name or ARN, e.g. \"orders-api\"");
    let alias = required(problems, &field("alias"), alias, "the alias that carries production traffic, e.g. \"live\"");
    let version = required(problems, &field("version"), version, "a published version number, e.g. \"42\"");
    if let Some(function) = &function {
        check_function(problems, &field("function"), function);
    }
    if let Some(alias) = &alias {
        check_alias(problems, &field("alias"), alias);
    }
    if let Some(version) = &version {
        check_version(problems, &field("version"), version);
    }
    Some(Target { function: function?, alias: alias?, version: version? })
}

/// A release's functions: 2 to [`MAX_RELEASE_FUNCTIONS`], each checked as one function is, no function and
/// alias twice.
fn check_release(problems: &mut Problems, entries: Vec<RawTarget>) -> Vec<Target> {
    let count = entries.len();
    if !(2..=MAX_RELEASE_FUNCTIONS).contains(&count) {
        problems.add(
            "functions",
            format!("gives {count} functions; a release moves 2 to {MAX_RELEASE_FUNCTIONS}"),
            if count < 2 {
                "for one function give function, alias and version instead of functions"
            } else {
                "split the release into several of at most 10 functions"
            },
        );
    }
    let mut targets: Vec<Target> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let prefix = format!("functions[{i}].");
        let Some(target) = check_target(problems, &prefix, entry.function, entry.alias, entry.version) else {
            continue;
        };
        let same = |t: &&Target| {
            function_name_of(&t.function) == function_name_of(&target.function) && t.alias == target.alias
        };
        if let Some(earlier) = targets.iter().find(same) {
            problems.add(
                format!("functions[{i}]"),
                format!(
                    "repeats {}:{}, given earlier in functions",
                    function_name_of(&earlier.function),
                    earlier.alias
                ),
                "give each function and alias once: one alias cannot carry two versions' rollouts",
            );
        }
        targets.push(target);
    }
    targets
}

fn check_alias(problems: &mut Problems, field: &str, alias: &str) {
    if !is_name(alias, 128) || alias.chars().all(|c| c.is_ascii_digit()) {
        problems.add(
            field,
            format!("\"{alias}\" is not a valid alias name"),
            "use 1 to 128 letters, digits, '-' or '_', not only digits (e.g. \"live\")",
        );
    }
}

fn check_version(problems: &mut Problems, field: &str, version: &str) {
    if version == "$LATEST" {
        problems.add(
            field,
            "$LATEST is mutable, so a rollout of it cannot be verified or rolled back",
            "publish a version (aws lambda publish-version) and give its number",
        );
    } else if version.starts_with('0') || !version.chars().all(|c| c.is_ascii_digit()) || version.len() > 10 {
        problems.add(
            field,
            format!("\"{version}\" is not a published version number"),
            "give the number PublishVersion returned, e.g. \"42\"",
        );
    }
}

pub(super) fn required_number<T>(problems: &mut Problems, field: &str, value: Option<T>, example: &str) -> Option<T> {
    if value.is_none() {
        problems.add(field, "is missing", format!("give a number, e.g. {example}"));
    }
    value
}
