//! `cargo xtask startup-order`: regenerates `crates/canary-functions/startup-order.ld`, the linker script
//! that places the code the controller runs before its first poll for an event ahead of the rest of its
//! code (docs/performance.md, "Start-up code, together").
//!
//! Linux maps a binary's code in 64 KB windows around each page fault ("fault-around"), so start-up code
//! spread over 5 MB of `.text` made 54 windows resident (3.5 MB) for 1.2 MB of pages actually run. Placed
//! together, the same code fits in a few windows.
//!
//! The controller is built as released but with its symbols and without the script
//! (`CANARY_STARTUP_ORDER=off`), then run under callgrind once per task up to its first poll, on the same
//! fake Runtime API as `bench perf`; every function that ran in the binary becomes one pattern. Needs
//! valgrind on the machine (`apt-get install valgrind`); nothing else runs this command.

use crate::perf::until_first_poll;
use crate::tools::{root, run_with, step};
use canary_functions::serve::ControllerTask;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

/// The script, relative to the workspace.
pub const SCRIPT: &str = "crates/canary-functions/startup-order.ld";

/// The output section that holds the start-up code, placed just before `.text`.
const SECTION: &str = ".text.startup_path";

pub fn startup_order() -> Result<(), String> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("valgrind is not installed: install it (apt-get install valgrind) and run again".into());
    }
    let target = root().join("target/startup-order");
    step("building canary-controller as released, with its symbols and without the script");
    run_with(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "canary-functions", "--bin", "canary-controller"])
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_PROFILE_RELEASE_STRIP", "false")
            .env("CANARY_STARTUP_ORDER", "off"),
    )?;
    let binary = target.join("release/canary-controller");
    let mut functions = BTreeSet::new();
    for task in ControllerTask::ALL {
        step(&format!("{}: callgrind from exec to the first poll", task.name()));
        let profile = target.join(format!("callgrind.{}", task.name()));
        let _ = std::fs::remove_file(&profile); // never read a profile an earlier run left
        let mut valgrind = Command::new("valgrind");
        valgrind
            .args(["--tool=callgrind", "--demangle=no", &format!("--callgrind-out-file={}", profile.display())])
            .arg(&binary);
        let env = [("CANARY_TASK", task.name().to_string())];
        until_first_poll(&mut valgrind, &env, task.name(), Duration::from_secs(120), |child| {
            // callgrind writes its profile when the process ends on a signal it can catch.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = child.wait();
        })?;
        let text = std::fs::read_to_string(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let ran = functions_run_in(&text, "/canary-controller");
        if ran.is_empty() {
            return Err(format!("{}: no function of canary-controller in the profile", profile.display()));
        }
        functions.extend(ran);
    }
    let patterns: BTreeSet<String> = functions.iter().filter_map(|f| pattern(f)).collect();
    std::fs::write(root().join(SCRIPT), script(&patterns)).map_err(|e| e.to_string())?;
    println!("{SCRIPT}: {} functions ran before the first poll, {} patterns", functions.len(), patterns.len());
    Ok(())
}

/// The (mangled) names of the functions that ran in the object whose path ends with `object`, from a
/// callgrind profile. Callgrind names each object and function in full once, with an id (`ob=(3) /path`,
/// `fn=(12) name`, also in `cob=`/`cfn=` lines), and by the id alone afterwards.
pub fn functions_run_in(profile: &str, object: &str) -> BTreeSet<String> {
    let mut objects: HashMap<&str, &str> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut in_object = false;
    let mut ran = BTreeSet::new();
    for line in profile.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let table = match key {
            "ob" | "cob" => &mut objects,
            "fn" | "cfn" => &mut names,
            _ => continue,
        };
        let name = match value.strip_prefix('(').and_then(|v| v.split_once(')')) {
            Some((id, "")) => table.get(id).copied().unwrap_or(""),
            Some((id, name)) => {
                let name = name.trim_start();
                table.insert(id, name);
                name
            }
            None => value,
        };
        match key {
            "ob" => in_object = name.ends_with(object),
            "fn" if in_object && !name.is_empty() => {
                ran.insert(name.to_string());
            }
            _ => {}
        }
    }
    ran
}

/// The linker pattern for one function's section: its mangled name without the parts that change from one
/// build or target to the next (the legacy mangling's hash, v0 mangling's crate disambiguators and back
/// references, LTO's `.llvm.` suffix). `None` for what is no symbol (`0x…`, callgrind's `(below main)`) or
/// cannot be written in a pattern.
pub fn pattern(function: &str) -> Option<String> {
    let name = function.split(".llvm.").next().unwrap_or(function);
    let plain = |c: char| c.is_ascii_alphanumeric() || "_$.".contains(c);
    if name.is_empty() || name.starts_with("0x") || !name.chars().all(plain) {
        return None;
    }
    if let Some(path) = name.strip_prefix("_ZN").and_then(|n| n.strip_suffix('E')) {
        // Legacy mangling: the path, then `17h` and 16 hex digits of hash.
        return Some(match path.len().checked_sub(16).map(|at| path.split_at(at)) {
            Some((head, hash)) if head.ends_with("17h") && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
                format!("_ZN{head}*")
            }
            _ => name.to_string(),
        });
    }
    if name.starts_with("_R") {
        // v0 mangling: `Cs<base-62>_` is a crate's disambiguator, `B<base-62>_` a back reference (an
        // offset into the name, which moves when a disambiguator's length does).
        return Some(v0_wildcards(name));
    }
    Some(name.to_string())
}

