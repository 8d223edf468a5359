//! `deskhook dead-letters replay`: the letters of a dead-letter file set aside, queued
//! again with the same engine, and what fails again written back; or a spool's, replayed
//! in place.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use deskhook::sink::EventId;
use deskhook_transports::delivery::{
    AttemptOutcome, AttemptRecord, DeadLetter, DeadLetterQuery, MAX_PAGE, append_dead_letter_lines,
    open_dead_letters_locked,
};
use deskhook_transports::http_blocking::HttpSink;
use indicatif::{ProgressBar, ProgressStyle};

use super::{ReplayArgs, configured_spool, read_letters};

/// `PATH.replaying`.
pub(super) fn replaying_path(path: &Path) -> PathBuf {
    with_suffix(path, ".replaying")
}

/// `path` with `suffix` added to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The lock of a replay (`PATH.replaying.lock`): a second replay of the same file would take
/// the first one's PATH.replaying for an interrupted replay's and send every letter again,
/// at the same time. Held until dropped; the lock ends with the process, however it ends.
/// On Unix the file is removed when the replay ends, before it is unlocked.
struct ReplayLock {
    path: PathBuf,
    _file: File,
}

impl Drop for ReplayLock {
    fn drop(&mut self) {
        // Removed while still locked: a replay that opened it meanwhile finds, once it holds
        // the lock, that its file is no longer the one at the path, and opens that one.
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock of `replaying`'s replay, made if missing.
fn lock_replay(replaying: &Path) -> Result<ReplayLock, String> {
    let path = with_suffix(replaying, ".lock");
    // A replay that ends between our open and our lock removes the file we opened; a few
    // tries are plenty, as each one means another replay ended meanwhile.
    for _ in 0..16 {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) if still_at(&file, &path) => {
                return Ok(ReplayLock { path, _file: file });
            }
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another replay of these dead letters is under way (it holds '{}'): wait \
                     for it to end",
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock '{}': {e}", path.display()));
            }
        }
    }
    Err(format!(
        "cannot lock '{}': other replays keep ending and starting; try again",
        path.display()
    ))
}

/// Whether `file` is still the file at `path` (not removed by a replay that ended).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// Elsewhere the lock's file is never removed, so the file held is the one at the path.
#[cfg(not(unix))]
fn still_at(_: &File, _: &Path) -> bool {
    true
}

