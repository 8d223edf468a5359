//! The crate's error type.

use std::fmt;
use std::time::Duration;

use crate::action::ParseActionError;

/// A boxed error from a sink or another source outside this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `deskhook`.
///
/// `emit` never returns it: delivery failures go to the log (target `deskhook`) and the
/// counters of [`Dispatcher::stats`](crate::Dispatcher::stats). The variants are for the calls
/// that are made once (setting the dispatcher, parsing input and secrets), for sinks to
/// report failures, and for receivers verifying a signature
/// ([`is_signature_error`](Error::is_signature_error),
/// [`is_receiver_setup_error`](Error::is_receiver_setup_error)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An action name is not one of the twelve. Fix the name; the error suggests the closest.
    UnknownAction(ParseActionError),
    /// An event type name is not one deskhook knows (a Zenlix action, `usedesk.…` or
    /// `iqchannels.…`), or an event to emit has a type that has no such name (an iQChannels
    /// `ChatEvent.Type`, or a Usedesk wrapper, this version does not know). Fix the name;
    /// the error suggests the closest.
    UnknownEventType(crate::event_type::ParseEventTypeError),
    /// [`set_dispatcher`](crate::set_dispatcher) was called when a global dispatcher was
    /// already set. Set it once, at start-up; use [`with_dispatcher`](crate::with_dispatcher)
    /// for a scoped one in tests.
    DispatcherAlreadySet,
    /// JSON that is not a valid event: `path` says where (`ticket.inspect_after_ok`),
    /// `message` what was expected there. Each is cut to 320 characters, its start and
    /// end, whatever the input it quotes, then control and bidirectional characters are
    /// escaped (`\n`, `\u{202e}`): a body may be logged before its sender is known.
    InvalidEvent {
        /// Where in the document the problem is, as a dotted path (`.` for the root).
        path: String,
        /// What was wrong, with the 1-based line and column of the JSON text when the
        /// parser gives them (not for an empty body, or form data, which say so).
        message: String,
    },
    /// An event could not be serialized. It cannot happen with the model types of this crate
    /// alone: only an `extra` map can cause it, with a key that is one of the struct's own
    /// fields (which would be written twice), or a value that serde_json refuses.
    Serialize(serde_json::Error),
    /// No sink of the dispatcher has this name. The error lists the names there are.
    UnknownSink {
        /// The name asked for.
        name: String,
        /// The sinks the dispatcher has.
        known: Vec<String>,
    },
    /// A sink failed to take or flush an event. `sink` names it when known.
    Sink {
        /// The sink's name in the dispatcher, empty when the sink reported the error itself.
        sink: String,
        /// What went wrong.
        source: BoxError,
    },
    /// One or more sinks failed to flush within the deadline; each failure is listed.
    Flush(Vec<Error>),
    /// A webhook key could not be parsed, made or used: it has none of the prefixes `whsec_`,
    /// `whsk_`, `whpk_`, is not standard base64, has the wrong length for its kind, is not a
    /// valid ed25519 key (pair), or is a `whpk_` public key given to sign with (or the
    /// system's random source failed in [`Secret::generate`](crate::Secret::generate)). The
    /// message says which and how to fix it, and never contains the secret itself. Generate a
    /// new key with `deskhook secret new` or [`Secret::generate`](crate::Secret::generate).
    InvalidSecret(String),
    /// A received webhook lacks one of the headers `webhook-id`, `webhook-timestamp` or
    /// `webhook-signature` (named here). The sender does not sign with Standard Webhooks, or a
    /// proxy dropped the header; reject the request.
    MissingHeader(&'static str),
    /// The `webhook-timestamp` header of a received webhook (given here, cut to 64
    /// characters) is not an integer number of seconds since the Unix epoch. Reject the request.
    InvalidTimestamp(String),
    /// The `webhook-timestamp` of a received webhook is further from the receiver's clock than
    /// the tolerance allows, in the past (perhaps a replay) or in the future. Reject the
    /// request; if genuine webhooks fail this way, synchronise the clocks (NTP) or pass a wider
    /// tolerance to [`verify`](crate::signature::verify).
    TimestampOutOfTolerance {
        /// The `webhook-timestamp` received, in Unix seconds.
        timestamp: i64,
        /// The receiver's clock when verifying, in Unix seconds.
        now: i64,
        /// The largest difference accepted.
        tolerance: Duration,
    },
    /// No entry of the `webhook-signature` header of a received webhook matches the body
    /// under any of the keys (a `v1` entry under a `whsec_` secret, a `v1a` entry under a
    /// `whpk_` public key): the sender uses another key, or another kind of key, or the
    /// body, `webhook-id` or `webhook-timestamp` changed on the way (verify the raw bytes,
    /// before any parsing). Reject the request.
    ///
    /// The message says which: the header has no entry of a kind the keys verify (and what
    /// key to give), or none of the entries that could be checked matches; and which entries
    /// were not signatures, or not looked at.
    #[non_exhaustive]
    NoMatchingSignature {
        /// How many secrets were tried (0 means none were configured).
        secrets: usize,
        /// How many of them are `whsec_` secrets, which check `v1` entries; the others are
        /// ed25519 keys, which check `v1a` entries.
        hmac_secrets: usize,
        /// How many `v1` entries the header has that are the base64 of 32 bytes, as an
        /// HMAC-SHA256 tag is (of the first
        /// [`MAX_SIGNATURE_ENTRIES`](crate::signature::MAX_SIGNATURE_ENTRIES)).
        v1_entries: usize,
        /// How many `v1a` entries the header has that are the base64 of 64 bytes, as an
        /// ed25519 signature is (of the same).
        v1a_entries: usize,
        /// How many `v1` entries (of the same) are not the base64 of 32 bytes: cut, altered,
        /// or encoded otherwise. They are not counted in `v1_entries`.
        malformed_v1_entries: usize,
        /// How many `v1a` entries (of the same) are not the base64 of 64 bytes. They are not
        /// counted in `v1a_entries`.
        malformed_v1a_entries: usize,
        /// How many entries came after the first
        /// [`MAX_SIGNATURE_ENTRIES`](crate::signature::MAX_SIGNATURE_ENTRIES), which are
        /// not looked at.
        unread_entries: usize,
    },
    /// An `X-Hub-Signature-256` value that
    /// [`verify_hub_signature`](crate::signature::verify_hub_signature) refused: not
    /// `sha256=` and 64 hex digits, or made by none of the `whsec_` secrets for this body
    /// (the sender uses another secret, or the body changed on the way: verify the raw
    /// bytes). Reject the request; with no secret given, fix the receiver's setup.
    #[non_exhaustive]
    HubSignatureMismatch {
        /// Whether the value had the form of one (`sha256=` and 64 hex digits).
        well_formed: bool,
        /// How many `whsec_` secrets were tried (0: none was given).
        hmac_secrets: usize,
    },
    /// [`receive`](crate::receive()) could not tell the format of a body from its top-level
    /// keys (listed here, at most 8, each cut to 64 characters): it is none of Zenlix
    /// (`ticket`, `initial_user`, `action`), Usedesk (`secret` and a wrapper) or iQChannels
    /// (`ChatEvent`). Reject the request, or name the format with
    /// [`ReceiveOptions::format`](crate::ReceiveOptions::format).
    UnknownFormat {
        /// The body's first top-level keys, each cut to 64 characters and escaped as in
        /// [`InvalidEvent`](Error::InvalidEvent).
        keys: Vec<String>,
    },
    /// The `secret` of a received Usedesk body is not the one given to
    /// [`ReceiveOptions::usedesk_secret`](crate::ReceiveOptions::usedesk_secret): the
    /// webhook comes from another API channel, or is forged. Reject the request.
    UsedeskSecretMismatch,
    /// A received body is in another format than the only one the receiver can
    /// authenticate: a Usedesk secret is set and no signing secrets, so only Usedesk bodies
    /// are accepted. Reject the request; if it is genuine, configure signing secrets for the
    /// sender.
    UnexpectedFormat {
        /// The format the receiver accepts.
        expected: crate::formats::Format,
        /// The format of the body.
        found: crate::formats::Format,
    },
    /// [`receive`](crate::receive()) was given options that authenticate nothing: no
    /// signing secret (or an empty list of them), no Usedesk token, and not
    /// [`ReceiveOptions::unauthenticated`](crate::ReceiveOptions::unauthenticated); or a
    /// Usedesk body met an empty Usedesk token. Most often a secret read from a variable
    /// that was not set. Give the sender's secret
    /// ([`ReceiveOptions::secret`](crate::ReceiveOptions::secret)) or Usedesk's token; to
    /// parse bodies already authenticated some other way, say so with `unauthenticated()`.
    /// A [receiver setup error](Error::is_receiver_setup_error): answer it with `500`.
    NoAuthentication,
    /// A tenant given to [`for_tenant`](crate::for_tenant),
    /// [`Dispatcher::for_tenant`](crate::Dispatcher::for_tenant) or
    /// [`Emitted::with_tenant`](crate::sink::Emitted::with_tenant) is empty, longer than
    /// [`MAX_TENANT_LEN`](crate::dispatch::MAX_TENANT_LEN) (128) bytes, or holds a control or
    /// bidirectional formatting character.
    /// The message says which, quoting at most 64 characters of the tenant. Name tenants
    /// with a short printable id (the company's slug or number), and check names coming from
    /// outside with [`check_tenant`](crate::dispatch::check_tenant) when they are configured. An event
    /// emitted for such a tenant is dropped, counted in
    /// [`DispatcherStats::dropped`](crate::dispatch::DispatcherStats::dropped) and logged at warn;
    /// `emit` never returns this error.
    InvalidTenant(String),
}

