//! Fuzz target: format detection with MIME multipart, gzip and jinja templates.
#![no_main]

use kiln_firstboot::userdata::{detect::split, Budget, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut doc = b"Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n".to_vec();
    doc.extend_from_slice(data);
    let metadata = serde_json::json!({"local_hostname": "fuzz"});
    let _ = split(&doc, &metadata, &Budget::new(Limits::default()), "user-data", 0);
    let _ = split(data, &metadata, &Budget::new(Limits::default()), "user-data", 0);
});
