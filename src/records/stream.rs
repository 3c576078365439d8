//! Record streams: reading numbered records line by line, writing JSON Lines.

use std::fmt;
use std::io::{self, BufRead, Write};

use super::Record;

/// A record stream could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// Reading failed.
    Io(io::Error),
    /// Line `line` is not a valid record.
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Io(e) => write!(f, "reading records: {e}"),
            RecordError::Invalid { line, message } => write!(f, "input line {line}: {message}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Reads records line by line, skipping blank lines, and numbers them from 1.
pub struct RecordReader<R> {
    input: R,
    line: usize,
    buf: String,
}

impl<R: BufRead> RecordReader<R> {
    /// Read records from `input`.
    pub fn new(input: R) -> Self {
        RecordReader {
            input,
            line: 0,
            buf: String::new(),
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<(usize, Record), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(RecordError::Io(e))),
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return Some(
                Record::from_json(text)
                    .map(|r| (self.line, r))
                    .map_err(|message| RecordError::Invalid {
                        line: self.line,
                        message,
                    }),
            );
        }
    }
}

/// Writes records as JSON Lines. Flushes after every `period_end` so a downstream stage sees
/// complete periods as soon as they exist.
pub struct RecordWriter<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> RecordWriter<W> {
    /// Write records to `out`.
    pub fn new(out: W) -> Self {
        RecordWriter {
            out: io::BufWriter::with_capacity(64 * 1024, out),
        }
    }

    /// Write one record and a newline.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.out.write_all(record.to_json().as_bytes())?;
        self.out.write_all(b"\n")?;
        if matches!(record, Record::PeriodEnd(_)) {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flush what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The buffered output, for a stage that writes its own already-serialized record lines
    /// (each one JSON object, `kind` first, and a newline).
    pub fn raw(&mut self) -> &mut impl Write {
        &mut self.out
    }
}
