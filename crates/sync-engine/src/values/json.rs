//! Graph's JSON straight into a value block (no `serde_json::Value` in between, no key
//! allocated), and a block back out as JSON (`Serialize`, `Debug`) in the shape a write sends.
//! What "unset" means for each type is the module note of `values`; a value of the wrong JSON
//! type is an error, as serde's derive would give.

use super::build::FieldsBuilder;
use super::{ContactFields, push_len};
use crate::field::{ADDRESS_KEYS, Field, Kind};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Reads the value of `field` from a deserializer into a builder.
pub(crate) struct ValueSeed<'b> {
    pub(crate) field: Field,
    pub(crate) builder: &'b mut FieldsBuilder,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.field.kind() {
            Kind::Text => "a string or null",
            Kind::Date => "a date/time string or null",
            Kind::TextList => "an array of strings or null",
            Kind::Emails => "an array of emailAddress objects or null",
            Kind::Address => "a physicalAddress object or null",
        };
        write!(f, "{what} for {}", self.field.json_name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.builder.drop_field(self.field);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match self.field.kind() {
            Kind::Text | Kind::Date => {
                self.builder.text(self.field, s);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let kind = self.field.kind();
        if !matches!(kind, Kind::TextList | Kind::Emails) {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let b = self.builder;
        b.drop_field(self.field);
        let start = b.mark();
        let mut n = 0;
        loop {
            let more = if kind == Kind::Emails {
                seq.next_element_seed(EmailSeed(b))?
            } else {
                seq.next_element_seed(ItemSeed(b))?
            };
            if more.is_none() {
                break;
            }
            n += 1;
        }
        if n > 0 {
            b.record(self.field, start, n);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.field.kind() != Kind::Address {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        let b = self.builder;
        b.parts.clear();
        let mut parts = [(0u32, 0u32); 5];
        while let Some(key) =
            map.next_key_seed(Key(|k: &str| ADDRESS_KEYS.iter().position(|a| *a == k)))?
        {
            match key {
                Some(i) => {
                    let start = b.parts.len() as u32;
                    map.next_value_seed(RawSeed(&mut b.parts))?;
                    parts[i] = (start, b.parts.len() as u32);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        b.drop_field(self.field);
        if parts.iter().any(|(s, e)| e > s) {
            let start = b.mark();
            for (s, e) in parts {
                push_len(&mut b.scratch, (e - s) as usize);
                b.scratch
                    .extend_from_slice(&b.parts[s as usize..e as usize]);
            }
            b.record(self.field, start, 0);
        }
        Ok(())
    }
}

/// A key of a JSON object, classified by `F` while it is looked at: no key is ever allocated.
pub(crate) struct Key<F>(pub(crate) F);

impl<'de, K, F: FnOnce(&str) -> K> DeserializeSeed<'de> for Key<F> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K, F: FnOnce(&str) -> K> Visitor<'de> for Key<F> {
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a property name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<K, E> {
        Ok((self.0)(s))
    }
}

/// A string (or `null`, as `""`) appended raw to a buffer.
struct RawSeed<'b>(&'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A list item: length + bytes (`null` as `""`).
struct ItemSeed<'b>(&'b mut FieldsBuilder);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push_item(s.as_bytes());
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_item(b"");
        Ok(())
    }
}

/// One `emailAddress` object: its address then its name, each as length + bytes.
struct EmailSeed<'b>(&'b mut FieldsBuilder);

impl<'de> DeserializeSeed<'de> for EmailSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EmailSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an emailAddress object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let b = self.0;
        b.parts.clear();
        let (mut name, mut address) = ((0u32, 0u32), (0u32, 0u32));
        while let Some(key) = map.next_key_seed(Key(|k: &str| match k {
            "name" => Some(true),
            "address" => Some(false),
            _ => None,
        }))? {
            let slot = match key {
                Some(true) => &mut name,
                Some(false) => &mut address,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let start = b.parts.len() as u32;
            map.next_value_seed(RawSeed(&mut b.parts))?;
            *slot = (start, b.parts.len() as u32);
        }
        for (s, e) in [address, name] {
            push_len(&mut b.scratch, (e - s) as usize);
            b.scratch
                .extend_from_slice(&b.parts[s as usize..e as usize]);
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for ContactFields {
    /// A JSON object of contact properties (Graph's shape); properties that are not supported
    /// fields are ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ContactFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of contact properties")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContactFields, A::Error> {
                let mut b = FieldsBuilder::new();
                while let Some(key) = map.next_key_seed(Key(Field::from_json_name))? {
                    read_value(&mut map, key, &mut b)?;
                }
                Ok(b.build())
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads the value of a property into `b` if it is a supported field; skips it if not.
pub(crate) fn read_value<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: Option<Field>,
    b: &mut FieldsBuilder,
) -> Result<(), A::Error> {
    match key {
        Some(field) => map.next_value_seed(ValueSeed { field, builder: b }),
        None => map.next_value::<IgnoredAny>().map(|_| ()),
    }
}

impl fmt::Debug for ContactFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.set_fields()
                    .iter()
                    .map(|g| (g.json_name(), crate::fields::json(g, self))),
            )
            .finish()
    }
}

impl serde::Serialize for ContactFields {
    /// Every set field, as a write sends it ([`crate::fields::json`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.set_fields().len()))?;
        for g in self.set_fields().iter() {
            m.serialize_entry(g.json_name(), &crate::fields::json(g, self))?;
        }
        m.end()
    }
}
