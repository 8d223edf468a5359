//! Receiving a webhook of any supported format: verify the signature, tell the format, parse.

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::{Error, shorten};
use crate::formats::{Token, iqchannels, usedesk};
use crate::model::Event;
use crate::signature::secret::Secret;
use crate::signature::{self, DEFAULT_TOLERANCE, Headers};

/// A webhook body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Zenlix, the format deskhook sends: [`Event`].
    Zenlix,
    /// Usedesk: [`usedesk::Event`].
    Usedesk,
    /// iQChannels: [`iqchannels::Event`].
    IqChannels,
}

impl Format {
    /// The format's name: `zenlix`, `usedesk` or `iqchannels`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zenlix => "zenlix",
            Format::Usedesk => "usedesk",
            Format::IqChannels => "iqchannels",
        }
    }

    /// The `Content-Type` of the format's bodies.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Zenlix => "application/json",
            Format::Usedesk => usedesk::CONTENT_TYPE,
            Format::IqChannels => iqchannels::CONTENT_TYPE,
        }
    }

    /// The format a body's top-level keys point to, or `None` when they point to none.
    ///
    /// It reads the keys as far as the JSON is well-formed, so that a truncated body still
    /// gets the right format when the keys that tell it were read (and then a precise error
    /// from the parser). A Zenlix body cut inside its first key, `ticket`, has only that key,
    /// which a Usedesk ticket event has too: it is taken for Usedesk, and the error (with
    /// its position) is the Usedesk parser's. Name the format
    /// ([`ReceiveOptions::format`](crate::ReceiveOptions::format)) when you know it. This
    /// costs one pass over the body, without building anything but the list of keys.
    ///
    /// ```
    /// use deskhook::formats::Format;
    ///
    /// assert_eq!(Format::detect(br#"{"ChatEvent":{}}"#), Some(Format::IqChannels));
    /// assert_eq!(Format::detect(br#"{"secret":"x","comment":{"#), Some(Format::Usedesk));
    /// assert_eq!(Format::detect(br#"{"hello":1}"#), None);
    /// ```
    pub fn detect(body: &[u8]) -> Option<Format> {
        classify(&scan_keys(body).0)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A received webhook, parsed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
// One is made per request and moved once or twice; boxing the events would add an allocation
// and a deref to every match for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Received {
    /// A Zenlix event.
    Zenlix(Event),
    /// A Usedesk event.
    Usedesk(usedesk::Event),
    /// An iQChannels event.
    IqChannels(iqchannels::Event),
}

impl Received {
    /// The body's format.
    pub fn format(&self) -> Format {
        match self {
            Received::Zenlix(_) => Format::Zenlix,
            Received::Usedesk(_) => Format::Usedesk,
            Received::IqChannels(_) => Format::IqChannels,
        }
    }

    /// The event type as the body names it: the Zenlix action (`create`, …), the Usedesk
    /// event (`comment_created`, …) or the iQChannels type (`message_created`, …). The
    /// `X-Deskhook-Action` header and [`EventType`](crate::EventType)'s text put the format
    /// before the last two (`usedesk.comment_created`): compare this with
    /// [`EventType::local_name`](crate::EventType::local_name), or
    /// [`EventType::from_wire`](crate::EventType::from_wire) with the header.
    pub fn event_type(&self) -> &str {
        match self {
            Received::Zenlix(event) => event.action.as_str(),
            Received::Usedesk(event) => event.event_type(),
            Received::IqChannels(event) => event.event_type(),
        }
    }

    /// The key that orders events: the Zenlix ticket code, the Usedesk ticket id, or the
    /// iQChannels chat id (empty for a Usedesk event this version does not know that has no
    /// `ticket_id`).
    pub fn ordering_key(&self) -> String {
        match self {
            Received::Zenlix(event) => event.ticket.code.clone(),
            Received::Usedesk(event) => event.ordering_key(),
            Received::IqChannels(event) => event.ordering_key(),
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(&self) -> &'static str {
        self.format().content_type()
    }

    /// Serializes the body again, compact. A parsed Usedesk or iQChannels body gives the
    /// same JSON data with its keys in their order (the same bytes as serde_json writes; see
    /// [`formats`](crate::formats) for what is not kept). A Zenlix event is written in its
    /// documented shape: every key (a missing one with its default), in the documented
    /// order, keys it does not know after them, `aprrove` as `approve`, the flags as
    /// `"true"`/`"false"`, and an empty or all-zero time as `null`.
    ///
    /// # Errors
    ///
    /// When an `extra` map was given a key that is one of its type's own fields (set by
    /// hand: a parsed body never has one); the message names it.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        match self {
            Received::Zenlix(event) => event.to_json(),
            Received::Usedesk(event) => event.to_json(),
            Received::IqChannels(event) => event.to_json(),
        }
    }
}