fn v0_wildcards(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        let (tag, longest) = match bytes[i..] {
            [b'C', b's', ..] => (2, usize::MAX),
            [b'B', ..] => (1, 3),
            _ => (0, 0),
        };
        if tag > 0 {
            let digits = bytes[i + tag..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
            if digits <= longest && bytes.get(i + tag + digits) == Some(&b'_') {
                out.push_str(&name[i..i + tag]);
                out.push_str("*_");
                i += tag + digits + 1;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The linker script: one output section of the start-up code, just before `.text`, and the default
/// layout for everything else (`INSERT`). LLVM puts a cold function in `.text.unlikely.<name>`, so each
/// pattern names both.
pub fn script(patterns: &BTreeSet<String>) -> String {
    let mut out = String::from(
        "/* Generated by `cargo xtask startup-order`: do not edit. The functions canary-controller runs from exec\n   \
         to its first poll for an event (callgrind, every task), placed together ahead of .text so that start-up\n   \
         faults in few 64 KB windows of code. Names without their hashes, so the script holds across builds and\n   \
         targets; a function that is gone matches nothing, a new one stays in .text. Regenerate after upgrading\n   \
         the SDK, tokio or lambda_runtime. Why and how: docs/performance.md. */\nSECTIONS\n{\n",
    );
    out.push_str(&format!("  {SECTION} :\n  {{\n"));
    for pattern in patterns {
        out.push_str(&format!("    *(.text.{pattern} .text.unlikely.{pattern})\n"));
    }
    out.push_str("  }\n}\nINSERT BEFORE .text;\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_drop_what_changes_between_builds_and_targets() {
        let cases = [
            // Legacy mangling: the hash goes.
            (
                "_ZN5tokio7runtime2io12scheduled_io11ScheduledIo4wake17h3877b36dcc74fca9E",
                Some("_ZN5tokio7runtime2io12scheduled_io11ScheduledIo4wake17h*"),
            ),
            // ... and so does LTO's suffix.
            ("_ZN4core3fmt5write17h0123456789abcdefE.llvm.1234567", Some("_ZN4core3fmt5write17h*")),
            // Escapes stay as they are (`$` is plain in a linker script).
            (
                "_ZN9hashbrown3raw21RawTable$LT$T$C$A$GT$14reserve_rehash17h733669852fb53bb1E",
                Some("_ZN9hashbrown3raw21RawTable$LT$T$C$A$GT$14reserve_rehash17h*"),
            ),
            // A legacy name without a hash is kept whole.
            ("_ZN3foo3barE", Some("_ZN3foo3barE")),
            // v0 mangling (the standard library): disambiguators and back references go.
            (
                "_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner11finish_growCsjrHSEGnQ3l9_3std",
                Some("_RNvMs4_NtCs*_5alloc7raw_vecNtB*_11RawVecInner11finish_growCs*_3std"),
            ),
            // C functions keep their names.
            ("do_library_init", Some("do_library_init")),
            // Not symbols, or not writable in a pattern.
            ("0x000000000006e554", None),
            ("(below main)", None),
            ("weird*name", None),
            ("", None),
        ];
        for (function, expected) in cases {
            assert_eq!(pattern(function).as_deref(), expected, "{function}");
        }
    }

    #[test]
    fn the_functions_of_one_object_are_read_through_callgrinds_name_ids() {
        let profile = "\
events: Ir
ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fn=(1) malloc
0 10
ob=(2) /work/target/release/canary-controller
fn=(2) _ZN4main17h0123456789abcdefE
0 5
cob=(1)
cfn=(1)
calls=1 0
0 10
cfn=(3) _ZN5tokio5spawn17h0123456789abcdefE
calls=1 0
0 3
fn=(3)
0 3
ob=(1)
fn=(4) free
0 1
ob=(2)
fn=(2)
0 1
";
        let ran = functions_run_in(profile, "/canary-controller");
        let expected = ["_ZN4main17h0123456789abcdefE", "_ZN5tokio5spawn17h0123456789abcdefE"];
        assert_eq!(ran.iter().map(String::as_str).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn the_script_names_each_pattern_in_plain_and_cold_sections_before_text() {
        let patterns = BTreeSet::from(["_ZN4main17h*".to_string()]);
        let script = script(&patterns);
        assert!(
            script.contains("  .text.startup_path :\n  {\n    *(.text._ZN4main17h* .text.unlikely._ZN4main17h*)\n  }")
        );
        assert!(script.trim_end().ends_with("INSERT BEFORE .text;"));
    }

    #[test]
    fn the_committed_script_is_one_this_command_writes() {
        let committed = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
        let patterns: BTreeSet<String> = committed
            .lines()
            .filter_map(|l| l.trim().strip_prefix("*(.text."))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        assert!(patterns.len() > 100, "{} patterns", patterns.len());
        assert_eq!(committed, script(&patterns));
    }
}