impl Error {
    /// Wraps any error as the failure of a sink; the dispatcher fills in the sink's name.
    pub fn sink(source: impl Into<BoxError>) -> Error {
        Error::Sink {
            sink: String::new(),
            source: source.into(),
        }
    }

    /// [`Error::sink`] for an error the sink has logged itself (a dropped or dead-lettered
    /// event, with the reason): the dispatcher counts it like any other but logs it at debug
    /// level only, so that one refusal is not told twice. `is_logged` tells it apart; its
    /// message is the same.
    pub fn sink_logged(source: impl Into<BoxError>) -> Error {
        Error::Sink {
            sink: String::new(),
            source: Box::new(Logged(source.into())),
        }
    }

    /// Whether the sink that returned this error logged it already (see
    /// [`Error::sink_logged`]).
    pub fn is_logged(&self) -> bool {
        matches!(self, Error::Sink { source, .. } if source.is::<Logged>())
    }

    /// Whether a received webhook failed verification: a header is missing, the timestamp is
    /// malformed or out of tolerance, no signature matches, a Usedesk secret does not match,
    /// or the body is in a format the receiver cannot authenticate. Receivers answer these with
    /// `401` (or `400`): the request is at fault, and deskhook, like most senders, gives such
    /// an event up at once rather than send it again.
    ///
    /// Not the [receiver's own setup errors](Error::is_receiver_setup_error): no key to check
    /// against is not the request's fault.
    pub fn is_signature_error(&self) -> bool {
        match self {
            Error::MissingHeader(_)
            | Error::InvalidTimestamp(_)
            | Error::TimestampOutOfTolerance { .. }
            | Error::UsedeskSecretMismatch
            | Error::UnexpectedFormat { .. } => true,
            Error::NoMatchingSignature { secrets, .. } => *secrets > 0,
            Error::HubSignatureMismatch { hmac_secrets, .. } => *hmac_secrets > 0,
            _ => false,
        }
    }

