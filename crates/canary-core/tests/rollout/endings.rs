//! Ownership over the interleavings of an ended rollout: an execution stopped after any number of moves
//! (its last move recorded, or in flight with its answer lost), its ending handled zero to three times (the
//! safety net's event, Lambda's retries, a redrive, the sweep), and, before any of those deliveries, someone
//! else acting on the alias: a later rollout, a hand promotion, a description edited around the lock marker,
//! or one rewritten whole. The model keeps its own account of what the ended execution holds (its marker on
//! the alias, or the alias at the revision it last wrote) and checks every write of the ending against it, and
//! checks how the alias ends: exactly restored, or as the other party left it.

use super::*;
use canary_core::lock;

/// The other execution: a later rollout of the same alias.
const LATER: &str = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:deploy-3";

/// Someone else's action on the alias.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Other {
    Nobody,
    /// A later rollout of version 2, all at once, promoted (or refused while the stale lock is on).
    LaterRollout,
    /// A person points the alias at version 2 alone, keeping the description.
    HandPromotion,
    /// A person edits the text after the lock marker, keeping its line.
    EditAround,
    /// A person rewrites the description whole.
    Rewrite,
}

/// An in-memory alias, and the revisions it hands out.
struct Alias {
    state: AliasState,
    revisions: u32,
}

impl Alias {
    fn write(&mut self, routing: Routing, description: String) -> String {
        self.revisions += 1;
        self.state = AliasState { routing, description, revision_id: format!("r{}", self.revisions) };
        self.state.revision_id.clone()
    }

    /// Carries out a plan conditional on its revision, as the handlers do; the new revision when written.
    fn carry_out(&mut self, plan: MovePlan) -> Option<String> {
        let MovePlan::Write { routing, description, revision_id } = plan else { return None };
        assert_eq!(revision_id, self.state.revision_id, "every write is conditional on the revision read");
        Some(self.write(routing, description))
    }
}

/// The later rollout: Prepare (refused while another execution's lock is on the alias, or when the alias does
/// not route version 1 alone), its lock, one move to 100%, the release.
fn later_rollout(alias: &mut Alias) -> bool {
    let held = lock::holder(&alias.state.description)
        .map(|(execution, _)| canary_core::lock::Held { execution: execution.into(), running: false });
    let facts = LiveFacts { alias: Some(alias.state.clone()), lock: held, ..facts() };
    let all_at_once = request(json!({"strategy": {"all_at_once": {}}, "health": {"enabled": false}}));
    let Ok(rollout) = Rollout::prepare(all_at_once, facts, LATER, t0()) else { return false };
    let locked = alias.carry_out(rollout.plan_lock(&alias.state)).expect("the lock is written");
    let rollout = rollout.after_lock(locked);
    let moved = alias.carry_out(rollout.plan_move(&alias.state)).expect("the move is written");
    let rollout = rollout.after_move(moved, t0());
    assert_eq!(rollout.next, Next::Done);
    alias.carry_out(rollout.plan_release(&alias.state)).expect("the release is written");
    true
}

