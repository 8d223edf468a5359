//! The per-minute chart of an endpoint's page: inline SVG rendered on the server, no script.

use std::time::SystemTime;

use maud::{Markup, html};

/// One minute of the chart: its start, deliveries, failures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minute {
    pub(crate) minute: SystemTime,
    pub(crate) delivered: u32,
    pub(crate) failed: u32,
}

const WIDTH: u32 = 600;
const HEIGHT: u32 = 120;
const TOP: u32 = 14;

/// Deliveries (green) and failures (red, stacked above) per minute, oldest on the left.
pub(crate) fn minutes(minutes: &[Minute]) -> Markup {
    let most = minutes
        .iter()
        .map(|m| m.delivered + m.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / (minutes.len().max(1) as u32);
    let bar = slot.saturating_sub(2).max(1);
    let scale = |n: u32| (u64::from(n) * u64::from(HEIGHT - TOP) / u64::from(most)) as u32;
    let (delivered, failed) = minutes.iter().fold((0u64, 0u64), |(d, f), m| {
        (d + u64::from(m.delivered), f + u64::from(m.failed))
    });
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 16))
                role="img" aria-label=(format!("Last hour: {delivered} delivered, {failed} failed")) {
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                text x="0" y="10" class="label" { "top: " (most) " a minute" }
                @for (i, m) in minutes.iter().enumerate() {
                    @let x = i as u32 * slot;
                    @let ok = scale(m.delivered);
                    @let bad = scale(m.failed);
                    g {
                        title { (minute_label(m)) ": " (m.delivered) " delivered, " (m.failed) " failed" }
                        rect x=(x) y=(TOP) width=(bar) height=(HEIGHT - TOP) class="slot" {}
                        @if ok > 0 {
                            rect x=(x) y=(HEIGHT - ok) width=(bar) height=(ok) class="delivered" {}
                        }
                        @if bad > 0 {
                            rect x=(x) y=(HEIGHT - ok - bad) width=(bar) height=(bad) class="failed" {}
                        }
                    }
                }
                text x="0" y=(HEIGHT + 14) class="label" { "60 min ago" }
                text x=(WIDTH) y=(HEIGHT + 14) class="label end" { "now" }
            }
            figcaption {
                span.key.delivered {} " delivered " (delivered) "  "
                span.key.failed {} " failed " (failed)
            }
        }
    }
}

fn minute_label(m: &Minute) -> String {
    jiff::Timestamp::try_from(m.minute)
        .map(|t| t.strftime("%H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_minute() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let svg =
            minutes(&[minute(now, 0, 0), minute(now, 10, 0), minute(now, 5, 5)]).into_string();
        assert!(
            svg.contains("aria-label=\"Last hour: 15 delivered, 5 failed\""),
            "{svg}"
        );
        // 10 is the most: a full bar is 106 high; 5 is half of it.
        assert!(
            svg.contains("y=\"14\" width=\"198\" height=\"106\" class=\"delivered\""),
            "{svg}"
        );
        assert!(svg.contains("height=\"53\" class=\"failed\""), "{svg}");
        assert_eq!(svg.matches("class=\"failed\"").count(), 1);
        // The scale says what a full bar is.
        assert!(svg.contains(">top: 10 a minute</text>"), "{svg}");
        // A bar's minute says its zone (an operator may read the helpdesk's logs in local
        // time).
        assert!(
            svg.contains("<title>08:00 UTC: 0 delivered, 0 failed</title>"),
            "{svg}"
        );
    }

    fn minute(minute: SystemTime, delivered: u32, failed: u32) -> Minute {
        Minute {
            minute,
            delivered,
            failed,
        }
    }
}