/// What [`receive`] checks and how it parses.
///
/// ```
/// use std::time::Duration;
/// use deskhook::formats::Format;
/// use deskhook::ReceiveOptions;
///
/// let options = ReceiveOptions::new()
///     .format(Format::Usedesk)
///     .usedesk_secret("0e8f678d8327eb3292a28c8165957b282a1b2f8b")
///     .tolerance(Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ReceiveOptions {
    /// `None` until keys are given: then the signature is checked, against none of them
    /// when the list was empty.
    secrets: Option<Vec<Secret>>,
    tolerance: Option<Duration>,
    format: Option<Format>,
    usedesk_secret: Option<Token>,
    now_unix: Option<i64>,
    /// Set by [`ReceiveOptions::unauthenticated`]: nothing to check is not a mistake.
    unauthenticated: bool,
}

impl ReceiveOptions {
    /// Options that detect the format and authenticate nothing yet: give them the sender's
    /// signing secret ([`secret`](ReceiveOptions::secret)) or Usedesk's token
    /// ([`usedesk_secret`](ReceiveOptions::usedesk_secret)). Without either,
    /// [`receive`] refuses every request ([`Error::NoAuthentication`]), so that a secret
    /// read from a variable that was not set does not turn verification off.
    pub fn new() -> ReceiveOptions {
        ReceiveOptions::default()
    }

    /// Options that check nothing: [`receive`] parses any body (tools that show what
    /// arrives, bodies authenticated some other way, such as a bearer token). Keys or a
    /// Usedesk token given afterwards are checked all the same.
    pub fn unauthenticated() -> ReceiveOptions {
        ReceiveOptions {
            unauthenticated: true,
            ..ReceiveOptions::default()
        }
    }

    /// The keys the Standard Webhooks signature must match one of (`whsec_` secrets, or the
    /// sender's `whpk_` public key for ed25519 signatures); replaces any set before. An empty
    /// list matches no signature: keys read from a configuration that has none refuse every
    /// body ([`Error::NoAuthentication`], or [`Error::NoMatchingSignature`] with `secrets: 0`
    /// beside a Usedesk token; both [receiver setup
    /// errors](Error::is_receiver_setup_error)) rather than let every body in, as an empty
    /// [`usedesk_secret`](ReceiveOptions::usedesk_secret) does. Without this and
    /// [`secret`](ReceiveOptions::secret), the signature is not checked: only a Usedesk token
    /// authenticates, and with none, [`receive`] refuses every request
    /// ([`Error::NoAuthentication`]) unless the options are
    /// [`unauthenticated`](ReceiveOptions::unauthenticated).
    #[must_use]
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> ReceiveOptions {
        self.secrets = Some(secrets.into_iter().collect());
        self
    }

    /// Adds a key the signature may match: a `whsec_` secret or a `whpk_` public key.
    /// Defaults to none: the signature is not checked, and without a Usedesk token either
    /// [`receive`] refuses every request (see [`ReceiveOptions::new`]).
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> ReceiveOptions {
        self.secrets.get_or_insert_default().push(secret);
        self
    }

    /// How far `webhook-timestamp` may be from the clock, either way. Defaults to
    /// [`DEFAULT_TOLERANCE`] (5 minutes).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> ReceiveOptions {
        self.tolerance = Some(tolerance);
        self
    }

    /// Parses every body as this format instead of telling it from the keys. Defaults to
    /// telling it ([`Format::detect`]).
    #[must_use]
    pub fn format(mut self, format: Format) -> ReceiveOptions {
        self.format = Some(format);
        self
    }

    /// The token of your Usedesk API channel: a Usedesk body's `secret` must equal it
    /// (compared in constant time). Without signing secrets, this also makes `receive`
    /// refuse bodies of the other formats, which it could not authenticate; with them, a
    /// request without a signature must be a Usedesk body with this token. An empty token
    /// matches no body (so an unset variable refuses every Usedesk body rather than accept
    /// `"secret": ""`). Defaults to none: the `secret` of Usedesk bodies is not checked.
    #[must_use]
    pub fn usedesk_secret(mut self, secret: impl Into<String>) -> ReceiveOptions {
        self.usedesk_secret = Some(Token::new(secret));
        self
    }

    /// Checks the timestamp against this clock, in Unix seconds, instead of the system
    /// clock; for tests and for receivers with a clock of their own. Defaults to the system
    /// clock.
    #[must_use]
    pub fn now_unix(mut self, now_unix: i64) -> ReceiveOptions {
        self.now_unix = Some(now_unix);
        self
    }
}

