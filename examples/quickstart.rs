//! cargo run --example quickstart
//!
//! A helpdesk with its own ticket type maps it to deskhook's and sets the global dispatcher
//! with three sinks, configured from a `deskhook.toml` text: signed HTTP delivery to a
//! receiver that this example starts on 127.0.0.1 (loopback is allowed explicitly: endpoints
//! reach only global addresses by default), a JSON Lines file log, and an in-process sink of
//! its own. It emits all twelve actions as the ticket goes through its life; the receiver
//! verifies each signature. Then it prints what each side saw. Offline; exits by itself.

use std::error::Error;
use std::sync::{Arc, Mutex};

use deskhook::event::{Comment, DateTime, Priority, Status};
use deskhook::sink::{Emitted, EventSink};
use deskhook::{Action, Dispatcher, Secret};
use deskhook_transports::config::Config;

// ---------------------------------------------------------------------------------------------
// The helpdesk's own model, as it might come out of its database.

#[derive(Clone)]
struct Agent {
    login: String,
    name: String,
    locale: String,
}

struct HelpdeskTicket {
    code: String,
    title: String,
    body: String,
    urgent: bool,
    state: &'static str,
    department: String,
    opened_at: DateTime,
    opened_by: Agent,
    assignee: Option<Agent>,
    notes: Vec<(String, String)>, // (author login, text)
}

// ---------------------------------------------------------------------------------------------
// The mapping to deskhook's model: the only code a helpdesk writes besides the emit calls.

fn user(agent: &Agent) -> deskhook::User {
    deskhook::User::new(&agent.login, &agent.name).with_lang(&agent.locale)
}

fn to_deskhook(t: &HelpdeskTicket) -> deskhook::Ticket {
    let author = user(&t.opened_by);
    deskhook::Ticket {
        prio: if t.urgent {
            Priority::High
        } else {
            Priority::Normal
        },
        status: match t.state {
            "new" => Status::Free,
            "in progress" => Status::Lock,
            "in review" => Status::WaitSuccess,
            "done" => Status::Success,
            other => Status::Other(other.to_owned()),
        },
        text: t.body.clone(),
        created_at: t.opened_at,
        target_group: t.department.clone(),
        target_user: t.assignee.iter().map(user).collect(),
        comments: t
            .notes
            .iter()
            .map(|(login, text)| Comment::new(deskhook::User::new(login, login), text))
            .collect(),
        client: vec![author.clone()],
        author,
        ..deskhook::Ticket::new(&t.code, &t.title)
    }
}

// ---------------------------------------------------------------------------------------------
// A sink of the helpdesk's own: it keeps what it receives.

#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String, usize)>>);

