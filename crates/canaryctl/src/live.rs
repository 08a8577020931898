//! `canaryctl watch` in a terminal: one screen, redrawn as the rollout goes (as Argo Rollouts'
//! `get rollout --watch`): the step bar, the weights, both versions' figures with a sparkline of their
//! looks, the next check, any approval gate, and the latest events. Drawing is a pure function of what the
//! events said ([`Screen::draw`]); the view only clears the terminal and prints it.

use crate::events::{Event, EventLine, Figures, Judgement, Share};
use crate::start::Progress;
use canary_core::rollout::percent_text;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::io::Write;

/// How many looks a sparkline shows (the latest), and how many events the screen lists.
const SPARK_POINTS: usize = 30;
const RECENT_EVENTS: usize = 6;

/// What the screen shows, as the events have told it.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    name: String,
    target: String,
    versions: Option<(String, String)>,
    step: usize,
    step_count: usize,
    weight_percent: f64,
    routing: Vec<Share>,
    new: Series,
    old: Series,
    next_check_at: Option<DateTime<Utc>>,
    waiting_before: Option<f64>,
    /// Held by an operator's pause, as the latest check said.
    paused: bool,
    recent: VecDeque<String>,
    ended: Option<String>,
    /// A release's functions, each with its own versions, routing and figures, in the order they came.
    functions: Vec<Member>,
}

/// One function of a release on the screen.
#[derive(Debug, Clone, Default)]
struct Member {
    name: String,
    versions: (String, String),
    routing: Vec<Share>,
    new: Series,
    old: Series,
}

/// One version's looks: the latest figures and the history of its error rate and p99.
#[derive(Debug, Clone, Default)]
struct Series {
    latest: Option<Figures>,
    error_rates: Vec<f64>,
    p99s: Vec<f64>,
}

impl Series {
    fn push(&mut self, figures: Option<Figures>) {
        let Some(figures) = figures else { return };
        self.latest = Some(figures);
        self.error_rates.push(figures.error_rate);
        if let Some(p99) = figures.p99_ms {
            self.p99s.push(p99);
        }
    }
}

impl Screen {
    pub fn new(name: &str) -> Self {
        Screen { name: name.to_string(), ..Screen::default() }
    }

    /// Takes in what an event says.
    pub fn apply(&mut self, line: &EventLine) {
        match &line.event {
            Event::Status { rollout: Some(p), .. } => {
                self.target = format!("{}:{}", p.function, p.alias);
                self.versions = Some((p.old_version.clone(), p.new_version.clone()));
                (self.step, self.step_count, self.weight_percent) = (p.step, p.step_count, p.weight_percent);
                self.routing = p.routing.clone();
            }
            Event::Status { .. } => {}
            Event::Prepared { function, alias, old_version, new_version, step_count, .. } => {
                // A release announces each function: the first names the screen, each gets its rows.
                let versions = (old_version.clone(), new_version.clone());
                if let Some(member) = self.member(Some(function)) {
                    member.versions = versions.clone();
                }
                if self.functions.len() == 1 {
                    self.target = format!("{function}:{alias}");
                    self.versions = Some(versions);
                } else {
                    self.target = format!("{} functions", self.functions.len());
                    self.versions = None;
                }
                self.step_count = *step_count;
            }
            Event::StepMoved {
                function: Some(function),
                step,
                step_count,
                weight_percent,
                routing,
                next_check_seconds,
                ..
            } => {
                (self.step, self.step_count, self.weight_percent) = (*step, *step_count, *weight_percent);
                if let Some(member) = self.member(Some(function)) {
                    member.routing = routing.clone();
                }
                self.next_check_at = next_check_seconds.map(|s| line.at + chrono::Duration::seconds(s as i64));
                self.waiting_before = None;
            }
            Event::StepMoved { step, step_count, weight_percent, routing, next_check_seconds, .. } => {
                (self.step, self.step_count, self.weight_percent) = (*step, *step_count, *weight_percent);
                self.routing = routing.clone();
                self.next_check_at = next_check_seconds.map(|s| line.at + chrono::Duration::seconds(s as i64));
                self.waiting_before = None;
            }
            Event::StepJudged { function, new, old, next_check_seconds, verdict, .. } => {
                match self.member(function.as_ref()) {
                    Some(member) => {
                        member.new.push(*new);
                        member.old.push(*old);
                    }
                    None => {
                        self.new.push(*new);
                        self.old.push(*old);
                    }
                }
                self.next_check_at = next_check_seconds
                    .filter(|_| *verdict != Judgement::Failed)
                    .map(|s| line.at + chrono::Duration::seconds(s as i64));
                self.paused = *verdict == Judgement::Paused;
            }
            Event::ApprovalWaiting { before_percent, .. } => {
                self.waiting_before = Some(*before_percent);
                self.next_check_at = None;
            }
            Event::RolledBack { routing, .. } => {
                self.routing = routing.clone();
                self.weight_percent = 0.0;
                self.next_check_at = None;
            }
            Event::Ended { routing, message, .. } => {
                if let Some(routing) = routing {
                    self.routing = routing.clone();
                }
                self.next_check_at = None;
                self.waiting_before = None;
                self.ended = Some(message.clone());
            }
            Event::HookRan { .. } => {}
        }
        if !matches!(line.event, Event::Status { .. }) {
            self.recent.push_back(format!("{}  {}", line.at.format("%H:%M:%S"), line.event.message()));
            while self.recent.len() > RECENT_EVENTS {
                self.recent.pop_front();
            }
        }
    }

