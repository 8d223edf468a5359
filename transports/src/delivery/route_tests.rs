//! A route's tests: when preparing an attempt is costly, and which secret makes the hub
//! signature.

use std::time::Duration;

use super::*;
use crate::delivery::lane::Nowhere;

#[test]
#[cfg(feature = "_async")]
fn preparing_is_costly_with_a_slow_template_ed25519_or_a_large_signed_body() {
    use crate::template::Template;
    use deskhook::Secret;
    let route = |endpoint: Endpoint| Route::new(endpoint, &Nowhere).expect("a route");
    let plain = || Endpoint::new("e", "http://127.0.0.1:9/").expect("a URL");
    let job = |body: usize| {
        let mut job = Job::for_test("T", 1);
        Arc::get_mut(&mut job.event).expect("one owner").body =
            bytes::Bytes::from(vec![b' '; body]);
        job
    };
    let (small, large) = (job(100), job(COSTLY_HMAC_BODY));
    let hmac = Secret::generate().expect("a secret");
    let ed25519 = Secret::generate_ed25519().expect("a key");
    let own = Template::inline(r#"{"s": "{{ subject }}"}"#).expect("a template");

    assert!(!route(plain()).costly(&large), "nothing to render or sign");
    let signed = route(plain().secrets([hmac.clone()]));
    assert!(!signed.costly(&small) && signed.costly(&large));
    assert!(route(plain().secrets([ed25519])).costly(&small));
    let preset = Template::preset("slack").expect("a preset");
    assert!(
        !route(plain().template(preset)).costly(&small),
        "presets run as Rust"
    );
    let templated = route(plain().template(own.clone()));
    let mut rendered = job(100);
    assert!(
        !templated.costly(&rendered),
        "not rendered yet: cheap until measured"
    );
    own.took(Duration::from_micros(2));
    assert!(
        !templated.costly(&rendered),
        "a quick render stays on the thread"
    );
    own.took(Duration::from_millis(5));
    own.took(Duration::from_micros(2));
    assert!(
        !templated.costly(&rendered),
        "one render preempted midway does not make it slow"
    );
    for _ in 0..32 {
        own.took(Duration::from_micros(30));
    }
    assert!(
        templated.costly(&rendered),
        "renders of 30 µs go to another"
    );
    rendered.rendered = Some(Box::new(super::super::Rendered {
        template: own,
        body: bytes::Bytes::from_static(b"{}"),
        charge: None,
    }));
    assert!(!templated.costly(&rendered), "a retry reuses its render");
}

#[test]
fn the_hub_signature_is_made_with_the_secret_receivers_have_had_longest() {
    use deskhook::Secret;
    use deskhook::signature::hub_signature;
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let secret = || Secret::generate().expect("a secret");
    let (a, b, c) = (secret(), secret(), secret());
    let route = |endpoint: Endpoint| Route::new(endpoint, &Nowhere).expect("a route");
    let hub = || {
        Endpoint::new("e", "http://127.0.0.1:9/")
            .expect("a URL")
            .hub_signature(true)
    };
    let body = b"{}";
    let active = |expires: &Option<SystemTime>| expires.is_none_or(|at| now < at);
    // Rotated twice, the second overlap ending first: [C, B and A until then]. Receivers
    // hold A, the last given of those that expire together.
    let rotated = route(
        hub()
            .secret(c.clone())
            .secret_until(b.clone(), now + hour)
            .secret_until(a.clone(), now + hour),
    );
    assert_eq!(
        rotated.hub(body, active),
        hub_signature(&a, body).map_err(|e| e.to_string())
    );
    // B expires first: it is the older.
    let older_b = route(
        hub()
            .secret(c.clone())
            .secret_until(a.clone(), now + 2 * hour)
            .secret_until(b.clone(), now + hour),
    );
    assert_eq!(
        older_b.hub(body, active),
        hub_signature(&b, body).map_err(|e| e.to_string())
    );
    // Once they have expired, C; of two that do not expire, the first given.
    let ended = |expires: &Option<SystemTime>| expires.is_none();
    assert_eq!(
        rotated.hub(body, ended),
        hub_signature(&c, body).map_err(|e| e.to_string())
    );
    let lasting = route(hub().secret(c.clone()).secret(a.clone()));
    assert_eq!(
        lasting.hub(body, active),
        hub_signature(&c, body).map_err(|e| e.to_string())
    );
    // No current HMAC secret: an error, not a request without the header.
    let ed25519 = route(
        hub()
            .secret(Secret::generate_ed25519().expect("a key"))
            .secret_until(a, now + hour),
    );
    let err = ed25519.hub(body, ended).unwrap_err();
    assert!(err.contains("needs an HMAC (whsec_) secret"), "{err}");
}