#[test]
fn an_ended_rollout_writes_only_what_it_holds_however_often_and_late_its_ending_is_handled() {
    let mut cases = 0;
    for moves in 0..=3 {
        for in_flight in [false, true] {
            for deliveries in 0..=3 {
                for other in
                    [Other::Nobody, Other::LaterRollout, Other::HandPromotion, Other::EditAround, Other::Rewrite]
                {
                    for other_at in 0..=deliveries {
                        let case = format!(
                            "{moves} moves, in flight: {in_flight}, {deliveries} deliveries, {other:?} before delivery {other_at}"
                        );
                        run_case(moves, in_flight, deliveries, other, other_at, &case);
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 2 * (1 + 2 + 3 + 4) * 5);
}

fn run_case(moves: usize, in_flight: bool, deliveries: usize, other: Other, other_at: usize, case: &str) {
    let linear = request(json!({"strategy": {"linear": {"percent": 25, "interval_seconds": 60}}}));
    let mut alias = Alias { state: alias_at("1"), revisions: 0 };
    let mut rollout = Rollout::prepare(linear, facts(), EXEC, t0()).unwrap();
    // The revision the ended execution last wrote: with its marker, what it holds.
    let mut last_written = alias.carry_out(rollout.plan_lock(&alias.state)).unwrap();
    rollout = rollout.after_lock(last_written.clone());
    for _ in 0..moves {
        if rollout.next == Next::Hold {
            rollout = rollout.after_check(healthy(), t0());
        }
        last_written = alias.carry_out(rollout.plan_move(&alias.state)).expect(case);
        rollout = rollout.after_move(last_written.clone(), t0());
    }
    if in_flight {
        if rollout.next == Next::Hold {
            rollout = rollout.after_check(healthy(), t0());
        }
        // The move's write landed; its answer, and so its state, was lost when the execution was stopped.
        last_written = alias.carry_out(rollout.plan_move(&alias.state)).expect(case);
    }
    let ended = rollout;
    let (mut at_edit, mut changed_by_hand) = (None, false);
    for delivery in 0..=deliveries {
        if delivery == other_at {
            let before = alias.state.clone();
            match other {
                Other::Nobody => {}
                Other::LaterRollout => {
                    let went_on = later_rollout(&mut alias);
                    let stale = lock::holder(&before.description).is_some();
                    assert_eq!(went_on, !stale && before.routing == Routing::to_version("1"), "{case}");
                }
                Other::HandPromotion => {
                    // Onto an alias the ended execution had already promoted, under its marker, it changes
                    // nothing that tells the person's hand: the marker still signs the routing, the lock is held.
                    changed_by_hand = before.routing != Routing::to_version("2");
                    alias.write(Routing::to_version("2"), before.description.clone());
                }
                Other::EditAround => {
                    let description = match lock::holder(&before.description) {
                        Some(_) => format!("{}\nedited", before.description.split('\n').next().unwrap()),
                        None => "edited".into(),
                    };
                    alias.write(before.routing.clone(), description);
                }
                Other::Rewrite => {
                    alias.write(before.routing.clone(), "edited".into());
                    at_edit = Some(alias.state.clone());
                }
            }
        }
        if delivery == deliveries {
            break;
        }
        // One delivery of the ending: the rollback of the last recorded state, and on a hand-over, the lock
        // taken off (the rollback handler's give-back).
        let holds =
            |alias: &AliasState, last: &str| lock::held_by(&alias.description, EXEC) || alias.revision_id == last;
        match ended.plan_rollback(&alias.state) {
            plan @ MovePlan::Write { .. } => {
                assert!(holds(&alias.state, &last_written), "{case}: wrote an alias it does not hold");
                last_written = alias.carry_out(plan).unwrap();
            }
            MovePlan::Conflict(_) => {
                if let Some(revision) = alias.carry_out(ended.plan_release(&alias.state)) {
                    assert!(lock::holder(&alias.state.description).is_none(), "{case}");
                    last_written = revision;
                }
            }
            MovePlan::AlreadyDone | MovePlan::DescriptionChanged => {}
        }
    }
    if deliveries == 0 {
        return;
    }
    let final_state = alias.state;
    assert!(!lock::held_by(&final_state.description, EXEC), "{case}: still locked");
    let someone_promoted = match other {
        Other::HandPromotion => changed_by_hand,
        // Before the first delivery the stale lock refuses it; after, it promotes.
        Other::LaterRollout => other_at > 0,
        _ => false,
    };
    if someone_promoted {
        assert_eq!(final_state.routing, Routing::to_version("2"), "{case}: the later promotion stands");
    } else if let Some(edit) = at_edit.filter(|_| other_at == 0 && (moves > 0 || in_flight)) {
        assert_eq!(final_state.routing, edit.routing, "{case}: handed over as the person left it");
    } else {
        assert_eq!(final_state.routing, Routing::to_version("1"), "{case}: exactly restored");
    }
    let description = match other {
        Other::EditAround | Other::Rewrite => "edited",
        _ => "orders",
    };
    assert_eq!(final_state.description, description, "{case}");
}
