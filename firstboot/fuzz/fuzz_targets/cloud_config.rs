//! Fuzz target: cloud-config documents (YAML after the `#cloud-config` header) compiled to a plan.
#![no_main]

use kiln_firstboot::userdata::{compile, Inputs, resource::NoNetwork};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut doc = b"#cloud-config\n".to_vec();
    doc.extend_from_slice(data);
    let metadata = serde_json::json!({"local_hostname": "fuzz"});
    let inputs = Inputs {
        metadata: &metadata,
        fetcher: &NoNetwork,
        root_has: &|_| false,
    };
    let _ = compile(&doc, &inputs);
});
