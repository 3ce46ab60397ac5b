//! ConductorOne API credentials: the client ID (which names the tenant host) and the client
//! secret (an Ed25519 private JWK behind a `secret-token:` prefix).

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{Error, ErrorKind};

/// A ConductorOne client ID and secret, as read from a Kubernetes Secret
/// (keys `clientId` / `clientSecret`). `Debug` redacts the secret.
#[derive(Clone, Debug)]
pub struct ApiCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl ApiCredentials {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        ApiCredentials {
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
        }
    }

    /// Checks both values offline, so a bad Secret can be reported without calling the API.
    pub fn validate(&self) -> Result<(), Error> {
        ClientId::parse(&self.client_id)?;
        SigningSecret::parse(&self.client_secret)?;
        Ok(())
    }

    /// Identifies this exact id/secret pair without holding the secret. The token cache is keyed
    /// by it so a Secret carrying someone else's client ID with a wrong secret can never be
    /// served a token that was minted with the right one.
    pub(crate) fn cache_key(&self) -> (String, [u8; 32]) {
        let digest = Sha256::digest(self.client_secret.expose_secret().trim().as_bytes());
        (self.client_id.trim().to_owned(), digest.into())
    }
}

/// A parsed client ID: `<name>@<host[:port]>/<use-case>`, e.g. `calm-fox-1@acme.conductor.one/spc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId {
    raw: String,
    authority: String,
    host: String,
    port: Option<u16>,
}

impl ClientId {
    /// Parses the client ID. Surrounding whitespace (a trailing newline from `echo` into a
    /// Secret is common) is ignored.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let raw = input.trim();
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidCredentials,
                "parse_client_id",
                format!("client ID must look like <name>@<host>/<use-case>: {why}"),
            )
        };
        let (name, rest) = raw.split_once('@').ok_or_else(|| bad("no '@'"))?;
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        let authority = rest.split_once('/').map_or(rest, |(host, _)| host);
        if authority.is_empty() {
            return Err(bad("empty host"));
        }
        if authority.chars().any(|c| c.is_whitespace() || matches!(c, '@' | '?' | '#' | '\\')) {
            return Err(bad("invalid character in host"));
        }
        let url =
            url::Url::parse(&format!("https://{authority}/")).map_err(|_| bad("invalid host or port"))?;
        let host = url.host_str().ok_or_else(|| bad("invalid host"))?.to_owned();
        let port = url.port();
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        Ok(ClientId { raw: raw.to_owned(), authority, host, port })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// `host[:port]`: where the token endpoint and the API live.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The host without port: the client assertion's audience ("the audience never expects a
    /// port", per the official SDKs).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// True for `localhost` and loopback addresses, the only hosts plain HTTP may be used with.
    pub fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The Ed25519 signing key inside a client secret. `Debug` shows only the public half.
pub(crate) struct SigningSecret {
    key: SigningKey,
    kid: Option<String>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningSecret")
            .field("public_key", &URL_SAFE_NO_PAD.encode(self.key.verifying_key()))
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    d: Option<String>,
    kid: Option<String>,
}

impl Drop for Jwk {
    fn drop(&mut self) {
        self.d.zeroize();
    }
}

const SECRET_PREFIX: &str = "secret-token";
const SECRET_ISSUER: &str = "conductorone.com";
const SECRET_VERSION: &str = "v1";

