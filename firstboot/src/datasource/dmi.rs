//! The machine's DMI identity (`/sys/class/dmi/id/*` below the sys-root) and the cloud it names.

use super::Env;

/// Azure's chassis asset tag, the same on every Azure VM.
pub const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// The DMI fields kiln looks at; a missing file is an empty string.
#[derive(Debug, Default, Clone)]
pub struct Dmi {
    /// `sys_vendor`.
    pub sys_vendor: String,
    /// `product_name`.
    pub product_name: String,
    /// `chassis_asset_tag`.
    pub chassis_asset_tag: String,
    /// `bios_version` (old Xen-based EC2 instances say `...amazon` here).
    pub bios_version: String,
}

impl Dmi {
    /// Reads the DMI fields below `env`'s sys-root.
    pub fn read(env: &Env) -> Self {
        let field = |name: &str| {
            env.read_text(&format!("/sys/class/dmi/id/{name}"))
                .unwrap_or_default()
        };
        Dmi {
            sys_vendor: field("sys_vendor"),
            product_name: field("product_name"),
            chassis_asset_tag: field("chassis_asset_tag"),
            bios_version: field("bios_version"),
        }
    }

    /// The cloud these fields identify and the evidence, as afterburn and cloud-init's ds-identify
    /// read them.
    pub fn cloud(&self) -> Option<(&'static str, String)> {
        let says = |field: &str, value: &str| format!("DMI {field} is {value:?}");
        if self.sys_vendor == "Amazon EC2" {
            return Some(("ec2", says("sys_vendor", &self.sys_vendor)));
        }
        if self.bios_version.to_ascii_lowercase().contains("amazon") {
            return Some(("ec2", says("bios_version", &self.bios_version)));
        }
        if self.product_name == "Google Compute Engine" || self.sys_vendor == "Google" {
            return Some(("gce", says("product_name", &self.product_name)));
        }
        if self.chassis_asset_tag == AZURE_ASSET_TAG {
            return Some(("azure", says("chassis_asset_tag", &self.chassis_asset_tag)));
        }
        if matches!(
            self.product_name.as_str(),
            "OpenStack Nova" | "OpenStack Compute"
        ) || self.sys_vendor == "OpenStack Foundation"
        {
            return Some(("openstack", says("product_name", &self.product_name)));
        }
        if self.sys_vendor == "DigitalOcean" {
            return Some(("digitalocean", says("sys_vendor", &self.sys_vendor)));
        }
        if self.sys_vendor == "Hetzner" {
            return Some(("hetzner", says("sys_vendor", &self.sys_vendor)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dmi(vendor: &str, product: &str, tag: &str) -> Dmi {
        Dmi {
            sys_vendor: vendor.into(),
            product_name: product.into(),
            chassis_asset_tag: tag.into(),
            bios_version: String::new(),
        }
    }

    #[test]
    fn identifies_each_cloud() {
        let cases = [
            (dmi("Amazon EC2", "m5.large", ""), Some("ec2")),
            (dmi("Google", "Google Compute Engine", ""), Some("gce")),
            (
                dmi("Microsoft Corporation", "Virtual Machine", AZURE_ASSET_TAG),
                Some("azure"),
            ),
            (dmi("Microsoft Corporation", "Virtual Machine", ""), None),
            (
                dmi("OpenStack Foundation", "OpenStack Nova", ""),
                Some("openstack"),
            ),
            (dmi("DigitalOcean", "Droplet", ""), Some("digitalocean")),
            (dmi("Hetzner", "vServer", ""), Some("hetzner")),
            (dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", ""), None),
        ];
        for (d, want) in cases {
            assert_eq!(d.cloud().map(|c| c.0), want, "{d:?}");
        }
        let xen = Dmi {
            bios_version: "4.11.amazon".into(),
            ..Dmi::default()
        };
        assert_eq!(xen.cloud().unwrap().0, "ec2");
    }
}
