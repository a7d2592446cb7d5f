//! The log's line format: tracing-subscriber's full format (time, level, spans, target,
//! fields), with the request a line was written in.
//!
//! The request is not a span: a span formats its fields when it opens, whether or not
//! anything is logged in it, and opening and closing one cost a tenth of a key check.
//! The security middleware puts the request's id, method and path in a task-local
//! (`crate::http::REQUEST`) instead, and a line written while it serves the request starts with
//! `request{request_id=… method=… path=…}:` as a span's would. Fields are written
//! `name=value`; anything that is not plain text (spaces, quotes, control characters,
//! other types) as `Debug`, quoted and escaped, so a value cannot forge a line.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::http::REQUEST;

/// The full format, with the request (see the module's documentation).
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut w)?;
        write!(w, " {:>5} ", event.metadata().level())?;
        let mut scoped = false;
        let _ = REQUEST.try_with(|r| {
            scoped = true;
            write!(w, "request{{request_id={} method=", r.id)?;
            write_value(&mut w, r.method.as_str())?;
            w.write_str(" path=")?;
            write_value(&mut w, crate::http::loggable_path(&r.uri))?;
            w.write_str("}:")
        });
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                w.write_str(span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(w, "{{{fields}}}")?;
                    }
                }
                w.write_char(':')?;
                scoped = true;
            }
        }
        if scoped {
            w.write_char(' ')?;
        }
        write!(w, "{}: ", event.metadata().target())?;
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// One JSON object per line (`KEYWARD_LOG_FORMAT=json`), for log collectors: `time`
/// (RFC 3339, UTC), `level`, `target`, `message` and the event's other fields, the
/// request's `request_id`, `method` and `path` when the line was written while serving
/// one, and `spans` (names and fields of the spans it was written in). serde_json
/// escapes every value, so no value can forge a line.
pub struct JsonFormat;

#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("time".into(), time.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        let _ = REQUEST.try_with(|r| {
            line.insert("request_id".into(), r.id.as_str().into());
            line.insert("method".into(), r.method.as_str().into());
            line.insert("path".into(), crate::http::loggable_path(&r.uri).into());
        });
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> = scope
                .from_root()
                .map(|span| {
                    let fields = span
                        .extensions()
                        .get::<FormattedFields<N>>()
                        .map(|f| f.to_string())
                        .unwrap_or_default();
                    serde_json::json!({ "name": span.name(), "fields": fields })
                })
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), spans.into());
            }
        }
        for (k, v) in fields.0 {
            // The line's own keys are not overwritten by a field of the same name.
            line.entry(k).or_insert(v);
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(w, "{text}")
    }
}

/// How log lines are written (`KEYWARD_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `time level request{…}: target: message name=value…` (the default).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `KEYWARD_LOG_FORMAT`: `text` (or unset) or `json`; anything else is an error
    /// naming the variable.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("KEYWARD_LOG_FORMAT") {
            Err(_) => Ok(Self::Text),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "text" => Ok(Self::Text),
                "json" => Ok(Self::Json),
                _ => Err(format!(
                    "KEYWARD_LOG_FORMAT must be text or json, not {:?}",
                    v.chars().take(40).collect::<String>()
                )),
            },
        }
    }
}

/// Installs the subscriber: `KEYWARD_LOG` (an `EnvFilter`; default info), to stderr,
/// plain text (no colour codes) or JSON lines (`format`).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(Fields)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.event_format(LineFormat).init(),
        LogFormat::Json => builder.event_format(JsonFormat).init(),
    }
}

/// `name=value` fields separated by spaces; an event's message first, unnamed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields;

pub struct FieldWriter<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl<'a> MakeVisitor<Writer<'a>> for Fields {
    type Visitor = FieldWriter<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> FieldWriter<'a> {
        FieldWriter {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// A field's value: as it is when [`plain`], else quoted with every control, invisible
/// or direction-changing character escaped (Rust's `Debug` for text).
fn write_value(w: &mut Writer<'_>, value: &str) -> fmt::Result {
    if plain(value) {
        w.write_str(value)
    } else {
        write!(w, "{value:?}")
    }
}

/// A message: unquoted, but every character that could end the line, move the cursor,
/// colour the terminal or reverse the text's direction is written as its `\u{…}` escape.
fn write_message(w: &mut Writer<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if risky(c) {
            write!(w, "{}", c.escape_unicode())?;
        } else {
            w.write_char(c)?;
        }
    }
    Ok(())
}

/// Control characters (C0, DEL, C1 such as NEL), line and paragraph separators, and
/// the bidirectional marks, embeddings, overrides and isolates.
fn risky(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Text that needs no quoting: printable ASCII without spaces, quotes, backslashes or
/// braces (a brace could close the `request{…}:` prefix and fake what follows).
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'{' | b'}'))
}

impl FieldWriter<'_> {
    fn start(&mut self, field: &Field) -> fmt::Result {
        if self.first {
            self.first = false;
        } else {
            self.writer.write_char(' ')?;
        }
        if field.name() == "message" {
            Ok(())
        } else {
            self.writer.write_str(field.name())?;
            self.writer.write_char('=')
        }
    }

    fn str_field(&mut self, field: &Field, value: &str) -> fmt::Result {
        self.start(field)?;
        if field.name() == "message" {
            write_message(&mut self.writer, value)
        } else {
            write_value(&mut self.writer, value)
        }
    }

    /// A value given as `Debug` or `Display` (`?x`, `%x`, a message's format arguments)
    /// is formatted first, then written like text: a `Display` value would otherwise
    /// reach the line as it is, line breaks and terminal escapes included.
    fn debug_field(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        let text = format!("{value:?}");
        self.str_field(field, &text)
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.str_field(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.debug_field(field, value);
        }
    }
}

impl VisitOutput<fmt::Result> for FieldWriter<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for FieldWriter<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::{plain, risky};

    #[test]
    fn characters_that_could_forge_or_hide_a_line_are_risky() {
        for c in [
            '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}',
            '\u{2066}',
        ] {
            assert!(risky(c), "{c:?}");
        }
        for c in ['a', ' ', '"', 'é', '€', '/'] {
            assert!(!risky(c), "{c:?}");
        }
        // A value that is not plain is written as Rust's Debug of text, which escapes
        // the same characters.
        for c in ['\n', '\u{1b}', '\u{85}', '\u{2028}', '\u{202e}', '\u{2066}'] {
            let shown = format!("{:?}", c.to_string());
            assert!(shown.contains("\\"), "{shown}");
        }
    }

    #[test]
    fn only_printable_text_without_quotes_or_spaces_is_written_unquoted() {
        assert!(plain("nmaeq7VeQo4jsA_H"));
        assert!(plain("/api/v1/whoami"));
        assert!(!plain(""));
        assert!(!plain("two words"));
        assert!(!plain("line\nforged=1"));
        assert!(!plain("say \"hi\""));
        assert!(!plain("back\\slash"));
        assert!(!plain("café"));
        assert!(!plain("/x}:keyward_core::identity::sign_in:"));
    }
}
