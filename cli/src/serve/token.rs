//! The daemon's tokens: read from an environment variable or a file, and checked (long
//! enough, not a placeholder, and what a header can carry).

use std::path::Path;

/// Shortest token accepted.
pub(super) const MIN_TOKEN: usize = 16;

/// Fewest different characters a token holds: fewer is a placeholder (`aaaa…`,
/// `abcabc…`, `12341234…`), not a random token. A random one of 16 hexadecimal digits has
/// fewer about once in a million, of 16 decimal digits about once in ten thousand.
const MIN_DIFFERENT: usize = 5;

/// Where a token is read from.
#[derive(Clone, Copy, Debug)]
pub(super) enum TokenSource<'a> {
    /// An environment variable, by name.
    Env(&'a str),
    /// A file.
    File(&'a Path),
}

impl TokenSource<'_> {
    /// The operators' token's source, from --token-env and --token-file.
    pub(super) fn operators<'a>(env: &'a str, file: Option<&'a Path>) -> TokenSource<'a> {
        match file {
            Some(path) => TokenSource::File(path),
            None => TokenSource::Env(env),
        }
    }

    /// The ingest token's source, from --ingest-token-env and --ingest-token-file, if one
    /// is given.
    pub(super) fn ingest<'a>(
        env: Option<&'a str>,
        file: Option<&'a Path>,
    ) -> Option<TokenSource<'a>> {
        match (file, env) {
            (Some(path), _) => Some(TokenSource::File(path)),
            (None, Some(name)) => Some(TokenSource::Env(name)),
            (None, None) => None,
        }
    }
}

impl std::fmt::Display for TokenSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(name) => write!(f, "the environment variable {name}"),
            TokenSource::File(path) => write!(f, "the file {}", path.display()),
        }
    }
}

/// The bytes of a token file, or `None` when it holds more than 4 KiB (a wrong path: a
/// log, a device that never ends); a FIFO or a device is refused as not a file.
fn read_token_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    const MOST: u64 = 4096;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MOST + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MOST).then_some(bytes))
}

/// How many different bytes `token` holds.
fn different(token: &str) -> usize {
    let mut seen = [false; 256];
    token.bytes().for_each(|b| seen[usize::from(b)] = true);
    seen.iter().filter(|&&seen| seen).count()
}

/// The token `source` holds, trimmed, or what is wrong with it.
pub(super) fn token_in(source: TokenSource<'_>) -> Result<String, String> {
    let read = match source {
        TokenSource::Env(name) => match std::env::var(name) {
            Ok(token) => Ok(token),
            Err(std::env::VarError::NotPresent) => Err("is not set"),
            Err(std::env::VarError::NotUnicode(_)) => Err("is not UTF-8 text"),
        },
        TokenSource::File(path) => match read_token_file(path) {
            Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|_| "is not UTF-8 text"),
            Ok(None) => Err("is longer than a token (4 KiB): is it the right file?"),
            Err(e) => {
                return Err(format!(
                    "cannot read the token from {source}: {e}; give a file holding the \
                     token alone"
                ));
            }
        },
    };
    let checked = read.and_then(|token| {
        let token = token.trim();
        match token.len() {
            0 => Err("is empty"),
            n if n < MIN_TOKEN => Err("is too short"),
            // What a header can carry, and clients send as it is (RFC 9110's visible
            // ASCII).
            _ if !token.bytes().all(|b| b.is_ascii_graphic()) => Err(
                "holds a space, a line break or a character outside ASCII, which no client \
                 can send in a header (base64 breaks its lines every 76 characters: use \
                 base64 -w0)",
            ),
            _ if different(token) < MIN_DIFFERENT => {
                Err("has fewer than 5 different characters, as a placeholder does")
            }
            _ => Ok(token.to_owned()),
        }
    });
    let put = match source {
        TokenSource::Env(_) => "export it",
        TokenSource::File(_) => "write it there",
    };
    checked.map_err(|problem| {
        format!(
            "serve needs a random token of at least {MIN_TOKEN} bytes in {source} (it {problem}); \
             make one with `head -c 32 /dev/urandom | base64`, {put}, and send it as \
             Authorization: Bearer <token>"
        )
    })
}
