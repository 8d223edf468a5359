//! Sinks for [deskhook](https://docs.rs/deskhook): where emitted helpdesk events go.
//!
//! Libraries call `deskhook::emit`; the application picks its sinks here, one cargo feature
//! per medium, and hands them to a `deskhook::Dispatcher`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use deskhook_transports::file::FileSink;
//!
//! let dispatcher = deskhook::Dispatcher::builder()
//!     .sink("file", FileSink::new(dir.path().join("events.jsonl"))?)
//!     .build();
//! deskhook::set_dispatcher(dispatcher)?;
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! - `file` (default): [`file::FileSink`], the JSON Lines log. No extra dependency.
//! - `http-blocking` (default): [`http_blocking::HttpSink`], reliable delivery to HTTP
//!   endpoints from a pool of worker threads over blocking sockets, with the [`delivery`]
//!   engine (a registry of endpoints changed at run time, tenants, queues, per-ticket order,
//!   retries, breaker, rate limits, dead letters; every engine-backed sink is a
//!   [`delivery::DeliverySink`]), the [`guard`] against SSRF, [`template`] (payload
//!   templates: chat presets for Slack, Teams, Mattermost, Discord and Telegram, and
//!   templates of one's own), and [`config`] for `deskhook.toml`. HTTP/1.1 is the crate's
//!   own, shared with `http-async`. Pulls in httparse, tokio (for its I/O traits),
//!   tokio-rustls, rustls (ring), webpki-roots, url, ipnet, httpdate, toml, strsim,
//!   smallvec, memchr, foldhash, itoa, uuid, minijinja, rustls-pki-types, socket2 and libc
//!   (a request write that raises no `SIGPIPE`), and on Linux rustix and thread-priority
//!   (the delivery threads' lower priority); and ureq
//!   (rustls), for the guard's ureq items only ([`guard::agent`], [`guard::GuardedResolver`],
//!   [`guard::refusal_of`]).
//! - `http-async`: [`http_async::AsyncHttpSink`], the same delivery as tokio tasks: the same
//!   HTTP/1.1 of the crate's own on httparse, HTTP/2 over hyper's `client::conn` when the
//!   server offers it (rustls with ring: no C toolchain beyond ring's), usable inside an
//!   existing runtime or with a runtime of its own. Pulls in httparse, hyper, hyper-util,
//!   http, http-body-util, h2, tokio, tokio-rustls, rustls, webpki-roots and async-trait.
//! - `spool`: [`spool::Spool`], a durable SQLite outbox inside the delivery engine. Pulls in
//!   rusqlite with its bundled SQLite, and the delivery engine's dependencies (those of
//!   `http-blocking` but ureq and its HTTP/1.1's: httparse, tokio, TLS, socket2 and libc).
//! - `nats`: [`nats::NatsSink`], the same delivery publishing to a NATS JetStream stream
//!   (acknowledged, de-duplicated on the event id) for `deskhook relay` workers to deliver.
//!   Pulls in async-nats (JetStream and KV, rustls with ring), tokio, async-trait and
//!   futures-util, and the delivery engine's dependencies (those of `http-blocking` but
//!   ureq and its HTTP/1.1's).
//!   The same feature brings [`endpoint_store`]: the endpoint registry in a JetStream KV
//!   bucket, secrets sealed (XChaCha20-Poly1305), what `deskhook endpoints --nats` changes.
//!   Pulls in chacha20poly1305, base64, getrandom, percent-encoding and sha2 too.
//! - `relay`: [`relay::Relay`] (what `deskhook relay` runs), delivering a JetStream stream's
//!   events to HTTP endpoints with the async transport, as tasks on the relay's runtime.
//!   Pulls in what `nats` and `http-async` do (enable `http-blocking` too for
//!   `HttpSink`).
//! - `metrics`: counters, gauges and histograms through the `metrics` facade (events,
//!   drops, attempts by outcome, latency, queue and spool depth, endpoints by state; see
//!   [`delivery::telemetry`]). The helpdesk installs the exporter. Pulls in metrics.
//! - `tracing`: a `deskhook.attempt` span around every delivery attempt, with the endpoint,
//!   webhook id, event type, ticket, attempt number and status. Pulls in tracing.
//! - `openapi`: OpenAPI schemas of the admin API's types ([`delivery::EndpointSpec`]), for
//!   `deskhook-console`. Pulls in utoipa, and what the delivery engine needs.
//!
//! # Log levels
//!
//! Records go to the `log` crate under the target `deskhook`:
//!
//! - `error`: an endpoint answered 410 and is disabled; an event could not be written to the
//!   spool; the delivery runtime shut down with events undelivered; a relay's partition is
//!   held by a consumer that is not its group's; a file log closed with lines its file did
//!   not take (how many, and which).
//! - `warn`: an event was dead-lettered or dropped (a full queue or memory budget), a shutdown
//!   left events undelivered, a background flush or a rotation of the file log failed; a
//!   relay lost its connection to NATS.
//! - `info`: an endpoint was added, updated, paused, resumed or removed; spooled events from
//!   before a restart go out; a relay is connected to NATS again; a NATS sink lowered its
//!   `max_payload` under what the server and stream take.
//!
//! # Changes
//!
//! ## 0.1 (unreleased): one source per setting
//!
//! - A removed endpoint's spool rows (or a 410's) go to the dead letters in steps of 1,000
//!   rows or 1 MiB of bodies, a commit each: the one transaction they went in held every
//!   `emit` waiting for its commit for the whole move (10 s for 50,000 events of 2 KiB; now
//!   61 ms at the longest, the `spool_remove` benchmark). The other endpoints' changes
//!   made meanwhile return at once. While outcomes are written again (a full disk), the
//!   steps wait for them, then go on; a step that fails ends the move, its rows left for
//!   the next start.
//! - `Endpoints::update_spec`, `update_spec_if_unchanged` and `rotate_secret` return the
//!   endpoint as they made it (`EndpointInfo`), so that a version taken from it is theirs
//!   and not that of a change made right after. An update that leaves out `secrets` keeps
//!   the literal secrets also when it names `secret_env` (settings read back name the
//!   variable and never show the secrets: they were dropped). `EndpointInfo::
//!   settings_digest` covers an endpoint registered in code too (its URL, timeouts,
//!   limits and headers), so that its version changes with them. **Upgrading:** a caller
//!   that matched `Ok(())` matches `Ok(_)`.
//! - Endpoint settings: `secret_env` must be a variable's name (letters, digits and `_`,
//!   not a `whsec_` secret: one written there was repeated in the error and in `Debug`),
//!   and an `allow_cidrs` network may not have bits set past its prefix
//!   (`10.20.30.40/8` opened all of `10.0.0.0/8`). A template's JSON error no longer
//!   quotes the values of `template_vars` (but `chat_id` and `lang`). **Upgrading:** an
//!   endpoint kept in a spool or an endpoints bucket with such a setting is left out at
//!   start (logged; its events wait): write the network as the error says, or rename the
//!   variable (`MY_SECRET` for `my-secret`).
//! - NATS: a stream that does not record its partition count (made by hand) is given the
//!   publisher's (or the first relay's) in its description; a process assuming another
//!   count then refuses the stream, and a running relay stops, saying so, where before the
//!   partitions past the relays' count were left undelivered. Endpoint records and lease
//!   owners are read from the stream's leader (a replica behind could give a relay an old
//!   endpoint to keep). **Upgrading:** publishers and relays of one stream must give the
//!   same `partitions`.
//! - An attempt in flight across an edit of its endpoint goes again at once, as before,
//!   but a `Retry-After` of the same receiver (URL and CA roots unchanged) holds, and an
//!   event already past its schedule is given up (edits made during every attempt retried
//!   it for ever).
//! - HTTP/1.1: a `Content-Length` list is read once (a receiver's list of 65,000 commas
//!   took seconds of CPU), a chunk size line once whole, a bare line feed ending one is
//!   refused, and a 204 that announces a body, or a 204 or 304 with a
//!   `Transfer-Encoding`, does not keep its connection.
//! - An endpoint's headers may not hold `Expect`, `Upgrade`, `TE`, `Trailer`, `Keep-Alive`
//!   or `Proxy-Connection`: they change how the request is carried (the transports do not
//!   wait for a `100 Continue`), and HTTP/2 leaves them out. **Upgrading:** an endpoint
//!   given one is refused, saying to remove it.
//! - The HTTP/1.1 client takes blank lines before an answer's status line off as they come
//!   (in the head's 64 KiB): a receiver sending them one byte at a time had what came
//!   parsed again at each, seconds of CPU per attempt.
//! - A spool row of an event type this build does not know (a newer deskhook's, rolled
//!   back) stays in the spool with its ticket's later events, rather than going to the dead
//!   letters, where this build could neither deliver nor replay it and the ticket's later
//!   events overtook it.
//! - Dead letters past their retention in a spool go 10,000 at a time (a step per commit;
//!   a full spool takes steps until it has room), and a delete from a dead-letter file
//!   copies it to a file of its own name (`<file>.rewrite-<pid>-<n>-<random>`): two
//!   processes deleting at once lost letters.
//! - Payload templates: `namespace()` is not offered (a namespace could be made to hold
//!   itself, and printing it overflowed the stack, at the template's sample render: an
//!   admin API upsert could abort the process). **Upgrading:** an endpoint whose template
//!   calls it is refused; one kept in a spool is left out at start (logged; it stays in the
//!   spool, and its events wait), one in an endpoints bucket held by the relays (paused,
//!   its events kept): rewrite such templates before upgrading (or after, with the same
//!   name). An endpoint that takes Zenlix `create` events is refused when its template
//!   reads a `vars.…` its `template_vars` lack (each such event would fail);
//!   `Template::max_output` out of 1 byte to [`template::LARGEST_OUTPUT`] refuses the
//!   endpoint, as `template_max_output` did. The summary reads `null` where an object or
//!   list was expected as empty (it emptied the whole summary), and `author` is who acted:
//!   a Usedesk comment's client only when the client wrote it, none for `ticket_changed`,
//!   an iQChannels actor by name from `Rels`. A template file is read no further than its
//!   64 KiB (`/dev/zero` grew the process until it was killed), and an unknown preset's name
//!   is shown shortened and escaped.
//! - NATS: with `require_server`, the first connect is made in the build, so that a
//!   refused login or TLS setup is the build's error (it said "no answer"); a server
//!   list's parse error no longer shows a URL part (a ',' in a password showed its
//!   start); a stream found unlike the settings once the sink runs is retried and logged
//!   once a minute (each event went to the dead letters with an error line of its own);
//!   a batch refused for its size has the sink read the limits again, and goes again in
//!   batches under them (each batch was refused, then sent event by event, until a
//!   restart); the stream's endpoint changed without `max_in_flight` keeps the sink's
//!   default (batches: 1024). `delivery::redact_url` shows `nats://host:port/` (it gave
//!   `null/`). When the server answers at start, the build lowers
//!   `DeliveryConfig::max_payload` to 4 KiB under its `max_payload` and the stream's
//!   `max_msg_size`, so that a larger event is refused at emit (it was published, refused
//!   and dead-lettered after an attempt). The attempts waiting for the connection are woken
//!   by one watcher (each polled every 20 ms). **Upgrading:** `StreamSettings::of_existing`
//!   returns a `Result`: a stream it cannot look up is `Error::Nats` (it took the defaults,
//!   and a relay that started while a cluster elected a leader was refused as a conflict,
//!   told to delete the stream).
//! - Endpoints: a name is at most 256 bytes (`delivery::NAME_MAX_BYTES`; **upgrading:** a
//!   longer one kept in a spool is left out at start, logged; one in an endpoints bucket
//!   keeps relays from starting, see below). An unknown name is compared with the
//!   registered ones outside the registry's lock (a long one from the admin API's URL held
//!   every emit up while an update waited). With a spool,
//!   `replace_all` returns once its additions and updates are on disk, as `upsert` does,
//!   and an endpoint removed once the sink stopped (its runtime gone) is removed from the
//!   spool (it came back at the next start). `update_spec` documents its
//!   `EndpointChanged`.
//! - Relays: **upgrading:** a relay fails to start while its endpoints bucket has a record
//!   it cannot read (sealed with another key, or with no key given; a newer layout; one
//!   refused as unsealed) or use at all (not even a stand-in of its endpoint can be made: a
//!   name or URL this build refuses), naming each and why: it used to leave their endpoints
//!   out and acknowledge their events without delivering them there (a relay given the
//!   wrong key, every sealed endpoint's). `Relay::leave_out_unusable` (`deskhook relay
//!   --leave-out-unusable`) starts without them, as before. An endpoint whose record reads
//!   but whose settings do not work on the relay's machine (a `ca_file` or `template_file`
//!   missing there, a `secret_env` not set) is held there, paused with its URL, tenant and
//!   event types, its events parked, until a change the relay can apply (it was left out,
//!   its events acknowledged without delivery, though `EndpointStore::check` said paused).
//!   A parked events bucket whose entries expire (a `max_age`) or whose oldest go when full
//!   (discard old) fails `run`; `Relay::max_pending` over `relay::MAX_PENDING` (100,000)
//!   fails `run` too; a panic of the partitions' owner stops its lease renewals, and `run`
//!   returns at once with the error (it renewed for ever, and waited for a stop). A relay
//!   refuses to start while the parked events bucket holds entries of partitions the stream
//!   no longer has (made again with fewer): no relay read them, and their events were never
//!   delivered. A partition's new owner deletes a consumer left under its own name (a
//!   leases bucket made again starts its revisions over) rather than take over the
//!   messages it had handed out, which came back after the ticket's later events.
//! - Endpoints buckets: **upgrading:** a record of layout 1 (written before the URL was
//!   sealed) whose secrets or header values are sealed is refused by a reader with the key,
//!   as its URL is in the open and anyone who can write to the bucket could have pointed
//!   those secrets at a URL of theirs; `deskhook endpoints reseal` seals it again only when
//!   named (`reseal NAME@REVISION`, after `reseal --dry-run` shows its URL). `rekey` says
//!   which records of an older layout are sealed with a previous key (it passed over them,
//!   and they stopped opening once the old key was taken away), and `endpoints list` says
//!   `reseal` for them (`StoredEndpoint::layout`).
//! - Shutdown: a `shutdown_async` cancelled before it ends (by a `select!` or a `timeout`)
//!   stops delivery as the guard is dropped, what is left going where a shutdown's goes
//!   (the dead letters; the spool; a relay's stream) (the engine went on, and a process
//!   that ended lost it without a word); `shutdown` waits, a second at most past its
//!   timeout, for the letters of attempts given up as it stops; a logger that panics on a
//!   letter that could not be written loses the line, not the letter's count.
//! - `deskhook serve`: with a spool, idempotency keys are kept on disk beside it
//!   (`idempotency-keys.sqlite`; a retry after a restart was a second event);
//!   `--metrics-forget` (a day) drops series no longer updated (a removed endpoint's stayed
//!   for as long as the daemon ran); `GET /v1/openapi.json` describes `POST /v1/events`;
//!   an event's body must arrive within 4 times `--body-timeout` in all (one that sent a
//!   byte now and then held its place for ever).
//! - The admin API: a `PATCH` with `If-Match: *` (or a list of tags) is saved only onto the
//!   version it was made on (it could undo a change saved between its read and its save,
//!   moving an endpoint back to a tenant); a `PUT` or `PATCH` with `If-Match` on an
//!   endpoint removed meanwhile is 412, as documented (it was 404); a `DELETE` with
//!   `If-Match` removes only that version, checked and removed at once
//!   (`Endpoints::remove_if_unchanged`).
//! - The console: a form refused for a field asks for the secret and headers again (they
//!   are not shown back, and were saved as none); one refused for its CSRF token is shown
//!   again with what was typed, when the browser says it comes from this origin; the dead
//!   letters' controls are labelled by letter; the assets are `Cache-Control: private`.
//! - The command line: Ctrl-C during `send`'s wait dead-letters what is left, prints the
//!   summary and exits 130 (143 after SIGTERM); `tail -n N`; `listen --tolerance`,
//!   `--no-tolerance` and `--listen`; `spool stats|dead-letter --spool DIR`; `spool
//!   dead-letter --dry-run`; `endpoints … url=-` and `headers=-` from standard input; the
//!   `endpoints` flags after the subcommand too; `dead-letters replay` says a missing file
//!   or folder; relay durations out of range are said with their flag; usage errors exit 2,
//!   and so do bad flag values found after parsing (an unknown preset, a `--template-var`
//!   or `--header` that does not read, a key for `verify`); a `--retry` that does not
//!   start at once is said as the flag's (it blamed the config file's `retry`); `endpoints
//!   --replicas` takes 1 to 5 (0 was made 1).
//! - The file log: **upgrading:** a new file is made readable by its owner only (0600, as
//!   the dead letters and the spool; it was 0644 under the usual umask, and its lines hold
//!   the events' bodies): give `mode = 0o640` in `[file_log]` (`FileSinkBuilder::mode`) for
//!   a log shipper in the file's group. With `every-event`, a line the file did not take
//!   is dropped with its report (it stayed in a buffer and went out later, into the file or
//!   the one a rotator put at the path).
//! - Dead letters: a new dead-letter file is made readable by its owner only (0600, as the
//!   spool; it was 0644 under the usual umask, and letters hold the events' bodies); a
//!   replay of many letters queues each once (a delete between two pages of its listing
//!   showed some twice); a delete copies from the file it measured (measured by its path,
//!   it could be a new file a replay made there). `deskhook dead-letters replay` appends
//!   as a sink does (`delivery::append_dead_letter_lines`), never glued to a cut line.
//!   A file that cannot be read (dead letters listed, replayed or deleted; `Config::load`'s
//!   file) is the new `Error::Read`, "cannot read 'PATH'" (it was `Error::Open`, which
//!   said "cannot open for appending" and to choose a writable folder).
//! - HTTP (both transports): an answer with more than 100 header lines is read (its status
//!   was lost: the attempt was retried, its event delivered again and dead-lettered); of
//!   several `Retry-After` headers the first that reads counts (HTTP/1.1 took the last,
//!   even one that did not read). Interim (`1xx`) answers count against the answer head's
//!   64 KiB, so a receiver that sends them without end is cut off rather than read until
//!   the attempt's timeout; a redirect that came while the body was still being written is
//!   the answer even if a reset follows (it was a connection error, retried for a day);
//!   only an `https` URL's host must be a valid certificate name (`http://foo-.internal/`
//!   was refused); the blocking transport tries a name's next address whatever the one
//!   before failed with (a local rule denying one address family ended the connect), and
//!   a connect that no address took says every address's error. Errors say what to do: a
//!   certificate of an unknown CA (give the endpoint its CA), one for another name, a port
//!   that does not speak TLS, a name whose lookup did not answer within the connect timeout
//!   (`cannot resolve '…' within …`, no longer `timed out connecting`).
//! - HTTP connections: endpoints on one origin share its pool whatever their attempts'
//!   timeouts (a timeout of its own made each tenant's endpoint a pool of its own, with its
//!   own DNS lookups and HTTP/2 connections); the async transport gives a name's addresses
//!   the blocking one's shares of the connect timeout (half of what is left, the last all
//!   of it) rather than equal ones (eight addresses and a 1 s timeout left 125 ms each);
//!   an HTTP/2 answer head is read up to the 64 KiB of an HTTP/1.1 one (16 KiB refused
//!   larger heads with "unspecific protocol error"); the async transport connects to an
//!   origin that speaks HTTP/2 (or may: `https`, not connected yet) one connection at a
//!   time, as a task of its own that the requests finding no room wait for (32 requests at
//!   a cold start made 5 TLS handshakes, all connections but one then dropped); an HTTP/2
//!   connection is given up after a timeout only once it has answered nothing for the
//!   connect timeout while requests waited on it (an endpoint with a short timeout on a slow
//!   receiver dropped its origin's connection, a new handshake for every endpoint there
//!   each time).
//! - An attempt that runs out of time says where its request was, where it said
//!   `timed out (…)`: `timed out (…) waiting for a connection`; `timed out (…) writing the
//!   request, N of M bytes given to the connection: the receiver reads slowly or not at
//!   all`; `timed out (…) waiting for the answer, the request written`, or over HTTP/2
//!   `…, the request handed to HTTP/2`.
//! - New: `DeliverySink::health`, for a readiness check: with a spool, an error while its
//!   writes of events fail (a full disk) or find it full (for 10 s after the last such
//!   write, unless one succeeds), or its writer has stopped. `deskhook serve`'s `/healthz`
//!   answers 503 then.
//! - A page of dead letters (`DeadLetters::list`, the admin API, the console) ends once its
//!   letters' bodies reach `delivery::MAX_PAGE_BYTES` (8 MiB), with one letter at least:
//!   a page of a thousand letters of a megabyte each held a gigabyte. A delete that finds
//!   the dead-letter file moved by a replay fails with the new `Error::DeadLettersMoved`
//!   (the admin API answers 409), where it was an `Error::Write`. The admin API's
//!   `LetterView::letter` is the `DeadLetter` itself (its body as stored, not parsed again),
//!   no longer a `serde_json::Value`.
//! - With a spool, a ticket read back from disk (its retry due, a pause and resume) goes on
//!   from the attempts it made even when the spool has not written them yet (writes that
//!   fail, as on a full disk): it was tried again from the start of its retry schedule.
//! - `relay::parked` returns a `ParkedSummary` (the endpoints, and the entries it could not
//!   read) rather than failing on an entry a newer deskhook's relays wrote; it and
//!   `Relay::run` refuse a durable name a KV bucket cannot take.
//! - The NATS sink's publishes, and a relay's copies of skipped messages and its dead
//!   letters, carry `Nats-Expected-Stream`: a stream made over their subjects after the
//!   start gets nothing, and the attempts are retried per the schedule while it holds the
//!   subjects. A batch whose answer did not come is sent again as it was through "not now"
//!   answers, for up to the sink's timeout; batches are made under the stream's
//!   `max_msg_size`.
//! - `spool::inspect` and the spool's dead-letter readers wait up to 5 s for a lock the
//!   running sink holds; a removed endpoint leaves the spool's registry before its rows
//!   move to the dead letters.
//! - The `file` feature alone no longer pulls in rustix and thread-priority.
//! - New: `Endpoints::count_by_state`, how many endpoints are active, paused, disabled or
//!   have their breaker open, in one walk (`GET /api/v1/stats` made four).
//! - HTTP/1.1 answers (both transports): an answer that closes the connection while the
//!   body is still being written ends the writing and is the attempt's answer (a 200 was
//!   lost to the reset that followed, and the event retried into the dead letters); a
//!   Content-Length that is wrong fails only an answer it frames (not a 204, a 304 or a
//!   chunked one, whose connections are then not kept); a chunk-size line with no digit
//!   ends the connection rather than the body; blank lines before a head that comes
//!   slowly are not parsed again for each piece.
//! - `DeadLetters::replay_matching` ("Replay all matching", `POST
//!   /api/v1/dead-letters/replay`) from a dead-letter file reads each part's letters where
//!   its listing found them and takes those queued out in one rewrite at the end: it read
//!   and rewrote the whole file for each part of 1,000 letters (a replay of a tenant's
//!   100,000 letters from a 200 MB file moved tens of gigabytes). Until the end they are
//!   still listed, and a process that dies meanwhile has them to replay again.
//! - Kept connections unused for 30 s are closed within the next 30 s by a thread of each
//!   HTTP sink's (`deskhook-idle`) rather than by their origin's next request: an endpoint
//!   gone quiet kept its last burst's sockets (up to its `max_in_flight`), and thousands
//!   of them could take the process's file descriptors.
//! - An attempt refused by the SSRF guard for an address a name resolved to names the name
//!   and the kind of address, no longer the address (`refusing to connect to db.internal:
//!   it resolves to a refused address (private (RFC 1918)): …`): attempts and dead letters
//!   are read by tenants, who could look internal names up through them. The address is
//!   logged at `debug`. An IP-literal URL's refusal still quotes it. Likewise a name's
//!   failed connection says which of its addresses (`connection failed: crm.example.com
//!   (address 1 of 2): …`), not the address.
//! - The endpoints bucket: with the secrets key, a record of layout 1 or 2 (not sealed in
//!   layout 3) that sets `template_file`, `ca_file`, `secret_env`, `allow_private` or
//!   `allow_cidrs` is refused, even without `require_sealed`: a relay leaves its endpoint
//!   out (or pauses it), and `deskhook endpoints get` and `list` name it. Anyone who can
//!   write to the bucket could have written it (`template_file = "/proc/self/environ"`
//!   posted a relay's environment). **Upgrading relays:** when they read layout 3 already
//!   (built since 2026-12-01), reseal such records first (`deskhook endpoints reseal
//!   --dry-run`, then `reseal NAME@REVISION`), then upgrade; when they do not, upgrade
//!   them and reseal at once: until then those endpoints are left out. `reseal` with no
//!   names leaves such records out (they are sealed by name). An empty
//!   `DESKHOOK_SECRETS_KEY` is an error, not no key. `EndpointStore::check` accepts
//!   `hub_signature` with `secret_env`, and `template_file` with a text content type.
//! - `X-Hub-Signature-256` is made with the HMAC secret that expires first (a rotation's
//!   old one, until its overlap ends), and an attempt fails rather than go without it when
//!   no `whsec_` secret is current; `hub_signature` needs a current `whsec_` secret, and a
//!   rotation to another kind is refused. An endpoint signs with at most 16 secrets (what
//!   a verifier reads). `verify` reads the entries of folded `webhook-signature` lines.
//! - The SSRF guard refuses the rest of `2001::/23`, `100:0:0:1::/64` and `5f00::/16`, and
//!   `192.88.99.0/24` (6to4 relay anycast, deprecated by RFC 7526: where it is still
//!   routed, it reaches a relay of one's own network), alone and inside IPv6 forms;
//!   `allow_cidrs` can list it.
//! - Payload templates count the text they make from values (values printed, captured
//!   ones, `tojson`, `string`, `pprint`) against a room of its own as it is made (the
//!   output's, and at least 4 MiB): a list repeated with `*`, which minijinja makes for no
//!   fuel, fails the render instead of being made whole. `debug()` is not offered.
//!   `tojson` is escaped for HTML, XML and form bodies. `truncate(0)` gives nothing.
//! - Hidden template variables are not carried to the same template with another content
//!   type or `template_max_output`.
//! - Relays: a tenure past seven eighths of its lease since its last renewal starts no
//!   attempt, even before the renewer runs (a relay frozen past its lease delivered again);
//!   entries a park writes as its tenure ends are removed; a stream made again with
//!   another partition count stops the relay with `Error::Config`.
//! - Spool: a wait for what was written is answered only once changes kept to be written
//!   again before it are; a removal after the writer ended lets go of its rows; the
//!   read-only connections wait a second for a passing lock.
//! - The pool: a lane refused again with nothing in flight may take any slot; a slot is
//!   not handed to a lane already in the run queue.
//! - A changed rate limit keeps the tokens left (at most its burst); every limit's text
//!   reads back (`5/1d`).
//! - From the session before: `open_dead_letters_locked` (the dead-letter file's writers
//!   lock it); durations at most 100 years (`MAX_DURATION`); `EndpointStore::remove_if`;
//!   `If-Match` as RFC 9110 has it, and PUT/PATCH answer with the new ETag; two
//!   `replace_all` take turns; a blocking worker thread survives a panic anywhere in its
//!   loop; the end of an attempt runs on a panic too (`Ending`).
//! - `Spool::dead_letter_pending` (`deskhook spool dead-letter`) moves the pending events
//!   of an endpoint that is gone to the spool's dead letters.
//! - A spool's lane reads no more rows than the memory budget has room for (it read a
//!   window of bodies, then threw them away while the budget was spent).
//! - A kept connection whose answer had a head over 8 KiB no longer panics at its next
//!   request (both HTTP transports; the request had gone out, so it was sent again): the
//!   connection reads from its new buffer's start.
//! - An answer head written loosely (a header folded over lines, a space before a colon, a
//!   line that is no header) is read for its status rather than failed and retried; its
//!   connection is not kept.
//! - `EndpointSpec::problems` lists every setting `to_endpoint` refuses, at once, and the
//!   `SpecError` of `to_endpoint` (and of the registry's `add_spec` and updates) carries
//!   the others (`SpecError::others`): the console's form, the admin API (`errors` in the
//!   problem document), `deskhook.toml` (a line per setting, at its position) and
//!   `deskhook endpoints` report them all rather than the first.
//! - A retry due at once (the default schedule's first) is handed to a worker only once the
//!   attempt before it is in the attempt log and has been observed: its record can no
//!   longer come first, as `Observer` promises.
//! - Under `overflow = "drop-oldest"`, the oldest queued event of a full endpoint is found
//!   through a heap of its tickets' first events rather than a look at every ticket.
//! - A full spool whose attempt log gave way asks afresh whether the rest of the log could
//!   make room, rather than drop it on the strength of an answer up to 10 s old.
//! - The sink's own delivery threads (`[delivery] worker_nice` above 0, the default) run
//!   under `SCHED_BATCH` as well as at a lower nice value (Linux): woken by an answer, they
//!   no longer preempt the thread that emits. They keep their share of the processor.
//! - An endpoint whose breaker's cool-down is over reads as active (its breaker half-open)
//!   until its next attempt, rather than "breaker open" for as long as nothing is sent:
//!   the `deskhook_endpoints{state="breaker_open"}` gauge drops then too, before a probe
//!   succeeds.
//! - A full spool drops, logged whole and counted, the dead letters of events it never held
//!   (over `max_payload`) rather than write them past `max_size_mb`.
//! - `Error::SpoolLocked` says "in use by this process already" for a second `Spool` of one
//!   directory in the same process; its `holder` field carries the whole description.
//! - The blocking transport (`HttpSink`, `build()`) no longer delivers with ureq: it runs
//!   the async transport's HTTP/1.1 over blocking std sockets, on the same worker threads,
//!   and every behaviour it documented stays. What changed: over `https` a refusal that comes
//!   while a large body is still being written (a `413`) is now the answer, as over `http`,
//!   where it used to be heard only at the timeout; TLS offers only `http/1.1` by ALPN; a
//!   kept connection is used again after up to 30 s unused, as on the async transport
//!   (ureq's limit was 15 s); a name's lookup is shared by the attempts that need it; an
//!   attempt's errors read as the async transport's (`timed out (…)`, `timed out
//!   connecting (…)`, `connection failed: …`, `TLS handshake failed: …`, `cannot resolve
//!   '…': …`); and an endpoint's request head is made once, when it is registered. ureq
//!   stays a dependency of `http-blocking` for the guard's public ureq items.
//! - `deskhook.toml`'s tables are the settings structs themselves: `[delivery]` is
//!   `delivery::DeliveryConfig`, `[spool]` is `spool::SpoolConfig`, `[file_log]` is
//!   `file::FileLogConfig`. The three are `#[non_exhaustive]`: build them from `default()`
//!   and set fields, or use the builders' setters (one per field of `DeliveryConfig`).
//! - In `[delivery]`, `overflow = "block"` with `block_timeout` is now
//!   `overflow = { block = "250ms" }` (`"block"` alone waits 100 ms), and `breaker_failures`
//!   and `breaker_cool_down` are `breaker = { failures = 10, cool_down = "30s" }`. The old
//!   keys are refused with the new form in the message.
//! - `Endpoint::subscribed_actions` is gone (`subscribed_event_types().actions()` iterates
//!   the actions); `SpoolBuilder::max_size` is in bytes as before, `max_size_mb` in the file.
//! - `config::Config::endpoints_with` applies overrides to the file's endpoints before they
//!   are checked (what `--allow-private` does on the command line).
//! - Payload templates: `event|tojson` (and any part of `event`) prints the event's JSON as
//!   the body has it, compact, where minijinja's `tojson` escaped `<`, `>`, `&` and `'` as
//!   `\u003c` and the like: the same JSON value. `Template::render_emitted` renders from an
//!   `Emitted`, as the delivery engine does.
//! - Relays deliver with the async transport (as tasks on the relay's runtime)
//!   instead of the blocking one, and the `relay` feature brings `http-async` instead of
//!   `http-blocking`: enable `http-blocking` yourself if you use `HttpSink` beside a relay.
//!   A relay that loses a partition's lease now withdraws the events of that partition it
//!   has not attempted yet (see the `relay` module, "Order and duplicates").
//! - `max_queued_bytes` now also counts the bodies rendered with payload templates that
//!   wait for a retry or are kept for an event's other endpoints; a render that does not
//!   fit is made again at the next attempt. A sink whose templated endpoints are down
//!   reaches its budget sooner than before, and drops new events (counted and logged)
//!   where it used to grow without bound.
//! - The endpoints bucket: with a secrets key, an endpoint's URL (all but its origin) and
//!   its template variables are sealed too, in a record of layout 2, which relays of an
//!   earlier version refuse (upgrade them first); without a key, an endpoint with a chat
//!   preset is refused, since its webhook URL is a credential. Records written before read
//!   as they did.
//! - The endpoints bucket: records written with a key are now of layout 3, whose sealed part
//!   is bound to the settings in the open and to whether the endpoint is paused, so that
//!   whoever writes to the bucket without the key cannot move an endpoint to another tenant
//!   or widen what it receives. A layout-1 or layout-2 record could be anyone's: a reader
//!   with the key reads it with a warning naming it (since refused when it sets what
//!   reaches into the reader's machine, above); `deskhook endpoints reseal` writes them
//!   all in layout 3 (those by name since, above; after every relay is upgraded: earlier
//!   ones refuse layout 3), and then
//!   `relay --require-sealed` (`EndpointStore::require_sealed`) refuses any that comes back.
//!   Without a key, layout 1 reads as it did.
//! - `Endpoints::add_spec` adds an endpoint only if its name is free (`Error::EndpointExists`
//!   otherwise), as the admin API's create and the console's form now do; `update_spec`
//!   changes only the endpoint it read, and fails, changing nothing, when that one was
//!   removed or made again meanwhile (before, it added it back).
//! - `delivery::RedactedSpec` (pages, the admin API) shows the URL cut to its origin
//!   (`https://hooks.slack.com/…`), as `EndpointInfo::url` did; an update given that form
//!   keeps the endpoint's URL, and a URL ending in `/…` is refused as an endpoint's.
//!   A header value given as `…` keeps the endpoint's value the same way.
//! - `Endpoints::resume` also makes what waits for a retry due at once (in memory and in the
//!   spool). An endpoint moved to another tenant dead-letters, at their next attempt, the
//!   events of another tenant it had queued; such refusals (and templates that do not
//!   render, secrets all expired) no longer count against the endpoint's breaker.
//! - Refused now: `actions = []` (an endpoint that would receive nothing),
//!   `thread_idle_timeout = "0s"`, and the endpoint names `.` and `..` (which URLs take
//!   for the folder and its parent: the console and the admin API could not reach them).
//! - `DeliverySink::room` waits, as a task, while the spool's writer is behind (what
//!   `emit_async` does itself); `SpoolBuilder::keep_registry` leaves the endpoints a spool
//!   keeps alone (`deskhook drain` and `dead-letters replay --spool` set it). A spool's
//!   directory is created 0700 and its database 0600.
//! - The `Debug` of `EndpointSpec` and `config::Config` shows no credential (URLs cut to
//!   their origin, header values and secrets left out).
//! - NATS: the stream is created with discard policy `new` (a full stream refuses publishes,
//!   which are retried, instead of deleting undelivered events); one an earlier deskhook
//!   made is changed so, and another stream with a limit and discard `old`, a limit per
//!   subject or `no_ack` is refused naming the setting.
//! - `tracing`: the `attempt` field of `deskhook.attempt` spans counts from 1 (it was one
//!   too high).
//! - With a spool, a change through `Endpoints` (upsert, add, update, rotate, remove)
//!   returns once the spool has it on disk.
//! - The async transport opens more than one HTTP/2 connection to an origin when one
//!   carries 64 of its requests, and resolves an origin's name once at a time.
//! - The async transport sends an HTTP/2 request again, within its attempt, when the server
//!   refused its stream or sent `GOAWAY` before taking it, instead of failing the attempt.
//! - With a spool, a paused endpoint stays paused across restarts: the spool's table of
//!   endpoints gets a `paused` column when opened for writing (the format stays 3; an
//!   earlier deskhook opens it as before and leaves the column as it finds it, so that an
//!   endpoint it resumed starts paused again when this version opens the spool: resume it
//!   again after rolling forward).
//! - A delivered attempt lets its ticket's next event go once the attempt log and the
//!   observer have it (one given up already did), so that both see a ticket's attempts at an
//!   endpoint in their order; before, a fast next delivery on another worker could be
//!   observed first.
//! - The blocking transport sends a request again, within its attempt and on a new
//!   connection, when its connection ended before any answer (a kept connection the server
//!   closed as the request went out), instead of failing the attempt.
//! - Relays no longer dead-letter healthy events "the relay could not queue": the engine
//!   took a relayed event as one copy per endpoint, each charged its whole body against
//!   `max_queued_bytes`, while the relay's room counts the body once, so that with large
//!   bodies and several endpoints per event (or a batch message bigger than the whole
//!   budget) the engine refused what the relay had let in. A relayed event is now one event
//!   for all its endpoints, as an emitted one is (one body, one parse, one charge), taken
//!   whatever the budget says: the relay's room alone holds its memory to the budget. An
//!   event bigger than the whole budget (a server whose `max_payload` is larger) is
//!   delivered, going over it by that event, where it was dead-lettered.
//! - `DeadLetters::replay_matching` replays every letter a `DeadLetterQuery` matches
//!   (`replay_endpoint` is it with an endpoint alone). The console's "Replay all" replays
//!   what the page's whole filter matches (endpoint, tenant, event type) where it replayed
//!   all of the endpoint's letters, and the admin API's `/dead-letters/replay` takes
//!   `tenant`, `event_type`, `event_id` and `ticket` beside `endpoint`. It reads the
//!   letters a part at a time (about 8 MiB of bodies), where it read all of them at once;
//!   when a part after the first cannot be read, the letters left are in
//!   `Replayed::failed` with the error.
//! - `Spool::requeue_dead_letters` takes the endpoints (as they are now) and `max_payload`,
//!   and returns a `Requeued`: it leaves where they are the letters a running sink's replay
//!   refuses (of another tenant, of an event type the endpoint no longer takes, over
//!   `max_payload`), each listed with why; `deskhook dead-letters replay --spool` prints them.
//! - A relay no longer dead-letters the events of a batch message with more events than
//!   its room for events (one less than `queue_capacity`, which a relay raises to every
//!   partition's `max_pending` messages and one) that went past an endpoint's queue: the
//!   room lets such a message in whole, and now the queues take it whole too. A message
//!   bigger than the memory budget alone takes its places in the room as others do.
//! - `DeliverySink::route_now` routes an event as `send_now` does and says what each endpoint
//!   did with it (`Routed`: queued, or refused and dead-lettered or dropped), so that a
//!   caller answering for the event can tell one some endpoints took from one nothing kept.
//!   `deskhook serve` (without a spool) now answers 202 naming the endpoints that refused
//!   when others took the event, where it answered 503 and its client's retry gave those
//!   others a second copy under a new id (an endpoint disabled by a 410 made every event
//!   of its route a 503). It answers 413, before queueing anything, for an event over
//!   `max_payload` as deskhook sends it (every field written), where it dead-lettered it and
//!   answered 503; an empty `Deskhook-Tenant`, one given twice or not UTF-8 is a 400 (UTF-8
//!   values are read as such); the bearer scheme is read in any case; a 409 carries
//!   `Retry-After`. Its Idempotency-Keys tell a retried request by a SHA-256 of its body
//!   and `Deskhook-Format` (a 64-bit hash of the body before), and a key being accepted is
//!   no longer forgotten to make room (its retry would have been a second event).
//! - With a spool, a 410 whose move of the endpoint's backlog to the dead letters cannot be
//!   written no longer counts that backlog twice when the endpoint is resumed (the count of
//!   outstanding events went below zero: a panic in debug builds, flushes that waited their
//!   whole timeout in release builds); the rows wait on disk for the next start. Events
//!   emitted for an endpoint removed or disabled meanwhile, which go straight to the
//!   spool's dead letters, are logged (once per endpoint and commit).
//! - `Endpoints::update_spec_if_unchanged(&spec, &read)` changes an endpoint only if its
//!   settings are still those `read` (from `get`) shows, checked and changed at once: the
//!   admin API's `If-Match` uses it, so that of two PUTs made on one ETag one is saved and
//!   the other gets 412 (before, both could pass the check). A change that finds its
//!   endpoint changed, removed or made again meanwhile is the new `Error::EndpointChanged`
//!   (a 409 in the API), where it was an `Error::Config` (a 400); so is a secret rotation
//!   that meets a change. The console's edit form saves the same way. `EndpointInfo` keeps
//!   a weak reference to the settings it was read from (neither secrets nor connections
//!   stay alive through a snapshot).
//! - With a spool, the write-ahead log is cut back to 64 MiB after each checkpoint, where
//!   it kept the largest size it ever reached.
//! - A flush (and so a shutdown) stops waiting when all that is left is for endpoints that
//!   can make no attempt before its deadline: paused, or waiting past it for a retry, a
//!   breaker's cool-down, a `Retry-After` or a rate limit's token. Before,
//!   one such endpoint made every shutdown wait its whole timeout. `Error::Undelivered`
//!   gains `held` and `held_by` (those events and endpoints), and says so in its message.
//! - A relay with both a configuration and an endpoints bucket: a name the bucket has is
//!   the bucket's. The configured endpoint of that name is set aside (logged) and takes over
//!   again when the bucket's record is removed. Before, a SIGHUP put the file's endpoint
//!   back over the bucket's record, and one moved from the file to the bucket was removed.
//! - A relay renews its leases every quarter of the lease (a third before), counts a lease
//!   from when its renewal was sent (it was stamped when the answer came, so a relay could
//!   go on delivering a partition another relay had taken), and gives one up in time for
//!   the next renewal to come before the lease ends. A message written by a newer deskhook
//!   (a later batch layout, an event type it does not know) is left in the stream for a
//!   relay that reads it, where it was terminated.
//! - The endpoints bucket no longer reads `ca_file` and `template_file` where a record is
//!   written (`deskhook endpoints`): they are paths on the relays' machines.
//!   `EndpointStore::watch(after)` brings every change after revision `after` in order
//!   (it brought those after its start), so that a relay tells a revision only once every
//!   change up to it is applied; it used to tell the highest revision of its first list,
//!   which could pass a change still to come. It gives the endpoints it starts from as
//!   `Change`s: a record that
//!   cannot be read there is a `Change::Unreadable` naming it (it was an error without a
//!   name or revision in the stream), so a relay pauses a configured endpoint of that name
//!   rather than deliver with its old settings. `EndpointStore::reseal` returns the records
//!   it wrote; `unsealed` shows them before, and `reseal_checked` seals only the records
//!   named, each at the revision the operator saw.
//! - The async transport sends an HTTP/2 request the server refused on another connection,
//!   never back on the one that refused it; drops kept HTTP/1.1 connections unused for
//!   30 s wherever they are in its pool (only the most recent was looked at); and, over
//!   TLS, takes a kept connection that ended without `close_notify` as closed while idle
//!   (the request goes again on a new connection, as in the blocking transport).
//! - With a spool, the outcomes of a transaction that fails (a full disk) are written again
//!   until they are, where they were lost: a delivered event's row stayed on disk (sent
//!   again after a restart), and a later removal moved it to the dead letters and counted
//!   it a second time. Its new events are tried on their own before they are refused.
//!   Emits wait for the spool's writer when it is 64 MiB of bodies behind, as when it is
//!   8192 events behind (large bodies could fill memory before).
//! - A shutdown of the async transport closes the connections it kept (before, they stayed
//!   open, each with its connection task on the application's runtime, for as long as the
//!   sink was referenced: with a global dispatcher, the process's life). An origin's name
//!   is looked up by one task whose answer every attempt waiting for it shares.
//! - A relay given an endpoints bucket that does not exist fails to start, naming the
//!   buckets there are (it used to make the bucket, empty, and acknowledge every event as
//!   one no endpoint takes): a relay deployed before the first endpoint is added needs
//!   `Relay::create_endpoints_bucket` (`deskhook relay --create-endpoints-bucket`).
//! - A relay no longer deletes a consumer of the stream that is not its group's (another
//!   durable name, or one made by hand) to make its own: it fails to start while one takes
//!   a partition's messages, and one found later keeps its partition, logged, until it goes.
//! - `relay::parked` fails, naming the relays that have run, for a durable name no relay
//!   has run with (it gave an empty list). `EndpointStore::open_existing`'s error for a
//!   bucket that does not exist says so and points to the closest name.
//! - A relay parks a message whose events wait only for paused endpoints as soon as the
//!   others have them, not after `park_after`: a paused endpoint no longer slows its
//!   tickets at the other endpoints to one event per `park_after`.
//! - A relay pulls again as soon as its connection to NATS comes back: after a server's
//!   restart, which forgets the pulls under way, it used to wait for their missed
//!   heartbeats (about 10 s) before it delivered again.
//! - An attempt in flight across an upsert that changed only the endpoint's schedule,
//!   limits or timeouts is decided as without the change: a `Retry-After` holds, a `400`
//!   dead-letters. It used to go again at once, as after a change of the URL or secrets,
//!   which still makes its outcome moot.
//! - New: `EndpointStore::list_each` (every record, those that cannot be read apart),
//!   `not_opened_by_key` and `revision_of` (what `deskhook endpoints add --replace` writes
//!   with), `nats::StreamSettings::of_existing`.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The engine's modules are behind the internal feature `_http`; their docs.rs badge names the
// public features that bring it instead.

