//! Fuzz target: the Ignition parser and compiler must return Ok or Err, never panic or hang.
#![no_main]

use kiln_firstboot::userdata::{ignition, resource::NoNetwork, Budget, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ignition::plan(data, &NoNetwork, &Budget::new(Limits::default()));
});