/// The format `forced`, or else the one `body`'s top-level keys point to.
fn format_of(body: &[u8], forced: Option<Format>) -> Result<Format, Error> {
    if let Some(format) = forced {
        return Ok(format);
    }
    let (keys, scan_error) = scan_keys(body);
    classify(&keys).ok_or_else(|| {
        scan_error.unwrap_or_else(|| Error::UnknownFormat {
            keys: keys.iter().take(8).map(|k| shorten(k)).collect(),
        })
    })
}

/// Verifies and parses a received webhook of any supported format.
///
/// `headers` are the request's headers (any [`Headers`]: a list of pairs, a map, or your
/// framework's type) and `body` the raw bytes, before any parsing. The steps:
///
/// 1. When `options` has signing secrets, the Standard Webhooks signature is checked first,
///    on the raw bytes (see [`verify`](crate::signature::verify)). Without them it is not
///    checked (and without a Usedesk secret either, nothing is let through unless the
///    options are [`ReceiveOptions::unauthenticated`]). With a Usedesk secret too, a
///    request without a `webhook-signature` header is taken as Usedesk's, which does not
///    sign: it must be a Usedesk body, authenticated by its `secret` (step 4), so that one
///    receiver takes Usedesk and signed senders alike.
/// 2. The format is the one set with [`ReceiveOptions::format`], or else told from the
///    body's top-level keys ([`Format::detect`]): `ticket`, `initial_user` and `action` are
///    Zenlix; `ChatEvent` is iQChannels; `secret` or one of the wrappers `ticket`,
///    `trigger`, `comment`, `rating` is Usedesk.
/// 3. The body is parsed; an error names the key (`comment.ticket_id`) and the line and
///    column.
/// 4. When a Usedesk secret is set, a Usedesk body's `secret` must match it.
///
/// The signature does not make a request unique: one captured and sent again within the
/// tolerance verifies again. Drop duplicates on the `webhook-id` the signature covers,
/// which [`receive_verified`] returns (a retry of a delivery has the same id). A Usedesk
/// body has no such header: its ticket's and comment's ids tell a repeat.
///
/// It never panics, whatever the input. Its cost is that of the signature (an HMAC of the
/// body per `whsec_` secret, or an ed25519 verification per `v1a` entry and key; see
/// [`verify`](crate::signature::verify)), one pass over the body to read its top-level keys when the format
/// is not set, and the parse.
///
/// # Errors
///
/// - [`Error::NoAuthentication`] when `options` have neither signing secrets (or an empty
///   list of them) nor a Usedesk secret (or have only a Usedesk secret and another format
///   forced) and are not [`ReceiveOptions::unauthenticated`].
/// - The errors of [`verify`](crate::signature::verify) when signing secrets are set and the signature
///   does not check out.
/// - [`Error::UnexpectedFormat`] when a Usedesk secret is set, no signing secrets are, and the
///   body is not Usedesk; [`Error::MissingHeader`] when both are set and a body without a
///   signature is not Usedesk.
/// - [`Error::UnknownFormat`] when no format is set and the keys point to none.
/// - [`Error::InvalidEvent`], naming the key and the line and column, when the body is not
///   valid JSON or not a valid event of its format.
/// - [`Error::UsedeskSecretMismatch`] when a Usedesk body's `secret` is not the one set, and
///   [`Error::NoAuthentication`] when the one set is empty.
///
/// [`Error::is_signature_error`] tells the errors of authentication (answer `401`) from those
/// of content (`400`), and [`Error::is_receiver_setup_error`] the receiver's own missing key
/// (`500`, so that the sender retries until the key is there).
///
/// # Examples
///
/// ```
/// use deskhook::{Received, ReceiveOptions};
///
/// let body = br#"{"secret":"0e8f","comment":{"id":5,"message":"Hi","ticket_id":2261907}}"#;
/// let headers = [("content-type", "application/json")];
/// let options = ReceiveOptions::new().usedesk_secret("0e8f");
///
/// let received = deskhook::receive(&headers, body, &options)?;
/// assert_eq!(received.event_type(), "comment_created");
/// assert_eq!(received.ordering_key(), "2261907");
/// let Received::Usedesk(event) = received else { panic!("not usedesk") };
/// assert_eq!(event.ticket_id().map(|id| id.get()), Some(2261907));
///
/// let forged = ReceiveOptions::new().usedesk_secret("another");
/// let err = deskhook::receive(&headers, body, &forged).unwrap_err();
/// assert!(err.is_signature_error());
///
/// // An empty token (a variable that was not set) refuses even an empty `secret`.
/// let empty = br#"{"secret":"","comment":{"id":5,"message":"Hi","ticket_id":2261907}}"#;
/// let unset = ReceiveOptions::new().usedesk_secret("");
/// let err = deskhook::receive(&headers, empty, &unset).unwrap_err();
/// assert!(matches!(err, deskhook::Error::NoAuthentication));
/// # Ok::<(), deskhook::Error>(())
/// ```
pub fn receive(
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    options: &ReceiveOptions,
) -> Result<Received, Error> {
    receive_verified(headers, body, options).map(|(received, _)| received)
}

