//! The connector catalog: each ConductorOne connector's `config_schema.json` (see `catalog/README.md`),
//! embedded at build time and parsed into typed structures once, on first use.

pub mod admission;
pub mod example;
mod model;
pub mod validate;
#[cfg(test)]
mod validate_tests;
pub mod values;

use std::{collections::BTreeMap, sync::LazyLock};

pub use model::{
    Connector, Constraint, ConstraintKind, Field, FieldGroup, FieldType, Plain, Rules, parse_version,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));
}

/// The SDK version that added the health-check fields (`reference/connector-config.md`, section 5).
pub const HEALTH_CHECK_SDK: (u64, u64, u64) = (0, 7, 6);

/// Every catalogued connector, by name.
#[derive(Debug)]
pub struct Catalog {
    connectors: BTreeMap<String, Connector>,
}

impl Catalog {
    /// The catalog built into this binary.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
            Catalog::parse(embedded::FILES, embedded::PROVENANCE)
                .unwrap_or_else(|e| panic!("the embedded catalog does not parse: {e}"))
        });
        &CATALOG
    }

    /// Parses connector files (`(file name, JSON)`) and `provenance.json`.
    pub fn parse(files: &[(&str, &str)], provenance: &str) -> Result<Catalog, String> {
        let provenance: BTreeMap<String, model::Provenance> =
            serde_json::from_str(provenance).map_err(|e| format!("provenance.json: {e}"))?;
        let mut connectors = BTreeMap::new();
        for (file, text) in files {
            let raw: model::RawConnector = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
            let certain = provenance.get(&raw.connector).is_some_and(|p| p.same_commit);
            let connector = raw.into_connector(certain).map_err(|e| format!("{file}: {e}"))?;
            connectors.insert(connector.name.clone(), connector);
        }
        Ok(Catalog { connectors })
    }

    pub fn get(&self, name: &str) -> Option<&Connector> {
        self.connectors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }

    pub fn connectors(&self) -> impl Iterator<Item = &Connector> {
        self.connectors.values()
    }
}

/// The environment variable the SDK reads a field from: `BATON_` plus the name upper-cased with `-`
/// as `_` (baton-sdk pkg/config: viper prefix `baton`, key replacer `-`→`_`, AutomaticEnv).
pub fn env_name(field: &str) -> String {
    format!("BATON_{}", field.replace('-', "_").to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_parses_every_connector() {
        let catalog = Catalog::embedded();
        assert_eq!(catalog.names().count(), embedded::FILES.len());
        assert!(catalog.names().count() >= 100, "only {} connectors", catalog.names().count());
        let okta = catalog.get("okta").unwrap();
        assert_eq!(okta.repository, "ConductorOne/baton-okta");
        let token = okta.field("api-token").unwrap();
        assert!(token.secret && token.required && !token.ops);
        assert_eq!(token.kind, FieldType::String);
        assert_eq!(okta.groups.len(), 2);
        assert_eq!(okta.fallback_group().unwrap().name, "api-token-group");
        let timeout = okta.field("http-timeout-seconds").unwrap();
        assert!(timeout.ops);
        assert_eq!(timeout.default, Some(Plain::Int(300)));
        assert_eq!((timeout.rules.gte, timeout.rules.lte), (Some(1), Some(1800)));
    }

    #[test]
    fn provenance_decides_whether_the_sdk_version_is_certain() {
        let catalog = Catalog::embedded();
        assert!(catalog.get("argo-cd").unwrap().sdk_version_certain);
        assert!(!catalog.get("airbyte").unwrap().sdk_version_certain);
        let certain = catalog.connectors().filter(|c| c.sdk_version_certain).count();
        assert_eq!(certain, 44, "the catalog README says 44 connectors share one commit");
    }

    #[test]
    fn versions_and_env_names() {
        assert_eq!(parse_version("v0.7.6"), Some((0, 7, 6)));
        assert_eq!(parse_version("v0.25.0-rc1"), Some((0, 25, 0)));
        assert_eq!(parse_version("main"), None);
        assert_eq!(env_name("api-token"), "BATON_API_TOKEN");
        assert_eq!(env_name("okta-client-id"), "BATON_OKTA_CLIENT_ID");
    }

    #[test]
    fn every_sdk_version_reads_as_semver() {
        for c in Catalog::embedded().connectors() {
            assert!(c.sdk().is_some(), "{}: sdkVersion {:?}", c.name, c.sdk_version);
        }
    }
}
