//! Which BatonConnectors read which Secret, kept from the BatonConnector watch, so that a Secret event
//! finds its readers without scanning the fleet.

use std::{
    collections::{HashMap, HashSet},
    sync::RwLock,
};

use kube::{ResourceExt, runtime::watcher::Event};

use super::{Key, stored::Guarded};
use crate::resources::inputs;

#[derive(Default)]
pub struct SecretIndex(RwLock<Inner>);

#[derive(Default)]
struct Inner {
    /// (namespace, Secret) to the names of the resources that read it, sorted. A Vec, not a set: a
    /// Secret usually has one reader, and a one-element BTreeSet allocates a node for eleven.
    readers: HashMap<Key, Vec<String>>,
    /// (namespace, resource) to the Secrets it reads.
    reads: HashMap<Key, Vec<String>>,
    /// Per scope being re-listed, the resources seen so far.
    relisting: HashMap<Option<String>, HashSet<Key>>,
}

impl SecretIndex {
    /// Records the Secrets one resource reads, replacing what it read before.
    pub fn set(&self, ns: &str, name: &str, secrets: Vec<String>) {
        let mut inner = self.0.write().expect("secret index poisoned");
        let key = (ns.to_string(), name.to_string());
        for set in inner.relisting.values_mut() {
            set.insert(key.clone());
        }
        if inner.reads.get(&key) == Some(&secrets) {
            return;
        }
        inner.unlink(&key);
        for s in &secrets {
            let names = inner.readers.entry((ns.to_string(), s.clone())).or_default();
            if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
                names.insert(at, name.to_string());
            }
        }
        inner.reads.insert(key, secrets);
    }

    pub fn remove(&self, ns: &str, name: &str) {
        self.0.write().expect("secret index poisoned").unlink(&(ns.to_string(), name.to_string()));
    }

    /// The names of the resources in `ns` that read the Secret.
    pub fn readers(&self, ns: &str, secret: &str) -> Vec<String> {
        let inner = self.0.read().expect("secret index poisoned");
        inner.readers.get(&(ns.to_string(), secret.to_string())).into_iter().flatten().cloned().collect()
    }

    pub fn is_read(&self, ns: &str, secret: &str) -> bool {
        let inner = self.0.read().expect("secret index poisoned");
        inner.readers.contains_key(&(ns.to_string(), secret.to_string()))
    }

    /// Follows the BatonConnector watch. Unreadable resources read nothing the operator knows of.
    pub fn observe(&self, scope: Option<&str>, event: &Event<Guarded>) {
        let track = |g: &Guarded| {
            let (Some(ns), name) = (g.namespace(), g.name_any()) else { return };
            match &g.0 {
                Ok(bc) => self.set(&ns, &name, inputs::referenced_secrets(bc)),
                Err(_) => self.set(&ns, &name, Vec::new()),
            }
        };
        match event {
            Event::Apply(g) | Event::InitApply(g) => track(g),
            Event::Delete(g) => self.remove(&g.namespace().unwrap_or_default(), &g.name_any()),
            Event::Init => {
                let mut inner = self.0.write().expect("secret index poisoned");
                inner.relisting.insert(scope.map(str::to_string), HashSet::new());
            }
            Event::InitDone => {
                let mut inner = self.0.write().expect("secret index poisoned");
                let scope = scope.map(str::to_string);
                let Some(seen) = inner.relisting.remove(&scope) else { return };
                let gone: Vec<Key> = inner
                    .reads
                    .keys()
                    .filter(|k| scope.as_ref().is_none_or(|ns| *ns == k.0) && !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    inner.unlink(&key);
                }
            }
        }
    }
}

impl Inner {
    fn unlink(&mut self, key: &Key) {
        for s in self.reads.remove(key).unwrap_or_default() {
            let secret = (key.0.clone(), s);
            if let Some(set) = self.readers.get_mut(&secret) {
                set.retain(|n| *n != key.1);
                if set.is_empty() {
                    self.readers.remove(&secret);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_follow_edits_and_deletes() {
        let i = SecretIndex::default();
        i.set("ns", "a", vec!["app".into(), "c1".into()]);
        i.set("ns", "b", vec!["c1".into()]);
        assert_eq!(i.readers("ns", "c1"), ["a", "b"]);
        assert!(i.readers("other", "c1").is_empty());
        i.set("ns", "a", vec!["app2".into()]);
        assert_eq!(i.readers("ns", "c1"), ["b"]);
        assert!(!i.is_read("ns", "app"));
        i.remove("ns", "b");
        assert!(!i.is_read("ns", "c1"));
        assert_eq!(i.readers("ns", "app2"), ["a"]);
    }

    #[test]
    fn a_relist_forgets_resources_deleted_meanwhile() {
        let i = SecretIndex::default();
        i.set("ns", "gone", vec!["s".into()]);
        i.set("other", "kept", vec!["s".into()]);
        i.observe(Some("ns"), &Event::Init);
        i.set("ns", "new", vec!["s".into()]);
        i.observe(Some("ns"), &Event::InitDone);
        assert_eq!(i.readers("ns", "s"), ["new"]);
        assert_eq!(i.readers("other", "s"), ["kept"]);
    }
}
