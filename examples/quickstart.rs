//! cargo run --example quickstart
//!
//! A helpdesk with its own ticket type maps it to deskhook's, sets the global dispatcher with
//! two sinks (a JSON Lines file log in a temporary directory and an in-process sink of its
//! own), and emits all twelve actions as the ticket goes through its life. Then it prints
//! what each sink received. Offline; exits by itself.

use std::error::Error;
use std::sync::{Arc, Mutex};

use deskhook::{Action, Comment, DateTime, Dispatcher, Emitted, EventSink, Priority, Status};
use deskhook_transports::file::FileSink;

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
        let typed = event.event();
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

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("events.jsonl");
    let inbox = Arc::new(Inbox::default());

    deskhook::set_dispatcher(
        Dispatcher::builder()
            .sink("file", FileSink::new(&log_path)?)
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

    println!("The in-process sink received:");
    println!(
        "  {:<8} {:<44} {:>6}",
        "action", "description / status", "bytes"
    );
    for (action, what, bytes) in inbox.0.lock().map_err(|_| "inbox lock poisoned")?.iter() {
        println!("  {action:<8} {what:<44} {bytes:>6}");
    }

    let log = std::fs::read_to_string(&log_path)?;
    println!(
        "\nThe file log {} has {} lines; the first:",
        log_path.display(),
        log.lines().count()
    );
    let first = log.lines().next().ok_or("the file log is empty")?;
    println!("  {}…", first.chars().take(150).collect::<String>());

    let stats = deskhook::dispatcher().ok_or("no dispatcher")?.stats();
    for sink in &stats.sinks {
        println!(
            "sink {:<6} sent {:>2}, failed {}",
            sink.name, sink.sent, sink.failed
        );
    }
    if stats.sinks.iter().any(|s| s.sent != 12 || s.failed != 0) {
        return Err("not every sink received all twelve events".into());
    }
    Ok(())
}