    /// Whether a received webhook was refused for want of a key on the receiver's side:
    /// [`Error::NoAuthentication`], or [`Error::NoMatchingSignature`] or
    /// [`Error::HubSignatureMismatch`] with no secret to try.
    /// Most often a secret read from a variable that was not set. Receivers answer these with
    /// `500` (or `503`), so that the sender retries and the events wait until the receiver
    /// has its key: a `401` would make deskhook, like most senders, give each one up at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use deskhook::ReceiveOptions;
    ///
    /// let headers = [("content-type", "application/json")];
    /// let body = br#"{"ticket":{}}"#;
    /// // The receiver's key is read from a variable that was not set: no key at all.
    /// let err = deskhook::receive(&headers, body, &ReceiveOptions::new()).unwrap_err();
    /// assert!(err.is_receiver_setup_error() && !err.is_signature_error());
    /// ```
    pub fn is_receiver_setup_error(&self) -> bool {
        matches!(
            self,
            Error::NoAuthentication
                | Error::NoMatchingSignature { secrets: 0, .. }
                | Error::HubSignatureMismatch {
                    hmac_secrets: 0,
                    ..
                }
        )
    }

    pub(crate) fn with_sink_name(self, name: &str) -> Error {
        match self {
            Error::Sink { sink, source } if sink.is_empty() => Error::Sink {
                sink: name.to_owned(),
                source,
            },
            other => other,
        }
    }

