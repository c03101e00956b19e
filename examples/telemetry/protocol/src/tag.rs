//! Zero-sized markers for the constant `action`/`type` field of each message:
//! they serialize as their string and refuse any other string, so one struct
//! is one message (serde's tagged enums need an allocator).

macro_rules! tags {
    ($($(#[$doc:meta])* $name:ident => $value:literal,)*) => {
        /// The constant `action`/`type` values, one zero-sized type each.
        pub mod tags {
            $(
                $(#[$doc])*
                #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
                pub struct $name;

                impl $name {
                    /// The string on the wire.
                    pub const VALUE: &'static str = $value;
                }

                impl serde::Serialize for $name {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        s.serialize_str($value)
                    }
                }

                impl<'de> serde::Deserialize<'de> for $name {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct Visitor;
                        impl serde::de::Visitor<'_> for Visitor {
                            type Value = $name;
                            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                                f.write_str(concat!("the string \"", $value, "\""))
                            }
                            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                                if v == $value {
                                    Ok($name)
                                } else {
                                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                                }
                            }
                        }
                        d.deserialize_str(Visitor)
                    }
                }
            )*
        }
    };
}

tags! {
    /// `"action":"RealTimeDataUpdate"`
    RealTimeDataUpdate => "RealTimeDataUpdate",
    /// `"action":"ControlAck"`
    ControlAck => "ControlAck",
    /// `"action":"ControlCmd"`
    ControlCmd => "ControlCmd",
    /// `"type":"control"`
    Control => "control",
    /// `"type":"interval"`
    Interval => "interval",
    /// `"type":"reading"`
    Reading => "reading",
    /// `"type":"control_ack"`
    ControlAckNotice => "control_ack",
    /// `"type":"error"`
    Error => "error",
}
