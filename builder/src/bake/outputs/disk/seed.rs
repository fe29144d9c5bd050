//! The build's seed: every UUID, salt and hash seed of the disk image derives from it, and it
//! derives from the recipe and the inputs (the disk plan, the architecture, SOURCE_DATE_EPOCH and
//! the content tree's manifest, which lists every baked input's SHA-256). Two builds of the same
//! recipe and inputs thus lay out the same disk; a changed input changes every identifier.

use kiln_core::digest::sha256_hex;

/// The seed of one disk build (64 hex characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed(String);

impl Seed {
    /// The seed of the parts given, in order (each length-prefixed, so parts cannot run into
    /// each other).
    pub fn of(parts: &[&[u8]]) -> Seed {
        let mut all = Vec::new();
        for part in parts {
            all.extend_from_slice(format!("{}:", part.len()).as_bytes());
            all.extend_from_slice(part);
        }
        Seed(sha256_hex(&all))
    }

    /// 64 hex characters for `purpose`: a verity salt.
    pub fn hex(&self, purpose: &str) -> String {
        sha256_hex(format!("kiln-disk\n{}\n{purpose}\n", self.0).as_bytes())
    }

    /// A UUID (version 4 layout, lower case) for `purpose`: a partition, a filesystem, the disk.
    pub fn uuid(&self, purpose: &str) -> String {
        let h = self.hex(purpose);
        // Version nibble 4, variant bits 10: a well-formed random-style UUID.
        let variant = ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)];
        format!(
            "{}-{}-4{}-{variant}{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_parts_give_the_same_identifiers_and_others_differ() {
        let a = Seed::of(&[b"plan", b"manifest"]);
        assert_eq!(a, Seed::of(&[b"plan", b"manifest"]));
        assert_ne!(a, Seed::of(&[b"planm", b"anifest"]));
        assert_eq!(a.uuid("root"), a.uuid("root"));
        assert_ne!(a.uuid("root"), a.uuid("esp"));
        let u = a.uuid("root");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]), "{u}");
        assert_eq!(a.hex("salt").len(), 64);
    }
}
