//! Objects decoded without `metadata.managedFields`.
//!
//! The watches trimmed the field-ownership records off each object, but only after a whole list page
//! had been decoded: `fieldsV1` is a JSON tree, and decoded into maps it weighs several times its
//! text. A heap profile of a restart at 5,000 connectors found 9.8 MiB in list pages at the peak,
//! three quarters of it those records (a page of 100 Deployments held 4.7 MiB, one of 100 Pods
//! 3.7 MiB). So the watches decode through [`Lean`], which skips the records' text as it reads it:
//! they are never built. No decision reads them (the operator's own writes are server-side applies).
//!
//! The skipping is a thin layer over the real deserializer at two places only, the object's top
//! level and its `metadata`; everything below is decoded by the wrapped deserializer directly. A
//! crate could carry such a proxy generically (`serde-transcode` copies, `serde_ignored` reports,
//! neither drops a field), so it is written here, limited to what JSON objects need.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
    value::{BorrowedStrDeserializer, StringDeserializer},
};

/// `K` as decoded from the wire without its `metadata.managedFields`.
#[derive(Clone, Debug)]
pub struct Lean<K>(pub K);

impl<'de, K: de::Deserialize<'de>> de::Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(Level { inner: d, at: At::Object }).map(Lean)
    }
}

impl<K: kube::Resource> kube::Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &kube::api::ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        self.0.meta_mut()
    }
}

/// Where in the object a map is: its top level (where `metadata` is looked for) or its
/// `metadata` (where `managedFields` is skipped).
#[derive(Clone, Copy)]
enum At {
    Object,
    Metadata,
}

impl At {
    /// What a value under `key` is: another level that filters, or `None` (decoded as is).
    fn below(self, key: &str) -> Option<At> {
        match (self, key) {
            (At::Object, "metadata") => Some(At::Metadata),
            _ => None,
        }
    }

    fn skips(self, key: &str) -> bool {
        matches!((self, key), (At::Metadata, "managedFields"))
    }
}

/// A deserializer whose maps at this level pass through [`Filtered`].
struct Level<D> {
    inner: D,
    at: At,
}

macro_rules! forward {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(Wrap { inner: visitor, at: self.at })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Level<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, Wrap { inner: v, at: self.at })
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_newtype_struct(name, Wrap { inner: v, at: self.at })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, Wrap { inner: v, at: self.at })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple_struct(name, len, Wrap { inner: v, at: self.at })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(name, fields, Wrap { inner: v, at: self.at })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        // No object or metadata is an enum; its contents are decoded as they are.
        self.inner.deserialize_enum(name, variants, v)
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose maps are filtered; every other shape goes straight to the wrapped visitor.
struct Wrap<V> {
    inner: V,
    at: At,
}

macro_rules! pass {
    ($($method:ident($t:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    pass!(
        visit_bool(bool),
        visit_i64(i64),
        visit_i128(i128),
        visit_u64(u64),
        visit_u128(u128),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Level { inner: d, at: self.at })
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Level { inner: d, at: self.at })
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Filtered { inner: map, at: self.at, below: None })
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// A map that leaves out the keys its level skips, and filters the value of the one key that
/// leads to the next level.
struct Filtered<A> {
    inner: A,
    at: At,
    /// The level of the value whose key was handed out last.
    below: Option<At>,
}

/// A map key as JSON has it: borrowed from the input where no escape needed decoding.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Key<'de>>()? else { return Ok(None) };
            if self.at.skips(key.as_str()) {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            self.below = self.at.below(key.as_str());
            return match key {
                Key::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)).map(Some),
                Key::Owned(s) => {
                    let d: StringDeserializer<A::Error> = s.into_deserializer();
                    seed.deserialize(d).map(Some)
                }
            };
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.below.take() {
            Some(at) => self.inner.next_value_seed(Seeded { inner: seed, at }),
            None => self.inner.next_value_seed(seed),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A seed whose deserializer filters at `at`.
struct Seeded<S> {
    inner: S,
    at: At,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seeded<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Level { inner: d, at: self.at })
    }
}

/// The event of the object inside.
pub fn event<K>(event: kube::runtime::watcher::Event<Lean<K>>) -> kube::runtime::watcher::Event<K> {
    use kube::runtime::watcher::Event;
    match event {
        Event::Apply(o) => Event::Apply(o.0),
        Event::Delete(o) => Event::Delete(o.0),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(o.0),
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::core::{DeserializeGuard, ObjectList};

    fn deployment(name: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": name, "namespace": "ns", "labels": {"managedFields": "a label keeps its name"},
                "managedFields": [{"manager": "baton-operator", "operation": "Apply", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                "annotations": {"a": "b"},
            },
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 1},
        })
    }

    #[test]
    fn a_list_decodes_without_the_field_records_and_with_everything_else() {
        let text =
            serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "7"},
                                       "items": [deployment("a"), deployment("b\u{e9}")]})
            .to_string();
        let list: ObjectList<Lean<Deployment>> = serde_json::from_str(&text).unwrap();
        let plain: ObjectList<Deployment> = serde_json::from_str(&text).unwrap();
        assert_eq!(list.items.len(), 2);
        for (lean, mut full) in list.items.into_iter().map(|l| l.0).zip(plain.items) {
            assert!(lean.metadata.managed_fields.is_none(), "the records are not decoded");
            assert!(full.metadata.managed_fields.take().is_some(), "the plain decoding has them");
            assert_eq!(lean, full, "and nothing else differs");
        }
    }

    #[test]
    fn escaped_keys_and_guarded_kinds_decode_too() {
        // An escape makes the key an owned string; a guard decodes the object from a buffer.
        let text = deployment("a").to_string().replace("\"annotations\"", "\"annot\\u0061tions\"");
        let lean: Lean<Deployment> = serde_json::from_str(&text).unwrap();
        assert_eq!(lean.0.metadata.annotations.unwrap()["a"], "b");
        let guarded: Lean<DeserializeGuard<Deployment>> = serde_json::from_str(&text).unwrap();
        let d = guarded.0.0.unwrap();
        assert!(d.metadata.managed_fields.is_none());
        assert_eq!(d.metadata.labels.unwrap()["managedFields"], "a label keeps its name");
    }

    #[test]
    fn a_malformed_object_is_still_an_error() {
        let text = deployment("a").to_string().replace("\"replicas\":1", "\"replicas\":\"one\"");
        assert!(serde_json::from_str::<Lean<Deployment>>(&text).is_err());
    }
}
