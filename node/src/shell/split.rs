//! Splitting shell input into statements and backslash commands.
//!
//! A statement ends at a `;` outside a single-quoted string (with `''` escapes, or backslash
//! escapes after an `E` prefix), a double-quoted identifier, a dollar-quoted string
//! (`$$...$$`, `$tag$...$tag$`), a `--` line comment, and a `/* */` block comment (which nests,
//! as in PostgreSQL). A backslash command (`\d users`) is recognised where a statement could
//! begin, that is when nothing but whitespace and comments came since the last `;`, and runs to
//! the end of its line.
//!
//! The scanner is byte-based: every character it cares about is ASCII, and UTF-8 never reuses
//! ASCII bytes inside multi-byte characters, so ranges always fall on character boundaries.

use std::ops::Range;

/// One complete piece of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// A statement ended by `;`: from its first character that is not whitespace or a comment
    /// to just before the `;`, trailing whitespace removed.
    Statement(Range<usize>),
    /// A backslash command: from the `\` to the end of its line, trailing whitespace removed.
    Command(Range<usize>),
}

/// The unfinished end of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rest {
    /// Where it starts: the first statement character if `has_content`, else the start of the
    /// open comment.
    pub start: usize,
    /// True if it holds statement text (a statement without its `;`, perhaps inside an open
    /// string), false if it is only an unclosed block comment.
    pub has_content: bool,
}

/// The input cut into complete chunks, and what is left over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Complete statements and commands, in input order.
    pub chunks: Vec<Chunk>,
    /// The unfinished end; `None` when only whitespace and closed comments follow the last chunk.
    pub rest: Option<Rest>,
}

