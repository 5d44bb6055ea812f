//! Mutations of an input: byte flips, inserts, deletes, truncations, splices with another
//! seed, repeated chunks (deep nesting, long runs) and the tokens the parsers treat
//! specially (template delimiters, glob and jq metacharacters, YAML indicators, numbers at
//! the edges of every integer type).

use super::rng::Rng;

/// Tokens worth inserting: each means something to at least one parser.
const TOKENS: &[&[u8]] = &[
    b"{{",
    b"}}",
    b"{{-",
    b"-}}",
    b"{{ ",
    b" }}",
    b"{{/*",
    b"*/}}",
    b"{{ .",
    b"{{ end }}",
    b"{{ range . }}",
    b"{{ if ",
    b"{{ define \"x\" }}",
    b"{{ template \"x\" . }}",
    b"| ",
    b"(",
    b")",
    b"$",
    b"$x := ",
    b"*",
    b"**",
    b"?",
    b"[",
    b"]",
    b"[!",
    b"[^",
    b"{",
    b"}",
    b",",
    b"\\",
    b"!",
    b"/",
    b"//",
    b":",
    b"::",
    b"..",
    b".",
    b"[]",
    b"\"",
    b"'",
    b"`",
    b"\n",
    b"\r\n",
    b"\t",
    b"- ",
    b": ",
    b"? ",
    b"&a ",
    b"*a",
    b"<<: *a",
    b"!!binary ",
    b"!!str ",
    b"!!int ",
    b"---\n",
    b"...\n",
    b"#",
    b"%YAML 1.2\n",
    b"|-\n",
    b">\n",
    b"~",
    b"null",
    b"true",
    b"0",
    b"-0",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"99999999999999999999999999",
    b"1e308",
    b"1e-400",
    b"NaN",
    b".inf",
    b"0x7f",
    b"0o17",
    b"1_000",
    b"h",
    b"m",
    b"s",
    b"ms",
    b"us",
    "\u{b5}s".as_bytes(),
    "\u{3bc}s".as_bytes(),
    b"ns",
    b".5",
    b"://",
    b"git@",
    b"ssh://",
    b"https://",
    b"@",
    b"%00",
    b"\x00",
    b"\xff",
    "\u{202e}".as_bytes(),
    "\u{1f600}".as_bytes(),
    b"select(",
    b"path(",
    b"..",
    b"|=",
    b"def ",
    b"recurse",
    b"reduce ",
    b"foreach ",
    b"limit(",
    b"try ",
    b"sha256=",
    b"$values/",
    b"../",
    b"/etc/passwd",
];

/// One to four mutations of `input`; `others` supplies splice partners.
pub fn mutate(rng: &mut Rng, mut input: Vec<u8>, others: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        mutate_once(rng, &mut input, others);
    }
    input
}

fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = input.len();
    let at = rng.below(len + 1);
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            // The low 8 bits of the random number are the byte.
            #[allow(clippy::cast_possible_truncation)]
            let b = rng.next_u64() as u8;
            input[i] = b;
        }
        2 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            input.drain(at.min(len - 1)..end);
        }
        3 => input.truncate(at),
        4 if !others.is_empty() => {
            let other = &others[rng.below(others.len())];
            let from = rng.below(other.len() + 1);
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        5 if len > 0 => {
            // Repeat a chunk: deep nesting (`[[[[`, `{{ (((`), long runs, huge numbers.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(8)).min(len);
            let chunk = input[start..end].to_vec();
            let times = [2, 16, 200, 3000][rng.below(4)];
            let insert: Vec<u8> = chunk
                .iter()
                .copied()
                .cycle()
                .take(chunk.len() * times)
                .collect();
            input.splice(start..start, insert);
        }
        _ => {
            let token = TOKENS[rng.below(TOKENS.len())];
            input.splice(at..at, token.iter().copied());
        }
    }
}
