//! How the model's values look on the wire, and the macro that writes the model's serde code.
//!
//! Each codec module has `Ser`, a borrowed wrapper that serializes a field, and `De`, a
//! wrapper that deserializes one. `wire_struct!` writes the struct with its `Serialize` and
//! `Deserialize`: known keys in the documented order, then the keys it does not know, kept in
//! `extra`. Errors name the key and keep the position of the JSON text, which serde's
//! `#[serde(flatten)]` would lose.

use std::borrow::Cow;
use std::fmt;

use jiff::civil::DateTime;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub(crate) mod json;

/// The wire format of every timestamp: local time with no zone.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A map key, borrowed from the input when it can be.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Fields serialized and deserialized as their own serde impls say.
pub(crate) mod plain {
    use super::*;

    pub(crate) struct Ser<'a, T>(pub(crate) &'a T);

    impl<T: Serialize> Serialize for Ser<'_, T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.serialize(serializer)
        }
    }

    /// Writes the field as its own [`json::WriteJson`] says.
    pub(crate) fn write<T: json::WriteJson>(
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        value.write_json(out)
    }

    pub(crate) struct De<T>(pub(crate) T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for De<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            T::deserialize(deserializer).map(De)
        }
    }
}

/// `bool` fields written as the strings `"true"` / `"false"` (a MySQL `enum('true','false')`
/// in Zenlix); real JSON booleans are accepted on input.
pub(crate) mod str_bool {
    use super::*;

    pub(crate) struct Ser<'a, T>(pub(crate) &'a T);

    impl Serialize for Ser<'_, bool> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(if *self.0 { "true" } else { "false" })
        }
    }

    /// Writes `"true"` or `"false"`.
    pub(crate) fn write(value: &bool, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(if *value { b"\"true\"" } else { b"\"false\"" });
        Ok(())
    }

    pub(crate) struct De<T>(pub(crate) T);

    impl<'de> Deserialize<'de> for De<bool> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct BoolVisitor;
            impl Visitor<'_> for BoolVisitor {
                type Value = bool;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("\"true\" or \"false\" (a string; a JSON boolean is accepted too)")
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
                    Ok(v)
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
                    match v {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => Err(E::invalid_value(
                            de::Unexpected::Str(&crate::error::shorten(v)),
                            &self,
                        )),
                    }
                }
            }
            deserializer.deserialize_any(BoolVisitor).map(De)
        }
    }
}

/// Formats a civil time as `YYYY-MM-DD HH:MM:SS`. Sub-second digits are not part of the
/// format and are dropped.
pub(crate) fn format_time(dt: DateTime) -> TimeText {
    let mut buf = [0u8; 19];
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        // jiff allows years -9999..=9999; the wire format has four digits and no sign.
        let text = dt.strftime(TIME_FORMAT).to_string();
        return TimeText::Other(text);
    }
    let put = |buf: &mut [u8; 19], at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, year as u32, 4);
    buf[4] = b'-';
    put(&mut buf, 5, dt.month() as u32, 2);
    buf[7] = b'-';
    put(&mut buf, 8, dt.day() as u32, 2);
    buf[10] = b' ';
    put(&mut buf, 11, dt.hour() as u32, 2);
    buf[13] = b':';
    put(&mut buf, 14, dt.minute() as u32, 2);
    buf[16] = b':';
    put(&mut buf, 17, dt.second() as u32, 2);
    TimeText::Fixed(buf)
}

/// The text of a formatted time, on the stack in the common case.
pub(crate) enum TimeText {
    Fixed([u8; 19]),
    Other(String),
}

