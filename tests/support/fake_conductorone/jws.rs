//! The fake's side of ConductorOne auth: minting `secret-token:` client secrets and verifying
//! client assertions. Written independently of the client so that a shared misunderstanding
//! cannot make both sides agree on something the real service would reject.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};

/// Clock skew tolerated on `nbf`/`exp`/`iat`.
const SKEW_SECONDS: i64 = 10;
/// "exp must be within five minutes of the current time" (ConductorOne docs).
const MAX_EXP_AHEAD_SECONDS: i64 = 300;

/// A fresh Ed25519 key and its client secret string.
pub fn mint_secret() -> (String, VerifyingKey) {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    (secret_for(&key), key.verifying_key())
}

/// `secret-token:conductorone.com:v1:<base64url(JWK)>`, the JWK without `kid`, as C1 issues them.
pub fn secret_for(key: &SigningKey) -> String {
    let jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        "d": URL_SAFE_NO_PAD.encode(key.to_bytes()),
    });
    format!("secret-token:conductorone.com:v1:{}", URL_SAFE_NO_PAD.encode(jwk.to_string()))
}

/// The `d` member of the JWK inside a secret, for tests that look for key leaks.
pub fn private_part(secret: &str) -> String {
    let encoded = secret.rsplit(':').next().unwrap_or_default();
    let jwk: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap_or_default()).unwrap_or_default();
    jwk["d"].as_str().unwrap_or_default().to_owned()
}

fn decode_json(part: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "segment is not base64url".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|_| "segment is not JSON".to_owned())
}

/// Checks a compact JWS client assertion the way the token endpoint would.
///
/// Accepts both serialisations of `aud` seen from official clients (string and one-element
/// array) and does not insist on the nonce living in the header (the Python SDK puts it in the
/// claims).
pub fn verify_assertion(
    assertion: &str,
    key: &VerifyingKey,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("assertion is not a compact JWS".into());
    };
    let header_json = decode_json(header)?;
    if header_json["alg"] != "EdDSA" {
        return Err(format!("alg {} is not EdDSA", header_json["alg"]));
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or("signature is malformed")?;
    key.verify_strict(format!("{header}.{claims}").as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| "signature does not verify".to_owned())?;

    let claims = decode_json(claims)?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss and sub must both be the client id".into());
    }
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => aud == audience,
        Value::Array(auds) => auds.iter().any(|a| a == audience),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("aud must be {audience}"));
    }
    let number = |name: &str| claims[name].as_i64().ok_or_else(|| format!("{name} missing or not a number"));
    let (nbf, exp) = (number("nbf")?, number("exp")?);
    if nbf > now + SKEW_SECONDS {
        return Err("assertion not yet valid (nbf)".into());
    }
    if exp < now - SKEW_SECONDS {
        return Err("assertion expired (exp)".into());
    }
    if exp > now + MAX_EXP_AHEAD_SECONDS + SKEW_SECONDS {
        return Err("exp is more than five minutes ahead".into());
    }
    if claims.get("iat").is_some() && number("iat")? > now + SKEW_SECONDS {
        return Err("iat is in the future".into());
    }
    Ok(())
}
