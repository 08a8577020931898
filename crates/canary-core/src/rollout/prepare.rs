//! Starting a rollout: the request checked against what the live account holds, the original routing and
//! description recorded, and the alias's lock planned. Nothing moves here.

use super::routing::{AliasState, MovePlan};
use super::{Next, Rollout};
use crate::deployment::Deployment;
use crate::health::AlarmState;
use crate::lock;
use crate::refusal::{Problems, Refusal};
use crate::request::RolloutRequest;
use chrono::{DateTime, Utc};

/// What Lambda requires to be equal of two versions that share a weighted alias (besides both being
/// published): their execution role and their dead-letter target; and whether the version can serve at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionConfig {
    pub role: String,
    pub dead_letter_target: Option<String>,
    /// Lambda's `State` of the version: only an `Active` one can be invoked.
    pub state: VersionState,
}

/// Lambda's state of a function version (`State` of GetFunctionConfiguration): whether it can be invoked now.
/// An invocation of a version that is not `Active` fails, so traffic routed to it fails.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionState {
    /// It can be invoked (and a version Lambda reports no state for is taken to be).
    #[default]
    Active,
    /// Lambda is still creating its resources (right after publishing, or reactivating an inactive one).
    Pending,
    /// Idle long enough for Lambda to reclaim its resources: the next invocation fails and starts reactivating it.
    Inactive,
    /// Its resources could not be created; it will never serve.
    Failed,
    /// A state this controller does not know, as Lambda named it.
    Other(String),
}

impl VersionState {
    /// Lambda's name of the state, as GetFunctionConfiguration gives it; `None` (no state given) is `Active`.
    pub fn from_lambda(state: Option<&str>) -> VersionState {
        match state {
            None | Some("Active") => VersionState::Active,
            Some("Pending") => VersionState::Pending,
            Some("Inactive") => VersionState::Inactive,
            Some("Failed") => VersionState::Failed,
            Some(other) => VersionState::Other(other.to_string()),
        }
    }

    /// Lambda's name of the state.
    pub fn name(&self) -> &str {
        match self {
            VersionState::Active => "Active",
            VersionState::Pending => "Pending",
            VersionState::Inactive => "Inactive",
            VersionState::Failed => "Failed",
            VersionState::Other(name) => name,
        }
    }

    /// Why a version in this state cannot take traffic now, and what to do, or `None` when it is `Active`.
    ///
    /// ```
    /// use canary_core::rollout::VersionState;
    /// assert_eq!(VersionState::Active.not_serving("orders", "7"), None);
    /// let (what, fix) = VersionState::Pending.not_serving("orders", "7").unwrap();
    /// assert!(what.contains("orders version 7 is Pending") && fix.contains("wait"), "{what}: {fix}");
    /// ```
    pub fn not_serving(&self, function: &str, version: &str) -> Option<(String, String)> {
        let fix = match self {
            VersionState::Active => return None,
            VersionState::Pending => format!(
                "wait until it is Active (aws lambda wait function-active-v2 --function-name {function} --qualifier \
                 {version}), then start again"
            ),
            VersionState::Inactive => format!(
                "invoke it once to have Lambda reactivate it, wait until it is Active (aws lambda wait \
                 function-active-v2 --function-name {function} --qualifier {version}), or publish it again"
            ),
            VersionState::Failed => {
                "Lambda could not create its resources (get-function-configuration shows StateReason): fix that \
                 and publish a new version"
                    .to_string()
            }
            VersionState::Other(_) => {
                format!(
                    "check it with aws lambda get-function-configuration --function-name {function} --qualifier {version}"
                )
            }
        };
        Some((
            format!(
                "{function} version {version} is {}, not Active: Lambda fails every invocation routed to it",
                self.name()
            ),
            fix,
        ))
    }

    /// What a rollback (or any restore) says when the version it put back cannot serve now: the alias is still
    /// restored exactly (that is the contract), and the operator told why its traffic fails.
    ///
    /// ```
    /// use canary_core::rollout::VersionState;
    /// assert_eq!(VersionState::Active.restored_warning("orders", "41"), None);
    /// let warning = VersionState::Inactive.restored_warning("orders", "41").unwrap();
    /// assert!(warning.starts_with("restored to orders version 41, which is Inactive"), "{warning}");
    /// ```
    pub fn restored_warning(&self, function: &str, version: &str) -> Option<String> {
        let (_, fix) = self.not_serving(function, version)?;
        Some(format!(
            "restored to {function} version {version}, which is {}: Lambda fails the invocations routed to it until \
             it is Active; {fix}",
            self.name()
        ))
    }
}

