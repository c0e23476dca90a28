//! The machinery behind the declaration table ([`schema`](super::schema)):
//! the [`section!`] macro and the [`Setting`] descriptor it produces.
//!
//! One `section!` invocation declares one configuration section (a struct
//! such as `RelayConfig`) and, for each of its settings, in one place: the
//! field with its documentation and type, the default, the TOML key, the
//! [kind](super::kind) (how the value is parsed and checked), and the flag,
//! its environment variable and help text. From it the macro generates the
//! struct, its `Default` (the defaults), its `Debug` (secrets redacted) and
//! `SETTINGS`, the table the TOML walker, the clap command and the
//! environment use. A section may embed a type of the core (`core limits:
//! Limits { ... }`): the struct then holds the core's value itself, filled
//! in field by field from the same kind of entries, so the configuration
//! never has to be mapped to it by hand.

use super::kind::{At, Raw, Shape};
use super::{Config, ConfigError, ValueError};

/// One setting: its TOML key, its flag (if it has one) and how to store a
/// value read from either into a [`Config`].
pub(crate) struct Setting {
    /// The dotted TOML key (e.g. `relay.max_bps`).
    pub(crate) key: &'static str,
    /// The command-line flag and environment variable, if any.
    pub(crate) flag: Option<Flag>,
    /// The shape of the flag's value.
    pub(crate) shape: Shape,
    /// Parses a TOML value into its field.
    pub(crate) toml: fn(&mut Config, &At<'_>, &toml::Value) -> Result<(), ConfigError>,
    /// Parses a flag's or environment variable's value into its field.
    pub(crate) text: fn(&mut Config, &Raw) -> Result<(), ValueError>,
    /// A secret (redacted in `Debug` and by `ternd config show`).
    pub(crate) secret: bool,
    /// Its value in `config`, as the TOML file writes it (`ternd config show`).
    pub(crate) show: fn(&Config) -> toml::Value,
}

/// A setting's command-line flag.
pub(crate) struct Flag {
    /// `--long` without the dashes.
    pub(crate) long: &'static str,
    /// The placeholder in `--help`.
    pub(crate) value_name: &'static str,
    /// The environment variable (`TERND_` and the flag in upper case).
    pub(crate) env: &'static str,
    /// The help text.
    pub(crate) help: &'static str,
    /// A secret: its environment value is not shown in `--help`, and it is
    /// redacted in `Debug` output.
    pub(crate) secret: bool,
}

/// Declares a configuration section; see the [module documentation](self).
///
/// ```text
/// section! {
///     /// Docs of the struct.
///     #[derive(Clone, PartialEq)]
///     pub struct RelayConfig at [.relay] prefix "relay." {
///         /// Docs of the field.
///         field (secret)?: Type {
///             default: EXPR,
///             key: "toml_key",
///             kind: KIND,
///             (flag: "long-flag", "VALUE_NAME", "TERND_LONG_FLAG",
///             help: "help text",)?
///         }
///     }
///     (core /// docs
///     name: CoreType { entries as above })?
///     (extra { /// docs
///     name: Type = DEFAULT; })?
/// }
/// ```
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $Name:ident at $access:tt prefix $prefix:literal {
            $(
                $(#[$fmeta:meta])*
                $field:ident $(($secret:ident))? : $ty:ty { $($spec:tt)* }
            )*
        }
        $(
            core
            $(#[$cmeta:meta])*
            $cfield:ident : $Core:ident {
                $(
                    $cf:ident : $cty:ty { $($cspec:tt)* }
                )*
            }
        )?
        $(
            extra {
                $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty = $xdefault:expr; )*
            }
        )?
    ) => {
        $(#[$meta])*
        pub struct $Name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $(#[$cmeta])* pub $cfield: $Core, )?
            $( $( $(#[$xmeta])* pub $xfield: $xty, )* )?
        }

        impl Default for $Name {
            fn default() -> Self {
                $Name {
                    $( $field: $crate::config::declare::default!($($spec)*), )*
                    $( $cfield: $Core {
                        $( $cf: $crate::config::declare::default!($($cspec)*), )*
                    }, )?
                    $( $( $xfield: $xdefault, )* )?
                }
            }
        }

        impl ::std::fmt::Debug for $Name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($Name))
                    $( .field(
                        stringify!($field),
                        $crate::config::declare::debug!(self.$field $(, $secret)?),
                    ) )*
                    $( .field(stringify!($cfield), &self.$cfield) )?
                    $( $( .field(stringify!($xfield), &self.$xfield) )* )?
                    .finish()
            }
        }

        impl $Name {
            /// The settings of this section, in `--help` order.
            pub(crate) const SETTINGS: &'static [$crate::config::declare::Setting] = &[
                $( $crate::config::declare::setting!(
                    $access [.$field] $prefix [$($secret)?] $($spec)*
                ), )*
                $( $( $crate::config::declare::setting!(
                    $access [.$cfield .$cf] $prefix [] $($cspec)*
                ), )* )?
            ];
        }
    };
}

/// The `default:` of an entry.
macro_rules! default {
    (default: $default:expr, $($rest:tt)*) => {
        $default
    };
}

/// A field's `Debug` value: secrets as `<N redacted>`.
macro_rules! debug {
    ($value:expr) => {
        &$value
    };
    ($value:expr, secret) => {
        &$crate::config::Secret::shown(&$value)
    };
}

/// The [`Setting`] of an entry.
macro_rules! setting {
    (
        [$($section:tt)*] [$($field:tt)*] $prefix:literal [$($secret:ident)?]
        default: $default:expr,
        key: $key:literal,
        kind: $kind:expr,
        $(flag: $long:literal, $value_name:literal, $env:literal, help: $help:expr,)?
    ) => {
        $crate::config::declare::Setting {
            key: concat!($prefix, $key),
            flag: $crate::config::declare::flag!(
                $($long, $value_name, $env, $help)? ; $($secret)?
            ),
            shape: $crate::config::kind::shape_of(&$kind),
            toml: |c, at, v| {
                c $($section)* $($field)* = $crate::config::kind::Kind::toml(&$kind, at, v)?;
                Ok(())
            },
            text: |c, raw| {
                c $($section)* $($field)* = $crate::config::kind::Kind::text(&$kind, raw)?;
                Ok(())
            },
            secret: $crate::config::declare::flag!(@secret $($secret)?),
            show: |c| $crate::config::render::ToToml::to_toml(&c $($section)* $($field)*),
        }
    };
}

/// The [`Flag`] of an entry, if it has one.
macro_rules! flag {
    (; $($secret:ident)?) => {
        None
    };
    ($long:literal, $value_name:literal, $env:literal, $help:expr ; $($secret:ident)?) => {
        Some($crate::config::declare::Flag {
            long: $long,
            value_name: $value_name,
            env: $env,
            help: $help,
            secret: $crate::config::declare::flag!(@secret $($secret)?),
        })
    };
    (@secret) => {
        false
    };
    (@secret secret) => {
        true
    };
}

pub(crate) use {debug, default, flag, section, setting};
