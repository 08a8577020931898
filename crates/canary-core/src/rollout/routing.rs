//! Where an alias sends traffic, and what each move, the release of the lock and a rollback must write to
//! it: every write conditional on the revision this execution last wrote, never over someone else's change.

use super::{Next, Rollout};
use crate::lock;
use crate::schedule::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alias sends traffic: its version, and the extra versions with their weights (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

    /// The execution this rollout's lock names.
    fn execution(&self) -> &str {
        lock::holder(&self.lock).map_or("", |(execution, _)| execution)
    }

    /// The marker this execution writes with the move to schedule index `step` (`None`: `Prepare`'s lock),
    /// signed with the number of moves written ([`lock::signed`]), over the description it will put back.
    pub(super) fn marker_after(&self, step: Option<usize>) -> String {
        let original = lock::holder(&self.lock).map_or(self.original_description.as_str(), |(_, text)| text);
        lock::signed(self.execution(), step.map_or(0, |i| i + 1), original)
    }

    /// The routing this execution's `moves`-th write left on the alias (`0`: the original, under the lock).
    fn routing_after(&self, moves: usize) -> Option<Routing> {
        match moves.checked_sub(1) {
            None => Some(self.original.clone()),
            Some(index) => self.schedule().steps.get(index).map(|step| self.routing_at(*step)),
        }
    }

    /// The move this rollout was making when it stopped, if it was making one: the routing it would write.
    fn in_flight(&self) -> Option<Routing> {
        matches!(self.next, Next::Shift | Next::Promote)
            .then(|| self.routing_at(self.schedule().step(self.next_index())))
    }

    /// Whether `description` carries this execution's lock marker (possibly over a description someone
    /// edited since).
    pub fn holds(&self, description: &str) -> bool {
        lock::held_by(description, self.execution())
    }

    /// Whether `description` carries another execution's lock marker.
    fn held_by_another(&self, description: &str) -> bool {
        lock::holder(description).is_some() && !self.holds(description)
    }

    /// Whether the alias is this execution's to write: it sits at the revision this execution last wrote, or
    /// it carries this execution's marker and the routing that marker signs (a description edited around
    /// the marker is no claim on it). A routing equal to one this rollout would set is never enough: an alias
    /// released by an ending, or changed by a person who kept the description, is not this execution's.
    pub fn owns(&self, live: &AliasState) -> bool {
        if live.revision_id == self.revision_id {
            return true;
        }
        match lock::parse(&live.description) {
            Some(marker) if marker.execution == self.execution() => match marker.moves {
                Some(moves) => self.routing_after(moves).is_some_and(|routing| live.routing.same_as(&routing)),
                // An unsigned marker, written by the controller this rollout started under: its rules.
                None => [Some(self.expected_routing()), self.in_flight(), Some(self.original.clone())]
                    .into_iter()
                    .flatten()
                    .any(|routing| live.routing.same_as(&routing)),
            },
            _ => false,
        }
    }

    /// Carries on from an alias whose description someone changed around this execution's marker while its
    /// routing stayed as this rollout left it: its revision is the one to write on, its description the
    /// one to put back at the end, and the marker goes back on over it.
    pub fn adopt(mut self, live: &AliasState) -> Rollout {
        let theirs = lock::holder(&live.description).map_or(live.description.as_str(), |(_, text)| text).to_string();
        let moves = self.step.map_or(0, |i| i + 1);
        self.revision_id = live.revision_id.clone();
        self.lock = lock::signed(self.execution(), moves, &theirs);
        self.original_description = theirs;
        self
    }

    /// What the next move (shift or promote) must do, given the alias as it is now. The alias is this
    /// rollout's only while it [`owns`](Rollout::owns) it: at the revision it last wrote, it is written; at
    /// another (only the description around the marker changed), the handler may adopt it. A retried move
    /// that already happened (the alias carries the move's own signed marker) does nothing; anything else is
    /// someone else's, reported and never overwritten: a hand change equal to the next step included.
    pub fn plan_move(&self, live: &AliasState) -> MovePlan {
        let index = self.next_index();
        let target = self.routing_at(self.schedule().steps[index]);
        if self.held_by_another(&live.description) {
            return MovePlan::Conflict(format!(
                "the alias \"{}\" is held by another rollout ({:?}): someone ended this one",
                self.request.alias, live.description
            ));
        }
        if !self.owns(live) {
            // The promotion that ends the rollout gives the alias back in the same task: a retry after its
            // answer was lost finds it promoted and released. Nothing is written either way, and the new
            // version carries all its traffic, as a promotion leaves it.
            if live.routing.same_as(&target) && !self.holds(&live.description) && self.move_ends_rollout(index) {
                return MovePlan::AlreadyDone;
            }
            return MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {} ({}), not the {} this rollout left: someone else changed it",
                self.request.alias,
                live.routing,
                if self.holds(&live.description) { "under this rollout's lock" } else { "without this rollout's lock" },
                self.expected_routing()
            ));
        }
        if live.routing.same_as(&target) {
            MovePlan::AlreadyDone
        } else if !live.routing.same_as(&self.expected_routing()) {
            MovePlan::Conflict(format!(
                "the alias \"{}\" now routes {}, not the {} this rollout left: someone else changed its routing",
                self.request.alias,
                live.routing,
                self.expected_routing()
            ))
        } else if live.revision_id == self.revision_id {
            MovePlan::Write {
                routing: target,
                description: self.marker_after(Some(index)),
                revision_id: live.revision_id.clone(),
            }
        } else {
            MovePlan::DescriptionChanged
        }
    }

    /// Whether the move to schedule index `index` ends the rollout (nothing is held or run after it), so
    /// that its task also gives the alias back.
    fn move_ends_rollout(&self, index: usize) -> bool {
        let step = self.schedule().steps[index];
        step.is_final() && step.hold_seconds == 0 && !self.post_traffic_due()
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
            description: self.description_to_leave(live),
            revision_id: live.revision_id.clone(),
        }
    }

    /// The description an ending leaves on an alias: the one from before the rollout, or the one someone set
    /// around this execution's marker since; one without the marker is left as it is.
    fn description_to_leave(&self, live: &AliasState) -> String {
        match lock::holder(&live.description) {
            Some(_) if live.description == self.lock => self.original_description.clone(),
            Some((_, text)) => text.to_string(),
            None => live.description.clone(),
        }
    }

    /// What a rollback must do, given the alias as it is now. It restores the original routing, exactly, on an
    /// alias this execution [`owns`](Rollout::owns) (the revision it last wrote, or its marker with the routing
    /// the marker signs, a move in flight included), and puts back the description: the original, or the one
    /// someone set around the marker since. An alias it does not own is never written: already as before
    /// the rollout and free of this execution's lock, there is nothing to do (a retry, or an ending handled
    /// again); otherwise it is someone else's (a person's change, a later rollout or promotion), reported.
    pub fn plan_rollback(&self, live: &AliasState) -> MovePlan {
        if self.owns(live) && !self.held_by_another(&live.description) {
            let description = self.description_to_leave(live);
            if live.routing.same_as(&self.original) && description == live.description {
                return MovePlan::AlreadyDone;
            }
            return MovePlan::Write {
                routing: self.original.clone(),
                description,
                revision_id: live.revision_id.clone(),
            };
        }
        match lock::holder(&live.description) {
            // Already as before the rollout: nothing moves. Still under this execution's lock (someone set the
            // routing back by hand, keeping the description), the lock comes off.
            _ if !live.routing.same_as(&self.original) => {}
            Some((_, text)) if self.holds(&live.description) => {
                return MovePlan::Write {
                    routing: self.original.clone(),
                    description: text.to_string(),
                    revision_id: live.revision_id.clone(),
                };
            }
            _ => return MovePlan::AlreadyDone,
        }
        MovePlan::Conflict(format!(
            "the alias \"{}\" now routes {}, which this rollout did not set{}: someone else changed it, so it was left \
             as it is (the original routing was {})",
            self.request.alias,
            live.routing,
            if self.holds(&live.description) {
                ""
            } else if self.held_by_another(&live.description) {
                ", and another rollout holds it"
            } else {
                ", and it no longer carries this rollout's lock"
            },
            self.original
        ))
    }
}
