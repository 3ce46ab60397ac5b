//! Decides whether a child needs an apply, without writing: an operator restart on a converged fleet
//! must cost the API server no writes, and a server-side apply that changes nothing is still one.
//!
//! Two checks, because each alone misses a case:
//! - a hash of the desired object, stored on the child, catches fields the operator stopped setting
//!   (only an apply removes those);
//! - a containment check of desired in live catches hand edits to fields the operator owns.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Child annotation holding [`desired_hash`] of what was last applied.
pub const APPLIED_HASH_ANNOTATION: &str = "baton.conductorone.com/applied-hash";

/// Hash of a desired object's JSON (serde_json maps are ordered, so the JSON is canonical).
pub fn desired_hash<T: Serialize>(desired: &T) -> String {
    let json = serde_json::to_vec(desired).expect("Kubernetes objects always serialize");
    hex::encode(&Sha256::digest(&json)[..16])
}

/// Records the desired hash on the object itself, as applied.
pub fn stamp<K: kube::Resource + Serialize>(desired: &mut K) -> String {
    let hash = desired_hash(desired);
    kube::ResourceExt::annotations_mut(desired).insert(APPLIED_HASH_ANNOTATION.into(), hash.clone());
    hash
}

/// Why a child is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyCause {
    /// It does not exist.
    Create,
    /// The desired object changed.
    Update,
    /// Someone changed a field the operator sets.
    Drift,
    /// The resource adopts an object it did not create (the `adopt-existing` annotation).
    Adopt,
}

impl ApplyCause {
    /// The metric label and log value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Drift => "drift",
            Self::Adopt => "adopt",
        }
    }
}

/// What the comparison of a child with its desired state says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// As desired: no write.
    Unchanged,
    Apply(ApplyCause),
    /// An object of that name exists and is not the resource's: never taken over.
    NotOurs,
}

/// Compares a live child (None: absent) with the stamped desired object whose hash is `hash`;
/// `ours` says whether the live one is controlled by the resource.
pub fn verdict<K: kube::Resource + Serialize>(
    live: Option<&K>,
    desired: &K,
    hash: &str,
    ours: bool,
) -> Verdict {
    let Some(live) = live else { return Verdict::Apply(ApplyCause::Create) };
    if !ours {
        return Verdict::NotOurs;
    }
    let annotations = kube::ResourceExt::annotations(live);
    if annotations.get(APPLIED_HASH_ANNOTATION).map(String::as_str) != Some(hash) {
        return Verdict::Apply(ApplyCause::Update);
    }
    let l = serde_json::to_value(live).unwrap_or_default();
    let d = serde_json::to_value(desired).unwrap_or_default();
    let same = ["labels", "annotations"].iter().all(|k| contains(&l["metadata"][k], &d["metadata"][k]))
        && contains(&l["spec"], &d["spec"]);
    if same { Verdict::Unchanged } else { Verdict::Apply(ApplyCause::Drift) }
}

/// Whether every field set in `desired` has the same value in `live`. Live objects carry defaults and
/// fields of other managers, so extra fields are fine; lists must match element by element because
/// the operator owns them whole (containers, env, volumes).
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (_, Value::Null) => true,
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => contains(lv, dv),
            // The API server drops empty maps, lists and strings and `false`-y defaults on some fields.
            None => is_empty(dv),
        }),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::String(l), Value::String(d)) => l == d || same_quantity(l, d),
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        (l, d) => l == d,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The API server rewrites quantities into canonical form (`0.5` → `500m`, `1024Mi` → `1Gi`); compare
/// their values instead of their spelling.
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity_value(a), quantity_value(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

fn quantity_value(s: &str) -> Option<f64> {
    let split =
        s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_live_fields_are_fine() {
        assert!(contains(&json!({"a": 1, "b": {"c": 2, "d": 3}}), &json!({"b": {"c": 2}})));
    }

    #[test]
    fn changed_or_missing_fields_are_drift() {
        assert!(!contains(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!contains(&json!({}), &json!({"a": "x"})));
        assert!(!contains(&json!({"l": [1, 2]}), &json!({"l": [1]})));
    }

    #[test]
    fn empty_desired_matches_absent_live() {
        assert!(contains(&json!({}), &json!({"a": {}, "b": [], "c": ""})));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(contains(&json!({"cpu": "500m"}), &json!({"cpu": "0.5"})));
        assert!(contains(&json!({"memory": "1Gi"}), &json!({"memory": "1024Mi"})));
        assert!(!contains(&json!({"memory": "1G"}), &json!({"memory": "1Gi"})));
        assert!(!contains(&json!({"name": "a1"}), &json!({"name": "b1"})));
    }

    #[test]
    fn hash_changes_with_content() {
        assert_eq!(desired_hash(&json!({"a": 1})), desired_hash(&json!({"a": 1})));
        assert_ne!(desired_hash(&json!({"a": 1})), desired_hash(&json!({"a": 2})));
    }
}
