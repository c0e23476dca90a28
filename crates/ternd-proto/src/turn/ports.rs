//! The relay port range, a core type the configuration parses into.

use std::fmt;
use std::str::FromStr;

/// An inclusive range of UDP/TCP ports, written `LO-HI` (e.g. `49152-65535`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port of the range (at least 1).
    pub lo: u16,
    /// Last port of the range (not below `lo`).
    pub hi: u16,
}

impl Default for PortRange {
    /// The IANA dynamic range, `49152-65535`.
    fn default() -> Self {
        PortRange {
            lo: 49152,
            hi: 65535,
        }
    }
}

/// Error returned when parsing a [`PortRange`] fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParsePortRangeError {
    /// Not of the form `LO-HI` with two port numbers.
    #[error("invalid port range `{0}` (expected LO-HI, e.g. 49152-65535)")]
    Syntax(String),
    /// One of the ports is 0.
    #[error("port 0 is not allowed in a port range ({0})")]
    ZeroPort(String),
    /// `lo` is greater than `hi`.
    #[error("port range inverted ({lo}-{hi})")]
    Inverted {
        /// The first number given.
        lo: u16,
        /// The second number given.
        hi: u16,
    },
}

impl PortRange {
    /// Number of ports in the range.
    pub fn len(&self) -> usize {
        if self.hi < self.lo {
            0
        } else {
            usize::from(self.hi) - usize::from(self.lo) + 1
        }
    }

    /// Whether the range holds no port (never true for a parsed range).
    pub fn is_empty(&self) -> bool {
        self.hi < self.lo
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = ParsePortRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let syntax = || ParsePortRangeError::Syntax(s.to_owned());
        let (lo, hi) = t.split_once('-').ok_or_else(syntax)?;
        let lo: u16 = lo.trim().parse().map_err(|_| syntax())?;
        let hi: u16 = hi.trim().parse().map_err(|_| syntax())?;
        if lo == 0 || hi == 0 {
            return Err(ParsePortRangeError::ZeroPort(t.to_owned()));
        }
        if lo > hi {
            return Err(ParsePortRangeError::Inverted { lo, hi });
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}