/// Syncs the file at `path` (if there is one) and its folder's entry of it (the file may
/// have been made during the replay) to the disk.
fn on_disk(path: &Path) -> Result<(), String> {
    // Opened to append (a sync needs write access on some systems), never made here.
    let sync = |at: &Path, options: &OpenOptions| match options.open(at) {
        Ok(file) => file.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A folder is synced through a read-only handle on Unix; elsewhere it cannot be.
    sync(path, OpenOptions::new().append(true))
        .and_then(|()| {
            if cfg!(unix) {
                sync(folder, OpenOptions::new().read(true))
            } else {
                Ok(())
            }
        })
        .map_err(|e| format!("cannot write '{}' to the disk: {e}", path.display()))
}

/// Writes letters as JSON Lines, appending; a file made here gets the mode of `like` (the
/// file the letters come from: they hold the events' bodies, and a file kept from other
/// users stays so).
fn append_letters(path: &Path, letters: &[DeadLetter], like: &Path) -> Result<(), String> {
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(like) {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(meta.permissions().mode() & 0o777);
    }
    #[cfg(not(unix))]
    let _ = like;
    // Locked as a sink's appends are: neither is written into a file the other moved away.
    let mut file = open_dead_letters_locked(path, &options)
        .map_err(|e| format!("cannot open '{}' for appending: {e}", path.display()))?;
    let mut text = Vec::new();
    for letter in letters {
        serde_json::to_writer(&mut text, letter).map_err(|e| e.to_string())?;
        text.push(b'\n');
    }
    // As a sink appends: not glued to a line a sink killed midway cut short.
    append_dead_letter_lines(&mut file, &text)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write to '{}': {e}", path.display()))
}

/// A line of a dead-letter file, told from the others: a letter written again (failed again)
/// has another `failed_at`.
type LineKey = (String, String, String, u32);

fn line_key(letter: &DeadLetter) -> LineKey {
    (
        letter.id.clone(),
        letter.endpoint.clone(),
        letter.failed_at.clone(),
        letter.attempts,
    )
}

/// Letters set aside for a replay: one per (id, endpoint), the latest kept, and the lines
/// `replaying` held when they were read (see [`return_late`]).
struct SetAside {
    letters: Vec<DeadLetter>,
    lines: HashSet<LineKey>,
}

/// Moves the letters of `path` (and of a `replaying` file left by an interrupted replay) into
/// `replaying`, and returns them.
fn set_aside(path: &Path, replaying: &Path) -> Result<SetAside, String> {
    let aside = |read: Vec<DeadLetter>| SetAside {
        lines: read.iter().map(line_key).collect(),
        letters: latest_of_each(read),
    };
    let earlier = read_letters(replaying)?;
    if earlier.is_empty() && !with_suffix(replaying, ".incoming").exists() {
        if read_letters(path)?.is_empty() {
            // Nothing to replay: leave the file as it is.
            return Ok(aside(Vec::new()));
        }
        // Moved under the file's lock: a sink appending now finishes first (its letter is
        // read below), one that comes after finds the path moved and makes a new file. The
        // lock goes with the move: a sink waiting for it writes to the new file, and must not
        // wait for the read (an emit may be writing a dead letter on its caller's thread).
        move_locked(path, replaying)?;
        return Ok(aside(read_letters(replaying)?));
    }
    eprintln!(
        "deskhook: resuming an interrupted replay: {} letter(s) in '{}'",
        earlier.len(),
        replaying.display()
    );
    let mut letters = earlier;
    // Those a resume killed midway left on their way in, then those written to `path`
    // since, moved aside before they are read: a sink that writes to `path` meanwhile
    // starts a new file, rather than append to one about to be removed.
    let incoming = with_suffix(replaying, ".incoming");
    for from_path in [false, true] {
        if from_path {
            if !path.exists() {
                break;
            }
            move_locked(path, &incoming)?;
        } else if !incoming.exists() {
            continue;
        }
        letters.extend(read_letters(&incoming)?);
        letters = latest_of_each(letters);
        write_again(replaying, &letters)?;
        std::fs::remove_file(&incoming)
            .map_err(|e| format!("cannot remove '{}': {e}", incoming.display()))?;
    }
    // `replaying` holds these, as written here.
    Ok(aside(letters))
}

/// Moves back to `path` the letters written to `replaying` after it was set aside (`lines`
/// is what it held then): a sink of another process that opened `path` just before it was
/// moved writes its letter to `replaying`. Called before `replaying` is removed or
/// replaced, so that no such letter goes with it.
fn return_late(path: &Path, replaying: &Path, lines: &HashSet<LineKey>) -> Result<(), String> {
    let late: Vec<DeadLetter> = read_letters(replaying)?
        .into_iter()
        .filter(|letter| !lines.contains(&line_key(letter)))
        .collect();
    if late.is_empty() {
        return Ok(());
    }
    append_letters(path, &late, replaying)?;
    eprintln!(
        "deskhook: {} dead letter(s) written to '{}' while the replay began moved back to '{}'",
        late.len(),
        replaying.display(),
        path.display()
    );
    Ok(())
}

/// Moves the dead-letter file at `path` to `to`, under its lock (see [`lock_in_place`]),
/// which goes once it is moved.
fn move_locked(path: &Path, to: &Path) -> Result<(), String> {
    let _locked = lock_in_place(path)?;
    std::fs::rename(path, to).map_err(|e| {
        format!(
            "cannot move '{}' to '{}': {e}",
            path.display(),
            to.display()
        )
    })
}

/// Writes `replaying` again with only the letters that are `kept`, under its lock (beside,
/// then swapped in: it holds every letter at every moment).
fn keep_only(replaying: &Path, kept: impl Fn(&DeadLetter) -> bool) -> Result<(), String> {
    let _locked = lock_in_place(replaying)?;
    let letters: Vec<DeadLetter> = read_letters(replaying)?
        .into_iter()
        .filter(|letter| kept(letter))
        .collect();
    write_again(replaying, &letters)
}

/// Writes `replaying` again with `letters`: beside, then swapped in, so that it holds
/// every letter at every moment.
fn write_again(replaying: &Path, letters: &[DeadLetter]) -> Result<(), String> {
    let fresh = with_suffix(replaying, ".tmp");
    match std::fs::remove_file(&fresh) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove '{}': {e}", fresh.display()));
        }
        _ => {}
    }
    append_letters(&fresh, letters, replaying)?;
    std::fs::rename(&fresh, replaying).map_err(|e| {
        format!(
            "cannot move '{}' to '{}': {e}",
            fresh.display(),
            replaying.display()
        )
    })
}

