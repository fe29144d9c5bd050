//! kiln-firstboot as a library: the engines behind the node agent's commands, so tests,
//! benchmarks and fuzz targets can drive them directly.

pub mod apply;
pub mod datasource;
pub mod joinsvc;
pub mod node;
pub mod plan;
pub mod process;
pub mod redact;
pub mod run;
pub mod userdata;
