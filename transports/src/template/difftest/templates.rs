//! The templates of the differential test: JSON by construction, mostly of the grammar a
//! plan renders (variables inside strings through its filters, whole parts of `event`),
//! sometimes beyond it.

use super::Rng;
use super::bodies::{KEYS, Kind, S};

pub(super) struct Gen<'a> {
    /// Mostly what a plan renders: no other filters, names or trimmed tags.
    pub(super) friendly: bool,
    pub(super) rng: &'a mut Rng,
    pub(super) paths: &'a [(Vec<S>, Kind, Vec<String>)],
}

impl Gen<'_> {
    fn space(&mut self) -> &'static str {
        if self.rng.chance(85) {
            ""
        } else {
            self.rng.pick(&[" ", "\n", "\t", "\r\n", "  "])
        }
    }

    fn inner_space(&mut self) -> &'static str {
        if self.rng.chance(90) {
            ""
        } else {
            self.rng.pick(&[" ", "\n", "  "])
        }
    }

    fn step_text(&mut self, step: &S) -> String {
        let (a, b) = (self.inner_space(), self.inner_space());
        match step {
            S::A(k) => format!("{a}.{b}{k}"),
            S::I(i) => format!("{a}[{b}{i}{}]", self.inner_space()),
        }
    }

    /// A path into `event`, mostly one the body has; `want` prefers what is there.
    fn event_path(&mut self, want: Option<Kind>) -> (Vec<S>, Vec<String>) {
        let candidates: Vec<usize> = (0..self.paths.len())
            .filter(|&i| want.is_none_or(|k| self.paths[i].1 == k))
            .collect();
        let (mut path, keys) = if !candidates.is_empty() && self.rng.chance(85) {
            let (p, _, keys) = &self.paths[self.rng.pick(&candidates)];
            (p.clone(), keys.clone())
        } else if !self.paths.is_empty() && self.rng.chance(70) {
            let (p, _, keys) = &self.paths[self.rng.below(self.paths.len())];
            (p.clone(), keys.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        if self.rng.chance(if self.friendly { 2 } else { 10 }) {
            path.push(if self.rng.chance(50) {
                S::A((self.rng.pick(KEYS)).to_string())
            } else {
                S::I(self.rng.below(4))
            });
        }
        if !self.friendly && self.rng.chance(5) && !path.is_empty() {
            let at = self.rng.below(path.len());
            path[at] = match &path[at] {
                S::A(_) => S::I(self.rng.below(3)),
                S::I(_) => S::A((self.rng.pick(KEYS)).to_string()),
            };
        }
        (path, keys)
    }

    /// `{{ … }}` inside a string.
    fn value(&mut self) -> String {
        let trim = if self.friendly { 0 } else { 3 };
        let open = if self.rng.chance(trim) { "{{-" } else { "{{" };
        let close = if self.rng.chance(trim) { "-}}" } else { "}}" };
        let mut expr = String::new();
        match self.rng.below(if self.friendly { 87 } else { 100 }) {
            0..=44 => {
                expr.push_str("event");
                let want = if self.rng.chance(70) {
                    Some(Kind::Scalar)
                } else {
                    None
                };
                let (path, _) = self.event_path(want);
                for step in &path {
                    let text = self.step_text(step);
                    expr.push_str(&text);
                }
            }
            45..=74 => expr.push_str(self.rng.pick(&[
                "subject",
                "text",
                "ticket",
                "label",
                "author",
                "lang",
                "id",
                "event_type",
                "format",
            ])),
            75..=79 => expr.push_str("tenant"),
            80..=86 => expr.push_str(self.rng.pick(&[
                "vars",
                "vars.x",
                "vars.lang",
                "vars.nope",
                "vars[0]",
            ])),
            87..=89 => expr.push_str("raw"),
            _ => expr.push_str(self.rng.pick(&[
                "range",
                "none",
                "loop",
                "subject.x",
                "subject[0]",
                "event_type[1]",
                "nope",
                "id[0]",
                "true",
                "namespace",
                "tenant.x",
            ])),
        }
        let n = self.rng.below(4);
        for _ in 0..n {
            let filter = match self.rng.below(if self.friendly { 11 } else { 12 }) {
                9 => (self
                    .rng
                    .pick(&["lower", "upper", "default('d')", "default(7)"]))
                .to_string(),
                0..=4 => format!(
                    "truncate({}{}{})",
                    self.inner_space(),
                    self.rng.pick(&[
                        "0",
                        "1",
                        "2",
                        "3",
                        "5",
                        "10",
                        "100",
                        "1099511627776",
                        "18446744073709551615",
                        "9223372036854775808",
                        "18446744073709551616",
                        "007"
                    ]),
                    self.inner_space()
                ),
                5..=8 | 10 => "entities".to_string(),
                _ => (self.rng.pick(&[
                    "upper",
                    "default('d')",
                    "trim",
                    "replace('a', '<')",
                    "lower",
                    "title",
                    "capitalize",
                    "truncate(3, 4)",
                ]))
                .to_string(),
            };
            let (a, b) = (self.inner_space(), self.inner_space());
            expr.push_str(&format!("{a}|{b}{filter}"));
        }
        format!(
            "{open}{}{expr}{}{close}",
            self.inner_space(),
            self.inner_space()
        )
    }

    /// `{{ … }}` where a value goes.
    fn whole(&mut self) -> String {
        let trim = if self.friendly { 0 } else { 3 };
        let open = if self.rng.chance(trim) { "{{-" } else { "{{" };
        let close = if self.rng.chance(trim) { "-}}" } else { "}}" };
        let mut expr = String::new();
        if !self.friendly && self.rng.chance(8) {
            expr.push_str(self.rng.pick(&[
                "subject",
                "vars",
                "tenant",
                "raw",
                "id",
                "event|first",
                "event.ticket|default({})",
                "event|list|default([])",
            ]));
        } else {
            expr.push_str("event");
            let want = match self.rng.below(10) {
                0..=4 => Some(Kind::Array),
                5..=6 => Some(Kind::Object),
                7..=8 => Some(Kind::Scalar),
                _ => None,
            };
            let (path, keys) = self.event_path(want);
            for step in &path {
                let text = self.step_text(step);
                expr.push_str(&text);
            }
            let sp = |g: &mut Gen<'_>| (g.inner_space(), g.inner_space());
            if self.rng.chance(35) {
                let (a, b) = sp(self);
                expr.push_str(&format!("{a}|{b}default([])"));
            }
            if self.rng.chance(45) {
                let key = if !keys.is_empty() && self.rng.chance(85) {
                    self.rng.pick(&keys).clone()
                } else {
                    (self.rng.pick(KEYS)).to_string()
                };
                let quote = if self.rng.chance(70) { '"' } else { '\'' };
                let (a, b) = sp(self);
                let (c, d) = sp(self);
                expr.push_str(&format!(
                    "{a}|{b}map({c}attribute{d}={}{quote}{key}{quote}{})",
                    self.inner_space(),
                    self.inner_space()
                ));
            }
            if self.rng.chance(40) {
                let (a, b) = sp(self);
                expr.push_str(&format!("{a}|{b}list"));
            }
        }
        let (a, b) = (self.inner_space(), self.inner_space());
        format!(
            "{open}{}{expr}{a}|{b}tojson{}{close}",
            self.inner_space(),
            self.inner_space()
        )
    }

    fn string(&mut self) -> String {
        let mut s = String::from("\"");
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            if self.rng.chance(40) {
                s.push_str(self.rng.pick(&[
                    "a", " ", "\\n", "\\\"", "\\u00e9", "ж", ":", ", ", "}}", "]", "/", "\\\\",
                    "<&>", "\\t",
                ]));
            }
            if self.rng.chance(80) {
                let value = self.value();
                s.push_str(&value);
            }
        }
        s.push('"');
        s
    }

    fn slot(&mut self, depth: usize) -> String {
        match self.rng.below(if depth > 2 { 8 } else { 10 }) {
            0..=2 => self.string(),
            3..=5 => self.whole(),
            6 => (self
                .rng
                .pick(&["1", "true", "null", "[1, \"x\"]", "{}", "-0.5e3"]))
            .to_string(),
            7 => self.string(),
            8 => {
                let n = 1 + self.rng.below(3);
                let items: Vec<String> = (0..n).map(|_| self.slot(depth + 1)).collect();
                let sep = format!("{},{}", self.space(), self.space());
                format!("[{}{}{}]", self.space(), items.join(&sep), self.space())
            }
            _ => self.object(depth + 1),
        }
    }

    fn object(&mut self, depth: usize) -> String {
        let n = 1 + self.rng.below(4);
        let mut members = Vec::new();
        for i in 0..n {
            let value = self.slot(depth);
            members.push(format!("\"k{i}\"{}:{}{value}", self.space(), self.space()));
        }
        let sep = format!("{},{}", self.space(), self.space());
        format!("{{{}{}{}}}", self.space(), members.join(&sep), self.space())
    }

    pub(super) fn template(&mut self) -> String {
        let template = if self.rng.chance(85) {
            self.object(0)
        } else {
            self.slot(1)
        };
        format!("{}{template}{}", self.space(), self.space())
    }
}