    pub(crate) fn invalid_event(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
        Error::InvalidEvent {
            path: clipped(err.path().to_string()),
            message: clipped(err.into_inner().to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownAction(e) => e.fmt(f),
            Error::UnknownEventType(e) => e.fmt(f),
            Error::DispatcherAlreadySet => f.write_str(
                "a global dispatcher is already set (set it once at start-up; use \
                 with_dispatcher for a scoped one)",
            ),
            // "?": serde_path_to_error's path where the JSON ended before a value began.
            Error::InvalidEvent { path, message } if path == "." || path == "?" => {
                write!(f, "invalid event: {message}")
            }
            Error::InvalidEvent { path, message } => {
                write!(f, "invalid event at {path}: {message}")
            }
            Error::Serialize(e) => write!(f, "cannot serialize event: {e}"),
            Error::UnknownSink { name, known } => {
                write!(f, "no sink named '{name}' (the dispatcher has: ")?;
                if known.is_empty() {
                    f.write_str("none")?;
                } else {
                    f.write_str(&known.join(", "))?;
                }
                f.write_str(")")
            }
            Error::Sink { sink, source } if sink.is_empty() => write!(f, "sink failed: {source}"),
            Error::Sink { sink, source } => write!(f, "sink '{sink}' failed: {source}"),
            Error::Flush(errors) => {
                write!(f, "flush failed for {} sink(s): ", errors.len())?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    e.fmt(f)?;
                }
                Ok(())
            }
            Error::InvalidSecret(message) | Error::InvalidTenant(message) => f.write_str(message),
            Error::MissingHeader(name) => write!(
                f,
                "missing header '{name}': the sender does not sign with Standard Webhooks, or \
                 something on the way dropped the header"
            ),
            Error::InvalidTimestamp(value) => write!(
                f,
                "invalid webhook-timestamp '{value}' (expected Unix seconds, like 1700000000)"
            ),
            Error::TimestampOutOfTolerance {
                timestamp,
                now,
                tolerance,
            } => {
                let direction = if timestamp < now { "past" } else { "future" };
                write!(
                    f,
                    "webhook-timestamp {timestamp} is {} s in the {direction}, beyond the {} s \
                     tolerance (check the clocks, or widen the tolerance)",
                    timestamp.abs_diff(*now),
                    tolerance.as_secs()
                )
            }
            Error::NoMatchingSignature { secrets: 0, .. } => f.write_str(
                "no secret to check webhook-signature against (configure at least one secret)",
            ),
            Error::NoMatchingSignature {
                secrets,
                hmac_secrets,
                v1_entries,
                v1a_entries,
                malformed_v1_entries,
                malformed_v1a_entries,
                unread_entries,
            } => no_matching_signature(
                f,
                (*secrets, *hmac_secrets),
                (*v1_entries, *v1a_entries),
                (*malformed_v1_entries, *malformed_v1a_entries),
                *unread_entries,
            ),
            Error::UnknownFormat { keys } if keys.is_empty() => f.write_str(
                "unknown webhook format: the body is an empty object (set the format to parse it)",
            ),
            Error::UnknownFormat { keys } => write!(
                f,
                "unknown webhook format (top-level keys: {}; expected zenlix, usedesk or \
                 iqchannels keys, or set the format)",
                keys.join(", ")
            ),
            Error::HubSignatureMismatch {
                hmac_secrets: 0, ..
            } => f.write_str(
                "no whsec_ secret to check X-Hub-Signature-256 against (configure the \
                 sender's secret; was the variable holding it unset?)",
            ),
            Error::HubSignatureMismatch {
                well_formed: false, ..
            } => f.write_str(
                "X-Hub-Signature-256 is not sha256= and 64 hex digits (cut or altered on the \
                 way, or another scheme); reject the request",
            ),
            Error::HubSignatureMismatch { hmac_secrets, .. } => write!(
                f,
                "X-Hub-Signature-256 matches none of the {hmac_secrets} whsec_ secret(s): the \
                 sender uses another secret, or the body changed on the way (verify the raw \
                 bytes, before any parsing)"
            ),
            Error::UsedeskSecretMismatch => {
                f.write_str("usedesk secret does not match the expected one")
            }
            Error::NoAuthentication => f.write_str(
                "nothing to authenticate the request with: give the receive options the \
                 sender's signing secret or Usedesk's token (was the variable holding it \
                 unset?), or ReceiveOptions::unauthenticated() to parse without checking",
            ),
            Error::UnexpectedFormat { expected, found } => write!(
                f,
                "a {found} body cannot be authenticated here (only {expected} bodies are \
                 accepted without signing secrets)"
            ),
        }
    }
}

