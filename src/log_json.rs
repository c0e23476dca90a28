//! The JSON log format: one object per line, `{"timestamp", "level", "target", "fields":
//! {...}}` as tracing-subscriber writes it, but with numbers as numbers and lists as
//! arrays. tracing passes every field either typed (integers, floats, booleans, strings)
//! or through `Debug`; a list logged with [`list`] is recorded as its JSON text, and
//! embedded as an array (its items are JSON strings, so nothing else is taken for one).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Marks a list field: `tracing::info!(udp = ?list(&addrs), ...)` is written
/// `udp=["127.0.0.1:3478"]` in text logs and as a JSON array in JSON logs.
pub fn list<T: fmt::Display>(items: &[T]) -> List<'_, T> {
    List(items)
}

/// See [`list`].
pub struct List<'a, T>(&'a [T]);

/// What starts a list's `Debug` text: a private-use character no other field value
/// begins with, so that only [`list`] values become arrays. Both formats strip it.
pub(crate) const MARK: char = '\u{E000}';

impl<T: fmt::Display> fmt::Debug for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<Value> = self
            .0
            .iter()
            .map(|i| Value::String(i.to_string()))
            .collect();
        write!(f, "{MARK}{}", Value::Array(items))
    }
}

/// The field formatter of text logs: tracing's `name=value` pairs, with [`list`]'s
/// mark removed.
pub(crate) fn text_fields() -> impl for<'w> FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = text.strip_prefix(MARK).unwrap_or(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// The JSON event formatter.
pub struct Json;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let value = match text.strip_prefix(MARK) {
            Some(json) => serde_json::from_str(json).unwrap_or(Value::String(json.into())),
            None => Value::String(text),
        };
        self.0.insert(field.name().into(), value);
    }
}

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(
                humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            ),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("fields".into(), Value::Object(fields.0));
        line.insert("target".into(), Value::String(meta.target().into()));
        writeln!(writer, "{}", Value::Object(line))
    }
}