#[cfg(feature = "_http")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "http-blocking",
        feature = "http-async",
        feature = "spool",
        feature = "nats",
        feature = "openapi"
    )))
)]
pub mod config;
#[cfg(feature = "_http")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "http-blocking",
        feature = "http-async",
        feature = "spool",
        feature = "nats",
        feature = "openapi"
    )))
)]
pub mod delivery;
#[cfg(feature = "nats")]
pub mod endpoint_store;
mod error;
#[cfg(feature = "file")]
pub mod file;
#[cfg(feature = "_http")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "http-blocking",
        feature = "http-async",
        feature = "spool",
        feature = "nats",
        feature = "openapi"
    )))
)]
pub mod guard;
#[cfg(feature = "_h1")]
mod h1;
#[cfg(feature = "http-async")]
pub mod http_async;
#[cfg(feature = "http-blocking")]
pub mod http_blocking;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "relay")]
pub mod relay;
#[cfg(feature = "spool")]
pub mod spool;
#[cfg(feature = "_http")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "http-blocking",
        feature = "http-async",
        feature = "spool",
        feature = "nats",
        feature = "openapi"
    )))
)]
pub mod template;

pub use error::Error;

/// The workspace README's Rust snippets, compiled and run as doctests.
#[cfg(all(doctest, feature = "http-blocking"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// This crate's README (its crates.io page), compiled and run as doctests.
#[cfg(all(doctest, feature = "http-blocking"))]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;

/// The README of `deskhook` (core/README.md), compiled and run here: core's lib.rs does
/// not include it.
#[cfg(doctest)]
#[doc = include_str!("../../core/README.md")]
struct CoreReadmeDoctests;
