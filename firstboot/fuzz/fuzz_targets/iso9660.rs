//! Fuzz target: ISO 9660 media (config drives, NoCloud seeds) read in user space must return Ok
//! or Err, never panic, hang or allocate more than the size cap allows.
#![no_main]

use std::io::{Seek, Write};
use std::path::Path;

use kiln_firstboot::datasource::media::Iso;
use libfuzzer_sys::fuzz_target;

/// The names cloud-init and kiln look for, with case and nesting variants.
const NAMES: &[&str] = &[
    "user-data",
    "meta-data",
    "USER_DATA",
    "openstack/latest/meta_data.json",
    "openstack/latest/user_data",
    "ec2/latest/meta-data.json",
    "a/b/c/d/e/f",
];

/// The cap a datasource passes (small, so reads stay cheap).
const MAX: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(data).unwrap();
    file.rewind().unwrap();
    let Ok(mut iso) = Iso::open(file, Path::new("fuzz.iso")) else {
        return;
    };
    for name in NAMES {
        if let Ok(Some(bytes)) = iso.read(name, MAX) {
            assert!(bytes.len() as u64 <= MAX);
        }
    }
});
