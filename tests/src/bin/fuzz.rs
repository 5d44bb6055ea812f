//! The parser fuzz loop (see `argosy_tests::fuzz`): `scripts/fuzz.sh` builds it in release
//! mode and runs every parser for a million inputs.
//!
//! ```text
//! fuzz [--iterations N] [--parser NAME]... [--seed N] [--budget-ms N] [--corpus DIR]... [--list]
//! ```
//!
//! Exits 1 when any parser panicked (each crash is printed with its input), 3 on a hang.

use std::path::PathBuf;
use std::time::Duration;

use argosy_tests::fuzz::{self, Config, Corpus, escape};

const USAGE: &str = "usage: fuzz [--iterations N] [--parser NAME]... [--seed N] [--budget-ms N] [--corpus DIR]... [--list]";

fn main() {
    let mut config = Config {
        iterations: 1_000_000,
        parsers: Vec::new(),
        seed: 0x00a2_605e,
        budget: Duration::from_millis(100),
    };
    // The real inputs next to the code: examples, fixtures, chart, generated CRDs, and the
    // shared conformance cases and Argo CD resource customizations beside the clone.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = ["examples", "tests", "charts", "crds/yaml"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    dirs.push(root.join("../shared/conformance"));
    dirs.push(root.join("../shared/argocd-resource-customizations"));

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        let number = |name: &str, text: String| -> u64 {
            text.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("{name}: {text:?} is not a number\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--iterations" => config.iterations = number("--iterations", value("--iterations")),
            "--parser" => config.parsers.push(value("--parser")),
            "--seed" => config.seed = number("--seed", value("--seed")),
            "--budget-ms" => {
                config.budget = Duration::from_millis(number("--budget-ms", value("--budget-ms")));
            }
            "--corpus" => dirs.push(PathBuf::from(value("--corpus"))),
            "--list" => {
                for t in fuzz::targets::all() {
                    println!("{:<20} {}", t.name, t.about);
                }
                return;
            }
            _ => {
                eprintln!("unknown argument {arg:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let known: Vec<&str> = fuzz::targets::all().iter().map(|t| t.name).collect();
    if let Some(unknown) = config.parsers.iter().find(|p| !known.contains(&p.as_str())) {
        eprintln!("unknown parser {unknown:?}; --list shows them");
        std::process::exit(2);
    }

    let (corpus, found) = Corpus::load(&dirs);
    eprintln!(
        "corpus: {} files, {} documents from {} directories; seed {}; {} inputs per parser; budget {} ms",
        corpus.files.len(),
        corpus.documents.len(),
        found.len(),
        config.seed,
        config.iterations,
        config.budget.as_millis()
    );
    let outcomes = fuzz::run(&config, &corpus);

    let total: u64 = outcomes.iter().map(|o| o.inputs).sum();
    let crashes: usize = outcomes.iter().map(|o| o.crashes.len()).sum();
    println!(
        "| parser | inputs | seconds | inputs/s | corpus seeds | crashes | slow (>{} ms) | slowest |",
        config.budget.as_millis()
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {} | {:.1} | {:.0} | {} | {} | {} | {:.1} ms |",
            o.name,
            o.inputs,
            o.elapsed.as_secs_f64(),
            o.rate(),
            o.seeds,
            o.crashes.len(),
            o.slow,
            o.slowest
                .as_ref()
                .map_or(0.0, |(t, _)| t.as_secs_f64() * 1000.0)
        );
    }
    for o in &outcomes {
        if let Some((took, input)) = &o.slowest
            && *took > config.budget
        {
            eprintln!(
                "slowest {} input: {:.1} ms: {}",
                o.name,
                took.as_secs_f64() * 1000.0,
                escape(input, 600)
            );
        }
    }
    eprintln!("total: {total} inputs, {crashes} crashes");
    if crashes > 0 {
        std::process::exit(1);
    }
}