    /// The rows of a release's function named by an event, made on its first mention; `None` for an event
    /// of a rollout of one function (or a `Prepared` while none of a release has been seen).
    fn member(&mut self, function: Option<&String>) -> Option<&mut Member> {
        let name = function?;
        let index = match self.functions.iter().position(|m| &m.name == name) {
            Some(index) => index,
            None => {
                self.functions.push(Member { name: name.clone(), ..Member::default() });
                self.functions.len() - 1
            }
        };
        Some(&mut self.functions[index])
    }

    /// The screen at `now`.
    pub fn draw(&self, now: DateTime<Utc>) -> String {
        let mut out = self.name.clone();
        if !self.target.is_empty() {
            out.push_str(&format!("  {}", self.target));
        }
        if let Some((old, new)) = &self.versions {
            out.push_str(&format!("  version {old} -> {new}"));
        }
        out.push('\n');
        // A rollout refused before it was prepared has no steps to draw.
        if self.step_count > 0 {
            out.push_str(&format!(
                "\n  step {}/{}  {}  {}\n",
                self.step,
                self.step_count,
                bar(self.weight_percent, 30),
                percent_text(self.weight_percent)
            ));
        }
        if !self.routing.is_empty() {
            let routes: Vec<String> =
                self.routing.iter().map(|s| format!("{} {}", s.version, percent_text(s.percent))).collect();
            out.push_str(&format!("  alias routes {}\n", routes.join(" + ")));
        }
        // A release: each function's routing and figures; one function: its figures.
        let members: Vec<&Member> =
            self.functions.iter().filter(|m| !m.routing.is_empty() || m.new.latest.is_some()).collect();
        if members.len() > 1 {
            for member in members {
                let routes: Vec<String> =
                    member.routing.iter().map(|s| format!("{} {}", s.version, percent_text(s.percent))).collect();
                out.push_str(&format!("\n  {}  routes {}\n", member.name, routes.join(" + ")));
                let (old, new) = &member.versions;
                out.push_str(&version_line("new", new, &member.new));
                out.push_str(&version_line("old", old, &member.old));
            }
        } else if let Some((old, new)) = &self.versions {
            out.push('\n');
            out.push_str(&version_line("new", new, &self.new));
            out.push_str(&version_line("old", old, &self.old));
        }
        out.push('\n');
        match (&self.ended, self.waiting_before, self.next_check_at) {
            (Some(message), _, _) => out.push_str(&format!("  ended: {message}\n")),
            (None, Some(percent), _) => out.push_str(&format!(
                // One command a line, each short enough to stay whole on a narrow terminal (the screen cuts lines).
                "  waiting for approval before {}:\n    canaryctl promote {name} [--full]\n    canaryctl abort {name}\n",
                percent_text(percent),
                name = self.name
            )),
            (None, None, Some(at)) => {
                if self.paused {
                    // One command a line, as at a gate.
                    out.push_str(&format!(
                        "  PAUSED at this weight (still judged):\n    canaryctl resume {name}\n    canaryctl abort {name}\n",
                        name = self.name
                    ));
                }
                let seconds = (at - now).num_seconds().max(0) as u64;
                out.push_str(&format!(
                    "  next check in {} (at {})\n",
                    crate::render::duration_text(seconds),
                    at.format("%H:%M:%S UTC")
                ))
            }
            (None, None, None) => out.push_str("  running\n"),
        }
        if !self.recent.is_empty() {
            out.push('\n');
            for line in &self.recent {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

/// One version's line: its figures and the sparklines of its error rate and p99 over the looks.
fn version_line(who: &str, version: &str, series: &Series) -> String {
    let figures = match &series.latest {
        Some(f) => format!(
            "{:>7} calls  {:>7} errors  p99 {:>9}",
            f.invocations,
            percent_text(f.error_rate * 100.0),
            f.p99_ms.map(|p| format!("{p:.0} ms")).unwrap_or_else(|| "-".into())
        ),
        None => format!("{:>7} calls  {:>7} errors  p99 {:>9}", "-", "-", "-"),
    };
    format!(
        "  {who} {version:<8} {figures}  errors {}  p99 {}\n",
        sparkline(&series.error_rates),
        sparkline(&series.p99s)
    )
}

/// A bar of `width` cells, filled to `percent`.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// The latest values as a sparkline, scaled from the smallest to the largest (equal values draw the lowest
/// bar: a flat line, whatever its level; the figures beside it say the level).
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = &values[values.len().saturating_sub(SPARK_POINTS)..];
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let level = |v: f64| if max > min { ((v - min) / (max - min) * 7.0).round() as usize } else { 0 };
    values.iter().map(|v| BARS[level(*v).min(7)]).collect()
}

/// The terminal's size (columns, rows), when stdout is one.
fn terminal_size() -> Option<(usize, usize)> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given, which lives through the call.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0 && size.ws_row > 0).then(|| (usize::from(size.ws_col), usize::from(size.ws_row)))
}

/// The screen cut to the terminal: each line to `columns` characters (a line that wrapped would scroll the
/// screen away), and to `rows - 1` lines, keeping the top (the rollout) over the oldest events.
pub fn fit(screen: &str, columns: usize, rows: usize) -> String {
    let mut out = String::new();
    for line in screen.lines().take(rows.saturating_sub(1).max(1)) {
        match line.char_indices().nth(columns.saturating_sub(1)) {
            Some((cut, _)) if line.chars().count() > columns => {
                out.push_str(&line[..cut]);
                out.push('…');
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The view: redraws the whole screen on every event and every look.
pub struct LiveView {
    screen: Screen,
}

impl LiveView {
    pub fn new(name: &str) -> Self {
        LiveView { screen: Screen::new(name) }
    }

    fn redraw(&self) {
        let (columns, rows) = terminal_size().unwrap_or((120, 40));
        let screen = fit(&self.screen.draw(Utc::now()), columns, rows);
        let mut stdout = std::io::stdout().lock();
        // Cursor home, clear the screen: the terminal shows one screen, not a scroll of them.
        let _ = write!(stdout, "\x1b[H\x1b[2J{screen}");
        let _ = stdout.flush();
    }
}

impl Progress for LiveView {
    fn event(&mut self, line: EventLine) {
        self.screen.apply(&line);
        self.redraw();
    }
    fn tick(&mut self) {
        self.redraw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Position;
    use canary_core::execution::ExecutionOutcome;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn line(seconds: i64, event: Event) -> EventLine {
        EventLine::new("arn:exec", at(seconds), event)
    }

    fn shares(old: f64) -> Vec<Share> {
        vec![Share { version: "41".into(), percent: old }, Share { version: "42".into(), percent: 100.0 - old }]
    }

    fn figures(invocations: u64, errors: u64, p99: f64) -> Option<Figures> {
        Some(Figures { invocations, errors, error_rate: errors as f64 / invocations as f64, p99_ms: Some(p99) })
    }

    #[test]
    fn the_screen_shows_the_step_the_weights_both_versions_and_the_next_check() {
        let mut screen = Screen::new("orders-live-v42");
        let position = Position {
            function: "orders".into(),
            alias: "live".into(),
            old_version: "41".into(),
            new_version: "42".into(),
            step: 0,
            step_count: 4,
            weight_percent: 0.0,
            routing: vec![Share { version: "41".into(), percent: 100.0 }],
        };
        let status = Event::Status {
            name: "orders-live-v42".into(),
            outcome: ExecutionOutcome::Running,
            rollout: Some(position),
            message: "x".into(),
        };
        screen.apply(&line(0, status));
        let moved = Event::StepMoved {
            function: None,
            step: 1,
            step_count: 4,
            weight_percent: 25.0,
            routing: shares(75.0),
            next_check_seconds: Some(60),
            message: "step 1/4: alias routes 41 (75%) + 42 (25%), checked in 1m00s".into(),
        };
        screen.apply(&line(10, moved));
        for (look, errors) in [(1, 0), (2, 1), (3, 4)] {
            screen.apply(&line(
                10 + 60 * look,
                Event::StepJudged {
                    function: None,
                    step: 1,
                    step_count: 4,
                    look: look as u32,
                    verdict: Judgement::Inconclusive,
                    new: figures(100, errors, 200.0 + look as f64),
                    old: figures(300, 1, 190.0),
                    next_check_seconds: Some(60),
                    message: format!("look {look}"),
                },
            ));
        }
        let drawn = screen.draw(at(200));
        let expected = [
            "orders-live-v42  orders:live  version 41 -> 42",
            "",
            "  step 1/4  [########......................]  25%",
            "  alias routes 41 75% + 42 25%",
            "",
            "  new 42           100 calls       4% errors  p99    203 ms  errors ▁▃█  p99 ▁▅█",
            "  old 41           300 calls   0.333% errors  p99    190 ms  errors ▁▁▁  p99 ▁▁▁",
            "",
            "  next check in 50s (at 12:04:10 UTC)",
            "",
            "  12:00:10  step 1/4: alias routes 41 (75%) + 42 (25%), checked in 1m00s",
            "  12:01:10  look 1",
            "  12:02:10  look 2",
            "  12:03:10  look 3",
        ];
        assert_eq!(drawn.lines().collect::<Vec<_>>(), expected, "\n{drawn}");
    }

    #[test]
    fn a_gate_and_the_end_replace_the_next_check() {
        let mut screen = Screen::new("x");
        screen.apply(&line(
            0,
            Event::ApprovalWaiting { before_percent: 50.0, message: "waiting for approval before 50%".into() },
        ));
        let drawn = screen.draw(at(1));
        assert!(drawn.contains("waiting for approval before 50%:\n    canaryctl promote x [--full]\n"), "{drawn}");
        // Each command on its own line: an 80-column terminal keeps both whole.
        let fitted = fit(&drawn, 80, 40);
        assert!(fitted.contains("    canaryctl abort x\n"), "{fitted}");
        screen.apply(&line(
            5,
            Event::RolledBack { routing: vec![Share { version: "41".into(), percent: 100.0 }], message: "r".into() },
        ));
        screen.apply(&line(
            6,
            Event::Ended {
                outcome: ExecutionOutcome::RolledBack,
                promoted: false,
                routing: None,
                steps_percent: Vec::new(),
                message: "rolled_back: step 1/4 failed".into(),
            },
        ));
        let drawn = screen.draw(at(7));
        assert!(
            drawn.contains("ended: rolled_back: step 1/4 failed") && !drawn.contains("canaryctl promote"),
            "{drawn}"
        );
        assert!(drawn.contains("alias routes 41 100%") && !drawn.contains("step 0/0"), "{drawn}");
    }

    /// A check that held the step for an operator's pause says so, with the commands that answer it, until a
    /// check says otherwise.
    #[test]
    fn a_paused_rollout_says_so_with_its_commands() {
        let mut screen = Screen::new("x");
        let judged = |verdict: Judgement| Event::StepJudged {
            function: None,
            step: 1,
            step_count: 4,
            look: 0,
            verdict,
            new: None,
            old: None,
            next_check_seconds: Some(300),
            message: "step 1/4".into(),
        };
        screen.apply(&line(0, judged(Judgement::Paused)));
        let drawn = screen.draw(at(1));
        assert!(drawn.contains("PAUSED at this weight (still judged):\n    canaryctl resume x\n"), "{drawn}");
        assert!(drawn.contains("next check in 4m59s"), "{drawn}");
        screen.apply(&line(300, judged(Judgement::Healthy)));
        assert!(!screen.draw(at(301)).contains("PAUSED"));
    }

    #[test]
    fn the_screen_is_cut_to_the_terminal() {
        let screen = "first line\nä second line that is long\nthird\nfourth\n";
        assert_eq!(fit(screen, 8, 4), "first l…\nä secon…\nthird\n");
        assert_eq!(fit("exactly8\n", 8, 2), "exactly8\n");
        assert_eq!(fit("x\ny\n", 80, 0), "x\n", "at least one line");
    }

    #[test]
    fn sparklines_scale_to_their_largest_value_and_keep_the_latest() {
        assert_eq!(sparkline(&[0.0, 0.0]), "▁▁");
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0]), "▁▂▄█");
        assert_eq!(sparkline(&[0.3, 0.3]), "▁▁");
        let many: Vec<f64> = (0..50).map(f64::from).collect();
        assert_eq!(sparkline(&many).chars().count(), SPARK_POINTS);
        assert_eq!(bar(50.0, 4), "[##..]");
        assert_eq!(bar(150.0, 2), "[##]");
    }

    #[test]
    fn a_release_draws_each_function_with_its_own_routing_and_figures() {
        use canary_core::health::{HealthFigures, VersionFigures};
        let request = serde_json::json!({"functions": [{"function": "orders-api", "alias": "live", "version": "42"},
                                                       {"function": "orders-worker", "alias": "live", "version": "7"}],
            "strategy": {"linear": {"percent": 50, "interval_seconds": 120}},
            "health": {"metrics_delay_seconds": 60, "min_invocations": 10}});
        let state = crate::testing::prepared(request, "41", at(0));
        let mut screen = Screen::new("release");
        let mut apply = |seconds: i64, state_name: &str, rollout: &canary_core::Rollout| {
            let output = serde_json::to_string(rollout).unwrap();
            let events = crate::events::of_state("release", state_name, Some(&output));
            for event in &events {
                screen.apply(&line(seconds, event.clone()));
            }
            events
        };
        let prepared = apply(0, "Prepare", &state);
        assert_eq!(prepared.len(), 2, "one Prepared per function");
        let moved: Vec<canary_core::Rollout> =
            state.function_views().into_iter().map(|v| v.after_move("r1".into(), at(1))).collect();
        let state = state.combine(moved);
        let events = apply(1, "Shift", &state);
        let named: Vec<Option<String>> = events
            .iter()
            .map(|e| match e {
                Event::StepMoved { function, .. } => function.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(named, [Some("orders-api".to_string()), Some("orders-worker".to_string())]);
        assert!(events[1].message().starts_with("orders-worker: "), "{}", events[1].message());
        let figures = |errors| HealthFigures {
            new: VersionFigures { invocations: 100, errors, ..Default::default() },
            ..Default::default()
        };
        let checked: Vec<canary_core::Rollout> = state
            .function_views()
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.after_check(Some(figures(if i == 1 { 60 } else { 0 })), at(200)))
            .collect();
        let state = state.combine(checked);
        let judged = apply(200, "CheckHealth", &state);
        assert_eq!(judged.len(), 2);
        assert!(
            judged[1].message().starts_with("orders-worker: step 1/2 failed: the new version failed"),
            "{judged:?}"
        );
        // The API did not fail: its line says the release rolls back for another, not the worker's failure.
        assert!(
            judged[0].message().ends_with("of its own; the release rolls back with the function that failed"),
            "{judged:?}"
        );
        let restored: Vec<canary_core::Rollout> = state
            .function_views()
            .into_iter()
            .map(|v| {
                let original = v.original.clone();
                v.after_rollback(original, at(201))
            })
            .collect();
        let state = state.combine(restored);
        let rolled_back = apply(201, "Rollback", &state);
        assert_eq!(
            rolled_back[0].message(),
            "rolled back: orders-api routes 41 (100%), orders-worker routes 41 (100%)"
        );
        let text = screen.draw(at(200));
        assert!(text.starts_with("release  2 functions\n"), "{text}");
        assert!(text.contains("\n  orders-api  routes 41 50% + 42 50%\n"), "{text}");
        assert!(text.contains("\n  orders-worker  routes 41 50% + 7 50%\n"), "{text}");
        assert!(text.contains("60%"), "the worker's own error rate: {text}");
        // JSON events carry the function; a single rollout's leave it out.
        let json = serde_json::to_value(EventLine::new("arn:exec", at(200), judged[1].clone())).unwrap();
        assert_eq!(json["function"], "orders-worker");
    }
}
