//! Where a command looks.

use kube::{Api, Client};

use crate::api::BatonConnector;

/// Where a command looks: one namespace, or all with `-A`.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: String,
    pub all_namespaces: bool,
}

impl Scope {
    pub fn api(&self, client: &Client) -> Api<BatonConnector> {
        if self.all_namespaces {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), &self.namespace)
        }
    }
}
