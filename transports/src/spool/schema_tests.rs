//! The schema's query plans: the console's filters read an index, in old spools too.

use super::*;

/// How SQLite would read a page of the dead letters `query` asks for.
fn plan(conn: &Connection, query: &DeadLetterQuery) -> String {
    let (filter, args) = letters_filter(query);
    let mut stmt = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT row FROM dead_letters WHERE {filter} \
             ORDER BY row DESC LIMIT 51"
        ))
        .unwrap();
    let steps = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<Vec<String>>>()
        .unwrap();
    steps.join("; ")
}

#[test]
fn the_consoles_filters_of_dead_letters_read_an_index_in_old_spools_too() {
    let dir = tempfile::tempdir().unwrap();
    let query = |endpoint: &str, tenant: &str, event_id: &str, ticket: &str| {
        let set = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
        DeadLetterQuery {
            endpoint: set(endpoint),
            tenant: set(tenant),
            event_id: set(event_id),
            ticket: set(ticket),
            before: Some(1_000),
            ..DeadLetterQuery::new()
        }
    };
    let filters = [
        (query("crm", "", "", ""), "dead_letters_by_endpoint"),
        (query("", "acme", "", ""), "dead_letters_by_tenant"),
        (query("", "", "msg_1", ""), "dead_letters_by_event"),
        (query("", "", "", "T-1"), "dead_letters_by_ticket"),
    ];
    let check = |conn: &Connection| {
        for (query, index) in &filters {
            let plan = plan(conn, query);
            assert!(plan.contains(&format!("INDEX {index}")), "{plan}");
        }
    };
    check(&crate::spool::Spool::open(dir.path()).unwrap().conn);
    // A spool made before the indexes: the next open for writing makes them.
    let db = dir.path().join(crate::spool::DATABASE_FILE);
    let conn = Connection::open(&db).unwrap();
    for (_, index) in &filters {
        conn.execute_batch(&format!("DROP INDEX {index}")).unwrap();
    }
    let plan = plan(&conn, &filters[0].0);
    assert!(!plan.contains("INDEX"), "{plan}");
    drop(conn);
    check(&crate::spool::Spool::open(dir.path()).unwrap().conn);
}

#[test]
fn a_tenants_attempts_read_an_index_in_old_spools_too() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |conn: &Connection| {
        conn.query_row(
            "EXPLAIN QUERY PLAN SELECT seq FROM attempts WHERE 1 = 1 AND tenant = ?1 \
             ORDER BY seq DESC LIMIT 51",
            ["acme"],
            |r| r.get::<_, String>(3),
        )
        .unwrap()
    };
    let made = crate::spool::Spool::open(dir.path()).unwrap();
    assert!(plan(&made.conn).contains("INDEX attempts_by_tenant"));
    drop(made);
    let db = dir.path().join(crate::spool::DATABASE_FILE);
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("DROP INDEX attempts_by_tenant").unwrap();
    assert!(!plan(&conn).contains("attempts_by_tenant"));
    drop(conn);
    let opened = crate::spool::Spool::open(dir.path()).unwrap();
    assert!(plan(&opened.conn).contains("INDEX attempts_by_tenant"));
}

#[test]
fn a_page_of_the_spools_dead_letters_ends_at_the_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let spool = crate::spool::Spool::open(dir.path()).unwrap();
    // Five letters of 3 MiB bodies: pages of three (9 MiB, past 8 MiB), then two.
    let body = format!("\"{}\"", "x".repeat(3 << 20));
    for n in 0..5 {
        spool
            .conn
            .execute(
                "INSERT INTO dead_letters (id, endpoint, url, action, ticket, content_type, \
                 attempts, reason, failed_at, body) VALUES (?1, 'crm', 'http://x/', 'create', \
                 'T', 'application/json', 1, 'r', '2026-01-01T00:00:00Z', ?2)",
                rusqlite::params![format!("m{n}"), body.as_bytes()],
            )
            .unwrap();
    }
    let mut query = DeadLetterQuery::new();
    let mut pages = Vec::new();
    loop {
        let page = letters(&spool.conn, &query).unwrap();
        pages.push(
            page.items
                .iter()
                .map(|s| s.letter.id.clone())
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [vec!["m4", "m3", "m2"], vec!["m1", "m0"]]);
}