/// The dead-letter file at `path`, locked as its writers lock it while they write (see
/// [`open_dead_letters_locked`]): held while it is moved away.
fn lock_in_place(path: &Path) -> Result<File, String> {
    open_dead_letters_locked(path, OpenOptions::new().read(true))
        .map_err(|e| format!("cannot lock '{}': {e}", path.display()))
}

/// One letter per (id, endpoint), the last one of each, in the order of their first.
fn latest_of_each(letters: Vec<DeadLetter>) -> Vec<DeadLetter> {
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut unique: Vec<DeadLetter> = Vec::with_capacity(letters.len());
    for letter in letters {
        let key = (letter.id.clone(), letter.endpoint.clone());
        match index.get(&key) {
            Some(&at) => unique[at] = letter,
            None => {
                index.insert(key, unique.len());
                unique.push(letter);
            }
        }
    }
    unique
}

/// The line that says what became of `others`, the endpoints of the letters a replay left
/// as they were (one per letter; "" when none), and whether some are of endpoints the configuration does not name (`names`)
/// while `--endpoint` chose none (`asked`): letters no replay can deliver, a failure.
fn others_left(others: &[&str], names: &HashSet<String>, asked: &[String]) -> (String, bool) {
    if others.is_empty() {
        return (String::new(), false);
    }
    let mut line = format!(
        "\n{} dead letter(s) of other endpoints left as they were",
        others.len()
    );
    let mut unnamed: Vec<(&str, usize)> = Vec::new();
    for endpoint in others.iter().filter(|e| !names.contains(**e)) {
        match unnamed.iter_mut().find(|(name, _)| name == endpoint) {
            Some((_, count)) => *count += 1,
            None => unnamed.push((endpoint, 1)),
        }
    }
    if !unnamed.is_empty() {
        let listed: Vec<String> = unnamed
            .iter()
            .map(|(name, count)| format!("{count} for '{name}'"))
            .collect();
        line.push_str(&format!(
            " (of endpoints the configuration does not name: {}; add them to it to replay \
             them)",
            listed.join(", ")
        ));
    }
    (line, !unnamed.is_empty() && asked.is_empty())
}

/// Why a letter cannot be queued again, checked before queueing (`HttpSink::redeliver`
/// refuses these too, and what it refuses besides is kept all the same).
fn unreplayable(letter: &DeadLetter, endpoints: &HashSet<String>) -> Option<String> {
    if !endpoints.contains(&letter.endpoint) {
        return Some(format!(
            "the configuration has no endpoint named '{}'",
            letter.endpoint
        ));
    }
    if letter.id.parse::<EventId>().is_err() {
        return Some(format!("'{}' is not a deskhook event id", letter.id));
    }
    // Any format's event type: `create`, `usedesk.comment_created`, `iqchannels.typing`.
    if deskhook::EventType::from_wire(&letter.action).is_none() {
        return Some(format!("unknown event type '{}'", letter.action));
    }
    None
}