impl TimeText {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and separators were written.
            TimeText::Fixed(buf) => std::str::from_utf8(buf).unwrap_or_default(),
            TimeText::Other(s) => s,
        }
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` exactly: 19 characters, two digits per field and four for
/// the year, so that a parsed time is written back as it came. (A `strptime` would take
/// `2016-1-7 1:2:3`, no space before the hour, or a second of 60, and write back another
/// text.)
pub(crate) fn parse_time(s: &str) -> Result<DateTime, String> {
    let bad = |why: &dyn std::fmt::Display| {
        format!(
            "invalid time '{}': expected YYYY-MM-DD HH:MM:SS ({why})",
            crate::error::shorten(s)
        )
    };
    let b = s.as_bytes();
    let shaped = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return Err(bad(&"two digits per field, four for the year"));
    }
    let field = |at: usize, width: usize| {
        b[at..at + width]
            .iter()
            .fold(0i16, |n, c| n * 10 + i16::from(c - b'0'))
    };
    // Each field has at most two digits but the year: they fit in i8.
    let small = |at: usize| field(at, 2) as i8;
    DateTime::new(
        field(0, 4),
        small(5),
        small(8),
        small(11),
        small(14),
        small(17),
        0,
    )
    .map_err(|e| bad(&e))
}

/// `DateTime` fields as `YYYY-MM-DD HH:MM:SS`.
pub(crate) mod time {
    use super::*;

    pub(crate) struct Ser<'a, T>(pub(crate) &'a T);

    impl Serialize for Ser<'_, DateTime> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(format_time(*self.0).as_str())
        }
    }

    /// Writes `"YYYY-MM-DD HH:MM:SS"`.
    pub(crate) fn write(value: &DateTime, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        json::write_time(out, *value);
        Ok(())
    }

    pub(crate) struct De<T>(pub(crate) T);

    impl<'de> Deserialize<'de> for De<DateTime> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let s = <Cow<'de, str>>::deserialize(deserializer)?;
            parse_time(&s).map(De).map_err(de::Error::custom)
        }
    }
}

/// `Option<DateTime>` fields: `null` when absent. On input, MySQL's zero date
/// `0000-00-00 00:00:00` and the empty string also mean absent.
pub(crate) mod opt_time {
    use super::*;

    pub(crate) struct Ser<'a, T>(pub(crate) &'a T);

    impl Serialize for Ser<'_, Option<DateTime>> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Some(dt) => serializer.serialize_str(format_time(*dt).as_str()),
                None => serializer.serialize_none(),
            }
        }
    }

    /// Writes the time, or `null`.
    pub(crate) fn write(
        value: &Option<DateTime>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        match value {
            Some(dt) => json::write_time(out, *dt),
            None => out.extend_from_slice(b"null"),
        }
        Ok(())
    }

    pub(crate) struct De<T>(pub(crate) T);

    impl<'de> Deserialize<'de> for De<Option<DateTime>> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let s = <Option<Cow<'de, str>>>::deserialize(deserializer)?;
            match s.as_deref() {
                None | Some("") | Some("0000-00-00 00:00:00") => Ok(De(None)),
                Some(s) => parse_time(s)
                    .map(|dt| De(Some(dt)))
                    .map_err(de::Error::custom),
            }
        }
    }
}

/// Writes a model struct with public fields, an `extra` map for unknown keys, and its serde
/// impls. Each field names its wire key, its codec module, and whether it is `required` or
/// may be missing (`default`).
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, expecting $expecting:literal {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty => $wire:literal, $codec:ident, $presence:ident;
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
            /// Keys this version of deskhook does not know, in the order they came. They are
            /// written back after the known keys, so nothing a newer sender adds is lost,
            /// with one limit of `serde_json::Value`: a number is written back as the same
            /// value (an integer that fits in 64 bits exactly; a float with the same digits,
            /// in serde_json's form: `1e2` as `100.0`), and an integer past 64 bits as the
            /// nearest float.
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                const KNOWN: usize = [$($wire),*].len();
                $crate::wire::check_extra::<S::Error>(stringify!($name), &[$($wire),*], &self.extra)?;
                let mut map = serializer.serialize_map(Some(KNOWN + self.extra.len()))?;
                $(
                    map.serialize_entry($wire, &$crate::wire::$codec::Ser(&self.$field))?;
                )*
                for (key, value) in &self.extra {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }

        impl $crate::wire::json::WriteJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
                $crate::wire::check_extra::<serde_json::Error>(
                    stringify!($name),
                    &[$($wire),*],
                    &self.extra,
                )?;
                out.push(b'{');
                let mut first = true;
                $(
                    $crate::wire::json::key(out, &mut first, concat!("\"", $wire, "\":"));
                    $crate::wire::$codec::write(&self.$field, out)?;
                )*
                $crate::wire::json::close_with_extra(out, first, &self.extra)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct StructVisitor;
                impl<'de> serde::de::Visitor<'de> for StructVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $( let mut $field: Option<$ty> = None; )*
                        let mut extra = serde_json::Map::new();
                        while let Some($crate::wire::Key(key)) = map.next_key()? {
                            match &*key {
                                $(
                                    $wire => {
                                        if $field.is_some() {
                                            return Err(serde::de::Error::duplicate_field($wire));
                                        }
                                        $field = Some(
                                            map.next_value::<$crate::wire::$codec::De<$ty>>()?.0,
                                        );
                                    }
                                )*
                                _ => {
                                    let value: serde_json::Value = map.next_value()?;
                                    if extra.insert(key.clone().into_owned(), value).is_some() {
                                        return Err(serde::de::Error::custom(
                                            format_args!(
                                                "duplicate field `{}`",
                                                crate::error::shorten(&key)
                                            ),
                                        ));
                                    }
                                }
                            }
                        }
                        Ok($name {
                            $( $field: wire_struct!(@take $field, $wire, $presence), )*
                            extra,
                        })
                    }
                }
                deserializer.deserialize_map(StructVisitor)
            }
        }
    };
    (@take $field:ident, $wire:literal, required) => {
        match $field {
            Some(value) => value,
            None => return Err(serde::de::Error::missing_field($wire)),
        }
    };
    (@take $field:ident, $wire:literal, default) => {
        $field.unwrap_or_default()
    };
}

pub(crate) use wire_struct;

/// Writes a string enum with named variants and an `Other(String)` variant that keeps any
/// value this version does not know, so parsing never fails on a new value and writing it
/// back gives the same string.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of deskhook does not know, kept as it came.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }

            /// The value for a wire string; unknown strings become `Other`.
            pub fn from_wire(s: &str) -> $name {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl $crate::wire::json::WriteJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
                $crate::wire::json::write_str(out, self.as_str());
                Ok(())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::from_wire(&s))
            }
        }
    };
}

pub(crate) use wire_enum;

/// `bool` fields written as the integers `0` / `1` (Usedesk's flags); JSON booleans and the
/// strings `"0"` / `"1"` are accepted on input and written back as integers.
pub(crate) mod int_bool {
    use super::*;

    pub(crate) struct Ser<'a, T>(pub(crate) &'a T);

    impl Serialize for Ser<'_, bool> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_u8(u8::from(*self.0))
        }
    }

    pub(crate) struct De<T>(pub(crate) T);

    impl<'de> Deserialize<'de> for De<bool> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct FlagVisitor;
            impl Visitor<'_> for FlagVisitor {
                type Value = bool;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("0 or 1")
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
                    Ok(v)
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
                    match v {
                        0 => Ok(false),
                        1 => Ok(true),
                        _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                    }
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
                    match v {
                        0 => Ok(false),
                        1 => Ok(true),
                        _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                    }
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
                    match v {
                        "0" => Ok(false),
                        "1" => Ok(true),
                        _ => Err(E::invalid_value(
                            de::Unexpected::Str(&crate::error::shorten(v)),
                            &self,
                        )),
                    }
                }
            }
            deserializer.deserialize_any(FlagVisitor).map(De)
        }
    }
}

/// Refuses an `extra` key that is one of the struct's own keys (`known`): written twice, a
/// receiver would read one or the other (most parsers keep the last, deskhook refuses the
/// body), so the field's value could be overridden unseen.
pub(crate) fn check_extra<E: serde::ser::Error>(
    name: &str,
    known: &[&str],
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), E> {
    match extra.keys().find(|key| known.contains(&key.as_str())) {
        Some(key) => Err(E::custom(format_args!(
            "{name}.extra has the key `{key}`, which is one of {name}'s own fields: set the \
             field instead, or give the extra value another key"
        ))),
        None => Ok(()),
    }
}

/// Writes a model struct of a vendor format (Usedesk, iQChannels): like [`wire_struct!`],
/// and it also remembers which keys came and in what order (`key_order`), so that a parsed
/// value is written back exactly as it came — keys the sender left out stay out, and keys
/// this version does not know go back where they were.
///
/// Each field names its wire key, its codec module, and whether it is `required` or may be
/// missing (`default`: the field takes its type's default value). A value built in code
/// (empty `key_order`) writes every field in the documented order, then `extra`. A parsed
/// value writes the keys it came with in their order, then any field that was missing but
/// now differs from its default, then `extra` keys added since.
macro_rules! wire_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, expecting $expecting:literal {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty => $wire:literal, $codec:ident, $presence:ident;
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
            /// Keys this version of deskhook does not know, in the order they came.
            pub extra: serde_json::Map<String, serde_json::Value>,
            /// Which keys came and in what order; empty for a value built in code. See
            /// [`KeyOrder`]($crate::formats::KeyOrder).
            pub key_order: $crate::formats::KeyOrder,
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                #[allow(non_camel_case_types, dead_code)]
                #[derive(Clone, Copy)]
                #[repr(u8)]
                enum Slot { $( $field, )* }
                const KNOWN: usize = [$($wire),*].len();
                const _: () = assert!(KNOWN < 64, "too many fields for the written-set");
                $crate::wire::check_extra::<S::Error>(stringify!($name), &[$($wire),*], &self.extra)?;
                let order = self.key_order.slots();
                let mut written: u64 = 0;
                let mut extra = self.extra.iter();
                let mut map = serializer.serialize_map(None)?;
                for &slot in order {
                    if slot == $crate::formats::KeyOrder::EXTRA {
                        if let Some((key, value)) = extra.next() {
                            map.serialize_entry(key, value)?;
                        }
                        continue;
                    }
                    if usize::from(slot) >= KNOWN || written & (1u64 << slot) != 0 {
                        continue;
                    }
                    written |= 1u64 << slot;
                    $(
                        if slot == Slot::$field as u8 {
                            map.serialize_entry($wire, &$crate::wire::$codec::Ser(&self.$field))?;
                            continue;
                        }
                    )*
                }
                let fresh = self.key_order.is_fresh();
                $(
                    if written & (1u64 << (Slot::$field as u8)) == 0
                        && (fresh || self.$field != <$ty as Default>::default())
                    {
                        map.serialize_entry($wire, &$crate::wire::$codec::Ser(&self.$field))?;
                    }
                )*
                for (key, value) in extra {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[allow(non_camel_case_types, dead_code)]
                #[derive(Clone, Copy)]
                #[repr(u8)]
                enum Slot { $( $field, )* }
                struct StructVisitor;
                impl<'de> serde::de::Visitor<'de> for StructVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $( let mut $field: Option<$ty> = None; )*
                        let mut extra = serde_json::Map::new();
                        let mut key_order = $crate::formats::KeyOrder::parsing();
                        while let Some($crate::wire::Key(key)) = map.next_key()? {
                            match &*key {
                                $(
                                    $wire => {
                                        if $field.is_some() {
                                            return Err(serde::de::Error::duplicate_field($wire));
                                        }
                                        $field = Some(
                                            map.next_value::<$crate::wire::$codec::De<$ty>>()?.0,
                                        );
                                        key_order.push(Slot::$field as u8);
                                    }
                                )*
                                _ => {
                                    let value: serde_json::Value = map.next_value()?;
                                    if extra.insert(key.clone().into_owned(), value).is_some() {
                                        return Err(serde::de::Error::custom(
                                            format_args!(
                                                "duplicate field `{}`",
                                                crate::error::shorten(&key)
                                            ),
                                        ));
                                    }
                                    key_order.push($crate::formats::KeyOrder::EXTRA);
                                }
                            }
                        }
                        Ok($name {
                            $( $field: $crate::wire::wire_struct!(@take $field, $wire, $presence), )*
                            extra,
                            key_order,
                        })
                    }
                }
                deserializer.deserialize_map(StructVisitor)
            }
        }
    };
}

pub(crate) use wire_object;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_with_fixed_width() {
        let dt = jiff::civil::date(2019, 6, 7).at(9, 1, 4, 999_000_000);
        assert_eq!(format_time(dt).as_str(), "2019-06-07 09:01:04");
        let dt = jiff::civil::date(12, 1, 2).at(3, 4, 5, 0);
        assert_eq!(format_time(dt).as_str(), "0012-01-02 03:04:05");
        assert_eq!(
            parse_time("2019-06-11 11:24:18").unwrap(),
            jiff::civil::date(2019, 6, 11).at(11, 24, 18, 0)
        );
    }

    #[test]
    fn bad_times_say_what_is_expected() {
        let err = parse_time("2019-06-11T11:24:18").unwrap_err();
        assert!(
            err.starts_with("invalid time '2019-06-11T11:24:18': expected YYYY-MM-DD HH:MM:SS"),
            "{err}"
        );
        assert!(parse_time("2019-02-30 00:00:00").is_err());
        // Only the exact form: what is parsed is written back as it came.
        for text in [
            "2016-1-7 1:2:3",
            "2016-12-1714:11:53",
            " 2016-12-17 14:11:53",
            "+2016-12-17 14:11:53",
            "2016-12-17 14:11:60",
            "2016-12-17 24:00:00",
            "2016-12-17 14:11:5٣",
        ] {
            let err = parse_time(text).unwrap_err();
            assert!(
                err.contains("expected YYYY-MM-DD HH:MM:SS"),
                "{text}: {err}"
            );
        }
        assert_eq!(
            format_time(parse_time("0000-01-01 00:00:00").unwrap()).as_str(),
            "0000-01-01 00:00:00"
        );
    }

    #[test]
    fn string_booleans_both_ways() {
        let t: str_bool::De<bool> = serde_json::from_str("\"true\"").unwrap();
        assert!(t.0);
        let f: str_bool::De<bool> = serde_json::from_str("false").unwrap();
        assert!(!f.0);
        assert_eq!(
            serde_json::to_string(&str_bool::Ser(&true)).unwrap(),
            "\"true\""
        );
        assert_eq!(
            serde_json::to_string(&str_bool::Ser(&false)).unwrap(),
            "\"false\""
        );
        let err = serde_json::from_str::<str_bool::De<bool>>("\"yes\"")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("expected \"true\" or \"false\""),
            "{err}"
        );
    }

    #[test]
    fn optional_times_accept_the_mysql_zero_date() {
        let none: opt_time::De<Option<DateTime>> =
            serde_json::from_str("\"0000-00-00 00:00:00\"").unwrap();
        assert_eq!(none.0, None);
        let null: opt_time::De<Option<DateTime>> = serde_json::from_str("null").unwrap();
        assert_eq!(null.0, None);
        assert_eq!(
            serde_json::to_string(&opt_time::Ser(&None::<DateTime>)).unwrap(),
            "null"
        );
    }
}
