//! `event`: the body's JSON as a template reaches into it. An object or an array is scanned
//! once, when first read, for where its members are in the body (no tree is built); a
//! member is made a value when read; `tojson` and printing of a part the template did not
//! change copy its text from the body instead of serializing a tree again.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde::de::{Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object or array inside an event's body.
pub(crate) struct LazyJson {
    /// The whole body, as text (checked once, when the root was made).
    body: Arc<str>,
    /// This value's text in `body`.
    at: Range<usize>,
    members: OnceLock<Members>,
}

/// Where an object's or an array's members are in the body.
enum Members {
    Map(Vec<(Arc<str>, Range<usize>)>),
    Seq(Vec<Range<usize>>),
}

impl LazyJson {
    /// `event` for a body: the root object or array, any other JSON value as it is, or none
    /// when the body is not JSON text.
    pub(crate) fn root(body: &Bytes) -> Value {
        let Ok(text) = std::str::from_utf8(body) else {
            return Value::from(());
        };
        let trimmed = text.trim_start();
        let start = text.len() - trimmed.len();
        let end = start + trimmed.trim_end().len();
        LazyJson::value(&Arc::from(text), start..end)
    }

    /// The value of the JSON text at `at` in `body`.
    fn value(body: &Arc<str>, at: Range<usize>) -> Value {
        let text = body.get(at.clone()).unwrap_or_default();
        match text.as_bytes().first() {
            Some(b'{' | b'[') => Value::from_object(LazyJson {
                body: body.clone(),
                at,
                members: OnceLock::new(),
            }),
            _ => serde_json::from_str(text).unwrap_or_default(),
        }
    }

    /// Its JSON text, as the body has it.
    pub(crate) fn text(&self) -> &str {
        // Members start and end on tokens, which are characters.
        self.body.get(self.at.clone()).unwrap_or_default()
    }

    fn is_map(&self) -> bool {
        self.body.as_bytes().get(self.at.start) == Some(&b'{')
    }

    fn members(&self) -> &Members {
        self.members.get_or_init(|| {
            let text = self.text();
            let base = self.at.start;
            let mut de = serde_json::Deserializer::from_str(text);
            let scanned = if self.is_map() {
                de.deserialize_map(Scan { text, base }).map(Members::Map)
            } else {
                de.deserialize_seq(ScanSeq(Scan { text, base }))
                    .map(Members::Seq)
            };
            // The body was JSON when it was serialized or read; a failure leaves it empty.
            scanned.unwrap_or_else(|_| {
                if self.is_map() {
                    Members::Map(Vec::new())
                } else {
                    Members::Seq(Vec::new())
                }
            })
        })
    }
}

impl fmt::Debug for LazyJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl Object for LazyJson {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.is_map() {
            ObjectRepr::Map
        } else {
            ObjectRepr::Seq
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let at = match self.members() {
            Members::Map(members) => {
                let key = key.as_str()?;
                members.iter().find(|(name, _)| &**name == key)?.1.clone()
            }
            Members::Seq(items) => items.get(usize::try_from(key.as_i64()?).ok()?)?.clone(),
        };
        Some(LazyJson::value(&self.body, at))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.members() {
            Members::Map(members) => Enumerator::Values(
                members
                    .iter()
                    .map(|(name, _)| Value::from(name.clone()))
                    .collect(),
            ),
            Members::Seq(items) => Enumerator::Seq(items.len()),
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(match self.members() {
            Members::Map(members) => members.len(),
            Members::Seq(items) => items.len(),
        })
    }
}

/// Reads where the members of an object or an array are, as offsets into the body.
struct Scan<'t> {
    text: &'t str,
    base: usize,
}

impl Scan<'_> {
    fn range(&self, raw: &RawValue) -> Range<usize> {
        let start = raw.get().as_ptr() as usize - self.text.as_ptr() as usize;
        self.base + start..self.base + start + raw.get().len()
    }
}

impl<'de> Visitor<'de> for Scan<'de> {
    type Value = Vec<(Arc<str>, Range<usize>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let raw: &'de RawValue = map.next_value()?;
            members.push((Arc::from(name.as_ref()), self.range(raw)));
        }
        Ok(members)
    }
}

/// The same for an array (a visitor has one output type).
struct ScanSeq<'t>(Scan<'t>);

impl<'de> Visitor<'de> for ScanSeq<'de> {
    type Value = Vec<Range<usize>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            items.push(self.0.range(raw));
        }
        Ok(items)
    }
}