/// [`receive`], with what the signature check vouched for: the `webhook-id` and
/// `webhook-timestamp` the signature covers, as [`verify`](crate::signature::verify) read
/// them. `None` when no signature was checked (no signing secrets in `options`, or a
/// Usedesk body authenticated by its `secret`).
///
/// De-duplicate on this id rather than on one read from the request again: a request can
/// carry two `webhook-id` lines, and a container that keeps the last of them (a map) would
/// give the one the signature does not cover, so that a request captured and sent again
/// within the tolerance passes the check for duplicates.
///
/// # Errors
///
/// As [`receive`].
///
/// # Examples
///
/// ```
/// use deskhook::{ReceiveOptions, Secret};
/// use deskhook::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign};
///
/// let secret = Secret::generate()?;
/// let body = br#"{"secret":"x","comment":{"id":5,"message":"Hi","ticket_id":7}}"#;
/// let now = jiff::Timestamp::now().as_second();
/// let signature = sign("msg_1", now, body, std::slice::from_ref(&secret))?;
/// let now = now.to_string();
/// let headers = [
///     (HEADER_ID, "msg_1"),
///     (HEADER_ID, "msg_2"),
///     (HEADER_TIMESTAMP, now.as_str()),
///     (HEADER_SIGNATURE, signature.as_str()),
/// ];
/// let options = ReceiveOptions::new().secrets([secret]);
/// let (received, verified) = deskhook::receive_verified(&headers, body, &options)?;
/// assert_eq!(received.event_type(), "comment_created");
/// assert_eq!(verified.map(|v| v.id).as_deref(), Some("msg_1"));
/// # Ok::<(), deskhook::Error>(())
/// ```
pub fn receive_verified(
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    options: &ReceiveOptions,
) -> Result<(Received, Option<signature::Verified>), Error> {
    // An empty list of keys authenticates nothing either: said before the headers are read,
    // so that a request without them does not take the receiver's fault for its own.
    let no_keys = options.secrets.as_ref().is_none_or(Vec::is_empty);
    // Nor does Usedesk's token authenticate a format forced to another (only Usedesk's
    // bodies carry it).
    let token_only = options
        .format
        .is_none_or(|format| format == Format::Usedesk);
    if no_keys && !(options.usedesk_secret.is_some() && token_only) && !options.unauthenticated {
        return Err(Error::NoAuthentication);
    }
    // Usedesk does not sign: with its token set, a body without the Standard Webhooks
    // signature is authenticated by its `secret` alone, and must be Usedesk's.
    let signature_name = signature::header_names(headers)[2];
    let by_token = options.usedesk_secret.is_some()
        && (options.secrets.is_none() || headers.header(signature_name).is_none());
    let mut verified = None;
    if let Some(secrets) = &options.secrets
        && !by_token
    {
        let tolerance = options.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        verified = Some(match options.now_unix {
            Some(now) => signature::verify_at(headers, body, secrets, tolerance, now)?,
            None => signature::verify(headers, body, secrets, tolerance)?,
        });
    }

    // (With a token and keys, an unsigned body that is not Usedesk's JSON lacks the
    // signature, said below: a 401, not a 400 for what a stranger sent.)
    if !(by_token && options.secrets.is_some())
        && let Some(message) = not_json(headers, body)
    {
        return Err(Error::InvalidEvent {
            path: ".".to_owned(),
            message,
        });
    }
    let format = match format_of(body, options.format) {
        Ok(format) if !by_token || format == Format::Usedesk => format,
        // Not Usedesk's, so only a signature could authenticate it: the one missing.
        _ if by_token && options.secrets.is_some() => {
            return Err(Error::MissingHeader(signature_name));
        }
        Ok(format) => {
            return Err(Error::UnexpectedFormat {
                expected: Format::Usedesk,
                found: format,
            });
        }
        Err(e) => return Err(e),
    };

    let received = match format {
        Format::Zenlix => Received::Zenlix(Event::from_json(body)?),
        Format::Usedesk => Received::Usedesk(usedesk::Event::from_json(body)?),
        Format::IqChannels => Received::IqChannels(iqchannels::Event::from_json(body)?),
    };

    if let (Received::Usedesk(event), Some(expected)) = (&received, &options.usedesk_secret) {
        // An empty token (its variable unset) matches nothing: say so, not "another token".
        if expected.expose().is_empty() {
            return Err(Error::NoAuthentication);
        }
        if !event.secret.matches(expected.expose()) {
            return Err(Error::UsedeskSecretMismatch);
        }
    }
    Ok((received, verified))
}

