//! A release: several functions moved, judged and rolled back together (`functions` in the request).
//!
//! A release's state is one rollout: its own fields hold the first function's part and everything the
//! functions share (the step, the hold, `next`, hooks, gates, the report); [`Member`] holds each other
//! function with its [`Part`], the fields that are a function's own. A task works on each function through a
//! single-function view of the state ([`Rollout::function_views`], in the request's order) with the single-function logic unchanged, in the request's order, and then
//! [`Rollout::combine`] decides for the release: any function failing rolls all back, any function holding
//! holds all, and the release moves on only when every function may. Every function moves to the same
//! weight at each step, so the state machine, its loop and its history budget are those of one rollout.

use super::check::Before;
use super::report::{FunctionReport, Outcome};
use super::routing::Routing;
use super::step::{HISTORY_LIMIT, StepRecord};
use super::{LiveFacts, Next, Rollout};
use crate::health::Failure;
use crate::refusal::{FieldError, Refusal};
use crate::request::{RolloutRequest, Target, function_name_of};
use crate::sequential::Evidence;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The part of a rollout's state that is one function's own: where its alias was and is, its lock, and
/// what was judged of it. A rollout keeps its first function's part in its own fields (the wire format
/// of a rollout of one function), and each other function's in [`Member`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub old_version: String,
    pub original: Routing,
    pub revision_id: String,
    pub original_description: String,
    pub lock: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StepRecord>,
    #[serde(default)]
    pub history_omitted: usize,
}

/// One function of a release: which function, alias and version, and its [`Part`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub function: String,
    pub alias: String,
    pub version: String,
    #[serde(flatten)]
    pub part: Part,
}

impl Member {
    /// The function of a single-function view, with its part.
    fn of(view: &Rollout) -> Member {
        Member {
            function: view.request.function.clone(),
            alias: view.request.alias.clone(),
            version: view.request.version.clone(),
            part: view.own_part(),
        }
    }

    fn target(&self) -> Target {
        Target { function: self.function.clone(), alias: self.alias.clone(), version: self.version.clone() }
    }
}

impl Rollout {
    /// How many functions the rollout moves: 1, or a release's.
    pub fn width(&self) -> usize {
        1 + self.members.len()
    }

    /// Every function of the rollout, in the request's order, each with its part: the first's is the
    /// rollout's own fields, the others' are [`Rollout::members`].
    fn functions(&self) -> Vec<Member> {
        std::iter::once(Member::of(self)).chain(self.members.iter().cloned()).collect()
    }

    /// Puts every function's part in its place: the first in the rollout's own fields, the others as members.
    fn set_functions(&mut self, functions: Vec<Member>) {
        let mut functions = functions.into_iter();
        let first = functions.next().expect("a rollout has a function");
        self.take_part(first.part);
        self.members = functions.collect();
    }

    /// The single-function view of function `index`, in the request's order (as [`Rollout::function_views`]
    /// lists them): the rollout of that function alone, at the release's step, with its own alias, revision,
    /// lock and evidence.
    ///
    /// # Panics
    /// When `index` is not below [`Rollout::width`].
    pub fn function_view(&self, index: usize) -> Rollout {
        let function = self.functions().swap_remove(index);
        self.view_of(function)
    }

    /// The rollout of `function` alone.
    fn view_of(&self, function: Member) -> Rollout {
        let mut view = Rollout { members: Vec::new(), ..self.clone() };
        view.request = self.request.for_target(&function.target());
        view.take_part(function.part);
        view
    }

    /// This rollout's own part: its first function's.
    fn own_part(&self) -> Part {
        Part {
            old_version: self.old_version.clone(),
            original: self.original.clone(),
            revision_id: self.revision_id.clone(),
            original_description: self.original_description.clone(),
            lock: self.lock.clone(),
            provisioned_concurrency: self.provisioned_concurrency,
            before: self.before,
            evidence: self.evidence.clone(),
            history: self.history.clone(),
            history_omitted: self.history_omitted,
        }
    }

    /// Puts a function's own part of the state in place (its request fields aside).
    fn take_part(&mut self, part: Part) {
        self.old_version = part.old_version;
        self.original = part.original;
        self.revision_id = part.revision_id;
        self.original_description = part.original_description;
        self.lock = part.lock;
        self.provisioned_concurrency = part.provisioned_concurrency;
        self.before = part.before;
        self.evidence = part.evidence;
        self.history = part.history;
        self.history_omitted = part.history_omitted;
    }

    /// Every function's view, in the request's order.
    pub fn function_views(&self) -> Vec<Rollout> {
        self.functions().into_iter().map(|function| self.view_of(function)).collect()
    }

    /// Takes the function's own part of `view` into function `index`'s place (in the request's order).
    fn absorb(&mut self, index: usize, view: &Rollout) {
        let mut functions = self.functions();
        functions[index] = Member::of(view);
        self.set_functions(functions);
    }

