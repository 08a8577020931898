//! Names the commit canaryctl is built from, for `canaryctl --version`: git's HEAD in a checkout, the
//! `.cargo_vcs_info.json` cargo writes into a packaged crate (`cargo install canaryctl`), or
//! `CANARY_COMMIT` (a build from a source archive); "unknown" otherwise.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CANARY_COMMIT");
    let packaged = std::fs::read_to_string(".cargo_vcs_info.json").ok().and_then(|text| {
        let start = text.find("\"sha1\"")?;
        let rest = &text[start + 6..];
        let hex: String =
            rest.chars().skip_while(|c| !c.is_ascii_hexdigit()).take_while(char::is_ascii_hexdigit).collect();
        (hex.len() >= 12).then(|| hex[..12].to_string())
    });
    let from_git = git(&["rev-parse", "--short=12", "HEAD"]);
    if from_git.is_some() {
        // Rebuilt when HEAD moves: HEAD itself, the branch it names, and the packed refs.
        for path in ["HEAD", "packed-refs"] {
            if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={}", PathBuf::from(p).display());
            }
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(p) = git(&["rev-parse", "--git-path", &branch])
        {
            println!("cargo:rerun-if-changed={}", PathBuf::from(p).display());
        }
    }
    let commit = std::env::var("CANARY_COMMIT").ok().filter(|c| !c.is_empty()).or(packaged).or(from_git);
    println!("cargo:rustc-env=CANARYCTL_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
