//! Fuzz target: `apply` of fixed plans to a root built from the input (directories, files,
//! symlinks out of the root, absolute, looping or to /dev/zero, and FIFOs) must return (a hang
//! is a libFuzzer timeout), change nothing outside the root, and copy or take nothing from
//! outside it. The root and the checks are in tests/confine, shared with the fast test that
//! replays pseudo-random roots. Run it as root (it sets owners) in a throwaway machine.
#![no_main]

#[path = "../../../tests/confine/mod.rs"]
mod confine;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    confine::Scene::new(data).apply_and_check();
});