/// What the live account says about the request's names, read by the prepare Lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFacts {
    pub function_exists: bool,
    pub version_exists: bool,
    /// The configuration of the request's version and of every version the alias routes to, where read:
    /// Lambda refuses a weighted alias over versions whose role or dead-letter target differ.
    pub versions: std::collections::BTreeMap<String, VersionConfig>,
    /// The provisioned concurrency configured on the alias, if any.
    pub provisioned_concurrency: Option<u32>,
    pub alias: Option<AliasState>,
    /// The request's alarms that exist, with their states.
    pub alarms: Vec<AlarmState>,
    /// The request's hook functions that do not exist.
    pub missing_hooks: Vec<String>,
    /// The rollout lock the alias carries, if any, and whether its execution still runs.
    pub lock: Option<lock::Held>,
    /// Where the controller runs: what a window needs to be complete there.
    pub deployment: Deployment,
}

impl LiveFacts {
    /// A healthy account, as the tests, the benches and canaryctl's models start from: the function and the
    /// version exist, the alias routes everything to `version` (revision `r0`, no description), nothing holds
    /// it, no hook or alarm is missing, and the controller runs where `deployment` says.
    ///
    /// ```
    /// use canary_core::{LiveFacts, Routing, deployment::Deployment};
    /// let facts = LiveFacts::healthy("41", Deployment::AWS);
    /// assert_eq!(facts.alias.unwrap().routing, Routing::to_version("41"));
    /// ```
    pub fn healthy(version: &str, deployment: Deployment) -> LiveFacts {
        LiveFacts {
            function_exists: true,
            version_exists: true,
            versions: Default::default(),
            provisioned_concurrency: None,
            alias: Some(AliasState {
                routing: super::Routing::to_version(version),
                revision_id: "r0".into(),
                description: String::new(),
            }),
            alarms: Vec::new(),
            missing_hooks: Vec::new(),
            lock: None,
            deployment,
        }
    }
}

impl Rollout {
    /// Checks the request against the live account and starts the rollout, or refuses it with the
    /// alias untouched.
    /// `execution` is the ARN of the execution preparing it, whose marker will hold the alias.
    pub fn prepare(
        request: RolloutRequest,
        facts: LiveFacts,
        execution: &str,
        now: DateTime<Utc>,
    ) -> Result<Rollout, Refusal> {
        check_location(&request, execution)?;
        facts.deployment.check(&request)?;
        let provisioned_concurrency = facts.provisioned_concurrency;
        let (alias, original_description) = check_facts(&request, facts, execution)?;
        let schedule = request.schedule();
        let rollout = Rollout {
            old_version: alias.routing.function_version.clone(),
            original: alias.routing,
            revision_id: alias.revision_id,
            lock: lock::marker(execution, &original_description),
            original_description,
            step: None,
            step_count: schedule.len(),
            step_started_at: None,
            waited_for_data_seconds: 0,
            wait_seconds: 0,
            started_at: now,
            history: Vec::new(),
            history_omitted: 0,
            hooks_run: Vec::new(),
            approved: Vec::new(),
            skip_to_final: false,
            paused_since: None,
            failure: None,
            report: None,
            decision: None,
            error: None,
            before: None,
            outage_held_seconds: 0,
            evidence: None,
            provisioned_concurrency,
            members: Vec::new(),
            next: Next::Shift,
            request,
        };
        Ok(if rollout.request.hooks.pre_traffic.is_some() {
            Rollout { next: Next::PreTraffic, ..rollout }
        } else {
            rollout.go_to_next_move()
        })
    }

    /// How the alias's provisioned concurrency is shared during the rollout, when it has some
    /// ([`crate::budget::provisioned_split`]).
    pub fn provisioned_note(&self) -> Option<String> {
        self.provisioned_concurrency.map(|n| crate::budget::provisioned_split(&self.request, n))
    }

