//! The environment a configuration is loaded from: the process environment merged over a `.env` file.
//!
//! As in the reference (`godotenv.Load`), a variable present in the process environment wins over the
//! file, even when it is empty, and a missing file is fine. Unlike the reference, a malformed file is an
//! error naming the file and the line (its content is not echoed: it may hold the wallet key). Within
//! the file, the last assignment of a variable wins (as godotenv). The syntax is dotenvy's: `NAME=value`,
//! optional `export`, single or double quotes, `#` comments and `${NAME}` substitutions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, DotEnvKey};

/// The file read when no other is named: `.env` in the current directory.
pub const DEFAULT_DOTENV: &str = ".env";

/// The process environment merged over a `.env` file (`path`, or `.env` in the current directory when
/// `None`). A missing file adds nothing; an unreadable or malformed one is an error.
///
/// Values that are not valid UTF-8 are kept with replacement characters, so that a variable of ours
/// fails validation by name instead of vanishing.
pub fn env_with_dotenv(path: Option<&Path>) -> Result<HashMap<String, String>, ConfigError> {
    let process = std::env::vars_os()
        .map(|(key, value)| (key.to_string_lossy().into_owned(), value.to_string_lossy().into_owned()));
    merge_dotenv(path.unwrap_or(Path::new(DEFAULT_DOTENV)), process)
}

/// [`env_with_dotenv`] with the process environment given: `process` wins over the file at `path`.
pub fn merge_dotenv(
    path: &Path,
    process: impl IntoIterator<Item = (String, String)>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut env = read_dotenv(path)?;
    env.extend(process);
    Ok(env)
}

/// The variables of a `.env` file; empty when the file does not exist.
pub fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(source) => return Err(ConfigError::DotEnvRead { path: path.to_owned(), source }),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut vars = HashMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            Err(dotenvy::Error::Io(source)) => {
                return Err(ConfigError::DotEnvRead { path: path.to_owned(), source });
            }
            Err(_) => return Err(locate_syntax_error(path, text)),
        }
    }
    Ok(vars)
}

const EXPECTED_ASSIGNMENT: &str = "expected NAME=value (NAME made of letters, digits, '_' and '.')";

/// Finds the first malformed entry of `text` by parsing it one logical entry at a time (an entry spans
/// several lines while a quote is open) and describes it without its content.
fn locate_syntax_error(path: &Path, text: &str) -> ConfigError {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let error = |start: usize, reason: &'static str| ConfigError::DotEnvSyntax {
        path: PathBuf::from(path),
        line: start + 1,
        key: DotEnvKey(lines.get(start).and_then(|line| key_of(line))),
        reason,
    };
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        loop {
            let chunk = lines[start..end].concat();
            match first_error(&chunk) {
                None => break,
                // The chunk may end inside a quoted value: read on, unless the file ends here.
                Some((content, index)) if content == chunk && index == content.len() => {
                    if end == lines.len() {
                        return if chunk.contains(['"', '\'']) || chunk.trim_end().ends_with('\\') {
                            error(start, "unterminated value: a quote is opened and never closed")
                        } else {
                            error(start, EXPECTED_ASSIGNMENT)
                        };
                    }
                    end += 1;
                }
                Some((content, _)) => {
                    let line = chunk.trim_end_matches(['\n', '\r']);
                    return if content == line {
                        error(start, EXPECTED_ASSIGNMENT)
                    } else {
                        error(start, "malformed value: check its quotes, escapes and ${...} substitutions")
                    };
                }
            }
        }
        start = end;
    }
    // The whole file failed but no entry does on its own: blame the end of the file.
    error(lines.len().saturating_sub(1), "malformed file")
}

/// The first parse error of `chunk` as (offending text, index in it), if any.
fn first_error(chunk: &str) -> Option<(String, usize)> {
    dotenvy::from_read_iter(chunk.as_bytes()).find_map(|item| match item {
        Err(dotenvy::Error::LineParse(content, index)) => Some((content, index)),
        Err(_) => Some((String::new(), 0)),
        Ok(_) => None,
    })
}

