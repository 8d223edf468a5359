//! A lane's tests: its latencies and its timers.

use super::*;

#[test]
fn a_timer_set_for_later_is_not_set_again_after_each_earlier_one() {
    let lane = lane_for_test("crm");
    let mut st = lock(&lane.state);
    let retry = Instant::now() + Duration::from_secs(3600);
    assert!(st.arm(retry));
    // A token every few milliseconds: a timer each, and the retry's is still set.
    for _ in 0..20 {
        let token = Instant::now() + Duration::from_millis(2);
        assert!(st.arm(token));
        std::thread::sleep(Duration::from_millis(3));
        assert!(!st.arm(retry), "the retry's timer is still set");
    }
    assert!(st.timers_at.len() <= 2, "{:?}", st.timers_at);
    // A later instant needs none; an earlier one does.
    assert!(!st.arm(retry + Duration::from_secs(1)));
    assert!(st.arm(retry - Duration::from_secs(1)));
}

#[test]
fn latency_percentiles_come_from_the_recent_ring() {
    let mut latencies = Latencies::default();
    assert_eq!(latencies.percentiles(), (None, None));
    for ms in 1..=100 {
        latencies.record(Duration::from_millis(ms));
    }
    assert_eq!(
        latencies.percentiles(),
        (
            Some(Duration::from_millis(50)),
            Some(Duration::from_millis(99))
        )
    );
    for _ in 0..LATENCY_WINDOW {
        latencies.record(Duration::from_millis(7));
    }
    assert_eq!(latencies.percentiles().1, Some(Duration::from_millis(7)));
}
