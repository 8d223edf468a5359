//! `deskhook endpoints --nats URL …`: the endpoint registry every relay shares, in a
//! JetStream KV bucket.

use std::process::ExitCode;
use std::time::Duration;

use deskhook_transports::delivery::EndpointSpec;
use deskhook_transports::endpoint_store::{
    DEFAULT_BUCKET, EndpointStore, PREVIOUS_KEYS_ENV, SECRETS_KEY_ENV, SecretsKey, StoredEndpoint,
};

use fields::{spec_of, values_from_stdin};

mod fields;

/// List and change the endpoints every relay delivers to: a registry in a JetStream KV
/// bucket, which relays started with --endpoints-bucket watch.
///
/// Fields are those of an [[endpoint]] table of deskhook.toml, written FIELD=VALUE with a
/// TOML value (strings may go unquoted): `deskhook endpoints --nats nats://127.0.0.1:4222 add
/// name=crm url=https://crm.example.com/hooks tenant=acme 'actions=["create","comment"]'
/// retry=0s,5s,5m secret_env=CRM_SECRET`. Secrets and header values are sealed with the key in
/// $DESKHOOK_SECRETS_KEY (`deskhook endpoints new-key` makes one; every relay needs it); with
/// the key, so are the URL (all but its origin: a chat webhook's URL is a credential) and the
/// template variables. Without it, an endpoint with a chat preset is refused.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
A first session:
  export DESKHOOK_SECRETS_KEY=\"$(deskhook endpoints new-key)\"   # every relay needs it
  deskhook secret new | deskhook endpoints --nats nats://127.0.0.1:4222 add name=crm \\
      url=https://crm.example.com/hooks tenant=acme 'actions=[\"create\",\"comment\"]' \\
      secrets=-
  deskhook endpoints --nats nats://127.0.0.1:4222 update crm retry=0s,5s,5m
  deskhook endpoints --nats nats://127.0.0.1:4222 pause crm    # resume, remove, get, list

secrets=- reads the secrets from standard input, one per line: a secret on the command line
is in the process list and the shell's history. So do url=- (the URL on one line: a chat
webhook's path is its token) and headers=- (one 'Name: value' per line), one field per
command. secret_env=NAME stores only the name of an
environment variable instead of a sealed secret.

Rotating the secrets key:
  1. give every relay the new key in DESKHOOK_SECRETS_KEY and the old one in
     DESKHOOK_SECRETS_KEY_PREVIOUS, and restart them;
  2. deskhook endpoints --nats ... rekey        (with both variables set here too)
  3. take DESKHOOK_SECRETS_KEY_PREVIOUS away from the relays.")]
