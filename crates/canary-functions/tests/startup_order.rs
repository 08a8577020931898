//! The functions' binaries are linked with `startup-order.ld` (build.rs), so the code they run before their
//! first poll for an event is one section ahead of `.text`. What that saves is measured by
//! `cargo xtask bench perf` (docs/performance.md), not here: this checks the wiring, in the profile tests
//! are built with.
#![cfg(target_os = "linux")]

use object::{Object, ObjectSection};

#[test]
fn the_controller_binary_holds_its_start_up_code_in_one_section_before_text() {
    if option_env!("CANARY_STARTUP_ORDER") == Some("off") {
        return; // linked without the script on purpose (`cargo xtask startup-order`)
    }
    let data = std::fs::read(env!("CARGO_BIN_EXE_canary-controller")).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let startup = file
        .section_by_name(".text.startup_path")
        .expect("no .text.startup_path: is build.rs still passing startup-order.ld to the linker?");
    let text = file.section_by_name(".text").unwrap();
    // Hundreds of functions: the patterns still name functions this build has.
    assert!(startup.size() > 64 * 1024, ".text.startup_path holds only {} bytes", startup.size());
    assert!(startup.address() + startup.size() <= text.address(), "start-up code is not ahead of .text");
}
