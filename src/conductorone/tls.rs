//! Extra trust anchors. reqwest (rustls) trusts the bundled Mozilla roots only; a
//! TLS-inspecting proxy or a private endpoint needs its CA added, which the operator takes from
//! `ClientConfig::ca_bundle` or, failing that, the conventional `SSL_CERT_FILE` variable.

use std::path::{Path, PathBuf};

use super::error::{Error, ErrorKind};

pub(crate) const CA_BUNDLE_ENV: &str = "SSL_CERT_FILE";

pub(crate) fn ca_bundle_path(configured: Option<&Path>) -> Option<PathBuf> {
    configured
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CA_BUNDLE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Reads a PEM bundle. An unreadable file or one with no certificate fails the client's
/// construction: silently ignoring it would only show up later as TLS errors.
pub(crate) fn load_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let bad = |why: String| Error::new(ErrorKind::Config, "configure", why);
    let pem =
        std::fs::read(path).map_err(|e| bad(format!("cannot read CA bundle {}: {e}", path.display())))?;
    parse_ca_bundle(&pem, &format!("CA bundle {}", path.display()))
}

/// PEM certificates from text (`what` names where they come from, for the error).
pub(crate) fn parse_ca_bundle(pem: &[u8], what: &str) -> Result<Vec<reqwest::Certificate>, Error> {
    let bad = |why: String| Error::new(ErrorKind::Config, "configure", why);
    let certs =
        reqwest::Certificate::from_pem_bundle(pem).map_err(|_| bad(format!("{what} is not valid PEM")))?;
    if certs.is_empty() {
        return Err(bad(format!("{what} holds no certificate")));
    }
    Ok(certs)
}
