//! A stable-Rust fuzz loop for every parser that takes user input (`cargo run --release -p
//! argosy-tests --bin fuzz`, or `scripts/fuzz.sh`). Nightly and `cargo-fuzz` are not
//! available everywhere Argosy is built, so this is a plain loop: no coverage feedback, but
//! inputs shaped like the real objects and mutations of real inputs reach deep enough.
//!
//! One harness serves all parsers ([`targets::all`]); a parser is a [`Target`]: how to
//! generate a structured input (with `arbitrary`, from PRNG bytes), how to pick its seeds
//! from the corpus, and how to run one input. Each input:
//! * is generated (a third of the time), or a [`mutate`]d seed from the [`corpus`] (real
//!   inputs: the repo's examples, fixtures, charts and conformance cases, Argo CD's
//!   resource customizations), or a mutated earlier input;
//! * runs inside `catch_unwind`: a panic is a crash, printed with the parser and the input;
//! * is timed: one over the budget (100 ms) is reported as slow, and a watchdog thread
//!   ends the process, printing the input, when one runs for [`HANG_SECONDS`].

pub mod corpus;
pub mod mutate;
pub mod rng;
pub mod shape;
pub mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;

pub use corpus::Corpus;
pub use rng::Rng;
pub use targets::Target;

/// An input running this long is a hang: the watchdog prints it and exits.
pub const HANG_SECONDS: u64 = 10;
/// Inputs are cut to this size after mutation: the parsers' own limits are far below it or
/// scale linearly, and small inputs keep the loop fast.
pub const MAX_INPUT: usize = 64 * 1024;

/// How a run is configured (the `fuzz` binary's flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// Inputs per parser.
    pub iterations: u64,
    /// Only these parsers (all when empty).
    pub parsers: Vec<String>,
    /// The PRNG seed; the same seed and corpus give the same inputs.
    pub seed: u64,
    /// An input slower than this is reported.
    pub budget: Duration,
}

/// A panic caught while running one input.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The panic message and location.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
}

/// What one parser's run found.
#[derive(Debug)]
pub struct Outcome {
    /// The parser.
    pub name: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Seeds found in the corpus.
    pub seeds: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Distinct crashes (by panic location), first input of each.
    pub crashes: Vec<Crash>,
    /// Inputs over the budget: how many, and the slowest (time, input).
    pub slow: u64,
    /// The slowest input.
    pub slowest: Option<(Duration, Vec<u8>)>,
}

impl Outcome {
    /// Inputs per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        // Counts stay far below 2^52: exact as f64.
        #[allow(clippy::cast_precision_loss)]
        let inputs = self.inputs as f64;
        inputs / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The input being run and when it started, for the watchdog.
struct Current {
    parser: Mutex<(&'static str, Vec<u8>)>,
    /// Milliseconds since `origin` when the current input started; 0 when idle.
    started_ms: AtomicU64,
    origin: Instant,
}

thread_local! {
    /// The message of the last panic on this thread, set by the panic hook.
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the default panic hook (which would print every caught panic) with one that
/// records the message and location for the crash report.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{payload} at {location}")));
    }));
}

/// Starts the watchdog thread that ends the process on a hang.
fn watchdog(current: Arc<Current>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let started = current.started_ms.load(Ordering::Relaxed);
            let now = u64::try_from(current.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            if started != 0 && now.saturating_sub(started) > HANG_SECONDS * 1000 {
                let (parser, input) = current
                    .parser
                    .lock()
                    .map(|g| g.clone())
                    .unwrap_or(("?", Vec::new()));
                eprintln!(
                    "HANG: parser {parser}: one input has run for over {HANG_SECONDS} s\n  input ({} bytes): {}",
                    input.len(),
                    escape(&input, usize::MAX)
                );
                std::process::exit(3);
            }
        }
    });
}

/// The input as an escaped string (`\n`, `\x00`, ...), cut to `max` bytes.
#[must_use]
pub fn escape(input: &[u8], max: usize) -> String {
    let cut = &input[..input.len().min(max)];
    let mut s = format!("\"{}\"", cut.escape_ascii());
    if cut.len() < input.len() {
        s.push_str(&format!(" ... ({} more bytes)", input.len() - cut.len()));
    }
    s
}

