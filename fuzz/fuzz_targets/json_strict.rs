//! `herald_core::json::check_strict`, the door every payload passes: it must
//! accept exactly the texts serde_json reads into a value that is the text's
//! own (no object starting with the key serde_json reads as "the JSON in my
//! value") and that survives being written and read again, and accept
//! whatever serde_json writes of such a value.
#![no_main]

use std::collections::BTreeSet;
use std::fmt;

use herald_core::json::check_strict;
use libfuzzer_sys::fuzz_target;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let strict = check_strict(text);
    let own = first_keys(text).is_some_and(|keys| !keys.contains(RAW_VALUE_TOKEN));
    let read_back = serde_json::from_str::<Value>(text).ok().filter(|value| {
        let written = serde_json::to_string(value).expect("a Value always serializes");
        own && serde_json::from_str::<Value>(&written).ok().as_ref() == Some(value)
    });
    assert_eq!(
        strict.is_ok(),
        read_back.is_some(),
        "check_strict disagrees with a serde_json round trip on {text:?}: {strict:?}"
    );
    if let Some(value) = read_back {
        let written = serde_json::to_string(&value).expect("a Value always serializes");
        assert_eq!(check_strict(&written), Ok(()), "{written:?}");
    }
});

/// The first key of every object in `text`, decoded, read without `Value`.
fn first_keys(text: &str) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    let mut de = serde_json::Deserializer::from_str(text);
    FirstKeys(&mut keys).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(keys)
}

struct FirstKeys<'a>(&'a mut BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for FirstKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(FirstKeys(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if std::mem::take(&mut first) {
                self.0.insert(key);
            }
            map.next_value_seed(FirstKeys(&mut *self.0))?;
        }
        Ok(())
    }
}