    /// The release's state after a task carried each function's view (`views`, in order) through the same
    /// step: the first function to fail fails the release, its failure naming the function; otherwise a
    /// function that holds (to look again, or to wait for traffic or out a shared outage) holds them all,
    /// for the shortest of their waits; otherwise they agree on what comes next. Each function keeps its
    /// own part, its step records cut to its share of the history the state keeps. A rollout of one
    /// function is its view.
    ///
    /// # Panics
    /// When `views` are not one per function.
    pub fn combine(self, views: Vec<Rollout>) -> Rollout {
        assert_eq!(views.len(), self.width(), "one view per function");
        if self.members.is_empty() {
            return views.into_iter().next().expect("one view");
        }
        let failing = views.iter().position(|v| v.next == Next::Rollback);
        let holding =
            views.iter().enumerate().filter(|(_, v)| v.next == Next::Hold).min_by_key(|(_, v)| v.wait_seconds);
        let deciding = failing.or(holding.map(|(i, _)| i)).unwrap_or(0);
        let base = &views[deciding];
        let mut release = Rollout {
            request: self.request.clone(),
            members: self.members.clone(),
            report: None,
            outage_held_seconds: views.iter().map(|v| v.outage_held_seconds).max().unwrap_or_default(),
            waited_for_data_seconds: views.iter().map(|v| v.waited_for_data_seconds).max().unwrap_or_default(),
            ..base.clone()
        };
        if let Some(failure) = base.failure.as_ref().filter(|f| Some(*f) != self.failure.as_ref()) {
            let function = function_name_of(&base.request.function);
            release.failure = Some(Failure { message: format!("{function}: {}", failure.message), ..failure.clone() });
        }
        for (index, view) in views.iter().enumerate() {
            release.absorb(index, view);
        }
        release.keep_share_of_history();
        if let Some(report) = &base.report {
            // Every function ends together, so the first's view has its own report too.
            let first = views[0].report.as_ref().map_or(&report.routing, |r| &r.routing);
            release.report = Some(release.report(report.outcome, first.clone(), report.finished_at));
        }
        release
    }

    /// Each function of a release keeps its share of [`HISTORY_LIMIT`] step records; the older are counted.
    fn keep_share_of_history(&mut self) {
        let share = (HISTORY_LIMIT / self.width()).max(1);
        let cut = |history: &mut Vec<StepRecord>, omitted: &mut usize| {
            let extra = history.len().saturating_sub(share);
            history.drain(..extra);
            *omitted += extra;
        };
        cut(&mut self.history, &mut self.history_omitted);
        for member in &mut self.members {
            cut(&mut member.part.history, &mut member.part.history_omitted);
        }
    }

    /// Each function of the report: its alias, both versions and the routing it was left with.
    pub(super) fn function_reports(&self, outcome: Outcome, first: &Routing) -> Vec<FunctionReport> {
        if self.members.is_empty() {
            return Vec::new();
        }
        let routing = |member: &Member| match outcome {
            Outcome::Promoted => Routing::to_version(&member.version),
            _ => member.part.original.clone(),
        };
        let first = FunctionReport {
            function: self.request.function.clone(),
            alias: self.request.alias.clone(),
            old_version: self.old_version.clone(),
            new_version: self.request.version.clone(),
            routing: first.clone(),
        };
        let others = self.members.iter().map(|m| FunctionReport {
            function: m.function.clone(),
            alias: m.alias.clone(),
            old_version: m.part.old_version.clone(),
            new_version: m.version.clone(),
            routing: routing(m),
        });
        std::iter::once(first).chain(others).collect()
    }

    /// Checks a request against what the live account holds for each of its functions (`facts`, one per
    /// function in the request's order) and starts the rollout, or refuses it naming every problem, a
    /// function's own fields as `functions[i].function`, `.alias` and `.version`. Nothing is locked here: the
    /// handler takes the locks ([`Rollout::lock_order`]).
    pub fn prepare_all(
        request: RolloutRequest,
        facts: Vec<LiveFacts>,
        execution: &str,
        now: DateTime<Utc>,
    ) -> Result<Rollout, Refusal> {
        if !request.is_release() {
            let facts = facts.into_iter().next().expect("the facts of the function");
            return Rollout::prepare(request, facts, execution, now);
        }
        let mut views = Vec::new();
        let mut errors: Vec<FieldError> = Vec::new();
        for (index, (target, facts)) in request.targets().iter().zip(facts).enumerate() {
            match Rollout::prepare(request.for_target(target), facts, execution, now) {
                Ok(view) => views.push(view),
                Err(refusal) => {
                    for mut error in refusal.errors {
                        if ["function", "alias", "version"].contains(&error.field.as_str()) {
                            error.field = format!("functions[{index}].{}", error.field);
                        }
                        if !errors.contains(&error) {
                            errors.push(error);
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(Refusal { errors });
        }
        let mut views = views.into_iter();
        let first = views.next().expect("a release has functions");
        let members = views.map(|view| Member::of(&view)).collect();
        Ok(Rollout { request, members, ..first })
    }

    /// The order a release takes its aliases' locks in (indices of [`Rollout::function_view`]): by function name,
    /// then alias, the same for every release, so that two releases sharing functions cannot each hold one
    /// the other waits for.
    pub fn lock_order(&self) -> Vec<usize> {
        let targets = self.request.targets();
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by(|a, b| {
            let key = |t: &Target| (function_name_of(&t.function).to_string(), t.alias.clone());
            key(&targets[*a]).cmp(&key(&targets[*b]))
        });
        order
    }

    /// A release's functions as its hook payload and its events name them: each one's function, alias and
    /// both versions; none for a rollout of one function.
    pub fn functions_named(&self) -> Vec<crate::notice::Named> {
        if self.members.is_empty() {
            return Vec::new();
        }
        self.functions()
            .into_iter()
            .map(|m| crate::notice::Named {
                function: m.function,
                alias: m.alias,
                old_version: m.part.old_version,
                new_version: m.version,
            })
            .collect()
    }

    /// The release with function `index`'s view put back after a task that changed it alone (its lock).
    pub fn with_function_view(mut self, index: usize, view: &Rollout) -> Rollout {
        self.absorb(index, view);
        self
    }
}