/// The variable a line assigns (`NAME=…` or `export NAME=…`), when it can be told.
fn key_of(line: &str) -> Option<String> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let starts_well = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (starts_well && rest.trim_start().starts_with('=')).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TempDir;

    fn write(dir: &TempDir, text: &str) -> PathBuf {
        let path = dir.path().join(".env");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn syntax_error(text: &str) -> (usize, Option<String>, &'static str, String) {
        let dir = TempDir::new();
        let path = write(&dir, text);
        match read_dotenv(&path).unwrap_err() {
            ref err @ ConfigError::DotEnvSyntax { ref path, line, ref key, reason } => {
                assert!(path.ends_with(".env"));
                (line, key.0.clone(), reason, err.to_string())
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn reads_quotes_comments_export_and_substitutions_last_assignment_wins() {
        let dir = TempDir::new();
        let path = write(
            &dir,
            "\u{feff}# comment\n\nA=1\nexport B = \"two words\" # trailing\nC='${A}'\nD=${A}x\nA=3\r\nE=\"multi\nline\"\n",
        );
        let vars = read_dotenv(&path).unwrap();
        assert_eq!(vars["A"], "3");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "${A}");
        assert_eq!(vars["D"], "1x");
        assert_eq!(vars["E"], "multi\nline");
        assert_eq!(vars.len(), 5);
    }

    #[test]
    fn a_missing_file_is_empty() {
        let dir = TempDir::new();
        assert!(read_dotenv(&dir.path().join("nope.env")).unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let dir = TempDir::new();
        // A directory cannot be read as a file.
        let err = read_dotenv(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::DotEnvRead { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("cannot read {}", dir.path().display())), "{err}");
    }

    #[test]
    fn a_line_without_equals_is_named_by_number_without_its_content() {
        let (line, key, _, text) = syntax_error("A=1\n# x\n\nWALLET_PRIVATE_KEY 0xabcdef0123\nB=2\n");
        assert_eq!(line, 4);
        assert_eq!(key, None);
        assert!(text.contains(".env: line 4: expected NAME=value"), "{text}");
        assert!(!text.contains("abcdef0123"), "{text}");
    }

    #[test]
    fn a_malformed_value_is_named_by_line_and_variable_without_the_value() {
        // The same text in a comment above must not be blamed.
        let (line, key, reason, text) =
            syntax_error("# WALLET_PRIVATE_KEY=0xab cd\nA=1\nWALLET_PRIVATE_KEY=0xab cd\n");
        assert_eq!(line, 3);
        assert_eq!(key.as_deref(), Some("WALLET_PRIVATE_KEY"));
        assert!(reason.starts_with("malformed value"));
        assert!(text.contains("line 3 (WALLET_PRIVATE_KEY): malformed value"), "{text}");
        assert!(!text.contains("0xab"), "{text}");
    }

    #[test]
    fn an_unterminated_quote_is_named_by_the_line_it_opens_on() {
        let (line, key, reason, _) = syntax_error("A=1\nB=\"open\nC=2\nD=3\n");
        assert_eq!((line, key.as_deref()), (2, Some("B")));
        assert!(reason.starts_with("unterminated"));
        // A multi-line value before the bad line keeps the numbering right.
        let (line, _, _, _) = syntax_error("A=\"x\ny\nz\"\nbad line\n");
        assert_eq!(line, 4);
        // A last line without a newline.
        let (line, key, _, _) = syntax_error("A=1\nB");
        assert_eq!((line, key), (2, None));
    }

    #[test]
    fn the_process_environment_wins_over_the_file_even_when_empty() {
        let dir = TempDir::new();
        let path = write(&dir, "A=file\nB=file\nC=file\n");
        let env =
            merge_dotenv(&path, [("A".to_owned(), "process".to_owned()), ("C".to_owned(), String::new())])
                .unwrap();
        assert_eq!(env["A"], "process");
        assert_eq!(env["B"], "file");
        assert_eq!(env["C"], "");
    }

    #[test]
    fn env_with_dotenv_reads_the_real_process_environment_first() {
        let dir = TempDir::new();
        let path = write(&dir, "PATH=from-the-file\nPROXY_ROUTER_DOTENV_TEST_ONLY_IN_FILE=yes\n");
        let env = env_with_dotenv(Some(&path)).unwrap();
        assert_eq!(env.get("PATH").cloned(), std::env::var("PATH").ok());
        assert_ne!(env["PATH"], "from-the-file");
        assert_eq!(env["PROXY_ROUTER_DOTENV_TEST_ONLY_IN_FILE"], "yes");
    }
}
