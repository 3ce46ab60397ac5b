//! The JSON the caches keep, compressed. A fleet's objects of one kind are nearly alike: the same
//! labels, security context, defaults and status conditions, with a few names and hashes that differ.
//! Compressed against one of them as a dictionary, a Deployment's 3 KB of JSON take about 250 bytes
//! (plain LZ4 gets about half), and decompressing one for a reconcile takes microseconds.
//!
//! The dictionary of a kind is the first object offered as typical of it (one with a status, say);
//! objects packed before there is one are packed without a dictionary. The dictionary only changes
//! how well objects compress, never what they decompress to.

use std::sync::OnceLock;

use lz4_flex::block;

/// Compressed JSON, and whether it was compressed against the packer's dictionary.
#[derive(Clone, Debug)]
pub struct Packed {
    bytes: Box<[u8]>,
    with_dictionary: bool,
}

impl Packed {
    /// What it takes in memory, for tests.
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// Packs and unpacks objects of one kind.
#[derive(Default)]
pub struct Packer {
    dictionary: OnceLock<Box<[u8]>>,
}

impl Packer {
    pub const fn new() -> Self {
        Self { dictionary: OnceLock::new() }
    }

    /// `typical`: the object has what most objects of its kind have, so that it can serve as the
    /// dictionary if there is none yet.
    pub fn pack(&self, json: &[u8], typical: bool) -> Packed {
        if typical {
            self.dictionary.get_or_init(|| json.into());
        }
        match self.dictionary.get() {
            Some(d) => Packed {
                bytes: block::compress_prepend_size_with_dict(json, d).into(),
                with_dictionary: true,
            },
            None => Packed { bytes: block::compress_prepend_size(json).into(), with_dictionary: false },
        }
    }

    pub fn unpack(&self, packed: &Packed) -> Result<Vec<u8>, block::DecompressError> {
        match (packed.with_dictionary, self.dictionary.get()) {
            (true, Some(d)) => block::decompress_size_prepended_with_dict(&packed.bytes, d),
            (false, _) => block::decompress_size_prepended(&packed.bytes),
            // Never: a dictionary, once set, stays.
            (true, None) => Err(block::DecompressError::ExpectedAnotherByte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, hash: &str, with_status: bool) -> Vec<u8> {
        let status = if with_status {
            r#","status":{"availableReplicas":1,"conditions":[{"lastTransitionTime":"2026-11-30T15:38:50Z","lastUpdateTime":"2026-11-30T15:38:50Z","message":"Deployment has minimum availability.","reason":"MinimumReplicasAvailable","status":"True","type":"Available"}],"observedGeneration":1,"readyReplicas":1,"replicas":1,"updatedReplicas":1}"#
        } else {
            ""
        };
        format!(
            r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"annotations":{{"baton.conductorone.com/applied-hash":"{hash}"}},"labels":{{"app.kubernetes.io/instance":"{name}","app.kubernetes.io/managed-by":"baton-operator"}},"name":"{name}","namespace":"fleet-000"}},"spec":{{"replicas":1,"template":{{"spec":{{"containers":[{{"env":[{{"name":"BATON_HOST_ID","value":"{name}"}},{{"name":"BATON_DOMAIN","value":"{name}.okta.com"}}],"image":"public.ecr.aws/conductorone/baton-okta:latest","imagePullPolicy":"Always","name":"baton-okta","securityContext":{{"allowPrivilegeEscalation":false,"capabilities":{{"drop":["ALL"]}},"readOnlyRootFilesystem":true,"runAsNonRoot":true}},"terminationMessagePath":"/dev/termination-log"}}]}}}}}}{status}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn unpacks_to_what_was_packed_before_and_after_the_dictionary() {
        let p = Packer::new();
        let early = deployment("c-00001", "aa11", false);
        let packed_early = p.pack(&early, false);
        let typical = deployment("c-00002", "bb22", true);
        let packed_typical = p.pack(&typical, true);
        let later = deployment("c-00003", "cc33", true);
        let packed_later = p.pack(&later, true);
        assert_eq!(p.unpack(&packed_early).unwrap(), early);
        assert_eq!(p.unpack(&packed_typical).unwrap(), typical);
        assert_eq!(p.unpack(&packed_later).unwrap(), later);
        assert!(!packed_early.with_dictionary && packed_later.with_dictionary);
    }

    #[test]
    fn the_dictionary_is_the_first_typical_object_and_stays() {
        let p = Packer::new();
        let first = deployment("c-00001", "aa11", true);
        p.pack(&first, true);
        p.pack(&deployment("other", "zz99", true), true);
        assert_eq!(p.dictionary.get().map(|d| d.to_vec()), Some(first));
    }

    #[test]
    fn objects_alike_pack_small_against_the_dictionary() {
        let p = Packer::new();
        p.pack(&deployment("c-00001", "aa11", true), true);
        let json = deployment("c-04242", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", true);
        let alone = Packer::new().pack(&json, false).size();
        let against = p.pack(&json, true).size();
        assert!(against * 4 < alone, "{against} bytes against the dictionary, {alone} without");
    }
}
