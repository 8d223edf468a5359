//! A signing secret as written in a spec: its text, or the old secret of a rotation with
//! the time it stops signing.

use std::fmt;
use std::time::SystemTime;

use deskhook::Secret;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A signing secret: `"whsec_…"`, or `{ "secret": "whsec_…", "expires": "2026-12-01T00:00:00Z" }`
/// for the old secret of a rotation.
#[derive(Clone)]
pub struct SecretSpec {
    /// The secret.
    pub secret: Secret,
    /// When it stops signing, if ever.
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSpec")
            .field("secret", &self.secret)
            .field("expires", &self.expires)
            .finish()
    }
}

impl PartialEq for SecretSpec {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret && self.expires == other.expires
    }
}

impl From<Secret> for SecretSpec {
    fn from(secret: Secret) -> SecretSpec {
        SecretSpec {
            secret,
            expires: None,
        }
    }
}

impl Serialize for SecretSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.expires {
            None => serializer.serialize_str(&Zeroizing::new(self.secret.reveal())),
            Some(at) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("secret", &*Zeroizing::new(self.secret.reveal()))?;
                let at = jiff::Timestamp::try_from(at).map_err(serde::ser::Error::custom)?;
                map.serialize_entry("expires", &at.to_string())?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = SecretSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"whsec_…\" or { secret = \"whsec_…\", expires = \"2026-12-01T00:00:00Z\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretSpec, E> {
                Ok(Secret::parse(v).map_err(E::custom)?.into())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SecretSpec, A::Error> {
                use serde::de::Error as _;
                let (mut secret, mut expires) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "secret" => secret = Some(map.next_value::<Secret>()?),
                        "expires" => {
                            let text: String = map.next_value()?;
                            let at: jiff::Timestamp = text.parse().map_err(|e| {
                                A::Error::custom(format!(
                                    "expires '{text}' is not a time: {e} (write it like \
                                     \"2026-12-01T00:00:00Z\")"
                                ))
                            })?;
                            expires = Some(SystemTime::from(at));
                        }
                        other => {
                            return Err(A::Error::unknown_field(other, &["secret", "expires"]));
                        }
                    }
                }
                let secret = secret.ok_or_else(|| A::Error::missing_field("secret"))?;
                Ok(SecretSpec { secret, expires })
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// The OpenAPI schema of [`EndpointSpec::secrets`](super::EndpointSpec::secrets): each a secret's text, or an object for
/// the old secret of a rotation (as [`SecretSpec`] reads them).
#[cfg(feature = "openapi")]
pub(super) fn secrets_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{
        ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
    };
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("`whsec_…` (HMAC-SHA256) or `whsk_…` (ed25519)"));
    let expiring = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("secret", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "expires",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .required("secret")
        .description(Some(
            "The old secret of a rotation: it signs until `expires`.",
        ));
    ArrayBuilder::new()
        .items(OneOfBuilder::new().item(text).item(expiring))
        .examples([serde_json::json!([
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        ])])
        .build()
}

/// The last 4 characters of a secret's `whsec_` form, to tell secrets apart.
pub(crate) fn secret_hint(secret: &Secret) -> String {
    let text = Zeroizing::new(secret.reveal());
    text[text.len().saturating_sub(4)..].to_owned()
}
