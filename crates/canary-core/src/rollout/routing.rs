//! Where an alias sends traffic, and what each move, the release of the lock and a rollback must write to
//! it: every write conditional on the revision this execution last wrote, never over someone else's change.

use super::{Next, Rollout};
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

/// What a move (shift or promote) must do to the live alias.
#[derive(Debug, Clone, PartialEq)]
pub enum MovePlan {
    /// The alias already routes as the step wants: an earlier attempt of this same move succeeded.
    AlreadyDone,
    /// Write `routing` and `description`, on condition that the alias is still at `revision_id`.
    Write { routing: Routing, description: String, revision_id: String },
    /// Someone else changed the alias: never overwrite it.
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

    /// What the next move (shift or promote) must do, given the alias as it is now. Only an alias this
    /// execution still holds, at the revision it last wrote, is written. A retried move that already
    /// happened does nothing; a change made by someone else is reported, never overwritten.
    pub fn plan_move(&self, live: &AliasState) -> MovePlan {
        let step = self.schedule().steps[self.next_index()];
        let target = self.routing_at(step);
        // A promotion whose function died after it had also given the alias back: done, and released.
        let released_by_us = step.is_final() && live.description == self.original_description;
        if live.routing.same_as(&target) && released_by_us {
            MovePlan::AlreadyDone
        } else if live.description != self.lock {
            MovePlan::Conflict(format!(
                "the alias \"{}\" is no longer held by this rollout (its description is now {:?}): someone \
                 else changed it or ended the rollout",
                self.request.alias, live.description
            ))
        } else if live.routing.same_as(&target) {
            MovePlan::AlreadyDone
        } else if live.revision_id == self.revision_id {
            MovePlan::Write { routing: target, description: self.lock.clone(), revision_id: live.revision_id.clone() }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {} at a revision this rollout did not write (it left {}): someone \
                 else changed it",
                self.request.alias,
                live.routing,
                self.expected_routing()
            ))
        }
    }

    /// What ending a promoted rollout writes: the original description back, the routing as it is. Nothing
    /// when the alias is not held by this execution any more.
    pub fn plan_release(&self, live: &AliasState) -> MovePlan {
        if live.description != self.lock {
            return MovePlan::AlreadyDone;
        }
        MovePlan::Write {
            routing: live.routing.clone(),
            description: self.original_description.clone(),
            revision_id: live.revision_id.clone(),
        }
    }

    /// What a rollback must do, given the alias as it is now. It restores the original routing and
    /// description exactly when the alias is as this execution last wrote it (its revision), or as the move
    /// that was in flight when the rollout failed would have left it, or at the original routing while still
    /// held; anything else is someone else's change, reported and never overwritten.
    pub fn plan_rollback(&self, live: &AliasState) -> MovePlan {
        if live.routing.same_as(&self.original) && live.description != self.lock {
            return MovePlan::AlreadyDone;
        }
        let in_flight = matches!(self.next, Next::Shift | Next::Promote)
            && live.description == self.lock
            && live.routing.same_as(&self.routing_at(self.schedule().step(self.next_index())));
        let held_at_original = live.description == self.lock && live.routing.same_as(&self.original);
        if live.revision_id == self.revision_id || in_flight || held_at_original {
            MovePlan::Write {
                routing: self.original.clone(),
                description: self.original_description.clone(),
                revision_id: live.revision_id.clone(),
            }
        } else {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {} at a revision this rollout did not write: someone else changed it, \
                 so it was left as it is (the original routing was {})",
                self.request.alias, live.routing, self.original
            ))
        }
    }
}