/// The message of [`Error::NoMatchingSignature`] with at least one key: whether the header
/// has signatures of a kind the keys check, and if not, which key to give or what is wrong
/// with the header; then what else it tells (entries of a kind no key checks, entries that
/// are no signature, entries not looked at).
fn no_matching_signature(
    f: &mut fmt::Formatter<'_>,
    (secrets, hmac_secrets): (usize, usize),
    (v1_entries, v1a_entries): (usize, usize),
    (malformed_v1, malformed_v1a): (usize, usize),
    unread_entries: usize,
) -> fmt::Result {
    const LOOKED_AT: usize = crate::signature::MAX_SIGNATURE_ENTRIES;
    let malformed_entries = malformed_v1 + malformed_v1a;
    let ed25519_keys = secrets.saturating_sub(hmac_secrets);
    let hmac_checked = v1_entries > 0 && hmac_secrets > 0;
    let ed25519_checked = v1a_entries > 0 && ed25519_keys > 0;
    let checked = match (hmac_checked, ed25519_checked) {
        (true, false) => Some(format!("the {hmac_secrets} whsec_ secret(s)")),
        (false, true) => Some(format!("the {ed25519_keys} ed25519 key(s)")),
        (true, true) => Some(format!(
            "the {hmac_secrets} whsec_ secret(s) or the {ed25519_keys} ed25519 key(s)"
        )),
        (false, false) => None,
    };
    // The notes that follow the main clause, unless it said the same.
    let (mut malformed_note, mut unread_note) = (true, true);
    let (mut v1_key_note, mut v1a_key_note) = (true, true);
    match checked {
        Some(checked) => write!(
            f,
            "no signature in webhook-signature matches {checked} (another key signed it, or \
             the body, webhook-id or webhook-timestamp changed in transit: verify the bytes \
             received)"
        )?,
        // No signature at all among the entries looked at: say what the entries are.
        None if v1_entries + v1a_entries == 0 && malformed_entries > 0 => {
            malformed_note = false;
            let which = if malformed_entries == 1 {
                "the v1 or v1a entry looked at in webhook-signature is not".to_owned()
            } else {
                format!(
                    "none of the {malformed_entries} v1 or v1a entries looked at in \
                     webhook-signature is"
                )
            };
            write!(
                f,
                "{which} the base64 of a signature (32 bytes for v1, 64 for v1a): cut or \
                 altered on the way, or encoded otherwise by the sender (hex, URL-safe or \
                 unpadded base64)"
            )?;
        }
        None if v1_entries + v1a_entries == 0 && unread_entries > 0 => {
            unread_note = false;
            let after = if unread_entries == 1 {
                "the one after them is".to_owned()
            } else {
                format!("the {unread_entries} after them are")
            };
            write!(
                f,
                "none of the first {LOOKED_AT} entries of webhook-signature is a v1 or v1a \
                 entry, and {after} not looked at (the sender writes too many)"
            )?;
        }
        None if v1_entries + v1a_entries == 0 => f.write_str(
            "webhook-signature has no v1 or v1a entry (expected space-separated \
             'v1,<base64>' entries: the sender does not sign with Standard Webhooks)",
        )?,
        // No key checks the kind of signature the header has: the other kind's keys were
        // given.
        None if v1_entries > 0 => {
            v1_key_note = false;
            write!(
                f,
                "webhook-signature has v1 (HMAC) signatures, and none of the {secrets} key(s) \
                 is a whsec_ secret (give the sender's whsec_ secret)"
            )?;
        }
        None => {
            v1a_key_note = false;
            write!(
                f,
                "webhook-signature has v1a (ed25519) signatures, and none of the {secrets} \
                 key(s) is an ed25519 key (give the sender's whpk_ public key)"
            )?;
        }
    }
    // Entries of a kind none of the keys given checks, well-formed or not: once the other
    // kind is sorted out, these need their key.
    if v1a_key_note && v1a_entries + malformed_v1a > 0 && ed25519_keys == 0 {
        f.write_str("; its v1a entries need the sender's whpk_ public key")?;
    }
    if v1_key_note && v1_entries + malformed_v1 > 0 && hmac_secrets == 0 {
        f.write_str("; its v1 entries need the sender's whsec_ secret")?;
    }
    if malformed_note && malformed_entries > 0 {
        let verb = if malformed_entries == 1 { "is" } else { "are" };
        write!(
            f,
            "; {malformed_entries} of its v1 or v1a entries {verb} not the base64 of a signature \
             (32 bytes for v1, 64 for v1a)"
        )?;
    }
    if unread_note && unread_entries > 0 {
        write!(
            f,
            "; only its first {LOOKED_AT} entries are looked at ({unread_entries} more)"
        )?;
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::UnknownAction(e) => Some(e),
            Error::UnknownEventType(e) => Some(e),
            Error::Serialize(e) => Some(e),
            Error::Sink { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The source of an [`Error::sink_logged`]: the sink's error as it is, marked as logged.
#[derive(Debug)]
struct Logged(BoxError);

impl fmt::Display for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Logged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Characters of a value quoted in an error message.
pub(crate) const QUOTED_CHARS: usize = 64;

/// The most characters of a parser's message, or of the path to what it refused, in an
/// [`Error::InvalidEvent`].
const MESSAGE_CHARS: usize = 320;

/// A parser's message or path cut to [`MESSAGE_CHARS`] characters, its start and its end
/// kept (where serde_json says what it expected, and where), then escaped as
/// [`shown_in_log`](crate::log_text::shown_in_log) does: the input it
/// quotes (a string of the wrong type, a map key) may be as long as the body, and hold
/// anything, which a receiver may parse before it knows who sent it (a Usedesk body carries
/// its own secret).
pub(crate) fn clipped(text: String) -> String {
    let count = text.chars().count();
    if count <= MESSAGE_CHARS {
        return crate::log_text::escaped(&text);
    }
    // Each end a half of what the `…` leaves.
    let half = (MESSAGE_CHARS - 1) / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(count - half).collect();
    crate::log_text::escaped(&format!("{head}…{tail}"))
}

/// A value quoted in an error message, as [`shown_in_log`](crate::log_text::shown_in_log)
/// shows it: at most [`QUOTED_CHARS`] characters, then `…`, escaped, so that a long or
/// hostile value can neither fill the logs nor forge a line of its own.
pub(crate) fn shorten(value: &str) -> String {
    crate::log_text::shown_in_log(value)
}

impl From<crate::event_type::ParseEventTypeError> for Error {
    fn from(e: crate::event_type::ParseEventTypeError) -> Self {
        Error::UnknownEventType(e)
    }
}

impl From<ParseActionError> for Error {
    fn from(e: ParseActionError) -> Self {
        Error::UnknownAction(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clipped_message_is_at_most_its_limit_with_both_ends() {
        for count in [MESSAGE_CHARS, MESSAGE_CHARS + 1, 1000] {
            let text: String = (0..count)
                .map(|i| if i % 2 == 0 { 'ä' } else { 'b' })
                .collect();
            let cut = clipped(text.clone());
            assert!(cut.chars().count() <= MESSAGE_CHARS, "{count}: {cut}");
            assert!(cut.starts_with("äb") && cut.ends_with(&text[text.len() - 3..]));
        }
    }

    #[test]
    fn a_logged_sink_error_says_so_and_reads_the_same() {
        let logged = Error::sink_logged("queue full; event dropped").with_sink_name("crm");
        let plain = Error::sink("queue full; event dropped").with_sink_name("crm");
        assert!(logged.is_logged());
        assert!(!plain.is_logged());
        assert_eq!(logged.to_string(), plain.to_string());
        assert_eq!(
            logged.to_string(),
            "sink 'crm' failed: queue full; event dropped"
        );
        assert!(!Error::DispatcherAlreadySet.is_logged());
    }

    #[test]
    fn sink_errors_carry_the_sink_name() {
        let err = Error::sink("disk full").with_sink_name("file");
        assert_eq!(err.to_string(), "sink 'file' failed: disk full");
        let err = Error::UnknownSink {
            name: "crm".into(),
            known: vec!["file".into(), "http".into()],
        };
        assert_eq!(
            err.to_string(),
            "no sink named 'crm' (the dispatcher has: file, http)"
        );
    }

    #[test]
    fn invalid_tenants_are_named_and_cut_short() {
        use crate::dispatch::check_tenant;

        let cases = [
            (
                String::new(),
                "invalid tenant '': it is empty (give a non-empty name of at most 128 bytes)"
                    .to_owned(),
            ),
            (
                "a".repeat(300),
                format!(
                    "invalid tenant '{}…' (300 bytes): longer than 128 bytes",
                    "a".repeat(64)
                ),
            ),
            (
                "a".repeat(129),
                format!(
                    "invalid tenant '{}…' (129 bytes): longer than 128 bytes",
                    "a".repeat(64)
                ),
            ),
            (
                "a\u{7}b".to_owned(),
                "invalid tenant 'a\\u{7}b': it holds a control character".to_owned(),
            ),
            (
                "acme\n".to_owned(),
                "invalid tenant 'acme\\n': it holds a control character".to_owned(),
            ),
            (
                // 40 two-byte characters: 80 bytes, and a DEL (a control character) at the end.
                format!("{}\u{7f}", "é".repeat(40)),
                format!(
                    "invalid tenant '{}\\u{{7f}}': it holds a control character",
                    "é".repeat(40)
                ),
            ),
        ];
        for (tenant, text) in cases {
            let err = check_tenant(&tenant).unwrap_err();
            assert!(matches!(err, Error::InvalidTenant(_)), "{err:?}");
            assert_eq!(err.to_string(), text);
            assert!(!err.is_signature_error());
        }
    }

    #[test]
    fn a_quoted_tenant_is_at_most_64_characters() {
        // 64 two-byte characters and a NUL: 129 bytes, so the length is what is reported,
        // and the quote stops after 64 characters (128 bytes), before the NUL.
        let long = format!("{}\u{0}", "я".repeat(64));
        let text = crate::dispatch::check_tenant(&long)
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            format!(
                "invalid tenant '{}…' (129 bytes): longer than 128 bytes",
                "я".repeat(64)
            )
        );
        assert!(crate::dispatch::check_tenant(&"a".repeat(128)).is_ok());
        assert!(crate::dispatch::check_tenant("Acme Corp. — Kraków").is_ok());
        // A right-to-left override would make 'acme\u{202e}moc.live' show as another name.
        let text = crate::dispatch::check_tenant("acme\u{202e}evil")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("bidirectional formatting character"),
            "{text}"
        );
        for (tenant, said) in [
            ("acme\u{2028}[WARN] forged", "line or paragraph separator"),
            ("acme\u{200b}", "invisible character"),
            ("\u{feff}acme", "invisible character"),
        ] {
            let text = crate::dispatch::check_tenant(tenant)
                .unwrap_err()
                .to_string();
            assert!(text.contains(said), "{text}");
        }
    }
}