pub(crate) struct Args {
    /// The NATS servers, comma-separated (not needed for new-key); nats://user:password@host:4222
    /// logs in (from the environment, DESKHOOK_NATS keeps credentials out of the process
    /// list).
    #[arg(
        long,
        value_name = "URL",
        env = "DESKHOOK_NATS",
        hide_env_values = true,
        global = true
    )]
    nats: Option<String>,
    /// The KV bucket.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BUCKET, global = true)]
    bucket: String,
    /// Copies of the bucket when it is created, 1 to 5 (3 on a 3-node cluster); 1 if not
    /// given. A bucket that exists with another number is said so (the servers change it:
    /// `nats stream edit KV_<bucket> --replicas N`).
    #[arg(long, value_name = "N", global = true, value_parser = clap::value_parser!(u64).range(1..=5))]
    replicas: Option<u64>,
    /// The environment variable holding the secrets key.
    #[arg(long, value_name = "NAME", default_value = SECRETS_KEY_ENV, global = true)]
    key_env: String,
    /// The environment variable holding the keys a rotation replaces, comma-separated:
    /// records sealed with one of them are read, and `rekey` seals them with the key.
    #[arg(long, value_name = "NAME", default_value = PREVIOUS_KEYS_ENV, global = true)]
    previous_keys_env: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// One line per endpoint: name, tenant, state, the URL's origin (its path may hold a
    /// token; `get` shows it whole), secrets, revision. A record that cannot be read (sealed
    /// with another key, written by a newer deskhook) is a line `NAME ? unreadable … rev N`,
    /// with why on stderr, and the exit status is 1.
    List,
    /// One endpoint's settings as JSON, secrets by their last 4 characters.
    Get {
        /// The endpoint's name.
        name: String,
    },
    /// Add an endpoint: FIELD=VALUE…, at least name and url. Refused when none of the
    /// bucket's sealed records opens with the key (the key is likely not the relays').
    Add {
        /// FIELD=VALUE, the fields of an [[endpoint]] table.
        #[arg(required = true, value_name = "FIELD=VALUE")]
        fields: Vec<String>,
        /// Write over the record of that name, whatever it holds, without reading it: for a
        /// record that cannot be read (sealed with another key, or changed without the key).
        /// One write, which relays apply as a change: the endpoint's events wait for it,
        /// where a `remove` then an `add` would leave those in between to no endpoint. The
        /// record is written active. Refused, as `add` is, when none of the other sealed
        /// records opens with the key.
        #[arg(long)]
        replace: bool,
    },
    /// Change fields of an endpoint; the others stay. FIELD= (no value) removes a field,
    /// such as `secrets=` after moving the secret to `secret_env`, or `tenant=`.
    Update {
        /// The endpoint's name.
        name: String,
        /// FIELD=VALUE, the fields to change; FIELD= to remove one.
        #[arg(required = true, value_name = "FIELD=VALUE")]
        fields: Vec<String>,
    },
    /// Write every record of an older layout (or written without the key) again, sealed
    /// with the key in its current layout, which binds its settings to what is sealed.
    /// Prints what it sealed (every setting, as `get` does), one line per record. An older
    /// record could have been written by anyone who can write to the bucket: look at them
    /// first with --dry-run, then reseal those you checked as NAME@REVISION (each only if
    /// unchanged since). A record that sets template_file, ca_file, secret_env,
    /// allow_private or allow_cidrs is sealed only that way, named. Then relays can require
    /// sealed records (`relay --require-sealed`).
    Reseal {
        /// Print what would be sealed (NAME (revision N): settings), and write nothing.
        #[arg(long, conflicts_with = "checked")]
        dry_run: bool,
        /// Only these records, each only if still at the revision --dry-run showed.
        #[arg(value_name = "NAME@REVISION")]
        checked: Vec<String>,
    },
    /// Seal every record sealed with a previous key (in $DESKHOOK_SECRETS_KEY_PREVIOUS) again
    /// with the key, each only if unchanged since it was read: the step of a key rotation
    /// once every relay has the new key and the old one as a previous key. Prints one line
    /// per record written; then take the old key away from the relays.
    Rekey,
    /// Pause an endpoint: relays queue its events and send nothing, and park what only it
    /// holds up (see `deskhook parked`), so that the other endpoints get the same tickets at
    /// their own pace.
    Pause {
        /// The endpoint's name.
        name: String,
    },
    /// Resume a paused endpoint.
    Resume {
        /// The endpoint's name.
        name: String,
    },
    /// Remove an endpoint (only if nobody changes it meanwhile).
    Remove {
        /// The endpoint's name.
        name: String,
        /// Only if it is still at this revision (as `get` shows it): a change made since
        /// by someone else is not removed unseen.
        #[arg(long, value_name = "N")]
        revision: Option<u64>,
    },
    /// Print a new secrets key (base64 of 32 random bytes).
    NewKey,
}

/// The secrets key in the variable `key_env` and the previous keys of a rotation in
/// `previous_env` (for `endpoints` and `relay`). Previous keys without a key are refused:
/// they only open what the key has not sealed yet.
pub(crate) fn keys_from_env(
    key_env: &str,
    previous_env: &str,
) -> Result<(Option<SecretsKey>, Vec<SecretsKey>), String> {
    let key = SecretsKey::from_env(key_env).map_err(|e| e.to_string())?;
    let previous = SecretsKey::list_from_env(previous_env).map_err(|e| e.to_string())?;
    if key.is_none() && !previous.is_empty() {
        return Err(format!(
            "previous secrets keys are given (in ${previous_env}) and no key (in ${key_env}): \
             records are sealed with the key, and the previous ones only open what it has not \
             sealed yet; set {key_env} to the new key"
        ));
    }
    Ok((key, previous))
}

