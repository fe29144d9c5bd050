//! PXE artifacts: the kernel and initrd served over the network, the kernel command line, and an
//! iPXE script that boots them with `kiln.userdata=URL` (kiln-firstboot's kernel command line
//! datasource). /usr and / come from the disk image written to the machine's disk (their
//! partition UUIDs are on the command line).

use std::path::Path;

use anyhow::Context as _;

/// The iPXE script: `${kiln-userdata}` is set by the PXE server's menu or DHCP options, e.g.
/// `set kiln-userdata http://10.0.0.1/nodes/${mac}.yaml` before chaining to it.
pub fn ipxe_script(cmdline: &str) -> String {
    format!(
        "#!ipxe\n\
         # kiln: network boot; kiln-firstboot fetches its user-data from kiln-userdata.\n\
         isset ${{kiln-userdata}} || set kiln-userdata http://${{next-server}}/kiln/user-data\n\
         kernel vmlinuz {cmdline} kiln.userdata=${{kiln-userdata}}\n\
         initrd initrd\n\
         boot\n"
    )
}

/// Writes `vmlinuz`, `initrd`, `cmdline` and `boot.ipxe` into `dir`.
pub fn write(dir: &Path, kernel: &Path, initrd: &Path, cmdline: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::copy(kernel, dir.join("vmlinuz")).context("copying the kernel for PXE")?;
    std::fs::copy(initrd, dir.join("initrd")).context("copying the initrd for PXE")?;
    std::fs::write(dir.join("cmdline"), format!("{cmdline}\n"))?;
    std::fs::write(dir.join("boot.ipxe"), ipxe_script(cmdline))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_passes_the_userdata_url() {
        let s = super::ipxe_script("root=PARTUUID=x rw");
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("kernel vmlinuz root=PARTUUID=x rw kiln.userdata=${kiln-userdata}\n"));
    }
}
