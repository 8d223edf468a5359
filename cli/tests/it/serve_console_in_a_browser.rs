//! An admin, in a real browser (headless Chromium over WebDriver), finds a failed event in
//! `deskhook serve`'s console, replays it and pauses its endpoint; what tenants and
//! receivers wrote is shown as text.

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::WAIT;
use crate::support::serve::{Serve, Switchable, TOKEN, write_config, zenlix_event};

/// chromedriver on a free port in a process group of its own, which is killed on drop: the
/// Chromium it started too, also when the test fails before it closes the browser (killed
/// alone, chromedriver would leave Chromium running).
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (Debian: apt-get install chromium chromium-driver; .ci/run \
                 installs them)",
            );
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's.
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits until the browser shows `path` (with `query` in its query string, when given):
/// a click that submits a form returns before the next page is there.
async fn arrive(
    client: &fantoccini::Client,
    path: &str,
    query: Option<&str>,
) -> Result<(), fantoccini::error::CmdError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = client.current_url().await?;
        let query_ok = query.is_none_or(|q| url.query().is_some_and(|have| have.contains(q)));
        if url.path() == path && query_ok {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not reach {path}: {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the first element matching `css`, once the page has one (found again if
/// the page was replaced between finding and reading it).
async fn text_of(
    client: &fantoccini::Client,
    css: &str,
) -> Result<String, fantoccini::error::CmdError> {
    use fantoccini::error::{CmdError, ErrorStatus};
    let mut tries = 0;
    loop {
        let element = client
            .wait()
            .for_element(fantoccini::Locator::Css(css))
            .await?;
        match element.text().await {
            Err(CmdError::Standard(e))
                if e.error == ErrorStatus::StaleElementReference && tries < 50 =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Writes a screenshot of the page to `$DESKHOOK_SCREENSHOTS/<name>.png` when that variable
/// is set (how the README's pictures are made).
async fn screenshot(client: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("DESKHOOK_SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_admin_finds_a_failure_replays_it_and_pauses_the_endpoint_in_a_browser() {
    use fantoccini::Locator;

    let target = Switchable::start(500);
    let dir = tempfile::tempdir().unwrap();
    let hostile = "<img src=x onerror=alert(1)>";
    // Its own dead letters: not the default file in the working directory, which would
    // outlive the test and count in the next run.
    let mut endpoints = format!(
        "[delivery]\ndead_letter_path = {:?}\n\n\
         [[endpoint]]\nname = \"crm\"\nurl = \"{}\"\nallow_private = true\nretry = \"0s\"\n\
         secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n\n\
         [[endpoint]]\nname = \"{hostile}\"\nurl = \"{}/x\"\nallow_private = true\nactions = [\"comment\"]\n",
        dir.path().join("dead.jsonl"),
        target.receiver.url,
        target.receiver.url
    );
    for i in 0..12 {
        endpoints.push_str(&format!(
            "\n[[endpoint]]\nname = \"tenant-{i:02}-chat\"\nurl = \"{}/t{i}\"\nallow_private = true\n\
             tenant = \"tenant-{i:02}\"\n",
            target.receiver.url
        ));
    }
    let config = write_config(dir.path(), &endpoints);
    // The admin adds an endpoint on the loopback receiver.
    let serve = Serve::start_with(&config, None, &["--console-allow-private"]);
    let (status, _) = serve.post_event(&zenlix_event("HD-1042"), &[]);
    assert_eq!(status, 202);
    // crm answers 500 and has no retry: a dead letter.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, letters) = serve.call("GET", "/api/v1/dead-letters?endpoint=crm", &[], "");
        if letters["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter: {letters}");
        std::thread::sleep(Duration::from_millis(10));
    }

    let chat_url = format!("{}/chat", target.receiver.url);
    let driver = Chromedriver::start();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,860",
                     format!("--user-data-dir={}", dir.path().join("chromium").display())],
        }),
    );
    let client =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("chromedriver starts a headless Chromium");
    let base = format!("http://{}", serve.addr);
    let result = async {
        // Not logged in: the login form.
        client.goto(&format!("{base}/")).await?;
        assert!(client.current_url().await?.path().starts_with("/login"));
        client
            .find(Locator::Css("input[name=token]"))
            .await?
            .send_keys(TOKEN)
            .await?;
        client
            .find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/", None).await?;

        // The endpoints, the hostile name as text and no image made of it.
        let table = text_of(&client, "table.endpoints").await?;
        assert!(table.contains(hostile), "{table}");
        let links = client.find_all(Locator::LinkText(hostile)).await?;
        assert_eq!(links.len(), 1, "the hostile name is one link's text");
        let images = client
            .execute("return document.images.length", vec![])
            .await?;
        assert_eq!(images, json!(0), "the endpoint name made no <img>");
        screenshot(&client, "console-endpoints").await;

        // The failing endpoint: its 500 in the attempts.
        client.find(Locator::LinkText("crm")).await?.click().await?;
        arrive(&client, "/endpoints/crm", None).await?;
        let attempts = text_of(&client, "table.attempts").await?;
        assert!(
            attempts.contains("HD-1042") && attempts.contains("500"),
            "{attempts}"
        );
        screenshot(&client, "console-endpoint").await;

        // The dead letter, replayed once the receiver is back.
        target.up.store(true, Ordering::SeqCst);
        client
            .goto(&format!("{base}/dead-letters?endpoint=crm"))
            .await?;
        let row = text_of(&client, "table.letters tbody tr").await?;
        assert!(row.contains("HD-1042"), "{row}");
        client
            .find(Locator::Css("button[name=key_one]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/dead-letters", Some("done=replayed")).await?;
        assert_eq!(text_of(&client, "p.flash").await?, "1 replayed.");
        target.wait_delivered(1);

        // Pause it from its page.
        client.goto(&format!("{base}/endpoints/crm")).await?;
        client
            .find(Locator::Css("button[value=pause]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/endpoints/crm", Some("done=paused")).await?;
        assert_eq!(text_of(&client, "h1 .badge").await?, "paused");

        // A team chat: a new endpoint that posts to Slack, picked from the presets. Typed
        // first with two settings wrong, both told at once.
        client.goto(&format!("{base}/new-endpoint")).await?;
        for (name, value) in [
            ("name", "team-chat"),
            ("url", chat_url.as_str()),
            ("retry", "5s,1m"),
            ("timeout", "fast"),
        ] {
            client
                .find(Locator::Css(&format!("input[name={name}]")))
                .await?
                .send_keys(value)
                .await?;
        }
        client
            .find(Locator::Css("input[name=allow_private]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Css(
                "select[name=template_preset] option[value=slack]",
            ))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Css("form.endpoint button[type=submit]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/endpoints", None).await?;
        assert_eq!(
            text_of(&client, "div.error p").await?,
            "2 settings need fixing:"
        );
        let mut marked = Vec::new();
        for field in client
            .find_all(Locator::Css("div.field.invalid input"))
            .await?
        {
            marked.push(field.attr("name").await?.unwrap_or_default());
        }
        marked.sort();
        assert_eq!(marked, ["retry", "timeout"]);
        // What was typed and chosen is kept: the two fields are mended, and it is saved.
        for (name, value) in [("retry", "0s"), ("timeout", "15s")] {
            let input = client
                .find(Locator::Css(&format!("input[name={name}]")))
                .await?;
            input.clear().await?;
            input.send_keys(value).await?;
        }
        screenshot(&client, "console-endpoint-preset").await;
        client
            .find(Locator::Css("form.endpoint button[type=submit]"))
            .await?
            .click()
            .await?;
        arrive(&client, "/endpoints/team-chat", Some("done=created")).await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    client.close().await.expect("the browser closes");
    drop(driver);
    result.expect("the console works in the browser");
    let (_, crm) = serve.call("GET", "/api/v1/endpoints/crm", &[], "");
    assert_eq!(crm["state"], "paused");
    // The next event reaches the chat as a Slack message.
    let (status, _) = serve.post_event(&zenlix_event("HD-1043"), &[]);
    assert_eq!(status, 202);
    let deadline = Instant::now() + WAIT;
    let message = loop {
        let requests = target.receiver.requests();
        if let Some(request) = requests.iter().find(|r| r.path.ends_with("/chat")) {
            break request.json();
        }
        if Instant::now() > deadline {
            let (_, chat) = serve.call("GET", "/api/v1/endpoints/team-chat", &[], "");
            panic!("nothing reached the chat: {requests:?} {chat}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(message["blocks"][0]["type"], "section", "{message}");
}
