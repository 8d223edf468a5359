//! Flags that several subcommands share, declared once and flattened into each. A command
//! whose help for one of them says more (or less) changes that help with `mut_arg`.

use std::time::Duration;

use deskhook::policy::{RetrySchedule, parse_duration};

/// The retry schedule of the commands that deliver and wait when `--retry` is not given.
pub(crate) const CLI_RETRY: &str = "0s,1s,5s";

/// The per-attempt timeout when `--timeout` is not given (the library's default too).
pub(crate) const CLI_TIMEOUT: &str = "15s";

/// The NATS servers of a command that reads or writes what relays share.
#[derive(Debug, clap::Args)]
pub(crate) struct Nats {
    /// The NATS servers, comma-separated; nats://user:password@host:4222 logs in (from the
    /// environment, DESKHOOK_NATS keeps credentials out of the process list).
    #[arg(
        long = "nats",
        value_name = "URL",
        env = "DESKHOOK_NATS",
        hide_env_values = true
    )]
    pub(crate) urls: String,
}

impl Nats {
    /// Runs `work` with a JetStream context on the servers, on a runtime of its own (the
    /// command's): what a command that makes a few requests and ends needs.
    ///
    /// # Errors
    ///
    /// When the runtime cannot start or the servers cannot be reached; what `work` returns.
    pub(crate) fn with_context<T>(
        &self,
        work: impl AsyncFnOnce(async_nats::jetstream::Context) -> Result<T, String>,
    ) -> Result<T, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(async {
                let context = deskhook_transports::nats::connect(
                    &self.urls,
                    async_nats::ConnectOptions::new(),
                    Duration::from_secs(5),
                )
                .await
                .map_err(|e| e.to_string())?;
                work(context).await
            })
    }
}

/// One endpoint given on the command line: `--url` and its `--secret`s.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Where to POST the events (http or https).
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// A signing secret: 'whsec_' and base64 (HMAC), or a 'whsk_' ed25519 key (`deskhook
    /// secret new --ed25519`). Repeat to sign with several, as during a rotation. Without
    /// one, requests go unsigned. Only with --url: endpoints of --config have their own. Or
    /// set DESKHOOK_SECRET (several separated by spaces; read only with --url and no
    /// --secret), which keeps the secret out of the shell's history and the process list.
    #[arg(long, value_name = "SECRET")]
    pub(crate) secret: Vec<String>,
}

impl Target {
    /// Exits with `command`'s usage error when --secret is given without --url. Checked here
    /// rather than by clap, whose "--url is required" would hide that the endpoints of
    /// --config sign with secrets of their own.
    pub(crate) fn check_secret_has_url(&self, command: &str) {
        if self.url.is_none() && !self.secret.is_empty() {
            crate::usage_error(
                command,
                "--secret is for the endpoint at --url; the endpoints of --config sign with \
                 their own: set `secrets` or `secret_env` in their [[endpoint]] tables",
            );
        }
    }

    /// The secrets to sign with: those of --secret, or else (with --url) those of
    /// DESKHOOK_SECRET. Read here rather than by clap, which would take the variable for a
    /// --secret given without --url (a variable exported for `listen`, then `send --config`).
    pub(crate) fn secrets(&self) -> Result<Vec<deskhook::Secret>, String> {
        let (texts, source) = self.secret_texts()?;
        crate::parse_secrets_from(source, &texts)
    }

    /// The secrets as given (unparsed), and where they came from (`--secret` or
    /// `DESKHOOK_SECRET`).
    pub(crate) fn secret_texts(&self) -> Result<(Vec<String>, &'static str), String> {
        if self.url.is_none() {
            return Ok((self.secret.clone(), "--secret"));
        }
        given_or_env(&self.secret)
    }
}

/// The variable that holds secrets when no --secret is given, several separated by spaces.
/// Read by the commands themselves, not by clap, so that an error about a key read from it
/// names it rather than a --secret that was not given.
const SECRET_VAR: &str = "DESKHOOK_SECRET";

/// `given` (the values of --secret), or when there are none the keys of DESKHOOK_SECRET; with
/// the name an error about one of them uses.
fn given_or_env(given: &[String]) -> Result<(Vec<String>, &'static str), String> {
    if !given.is_empty() {
        return Ok((given.to_vec(), "--secret"));
    }
    match std::env::var(SECRET_VAR) {
        // Set but empty (`DESKHOOK_SECRET="$(cat missing-file)"`): read as no key, it would
        // turn the checking it asks for off without a word.
        Ok(value) if value.trim().is_empty() => Err(format!(
            "{SECRET_VAR} is set but holds no key; give it the secrets ('whsec_…', several \
             separated by spaces), or unset it"
        )),
        Ok(value) => Ok((
            value.split_whitespace().map(str::to_owned).collect(),
            SECRET_VAR,
        )),
        Err(std::env::VarError::NotPresent) => Ok((Vec::new(), "--secret")),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "{SECRET_VAR} is not valid UTF-8; secrets are 'whsec_', 'whsk_' or 'whpk_' and \
             base64"
        )),
    }
}