/// What a body that cannot be an event's JSON object is, when it is plainly something else:
/// nothing, or form data (a Usedesk trigger whose "JSON request" option is off posts its
/// fields so). `None` for a body that starts as an object, whose parse says what is wrong.
fn not_json(headers: &(impl Headers + ?Sized), body: &[u8]) -> Option<String> {
    let text = body.trim_ascii();
    let Some(&first) = text.first() else {
        return Some("the body is empty: send the event's JSON object".to_owned());
    };
    if first == b'{' {
        return None;
    }
    let form_type = headers.header("content-type").is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    // `name=value&…`, a name as forms write them (`comment[id]`).
    let name = text.split(|&b| b == b'=').next().unwrap_or_default();
    let form_like = name.len() < text.len()
        && !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_[]%.-".contains(&b));
    (form_type || form_like).then(|| {
        "the body is form data (application/x-www-form-urlencoded), not JSON: turn on the \
         \"JSON request\" option of the sender's webhook (Usedesk's triggers have it), or send \
         the event's JSON object"
            .to_owned()
    })
}

/// The format the top-level keys point to. Complete bodies are told by the rules of the
/// module documentation; the last rules catch bodies cut short before their telling keys.
fn classify(keys: &[String]) -> Option<Format> {
    let has = |name: &str| keys.iter().any(|k| k == name);
    if has("ticket") && has("initial_user") && has("action") {
        return Some(Format::Zenlix);
    }
    if has("ChatEvent") {
        return Some(Format::IqChannels);
    }
    if has("secret") || has("trigger") || has("comment") || has("rating") {
        return Some(Format::Usedesk);
    }
    if has("initial_user") || has("action") {
        return Some(Format::Zenlix);
    }
    if has("Rels") {
        return Some(Format::IqChannels);
    }
    if has("ticket") {
        return Some(Format::Usedesk);
    }
    None
}

