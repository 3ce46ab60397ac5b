//! The JWT client assertion sent to `/auth/v1/token`, built exactly like the official SDKs:
//! header `{"alg":"EdDSA","nonce":<32 hex chars>}` (plus `kid` only if the JWK has one, never
//! `typ`), claims `iss = sub = client id`, `aud = host without port`, `iat = now`,
//! `nbf = now - 2 min`, `exp = now + 2 min`, no `jti`.
//!
//! Hand-built rather than via a JWT library because the header needs a non-standard `nonce`
//! member and must not carry `typ`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde::Serialize;

use super::credentials::{ClientId, SigningSecret};

/// How far `nbf` and `exp` sit from `iat`, as in every official client.
const VALIDITY_SECONDS: i64 = 120;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    nonce: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// Returns the compact JWS. `now` is Unix seconds; it is a parameter so tests can pin it.
pub(crate) fn sign_assertion(client_id: &ClientId, secret: &SigningSecret, now: i64) -> String {
    let header = Header { alg: "EdDSA", kid: secret.kid(), nonce: hex::encode(rand::random::<[u8; 16]>()) };
    let claims = Claims {
        iss: client_id.as_str(),
        sub: client_id.as_str(),
        aud: client_id.host(),
        iat: now,
        nbf: now - VALIDITY_SECONDS,
        exp: now + VALIDITY_SECONDS,
    };
    // Serializing these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(&claims).unwrap_or_default();
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = secret.key().sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conductorone::credentials::tests::{encode_secret, private_jwk, test_key};
    use ed25519_dalek::{Signature, Verifier as _};
    use secrecy::SecretString;
    use serde_json::{Value, json};

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        keys
    }

    fn secret(jwk: Value) -> SigningSecret {
        SigningSecret::parse(&SecretString::from(encode_secret(&jwk))).unwrap()
    }

    #[test]
    fn header_and_claims_match_the_official_clients() {
        let key = test_key();
        let id = ClientId::parse("calm-fox@acme.c1eu.ai:8443/spc").unwrap();
        let jws = sign_assertion(&id, &secret(private_jwk(&key)), 1_800_000_000);
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);

        let header = decode(parts[0]);
        assert_eq!(keys(&header), ["alg", "nonce"]);
        assert_eq!(header["alg"], "EdDSA");
        let nonce = header["nonce"].as_str().unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(nonce.chars().all(|c| c.is_ascii_hexdigit()));

        let claims = decode(parts[1]);
        assert_eq!(
            claims,
            json!({
                "iss": "calm-fox@acme.c1eu.ai:8443/spc",
                "sub": "calm-fox@acme.c1eu.ai:8443/spc",
                "aud": "acme.c1eu.ai",
                "iat": 1_800_000_000,
                "nbf": 1_800_000_000 - 120,
                "exp": 1_800_000_000 + 120,
            })
        );

        let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap().try_into().unwrap();
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        key.verifying_key()
            .verify(signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .expect("signature verifies with the public key");
    }

    #[test]
    fn kid_is_sent_only_when_the_jwk_has_one() {
        let mut jwk = private_jwk(&test_key());
        jwk["kid"] = json!("key-1");
        let id = ClientId::parse("a@acme.conductor.one/spc").unwrap();
        let jws = sign_assertion(&id, &secret(jwk), 0);
        let header = decode(jws.split('.').next().unwrap());
        assert_eq!(keys(&header), ["alg", "kid", "nonce"]);
        assert_eq!(header["kid"], "key-1");
    }

    #[test]
    fn every_assertion_has_a_fresh_nonce() {
        let id = ClientId::parse("a@acme.conductor.one/spc").unwrap();
        let secret = secret(private_jwk(&test_key()));
        let nonce = |jws: String| decode(jws.split('.').next().unwrap())["nonce"].clone();
        assert_ne!(nonce(sign_assertion(&id, &secret, 0)), nonce(sign_assertion(&id, &secret, 0)));
    }
}
