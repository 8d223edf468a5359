//! The `X-Hub-Signature-256` of GitHub-style webhooks: made for receivers that expect it,
//! and checked in constant time for those that receive it.
//!
//! The HMAC key is the secret's bytes: those a `whsec_` secret's base64 holds. A secret of
//! another sender, written as text (GitHub's, say), is the same key once made a `Secret`
//! from its bytes ([`Secret::from_bytes`](crate::Secret::from_bytes)), or written `whsec_`
//! and the base64 of its bytes (`printf %s "$SECRET" | base64`), provided it has 24 to 64
//! bytes, as every `whsec_` secret has; a shorter one cannot be checked here.

use hmac::Mac;

use super::secret::{Secret, SecretKind};
use crate::Error;

/// The `X-Hub-Signature-256` value of GitHub-style webhooks: `sha256=` and the lowercase hex
/// of HMAC-SHA256(secret, body).
///
/// Unlike the Standard Webhooks signature it covers the body alone, with no id or timestamp,
/// so it does not protect against replays.
///
/// # Errors
///
/// [`Error::InvalidSecret`] when `secret` is not an HMAC secret (`whsec_`): this signature
/// has no ed25519 form.
pub fn hub_signature(secret: &Secret, body: &[u8]) -> Result<String, Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some(mut mac) = secret.mac() else {
        return Err(Error::InvalidSecret(
            "X-Hub-Signature-256 is an HMAC and needs a whsec_ secret, not an ed25519 key; add \
             a whsec_ secret for it, or turn it off"
                .to_owned(),
        ));
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity("sha256=".len() + 2 * tag.len());
    out.push_str("sha256=");
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(out)
}

/// Checks an `X-Hub-Signature-256` value (`sha256=` and the hex of HMAC-SHA256(secret,
/// body), as [`hub_signature`] makes it; the prefix and the hex in either case) against the
/// raw body and each `whsec_` secret given, in constant time. Give the bytes as received,
/// before any parsing. It covers the body alone: no id, no timestamp, so no protection
/// against replays (prefer [`verify`](super::verify) where the sender signs both).
///
/// # Errors
///
/// [`Error::HubSignatureMismatch`]: the value is not `sha256=` and 64 hex digits, no
/// secret makes it for this body, or no `whsec_` secret was given (the receiver's setup:
/// see [`Error::is_receiver_setup_error`]).
///
/// # Examples
///
/// ```
/// use deskhook::Secret;
/// use deskhook::signature::{hub_signature, verify_hub_signature};
///
/// # fn main() -> Result<(), deskhook::Error> {
/// let secret = Secret::generate()?;
/// let body = br#"{"action":"create"}"#;
/// let header = hub_signature(&secret, body)?;
/// verify_hub_signature(&header, body, &[secret.clone()])?;
/// let err = verify_hub_signature(&header, b"{}", &[secret]).unwrap_err();
/// assert!(err.is_signature_error());
/// # Ok(()) }
/// ```
pub fn verify_hub_signature(value: &str, body: &[u8], secrets: &[Secret]) -> Result<(), Error> {
    let hmac_secrets = secrets
        .iter()
        .filter(|s| s.kind() == SecretKind::Hmac)
        .count();
    let tag = tag_of(value);
    let mismatch = Error::HubSignatureMismatch {
        well_formed: tag.is_some(),
        hmac_secrets,
    };
    let Some(tag) = tag else {
        return Err(mismatch);
    };
    let matched = secrets.iter().filter_map(Secret::mac).any(|mut mac| {
        mac.update(body);
        mac.verify_slice(&tag).is_ok()
    });
    if matched { Ok(()) } else { Err(mismatch) }
}

/// The 32 bytes of `sha256=<64 hex digits>` (surrounding spaces, the prefix and the digits
/// in either case); `None` for anything else.
fn tag_of(value: &str) -> Option<[u8; 32]> {
    let (prefix, hex) = value.trim().split_once('=')?;
    if !prefix.eq_ignore_ascii_case("sha256") || hex.len() != 64 {
        return None;
    }
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut tag = [0u8; 32];
    for (byte, pair) in tag.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_signature_is_checked_as_github_documents_it() {
        let github = Secret::from_bytes(b"It's a Secret to Everybody").unwrap();
        let body = b"Hello, World!";
        let value = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let other = Secret::generate().unwrap();
        assert!(verify_hub_signature(value, body, std::slice::from_ref(&github)).is_ok());
        // Any secret of several; the prefix and the digits in either case; spaces around.
        let upper = format!(
            " SHA256={} ",
            &value["sha256=".len()..].to_ascii_uppercase()
        );
        assert!(verify_hub_signature(&upper, body, &[other.clone(), github.clone()]).is_ok());
        let refused =
            |value: &str, secrets: &[Secret]| match verify_hub_signature(value, body, secrets)
                .unwrap_err()
            {
                Error::HubSignatureMismatch {
                    well_formed,
                    hmac_secrets,
                } => (well_formed, hmac_secrets),
                other => panic!("{other}"),
            };
        // A digit changed; another body; another secret: well formed, no match.
        let changed = value.replace("757107", "757108");
        assert_eq!(refused(&changed, std::slice::from_ref(&github)), (true, 1));
        assert!(
            verify_hub_signature(value, b"Hello, World?", std::slice::from_ref(&github)).is_err()
        );
        assert_eq!(refused(value, std::slice::from_ref(&other)), (true, 1));
        // Not the form of one: cut, another prefix, not hex, the digest alone.
        for malformed in [
            &value[..70],
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            &value[7..],
        ] {
            assert_eq!(
                refused(malformed, std::slice::from_ref(&github)),
                (false, 1),
                "{malformed}"
            );
        }
        // No secret to check it with: the receiver's setup, not the request's fault.
        let none = verify_hub_signature(value, body, &[]).unwrap_err();
        assert!(none.is_receiver_setup_error() && !none.is_signature_error());
        assert!(none.to_string().contains("no whsec_ secret"), "{none}");
        let wrong = verify_hub_signature(&changed, body, &[github]).unwrap_err();
        assert!(wrong.is_signature_error(), "{wrong}");
        assert!(
            wrong
                .to_string()
                .contains("matches none of the 1 whsec_ secret"),
            "{wrong}"
        );
    }
}