/// The top-level keys of a JSON object, as far as it is well-formed, and the error that
/// stopped the reading, if any (with the line and column).
fn scan_keys(body: &[u8]) -> (Vec<String>, Option<Error>) {
    struct KeysSeed<'a>(&'a mut Vec<String>);

    impl<'de> DeserializeSeed<'de> for KeysSeed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for KeysSeed<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(crate::wire::Key(key)) = map.next_key()? {
                self.0.push(key.into_owned());
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = KeysSeed(&mut keys)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    // Clipped: serde_json quotes a whole string found where an object was expected.
    let error = result.err().map(|e| Error::InvalidEvent {
        path: ".".to_owned(),
        message: crate::error::clipped(e.to_string()),
    });
    (keys, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_long_string_where_an_object_is_expected_is_clipped_in_the_error() {
        let body = format!("\"{}\"", "A".repeat(100_000));
        let headers: [(&str, &str); 0] = [];
        let err = receive(
            &headers[..],
            body.as_bytes(),
            &ReceiveOptions::unauthenticated(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.chars().count() < 400, "{} characters", text.len());
        assert!(text.contains("invalid type: string"), "{text}");
    }

    #[test]
    fn formats_are_told_from_keys() {
        let zenlix = ["ticket", "initial_user", "action", "description", "dt"];
        assert_eq!(classify(&keys(&zenlix)), Some(Format::Zenlix));
        assert_eq!(
            classify(&keys(&["ChatEvent", "Rels"])),
            Some(Format::IqChannels)
        );
        assert_eq!(classify(&keys(&["Rels"])), Some(Format::IqChannels));
        assert_eq!(
            classify(&keys(&["secret", "ticket"])),
            Some(Format::Usedesk)
        );
        assert_eq!(classify(&keys(&["ticket"])), Some(Format::Usedesk));
        assert_eq!(classify(&keys(&["rating"])), Some(Format::Usedesk));
        assert_eq!(
            classify(&keys(&["ticket", "initial_user"])),
            Some(Format::Zenlix)
        );
        assert_eq!(classify(&keys(&["x"])), None);
        assert_eq!(classify(&[]), None);
    }

    #[test]
    fn an_empty_list_of_keys_refuses_every_body_and_no_list_checks_nothing() {
        let body = br#"{"secret":"x","comment":{"id":5,"message":"Hi","ticket_id":7}}"#;
        let headers: [(&str, &str); 0] = [];
        // Keys read from a configuration that has none: before, every body was let in.
        let configured: Vec<Secret> = Vec::new();
        let refused = receive(
            &headers[..],
            body,
            &ReceiveOptions::new().secrets(configured),
        );
        let refused = refused.unwrap_err();
        assert!(refused.is_receiver_setup_error() && !refused.is_signature_error());
        // Signed with a key, but checked against none.
        let secret = Secret::generate().unwrap();
        let signed = crate::signature::sign("msg_1", 1_700_000_000, body, &[secret]).unwrap();
        let signed_headers = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", signed.as_str()),
        ];
        let options = ReceiveOptions::new().secrets([]).now_unix(1_700_000_000);
        let err = receive(&signed_headers[..], body, &options).unwrap_err();
        assert!(matches!(err, Error::NoAuthentication), "{err}");
        // Beside a Usedesk token, a signed request is checked against no key: the
        // receiver's to mend, even when it came late (its timestamp is not what failed).
        let options = options.usedesk_secret("x");
        for options in [options.clone(), options.now_unix(1_700_009_999)] {
            let err = receive(&signed_headers[..], body, &options).unwrap_err();
            assert!(
                matches!(err, Error::NoMatchingSignature { secrets: 0, .. }),
                "{err}"
            );
            assert!(err.is_receiver_setup_error() && !err.is_signature_error());
        }
        // The token authenticates only Usedesk's bodies: with another format forced and no
        // key, every request is refused as the receiver's to mend, not the sender's.
        let forced = ReceiveOptions::new()
            .usedesk_secret("x")
            .format(Format::Zenlix);
        let err = receive(&headers[..], body, &forced).unwrap_err();
        assert!(matches!(err, Error::NoAuthentication), "{err}");
        assert!(err.is_receiver_setup_error());
        // No keys given at all: nothing is checked.
        assert!(receive(&headers[..], body, &ReceiveOptions::unauthenticated()).is_ok());
    }

    #[test]
    fn keys_are_read_as_far_as_the_json_goes() {
        let (found, error) = scan_keys(br#"{"secret": "x", "comment": {"id": "#);
        assert_eq!(found, keys(&["secret", "comment"]));
        assert!(error.unwrap().to_string().contains("line 1"));
        let (found, error) = scan_keys(b"[1, 2]");
        assert!(found.is_empty());
        assert!(
            error
                .unwrap()
                .to_string()
                .starts_with("invalid event: invalid type: sequence, expected a JSON object")
        );
    }

    #[test]
    fn unknown_formats_list_short_keys() {
        let long = "k".repeat(100);
        let body = format!(r#"{{"{long}": 1, "b": 2}}"#);
        let err = receive(
            &[("a", "b")],
            body.as_bytes(),
            &ReceiveOptions::unauthenticated(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("unknown webhook format (top-level keys: kkkk"),
            "{text}"
        );
        assert!(text.contains("…, b;"), "{text}");
        let err = receive(&[("a", "b")], b"{}", &ReceiveOptions::unauthenticated()).unwrap_err();
        assert!(matches!(err, Error::UnknownFormat { ref keys } if keys.is_empty()));
    }
}
