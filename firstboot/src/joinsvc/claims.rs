//! What a verified identity says about an instance, whichever platform signed it.

use time::OffsetDateTime;

/// What a verified identity says about the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `ec2` or `gce`.
    pub platform: String,
    /// The instance id (one token per id).
    pub instance_id: String,
    /// AWS account id or GCP project id.
    pub account: String,
    /// Region, if the platform says.
    pub region: Option<String>,
    /// Zone, if the platform says.
    pub zone: Option<String>,
    /// When the instance was launched.
    pub launched: Option<OffsetDateTime>,
    /// The instance's name, if the platform says (for the token's description).
    pub name: Option<String>,
}
