//! The log's line format: tracing-subscriber's, with a field writer that writes plain
//! values (a request id, a method, a path) as they are, without the formatting machinery
//! the default writer runs for every field. Every request opens a span with three
//! fields, formatted as it opens whether or not anything is logged in it: that cost is
//! on the key check's hot path. Anything that is not plain (spaces, quotes, control
//! characters, other types) is written as `Debug`, quoted and escaped, as by default,
//! so a value cannot forge a log line.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// Installs the subscriber: `KEYWARD_LOG` (an `EnvFilter`; default info), to stderr,
/// colours only for a person at a terminal.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn")
            }),
        )
        .fmt_fields(Fields)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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

/// Text that needs no quoting: printable ASCII without spaces, quotes or backslashes.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
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
        if plain(value) {
            self.writer.write_str(value)
        } else {
            write!(self.writer, "{value:?}")
        }
    }

    fn debug_field(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        self.start(field)?;
        write!(self.writer, "{value:?}")
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
    use super::plain;

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
    }
}
