//! Redaction of what a connector says as it dies. With `terminationMessagePolicy:
//! FallbackToLogsOnError` the kubelet carries the end of a failed container's log as its termination
//! message, and a connector's log can hold what it was configured with: client secrets, API tokens,
//! passwords. Status, events and metrics are readable by far more people than the Secrets, so
//! anything that looks like a credential is replaced before the text goes anywhere. Pure; errs on the
//! side of redacting (a UUID or a digest is lost now and then, a secret never leaks).

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";

/// The most characters of a connector's last words that status carries.
pub const LAST_WORDS_MAX: usize = 300;

/// Key names (lowercased) whose values are credentials: `client_secret=…`, `"password": "…"`,
/// `Authorization: …`, `BATON_API_KEY=…`.
const SENSITIVE_KEYS: &[&str] = &[
    "secret",
    "passw",
    "pwd",
    "token",
    "auth",
    "credential",
    "cookie",
    "session",
    "apikey",
    "api_key",
    "api-key",
];

/// Words after which the next word is a credential.
const SCHEMES: &[&str] = &["bearer", "basic", "token"];

/// The shortest run of token characters that counts as a credential when it mixes letters and digits
/// (API tokens, base64 secrets); plain words and paths are never that long and digit-free.
const TOKEN_MIN: usize = 24;
/// The shortest run of hex digits alone that counts as a credential.
const HEX_MIN: usize = 32;

/// `text` with every credential-looking part replaced by [`REDACTED`]; whitespace is kept as it was.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The previous word asked for the next one to be redacted (`Bearer`, `password:`), or a quoted
    // value is still open.
    let mut redact_next = false;
    let mut in_quoted_value = false;
    for piece in split_keeping_whitespace(text) {
        if piece.chars().all(char::is_whitespace) {
            out.push_str(piece);
            continue;
        }
        if in_quoted_value {
            out.push_str(REDACTED);
            in_quoted_value = !closes_quote(piece);
            continue;
        }
        if redact_next {
            // `Authorization: Bearer <token>`: the scheme is no secret, the word after it is.
            if SCHEMES.contains(&piece.to_ascii_lowercase().as_str()) {
                out.push_str(piece);
                continue;
            }
            redact_next = false;
            out.push_str(REDACTED);
            in_quoted_value = opens_quote(piece) && !closes_quote(&piece[1..]);
            continue;
        }
        let lower = piece.to_ascii_lowercase();
        let bare = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if SCHEMES.contains(&bare) {
            out.push_str(piece);
            redact_next = true;
            continue;
        }
        let (word, value_follows, opens) = word(piece);
        out.push_str(&word);
        redact_next = value_follows;
        in_quoted_value = opens;
    }
    out
}

/// One word: `key=value` with a sensitive key loses its value, a word that is only a sensitive key
/// (`password:`) redacts the next, and any other word loses its long tokens. Returns the word, whether
/// the next word is a value to redact, and whether a quoted value was opened and not closed.
fn word(piece: &str) -> (String, bool, bool) {
    if let Some(at) = piece.find(['=', ':']) {
        let (key, rest) = piece.split_at(at);
        let value = &rest[1..];
        if is_sensitive_key(key) && !value.starts_with("//") {
            if value.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';')).is_empty() {
                // `password:` or `"secret": "` — the value is the next word.
                let opens = value.starts_with(['"', '\'']);
                return (piece.to_string(), !opens, opens);
            }
            let open = opens_quote(value) && !closes_quote(&value[1..]);
            return (format!("{key}{}{REDACTED}", &rest[..1]), false, open);
        }
    }
    (tokens(&userinfo(piece)), false, false)
}

fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let key = key.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-');
    !key.is_empty() && (SENSITIVE_KEYS.iter().any(|k| key.contains(k)) || key.ends_with("key"))
}

/// `scheme://user:password@host` loses the password.
fn userinfo(piece: &str) -> String {
    let Some(scheme_end) = piece.find("://") else { return piece.to_string() };
    let rest = &piece[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:{REDACTED}{}", &piece[..scheme_end + 3], &authority[..colon], &rest[at..])
        }
        _ => piece.to_string(),
    }
}