    /// What `Prepare` writes to hold the alias: its lock marker, the routing unchanged, on condition that
    /// the alias is still at the revision it read. A retried `Prepare` finds its own marker and writes nothing.
    pub fn plan_lock(&self, live: &AliasState) -> MovePlan {
        if live.description == self.lock {
            MovePlan::AlreadyDone
        } else if live.revision_id == self.revision_id {
            MovePlan::Write {
                routing: live.routing.clone(),
                description: self.lock.clone(),
                revision_id: live.revision_id.clone(),
            }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" changed while the rollout was being prepared (it now routes {})",
                self.request.alias, live.routing
            ))
        }
    }

    /// Records the lock `Prepare` wrote (or found already written by its earlier attempt): the alias is held
    /// as of `revision_id`.
    pub fn after_lock(mut self, revision_id: String) -> Rollout {
        self.revision_id = revision_id;
        self
    }
}

/// A function in another account or region than the controller's cannot be rolled out by it: its alias is out
/// of reach and its metrics would be read where it does not run. The same holds for its hooks.
fn check_location(request: &RolloutRequest, execution: &str) -> Result<(), Refusal> {
    let Some(here) = crate::request::arn_location(execution) else { return Ok(()) };
    let mut elsewhere = Problems::default();
    let fields = [
        ("function", Some(&request.function)),
        ("hooks.pre_traffic", request.hooks.pre_traffic.as_ref()),
        ("hooks.post_traffic", request.hooks.post_traffic.as_ref()),
    ];
    for (field, arn) in fields {
        if let Some(there) = arn.and_then(|a| crate::request::arn_location(a)).filter(|there| *there != here) {
            elsewhere.add(
                field,
                format!(
                    "is in {} account {} (partition {}), but this controller runs in {} account {}",
                    there.1, there.2, there.0, here.1, here.2
                ),
                "deploy the controller where the function runs, or give a function of this account and region",
            );
        }
    }
    elsewhere.into_result(())
}

/// Lambda's rules for a weighted alias, checked before anything moves: the new version must share the
/// execution role and the dead-letter target of every version the alias routes to, or the first shift would
/// be refused part-way into the rollout.
fn check_shareable(
    problems: &mut Problems,
    request: &RolloutRequest,
    alias: &AliasState,
    versions: &std::collections::BTreeMap<String, VersionConfig>,
) {
    let Some(new) = versions.get(&request.version) else { return };
    let routed =
        std::iter::once(&alias.routing.function_version).chain(alias.routing.additional_version_weights.keys());
    for old_version in routed.filter(|v| **v != request.version) {
        let Some(old) = versions.get(old_version) else { continue };
        let function = &request.function;
        if old.role != new.role {
            problems.add(
                "version",
                format!(
                    "{function} version {} runs as role {} but version {old_version}, which {} routes to, as {}: Lambda \
                     refuses an alias weighted over versions with different execution roles",
                    request.version, new.role, request.alias, old.role
                ),
                "publish the new version with the same role (or move the alias to a version with the new role first)",
            );
        }
        if old.dead_letter_target != new.dead_letter_target {
            let show = |t: &Option<String>| t.clone().unwrap_or_else(|| "none".into());
            problems.add(
                "version",
                format!(
                    "{function} version {} has dead-letter target {} but version {old_version} has {}: Lambda refuses \
                     an alias weighted over versions with different dead-letter configurations",
                    request.version,
                    show(&new.dead_letter_target),
                    show(&old.dead_letter_target)
                ),
                "publish the new version with the same DeadLetterConfig as the one live",
            );
        }
    }
}

