//! Where an alias sends traffic, and what each move, the release of the lock and a rollback must write to
//! it: every write conditional on the revision this execution last wrote, never over someone else's change.

use super::{Next, Rollout};
use crate::lock;
use crate::schedule::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alias sends traffic: its version, and the extra versions with their weights (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub function_version: String,
    #[serde(default)]
    pub additional_version_weights: BTreeMap<String, f64>,
}

impl Routing {
    pub fn to_version(version: &str) -> Routing {
        Routing { function_version: version.to_string(), additional_version_weights: BTreeMap::new() }
    }

    /// The share of the traffic `version` gets, in percent: 100 when the alias points at it alone, its weight
    /// when it is an additional version, 0 otherwise.
    ///
    /// ```
    /// use canary_core::Routing;
    /// let split = Routing { function_version: "1".into(), additional_version_weights: [("2".into(), 0.25)].into() };
    /// assert_eq!((split.percent_of("2"), split.percent_of("3")), (25.0, 0.0));
    /// assert_eq!(Routing::to_version("2").percent_of("2"), 100.0);
    /// ```
    pub fn percent_of(&self, version: &str) -> f64 {
        let extra = self.additional_version_weights.get(version).copied();
        if self.function_version == version { 100.0 } else { extra.unwrap_or(0.0) * 100.0 }
    }

    /// Same versions with the same weights, within rounding.
    pub fn same_as(&self, other: &Routing) -> bool {
        self.function_version == other.function_version
            && self.additional_version_weights.len() == other.additional_version_weights.len()
            && self.additional_version_weights.iter().all(|(version, weight)| {
                other.additional_version_weights.get(version).is_some_and(|w| (w - weight).abs() < WEIGHT_TOLERANCE)
            })
    }
}

impl fmt::Display for Routing {
    /// `1 (100%)`, or `1 (90%) + 2 (10%)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: f64 = self.additional_version_weights.values().sum();
        write!(f, "{} ({})", self.function_version, percent_text((1.0 - extra) * 100.0))?;
        for (version, weight) in &self.additional_version_weights {
            write!(f, " + {version} ({})", percent_text(weight * 100.0))?;
        }
        Ok(())
    }
}

/// A percentage for people: at most three decimals, no trailing zeros (`10%`, `33.333%`).
pub fn percent_text(percent: f64) -> String {
    let text = format!("{percent:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// An alias as read from Lambda: its routing, its description (which carries a rollout's lock, see
/// [`lock`]) and the revision that a conditional write must name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    pub routing: Routing,
    pub revision_id: String,
    #[serde(default)]
    pub description: String,
}

/// What a write of the alias (the lock, a move, the release, a rollback) must do, given the alias as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum MovePlan {
    /// The alias already is as the write wants it: an earlier attempt of the same write succeeded, or
    /// there is nothing left to do.
    AlreadyDone,
    /// Write `routing` and `description`, on condition that the alias is still at `revision_id`.
    Write { routing: Routing, description: String, revision_id: String },
    /// The alias routes as this rollout left it, but at a revision it did not write: only its description
    /// changed (a person, or a stack update). A move carries on from it ([`Rollout::adopt`]) if its
    /// execution still runs; one that ended was released, and must not move traffic.
    DescriptionChanged,
    /// Someone else changed the alias's routing, or another rollout holds it: never overwrite it.
    Conflict(String),
}

/// Weights (fractions, 0 to 1) that differ by less than this are the same weight: Lambda stores them as
/// doubles. Percentages have their own, [`crate::schedule::PERCENT_TOLERANCE`].
const WEIGHT_TOLERANCE: f64 = 1e-9;

impl Rollout {
    /// The routing the alias carries at a step of the schedule.
    pub fn routing_at(&self, step: Step) -> Routing {
        if step.is_final() {
            Routing::to_version(&self.request.version)
        } else {
            Routing {
                function_version: self.old_version.clone(),
                additional_version_weights: BTreeMap::from([(self.request.version.clone(), step.weight())]),
            }
        }
    }

    /// The routing the controller last put on the alias (the original before the first move).
    pub fn expected_routing(&self) -> Routing {
        match self.step {
            None => self.original.clone(),
            Some(i) => self.routing_at(self.schedule().steps[i]),
        }
    }