pub(crate) fn run(mut args: Args) -> Result<ExitCode, String> {
    if let Command::Add { fields, .. } | Command::Update { fields, .. } = &mut args.command {
        values_from_stdin(fields, std::io::stdin().lock())?;
    }
    if let Command::NewKey = args.command {
        let key = SecretsKey::generate().map_err(|e| e.to_string())?;
        crate::send::print_out(&key.to_base64())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(urls) = args.nats.clone() else {
        crate::usage_error(
            "endpoints",
            "--nats URL is required: the servers whose KV bucket holds the endpoints (or set \
             DESKHOOK_NATS)",
        );
    };
    if let Err(e) = deskhook_transports::endpoint_store::check_bucket_name(&args.bucket) {
        crate::usage_error("endpoints", format!("--bucket: {e}"));
    }
    // What `add` writes is checked before connecting: a slip in a field is not a NATS error.
    let added = match &args.command {
        Command::Add { fields, replace } => {
            let spec = spec_of(toml::Table::new(), fields)?;
            EndpointStore::check(&spec).map_err(|e| e.to_string())?;
            Some((spec, *replace))
        }
        _ => None,
    };
    let (key, previous) = keys_from_env(&args.key_env, &args.previous_keys_env)?;
    let writes = matches!(
        args.command,
        Command::Add { .. }
            | Command::Update { .. }
            | Command::Pause { .. }
            | Command::Resume { .. }
    );
    if key.is_none() && writes {
        eprintln!(
            "deskhook: no secrets key in {}: the record is written unsealed, and relays run \
             with --require-sealed leave its endpoint out; set {0} to the key the relays have",
            args.key_env
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let context = deskhook_transports::nats::connect(
            &urls,
            async_nats::ConnectOptions::new(),
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| e.to_string())?;
        // Only `add` makes the bucket: the others read or change what it holds, and a
        // misspelt --bucket must not make an empty one.
        // 1 to 5 (clap checked).
        let replicas = args.replicas.and_then(|r| usize::try_from(r).ok());
        let store = if added.is_some() {
            EndpointStore::open(&context, &args.bucket, replicas.unwrap_or(1), key).await
        } else {
            EndpointStore::open_existing(&context, &args.bucket, key).await
        }
        .map_err(|e| e.to_string())?
        .previous_keys(previous);
        // Given, and not what the bucket has: said rather than ignored.
        if let Some(asked) = replicas {
            let has = store.replicas().await.map_err(|e| e.to_string())?;
            if has != asked {
                eprintln!(
                    "deskhook: bucket '{}' has {has} replica(s), not the {asked} of --replicas, \
                     which applies when the bucket is made: change it on the servers (nats \
                     stream edit KV_{} --replicas {asked})",
                    args.bucket, args.bucket
                );
            }
        }
        match added {
            Some((spec, replacing)) => {
                let keys = (&args.key_env[..], &args.previous_keys_env[..]);
                if replacing {
                    replace(&store, &spec, keys).await
                } else {
                    add(&store, &spec, keys).await
                }
            }
            None => command(&store, args.command).await,
        }
    })
}

async fn command(store: &EndpointStore, command: Command) -> Result<ExitCode, String> {
    let err = |e: deskhook_transports::Error| e.to_string();
    match command {
        Command::NewKey => return Err("new-key takes no --nats".into()),
        Command::List => return list(store).await,
        Command::Get { name } => {
            let stored = found(store.get(&name).await.map_err(err)?, &name)?;
            let mut json = settings(&stored.spec, stored.paused)?;
            json["revision"] = stored.revision.into();
            crate::send::print_out(&json.to_string())?;
        }
        Command::Add { .. } => return Err("add is run by `add`".into()),
        Command::Update { name, fields } => {
            let stored = found(store.get_to_change(&name).await.map_err(err)?, &name)?;
            let current = toml::Table::try_from(&stored.spec)
                .map_err(|e| format!("endpoint '{name}': {e}"))?;
            let spec = spec_of(current, &fields)?;
            if spec.name != name {
                return Err(format!(
                    "name: an endpoint cannot be renamed ('{name}' to '{}'); add the new one and \
                     remove the old",
                    spec.name
                ));
            }
            let revision = store
                .put_if(&spec, stored.paused, Some(stored.revision))
                .await
                .map_err(err)?;
            crate::send::print_line(&format!("updated {name} (revision {revision})"));
            if spec.secrets.as_ref().is_some_and(|s| !s.is_empty()) && spec.secret_env.is_some() {
                eprintln!(
                    "deskhook: endpoint '{name}' has both secrets and secret_env, and signs \
                     with both; remove the one it no longer needs with `update {name} secrets=` \
                     or `secret_env=`"
                );
            }
        }
        Command::Reseal { dry_run, checked } => {
            let (verb, found) = if dry_run {
                ("would reseal", store.unsealed().await.map_err(err)?)
            } else if checked.is_empty() {
                ("resealed", store.reseal().await.map_err(err)?)
            } else {
                let checked = checked
                    .iter()
                    .map(|given| name_at_revision(given))
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    "resealed",
                    store.reseal_checked(&checked).await.map_err(err)?,
                )
            };
            let mut failed = 0;
            for (name, read) in found {
                match read {
                    Ok(stored) => crate::send::print_line(&format!(
                        "{verb} {name} (revision {}): {}",
                        stored.revision,
                        settings(&stored.spec, stored.paused)?
                    )),
                    Err(e) => {
                        failed += 1;
                        eprintln!("deskhook: {name}: {e}");
                    }
                }
            }
            if failed > 0 {
                return Err(format!(
                    "{failed} record(s) could not be resealed (above); one that reaches into \
                     the readers' machines is sealed by name once checked (`reseal \
                     NAME@REVISION`), and one changed without the key is written again with \
                     `add --replace name=NAME …`"
                ));
            }
        }
        Command::Rekey => {
            let mut failed = 0;
            for (name, written) in store.rekey().await.map_err(err)? {
                match written {
                    Ok(stored) => crate::send::print_line(&format!(
                        "rekeyed {name} (revision {})",
                        stored.revision
                    )),
                    Err(e) => {
                        failed += 1;
                        eprintln!("deskhook: {name}: {e}");
                    }
                }
            }
            if failed > 0 {
                return Err(format!(
                    "{failed} record(s) could not be sealed with the new key (above); run rekey \
                     again for one changed meanwhile"
                ));
            }
        }
        Command::Pause { name } => set_paused(store, &name, true).await?,
        Command::Resume { name } => set_paused(store, &name, false).await?,
        Command::Remove { name, revision } => {
            if !store.remove_if(&name, revision).await.map_err(err)? {
                return Err(format!("no endpoint is named '{name}' in the bucket"));
            }
            crate::send::print_line(&format!("removed {name}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds the endpoint `spec`, checked already, unless one of its name exists.
async fn add(
    store: &EndpointStore,
    spec: &EndpointSpec,
    keys: (&str, &str),
) -> Result<ExitCode, String> {
    check_key(store, None, keys).await?;
    if store
        .get(&spec.name)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!(
            "endpoint '{}' exists already; change it with `update`",
            spec.name
        ));
    }
    let revision = store
        .put_if(spec, false, None)
        .await
        .map_err(|e| e.to_string())?;
    crate::send::print_line(&format!("added {} (revision {revision})", spec.name));
    Ok(ExitCode::SUCCESS)
}

/// Refuses to write with a key that opens none of the bucket's other sealed records (but
/// `except`'s): what it seals would be unreadable to the relays that read them. `keys` are
/// the variables of the key and of the previous keys, for the message.
async fn check_key(
    store: &EndpointStore,
    except: Option<&str>,
    (key_env, previous_env): (&str, &str),
) -> Result<(), String> {
    let shut = store
        .not_opened_by_key(except)
        .await
        .map_err(|e| e.to_string())?;
    if shut.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the key in ${key_env} opens none of the bucket's {}sealed records ({}): they were \
         sealed with another key (or changed without the key), and what this command seals \
         would be unreadable to relays that read them. Give the key the relays have; during a \
         rotation, give the old one too, in ${previous_env}, and `rekey` seals the records \
         with the new one",
        if except.is_some() { "other " } else { "" },
        shown_names(&shut)
    ))
}

/// Writes `spec` over the record of its name, unread (or adds it).
async fn replace(
    store: &EndpointStore,
    spec: &EndpointSpec,
    keys: (&str, &str),
) -> Result<ExitCode, String> {
    let err = |e: deskhook_transports::Error| e.to_string();
    check_key(store, Some(&spec.name), keys).await?;
    let read = store.revision_of(&spec.name).await.map_err(err)?;
    let revision = store.put_if(spec, false, read).await.map_err(err)?;
    let done = if read.is_some() { "replaced" } else { "added" };
    crate::send::print_line(&format!("{done} {} (revision {revision})", spec.name));
    Ok(ExitCode::SUCCESS)
}

/// Prints a line per record, those that cannot be read among them (why on stderr).
async fn list(store: &EndpointStore) -> Result<ExitCode, String> {
    let (found, unreadable) = store.list_each().await.map_err(|e| e.to_string())?;
    if found.is_empty() && unreadable.is_empty() {
        eprintln!("deskhook: the bucket has no endpoint; add one with `add name=… url=…`");
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines: Vec<(&str, String)> = found
        .iter()
        .map(|stored| (&stored.spec.name[..], line(stored)))
        .collect();
    lines.extend(unreadable.iter().map(|record| {
        (
            &record.name[..],
            // Its name is whatever its key says, written by anyone who can write there.
            format!(
                "{}  ?  unreadable  ?  ?  rev {}",
                crate::printable(&record.name),
                record.revision
            ),
        )
    }));
    lines.sort_by(|a, b| a.0.cmp(b.0));
    for (_, line) in &lines {
        crate::send::print_out(line)?;
    }
    if unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for record in &unreadable {
        eprintln!("deskhook: {}", record.error);
    }
    eprintln!(
        "deskhook: {} of {} record(s) could not be read (above)",
        unreadable.len(),
        lines.len()
    );
    Ok(ExitCode::FAILURE)
}

/// Up to five of `names`, and how many more.
fn shown_names(names: &[String]) -> String {
    match names.len() {
        0..=5 => names.join(", "),
        n => format!("{}, and {} more", names[..5].join(", "), n - 5),
    }
}

/// Pauses or resumes `name`.
async fn set_paused(store: &EndpointStore, name: &str, paused: bool) -> Result<(), String> {
    let stored = found(
        store.get_to_change(name).await.map_err(|e| e.to_string())?,
        name,
    )?;
    if stored.paused == paused {
        // Not written again: a new revision would wake every relay for nothing.
        let state = if paused {
            "is paused already"
        } else {
            "is not paused"
        };
        crate::send::print_line(&format!(
            "{name} {state}: nothing to change (revision {})",
            stored.revision
        ));
        return Ok(());
    }
    let revision = store
        .put_if(&stored.spec, paused, Some(stored.revision))
        .await
        .map_err(|e| e.to_string())?;
    let done = if paused { "paused" } else { "resumed" };
    crate::send::print_line(&format!("{done} {name} (revision {revision})"));
    Ok(())
}

fn found(stored: Option<StoredEndpoint>, name: &str) -> Result<StoredEndpoint, String> {
    stored.ok_or_else(|| format!("no endpoint is named '{name}' in the bucket"))
}

/// A line of `list`.
fn line(stored: &StoredEndpoint) -> String {
    let spec = &stored.spec;
    let secrets = match (&spec.secrets, &spec.secret_env) {
        (Some(secrets), _) if !secrets.is_empty() => format!("{} sealed secret(s)", secrets.len()),
        (_, Some(env)) => format!("secret from ${env}"),
        _ => "unsigned".to_owned(),
    };
    // A record's fields are whatever anyone who can write to the bucket wrote.
    let line = format!(
        "{}  {}  {}  {}  {}  rev {}{}",
        spec.name,
        spec.tenant.as_deref().unwrap_or("-"),
        if stored.paused { "paused" } else { "active" },
        // A summary line (terminals, CI logs): the URL's origin only; `get` shows it whole.
        deskhook_transports::delivery::redact_url(&spec.url),
        secrets,
        stored.revision,
        match (stored.previous_key, stored.layout) {
            (false, _) => "",
            (true, deskhook_transports::endpoint_store::LAYOUT) => {
                "  (sealed with a previous key: rekey)"
            }
            // Of an older layout: rekey leaves it to reseal.
            (true, _) => "  (sealed with a previous key: reseal)",
        }
    );
    crate::printable(&line).into_owned()
}

/// `NAME@REVISION`, as `reseal` takes the records it was shown.
fn name_at_revision(given: &str) -> Result<(String, u64), String> {
    given
        .rsplit_once('@')
        .and_then(|(name, revision)| Some((name.to_owned(), revision.parse().ok()?)))
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| {
            format!("'{given}' is not NAME@REVISION (such as crm@12, as reseal --dry-run shows it)")
        })
}

/// An endpoint's settings as JSON for the operator who holds the key: every field set,
/// secrets by their last 4 characters and header values left out (as pages show them), but
/// the whole URL (`list` and pages show its origin only).
fn settings(spec: &EndpointSpec, paused: bool) -> Result<serde_json::Value, String> {
    let mut json = serde_json::to_value(spec.redacted())
        .map_err(|e| format!("endpoint '{}': {e}", spec.name))?;
    json["url"] = spec.url.clone().into();
    json["paused"] = paused.into();
    Ok(json)
}
