//! `cargo xtask dist [--target TRIPLE] [--zig]`: canaryctl's release artifact for one platform, as the release
//! workflow (.github/workflows/release.yml) builds it for each: an optimised binary named after the commit it
//! is built from, packed as `target/dist/canaryctl-<version>-<target>.tar.gz` with the README, and its line
//! in `target/dist/SHA256SUMS` (the format `sha256sum --check` reads). `--zig` builds with cargo-zigbuild,
//! which links the static musl Linux targets without a musl toolchain on the machine.

use crate::tools::{root, run_with, step};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets the release workflow builds: Linux (static, musl) and macOS, each on x86_64 and arm64.
pub const TARGETS: [&str; 4] =
    ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "x86_64-apple-darwin", "aarch64-apple-darwin"];

/// The archive's name for a version and target.
pub fn archive_name(version: &str, target: &str) -> String {
    format!("canaryctl-{version}-{target}.tar.gz")
}

/// A `SHA256SUMS` line: the digest in hex, two spaces, the file's name.
pub fn checksum_line(bytes: &[u8], name: &str) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  {name}")
}

/// `SHA256SUMS` with `line` in place of any earlier line for the same file, sorted by file name.
pub fn with_checksum(sums: &str, line: &str) -> String {
    let name = line.split_once("  ").map_or("", |(_, n)| n);
    let mut lines: Vec<&str> = sums.lines().filter(|l| l.split_once("  ").is_none_or(|(_, n)| n != name)).collect();
    lines.push(line);
    lines.sort_by_key(|l| l.split_once("  ").map_or("", |(_, n)| n).to_string());
    lines.join("\n") + "\n"
}

/// canaryctl's version, from its manifest.
fn version() -> Result<String, String> {
    let manifest = std::fs::read_to_string(root().join("crates/canaryctl/Cargo.toml")).map_err(|e| e.to_string())?;
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')))
        .map(str::to_string)
        .ok_or_else(|| "crates/canaryctl/Cargo.toml names no version".to_string())
}

fn host_target() -> Result<String, String> {
    let output = Command::new("rustc").arg("-vV").output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".to_string())
}

pub fn dist(target: Option<&str>, zig: bool) -> Result<(), String> {
    let target = match target {
        Some(t) => t.to_string(),
        None => host_target()?,
    };
    let version = version()?;
    step(&format!("canaryctl {version} for {target}"));
    if !TARGETS.contains(&target.as_str()) {
        println!("note: {target} is not one of the release's targets ({})", TARGETS.join(", "));
    }
    if target != host_target()? {
        crate::tools::run("rustup", &["target", "add", &target])?;
    }
    if zig {
        crate::tools::ensure_cargo_tool("zigbuild", "cargo-zigbuild", "0.24.1")?;
    }
    let build = if zig { "zigbuild" } else { "build" };
    run_with(Command::new("cargo").args([build, "--release", "--locked", "-p", "canaryctl", "--target", &target]))?;
    let binary = root().join("target").join(&target).join("release/canaryctl");
    let dist = root().join("target/dist");
    let staging = dist.join(format!("canaryctl-{version}-{target}"));
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    for (from, to) in [(binary.clone(), "canaryctl"), (root().join("README.md"), "README.md")] {
        std::fs::copy(&from, staging.join(to)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let archive = dist.join(archive_name(&version, &target));
    pack(&staging, &archive)?;
    let bytes = std::fs::read(&archive).map_err(|e| e.to_string())?;
    let line = checksum_line(&bytes, &archive_name(&version, &target));
    let sums_path = dist.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).unwrap_or_default();
    std::fs::write(&sums_path, with_checksum(&sums, &line)).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&binary).map_err(|e| e.to_string())?.len();
    println!("{}\n  binary {:.1} MB; {line}", archive.display(), size as f64 / 1e6);
    Ok(())
}

/// A gzip'd tar of `dir`'s files at the archive's top level (as `tar -xzf ARCHIVE canaryctl` expects).
fn pack(dir: &Path, archive: &PathBuf) -> Result<(), String> {
    let files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut command = Command::new("tar");
    command.arg("-czf").arg(archive).arg("-C").arg(dir).args(&files);
    run_with(&mut command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_named_by_version_and_target_and_summed_as_sha256sum_reads() {
        assert_eq!(archive_name("0.1.0", TARGETS[0]), "canaryctl-0.1.0-x86_64-unknown-linux-musl.tar.gz");
        let line = checksum_line(b"abc", "a.tar.gz");
        assert_eq!(line, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.tar.gz");
        let sums = with_checksum("", &line);
        let sums = with_checksum(&sums, &checksum_line(b"", "0.tar.gz"));
        let sums = with_checksum(&sums, &checksum_line(b"abcd", "a.tar.gz"));
        let names: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
        assert_eq!(names, ["0.tar.gz", "a.tar.gz"], "one line a file, the newest kept, sorted: {sums}");
        assert!(!sums.contains(&line), "the older digest of a.tar.gz is replaced");
    }

    /// The release workflow builds every target `dist` knows, and the CI examples install one of them.
    #[test]
    fn the_release_workflow_builds_every_target_the_examples_install() {
        let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
        for target in TARGETS {
            assert!(workflow.contains(target), "release.yml does not build {target}");
        }
        for example in ["docs/ci/github-actions.yml", "docs/ci/gitlab-deploy.yml"] {
            let text = std::fs::read_to_string(root().join(example)).unwrap();
            assert!(text.contains("CANARYCTL_SHA256") && text.contains("sha256sum --check"), "{example}");
            assert!(TARGETS.iter().any(|t| text.contains(t)), "{example} installs no released target");
            assert!(!text.contains("cargo install"), "{example} builds canaryctl instead of installing a release");
        }
    }
}