/// Splits `text` into statements and backslash commands.
pub fn split(text: &str) -> Split {
    Scanner {
        bytes: text.as_bytes(),
        pos: 0,
    }
    .run()
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// How a scan of a quoted or commented region ended.
enum Region {
    Closed,
    Open,
}

impl Scanner<'_> {
    fn run(mut self) -> Split {
        let mut chunks = Vec::new();
        // Start of the current statement's first content byte, if it has any yet.
        let mut content_start: Option<usize> = None;
        // End of the last content byte, for trimming trailing whitespace.
        let mut content_end = 0;
        loop {
            let Some(&byte) = self.bytes.get(self.pos) else {
                let rest = content_start.map(|start| Rest {
                    start,
                    has_content: true,
                });
                return Split { chunks, rest };
            };
            let region_start = self.pos;
            let region = match byte {
                b';' => {
                    if let Some(start) = content_start.take() {
                        chunks.push(Chunk::Statement(start..content_end));
                    }
                    self.pos += 1;
                    continue;
                }
                b'\\' if content_start.is_none() => {
                    let end = self.line_end();
                    let text = &self.bytes[region_start..end];
                    let trimmed = text.len() - trailing_whitespace(text);
                    chunks.push(Chunk::Command(region_start..region_start + trimmed));
                    self.pos = end;
                    continue;
                }
                b'-' if self.peek(1) == Some(b'-') => {
                    self.pos = self.line_end();
                    continue;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    if let Region::Open = self.block_comment() {
                        let rest = match content_start {
                            Some(start) => Rest {
                                start,
                                has_content: true,
                            },
                            None => Rest {
                                start: region_start,
                                has_content: false,
                            },
                        };
                        return Split {
                            chunks,
                            rest: Some(rest),
                        };
                    }
                    continue;
                }
                b if b.is_ascii_whitespace() => {
                    self.pos += 1;
                    continue;
                }
                b'\'' => {
                    let escapes = self.follows_escape_prefix();
                    self.pos += 1;
                    self.quoted(b'\'', escapes)
                }
                b'"' => {
                    self.pos += 1;
                    self.quoted(b'"', false)
                }
                b'$' => match self.dollar_tag() {
                    Some(tag_len) => self.dollar_quoted(tag_len),
                    None => {
                        self.pos += 1;
                        Region::Closed
                    }
                },
                _ => {
                    self.pos += 1;
                    Region::Closed
                }
            };
            let start = *content_start.get_or_insert(region_start);
            if let Region::Open = region {
                return Split {
                    chunks,
                    rest: Some(Rest {
                        start,
                        has_content: true,
                    }),
                };
            }
            content_end = self.pos;
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// The end of the current line (the position of its `\n`, or the end of input).
    fn line_end(&self) -> usize {
        self.bytes[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |offset| self.pos + offset)
    }

    /// Skips a block comment starting at `pos` (on `/*`), counting nested ones.
    fn block_comment(&mut self) -> Region {
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            match (self.bytes[self.pos], self.peek(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.pos += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.pos += 2;
                    if depth == 0 {
                        return Region::Closed;
                    }
                }
                _ => self.pos += 1,
            }
        }
        Region::Open
    }

    /// True if the quote at `pos` opens an escape string: `E'...'`, with the `E` not the end
    /// of a longer word.
    fn follows_escape_prefix(&self) -> bool {
        self.pos >= 1
            && matches!(self.bytes[self.pos - 1], b'e' | b'E')
            && (self.pos < 2 || !is_identifier_byte(self.bytes[self.pos - 2]))
    }

    /// Skips the body of a quoted string or identifier (`pos` just after the opening quote).
    /// A doubled quote stands for one; with `backslash_escapes`, `\` escapes the next byte.
    fn quoted(&mut self, quote: u8, backslash_escapes: bool) -> Region {
        while let Some(&byte) = self.bytes.get(self.pos) {
            self.pos += 1;
            if backslash_escapes && byte == b'\\' {
                self.pos += 1;
            } else if byte == quote {
                if self.bytes.get(self.pos) == Some(&quote) {
                    self.pos += 1;
                } else {
                    return Region::Closed;
                }
            }
        }
        self.pos = self.bytes.len();
        Region::Open
    }

    /// If a dollar-quote opening tag (`$$` or `$name$`) starts at `pos`, its length. A `$` right
    /// after an identifier character is part of that identifier, and `$1` is a parameter.
    fn dollar_tag(&self) -> Option<usize> {
        if self.pos > 0 && is_identifier_byte(self.bytes[self.pos - 1]) {
            return None;
        }
        let after = &self.bytes[self.pos + 1..];
        let name_len = after
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
            .count();
        if name_len > 0 && after[0].is_ascii_digit() {
            return None;
        }
        (after.get(name_len) == Some(&b'$')).then_some(name_len + 2)
    }

    /// Skips a dollar-quoted string whose opening tag of `tag_len` bytes starts at `pos`.
    fn dollar_quoted(&mut self, tag_len: usize) -> Region {
        let tag = &self.bytes[self.pos..self.pos + tag_len];
        let body_start = self.pos + tag_len;
        match self.bytes[body_start..]
            .windows(tag_len)
            .position(|window| window == tag)
        {
            Some(offset) => {
                self.pos = body_start + offset + tag_len;
                Region::Closed
            }
            None => {
                self.pos = self.bytes.len();
                Region::Open
            }
        }
    }
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

fn trailing_whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `split` makes of `input`: statements as `S:text`, commands as `C:text`, and the rest
    /// as `R:text` (with content) or `O:text` (only an open comment).
    fn check(input: &str, expected: &[&str]) {
        let split = split(input);
        let mut actual: Vec<String> = split
            .chunks
            .iter()
            .map(|chunk| match chunk {
                Chunk::Statement(r) => format!("S:{}", &input[r.clone()]),
                Chunk::Command(r) => format!("C:{}", &input[r.clone()]),
            })
            .collect();
        if let Some(rest) = split.rest {
            let tag = if rest.has_content { "R" } else { "O" };
            actual.push(format!("{tag}:{}", &input[rest.start..]));
        }
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn test_statements_end_at_semicolons() {
        check("select 1; select 2;", &["S:select 1", "S:select 2"]);
        check("  select 1 ;\n\n", &["S:select 1"]);
        check("select 1", &["R:select 1"]);
        check("select 1;\nselect", &["S:select 1", "R:select"]);
        check("", &[]);
        check(" \n\t", &[]);
    }

    #[test]
    fn test_empty_statements_are_dropped() {
        check(";;  ; select 1;;", &["S:select 1"]);
    }

    #[test]
    fn test_semicolons_inside_strings_and_identifiers_do_not_split() {
        check("select 'a;b', \"c;d\";", &["S:select 'a;b', \"c;d\""]);
        check("select 'it''s; fine';", &["S:select 'it''s; fine'"]);
        check("select \"a\"\";b\";", &["S:select \"a\"\";b\""]);
        check("select 'open;", &["R:select 'open;"]);
        check("select \"open;\n", &["R:select \"open;\n"]);
    }

    #[test]
    fn test_escape_strings_take_backslash_escapes() {
        check(r"select E'a\';b';", &[r"S:select E'a\';b'"]);
        check(r"select e'\\'; x", &[r"S:select e'\\'", "R:x"]);
        // Without the prefix a backslash is an ordinary character.
        check(r"select 'a\'; x", &[r"S:select 'a\'", "R:x"]);
        // `E` ending a longer word is not a prefix.
        check(r"select type'a\'; x", &[r"S:select type'a\'", "R:x"]);
    }

    #[test]
    fn test_dollar_quotes() {
        check("select $$a;b$$;", &["S:select $$a;b$$"]);
        check("select $fn$ $$; $fn$;", &["S:select $fn$ $$; $fn$"]);
        check("select $x$ open;", &["R:select $x$ open;"]);
        // Parameters and `$` inside identifiers are not quotes.
        check("select $1; select $2;", &["S:select $1", "S:select $2"]);
        check("select a$b$; x", &["S:select a$b$", "R:x"]);
    }

    #[test]
    fn test_comments() {
        check("select 1 -- one; two\n;", &["S:select 1"]);
        check("-- only a comment\n", &[]);
        check("-- lead\nselect 1;", &["S:select 1"]);
        check("select /* ; */ 1;", &["S:select /* ; */ 1"]);
        check("select /* /* ; */ ; */ 1;", &["S:select /* /* ; */ ; */ 1"]);
        check("/* open ;", &["O:/* open ;"]);
        check("select 1; /* open", &["S:select 1", "O:/* open"]);
        check("select /* open", &["R:select /* open"]);
        // A single `-` or `/` is an operator.
        check("select 2-1/1;", &["S:select 2-1/1"]);
    }

    #[test]
    fn test_backslash_commands_where_a_statement_could_begin() {
        check("\\d users  \nselect 1;", &["C:\\d users", "S:select 1"]);
        check("select 1; \\timing\n", &["S:select 1", "C:\\timing"]);
        check("\\q", &["C:\\q"]);
        // Inside a statement a backslash is statement text.
        check("select \\d;", &["S:select \\d"]);
        check("select 1\n\\q\n", &["R:select 1\n\\q\n"]);
    }

    #[test]
    fn test_multibyte_text() {
        check(
            "select 'ä;ö'; select \"名前\";",
            &["S:select 'ä;ö'", "S:select \"名前\""],
        );
        check("select é$$;$$;", &["S:select é$$", "R:$$;"]);
    }
}