/// The endpoints whose letters to replay: those `asked` for (`--endpoint`), each one of
/// the configuration's `names`, or all of them when none is asked for.
fn chosen_endpoints<'a>(
    asked: &[String],
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = names.map(str::to_owned).collect();
    // In order, for the message (they come from a set).
    names.sort();
    if asked.is_empty() {
        return Ok(names);
    }
    match asked.iter().find(|name| !names.contains(name)) {
        Some(unknown) => Err(format!(
            "--endpoint {unknown}: the configuration has no endpoint named '{unknown}' (it \
             has: {})",
            names.join(", ")
        )),
        None => Ok(asked.to_vec()),
    }
}

/// " of endpoint(s) a, b" for the endpoints `--endpoint` named; "" when none.
fn of_endpoints(asked: &[String]) -> String {
    if asked.is_empty() {
        String::new()
    } else {
        format!(" of endpoint(s) {}", asked.join(", "))
    }
}

/// `replay --spool`: the spool's dead letters go back to its pending events, then drain.
fn replay_spool(dir: &Path, args: &ReplayArgs) -> Result<ExitCode, String> {
    // The spool first: a mistyped directory is the error to report, whatever the config.
    let mut spool = deskhook_transports::spool::Spool::builder(dir)
        .ignore_backoff(true)
        .existing(true)
        // The endpoints serve (or a helpdesk) keeps in it stay theirs.
        .keep_registry(true)
        .open()
        .map_err(|e| e.to_string())?;
    let config = crate::send::load_config(&args.config)?;
    let endpoints = crate::send::config_endpoints(
        &config,
        &args.config,
        &args.attempts.retry,
        args.attempts.timeout,
        args.guard.allow_private,
    )?;
    let names = chosen_endpoints(&args.endpoints, endpoints.iter().map(|e| e.name()))?;
    let chosen: Vec<_> = endpoints
        .iter()
        .filter(|e| names.iter().any(|name| name == e.name()))
        .cloned()
        .collect();
    let delivery = config.delivery_config().map_err(|e| e.to_string())?;
    let requeued = spool
        .requeue_dead_letters(&chosen, delivery.max_payload)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "deskhook: {} dead letter(s){} of spool {} queued again",
        requeued.moved,
        of_endpoints(&args.endpoints),
        dir.display()
    );
    // Those the endpoints cannot take as they are now stay, each with why.
    const LISTED: usize = 20;
    for (_, why) in requeued.kept.iter().take(LISTED) {
        eprintln!("deskhook: {why}");
    }
    if requeued.kept.len() > LISTED {
        eprintln!(
            "deskhook: and {} more dead letter(s) not replayed (list them with `deskhook \
             dead-letters list`)",
            requeued.kept.len() - LISTED
        );
    }
    // Those of other endpoints stay too: said, and a failure when the configuration does
    // not name their endpoints (no replay with it can deliver them), as for a file.
    let config_names: HashSet<String> = endpoints.iter().map(|e| e.name().to_owned()).collect();
    let others = other_letters(dir, &names)?;
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let (others_line, unconfigured) = others_left(&others, &config_names, &args.endpoints);
    if let Some(line) = others_line.strip_prefix('\n') {
        eprintln!("deskhook: {line}");
    }
    let before = spool.stats().map_err(|e| e.to_string())?;
    let drained = crate::spool::run_drain(
        spool,
        endpoints,
        delivery,
        &args.attempts.retry,
        args.attempts.timeout,
        &before,
    )?;
    Ok(if unconfigured {
        ExitCode::FAILURE
    } else {
        drained
    })
}

/// The endpoint of each dead letter of the spool in `dir` that is not of `chosen`.
fn other_letters(dir: &Path, chosen: &[String]) -> Result<Vec<String>, String> {
    let mut query = DeadLetterQuery::new();
    query.limit = MAX_PAGE;
    let mut others = Vec::new();
    loop {
        let page = deskhook_transports::spool::read_dead_letter_page(dir, &query)
            .map_err(|e| e.to_string())?;
        others.extend(
            page.items
                .into_iter()
                .map(|stored| stored.letter.endpoint)
                .filter(|endpoint| !chosen.contains(endpoint)),
        );
        match page.next {
            Some(next) => query.before = Some(next),
            None => return Ok(others),
        }
    }
}

