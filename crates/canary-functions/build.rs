//! Links the functions' binaries with `startup-order.ld`, which places the code they run before their first
//! poll for an event ahead of the rest of their code, so a cold start faults in a few 64 KB windows of code
//! rather than most of them (docs/performance.md, "Start-up code, together").
//!
//! Linux targets only (an ELF linker: lld, GNU ld, or zig's, which `cargo lambda` uses). The script only
//! groups sections that exist; it changes no code. `CANARY_STARTUP_ORDER=off` links without it (how
//! `cargo xtask startup-order` builds the binary it profiles).

fn main() {
    println!("cargo::rerun-if-changed=startup-order.ld");
    println!("cargo::rerun-if-env-changed=CANARY_STARTUP_ORDER");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let off = std::env::var("CANARY_STARTUP_ORDER").is_ok_and(|v| v == "off");
    if linux && !off {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup-order.ld");
        // `-T` and the path as two arguments: `-Wl,-T,<path>` would split a path with a comma in it.
        println!("cargo::rustc-link-arg-bins=-T");
        println!("cargo::rustc-link-arg-bins={}", script.display());
    }
}