impl SigningSecret {
    /// Parses `secret-token:conductorone.com:v1:<base64url(JWK)>`.
    ///
    /// No error message quotes any part of the input: a mangled secret can put key material in
    /// any position.
    pub(crate) fn parse(secret: &SecretString) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidCredentials,
                "parse_client_secret",
                format!("client secret is not usable: {why}"),
            )
        };
        let secret = secret.expose_secret().trim();
        if secret.is_empty() {
            return Err(bad("it is empty"));
        }
        let parts: Vec<&str> = secret.split(':').collect();
        let [prefix, issuer, version, encoded] = parts.as_slice() else {
            return Err(bad("expected the form secret-token:conductorone.com:v1:<key>"));
        };
        if *prefix != SECRET_PREFIX || *issuer != SECRET_ISSUER {
            return Err(bad("expected the prefix secret-token:conductorone.com:"));
        }
        if *version != SECRET_VERSION {
            return Err(bad("unsupported version (expected v1)"));
        }
        // Padding is not part of the format, but tolerating it costs nothing.
        let json = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|_| bad("the key is not valid base64url"))?,
        );
        let jwk: Jwk = serde_json::from_slice(&json).map_err(|_| bad("the key is not a JSON Web Key"))?;
        if jwk.kty.as_deref() != Some("OKP") {
            return Err(bad("the key type (kty) is not OKP"));
        }
        if jwk.crv.as_deref() != Some("Ed25519") {
            return Err(bad("the key curve (crv) is not Ed25519"));
        }
        let d = jwk
            .d
            .as_deref()
            .ok_or_else(|| bad("the key has no private part (d); a public key cannot sign"))?;
        let d = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(d.trim_end_matches('='))
                .map_err(|_| bad("the private key is not valid base64url"))?,
        );
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(d.as_slice().try_into().map_err(|_| bad("the private key is not 32 bytes"))?);
        let key = SigningKey::from_bytes(&seed);
        if let Some(x) = jwk.x.as_deref() {
            let public = URL_SAFE_NO_PAD
                .decode(x.trim_end_matches('='))
                .map_err(|_| bad("the public key is not valid base64url"))?;
            if public.as_slice() != key.verifying_key().as_bytes() {
                return Err(bad("the public key (x) does not belong to the private key (d)"));
            }
        }
        Ok(SigningSecret { key, kid: jwk.kid.clone() })
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn encode_secret(jwk: &serde_json::Value) -> String {
        format!(
            "secret-token:conductorone.com:v1:{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(jwk).unwrap())
        )
    }

    pub(crate) fn test_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    pub(crate) fn private_jwk(key: &SigningKey) -> serde_json::Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            "d": URL_SAFE_NO_PAD.encode(key.to_bytes()),
        })
    }

    fn parse(secret: &str) -> Result<SigningSecret, Error> {
        SigningSecret::parse(&SecretString::from(secret))
    }

    fn parse_err(secret: &str) -> String {
        let err = parse(secret).expect_err("secret should be rejected");
        assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
        assert!(err.is_permanent());
        err.to_string()
    }

    #[test]
    fn client_id_with_standard_host() {
        let id = ClientId::parse("strange-hydra-68836@acme.conductor.one/pcc").unwrap();
        assert_eq!(id.authority(), "acme.conductor.one");
        assert_eq!(id.host(), "acme.conductor.one");
        assert_eq!(id.port(), None);
        assert!(!id.is_loopback());
    }

    #[test]
    fn client_id_with_eu_host_and_trailing_newline() {
        let id = ClientId::parse("calm-fox@acme.c1eu.ai/spc\n").unwrap();
        assert_eq!(id.authority(), "acme.c1eu.ai");
        assert_eq!(id.as_str(), "calm-fox@acme.c1eu.ai/spc");
    }

    #[test]
    fn client_id_with_port_keeps_port_out_of_the_audience() {
        let id = ClientId::parse("x@c1dev.example.dev:8443/ccc").unwrap();
        assert_eq!(id.authority(), "c1dev.example.dev:8443");
        assert_eq!(id.host(), "c1dev.example.dev");
        assert_eq!(id.port(), Some(8443));
        let local = ClientId::parse("x@127.0.0.1:4000/spc").unwrap();
        assert!(local.is_loopback());
        assert_eq!(local.host(), "127.0.0.1");
        assert!(ClientId::parse("x@localhost:1/spc").unwrap().is_loopback());
        assert!(ClientId::parse("x@[::1]:1/spc").unwrap().is_loopback());
    }

    #[test]
    fn client_id_hosts_are_normalised() {
        let id = ClientId::parse("x@ACME.Conductor.One:443/spc").unwrap();
        assert_eq!(id.authority(), "acme.conductor.one");
        assert_eq!(id.port(), None);
    }

    #[test]
    fn malformed_client_ids_are_rejected() {
        for bad in [
            "",
            "no-at-sign.conductor.one/spc",
            "@acme.conductor.one/spc",
            "name@/spc",
            "name@",
            "name@host name/spc",
            "name@host:notaport/spc",
            "name@host:99999/spc",
            "name@user@host/spc",
            "name@host?x=1/spc",
        ] {
            let err = ClientId::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidCredentials, "{bad}");
        }
    }

    #[test]
    fn good_secret_parses_and_keeps_the_key() {
        let key = test_key();
        let parsed = parse(&encode_secret(&private_jwk(&key))).unwrap();
        assert_eq!(parsed.key().to_bytes(), key.to_bytes());
        assert_eq!(parsed.kid(), None);
    }

    #[test]
    fn secret_with_kid_and_without_x_parses() {
        let key = test_key();
        let mut jwk = private_jwk(&key);
        jwk.as_object_mut().unwrap().remove("x");
        jwk["kid"] = json!("k1");
        let parsed = parse(&format!("  {}\n", encode_secret(&jwk))).unwrap();
        assert_eq!(parsed.kid(), Some("k1"));
    }

    #[test]
    fn wrong_prefix_issuer_version_or_shape_is_rejected() {
        let good = encode_secret(&private_jwk(&test_key()));
        let encoded = good.rsplit(':').next().unwrap();
        assert!(parse_err(&format!("secret:conductorone.com:v1:{encoded}")).contains("prefix"));
        assert!(parse_err(&format!("secret-token:example.com:v1:{encoded}")).contains("prefix"));
        assert!(parse_err(&format!("secret-token:conductorone.com:v2:{encoded}")).contains("v1"));
        assert!(parse_err(encoded).contains("form"));
        assert!(parse_err(&format!("{good}:extra")).contains("form"));
        assert!(parse_err("   ").contains("empty"));
    }

    #[test]
    fn bad_base64_and_bad_json_are_rejected() {
        assert!(parse_err("secret-token:conductorone.com:v1:!!!not-base64").contains("base64url"));
        let not_json = URL_SAFE_NO_PAD.encode("not json");
        assert!(parse_err(&format!("secret-token:conductorone.com:v1:{not_json}")).contains("JSON Web Key"));
    }

    #[test]
    fn public_only_jwk_is_rejected() {
        let mut jwk = private_jwk(&test_key());
        jwk.as_object_mut().unwrap().remove("d");
        assert!(parse_err(&encode_secret(&jwk)).contains("private"));
    }

    #[test]
    fn wrong_curve_or_key_type_is_rejected() {
        let mut jwk = private_jwk(&test_key());
        jwk["crv"] = json!("X25519");
        assert!(parse_err(&encode_secret(&jwk)).contains("Ed25519"));
        let mut jwk = private_jwk(&test_key());
        jwk["kty"] = json!("EC");
        assert!(parse_err(&encode_secret(&jwk)).contains("OKP"));
    }

    #[test]
    fn mismatched_or_short_keys_are_rejected() {
        let mut jwk = private_jwk(&test_key());
        jwk["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert!(parse_err(&encode_secret(&jwk)).contains("does not belong"));
        let mut jwk = private_jwk(&test_key());
        jwk["d"] = json!(URL_SAFE_NO_PAD.encode([1u8; 16]));
        assert!(parse_err(&encode_secret(&jwk)).contains("32 bytes"));
    }

    #[test]
    fn errors_and_debug_never_quote_the_secret() {
        let key = test_key();
        let d = URL_SAFE_NO_PAD.encode(key.to_bytes());
        let good = encode_secret(&private_jwk(&key));
        let encoded = good.rsplit(':').next().unwrap().to_owned();
        let parsed = parse(&good).unwrap();
        let mut outputs = vec![format!("{parsed:?}")];
        for mangled in [
            format!("secret-token:conductorone.com:{encoded}:v1"),
            format!("{encoded}:a:b:c"),
            format!("secret-token:conductorone.com:v1:{encoded}x"),
            format!("secret-token:conductorone.com:v1:{d}"),
        ] {
            let err = parse(&mangled).unwrap_err();
            outputs.push(format!("{err} {err:?}"));
        }
        let creds = ApiCredentials::new("a@b.c/d", good.clone());
        outputs.push(format!("{creds:?}"));
        for out in outputs {
            assert!(!out.contains(&encoded), "{out}");
            assert!(!out.contains(&d), "{out}");
        }
    }

    #[test]
    fn cache_key_differs_per_secret_but_ignores_whitespace() {
        let a = ApiCredentials::new("a@b.c/d", "s1");
        let b = ApiCredentials::new("a@b.c/d", "s2");
        let c = ApiCredentials::new("a@b.c/d\n", "s1\n");
        assert_ne!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key(), c.cache_key());
    }
}