impl EventSink for Inbox {
    fn send(&self, event: &Emitted<'_>) -> Result<(), deskhook::Error> {
        // The quickstart emits Zenlix events only; other formats would have no description.
        let Some(typed) = event.event() else {
            return Ok(());
        };
        let row = (
            event.action().to_string(),
            format!("{} / {}", typed.description(), typed.ticket().status),
            event.body().len(),
        );
        self.0
            .lock()
            .map_err(|_| deskhook::Error::sink("inbox lock poisoned"))?
            .push(row);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The receiving side: what an integrator runs. It verifies each request and records it.

struct Receiver {
    url: String,
    server: Arc<tiny_http::Server>,
    thread: std::thread::JoinHandle<Vec<Row>>,
}

/// (action, ticket, sequence, verified)
type Row = (String, String, String, Result<(), String>);

fn start_receiver(secret: Secret) -> Result<Receiver, Box<dyn Error>> {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
    let port = server.server_addr().to_ip().ok_or("no IP address")?.port();
    let incoming = server.clone();
    let thread = std::thread::spawn(move || {
        let mut rows = Vec::new();
        for mut request in incoming.incoming_requests() {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.to_string()))
                .collect();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map_or(String::new(), |(_, v)| v.clone())
            };
            let verified = deskhook::signature::verify(
                &headers,
                &body,
                std::slice::from_ref(&secret),
                deskhook::signature::DEFAULT_TOLERANCE,
            )
            .map(|_| ())
            .map_err(|e| e.to_string());
            let status = if verified.is_ok() { 204 } else { 401 };
            let ticket = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["ticket"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            rows.push((
                header("x-deskhook-action"),
                ticket,
                header("x-deskhook-sequence"),
                verified,
            ));
            let _ = request.respond(tiny_http::Response::empty(status));
        }
        rows
    });
    Ok(Receiver {
        url: format!("http://127.0.0.1:{port}/hooks/helpdesk"),
        server,
        thread,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let secret = Secret::generate()?;
    let receiver = start_receiver(secret.clone())?;

    // What would be the application's deskhook.toml.
    let toml = format!(
        r#"
[delivery]
dead_letter_path = "{dead}"

[file_log]
path = "{log}"

[[endpoint]]
name = "receiver"
url = "{url}"
secrets = ["{secret}"]
allow_private = true   # the receiver is on loopback; only global addresses are allowed by default
retry = "0s,100ms,1s"
"#,
        dead = dir.path().join("dead-letters.jsonl").display(),
        log = dir.path().join("events.jsonl").display(),
        url = receiver.url,
        secret = secret.reveal(),
    );
    let config = Config::parse(&toml, "deskhook.toml")?;
    let (http, delivery) = config.http_sink_builder()?.build()?;
    let log = config.file_sink()?.ok_or("the config has a file log")?;
    let log_path = log.path().to_path_buf();
    let inbox = Arc::new(Inbox::default());

    deskhook::set_dispatcher(
        Dispatcher::builder()
            .sink("http", http.clone())
            .sink("file", log)
            .sink("inbox", inbox.clone())
            .build(),
    )?;

    let anna = Agent {
        login: "anna@example.com".into(),
        name: "Anna Petrova".into(),
        locale: "en".into(),
    };
    let mut ticket = HelpdeskTicket {
        code: "E3XK".into(),
        title: "Printer on floor 3 is jammed".into(),
        body: "Paper jam in tray 2.\r\nPlease have a look.".into(),
        urgent: false,
        state: "new",
        department: "Facilities".into(),
        opened_at: DateTime::new(2026, 11, 21, 9, 30, 0, 0)?,
        opened_by: Agent {
            login: "boris@example.com".into(),
            name: "Boris Ivanov".into(),
            locale: "ru".into(),
        },
        assignee: None,
        notes: Vec::new(),
    };

    // The ticket's life: each step changes the ticket, then emits.
    type Step = (Action, fn(&mut HelpdeskTicket));
    let steps: [Step; 12] = [
        (Action::Create, |_| {}),
        (Action::Refer, |t| t.department = "IT".into()),
        (Action::Lock, |t| t.state = "in progress"),
        (Action::Unlock, |t| t.state = "new"),
        (Action::Ok, |t| t.state = "done"),
        (Action::Unok, |t| t.state = "in progress"),
        (Action::Waitok, |t| t.state = "in review"),
        (Action::Approve, |t| t.state = "done"),
        (Action::Delete, |t| t.state = "deleted"),
        (Action::Restore, |t| t.state = "done"),
        (Action::Comment, |t| {
            t.notes
                .push(("anna@example.com".into(), "Replaced the roller.".into()))
        }),
        (Action::Edit, |t| t.urgent = true),
    ];
    for (action, change) in steps {
        change(&mut ticket);
        if action == Action::Lock {
            ticket.assignee = Some(anna.clone());
        }
        let performed_by = if action == Action::Create {
            &ticket.opened_by
        } else {
            &anna
        };
        deskhook::emit(action, &to_deskhook(&ticket), &user(performed_by));
    }
    deskhook::flush()?;
    delivery.shutdown(std::time::Duration::from_secs(5))?;
    receiver.server.unblock();
    let rows = receiver
        .thread
        .join()
        .map_err(|_| "the receiver panicked")?;

    println!("The receiver at {} got:", receiver.url);
    println!("  {:<8} {:<6} {:>3}  signature", "action", "ticket", "seq");
    for (action, ticket, seq, verified) in &rows {
        let verdict = match verified {
            Ok(()) => "verified".to_owned(),
            Err(e) => format!("BAD: {e}"),
        };
        println!("  {action:<8} {ticket:<6} {seq:>3}  {verdict}");
    }

    println!(
        "\nThe in-process sink received (descriptions in the performer's language: Boris, who \
         created the ticket, reads Russian; Anna English):"
    );
    println!(
        "  {:<8} {:<44} {:>6}",
        "action", "description / status", "bytes"
    );
    for (action, what, bytes) in inbox.0.lock().map_err(|_| "inbox lock poisoned")?.iter() {
        println!("  {action:<8} {what:<44} {bytes:>6}");
    }

    let log = std::fs::read_to_string(&log_path)?;
    println!(
        "\nThe file log (in a temporary directory, removed when the example ends) has {} \
         lines; the first:",
        log.lines().count()
    );
    let first = log.lines().next().ok_or("the file log is empty")?;
    println!("  {}…", first.chars().take(150).collect::<String>());

    let stats = deskhook::dispatch::dispatcher()
        .ok_or("no dispatcher")?
        .stats();
    for sink in &stats.sinks {
        println!(
            "sink {:<6} sent {:>2}, failed {}",
            sink.name, sink.sent, sink.failed
        );
    }
    let http_stats = &http.stats()[0];
    println!(
        "endpoint {}: delivered {}, failed attempts {}, dead letters {}",
        http_stats.name, http_stats.delivered, http_stats.failed, http_stats.dead_lettered
    );
    if stats.sinks.iter().any(|s| s.sent != 12 || s.failed != 0) {
        return Err("not every sink received all twelve events".into());
    }
    if rows.len() != 12 || rows.iter().any(|(_, _, _, v)| v.is_err()) {
        return Err("the receiver did not verify all twelve events".into());
    }
    Ok(())
}
