//! YAML alias expansion, measured before a document is built: an anchored string or list can be
//! aliased thousands of times, and every alias becomes a full copy in the parsed document.
//!
//! [`charge_expansion`] walks the document with aliases expanded (the parser replays an
//! anchor's events for each alias) without building it, counting one byte per node plus the
//! bytes of each scalar, and stops as soon as the expansion passes the document's own size plus
//! what is left of the `yaml-alias-bytes` budget.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use crate::userdata::budget::{Budget, Limit};
use crate::userdata::error::Result;

/// Charges the bytes that aliases add to `text` (one YAML document) to the budget. Documents
/// that do not parse are left to the real parser, which reports them.
pub fn charge_expansion(text: &str, budget: &Budget, origin: &str) -> Result<()> {
    let own = text.len() as u64;
    let ceiling = own.saturating_add(budget.left(Limit::YamlAliasBytes));
    let size = Cell::new(0);
    let walk = Walk {
        size: &size,
        ceiling,
    };
    let parsed = walk.deserialize(serde_yaml_ng::Deserializer::from_str(text));
    if size.get() > ceiling {
        return Err(budget.exceeded(Limit::YamlAliasBytes, origin));
    }
    if parsed.is_ok() {
        budget.charge(
            Limit::YamlAliasBytes,
            size.get().saturating_sub(own),
            origin,
        )?;
    }
    Ok(())
}

/// Visits every node of the expanded document, adding up its size in `size`.
#[derive(Clone, Copy)]
struct Walk<'a> {
    size: &'a Cell<u64>,
    ceiling: u64,
}

impl Walk<'_> {
    fn add<E: de::Error>(self, bytes: usize) -> std::result::Result<(), E> {
        self.size
            .set(self.size.get().saturating_add(1 + bytes as u64));
        if self.size.get() > self.ceiling {
            return Err(E::custom("YAML alias expansion over budget"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        self.add(v.len())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<(), E> {
        self.add(v.len())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        self.add(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        self.add(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        self.add(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged value (`!tag value`): the tag, then its value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> std::result::Result<(), A::Error> {
        let ((), variant) = data.variant_seed(self)?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::budget::Limits;

    fn budget(alias_bytes: u64) -> Budget {
        let mut limits = Limits::default();
        limits.set(Limit::YamlAliasBytes, alias_bytes);
        Budget::new(limits)
    }

    #[test]
    fn documents_without_aliases_cost_nothing() {
        let text =
            "a: {x: 1, y: [2, 3]}\nb: !!binary aGk=\nc: \"long string\"\nd: !custom {e: 1}\n";
        let b = budget(0);
        charge_expansion(text, &b, "part 1").unwrap();
        assert_eq!(b.left(Limit::YamlAliasBytes), 0);
        // Not YAML: left to the parser.
        charge_expansion("a: [", &b, "part 1").unwrap();
    }

    #[test]
    fn aliases_are_charged_and_stopped() {
        let text = "a: &x [hello, world]\nb: *x\nc: *x\n";
        let b = budget(1000);
        charge_expansion(text, &b, "part 1").unwrap();
        assert!(b.left(Limit::YamlAliasBytes) < 1000);

        let big = "x".repeat(1 << 20);
        let aliases = "- *s\n".repeat(64);
        let text = format!("big: &s {big}\nmany:\n{aliases}");
        let err = charge_expansion(&text, &budget(16 << 20), "part 2").unwrap_err();
        assert_eq!(err.field, "part 2");
        assert!(
            err.message.contains("yaml-alias-bytes budget"),
            "{}",
            err.message
        );
    }
}