/// Replaces runs of token characters that look like credentials: JWTs, long mixed letter-and-digit
/// runs (base64, API keys, `secret-token:…` values), long hex.
fn tokens(word: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.');
    let mut out = String::with_capacity(word.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if looks_like_credential(run) {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in word.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn looks_like_credential(run: &str) -> bool {
    // A JWT: three base64url parts, the first a JSON object (`eyJ`).
    if run.starts_with("eyJ") && run.matches('.').count() >= 2 {
        return true;
    }
    // Dots separate words and host names; the parts between them are judged alone.
    run.split('.').any(|part| {
        let letters = part.chars().filter(char::is_ascii_alphabetic).count();
        let digits = part.chars().filter(char::is_ascii_digit).count();
        let hex = !part.is_empty() && part.chars().all(|c| c.is_ascii_hexdigit());
        (part.len() >= TOKEN_MIN && letters > 0 && digits > 0) || (hex && part.len() >= HEX_MIN)
    })
}

fn opens_quote(s: &str) -> bool {
    s.starts_with(['"', '\''])
}

fn closes_quote(s: &str) -> bool {
    s.trim_end_matches([',', ';', '}', ')']).ends_with(['"', '\''])
}

/// Words and the whitespace between them, in order.
fn split_keeping_whitespace(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let ws = first.is_whitespace();
        let end = rest.find(|c: char| c.is_whitespace() != ws).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// A container's termination message as status shows it: redacted, on one line (lines joined with
/// ` | `), and at most [`LAST_WORDS_MAX`] characters, keeping the end, where the reason for dying is.
pub fn last_words(message: &str) -> String {
    let redacted = redact(message);
    let line = redacted.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
    let count = line.chars().count();
    if count <= LAST_WORDS_MAX {
        return line;
    }
    let tail: String = line.chars().skip(count - (LAST_WORDS_MAX - 1)).collect();
    format!("…{tail}")
}

/// Any other text from the pod (a kubelet or scheduler message) as one line of at most
/// [`LAST_WORDS_MAX`] characters, keeping the start.
pub fn one_line(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= LAST_WORDS_MAX {
        return line;
    }
    let head: String = line.chars().take(LAST_WORDS_MAX - 1).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) {
        assert_eq!(redact(s), s, "nothing to redact in {s:?}");
    }

    #[test]
    fn key_value_secrets_lose_their_values() {
        assert_eq!(redact("client_secret=abc123 next"), "client_secret=[REDACTED] next");
        assert_eq!(redact("BATON_CLIENT_SECRET=hunter2"), "BATON_CLIENT_SECRET=[REDACTED]");
        assert_eq!(redact("password: hunter2 ok"), "password: [REDACTED] ok");
        assert_eq!(redact("api_key=xyz"), "api_key=[REDACTED]");
        assert_eq!(redact("BATON_API_KEY=xyz"), "BATON_API_KEY=[REDACTED]");
        assert_eq!(redact("access_key:xyz"), "access_key:[REDACTED]");
        assert_eq!(redact("token=t"), "token=[REDACTED]");
    }

    #[test]
    fn json_and_quoted_values_are_redacted_whole() {
        assert_eq!(redact(r#"{"client_secret":"abc","user":"bob"}"#), r#"{"client_secret":[REDACTED]"#);
        assert_eq!(
            redact(r#""password": "two words here", "user": "bob""#),
            r#""password": [REDACTED] [REDACTED] [REDACTED] "user": "bob""#
        );
        assert_eq!(redact("secret='a b' after"), "secret=[REDACTED] [REDACTED] after");
    }

    #[test]
    fn bearer_and_basic_credentials_are_redacted() {
        assert_eq!(redact("Authorization: Bearer abc.def"), "Authorization: Bearer [REDACTED]");
        assert_eq!(redact("sent Bearer abc.def to the API"), "sent Bearer [REDACTED] to the API");
        assert_eq!(redact("basic dXNlcjpwYXNz"), "basic [REDACTED]");
    }

    #[test]
    fn jwts_and_long_tokens_are_redacted_wherever_they_are() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(redact(&format!("got {jwt} back")), "got [REDACTED] back");
        assert_eq!(redact("id=(ghp_1234567890abcdefghijklmnop)"), "id=([REDACTED])");
        assert_eq!(redact("sha deadbeefdeadbeefdeadbeefdeadbeef00"), "sha [REDACTED]");
        assert_eq!(
            redact("secret-token:conductorone.com:v1:eyJrIjoiMTIzNDU2Nzg5MGFiY2RlZiJ9"),
            "secret-token:[REDACTED]"
        );
        assert_eq!(redact("value c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZzEyMw=="), "value [REDACTED]");
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact("dial postgres://app:pa55word@db:5432/x failed"),
            "dial postgres://app:[REDACTED]@db:5432/x failed"
        );
        clean("GET https://acme.okta.com/api/v1/users: 401 Unauthorized");
    }

    #[test]
    fn ordinary_error_messages_survive() {
        clean("error: failed to sync: rpc error: code = Unauthenticated desc = invalid client");
        clean("panic: runtime error: index out of range [3] with length 3");
        clean("open /data/sync.c1z: read-only file system");
        clean("connecting to acme.okta.com:443 (timeout 30s)");
        clean("exit status 1");
        clean("a_very_long_identifier_without_any_digits_at_all");
    }

    #[test]
    fn whitespace_is_kept() {
        assert_eq!(redact("a\n  password=x\tb"), "a\n  password=[REDACTED]\tb");
    }

    #[test]
    fn last_words_are_redacted_one_line_and_short() {
        assert_eq!(
            last_words("line one\n\n  client_secret=abc\nfatal: bad\n"),
            "line one | client_secret=[REDACTED] | fatal: bad"
        );
        let long = format!("{}\nfatal: the end", "x ".repeat(500));
        let words = last_words(&long);
        assert_eq!(words.chars().count(), LAST_WORDS_MAX);
        assert!(words.starts_with('…') && words.ends_with("fatal: the end"), "{words}");
        // Redacted before it is cut, so a cut never leaves part of a secret.
        let secret = format!("{} password=hunter2", "y ".repeat(200));
        assert!(!last_words(&secret).contains("hunter2"));
    }

    #[test]
    fn one_line_keeps_the_start() {
        assert_eq!(
            one_line("0/3 nodes are available:\n 3 Insufficient memory."),
            "0/3 nodes are available: 3 Insufficient memory."
        );
        let long = "z".repeat(400);
        assert_eq!(one_line(&long).chars().count(), LAST_WORDS_MAX);
    }
}