/// Checks the request against what the account holds. A missing function is the only problem reported (nothing
/// else can be looked at), a missing alias ends the checks (nothing about routing can be said); every other
/// problem is reported together. Returns the alias and the description to put back when the rollout ends.
fn check_facts(request: &RolloutRequest, facts: LiveFacts, execution: &str) -> Result<(AliasState, String), Refusal> {
    let function = &request.function;
    if !facts.function_exists {
        return Err(Refusal::one(
            "function",
            format!("no function \"{function}\" exists in this account and region"),
            "check the name, the account and the region (AWS_REGION)",
        ));
    }
    let mut problems = Problems::default();
    if !facts.version_exists {
        problems.add(
            "version",
            format!("\"{function}\" has no published version {}", request.version),
            "publish it first (aws lambda publish-version) or give an existing version",
        );
    }
    let Some(alias) = facts.alias else {
        problems.add(
            "alias",
            format!("\"{function}\" has no alias \"{}\"", request.alias),
            format!("create it first: aws lambda create-alias --function-name {function} --name {} ...", request.alias),
        );
        return Err(problems.into_refusal());
    };
    check_alias_target(&mut problems, request, &alias);
    if let Some((what, fix)) =
        facts.versions.get(&request.version).and_then(|v| v.state.not_serving(function, &request.version))
    {
        problems.add("version", what, fix);
    }
    check_shareable(&mut problems, request, &alias, &facts.versions);
    check_dependencies(&mut problems, request, &facts.alarms, &facts.missing_hooks);
    if let Some(held) = facts.lock.as_ref().filter(|held| held.running && held.execution != execution) {
        problems.add(
            "alias",
            format!("another rollout of {function}:{} is running: {}", request.alias, held.execution),
            format!("wait for it to end, or stop it (canaryctl abort {}) and start again", held.execution),
        );
    }
    // A lock whose execution ended without giving it back: what that execution moved was never judged to the
    // end, so the alias as it is cannot become this rollout's baseline until the ending is handled.
    if let Some(held) = facts.lock.as_ref().filter(|held| !held.running && held.execution != execution) {
        problems.add(
            "alias",
            format!(
                "{function}:{} still carries the lock of {}, which has ended without giving it back (its ending \
                 was not handled yet): what it routes now was not judged to the end",
                request.alias, held.execution
            ),
            format!(
                "canaryctl abort {} restores what it moved and releases the lock (the safety net's sweep does \
                 within minutes of its end); then start again",
                held.execution
            ),
        );
    }
    check_alias_free(&mut problems, request, &alias);
    // The description to put back: the alias's own, or the one our own lock kept (an earlier attempt of this
    // Prepare).
    let original_description =
        lock::holder(&alias.description).map_or(alias.description.as_str(), |(_, original)| original).to_string();
    let (length, room) = (original_description.chars().count(), lock::room_beside(execution));
    if length > room {
        problems.add(
            "alias",
            format!(
                "its description is {length} characters, and the rollout's lock marker beside it would pass the {} \
                 Lambda keeps: it would be cut, and could not be put back whole",
                lock::MAX_DESCRIPTION
            ),
            format!(
                "shorten the alias's description to at most {room} characters (aws lambda update-alias --description)"
            ),
        );
    }
    problems.into_result(())?;
    Ok((alias, original_description))
}

/// The alias points at a published version, and not already at the one to roll out.
fn check_alias_target(problems: &mut Problems, request: &RolloutRequest, alias: &AliasState) {
    let current = &alias.routing.function_version;
    if current == "$LATEST" {
        problems.add(
            "alias",
            format!("\"{}\" points to $LATEST, which cannot share traffic by weight", request.alias),
            "point the alias at a published version first",
        );
    } else if current == &request.version {
        problems.add(
            "version",
            format!("the alias \"{}\" already routes to version {current}", request.alias),
            "give the new version to roll out; there is nothing to do",
        );
    }
}

/// Every alarm the request watches and every hook it calls exists.
fn check_dependencies(
    problems: &mut Problems,
    request: &RolloutRequest,
    alarms: &[AlarmState],
    missing_hooks: &[String],
) {
    for (i, name) in request.health.alarms.iter().enumerate() {
        if !alarms.iter().any(|a| &a.name == name) {
            problems.add(
                format!("health.alarms[{i}]"),
                format!("no CloudWatch alarm named \"{name}\" exists in this account and region"),
                "check the name, or create the alarm first",
            );
        }
    }
    for (field, hook) in
        [("hooks.pre_traffic", &request.hooks.pre_traffic), ("hooks.post_traffic", &request.hooks.post_traffic)]
    {
        if let Some(hook) = hook.as_ref().filter(|h| missing_hooks.contains(h)) {
            problems.add(
                field,
                format!("no function \"{hook}\" exists in this account and region"),
                "deploy the hook function first",
            );
        }
    }
}

/// The alias shares no traffic yet: weights left by another rollout, running or unfinished, are not ours to move.
fn check_alias_free(problems: &mut Problems, request: &RolloutRequest, alias: &AliasState) {
    if !alias.routing.additional_version_weights.is_empty() {
        problems.add(
            "alias",
            format!(
                "\"{}\" already shares traffic ({}): another rollout is running or was left unfinished",
                request.alias, alias.routing
            ),
            "wait for it, or finish it by hand (update-alias with an empty AdditionalVersionWeights)",
        );
    }
}
