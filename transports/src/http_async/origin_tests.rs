//! The origin's pool, sweep, shared lookups and shared connects, against in-memory and
//! loopback peers.

use super::*;

/// An origin for `http://127.0.0.1:1/` (nothing is connected to it).
fn origin() -> Origin {
    let url = url::Url::parse("http://127.0.0.1:1/").unwrap();
    Origin::new(
        &url,
        None,
        AddressPolicy::default(),
        Duration::from_secs(1),
        4,
    )
    .unwrap()
}

/// An HTTP/2 connection over an in-memory pipe to an `h2` server that accepts it.
async fn h2_connection() -> H2 {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(mut conn) = h2::server::handshake(server).await {
            while conn.accept().await.is_some() {}
        }
    });
    let (send, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Body>(TokioIo::new(client))
        .await
        .unwrap();
    tokio::spawn(conn);
    H2 {
        send,
        streams: Arc::default(),
        used: Instant::now(),
    }
}

/// An HTTP/1.1 connection over loopback TCP, and its server end (`None`: closed, and
/// the connection has seen it).
async fn h1_connection(closed: bool) -> (H1<Io>, Option<tokio::net::TcpStream>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let mut conn = H1::new(Io::Tcp(client));
    if !closed {
        return (conn, Some(server));
    }
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.is_open() {
        assert!(
            Instant::now() < deadline,
            "the close never reached the client"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (conn, None)
}

#[tokio::test]
async fn a_sweep_closes_the_connections_unused_too_long() {
    use tokio::io::AsyncReadExt as _;
    let origin = origin();
    let h2 = h2_connection().await;
    lock(&origin.idle).h2.push(h2);
    let (conn, server) = h1_connection(false).await;
    let mut server = server.expect("open");
    origin.checkin(conn);
    origin.prune_idle(Instant::now());
    let kept = |origin: &Origin| {
        let idle = lock(&origin.idle);
        (idle.h1.len(), idle.h2.len())
    };
    assert_eq!(kept(&origin), (1, 1), "used just now: kept");
    origin.prune_idle(Instant::now() + IDLE_REUSE);
    assert_eq!(kept(&origin), (0, 0));
    let mut buf = [0; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), server.read(&mut buf));
    assert_eq!(read.await.unwrap().unwrap(), 0, "closed by the sweep");
}

#[tokio::test]
async fn idle_http1_connections_are_swept_and_used_beside_http2_ones() {
    let origin = origin();
    let h2 = h2_connection().await;
    let streams = h2.streams.clone();
    lock(&origin.idle).h2.push(h2);
    // A kept HTTP/1.1 connection whose server closed it.
    let (closed, _gone) = h1_connection(true).await;
    origin.checkin(closed);
    // Checkout takes the HTTP/2 connection, and the closed one goes (it stayed, holding
    // its socket, for as long as an HTTP/2 connection was kept).
    assert!(matches!(origin.checkout(None), Some(Conn::H2 { .. })));
    assert!(lock(&origin.idle).h1.is_empty());
    // With every HTTP/2 stream taken, an open HTTP/1.1 connection kept is used rather
    // than a new connection made.
    let (open, _server) = h1_connection(false).await;
    origin.checkin(open);
    streams.open.store(H2_STREAMS, Ordering::Release);
    assert!(matches!(origin.checkout(None), Some(Conn::H1(_))));
    assert!(origin.checkout(None).is_none());
}

#[tokio::test]
async fn an_http2_connection_is_forgotten_once_silent_for_the_connect_timeout() {
    let url = url::Url::parse("http://127.0.0.1:1/").unwrap();
    let connect_timeout = Duration::from_millis(200);
    let origin = Origin::new(&url, None, AddressPolicy::default(), connect_timeout, 4);
    let origin = origin.unwrap();
    let h2 = h2_connection().await;
    let streams = h2.streams.clone();
    lock(&origin.idle).h2.push(h2);
    let kept = |origin: &Origin| lock(&origin.idle).h2.len();
    // A request that waited less than the connect timeout: kept.
    let first = Stream::on(&streams);
    let first_sent = first.sent();
    assert!(!origin.forget_if_silent(&first_sent));
    assert_eq!(kept(&origin), 1);
    // Short waits in a row add up: the silence counts from the first unanswered.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let second = Stream::on(&streams);
    let second_sent = second.sent();
    tokio::time::sleep(Duration::from_millis(120)).await;
    // An answer to another request since: not silent.
    let answered = Stream::on(&streams);
    answered.answered();
    assert!(!origin.forget_if_silent(&second_sent));
    assert_eq!(kept(&origin), 1);
    // And the silence starts again from the next request unanswered.
    let third = Stream::on(&streams);
    let third_sent = third.sent();
    assert!(!origin.forget_if_silent(&third_sent));
    tokio::time::sleep(Duration::from_millis(120)).await;
    let fourth = Stream::on(&streams);
    let fourth_sent = fourth.sent();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(origin.forget_if_silent(&fourth_sent), "240 ms silent");
    assert_eq!(kept(&origin), 0);
}

#[test]
fn a_kept_connection_is_reused_within_idle_reuse_or_while_in_use() {
    let used = Instant::now();
    let secs = |s: u64| used + Duration::from_secs(s);
    // (in flight, now, reusable)
    let table = [
        (0, used, true),
        (0, secs(29), true),
        (0, secs(30), false),
        (0, secs(3600), false),
        (1, secs(30), true),
        (64, secs(3600), true),
    ];
    for (in_flight, now, expected) in table {
        assert_eq!(
            reusable(used, in_flight, now),
            expected,
            "{in_flight} in flight, {:?} after",
            now - used
        );
    }
    // A clock read before `used` (another thread's) is no time at all.
    assert!(reusable(secs(5), 0, used));
}

#[test]
fn a_lookup_looks_stuck_after_two_connect_timeouts_and_ten_seconds_at_least() {
    let stuck_after = crate::guard::lookup_stuck_after;
    assert_eq!(
        stuck_after(Duration::from_millis(1)),
        Duration::from_secs(10)
    );
    assert_eq!(
        stuck_after(Duration::from_secs(30)),
        Duration::from_secs(60)
    );
    assert_eq!(stuck_after(Duration::MAX), Duration::MAX);
}

#[test]
fn a_lookup_is_shared_while_under_way_not_stuck_and_when_it_found_addresses() {
    let stuck_after = Duration::from_secs(2);
    let now = Instant::now();
    let (tell, lookup) = tokio::sync::watch::channel(None);
    // Under way: shared, until it looks stuck.
    assert!(shared(&(now, lookup.clone()), stuck_after));
    let long_ago = now.checked_sub(Duration::from_secs(3)).unwrap();
    assert!(!shared(&(long_ago, lookup.clone()), stuck_after));
    // Found no address: asked again, not kept.
    tell.send(Some((Instant::now(), Ok(Vec::new())))).unwrap();
    assert!(!shared(&(now, lookup.clone()), stuck_after));
    let addrs = vec![SocketAddr::from(([127, 0, 0, 1], 1))];
    tell.send(Some((Instant::now(), Ok(addrs)))).unwrap();
    assert!(shared(&(now, lookup.clone()), stuck_after));
    tell.send(Some((Instant::now(), Err("no such name".into()))))
        .unwrap();
    assert!(!shared(&(now, lookup), stuck_after));
}

/// An origin for an `https` URL on loopback, with a connect timeout of 5 s.
fn https_origin(url: &url::Url) -> Arc<Origin> {
    let tls = crate::h1::tls::TlsConfigs::new(&[b"h2", b"http/1.1"]);
    let origin = Origin::new(
        url,
        Some(tls.get(&None).unwrap()),
        AddressPolicy::default().allow_private(true),
        Duration::from_secs(5),
        4,
    );
    Arc::new(origin.unwrap())
}

#[tokio::test]
async fn requests_that_wait_for_an_https_connect_share_its_failure() {
    // A server that takes each connection and closes it at once: every TLS handshake
    // fails. Three requests at once to an origin not connected yet: one connects, and
    // the two that waited for it get its error rather than each try.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("https://{}/", listener.local_addr().unwrap()));
    let taken = Arc::new(AtomicUsize::new(0));
    let counted = taken.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::AcqRel);
            drop(tcp);
        }
    });
    let origin = https_origin(&url.unwrap());
    let (a, b, c) = tokio::join!(
        origin.connect(None),
        origin.connect(None),
        origin.connect(None)
    );
    for failed in [a, b, c] {
        let failed = failed.err().expect("no TLS server there");
        assert!(
            failed.message.starts_with("TLS handshake failed"),
            "{failed:?}"
        );
        assert!(failed.retryable);
    }
    assert_eq!(
        taken.load(Ordering::Acquire),
        1,
        "one connect for the three"
    );
    // A request that comes later tries again.
    assert!(origin.connect(None).await.is_err());
    assert_eq!(taken.load(Ordering::Acquire), 2);
}

#[tokio::test]
async fn a_shared_connect_goes_on_when_the_request_that_began_it_gives_up() {
    // A server that takes each connection and answers nothing until told, then closes
    // it. The request that began the connect gives up while it is under way; one that
    // comes after joins the same connect rather than make another.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("https://{}/", listener.local_addr().unwrap()));
    let taken = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let counted = taken.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::AcqRel);
            let mut released = released.clone();
            tokio::spawn(async move {
                let _ = released.wait_for(|r| *r).await;
                drop(tcp);
            });
        }
    });
    let origin = https_origin(&url.unwrap());
    let first = tokio::spawn({
        let origin = origin.clone();
        async move { origin.connect(None).await.map(|_| ()) }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while taken.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < deadline, "the connect never came");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let second = tokio::spawn({
        let origin = origin.clone();
        async move { origin.connect(None).await.map(|_| ()) }
    });
    // The second request is waiting for the connect (it has no outcome while the
    // server holds the connection), then the server lets go.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release.send(true).unwrap();
    let failed = second.await.unwrap().expect_err("the server closed it");
    assert!(
        failed.message.starts_with("TLS handshake failed"),
        "{failed:?}"
    );
    assert_eq!(taken.load(Ordering::Acquire), 1, "one connect for both");
}