    /// The alias as this execution last left it: the routing and lock it wrote, at the revision that write
    /// returned. A task plans against it to write first, with no read; only a refused write (the revision
    /// moved) makes it read the alias and plan again.
    pub fn alias_as_left(&self) -> AliasState {
        AliasState {
            routing: self.expected_routing(),
            revision_id: self.revision_id.clone(),
            description: self.lock.clone(),
        }
    }

    /// Whether `description` carries this execution's lock marker (possibly over a description someone
    /// edited since).
    pub fn holds(&self, description: &str) -> bool {
        let mine = lock::holder(&self.lock).map(|(execution, _)| execution);
        lock::holder(description).is_some_and(|(execution, _)| Some(execution) == mine)
    }

    /// Whether `description` carries another execution's lock marker.
    fn held_by_another(&self, description: &str) -> bool {
        lock::holder(description).is_some() && !self.holds(description)
    }

    /// Carries on from an alias whose description someone changed while its routing stayed as this rollout
    /// left it: its revision is the one to write on, its description the one to put back at the end, and
    /// the lock marker goes back on over it. Ownership is the routing; a description is anyone's to edit.
    pub fn adopt(mut self, live: &AliasState) -> Rollout {
        let theirs = lock::holder(&live.description).map_or(live.description.as_str(), |(_, text)| text).to_string();
        let execution = lock::holder(&self.lock).map(|(e, _)| e.to_string()).unwrap_or_default();
        self.revision_id = live.revision_id.clone();
        self.lock = lock::marker(&execution, &theirs);
        self.original_description = theirs;
        self
    }

    /// What the next move (shift or promote) must do, given the alias as it is now. The alias is this
    /// rollout's while it routes as the rollout left it and no other rollout's lock is on it: at the revision
    /// it last wrote, it is written; at another (only its description changed), the handler may adopt it. A
    /// retried move that already happened does nothing; a routing someone else set is reported, never
    /// overwritten.
    pub fn plan_move(&self, live: &AliasState) -> MovePlan {
        let target = self.routing_at(self.schedule().steps[self.next_index()]);
        if live.routing.same_as(&target) {
            MovePlan::AlreadyDone
        } else if self.held_by_another(&live.description) {
            MovePlan::Conflict(format!(
                "the alias \"{}\" is held by another rollout ({:?}): someone ended this one",
                self.request.alias, live.description
            ))
        } else if !live.routing.same_as(&self.expected_routing()) {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {}, not the {} this rollout left: someone else changed its routing",
                self.request.alias,
                live.routing,
                self.expected_routing()
            ))
        } else if live.revision_id == self.revision_id {
            MovePlan::Write { routing: target, description: self.lock.clone(), revision_id: live.revision_id.clone() }
        } else {
            MovePlan::DescriptionChanged
        }
    }

    /// What ending a promoted rollout writes: the description to put back, the routing as it is. Nothing
    /// when the alias no longer carries this execution's lock (someone set its description since: theirs
    /// stays).
    pub fn plan_release(&self, live: &AliasState) -> MovePlan {
        if !self.holds(&live.description) {
            return MovePlan::AlreadyDone;
        }
        MovePlan::Write {
            routing: live.routing.clone(),
            description: self.original_description.clone(),
            revision_id: live.revision_id.clone(),
        }
    }

    /// What a rollback must do, given the alias as it is now. It restores the original routing when the alias
    /// routes as this execution left it, or as the move in flight when the rollout failed would have left
    /// it, or still at the original routing: a description edited since is no claim on the alias, and is
    /// kept at the end. Any other routing, or another rollout's lock, is someone else's, reported and never
    /// overwritten.
    pub fn plan_rollback(&self, live: &AliasState) -> MovePlan {
        let held = self.holds(&live.description);
        if live.routing.same_as(&self.original) && !held {
            return MovePlan::AlreadyDone;
        }
        let in_flight = matches!(self.next, Next::Shift | Next::Promote)
            && live.routing.same_as(&self.routing_at(self.schedule().step(self.next_index())));
        let ours = live.revision_id == self.revision_id
            || live.routing.same_as(&self.expected_routing())
            || in_flight
            || live.routing.same_as(&self.original);
        if ours && !self.held_by_another(&live.description) {
            // The description to leave: the original, or the one someone set during the rollout.
            let description = if held { self.original_description.clone() } else { live.description.clone() };
            MovePlan::Write { routing: self.original.clone(), description, revision_id: live.revision_id.clone() }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {}, which this rollout did not set: someone else changed it, so it was \
                 left as it is (the original routing was {})",
                self.request.alias, live.routing, self.original
            ))
        }
    }
}