pub(super) fn replay(args: ReplayArgs) -> Result<ExitCode, String> {
    let spool = match (&args.spool, &args.file) {
        (Some(dir), _) => Some(dir.clone()),
        (None, None) => configured_spool(&args.config)?,
        (None, Some(_)) => None,
    };
    if let Some(dir) = &spool {
        return replay_spool(dir, &args);
    }
    let config = crate::send::load_config(&args.config)?;
    let mut delivery = config.delivery_config().map_err(|e| e.to_string())?;
    let path = args
        .file
        .unwrap_or_else(|| delivery.dead_letter_path.clone());
    let missing = super::file_note(&path)?;
    let endpoints = crate::send::config_endpoints(
        &config,
        &args.config,
        &args.attempts.retry,
        args.attempts.timeout,
        args.guard.allow_private,
    )?;
    let names: HashSet<String> = endpoints.iter().map(|e| e.name().to_owned()).collect();
    let chosen = chosen_endpoints(&args.endpoints, names.iter().map(String::as_str))?;
    let width = endpoints.iter().map(|e| e.name().len()).max().unwrap_or(0);

    let replaying = replaying_path(&path);
    let _replay = lock_replay(&replaying)?;
    let SetAside { letters, lines } = set_aside(&path, &replaying)?;
    let (letters, others): (Vec<_>, Vec<_>) = letters
        .into_iter()
        .partition(|l| chosen.contains(&l.endpoint));
    // The others go back to the file first: letters that fail again are written after
    // them, as they were before. Then out of `replaying`: an interrupted replay would put
    // back in the file those deleted or replayed from it since. (Interrupted in between,
    // the next finds them in both files, and keeps one of each.)
    if !others.is_empty() {
        append_letters(&path, &others, &replaying)?;
        keep_only(&replaying, |letter| {
            chosen.contains(&letter.endpoint) || !lines.contains(&line_key(letter))
        })?;
    }
    let other_endpoints: Vec<&str> = others.iter().map(|l| l.endpoint.as_str()).collect();
    let (others_line, unconfigured) = others_left(&other_endpoints, &names, &args.endpoints);
    if letters.is_empty() {
        if replaying.exists() {
            return_late(&path, &replaying, &lines)?;
        }
        let _ = std::fs::remove_file(&replaying);
        // "to replay" when the file has letters of other endpoints, said on the next line.
        let what = if others.is_empty() { "" } else { " to replay" };
        crate::send::print_line(&format!(
            "no dead letters{}{what} in {}{missing}{others_line}",
            of_endpoints(&args.endpoints),
            path.display()
        ));
        return Ok(if unconfigured {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let (mut replayable, mut kept): (Vec<_>, Vec<_>) = letters
        .into_iter()
        .partition(|l| unreplayable(l, &names).is_none());
    let total = replayable.len() + kept.len();
    // In the order the events were emitted (UUID v7 ids): the file's order is not always
    // their tickets' (see `DeadLetters::replay`).
    replayable.sort_by(|a, b| a.id.cmp(&b.id));
    for letter in &kept {
        if let Some(why) = unreplayable(letter, &names) {
            eprintln!("deskhook: dead letter {} kept: {why}", letter.id);
        }
    }

    // New failures are appended to `path` by the engine: made here if it is not (with the
    // mode of the file the letters come from), not by the engine with the default mode.
    append_letters(&path, &[], &replaying)?;
    delivery.dead_letter_path.clone_from(&path);
    // Every letter must fit in the queue and in the memory budget: either, full, would
    // refuse it.
    delivery.queue_capacity = delivery.queue_capacity.max(replayable.len());
    let bodies: usize = replayable.iter().map(|l| l.body.get().len()).sum();
    delivery.max_queued_bytes = delivery.max_queued_bytes.max(bodies.saturating_mul(2));
    let bar = Arc::new(
        ProgressBar::new(replayable.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} dead letters  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
    );
    // The events delivered, by id: those `.replaying` need not keep if the run fails.
    let delivered_ids: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let observer = {
        let (bar, delivered_ids) = (bar.clone(), delivered_ids.clone());
        move |record: &AttemptRecord<'_>| {
            bar.suspend(|| crate::send::print_line(&crate::send::attempt_line(record, width)));
            if record.outcome == AttemptOutcome::Delivered {
                delivered_ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(record.event_id.to_string());
            }
            if record.outcome != AttemptOutcome::Retrying {
                bar.inc(1);
            }
        }
    };
    let mut builder = HttpSink::builder().config(delivery).observer(observer);
    for endpoint in endpoints {
        builder = builder.endpoint(endpoint);
    }
    let (sink, guard) = builder.build().map_err(|e| e.to_string())?;
    // The tickets (per endpoint) of letters kept: their later letters stay too, or they
    // would go out before them (as `DeadLetters::replay` does).
    let mut held: HashSet<(String, String)> = kept
        .iter()
        .map(|l| (l.endpoint.clone(), l.ticket.clone()))
        .collect();
    for letter in &replayable {
        let ticket = (letter.endpoint.clone(), letter.ticket.clone());
        if held.contains(&ticket) {
            bar.suspend(|| {
                eprintln!(
                    "deskhook: dead letter {} kept: held behind a letter of its ticket that \
                     was not replayed",
                    letter.id
                );
            });
            kept.push(letter.clone());
            bar.inc(1);
            continue;
        }
        if let Err(e) = sink.redeliver(letter) {
            held.insert(ticket);
            // Not queued (another tenant's endpoint now has its name, say): it goes back
            // to the file with the letters kept, never lost with `.replaying`.
            bar.suspend(|| eprintln!("deskhook: dead letter {} kept: {e}", letter.id));
            kept.push(letter.clone());
            bar.inc(1);
        }
    }
    // However many were queued: one ticket's letters go one after the other.
    let stall = crate::send::deadline(&args.attempts.retry, args.attempts.timeout);
    let finished = crate::send::flush_while_moving(&guard, &sink, stall, |_| {});
    // What is still queued goes back to the file as undelivered.
    let _ = guard.shutdown(std::time::Duration::from_secs(1));
    bar.finish_and_clear();

    append_letters(&path, &kept, &replaying)?;
    return_late(&path, &replaying, &lines)?;
    // Letters that failed again and could not be written to `path` (a full disk) were
    // counted as dropped: `.replaying` is their only copy, so it keeps them (those not
    // delivered) for the next run, which resumes it.
    let dropped: u64 = sink.stats().iter().map(|s| s.dropped).sum();
    if dropped > 0 {
        let delivered_ids = delivered_ids.lock().unwrap_or_else(|p| p.into_inner());
        let undelivered: Vec<DeadLetter> = replayable
            .into_iter()
            .filter(|l| !delivered_ids.contains(&l.id))
            .collect();
        write_again(&replaying, &undelivered)?;
        return Err(format!(
            "{dropped} dead letter(s) failed again and could not be written to {} (see the \
             errors above); the {} not delivered are kept in {}: run the replay again once \
             {} can be written",
            path.display(),
            undelivered.len(),
            replaying.display(),
            path.display()
        ));
    }
    // The letters that failed again are in `path` (the sink appends without a sync): on
    // disk before their only other copy goes.
    on_disk(&path)?;
    std::fs::remove_file(&replaying)
        .map_err(|e| format!("cannot remove '{}': {e}", replaying.display()))?;

    let delivered: u64 = sink.stats().iter().map(|s| s.delivered).sum();
    let left = total as u64 - delivered.min(total as u64);
    let mut summary = format!(
        "{delivered} of {total} dead letter(s){} delivered",
        of_endpoints(&args.endpoints)
    );
    if finished.is_err() {
        summary.push_str(&format!(
            "; stopped waiting when none had finished for {:.1} s",
            stall.as_secs_f64()
        ));
    }
    if left > 0 {
        summary.push_str(&format!("\n{left} left in {}", path.display()));
    }
    summary.push_str(&others_line);
    // The exit status tells whether the letters were delivered, even when stdout is closed.
    crate::send::print_line(&summary);
    Ok(if left == 0 && kept.is_empty() && !unconfigured {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
