//! [`NatsSinkBuilder`]: the stream, the connection, and the delivery settings a
//! [`NatsSink`] shares with the HTTP transports.

use super::*;

/// The most events [`NatsSinkBuilder::batch`] takes in one message.
pub const MAX_BATCH: usize = 10_000;

/// Builds a [`NatsSink`]: the stream, the connection, and the delivery settings shared with
/// the HTTP transports (queue, overflow, retries, dead letters, spool, observer).
pub struct NatsSinkBuilder {
    urls: String,
    options: async_nats::ConnectOptions,
    stream: StreamSettings,
    delivery: SinkBuilder,
    name: String,
    actions: EventTypeSet,
    retry: RetrySchedule,
    /// `None`: the default for the batch setting.
    max_in_flight: Option<usize>,
    timeout: Duration,
    connect_timeout: Duration,
    secrets: Vec<(Secret, Option<SystemTime>)>,
    require_server: bool,
    batch: usize,
}

impl std::fmt::Debug for NatsSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = parse_urls(&self.urls).map_or_else(|_| "(invalid)".to_owned(), |(_, s)| s);
        f.debug_struct("NatsSinkBuilder")
            .field("urls", &shown)
            .field("stream", &self.stream)
            .field("delivery", &self.delivery)
            .field("name", &self.name)
            .field("actions", &self.actions)
            .field("retry", &self.retry.to_string())
            .field("max_in_flight", &self.in_flight())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("secrets", &self.secrets.len())
            .field("require_server", &self.require_server)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl NatsSinkBuilder {
    pub(super) fn new(urls: String) -> NatsSinkBuilder {
        NatsSinkBuilder {
            urls,
            options: async_nats::ConnectOptions::new().name("deskhook"),
            stream: StreamSettings::new(),
            delivery: SinkBuilder::new(),
            name: DEFAULT_ENDPOINT_NAME.to_owned(),
            actions: EventTypeSet::all(),
            retry: RetrySchedule::standard(),
            max_in_flight: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            secrets: Vec::new(),
            require_server: false,
            batch: 1,
        }
    }

    /// Up to `max_events` events in one stream message, 1 to [`MAX_BATCH`] (default 1: each
    /// event a message of its own). A batch forms only while a publish of the same partition
    /// waits for its acknowledgement: a lone event goes at once, as a message of its own, so
    /// batching adds no wait. Under load, JetStream stores, hands out and acknowledges one
    /// message for many events, which is most of what the NATS path costs (1.7–1.9 × the
    /// events end to end, a third of the server's work per event: `benches/README.md`). A
    /// batch is also at most 1 MiB, and 4 KiB under the server's `max_payload` and the
    /// stream's `max_msg_size` as the sink last found them (a batch a limit lowered since
    /// refuses has the sink read them again and goes again in batches under them, or event
    /// by event).
    ///
    /// Relays of this version or later read batches ([`batch`](super::batch) has the
    /// layout); an older relay terminates them as unknown messages, so update every relay
    /// before turning it on. What it changes for delivery is in the
    /// [relay docs](crate::relay#batches).
    #[must_use]
    pub fn batch(mut self, max_events: usize) -> Self {
        self.batch = max_events;
        self
    }

    /// The stream to publish to. Defaults to [`StreamSettings::new`].
    #[must_use]
    pub fn stream(mut self, settings: StreamSettings) -> Self {
        self.stream = settings;
        self
    }

    /// Connection options of async-nats: credentials (`user_and_password`, `token`,
    /// `credentials_file`, `nkey`), TLS, client name, reconnect behaviour. The sink adds
    /// `retry_on_initial_connect` and the [`connect_timeout`](NatsSinkBuilder::connect_timeout),
    /// and the credentials of the URLs if they have any (see the module's *Connecting*).
    /// Defaults to async-nats' defaults with the client name `deskhook`.
    #[must_use]
    pub fn connect_options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// The name of the sink's endpoint in stats, logs, dead letters and observer records.
    /// Defaults to [`DEFAULT_ENDPOINT_NAME`].
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The event types published (Zenlix actions, or names such as
    /// `usedesk.comment_created`). Defaults to all.
    #[must_use]
    pub fn actions(mut self, actions: impl Into<EventTypeSet>) -> Self {
        self.actions = actions.into();
        self
    }

    /// The retry schedule of a publish that failed (not connected, no acknowledgement).
    /// Defaults to [`RetrySchedule::standard`].
    #[must_use]
    pub fn retry(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// Events being published at once, each awaiting its acknowledgement (events of one
    /// ticket go one at a time, in order; with [`batch`](NatsSinkBuilder::batch), those
    /// that wait for a partition's publish count too). Defaults to [`DEFAULT_CONCURRENCY`],
    /// or [`DEFAULT_BATCH_CONCURRENCY`] with batches: they form from the events in flight,
    /// spread over the partitions.
    #[must_use]
    pub fn max_in_flight(mut self, publishes: usize) -> Self {
        self.max_in_flight = Some(publishes);
        self
    }

    /// The events in flight at once, given or by default.
    fn in_flight(&self) -> usize {
        self.max_in_flight.unwrap_or(if self.batch > 1 {
            DEFAULT_BATCH_CONCURRENCY
        } else {
            DEFAULT_CONCURRENCY
        })
    }

    /// How long a publish may wait, twice over: for the connection (and the stream's check,
    /// the first time), then for its acknowledgement; past either it counts as failed (and
    /// is retried), so an attempt lasts at most about twice this. Defaults to 5 s; from
    /// 1 ms to an hour.
    ///
    /// With [`batch`](NatsSinkBuilder::batch), an event's attempt can last several times
    /// this: it waits up to twice this for its turn behind its partition's batches, and a
    /// batch that got no answer is sent again as it was (see the [module
    /// docs](super#what-a-message-carries)) before its events count as failed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the build waits for the server to create or check the stream; also the
    /// connection timeout of the client. Defaults to 5 s; from 1 ms to an hour.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Fails the build when the server does not answer within the connect timeout. Defaults
    /// to `false`: the sink starts, events wait in the queue (or the spool) and the stream is
    /// checked before the first publish.
    #[must_use]
    pub fn require_server(mut self, on: bool) -> Self {
        self.require_server = on;
        self
    }

    /// Adds a signing secret: messages then carry `webhook-signature` as HTTP requests do
    /// (a relay may pass it on or sign again). Defaults to none.
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push((secret, None));
        self
    }

    /// Adds a signing secret that signs until `expires` (the old secret of a rotation).
    #[must_use]
    pub fn secret_until(mut self, secret: Secret, expires: SystemTime) -> Self {
        self.secrets.push((secret, Some(expires)));
        self
    }

    /// Replaces all delivery settings at once.
    #[must_use]
    pub fn config(mut self, config: DeliveryConfig) -> Self {
        self.delivery = self.delivery.config(config);
        self
    }

    /// Sets [`DeliveryConfig::dead_letter_path`].
    #[must_use]
    pub fn dead_letter_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config_mut().dead_letter_path = path.into();
        self
    }

    // The delivery settings that apply to publishing (the queue while NATS is unreachable,
    // the breaker, the largest body: NATS servers take 1 MB by default).
    crate::delivery::builder::delivery_setters! {
        queue_capacity: usize,
        overflow: OverflowPolicy,
        breaker: BreakerPolicy,
        shutdown_timeout: Duration,
        max_payload: usize,
        worker_nice: u8,
    }

    fn config_mut(&mut self) -> &mut DeliveryConfig {
        &mut self.delivery.config
    }

    /// Receives one record per publish attempt; a delivered one has status 200 and the
    /// acknowledgement (`{"stream":…,"seq":…,"duplicate":…}`) as its response. Defaults to
    /// none.
    #[must_use]
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.delivery = self.delivery.observer(observer);
        self
    }

    /// Puts the sink behind a durable spool, as for HTTP (see `SinkBuilder::spool`): events
    /// are on disk before `emit` returns and wait there while NATS is unreachable. Defaults
    /// to none.
    #[cfg(feature = "spool")]
    #[must_use]
    pub fn spool(mut self, spool: crate::spool::Spool) -> Self {
        self.delivery = self.delivery.spool(spool);
        self
    }

    /// Checks the settings, connects, creates or checks the stream and starts the publishing
    /// tasks on a tokio runtime of the sink's own (two threads), which the guard shuts down.
    /// Callable anywhere, also inside a runtime; in async code
    /// [`build_async`](NatsSinkBuilder::build_async) puts the tasks on the caller's runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::Config`] or [`Error::InvalidEndpoint`] for bad
    /// settings; [`Error::StreamConflict`] when the stream exists with settings deskhook
    /// cannot use; [`Error::Nats`] when JetStream refuses to create the stream or is not
    /// enabled, or (with [`require_server`](NatsSinkBuilder::require_server)) when no server
    /// answers; [`Error::Open`] for a dead-letter file that cannot be opened.
    pub fn build(self) -> Result<(NatsSink, DeliveryGuard), Error> {
        let priority =
            crate::delivery::priority::Priority::below_caller(self.delivery.config.worker_nice);
        let runtime = spawn::own_runtime("deskhook-nats", 2, priority)?;
        let handle = runtime.handle().clone();
        let started = if tokio::runtime::Handle::try_current().is_ok() {
            // `block_on` is not allowed on a runtime's thread: wait on a thread of our own.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| handle.block_on(self.start(&handle)))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::Config(
                            "the NATS sink's start-up thread panicked".to_owned(),
                        ))
                    })
            })
        } else {
            handle.block_on(self.start(&handle))
        };
        let (sink, guard) = started?;
        Ok((sink, guard.owning(runtime)))
    }

    /// [`build`](NatsSinkBuilder::build) inside a tokio runtime: the connection and the
    /// publishing tasks live on the current runtime. End with
    /// `guard.shutdown_async(timeout).await`.
    ///
    /// # Errors
    ///
    /// As [`build`](NatsSinkBuilder::build); [`Error::Config`] when called outside a runtime.
    pub async fn build_async(self) -> Result<(NatsSink, DeliveryGuard), Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "NatsSinkBuilder::build_async needs a tokio runtime; outside one, use build()"
                    .to_owned(),
            )
        })?;
        self.start(&handle).await
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Error::InvalidEndpoint {
            name: self.name.clone(),
            message,
        };
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "the name is empty or holds a control character".into(),
            ));
        }
        if self.in_flight() == 0 {
            return Err(invalid("max_in_flight is 0; give at least 1".into()));
        }
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(invalid(format!(
                "batch is {}; give from 1 (one event per message) to {MAX_BATCH}",
                self.batch
            )));
        }
        let (shortest, longest) = (crate::delivery::MIN_TIMEOUT, crate::delivery::MAX_TIMEOUT);
        for (name, timeout) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if timeout < shortest {
                return Err(invalid(format!(
                    "{name} {} is shorter than a publish can take; give at least {} (e.g. 5s)",
                    deskhook::policy::format_duration(timeout),
                    deskhook::policy::format_duration(shortest)
                )));
            }
            if timeout > longest {
                return Err(invalid(format!(
                    "{name} {} would hold a publish (or the build) that long; give at most {} \
                     (e.g. 5s)",
                    deskhook::policy::format_duration(timeout),
                    deskhook::policy::format_duration(longest)
                )));
            }
        }
        if let Some(first) = self.retry.delay_before(1).filter(|d| !d.is_zero()) {
            return Err(invalid(format!(
                "the retry schedule starts with {}, but the first attempt is always made at \
                 once; start it with 0s (\"0s,{}\")",
                deskhook::policy::format_duration(first),
                self.retry
            )));
        }
        self.stream.validate()
    }

    async fn start(
        self,
        handle: &tokio::runtime::Handle,
    ) -> Result<(NatsSink, DeliveryGuard), Error> {
        self.validate()?;
        let (addrs, shown) = parse_urls(&self.urls)?;
        let mut options = with_url_credentials(self.options.clone(), &addrs)
            .connection_timeout(self.connect_timeout);
        // Without a server required, the client connects in the background, and the build
        // returns at once. With one required, the first connect is tried here, so that its
        // error (a refused login, a TLS mismatch) is the build's, not a silent retry's.
        if !self.require_server {
            options = options.retry_on_initial_connect();
        }
        let client = options.connect(addrs).await.map_err(|e| Error::Nats {
            url: shown.clone(),
            message: connect_failure(&e),
        })?;
        let context = jetstream::context::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client.clone());
        let ensure = self.stream.ensure_inner(&context, &shown);
        let mut max_msg_size = -1;
        let ready = match tokio::time::timeout(self.connect_timeout, ensure).await {
            Ok(Ok(info)) => {
                max_msg_size = info.config.max_message_size;
                true
            }
            Ok(Err(Trouble::Fatal(error) | Trouble::Taken(error))) => return Err(error),
            Ok(Err(Trouble::Unavailable)) => {
                return Err(Error::Nats {
                    url: shown,
                    message: UNAVAILABLE.to_owned(),
                });
            }
            Ok(Err(Trouble::Transient(message))) if self.require_server => {
                return Err(Error::Nats {
                    url: shown,
                    message,
                });
            }
            Err(_) if self.require_server => {
                return Err(Error::Nats {
                    url: shown,
                    message: format!(
                        "no answer within {} (is the server running and reachable?)",
                        deskhook::policy::format_duration(self.connect_timeout)
                    ),
                });
            }
            Ok(Err(Trouble::Transient(why))) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "NATS at {shown}: {why}; events wait in the queue and the stream is \
                     checked before the first publish"
                );
                false
            }
            Err(_) => {
                log::warn!(
                    target: deskhook::LOG_TARGET,
                    "NATS at {shown} did not answer within {}; events wait in the queue \
                     and stream '{}' is checked before the first publish",
                    deskhook::policy::format_duration(self.connect_timeout),
                    self.stream.stream_name()
                );
                false
            }
        };
        let url = first_url(&shown)?;
        let in_flight = self.in_flight();
        let mut endpoint = Endpoint::new(self.name.clone(), url.as_str())?
            .actions(self.actions)
            .retry(self.retry.clone())
            .max_in_flight(in_flight)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        for (secret, expires) in &self.secrets {
            endpoint = match expires {
                Some(at) => endpoint.secret_until(secret.clone(), *at),
                None => endpoint.secret(secret.clone()),
            };
        }
        let mut delivery = self.delivery.endpoint(endpoint);
        // Publishes in flight are limited by the endpoint alone.
        delivery.config.max_in_flight = delivery.config.max_in_flight.max(in_flight);
        // A body the server or the stream would refuse is refused at emit, where the caller
        // hears of it, rather than published to be refused: under their limits, with room
        // for the headers (known once the server answered).
        let largest =
            batch::batch_bytes(usize::MAX, client.server_info().max_payload, max_msg_size);
        // A limit under the headers' room (0 then) is left to the publishes, which small
        // events may still pass.
        if largest > 0 && delivery.config.max_payload > largest {
            log::info!(
                target: deskhook::LOG_TARGET,
                "NATS at {shown}: max_payload {} lowered to {largest} bytes, under what the \
                 server (max_payload {}) and stream '{}' (max_msg_size {max_msg_size}) take, \
                 less 4 KiB for headers",
                delivery.config.max_payload,
                client.server_info().max_payload,
                self.stream.stream_name()
            );
            delivery.config.max_payload = largest;
        }
        let (engine, shutdown_timeout) =
            delivery.start_engine(Box::new(NatsConnector { url, in_flight }))?;
        let settings = Arc::new(self.stream);
        let transport = Arc::new(JetStreamTransport {
            settings: StreamSettings::clone(&settings),
            url: shown,
            timeout: self.timeout,
            ready: AtomicBool::new(ready),
            checking: tokio::sync::Mutex::new(()),
            reconnected: Arc::default(),
            batcher: (self.batch > 1).then(|| {
                Arc::new(batch::Batcher::new(
                    context.clone(),
                    &settings,
                    self.timeout,
                    self.batch,
                    (client.server_info().max_payload, max_msg_size),
                ))
            }),
            client,
            context,
        });
        spawn::start(&engine, transport, handle);
        let guard = DeliveryGuard::new(engine.clone(), shutdown_timeout);
        Ok((
            NatsSink {
                delivery: DeliverySink::new(engine),
                settings,
            },
            guard,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> NatsSinkBuilder {
        NatsSinkBuilder::new("nats://127.0.0.1:4222".to_owned())
    }

    #[test]
    fn a_batch_size_out_of_range_is_refused_with_the_range() {
        for size in [0, MAX_BATCH + 1] {
            let err = builder().batch(size).validate().unwrap_err().to_string();
            assert!(
                err.contains(&format!("batch is {size}; give from 1")),
                "{err}"
            );
        }
        assert!(builder().batch(MAX_BATCH).validate().is_ok());
    }

    #[test]
    fn a_timeout_under_a_millisecond_or_past_an_hour_is_refused() {
        for (publish, connect) in [
            (Duration::ZERO, Duration::from_secs(5)),
            (Duration::from_nanos(1), Duration::from_secs(5)),
            (Duration::from_secs(5), Duration::from_micros(999)),
            (Duration::MAX, Duration::from_secs(5)),
            (Duration::from_secs(5), Duration::from_secs(3601)),
        ] {
            let err = builder()
                .timeout(publish)
                .connect_timeout(connect)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("give e.g. 5s") || err.contains("(e.g. 5s)"),
                "{err}"
            );
        }
        for bound in [crate::delivery::MIN_TIMEOUT, crate::delivery::MAX_TIMEOUT] {
            assert!(
                builder()
                    .timeout(bound)
                    .connect_timeout(bound)
                    .validate()
                    .is_ok()
            );
        }
    }

    #[test]
    fn batches_take_more_events_in_flight_unless_told() {
        assert_eq!(builder().in_flight(), DEFAULT_CONCURRENCY);
        assert_eq!(builder().batch(64).in_flight(), DEFAULT_BATCH_CONCURRENCY);
        assert_eq!(builder().batch(64).max_in_flight(32).in_flight(), 32);
    }
}
