//! [`Rendering`]: which way a template renders, for whoever writes one.

use super::Template;

/// How a template renders, fastest first: [`Template::rendering`]. `deskhook render
/// --explain` says it, so that whoever writes a template sees what it will cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rendering {
    /// A preset: Rust code that writes what its template renders.
    Preset,
    /// Without minijinja: each value read straight from the event (a template JSON by
    /// construction whose values go through `truncate`, `entities`, `lower`, `upper` and
    /// `default` only, and whose whole values are parts of `event` through `default([])`
    /// and `map(attribute=…)|list`).
    Direct,
    /// By minijinja, JSON by construction: the output is not parsed again.
    JsonByConstruction,
    /// By minijinja, the output then checked to be JSON and compacted.
    Checked,
    /// By minijinja, as text (a content type that is not JSON).
    Text,
}

impl Rendering {
    /// How a template renders, to follow "the template renders", and what would make it
    /// render faster: a sentence or two.
    pub fn explain(self) -> &'static str {
        match self {
            Rendering::Preset => {
                "as Rust code that writes what its template would render: the fastest way"
            }
            Rendering::Direct => {
                "without minijinja, each value read straight from the event: the fastest way \
                 for a template of one's own"
            }
            Rendering::JsonByConstruction => {
                "through minijinja, and is JSON by construction: its output is not parsed \
                 again. It would render without minijinja if its values inside strings went \
                 through truncate, entities, lower, upper and default only, its whole values \
                 were parts of event through default([]) and map(attribute=...)|list into \
                 tojson, and no {{- or -}} trimmed whitespace"
            }
            Rendering::Checked => {
                "through minijinja, and its output is then checked to be JSON and compacted: \
                 the slowest way. It would be JSON by construction (not parsed again) \
                 without tags and comments, with every {{ ... }} inside a string (through default, lower, upper, trim, \
                 title, capitalize, replace, truncate or entities) or printing a whole value \
                 with filters ending in tojson where a value goes"
            }
            Rendering::Text => "through minijinja, as text: its content type is not JSON",
        }
    }
}

impl Template {
    /// How it renders: the fastest way its text allows (see [`Rendering`]).
    ///
    /// ```
    /// use deskhook_transports::template::{Rendering, Template};
    ///
    /// let fields = Template::inline(r#"{"title": "{{ subject|truncate(80) }}"}"#).unwrap();
    /// assert_eq!(fields.rendering(), Rendering::Direct);
    /// let tagged = Template::inline(r#"{"t": "{% if subject %}{{ subject }}{% endif %}"}"#);
    /// assert_eq!(tagged.unwrap().rendering(), Rendering::Checked);
    /// ```
    pub fn rendering(&self) -> Rendering {
        let compiled = &self.compiled;
        match &compiled.by_construction {
            _ if compiled.native.is_some() => Rendering::Preset,
            Some(super::ByConstruction { plan: Some(_), .. }) => Rendering::Direct,
            Some(_) => Rendering::JsonByConstruction,
            None if compiled.json => Rendering::Checked,
            None => Rendering::Text,
        }
    }
}