/// The keys a receiver (`listen`, `verify`) checks signatures with: those of --secret, or
/// else those of DESKHOOK_SECRET. A 'whsk_' key checks signatures too, but it is the sender's
/// private key: a warning says so and prints the public key that does the same.
pub(crate) fn verifying_keys(given: &[String]) -> Result<Vec<deskhook::Secret>, String> {
    let (texts, source) = given_or_env(given)?;
    let keys = crate::parse_secrets_from(source, &texts)?;
    for key in &keys {
        if key.can_sign()
            && let Some(public) = key.public_key()
        {
            eprintln!(
                "deskhook: warning: {source}: a 'whsk_' key is the sender's private signing key; \
                 a receiver needs only its public key, which verifies and cannot sign: {}",
                public.reveal()
            );
        }
    }
    Ok(keys)
}

/// The SSRF guard's switch.
#[derive(Debug, clap::Args)]
pub(crate) struct Guard {
    /// Allow private, loopback and link-local addresses (127.0.0.1, localhost, 10.0.0.0/8,
    /// 192.168.0.0/16, …), refused by default as a guard against SSRF, whether written as
    /// IPs or resolved from host names. Cloud metadata addresses stay refused. Applies to
    /// the endpoints of --config too.
    #[arg(long)]
    pub(crate) allow_private: bool,
}

/// How the commands that deliver and wait make their attempts.
#[derive(Debug, clap::Args)]
pub(crate) struct Attempts {
    /// The delay before each attempt, separated by commas: "0s,200ms,1s" makes three
    /// attempts, the first at once. It replaces the endpoints' own schedules (those of
    /// --config included), so that the command knows how long to wait. The default is short
    /// on purpose: the library's standard schedule (0s,5s,5m,30m,2h,5h,10h,10h) spans 27
    /// hours.
    #[arg(long, value_name = "LIST", default_value = CLI_RETRY, value_parser = retry_schedule)]
    pub(crate) retry: RetrySchedule,
    /// The limit for one attempt: connecting, sending, and reading the response. Applies to
    /// every endpoint, those of --config included.
    #[arg(long, value_name = "DUR", default_value = CLI_TIMEOUT, value_parser = attempt_timeout)]
    pub(crate) timeout: Duration,
}

/// Parses `--timeout`, with the bounds an endpoint's `timeout` has, said in the flag's terms
/// (the endpoint's own check would name the `timeout` key of a config file).
fn attempt_timeout(text: &str) -> Result<Duration, String> {
    use deskhook::policy::format_duration;
    use deskhook_transports::delivery::{MAX_TIMEOUT, MIN_TIMEOUT};
    let timeout = parse_duration(text).map_err(|e| e.to_string())?;
    if timeout < MIN_TIMEOUT {
        return Err(format!(
            "shorter than an attempt can take (at least {}); give e.g. {CLI_TIMEOUT}",
            format_duration(MIN_TIMEOUT)
        ));
    }
    if timeout > MAX_TIMEOUT {
        return Err(format!(
            "longer than an attempt may take (at most {}); give e.g. {CLI_TIMEOUT}",
            format_duration(MAX_TIMEOUT)
        ));
    }
    Ok(timeout)
}

/// Parses `--retry`, refusing a first delay an endpoint refuses, said in the flag's terms
/// (the endpoint's own check would name the `retry` key of a config file).
fn retry_schedule(text: &str) -> Result<RetrySchedule, String> {
    let schedule: RetrySchedule = text.parse()?;
    match schedule.delay_before(1).filter(|d| !d.is_zero()) {
        Some(first) => Err(format!(
            "the list starts with {}, but the first attempt is always made at once; start it \
             with 0s (\"0s,{schedule}\")",
            deskhook::policy::format_duration(first)
        )),
        None => Ok(schedule),
    }
}

/// A parser for a whole number of at least `min`. Clap's own range parser says "0 is not in
/// 1..18446744073709551615" when the range has no upper end.
pub(crate) fn at_least(min: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync {
    move |text| match text.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("give at least {min}")),
        Err(_) => Err(format!("not a whole number; give {min} or more")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_say_what_to_give() {
        let limit = at_least(1);
        assert_eq!(limit("3"), Ok(3));
        assert_eq!(limit("0"), Err("give at least 1".to_owned()));
        assert_eq!(
            limit("-1"),
            Err("not a whole number; give 1 or more".to_owned())
        );
        assert_eq!(at_least(2)("1"), Err("give at least 2".to_owned()));
    }

    #[test]
    fn a_timeout_out_of_an_attempts_bounds_is_named_in_the_flags_terms() {
        assert_eq!(attempt_timeout("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(
            attempt_timeout("0s"),
            Err("shorter than an attempt can take (at least 1ms); give e.g. 15s".to_owned())
        );
        let long = attempt_timeout("2h").unwrap_err();
        assert!(
            long.starts_with("longer than an attempt may take (at most "),
            "{long}"
        );
        assert!(attempt_timeout("5").is_err());
    }

    #[test]
    fn a_retry_list_that_does_not_start_at_once_is_named_in_the_flags_terms() {
        assert_eq!(retry_schedule("0s,5s").unwrap().to_string(), "0s,5s");
        assert_eq!(
            retry_schedule("5s,1m"),
            Err(
                "the list starts with 5s, but the first attempt is always made at once; \
                 start it with 0s (\"0s,5s,1m\")"
                    .to_owned()
            )
        );
        assert!(retry_schedule("soon").is_err());
    }
}
