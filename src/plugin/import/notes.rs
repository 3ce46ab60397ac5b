//! What an import says besides the manifest: comments above the values it wrote, what the
//! BatonConnector cannot express, and what a person still has to do. Every text here names
//! variables, Secrets and keys, never a value read from the Deployment's environment or a Secret.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Comments above a path of the output, such as `spec.config.domain` or `spec.credentials`.
    pub at: BTreeMap<String, Vec<String>>,
    /// `# not carried over: ...`: what the Deployment has and the operator's Deployment will not.
    pub not_carried: Vec<String>,
    /// What to do before (or after) applying, such as creating a Secret.
    pub todo: Vec<String>,
}

impl Notes {
    pub fn at(&mut self, path: &str, text: impl Into<String>) {
        self.at.entry(path.to_string()).or_default().push(text.into());
    }

    pub fn not_carried(&mut self, text: impl Into<String>) {
        self.not_carried.push(text.into());
    }

    pub fn todo(&mut self, text: impl Into<String>) {
        self.todo.push(text.into());
    }
}

/// Whether an environment variable outside the connector's schema may hold a secret, judged by its
/// name: its value is then left out of the output, so a token set inline never reaches a terminal.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "PRIVATE", "AUTH", "CERT"]
        .iter()
        .any(|word| upper.contains(word))
}