/// Runs every selected target; prints a line per target as it finishes.
pub fn run(config: &Config, corpus: &Corpus) -> Vec<Outcome> {
    install_panic_hook();
    let current = Arc::new(Current {
        parser: Mutex::new(("", Vec::new())),
        started_ms: AtomicU64::new(0),
        origin: Instant::now(),
    });
    watchdog(current.clone());
    let mut outcomes = Vec::new();
    for target in targets::all() {
        if !config.parsers.is_empty() && !config.parsers.iter().any(|p| p == target.name) {
            continue;
        }
        let outcome = run_target(&target, config, corpus, &current);
        eprintln!(
            "{:<20} {:>9} inputs {:>8.1} s {:>9.0}/s  seeds {:>5}  crashes {}  slow (>{} ms) {}",
            outcome.name,
            outcome.inputs,
            outcome.elapsed.as_secs_f64(),
            outcome.rate(),
            outcome.seeds,
            outcome.crashes.len(),
            config.budget.as_millis(),
            outcome.slow
        );
        outcomes.push(outcome);
    }
    outcomes
}

fn run_target(target: &Target, config: &Config, corpus: &Corpus, current: &Current) -> Outcome {
    // Each parser gets its own stream, so `--parser X` reproduces what the full run fed X.
    let name_hash = target.name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(config.seed ^ name_hash);
    let seeds = (target.seeds)(corpus);
    let mut recent: Vec<Vec<u8>> = Vec::new();
    let mut outcome = Outcome {
        name: target.name,
        inputs: 0,
        seeds: seeds.len(),
        elapsed: Duration::ZERO,
        crashes: Vec::new(),
        slow: 0,
        slowest: None,
    };
    let mut entropy = vec![0u8; 4096];
    let start = Instant::now();
    for _ in 0..config.iterations {
        let input = next_input(target, &mut rng, &seeds, &recent, &mut entropy);
        if let Ok(mut slot) = current.parser.lock() {
            slot.0 = target.name;
            slot.1.clone_from(&input);
        }
        let t0 = Instant::now();
        current.started_ms.store(
            u64::try_from(current.origin.elapsed().as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            Ordering::Relaxed,
        );
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let took = t0.elapsed();
        current.started_ms.store(0, Ordering::Relaxed);
        outcome.inputs += 1;
        if took > config.budget {
            outcome.slow += 1;
        }
        if outcome.slowest.as_ref().is_none_or(|(t, _)| took > *t) {
            outcome.slowest = Some((took, input.clone()));
        }
        if result.is_err() {
            let message = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            let location = message.rsplit(" at ").next().unwrap_or("").to_owned();
            if !outcome
                .crashes
                .iter()
                .any(|c| c.message.ends_with(&location))
            {
                eprintln!(
                    "CRASH: parser {}: {message}\n  input ({} bytes): {}",
                    target.name,
                    input.len(),
                    escape(&input, 4096)
                );
                outcome.crashes.push(Crash {
                    message,
                    input: input.clone(),
                });
            }
        }
        // Keep a few recent inputs to mutate further (a cheap stand-in for a corpus that
        // grows with coverage).
        if recent.len() < 64 {
            recent.push(input);
        } else {
            let slot = rng.below(recent.len());
            recent[slot] = input;
        }
    }
    outcome.elapsed = start.elapsed();
    outcome
}

fn next_input(
    target: &Target,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    recent: &[Vec<u8>],
    entropy: &mut [u8],
) -> Vec<u8> {
    let choice = rng.below(10);
    let mut input = if choice < 4 || (seeds.is_empty() && recent.is_empty()) {
        let len = 16 + rng.below(entropy.len() - 16);
        rng.fill(&mut entropy[..len]);
        let mut u = Unstructured::new(&entropy[..len]);
        let generated = (target.generate)(&mut u).unwrap_or_default();
        if choice == 0 {
            mutate::mutate(rng, generated, seeds)
        } else {
            generated
        }
    } else if choice < 8 && !seeds.is_empty() {
        let seed = seeds[rng.below(seeds.len())].clone();
        mutate::mutate(rng, seed, seeds)
    } else if choice < 9 && !recent.is_empty() {
        let earlier = recent[rng.below(recent.len())].clone();
        mutate::mutate(rng, earlier, seeds)
    } else {
        // Plain random bytes, now and then.
        let len = rng.below(256);
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        bytes
    };
    input.truncate(MAX_INPUT);
    input
}
